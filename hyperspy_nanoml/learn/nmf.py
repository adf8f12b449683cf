"""Non-negative matrix factorisation for numpy arrays, dask arrays and dask.distributed.

``X ≈ W H`` with ``W ≥ 0`` (n_samples × k) and ``H ≥ 0`` (k × n_features), Frobenius loss.

One code path serves in-memory numpy arrays, dask arrays on the threaded scheduler and
dask arrays when a :class:`distributed.Client` is active: the data are only ever touched
through *passes* over row blocks (:class:`_RowBlocks`), each pass a map over the blocks
followed by a small tree sum, so a lazy array is never computed whole and the task graph
has one task per block and pass.

Algorithm
---------
1. **Pass 1** reads every block once: checks (negative values, NaN/inf), ``sum(X)``,
   ``||X||²``, and a row sketch ``Z = Ψ X`` with a Rademacher matrix ``Ψ`` (s × n)
   generated per row from a counter-based generator (Philox), so it does not depend on
   the chunking.
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
   relative decrease of ``||X − WH||`` falls below ``tol`` or at ``max_passes``.

Without compression the same refinement passes are iterated from the initialisation:
that is plain (exact) accelerated HALS.

Measurements on this 2-core machine that chose the defaults are in the docstring of
:func:`nmf` and in ``benchmarks/bench_nmf_16k.py``.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NMF", "NMFResult", "nmf"]

_TINY = np.float32(1e-30)  # floor for HALS updates: no exact zero-locking, no 0/0
_SLICE_ROWS = 1024  # rows processed together inside a block (16 MiB at 4096 float32)


# --------------------------------------------------------------------------- result


@dataclass
class NMFResult:
    """Result of :func:`nmf`.

    Attributes
    ----------
    W : numpy.ndarray, float32, shape (n_samples, k)
        Non-negative loadings (abundances).
    H : numpy.ndarray, float32, shape (k, n_features)
        Non-negative components, each scaled to a maximum of 1.
    n_iter : int
        HALS iterations done (compressed plus exact).
    reconstruction_error : float
        Relative Frobenius error ``||X − WH|| / ||X||`` on the real data.
    converged : bool
        True when the last iteration changed the relative error by less than ``tol``.
    passes : int
        Number of full passes over the data ``X`` (reads of every block).
    compressed : bool
        Whether the iterations ran in the randomly compressed space.
    n_iter_compressed, n_iter_exact : int
        Iterations in the compressed space and exact ones (each exact one is a pass).
    sketch_size : int or None
        Size ``s`` of the random sketch (``None`` when no sketch was made).
    error_history : numpy.ndarray
        Relative errors after every exact iteration (on ``X``).
    explained_energy : numpy.ndarray, shape (k,)
        ``||w_j h_j||² / ||X||²`` per component (the order of the components).
    method : str
        Short description of what ran.
    data_sq_norm : float
        ``||X||²`` (float64), from the first pass.
    """

    W: np.ndarray
    H: np.ndarray
    n_iter: int
    reconstruction_error: float
    converged: bool
    passes: int
    compressed: bool = False
    n_iter_compressed: int = 0
    n_iter_exact: int = 0
    sketch_size: int | None = None
    error_history: np.ndarray = field(default_factory=lambda: np.zeros(0))
    explained_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    method: str = ""
    data_sq_norm: float = float("nan")

    @property
    def n_components(self):
        return self.H.shape[0]


# ---------------------------------------------------------------- input checking


def _is_dask(X):
    return type(X).__module__.startswith("dask") and hasattr(X, "to_delayed")


def _check_shape_and_k(X, n_components):
    if not hasattr(X, "ndim") or not hasattr(X, "shape"):
        X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features); got {X.ndim}-D data of shape "
            f"{tuple(X.shape)}. Reshape it to rows = patterns/spectra and columns = "
            "channels (for a HyperSpy signal use nmf_decomposition(signal), which unfolds it)."
        )
    n, m = (int(v) for v in X.shape)
    if n == 0 or m == 0:
        raise ValueError(
            f"X is empty (shape {(n, m)}): there is nothing to factorise. Check that masks "
            "or crops did not exclude all rows or columns."
        )
    dtype = np.dtype(X.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(
            f"X has dtype {dtype}; NMF needs real numbers (integer or float). "
            "Convert it first, e.g. X.astype('float32') or np.abs(X) for complex data."
        )
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise TypeError(
            f"n_components must be an integer, got {n_components!r} "
            f"({type(n_components).__name__})"
        )
    k = int(n_components)
    if k < 1:
        raise ValueError(f"n_components must be at least 1, got {k}")
    if k > min(n, m):
        raise ValueError(
            f"n_components={k} is larger than the rank bound min(n_samples, n_features) "
            f"= min{(n, m)} = {min(n, m)}; a rank-{k} factorisation of this X does not exist. "
            f"Use n_components <= {min(n, m)}."
        )
    return X, n, m, k


def _raise_for_stats(n_negative, minimum, n_nonfinite, shape):
    if n_nonfinite:
        raise ValueError(
            f"X contains {n_nonfinite} NaN or infinite values (shape {shape}); NMF needs "
            "finite data. Replace them (np.nan_to_num, or interpolate) or exclude the "
            "affected rows/columns (navigation_mask / signal_mask in nmf_decomposition)."
        )
    if n_negative:
        raise ValueError(
            f"X contains {n_negative} negative values (minimum {minimum:.4g}); NMF needs "
            "non-negative data. If they are noise around zero clip them "
            "(np.clip(X, 0, None), or s.data.clip(0) on a signal); if the whole baseline "
            "is shifted, add an offset (X - X.min()) or subtract a smaller background."
        )


# ------------------------------------------------------------------ row blocks


class _RowBlocks:
    """Row blocks of X behind one map-reduce interface (numpy or dask, threaded or distributed).

    ``run(func, *small)`` calls ``func(block_float32, row_start, *small)`` on every block;
    ``func`` returns ``(per_block, sums)`` where ``per_block`` is kept per block (row
    results such as rows of W) and ``sums`` is a tuple of arrays summed over blocks.
    For dask the map is one delayed task per chunk and the sums are a binary tree in the
    graph, so only small arrays leave the workers; ``dask.compute`` uses a
    ``distributed.Client`` when one is active.
    """

    def __init__(self, X):
        self.is_dask = _is_dask(X)
        self.shape = tuple(int(v) for v in X.shape)
        self.passes = 0
        if self.is_dask:
            if len(X.chunks[1]) > 1:  # whole rows per block
                X = X.rechunk({1: -1})
            self._blocks = list(X.to_delayed()[:, 0])
            sizes = X.chunks[0]
        else:
            # float32, C order (row slices contiguous); a copy only when needed, and
            # the input is never modified
            self._X = np.ascontiguousarray(X, dtype=np.float32)
            # one block per core (threads, one BLAS thread each: numpy releases the
            # GIL), never below _SLICE_ROWS rows; small arrays stay one block
            import os

            n_threads = max(1, min(os.cpu_count() or 1, X.shape[0] // _SLICE_ROWS))
            rows = -(-X.shape[0] // n_threads)
            sizes = tuple(min(rows, X.shape[0] - a) for a in range(0, X.shape[0], rows))
        self.sizes = tuple(int(v) for v in sizes)
        self.starts = tuple(int(v) for v in np.concatenate([[0], np.cumsum(sizes)[:-1]]))

    @property
    def n_blocks(self):
        return len(self.sizes)

    def run(self, func, *small):
        self.passes += 1
        if not self.is_dask:
            if len(self.sizes) == 1:
                per_block, sums = func(self._X, 0, *small)
                return [per_block], sums
            from concurrent.futures import ThreadPoolExecutor

            def one(i):
                a = self.starts[i]
                return func(self._X[a : a + self.sizes[i]], a, *small)

            with _one_blas_thread(), ThreadPoolExecutor(len(self.sizes)) as pool:
                outs = list(pool.map(one, range(len(self.sizes))))
            total = outs[0][1]
            for o in outs[1:]:  # fixed order: deterministic sums
                total = _add_tuples(total, o[1])
            return [o[0] for o in outs], total
        import dask

        small_d = [dask.delayed(a, pure=True) for a in small]
        f = dask.delayed(_call_block, pure=True, nout=2)
        outs = [
            f(func, b, s, *small_d) for b, s in zip(self._blocks, self.starts, strict=True)
        ]
        parts = [o[0] for o in outs]
        sums = [o[1] for o in outs]
        add = dask.delayed(_add_tuples, pure=True)
        while len(sums) > 1:
            sums = [
                add(sums[i], sums[i + 1]) if i + 1 < len(sums) else sums[i]
                for i in range(0, len(sums), 2)
            ]
        # Several dask threads each calling a multi-threaded BLAS oversubscribe the
        # cores (measured here: 2-3x slower); one BLAS thread per task instead. Worker
        # processes of dask.distributed already run with one BLAS thread.
        with _one_blas_thread():
            parts, total = dask.compute(parts, sums[0])
        return list(parts), total


_CONTROLLER = []


def _one_blas_thread():
    """Context: BLAS/LAPACK on one thread (threadpoolctl, controller cached).

    Small in-memory linear algebra (QR/SVD of n × s, products with k ≤ 30 columns,
    the compressed iterations) is latency-bound: OpenBLAS threads only add
    synchronisation, and spin badly when another process holds a core (measured here:
    an SVD of 16 × 4096 took 0.2 s with 2 threads under load, 5 ms with one).
    """
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _call_block(func, block, start, *small):
    # integer data converted block by block; C order for fast row slices
    return func(np.ascontiguousarray(block, dtype=np.float32), start, *small)


def _add_tuples(a, b):
    return tuple(x + y for x, y in zip(a, b, strict=True))


# ---------------------------------------------------------------- block kernels


def _rademacher_rows(key, row_start, n_rows, s):
    """Rows ``row_start … row_start+n_rows`` of a Rademacher matrix (n × s), chunk-independent."""
    bg = np.random.Philox(key=key)
    bg.advance((row_start * s) // 4)  # s is a multiple of 4; 4 uint64 per counter step
    raw = bg.random_raw(n_rows * s)
    out = (raw & np.uint64(1)).astype(np.float32)
    out *= 2
    out -= 1
    return out.reshape(n_rows, s)


def _kernel_stats_sketch(X, start, key, s, rows_per_slice=None):
    """Pass 1: counts for the checks, minimum, sum, sum of squares and the sketch Ψ X."""
    rows_per_slice = rows_per_slice or _SLICE_ROWS
    n_nonfinite = n_negative = 0
    minimum = np.inf
    total = sq = 0.0
    Z = np.zeros((s, X.shape[1]), dtype=np.float64) if s else np.zeros(0)
    colsum = np.zeros(X.shape[1], dtype=np.float64)
    for a in range(0, X.shape[0], rows_per_slice):
        b = min(a + rows_per_slice, X.shape[0])
        xs = X[a:b]
        lo, hi = float(xs.min()), float(xs.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN propagates, inf shows
            finite = np.isfinite(xs)
            n_nonfinite += xs.size - int(np.count_nonzero(finite))
            xs = np.where(finite, xs, 0)
            lo = float(xs.min())
        if lo < 0:
            n_negative += int(np.count_nonzero(xs < 0))
        minimum = min(minimum, lo)
        cs = xs.sum(axis=0, dtype=np.float64)
        colsum += cs
        total += float(cs.sum())
        sq += float(np.einsum("ij,ij->j", xs, xs).sum(dtype=np.float64))
        if s:
            psi = _rademacher_rows(key, start + a, b - a, s)
            Z += psi.T @ xs
    counts = np.array([n_nonfinite, n_negative], dtype=np.int64)
    return minimum, (counts, np.array([total, sq]), Z, colsum)


def _kernel_range(X, start, V):
    """Pass 2: ``Y = X V`` (kept per block) and ``C = Yᵀ X`` (summed).

    Row slices keep each piece of X in cache for both products (one read from memory).
    """
    Vf = np.ascontiguousarray(V, dtype=np.float32)
    Y = np.empty((X.shape[0], V.shape[1]), dtype=np.float32)
    C = np.zeros((V.shape[1], X.shape[1]), dtype=np.float64)
    for a in range(0, X.shape[0], _SLICE_ROWS):
        b = min(a + _SLICE_ROWS, X.shape[0])
        xs = X[a:b]
        Y[a:b] = xs @ Vf
        C += Y[a:b].T @ xs
    return Y.astype(np.float64), (C,)


def _hals_sweeps(F, A, Cm, n_sweeps, delta=None):
    """HALS on component rows ``F`` (k × r) in place: ``F[j] ← max(0, F[j] + (A[j] − C[j] F)/C[j,j])``.

    Minimises ``½ tr(Fᵀ C F) − tr(Aᵀ F)`` over ``F ≥ 0`` (a non-negative least-squares
    problem for every column of F). With ``delta`` the sweeps stop early once a sweep
    changes F by less than ``delta`` times the change of the first sweep (Gillis &
    Glineur 2012). Returns the number of sweeps done.
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


