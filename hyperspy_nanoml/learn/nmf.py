"""Non-negative matrix factorisation for numpy arrays, dask arrays and dask.distributed.

``X ≈ W H`` with ``W ≥ 0`` (n_samples × k) and ``H ≥ 0`` (k × n_features), Frobenius loss,
optionally on the Poisson-scaled data ``Xs = Da X Db`` (Keenan & Kotula 2004).

One code path serves in-memory numpy arrays, dask arrays on the threaded scheduler and
dask arrays when a :class:`distributed.Client` is active: the data are only ever touched
through *passes* over row blocks (:class:`~hyperspy_nanoml.learn.blocks.RowBlocks`, which
counts them), each pass a map over the blocks followed by a small tree sum, so a lazy
array is never computed whole and the task graph has one task per block and pass. Every
block is converted to float32, masked and scaled slice by slice inside the pass
(:class:`~hyperspy_nanoml.learn.blocks.BlockPrep`).

Algorithm
---------
1. **Pass 1** reads every block once: checks (negative values, NaN/inf), row and column
   sums, the sum of squares, a row sketch ``Z = Ψ X`` with a Rademacher matrix ``Ψ``
   (s × n) generated per row from a counter-based generator (Philox), so it does not
   depend on the chunking, and, for ``n_components="auto"``, an evenly spaced row sample
   on which :func:`~hyperspy_nanoml.learn.n_components.choose_n_components` runs in
   memory (no pass of its own).

   With ``normalize_poissonian_noise`` the data are scaled as
   ``Xs = Da X Db``, ``Da = diag(1/sqrt(row sums))``, ``Db = diag(1/sqrt(column sums))``
   (Keenan & Kotula 2004, Surf. Interface Anal. 36:203). ``Da`` is local to each row
   block (its rows' sums are taken as the block is read) and ``Db`` factors out of what
   pass 1 forms: ``ΨXs = (ΨDaX)Db``, ``‖Xs‖² = Σj qj/bj`` with ``qj = Σi x²ij/ai``,
   the row sample ``(DaX)[::stride] Db``. From pass 2 on both factors are known and
   every block is scaled as it is read. No extra pass, on numpy, threads and
   distributed alike.
2. **Pass 2**: ``V = orth(Zᵀ)`` approximates the dominant row space; the pass computes
   ``Y = X V`` and ``C = Yᵀ X``. With ``Y = Q R``, ``B = R⁻ᵀ C = Qᵀ X`` exactly, so
   ``X ≈ Q B`` with a range basis ``Q`` of quality equal to one power iteration of the
   randomised range finder (Halko, Martinsson & Tropp 2011, SIAM Rev. 53:217; the row
   sketch idea is that of Tropp et al. 2017, SIAM J. Matrix Anal. Appl. 38:1454).
3. **NNDSVD(a)** initialisation (Boutsidis & Gallopoulos 2008, Pattern Recognit.
   41:1350) from the SVD of the small ``B``.
4. **Compressed HALS**: accelerated HALS (Cichocki & Phan 2009, IEICE Trans. Fundam.
   E92-A:708; Gillis & Glineur 2012, Neural Comput. 24:1085) on ``X̃ = Q B``, all in
   memory, ``O((n + m) s k)`` per iteration instead of ``O(n m k)`` (compressed NMF,
   Tepper & Sapiro 2016, IEEE TSP 64:5043). ``W`` (n × k) stays in memory.
5. **Exact refinement passes** on the real data: in one pass every block updates its
   own rows of ``W`` (exact non-negative least squares by HALS sweeps, rows are
   independent given ``H``) and accumulates ``Wᵀ X`` and ``Wᵀ W``; ``H`` is then solved
   in memory. One pass = one exact alternating-NNLS iteration. Passes stop when the
   decrease of the relative error ``‖X − WH‖/‖X‖`` falls below ``tol`` times
   ``max(error, 0.01)`` (relative change; the floor stops noise-free data, whose error
   keeps shrinking geometrically), when the error reaches float32 rounding (1e-5, an
   exact fit), or at ``max_passes`` / ``max_iter`` with a ``ConvergenceWarning``.

Without compression the same refinement passes are iterated from the initialisation:
that is plain (exact) accelerated HALS. Timings that chose the defaults are in
``benchmarks/bench_nmf_16k.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from hyperspy_nanoml._validation import (
    check_init,
    check_matrix,
    check_n_components,
    check_nonnegative_finite,
    check_positive_int,
    resolve_random_state,
)
from hyperspy_nanoml.learn.blocks import BlockPrep, RowBlocks, one_blas_thread
from hyperspy_nanoml.learn.poisson import inverse_root_sums

__all__ = [
    "NMF",
    "FirstPassMasks",
    "NMFResult",
    "hals_sweeps",
    "nmf",
    "nnls_loadings",
    "residual_sq_rows",
]

_TINY = np.float32(1e-30)  # floor for HALS updates: no exact zero-locking, no 0/0
_ERROR_FLOOR = 0.01  # convergence: decrease <= tol * max(error, floor)
_EXACT_FIT = 1e-5  # relative error at float32 rounding level: an exact fit, converged
_MAX_EXACT_IN_MEMORY = 50  # default cap of exact passes after compression (numpy)
# row sample of n_components="auto" (float32): enough rows to see the eigenvalue
# spectrum (4096 patterns of 64 x 64), small enough that the choice costs little
# next to a pass (16k SPED: 256 MB sample 4.7 s, 64 MB 0.? s, same choice)
_CHOICE_SAMPLE_BYTES = 64 * 2**20
_C_TOL_SIZE = 1_000_000  # arrays this large (n*m) converge the compressed phase to tol/100


def _convergence_warning_class():
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning


# --------------------------------------------------------------------------- result


@dataclass
class NMFResult:
    """Result of :func:`nmf`.

    Attributes
    ----------
    W : numpy.ndarray, float32, shape (n_samples, k)
        Non-negative loadings (abundances), in the units of ``X`` (Poisson scaling
        undone): ``X ≈ W H``.
    H : numpy.ndarray, float32, shape (k, n_features)
        Non-negative components, each scaled to a maximum of 1 (0 on masked columns).
    n_iter : int
        HALS iterations done (compressed plus exact).
    reconstruction_error : float
        Relative Frobenius error ``‖Xf − Wf Hf‖ / ‖Xf‖`` of the matrix fitted: ``X``
        itself, or the Poisson-scaled ``Xs`` with ``normalize_poissonian_noise``.
    converged : bool
        True when the last iteration changed the relative error by less than ``tol``.
    passes : int
        Number of full passes over the data ``X`` (every block used), all of them
        (Poisson scaling and the choice of ``n_components`` take none of their own).
    reads : int
        Reads of ``X`` (computations of every block of a dask array): ``passes``, or 1
        when the blocks were held in memory after the first (``hold_in_memory``).
    compressed : bool
        Whether the iterations ran in the randomly compressed space.
    n_iter_compressed, n_iter_exact : int
        Iterations in the compressed space and exact ones (each exact one is a pass).
    sketch_size : int or None
        Size ``s`` of the random sketch (``None`` when no sketch was made).
    error_history : numpy.ndarray
        Relative errors after every exact iteration.
    explained_energy : numpy.ndarray, shape (k,)
        ``‖w_j h_j‖² / ‖X‖²`` per component, in the units of ``X``.
    method : str
        Short description of what ran.
    data_sq_norm : float
        ``‖X‖²`` of the data as given (masked columns excluded), float64.
    fitted_sq_norm : float
        ``‖Xf‖²`` of the matrix fitted (equal to ``data_sq_norm`` without scaling).
    random_state : int or None
        The seed used: giving it back as ``random_state`` repeats the run (``None``
        only when a ``RandomState`` instance was given).
    normalize_poissonian_noise : bool
    row_scale, column_scale : numpy.ndarray or None
        The Keenan-Kotula factors ``1/sqrt(row sums)`` and ``1/sqrt(column sums)``
        (float32; sums of zero count as 1), when the data were scaled.
    component_choice : ComponentChoice or None
        The evidence for ``n_components="auto"``.
    column_mask, row_mask : numpy.ndarray of bool or None
        The masks used (True = excluded), given or decided from the first pass.
    """

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    reconstruction_error: float
    converged: bool
    passes: int
    reads: int = 0
    compressed: bool = False
    n_iter_compressed: int = 0
    n_iter_exact: int = 0
    sketch_size: int | None = None
    error_history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    explained_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    method: str = ""
    data_sq_norm: float = float("nan")
    fitted_sq_norm: float = float("nan")
    random_state: int | None = None
    normalize_poissonian_noise: bool = False
    row_scale: np.ndarray | None = None
    column_scale: np.ndarray | None = None
    component_choice: object = None
    column_mask: np.ndarray | None = None
    row_mask: np.ndarray | None = None

    @property
    def n_components(self) -> int:
        return self.H.shape[0]


# ---------------------------------------------------------------- block kernels


def _rademacher_rows(key, row_start, n_rows, s):
    """Rows ``row_start … row_start+n_rows`` of a Rademacher matrix (n × s).

    Independent of the chunking and of ``s``: every group of 4 columns has its own
    counter-based stream (Philox keyed by ``(key, group)``, one counter step = 4
    values = one row), so the first ``s'`` columns generated for any ``s ≥ s'`` are
    the same (``n_components="auto"`` sketches wide and keeps the first columns).
    """
    out = np.empty((n_rows, s), dtype=np.float32)
    for g in range(0, s, 4):
        bg = np.random.Philox(key=np.array([key % 2**64, g // 4], dtype=np.uint64))
        bg.advance(row_start)
        raw = bg.random_raw(n_rows * 4).reshape(n_rows, 4)
        out[:, g : g + 4] = (raw[:, : min(4, s - g)] & np.uint64(1)).astype(np.float32)
    out *= 2
    out -= 1
    return out


def _column_sums(xs, group=64):
    """float64 column sums of a float32 slice, ~5x faster than ``sum(axis=0,
    dtype=float64)``: float32 sums over groups of 64 rows (relative error below
    64 float32 roundings; exact for counts), then float64 over the groups."""
    n, m = xs.shape
    full = n - n % group
    out = np.zeros(m, dtype=np.float64)
    if full:
        out += xs[:full].reshape(-1, group, m).sum(axis=1).sum(axis=0, dtype=np.float64)
    if full < n:
        out += xs[full:].sum(axis=0, dtype=np.float64)
    return out


def _kernel_first_pass(
    block, start, prep, key, s, poisson, stride, raw_sample=False, row_statistics=None
):
    """Pass 1 on one block: checks, sums, the sketch ``Ψ (Da X)`` and the row sample.

    Per block: ``(minimum, row sums or None, sample rows or None, row statistics or
    None)``; ``raw_sample`` keeps the sample rows unscaled and ``row_statistics``
    (a function of the raw block) adds its per-row output. Summed:
    ``(counts [non-finite, negative], column sums, Σi x_ij·ai^-1/2, Σi x²_ij/ai,
    Z, [Σ x²])``; without Poisson scaling ``ai = 1`` and the repeated sums are empty.
    """
    k0, n = prep.kept(start, block.shape[0])
    m = block.shape[1]
    n_nonfinite = n_negative = 0
    minimum = np.inf
    Z = np.zeros((s, m), dtype=np.float64) if s else np.zeros(0)
    colsum = np.zeros(m, dtype=np.float64)
    colsum_scaled = np.zeros(m, dtype=np.float64) if poisson else np.zeros(0)
    colsq = np.zeros(m, dtype=np.float64)
    raw_sq = np.zeros(1)
    row_sums = np.empty(n, dtype=np.float64) if poisson else None
    sample = []
    for a, b, xs in prep.slices(block, start):
        lo, hi = float(xs.min()), float(xs.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN propagates, inf shows
            finite = np.isfinite(xs)
            n_nonfinite += xs.size - int(np.count_nonzero(finite))
            xs = np.where(finite, xs, np.float32(0))
            lo = float(xs.min())
        if lo < 0:
            n_negative += int(np.count_nonzero(xs < 0))
        minimum = min(minimum, lo)
        if stride and raw_sample:
            sample.append(xs[(-(k0 + a)) % stride :: stride].copy())
        colsum += _column_sums(xs)
        if poisson:
            raw_sq[0] += float(np.einsum("ij,ij->i", xs, xs).sum(dtype=np.float64))
            rs = xs.sum(axis=1).astype(np.float64)  # float32 pairwise along rows
            row_sums[a:b] = rs
            ia = inverse_root_sums(rs, np.float32)
            xs = xs * ia[:, None]  # a new array: the input is never modified
            colsum_scaled += _column_sums(xs)
        colsq += np.einsum("ij,ij->j", xs, xs)
        if s:
            psi = _rademacher_rows(key, k0 + a, b - a, s)
            Z += psi.T @ xs
        if stride and not raw_sample:
            sample.append(xs[(-(k0 + a)) % stride :: stride].copy())
    if not poisson:
        raw_sq[0] = colsq.sum()
    if stride:
        sample = np.concatenate(sample, axis=0) if sample else np.zeros((0, m), np.float32)
    else:
        sample = None
    counts = np.array([n_nonfinite, n_negative], dtype=np.int64)
    stats = None if row_statistics is None else row_statistics(block)
    return (minimum, row_sums, sample, stats), (
        counts,
        colsum,
        colsum_scaled,
        colsq,
        Z,
        raw_sq,
    )


def _kernel_range(block, start, prep, V):
    """Pass 2: ``Y = X V`` (kept per block) and ``C = Yᵀ X`` (summed).

    Row slices keep each piece of X in cache for both products (one read from memory).
    """
    Vf = np.ascontiguousarray(V, dtype=np.float32)
    Y = np.empty((prep.kept(start, block.shape[0])[1], V.shape[1]), dtype=np.float32)
    C = np.zeros((V.shape[1], block.shape[1]), dtype=np.float64)
    for a, b, xs in prep.slices(block, start):
        Y[a:b] = xs @ Vf
        C += Y[a:b].T @ xs
    return Y.astype(np.float64), (C,)


def _kernel_range_stats(block, start, prep, T, poisson=True):
    """Pass 2 after masks decided from pass 1: the statistics of pass 1 on the kept
    rows and columns, and the range products, in one read.

    Rows are scaled by ``1/sqrt(row sums)`` (``Da``, local); the column factor is
    not known yet, so the products use the test matrix ``T`` as given and
    ``C = Yᵀ (Da X)`` is returned unscaled (``Db`` is applied after the pass).
    Per block: ``(Y, row sums)``. Summed: ``(C, column sums, Σ x·a^-1/2, Σ x²/a,
    Σ x², counts [non-finite, negative])``.
    """
    m = block.shape[1]
    kn = prep.kept(start, block.shape[0])[1]
    Tf = np.ascontiguousarray(T, dtype=np.float32)
    Y = np.empty((kn, T.shape[1]), dtype=np.float32)
    row_sums = np.empty(kn, dtype=np.float64)
    C = np.zeros((T.shape[1], m), dtype=np.float64)
    colsum = np.zeros(m, dtype=np.float64)
    colsum_scaled = np.zeros(m, dtype=np.float64)
    colsq = np.zeros(m, dtype=np.float64)
    raw_sq = np.zeros(1)
    counts = np.zeros(2, dtype=np.int64)
    for a, b, xs in prep.slices(block, start):
        if not np.isfinite(xs).all():
            finite = np.isfinite(xs)
            counts[0] += xs.size - int(np.count_nonzero(finite))
            xs = np.where(finite, xs, np.float32(0))
        counts[1] += int(np.count_nonzero(xs < 0))
        colsum += _column_sums(xs)
        raw_sq[0] += float(np.einsum("ij,ij->i", xs, xs).sum(dtype=np.float64))
        rs = xs.sum(axis=1).astype(np.float64)  # float32 pairwise along rows
        row_sums[a:b] = rs
        if poisson:
            ia = inverse_root_sums(rs, np.float32)
            xs = xs * ia[:, None]
            colsum_scaled += _column_sums(xs)
        colsq += np.einsum("ij,ij->j", xs, xs)
        Y[a:b] = xs @ Tf
        C += Y[a:b].T @ xs
    return (Y.astype(np.float64), row_sums), (
        C,
        colsum,
        colsum_scaled,
        colsq,
        raw_sq,
        counts,
    )


def hals_sweeps(F, A, Cm, n_sweeps, delta=None):
    """HALS on component rows ``F`` (k × r) in place: ``F[j] ← max(0, F[j] + (A[j] − C[j] F)/C[j,j])``.

    Minimises ``½ tr(Fᵀ C F) − tr(Aᵀ F)`` over ``F ≥ 0`` (a non-negative least-squares
    problem for every column of F; Cichocki & Phan 2009). With ``delta`` the sweeps stop
    early once a sweep changes F by less than ``delta`` times the change of the first
    sweep (Gillis & Glineur 2012). Returns the number of sweeps done.
    """
    k = F.shape[0]
    diag = np.maximum(np.diag(Cm), _TINY)
    first = None
    for sweep in range(n_sweeps):
        change = 0.0
        for j in range(k):
            upd = A[j] - Cm[j] @ F
            upd /= diag[j]
            new = F[j] + upd
            np.maximum(new, _TINY, out=new)
            if delta is not None:
                d = new - F[j]
                change += float(np.dot(d, d))
            F[j] = new
        if delta is not None:
            if first is None:
                first = change
            elif change <= delta * delta * first:
                return sweep + 1
    return n_sweeps


def _kernel_refine(block, start, prep, W0t, H, n_sweeps):
    """One exact pass: rows of W for this block by NNLS, then ``Wᵀ X``, ``Wᵀ W`` sums.

    Rows of W are independent given H, so the block is processed in row slices that
    stay in cache for all the work on them (one read of X from memory): ``X_s Hᵀ``,
    HALS sweeps on the slice's rows of W, ``W_sᵀ X_s`` and the exact squared residual
    ``‖X_s − W_s H‖²`` (computed directly, so the reported error does not suffer the
    cancellation of the expanded formula).
    """
    k0, kn = prep.kept(start, block.shape[0])
    Wt = np.array(W0t[:, k0 : k0 + kn], dtype=np.float32, order="C")
    HHt = H @ H.T
    HHt64 = HHt.astype(np.float64)
    Ht = np.ascontiguousarray(H.T)
    P = np.zeros(H.shape, dtype=np.float64)
    res = np.zeros(2)
    for a, b, xs in prep.slices(block, start):
        At = np.ascontiguousarray((xs @ Ht).T)  # (k, rows)
        Ws = np.ascontiguousarray(Wt[:, a:b])
        Wo = Ws.copy()
        hals_sweeps(Ws, At, HHt, n_sweeps)
        Wt[:, a:b] = Ws
        P += Ws @ xs
        r_new = residual_sq_rows(xs, Ws, H).sum()
        res[1] += r_new
        # before this iteration: exact new residual minus the (accurate) decrease
        res[0] += r_new - _delta_obj(Wo, Ws, At, HHt64)
    W64 = Wt.astype(np.float64)
    return Wt, (P, W64 @ W64.T, res)


def residual_sq_rows(X, Wt, H, rows_per_slice=1024):
    """``‖x_i − w_i H‖²`` for every row of X (float64 result), in slices of rows.

    ``Wt`` is ``Wᵀ`` (k × n). Squares are summed in float32 along each row with numpy's
    pairwise summation (relative error ~1e-7·log2(n_features)): no cancellation is
    involved, so this is as good as float64 here and several times faster.
    """
    out = np.empty(X.shape[0], dtype=np.float64)
    for a in range(0, X.shape[0], rows_per_slice):
        b = min(a + rows_per_slice, X.shape[0])
        R = Wt[:, a:b].T @ H
        np.subtract(X[a:b], R, out=R)
        np.multiply(R, R, out=R)
        out[a:b] = R.sum(axis=1)
    return out


def _delta_obj(Fo, Fn, A, Cm):
    """Change of ``f(F) = −2 Σ(F∘A) + Σ((F Fᵀ)∘C)`` from ``Fo`` to ``Fn`` (float64).

    Differences are accurate where the expanded objective itself would suffer
    cancellation in float32.
    """
    Fo64 = Fo.astype(np.float64)
    Fn64 = Fn.astype(np.float64)
    return -2.0 * float(np.sum((Fn64 - Fo64) * A)) + float(
        np.sum((Fn64 @ Fn64.T - Fo64 @ Fo64.T) * Cm)
    )


# ------------------------------------------------------------------ helpers


def _round4(v):
    return int(4 * np.ceil(v / 4))


def _sketch_size(k, n, m):
    s = _round4(max(k + 12, 2 * k + 4))
    return int(min(s, 4 * (min(n, m) // 4) if min(n, m) >= 4 else min(n, m)))


def _nndsvd(U, S, Vt, k, variant, mean, rng):
    """NNDSVD initialisation (Boutsidis & Gallopoulos 2008) from a rank-k SVD.

    ``U`` (n × k), ``S`` (k), ``Vt`` (k × m). Returns ``Wt`` (k × n), ``H`` (k × m).
    For each pair of singular vectors the dominant of the two sign-pure parts
    ``(u₊, v₊)`` or ``(u₋, v₋)`` is kept, weighted by ``sqrt(σ_j ‖u‖·‖v‖)``.
    Variant ``nndsvda`` fills zeros with the mean of X, ``nndsvdar`` with small random
    values (mean/100 scale).
    """
    n, m = U.shape[0], Vt.shape[1]
    Wt = np.zeros((k, n), dtype=np.float64)
    H = np.zeros((k, m), dtype=np.float64)
    for j in range(k):
        u, v = U[:, j], Vt[j]
        if j == 0:
            # leading singular vectors of non-negative data have one sign
            su = 1.0 if u.sum() >= 0 else -1.0
            Wt[0] = np.sqrt(S[0]) * np.maximum(su * u, 0)
            H[0] = np.sqrt(S[0]) * np.maximum(su * v, 0)
            continue
        up, un = np.maximum(u, 0), np.maximum(-u, 0)
        vp, vn = np.maximum(v, 0), np.maximum(-v, 0)
        nup, nun = np.linalg.norm(up), np.linalg.norm(un)
        nvp, nvn = np.linalg.norm(vp), np.linalg.norm(vn)
        mp, mn = nup * nvp, nun * nvn
        if mp >= mn:
            x, y, sigma, nx, ny = up, vp, mp, nup, nvp
        else:
            x, y, sigma, nx, ny = un, vn, mn, nun, nvn
        if sigma > 0 and S[j] > 0:
            lam = np.sqrt(S[j] * sigma)
            Wt[j] = lam * x / nx
            H[j] = lam * y / ny
    if variant == "nndsvda":
        Wt[Wt == 0] = mean
        H[H == 0] = mean
    elif variant == "nndsvdar":
        zw, zh = Wt == 0, H == 0
        Wt[zw] = mean / 100 * rng.random_sample(int(zw.sum()))
        H[zh] = mean / 100 * rng.random_sample(int(zh.sum()))
    return Wt.astype(np.float32), H.astype(np.float32)


def _balance(Wt, H):
    """Rescale component pairs so ``‖w_j‖ = ‖h_j‖`` (WH unchanged)."""
    nw = np.sqrt(np.einsum("ij,ij->i", Wt, Wt, dtype=np.float64))
    nh = np.sqrt(np.einsum("ij,ij->i", H, H, dtype=np.float64))
    ok = (nw > 0) & (nh > 0)
    f = np.ones_like(nw)
    f[ok] = np.sqrt(nh[ok] / nw[ok])
    Wt *= f[:, None].astype(np.float32)
    H /= f[:, None].astype(np.float32)


def _n_sweeps_h(m, k, s_or_n):
    # Gillis & Glineur: up to 1 + alpha*rho inner sweeps, rho = cost(products)/cost(sweep)
    return int(min(max(1 + 0.5 * (s_or_n / max(k, 1)), 2), 30))


def _canonical(Wt, H, row_factor=None, column_factor=None):
    """Undo the scaling (``W = Ws·sqrt(a)``, ``H = Hs·sqrt(b)``), scale each H row to
    max 1 (W absorbs it), order by energy (stable); returns W (n × k), H, energy."""
    Wt = Wt.astype(np.float64)
    H = H.astype(np.float64)
    if row_factor is not None:
        Wt /= row_factor[None, :].astype(np.float64)
        H /= column_factor[None, :].astype(np.float64)
    hmax = H.max(axis=1)
    hmax[hmax <= 0] = 1.0
    H /= hmax[:, None]
    Wt *= hmax[:, None]
    energy = np.einsum("ij,ij->i", Wt, Wt) * np.einsum("ij,ij->i", H, H)
    order = np.argsort(-energy, kind="stable")
    return (
        np.ascontiguousarray(Wt[order].T, dtype=np.float32),
        np.ascontiguousarray(H[order], dtype=np.float32),
        energy[order],
    )


def _flat_mask(mask, size, what, unit):
    """Flat bool mask (True = excluded) of ``size`` entries, or None when nothing is."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != bool:
        if mask.size and not np.isin(np.unique(mask), [0, 1]).all():
            raise ValueError(f"{what} must be boolean (True = excluded {unit})")
        mask = mask.astype(bool)
    mask = mask.ravel()
    if mask.size != size:
        raise ValueError(f"{what} has {mask.size} entries, X has {size} {unit}s")
    if mask.all():
        raise ValueError(f"{what} excludes every {unit}: there is nothing to factorise")
    return mask if mask.any() else None


