"""The C-AFM I-V clustering report: where the clusters are, what their curves look like,
their physics, and why this number of clusters.

Pages (one colour per cluster on every page; every axis labelled with its unit):

1. the current map at a chosen bias, the label map laid over it, and the label map
   alone with the cluster sizes;
2. the mean +- standard deviation curve of every cluster on linear and on
   logarithmic (|I|) axes;
3. the physics table (zero-bias conductance, rectification, onset, diode fit with the
   area assumption) and the preprocessing record;
4. the evidence for k (minimum pairwise separation against k) and the PCA spectrum.
"""

from __future__ import annotations

import textwrap

import numpy as np

from hyperspy_nanoml.report.pdf import write_pdf

__all__ = ["write_cafm_report", "current_unit"]

_PREFIXES = (
    (1e-15, "fA"),
    (1e-12, "pA"),
    (1e-9, "nA"),
    (1e-6, "µA"),
    (1e-3, "mA"),
    (1.0, "A"),
)


def current_unit(values) -> tuple[float, str]:
    """``(scale, unit)`` so that ``values / scale`` reads in 0.1-1000 of ``unit``.

    Examples
    --------
    >>> current_unit([2e-9, -5e-10])
    (1e-09, 'nA')
    """
    v = np.asarray(values, dtype=np.float64)
    v = np.abs(v[np.isfinite(v)])
    peak = v.max() if v.size else 0.0
    scale, unit = _PREFIXES[-1]
    for s, u in _PREFIXES:
        if peak < 1000 * s:
            return s, u
    return scale, unit


def _wrap(text, width=150):
    return "\n".join(textwrap.wrap(str(text), width))


def _nav_extent(result):
    """(2-D map view, extent, x label, y label) of the navigation grid."""
    am = result.signal.axes_manager
    nav = am.navigation_axes  # HyperSpy order: x first
    if len(nav) >= 2:
        x, y = nav[0], nav[1]
        ex = [x.axis[0], x.axis[-1], y.axis[-1], y.axis[0]]
        dx = x.scale if x.is_uniform else 0
        dy = y.scale if y.is_uniform else 0
        ex = [ex[0] - dx / 2, ex[1] + dx / 2, ex[2] + dy / 2, ex[3] - dy / 2]
        return ex, _axis_label(x), _axis_label(y)
    x = nav[0]
    return [x.axis[0], x.axis[-1], 0.5, -0.5], _axis_label(x), ""


def _axis_label(ax):
    units = ax.units if isinstance(ax.units, str) and ax.units else "px"
    name = ax.name if isinstance(ax.name, str) and ax.name else "axis"
    return f"{name} ({units})"


def _as_map(values):
    """Any navigation-shaped array as a 2-D image (first 2 array axes; 1-D: one row)."""
    a = np.asarray(values)
    if a.ndim == 1:
        return a[None, :]
    if a.ndim > 2:
        return a.reshape(a.shape[0], -1) if a.ndim == 2 else a[(0,) * (a.ndim - 2)]
    return a


def _current_map(result, bias):
    if bias is None or np.isclose(bias, result.map_bias):
        return result.current_map, result.map_bias
    j = int(np.argmin(np.abs(result.bias - float(bias))))
    data = result.signal.isig[j].data  # one bias plane: a read of lazy data
    if hasattr(data, "compute"):
        data = data.compute()
    return np.asarray(data), float(result.bias[j])


def _label_cmap(result):
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(["#bdbdbd", *result.colors])
    norm = BoundaryNorm(np.arange(-1.5, result.n_clusters + 0.5), cmap.N)
    return cmap, norm


def _legend_handles(result, with_sizes=True):
    from matplotlib.patches import Patch

    total = max(int(result.counts.sum()), 1)
    handles = []
    for j in range(result.n_clusters):
        text = f"cluster {j}"
        if with_sizes:
            text += (
                f": {int(result.counts[j])} curves ({100 * result.counts[j] / total:.1f} %)"
            )
        handles.append(Patch(color=result.colors[j], label=text))
    if (result.label_array < 0).any():
        n_ex = int((result.label_array < 0).sum())
        handles.append(Patch(color="#bdbdbd", label=f"excluded: {n_ex} curves"))
    return handles


