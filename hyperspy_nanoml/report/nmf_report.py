"""The NMF verification report (PDF): numbers table, component-number evidence,
factors, loading maps, stability bar chart and residual map.

The numbers come from :func:`hyperspy_nanoml.learn.verification.verify_nmf`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperspy_nanoml.learn.verification import VerificationResult, verify_nmf
from hyperspy_nanoml.report.pdf import write_pdf

__all__ = ["save_verification_report"]


def _grid(n):
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    return rows, cols


def _units(units):
    """Axis units as printed (HyperSpy's ``<undefined>`` becomes pixels)."""
    u = str(units or "")
    if u in ("", "<undefined>", "None"):
        return "px"
    return {"1/nm": "nm⁻¹", "1/A": "Å⁻¹", "1/Å": "Å⁻¹", "A^-1": "Å⁻¹"}.get(u, u)


def _calibration(axes_info, ndim):
    """``(extent, xlabel, ylabel)`` of an image, or ``(x values, xlabel)`` of a line.

    ``axes_info``: ``(name, units, scale, offset, size)`` per axis in HyperSpy order
    (x first). Pixel units when the axes are missing.
    """
    if len(axes_info) != ndim:
        return None
    labels = []
    for i, (name, units, _, _, _) in enumerate(axes_info):
        default = "xy"[i] if ndim == 2 else "position"
        name = name if name and name != "<undefined>" else default
        labels.append(f"{name} ({_units(units)})")
    if ndim == 1:
        _, _, scale, offset, size = axes_info[0]
        return offset + scale * np.arange(size), labels[0]
    (_, _, sx, ox, nx), (_, _, sy, oy, ny) = axes_info
    extent = (ox - sx / 2, ox + sx * (nx - 0.5), oy + sy * (ny - 0.5), oy - sy / 2)
    return extent, labels[0], labels[1]


def _image_pages(arrays, label, cmap, axes_info=(), value_label="intensity (a.u.)"):
    import matplotlib.pyplot as plt

    k = len(arrays)
    rows, cols = _grid(k)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 3.0 * rows + 0.6), squeeze=False
    )
    for j in range(rows * cols):
        ax = axes.flat[j]
        if j >= k:
            ax.axis("off")
            continue
        a = np.asarray(arrays[j], dtype=np.float64)
        cal = _calibration(axes_info, a.ndim) if a.ndim <= 2 else None
        if a.ndim == 2:
            extent, xlabel, ylabel = cal if cal else (None, "x (px)", "y (px)")
            im = ax.imshow(a, cmap=cmap, extent=extent)
            bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            bar.set_label(value_label, fontsize=7)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
        elif a.ndim == 1:
            x, xlabel = cal if cal else (np.arange(a.size), "index (channel or position)")
            ax.plot(x, a)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(value_label)
        else:
            ax.imshow(a.reshape(a.shape[0], -1), cmap=cmap, aspect="auto")
            ax.set_xlabel("flattened inner axes (px)")
            ax.set_ylabel("first axis (px)")
        ax.set_title(f"{label} {j}")
    fig.suptitle(f"NMF {label}s")
    fig.tight_layout()
    return fig