def _column_mask(column_mask, m):
    """Flat bool mask (True = excluded) of length m, or None."""
    return _flat_mask(column_mask, m, "column_mask", "column")


def _keep_rows(row_mask, n):
    """Bool array of kept rows (True = kept) from a row mask (True = excluded), or None."""
    mask = _flat_mask(row_mask, n, "row_mask", "row")
    return None if mask is None else ~mask


# --------------------------------------------------------------------- nmf


@dataclass
class _FirstPass:
    """What pass 1 learned about the matrix fitted."""

    Z: np.ndarray
    fitted_sq: float
    data_sq: float
    mean: float
    zero_columns: np.ndarray  # bool, columns summing to zero
    row_scale: np.ndarray | None
    column_scale: np.ndarray | None
    # the row sample of n_components="auto": the matrix fitted, or with Poisson
    # scaling the raw counts (masked columns zeroed), which the choice needs
    sample: np.ndarray | None


def _first_pass_from_sums(poisson, row_sums, colsum, colsum_scaled, colsq, raw_sq, shape):
    """The :class:`_FirstPass` (``Z`` and ``sample`` left empty) from a pass's sums:
    Keenan-Kotula scales (or None), the fitted matrix's sum of squares and mean.

    ``colsum_scaled`` and ``colsq`` are column sums of the row-scaled data and of its
    squares; the column scale factors out of both (``||Xs||^2 = sum_j q_j b_j^2``).
    Raises when nothing is left to factorise.
    """
    if poisson:
        row_scale = inverse_root_sums(row_sums, np.float32)
        column_scale = inverse_root_sums(colsum, np.float32)
        cs64 = column_scale.astype(np.float64)
        fitted_sq = float(colsq @ (cs64 * cs64))
        total = float(colsum_scaled @ cs64)
    else:
        row_scale = column_scale = None
        fitted_sq = float(colsq.sum())
        total = float(colsum.sum())
    if fitted_sq == 0:
        raise ValueError(
            "X is all zeros (after masking): there is nothing to factorise. Check the "
            "data and the masks (navigation_mask / signal_mask / column_mask)."
        )
    n, m = shape
    return _FirstPass(
        Z=np.zeros(0),
        fitted_sq=fitted_sq,
        data_sq=float(raw_sq[0]),
        mean=total / (n * m),
        zero_columns=colsum == 0,
        row_scale=row_scale,
        column_scale=column_scale,
        sample=None,
    )


