"""``nmf_decomposition``: the NMF engine as a HyperSpy decomposition, eager or lazy.

The result lands in ``signal.learning_results`` exactly where HyperSpy's own
``decomposition()`` puts it, so ``plot_decomposition_results()``,
``get_decomposition_loadings()``, ``get_decomposition_factors()`` and
``get_decomposition_model()`` work unchanged.
"""

from __future__ import annotations

import weakref

import numpy as np

from hyperspy_nanoml._validation import check_n_components, check_real_dtype
from hyperspy_nanoml.learn.nmf import FirstPassMasks, NMFResult, nmf
from hyperspy_nanoml.learn.signal_matrix import (
    component_choice_from,
    flat_mask,
    nan_expand,
    store_learning_results,
    unfold_data,
)

__all__ = [
    "component_choice_from",
    "nmf_decomposition",
    "nmf_result",
    "store_learning_results",
]

# The engine's NMFResult of the last nmf_decomposition of a signal, keyed by the
# signal's LearningResults object (kept out of learning_results.__dict__, which
# HyperSpy saves: an arbitrary object there would not survive .hspy/.zspy).
_RESULTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def nmf_result(signal) -> NMFResult:
    """The engine's :class:`~hyperspy_nanoml.learn.nmf.NMFResult` of the last
    :func:`nmf_decomposition` of ``signal``.

    :func:`nmf_decomposition` returns None (as HyperSpy's ``decomposition()``
    does); the HyperSpy view of the result is in ``signal.learning_results``
    (factors, loadings, ``nmf_info``, ``nmf_component_choice``), and the full
    engine result (``W``, ``H``, passes, error history, the seed, the component
    choice) is kept in memory for this accessor. It is not saved with the signal
    and not carried by copies: after ``hs.load`` or ``s.deepcopy()`` use
    ``learning_results`` and ``learning_results.nmf_info``.

    Parameters
    ----------
    signal : hyperspy.signal.BaseSignal
        A signal on which :func:`nmf_decomposition` ran in this session.

    Returns
    -------
    NMFResult

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs, hyperspy_nanoml
    >>> from hyperspy_nanoml.learn.decomposition import nmf_result
    >>> rng = np.random.default_rng(0)
    >>> s = hs.signals.Signal1D(rng.poisson(20 * rng.random((30, 2)) @ rng.random((2, 64))))
    >>> s.nmf_decomposition(2, random_state=0, print_info=False)
    >>> nmf_result(s).H.shape
    (2, 64)
    """
    lr = getattr(signal, "learning_results", None)
    res = _RESULTS.get(lr) if lr is not None else None
    if res is None:
        raise ValueError(
            "this signal has no NMF result in memory: run "
            "s.nmf_decomposition(...) on it first (the engine's result is not saved "
            "with the signal nor kept by copies; s.learning_results and "
            "s.learning_results.nmf_info hold what was saved)"
        )
    return res


def _check_signal(signal) -> None:
    from hyperspy.signal import BaseSignal

    if not isinstance(signal, BaseSignal):
        raise TypeError(
            f"nmf_decomposition needs a HyperSpy signal, got {type(signal).__name__}; "
            "for arrays use hyperspy_nanoml.nmf(X, n_components)"
        )
    if signal.axes_manager.navigation_dimension == 0:
        raise ValueError(
            "nmf_decomposition needs a signal with navigation axes (several patterns or "
            "spectra); this signal has navigation_dimension 0. Use s.transpose() or "
            "stack several signals."
        )
    check_real_dtype(signal.data.dtype, "the signal's data")


def _learning_arrays(res: NMFResult, sig_mask, nav_mask):
    """Factors, loadings (NaN on masked places) and explained variances of a result."""
    H = res.H.astype(np.float64)
    W = res.W.astype(np.float64)
    if sig_mask is not None:
        H = H[:, ~sig_mask]  # the engine's masked columns are 0: maxima unchanged
    energy = np.einsum("ij,ij->j", W, W) * np.einsum("ij,ij->i", H, H)
    total = res.data_sq_norm
    factors = nan_expand(np.ascontiguousarray(H.T, dtype=np.float32), sig_mask)
    loadings = nan_expand(np.ascontiguousarray(W, dtype=np.float32), nav_mask)
    explained = energy / W.shape[0]
    ratio = energy / total if total > 0 else energy * np.nan
    return factors, loadings, explained, ratio


