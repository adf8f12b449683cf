"""Report and CSV export of :func:`hyperspy_nanoml.eds.bss_quantify.bss_quantify`.

Pages: the component maps; the component spectra with the quantified elements' line
markers (log scale, with the plain-NMF spectra dashed for comparison); the composition
table with 1σ uncertainties, purity and stability; the evidence for the number of
components (scree with the split, restart similarity, purity histogram). One colour per
component on every page. Files are written whole or not at all.

Example
-------
>>> save_bss_report(result, "map_bss.pdf")  # doctest: +SKIP
>>> export_csv(result, "map_bss")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from hyperspy_nanoml.report.atomic import atomic_path
from hyperspy_nanoml.report.pdf import write_pdf

__all__ = ["component_colours", "export_csv", "save_bss_report"]


def component_colours(k: int) -> list:
    """One colour per component (matplotlib's tab10, then tab20)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]


def _page_maps(result, colours):
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    k = result.n_components
    data = np.asarray(result.maps.data)
    ncol = min(k, 3)
    nrow = -(-k // ncol)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(4.2 * ncol, 3.8 * nrow + 0.6), squeeze=False
    )
    sig_axes = result.maps.axes_manager.signal_axes
    for j in range(nrow * ncol):
        a = axes.flat[j]
        if j >= k:
            a.axis("off")
            continue
        cmap = LinearSegmentedColormap.from_list(f"c{j}", ["white", colours[j]])
        if data.ndim == 3:
            x, y = sig_axes[0], sig_axes[1]
            extent = (
                x.offset - 0.5 * x.scale,
                x.offset + (x.size - 0.5) * x.scale,
                y.offset + (y.size - 0.5) * y.scale,
                y.offset - 0.5 * y.scale,
            )
            im = a.imshow(
                data[j], cmap=cmap, extent=extent, vmin=0, vmax=max(1.0, np.nanmax(data[j]))
            )
            a.set_xlabel(f"{x.name} ({x.units})")
            a.set_ylabel(f"{y.name} ({y.units})")
            fig.colorbar(im, ax=a, label="fraction of a pure pixel", shrink=0.8)
        else:
            x = sig_axes[0]
            a.plot(x.axis, data[j], color=colours[j])
            a.set_xlabel(f"{x.name} ({x.units})")
            a.set_ylabel("fraction of a pure pixel")
        at = result.atomic_percent[j]
        label = ", ".join(
            f"{el} {v:.0f}" for el, v in sorted(at.items(), key=lambda t: -t[1])[:3]
        )
        a.set_title(f"component {j}: {label} at.%", color=colours[j], fontsize=10)
    fig.suptitle("bss_quantify: component maps", fontsize=12)
    fig.tight_layout()
    return fig


def _line_markers(result):
    """(name, energy) of the line each element was quantified with (one per element)."""
    from hyperspy_nanoml.eds import xray_data

    used = {}
    for q in result.quantifications:
        for el, line in dict(getattr(q, "lines", {}) or {}).items():
            used.setdefault(el, str(line))
    out = []
    for el in result.elements:
        line = used.get(el)
        try:
            if line and "_" in line:
                out.append((line, float(xray_data.line_energy(line))))
            else:
                fam = line if line in ("K", "L", "M") else "K"
                out.append(xray_data.principal_line(el, fam))
        except (ValueError, KeyError):
            continue
    return out


def _page_spectra(result, colours):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 6.5))
    spec0 = result.spectra[0]
    axis = spec0.axes_manager.signal_axes[0]
    e = np.asarray(axis.axis, dtype=float)
    units = str(axis.units)
    if units.lower() == "ev":
        e = e / 1000.0
    unm = result.unmixing
    top = 1.0
    for j, spec in enumerate(result.spectra):
        y = np.asarray(spec.data, dtype=float)
        top = max(top, float(y.max()))
        ax.plot(e, np.maximum(y, 0.3), color=colours[j], lw=1.0, label=f"component {j}")
        nmf = unm.nmf_spectra[j] * y.sum()
        ax.plot(e, np.maximum(nmf, 0.3), color=colours[j], lw=0.8, ls="--", alpha=0.6)
    ax.set_yscale("log")
    ax.set_ylim(max(top * 1e-4, 0.3), top * 3)
    e0 = float(result.parameters["beam_energy_keV"])
    ax.set_xlim(max(e[0], 0.0), min(e[-1], e0 + 0.5))
    for name, energy in _line_markers(result):
        if ax.get_xlim()[0] <= energy <= ax.get_xlim()[1]:
            ax.axvline(energy, color="0.6", lw=0.6, ls=":")
            ax.text(
                energy,
                top * 2.2,
                name.replace("_", " "),
                rotation=90,
                fontsize=7,
                ha="center",
                va="top",
                color="0.3",
            )
    ax.set_xlabel("energy (keV)")
    ax.set_ylabel("counts per channel (whole component)")
    ax.set_title("component spectra (solid: from the purest pixels; dashed: plain NMF)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def _page_table(result, colours):
    import matplotlib.pyplot as plt

    k = result.n_components
    n_el = len(result.elements)
    fig = plt.figure(figsize=(11, 8))
    at_unc = result.atomic_uncertainty()
    pur = result.unmixing.purity_table()
    unm = result.unmixing
    fs = 9 if k <= 3 else (8 if k <= 5 else 6)
    # compositions: one row per element, at.% and wt.% (± 1σ) per component
    top = 0.93
    height = min(0.62, 0.035 * (n_el + 1))
    ax = fig.add_axes([0.03, top - height, 0.94, height])
    ax.axis("off")
    cols = ["element"]
    for j in range(k):
        cols += [f"C{j} at.%", f"C{j} wt.%"]
    rows = []
    for el in result.elements:
        row = [el]
        for j in range(k):
            for vals, uncs in (
                (result.atomic_percent[j], at_unc[j]),
                (result.weight_percent[j], result.uncertainty[j]),
            ):
                v, u = vals.get(el, np.nan), uncs.get(el, np.nan)
                row.append(f"{v:.1f} ± {u:.1f}" if np.isfinite(u) else f"{v:.1f}")
        rows.append(row)
    table = ax.table(cellText=rows, colLabels=cols, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(fs)
    table.scale(1, 1.25)
    for j in range(k):
        for c in (1 + 2 * j, 2 + 2 * j):
            table[(0, c)].set_facecolor(colours[j])
            table[(0, c)].get_text().set_color("white")
    # unmixing quality: one row per component
    ax2 = fig.add_axes([0.15, 0.2, 0.7, 0.04 * (k + 1)])
    ax2.axis("off")
    rows2 = []
    for j in range(k):
        stab = pur[j].get("restart_similarity_min", np.nan)
        rows2.append(
            [
                f"component {j}",
                f"{pur[j]['max_purity']:.2f}",
                str(int(unm.n_pure[j])),
                f"{float(unm.extension[j]):.2f}",
                "—" if not np.isfinite(stab) else f"{stab:.3f}",
                f"{pur[j]['counts']:.3g}",
            ]
        )
    t2 = ax2.table(
        cellText=rows2,
        colLabels=["", "max purity", "pure px", "extension", "restart sim.", "counts"],
        loc="lower center",
        cellLoc="center",
    )
    t2.auto_set_font_size(False)
    t2.set_fontsize(9)
    t2.scale(1, 1.3)
    for j in range(k):
        t2[(j + 1, 0)].set_facecolor(colours[j])
        t2[(j + 1, 0)].get_text().set_color("white")
    modes = sorted({str(getattr(q, "mode", "")) for q in result.quantifications})
    text = (
        f"Quantification mode: {', '.join(modes)}. Uncertainties: 1σ from counting statistics of "
        "each component's counts. Elements: "
        f"{', '.join(result.elements)} ({result.element_source}).\n"
        f"max purity: largest fraction of a (binned {unm.bin_factor}x{unm.bin_factor}) pixel's "
        f"counts from the component; pure px: pixels at least {unm.purity_threshold:.0%} pure; a "
        "component without pure pixels is the purest mixture found and biased toward its "
        "neighbours; extension: fraction of the purest pixels' counts given to the other "
        "components when extended until an element line vanishes (0 = not extended).\n"
        "restart sim.: lowest cosine similarity of the component spectrum over "
        f"{result.parameters['n_restarts']} NMF restarts. random_state = "
        f"{result.parameters['random_state']}; beam {result.parameters['beam_energy_keV']:.3g} keV, "
        f"take-off {result.parameters['takeoff_angle_deg']:.3g}°."
    )
    if result.identification is not None:
        text += (
            "\nIdentified: "
            + "; ".join(f"{el}: {r}" for el, r in result.identification.reasons.items())[
                :600
            ]
        )
    warn = list(getattr(result, "mixture_warnings", []) or [])
    if warn:
        fig.text(
            0.03,
            0.155,
            "\n".join("WARNING: " + w for w in warn),
            fontsize=8,
            color="darkred",
            wrap=True,
            va="bottom",
        )
    fig.text(0.03, 0.03, text, fontsize=8, wrap=True, va="bottom")
    fig.suptitle("composition of each component (at.% and wt.%, ± 1σ)", fontsize=12)
    return fig


def _page_evidence(result, colours):
    import matplotlib.pyplot as plt

    unm = result.unmixing
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.5))
    if unm.choice is not None:
        unm.choice.plot(ax=axes[0])
        axes[0].set_xlabel("component (Poisson-scaled binned map)")
    else:
        axes[0].text(
            0.5,
            0.5,
            f"n_components = {unm.n_components}\n(given)",
            ha="center",
            va="center",
        )
        axes[0].set_axis_off()
    stab = unm.stability
    if stab is not None and np.asarray(stab["spectrum_similarity"]).size:
        sim = np.asarray(stab["spectrum_similarity"])
        for j in range(unm.n_components):
            axes[1].plot(
                np.arange(1, sim.shape[0] + 1),
                sim[:, j],
                "o-",
                color=colours[j],
                label=f"component {j}",
            )
        axes[1].set_xlabel("restart (random initialisation)")
        axes[1].set_xticks(np.arange(1, sim.shape[0] + 1))
        axes[1].set_ylabel("cosine similarity to the result (1)")
        axes[1].set_ylim(min(0.8, float(sim.min()) - 0.02), 1.005)
        axes[1].legend(fontsize=8)
        axes[1].set_title("stability across NMF restarts")
    else:
        axes[1].text(0.5, 0.5, "no restarts", ha="center", va="center")
        axes[1].set_axis_off()
    bins = np.linspace(0, 1, 21)
    for j in range(unm.n_components):
        axes[2].hist(
            unm.purity[:, j],
            bins=bins,
            histtype="step",
            color=colours[j],
            lw=1.5,
            label=f"component {j}",
        )
    axes[2].axvline(unm.purity_threshold, color="0.4", ls="--", lw=1)
    axes[2].set_yscale("log")
    axes[2].set_xlabel("purity (fraction of a pixel's counts)")
    axes[2].set_ylabel("binned pixels")
    axes[2].set_title("purity")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    return fig