def _page_maps(result, bias):
    import matplotlib.pyplot as plt
    from matplotlib.colors import SymLogNorm

    cmap_map, vbias = _current_map(result, bias)
    cur = _as_map(cmap_map).astype(np.float64)
    labels = _as_map(result.label_array)
    extent, xl, yl = _nav_extent(result)
    scale, unit = current_unit(cur)
    fig, axes = plt.subplots(1, 3, figsize=(11.7, 4.6), constrained_layout=True)
    finite = cur[np.isfinite(cur)]
    lin = max(float(result.preprocessing.get("i0", 0.0)), 1e-30) / scale
    vmax = float(np.abs(finite).max()) / scale if finite.size else 1.0
    linthresh = min(lin, vmax) if vmax > 0 else 1.0
    low = float(finite.min()) / scale if finite.size else 0.0
    p1 = float(np.percentile(finite, 1)) / scale if finite.size else 0.0
    if p1 >= -linthresh:  # one polarity (e.g. forward bias), noise aside: sequential
        norm = SymLogNorm(linthresh=linthresh, vmin=min(low, 0.0), vmax=vmax)
        cmap = "viridis"
    else:
        norm = SymLogNorm(linthresh=linthresh, vmin=-vmax, vmax=vmax)
        cmap = "RdBu_r"
    im = axes[0].imshow(cur / scale, cmap=cmap, norm=norm, extent=extent)
    cb = fig.colorbar(
        im, ax=axes[0], shrink=0.8, label=f"current at {vbias:+.3g} V ({unit})"
    )
    if vmax > linthresh > 0:  # decades above the linear range, and 0: no crowded labels
        dec = 10.0 ** np.arange(np.ceil(np.log10(linthresh)), np.floor(np.log10(vmax)) + 1)
        ticks = np.r_[-dec[::-1] if cmap == "RdBu_r" else [], 0.0, dec]
        cb.set_ticks(ticks)
    axes[0].set_title(f"current at {vbias:+.3g} V")
    lcmap, lnorm = _label_cmap(result)
    axes[1].imshow(cur / scale, cmap="gray", norm=norm, extent=extent)
    axes[1].imshow(labels, cmap=lcmap, norm=lnorm, alpha=0.5, extent=extent,
                   interpolation="nearest")  # fmt: skip
    axes[1].set_title("clusters over the current map")
    axes[2].imshow(labels, cmap=lcmap, norm=lnorm, extent=extent, interpolation="nearest")
    axes[2].set_title(f"{result.n_clusters} clusters (0 = least conductive)")
    for ax in axes:
        ax.set_xlabel(xl)
        ax.set_ylabel(yl or "row")
    axes[2].legend(
        handles=_legend_handles(result), loc="upper left", bbox_to_anchor=(1.02, 1.0),
        fontsize=7, frameon=False,
    )  # fmt: skip
    title = result.signal.metadata.General.title
    fig.suptitle(f"k-means clustering of the I-V curves: {title}")
    return fig


def _page_curves(result):
    import matplotlib.pyplot as plt

    b = result.bias
    order = np.argsort(b)
    b = b[order]
    mean = result.mean_curves[:, order]
    std = result.std_curves[:, order]
    scale, unit = current_unit(mean)
    floor = max(float(result.preprocessing.get("noise_floor", 0.0)), 1e-30)
    fig, axes = plt.subplots(1, 2, figsize=(11.7, 5.2), constrained_layout=True)
    bunit = result.signal.axes_manager.signal_axes[0].units or "V"
    for j in range(result.n_clusters):
        c = result.colors[j]
        axes[0].plot(b, mean[j] / scale, color=c, lw=1.5, label=f"cluster {j}")
        axes[0].fill_between(b, (mean[j] - std[j]) / scale, (mean[j] + std[j]) / scale,
                             color=c, alpha=0.25, lw=0)  # fmt: skip
        a = np.abs(mean[j])
        lo = np.maximum(a - std[j], floor)
        hi = np.maximum(a + std[j], floor)
        axes[1].semilogy(b, np.maximum(a, floor), color=c, lw=1.5, label=f"cluster {j}")
        axes[1].fill_between(b, lo, hi, color=c, alpha=0.25, lw=0)
    axes[0].set_xlabel(f"bias ({bunit})")
    axes[0].set_ylabel(f"current ({unit})")
    axes[0].set_title("mean ± standard deviation per cluster")
    axes[0].axhline(0, color="0.7", lw=0.5)
    axes[1].set_xlabel(f"bias ({bunit})")
    axes[1].set_ylabel("|current| (A)")
    axes[1].set_title(f"|mean| ± standard deviation (floor: noise {floor:.2g} A)")
    axes[1].axhline(floor, color="0.6", ls=":", lw=1)
    for ax in axes:
        ax.legend(fontsize=8, loc="best")
    return fig


def _fmt(v, spec=".3g", std=None):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    text = format(float(v), spec)
    if std is not None and np.isfinite(std):
        text += " ± " + format(float(std), ".2g")
    return text


def _scaled(v, factor):
    return None if v is None else float(v) * factor


