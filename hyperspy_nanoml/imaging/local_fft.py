"""Local-FFT feature discovery in any microscope image.

Jany, Janas & Krok, "Automatic microscopic image analysis by moving window
local Fourier Transform and Machine Learning", Micron 130, 102800 (2020): a
window moves over the image, the power spectrum of each window is a feature
vector, PCA tells how many kinds of texture there are and NMF splits the
spectra into texture patterns (factors) and their maps on the image (loadings).

What we do differently from the published program, and why:

* each window's mean is removed before a *periodic* Hann taper, so the DC peak
  and its leakage do not dominate; the DC bin itself is set to zero;
* the half spectrum (``scipy.fft.rfft2``, float32, all cores) is computed: the
  power spectrum of a real image is point-symmetric, so half is all there is;
* features are scale-free: the amplitude spectrum divided by the image's own
  standard deviation (``scaling="sqrt"``, default), so multiplying the image by
  1000 changes nothing, unlike the published ``log(P + 10000)``; the amplitude
  of a window spanning two textures is close to the area-weighted sum of their
  amplitudes, which is what NMF assumes;
* the number of components comes from
  :func:`hyperspy_nanoml.learn.n_components.choose_n_components` (profile
  likelihood), not from the first maximum of the scree gradient;
* lazy (dask) images are processed in strips of windows, out of core.
"""

import logging
import warnings

import numpy as np

from hyperspy_nanoml.imaging.spectra import (
    SCALINGS,
    TAPERS,
    WINDOWS_PER_BLOCK,
    full_centred_spectrum,
    taper_window,
    window_spectra,
)

__all__ = [
    "EDGES",
    "FEATURES",
    "SCALINGS",
    "TAPERS",
    "compute_features",
    "decompose_features",
    "full_centred_spectrum",
    "local_fft_features",
    "taper_window",
    "window_spectra",
]

_logger = logging.getLogger(__name__)

# windows per strip of a lazy image: bounds the memory of one FFT batch
_WINDOWS_PER_BLOCK = WINDOWS_PER_BLOCK
# how windows meet the bottom/right edges (see compute_features)
EDGES = ("reflect", "drop")
# how the number of components and the regions are found (see local_fft_features)
FEATURES = ("spectrum", "texture")


def _image_std(data):
    """Standard deviation of the whole image, float64 accumulation."""
    if hasattr(data, "dask"):
        return float(data.astype(np.float64).std().compute())
    return float(data.std(dtype=np.float64))


# ----------------------------------------------------------------- input checks


def _as_grey_2d(image):
    """Return (data, axes) for a Signal2D, numpy or dask image; grey, 2-D.

    ``axes`` is a list of two dicts (y, x) with ``scale``, ``offset``, ``units``
    and ``name``; pixels when the input carries no calibration.
    """
    from hyperspy.signal import BaseSignal

    if isinstance(image, BaseSignal):
        signal = image
        if signal.axes_manager.signal_dimension != 2:
            raise ValueError(
                f"local_fft_features needs a 2-D image, got a signal with "
                f"{signal.axes_manager.signal_dimension} signal dimension(s); "
                "use s.as_signal2D((0, 1)) or pass one image"
            )
        if signal.axes_manager.navigation_dimension > 0:
            shape = signal.axes_manager.navigation_shape
            raise ValueError(
                f"this signal holds a stack of images (navigation shape {shape}); "
                "local_fft_features analyses one image at a time: pass one, e.g. "
                "img.inav[0], or loop over the stack"
            )
        data = signal.data
        if signal.is_rgbx:
            data = _rgb_to_grey(
                np.stack([data[c] for c in data.dtype.names[:3]], axis=-1),
                "RGB(A) signal",
            )
        am = signal.axes_manager.deepcopy()
        try:  # readable units (12.3 nm rather than 1.23e-08 m); the input is untouched
            am.convert_units("signal", same_units=True)
        except Exception:  # units pint does not know: keep them as they are
            am = signal.axes_manager
        axes = [
            {"scale": a.scale, "offset": a.offset, "units": a.units, "name": name}
            for a, name in zip(am.signal_axes[::-1], "yx", strict=True)
        ]
    else:
        data = image
        if not hasattr(data, "dask"):
            data = np.asarray(data)
        if data.ndim == 3 and data.shape[-1] in (3, 4):
            data = _rgb_to_grey(data, f"array of shape {data.shape}")
        if data.ndim != 2:
            raise ValueError(
                f"local_fft_features needs a 2-D image, got an array of shape "
                f"{data.shape}; pass one grey (H, W) or colour (H, W, 3) image"
            )
        axes = [{"scale": 1.0, "offset": 0.0, "units": "px", "name": n} for n in "yx"]
    for ax in axes:
        if not isinstance(ax["units"], str) or ax["units"] in ("", "<undefined>"):
            ax["units"] = "px"
    if np.iscomplexobj(data):
        raise TypeError(
            "the image is complex; local_fft_features needs real intensities: "
            "pass abs(image), image.real or the phase (np.angle) explicitly"
        )
    if data.dtype.kind not in "uifb":
        raise TypeError(f"the image has non-numeric dtype {data.dtype}")
    return data, axes


