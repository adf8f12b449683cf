"""Preparing scanning (precession) electron diffraction data for NMF.

Every function works on eager and lazy signals; lazy input gives lazy output
(dask arrays mapped block by block, never computed whole). The only pass over
the data is the mean pattern that :func:`find_direct_beam` needs.

Pixel coordinates are ``(x, y) = (column, row)`` of the pattern, the centre of
pixel ``(row, col)`` being at ``(col, row)``. Masks follow HyperSpy's
convention for ``decomposition(signal_mask=...)``: ``True`` = excluded.

Poisson normalisation is not done here: it is an option of the NMF
(``nmf_decomposition(normalize_poissonian_noise=True)``).

No background is subtracted, on purpose. The diffuse background of a phase
(inelastic and thermal diffuse scattering) scales with the phase and the
thickness like its Bragg spots, so it is part of that phase's pattern and the
NMF keeps it there without an extra component; subtracting an estimate per
pattern makes counts negative or clipped, breaks their Poisson statistics
(which the Poisson scaling and the automatic number of components rely on) and
leaves a residual that varies from pattern to pattern. Measured
(``benchmarks/bench_sped_pyxem.py``, 32 x 32 generated patterns of 64 x 64 px,
3 phases, 2000 counts): pyxem 0.21's ``subtract_diffraction_background`` with
its default ``"median kernel"`` (footprint 19) estimates the spots of noise-free
patterns better (relative error 0.022, against 0.065 for leaving the background
in) but costs a per-pattern filter pass (~4 s for these 1024 patterns), and on the counts the workflow
then chooses 4 components for 3 phases (grain map ARI 0.876); without
subtraction it chooses 3 (ARI 0.990). ``"difference of gaussians"`` (1, 55)
removes everything on these patterns (error 1.0, 10 components). pyxem's
``"radial median"`` and ``"h-dome"`` need a centre or a height, not compared.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "as_float32",
    "beam_and_vacuum",
    "bin_reciprocal",
    "check_binning",
    "check_sped_options",
    "check_sped_signal",
    "choose_binning",
    "direct_beam_mask",
    "find_direct_beam",
    "looks_like_counts",
    "mean_pattern",
    "preprocess_sped",
    "vacuum_mask",
]


def _is_lazy(signal):
    from hyperspy_nanoml.learn.blocks import is_lazy

    return is_lazy(signal)


def check_sped_options(signal, beam_radius, exclude_vacuum, vacuum_threshold):
    """The checks of :func:`preprocess_sped` that need no data: the signal, the beam
    radius and the vacuum threshold (raised before any read).

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> s = hs.signals.Signal2D(np.zeros((2, 2, 8, 8)))
    >>> check_sped_options(s, -1.0, False, 0.1)
    Traceback (most recent call last):
    ...
    ValueError: beam_radius must be a positive number of pixels, got -1.0
    """
    check_sped_signal(signal, what="preprocess_sped")
    if beam_radius is not None and not (np.isfinite(beam_radius) and beam_radius > 0):
        raise ValueError(
            f"beam_radius must be a positive number of pixels, got {beam_radius!r}"
        )
    if exclude_vacuum and not 0 < vacuum_threshold < 1:
        raise ValueError(
            f"vacuum_threshold must be between 0 and 1, got {vacuum_threshold!r}"
        )


def check_sped_signal(signal, *, need_navigation=True, what="this function"):
    """Raise a clear error unless ``signal`` is a scan of real-valued 2-D patterns."""
    from hyperspy.signal import BaseSignal

    if not isinstance(signal, BaseSignal):
        raise TypeError(
            f"{what} needs a HyperSpy/pyxem signal (e.g. ElectronDiffraction2D), "
            f"got {type(signal).__name__}"
        )
    am = signal.axes_manager
    if am.signal_dimension != 2:
        raise ValueError(
            f"{what} needs diffraction patterns, i.e. a signal with 2 signal dimensions "
            f"(a 4D-STEM/SPED dataset); {signal} has signal dimension "
            f"{am.signal_dimension}. Use `s.as_signal2D((2, 3))` or "
            "`s.set_signal_type('electron_diffraction')` on a 4D array first."
        )
    if need_navigation and am.navigation_dimension == 0:
        raise ValueError(
            f"{what} needs a scan (navigation axes); {signal} is a single pattern "
            "with no navigation axes, there is nothing to decompose"
        )
    if not (
        np.issubdtype(signal.data.dtype, np.integer)
        or np.issubdtype(signal.data.dtype, np.floating)
    ):
        raise TypeError(
            f"{what} needs real-valued counts, got data of dtype {signal.data.dtype}"
        )


def _signal_shape(signal_or_shape):
    """Signal shape in array order (rows, columns)."""
    if hasattr(signal_or_shape, "axes_manager"):
        am = signal_or_shape.axes_manager
        if am.signal_dimension != 2:
            raise ValueError(
                f"need a signal with 2 signal dimensions, got {am.signal_dimension}"
            )
        return tuple(int(n) for n in reversed(am.signal_shape))
    shape = tuple(int(n) for n in signal_or_shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(
            f"a pattern shape must be two positive ints, got {signal_or_shape!r}"
        )
    return shape


def _compute(arrays, show_progressbar):
    """Compute dask arrays together (one pass over the shared data), with a progress bar."""
    import dask

    from hyperspy_nanoml._progress import show_progressbar_default

    if show_progressbar_default(show_progressbar):
        from dask.diagnostics import ProgressBar

        with ProgressBar():
            return [np.asarray(a) for a in dask.compute(*arrays)]
    return [np.asarray(a) for a in dask.compute(*arrays)]


def _outer_weights(shape, radius):
    """float32 weights: 1 farther than ``radius`` from the pattern centre, else 0."""
    rows, cols = shape
    yy, xx = np.indices(shape, dtype=np.float64)
    return (np.hypot(xx - cols / 2.0, yy - rows / 2.0) > radius).astype(np.float32)


def _mean_and_outer(signal, outer_radius=None, show_progressbar=None):
    """Mean pattern and, optionally, every pattern's sum outside a central disk; one pass."""
    data = signal.data
    nav_axes = tuple(range(data.ndim - 2))
    weights = (
        None if outer_radius is None else _outer_weights(data.shape[-2:], outer_radius)
    )
    if not nav_axes:
        mean = np.asarray(data, dtype=np.float64)
        outer = None if weights is None else np.einsum("ij,ij->", mean, weights)
        return mean, outer
    if _is_lazy(signal):
        import dask.array as da

        parts = [da.mean(data, axis=nav_axes, dtype=np.float64)]
        if weights is not None:
            parts.append((data * weights).sum(axis=(-2, -1), dtype=np.float64))
        results = _compute(parts, show_progressbar)
        return results[0], (results[1] if weights is not None else None)
    mean = np.asarray(data.mean(axis=nav_axes, dtype=np.float64))
    outer = (
        None
        if weights is None
        else np.einsum("...ij,ij->...", data, weights, dtype=np.float64)
    )
    return mean, outer


