"""Physical component spectra (eds/unmix.py) on generated mixtures with a shared element.

The core claim: plain NMF of a spectrum image returns a rotated spectrum when one
phase's element also occurs in another; the purest-pixel re-basing recovers the true
spectra and maps, from ~600 down to a few counts per pixel.
"""

import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from hyperspy_nanoml.eds.unmix import (
    bin_factor,
    bin_navigation,
    successive_projections,
    unmix,
)
from hyperspy_nanoml.learn.verification import match_components


def _gauss(m, c, w):
    x = np.arange(m)
    return np.exp(-0.5 * ((x - c) / w) ** 2)


def _mixture(counts, shape=(48, 48), m=256, seed=0, subset=True):
    """Substrate + three wires (pure centres, mixed edges); ``subset``: the substrate's
    only element also occurs in the wire (Ag on Au-Ag), else each has its own (InSb /
    AuIn2). Returns counts (n, m), true maps (n, 2) and unit-sum spectra (2, m)."""
    rng = np.random.default_rng(seed)
    bg = 0.3 * np.exp(-np.arange(m) / 100.0) + 0.02
    wire_el = _gauss(m, 50, 2) + 0.5 * _gauss(m, 56, 2)
    sub_el = _gauss(m, 150, 2.5) + 0.4 * _gauss(m, 165, 2.5)
    shared = _gauss(m, 100, 2.2) + 0.3 * _gauss(m, 107, 2.2)
    sub = shared + bg if subset else 0.6 * shared + sub_el + bg
    wire = wire_el + 0.8 * shared + bg
    S = np.stack([sub, wire])
    S /= S.sum(1, keepdims=True)
    ny, nx = shape
    w = np.zeros(shape)
    scale = nx / 48
    for x0 in (8, 24, 38):
        w[:, int(x0 * scale) : int((x0 + 5) * scale)] = 1.0
    w = gaussian_filter(w, 2.0 * scale)
    w = np.clip(w / w.max(), 0, 1)
    maps = np.stack([1 - w, w]).reshape(2, -1).T
    X = rng.poisson(counts * maps @ S).astype(np.uint16)
    return X, maps, S


