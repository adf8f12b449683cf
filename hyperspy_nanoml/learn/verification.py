"""Verification of an NMF result: stability across restarts, residual map, explained variance.

"Verification of unsupervised ML is essential": a decomposition is only worth
interpreting when its components come back from other starting points, when the
model fits everywhere (no region of the scan left unexplained) and when each
component carries a measurable part of the data. :func:`verify_nmf` measures the
three on a signal decomposed by :func:`~hyperspy_nanoml.learn.decomposition.nmf_decomposition`;
:func:`hyperspy_nanoml.report.nmf_report.save_verification_report` puts them in a PDF.

The array-level functions (:func:`component_stability`, :func:`residual_norms`,
:func:`explained_variance`) take ``X`` (numpy or dask, n_samples × n_features),
``W`` and ``H`` and work block-wise on dask arrays (one pass each).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hyperspy_nanoml._compat import (
    navigation_shape_in_array,
    navigation_signal,
    signal_shape_in_array,
)
from hyperspy_nanoml._validation import check_matrix, check_positive_int
from hyperspy_nanoml.learn.blocks import BlockPrep, RowBlocks, is_lazy
from hyperspy_nanoml.learn.nmf import nmf, residual_sq_rows
from hyperspy_nanoml.learn.poisson import inverse_root_sums
from hyperspy_nanoml.learn.signal_matrix import (
    component_choice_from,
    decomposition_arrays,
    unfold_data,
)

__all__ = [
    "VerificationResult",
    "component_stability",
    "explained_variance",
    "match_components",
    "residual_norms",
    "verify_nmf",
]


# ------------------------------------------------------------------ arrays


def match_components(reference, other):
    """Match rows of ``other`` to rows of ``reference`` by cosine similarity (Hungarian).

    Returns ``(similarity, index)``: ``similarity[j]`` is the cosine similarity of
    reference row ``j`` with its match ``other[index[j]]``. ``other`` may hold more
    rows than ``reference`` (the best-matching subset is used), not fewer.

    Examples
    --------
    >>> A = np.eye(3)
    >>> match_components(A, A[[2, 0, 1]])[1]
    array([1, 2, 0])
    """
    from scipy.optimize import linear_sum_assignment

    A = np.asarray(reference, dtype=np.float64)
    B = np.asarray(other, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2:
        raise ValueError(
            f"match_components needs two 2-D arrays (components x features), got shapes "
            f"{A.shape} and {B.shape}"
        )
    if A.shape[1] != B.shape[1]:
        raise ValueError(
            f"the components have {A.shape[1]} and {B.shape[1]} features; compare "
            "components of the same data (same channels, same masks)"
        )
    if B.shape[0] < A.shape[0]:
        raise ValueError(
            f"cannot match {A.shape[0]} reference components to only {B.shape[0]}: every "
            "reference component needs a partner (give the larger set as `other`)"
        )
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
    n_restarts: int = 5,
    random_state: int | None = None,
    init: str = "random",
    show_progressbar: bool | None = None,
    **nmf_kwargs,
) -> dict:
    """Refit NMF from ``n_restarts`` random starts and match to the reference components.

    Parameters
    ----------
    X : numpy or dask array (n_samples, n_features)
        The data that were factorised.
    H_ref : array (k, n_features)
        Reference components. ``W_ref`` (n_samples × k), optional, also compares maps.
    n_restarts : int
        At least 1.
    random_state : None or int
        Seeds the restarts (restart ``i`` uses ``random_state + 1 + i``).
    init : str
        Initialisation of the restarts; ``"random"`` (default) probes other local
        minima, which NNDSVD (deterministic up to the sketch) would not.
    **nmf_kwargs
        Passed to :func:`hyperspy_nanoml.learn.nmf.nmf` (e.g.
        ``normalize_poissonian_noise``, ``column_mask``, ``max_iter``).

    Returns
    -------
    dict
        ``factor_similarity`` (n_restarts × k), ``loading_similarity`` (or None),
        ``errors`` (n_restarts), ``random_states``, ``passes``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> H = rng.random((2, 30)); X = rng.random((100, 2)) @ H
    >>> out = component_stability(X, H, n_restarts=2, random_state=0)
    >>> bool(out["factor_similarity"].min() > 0.99)
    True
    """
    from hyperspy_nanoml._progress import progressbar

    n_restarts = check_positive_int(n_restarts, "n_restarts")
    H_ref = np.asarray(H_ref)
    if H_ref.ndim != 2:
        raise ValueError(f"H_ref must be 2-D (k, n_features), got shape {H_ref.shape}")
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


def _kernel_residual_rows(block, start, prep, Wt, H):
    """Per row: ``‖x_i − w_i H‖²``, ``‖x_i‖²`` and ``Σ x_i``; and ``Wᵀ X`` summed."""
    rows = []
    P = np.zeros(H.shape, dtype=np.float64)
    for a, b, xs in prep.slices(block, start):
        Wb = np.ascontiguousarray(Wt[:, start + a : start + b])
        res = residual_sq_rows(xs, Wb, H)
        nrm = np.einsum("ij,ij->i", xs, xs, dtype=np.float64)
        tot = xs.sum(axis=1, dtype=np.float64)
        rows.append(np.stack([res, nrm, tot], axis=1))
        P += Wb @ xs
    return np.concatenate(rows, axis=0), (P,)


def residual_norms(X, W, H, *, column_mask=None):
    """Per-row squared residuals ``‖x_i − w_i H‖²``, ``‖x_i‖²``, row sums and ``Wᵀ X``.

    One pass; block-wise on dask arrays (threaded or distributed). ``column_mask``
    (True = excluded) sets those columns of ``X`` to zero as they are read.

    Returns
    -------
    (residual_sq, norm_sq, row_sum, WtX) : float64 arrays of shapes (n,), (n,), (n,),
    (k, n_features)

    Examples
    --------
    >>> X = np.array([[1.0, 2.0], [2.0, 4.0]])
    >>> residual_norms(X, [[1.0], [2.0]], [[1.0, 2.0]])[0]
    array([0., 0.])
    """
    W = np.asarray(W, dtype=np.float32)
    H = np.asarray(H, dtype=np.float32)
    X = check_matrix(X)
    n, m = X.shape
    k = H.shape[0] if H.ndim == 2 else 0
    if W.shape != (n, k) or H.shape != (k, m):
        raise ValueError(
            f"W and H must have shapes {(n, k)} and {(k, m)} for X of shape {(n, m)}; "
            f"got {W.shape} and {H.shape}"
        )
    prep = BlockPrep()
    if column_mask is not None:
        mask = np.asarray(column_mask, dtype=bool).ravel()
        if mask.size != m:
            raise ValueError(f"column_mask has {mask.size} entries, X has {m} columns")
        prep = BlockPrep(zero_columns=np.flatnonzero(mask))
    blocks = RowBlocks(X)
    parts, (P,) = blocks.run(_kernel_residual_rows, prep, np.ascontiguousarray(W.T), H)
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
        Relative errors of the restarts, on the restart rows (``restart_rows``),
        as defined by ``fit_error`` (compare with ``restart_reference_error``).
    relative_error : float
        ``||X − WH|| / ||X||`` of the verified result on the kept data, in the
        data's units.
    fit_error : float
        THE relative error of the fit, ``||Xs − Ws Hs|| / ||Xs||`` on the matrix
        fitted (``Xs = Da X Db`` when Poisson scaling was used, else ``X``), kept
        rows and channels: the engine's number (``learning_results.nmf_info``),
        the quantity NMF minimises; equal to ``relative_error`` without scaling.
    restart_reference_error : float
        ``fit_error`` of the verified result on the restart rows (the same
        definition, the same rows as the restarts).
    restart_rows : int
        Patterns the restarts were fitted on (every ``restart_stride``-th kept one).
    restart_stride : int
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
    fit_error: float = float("nan")
    restart_reference_error: float = float("nan")
    restart_rows: int = 0
    restart_stride: int = 1
    poisson: bool = False
    signal_axes: tuple = ()
    navigation_axes: tuple = ()

    def error_lines(self):
        """The relative error, defined once, for the stored fit and the restarts."""
        what = "Da X Db (Poisson-scaled)" if self.poisson else "X"
        sub = (
            "all kept patterns"
            if self.restart_stride == 1
            else f"every {self.restart_stride}th kept pattern"
        )
        return [
            f"relative error of the fit ||Xs - WsHs|| / ||Xs||, Xs = {what} (kept "
            f"patterns and channels): {self.fit_error:.5g}",
            f"restarts: {len(self.restart_errors)} random starts (seeds "
            f"{self.random_states}) on {self.restart_rows} patterns ({sub}); the same "
            f"relative error there: verified fit {self.restart_reference_error:.5g}, "
            f"restarts {np.round(self.restart_errors, 5).tolist()}",
        ]

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
            f"  explained {100 * self.explained_total:.2f} % of ||X||² (data units)",
            *("  " + line for line in self.error_lines()),
        ]
        widths = [10, 15, 14, 15, 19, 19]
        for row in self.table():
            lines.append(
                "  " + "".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
            )
        return "\n".join(lines)


def _check_nmf_result(factors, loadings):
    """Refuse what is not a non-negative, uncentred decomposition."""
    fmin, lmin = np.nanmin(factors), np.nanmin(loadings)
    if fmin < 0 or lmin < 0:
        raise ValueError(
            "the stored decomposition has negative factors or loadings (minimum "
            f"{min(fmin, lmin):.3g}): it is not an NMF (e.g. HyperSpy's SVD/PCA), and its "
            "stability under NMF restarts means nothing. Run s.nmf_decomposition(...) first."
        )


RESTART_ROWS = 4096  # default rows of the restarts' subsample


def _scaled_error(X, W, H, poisson, column_mask):
    """``||Xs − Ws Hs|| / ||Xs||`` as the engine defines it (in memory, float64)."""
    X = np.asarray(X, dtype=np.float64).copy()
    if column_mask is not None:
        X[:, column_mask] = 0.0
    R = X - np.asarray(W, dtype=np.float64) @ np.asarray(H, dtype=np.float64)
    if column_mask is not None:
        R[:, column_mask] = 0.0
    if poisson:
        rs, cs = X.sum(axis=1), X.sum(axis=0)
        a = inverse_root_sums(rs)
        b = inverse_root_sums(cs)
        X *= a[:, None] * b[None, :]
        R *= a[:, None] * b[None, :]
    total = float(np.einsum("ij,ij->", X, X))
    return float(np.sqrt(np.einsum("ij,ij->", R, R) / total)) if total > 0 else np.nan


def verify_nmf(
    signal,
    n_restarts: int = 5,
    *,
    random_state: int = 0,
    restart_rows: int | None = RESTART_ROWS,
    show_progressbar: bool | None = None,
    **nmf_kwargs,
) -> VerificationResult:
    """Verify the NMF stored in ``signal.learning_results`` (from ``nmf_decomposition``).

    1. **Stability**: NMF is refitted ``n_restarts`` times from random starts on the
       same data (same masks and, if it was used, the same Poisson scaling, inside the
       engine); each restart's components are matched to the stored ones by the
       Hungarian algorithm on cosine similarity (in the units of the data); per
       component the mean and minimum similarity are reported (factors and maps).
       With more than ``restart_rows`` kept patterns the restarts are fitted on an
       evenly spaced subsample of them (every ``stride``-th, gathered once: one
       pass for lazy data) and compared with the stored factors and with the
       stored maps at those positions. They still start at random points and
       converge on their own, so the stability measures local minima as on the
       whole data; the subsample only adds sampling noise (it can lower the
       similarity, never raise it). 3 restarts of 16k patterns: 18 s whole,
       a few seconds on 4096 (``benchmarks/bench_nmf_16k.py``).
    2. **Residual map**: ``‖x_i − w_i H‖ / ‖x_i‖`` for every pattern, as a signal
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
        non-negative factors and loadings and ``centre=None``), not reshaped since.
    n_restarts : int
        Number of random restarts (each costs one factorisation), at least 1.
    random_state : int
    restart_rows : int or None
        Most patterns the restarts are fitted on (None: all kept patterns).
    **nmf_kwargs
        Passed to the restarts (e.g. ``max_iter``, ``tol``).

    Returns
    -------
    VerificationResult

    Examples
    --------
    >>> import hyperspy.api as hs, hyperspy_nanoml
    >>> rng = np.random.default_rng(0)
    >>> s = hs.signals.Signal1D(rng.poisson(50 * rng.random((40, 2)) @ rng.random((2, 32))))
    >>> _ = s.nmf_decomposition(2, random_state=0, print_info=False)
    >>> v = verify_nmf(s, n_restarts=2)
    >>> v.n_components, bool(v.stability_min.min() > 0.9)
    (2, True)
    """
    n_restarts = check_positive_int(n_restarts, "n_restarts")
    if restart_rows is not None:
        restart_rows = check_positive_int(restart_rows, "restart_rows")
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
    factors, loadings = decomposition_arrays(signal)
    _check_nmf_result(factors, loadings)
    X, _, _ = unfold_data(signal)
    nav_mask = _flat_or_none(lr.navigation_mask)
    sig_mask = _flat_or_none(lr.signal_mask)
    Xk = X if nav_mask is None else X[np.flatnonzero(~nav_mask)]
    k = factors.shape[1]
    H = np.nan_to_num(factors.T)  # 0 on masked channels, as the engine returns them
    W = loadings if nav_mask is None else loadings[~nav_mask]

    # 1. stability: the same fit (masks, scaling) from random starts
    # (masked channels are 0 in H and in every restart's H: cosines are unchanged)
    n_kept = int(Xk.shape[0])
    stride = 1 if restart_rows is None else max(1, -(-n_kept // restart_rows))
    Xr, Wr = (Xk[::stride], W[::stride]) if stride > 1 else (Xk, W)
    if stride > 1 and is_lazy(Xr):
        Xr = Xr.compute()  # one pass: the subsample, then everything in memory
    poisson = bool(lr.poissonian_noise_normalized)
    stab = component_stability(
        Xr,
        H,
        Wr,
        n_restarts=n_restarts,
        random_state=random_state,
        show_progressbar=show_progressbar,
        **{
            "normalize_poissonian_noise": bool(lr.poissonian_noise_normalized),
            "column_mask": sig_mask,
            **nmf_kwargs,
        },
    )
    fs, ls = stab["factor_similarity"], stab["loading_similarity"]

    # 2. residual map and 3. explained variance, on the data in its own units
    res_sq, norm_sq, row_sum, WtX = residual_norms(Xk, W, H, column_mask=sig_mask)
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
    nav_shape = navigation_shape_in_array(signal)
    sig_shape = signal_shape_in_array(signal)
    resmap = navigation_signal(signal, full.reshape(nav_shape).astype(np.float32))
    if is_lazy(resmap):
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
        passes=1 + (1 if stride > 1 else int(stab["passes"])),
        random_states=stab["random_states"],
        title=title,
        fit_error=_fit_error(lr, res_sq, norm_sq, poisson),
        restart_reference_error=(
            _scaled_error(Xr, Wr, H, poisson, sig_mask)
            if not is_lazy(Xr)
            else _fit_error(lr, res_sq, norm_sq, poisson)
        ),
        restart_rows=int(Xr.shape[0]),
        restart_stride=int(stride),
        poisson=poisson,
        signal_axes=_axes_info(signal.axes_manager.signal_axes),
        navigation_axes=_axes_info(signal.axes_manager.navigation_axes),
    )
    # a summary of plain numbers (HyperSpy can save it with the signal)
    lr.nmf_verification = {
        "n_restarts": int(n_restarts),
        "stability_mean": result.stability_mean,
        "stability_min": result.stability_min,
        "loading_stability_mean": result.loading_stability_mean,
        "loading_stability_min": result.loading_stability_min,
        "relative_error": result.relative_error,
        "fit_error": result.fit_error,
        "restart_rows": result.restart_rows,
        "explained_energy": result.explained_energy,
        "explained_intensity": result.explained_intensity,
        "explained_total": result.explained_total,
    }
    return result


def _fit_error(lr, res_sq, norm_sq, poisson):
    """The engine's relative error of the stored fit (see ``VerificationResult``)."""
    info = getattr(lr, "nmf_info", None) or {}
    if poisson and "relative_reconstruction_error" in info:
        return float(info["relative_reconstruction_error"])
    total = float(norm_sq.sum())
    if poisson or total <= 0:  # scaled fit of unknown origin: not recomputable here
        return float("nan")
    return float(np.sqrt(res_sq.sum() / total))


def _axes_info(axes):
    """(name, units, scale, offset, size) per axis, array order reversed as HyperSpy's."""
    return tuple(
        (str(a.name), str(a.units), float(a.scale), float(a.offset), int(a.size))
        for a in axes
    )


def _flat_or_none(mask):
    if mask is None:
        return None
    return np.asarray(mask, dtype=bool).ravel()