def mean_pattern(signal, *, show_progressbar=None):
    """The mean diffraction pattern (float64, array order), one pass over the data."""
    check_sped_signal(signal, need_navigation=False, what="mean_pattern")
    return _mean_and_outer(signal, None, show_progressbar)[0]


def _beam_from_mean(mean, min_contrast=5.0):
    """(centre (x, y), mask radius, half-maximum radius) from a mean pattern."""
    mean = np.asarray(mean, dtype=np.float64)
    if not np.all(np.isfinite(mean)):
        raise ValueError("the mean pattern holds NaN or inf values; cannot find the beam")
    rows, cols = mean.shape
    background = float(np.median(mean))
    smooth = ndimage.gaussian_filter(mean, 1.0)
    pr, pc = np.unravel_index(np.argmax(smooth), smooth.shape)
    window = mean[max(pr - 1, 0) : pr + 2, max(pc - 1, 0) : pc + 2]
    level = float(window.max()) - background
    if not level > 0:
        raise ValueError(
            "direct beam not found: the mean pattern is flat (max = median = "
            f"{background:.3g})"
        )
    above = mean - background > 0.5 * level
    labels, _ = ndimage.label(above)
    blob = labels == labels[pr, pc] if labels[pr, pc] else None
    if blob is None:
        # the smoothed maximum fell beside the raw half-maximum region
        rr, cc = np.unravel_index(np.argmax(np.where(above, mean, -np.inf)), mean.shape)
        blob = labels == labels[rr, cc]
    area = int(blob.sum())
    r_half = float(np.sqrt(area / np.pi))
    blob_rows, blob_cols = np.nonzero(blob)
    if (
        area > 0.1 * mean.size
        or blob_rows.min() == 0
        or blob_cols.min() == 0
        or blob_rows.max() == rows - 1
        or blob_cols.max() == cols - 1
    ):
        raise ValueError(
            "direct beam not found: the brightest region of the mean pattern "
            f"({area} px above half maximum) touches the pattern edge or covers more "
            "than 10 % of it; pass mask_direct_beam=False or give the beam yourself "
            "with direct_beam_mask(signal, centre, radius)"
        )
    yy, xx = np.indices(mean.shape, dtype=np.float64)
    weights = np.clip(mean - background, 0.0, None)
    cx, cy = float(blob_cols.mean()), float(blob_rows.mean())
    reach = r_half + max(2.0, 0.5 * r_half)
    for _ in range(3):  # centre of mass in a disk around the current estimate
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= reach**2
        w = weights * inside
        cx = float((w * xx).sum() / w.sum())
        cy = float((w * yy).sum() / w.sum())
    # contrast: the beam must dominate everything away from it
    distance = np.hypot(xx - cx, yy - cy)
    far = distance > 2.0 * reach + 2.0
    floor = float(np.percentile(np.abs(mean[far] - background), 99.5)) if far.any() else 0.0
    if level < min_contrast * max(floor, 1e-12 * level):
        raise ValueError(
            "direct beam not found: the brightest spot of the mean pattern is only "
            f"{level / max(floor, 1e-300):.1f}x brighter than the rest of the pattern "
            f"(need {min_contrast}x); pass mask_direct_beam=False if the data hold no "
            "direct beam"
        )
    radius = max(r_half + 1.0, _halo_radius(mean, (cx, cy), r_half, min(rows, cols) / 4.0))
    return (cx, cy), radius, r_half