def _kernel_refine(X, start, W0t, H, n_sweeps):
    """One exact pass: rows of W for this block by NNLS, then ``Wᵀ X``, ``Wᵀ W`` sums.

    Rows of W are independent given H, so the block is processed in row slices that
    stay in cache for all the work on them (one read of X from memory): ``X_s Hᵀ``,
    HALS sweeps on the slice's rows of W, ``W_sᵀ X_s`` and the exact squared residual
    ``||X_s − W_s H||²`` (computed directly, so the reported error does not suffer the
    cancellation of the expanded formula).
    """
    rows = slice(start, start + X.shape[0])
    Wt = np.array(W0t[:, rows], dtype=np.float32, order="C")
    HHt = H @ H.T
    Ht = np.ascontiguousarray(H.T)
    P = np.zeros(H.shape, dtype=np.float64)
    res = np.zeros(2)
    for a in range(0, X.shape[0], _SLICE_ROWS):
        b = min(a + _SLICE_ROWS, X.shape[0])
        xs = X[a:b]
        At = np.ascontiguousarray((xs @ Ht).T)  # (k, rows)
        Ws = np.ascontiguousarray(Wt[:, a:b])
        Wo = Ws.copy()
        _hals_sweeps(Ws, At, HHt, n_sweeps)
        Wt[:, a:b] = Ws
        P += Ws @ xs
        r_new = _residual_sq_rows(xs, Ws, H).sum()
        res[1] += r_new
        # before this iteration: exact new residual minus the (accurate) decrease
        res[0] += r_new - _delta_obj(Wo, Ws, At, HHt.astype(np.float64))
    W64 = Wt.astype(np.float64)
    return Wt, (P, W64 @ W64.T, res)


