"""Phase maps and phase patterns of a SPED decomposition in pyxem's conventions."""

from __future__ import annotations

import numpy as np

__all__ = ["phase_results"]


def phase_results(result, *, normalize: bool = True, full_resolution: bool = True):
    """Phase patterns as pyxem diffraction signals and phase maps with the scan's axes.

    Parameters
    ----------
    result : signal
        The output of :func:`~hyperspy_nanoml.diffraction.workflow.sped_phase_map`
        (or any signal whose ``learning_results`` hold an NMF of patterns).
    normalize : bool
        Scale every map to maximum 1 and its pattern by the inverse (NMF fixes
        loadings only up to a scale per component), so the maps read as phase
        fractions of the brightest position and the patterns in counts there.
    full_resolution : bool
        When the fit ran on binned patterns (sparse counts, ``binning``), return
        the patterns at the input's resolution that go with the maps
        (:mod:`~hyperspy_nanoml.diffraction.full_resolution`, kept by
        ``sped_phase_map``); ``False``: the binned patterns of the fit.

    Returns
    -------
    patterns : pyxem ``Diffraction2D`` (the input's class, eager)
        One pattern per component (navigation axis ``phase``), on the input's
        reciprocal axes (names, scale, offset, units such as Å⁻¹); NaN on the
        masked direct beam (at full resolution: the pixels of the masked bins).
    maps : hyperspy ``Signal2D`` (or ``Signal1D`` for a line scan)
        One map per component (navigation axis ``phase``), on the scan's axes
        (names, scale, offset, units); NaN at excluded (vacuum) positions.

    Examples
    --------
    >>> from hyperspy_nanoml.diffraction.calibration import phase_results
    >>> patterns, maps = phase_results(result)  # doctest: +SKIP
    >>> patterns.axes_manager.signal_axes[0].units  # doctest: +SKIP
    'Å⁻¹'
    """
    lr = getattr(result, "learning_results", None)
    if lr is None or lr.factors is None or lr.loadings is None:
        raise ValueError(
            "the signal holds no decomposition: run sped_phase_map (or "
            "nmf_decomposition) first"
        )
    factors = np.asarray(lr.factors, dtype=np.float64)  # pixels x k
    loadings = np.asarray(lr.loadings, dtype=np.float64)  # positions x k
    k = factors.shape[1]
    scale = np.ones(k)
    if normalize:
        with np.errstate(invalid="ignore"):
            peak = np.nanmax(loadings, axis=0)
        scale = np.where(np.isfinite(peak) & (peak > 0), peak, 1.0)
    am = result.axes_manager
    sig_shape = tuple(int(n) for n in reversed(am.signal_shape))
    nav_shape = tuple(int(n) for n in reversed(am.navigation_shape))
    pattern_data = (factors * scale).T.reshape((k,) + sig_shape)
    map_data = (loadings / scale).T.reshape((k,) + nav_shape)
    signal_axes = axes_calibration(am.signal_axes)
    record = result.metadata.get_item("Processing.sped_phase_map")
    if (
        full_resolution
        and record is not None
        and record.has_item("full_resolution_patterns")
    ):
        pattern_data = _full_resolution(record, pattern_data, scale)
        signal_axes = list(record.full_resolution_axes)

    cls = type(result)
    if getattr(result, "_lazy", False):  # the eager twin: results are small
        cls = next(c for c in cls.__mro__ if not getattr(c, "_lazy", False))
    patterns = cls(pattern_data.astype(np.float32))
    _copy_axes(signal_axes, patterns.axes_manager.signal_axes)
    import hyperspy.api as hs

    maps = (hs.signals.Signal2D if len(nav_shape) == 2 else hs.signals.Signal1D)(
        map_data.astype(np.float32)
    )
    _copy_axes(axes_calibration(am.navigation_axes), maps.axes_manager.signal_axes)
    for s, what in ((patterns, "pattern"), (maps, "map")):
        axis = s.axes_manager.navigation_axes[0]
        axis.name, axis.units = "phase", ""
        s.metadata.General.title = f"phase {what}s"
    record = {"normalize": bool(normalize), "map_peaks": [float(v) for v in scale]}
    patterns.metadata.set_item("Processing.phase_results", record)
    maps.metadata.set_item("Processing.phase_results", record)
    return patterns, maps


def _full_resolution(record, binned, scale):
    """The full-resolution patterns of ``record`` scaled like the binned ones, NaN on
    the pixels of the masked (NaN) bins."""
    full = np.asarray(record.full_resolution_patterns, dtype=np.float64)
    full = full * scale[:, None, None]
    factor = int(record.binning)
    masked = np.isnan(binned[0]).repeat(factor, axis=0).repeat(factor, axis=1)
    rows, cols = masked.shape
    full[:, :rows, :cols][:, masked] = np.nan
    return full


def axes_calibration(axes):
    """``name``, ``scale``, ``offset``, ``units`` of each axis, as plain dicts (storable
    in metadata, e.g. with the full-resolution patterns of ``sped_phase_map``)."""
    return [
        {"name": a.name, "scale": a.scale, "offset": a.offset, "units": a.units}
        for a in axes
    ]


def _copy_axes(source, target):
    """Axis calibration from ``source`` (dicts with name, scale, offset, units)."""
    for a, b in zip(source, target):
        b.name, b.scale, b.offset, b.units = a["name"], a["scale"], a["offset"], a["units"]
