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


def _image_pages(arrays, label, cmap):
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
        if a.ndim == 2:
            im = ax.imshow(a, cmap=cmap)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            ax.set_xlabel("x (px)")
            ax.set_ylabel("y (px)")
        elif a.ndim == 1:
            ax.plot(a)
            ax.set_xlabel("index (channel or position)")
            ax.set_ylabel("intensity (a.u.)")
        else:
            ax.imshow(a.reshape(a.shape[0], -1), cmap=cmap, aspect="auto")
            ax.set_xlabel("flattened inner axes (px)")
            ax.set_ylabel("first axis (px)")
        ax.set_title(f"{label} {j}")
    fig.suptitle(f"NMF {label}s")
    fig.tight_layout()
    return fig


def _report_figures(result):
    import matplotlib.pyplot as plt

    k = result.n_components
    # page 1: numbers
    fig = plt.figure(figsize=(8.27, 11.69))
    fig.text(0.06, 0.96, "NMF verification report", fontsize=16, weight="bold", va="top")
    lines = [
        f"signal: {result.title or '(untitled)'}",
        f"components: {k}",
        f"relative error ||X - WH|| / ||X||: {result.relative_error:.5g}",
        f"explained (1 - ||X - WH||²/||X||²): {100 * result.explained_total:.2f} %",
        f"restarts: {len(result.restart_errors)} (seeds {result.random_states}), relative "
        f"errors {np.round(result.restart_errors, 5).tolist()}",
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

    yield _image_pages(result.factors, "factor", "viridis")
    yield _image_pages(result.loadings, "loading", "magma")

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
    if data.ndim >= 2:
        im = axes[0].imshow(data.reshape(data.shape[0], -1), cmap="inferno")
        fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04)
        axes[0].set_xlabel("scan x (px)")
        axes[0].set_ylabel("scan y (px)")
    else:
        axes[0].plot(data)
        axes[0].set_xlabel("scan position (px)")
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
    signal_or_result, path, *, n_restarts: int = 5, random_state: int = 0, **kwargs
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
        _report_figures(result),
        metadata={"Title": "NMF verification report", "Subject": result.title or "NMF"},
    )
