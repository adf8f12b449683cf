"""Pages of the local-FFT report (matplotlib figures), one colour per component.

Every component ``i`` has one colour (:func:`component_colours`) used for its
overlay, its panel titles and frames, its class in the dominant-component map
and its FFT pattern's frame. Components are numbered from 0 everywhere, as
HyperSpy's ``get_decomposition_loadings()`` numbers them. Every panel has
calibrated axes with units; maps and patterns have colour bars.
"""

import textwrap

import numpy as np

__all__ = [
    "component_colours",
    "dominant_map_colours",
    "factor_crop_radius",
    "page_factors",
    "page_maps",
    "page_overlays",
    "page_overview",
    "page_texture_regions",
    "region_colours",
]

A4_LANDSCAPE = (11.7, 8.3)


def component_colours(k):
    """RGB colour (floats 0-1) of each of ``k`` components: tab10, then tab20."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return [tuple(float(v) for v in cmap(i % cmap.N)[:3]) for i in range(k)]


def dominant_map_colours(k):
    """The ListedColormap of the dominant-component map (class i gets colour i)."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(component_colours(k))


def _aspect(params):
    """Height / width of the analysed image on the page (calibrated)."""
    H, W = params["image_shape"][:2]
    return float(H) / float(W)


def _extent(params):
    ax = params["image_axes"]
    H, W = params["image_shape"]
    x0, y0 = ax["x"]["offset"], ax["y"]["offset"]
    return (x0, x0 + W * ax["x"]["scale"], y0 + H * ax["y"]["scale"], y0)


def _label_image_axes(ax, params):
    cal = params["image_axes"]
    ax.set_xlabel(f"x ({cal['x']['units']})")
    ax.set_ylabel(f"y ({cal['y']['units']})")


def _wrap(text, width=150):
    return "\n".join(textwrap.wrap(str(text), width))


def _title(result, params):
    source = params.get("source") or result.metadata.General.title
    return (
        f"Local FFT of {source}: window {params['window']} px, step {params['step']} px, "
        f"{result.learning_results.output_dimension} components"
    )


def region_colours(k):
    """RGB colours of ``k`` texture regions (Dark2: distinct from the components')."""
    import matplotlib

    cmap = matplotlib.colormaps["Dark2"]
    return [tuple(float(v) for v in cmap(i % cmap.N)[:3]) for i in range(k)]


