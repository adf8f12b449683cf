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
"""

from dataclasses import dataclass, field

import numpy as np


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

    @property
    def explained_variance_ratio(self):
        total = self.eigenvalues.sum()
        return self.eigenvalues / total if total > 0 else self.eigenvalues

    @property
    def reason(self):
        """One paragraph saying why this number, for reports and ``print``."""
        q = self.n_significant
        ev = self.eigenvalues
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
        ax.semilogy(idx, ratio, "o-", color="0.5", ms=4, label="centred PCA")
        ax.semilogy(idx[:q], ratio[:q], "o", color="C3", ms=6, label="significant")
        ax.axvline(q + 0.5, color="C3", ls="--", lw=1)
        ax.set_xlabel("component")
        ax.set_ylabel("explained variance ratio")
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
        )

    def __str__(self):
        return f"ComponentChoice(n_components={self.n_components}): {self.reason}"


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


def choose_n_components(
    X,
    *,
    max_components=None,
    min_variance_ratio=0.01,
    normalize_rows=True,
    random_state=None,
    sampled_stride=None,
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
    notes = []
    stride = None if sampled_stride is None else int(sampled_stride)
    if stride is None and (hasattr(X, "dask") or X.nbytes > 2 * _SAMPLE_BYTES):
        X, stride = sample_rows(X)
    if stride is not None:
        X = np.asarray(X, dtype=np.float32)
        if stride > 1:
            notes.append(
                f"Chosen on one sample in {stride} ({X.shape[0]} samples, one pass)."
            )
    else:
        X = np.asarray(X)
    _check_values(X)
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
    n_components = q + 1
    if n_components > max_components:
        notes.append(f"Capped at max_components = {max_components}.")
        n_components = max_components
    return ComponentChoice(
        n_components=n_components,
        n_significant=q,
        eigenvalues=ev,
        log_likelihood=ll,
        max_components=max_components,
        notes=notes,
    )
