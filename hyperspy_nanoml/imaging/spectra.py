"""Array kernels of the local FFT: tapers, half power spectra of windows and their
point-symmetric expansion (numpy only; no signal classes).

Jany, Janas & Krok, Micron 130, 102800 (2020); see
:mod:`hyperspy_nanoml.imaging.local_fft` for the workflow.
"""

import numpy as np
import scipy.fft

__all__ = [
    "SCALINGS",
    "TAPERS",
    "WINDOWS_PER_BLOCK",
    "full_centred_spectrum",
    "preview_image",
    "taper_window",
    "window_spectra",
]

TAPERS = ("hann", "sqrt_hann", "none")
SCALINGS = ("sqrt", "power", "log")
# windows per block: bounds the memory of one FFT batch (~100 MB at 128 px)
WINDOWS_PER_BLOCK = 1536


def taper_window(window, taper="hann"):
    """The 2-D taper applied to each (mean-removed) window, float32.

    ``"hann"`` is the periodic Hann window (its shifted copies overlap-add to a
    constant at 50 % overlap); ``"sqrt_hann"`` is ``sqrt(outer(hanning,
    hanning))`` as in Jany et al. 2020; ``"none"`` is a flat window.
    """
    if taper == "hann":
        t = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
        return np.outer(t, t).astype(np.float32)
    if taper == "sqrt_hann":
        t = np.hanning(window)
        return np.sqrt(np.outer(t, t)).astype(np.float32)
    if taper == "none":
        return np.ones((window, window), np.float32)
    raise ValueError(f"unknown taper {taper!r}; choose one of {TAPERS}")


def _spectrum_features(spectrum, scaling, reference, out):
    """Scale-free features of a complex half spectrum, written into ``out``.

    ``reference`` is the power a window of white noise with the image's
    standard deviation would have per bin, so the features do not depend on
    the image's intensity scale. The DC bin is set to zero.
    """
    if scaling == "sqrt":
        np.abs(spectrum, out=out)  # amplitude = sqrt(power), without forming the power
        out *= np.float32(1.0 / np.sqrt(reference))
    elif scaling in ("power", "log"):
        np.square(spectrum.real, out=out)
        out += np.square(spectrum.imag)
        out *= np.float32(1.0 / reference)
        if scaling == "log":  # log(1 + P / P_ref): the offset follows the image's scale
            np.log1p(out, out=out)
    else:
        raise ValueError(f"unknown scaling {scaling!r}; choose one of {SCALINGS}")
    out[..., 0, 0] = 0.0
    return out


def window_spectra(image, window, step, taper_array, scaling, reference):
    """Half-spectrum features of every window of an in-memory 2-D image.

    Returns an array of shape ``(ny, nx, window, window // 2 + 1)`` (float32),
    ``ky`` in FFT order (not shifted), ``kx >= 0``. The windows are strided
    views of the image, processed in blocks of rows with one batched FFT per
    block (no Python loop per window).
    """
    from numpy.lib.stride_tricks import sliding_window_view

    views = sliding_window_view(image, (window, window))[::step, ::step]
    ny, nx = views.shape[:2]
    out = np.empty((ny, nx, window, window // 2 + 1), np.float32)
    rows_per_block = max(1, WINDOWS_PER_BLOCK // nx)
    for r0 in range(0, ny, rows_per_block):
        block = views[r0 : r0 + rows_per_block].astype(np.float32)
        block -= block.mean(axis=(-2, -1), keepdims=True)
        block *= taper_array
        spectrum = scipy.fft.rfft2(block, workers=-1)
        _spectrum_features(spectrum, scaling, reference, out[r0 : r0 + rows_per_block])
    return out


def _centred_index(window):
    """Flat index into a half spectrum for every bin of the full centred one."""
    w, nh = window, window // 2 + 1
    ky, kx = np.meshgrid(np.arange(w) - w // 2, np.arange(w) - w // 2, indexing="ij")
    # P(-ky, -kx) = P(ky, kx): negative kx are read from the mirrored bin
    mirror = kx < 0
    row = np.where(mirror, -ky, ky) % w
    col = np.abs(kx)
    return row * nh + col


def full_centred_spectrum(half, window):
    """Expand half spectra (last axes ``window, window//2+1``) to full, centred.

    Uses the point symmetry of the power spectrum of a real image,
    P(-ky, -kx) = P(ky, kx); zero frequency lands at index ``window // 2`` on
    both axes (as after ``fftshift``). One gather, no intermediate copies.
    """
    flat = half.reshape(half.shape[:-2] + (-1,))
    return np.take(flat, _centred_index(window), axis=-1)


def preview_image(data, max_side=1024):
    """A small float32 copy of a 2-D image (f x f block means, f = ceil(side / max_side)).

    Lazy (dask) images are averaged block-wise and computed (one read of the image).
    Returns ``(preview, f)``.
    """
    f = max(1, int(np.ceil(max(data.shape) / max_side)))
    if f > 1:
        h, w = (data.shape[0] // f) * f, (data.shape[1] // f) * f
        data = data[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    if hasattr(data, "compute"):
        data = data.compute()
    return np.asarray(data, dtype=np.float32), f
