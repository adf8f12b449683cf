"""The 4-D local-FFT signal: a power spectrum (signal) per window (navigation).

Created by :func:`hyperspy_nanoml.local_fft_features`; registered with HyperSpy
as signal_type ``"local_FFT"`` so ``hs.load`` of a saved result gives it back.
"""

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal2d import Signal2D


class LocalFFTSignal(Signal2D):
    """Local (moving-window) Fourier spectra of an image.

    Navigation axes are the window centres in the image's calibrated units,
    signal axes the spatial frequency (1/units) with zero at the centre. After
    :func:`~hyperspy_nanoml.local_fft_features` the NMF is in
    ``learning_results``: loadings are the feature maps, factors the FFT
    patterns. Besides HyperSpy's own ``get_decomposition_loadings()``,
    ``get_decomposition_factors()`` and ``plot_decomposition_results()``, it
    offers :meth:`loadings_on_image`, :meth:`segmentation`,
    :meth:`save_report` and :meth:`export_imagej`.
    """

    _signal_type = "local_FFT"
    _lazy = False

    def parameters(self) -> dict:
        """The parameters the features were computed with (``metadata.LocalFFT``)."""
        if "LocalFFT" not in self.metadata:
            raise RuntimeError(
                "metadata.LocalFFT is missing: this signal was not made by "
                "local_fft_features, so its window and image geometry are unknown"
            )
        return self.metadata.LocalFFT.as_dictionary()

    # --- decomposition bookkeeping -------------------------------------------

    def store_decomposition(self, fit, choice=None):
        """Store an NMF of the half-spectrum features in ``learning_results``.

        ``fit`` is the :class:`~hyperspy_nanoml.learn.nmf.NMFResult` of the
        half-spectrum features (its factors already scaled to a maximum of 1);
        they are expanded to the full centred spectrum, which keeps the maximum.
        """
        from hyperspy_nanoml.imaging.spectra import full_centred_spectrum
        from hyperspy_nanoml.learn.signal_matrix import store_learning_results

        w = self.parameters()["window"]
        k = fit.H.shape[0]
        factors = full_centred_spectrum(np.asarray(fit.H).reshape(k, w, w // 2 + 1), w)
        store_learning_results(
            self,
            factors.reshape(k, w * w).T.astype(np.float32),
            np.asarray(fit.W, dtype=np.float32),
            fit,
            choice=choice,
        )
        self.metadata.set_item("LocalFFT.n_components", int(k))

    @property
    def component_choice(self):
        """The evidence for the number of components.

        A ``ComponentChoice`` for ``n_components="auto"``; a
        :class:`~hyperspy_nanoml.imaging.component_number.TextureCount` with
        ``features="texture"``; a
        :class:`~hyperspy_nanoml.imaging.component_number.GivenNumber` (same
        ``n_components``, ``reason``, ``plot()``) when the number was given; None
        only before any decomposition.
        """
        from hyperspy_nanoml.imaging.component_number import GivenNumber, TextureCount
        from hyperspy_nanoml.learn.signal_matrix import component_choice_from

        texture = self.metadata.get_item("LocalFFT.texture_regions")
        if texture is not None and self.learning_results.loadings is not None:
            return TextureCount(
                int(texture.n_regions),
                [float(c) for c in np.asarray(texture.contrast)],
                float(texture.min_contrast),
                given=bool(texture.given),
            )
        choice = component_choice_from(self.learning_results)
        if choice is None and self.learning_results.loadings is not None:
            return GivenNumber(int(self.learning_results.output_dimension))
        return choice

    def _require_decomposition(self):
        if self.learning_results.loadings is None:
            raise RuntimeError(
                "this local-FFT signal has no decomposition yet; run "
                "hyperspy_nanoml.imaging.local_fft.decompose_features or call "
                "local_fft_features(image) with decompose=True"
            )

    def normalized_loadings(self):
        """Loadings as (k, ny, nx), each component scaled to a maximum of 1."""
        self._require_decomposition()
        ny, nx = self.axes_manager.navigation_shape[::-1]
        L = np.asarray(self.learning_results.loadings).T.reshape(-1, ny, nx)
        peak = L.max(axis=(1, 2), keepdims=True)
        return L / np.where(peak > 0, peak, 1)

    # --- maps on the image ---------------------------------------------------

    def loadings_on_image(self, normalize=True, downsample=1):
        """The loadings resampled (bilinear) onto the original image's pixel grid.

        Returns a Signal2D stack of shape (k | H, W) with the image's own
        calibration (lazy for a lazy result). Pixels between the edge and the
        first/last window centre take the value of the nearest centre (a window
        saw them); pixels that no window saw (``edges="drop"``) are NaN, never
        extrapolated. ``downsample`` (int >= 1) averages n x n pixel blocks
        instead, for previews of big images.
        """
        if (
            not isinstance(downsample, (int, np.integer))
            or isinstance(downsample, bool)
            or downsample < 1
        ):
            raise ValueError(
                f"downsample must be an integer >= 1 (1 = every pixel, 4 = one value "
                f"per 4 x 4 pixels), got {downsample!r}"
            )
        self._require_decomposition()
        L = self.normalized_loadings() if normalize else self._raw_loadings()
        p = self.parameters()
        ny, nx = self.axes_manager.navigation_shape[::-1]
        H, W = p["image_shape"]
        Ry = _interp_matrix(H, ny, p["step"], p["window"], downsample)
        Rx = _interp_matrix(W, nx, p["step"], p["window"], downsample)
        if self._lazy:
            import dask.array as da

            # separable: rows interpolated in memory (k x H x nx is small), columns
            # lazily in blocks of 4096 pixels
            rows = np.einsum("yi,kij->kyj", Ry, L.astype(np.float32), optimize=True)
            Rx = da.from_array(Rx, chunks=(4096, -1))
            data = da.from_array(rows, chunks=(-1, 4096, -1)) @ Rx.T
        else:
            data = np.einsum("yi,kij,xj->kyx", Ry, L.astype(np.float32), Rx, optimize=True)
        return self._image_stack(data, "Loadings on image", downsample)

    def _raw_loadings(self):
        ny, nx = self.axes_manager.navigation_shape[::-1]
        return np.asarray(self.learning_results.loadings).T.reshape(-1, ny, nx)

    def _image_stack(self, data, title, downsample=1):
        from hyperspy.signals import Signal2D as _S2

        signal = _S2(data)
        if hasattr(data, "dask"):
            signal = signal.as_lazy()
        image_axes = self.parameters()["image_axes"]
        ax_k = signal.axes_manager.navigation_axes[0]
        ax_k.name = "component"
        for axis, key in zip(signal.axes_manager.signal_axes, ("x", "y"), strict=True):
            cal = image_axes[key]
            axis.name, axis.scale, axis.units = key, cal["scale"] * downsample, cal["units"]
            axis.offset = cal["offset"] + cal["scale"] * (downsample - 1) / 2
        signal.metadata.General.title = f"{title} ({self.metadata.General.title})"
        return signal

    def texture_regions(self):
        """The texture regions of ``features="texture"``, or None.

        Returns a :class:`~hyperspy_nanoml.imaging.texture_features.TextureRegions`
        (labels on its own window grid: window ``window``, step ``window // 4``;
        ``on_image(shape)`` puts them on the pixel grid) rebuilt from
        ``metadata.LocalFFT.texture_regions``, so it survives saving.
        """
        from hyperspy_nanoml.imaging.texture_features import TextureRegions

        t = self.metadata.get_item("LocalFFT.texture_regions")
        if t is None:
            return None
        fine = t.get_item("fine_labels")  # absent in results saved before refinement
        fine = None if fine is None or np.size(fine) == 0 else np.asarray(fine, np.int16)
        return TextureRegions(
            labels=np.asarray(t.labels).astype(np.int16),
            n_regions=int(t.n_regions),
            window=int(t.window),
            grid_step=int(t.grid_step),
            contrast=np.asarray(t.contrast),
            reason=str(t.reason),
            fine_labels=fine,
            fine_step=int(t.get_item("fine_step") or 0) if fine is not None else 0,
        )

    def segmentation(self, on_image=False, method=None):
        """Region label per window (or per image pixel).

        ``method="nmf"``: the dominant NMF component (loadings normalised per
        component before the arg-max, since NMF fixes each component only up to
        a scale); ``method="texture"``: the texture regions of
        ``features="texture"`` (see :meth:`texture_regions`); None (default):
        the texture regions when they were computed, else the NMF.

        Returns a numpy int array: on the window grid ((ny, nx) of this signal
        for the NMF; the texture grid, step ``window // 4``, for the texture
        regions), or (H, W) with ``on_image=True`` (-1 where no window saw the
        pixel).
        """
        if method not in (None, "nmf", "texture"):
            raise ValueError(f'method must be None, "nmf" or "texture", got {method!r}')
        regions = self.texture_regions()
        if method == "texture" and regions is None:
            raise ValueError(
                'no texture regions: run local_fft_features(image, features="texture") '
                'or use method="nmf"'
            )
        if regions is not None and method in (None, "texture"):
            if on_image:
                return regions.on_image(self.parameters()["image_shape"]).astype(np.int16)
            return regions.labels.astype(np.int16)
        if on_image:
            stack = np.asarray(self.loadings_on_image(normalize=True).data)
            seen = np.isfinite(stack[0])
            labels = np.argmax(np.where(np.isfinite(stack), stack, -np.inf), axis=0)
            return np.where(seen, labels, -1).astype(np.int16)
        return np.argmax(self.normalized_loadings(), axis=0).astype(np.int16)

    # --- outputs -------------------------------------------------------------

    def save_report(self, filename, image=None):
        """Write the PDF report: image, scree plot with the chosen number and
        why, loadings overlaid on the image, segmentation, factors, parameters.

        ``image`` (the analysed image, numpy or Signal2D) defaults to the
        preview of it saved in ``metadata.Processing.local_fft_features``, so a
        reloaded result reports too.
        """
        from hyperspy_nanoml.report.local_fft_report import local_fft_report

        self._require_decomposition()
        return local_fft_report(self, filename, image=image)

    def without_spectra(self):
        """A copy for a small ``.hspy``: everything but the 4-D local spectra.

        The copy keeps the axes (window grid and frequency calibration), the
        metadata (parameters, image preview, texture regions) and
        ``learning_results`` (loadings, factors, the component choice), so a
        reloaded copy plots its decomposition, writes its report, its TIFFs and
        its segmentation. Its data are NaN (one value broadcast, a few kB once
        compressed) and ``metadata.LocalFFT.spectra_saved`` is False: recompute
        the spectra from the image with :func:`local_fft_features` when needed.

        Examples
        --------
        >>> small = result.without_spectra()  # doctest: +SKIP
        >>> small.save("result.hspy")  # ~ MB instead of ~50 MB  # doctest: +SKIP
        """
        self._require_decomposition()
        copy = self.deepcopy()
        copy.data = np.broadcast_to(np.float32(np.nan), self.data.shape)
        copy.metadata.set_item("LocalFFT.spectra_saved", False)
        title = copy.metadata.General.title
        if "(spectra not saved)" not in title:
            copy.metadata.General.title = f"{title} (spectra not saved)"
        return copy

    def export_imagej(self, prefix, downsample=1, paths=None):
        """Write ``<prefix>_loadings.tif`` and ``<prefix>_factors.tif``.

        Both are float32 ImageJ hyperstacks (one slice per component) with
        their calibration: the loadings on the image's pixel grid in the
        image's units (one value per ``downsample x downsample`` pixels, the
        pixel size saying so), the factors in spatial frequency (1/units).
        ``paths`` (two paths) overrides the names. Returns the two paths.
        """
        from hyperspy_nanoml.report.imagej import write_imagej_stack

        self._require_decomposition()
        loadings = self.loadings_on_image(normalize=True, downsample=downsample)
        if loadings._lazy:
            loadings.compute(show_progressbar=False)
        k = self.learning_results.output_dimension
        sx, sy = self.axes_manager.signal_axes
        factors = np.asarray(self.learning_results.factors).T.reshape(k, sy.size, sx.size)
        ix, iy = loadings.axes_manager.signal_axes
        if paths is None:
            paths = (f"{prefix}_loadings.tif", f"{prefix}_factors.tif")
        paths = (
            write_imagej_stack(
                paths[0],
                loadings.data,
                spacing=(iy.scale, ix.scale),
                origin=(iy.offset, ix.offset),
                unit=ix.units,
                labels=[f"component {i}" for i in range(k)],
            ),
            write_imagej_stack(
                paths[1],
                factors,
                spacing=(sy.scale, sx.scale),
                origin=(sy.offset, sx.offset),
                unit=sx.units,
                labels=[f"component {i} FFT" for i in range(k)],
            ),
        )
        return paths


class LazyLocalFFTSignal(LazySignal, LocalFFTSignal):
    """Lazy twin of :class:`LocalFFTSignal` (features computed on demand)."""

    _lazy = True


def _interp_matrix(n_pixels, n_windows, step, window, downsample=1):
    """(n_pixels // downsample, n_windows) linear interpolation from window centres.

    Rows of pixels beyond the last window's end (no window saw them) are NaN.
    """
    centre0 = (window - 1) / 2.0
    pixels = np.arange(n_pixels // downsample) * downsample + (downsample - 1) / 2.0
    g = np.clip((pixels - centre0) / step, 0, n_windows - 1)
    i0 = np.minimum(np.floor(g).astype(int), max(n_windows - 2, 0))
    frac = (g - i0).astype(np.float32)
    R = np.zeros((pixels.size, n_windows), np.float32)
    rows = np.arange(pixels.size)
    if n_windows == 1:
        R[:, 0] = 1.0
    else:
        R[rows, i0] = 1.0 - frac
        R[rows, i0 + 1] = frac
    covered = (n_windows - 1) * step + window
    R[pixels > covered - 0.5] = np.nan
    return R


def build_local_fft_signal(X, grid, image_axes, params, image=None, data=None):
    """Wrap the half-spectrum feature matrix ``X`` as a (lazy) LocalFFTSignal."""
    from hyperspy_nanoml.imaging.spectra import full_centred_spectrum, preview_image

    ny, nx = grid
    w = params["window"]
    nh = w // 2 + 1
    lazy = hasattr(X, "dask")
    if lazy:
        half = X.reshape((ny, nx, w, nh))
        full = half.map_blocks(
            full_centred_spectrum,
            w,
            chunks=half.chunks[:2] + ((w,), (w,)),
            dtype=np.float32,
        )
    else:
        full = full_centred_spectrum(X.reshape(ny, nx, w, nh), w)
    ycal, xcal = image_axes
    step, centre = params["step"], (w - 1) / 2.0
    kunit = f"1/{xcal['units']}"
    axes = [
        _axis("y", ny, ycal["scale"] * step, ycal["offset"] + ycal["scale"] * centre, ycal),
        _axis("x", nx, xcal["scale"] * step, xcal["offset"] + xcal["scale"] * centre, xcal),
    ]
    for name, cal in (("ky", ycal), ("kx", xcal)):
        kscale = 1.0 / (w * cal["scale"])
        axes.append(
            {
                "name": name,
                "size": w,
                "scale": kscale,
                "offset": -(w // 2) * kscale,
                "units": kunit if cal is xcal else f"1/{cal['units']}",
                "navigate": False,
            }
        )
    cls = LazyLocalFFTSignal if lazy else LocalFFTSignal
    signal = cls(full, axes=axes)
    title = "image"
    if image is not None and hasattr(image, "metadata"):
        title = image.metadata.General.title or title
    signal.metadata.General.title = f"Local FFT of {title}"
    meta = dict(params)
    meta["image_axes"] = {"y": ycal, "x": xcal}
    signal.metadata.set_item("LocalFFT", meta)
    if data is not None and getattr(data, "ndim", 0) == 2:
        # a preview of the analysed image for the report, saved with the signal
        preview, factor = preview_image(data)
        signal.metadata.set_item(
            "Processing.local_fft_features",
            {"image_preview": preview, "image_preview_factor": int(factor)},
        )
    return signal


def _axis(name, size, scale, offset, cal):
    return {
        "name": name,
        "size": size,
        "scale": scale,
        "offset": offset,
        "units": cal["units"],
        "navigate": True,
    }