def _first_pass(blocks, prep, key, s, poisson, stride, shape):
    parts, sums = blocks.run(_kernel_first_pass, prep, key, s, poisson, stride, poisson)
    counts, colsum, colsum_scaled, colsq, Z, raw_sq = sums
    minimum = min(p[0] for p in parts)
    check_nonnegative_finite(int(counts[1]), float(minimum), int(counts[0]), shape)
    row_sums = np.concatenate([p[1] for p in parts]) if poisson else None
    first = _first_pass_from_sums(
        poisson, row_sums, colsum, colsum_scaled, colsq, raw_sq, shape
    )
    first.Z = Z * first.column_scale.astype(np.float64)[None, :] if poisson and s else Z
    first.sample = np.concatenate([p[2] for p in parts], axis=0) if stride else None
    return first


def _choose(first, max_components, seed, rng, plan, choice_options):
    """``n_components="auto"`` on the first pass's row sample: ``(choice, k)``."""
    from hyperspy_nanoml.learn.n_components import choose_n_components

    options = dict(choice_options or {})
    if first.row_scale is not None:  # Poisson-scaled fit: the sample holds the counts
        options.setdefault("noise", "poisson")
    choice = choose_n_components(
        first.sample,
        max_components=max_components,
        random_state=seed if seed is not None else rng,
        sampled_stride=plan.stride,
        **options,
    )
    k = min(int(choice.n_components), plan.n, plan.m)
    first.sample = None  # up to 64 MB: not kept
    return choice, k