HALO_LEVEL = 1e-3  # one-sided level of the halo test per ring (z = 3.09)
_N_DIRECTIONS = 4  # opposite-sector pairs per ring in the halo test


def _halo_radius(mean, centre, r_half, reach):
    """Mask radius (px): the end of the beam's halo in the mean pattern (counts).

    The mean pattern (expected counts of one pattern) is split in 1-px rings
    around the beam centre and, in every ring, ``_N_DIRECTIONS`` directions (two
    opposite 45-degree sectors each, where a Friedel pair of Bragg spots lands).
    The beam's disk and halo are isotropic, Bragg spots are not, so the ring's
    *anisotropic part* is its highest direction's counts per pixel minus its
    lowest, times its pixels. Going out from the half-maximum disk, ring ``r``
    still belongs to the beam while

    1. its isotropic excess over the background, ``(iso(r) - B) * pixels(r)``
       (``iso`` = the lowest direction's counts per pixel, which Bragg spots do
       not raise), exceeds the Poisson noise of one pattern's counts in that
       ring, ``z * sqrt(counts(r))`` (one-sided level :data:`HALO_LEVEL`), where
       the background ``B`` is the lowest ``iso`` of the next ``max(2, r_half)``
       rings (a diffraction background falls slowly, a beam tail steeply); and
    2. that excess is larger than the ring's anisotropic part: a ring holding
       more Bragg intensity than beam tail is never masked.

    The mask covers every ring before the first that fails, so what is left of
    the halo outside it is below one pattern's counting noise in every ring:
    invisible in every pattern, it cannot form a component of its own in the
    patterns that diffract (in vacuum patterns, which hold nothing else, it
    would; the vacuum test excludes them). For data that are not counts (a
    noise-free simulation, scaled data) ``z * sqrt(...)`` is in the data's units.

    References: Poisson counting statistics of the detector (Keenan & Kotula,
    Surf. Interface Anal. 36, 203, 2004); Friedel, C. R. Acad. Sci. 157, 1533
    (1913) for the opposite-sector pairs.
    """
    from scipy import stats

    rows, cols = mean.shape
    yy, xx = np.indices(mean.shape, dtype=np.float64)
    dx, dy = xx - centre[0], yy - centre[1]
    ring = np.floor(np.hypot(dx, dy)).astype(np.int64)
    angle = np.mod(np.arctan2(dy, dx), np.pi)  # opposite sectors together
    direction = np.minimum(
        (angle / np.pi * _N_DIRECTIONS).astype(np.int64), _N_DIRECTIONS - 1
    )
    n_rings = int(ring.max()) + 1
    label = (ring * _N_DIRECTIONS + direction).ravel()
    size = n_rings * _N_DIRECTIONS
    sums = np.bincount(label, mean.ravel(), size).reshape(n_rings, _N_DIRECTIONS)
    pixels = np.bincount(label, None, size).reshape(n_rings, _N_DIRECTIONS)
    full = (pixels > 0).all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = np.where(pixels > 0, sums / np.maximum(pixels, 1), np.nan)
    iso = np.where(full, np.nanmin(density, axis=1), np.nan)
    top = np.where(full, np.nanmax(density, axis=1), np.nan)
    total = sums.sum(axis=1)
    area = pixels.sum(axis=1)
    z = float(stats.norm.isf(HALO_LEVEL))
    window = max(2, int(np.ceil(r_half)))
    last = min(int(reach), n_rings - 1)
    r = int(np.ceil(r_half))
    while r < last:
        after = iso[r + 1 : min(r + 1 + window, n_rings)]
        after = after[np.isfinite(after)]
        if not full[r] or after.size == 0:
            break
        background = max(float(after.min()), 0.0)
        excess = (iso[r] - background) * area[r]
        if not (
            excess > z * np.sqrt(max(total[r], 0.0))
            and excess > (top[r] - iso[r]) * area[r]
        ):
            break
        r += 1
    return float(r)