def _report_figures(result, notes=()):
    import matplotlib.pyplot as plt

    k = result.n_components
    # page 1: numbers
    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.06, 0.96, "NMF verification report", fontsize=16, weight="bold", va="top")
    lines = [
        f"signal: {result.title or '(untitled)'}",
        *notes,
        f"components: {k}",
        *result.error_lines(),
        "explained in the data's units (1 - ||X - WH||²/||X||², not scaled): "
        f"{100 * result.explained_total:.2f} %",
        f"passes over the data for the verification: {result.passes}",
    ]
    if result.component_choice is not None:
        lines.append("number of components: " + str(result.component_choice.reason))
    import textwrap

    y = 0.91
    for line in lines:
        for piece in textwrap.wrap(line, 100) or [""]:
            fig.text(0.06, y, piece, fontsize=8.5, va="top")
            y -= 0.018
    table = result.table()
    ax = fig.add_axes(
        [0.06, max(0.05, y - 0.04 - 0.03 * len(table)), 0.88, 0.03 * len(table)]
    )
    ax.axis("off")
    tab = ax.table(cellText=table[1:], colLabels=table[0], loc="upper center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    yield fig

    # page 2: choice of the number of components
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if result.component_choice is not None and hasattr(result.component_choice, "plot"):
        result.component_choice.plot(ax=ax)
    else:
        ax.bar(np.arange(k), 100 * result.explained_energy, color="C0", label="energy")
        ax.bar(
            np.arange(k),
            100 * result.explained_intensity,
            color="C1",
            width=0.5,
            label="share of counts",
        )
        ax.set_xlabel("component")
        ax.set_ylabel("explained (%)")
        ax.set_title("Explained variance per component (n_components was given)")
        ax.legend()
    fig.tight_layout()
    yield fig

    yield _image_pages(
        result.factors, "factor", "viridis", result.signal_axes, "intensity (max 1)"
    )
    yield _image_pages(
        result.loadings, "loading", "magma", result.navigation_axes, "loading (counts)"
    )

    # stability
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(k)
    ax.bar(x - 0.2, result.stability_mean, width=0.4, label="factor, mean")
    ax.bar(x + 0.2, result.loading_stability_mean, width=0.4, label="map, mean")
    ax.plot(x - 0.2, result.stability_min, "k_", markersize=18, label="factor, min")
    ax.plot(x + 0.2, result.loading_stability_min, "r_", markersize=18, label="map, min")
    lo = float(np.nanmin([result.stability_min.min(), result.loading_stability_min.min()]))
    ax.set_ylim(min(0.9, lo - 0.02), 1.005)
    ax.set_xticks(x)
    ax.set_xlabel("component")
    ax.set_ylabel("cosine similarity to the verified component")
    ax.set_title(f"Stability over {len(result.restart_errors)} random restarts")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    yield fig

    # residual map
    data = np.asarray(result.residual_map.data, dtype=np.float64)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    cal = _calibration(result.navigation_axes, data.ndim)
    if data.ndim >= 2:
        extent, xlabel, ylabel = cal if cal else (None, "scan x (px)", "scan y (px)")
        im = axes[0].imshow(data.reshape(data.shape[0], -1), cmap="inferno", extent=extent)
        fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04)
        axes[0].set_xlabel(xlabel)
        axes[0].set_ylabel(ylabel)
    else:
        x, xlabel = cal if cal else (np.arange(data.size), "scan position (px)")
        axes[0].plot(x, data)
        axes[0].set_xlabel(xlabel)
        axes[0].set_ylabel("relative residual")
    axes[0].set_title("relative residual ||x - wH|| / ||x||")
    finite = data[np.isfinite(data)]
    axes[1].hist(finite, bins=50, color="C3")
    axes[1].set_xlabel("relative residual")
    axes[1].set_ylabel("patterns")
    if finite.size:
        axes[1].set_title(
            f"median {np.median(finite):.3g}, 99th percentile {np.percentile(finite, 99):.3g}"
        )
    fig.tight_layout()
    yield fig


def save_verification_report(
    signal_or_result,
    path,
    *,
    n_restarts: int = 5,
    random_state: int = 0,
    notes=(),
    **kwargs,
) -> Path:
    """Write the verification as a PDF: numbers table, component-number evidence,
    factors, loading maps, stability bar chart and residual map.

    Parameters
    ----------
    signal_or_result : BaseSignal or VerificationResult
        A decomposed signal (verified now, with ``n_restarts``) or the result of
        :func:`verify_nmf` (no recomputation).
    path : str or Path
        Destination ``.pdf`` (written atomically).
    n_restarts, random_state, **kwargs
        Passed to :func:`verify_nmf` when a signal is given without a verification.
    notes : sequence of str
        Lines printed under the signal's name on the first page (what was done to
        the data before the fit, e.g. binning and masks).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> save_verification_report(s, "verification.pdf")  # doctest: +SKIP
    """
    if isinstance(signal_or_result, VerificationResult):
        result = signal_or_result
    else:
        result = verify_nmf(
            signal_or_result, n_restarts=n_restarts, random_state=random_state, **kwargs
        )
    return write_pdf(
        path,
        _report_figures(result, notes),
        metadata={"Title": "NMF verification report", "Subject": result.title or "NMF"},
    )
