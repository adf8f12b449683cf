"""The local-FFT PDF report: what was analysed, how many components and why,
where each component lives on the image, and what its FFT pattern looks like."""

import numpy as np

from hyperspy_nanoml.report.local_fft_pages import (
    page_factors,
    page_maps,
    page_overlays,
    page_overview,
    page_texture_regions,
)
from hyperspy_nanoml.report.pdf import write_pdf

# previews of at most 512 px on their long side: a panel is 2-5 inches wide on an
# A4 page, so 512 px is >= 100 dpi there; larger previews only slow the rendering
PREVIEW_SIDE = 512


def _preview_factor(shape, max_side=PREVIEW_SIDE):
    return max(1, int(np.ceil(max(shape) / max_side)))


def _preview(image, f):
    """A small in-memory copy of the image for display (f x f block average)."""
    if image is None:
        return None
    data = image.data if hasattr(image, "axes_manager") else image
    if data.ndim != 2:
        return None
    if f > 1:
        h, w = (data.shape[0] // f) * f, (data.shape[1] // f) * f
        data = data[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    return np.asarray(data, dtype=np.float32)


def local_fft_report(result, filename, image=None):
    """Write the report of a decomposed :class:`LocalFFTSignal` to ``filename``."""
    params = result.parameters()
    if image is None:
        saved = result.metadata.get_item("Processing.local_fft_features.image_preview")
        if saved is not None:
            saved = np.asarray(saved, dtype=np.float32)
            image = _preview(saved, _preview_factor(saved.shape))
    else:
        data = image.data if hasattr(image, "axes_manager") else np.asarray(image)
        region = params.get("region") or {}
        if region.get("crop") and tuple(data.shape) != tuple(params["image_shape"]):
            y0, y1, x0, x1 = region["crop"]
            data = data[y0:y1, x0:x1]
        image = _preview(data, _preview_factor(params["image_shape"]))
    f = _preview_factor(params["image_shape"])
    maps = np.asarray(result.loadings_on_image(normalize=True, downsample=f).data)
    pages = [
        page_overview(result, image, params),
        page_overlays(result, image, params, maps),
        page_maps(result, params, maps),
        page_factors(result, params),
    ]
    regions = result.texture_regions()
    if regions is not None:
        H, W = params["image_shape"]
        labels = regions.on_image((H // f * f, W // f * f))[f // 2 :: f, f // 2 :: f]
        pages.insert(1, page_texture_regions(result, image, params, labels, f))
    return write_pdf(filename, pages, metadata={"Title": result.metadata.General.title})
