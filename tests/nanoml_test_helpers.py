"""Helpers shared by the tests (importable: ``pythonpath = ["tests"]`` in pyproject).

Generated diffraction-like data with known non-negative factors, matching of
factors to the truth, and an array that counts the rows read from it.
"""

import numpy as np


def spot_patterns(n_phases=3, size=32, seed=0, direct_beam=0.0):
    """``n_phases`` patterns (size × size) of Gaussian spots on distinct lattices.

    Each phase has its own spot positions (a rotated, scaled 2-D lattice); a shared
    direct beam of relative height ``direct_beam`` can be added at the centre.
    Returns an array (n_phases, size, size), every pattern with maximum 1.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2
    out = np.zeros((n_phases, size, size))
    for p in range(n_phases):
        angle = rng.uniform(0, np.pi) + p * np.pi / (2 * n_phases)
        a = size * rng.uniform(0.16, 0.26)
        b = size * rng.uniform(0.16, 0.26)
        e1 = a * np.array([np.cos(angle), np.sin(angle)])
        e2 = b * np.array([-np.sin(angle + 0.3), np.cos(angle + 0.3)])
        img = np.zeros((size, size))
        for i in range(-3, 4):
            for j in range(-3, 4):
                if i == 0 and j == 0:
                    continue
                y, x = c + i * e1 + j * e2
                if 1 < y < size - 2 and 1 < x < size - 2:
                    amp = np.exp(-((i * i + j * j) / 12.0))
                    img += amp * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 0.9**2))
        img /= img.max()
        if direct_beam:
            img += direct_beam * np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * 1.2**2))
        out[p] = img
    return out


def abundance_maps(n_phases=3, shape=(40, 40), seed=0):
    """Smooth non-negative maps (n_phases, *shape): phase regions with soft overlaps."""
    rng = np.random.default_rng(seed + 1)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    centres = rng.uniform(0, 1, size=(n_phases, 2)) * [ny, nx]
    d = np.stack([np.hypot(yy - cy, xx - cx) for cy, cx in centres])
    w = np.exp(-((d / (0.25 * max(ny, nx))) ** 2) * 1.5)
    w = w / w.sum(axis=0, keepdims=True)
    w = w**2
    w = w / w.sum(axis=0, keepdims=True)
    thickness = 0.7 + 0.3 * (xx / max(nx - 1, 1))  # thickness gradient
    return w * thickness


def make_dataset(n_phases=3, scan=(40, 40), size=32, counts=200.0, seed=0, direct_beam=0.0):
    """Poisson data ``(ny, nx, size, size)`` = maps · patterns, with the truth.

    Returns ``(data_float32, patterns (k, size²), maps (k, ny·nx))``.
    """
    patterns = spot_patterns(n_phases, size, seed, direct_beam).reshape(n_phases, -1)
    maps = abundance_maps(n_phases, scan, seed).reshape(n_phases, -1)
    clean = counts * maps.T @ patterns
    rng = np.random.default_rng(seed + 2)
    data = rng.poisson(clean).astype(np.float32)
    return data.reshape(*scan, size, size), patterns, maps


def matched_similarity(A, B):
    """Mean/min cosine similarity of rows of A and B after Hungarian matching; and the match."""
    from scipy.optimize import linear_sum_assignment

    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    An = A / np.linalg.norm(A, axis=1, keepdims=True)
    Bn = B / np.linalg.norm(B, axis=1, keepdims=True)
    S = An @ Bn.T
    r, c = linear_sum_assignment(-S)
    sims = S[r, c]
    return sims, c


class CountingArray:
    """A read-only array that counts the rows handed out, to prove data are read by blocks."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim
        self.rows_read = 0
        self.largest_read = 0

    def __getitem__(self, key):
        out = self.array[key]
        self.rows_read += out.shape[0]
        self.largest_read = max(self.largest_read, out.shape[0])
        return out


def vacuum_and_beam(seed=0, n=3000, m=120, k=3, n_vacuum=1000, beam=8):
    """Counts with a bright "beam" on the first columns and rows that are beam only."""
    rng = np.random.default_rng(seed)
    W = rng.random((n, k))
    W[:n_vacuum] = 0
    H = rng.random((k, m))
    H[:, :beam] = 0
    X = 20 * W @ H
    X[:, :beam] += 200
    column_mask = np.zeros(m, bool)
    column_mask[:beam] = True
    row_mask = np.zeros(n, bool)
    row_mask[:n_vacuum] = True
    order = rng.permutation(n)  # vacuum rows spread over the blocks
    return rng.poisson(X[order]).astype(np.uint16), column_mask, row_mask[order], H
