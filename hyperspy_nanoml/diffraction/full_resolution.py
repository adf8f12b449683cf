"""Full-resolution phase patterns of an NMF fitted on binned patterns.

Sparse counts are binned before the NMF (:func:`~hyperspy_nanoml.diffraction.
preprocess.choose_binning`), which finds the phases and their maps; the phase
patterns of the fit are then binned too. To index spots a microscopist wants them
at the detector's resolution: with the maps ``W`` (positions x k) fixed, the
unbinned patterns ``H`` (k x pixels) solve the non-negative least squares

    min ||X - W H||_F  subject to  H >= 0

column by column (every pixel on its own), from ``WᵀW`` and ``WᵀX``: one pass over
the unbinned data ``X``, then block-coordinate descent on the rows of ``H``
(HALS: Cichocki & Phan, IEICE Trans. Fundam. E92-A, 708, 2009) on k x pixels
numbers, with no further read. Summed back over each bin the result is the least
squares fit of the binned data with the same maps, so it agrees with the binned
patterns wherever these fit well.
"""

from __future__ import annotations

import numpy as np

__all__ = ["full_resolution_patterns"]


def _kernel_wtx(block, start, prep, W):
    """``Wᵀ X`` over the kept rows of one block (float64 sums)."""
    k0, _ = prep.kept(start, block.shape[0])
    B = np.zeros((W.shape[1], block.shape[1]), dtype=np.float64)
    for a, b, x in prep.slices(block, start):
        B += W[k0 + a : k0 + b].T @ x
    return None, (B,)


def full_resolution_patterns(signal, loadings):
    """The unbinned phase patterns that go with the maps of a binned NMF.

    Parameters
    ----------
    signal : signal with 2 signal dimensions (eager or lazy)
        The unbinned scan the binned fit was made from (read once, block by block).
    loadings : ndarray (positions, k)
        The maps of the fit in HyperSpy's unfolded navigation order
        (``learning_results.loadings``); rows of NaN (excluded, e.g. vacuum
        patterns) are left out.

    Returns
    -------
    patterns : ndarray, float32, (k, rows, columns)
        Non-negative patterns at the signal's resolution, ``X ≈ W H`` in its
        units (counts per pixel for the maps as given).
    passes : int
        Passes over the data (1).

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> rng = np.random.default_rng(0)
    >>> H = rng.random((2, 8, 8)); W = rng.random((30, 2))
    >>> s = hs.signals.Signal2D((W @ H.reshape(2, -1)).reshape(5, 6, 8, 8))
    >>> found, _ = full_resolution_patterns(s, W)
    >>> bool(np.allclose(found, H, atol=1e-4))
    True
    """
    from hyperspy_nanoml.learn.blocks import BlockPrep, RowBlocks, one_blas_thread
    from hyperspy_nanoml.learn.nmf import hals_sweeps
    from hyperspy_nanoml.learn.signal_matrix import unfold_data

    X, nav_shape, sig_shape = unfold_data(signal)
    W = np.asarray(loadings, dtype=np.float64)
    if W.ndim != 2 or W.shape[0] != X.shape[0]:
        raise ValueError(
            f"loadings must be (positions, k) with {X.shape[0]} positions, got "
            f"shape {W.shape}"
        )
    keep = np.isfinite(W).all(axis=1)
    if not keep.any():
        raise ValueError("every row of the loadings is NaN: nothing to project on")
    W = W[keep]
    prep = BlockPrep(keep_rows=None if keep.all() else keep)
    blocks = RowBlocks(X)
    _, (B,) = blocks.run(_kernel_wtx, prep, W.astype(np.float32))
    with one_blas_thread():
        G = W.T @ W
        H = np.maximum(np.linalg.lstsq(G, B, rcond=None)[0], 0.0)
        hals_sweeps(H, B, G, 500, delta=1e-6)
    return H.astype(np.float32).reshape((W.shape[1],) + tuple(sig_shape)), blocks.passes