@dataclass(frozen=True)
class FirstPassMasks:
    """Column and row masks decided from the NMF's own first pass (no pass of their own).

    Attributes
    ----------
    row_statistics : callable
        ``row_statistics(block) -> (rows, q) array``: per-row numbers of a raw block
        (rows x features as stored, any real dtype), computed in the first pass.
    decide : callable
        ``decide(column_sums, statistics) -> (column_mask, row_mask)``: from the
        float64 column sums of all rows (the mean pattern times the number of
        rows) and the ``(n_samples, q)`` statistics of every row, the masks
        (bool, True = excluded, or None). Raise to stop before any other pass.
    """

    row_statistics: object
    decide: object


def _stack_statistics(parts):
    """Per-block row statistics into one array, releasing each block's as it is copied."""
    n = sum(p[3].shape[0] for p in parts)
    first = parts[0][3]
    out = np.empty((n,) + first.shape[1:], dtype=first.dtype)
    a = 0
    for i, p in enumerate(parts):
        st = p[3]
        out[a : a + st.shape[0]] = st
        a += st.shape[0]
        parts[i] = p[:3] + (None,)
    return out


def _deferred_first_passes(blocks, masks, key, s, poisson, stride, bar):
    """Passes 1 and 2 when the masks are decided from pass 1 (:class:`FirstPassMasks`).

    Pass 1 reads every row unmasked: checks, column sums, the caller's row
    statistics, a sketch ``Z = Ψ Da' X Db'`` with the scalings of all rows and
    columns, and a raw row sample. The caller decides the masks. Pass 2 reads
    the kept rows with the masked columns zeroed and takes, in the same read,
    what pass 1 gives without masks (row and column sums, hence the exact
    Keenan-Kotula factors, ``‖Xs‖²``, the mean) and the range products
    ``Y = (Da X) T``, ``C = Yᵀ (Da X)`` with the test matrix
    ``T = Db' V`` (``V`` the right singular vectors of ``Z``, zero on masked
    columns): ``Q = orth(Y)`` spans the range of ``Xs T'`` for a test matrix
    ``T' = Db⁻¹ Db' V`` close to ``V``, and ``B = Qᵀ Xs = R⁻ᵀ C Db`` exactly. So
    the factorisation of the masked, scaled matrix costs the same two passes as
    without masks (Halko, Martinsson & Tropp 2011: any test matrix gives an
    exact ``Qᵀ Xs``; its quality only sets how much of the range ``Q`` holds).
    """
    n_all, m = blocks.shape
    parts, sums = blocks.run(
        _kernel_first_pass, BlockPrep(), key, s, poisson, stride, True, masks.row_statistics
    )
    bar.update(1)
    counts, colsum_all, _, _, Z, _ = sums
    minimum = min(p[0] for p in parts)
    check_nonnegative_finite(int(counts[1]), float(minimum), int(counts[0]), (n_all, m))
    sample = np.concatenate([p[2] for p in parts], axis=0) if stride else None
    stats = _stack_statistics(parts)
    del parts
    column_mask, row_mask = masks.decide(colsum_all, stats)
    del stats
    mask = _column_mask(column_mask, m)
    keep = _keep_rows(row_mask, n_all)
    n = n_all if keep is None else int(keep.sum())
    prep = BlockPrep(
        zero_columns=None if mask is None else np.flatnonzero(mask), keep_rows=keep
    )
    # the test matrix: right singular vectors of the all-row sketch, with the
    # all-row column scaling folded in and zero on masked columns
    cs_all = inverse_root_sums(colsum_all)
    with one_blas_thread():
        Zs = Z * cs_all[None, :] if poisson else np.array(Z)
        if mask is not None:
            Zs[:, mask] = 0.0
        V = np.linalg.svd(Zs, full_matrices=False)[2].T  # (m, s)
        T = V * cs_all[:, None] if poisson else V
    Ys, sums = blocks.run(_kernel_range_stats, prep, T, poisson)
    bar.update(1)
    C, colsum, colsum_scaled, colsq, raw_sq, counts2 = sums
    row_sums = np.concatenate([y[1] for y in Ys])
    Y = np.concatenate([y[0] for y in Ys], axis=0)
    del Ys
    first = _first_pass_from_sums(
        poisson, row_sums, colsum, colsum_scaled, colsq, raw_sq, (n, m)
    )
    if poisson:
        C = C * first.column_scale.astype(np.float64)[None, :]
    if sample is not None:
        rows = np.arange(0, n_all, stride)[: sample.shape[0]]
        kept_sample = np.ones(rows.size, bool) if keep is None else keep[rows]
        sample = sample[kept_sample]
        if mask is not None:
            sample[:, mask] = 0  # raw rows: the matrix fitted, or the counts (Poisson)
    first.sample = sample
    with one_blas_thread():
        Q, R = np.linalg.qr(Y)
        del Y
        d = np.abs(np.diag(R))
        if d.size and d.min() > 1e-10 * d.max():
            B = np.linalg.solve(R.T, C)
        else:
            B = np.linalg.lstsq(R.T, C, rcond=None)[0]
        Ub, Sb, Vbt = np.linalg.svd(B, full_matrices=False)
    return first, (Q, B, Ub, Sb, Vbt), prep, mask, keep, n