def _source_name(image):
    """The image's file name (or title) for report titles; "image" when unknown."""
    meta = getattr(image, "metadata", None)
    if meta is None:
        return "image"
    name = meta.get_item("General.original_filename") or meta.get_item("General.title")
    return str(name) if name else "image"


def _rgb_to_grey(rgb, what):
    warnings.warn(
        f"{what}: colour image converted to grey (ITU-R BT.601 luma, "
        "0.299 R + 0.587 G + 0.114 B) before the local FFT",
        UserWarning,
        stacklevel=4,
    )
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    return rgb[..., :3].astype(np.float32) @ weights


def _check_parameters(shape, window, step, taper, scaling):
    for name, value in (("window", window), ("step", step)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer number of pixels, got {value!r}")
    if step <= 0:
        raise ValueError(f"step must be a positive number of pixels, got {step}")
    if window < 8 or window % 2:
        raise ValueError(f"window must be an even number of pixels >= 8, got {window}")
    if min(shape) < 8:
        raise ValueError(
            f"the image ({shape[0]} x {shape[1]} px) is too small for a local FFT: "
            "windows are at least 8 x 8 px; use an image of at least 16 x 16 px"
        )
    if window > min(shape):
        raise ValueError(
            f"window ({window} px) is larger than the image ({shape[0]} x {shape[1]} px); "
            f"use window <= {min(shape) // 2 * 2}, e.g. window={_suggest_window(shape)}"
        )
    if taper not in TAPERS:
        raise ValueError(f"unknown taper {taper!r}; choose one of {TAPERS}")
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; choose one of {SCALINGS}")


def _suggest_window(shape):
    """A valid window (even, >= 8) about a quarter of the image's short side."""
    return int(max(8, 2 ** np.floor(np.log2(max(min(shape), 8) / 4))))


def _nonfinite_error(count=None):
    what = (
        f"{count} NaN or infinite pixel(s)"
        if count is not None
        else "NaN or infinite pixels"
    )
    return ValueError(
        f"the image contains {what}; fill them first, e.g. "
        "img.data = np.nan_to_num(img.data, nan=np.nanmean(img.data))"
    )


def _check_finite(block):
    if not np.all(np.isfinite(block)):
        raise _nonfinite_error(int(np.size(block) - np.count_nonzero(np.isfinite(block))))


# ------------------------------------------------------------------- features


def compute_features(
    data, window=128, step=64, taper="hann", scaling="sqrt", edges="reflect"
):
    """The half-spectrum feature matrix of an image, eager or lazy.

    Returns ``(X, grid_shape, reference)``: ``X`` has one row per window (row
    major over the window grid) and ``window * (window // 2 + 1)`` columns;
    it is a numpy array for numpy input and a dask array, chunked in strips of
    whole window rows, for dask input (nothing is computed but the image's
    standard deviation).

    ``edges="reflect"`` (default) mirror-pads the bottom and right edges by less
    than one step so that the last row and column of windows end at the image's
    edge (every pixel is seen by a window); ``"drop"`` leaves the last partial
    step out (those pixels are NaN in ``loadings_on_image``).
    """
    from hyperspy_nanoml.imaging.image_input import pad_to_cover

    if edges not in EDGES:
        raise ValueError(f"unknown edges {edges!r}; choose one of {EDGES}")
    shape = data.shape
    _check_parameters(shape, window, step, taper, scaling)
    n_features = window * (window // 2 + 1)
    taper_array = taper_window(window, taper)
    if not hasattr(data, "dask"):
        _check_finite(data)
    std = _image_std(data)
    if not np.isfinite(std):  # only reachable for lazy images, checked above otherwise
        raise _nonfinite_error()
    if std == 0:
        raise ValueError("the image is constant: it has no texture to analyse")
    # Parseval: the mean power per bin of a window of white noise of this std
    reference = float(std**2 * np.sum(taper_array.astype(np.float64) ** 2))
    if edges == "reflect":
        data, _ = pad_to_cover(data, window, step)
    ny = (data.shape[0] - window) // step + 1
    nx = (data.shape[1] - window) // step + 1

    def strip_features(strip):
        _check_finite(strip)
        spectra = window_spectra(strip, window, step, taper_array, scaling, reference)
        return spectra.reshape(-1, n_features)

    if not hasattr(data, "dask"):
        return strip_features(data), (ny, nx), reference

    import dask.array as da

    rows_per_strip = max(1, _WINDOWS_PER_BLOCK * 2 // nx)
    strips = []
    for r0 in range(0, ny, rows_per_strip):
        r1 = min(ny, r0 + rows_per_strip)
        pixels = data[r0 * step : (r1 - 1) * step + window].rechunk(-1)
        strips.append(
            pixels.map_blocks(
                strip_features,
                dtype=np.float32,
                chunks=((r1 - r0) * nx, n_features),
                meta=np.empty((0, 0), np.float32),
            )
        )
    return da.concatenate(strips, axis=0), (ny, nx), reference


# ------------------------------------------------------------------ public API


def local_fft_features(
    image,
    window=128,
    step=64,
    *,
    taper="hann",
    scaling="sqrt",
    n_components="auto",
    max_components=20,
    min_variance_ratio=0.05,
    random_state=None,
    decompose=True,
    show_progressbar=None,
    edges="reflect",
    crop=None,
    data_bar="auto",
    features="spectrum",
    **nmf_kwargs,
):
    """Moving-window local FFT features of an image, decomposed by NMF.

    Parameters
    ----------
    image : hyperspy Signal2D (eager or lazy), numpy array or dask array
        One grey image (colour images are converted to grey with a warning).
    window : int
        Window size in pixels (even, default 128).
    step : int
        Distance between windows in pixels (default 64, i.e. 50 % overlap).
    taper : {"hann", "sqrt_hann", "none"}
        Taper applied after removing each window's mean (periodic Hann by
        default; ``"sqrt_hann"`` is the published program's).
    scaling : {"sqrt", "power", "log"}
        Feature scaling, all scale-free: amplitude spectrum (default), power
        spectrum, or ``log(1 + P / P_ref)``, each relative to the image's own
        noise-equivalent power ``P_ref``.
    n_components : "auto" or int
        Number of NMF components; ``"auto"`` uses
        :func:`~hyperspy_nanoml.learn.n_components.choose_n_components`.
    max_components : int
        Upper bound for ``"auto"``.
    min_variance_ratio : float
        For ``"auto"``: a centred PCA component counts only if it carries at
        least this fraction of the first one's variance (default 5 %). Windows
        straddling region boundaries form a real but minor population (their
        share grows as the image shrinks); this keeps it from being counted as
        a texture of its own.
    random_state : int or None
        Makes the randomised parts (SVD sketch, NMF initialisation) reproducible.
    decompose : bool
        If False, only the 4-D local-FFT signal is returned.
    show_progressbar : bool or None
        None follows ``hs.preferences.General.show_progressbar``.
    edges : {"reflect", "drop"}
        ``"reflect"`` (default): the bottom/right edges are mirror-padded by less
        than one step so the last windows end at the image's edge and every pixel
        is analysed; ``"drop"``: the last partial step is left out and is NaN in
        :meth:`LocalFFTSignal.loadings_on_image`.
    crop : (y0, y1, x0, x1) or None
        Analyse only these pixel ranges (``y1``, ``x1`` exclusive); the axes keep
        their calibration (offsets move to the first analysed pixel).
    data_bar : {"auto", "keep"}
        ``"auto"`` (default): a vendor info strip (Zeiss, FEI/Thermo, JEOL,
        Hitachi, TESCAN: flat rows of text along the bottom or top edge) is
        detected and left out, with a warning; recorded in
        ``metadata.LocalFFT.region``. ``"keep"`` analyses every pixel. Ignored
        when ``crop`` is given.
    features : {"spectrum", "texture"}
        ``"spectrum"`` (default, the published method): the number of components
        is chosen on the whole local spectra and the regions are the dominant NMF
        component. ``"texture"``: for photographed / stochastic natural textures
        (grass, gravel, brick), where whole-spectrum NMF over-splits, the regions
        and their number come from
        :func:`~hyperspy_nanoml.imaging.texture_features.texture_regions`
        (log-polar sector features, neighbour-whitened, Gaussian mixture; window
        ``window``, step ``window // 4``); the NMF then runs with that number of
        components, :meth:`LocalFFTSignal.segmentation` returns the texture
        regions (boundaries refined with quarter-size windows) and the report
        shows them. Eager images only. Neither path is right on every kind of
        image, so the choice is not made automatically. Measured
        (``benchmarks/bench_local_fft.py``): on ten mosaics of photographed
        textures the default chooses 5-11 components for 3-5 textures (ARI
        0.2-0.7), ``"texture"`` the true number on 9 of 10 (ARI 0.94-0.97 when
        right; the tenth flagged as marginal); on generated periodic / band-
        limited textures (gratings, particles, grain: ``make_textured_image``)
        the default is right at 768^2 and 1024^2 (ARI 0.95-0.97) while
        ``"texture"`` finds 3 of 4 regions at 768^2. Use ``"texture"`` for
        photographs of stochastic textures (grass, gravel, brick, fibres,
        curtaining-free rough surfaces); keep the default for crystalline /
        periodic content (lattice fringes, gratings, particle arrays) and lazy
        images.
    **nmf_kwargs
        Passed to :func:`hyperspy_nanoml.learn.nmf.nmf` (``max_iter``, ``tol``;
        ``tol`` defaults to 1e-4 here).

    Returns
    -------
    LocalFFTSignal or LazyLocalFFTSignal
        Navigation axes: window centres in the image's calibrated units;
        signal axes: spatial frequency (1/units), zero at the centre. Its
        ``learning_results`` hold the NMF (loadings = feature maps, factors =
        FFT patterns), so ``get_decomposition_loadings()``,
        ``get_decomposition_factors()`` and ``plot_decomposition_results()``
        work; ``component_choice`` holds the evidence for the number of
        components (stored as ``learning_results.nmf_component_choice``; with
        ``features="texture"`` a ``TextureCount`` rebuilt from
        ``metadata.LocalFFT.texture_regions``). See :class:`LocalFFTSignal` for
        the loadings on the image grid, the segmentation, the PDF report and the
        ImageJ export.

    Examples
    --------
    >>> import hyperspy.api as hs
    >>> import hyperspy_nanoml
    >>> from hyperspy_nanoml.data.textures import make_textured_image
    >>> data, regions = make_textured_image((768, 768), random_state=0)
    >>> img = hs.signals.Signal2D(data)
    >>> result = img.local_fft_features(random_state=0)  # doctest: +SKIP
    >>> result.learning_results.loadings.shape  # doctest: +SKIP
    (121, 4)
    >>> result.save_report("local_fft.pdf")  # doctest: +SKIP
    >>> from skimage import data  # a photographed texture mosaic  # doctest: +SKIP
    >>> result = hyperspy_nanoml.local_fft_features(mosaic, features="texture")  # doctest: +SKIP
    >>> result.segmentation(on_image=True)  # texture regions  # doctest: +SKIP
    """
    from hyperspy_nanoml._progress import progressbar
    from hyperspy_nanoml.imaging.image_input import (
        check_uniform_axes,
        edge_padding,
        prepare_region,
    )
    from hyperspy_nanoml.signals.local_fft import build_local_fft_signal

    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r}; choose one of {FEATURES}")
    if hasattr(image, "axes_manager"):
        check_uniform_axes(image)
    data, axes = _as_grey_2d(image)
    data, axes, region = prepare_region(data, axes, crop=crop, data_bar=data_bar)
    lazy = hasattr(data, "dask")
    if features == "texture" and lazy:
        raise ValueError(
            'features="texture" needs the image in memory; load it (img.compute() or '
            'hs.load(..., lazy=False)) or use features="spectrum" for lazy images'
        )
    source = _source_name(image)
    bar = progressbar(
        total=3 if decompose else 1,
        desc=f"local FFT of {source}",
        show_progressbar=show_progressbar,
        leave=False,
    )
    X, grid, reference = compute_features(data, window, step, taper, scaling, edges)
    bar.update(1)
    padding = edge_padding(data.shape, window, step) if edges == "reflect" else (0, 0)
    params = {
        "edges": edges,
        "padding": [int(v) for v in padding],
        "region": region,
        "window": int(window),
        "step": int(step),
        "taper": taper,
        "scaling": scaling,
        "reference_power": reference,
        "image_shape": tuple(int(n) for n in data.shape),
        "random_state": random_state if isinstance(random_state, int) else None,
        "source": source,
        "features": features,
    }
    result = build_local_fft_signal(X, grid, axes, params, image=image, data=data)
    if decompose:
        choice = None
        if features == "texture":
            choice = _texture_regions_into(result, data, window, n_components, random_state)
            bar.update(1)
        decompose_features(
            result,
            X,
            n_components=n_components if choice is None else choice.n_components,
            max_components=max_components,
            min_variance_ratio=min_variance_ratio,
            random_state=random_state,
            show_progressbar=False,  # one bar per image: this one
            **nmf_kwargs,
        )
        bar.update(bar.total - bar.n)
    bar.close()
    _logger.info("local FFT of a %s image: %d windows", "lazy" if lazy else "", X.shape[0])
    return result


def _texture_regions_into(result, data, window, n_components, random_state):
    """Run :func:`texture_regions` on the analysed image and record it in
    ``metadata.LocalFFT.texture_regions``; returns the ``TextureCount``."""
    from hyperspy_nanoml._validation import check_n_components
    from hyperspy_nanoml.imaging.component_number import TextureCount
    from hyperspy_nanoml.imaging.texture_features import texture_regions

    n = check_n_components(n_components)
    seed = int(random_state) if isinstance(random_state, (int, np.integer)) else 0
    min_contrast = 36.0
    tstep = max(4, window // 4)
    regions = texture_regions(
        np.asarray(data, np.float32),
        n,
        window=window,
        step=tstep,
        min_contrast=min_contrast,
        random_state=seed,
    )
    result.metadata.set_item(
        "LocalFFT.texture_regions",
        {
            "labels": regions.labels.astype(np.int16),
            "n_regions": int(regions.n_regions),
            "window": int(regions.window),
            "grid_step": int(regions.grid_step),
            "contrast": np.asarray(regions.contrast, np.float64),
            "min_contrast": float(min_contrast),
            "given": n != "auto",
            "reason": regions.reason,
            "fine_labels": (
                np.zeros((0, 0), np.int16)
                if regions.fine_labels is None
                else regions.fine_labels.astype(np.int16)
            ),
            "fine_step": int(regions.fine_step),
        },
    )
    count = TextureCount(
        int(regions.n_regions),
        [float(c) for c in regions.contrast],
        min_contrast,
        given=n != "auto",
    )
    if not count.clear:
        warnings.warn(count.reason, UserWarning, stacklevel=3)
    return count


def decompose_features(
    result,
    X,
    *,
    n_components="auto",
    max_components=20,
    min_variance_ratio=0.05,
    random_state=None,
    show_progressbar=None,
    **nmf_kwargs,
):
    """Choose the number of components, run NMF on the half-spectrum features
    ``X`` and store the result in ``result.learning_results``.

    The NMF runs on the half spectrum (half the work); its factors are expanded
    to the full centred spectrum of ``result`` by point symmetry.
    """
    from hyperspy_nanoml._validation import check_n_components
    from hyperspy_nanoml.learn.n_components import ComponentChoice, choose_n_components
    from hyperspy_nanoml.learn.nmf import nmf

    n_components = check_n_components(n_components)
    if n_components == "auto":
        choice = choose_n_components(
            X,
            max_components=max_components,
            min_variance_ratio=min_variance_ratio,
            random_state=random_state,
        )
        k = choice.n_components
    else:
        choice, k = None, n_components
    # 1e-4: the maps and patterns no longer change visibly (the relative error
    # differs from tol=1e-5 by < 1e-4 of itself on the SEM benchmark image)
    nmf_kwargs.setdefault("tol", 1e-4)
    fit = nmf(
        X, k, random_state=random_state, show_progressbar=show_progressbar, **nmf_kwargs
    )
    result.store_decomposition(fit, choice)
    if isinstance(choice, ComponentChoice):
        _logger.info("%s", choice)
    return fit