def save_bss_report(result, path) -> Path:
    """Write the multi-page PDF report of a :class:`BSSQuantification`.

    Parameters
    ----------
    result : hyperspy_nanoml.eds.bss_quantify.BSSQuantification
    path : str or Path
        Destination (``.pdf`` appended when missing); written whole or not at all.

    Returns
    -------
    Path
    """
    from hyperspy_nanoml._validation import check_output_path

    path = check_output_path(path, ".pdf")
    colours = component_colours(result.n_components)
    pages = (
        f(result, colours) for f in (_page_maps, _page_spectra, _page_table, _page_evidence)
    )
    return write_pdf(path, pages, metadata={"Title": "bss_quantify report"})


def _csv_maps(result) -> str:
    data = np.asarray(result.maps.data)
    k = data.shape[0]
    flat = data.reshape(k, -1).T
    idx = np.indices(data.shape[1:]).reshape(data.ndim - 1, -1).T
    names = [
        ax.name or f"axis{i}"
        for i, ax in enumerate(result.maps.axes_manager.signal_axes[::-1])
    ]
    header = ",".join([f"{n}_index" for n in names] + [f"component_{j}" for j in range(k)])
    body = np.concatenate([idx.astype(float), flat.astype(float)], axis=1)
    fmt = ["%d"] * idx.shape[1] + ["%.6g"] * k
    import io

    buf = io.StringIO()
    np.savetxt(buf, body, delimiter=",", header=header, comments="", fmt=fmt)
    return buf.getvalue()