def _residual_sq_rows(X, Wt, H, rows_per_slice=1024):
    """``||x_i − w_i H||²`` for every row of X (float64 result), in slices of rows.

    Squares are summed in float32 along each row with numpy's pairwise summation
    (relative error ~1e-7·log2(n_features)): no cancellation is involved, so this is
    as good as float64 here and several times faster.
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


def _kernel_residual_rows(X, start, Wt, H):
    """Per row: ``||x_i − w_i H||²``, ``||x_i||²`` and ``Σ x_i``; and ``Wᵀ X`` summed."""
    rows = slice(start, start + X.shape[0])
    Wb = np.ascontiguousarray(Wt[:, rows])
    res = _residual_sq_rows(X, Wb, H)
    nrm = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    tot = X.sum(axis=1, dtype=np.float64)
    P = (Wb @ X).astype(np.float64)
    return np.stack([res, nrm, tot], axis=1), (P,)


# ------------------------------------------------------------------ helpers


def _sketch_size(k, n, m):
    s = max(k + 12, 2 * k + 4)
    s = int(4 * np.ceil(s / 4))
    return int(min(s, 4 * (min(n, m) // 4) if min(n, m) >= 4 else min(n, m)))


def _nndsvd(U, S, Vt, k, variant, mean, rng):
    """NNDSVD initialisation (Boutsidis & Gallopoulos 2008) from a rank-k SVD.

    ``U`` (n × k), ``S`` (k), ``Vt`` (k × m). Returns ``Wt`` (k × n), ``H`` (k × m).
    For each pair of singular vectors the dominant of the two sign-pure parts
    ``(u₊, v₊)`` or ``(u₋, v₋)`` is kept, weighted by ``sqrt(σ_j ||u||·||v||)``.
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
        if sigma > 0:
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
    """Rescale component pairs so ``||w_j|| = ||h_j||`` (WH unchanged)."""
    nw = np.sqrt(np.einsum("ij,ij->i", Wt, Wt, dtype=np.float64))
    nh = np.sqrt(np.einsum("ij,ij->i", H, H, dtype=np.float64))
    ok = (nw > 0) & (nh > 0)
    f = np.ones_like(nw)
    f[ok] = np.sqrt(nh[ok] / nw[ok])
    Wt *= f[:, None].astype(np.float32)
    H /= f[:, None].astype(np.float32)