def _truncate_basis(basis, s):
    """The leading ``s`` directions of a range basis ``(Q, B, Ub, Sb, Vbt)``:
    ``Q Ub[:, :s]`` and ``diag(Sb[:s]) Vbt[:s]`` (the best rank-s part of ``Q B``)."""
    Q, B, Ub, Sb, Vbt = basis
    if s >= Q.shape[1]:
        return basis
    with one_blas_thread():
        Qs = Q @ Ub[:, :s]
    Bs = Sb[:s, None] * Vbt[:s]
    return Qs, Bs, np.eye(s), Sb[:s], Vbt[:s]


def _range_basis(blocks, prep, Z, k):
    """Pass 2: range basis Q (n × s) and B = Qᵀ X (s × m), with the SVD of B."""
    with one_blas_thread():
        # right singular vectors of the sketch: X V has nearly orthogonal columns
        # ordered by energy, so R below is well conditioned (float32 is enough)
        V = np.linalg.svd(Z, full_matrices=False)[2].T  # (m, s)
    Ys, (C,) = blocks.run(_kernel_range, prep, V)
    with one_blas_thread():
        Y = np.concatenate(Ys, axis=0)
        Q, R = np.linalg.qr(Y)
        d = np.abs(np.diag(R))
        if d.size and d.min() > 1e-10 * d.max():
            B = np.linalg.solve(R.T, C)  # = Qᵀ X (s × m)
        else:  # X has lower rank than the sketch (e.g. constant data): least squares
            B = np.linalg.lstsq(R.T, C, rcond=None)[0]
        Ub, Sb, Vbt = np.linalg.svd(B, full_matrices=False)
    if Sb[0] > 0 and k > 1 and Sb[k - 1] < 1e-6 * Sb[0]:
        warnings.warn(
            f"X has numerical rank below n_components={k} (singular value "
            f"{k} is {Sb[k - 1] / Sb[0]:.1e} of the first); some components "
            "will be degenerate. Consider fewer components.",
            stacklevel=3,
        )
    return Q, B, Ub, Sb, Vbt


def _initialise(init, k, n, m, first, basis, rng):
    if isinstance(init, (tuple, list)):
        W0, H0 = check_init(init, n, m, k)
        Wt, H = np.ascontiguousarray(W0.T), H0.copy()
    elif init == "random":
        scale = np.sqrt(first.mean / k)
        H = (scale * rng.standard_normal((k, m))).astype(np.float32)
        Wt = (scale * rng.standard_normal((k, n))).astype(np.float32)
        np.abs(H, out=H)
        np.abs(Wt, out=Wt)
    else:
        Q, _, Ub, Sb, Vbt = basis
        with one_blas_thread():
            U = Q @ Ub[:, :k]
            Wt, H = _nndsvd(U, Sb[:k], Vbt[:k], k, init, first.mean, rng)
    np.maximum(Wt, _TINY, out=Wt)
    np.maximum(H, _TINY, out=H)
    # all-zero columns (e.g. masked pixels) have zero components at the optimum:
    # start them there so they do not disturb the other updates
    H[:, first.zero_columns] = _TINY
    return Wt, H


def _refine(blocks, prep, Wt, H, xx, tol, max_passes, max_exact, bar):
    """Exact refinement passes (one exact ANLS iteration per pass)."""
    errors = []
    converged = False
    n_exact = 0
    n, m = Wt.shape[1], H.shape[1]
    k = H.shape[0]
    n_sweeps_h = _n_sweeps_h(m, k, n)
    last_change = np.nan
    while blocks.passes < max_passes and n_exact < max_exact:
        _balance(Wt, H)
        Wparts, (P, G, res) = blocks.run(_kernel_refine, prep, Wt, H, 10)
        bar.update(1)
        Wt = np.concatenate(Wparts, axis=1)
        H_old = H.copy()
        with one_blas_thread():
            hals_sweeps(
                H, P.astype(np.float32), G.astype(np.float32), n_sweeps_h, delta=0.01
            )
            err2 = float(res[1]) + _delta_obj(H_old, H, P, G)
        e_start = np.sqrt(max(float(res[0]), 0.0) / xx)  # exact error when the pass began
        errors.append(np.sqrt(max(err2, 0.0) / xx))
        n_exact += 1
        # one full iteration (W then H) within this pass: converged when it lowered
        # the error by less than tol (relative, floored for near-exact fits)
        last_change = e_start - errors[-1]
        if last_change <= tol * max(errors[-1], _ERROR_FLOOR) or errors[-1] <= _EXACT_FIT:
            converged = True
            break
    return Wt, H, errors, converged, n_exact, last_change


