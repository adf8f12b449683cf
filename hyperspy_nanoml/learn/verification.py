"""Verification of an NMF result: stability across restarts, residual map, explained variance.

"Verification of unsupervised ML is essential": a decomposition is only worth
interpreting when its components come back from other starting points, when the
model fits everywhere (no region of the scan left unexplained) and when each
component carries a measurable part of the data. :func:`verify_nmf` measures the
three on a signal decomposed by :func:`~hyperspy_nanoml.learn.decomposition.nmf_decomposition`
and :func:`save_verification_report` puts them in a PDF.

The array-level functions (:func:`component_stability`, :func:`residual_norms`,
:func:`explained_variance`) take ``X`` (numpy or dask, n_samples × n_features),
``W`` and ``H`` and work block-wise on dask arrays (one pass each).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "VerificationResult",
    "component_stability",
    "explained_variance",
    "match_components",
    "residual_norms",
    "save_verification_report",
    "verify_nmf",
]


# ------------------------------------------------------------------ arrays


def match_components(reference, other):
    """Match rows of ``other`` to rows of ``reference`` by cosine similarity (Hungarian).

    Returns ``(similarity, index)``: ``similarity[j]`` is the cosine similarity of
    reference row ``j`` with its match ``other[index[j]]``.
    """
    from scipy.optimize import linear_sum_assignment

    A = np.asarray(reference, dtype=np.float64)
    B = np.asarray(other, dtype=np.float64)
    na = np.linalg.norm(A, axis=1, keepdims=True)
    nb = np.linalg.norm(B, axis=1, keepdims=True)
    S = (A / np.where(na > 0, na, 1)) @ (B / np.where(nb > 0, nb, 1)).T
    rows, cols = linear_sum_assignment(-S)
    index = np.empty(A.shape[0], dtype=int)
    index[rows] = cols
    return S[np.arange(A.shape[0]), index], index


def component_stability(
    X,
    H_ref,
    W_ref=None,
    *,
    n_restarts=5,
    random_state=None,
    init="random",
    show_progressbar=None,
    **nmf_kwargs,
):
    """Refit NMF from ``n_restarts`` random starts and match to the reference components.

    Parameters
    ----------
    X : numpy or dask array (n_samples, n_features)
        The data that were factorised (after any scaling).
    H_ref : array (k, n_features)
        Reference components. ``W_ref`` (n_samples × k), optional, also compares maps.
    n_restarts : int
    random_state : None or int
        Seeds the restarts (restart ``i`` uses ``random_state + 1 + i``).
    init : str
        Initialisation of the restarts; ``"random"`` (default) probes other local
        minima, which NNDSVD (deterministic up to the sketch) would not.
    **nmf_kwargs
        Passed to :func:`hyperspy_nanoml.learn.nmf.nmf`.

    Returns
    -------
    dict
        ``factor_similarity`` (n_restarts × k), ``loading_similarity`` (or None),
        ``errors`` (n_restarts), ``random_states``, ``passes``.
    """
    from hyperspy_nanoml._progress import progressbar
    from hyperspy_nanoml.learn.nmf import nmf

    H_ref = np.asarray(H_ref)
    k = H_ref.shape[0]
    base = 0 if random_state is None else int(random_state)
    seeds = [base + 1 + i for i in range(n_restarts)]
    fs = np.zeros((n_restarts, k))
    ls = np.zeros((n_restarts, k)) if W_ref is not None else None
    errors = np.zeros(n_restarts)
    passes = 0
    for i, seed in enumerate(
        progressbar(seeds, desc="NMF restarts", show_progressbar=show_progressbar)
    ):
        res = nmf(X, k, init=init, random_state=seed, show_progressbar=False, **nmf_kwargs)
        sim, idx = match_components(H_ref, res.H)
        fs[i] = sim
        if W_ref is not None:
            ls[i] = _cos_rows(np.asarray(W_ref).T, res.W.T[idx])
        errors[i] = res.reconstruction_error
        passes += res.passes
    return {
        "factor_similarity": fs,
        "loading_similarity": ls,
        "errors": errors,
        "random_states": seeds,
        "passes": passes,
    }


def _cos_rows(A, B):
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    na = np.linalg.norm(A, axis=1)
    nb = np.linalg.norm(B, axis=1)
    d = np.einsum("ij,ij->i", A, B)
    return d / np.where(na * nb > 0, na * nb, 1)


def residual_norms(X, W, H):
    """Per-row squared residuals ``||x_i − w_i H||²``, ``||x_i||²``, row sums and ``Wᵀ X``.

    One pass; block-wise on dask arrays (threaded or distributed).

    Returns
    -------
    (residual_sq, norm_sq, row_sum, WtX) : float64 arrays of shapes (n,), (n,), (n,),
    (k, n_features)
    """
    from hyperspy_nanoml.learn.nmf import (
        _check_shape_and_k,
        _kernel_residual_rows,
        _RowBlocks,
    )

    W = np.asarray(W, dtype=np.float32)
    H = np.asarray(H, dtype=np.float32)
    X, n, m, k = _check_shape_and_k(X, H.shape[0])
    if W.shape != (n, k) or H.shape != (k, m):
        raise ValueError(
            f"W and H must have shapes {(n, k)} and {(k, m)} for X of shape {(n, m)}; "
            f"got {W.shape} and {H.shape}"
        )
    blocks = _RowBlocks(X)
    parts, (P,) = blocks.run(_kernel_residual_rows, np.ascontiguousarray(W.T), H)
    rows = np.concatenate(parts, axis=0)
    return rows[:, 0], rows[:, 1], rows[:, 2], P


def explained_variance(W, H, norm_sq_total, WtX=None, total_intensity=None):
    """Explained variance per component of ``X ≈ W H`` (uncentred, fractions of the data).

    Returns a dict with

    ``energy``
        ``||w_j h_j||² / ||X||²``: the part of the data's sum of squares that the
        component reproduces on its own. (At a converged NMF this is also exactly the
        increase of ``||X − WH||²`` when the component is removed: the KKT conditions
        make ``w_jᵀ (X − WH) h_jᵀ = 0``.)
    ``intensity``
        ``Σ(w_j h_j) / Σ X``: the share of the total counts the component carries
        (a phase fraction for diffraction data), if ``total_intensity`` is given.
    ``total``
        ``1 − ||X − WH||²/||X||²`` (needs ``WtX = Wᵀ X`` from :func:`residual_norms`).
    """
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    G = W.T @ W
    HH = H @ H.T
    energy = np.diag(G) * np.diag(HH)
    out = {"energy": energy / norm_sq_total, "intensity": None, "total": None}
    if total_intensity is not None and total_intensity > 0:
        out["intensity"] = W.sum(axis=0) * H.sum(axis=1) / total_intensity
    if WtX is not None:
        cross = float(np.einsum("jm,jm->", np.asarray(WtX, dtype=np.float64), H))
        res_sq = norm_sq_total - 2 * cross + float(np.sum(G * HH))
        out["total"] = 1.0 - res_sq / norm_sq_total
    return out


# ------------------------------------------------------------------ signals


@dataclass
class VerificationResult:
    """Numbers and maps that say whether an NMF result can be trusted.

    Attributes
    ----------
    n_components : int
    stability_mean, stability_min : numpy.ndarray (k,)
        Mean and minimum cosine similarity of each factor with its Hungarian match
        over the restarts (1 = the same component comes back every time).
    loading_stability_mean, loading_stability_min : numpy.ndarray (k,)
        The same for the loading maps (paired by the factor matching).
    factor_similarity : numpy.ndarray (n_restarts, k)
    restart_errors : numpy.ndarray (n_restarts,)
        Relative errors of the restarts (compare with ``relative_error``).
    relative_error : float
        ``||X − WH|| / ||X||`` of the verified result on the kept data.
    residual_map : hyperspy signal
        ``||x_i − w_i H|| / ||x_i||`` over the navigation axes (NaN where masked).
    explained_energy, explained_intensity : numpy.ndarray (k,)
        Share of ``||X||²`` and of the total counts per component, see
        :func:`explained_variance`.
    explained_total : float
    factors, loadings : numpy.ndarray
        ``(k, *signal_shape)`` and ``(k, *navigation_shape)`` as verified, for plots.
    component_choice : ComponentChoice or None
    passes : int
        Passes over the data used by the verification.
    """

    n_components: int
    stability_mean: np.ndarray
    stability_min: np.ndarray
    loading_stability_mean: np.ndarray
    loading_stability_min: np.ndarray
    factor_similarity: np.ndarray
    restart_errors: np.ndarray
    relative_error: float
    residual_map: object
    explained_energy: np.ndarray
    explained_intensity: np.ndarray
    explained_total: float
    factors: np.ndarray
    loadings: np.ndarray
    component_choice: object = None
    passes: int = 0
    random_states: list = field(default_factory=list)
    title: str = ""

    def table(self):
        """The per-component numbers as rows of strings (header first)."""
        rows = [
            [
                "component",
                "stability mean",
                "stability min",
                "map stab. mean",
                "explained (energy)",
                "share of counts",
            ]
        ]
        for j in range(self.n_components):
            rows.append(
                [
                    str(j),
                    f"{self.stability_mean[j]:.4f}",
                    f"{self.stability_min[j]:.4f}",
                    f"{self.loading_stability_mean[j]:.4f}",
                    f"{100 * self.explained_energy[j]:.2f} %",
                    f"{100 * self.explained_intensity[j]:.2f} %",
                ]
            )
        return rows

    def __str__(self):
        lines = [
            f"NMF verification of {self.n_components} components"
            + (f" ({self.title})" if self.title else ""),
            f"  relative error {self.relative_error:.4g}; explained {100 * self.explained_total:.2f} %"
            f" of ||X||²; restarts' errors {np.round(self.restart_errors, 5).tolist()}",
        ]
        widths = [10, 15, 14, 15, 19, 19]
        for row in self.table():
            lines.append(
                "  " + "".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
            )
        return "\n".join(lines)


def _kept_data(signal):
    """(X_kept, nav_mask, sig_mask, root_aG, root_bH) as used by nmf_decomposition."""
    from hyperspy_nanoml.learn.decomposition import _poisson_scale, _unfold_data
    from hyperspy_nanoml.learn.nmf import _is_dask

    lr = signal.learning_results
    X, _, _ = _unfold_data(signal)
    nav_mask = _flat_or_none(lr.navigation_mask)
    sig_mask = _flat_or_none(lr.signal_mask)
    Xk = X
    if sig_mask is not None:
        Xk = Xk[:, np.flatnonzero(~sig_mask)]
    if nav_mask is not None:
        Xk = Xk[np.flatnonzero(~nav_mask)]
    scaled = None
    root_aG = root_bH = None
    if lr.poissonian_noise_normalized:
        scaled, root_aG, root_bH, _ = _poisson_scale(Xk, _is_dask(Xk))
    return Xk, scaled, nav_mask, sig_mask, root_aG, root_bH


def _flat_or_none(mask):
    if mask is None:
        return None
    return np.asarray(mask, dtype=bool).ravel()


def verify_nmf(
    signal, n_restarts=5, *, random_state=0, show_progressbar=None, **nmf_kwargs
):
    """Verify the NMF stored in ``signal.learning_results`` (from ``nmf_decomposition``).

    1. **Stability**: NMF is refitted ``n_restarts`` times from random starts on the
       same (masked, normalised) data; each restart's components are matched to the
       stored ones by the Hungarian algorithm on cosine similarity; per component the
       mean and minimum similarity are reported (factors and maps).
    2. **Residual map**: ``||x_i − w_i H|| / ||x_i||`` for every pattern, as a signal
       over the navigation axes (calibrated like the signal's navigation axes); one
       block-wise pass for lazy data.
    3. **Explained variance** per component (energy and share of counts, see
       :func:`explained_variance`).

    A summary (numbers only, so the signal can still be saved) is stored as
    ``signal.learning_results.nmf_verification``.

    Parameters
    ----------
    signal : BaseSignal
        Decomposed with ``nmf_decomposition`` (or any decomposition with
        non-negative factors and loadings and ``centre=None``).
    n_restarts : int
        Number of random restarts (each costs one factorisation).
    random_state : int
    **nmf_kwargs
        Passed to the restarts (e.g. ``max_iter``, ``tol``).

    Returns
    -------
    VerificationResult
    """
    from hyperspy_nanoml.learn.decomposition import component_choice_from

    lr = signal.learning_results
    if lr.factors is None or lr.loadings is None:
        raise ValueError(
            "the signal has no decomposition to verify: run s.nmf_decomposition(...) first"
        )
    if lr.centre is not None:
        raise ValueError(
            f"the decomposition is centred (centre={lr.centre!r}); NMF verification needs "
            "an uncentred non-negative decomposition such as s.nmf_decomposition()"
        )
    factors = np.asarray(
        lr.factors.compute() if hasattr(lr.factors, "compute") else lr.factors
    )
    loadings = np.asarray(
        lr.loadings.compute() if hasattr(lr.loadings, "compute") else lr.loadings
    )
    Xk, scaled, nav_mask, sig_mask, root_aG, root_bH = _kept_data(signal)
    H = factors.T
    W = loadings
    if sig_mask is not None:
        H = H[:, ~sig_mask]
    if nav_mask is not None:
        W = W[~nav_mask]
    k = H.shape[0]

    # 1. stability, in the space that was fitted
    if scaled is not None:
        Xfit, H_fit, W_fit = scaled, H / root_bH[None, :], W / root_aG[:, None]
    else:
        Xfit, H_fit, W_fit = Xk, H, W
    stab = component_stability(
        Xfit,
        H_fit,
        W_fit,
        n_restarts=n_restarts,
        random_state=random_state,
        show_progressbar=show_progressbar,
        **nmf_kwargs,
    )
    fs, ls = stab["factor_similarity"], stab["loading_similarity"]

    # 2. residual map and 3. explained variance, on the data in its own units
    res_sq, norm_sq, row_sum, WtX = residual_norms(Xk, W, H)
    rel = np.full(res_sq.shape, np.nan)
    ok = norm_sq > 0
    rel[ok] = np.sqrt(res_sq[ok] / norm_sq[ok])
    rel[~ok & (res_sq == 0)] = 0.0
    total = float(norm_sq.sum())
    ev = explained_variance(W, H, total, WtX, float(row_sum.sum()))
    n_nav = signal.axes_manager.navigation_size
    full = np.full(n_nav, np.nan)
    if nav_mask is not None:
        full[~nav_mask] = rel
    else:
        full[:] = rel
    nav_shape = tuple(signal.axes_manager._navigation_shape_in_array)
    sig_shape = tuple(signal.axes_manager._signal_shape_in_array)
    resmap = signal._get_navigation_signal(data=full.reshape(nav_shape).astype(np.float32))
    if resmap._lazy:
        resmap.compute()
    title = signal.metadata.get_item("General.title", "") or ""
    resmap.metadata.General.title = (
        f"NMF relative residual ||x - wH|| / ||x||{' of ' + title if title else ''}"
    )
    result = VerificationResult(
        n_components=k,
        stability_mean=fs.mean(axis=0),
        stability_min=fs.min(axis=0),
        loading_stability_mean=ls.mean(axis=0),
        loading_stability_min=ls.min(axis=0),
        factor_similarity=fs,
        restart_errors=stab["errors"],
        relative_error=float(np.sqrt(res_sq.sum() / total)) if total > 0 else float("nan"),
        residual_map=resmap,
        explained_energy=ev["energy"],
        explained_intensity=ev["intensity"],
        explained_total=float(ev["total"]),
        factors=factors.T.reshape((k,) + sig_shape),
        loadings=loadings.T.reshape((k,) + nav_shape),
        component_choice=component_choice_from(lr),
        passes=int(stab["passes"]) + 1 + (1 if scaled is not None else 0),
        random_states=stab["random_states"],
        title=title,
    )
    # a summary of plain numbers (HyperSpy can save it with the signal)
    lr.nmf_verification = {
        "n_restarts": int(n_restarts),
        "stability_mean": result.stability_mean,
        "stability_min": result.stability_min,
        "loading_stability_mean": result.loading_stability_mean,
        "loading_stability_min": result.loading_stability_min,
        "relative_error": result.relative_error,
        "explained_energy": result.explained_energy,
        "explained_intensity": result.explained_intensity,
        "explained_total": result.explained_total,
    }
    return result


# ------------------------------------------------------------------ report


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
            ax.set_xticks([])
            ax.set_yticks([])
        elif a.ndim == 1:
            ax.plot(a)
        else:
            ax.imshow(a.reshape(a.shape[0], -1), cmap=cmap, aspect="auto")
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
    else:
        axes[0].plot(data)
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
    signal_or_result, path, *, n_restarts=5, random_state=0, **kwargs
):
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
    """
    from hyperspy_nanoml.report.pdf import write_pdf

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
