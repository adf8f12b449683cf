"""Figures and a PDF report of a line fit and a quantification (``quantify``).

Page 1: the spectrum with the fitted characteristic lines (log counts) and the filtered
spectrum with the filtered model and the normalised residual, the view in which the
top-hat filter fit is made (Schamber 1977). Page 2: the composition table with the mode
and its expected accuracy.

Example
-------
>>> from hyperspy_nanoml.report.eds_report import save_quantification_report
>>> save_quantification_report("quant.pdf", s, q)           # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["line_fit_figure", "table_figure", "save_quantification_report"]


def line_fit_figure(spectrum, fit, *, label_min_fraction: float = 0.002):
    """The spectrum, the fitted lines and the filtered residual of one spectrum.

    Parameters
    ----------
    spectrum : EDSSEMSpectrum
        The fitted spectrum (one spectrum).
    fit : hyperspy_nanoml.eds.lines.LineFit
    label_min_fraction : float
        Groups with less than this fraction of the largest fitted counts are not drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if fit.shapes is None:
        raise ValueError("this LineFit holds no shapes; fit it with fit_lines")
    y = np.asarray(spectrum.data, dtype=float).reshape(-1)
    edges = fit.energy_edges
    if y.size != edges.size - 1:
        raise ValueError("the spectrum does not match the fit (other channels)")
    e = 0.5 * (edges[1:] + edges[:-1])
    model = fit.model()
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(10, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    ax1.semilogy(e, np.maximum(y, 0.5), color="0.4", lw=0.7, label="spectrum")
    top = max(abs(v) for v in map(float, fit.intensities.values()))
    for j, g in enumerate(fit.groups):
        a = float(fit.intensities[g.name])
        if a < label_min_fraction * top:
            continue
        part = fit.shapes[:, j] * a
        peak = int(np.argmax(part))
        ax1.plot(e, np.where(part > 1e-3 * part.max(), part, np.nan), lw=0.9)
        ax1.annotate(
            g.name,
            (e[peak], part[peak]),
            fontsize=7,
            ha="center",
            va="bottom",
            xytext=(0, 2),
            textcoords="offset points",
        )
    ax1.set_ylabel("counts per channel")
    ax1.set_ylim(0.5, max(y.max(), 1.0) * 2)
    ax1.set_title(
        f"{spectrum.metadata.General.title}: fitted lines "
        f"({fit.metadata.get('method', 'top-hat filter fit').split(',')[0]})"
    )
    F = fit.filter_matrix
    yf, mf = F @ y, F @ model
    var = (F.multiply(F)) @ np.maximum(y, 1.0)
    used = np.zeros(e.size, bool)
    used[np.flatnonzero(np.any((F @ fit.shapes) != 0, axis=1))] = True
    ax2.plot(e, np.where(used, yf, np.nan), color="0.4", lw=0.7, label="filtered spectrum")
    ax2.plot(e, np.where(used, mf, np.nan), color="C3", lw=0.8, label="filtered fit")
    if used.any():
        lim = 1.1 * np.abs(yf[used]).max()
        ax2.set_ylim(-lim, lim)
        ax1.set_xlim(max(e[0], e[used].min() - 0.3), min(e[-1], e[used].max() + 1.0))
    resid = np.where(used, (yf - mf) / np.sqrt(np.maximum(var, 1.0)), np.nan)
    ax2b = ax2.twinx()
    ax2b.plot(e, resid, color="C0", lw=0.5, label="residual / sigma")
    ax2b.set_ylabel("residual / sigma")
    ax2.set_ylabel("filtered counts")
    ax2.set_xlabel("energy (keV)")
    ax2.legend(loc="upper right", fontsize=8)
    ax2b.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def table_figure(quantification):
    """The text of ``Quantification.table()`` on a page."""
    import matplotlib.pyplot as plt

    text = quantification.table()
    wrapped = []
    for line in text.splitlines():
        while len(line) > 95:
            cut = line.rfind(" ", 0, 95)
            cut = cut if cut > 0 else 95
            wrapped.append(line[:cut])
            line = "    " + line[cut:].lstrip()
        wrapped.append(line)
    fig = plt.figure(figsize=(10, 7.5))
    fig.text(0.03, 0.97, "\n".join(wrapped), family="monospace", fontsize=8, va="top")
    return fig


def save_quantification_report(path, spectrum, quantification) -> Path:
    """Write the fit figure and the composition table of ``quantify(spectrum, ...)`` to a
    PDF at ``path`` (written whole or not at all).

    Returns
    -------
    Path of the PDF.
    """
    from hyperspy_nanoml.report.pdf import write_pdf

    def pages():
        yield line_fit_figure(spectrum, quantification.line_fit)
        yield table_figure(quantification)

    return write_pdf(
        path, pages(), {"Title": f"EDS quantification ({quantification.mode})"}
    )