def _page_physics(result):
    import matplotlib.pyplot as plt

    cols = [
        "cluster",
        "curves (%)",
        "Σ|I| / Σ|V| (S)\n(order)",
        "G(0 V) (S)",
        "rectification\n|I(+V)/I(-V)|",
        "onset (V)",
        "barrier φB (eV)",
        "ideality n",
        "Rs (MΩ)",
        "Is (A)",
    ]
    total = max(int(result.counts.sum()), 1)
    cells = []
    for p in result.physics_table():
        j = p["cluster"]
        cells.append(
            [
                str(j),
                f"{p['n_curves']} ({100 * p['n_curves'] / total:.1f})",
                _fmt(p.get("chord_conductance")),
                _fmt(p.get("zero_bias_conductance_S")),
                _fmt(p.get("rectification_ratio")),
                _fmt(p.get("onset_voltage_V"), ".3f"),
                _fmt(p.get("barrier_height_eV"), ".3f", p.get("barrier_height_eV_std")),
                _fmt(p.get("ideality"), ".3f", p.get("ideality_std")),
                _fmt(
                    _scaled(p.get("series_resistance_ohm"), 1e-6),
                    ".3g",
                    _scaled(p.get("series_resistance_ohm_std"), 1e-6),
                ),
                _fmt(p.get("saturation_current_A"), ".3g"),
            ]
        )
    fig = plt.figure(figsize=(11.7, 8.3))
    ax = fig.add_axes([0.03, 0.55, 0.94, 0.38])
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=cols, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1.0, 1.6)
    for j in range(len(cells)):
        table[j + 1, 0].set_facecolor(result.colors[j])
        table[j + 1, 0].get_text().set_color("white")
    ax.set_title("Physics of each cluster's mean curve", fontsize=12)
    prep = result.preprocessing
    par = result.parameters
    onset = result.physics[0].get("onset_threshold_A") if result.physics else None
    lines = [
        "Diode fits (thermionic emission with series resistance, exact Lambert-W form; "
        "Cheung & Cheung start) only on clusters whose mean curve rectifies "
        "(|I(+V)/I(-V)| >= 10 or <= 0.1); φB is the apparent barrier for "
        f"T = {par['temperature_K']:g} K ({par['temperature_source']}), contact area "
        f"{par['contact_area_m2']:.3g} m² ({par['contact_area_source']}) and Richardson "
        f"constant {par['richardson_A_m2_K2']:.4g} A m⁻² K⁻² ({par['richardson_source']}); "
        "one decade of area moves φB by kT/q ln 10 (59.5 meV at 300 K).",
        f"G(0 V): slope of a line through the points near 0 V; onset: bias beyond which "
        f"the mean |I| stays above {_fmt(onset)} A (10 x the noise floor).",
        f"Preprocessing: offset {prep.get('offset_method')} ({_fmt(prep.get('offset'))} A), "
        f"noise floor {_fmt(prep.get('noise_floor'))} A, scaling {par['scaling']} with "
        f"I0 = {_fmt(prep.get('i0'))} A ({prep.get('i0_source')}), features "
        f"{par['features']}, denoising {par['denoise']}"
        + (f" ({par['n_components']} PCA components)" if par["denoise"] == "pca" else "")
        + f"; saturation rails: {_fmt(prep['saturation']['low'])} / "
        f"{_fmt(prep['saturation']['high'])} A ({prep['saturation']['source']}); "
        f"saturated points per cluster: {', '.join(str(int(v)) for v in result.saturated_points)}.",
        f"{result.passes_over_data} passes over the data ({'lazy' if par['lazy'] else 'in memory'}), "
        f"converged: {result.converged}; random_state = {par['random_state']}; sample of "
        f"{min(par['sample_size'], int(result.counts.sum()))} curves for the noise floor, "
        "PCA and k.",
        *(f"Note: {n}" for n in result.notes),
    ]
    fig.text(0.04, 0.50, "\n\n".join(_wrap(t, 165) for t in lines), va="top", fontsize=8)
    return fig


def _page_choice(result):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.7, 5.6))
    if result.choice is not None:
        result.choice.plot(ax=axes[0])
        reason = result.choice.reason
    else:
        axes[0].axis("off")
        axes[0].text(0.5, 0.5, f"k = {result.n_clusters} given by the user", ha="center")
        reason = f"k = {result.n_clusters} was given (n_clusters={result.n_clusters})."
    ratio = result.preprocessing.get("explained_variance_ratio")
    if ratio is not None and len(ratio):
        idx = np.arange(1, len(ratio) + 1)
        axes[1].semilogy(idx, ratio, "o-", color="0.3", ms=4)
        axes[1].set_xlabel("PCA component")
        axes[1].set_ylabel("explained variance ratio (dimensionless)")
        axes[1].set_title("PCA of the scaled curves (sample), kept components")
        axes[1].set_xticks(idx)
    else:
        axes[1].axis("off")
    fig.text(0.03, 0.02, _wrap("Why this k: " + reason, 170), fontsize=8, va="bottom")
    fig.subplots_adjust(bottom=0.22, wspace=0.3)
    fig.suptitle("Choice of the number of clusters")
    return fig


def write_cafm_report(result, path, *, bias: float | None = None):
    """Write the PDF report of an :class:`~hyperspy_nanoml.cafm.cluster.IVClusterResult`.

    Parameters
    ----------
    result : IVClusterResult
    path : str or Path
        The PDF (written whole or not at all; ``.pdf`` appended when missing).
    bias : float, optional
        Bias (V) of the current map under the labels; default ``result.map_bias``
        (kept while clustering). Another bias reads that plane of the data.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> write_cafm_report(result, "clusters.pdf")  # doctest: +SKIP
    """

    def pages():
        yield _page_maps(result, bias)
        yield _page_curves(result)
        yield _page_physics(result)
        yield _page_choice(result)

    title = str(result.signal.metadata.General.title)
    return write_pdf(
        path,
        pages(),
        metadata={"Title": f"C-AFM I-V clustering: {title}", "Subject": "kmeans_cluster"},
    )