def _err2(xx, cross, G, H):
    """``||X − WH||² = ||X||² − 2 Σ(H∘WᵀX) + Σ(WᵀW ∘ HHᵀ)`` in float64 (cross = Σ(H∘WᵀX))."""
    H64 = H.astype(np.float64)
    return max(xx - 2.0 * cross + float(np.sum(G * (H64 @ H64.T))), 0.0)


def _n_sweeps_h(m, k, s_or_n):
    # Gillis & Glineur: up to 1 + alpha*rho inner sweeps, rho = cost(products)/cost(sweep)
    return int(min(max(1 + 0.5 * (s_or_n / max(k, 1)), 2), 30))


def _canonical(Wt, H):
    """Scale each H row to max 1 (W absorbs it); order by energy, stable; returns W, H, energy."""
    Wt = Wt.astype(np.float64)
    H = H.astype(np.float64)
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


# --------------------------------------------------------------------- nmf


def nmf(
    X,
    n_components,
    *,
    init="nndsvda",
    max_iter=500,
    tol=1e-5,
    random_state=None,
    compression="auto",
    max_passes=None,
    sketch_size=None,
    show_progressbar=None,
):
    """Non-negative matrix factorisation ``X ≈ W H`` (Frobenius loss), in memory or out of core.

    Parameters
    ----------
    X : numpy.ndarray or dask.array.Array, shape (n_samples, n_features)
        Non-negative, finite data (any real dtype; blocks are converted to float32 as
        they are read). Never modified. A dask array is only read block by block (one
        task per row chunk and pass); with a ``distributed.Client`` active the passes
        run on the cluster.
    n_components : int
        Number of components ``k``, ``1 ≤ k ≤ min(n_samples, n_features)``.
    init : {"nndsvda", "nndsvd", "nndsvdar", "random"} or (W, H)
        Initialisation. The NNDSVD variants use the SVD of the compressed data (two
        passes, shared with the compression). ``(W, H)`` arrays start from given factors.
    max_iter : int
        Maximum number of HALS iterations (compressed plus exact; at least two exact
        ones are always done, within ``max_passes``).
    tol : float
        Stop when an iteration lowers the relative error ``||X − WH||/||X||`` by less
        than ``tol`` times its value.
    random_state : None, int or numpy.random.RandomState
        Seed of the sketch and of random initialisations; an int makes the result
        deterministic (and independent of the chunking, up to rounding).
    compression : "auto", bool
        Iterate in a randomly compressed space (Tepper & Sapiro 2016) and then refine
        on the real data (``True``), or run plain accelerated HALS on the data
        (``False``, one pass per iteration). ``"auto"`` = ``True``: it was faster and
        at least as accurate in every case measured here (2 shared cores, float32):

        - local-FFT shape, 961 × 8320, k = 4: compressed 0.16-0.36 s, relative
          error 0.0545599 (scikit-learn ``NMF``: 1.2 s, 0.0545603); plain HALS
          0.7-1.2 s and stops at 0.0545667 (tol 1e-5);
        - 3 spot phases, 1600 × 1024: compressed reaches scikit-learn's tightly
          converged error (tol 1e-6) on three data sets, plain HALS stops 1e-5 to
          3e-4 (relative) above it;
        - 16k SPED, 16384 × 4006: compressed 0.7 s in memory, 4 passes, error
          0.3433027; plain HALS 3.6 s, 14 passes, 0.3433031; scikit-learn 13 s,
          0.3433030 (``benchmarks/bench_nmf_16k.py``).
    max_passes : int, optional
        Upper bound on passes over the data. Default: 4 for dask arrays (2 for the
        sketch, 2 exact refinements; the third pass stops early when its iteration
        already changed the error by less than ``tol``) and unbounded
        (``max_iter + 2``) for numpy arrays. More passes refine further;
        ``converged`` says whether ``tol`` was met.
    sketch_size : int, optional
        Size of the sketch (default ``max(k + 12, 2k + 4)`` rounded up to 4).
    show_progressbar : bool, optional
        Default: HyperSpy's ``preferences.General.show_progressbar``.

    Returns
    -------
    NMFResult
        ``W`` (n × k) and ``H`` (k × m) as float32, each ``H`` row scaled to max 1 and
        the components ordered by decreasing energy ``||w_j h_j||``; errors, passes.

    Raises
    ------
    ValueError
        Negative values, NaN/inf, empty or non-2-D data, ``k`` out of range.
    """
    from sklearn.utils import check_random_state

    from hyperspy_nanoml._progress import progressbar

    X, n, m, k = _check_shape_and_k(X, n_components)
    rng = check_random_state(random_state)
    blocks = _RowBlocks(X)
    lazy = blocks.is_dask
    if compression == "auto":
        compression = True  # measured faster and more accurate everywhere, see docstring
    compression = bool(compression)
    if max_passes is None:
        max_passes = 4 if lazy else max_iter + 2
    custom_init = isinstance(init, (tuple, list))
    if not custom_init and init not in ("nndsvda", "nndsvd", "nndsvdar", "random"):
        raise ValueError(
            f"init={init!r} is not one of 'nndsvda', 'nndsvd', 'nndsvdar', 'random' "
            "or a (W, H) pair of arrays"
        )
    need_sketch = compression or (not custom_init and init != "random")
    s = (sketch_size or _sketch_size(k, n, m)) if need_sketch else 0
    if need_sketch and s < k:
        s = k
    key = int(rng.randint(0, 2**31 - 1)) * 2**31 + int(rng.randint(0, 2**31 - 1))

    bar = progressbar(
        total=max_passes if lazy else None,
        desc="NMF passes over the data",
        show_progressbar=show_progressbar,
    )
    try:
        # ---- pass 1: checks, totals, row sketch
        minima, (counts, totals, Z, colsum) = blocks.run(_kernel_stats_sketch, key, s)
        bar.update(1)
        _raise_for_stats(int(counts[1]), float(min(minima)), int(counts[0]), (n, m))
        mean = totals[0] / (n * m)
        xx = float(totals[1])
        if xx == 0:
            raise ValueError("X is all zeros: there is nothing to factorise")

        Q = B = None
        if s:
            # ---- pass 2: range basis with one power iteration, exact projection
            # right singular vectors of the sketch: X V has nearly orthogonal columns
            # ordered by energy, so R below is well conditioned (float32 is enough)
            with _one_blas_thread():
                V = np.linalg.svd(Z, full_matrices=False)[2].T  # (m, s)
            Ys, (C,) = blocks.run(_kernel_range, V)
            bar.update(1)
            with _one_blas_thread():
                Y = np.concatenate(Ys, axis=0)
                Q, R = np.linalg.qr(Y)
                B = np.linalg.solve(R.T, C)  # = Qᵀ X (s × m)
                Ub, Sb, Vbt = np.linalg.svd(B, full_matrices=False)
            if Sb[0] > 0 and k > 1 and Sb[k - 1] < 1e-6 * Sb[0]:
                warnings.warn(
                    f"X has numerical rank below n_components={k} (singular value "
                    f"{k} is {Sb[k - 1] / Sb[0]:.1e} of the first); some components "
                    "will be degenerate. Consider fewer components.",
                    stacklevel=2,
                )

        # ---- initialisation
        if custom_init:
            W0, H0 = init
            W0 = np.array(W0, dtype=np.float32)
            H0 = np.array(H0, dtype=np.float32)
            if W0.shape != (n, k) or H0.shape != (k, m):
                raise ValueError(
                    f"init=(W, H) must have shapes {(n, k)} and {(k, m)}, got "
                    f"{W0.shape} and {H0.shape}"
                )
            if (W0 < 0).any() or (H0 < 0).any():
                raise ValueError("init=(W, H) must be non-negative")
            Wt, H = np.ascontiguousarray(W0.T), H0
        elif init == "random":
            scale = np.sqrt(mean / k)
            H = (scale * rng.standard_normal((k, m))).astype(np.float32)
            Wt = (scale * rng.standard_normal((k, n))).astype(np.float32)
            np.abs(H, out=H)
            np.abs(Wt, out=Wt)
        else:
            with _one_blas_thread():
                U = Q @ Ub[:, :k]
                Wt, H = _nndsvd(U, Sb[:k], Vbt[:k], k, init, mean, rng)
        np.maximum(Wt, _TINY, out=Wt)
        np.maximum(H, _TINY, out=H)
        # all-zero columns (e.g. masked pixels filled with zeros) have zero components
        # at the optimum: start them there so they do not disturb the other updates
        H[:, colsum == 0] = _TINY

        n_iter_c = 0
        conv_c = False
        if compression:
            Qf = Q.astype(np.float32)
            Bf = B.astype(np.float32)
            bb = float(np.sum(B * B))
            # compressed iterations are cheap next to a pass over the data: converge them
            # further, so the exact passes start next to the optimum. Measured here on
            # the 16k SPED set (16384 x 4006): compressed tol = tol/10 gives 0.343302710
            # after 4 passes, tol/100 gives 0.343302700 and patterns/maps closer to the
            # truth than scikit-learn's; on the local-FFT shape (961 x 8320, k = 4)
            # tol/100 costs 365 instead of 215 iterations (0.45 s instead of 0.35 s) for
            # no measurable gain. So: tol/100 for large arrays, tol/10 otherwise (by
            # size only, so numpy and dask input take the same path).
            c_tol = tol * (0.01 if n * m >= 30_000_000 else 0.1)
            with _one_blas_thread():
                Wt, H, n_iter_c, conv_c = _compressed_hals(
                    Qf, Bf, bb, Wt, H, max_iter, c_tol, show_progressbar
                )

        # ---- exact refinement passes (one exact ANLS iteration per pass)
        errors = []
        converged = False
        n_exact = 0
        n_sweeps_w = 10
        n_sweeps_h = _n_sweeps_h(m, k, n)
        max_exact = max(2, max_iter - n_iter_c)  # at least two: error and its change
        while blocks.passes < max_passes and n_exact < max_exact:
            _balance(Wt, H)
            Wparts, (P, G, res) = blocks.run(_kernel_refine, Wt, H, n_sweeps_w)
            bar.update(1)
            Wt = np.concatenate(Wparts, axis=1)
            H_old = H.copy()
            with _one_blas_thread():
                _hals_sweeps(
                    H, P.astype(np.float32), G.astype(np.float32), n_sweeps_h, delta=0.01
                )
                err2 = float(res[1]) + _delta_obj(H_old, H, P, G)
            e_start = np.sqrt(float(res[0]) / xx)  # exact error when the pass began
            errors.append(np.sqrt(max(err2, 0.0) / xx))
            n_exact += 1
            # one full iteration (W then H) within this pass: converged when it lowered
            # the error by less than tol (relative)
            if (e_start - errors[-1]) <= tol * errors[-1]:
                converged = True
                break
        if n_exact == 0:
            converged = conv_c
    finally:
        bar.close()

    W, H, energy = _canonical(Wt, H)
    err = float(errors[-1]) if errors else float("nan")
    method = ("compressed HALS + exact refinement" if compression else "HALS") + (
        f", {'dask' if lazy else 'numpy'}"
    )
    return NMFResult(
        W=W,
        H=H,
        n_iter=n_iter_c + n_exact,
        reconstruction_error=err,
        converged=bool(converged),
        passes=blocks.passes,
        compressed=compression,
        n_iter_compressed=n_iter_c,
        n_iter_exact=n_exact,
        sketch_size=s or None,
        error_history=np.asarray(errors, dtype=np.float64),
        explained_energy=energy / xx,
        method=method,
        data_sq_norm=xx,
    )