def page_texture_regions(result, image, params, labels, f=1):
    """Texture regions (``features="texture"``) over the image and as a plain map."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    regions = result.texture_regions()
    k = regions.n_regions
    colours = region_colours(k)
    H, W = params["image_shape"]
    ext = _extent(params)
    cal = params["image_axes"]
    # labels cover the image's first (H // f) * f rows and (W // f) * f columns
    ext = (ext[0], ext[0] + labels.shape[1] * f * cal["x"]["scale"],
           ext[3] + labels.shape[0] * f * cal["y"]["scale"], ext[3])  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=A4_LANDSCAPE)
    if image is not None:
        axes[0].imshow(image, cmap="gray", extent=_extent(params))
    rgba = np.zeros(labels.shape + (4,), np.float32)
    rgba[..., :3] = np.asarray(colours, np.float32)[labels]
    rgba[..., 3] = 0.45
    axes[0].imshow(rgba, extent=ext, interpolation="nearest")
    axes[0].set_title("texture regions over the image")
    axes[1].imshow(labels, cmap=ListedColormap(colours), vmin=-0.5, vmax=k - 0.5,
                   extent=ext, interpolation="nearest")  # fmt: skip
    axes[1].set_title("texture regions")
    for ax in axes:
        _label_image_axes(ax, params)
    axes[1].legend(
        handles=[Patch(color=colours[i], label=f"region {i}") for i in range(k)],
        fontsize=8, ncol=min(k, 4), loc="upper center", bbox_to_anchor=(0.5, -0.1),
        frameon=False,
    )  # fmt: skip
    fig.suptitle(
        _title(result, params)
        + f"\n{k} texture regions (numbered by area; their own colours: regions are not "
        "NMF components)",
        fontsize=11,
    )
    fig.text(0.04, 0.03, _wrap(result.component_choice.reason), fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.97, top=0.86, bottom=0.22, wspace=0.25)
    return fig


def _panel_figure(n, aspect, *, right=0.0, bottom=0.55, header=1.0):
    """A figure of ``n`` image panels (height / width = ``aspect``) sized to its
    content: the number of columns that gives the largest panels on an A4
    landscape page, and the page's height cut to the rows (no empty half pages).

    ``right``: inches kept free at the right (a colour bar); ``bottom``: inches
    under the last row (axis labels, a legend); ``header``: inches for the title.
    Returns ``(fig, axes)`` with ``axes`` a 2-D array.
    """
    import matplotlib.pyplot as plt

    width, max_height, left = 11.7, 8.3, 0.75
    pad_w, pad_h = 0.85, 0.75  # y labels between columns; title + x label between rows
    layouts = []
    for ncol in range(1, n + 1):
        nrow = int(np.ceil(n / ncol))
        pw = (width - left - right - 0.2 - pad_w * (ncol - 1)) / ncol
        ph = pw * aspect
        room = (max_height - header - bottom - pad_h * (nrow - 1)) / nrow
        if ph > room:  # too tall: shrink to the page's height
            ph, pw = room, room / aspect
        layouts.append((pw * ph, nrow * ncol - n, nrow, ncol, pw, ph))
    largest = max(v[0] for v in layouts)
    # the fewest empty cells among layouts whose panels are at least 80 % of the
    # largest (7 panels: 4 x 2 with one empty cell rather than 3 x 3 with two),
    # then the largest panels
    _, _, nrow, ncol, pw, ph = min(
        (v for v in layouts if v[0] >= 0.8 * largest), key=lambda v: (v[1], -v[0])
    )
    height = header + bottom + nrow * ph + pad_h * (nrow - 1)
    fig, axes = plt.subplots(nrow, ncol, figsize=(width, height), squeeze=False)
    used = left + ncol * pw + pad_w * (ncol - 1)
    fig.subplots_adjust(
        left=left / width,
        right=used / width,
        top=1 - header / height,
        bottom=bottom / height,
        wspace=pad_w / pw,
        hspace=pad_h / ph,
    )
    return fig, axes


def page_overview(result, image, params):
    """Image, scree plot (when the number was chosen), parameters and why."""
    import matplotlib.pyplot as plt

    choice = result.component_choice
    texture = getattr(choice, "method", "") == "texture_regions"
    evidence = texture or getattr(choice, "eigenvalues", None) is not None
    fig = plt.figure(figsize=A4_LANDSCAPE)
    if evidence:
        ax_img = fig.add_axes([0.06, 0.33, 0.38, 0.55])
        ax_scree = fig.add_axes([0.62, 0.33, 0.34, 0.55])
    else:
        ax_img, ax_scree = fig.add_axes([0.2, 0.3, 0.6, 0.6]), None
    if image is not None:
        im = ax_img.imshow(image, cmap="gray", extent=_extent(params))
        fig.colorbar(im, ax=ax_img, fraction=0.046, pad=0.02, label="intensity (counts)")
        _label_image_axes(ax_img, params)
        ax_img.set_title("analysed image")
    else:
        ax_img.axis("off")
        ax_img.text(0.5, 0.5, "image not available", ha="center", va="center")
    if texture:
        choice.plot(ax_scree)
    elif evidence:
        ev = np.asarray(choice.eigenvalues, float)
        ratio = ev / ev.sum() if ev.sum() > 0 else ev
        idx = np.arange(ratio.size)
        q = int(choice.n_significant)
        ax_scree.semilogy(
            idx, ratio, "o-", color="0.5", ms=4, label="centred PCA eigenvalue"
        )
        ax_scree.semilogy(idx[:q], ratio[:q], "o", color="C3", ms=7, label="significant")
        ax_scree.axvline(q - 0.5, color="C3", ls="--", lw=1)
        ax_scree.set_xlabel("PCA eigenvalue index (0 = largest)")
        ax_scree.set_ylabel("explained variance ratio")
        ax_scree.set_title(
            f"{q} significant + 1 = {choice.n_components} NMF components (0-{choice.n_components - 1})"
        )
        ax_scree.legend(loc="upper right", fontsize=8)
    region = params.get("region") or {}
    rows = [
        f"window {params['window']} px, step {params['step']} px, taper {params['taper']}, "
        f"features: {params['scaling']} of the half power spectrum (rfft2), DC removed"
        + (
            "; regions: texture_regions (log-polar sectors, window step "
            f"{params['window'] // 4} px)"
            if params.get("features") == "texture"
            else ""
        ),
        f"{result.axes_manager.navigation_size} windows "
        f"({' x '.join(str(n) for n in result.axes_manager.navigation_shape)}), "
        f"edges: {params.get('edges', 'drop')}"
        + (
            f" (mirror-padded by {params['padding'][0]} rows, {params['padding'][1]} columns)"
            if params.get("edges") == "reflect" and any(params.get("padding", (0, 0)))
            else ""
        ),
        f"region: {region.get('reason', 'whole image analysed')}",
        f"number of components: {choice.reason if choice is not None else 'n/a'}",
    ]
    fig.text(0.04, 0.03, "\n".join(_wrap(r) for r in rows), fontsize=8, va="bottom")
    fig.suptitle(_title(result, params), fontsize=12)
    return fig


def _overlay(ax, image, loading, colour, extent):
    """Grey image with the loading as the component's colour, opacity = loading."""
    rgba = np.zeros(loading.shape + (4,), np.float32)
    rgba[..., :3] = colour
    rgba[..., 3] = 0.85 * np.clip(np.nan_to_num(loading, nan=0.0), 0, 1)
    if image is not None:
        ax.imshow(image, cmap="gray", extent=extent)
    ax.imshow(rgba, extent=extent, interpolation="bilinear")