def _record(res, k, choice, normalize_poissonian_noise, nav_mask, sig_mask, lazy):
    """What ``nmf_decomposition`` did, for ``metadata.Processing.nmf_decomposition``."""
    return {
        "algorithm": "NMF (hyperspy_nanoml, " + res.method + ")",
        "n_components": int(k),
        "n_components_method": "auto: " + choice.reason if choice is not None else "given",
        "normalize_poissonian_noise": bool(normalize_poissonian_noise),
        "navigation_mask": nav_mask is not None,
        "signal_mask": sig_mask is not None,
        "random_state": (
            int(res.random_state)
            if res.random_state is not None
            else "RandomState instance"
        ),
        "relative_reconstruction_error": float(res.reconstruction_error),
        "converged": bool(res.converged),
        "passes_over_data": int(res.passes),
        "reads_of_data": int(res.reads),
        "iterations": int(res.n_iter),
        "lazy": bool(lazy),
    }


def _print_info(res, k, choice, normalize_poissonian_noise):
    lines = [
        "Decomposition info:",
        f"  normalize_poissonian_noise={bool(normalize_poissonian_noise)}",
        "  algorithm=NMF (hyperspy_nanoml)",
        f"  output_dimension={k}"
        + (" (chosen automatically)" if choice is not None else ""),
        "  centre=None",
        f"  relative error={res.reconstruction_error:.4g}, converged={res.converged}, "
        f"{res.passes} passes over the data ({res.reads} reads), "
        f"random_state={res.random_state}",
    ]
    if choice is not None:
        lines.append("  " + choice.reason)
    print("\n".join(lines))


