"""HyperSpy signal ↔ matrix: unfolding, masks, NaN expansion and ``learning_results``.

The one place that turns a signal into the ``(n_navigation, n_signal)`` matrix the
engines read (lazy data stay lazy: reshaped and rechunked, never loaded) and that
puts a decomposition back where HyperSpy's own ``decomposition()`` puts it.
"""

from __future__ import annotations

import numpy as np

from hyperspy_nanoml._compat import (
    check_navigation_mask,
    check_signal_mask,
)
from hyperspy_nanoml.learn.blocks import is_lazy

__all__ = [
    "component_choice_from",
    "decomposition_arrays",
    "flat_mask",
    "nan_expand",
    "store_learning_results",
    "unfold_data",
    "unfolded_shapes",
]

_BLOCK_BYTES = 64 * 2**20  # float32 bytes per row block of the unfolded lazy data
_MIN_BLOCK_BYTES = 8 * 2**20  # existing chunks at least this large are kept


def _array_axes(signal):
    """Array indices of the navigation and signal axes, each in array order."""
    am = signal.axes_manager
    nav = sorted(ax.index_in_array for ax in am.navigation_axes)
    sig = sorted(ax.index_in_array for ax in am.signal_axes)
    return nav, sig


def unfolded_shapes(signal) -> tuple[tuple, tuple]:
    """``(navigation shape, signal shape)`` of the data, each in array order."""
    nav, sig = _array_axes(signal)
    shape = signal.data.shape
    return tuple(shape[i] for i in nav), tuple(shape[i] for i in sig)


