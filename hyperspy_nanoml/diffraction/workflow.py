"""One call from a (lazy) SPED file to phase maps, phase patterns and a report."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["sped_phase_map"]

_READABLE = (".zspy", ".hspy", ".hdf5", ".h5", ".blo", ".mib")


def _load(data, lazy):
    """A signal from a signal or a path (``hs.load(path, lazy=lazy)``)."""
    from hyperspy.signal import BaseSignal

    if isinstance(data, BaseSignal):
        return data
    if not isinstance(data, (str, Path)):
        raise TypeError(
            "data must be a HyperSpy/pyxem signal or the path of a .zspy/.hspy/.blo/.mib "
            f"file, got {type(data).__name__}"
        )
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.suffix.lower() not in _READABLE:
        raise ValueError(
            f"{path.name}: expected a {', '.join(_READABLE)} file (any format HyperSpy "
            "reads works if you load it yourself and pass the signal)"
        )
    import hyperspy.api as hs

    loaded = hs.load(path, lazy=lazy)
    if isinstance(loaded, list):
        candidates = [s for s in loaded if s.axes_manager.signal_dimension == 2]
        if len(candidates) != 1:
            raise ValueError(
                f"{path.name} holds {len(loaded)} signals, {len(candidates)} of them with "
                "2 signal dimensions; load the one you want and pass it"
            )
        loaded = candidates[0]
    if loaded.axes_manager.signal_dimension != 2 and loaded.data.ndim == 4:
        loaded = loaded.as_signal2D((2, 3))
    return loaded


def _choice_reason(learning_results):
    """Why this number of components (the evidence kept by ``nmf_decomposition``)."""
    from hyperspy_nanoml.learn.signal_matrix import component_choice_from

    choice = component_choice_from(learning_results)
    return "given" if choice is None else choice.reason


def sped_phase_map(
    data,
    n_components="auto",
    *,
    lazy=True,
    mask_direct_beam=True,
    beam_radius=None,
    binning="auto",
    exclude_vacuum=True,
    vacuum_threshold=0.1,
    normalize_poissonian_noise=True,
    random_state=None,
    max_components=None,
    report=None,
    n_restarts=3,
    show_progressbar=None,
    print_info=False,
    **nmf_kwargs,
):
    """Phase maps and phase patterns of a SPED/4D-STEM scan by NMF, in one call.

    Steps (pyxem demo 1 style):

    1. load ``data`` if it is a path (``hs.load(path, lazy=lazy)``);
    2. :func:`~hyperspy_nanoml.diffraction.preprocess.preprocess_sped`: reciprocal
       binning (by default only of sparse counts, below 0.25 electrons per pixel
       per pattern: :func:`~hyperspy_nanoml.diffraction.preprocess.choose_binning`),
       float32 block by block, direct beam found and masked,
       and patterns without diffracted intensity (vacuum, holes) found, all in
       one pass over the data. For lazy unbinned data this pass is the NMF's
       first: the mean pattern (beam) and every pattern's ring sums (vacuum
       test) are taken there and the masks decided before its second pass
       (:class:`~hyperspy_nanoml.learn.nmf.FirstPassMasks`), so the whole call
       reads the data as often as the NMF alone (4 times by default). If the
       beam lies too far from the pattern centre for that test, or the counts
       are sparse enough to bin, that pass's statistics serve the preprocessing
       and the NMF starts again (one more read; the off-centre vacuum test
       takes one more);
    3. the vacuum patterns are excluded from the fit (their loadings are NaN,
       as for any HyperSpy navigation mask);
    4. :func:`~hyperspy_nanoml.learn.decomposition.nmf_decomposition` with the
       beam as ``signal_mask``, Poisson normalisation and the number of
       components chosen automatically (evidence kept), both inside the NMF's
       own passes;
    5. if ``report`` is a path: verification (stability over ``n_restarts``
       random restarts, residual map, explained variance) written as a PDF.

    The arguments (including the report's folder) are checked before any work;
    if the report still fails (disk full, ...), the finished NMF is returned with
    a warning and the error in ``metadata.Processing.sped_phase_map.report_error``.

    Parameters
    ----------
    data : signal or str or Path
        A signal with 2 signal dimensions and a scan, or a ``.zspy``, ``.hspy``,
        ``.blo`` or ``.mib`` file.
    n_components : int or "auto"
    lazy : bool
        How to load a path (ignored for a signal, whose laziness is kept).
    mask_direct_beam, beam_radius, binning :
        See :func:`~hyperspy_nanoml.diffraction.preprocess.preprocess_sped`.
    exclude_vacuum : bool
        Leave out of the fit the patterns that are the direct beam alone: a
        Poisson test of the counts outside the beam against the beam's own tail,
        pooled over scan neighbours, with nothing excluded when the emptiest
        patterns hold Bragg spots (:mod:`hyperspy_nanoml.diffraction.vacuum`);
        a diffracting grain is never dropped. The number excluded, their map
        (NaN loadings) and the evidence go to ``metadata.Processing.
        sped_phase_map`` (``vacuum_patterns``, ``vacuum_test``).
    vacuum_threshold : float
        Family-wise level of that test, in (0, 1): the chance that a scan keeps
        any of its vacuum patterns in the fit.
    normalize_poissonian_noise : bool
        Poisson (Keenan-Kotula) scaling inside the NMF.
    random_state : None, int or numpy.random.Generator
        The seed used is recorded in ``metadata.Processing.nmf_decomposition``.
    max_components : int, optional
        Upper bound of the automatic choice.
    report : str or Path, optional
        Write the verification report (PDF) there (its folder must exist).
    n_restarts : int
        Restarts of the stability check of the report (at least 1).
    show_progressbar : bool, optional
    print_info : bool
        Print the decomposition summary.
    **nmf_kwargs
        Passed to ``nmf_decomposition`` (``max_iter``, ``tol``, ...).

    Returns
    -------
    signal
        The preprocessed signal (float32, lazy if the input is lazy) with
        ``learning_results`` filled: loadings = phase maps, factors = phase
        patterns (NaN on the masked beam; binned when the fit was), ``learning_results.
        nmf_component_choice`` = the evidence for the number of components.
        ``metadata.Processing.sped_phase_map`` records every step (with the
        seconds spent in preprocessing, NMF and report; ``binning``,
        ``binning_source``, ``binning_reason``; after a binned fit also the phase
        patterns at the input's resolution, ``full_resolution_patterns``, one more
        pass). :func:`~hyperspy_nanoml.diffraction.calibration.phase_results`
        gives the calibrated patterns (full resolution) and maps.

    Examples
    --------
    >>> from hyperspy_nanoml.diffraction.workflow import sped_phase_map
    >>> s = sped_phase_map("scan.zspy", random_state=0, report="report.pdf")  # doctest: +SKIP
    >>> s.plot_decomposition_results()  # doctest: +SKIP
    """
    import hyperspy.api as hs

    from hyperspy_nanoml._validation import (
        check_n_components,
        check_output_path,
        check_positive_int,
        resolve_random_state,
    )
    from hyperspy_nanoml.diffraction.preprocess import preprocess_sped
    from hyperspy_nanoml.learn.decomposition import nmf_decomposition

    # everything that can be checked is checked before the long work
    n_components = check_n_components(n_components)
    if report is not None:
        report = check_output_path(report, ".pdf")
        n_restarts = check_positive_int(n_restarts, "n_restarts")
    _, seed = resolve_random_state(random_state)
    if max_components is not None:
        max_components = check_positive_int(max_components, "max_components")
    signal = _load(data, lazy)
    stopped_passes, statistics = 0, None
    if _beam_and_vacuum_in_nmf(
        signal, binning, mask_direct_beam, exclude_vacuum, nmf_kwargs
    ):
        # lazy data: the beam and the vacuum are decided from the NMF's own first
        # pass (no pass of their own); the old path below when that cannot be done
        try:
            processed, info = _phase_map_one_read(
                data,
                signal,
                n_components,
                binning=binning,
                mask_direct_beam=mask_direct_beam,
                beam_radius=beam_radius,
                exclude_vacuum=exclude_vacuum,
                vacuum_threshold=vacuum_threshold,
                normalize_poissonian_noise=normalize_poissonian_noise,
                seed=seed if seed is not None else random_state,
                max_components=max_components,
                show_progressbar=show_progressbar,
                print_info=print_info,
                nmf_kwargs=nmf_kwargs,
            )
        except _OwnPassNeeded as stop:
            # the NMF's first pass, stopped (the beam off centre, or counts sparse
            # enough to bin): its statistics serve the preprocessing below
            statistics = stop.statistics
            stopped_passes = 1
        else:
            return _finish(processed, info, report, n_restarts, seed, show_progressbar)
    started = time.perf_counter()
    processed, signal_mask, info = preprocess_sped(
        signal,
        mask_direct_beam=mask_direct_beam,
        beam_radius=beam_radius,
        binning=binning,
        exclude_vacuum=exclude_vacuum,
        vacuum_threshold=vacuum_threshold,
        show_progressbar=show_progressbar,
        statistics=statistics,
    )
    info["source"] = str(data) if isinstance(data, (str, Path)) else "signal"
    info["passes_over_data"] += stopped_passes
    navigation_mask = info.pop("vacuum_mask", None)
    if navigation_mask is not None:
        if navigation_mask.all():
            raise ValueError("every pattern looks like vacuum; lower vacuum_threshold")
        if not navigation_mask.any():
            navigation_mask = None
    # masks as signals: unambiguous axis order for any pattern or scan shape
    sig_mask_signal = None if signal_mask is None else hs.signals.Signal2D(signal_mask)
    nav_mask_signal = None
    if navigation_mask is not None:
        nav_mask_signal = hs.signals.BaseSignal(navigation_mask).T
    info["seconds_preprocessing"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    fitted = _nmf_input(signal, processed, info["binning"])
    nmf_decomposition(
        fitted,
        n_components,
        normalize_poissonian_noise=normalize_poissonian_noise,
        signal_mask=sig_mask_signal,
        navigation_mask=nav_mask_signal,
        random_state=seed if seed is not None else random_state,
        max_components=max_components,
        show_progressbar=show_progressbar,
        print_info=print_info,
        **nmf_kwargs,
    )
    if fitted is not processed:  # the results belong to the returned signal
        processed.learning_results = fitted.learning_results  # same object
        processed.metadata.set_item(
            "Processing.nmf_decomposition",
            fitted.metadata.get_item("Processing.nmf_decomposition"),
        )
    info["seconds_nmf"] = round(time.perf_counter() - started, 3)
    if info["binning"] > 1:
        _add_full_resolution(signal, processed, info)
    return _finish(processed, info, report, n_restarts, seed, show_progressbar)


def _add_full_resolution(signal, processed, info):
    """The phase patterns at the input's resolution for the maps of a binned fit
    (one more pass), kept in ``info`` for :func:`~hyperspy_nanoml.diffraction.
    calibration.phase_results`."""
    from hyperspy_nanoml.diffraction.calibration import axes_calibration
    from hyperspy_nanoml.diffraction.full_resolution import full_resolution_patterns

    started = time.perf_counter()
    patterns, passes = full_resolution_patterns(signal, processed.learning_results.loadings)
    info["full_resolution_patterns"] = patterns
    info["full_resolution_axes"] = axes_calibration(signal.axes_manager.signal_axes)
    info["passes_over_data"] += passes
    info["seconds_full_resolution"] = round(time.perf_counter() - started, 3)


def _finish(processed, info, report, n_restarts, seed, show_progressbar):
    """Record what was done, write the report if asked (never losing the NMF)."""
    lr = processed.learning_results
    record = processed.metadata.get_item("Processing.nmf_decomposition", {})
    if hasattr(record, "as_dictionary"):
        record = record.as_dictionary()
    info.update(
        n_components=int(lr.factors.shape[1]),
        n_components_choice=_choice_reason(lr),
        normalize_poissonian_noise=bool(record.get("normalize_poissonian_noise")),
        relative_reconstruction_error=float(
            record.get("relative_reconstruction_error", np.nan)
        ),
        random_state=record.get("random_state"),
        passes_over_data=int(record.get("passes_over_data", 0))
        + int(info["passes_over_data"]),
    )
    if report is not None:
        started = time.perf_counter()
        try:
            info["report"] = str(
                _write_report(processed, report, n_restarts, seed, show_progressbar)
            )
        except Exception as error:  # never lose the finished NMF to a failed report
            info["report_error"] = f"{type(error).__name__}: {error}"
            warnings.warn(
                f"the NMF finished but its report could not be written to {report} "
                f"({info['report_error']}); the result is returned without it. Write it "
                "later with hyperspy_nanoml.report.nmf_report.save_verification_report"
                "(result, path).",
                RuntimeWarning,
                stacklevel=2,
            )
        info["seconds_report"] = round(time.perf_counter() - started, 3)
    processed.metadata.set_item(
        "Processing.sped_phase_map",
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in info.items()},
    )
    return processed


class _OwnPassNeeded(Exception):
    """The NMF's first pass cannot decide alone: the vacuum test cannot use rings
    around the pattern centre (beam off centre), or the counts are to be binned.
    ``statistics`` = ``(mean pattern, ring sums or None)`` of that pass, for
    :func:`~hyperspy_nanoml.diffraction.preprocess.preprocess_sped`."""

    def __init__(self, statistics):
        super().__init__("the NMF's first pass cannot decide the masks alone")
        self.statistics = statistics


def _beam_and_vacuum_in_nmf(signal, binning, mask_direct_beam, exclude_vacuum, nmf_kwargs):
    from hyperspy_nanoml.learn.blocks import is_lazy

    return (
        is_lazy(signal)
        and (binning == 1 or (isinstance(binning, str) and binning == "auto"))
        and (mask_direct_beam or exclude_vacuum)
        and nmf_kwargs.get("compression", "auto") is not False
        and signal.axes_manager.navigation_dimension > 0
    )


def _phase_map_one_read(
    data,
    signal,
    n_components,
    *,
    binning,
    mask_direct_beam,
    beam_radius,
    exclude_vacuum,
    vacuum_threshold,
    normalize_poissonian_noise,
    seed,
    max_components,
    show_progressbar,
    print_info,
    nmf_kwargs,
):
    """Beam, vacuum and NMF with the beam and vacuum decided from the NMF's first pass.

    The first pass of the NMF reads every pattern once anyway (column sums = the
    mean pattern, the sketch); it also takes each pattern's ring x direction
    sums around the pattern centre (:func:`~hyperspy_nanoml.diffraction.vacuum.
    ring_sector_sums`). After it, the beam is found in the mean pattern and the
    vacuum test runs on those sums (:func:`~hyperspy_nanoml.diffraction.
    preprocess.beam_and_vacuum`); the NMF's second pass then reads only the
    kept patterns with the beam masked and gathers its exact statistics
    (:class:`~hyperspy_nanoml.learn.nmf.FirstPassMasks`). Returns
    ``(processed, info)``; raises :class:`_OwnPassNeeded` with the pass's
    statistics when the beam lies too far from the centre for those rings or,
    with ``binning="auto"``, the mean pattern says the counts are sparse enough
    to bin (:func:`~hyperspy_nanoml.diffraction.preprocess.choose_binning`): the
    caller then takes the preprocessing path, with those statistics.
    """
    from hyperspy_nanoml.diffraction.preprocess import (
        as_float32,
        beam_and_vacuum,
        check_binning,
        check_sped_options,
        choose_binning,
        looks_like_counts,
    )
    from hyperspy_nanoml.diffraction.vacuum import RingSectors, ring_sector_sums
    from hyperspy_nanoml.learn.decomposition import nmf_decomposition
    from hyperspy_nanoml.learn.nmf import FirstPassMasks

    started = time.perf_counter()
    # the checks of preprocess_sped, before any read
    check_sped_options(signal, beam_radius, exclude_vacuum, vacuum_threshold)
    check_binning(signal, binning)
    # the first patterns only (one block), before the NMF's first pass
    counts = binning == "auto" and looks_like_counts(signal)
    processed = as_float32(signal)  # lazy: nothing computed
    shape = tuple(int(v) for v in processed.data.shape[-2:])
    nav_shape = tuple(int(v) for v in processed.data.shape[:-2])
    n_rows = int(np.prod(nav_shape))
    rings = RingSectors.around(shape) if exclude_vacuum else None
    info = {
        "binning": 1,
        "binning_source": "given",
        "dtype_in": str(signal.data.dtype),
        "dtype_out": "float32",
        "lazy": True,
        "pattern_shape": shape,
        "direct_beam_masked": bool(mask_direct_beam),
        "passes_over_data": 0,
    }

    def row_statistics(block):
        if rings is None:
            return np.zeros((block.shape[0], 0), dtype=np.float32)
        return ring_sector_sums(np.asarray(block).reshape((-1,) + shape), rings)

    def decide(column_sums, statistics):
        mean = (np.asarray(column_sums, dtype=np.float64) / n_rows).reshape(shape)
        sums = statistics.reshape(nav_shape + statistics.shape[1:]) if rings else None
        if binning == "auto":
            factor, info["binning_reason"] = choose_binning(mean, counts)
            if factor > 1:
                raise _OwnPassNeeded((mean, sums))
            info["binning_source"] = "auto"
        signal_mask = beam_and_vacuum(
            processed,
            mean,
            sums,
            rings,
            info,
            mask_direct_beam=mask_direct_beam,
            beam_radius=beam_radius,
            exclude_vacuum=exclude_vacuum,
            vacuum_threshold=vacuum_threshold,
        )
        if exclude_vacuum and "vacuum_mask" not in info:
            raise _OwnPassNeeded((mean, sums))
        vacuum = info.get("vacuum_mask")
        if vacuum is not None and vacuum.all():
            raise ValueError("every pattern looks like vacuum; lower vacuum_threshold")
        return (
            None if signal_mask is None else signal_mask.ravel(),
            None if vacuum is None or not vacuum.any() else vacuum.ravel(),
        )

    fitted = _nmf_input(signal, processed, 1)
    nmf_decomposition(
        fitted,
        n_components,
        normalize_poissonian_noise=normalize_poissonian_noise,
        random_state=seed,
        max_components=max_components,
        show_progressbar=show_progressbar,
        print_info=print_info,
        masks_from_first_pass=FirstPassMasks(row_statistics, decide),
        **nmf_kwargs,
    )
    if fitted is not processed:
        processed.learning_results = fitted.learning_results  # same object
        processed.metadata.set_item(
            "Processing.nmf_decomposition",
            fitted.metadata.get_item("Processing.nmf_decomposition"),
        )
    info["source"] = str(data) if isinstance(data, (str, Path)) else "signal"
    info["beam_and_vacuum"] = "decided from the NMF's first pass (no pass of their own)"
    info.pop("vacuum_mask", None)
    info["seconds_preprocessing"] = 0.0
    info["seconds_nmf"] = round(time.perf_counter() - started, 3)
    processed.metadata.set_item(
        "Processing.preprocess_sped",
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in info.items()},
    )
    return processed, info


def _nmf_input(signal, processed, binning):
    """The signal the NMF reads: for lazy unbinned data, the file's own blocks.

    The NMF converts every slice of a block to float32 inside its passes (with the
    masking and scaling), so giving it the raw (e.g. uint16) blocks saves, in every
    pass, the float32 copy of each block that ``processed`` (a lazy ``astype``)
    would make, and its rechunk. Same values, same result. Eager data, binned
    data and float32 files are fitted as ``processed``.
    """
    from hyperspy_nanoml._compat import deepcopy_with_new_data
    from hyperspy_nanoml.learn.blocks import is_lazy

    raw = signal.data
    if (
        binning != 1
        or not is_lazy(processed)
        or raw.dtype == processed.data.dtype
        or tuple(raw.shape) != tuple(processed.data.shape)
    ):
        return processed
    return deepcopy_with_new_data(processed, raw)


def _write_report(processed, report, n_restarts, seed, show_progressbar):
    from hyperspy_nanoml.learn.verification import verify_nmf
    from hyperspy_nanoml.report.nmf_report import save_verification_report

    verification = verify_nmf(
        processed,
        n_restarts=n_restarts,
        random_state=0 if seed is None else int(seed),
        show_progressbar=show_progressbar,
    )
    return save_verification_report(verification, report, notes=_report_notes(processed))


def _report_notes(processed):
    """What was done to the patterns before the fit, for the report's first page."""
    record = processed.metadata.get_item("Processing.preprocess_sped")
    if record is None:
        return []
    get = record.get_item
    f = int(get("binning", 1))
    notes = [
        f"patterns binned {f} x {f} for the fit ({get('binning_reason', 'as given')}); "
        "phase_results gives the patterns at full resolution"
        if f > 1
        else f"patterns not binned ({get('binning_reason', 'as given')})"
    ]
    if get("direct_beam_masked", False):
        x, y = get("direct_beam_centre")
        notes.append(
            f"direct beam masked: radius {get('direct_beam_radius'):.3g} px "
            f"({get('direct_beam_radius_calibrated'):.3g} {get('units')}) at "
            f"({x:.2f}, {y:.2f}) px, {get('masked_pixels')} px of each pattern"
        )
    if record.has_item("vacuum_patterns"):
        notes.append(f"vacuum patterns left out of the fit: {get('vacuum_patterns')}")
    return notes
