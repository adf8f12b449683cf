"""The local-FFT PDF report: what was analysed, how many components and why,
where each component lives on the image, and what its FFT pattern looks like."""

import numpy as np

from hyperspy_nanoml.report.pdf import write_pdf

_CMAPS = ("Reds", "Blues", "Greens", "Purples", "Oranges", "Greys", "YlOrBr", "PuRd")


def _preview_factor(shape, max_side=1024):
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


def _extent(params, shape):
    """matplotlib extent of the image in calibrated units."""
    ax = params["image_axes"]
    H, W = params["image_shape"]
    x0, y0 = ax["x"]["offset"], ax["y"]["offset"]
    return (x0, x0 + W * ax["x"]["scale"], y0 + H * ax["y"]["scale"], y0)


def _page_overview(result, image, params):
    import matplotlib.pyplot as plt

    choice = result.component_choice
    fig, axes = plt.subplots(1, 2, figsize=(11.7, 5.8))
    unit = params["image_axes"]["x"]["units"]
    if image is not None:
        axes[0].imshow(image, cmap="gray", extent=_extent(params, image.shape))
        axes[0].set_xlabel(unit)
        axes[0].set_title(result.metadata.General.title.replace("Local FFT of ", ""))
    else:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, "image not available", ha="center", va="center")
    if choice is not None:
        choice.plot(ax=axes[1])
    else:
        axes[1].axis("off")
        axes[1].text(0.5, 0.5, "n_components given by the user", ha="center")
    k = result.learning_results.output_dimension
    rows = [
        f"window {params['window']} px, step {params['step']} px, taper {params['taper']}",
        f"features: {params['scaling']} of the half power spectrum (rfft2), DC removed",
        f"{result.axes_manager.navigation_size} windows, {k} NMF components",
    ]
    if choice is not None:
        rows.append(choice.reason)
    fig.text(0.02, 0.02, "\n".join(_wrap(r, 160) for r in rows), fontsize=7.5, va="bottom")
    fig.suptitle("Local FFT feature discovery (Jany et al., Micron 130, 102800, 2020)")
    fig.subplots_adjust(bottom=0.25)
    return fig


def _wrap(text, width):
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _page_loadings(result, image, params):
    import matplotlib.pyplot as plt

    k = result.learning_results.output_dimension
    f = _preview_factor(params["image_shape"])
    maps = np.asarray(result.loadings_on_image(normalize=True, downsample=f).data)
    ncol = min(k + 1, 4)
    nrow = int(np.ceil((k + 1) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(11.7, 3.2 * nrow + 0.8), squeeze=False)
    extent = _extent(params, None)
    for i in range(k):
        ax = axes.flat[i]
        if image is not None:
            ax.imshow(image, cmap="gray", extent=extent)
            ax.imshow(maps[i], cmap=_CMAPS[i % len(_CMAPS)], alpha=0.55, extent=extent)
        else:
            ax.imshow(maps[i], cmap="viridis", extent=extent)
        ax.set_title(f"component {i}")
    seg = np.argmax(maps, axis=0)
    ax = axes.flat[k]
    ax.imshow(seg, cmap="tab10", vmin=0, vmax=9, extent=extent, interpolation="nearest")
    ax.set_title("dominant component")
    for ax in axes.flat[k + 1 :]:
        ax.axis("off")
    fig.suptitle("Loadings (feature maps) on the image, each scaled to max 1")
    fig.tight_layout()
    return fig


def _page_factors(result, params):
    import matplotlib.pyplot as plt

    k = result.learning_results.output_dimension
    sx, sy = result.axes_manager.signal_axes
    F = np.asarray(result.learning_results.factors).T.reshape(k, sy.size, sx.size)
    ncol = min(k, 4)
    nrow = int(np.ceil(k / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(11.7, 3.2 * nrow + 0.8), squeeze=False)
    extent = (sx.low_value, sx.high_value, sy.high_value, sy.low_value)
    for i in range(k):
        ax = axes.flat[i]
        ax.imshow(np.log1p(100 * F[i]), cmap="inferno", extent=extent)
        ax.set_title(f"component {i}")
        ax.set_xlabel(sx.units)
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.suptitle("Factors: FFT patterns (log display, zero frequency at the centre)")
    fig.tight_layout()
    return fig


def local_fft_report(result, filename, image=None):
    """Write the report of a decomposed :class:`LocalFFTSignal` to ``filename``."""
    params = result._params()
    if image is None:
        saved = result.metadata.get_item("Processing.local_fft_features.image_preview")
        image = None if saved is None else np.asarray(saved, dtype=np.float32)
    else:
        image = _preview(image, _preview_factor(params["image_shape"]))
    pages = (
        _page_overview(result, image, params),
        _page_loadings(result, image, params),
        _page_factors(result, params),
    )
    return write_pdf(filename, pages, metadata={"Title": result.metadata.General.title})