def _csv_spectra(result) -> str:
    import io

    axis = result.spectra[0].axes_manager.signal_axes[0]
    e = np.asarray(axis.axis, dtype=float)
    cols = [e] + [np.asarray(s.data, dtype=float) for s in result.spectra]
    header = ",".join(
        [f"energy_{axis.units}"]
        + [f"component_{j}_counts" for j in range(len(result.spectra))]
    )
    buf = io.StringIO()
    np.savetxt(
        buf, np.stack(cols, axis=1), delimiter=",", header=header, comments="", fmt="%.6g"
    )
    return buf.getvalue()


def export_csv(result, stem) -> list[Path]:
    """Write ``<stem>_maps.csv``, ``<stem>_spectra.csv``, ``<stem>_table.csv``.

    Never overwrites: raises ``FileExistsError`` before writing when any exists. The
    three files are written to temporary files and moved into place only when all are
    complete.

    Returns
    -------
    list of Path
    """
    stem = Path(stem)
    targets = [Path(f"{stem}_{name}.csv") for name in ("maps", "spectra", "table")]
    existing = [str(t) for t in targets if t.exists()]
    if existing:
        raise FileExistsError(
            f"not overwriting {', '.join(existing)}: choose another stem or remove them"
        )
    texts = [_csv_maps(result), _csv_spectra(result), result.table_csv()]
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(t)) for t in targets]
        for tmp, text in zip(tmps, texts, strict=True):
            Path(tmp).write_text(text)
    return targets