def find_direct_beam(signal, *, min_contrast=5.0, show_progressbar=None):
    """Find the direct beam in the mean pattern of ``signal`` (one pass over the data).

    The beam is the brightest compact blob of the mean pattern: its pixels above
    half maximum give a first position and the disk radius; the centre is then
    refined (subpixel) as the centre of mass of the background-subtracted mean
    pattern in a disk around it. The returned radius is the suggested mask
    radius: where the beam's radial profile (disk and halo) falls to the level
    of the diffracted signal.

    Parameters
    ----------
    signal : BaseSignal with 2 signal dimensions, eager or lazy
    min_contrast : float
        How much brighter than everything away from it the beam must be.
    show_progressbar : bool, optional

    Returns
    -------
    centre : ndarray, shape (2,)
        ``(x, y)`` in pixels (column, row).
    radius : float
        Suggested mask radius in pixels.

    Raises
    ------
    ValueError
        If no compact, dominant bright blob is found (no beam in the data).
    """
    check_sped_signal(signal, need_navigation=False, what="find_direct_beam")
    mean = mean_pattern(signal, show_progressbar=show_progressbar)
    centre, radius, _ = _beam_from_mean(mean, min_contrast=min_contrast)
    return np.array(centre), radius


def direct_beam_mask(signal_or_shape, centre, radius):
    """Boolean mask of the direct beam over the pattern, ``True`` = excluded.

    Parameters
    ----------
    signal_or_shape : signal with 2 signal dimensions, or (rows, columns)
    centre : (x, y)
        Beam centre in pixels (column, row).
    radius : float
        Pixels whose centre lies within ``radius`` of ``centre`` are masked.

    Returns
    -------
    ndarray of bool, shape (rows, columns)
        Usable as ``signal_mask`` of ``decomposition``/``nmf_decomposition``.
    """
    shape = _signal_shape(signal_or_shape)
    centre = np.asarray(centre, dtype=np.float64).ravel()
    if centre.shape != (2,) or not np.all(np.isfinite(centre)):
        raise ValueError(f"centre must be (x, y) pixel coordinates, got {centre!r}")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a positive number of pixels, got {radius!r}")
    yy, xx = np.indices(shape, dtype=np.float64)
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= float(radius) ** 2


def vacuum_mask(
    signal,
    signal_mask=None,
    *,
    threshold=0.1,
    return_intensity=False,
    show_progressbar=None,
):
    """Scan positions without specimen: ``True`` where a pattern is the direct beam alone.

    A statistical test (:func:`hyperspy_nanoml.diffraction.vacuum.vacuum_test`,
    one pass over the data): a pattern is vacuum only when its counts outside
    ``signal_mask`` (the beam) are explained by the beam's own tail, which is
    proportional to the counts under the mask, and Poisson noise; neighbours in
    the scan are pooled so that a faint grain is recognised as a whole, and if
    the emptiest patterns hold Bragg spots (anisotropic intensity) nothing is
    called vacuum. A diffracting grain is never dropped. Excluding vacuum from
    the NMF (``navigation_mask``) keeps its noise out of the choice of the
    number of components.

    Parameters
    ----------
    signal : signal with 2 signal dimensions (eager or lazy)
    signal_mask : bool array (pattern shape, array order), optional
        ``True`` = the direct beam (e.g. :func:`direct_beam_mask`). Without it
        there is no beam to compare with and nothing is called vacuum.
    threshold : float
        Family-wise level of the test, in (0, 1): the chance that a vacuum scan
        keeps any of its vacuum patterns (a larger value keeps more; it never
        drops more diffracting ones).
    return_intensity : bool
        Also return the counts outside ``signal_mask`` (navigation shape, float64).
    show_progressbar : bool, optional

    Returns
    -------
    mask : ndarray of bool, navigation shape in array order
        ``True`` = vacuum (exclude). Pass it to HyperSpy-style
        ``navigation_mask`` arguments as ``mask.T`` (HyperSpy's numpy
        navigation masks are in ``navigation_shape`` order) or as a signal.
    intensity : ndarray, optional
    """
    check_sped_signal(signal, what="vacuum_mask")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
    shape = _signal_shape(signal)
    if signal_mask is not None:
        signal_mask = np.asarray(signal_mask, dtype=bool)
        if signal_mask.shape != shape:
            raise ValueError(
                f"signal_mask has shape {signal_mask.shape}, the patterns {shape}"
            )
    if signal_mask is None or not signal_mask.any():
        nav = tuple(int(n) for n in signal.data.shape[:-2])
        mask = np.zeros(nav, dtype=bool)
        if not return_intensity:
            return mask
        return mask, _total_counts(signal, show_progressbar)
    test, intensity = _vacuum_test_of(
        signal, signal_mask, threshold, show_progressbar, return_intensity=True
    )
    return (test.mask, intensity) if return_intensity else test.mask