def nmf(
    X,
    n_components: int | str,
    *,
    normalize_poissonian_noise: bool = False,
    column_mask=None,
    init="nndsvda",
    max_iter: int = 500,
    tol: float = 1e-5,
    random_state=None,
    compression="auto",
    max_passes: int | None = None,
    sketch_size: int | None = None,
    max_components: int | None = None,
    choice_options: dict | None = None,
    show_progressbar: bool | None = None,
    row_mask=None,
    masks_from_first_pass: FirstPassMasks | None = None,
    hold_in_memory: bool | str = "auto",
) -> NMFResult:
    """Non-negative matrix factorisation ``X ≈ W H`` (Frobenius loss), in memory or out of core.

    Parameters
    ----------
    X : numpy.ndarray or dask.array.Array, shape (n_samples, n_features)
        Non-negative, finite data (counts or intensities; any real dtype, converted to
        float32 slice by slice as blocks are read). Never modified. A dask array is
        only read block by block (one task per row chunk and pass); with a
        ``distributed.Client`` active the passes run on the cluster.
    n_components : int or "auto"
        Number of components ``k``, ``1 ≤ k ≤ min(n_samples, n_features)``. ``"auto"``
        chooses it with :func:`~hyperspy_nanoml.learn.n_components.choose_n_components`
        on an evenly spaced row sample (≤ 256 MB) of the matrix fitted, kept in the
        first pass: no extra pass (the evidence is ``result.component_choice``).
    normalize_poissonian_noise : bool
        Fit the Keenan-Kotula scaled ``Xs = Da X Db`` (``Da``, ``Db`` diagonal with
        ``1/sqrt`` of the row and column sums; Keenan & Kotula 2004, Surf. Interface
        Anal. 36:203), the better estimator for Poisson counts; the factors are then
        returned in the units of ``X``. No extra pass (see the module docstring).
    column_mask : bool array (n_features,), optional
        True = column excluded: treated as zero inside the pass (NaN allowed there);
        its component entries are 0.
    init : {"nndsvda", "nndsvd", "nndsvdar", "random"} or (W, H)
        Initialisation. The NNDSVD variants use the SVD of the compressed data (two
        passes, shared with the compression). ``(W, H)`` arrays (finite, ≥ 0) start
        from given factors of the matrix fitted.
    max_iter : int
        Maximum number of HALS iterations (compressed plus exact; at least two exact
        ones are always done, within ``max_passes``).
    tol : float
        Stop when an iteration lowers the relative error ``‖X − WH‖/‖X‖`` by less than
        ``tol · max(error, 0.01)``.
    random_state : None, int, numpy.random.Generator or numpy.random.RandomState
        Seed of the sketch, of random initialisations and of the component choice.
        The seed used is ``result.random_state`` (drawn and recorded when None), so
        any run can be repeated; an int makes the result independent of the chunking
        (up to rounding).
    compression : "auto", bool
        Iterate in a randomly compressed space (Tepper & Sapiro 2016) and then refine
        on the real data (``True``), or run plain accelerated HALS on the data
        (``False``, one pass per iteration). ``"auto"`` = ``True``: faster and at least
        as accurate in every case measured (``benchmarks/bench_nmf_16k.py``).
    max_passes : int, optional
        Upper bound on passes over the data (at least 3 with a sketch, 2 without).
        Default: 4 for dask arrays read every pass (2 for the sketch, 2 exact
        refinements) and ``min(max_iter + 2, 52)`` for numpy arrays and held dask
        arrays (``max_iter + 2`` without compression). A ``ConvergenceWarning`` says when the budget ends before ``tol``.
    sketch_size : int, optional
        Size of the sketch (default ``max(k + 12, 2k + 4)`` rounded up to 4).
    max_components : int, optional
        Upper bound for ``n_components="auto"`` (default 30).
    choice_options : dict, optional
        Other arguments of ``choose_n_components`` (e.g. ``min_variance_ratio``).
    show_progressbar : bool, optional
        Default: HyperSpy's ``preferences.General.show_progressbar``.
    row_mask : bool array (n_samples,), optional
        True = row excluded from the fit (e.g. a navigation mask). The rows are
        skipped inside every pass (no gathered copy of a lazy array, no extra
        task per block); ``W`` then has one row per kept row, in order, and the
        result equals that of ``nmf(X[~row_mask], ...)`` (the sketch and the row
        sample are indexed by kept row).
    masks_from_first_pass : FirstPassMasks, optional
        Decide ``column_mask`` and ``row_mask`` from statistics of the first pass
        (e.g. a beam found in the mean pattern, vacuum rows found by a test on
        per-row sums) instead of giving them: still no pass of their own (see
        :class:`FirstPassMasks`; needs the compressed path). The masks used are
        ``result.column_mask`` and ``result.row_mask``; the row sample of
        ``"auto"`` is then evenly spaced over all rows, vacuum ones left out.
    hold_in_memory : "auto" or bool
        Keep the raw blocks of a dask array in memory after the first pass, so the
        data are read once and the NMF then runs as on a numpy array (its pass
        budget, its result up to rounding). ``"auto"`` (default) does so for arrays
        stored in at most 1 GiB (:data:`~hyperspy_nanoml.learn.blocks.HOLD_BYTES`)
        when no ``distributed.Client`` is active; ``False`` keeps memory bounded by a
        few blocks whatever the size. ``result.reads`` counts the reads.

    Returns
    -------
    NMFResult
        ``W`` (n × k) and ``H`` (k × m) as float32 in the units of ``X``, each ``H``
        row scaled to max 1 and the components ordered by decreasing energy
        ``‖w_j h_j‖``; relative error, ``converged``, ``passes``, the seed used.

    Raises
    ------
    ValueError, TypeError
        Negative values, NaN/inf, all-zero, empty, complex, sparse or non-2-D data,
        ``k`` out of range, bad ``init``, ``max_passes`` or ``random_state``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.poisson(50 * rng.random((200, 3)) @ rng.random((3, 40)))
    >>> res = nmf(X, 3, normalize_poissonian_noise=True, random_state=0)
    >>> res.W.shape, res.H.shape, res.converged
    ((200, 3), (3, 40), True)
    >>> bool(res.reconstruction_error < 0.2)
    True
    """
    from hyperspy_nanoml._progress import progressbar

    X = check_matrix(X)
    n, m = (int(v) for v in X.shape)
    _check_options(masks_from_first_pass, row_mask, column_mask, compression, init, tol)
    keep = _keep_rows(row_mask, n)
    if keep is not None:
        n = int(keep.sum())
    k = check_n_components(n_components, allow_auto=True, upper=min(n, m))
    auto = k == "auto"
    if auto and isinstance(init, (tuple, list)):
        raise ValueError(
            "init=(W, H) fixes the number of components: give n_components as an integer"
        )
    max_iter = check_positive_int(max_iter, "max_iter")
    compression = compression in ("auto", True)
    if max_components is not None:
        max_components = check_positive_int(max_components, "max_components")
    rng, seed = resolve_random_state(random_state)
    blocks = RowBlocks(X, hold=hold_in_memory)
    out_of_core = blocks.is_dask and not blocks.holds
    s = _planned_sketch_size(k, n, m, compression, init, sketch_size, max_components)
    max_passes = _pass_budget(max_passes, out_of_core, max_iter, compression, s)
    plan = _Plan(
        key=int(rng.randint(0, 2**31 - 1)) * 2**31 + int(rng.randint(0, 2**31 - 1)),
        poisson=bool(normalize_poissonian_noise),
        stride=_choice_stride(n, m) if auto else None,
        k=k,
        s=s,
        n=n,
        m=m,
    )
    mask = _column_mask(column_mask, m)
    prep = BlockPrep(
        zero_columns=None if mask is None else np.flatnonzero(mask), keep_rows=keep
    )
    bar = progressbar(
        total=max_passes if out_of_core else None,
        desc="NMF passes over the data",
        show_progressbar=show_progressbar,
    )
    try:
        # passes 1-2: checks, sums, Poisson scales, the choice, the compressed basis
        start = _start(
            blocks,
            prep,
            mask,
            plan,
            masks_from_first_pass,
            (max_components, seed, rng, choice_options),
            bar,
        )
        Wt, H = _initialise(init, plan.k, plan.n, m, start.first, start.basis, rng)
        n_iter_c, conv_c = 0, False
        if compression:
            Wt, H, n_iter_c, conv_c = _compressed_phase(
                start.basis, Wt, H, plan.n * m, max_iter, tol
            )
            bar.set_postfix_str(f"{n_iter_c} compressed iterations", refresh=False)
        # passes 3+: exact HALS iterations on the data
        max_exact = max(2, max_iter - n_iter_c)  # at least two: error and its change
        Wt, H, errors, converged, n_exact, last_change = _refine(
            blocks,
            start.prep,
            Wt,
            H,
            start.first.fitted_sq,
            tol,
            max_passes,
            max_exact,
            bar,
        )
        if n_exact == 0:
            converged = conv_c
    finally:
        bar.close()
    if not converged:
        _warn_unconverged(
            blocks.passes, max_passes, max_iter, n_iter_c, tol, errors, last_change
        )
    return _result(
        blocks, start, plan, Wt, H, errors, converged, compression, n_iter_c, n_exact, seed
    )