def _compressed_hals(Q, B, bb, Wt, H, max_iter, tol, show_progressbar):
    """Accelerated HALS on ``X̃ = Q B`` (Q orthonormal n × s, B s × m); W (k × n) in memory."""
    from hyperspy_nanoml._progress import progressbar

    k = H.shape[0]
    n, s = Q.shape
    m = B.shape[1]
    sweeps_w = _n_sweeps_h(n, k, s)
    sweeps_h = _n_sweeps_h(m, k, s)
    # objective f = ||X̃ − WH||², computed without cancellation every `every` iterations
    every = 5
    prev = np.sqrt(_compressed_objective(Q, B, Wt, H) / bb)
    converged = False
    it = 0
    for it in progressbar(
        range(1, max_iter + 1), desc="compressed NMF", show_progressbar=show_progressbar
    ):
        # W update: X̃ Hᵀ = Q (B Hᵀ)
        At = (H @ B.T) @ Q.T  # (k, n)
        _hals_sweeps(Wt, At, H @ H.T, sweeps_w, delta=0.1)
        # H update: Wᵀ X̃ = (Wᵀ Q) B
        P = (Wt @ Q) @ B
        _hals_sweeps(H, P, Wt @ Wt.T, sweeps_h, delta=0.1)
        _balance(Wt, H)
        if it % every == 0:
            err = np.sqrt(_compressed_objective(Q, B, Wt, H) / bb)
            if prev - err <= every * tol * err:
                converged = True
                break
            prev = err
    return Wt, H, it, converged