def nmf_decomposition(
    signal,
    n_components: int | str = "auto",
    *,
    normalize_poissonian_noise: bool = False,
    signal_mask=None,
    navigation_mask=None,
    random_state=None,
    max_iter: int = 500,
    tol: float = 1e-5,
    max_passes: int | None = None,
    compression="auto",
    max_components: int | None = None,
    show_progressbar: bool | None = None,
    print_info: bool = True,
    masks_from_first_pass: FirstPassMasks | None = None,
    hold_in_memory: bool | str = "auto",
) -> None:
    """Non-negative matrix factorisation of any HyperSpy signal, eager or lazy.

    The navigation axes become the rows (patterns, spectra) and the signal axes the
    columns of ``X ≈ W H``; lazy data are reshaped and rechunked, never loaded (see
    :func:`hyperspy_nanoml.learn.nmf.nmf` for the passes over the data). The results
    fill ``signal.learning_results`` as HyperSpy's ``decomposition()`` does:
    ``factors`` (n_signal × k, the components ``H``), ``loadings`` (n_navigation × k,
    the maps ``W``), masked rows/columns as NaN.

    Components are normalised for reporting: each factor has a maximum of 1 (its
    scale moved into the loadings, so a loading reads as "intensity of this pattern")
    and they are ordered by decreasing explained variance.

    The signal is modified in place: ``learning_results`` (as above, plus
    ``nmf_info``, ``nmf_component_choice``), and one record of what was done in
    ``metadata.Processing.nmf_decomposition`` (algorithm, number of components and
    why, masks used, Poisson scaling, the seed, relative error, convergence, passes
    over and reads of the data, iterations, laziness): the seed recorded there repeats the run.

    Parameters
    ----------
    signal : hyperspy.signal.BaseSignal
        Non-negative data (counts, intensities) with navigation axes. Integer data
        are converted to float32 block by block.
    n_components : int or "auto"
        ``"auto"`` chooses it with
        :func:`hyperspy_nanoml.learn.n_components.choose_n_components` on a row sample
        the engine keeps in its first pass (no extra pass); the evidence is stored as
        ``signal.learning_results.nmf_component_choice`` (a dict, so the signal can
        still be saved; :func:`component_choice_from` rebuilds the object with its
        ``plot()``). Engine numbers (passes, error) are in
        ``learning_results.nmf_info``.
    normalize_poissonian_noise : bool
        Fit ``X / sqrt(aG ⊗ bH)`` (row and column sums; Keenan & Kotula 2004, Surf.
        Interface Anal. 36:203) and undo it on the factors and loadings; done inside
        the engine's passes, no extra pass.
    signal_mask, navigation_mask : numpy.ndarray or BaseSignal, optional
        True where channels / navigation positions are *excluded* (HyperSpy's
        convention; a numpy navigation mask is in ``navigation_shape`` order as in
        ``decomposition``, a signal, or a flat array in array order, is also accepted).
    random_state : None, int, numpy.random.Generator or RandomState
        Makes the result deterministic; the seed used is recorded (drawn when None).
    max_iter, tol, max_passes, compression, hold_in_memory
        See :func:`hyperspy_nanoml.learn.nmf.nmf` (a lazy signal stored in at most
        1 GiB is read once and held in memory by default; ``hold_in_memory=False``
        reads it every pass, memory bounded by a few chunks).
    max_components : int, optional
        Upper bound for ``n_components="auto"``.
    show_progressbar : bool, optional
        Default: HyperSpy's preference.
    print_info : bool
        Print a summary like ``decomposition()`` does.
    masks_from_first_pass : hyperspy_nanoml.learn.nmf.FirstPassMasks, optional
        Decide the signal and navigation masks (flat, array order, True =
        excluded) from the NMF's first pass instead of giving them (no pass of
        their own; e.g. the direct beam and the vacuum of a SPED scan, see
        :func:`~hyperspy_nanoml.diffraction.workflow.sped_phase_map`). Not
        together with ``signal_mask`` / ``navigation_mask``.

    Returns
    -------
    None
        Like HyperSpy's ``decomposition()``: the results are in
        ``signal.learning_results``. The engine's
        :class:`~hyperspy_nanoml.learn.nmf.NMFResult` (passes, errors, the seed) as
        fitted on the kept rows (``W`` for the kept navigation positions, ``H`` over
        all channels, 0 on masked ones, both in the units of the data) is returned
        by :func:`nmf_result` ``(signal)``.

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs, hyperspy_nanoml
    >>> rng = np.random.default_rng(0)
    >>> s = hs.signals.Signal1D(rng.poisson(20 * rng.random((30, 2)) @ rng.random((2, 64))))
    >>> s.nmf_decomposition(2, random_state=0, print_info=False)
    >>> s.learning_results.factors.shape, s.metadata.Processing.nmf_decomposition.random_state
    ((64, 2), 0)
    """
    _check_signal(signal)
    n_components = check_n_components(n_components)
    X, nav_shape, sig_shape = unfold_data(signal)
    nav_mask = flat_mask(navigation_mask, signal, "navigation")
    sig_mask = flat_mask(signal_mask, signal, "signal")
    lazy = hasattr(X, "dask")
    res = nmf(
        X,  # masked rows are skipped inside the passes: no gathered copy
        n_components,
        row_mask=nav_mask,
        masks_from_first_pass=masks_from_first_pass,
        normalize_poissonian_noise=normalize_poissonian_noise,
        column_mask=sig_mask,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        compression=compression,
        max_passes=max_passes,
        max_components=max_components,
        show_progressbar=show_progressbar,
        hold_in_memory=hold_in_memory,
    )
    if masks_from_first_pass is not None:  # the masks the first pass decided
        sig_mask, nav_mask = res.column_mask, res.row_mask
    choice = res.component_choice
    k = res.n_components
    factors, loadings, explained, ratio = _learning_arrays(res, sig_mask, nav_mask)
    store_learning_results(
        signal,
        factors,
        loadings,
        res,
        choice=choice,
        explained_variance=explained,
        explained_variance_ratio=ratio,
        poissonian_noise_normalized=normalize_poissonian_noise,
        original_shape=(
            tuple(signal.data.shape) if len(nav_shape) > 1 or len(sig_shape) > 1 else None
        ),
        navigation_mask=nav_mask,
        signal_mask=sig_mask,
    )
    signal.metadata.set_item(
        "Processing.nmf_decomposition",
        _record(res, k, choice, normalize_poissonian_noise, nav_mask, sig_mask, lazy),
    )
    _RESULTS[signal.learning_results] = res
    if print_info:
        _print_info(res, k, choice, normalize_poissonian_noise)
