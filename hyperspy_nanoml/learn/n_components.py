"""Choosing the number of components, with the evidence kept for the report.

Shared by every workflow (local FFT, EDS, SPED). The rule:

1. The centred PCA spectrum (eigenvalues of the covariance, largest first) is
   computed: exactly for small in-memory data, by a randomised SVD otherwise
   (Halko, Martinsson & Tropp, SIAM Rev. 53, 217, 2011), out of core for dask.
2. The spectrum is split into "signal" and "noise" groups by the profile
   likelihood of Zhu & Ghodsi (Comput. Stat. Data Anal. 51, 918, 2006),
   applied to the log-eigenvalues: the split that maximises the likelihood of
   two Gaussian groups with a common variance. Unlike the first local maximum
   of the scree gradient used by Jany et al. (Micron 130, 102800, 2020), which
   picks 9-12 components where 4 regions exist, the profile likelihood looks
   at the whole spectrum.
3. Data that are mixtures of k pure sources whose weights sum to one (textures
   tiling an image, phases filling a scan) have k - 1 significant *centred*
   components; NMF needs k components. So ``n_components = q + 1``. To make
   that hold for any non-negative mixture (thickness or intensity varying from
   sample to sample, weights not summing to one), each sample is first scaled
   to unit sum: x / sum(x) is a convex combination of the sources h_j / sum(h_j).

Counts (SPED, EDS: ``noise="poisson"``, or the Keenan-Kotula scaled sample that the
NMF engine passes with ``poisson_scales`` when ``normalize_poissonian_noise=True``) get a rule with a
noise model instead, because the profile likelihood finds the biggest *gap* in the
spectrum, not the noise floor (measured: 2 and 5 of pyxem's 6 simulated grains at 200
and 2000 electrons per pattern, 20 components on 2-count-per-pixel EDS maps):

4. *Poisson parallel analysis* (Horn, Psychometrika 30, 179, 1965) on the
   correspondence-analysis residual ``R = (C - a bᵀ/T) / sqrt(a bᵀ)`` of the counts
   ``C`` (row sums ``a``, column sums ``b``, total ``T``: the Keenan & Kotula 2004
   scaling with the independence model removed; Greenacre, *Theory and Applications
   of Correspondence Analysis*, 1984). A mixture of k sources has k - 1 eigenvalues
   of ``RᵀR`` above noise. The noise floor is the largest eigenvalue of a simulated
   residual: Poisson counts with the *same means* (the independence model plus the
   components found so far, iterated to a fixed point) under the *same scaling*
   (by their own margins, as the data were), times a dispersion ``φ`` estimated from
   the data's noise energy (``φ = 1`` for counts; it absorbs a detector gain or
   preprocessing), times ``1 + margin``. A simulated null is exact where the
   Marchenko-Pastur edge (Marchenko & Pastur 1967) fails: sparse counts (a few per
   row) have heavy-tailed scaled entries whose largest noise eigenvalue lies far
   above the edge. The iteration starts from the largest eigengap (the fixed point
   is then usually confirmed in one round; from ``q = 0`` the independence model's
   floor is far too low for spotty, heteroscedastic counts and took 3-4 rounds),
   with the same random seed every round, counts drawn in float32.
5. Rows with few counts are first summed in runs of consecutive rows (scan order:
   neighbours) to about 100 counts per row, keeping at least ~100 rows; a Poisson
   sum is Poisson, and the sources survive where regions are larger than the runs.
"""

import functools
from dataclasses import dataclass, field

import numpy as np

from hyperspy_nanoml.learn.blocks import one_blas_thread
from hyperspy_nanoml.learn.poisson import inverse_root_sums