def _compressed_objective(Q, B, Wt, H):
    """``||Q B − W H||²`` without cancellation: ``||B − (QᵀW) H||² + ||W⊥ H||²``, W⊥ = (I − QQᵀ) W."""
    QtW = (Wt @ Q).T.astype(np.float64)  # (s, k)
    R = B.astype(np.float64) - QtW @ H.astype(np.float64)
    Wperp = Wt.astype(np.float64) - (Q.astype(np.float64) @ QtW).T  # (k, n)
    H64 = H.astype(np.float64)
    return float(np.sum(R * R)) + max(float(np.sum((Wperp @ Wperp.T) * (H64 @ H64.T))), 0.0)


# ------------------------------------------------------------------ estimator

try:  # sklearn is a hard dependency, but keep the import cheap and local in spirit
    from sklearn.base import BaseEstimator, TransformerMixin
except ImportError:  # pragma: no cover
    BaseEstimator = TransformerMixin = object


class NMF(TransformerMixin, BaseEstimator):
    """scikit-learn style estimator around :func:`nmf` (usable in HyperSpy's ``decomposition``).

    ``s.decomposition(algorithm=NMF(n_components=3))`` works; so do sklearn pipelines.

    Parameters
    ----------
    n_components : int
    init, max_iter, tol, random_state, compression, max_passes, show_progressbar
        See :func:`nmf`.

    Attributes
    ----------
    components_ : numpy.ndarray (k, n_features)
    reconstruction_err_ : float
        Frobenius norm ``||X − WH||`` (absolute, as in scikit-learn).
    relative_reconstruction_err_ : float
        ``||X − WH|| / ||X||``.
    n_iter_ : int
    n_components_ : int
    result_ : NMFResult
    """

    def __init__(
        self,
        n_components=2,
        *,
        init="nndsvda",
        max_iter=500,
        tol=1e-5,
        random_state=None,
        compression="auto",
        max_passes=None,
        show_progressbar=False,
    ):
        self.n_components = n_components
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.compression = compression
        self.max_passes = max_passes
        self.show_progressbar = show_progressbar

    def fit_transform(self, X, y=None):
        from sklearn.utils import check_random_state

        res = nmf(
            X,
            self.n_components,
            init=self.init,
            max_iter=self.max_iter,
            tol=self.tol,
            random_state=check_random_state(self.random_state),
            compression=self.compression,
            max_passes=self.max_passes,
            show_progressbar=self.show_progressbar,
        )
        self.result_ = res
        self.components_ = res.H
        self.n_components_ = res.H.shape[0]
        self.n_iter_ = res.n_iter
        self.relative_reconstruction_err_ = res.reconstruction_error
        self.reconstruction_err_ = res.reconstruction_error * np.sqrt(res.data_sq_norm)
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


def nnls_loadings(X, H, *, n_sweeps=100):
    """Solve ``min_W ||X − W H||`` with ``W ≥ 0`` for fixed ``H`` (k × n_features), block-wise.

    Returns ``W`` (n_samples × k) as float32. One pass over ``X``.
    """
    H = np.asarray(H, dtype=np.float32)
    X, n, m, _ = _check_shape_and_k(X, H.shape[0])
    if m != H.shape[1]:
        raise ValueError(
            f"X has {m} features but the components have {H.shape[1]}; "
            "transform data of the same kind as the fitted data"
        )
    blocks = _RowBlocks(X)
    Wparts, _ = blocks.run(_kernel_nnls, H, n_sweeps)
    return np.ascontiguousarray(np.concatenate(Wparts, axis=1).T)


def _kernel_nnls(X, start, H, n_sweeps):
    HHt = H @ H.T
    At = (X @ H.T).T.copy()
    Wt = np.linalg.lstsq(HHt.astype(np.float64), At.astype(np.float64), rcond=None)[0]
    Wt = np.maximum(Wt, _TINY).astype(np.float32)
    _hals_sweeps(Wt, At, HHt, n_sweeps)
    return Wt, (np.zeros(1),)