@dataclass
class _Plan:
    """What one :func:`nmf` call does: the sketch key, scaling, sample stride, sizes."""

    key: int
    poisson: bool
    stride: int | None  # row sample of n_components="auto"
    k: int | str  # "auto" until the first pass has chosen
    s: int  # sketch size (0: no sketch)
    n: int  # kept rows
    m: int


def _check_options(deferred, row_mask, column_mask, compression, init, tol):
    """The option checks that need no data (raised before any pass)."""
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    custom_init = isinstance(init, (tuple, list))
    if not custom_init and init not in ("nndsvda", "nndsvd", "nndsvdar", "random"):
        raise ValueError(
            f"init={init!r} is not one of 'nndsvda', 'nndsvd', 'nndsvdar', 'random' "
            "or a (W, H) pair of arrays"
        )
    if compression not in ("auto", True, False):
        raise ValueError(f"compression must be 'auto', True or False, got {compression!r}")
    if deferred is not None:
        if row_mask is not None or column_mask is not None:
            raise ValueError(
                "give either masks_from_first_pass or column_mask/row_mask, not both"
            )
        if compression is False or custom_init:
            raise ValueError(
                "masks_from_first_pass needs the compressed path (compression='auto' or "
                "True) and a computed initialisation (not init=(W, H))"
            )


def _planned_sketch_size(k, n, m, compression, init, sketch_size, max_components):
    """Rows ``s`` of the random sketch (0 when neither compression nor NNDSVD needs one)."""
    if not (compression or (not isinstance(init, (tuple, list)) and init != "random")):
        return 0
    if k == "auto":
        # k is known after pass 1: sketch for up to 14 components (s = 32, or
        # max_components if larger) and keep the first s(k) rows after the choice
        cap = 30 if max_components is None else max_components
        return max(_sketch_size(min(cap, 14), n, m), min(_round4(cap), min(n, m)))
    return max(int(sketch_size or _sketch_size(k, n, m)), k)


def _pass_budget(max_passes, out_of_core, max_iter, compression, s):
    """Default and check of ``max_passes`` (see :func:`nmf`)."""
    min_passes = 3 if s else 2
    if max_passes is None:
        if out_of_core:
            max_passes = 4
        else:
            max_passes = max_iter + 2
            if compression:
                max_passes = min(max_passes, _MAX_EXACT_IN_MEMORY + 2)
    max_passes = check_positive_int(max_passes, "max_passes")
    if max_passes < min_passes:
        raise ValueError(
            f"max_passes={max_passes} is too few: the first pass checks and sums the data"
            + (", the second builds the compressed basis" if s else "")
            + f" and at least one more refines the factors; use max_passes >= {min_passes}"
        )
    return max_passes


def _choice_stride(n, m):
    from hyperspy_nanoml.learn.n_components import sample_stride

    return sample_stride((n, m), max_bytes=_CHOICE_SAMPLE_BYTES)


@dataclass
class _Start:
    """What the first passes give the iterations: sums and scales, the basis, masks."""

    first: _FirstPass
    basis: tuple | None  # (Q, B, Ub, Sb, Vbt) of the compressed data, or None
    prep: BlockPrep  # masks and scales every later pass applies
    column_mask: np.ndarray | None
    keep: np.ndarray | None
    choice: object = None  # ComponentChoice of n_components="auto"


def _start(blocks, prep, mask, plan, deferred, choice_args, bar):
    """Passes 1 and 2 and the component choice between or after them.

    Given masks: :func:`_first_pass`, the choice on its row sample (``"auto"``), then
    :func:`_range_basis` for ``k`` components. Masks decided from pass 1:
    :func:`_deferred_first_passes` (both passes), then the choice and the basis
    trimmed to ``s(k)`` columns. ``plan`` is updated in place (``k``, ``s``, kept
    rows ``n``); ``choice_args`` are ``(max_components, seed, rng, choice_options)``.
    """
    choice = None
    if deferred is None:
        first = _first_pass(
            blocks, prep, plan.key, plan.s, plan.poisson, plan.stride, (plan.n, plan.m)
        )
        bar.update(1)
        if plan.k == "auto":
            choice, plan.k = _choose(first, *choice_args[:3], plan, choice_args[3])
            if plan.s:
                plan.s = min(plan.s, max(_sketch_size(plan.k, plan.n, plan.m), plan.k))
                first.Z = first.Z[: plan.s]
        if plan.poisson:
            prep = prep.with_scales(first.row_scale, first.column_scale)
        basis = None
        if plan.s:
            basis = _range_basis(blocks, prep, first.Z, plan.k)
            bar.update(1)
        return _Start(first, basis, prep, mask, prep.keep_rows, choice)
    first, basis, prep, mask, keep, plan.n = _deferred_first_passes(
        blocks, deferred, plan.key, plan.s, plan.poisson, plan.stride, bar
    )
    if plan.k == "auto":
        choice, plan.k = _choose(first, *choice_args[:3], plan, choice_args[3])
    else:
        plan.k = check_n_components(plan.k, allow_auto=False, upper=min(plan.n, plan.m))
    plan.s = min(plan.s, max(_sketch_size(plan.k, plan.n, plan.m), plan.k))
    basis = _truncate_basis(basis, plan.s)
    if plan.poisson:
        prep = prep.with_scales(first.row_scale, first.column_scale)
    return _Start(first, basis, prep, mask, keep, choice)


def _compressed_phase(basis, Wt, H, size, max_iter, tol):
    """HALS in the compressed space ``Q B`` (no pass over the data; milliseconds to a
    second, so no progress bar of its own: the passes' bar says how many iterations)."""
    Q, B = basis[0], basis[1]  # (Q, B, Ub, Sb, Vbt)
    # compressed iterations are cheap next to a pass over the data: converge them
    # further, so the exact passes start next to the optimum (measured on the 16k
    # SPED set: tol/100 gives patterns/maps closer to the truth than scikit-learn's;
    # on the local-FFT shape tol/100 costs 365 instead of 215 iterations for no
    # measurable gain). So: tol/100 for large arrays, tol/10 otherwise (by size
    # only: numpy and dask take the same path).
    c_tol = tol * (0.01 if size >= _C_TOL_SIZE else 0.1)
    with one_blas_thread():
        return _compressed_hals(
            Q.astype(np.float32),
            B.astype(np.float32),
            float(np.sum(B * B)),
            Wt,
            H,
            max_iter,
            c_tol,
        )


def _warn_unconverged(passes, max_passes, max_iter, n_iter_c, tol, errors, last_change):
    budget = (
        f"the pass budget max_passes={max_passes}"
        if passes >= max_passes
        else f"the iteration budget max_iter={max_iter} ({n_iter_c} compressed)"
    )
    warnings.warn(
        f"NMF stopped after {passes} passes over the data, at {budget}, "
        "before an iteration changed the relative "
        f"error by less than tol={tol:g} (last change {last_change:.2e}, error "
        f"{errors[-1] if errors else float('nan'):.4g}); the factors may still move "
        "by about that much. Allow more passes/iterations or a larger tol.",
        _convergence_warning_class(),
        stacklevel=3,
    )