def _total_counts(signal, show_progressbar):
    data = signal.data
    if _is_lazy(signal):
        (total,) = _compute([data.sum(axis=(-2, -1), dtype=np.float64)], show_progressbar)
        return total
    return np.asarray(data.sum(axis=(-2, -1), dtype=np.float64))


def _vacuum_test_of(signal, signal_mask, alpha, show_progressbar, return_intensity=False):
    """The vacuum test with rings around the centroid of ``signal_mask`` (one pass)."""
    from hyperspy_nanoml.diffraction.vacuum import (
        RingSectors,
        ring_sector_sums,
        vacuum_test,
    )

    rows, cols = np.nonzero(signal_mask)
    rings = RingSectors.around(
        signal_mask.shape, (cols.mean(), rows.mean()), mask=signal_mask
    )
    sums = ring_sector_sums(signal.data, rings)
    if _is_lazy(signal):
        (sums,) = _compute([sums], show_progressbar)
    test = vacuum_test(sums, rings, 0, alpha=alpha)
    if return_intensity:
        return test, sums[..., :-1].sum(axis=-1, dtype=np.float64)
    return test


def bin_reciprocal(signal, factor):
    """Sum ``factor`` x ``factor`` pixel blocks of every pattern (lazy stays lazy).

    Trailing rows/columns that do not fill a block are dropped. The result is
    ``float32`` (sums of counts are exact in float32 up to 2**24), the signal
    axes keep their units with ``scale * factor`` and an offset at the centre of
    the first new pixel, so calibrated positions are preserved.
    """
    check_sped_signal(signal, need_navigation=False, what="bin_reciprocal")
    if not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ValueError(f"the binning factor must be a positive int, got {factor!r}")
    factor = int(factor)
    _check_fits(signal, factor)
    rows, cols = _signal_shape(signal)
    if factor == 1:
        return as_float32(signal)
    keep_cols, keep_rows = cols - cols % factor, rows - rows % factor
    if (keep_rows, keep_cols) != (rows, cols):
        signal = signal.isig[:keep_cols, :keep_rows]
    nav = signal.axes_manager.navigation_dimension
    return signal.rebin(scale=(1,) * nav + (factor, factor), dtype=np.float32)


SPARSE_COUNTS_PER_PIXEL = 0.25  # electrons per (binned) pixel per pattern, at least
_AUTO_FACTORS = (1, 2, 4)
_MIN_BINNED_SIDE = 16  # pixels per side of a binned pattern, at least


def check_binning(signal, binning):
    """``binning`` is ``"auto"`` or a positive int no larger than the patterns."""
    if isinstance(binning, str) and binning == "auto":
        return
    if (
        isinstance(binning, bool)
        or not isinstance(binning, (int, np.integer))
        or binning < 1
    ):
        raise ValueError(f"binning must be 'auto' or a positive int, got {binning!r}")
    _check_fits(signal, binning)


def _check_fits(signal, factor):
    rows, cols = _signal_shape(signal)
    if factor > min(rows, cols):
        raise ValueError(
            f"binning factor {factor} is larger than the patterns ({rows} x {cols} px)"
        )


def looks_like_counts(signal, n_patterns=256):
    """Whether ``signal`` holds counts: an integer dtype, or float values that are
    non-negative integers in its first ``n_patterns`` patterns (one block read of
    a lazy signal, not a pass)."""
    data = signal.data
    if np.issubdtype(data.dtype, np.integer):
        return True
    if not np.issubdtype(data.dtype, np.floating):
        return False
    nav = data.ndim - 2
    first = data[(0,) * (nav - 1)] if nav > 1 else data
    first = np.asarray(first[:n_patterns])
    return bool(first.size and np.all(first >= 0) and np.all(first == np.round(first)))