def _frame(ax, colour, width=2.5):
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def page_overlays(result, image, params, maps):
    """Each component's loading over the image in its colour, and the dominant map."""
    from matplotlib.patches import Patch

    k = maps.shape[0]
    colours = component_colours(k)
    extent = _extent(params)
    fig, axes = _panel_figure(k + 1, _aspect(params), bottom=0.9)
    for i in range(k):
        ax = axes.flat[i]
        _overlay(ax, image, maps[i], colours[i], extent)
        ax.set_title(f"component {i}", color=colours[i], fontweight="bold")
        _frame(ax, colours[i])
        _label_image_axes(ax, params)
    seen = np.isfinite(maps[0])
    dominant = np.where(seen, np.argmax(np.nan_to_num(maps, nan=-1.0), axis=0), -1)
    ax = axes.flat[k]
    ax.imshow(
        np.ma.masked_less(dominant, 0),
        cmap=dominant_map_colours(k),
        vmin=-0.5,
        vmax=k - 0.5,
        extent=extent,
        interpolation="nearest",
    )
    ax.set_title("dominant component")
    _label_image_axes(ax, params)
    ax.legend(
        handles=[Patch(color=colours[i], label=f"{i}") for i in range(k)],
        fontsize=7,
        ncol=min(k, 6),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.25),
        frameon=False,
    )
    for ax in axes.flat[k + 1 :]:
        ax.axis("off")
    fig.suptitle(
        _title(result, params)
        + "\nloadings over the image (opacity = loading, each scaled to max 1)",
        fontsize=11,
    )
    return fig


def page_maps(result, params, maps):
    """Plain loading maps with colour bars (no image under them)."""

    k = maps.shape[0]
    colours = component_colours(k)
    extent = _extent(params)
    fig, axes = _panel_figure(k, _aspect(params), right=1.3)
    for i in range(k):
        ax = axes.flat[i]
        im = ax.imshow(maps[i], cmap="viridis", vmin=0, vmax=1, extent=extent)
        ax.set_title(f"component {i}", color=colours[i], fontweight="bold")
        _frame(ax, colours[i])
        _label_image_axes(ax, params)
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.suptitle(
        _title(result, params) + "\nloading maps (NaN = not seen by any window)",
        fontsize=11,
    )
    top, bottom = fig.subplotpars.top, fig.subplotpars.bottom
    cax = fig.add_axes([1 - 0.9 / 11.7, bottom, 0.015, top - bottom])
    fig.colorbar(
        im, cax=cax, label="loading (each component scaled to max 1), shared scale"
    )
    return fig


def factor_crop_radius(F, k_axis, fraction=0.9):
    """Half-width (in frequency units) of the centred square holding ``fraction`` of
    the factors' summed intensity above its median (the flat noise floor), rounded
    up to a tenth of the range.
    """
    total = np.asarray(F, float).sum(axis=0)
    total = np.clip(total - np.median(total), 0, None)
    n = total.shape[0]
    c = n // 2
    yy, xx = np.indices(total.shape)
    cheb = np.maximum(abs(yy - c), abs(xx - c))
    order = np.bincount(cheb.ravel(), total.ravel())
    cum = np.cumsum(order) / max(order.sum(), 1e-30)
    r = int(np.searchsorted(cum, fraction)) + 2
    r = min(c, int(np.ceil(r / max(1, c // 10)) * max(1, c // 10)))
    return r * k_axis.scale, r


def page_factors(result, params):
    """FFT patterns with one shared, labelled log contrast, cropped to the signal."""

    k = result.learning_results.output_dimension
    colours = component_colours(k)
    sx, sy = result.axes_manager.signal_axes
    F = np.asarray(result.learning_results.factors).T.reshape(k, sy.size, sx.size)
    _, r = factor_crop_radius(F, sx)
    c = sx.size // 2
    crop = F[:, c - r : c + r + 1, c - r : c + r + 1]
    positive = crop[crop > 0]
    vmax = 0.0
    vmin = float(np.log10(np.percentile(positive, 5))) if positive.size else -3.0
    vmin = max(vmin, -4.0)
    half = (r + 0.5) * sx.scale
    extent = (-half, half, half, -half)
    fig, axes = _panel_figure(k, 1.0, right=1.3)
    im = None
    for i in range(k):
        ax = axes.flat[i]
        im = ax.imshow(
            np.log10(np.maximum(crop[i], 10**vmin)),
            cmap="magma",
            vmin=vmin,
            vmax=vmax,
            extent=extent,
        )
        ax.set_title(f"component {i}", color=colours[i], fontweight="bold")
        _frame(ax, colours[i])
        ax.set_xlabel(f"kx ({sx.units})")
        ax.set_ylabel(f"ky ({sy.units})")
    for ax in axes.flat[k:]:
        ax.axis("off")
    fig.suptitle(
        _title(result, params)
        + f"\nfactors: FFT patterns (zero frequency at the centre; |k| <= {half:.3g} {sx.units} shown)",
        fontsize=11,
    )
    top, bottom = fig.subplotpars.top, fig.subplotpars.bottom
    cax = fig.add_axes([1 - 0.9 / 11.7, bottom, 0.015, top - bottom])
    fig.colorbar(im, cax=cax, label="log10 factor intensity (each max 1), shared scale")
    return fig