def _result(
    blocks, start, plan, Wt, H, errors, converged, compression, n_iter_c, n_exact, seed
):
    """The :class:`NMFResult`: factors back in the units of ``X``, canonical order."""
    first, mask = start.first, start.column_mask
    W, H, energy = _canonical(Wt, H, first.row_scale, first.column_scale)
    if mask is not None:
        H[:, mask] = 0.0
    method = ("compressed HALS + exact refinement" if compression else "HALS") + (
        ", dask" + (" (held in memory after the first read)" if blocks.holds else "")
        if blocks.is_dask
        else ", numpy"
    )
    if plan.poisson:
        method += ", Poisson-scaled"
    return NMFResult(
        W=W,
        H=H,
        n_iter=n_iter_c + n_exact,
        reconstruction_error=float(errors[-1]) if errors else float("nan"),
        converged=bool(converged),
        passes=blocks.passes,
        reads=blocks.reads,
        compressed=compression,
        n_iter_compressed=n_iter_c,
        n_iter_exact=n_exact,
        sketch_size=plan.s or None,
        error_history=np.asarray(errors, dtype=np.float64),
        explained_energy=energy / first.data_sq if first.data_sq > 0 else energy * np.nan,
        method=method,
        data_sq_norm=first.data_sq,
        fitted_sq_norm=first.fitted_sq,
        random_state=seed,
        normalize_poissonian_noise=plan.poisson,
        row_scale=first.row_scale,
        column_scale=first.column_scale,
        component_choice=start.choice,
        column_mask=mask,
        row_mask=None if start.keep is None else ~start.keep,
    )


def _compressed_hals(Q, B, bb, Wt, H, max_iter, tol):
    """Accelerated HALS on ``X̃ = Q B`` (Q orthonormal n × s, B s × m); W (k × n) in memory."""
    k = H.shape[0]
    n, s = Q.shape
    m = B.shape[1]
    sweeps_w = _n_sweeps_h(n, k, s)
    sweeps_h = _n_sweeps_h(m, k, s)
    # objective f = ‖X̃ − WH‖², computed without cancellation every `every` iterations
    every = 5
    prev = np.sqrt(_compressed_objective(Q, B, Wt, H) / bb)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        # W update: X̃ Hᵀ = Q (B Hᵀ)
        At = (H @ B.T) @ Q.T  # (k, n)
        hals_sweeps(Wt, At, H @ H.T, sweeps_w, delta=0.1)
        # H update: Wᵀ X̃ = (Wᵀ Q) B
        P = (Wt @ Q) @ B
        hals_sweeps(H, P, Wt @ Wt.T, sweeps_h, delta=0.1)
        _balance(Wt, H)
        if it % every == 0:
            err = np.sqrt(_compressed_objective(Q, B, Wt, H) / bb)
            if prev - err <= every * tol * max(err, _ERROR_FLOOR):
                converged = True
                break
            prev = err
    return Wt, H, it, converged


def _compressed_objective(Q, B, Wt, H):
    """``‖Q B − W H‖²`` without cancellation: ``‖B − (QᵀW) H‖² + ‖W⊥ H‖²``, W⊥ = (I − QQᵀ) W."""
    QtW = (Wt @ Q).T.astype(np.float64)  # (s, k)
    R = B.astype(np.float64) - QtW @ H.astype(np.float64)
    Wperp = Wt.astype(np.float64) - (Q.astype(np.float64) @ QtW).T  # (k, n)
    H64 = H.astype(np.float64)
    return float(np.sum(R * R)) + max(float(np.sum((Wperp @ Wperp.T) * (H64 @ H64.T))), 0.0)


# ------------------------------------------------------------------ estimator

from sklearn.base import BaseEstimator, TransformerMixin  # noqa: E402


class NMF(TransformerMixin, BaseEstimator):
    """scikit-learn style estimator around :func:`nmf` (usable in HyperSpy's ``decomposition``).

    ``s.decomposition(algorithm=NMF(n_components=3))`` works; so do sklearn pipelines.

    Parameters
    ----------
    n_components : int or "auto"
    normalize_poissonian_noise, init, max_iter, tol, random_state, compression,
    max_passes, show_progressbar
        See :func:`nmf`.

    Attributes
    ----------
    components_ : numpy.ndarray (k, n_features)
    reconstruction_err_ : float
        Frobenius norm ``‖Xf − WfHf‖`` of the matrix fitted (absolute, as in
        scikit-learn; ``Xf`` is the Poisson-scaled data when asked for).
    relative_reconstruction_err_ : float
        ``‖Xf − WfHf‖ / ‖Xf‖``.
    n_iter_ : int
    n_components_ : int
    random_state_ : int or None
        The seed used (repeats the fit).
    result_ : NMFResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((50, 2)) @ rng.random((2, 8))
    >>> NMF(2, random_state=0).fit(X).components_.shape
    (2, 8)
    """

    def __init__(
        self,
        n_components=2,
        *,
        normalize_poissonian_noise=False,
        init="nndsvda",
        max_iter=500,
        tol=1e-5,
        random_state=None,
        compression="auto",
        max_passes=None,
        show_progressbar=False,
    ):
        self.n_components = n_components
        self.normalize_poissonian_noise = normalize_poissonian_noise
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.compression = compression
        self.max_passes = max_passes
        self.show_progressbar = show_progressbar

    def fit_transform(self, X, y=None):
        res = nmf(
            X,
            self.n_components,
            normalize_poissonian_noise=self.normalize_poissonian_noise,
            init=self.init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=self.random_state,
            compression=self.compression,
            max_passes=self.max_passes,
            show_progressbar=self.show_progressbar,
        )
        self.result_ = res
        self.components_ = res.H
        self.n_components_ = res.H.shape[0]
        self.n_iter_ = res.n_iter
        self.random_state_ = res.random_state
        self.relative_reconstruction_err_ = res.reconstruction_error
        self.reconstruction_err_ = res.reconstruction_error * np.sqrt(res.fitted_sq_norm)
        self.n_features_in_ = res.H.shape[1]
        return res.W

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    def transform(self, X):
        """Non-negative least-squares loadings of ``X`` on the fitted ``components_``."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "components_")
        return nnls_loadings(X, self.components_)


def nnls_loadings(X, H, *, n_sweeps: int = 100) -> np.ndarray:
    """Solve ``min_W ‖X − W H‖`` with ``W ≥ 0`` for fixed ``H`` (k × n_features), block-wise.

    Returns ``W`` (n_samples × k) as float32. One pass over ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> H = np.eye(2, 4, dtype=np.float32)
    >>> nnls_loadings(np.array([[2.0, 3.0, 0.0, 0.0]]), H)
    array([[2., 3.]], dtype=float32)
    """
    H = np.asarray(H, dtype=np.float32)
    X = check_matrix(X)
    check_n_components(H.shape[0], allow_auto=False)
    if X.shape[1] != H.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but the components have {H.shape[1]}; "
            "transform data of the same kind as the fitted data"
        )
    blocks = RowBlocks(X)
    Wparts, _ = blocks.run(_kernel_nnls, BlockPrep(), H, n_sweeps)
    return np.ascontiguousarray(np.concatenate(Wparts, axis=1).T)


def _kernel_nnls(block, start, prep, H, n_sweeps):
    HHt = H @ H.T
    parts = []
    for _, _, xs in prep.slices(block, start):
        At = (xs @ H.T).T.copy()
        Wt = np.linalg.lstsq(HHt.astype(np.float64), At.astype(np.float64), rcond=None)[0]
        Wt = np.maximum(Wt, _TINY).astype(np.float32)
        hals_sweeps(Wt, At, HHt, n_sweeps)
        parts.append(Wt)
    return np.concatenate(parts, axis=1), (np.zeros(1),)