def unfold_data(signal):
    """Data as (n_navigation, n_signal) without loading lazy data; whole signals per chunk.

    For dask data the navigation axes after the first and all signal axes become one
    chunk, and the first navigation axis is chunked so one block holds about 64 MiB
    of float32: a few large tasks per pass instead of thousands. Chunks that already
    hold whole signals and 8-256 MiB (as float32) are kept.

    Returns ``(X, navigation_shape, signal_shape)``.
    """
    nav, sig = _array_axes(signal)
    nav_shape, sig_shape = unfolded_shapes(signal)
    n_nav = int(np.prod(nav_shape)) if nav_shape else 1
    n_sig = int(np.prod(sig_shape)) if sig_shape else 1
    data = signal.data
    order = nav + sig
    if order != list(range(data.ndim)):
        data = data.transpose(order)
    if is_lazy(signal):
        if nav_shape:
            inner = int(np.prod(nav_shape[1:])) if len(nav_shape) > 1 else 1
            row_bytes = inner * n_sig * 4
            whole = all(len(c) == 1 for c in data.chunks[1:])
            largest = max(data.chunks[0]) * row_bytes
            if whole and _MIN_BLOCK_BYTES <= largest <= 4 * _BLOCK_BYTES:
                chunks = None  # already whole signals in large blocks: no rechunk
                # (merging chunks costs a copy per block and pass; measured on the
                # 16k SPED zspy: 0.16 s per pass with its 2048-pattern chunks, 0.3 s
                # merged into 4096-pattern blocks)
            else:
                rows = max(1, _BLOCK_BYTES // max(1, row_bytes))
                chunks = (min(nav_shape[0], rows),) + (-1,) * (data.ndim - 1)
        else:
            chunks = (-1,) * data.ndim
        if chunks is not None:
            data = data.rechunk(chunks)
    return data.reshape(n_nav, n_sig), nav_shape, sig_shape


def flat_mask(mask, signal, kind: str):
    """HyperSpy mask (True = excluded) → flat bool in array order, or None.

    ``kind`` is ``"navigation"`` or ``"signal"``. A numpy navigation mask may be in
    HyperSpy's ``navigation_shape`` order (as ``decomposition`` reads it) or in array
    order; a mask signal holds its data in array order; a flat array is in array
    order.
    """
    if mask is None:
        return None
    from hyperspy.signal import BaseSignal

    if kind == "navigation":
        check_navigation_mask(signal, mask)
    else:
        check_signal_mask(signal, mask)
    nav_shape, sig_shape = unfolded_shapes(signal)
    array_shape = nav_shape if kind == "navigation" else sig_shape
    am = signal.axes_manager
    display_shape = am.navigation_shape if kind == "navigation" else am.signal_shape
    if isinstance(mask, BaseSignal):
        arr = mask.data
        if hasattr(arr, "compute"):
            arr = arr.compute()
        arr = np.asarray(arr)
        if arr.shape != array_shape:
            raise ValueError(
                f"the {kind} mask signal has data shape {arr.shape}, expected {array_shape} "
                f"(the {kind} shape of the signal in array order)"
            )
    else:
        arr = mask.compute() if hasattr(mask, "compute") else mask
        arr = np.asarray(arr)
        if kind == "navigation" and arr.shape == tuple(display_shape) and arr.ndim > 1:
            # HyperSpy's convention for numpy navigation masks: navigation_shape order
            arr = arr.T
        elif (
            kind == "signal"
            and arr.shape != array_shape
            and arr.shape == tuple(display_shape)
        ):
            arr = arr.T
        if arr.shape != array_shape and arr.size == int(np.prod(array_shape or (1,))):
            if arr.ndim != 1:
                raise ValueError(
                    f"the {kind} mask has shape {arr.shape}; expected {array_shape} "
                    f"(array order) or {tuple(display_shape)} (HyperSpy's {kind}_shape)"
                )
        elif arr.shape != array_shape:
            raise ValueError(
                f"the {kind} mask has shape {arr.shape}; expected {array_shape} "
                f"(array order) or {tuple(display_shape)} (HyperSpy's {kind}_shape)"
            )
    if arr.dtype != bool:
        if not np.isin(np.unique(arr), [0, 1]).all():
            raise ValueError(f"the {kind} mask must be boolean (True = excluded)")
        arr = arr.astype(bool)
    flat = arr.ravel()
    if flat.all():
        raise ValueError(
            f"All the data are masked: {kind}_mask excludes every position "
            "(True = excluded); change the mask."
        )
    return flat


def nan_expand(arr: np.ndarray, mask) -> np.ndarray:
    """Rows of ``arr`` put back at the unmasked places of ``mask``; NaN elsewhere."""
    if mask is None:
        return arr
    out = np.full((mask.size, arr.shape[1]), np.nan, dtype=arr.dtype)
    out[~mask] = arr
    return out


def store_learning_results(
    signal,
    factors,
    loadings,
    res,
    *,
    choice=None,
    random_state=None,
    explained_variance=None,
    explained_variance_ratio=None,
    poissonian_noise_normalized=False,
    original_shape=None,
    navigation_mask=None,
    signal_mask=None,
):
    """Put an NMF into ``signal.learning_results`` where HyperSpy's ``decomposition()``
    puts its results: ``factors`` (n_signal x k) and ``loadings`` (n_navigation x k),
    NaN on masked rows/columns; ``res`` is the engine's :class:`NMFResult`.

    The evidence for the number of components and the engine's record are kept as
    plain dicts, so HyperSpy can save ``learning_results`` to .hspy/.zspy. The one
    place that fills ``learning_results`` for every workflow.
    """
    from hyperspy.learn import LearningResults

    k = int(factors.shape[1])
    target = LearningResults()
    target.factors = factors
    target.loadings = loadings
    target.explained_variance = explained_variance
    target.explained_variance_ratio = explained_variance_ratio
    target.number_significant_components = k
    target.decomposition_algorithm = "hyperspy_nanoml NMF"
    target.poissonian_noise_normalized = bool(poissonian_noise_normalized)
    target.output_dimension = k
    target.unfolded = original_shape is not None
    if target.unfolded:
        target.original_shape = tuple(original_shape)
    target.centre = None
    target.mean = None
    target.unmixing_matrix = None
    target.bss_algorithm = None
    target.navigation_mask = navigation_mask
    target.signal_mask = signal_mask
    target.nmf_component_choice = None if choice is None else choice.as_dict()
    target.nmf_verification = None  # any previous verification is stale
    if random_state is None:
        random_state = getattr(res, "random_state", None)
    target.nmf_info = {
        "method": res.method,
        "relative_reconstruction_error": float(res.reconstruction_error),
        "converged": bool(res.converged),
        "passes": int(res.passes),
        "n_iter_compressed": int(res.n_iter_compressed),
        "n_iter_exact": int(res.n_iter_exact),
        "sketch_size": int(res.sketch_size or 0),
        "random_state": int(random_state) if random_state is not None else "_None_",
    }
    lr = signal.learning_results
    # forget attributes of a previous decomposition that this one does not set
    for name in ("bss_factors", "bss_loadings", "unmixing_matrix"):
        if hasattr(lr, name):
            setattr(lr, name, None)
    lr.__dict__.update(target.__dict__)


def component_choice_from(learning_results):
    """The ``ComponentChoice`` behind ``n_components="auto"`` (rebuilt), or None.

    ``nmf_decomposition`` stores the evidence in
    ``learning_results.nmf_component_choice`` as a plain dict (so the signal can be
    saved); this gives back the object with its ``plot()`` and ``reason``.
    """
    record = getattr(learning_results, "nmf_component_choice", None)
    if record is None:
        return None
    if not isinstance(record, dict) and not hasattr(record, "as_dictionary"):
        return record
    from hyperspy_nanoml.learn.n_components import ComponentChoice

    return ComponentChoice.from_dict(record)


def decomposition_arrays(signal):
    """``(factors (n_signal, k), loadings (n_navigation, k))`` of ``learning_results``
    as numpy arrays, checked against the signal's current shape."""
    lr = signal.learning_results
    if lr.factors is None or lr.loadings is None:
        raise ValueError(
            "the signal has no decomposition: run s.nmf_decomposition(...) first"
        )
    factors = np.asarray(
        lr.factors.compute() if hasattr(lr.factors, "compute") else lr.factors
    )
    loadings = np.asarray(
        lr.loadings.compute() if hasattr(lr.loadings, "compute") else lr.loadings
    )
    nav_shape, sig_shape = unfolded_shapes(signal)
    n_nav = int(np.prod(nav_shape)) if nav_shape else 1
    n_sig = int(np.prod(sig_shape)) if sig_shape else 1
    if factors.shape[0] != n_sig or loadings.shape[0] != n_nav:
        raise ValueError(
            f"the decomposition does not fit this signal any more: factors cover "
            f"{factors.shape[0]} channels and loadings {loadings.shape[0]} positions, the "
            f"signal has {n_sig} and {n_nav} (was it cropped, binned or sliced after "
            "the decomposition?). Run s.nmf_decomposition(...) again on this signal."
        )
    return factors, loadings