def choose_binning(mean, counts):
    """The reciprocal binning factor for NMF: ``(factor, reason)``.

    Sparse counts are binned: the smallest factor in ``(1, 2, 4)`` that brings
    the mean pattern to at least :data:`SPARSE_COUNTS_PER_PIXEL` electrons per
    binned pixel, keeping binned patterns at least 16 px wide. Below that most
    pixels of a pattern hold 0 or 1 count and the Poisson-scaled residuals of
    the Keenan-Kotula fit (Keenan & Kotula, Surf. Interface Anal. 36, 203, 2004)
    are heavy-tailed: a count of 1 where ``λ = 0.01`` is expected weighs
    ``(1 - λ)²/λ ≈ 100`` in the weighted least squares, ``log(1/λ) ≈ 4.6`` in
    the Poisson likelihood. Measured on pyxem's simulated Fe grains (64 px
    patterns, 500 electrons each = 0.12 per pixel, 78 % in the beam; 6 grains):
    unbinned, the fit splits the least diffracting grain (37 counts per pattern
    outside the beam mask) and merges two others, even when started from the
    true grains (ARI 0.874; the Poisson likelihood prefers the true grains), and
    the noise floor of the component choice hides that grain (5 of 6); binned
    2 x 2 the choice finds 6 and the map has ARI 1.000 (at 200 electrons, 4 x 4:
    6 of 6 where unbinned gives 5). The threshold is measured
    (``benchmarks/bench_sped_pyxem.py``), not derived: 0.25 per pixel bins
    pyxem's grains at 200-1000 electrons and none of our generated sets
    (2.5-25 per pixel), which binning 2 x 2 does not help. Data that are not
    counts (a noise-free simulation, scaled data) are not binned.

    Examples
    --------
    >>> choose_binning(np.full((64, 64), 0.12), True)[0]
    2
    >>> choose_binning(np.full((64, 64), 0.12), False)[0]
    1
    """
    mean = np.asarray(mean, dtype=np.float64)
    per_pixel = float(mean.mean())
    if not counts:
        return 1, "not counts (non-integer values): not binned"
    largest = max(
        (f for f in _AUTO_FACTORS if min(mean.shape) // f >= _MIN_BINNED_SIDE), default=1
    )
    factor = next(
        (
            f
            for f in _AUTO_FACTORS
            if f <= largest and per_pixel * f * f >= SPARSE_COUNTS_PER_PIXEL
        ),
        largest,
    )
    if factor == 1:
        return 1, (
            f"{per_pixel:.3g} counts per pixel per pattern (at least "
            f"{SPARSE_COUNTS_PER_PIXEL:g}): not binned"
        )
    return factor, (
        f"sparse counts, {per_pixel:.3g} per pixel per pattern: {factor} x {factor} "
        f"pixels summed ({per_pixel * factor * factor:.3g} per binned pixel; below "
        f"{SPARSE_COUNTS_PER_PIXEL:g} the Poisson-weighted fit overweights single counts)"
    )


def _binned_beam(mask, factor, info):
    """The beam mask found at full resolution, binned (a binned pixel is masked when
    any of its pixels is), with ``info``'s beam position and radius in binned pixels."""
    if factor == 1:
        return mask
    x, y = info["direct_beam_centre"]
    info["direct_beam_centre"] = (
        (x - (factor - 1) / 2) / factor,
        (y - (factor - 1) / 2) / factor,
    )
    info["direct_beam_radius"] = info["direct_beam_radius"] / factor
    if mask is None:
        return None
    rows, cols = (v - v % factor for v in mask.shape)
    binned = mask[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
    binned = binned.any(axis=(1, 3))
    info["masked_pixels"] = int(binned.sum())
    return binned


_BLOCK_BYTES = 64 * 2**20  # float32 bytes per lazy block after conversion


def _split_rows(chunks, max_rows):
    """Split every chunk of the first axis into near-equal pieces of <= max_rows."""
    out = []
    for size in chunks:
        pieces = -(-size // max_rows)
        base, extra = divmod(size, pieces)
        out.extend([base + 1] * extra + [base] * (pieces - extra))
    return tuple(out)


def as_float32(signal, *, block_bytes=_BLOCK_BYTES):
    """A new signal with the data as ``float32``.

    Lazy data are converted block by block: chunks whose float32 version would
    exceed ``block_bytes`` (64 MiB) are first split along the first navigation
    axis (whole patterns, whole rows of the scan), so that the converted blocks
    stay small whatever the chunking of the file; the task graph grows by a few
    tasks per file chunk. Eager data are converted in one ``astype`` (no
    float64 intermediate).
    """
    data = signal.data
    if _is_lazy(signal):
        new = data
        if data.ndim > 2:
            row_bytes = 4 * int(np.prod(data.shape[1:]))
            max_rows = max(1, int(block_bytes // row_bytes))
            if max(data.chunks[0]) > max_rows:
                new = new.rechunk({0: _split_rows(data.chunks[0], max_rows)})
        if new.dtype != np.float32:
            new = new.astype(np.float32)
    else:
        new = np.asarray(data, dtype=np.float32)
        if new is data:
            new = data.copy()
    from hyperspy_nanoml._compat import deepcopy_with_new_data

    return deepcopy_with_new_data(signal, new)


def _store_vacuum(info, test):
    info["vacuum_mask"] = test.mask
    info["vacuum_patterns"] = int(test.mask.sum())
    info["vacuum_test"] = test.as_dict()


def beam_and_vacuum(
    signal,
    mean,
    ring_sums,
    rings,
    info,
    *,
    mask_direct_beam=True,
    beam_radius=None,
    exclude_vacuum=False,
    vacuum_threshold=0.1,
    min_contrast=5.0,
):
    """The direct beam and the vacuum patterns from one pass's statistics (no data read).

    What :func:`preprocess_sped` decides after its pass, usable on statistics
    gathered by another pass (the NMF's first,
    :func:`~hyperspy_nanoml.diffraction.workflow.sped_phase_map`).

    Parameters
    ----------
    signal : signal
        The (unbinned) signal the statistics describe (axes for calibration).
    mean : ndarray (pattern shape) or None
        The mean pattern (None when neither the beam nor the vacuum is wanted).
    ring_sums : ndarray (*navigation, rings.n_groups) or None
        :func:`~hyperspy_nanoml.diffraction.vacuum.ring_sector_sums` around the
        pattern centre (``rings``, no mask), for the vacuum test.
    rings : RingSectors or None
    info : dict
        Updated in place: the beam (``direct_beam_centre``, ``direct_beam_radius``,
        calibrated values, ``masked_pixels``, ``radius_source``) and, when the
        test could run on these sums, ``vacuum_mask``, ``vacuum_patterns``,
        ``vacuum_test``, ``vacuum_method``. With ``exclude_vacuum`` and no
        ``vacuum_mask`` set, the beam lies too far from the pattern centre for
        rings around it: the test needs its own pass (rings around the beam).
    mask_direct_beam, beam_radius, exclude_vacuum, vacuum_threshold, min_contrast
        As in :func:`preprocess_sped` (``beam_radius`` in pixels of ``signal``).

    Returns
    -------
    signal_mask : ndarray of bool (pattern shape) or None
        True on the direct beam; None without ``mask_direct_beam``.
    """
    if not (mask_direct_beam or exclude_vacuum):
        return None
    shape = _signal_shape(signal)
    centre, radius, _ = _beam_from_mean(mean, min_contrast=min_contrast)
    if beam_radius is not None:
        radius = float(beam_radius)
        info["radius_source"] = "given"
    else:
        info["radius_source"] = "estimated"
    signal_mask = direct_beam_mask(signal, centre, radius)
    kx, ky = signal.axes_manager.signal_axes
    info.update(
        direct_beam_centre=(float(centre[0]), float(centre[1])),
        direct_beam_centre_calibrated=(
            float(kx.offset + kx.scale * centre[0]),
            float(ky.offset + ky.scale * centre[1]),
        ),
        direct_beam_radius=float(radius),
        direct_beam_radius_calibrated=float(radius * kx.scale),
        units=str(kx.units),
        masked_pixels=int(signal_mask.sum()),
    )
    if exclude_vacuum and ring_sums is not None and rings is not None:
        from hyperspy_nanoml.diffraction.vacuum import vacuum_test

        offset = np.hypot(centre[0] - shape[1] / 2.0, centre[1] - shape[0] / 2.0)
        if offset + radius <= min(shape) / 6.0:  # the beam inside the central disk
            test = vacuum_test(
                ring_sums, rings, int(np.ceil(offset + radius)), alpha=vacuum_threshold
            )
            info["vacuum_method"] = (
                "Poisson test of the counts outside the beam against its tail, "
                "rings around the pattern centre (same pass as the beam)"
            )
            _store_vacuum(info, test)
    return signal_mask if mask_direct_beam else None


def preprocess_sped(
    signal,
    *,
    mask_direct_beam=True,
    beam_radius=None,
    binning=1,
    exclude_vacuum=False,
    vacuum_threshold=0.1,
    min_contrast=5.0,
    show_progressbar=None,
    statistics=None,
):
    """Prepare a SPED/4D-STEM signal for NMF: bin, convert to float32, mask the beam.

    Parameters
    ----------
    signal : signal with 2 signal dimensions and at least one navigation axis
        E.g. a (lazy) pyxem ``ElectronDiffraction2D``; not modified.
    mask_direct_beam : bool
        Find the direct beam (one pass over the data) and return a mask of it.
    beam_radius : float, optional
        Mask radius in pixels of the *input* patterns (before binning); by
        default the radius suggested by :func:`find_direct_beam`.
    binning : int or "auto"
        Reciprocal-space binning factor (:func:`bin_reciprocal`); ``"auto"``:
        :func:`choose_binning` (sparse counts binned 2 x 2 or 4 x 4) from the mean
        pattern of the pass. The beam and the vacuum are decided on the unbinned
        patterns; the binned beam mask covers every binned pixel the beam touches.
    exclude_vacuum : bool
        Also find the patterns that are the direct beam alone (vacuum, holes),
        in the same pass as the beam: a pattern is vacuum only when its counts
        outside the beam are explained by the beam's own tail and Poisson noise
        (:func:`hyperspy_nanoml.diffraction.vacuum.vacuum_test`: a Poisson test
        per pattern and pooled over its neighbours, family-wise level
        ``vacuum_threshold``, and nothing is vacuum when the emptiest patterns
        hold Bragg spots), so a diffracting grain is never dropped. The
        per-pattern sums are taken on rings around the pattern centre; if the
        beam mask reaches beyond a sixth of the pattern from the centre,
        :func:`vacuum_mask` with the beam mask is used instead (one more pass).
        The beam is found for the test even with ``mask_direct_beam=False``.
        The result is ``info["vacuum_mask"]`` and the evidence
        ``info["vacuum_test"]``.
    vacuum_threshold : float
        Family-wise level of the vacuum test, in (0, 1): the chance that a scan
        keeps any of its vacuum patterns in the fit.
    min_contrast : float
        Passed to :func:`find_direct_beam`.
    show_progressbar : bool, optional
    statistics : (mean, ring_sums), optional
        The mean pattern (float64) and, with ``exclude_vacuum``, the
        :func:`~hyperspy_nanoml.diffraction.vacuum.ring_sector_sums` (navigation
        shape x groups, ``RingSectors.around`` the pattern centre) of the
        unbinned patterns from a pass already made (``sped_phase_map``: the
        NMF's first): used instead of a pass of its own.

    Returns
    -------
    processed : signal
        Float32 (lazy if the input is lazy), binned; ``metadata.Processing.
        preprocess_sped`` records what was done.
    signal_mask : ndarray of bool or None
        ``True`` on the direct beam (pattern shape, array order); ``None`` if
        ``mask_direct_beam`` is False.
    info : dict
        ``binning``, ``direct_beam_centre`` (x, y px of the processed patterns),
        ``direct_beam_centre_calibrated`` (axis units), ``direct_beam_radius``
        (px), ``radius_source``, ``masked_pixels``, ``dtype_in``, ``lazy``,
        ``pattern_shape``, ``passes_over_data``; with ``exclude_vacuum`` also
        ``vacuum_mask`` (bool, navigation shape in array order, ``True`` =
        vacuum), ``vacuum_patterns`` and ``vacuum_method``.
    """
    check_sped_options(signal, beam_radius, exclude_vacuum, vacuum_threshold)
    check_binning(signal, binning)
    dtype_in = str(signal.data.dtype)
    shape = _signal_shape(signal)
    info = {
        "dtype_in": dtype_in,
        "dtype_out": "float32",
        "lazy": _is_lazy(signal),
        "direct_beam_masked": bool(mask_direct_beam),
        "passes_over_data": 0,
    }
    # one pass over the unbinned patterns (the raw blocks, converted slice by slice
    # inside it): the beam and the vacuum are decided at full resolution, so a
    # binned mask covers every binned pixel the beam touches
    mean = outer = rings = None  # outer: ring x sector sums around the pattern centre
    if statistics is not None:
        mean, outer = statistics
    if exclude_vacuum:  # the vacuum test needs the beam: found in the same pass
        from hyperspy_nanoml.diffraction.vacuum import (
            RingSectors,
            mean_and_ring_sector_sums,
        )

        rings = RingSectors.around(shape)
        if mean is None or outer is None:
            mean, outer = mean_and_ring_sector_sums(
                signal.data, rings, show_progressbar=show_progressbar
            )
            info["passes_over_data"] += 1
    elif (mask_direct_beam or binning == "auto") and mean is None:
        mean, _ = _mean_and_outer(signal, None, show_progressbar)
        info["passes_over_data"] += 1
    signal_mask = beam_and_vacuum(
        signal,
        mean,
        outer,
        rings,
        info,
        mask_direct_beam=mask_direct_beam,
        beam_radius=beam_radius,
        exclude_vacuum=exclude_vacuum,
        vacuum_threshold=vacuum_threshold,
        min_contrast=min_contrast,
    )
    if binning == "auto":
        binning, info["binning_reason"] = choose_binning(mean, looks_like_counts(signal))
    info["binning_source"] = "auto" if "binning_reason" in info else "given"
    binning = int(binning)
    processed = bin_reciprocal(signal, binning)
    info["binning"] = binning
    info["pattern_shape"] = _signal_shape(processed)
    if "direct_beam_centre" in info:
        signal_mask = _binned_beam(signal_mask, binning, info)
    if exclude_vacuum and "vacuum_mask" not in info:  # beam off centre: own pass
        beam = direct_beam_mask(
            processed, info["direct_beam_centre"], info["direct_beam_radius"]
        )
        test = _vacuum_test_of(processed, beam, vacuum_threshold, show_progressbar)
        info["passes_over_data"] += 1
        info["vacuum_method"] = (
            "Poisson test of the counts outside the beam mask against its tail (own pass)"
        )
        _store_vacuum(info, test)
    processed.metadata.set_item(
        "Processing.preprocess_sped",
        {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in info.items()
            if k != "vacuum_mask"
        },
    )
    return processed, signal_mask, info