def _corr(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _scores(res, maps, S):
    _, idx = match_components(S, res.spectra)
    spec = [_corr(S[j], res.spectra[idx[j]]) for j in range(2)]
    nmf = [_corr(S[j], res.nmf_spectra[idx[j]]) for j in range(2)]
    mp = [_corr(maps[:, j], res.maps[:, idx[j]]) for j in range(2)]
    return spec, nmf, mp, idx


def test_plain_nmf_rotates_and_purest_pixels_recover_600_counts():
    X, maps, S = _mixture(600)
    res = unmix(X, 2, nav_shape=(48, 48), random_state=0, n_restarts=2)
    spec, nmf, mp, idx = _scores(res, maps, S)
    # plain (Poisson-scaled) NMF: the wire spectrum is rotated away from the truth
    assert min(nmf) < 0.9
    # re-based on the purest pixels: both spectra and both maps recovered
    assert min(spec) > 0.995
    assert min(mp) > 0.95
    # the maps are fractions of a pure pixel: their means match the true area fractions
    np.testing.assert_allclose(res.maps[:, idx].mean(0), maps.mean(0), atol=0.03)
    # pure pixels exist in the truth (wire centres, substrate between): found pure
    assert np.all(res.max_purity > 0.95)
    assert np.all(res.n_pure > 20)
    # restarts give the same physical spectra
    assert res.stability["spectrum_similarity"].min() > 0.99
    assert res.bin_factor == 1
    # counts are fully attributed
    assert res.counts.sum() == pytest.approx(X.sum(), rel=0.02)


def test_each_phase_with_its_own_element_is_also_recovered():
    X, maps, S = _mixture(600, subset=False, seed=1)
    res = unmix(X, 2, nav_shape=(48, 48), random_state=0, n_restarts=0)
    spec, nmf, mp, _ = _scores(res, maps, S)
    assert min(spec) > 0.995 and min(mp) > 0.95
    assert min(spec) >= min(nmf) - 1e-3


@pytest.mark.parametrize("counts", [20, 3])
def test_few_counts_binned_for_the_spectra(counts):
    X, maps, S = _mixture(counts, shape=(96, 96), seed=2)
    res = unmix(X, "auto", nav_shape=(96, 96), random_state=0, n_restarts=2)
    assert res.n_components == 2  # the choice holds at few counts per pixel
    assert res.bin_factor > 1
    spec, nmf, mp, idx = _scores(res, maps, S)
    assert min(spec) > (0.98 if counts == 20 else 0.95)
    assert min(spec) > min(nmf)
    # per-pixel maps are shot-noise limited; smoothed they follow the truth
    sm = [
        _corr(
            gaussian_filter(maps[:, j].reshape(96, 96), 2).ravel(),
            gaussian_filter(res.maps[:, idx[j]].reshape(96, 96), 2).ravel(),
        )
        for j in range(2)
    ]
    assert min(sm) > 0.8


def test_lazy_equals_eager():
    X, maps, S = _mixture(30, shape=(48, 48), seed=3)
    kw = dict(nav_shape=(48, 48), random_state=0, n_restarts=1)
    r1 = unmix(X, 2, **kw)
    r2 = unmix(da.from_array(X, chunks=(700, -1)), 2, **kw)
    assert r1.bin_factor == r2.bin_factor
    np.testing.assert_allclose(
        r1.spectra, r2.spectra, rtol=1e-3, atol=1e-3 * r1.spectra.max()
    )
    np.testing.assert_allclose(r1.maps, r2.maps, atol=1e-3)


def test_input_is_not_modified_and_bad_input():
    X, _, _ = _mixture(50, seed=4)
    X0 = X.copy()
    unmix(X, 2, nav_shape=(48, 48), random_state=0, n_restarts=0)
    np.testing.assert_array_equal(X, X0)
    with pytest.raises(ValueError, match="negative counts"):
        unmix(X.astype(float) - 1, 2, nav_shape=(48, 48))
    with pytest.raises(ValueError, match="no counts"):
        unmix(np.zeros((100, 64)), 2)
    with pytest.raises(ValueError, match="NaN"):
        Y = X.astype(float)
        Y[0, 0] = np.nan
        unmix(Y, 2, nav_shape=(48, 48))
    with pytest.raises(ValueError, match="nav_shape"):
        unmix(X, 2, nav_shape=(10, 10))
    with pytest.raises(ValueError, match="'auto'"):
        unmix(X, "three", nav_shape=(48, 48))


def test_successive_projections_finds_vertices():
    rng = np.random.default_rng(0)
    V = rng.random((4, 30))
    A = rng.dirichlet(np.ones(4) * 0.5, 300)
    A[:4] = np.eye(4)
    picks = successive_projections(A @ V, 4)
    assert sorted(picks) == [0, 1, 2, 3]


def test_binning():
    assert bin_factor(600, (48, 48)) == 1
    assert bin_factor(2.0, (512, 512)) == 9
    assert bin_factor(0.5, (10, 10)) == 1  # never below min_pixels binned pixels
    X = np.arange(4 * 6 * 3).reshape(24, 3)
    Xb, shape = bin_navigation(X, (4, 6), 2)
    assert shape == (2, 3)
    np.testing.assert_allclose(Xb.sum(0), X.sum(0))
    Xd, shape_d = bin_navigation(da.from_array(X, chunks=(7, 3)), (4, 6), 2)
    np.testing.assert_allclose(Xd.compute(), Xb)


def _narrow_wires(counts, seed=0):
    """InSb / AuIn2-like: each phase has an element of its own, In-like shared; wires
    narrower than the blur, so no pixel is pure wire (max wire fraction ~0.7)."""
    rng = np.random.default_rng(seed)
    m = 256
    bg = 0.3 * np.exp(-np.arange(m) / 100.0) + 0.02
    peaks = {"wire_el": (50, 2.0), "shared": (100, 2.2), "sub_el": (150, 2.5)}
    g = {k: _gauss(m, c, w) for k, (c, w) in peaks.items()}
    S = np.stack(
        [0.6 * g["shared"] + g["sub_el"] + bg, g["wire_el"] + 0.8 * g["shared"] + bg]
    )
    S /= S.sum(1, keepdims=True)
    w = np.zeros((48, 48))
    for x0 in (8, 24, 38):
        w[:, x0 : x0 + 2] = 1.0
    w = np.clip(gaussian_filter(w, 1.5), 0, 1)
    maps = np.stack([1 - w, w]).reshape(2, -1).T
    X = rng.poisson(counts * maps @ S).astype(np.uint16)
    windows = [(c - int(3 * s), c + int(3 * s) + 1) for c, s in peaks.values()]

    def net_lines(spectra):  # background-free peak areas (linear in the spectra)
        spectra = np.asarray(spectra, dtype=float)
        N, var = [], []
        for a, b in windows:
            side = 0.5 * (spectra[:, a - 3 : a].mean(1) + spectra[:, b : b + 3].mean(1))
            N.append(spectra[:, a:b].sum(1) - side * (b - a))
            var.append(spectra[:, a:b].sum(1) + 1.0)
        return np.stack(N, 1), np.sqrt(np.stack(var, 1))

    return X, maps, S, net_lines


def test_extension_recovers_a_phase_never_pure_in_any_pixel():
    X, maps, S, net_lines = _narrow_wires(600)
    assert maps[:, 1].max() < 0.75
    plain = unmix(X, 2, nav_shape=(48, 48), random_state=0, n_restarts=0)
    ext = unmix(X, 2, nav_shape=(48, 48), random_state=0, n_restarts=0, net_lines=net_lines)
    sp, _, _, ip = _scores(plain, maps, S)
    se, _, me, ie = _scores(ext, maps, S)
    # the purest pixels hold substrate: the plain wire spectrum is a mixture
    assert sp[1] < 0.99
    assert plain.extension.max() == 0
    # extended until the substrate's own element vanishes: the true wire spectrum
    assert min(se) > 0.995
    assert ext.extension[ie[1]] > 0.15 and ext.extension[ie[0]] < 0.02
    # purity is now absolute: no wire pixel is pure, as in the truth
    assert ext.max_purity[ie[1]] < 0.9
    assert min(me) > 0.9  # per-pixel maps at 600 counts: shot-noise limited (plain: 0.94)
    # maps as fractions of a pure pixel (rates from the sum-to-one model)
    np.testing.assert_allclose(ext.maps[:, ie].mean(0), maps.mean(0), atol=0.03)


def test_extension_leaves_pure_phases_alone():
    X, maps, S = _mixture(600, subset=False, seed=1)
    net_lines = _narrow_wires(600)[3]  # background-free areas of the same three peaks
    res = unmix(X, 2, nav_shape=(48, 48), random_state=0, n_restarts=0, net_lines=net_lines)
    spec, _, _, _ = _scores(res, maps, S)
    assert min(spec) > 0.995
    assert res.extension.max() < 0.05