def _on_one_blas_thread(func):
    """Run ``func`` with BLAS on one thread. Its products are small and
    latency-bound: on this 2-core machine under load, multi-threaded BLAS made the
    choice on 1536 SPED patterns take 2-9 s instead of 1.1 s (threads spinning
    against the other processes)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return func(*args, **kwargs)

    return wrapper


@dataclass
class ComponentChoice:
    """The chosen number of components and the evidence behind it."""

    n_components: int
    n_significant: int
    eigenvalues: np.ndarray
    log_likelihood: np.ndarray
    method: str = "profile_likelihood"
    max_components: int | None = None
    notes: list = field(default_factory=list)
    threshold: float | None = None
    dispersion: float | None = None
    binning: int = 1

    @property
    def explained_variance_ratio(self):
        total = self.eigenvalues.sum()
        return self.eigenvalues / total if total > 0 else self.eigenvalues

    @property
    def reason(self):
        """One paragraph saying why this number, for reports and ``print``."""
        q = self.n_significant
        ev = self.eigenvalues
        if self.method == "poisson_parallel_analysis":
            above = ev[q - 1] / self.threshold if q >= 1 and self.threshold else np.inf
            below = ev[q] / self.threshold if q < len(ev) and self.threshold else 0.0
            binned = (
                f" on sums of {self.binning} consecutive rows" if self.binning > 1 else ""
            )
            text = (
                f"{q} correspondence-analysis component(s) of the counts{binned} stand "
                f"above the noise floor (Poisson parallel analysis, Horn 1965: the largest "
                f"eigenvalue of simulated Poisson counts with the same means and scaling, "
                f"dispersion {self.dispersion:.3g} from the data, 1 = Poisson counts; "
                f"eigenvalue {q} is {above:.2f}x the floor, eigenvalue {q + 1} "
                f"{below:.2f}x). A mixture of k sources has k - 1 such components, so "
                f"n_components = {q} + 1 = {self.n_components}."
            )
            return " ".join([text, *self.notes])
        gap = ev[q - 1] / ev[q] if q < len(ev) and ev[q] > 0 else np.inf
        text = (
            f"{q} centred PCA component(s) stand above the noise floor "
            f"(profile likelihood of Zhu & Ghodsi 2006 over the first {len(ev)} "
            f"eigenvalues; eigenvalue {q} is {gap:.1f}x eigenvalue {q + 1}). "
            f"A mixture of k sources has k - 1 centred components, so "
            f"n_components = {q} + 1 = {self.n_components}."
        )
        return " ".join([text, *self.notes])

    def plot(self, ax=None):
        """Scree plot (log scale) with the chosen split marked; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        idx = np.arange(1, len(self.eigenvalues) + 1)
        ratio = self.explained_variance_ratio
        q = self.n_significant
        label = (
            "correspondence analysis"
            if self.method == "poisson_parallel_analysis"
            else "centred PCA"
        )
        ax.semilogy(idx, ratio, "o-", color="0.5", ms=4, label=label)
        ax.semilogy(idx[:q], ratio[:q], "o", color="C3", ms=6, label="significant")
        ax.axvline(q + 0.5, color="C3", ls="--", lw=1)
        poisson = self.method == "poisson_parallel_analysis"
        if poisson and self.threshold:
            total = self.eigenvalues.sum()
            ax.axhline(
                self.threshold / total,
                color="C0",
                ls=":",
                lw=1,
                label="Poisson noise floor",
            )
        ax.set_xlabel("component")
        ax.set_ylabel(
            "fraction of the inertia shown (χ²/T)"
            if poisson
            else "explained variance ratio"
        )
        ax.set_title(f"n_components = {self.n_components} ({q} significant + 1)")
        ax.legend(loc="upper right", fontsize=8)
        return ax

    def as_dict(self):
        """Plain types only, so it can live in HyperSpy metadata and .hspy files."""
        return {
            "n_components": int(self.n_components),
            "n_significant": int(self.n_significant),
            "eigenvalues": np.asarray(self.eigenvalues, dtype=float),
            "log_likelihood": np.nan_to_num(np.asarray(self.log_likelihood), neginf=np.nan),
            "method": self.method,
            "max_components": self.max_components,
            "notes": list(self.notes),
            "reason": self.reason,
            "threshold": np.nan if self.threshold is None else float(self.threshold),
            "dispersion": np.nan if self.dispersion is None else float(self.dispersion),
            "binning": int(self.binning),
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`as_dict` output (or a DictionaryTreeBrowser of it)."""
        if hasattr(d, "as_dictionary"):
            d = d.as_dictionary()
        ll = np.asarray(d["log_likelihood"], dtype=float)
        return cls(
            n_components=int(d["n_components"]),
            n_significant=int(d["n_significant"]),
            eigenvalues=np.asarray(d["eigenvalues"], dtype=float),
            log_likelihood=np.where(np.isnan(ll), -np.inf, ll),
            method=d.get("method", "profile_likelihood"),
            max_components=d.get("max_components"),
            notes=list(d.get("notes", [])),
            threshold=_none_if_nan(d.get("threshold")),
            dispersion=_none_if_nan(d.get("dispersion")),
            binning=int(d.get("binning", 1)),
        )

    def __str__(self):
        return f"ComponentChoice(n_components={self.n_components}): {self.reason}"


def _none_if_nan(value):
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def profile_likelihood(values):
    """Profile log-likelihood of every split of ``values`` (Zhu & Ghodsi 2006).

    ``values`` are sorted in decreasing order; entry ``q`` (1 <= q < len) is the
    log-likelihood of the first ``q`` values and the rest being two Gaussian
    groups with their own means and a common variance. Entry 0 is ``-inf``.
    """
    d = np.asarray(values, dtype=float)
    p = d.size
    ll = np.full(p, -np.inf)
    if p < 2:
        return ll
    q = np.arange(1, p)
    csum, csq = np.cumsum(d), np.cumsum(d**2)
    # within-group sums of squares from running sums, vectorised over q
    ss1 = csq[q - 1] - csum[q - 1] ** 2 / q
    ss2 = (csq[-1] - csq[q - 1]) - (csum[-1] - csum[q - 1]) ** 2 / (p - q)
    var = np.maximum((ss1 + ss2) / p, np.finfo(float).tiny)
    ll[1:] = -0.5 * p * (np.log(2 * np.pi * var) + 1)
    return ll


def centred_spectrum(X, n_eigenvalues, random_state=None):
    """Largest eigenvalues of the covariance of the in-memory matrix ``X``.

    Exact (eigenvalues of the Gram matrix) when one side is small, otherwise a
    randomised SVD.
    """
    n, m = X.shape
    k = int(min(n_eigenvalues, n - 1, m))
    Xc = np.asarray(X, dtype=np.float32)
    Xc = Xc - Xc.mean(axis=0)
    if min(n, m) <= 1500:
        from threadpoolctl import threadpool_limits

        G = Xc @ Xc.T if n <= m else Xc.T @ Xc
        # LAPACK on a small matrix: one thread is fastest, and OpenBLAS's
        # threads spin badly when another process holds a core
        with threadpool_limits(limits=1, user_api="blas"):
            ev = np.linalg.eigvalsh(G.astype(np.float64))[::-1][:k]
        return np.maximum(ev, 0.0) / max(n - 1, 1)
    from sklearn.utils.extmath import randomized_svd

    _, s, _ = randomized_svd(Xc, k, n_iter=2, random_state=random_state)
    return (s.astype(float) ** 2) / max(n - 1, 1)


_SAMPLE_BYTES = 256 * 2**20


def sample_stride(shape, max_bytes=_SAMPLE_BYTES):
    """Row stride of :func:`sample_rows` for an ``(n, m)`` matrix: every s-th row
    so that the float32 sample takes at most ``max_bytes``."""
    n, m = shape
    return max(1, int(np.ceil(n * m * 4 / max_bytes)))


def sample_rows(X, max_bytes=_SAMPLE_BYTES):
    """Evenly spaced rows of ``X`` as an in-memory float32 array.

    Every s-th row, with s chosen so the sample takes at most ``max_bytes``:
    for a lazy scan that is one pass over the data (each block keeps its share
    of rows), and the sample covers the whole scan uniformly. The covariance
    spectrum of such a sample has the same signal components; only components
    carried by fewer than ~1/s of the samples could be missed.
    """
    stride = sample_stride(X.shape, max_bytes)
    sample = X[::stride]
    if hasattr(sample, "dask"):
        sample = sample.astype(np.float32).compute()
    return np.asarray(sample, dtype=np.float32), stride


_TARGET_COUNTS = 100.0
_MIN_ROWS = 100


def bin_consecutive_rows(C, target_counts=_TARGET_COUNTS, min_rows=_MIN_ROWS):
    """Sum runs of ``g`` consecutive rows of the count matrix ``C`` so that the
    median row holds about ``target_counts`` counts, keeping at least ``min_rows``
    rows (``g = 1`` when the rows already hold enough). Returns ``(binned, g)``.

    Rows are assumed in scan order (neighbours alike): a sum of Poisson counts is
    Poisson, and regions larger than ``g`` scan steps keep their identity.
    """
    sums = C.sum(axis=1, dtype=np.float64)
    level = float(np.median(sums))
    if level <= 0:
        level = float(sums.mean())
    g = 1 if level >= target_counts else int(np.ceil(target_counts / max(level, 1e-12)))
    g = max(1, min(g, C.shape[0] // min_rows))
    if g == 1:
        return C, 1
    n = (C.shape[0] // g) * g
    return C[:n].reshape(n // g, g, C.shape[1]).sum(axis=1, dtype=np.float32), g


def _range(M, k, rng, n_iter):
    """Orthonormal basis (n × k) of the dominant range of ``M``: randomised range
    finder with QR-normalised power iterations (Halko, Martinsson & Tropp 2011)."""
    Q = np.linalg.qr(M @ rng.standard_normal((M.shape[1], k)).astype(M.dtype))[0]
    for _ in range(n_iter):
        Q = np.linalg.qr(M @ np.linalg.qr(M.T @ Q)[0])[0]
    return Q


def _top_svd(M, k, rng):
    """Leading ``k`` singular triplets of ``M``: exact through the Gram matrix when
    one side is at most 1500, else randomised (10 extra vectors, 4 power iterations)."""
    from threadpoolctl import threadpool_limits

    n, m = M.shape
    if min(n, m) <= 1500:
        G = (M @ M.T if n <= m else M.T @ M).astype(np.float64)
        with threadpool_limits(limits=1, user_api="blas"):
            ev, vec = np.linalg.eigh(G)
        ev, vec = np.maximum(ev[::-1][:k], 0.0), vec[:, ::-1][:, :k]
        s = np.sqrt(ev)
        inv = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)
        if n <= m:
            return vec, s, (vec.T @ M) * inv[:, None]
        return (M @ vec) * inv[None, :], s, vec.T
    Q = _range(M, min(k + 10, n, m), rng, 4)
    Ub, s, Vt = np.linalg.svd(Q.T @ M, full_matrices=False)
    return (Q @ Ub)[:, :k], s[:k].astype(np.float64), Vt[:k]


def _top_eigenvalue(M, rng):
    """Largest eigenvalue of ``MᵀM``, accurately: the top of a noise spectrum is
    flat, where power iterations underestimate it. Through the Gram matrix when one
    side is at most 2500, else by Lanczos (ARPACK)."""
    from threadpoolctl import threadpool_limits

    n, m = M.shape
    if min(n, m) <= 2500:
        from scipy.linalg import eigh

        G = (M @ M.T if n <= m else M.T @ M).astype(np.float64)
        p = G.shape[0]
        with threadpool_limits(limits=1, user_api="blas"):
            return float(eigh(G, eigvals_only=True, subset_by_index=[p - 1, p - 1])[0])
    from scipy.sparse.linalg import svds

    v0 = rng.standard_normal(min(n, m))
    s = svds(M, k=1, tol=1e-3, v0=v0, return_singular_vectors=False)
    return float(s[0]) ** 2


def _ca_residual(C, independence, a, b):
    """Correspondence-analysis residual ``(C - a bᵀ/T) / sqrt(a bᵀ)`` (float32), with
    ``independence = a bᵀ/T`` given (float32, kept for the simulations)."""
    ra = inverse_root_sums(a, np.float32)
    rb = inverse_root_sums(b, np.float32)
    R = np.subtract(C, independence, dtype=np.float32)
    R *= ra[:, None]
    R *= rb[None, :]
    return R


def _poisson_float32(lam, gen, large=10.0):
    """Poisson counts of means ``lam`` (float32 array) as float32 (flat), exactly:
    the number of unit-rate exponential inter-arrival times that fit in ``lam``
    (Devroye, *Non-Uniform Random Variate Generation*, 1986, X.3.3), vectorised
    over the entries still counting, which shrink fast for the small means of
    sparse counts; means above ``large`` are drawn by ``gen.poisson``. About twice
    as fast as ``gen.poisson`` on a sparse count matrix, without its int64 copy."""
    lam = np.ascontiguousarray(lam, dtype=np.float32).ravel()
    out = np.zeros(lam.size, dtype=np.float32)
    big = np.flatnonzero(lam > large)
    if big.size:
        out[big] = gen.poisson(lam[big])
    arrival = gen.standard_exponential(lam.size, dtype=np.float32)
    go = arrival <= lam
    go[big] = False
    active = np.flatnonzero(go)
    arrival, lam_a = arrival[active], lam[active]
    while active.size:
        out[active] += 1.0
        arrival += gen.standard_exponential(active.size, dtype=np.float32)
        still = arrival <= lam_a
        active, arrival, lam_a = active[still], arrival[still], lam_a[still]
    return out


def _largest_gap(d):
    """Split ``q`` (0 <= q < len(d)) after the largest ratio ``d[q-1] / d[q]`` of the
    decreasing positive values ``d``; 0 when there are fewer than two."""
    d = np.asarray(d, dtype=np.float64)
    if d.size < 2 or d[0] <= 0:
        return 0
    d = np.maximum(d, 1e-12 * d[0])
    return int(np.argmax(d[:-1] / d[1:])) + 1


_MIN_COUNTS = 5.0
_MIN_ROW_COUNTS = 10.0
_N_DRAWS = 3


def count_unit(C):
    """The size of one count in ``C``: its smallest positive value (1 for counts,
    the gain for counts times a gain); 0 when ``C`` has no positive value.

    Examples
    --------
    >>> count_unit(np.array([[0.0, 4.0], [8.0, 12.0]]))
    4.0
    """
    C = np.asarray(C)
    positive = C[C > 0]
    return float(positive.min()) if positive.size else 0.0


def counted_rows_and_columns(C, min_counts=_MIN_COUNTS, min_row_counts=_MIN_ROW_COUNTS):
    """Rows holding at least ``min_row_counts`` counts and columns holding at least
    ``min_counts`` counts (in units of :func:`count_unit`) of the count matrix
    ``C``, as two boolean masks.

    Columns are judged on all rows, then rows on the kept columns (and columns
    emptied by that are dropped too). A row or column with a few counts carries
    no shape, and in the correspondence-analysis scaling its entries
    ``1 / sqrt(a_i b_j)`` are the largest of the matrix. Worse, it is kept only
    because its draw was not zero: Poisson counts simulated with its mean are zero
    ``exp(-mean)`` of the time, so the simulated noise misses a share of exactly
    the entries that dominate the noise (measured on pyxem's simulated grains at
    200 counts per pattern: dispersion 1.07-1.10 instead of 1 with every non-empty
    column kept, 1.00-1.03 with columns of at least 3-5 counts). Rows are held to
    more (a row has fewer entries than a column to spread its noise over): a few
    near-empty rows of 5-6 counts (vacuum, 2 counts expected, kept by their luck)
    carried two spurious components confined to them; 10 counts removed them.

    Examples
    --------
    >>> C = np.array([[9.0, 1, 0, 3], [4, 2, 0, 5], [1, 0, 0, 0]])
    >>> rows, cols = counted_rows_and_columns(C, 3, 3)
    >>> rows, cols
    (array([ True,  True, False]), array([ True,  True, False,  True]))
    """
    C = np.asarray(C)
    unit = count_unit(C)
    unit = unit if unit > 0 else np.inf
    cols = C.sum(axis=0, dtype=np.float64) >= (min_counts - 1e-6) * unit
    a = C @ cols.astype(C.dtype)
    rows = a >= (min_row_counts - 1e-6) * unit
    cols &= rows.astype(C.dtype) @ C > 0
    return rows, cols


@_on_one_blas_thread
def poisson_parallel_analysis(
    C,
    *,
    max_components=30,
    margin=0.1,
    random_state=0,
    max_rounds=5,
    min_counts=_MIN_COUNTS,
    min_row_counts=_MIN_ROW_COUNTS,
    n_draws=_N_DRAWS,
):
    """Number of correspondence-analysis components of the counts ``C`` above the
    Poisson noise floor (parallel analysis, Horn 1965), with the evidence.

    Parameters
    ----------
    C : numpy.ndarray (n_rows, n_channels)
        Counts (or counts times a gain: the dispersion absorbs it), non-negative.
    max_components : int
        At most ``max_components - 1`` components are counted.
    margin : float
        Safety margin over the simulated floor (default 10 %).
    random_state : int or RandomState
        Seed of the simulated counts (the answer is a function of the data and it).
    max_rounds : int
        Rounds of (mean model -> simulated floor -> count) before stopping; the
        first mean model holds the components before the largest eigengap.
    min_counts, min_row_counts : float
        Columns with fewer counts than ``min_counts`` and rows with fewer than
        ``min_row_counts`` (in units of the smallest positive value, one count)
        are left out (:func:`counted_rows_and_columns`); 0 keeps every non-empty
        one.
    n_draws : int
        Simulated count matrices per round; the floor is the mean of their largest
        eigenvalues (Glorfeld 1995 averages draws too), so that one draw's luck
        (the top eigenvalue of sparse counts varies by ~5 % between draws) does not
        decide a component near the floor.

    Returns
    -------
    dict
        ``q`` (components above the floor), ``eigenvalues`` (of ``RᵀR``, the
        inertia χ²/T split by component), ``threshold``, ``dispersion``, ``rounds``
        (the count after each round), ``converged``, ``floor_spread`` (relative
        standard deviation of the draws' largest eigenvalues), ``rows_left_out``,
        ``columns_left_out`` and ``counts_left_out`` (fraction of the total).

    References
    ----------
    Horn, Psychometrika 30, 179 (1965); Glorfeld, Educ. Psychol. Meas. 55, 377
    (1995); Keenan & Kotula, Surf. Interface Anal. 36, 203 (2004); Greenacre,
    Theory and Applications of Correspondence Analysis (1984).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> H = rng.random((3, 100)); W = rng.dirichlet(np.ones(3), 400)
    >>> C = rng.poisson(50 * W @ H).astype(float)
    >>> poisson_parallel_analysis(C)["q"]
    2
    """
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    n_draws = max(int(n_draws), 1)
    C = np.asarray(C, dtype=np.float32)
    grand = float(C.sum(dtype=np.float64))
    rows, cols = counted_rows_and_columns(C, min_counts, min_row_counts)
    if rows.sum() < 3 or cols.sum() < 3:  # too few counts anywhere: keep what is not empty
        rows, cols = counted_rows_and_columns(C, 0.0, 0.0)
    if not (rows.all() and cols.all()):  # one copy, only when needed
        C = C[np.ix_(rows, cols)]
    a = C.sum(axis=1, dtype=np.float64)
    b = C.sum(axis=0, dtype=np.float64)
    left_out = {
        "rows_left_out": int(rows.size - rows.sum()),
        "columns_left_out": int(cols.size - cols.sum()),
        "counts_left_out": 1.0 - float(a.sum()) / grand if grand > 0 else 0.0,
    }
    n, m = C.shape
    T = float(a.sum())
    k_ev = int(max(1, min(max_components + 10, n - 1, m - 1)))
    independence = np.outer((a / T).astype(np.float32), b.astype(np.float32))
    R = _ca_residual(C, independence, a, b)
    total = float(np.einsum("ij,ij->", R, R, dtype=np.float64))
    U, s, Vt = _top_svd(R, k_ev, rng)
    d = s**2
    if d.size == 0 or d[0] <= 1e-12 * max(total, 1e-300) or total <= 0:
        return {
            "q": 0,
            "eigenvalues": d,
            "threshold": 0.0,
            "dispersion": 0.0,
            "rounds": [0],
            "converged": True,
            "floor_spread": 0.0,
            **left_out,
        }
    sa = np.sqrt(a).astype(np.float32)
    sb = np.sqrt(b).astype(np.float32)
    q_cap = max(max_components - 1, 0)
    numerical = 1e-8 * d[0]
    # Start from the largest eigengap (the biggest ratio of consecutive eigenvalues):
    # a fixed point is then usually confirmed in one round, where starting from
    # q = 0 (the independence model, whose floor is far too low for heteroscedastic
    # counts with sharp spots or peaks) took 3-4 rounds.
    q = _largest_gap(d[: q_cap + 1])
    # the same seed every round (common random numbers): the floor then changes
    # with the mean model only, not with the draws
    seed = int(rng.randint(0, 2**31 - 1))
    rounds, converged = [], False
    for _ in range(max_rounds):
        M = independence
        if q:
            # independence + the q components, back on the count scale, in 2 passes
            M = ((U[:, :q] * (s[:q] * sa[:, None])).astype(np.float32)) @ (
                Vt[:q] * sb[None, :]
            ).astype(np.float32)
            M += independence
            np.maximum(M, 0.0, out=M)
            _restore_margins(M, a, b)
        e1, noise_total = _simulated_floor(M, seed, n_draws)
        # the data's residual lost the noise its rank-(q + 1) fit (independence + q
        # components) absorbed, (q + 1)(n + m - q - 1) of its n m degrees of
        # freedom; the simulated noise, taken about its true means, lost none
        fitted = min((q + 1) * (n + m - q - 1) / (n * m), 0.5)
        expected = max(float(noise_total.mean()) * (1.0 - fitted), 1e-300)
        dispersion = max((total - float(d[:q].sum())) / expected, 0.0)
        threshold = dispersion * float(e1.mean()) * (1.0 + margin)
        above = (d > threshold) & (d > numerical)
        q_new = int(np.argmin(above)) if not above.all() else int(above.size)
        q_new = min(q_new, q_cap)
        rounds.append(q_new)
        if q_new == q:
            converged = True
            break
        q = q_new
    if not converged and len(rounds) >= 2:
        q = min(rounds[-2:])  # oscillating between two answers: the smaller
    else:
        q = rounds[-1]
    return {
        "q": int(q),
        "eigenvalues": d,
        "threshold": float(threshold),
        "dispersion": float(dispersion),
        "rounds": rounds,
        "converged": converged,
        "floor_spread": float(e1.std() / e1.mean())
        if e1.size > 1 and e1.mean() > 0
        else 0.0,
        **left_out,
    }


def _restore_margins(M, a, b, n_iter=3):
    """Scale the clipped mean model ``M`` (in place) back to the row sums ``a`` and
    column sums ``b`` of the data by iterative proportional fitting (Deming &
    Stephan, Ann. Math. Stat. 11, 427, 1940), as the unclipped model has them.

    Clipping the negative means of the rank-q model at zero adds mass (2-3 % of
    the total on pyxem's grains, concentrated in the columns of sparse spots): the
    simulated margins grew with it and the simulated noise, scaled by them, fell
    by 5-8 %, which came out as a dispersion of 1.04-1.05 on exact Poisson counts.
    """
    for _ in range(n_iter):
        col = M.sum(axis=0, dtype=np.float64)
        M *= np.where(col > 0, b / np.where(col > 0, col, 1.0), 0.0).astype(np.float32)
        row = M.sum(axis=1, dtype=np.float64)
        M *= np.where(row > 0, a / np.where(row > 0, row, 1.0), 0.0).astype(np.float32)[
            :, None
        ]
    return M


def _simulated_floor(M, seed, n_draws):
    """Largest eigenvalue and total inertia of ``n_draws`` simulated residuals:
    Poisson counts of means ``M``, minus ``M``, scaled by their own margins.

    Draw ``j`` has its own generator (seeded ``[seed, j]``: the same draws every
    round and every run), so the draws run in parallel threads (numpy's generators
    and BLAS on one thread each release the GIL): 0.65 s instead of 1.0 s one after
    the other, on 2 cores for 8192 SPED patterns."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def one(j):
        gen = np.random.default_rng([seed, j])
        N = _poisson_float32(M, gen).reshape(M.shape)
        ay = N.sum(axis=1, dtype=np.float64)
        by = N.sum(axis=0, dtype=np.float64)
        N -= M
        N *= inverse_root_sums(ay, np.float32)[:, None]
        N *= inverse_root_sums(by, np.float32)[None, :]
        energy = float(np.einsum("ij,ij->", N, N, dtype=np.float64))
        return _top_eigenvalue(N, gen), energy

    with ThreadPoolExecutor(max(1, min(n_draws, os.cpu_count() or 1))) as pool:
        draws = list(pool.map(one, range(n_draws)))
    return np.array([d[0] for d in draws]), np.array([d[1] for d in draws])


def _check_shape(X):
    if min(X.shape) < 3:
        raise ValueError(
            f"need at least 3 samples and 3 features to choose a number of components, "
            f"got shape {X.shape}; give n_components as an integer instead"
        )


def _check_values(X):
    """Finite, non-negative enough to choose from, not all zero (in-memory X)."""
    if not np.isfinite(X).all():
        raise ValueError(
            f"the data contain {int(np.count_nonzero(~np.isfinite(X)))} NaN or infinite "
            "values; replace them or exclude them (navigation_mask / signal_mask) before "
            "choosing the number of components"
        )
    if not X.any():
        raise ValueError(
            "the data are all zeros: there is nothing to decompose (check the data and "
            "the masks)"
        )


def _unit_sum_rows(X, min_fraction=0.25):
    """Rows scaled to unit sum; rows summing to less than ``min_fraction`` of the
    median row sum are left out (their shape is mostly noise: vacuum, holes)."""
    sums = X.sum(axis=1, dtype=np.float64)
    positive = sums[sums > 0]
    floor = min_fraction * np.median(positive) if positive.size else 0.0
    keep = sums > max(floor, 0.0)
    return X[keep] / sums[keep, None].astype(X.dtype), int(np.count_nonzero(~keep))


@_on_one_blas_thread
def choose_n_components(
    X,
    *,
    max_components=None,
    min_variance_ratio=0.01,
    normalize_rows=True,
    random_state=None,
    sampled_stride=None,
    noise="auto",
    poisson_scales=None,
    margin=0.1,
):
    """Choose the number of NMF components for ``X`` and return the evidence.

    Parameters
    ----------
    X : numpy.ndarray or dask.array.Array, shape (n_samples, n_features)
        The data as NMF will see it (features already scaled). Lazy or large
        data are read once, keeping an evenly spaced sample of rows of at most
        256 MB (:func:`sample_rows`).
    max_components : int, optional
        Upper bound on the answer (default 30).
    min_variance_ratio : float
        A component counts only if its variance is at least this fraction of
        the first one's (default 1 %). With many samples, minor but real
        variation (region boundaries, shading) becomes statistically
        significant; this keeps the answer to the distinct sources.
    normalize_rows : bool
        Scale each sample to unit sum first (default), so that non-convex
        non-negative mixtures also give k - 1 centred components. Samples that
        sum to less than 25 % of the median sample are left out: scaled up,
        their shape is mostly noise.
    random_state : None, int, numpy.random.Generator or RandomState
        Seed of the randomised SVD used on large data.
    sampled_stride : int, optional
        ``X`` is already the in-memory sample ``data[::sampled_stride]`` that
        :func:`sample_rows` would take (e.g. kept from a pass that reads the
        data anyway, see ``nmf_decomposition``); it is used as is and the
        evidence says so.
    noise : {"auto", "poisson", "unknown"}
        ``"poisson"``: ``X`` holds counts (electrons, X-ray counts; a gain is
        allowed) and the number is set by Poisson parallel analysis (module
        docstring, steps 4-5), rows in scan order. ``"unknown"``: the profile
        likelihood on the centred spectrum (steps 1-3). ``"auto"`` (default):
        ``"poisson"`` when ``poisson_scales`` is given (the caller scaled counts for
        Poisson noise, e.g. ``normalize_poissonian_noise=True``), ``"unknown"``
        otherwise (integer data are not assumed to be counts).
    poisson_scales : (row_scale, column_scale), optional
        ``X`` is the Keenan-Kotula scaled count matrix ``diag(row_scale) C
        diag(column_scale)`` (as the NMF engine's row sample is, with the row
        factors of its rows); the counts ``C`` are recovered from it. Implies
        ``noise="poisson"``.
    margin : float
        Safety margin of the Poisson noise floor (default 0.1: an eigenvalue must
        exceed the simulated floor by 10 %).

    Returns
    -------
    ComponentChoice
        ``.n_components`` is the answer; ``.reason`` and ``.plot()`` show why.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> H = rng.random((3, 200)); W = rng.dirichlet(np.ones(3), 500)
    >>> X = W @ H + 0.01 * rng.random((500, 200))
    >>> choose_n_components(X).n_components
    3
    """
    from hyperspy_nanoml._validation import (
        check_matrix,
        check_positive_int,
        resolve_random_state,
    )

    X = check_matrix(X)
    random_state = resolve_random_state(random_state)[0]
    _check_shape(X)
    max_components = (
        30
        if max_components is None
        else check_positive_int(max_components, "max_components")
    )
    if noise not in ("auto", "poisson", "unknown"):
        raise ValueError(f"noise must be 'auto', 'poisson' or 'unknown', got {noise!r}")
    if poisson_scales is not None:
        row_scale, column_scale = (
            np.asarray(v, dtype=np.float64).ravel() for v in poisson_scales
        )
        if row_scale.size != X.shape[0] or column_scale.size != X.shape[1]:
            raise ValueError(
                f"poisson_scales must hold one factor per row ({X.shape[0]}) and per "
                f"column ({X.shape[1]}), got {row_scale.size} and {column_scale.size}"
            )
        if not (np.all(row_scale > 0) and np.all(column_scale > 0)):
            raise ValueError("poisson_scales must be positive (1/sqrt of the sums)")
        noise = "poisson"
    notes = []
    stride = None if sampled_stride is None else int(sampled_stride)
    if stride is None and (hasattr(X, "dask") or X.nbytes > 2 * _SAMPLE_BYTES):
        X, stride = sample_rows(X)
        if poisson_scales is not None:
            row_scale = row_scale[::stride]
    if stride is not None:
        X = np.asarray(X, dtype=np.float32)
        if stride > 1:
            notes.append(
                f"Chosen on one sample in {stride} ({X.shape[0]} samples, one pass)."
            )
    else:
        X = np.asarray(X)
    _check_values(X)
    if poisson_scales is not None:
        X = X / row_scale[:, None] / column_scale[None, :]
        rounded = np.round(X)
        if np.abs(X - rounded).max() < 1e-3:  # counts, up to float32 rounding
            X = rounded
    if noise == "poisson":
        return _choose_poisson(
            X, max_components, min_variance_ratio, margin, random_state, notes
        )
    if normalize_rows:
        X, n_dropped = _unit_sum_rows(X)
        if n_dropped:
            notes.append(
                f"{n_dropped} faint sample(s) (sum < 25% of the median) left out of the choice."
            )
    _check_shape(X)
    n, m = X.shape
    # Enough eigenvalues to see the noise floor, but not the decay of the last
    # ones that small overlapping-window data sets show (it fools the split).
    n_ev = int(max(min(max_components + 10, n // 4, m // 4), min(10, n - 1, m)))
    ev = centred_spectrum(X, n_ev, random_state=random_state)
    constant = bool(np.all(X == X[:1]))
    if constant or not np.all(np.isfinite(ev)) or ev[0] <= 0:
        raise ValueError(
            "the data have no variance (all samples are identical, up to their "
            "intensity): one component describes them, give n_components=1"
        )
    floor = ev[0] * 1e-12
    ll = profile_likelihood(np.log(np.maximum(ev, floor)))
    q = max(int(np.argmax(ll)) if ev.size > 1 else 1, 1)
    q_major = max(int(np.sum(ev >= min_variance_ratio * ev[0])), 1)
    if q_major < q:
        notes.append(
            f"The profile likelihood separates {q} components from the noise, but only "
            f"{q_major} carry at least {min_variance_ratio:.0%} of the first one's variance; "
            "the others are minor variations and are not counted."
        )
        q = q_major
    n_components = _capped(q + 1, max_components, notes)
    return ComponentChoice(
        n_components=n_components,
        n_significant=q,
        eigenvalues=ev,
        log_likelihood=ll,
        max_components=max_components,
        notes=notes,
    )


def _capped(n_components, max_components, notes):
    """``n_components``, at most ``max_components`` (the cap said in ``notes``)."""
    if n_components > max_components:
        notes.append(f"Capped at max_components = {max_components}.")
        return max_components
    return n_components


def _choose_poisson(X, max_components, min_variance_ratio, margin, random_state, notes):
    if float(X.min()) < 0:
        raise ValueError(
            f"noise='poisson' needs counts, but the data hold negative values "
            f"(min {float(X.min()):.4g}); give raw counts or use noise='unknown'"
        )
    C, g = bin_consecutive_rows(X)
    if g > 1:
        notes.append(
            f"Few counts per row (median {float(np.median(X.sum(axis=1))):.3g}): "
            f"consecutive rows summed in runs of {g} for the choice."
        )
    seed = 0 if random_state is None else random_state
    pa = poisson_parallel_analysis(
        C, max_components=max_components, margin=margin, random_state=seed
    )
    ev = pa["eigenvalues"]
    if pa["q"] == 0 and (ev.size == 0 or ev[0] <= 0 or pa["dispersion"] == 0):
        raise ValueError(
            "the data have no variance (all samples are identical, up to their "
            "intensity): one component describes them, give n_components=1"
        )
    q = pa["q"]
    if pa["rows_left_out"] or pa["columns_left_out"]:
        what = []
        if pa["rows_left_out"]:
            what.append(f"{pa['rows_left_out']} row(s) with fewer than {_MIN_ROW_COUNTS:g}")
        if pa["columns_left_out"]:
            what.append(
                f"{pa['columns_left_out']} channel(s) with fewer than {_MIN_COUNTS:g}"
            )
        notes.append(
            f"{' and '.join(what)} counts (empty ones included; "
            f"{pa['counts_left_out']:.1%} of the counts) left out of the choice: "
            "too few counts to carry a shape, and their noise is what a simulation "
            "cannot reproduce."
        )
    if not pa["converged"]:
        notes.append(
            f"The count alternated between {sorted(set(pa['rounds'][-2:]))} over the "
            "simulation rounds; the smaller is kept."
        )
    q_major = int(np.sum(ev[:q] >= min_variance_ratio * ev[0])) if q else 0
    if q_major < q:
        notes.append(
            f"{q} components stand above the Poisson noise floor, but only {q_major} "
            f"carry at least {min_variance_ratio:.0%} of the first one's inertia; the "
            "others are minor variations and are not counted."
        )
        q = q_major
    n_components = _capped(q + 1, max_components, notes)
    floor = ev[0] * 1e-12 if ev.size and ev[0] > 0 else 1e-300
    return ComponentChoice(
        n_components=n_components,
        n_significant=q,
        eigenvalues=ev,
        log_likelihood=profile_likelihood(np.log(np.maximum(ev, floor))),
        method="poisson_parallel_analysis",
        max_components=max_components,
        notes=notes,
        threshold=pa["threshold"],
        dispersion=pa["dispersion"],
        binning=g,
    )
