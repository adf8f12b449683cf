"""K-means over row blocks of a matrix (numpy or dask) and the choice of k, with evidence.

Array level: rows are samples (curves, spectra), columns features; no signal classes.

- :func:`choose_n_clusters` picks the number of clusters on an in-memory *sample* of
  feature rows by a separation criterion (below) and returns the evidence
  (:class:`KChoice`, with ``reason`` and ``plot()``).
- :func:`kmeans_blocks` refines given centres with Lloyd iterations over the row
  blocks of ``X`` (one pass over the data per iteration, each block a mini-batch whose
  per-cluster sums are reduced in a tree: bounded memory, lazy data never loaded
  whole), labels every row and lets the caller accumulate its own per-cluster sums
  in the same passes. No pairwise distance matrix is formed anywhere: distances are
  rows x clusters.

The separation criterion
------------------------
For each ``k`` in ``1..max_clusters``, k-means (k-means++ seeding, ``n_init``
restarts) partitions the sample. For every pair of clusters ``(i, j)`` the members of
both are projected on the line through the two centres, and the bimodality of the
two projected groups is measured by Ashman's D (Ashman, Bird & Zepf, Astron. J. 108,
2348 (1994))::

    D_ij = sqrt(2) |m_i - m_j| / sqrt(s_i^2 + s_j^2)

(``m``, ``s^2``: mean and variance of each group's projections). Cutting one
unimodal cloud in two at the k-means boundary gives D ~ 2.65 for a Gaussian and
2 sqrt(3) ~ 3.46 for a uniform (the flattest unimodal) distribution; two distinct
groups give D far above that. The chosen k is the largest for which every pair is
separated (``min D >= threshold``, default 4) and every cluster holds at least
``min_cluster_fraction`` of the sample; k = 1 when no split is separated. Testing
the projection on the split direction for unimodality is the idea of G-means
(Hamerly & Elkan, NIPS 2003) and dip-means (Kalogeratos & Likas, NIPS 2012); D
replaces their tests with a number whose null values are known in closed form.

Why this and not the gap statistic, Calinski-Harabasz, a Gaussian-mixture BIC or
the silhouette: measured on generated C-AFM maps (:func:`hyperspy_nanoml.data.cafm.
generate_iv_map`, 64 x 64 curves, asinh(I / 3 sigma_noise) then PCA to 10
components, 4096-curve sample, 5 seeds each; see ``hyperspy_nanoml.cafm.cluster``
for the numbers): all five found k on the default 4-class map (two ohmic classes 4x
apart, 4 % lost contacts), on 2, 3, 5 and 6 classes, 10 % lost contacts, 1 nA noise
and 32 x 32 maps. With 10 % pixel-to-pixel scatter of the class parameters the gap
statistic chose 5-6 in 5/5 maps, Calinski-Harabasz 4/5 wrong, the full-covariance
GMM BIC 5/5 wrong (they split the broad Schottky class); with two ohmic classes only
1.5x apart the silhouette (simplified, centroid-based) merged them in 5/5 maps and it
cannot return k = 1. The separation criterion was right in all of these: min D at
the true k was 8-75 and at k + 1 at most 3.3 (3.7 with 20 % scatter, where the true
classes themselves reach min D = 4.7-5.8). Its limit: two ohmic classes only 1.3x
apart with 5 % scatter were resolved in 3 of 4 maps (min D 5.3-5.6), merged in one.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from hyperspy_nanoml.learn.blocks import RowBlocks

__all__ = [
    "DEFAULT_SEPARATION",
    "BlockKMeansResult",
    "KChoice",
    "choose_n_clusters",
    "kmeans_blocks",
    "kmeans_sample",
    "progress_ticker",
    "random_row_indices",
    "separation_matrix",
    "single_thread",
]

#: Ashman's D above which two clusters count as separated (a unimodal cloud cut in
#: two by k-means gives at most ~3.46, the uniform distribution).
DEFAULT_SEPARATION = 4.0

_SLICE_ROWS = 8192  # rows transformed and assigned together inside a block
_CONTROLLER = []


def single_thread():
    """Context: BLAS and OpenMP (scikit-learn's k-means) on one thread.

    The in-memory work on a sample is latency-bound; with several processes on 2
    cores, 8 k-means fits of 4096 x 10 took 7.6 s with the default threads and 0.16 s
    with one (measured here under a load average of 7).
    """
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1)


# ------------------------------------------------------------------ the choice of k


@dataclass
class KChoice:
    """The chosen number of clusters and the evidence behind it.

    Attributes
    ----------
    n_clusters : int
        The chosen k.
    k_values : numpy.ndarray of int
        The k tried (1..max_clusters).
    separation : numpy.ndarray
        Minimum pairwise Ashman D of the k-means partition of the sample for each k
        (NaN for k = 1, which has no pair).
    worst_pair : list of tuple
        The pair of clusters (indices in the k-means partition) with that minimum.
    min_size : numpy.ndarray
        Fraction of the sample in the smallest cluster for each k.
    inertia : numpy.ndarray
        Within-cluster sum of squares for each k (for reference, e.g. an elbow plot).
    threshold, min_cluster_fraction : float
        The rule's parameters.
    n_samples : int
        Rows of the sample the choice was made on.
    """

    n_clusters: int
    k_values: np.ndarray
    separation: np.ndarray
    worst_pair: list
    min_size: np.ndarray
    inertia: np.ndarray
    threshold: float = DEFAULT_SEPARATION
    min_cluster_fraction: float = 0.005
    n_samples: int = 0
    method: str = "separation (Ashman's D between every pair of clusters)"
    notes: list = field(default_factory=list)

    def valid(self) -> np.ndarray:
        """For each k: True when every pair is separated and no cluster is too small."""
        sep = np.where(np.isnan(self.separation), np.inf, self.separation)
        return (sep >= self.threshold) & (self.min_size >= self.min_cluster_fraction)

    @property
    def reason(self) -> str:
        """One paragraph saying why this k, for reports and ``print``."""
        k = int(self.n_clusters)
        ks = list(np.asarray(self.k_values, dtype=int))
        text = (
            f"k = {k}: the largest number of clusters (of {ks[0]}..{ks[-1]} tried on a "
            f"sample of {self.n_samples} curves) whose every pair of clusters is "
            f"separated (Ashman's D of the two groups projected on the line between "
            f"their centres >= {self.threshold:g}; one cloud cut in two gives <= 3.5)"
        )
        if k in ks and k > 1:
            text += (
                f"; at k = {k} the closest pair has D = {self.separation[ks.index(k)]:.1f}"
            )
        if k + 1 in ks:
            i = ks.index(k + 1)
            a, b = self.worst_pair[i]
            if self.min_size[i] < self.min_cluster_fraction:
                text += (
                    f"; at k = {k + 1} the smallest cluster holds only "
                    f"{100 * self.min_size[i]:.2g} % of the sample"
                )
            else:
                text += (
                    f"; at k = {k + 1} two clusters overlap (D = "
                    f"{self.separation[i]:.1f}: one group cut in two)"
                )
        return " ".join([text + ".", *self.notes])

    def plot(self, ax=None, colors=None):
        """Minimum pairwise separation against k, threshold and choice marked."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ks = np.asarray(self.k_values, dtype=int)
        sep = np.asarray(self.separation, dtype=float)
        ok = self.valid()
        show = ks > 1
        ax.semilogy(ks[show], sep[show], "-", color="0.6", lw=1)
        ax.semilogy(ks[show & ok], sep[show & ok], "o", color="C2", label="separated")
        ax.semilogy(
            ks[show & ~ok], sep[show & ~ok], "x", color="C3", ms=8, label="not separated"
        )
        ax.axhline(
            self.threshold, color="C3", ls="--", lw=1, label=f"D = {self.threshold:g}"
        )
        ax.axvline(self.n_clusters, color="k", ls=":", lw=1)
        ax.set_xlabel("number of clusters k")
        ax.set_ylabel("min. pairwise separation D (Ashman, dimensionless)")
        ax.set_xticks(ks)
        ax.set_title(f"chosen k = {self.n_clusters}")
        ax.legend(loc="best", fontsize=8)
        return ax

    def as_dict(self) -> dict:
        """Plain types only, so it can live in HyperSpy metadata and .hspy files."""
        return {
            "n_clusters": int(self.n_clusters),
            "k_values": np.asarray(self.k_values, dtype=int),
            "separation": np.asarray(self.separation, dtype=float),
            "worst_pair": np.asarray(self.worst_pair, dtype=int).reshape(-1, 2),
            "min_size": np.asarray(self.min_size, dtype=float),
            "inertia": np.asarray(self.inertia, dtype=float),
            "threshold": float(self.threshold),
            "min_cluster_fraction": float(self.min_cluster_fraction),
            "n_samples": int(self.n_samples),
            "method": self.method,
            "notes": list(self.notes),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, d) -> KChoice:
        """Rebuild from :meth:`as_dict` (also a HyperSpy DictionaryTreeBrowser)."""
        if hasattr(d, "as_dictionary"):
            d = d.as_dictionary()
        return cls(
            n_clusters=int(d["n_clusters"]),
            k_values=np.asarray(d["k_values"], dtype=int),
            separation=np.asarray(d["separation"], dtype=float),
            worst_pair=[tuple(int(v) for v in p) for p in np.asarray(d["worst_pair"])],
            min_size=np.asarray(d["min_size"], dtype=float),
            inertia=np.asarray(d["inertia"], dtype=float),
            threshold=float(d["threshold"]),
            min_cluster_fraction=float(d["min_cluster_fraction"]),
            n_samples=int(d["n_samples"]),
            method=str(d.get("method", cls.method)),
            notes=list(d.get("notes", [])),
        )


def separation_matrix(F, labels, centers) -> np.ndarray:
    """Ashman's D between every pair of clusters, projected on their centre line.

    Parameters
    ----------
    F : numpy.ndarray (n, d)
        Feature rows.
    labels : numpy.ndarray of int (n,)
        Cluster of each row, ``0..k-1`` (negative = ignored).
    centers : numpy.ndarray (k, d)
        Cluster centres.

    Returns
    -------
    numpy.ndarray (k, k)
        ``D[i, j] = sqrt(2) |m_i - m_j| / sqrt(s_i^2 + s_j^2)`` with ``m``, ``s^2`` the
        mean and variance of the projections of each cluster's rows on the unit
        vector from centre ``i`` to centre ``j``; ``inf`` on the diagonal, 0 for a
        pair with fewer than 2 members in either cluster or identical centres.

    References
    ----------
    Ashman, Bird & Zepf, Astron. J. 108, 2348 (1994).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> F = np.r_[rng.normal(0, 1, (200, 2)), rng.normal(10, 1, (200, 2))]
    >>> lab = np.r_[np.zeros(200, int), np.ones(200, int)]
    >>> C = np.array([F[:200].mean(0), F[200:].mean(0)])
    >>> bool(separation_matrix(F, lab, C)[0, 1] > 10)
    True
    """
    F = np.asarray(F, dtype=np.float64)
    labels = np.asarray(labels)
    C = np.asarray(centers, dtype=np.float64)
    k = C.shape[0]
    D = np.full((k, k), np.inf)
    if k < 2:
        return D
    iu, ju = np.triu_indices(k, 1)
    U = C[ju] - C[iu]  # (pairs, d)
    norm = np.linalg.norm(U, axis=1)
    U = U / np.where(norm > 0, norm, 1.0)[:, None]
    with single_thread():
        P = F @ U.T  # (n, pairs): projections on every centre line
    for p, (i, j) in enumerate(zip(iu, ju)):
        a = P[labels == i, p]
        b = P[labels == j, p]
        if norm[p] == 0 or a.size < 2 or b.size < 2:
            d = 0.0
        else:
            spread = np.sqrt(a.var() + b.var())
            d = np.sqrt(2.0) * abs(a.mean() - b.mean()) / spread if spread > 0 else np.inf
        D[i, j] = D[j, i] = d
    return D


def kmeans_sample(F, n_clusters: int, *, n_init: int = 4, random_state=None):
    """k-means (k-means++ seeding, ``n_init`` restarts) of an in-memory sample.

    Returns ``(centers (k, d) float64, labels (n,) int, inertia)``, scikit-learn's
    :class:`~sklearn.cluster.KMeans` underneath.

    Examples
    --------
    >>> F = np.r_[np.zeros((5, 2)), np.ones((5, 2))]
    >>> centers, labels, inertia = kmeans_sample(F, 2, random_state=0)
    >>> inertia
    0.0
    """
    from sklearn.cluster import KMeans

    F = np.asarray(F, dtype=np.float64)
    with single_thread(), warnings.catch_warnings():
        # fewer distinct rows than clusters: reported through the separation (D = 0)
        warnings.filterwarnings("ignore", message=".*distinct clusters.*")
        km = KMeans(int(n_clusters), n_init=int(n_init), random_state=random_state).fit(F)
    return km.cluster_centers_, km.labels_.astype(np.int64), float(km.inertia_)


def choose_n_clusters(
    F,
    max_clusters: int = 8,
    *,
    threshold: float = DEFAULT_SEPARATION,
    min_cluster_fraction: float = 0.005,
    n_init: int = 4,
    random_state=None,
):
    """Choose the number of clusters of a sample of feature rows, with the evidence.

    The largest ``k`` in ``1..max_clusters`` whose k-means partition has every pair of
    clusters separated (Ashman's D >= ``threshold`` on the line between their centres)
    and no cluster smaller than ``min_cluster_fraction`` of the sample (see the module
    docstring for the rule and the measurements behind it). Costs ``max_clusters``
    k-means fits of the sample and ``O(n k^2)`` projections; no pairwise distances.

    Parameters
    ----------
    F : array_like (n, d)
        Feature rows held in memory (a sample of the data: a few thousand rows).
    max_clusters : int
        Largest k tried (capped at n - 1).
    threshold : float
        Minimum Ashman's D for two clusters to count as separated (default 4).
    min_cluster_fraction : float
        Minimum fraction of the sample in every cluster (default 0.005).
    n_init : int
        k-means restarts per k.
    random_state : int or None
        Seed of the k-means seeding.

    Returns
    -------
    (KChoice, dict)
        The choice and ``{k: (centers, labels)}`` of the partitions tried (the
        centres of the chosen k seed the refinement over the whole data).

    References
    ----------
    Ashman, Bird & Zepf, Astron. J. 108, 2348 (1994); Hamerly & Elkan, "Learning the k
    in k-means", NIPS 16 (2003); Kalogeratos & Likas, "Dip-means", NIPS 25 (2012).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> F = np.concatenate([rng.normal(m, 1.0, (300, 3)) for m in (0, 12, 24)])
    >>> choice, fits = choose_n_clusters(F, 6, random_state=0)
    >>> choice.n_clusters
    3
    """
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2 or F.shape[0] < 2:
        raise ValueError(
            f"choose_n_clusters needs a 2-D sample of at least 2 rows, got shape {F.shape}"
        )
    if not np.isfinite(F).all():
        raise ValueError(
            "the sample contains NaN or infinite values; remove those rows first"
        )
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    if not 0 <= min_cluster_fraction < 0.5:
        raise ValueError(
            f"min_cluster_fraction must be in [0, 0.5), got {min_cluster_fraction!r}"
        )
    n = F.shape[0]
    kmax = int(min(max_clusters, n - 1))
    if kmax < 1:
        raise ValueError(f"max_clusters must be at least 1, got {max_clusters!r}")
    ks = np.arange(1, kmax + 1)
    separation = np.full(kmax, np.nan)
    min_size = np.ones(kmax)
    inertia = np.zeros(kmax)
    worst = [(0, 0)] * kmax
    fits = {}
    for i, k in enumerate(ks):
        centers, labels, inertia[i] = kmeans_sample(
            F, int(k), n_init=n_init, random_state=random_state
        )
        fits[int(k)] = (centers, labels)
        sizes = np.bincount(labels, minlength=k)
        min_size[i] = sizes.min() / n
        if k > 1:
            D = separation_matrix(F, labels, centers)
            a, b = np.unravel_index(np.argmin(D), D.shape)
            separation[i] = D[a, b]
            worst[i] = (int(min(a, b)), int(max(a, b)))
    choice = KChoice(
        n_clusters=1,
        k_values=ks,
        separation=separation,
        worst_pair=worst,
        min_size=min_size,
        inertia=inertia,
        threshold=float(threshold),
        min_cluster_fraction=float(min_cluster_fraction),
        n_samples=n,
    )
    valid = choice.valid()
    choice.n_clusters = int(ks[valid].max())
    return choice, fits


# ------------------------------------------------------------- k-means over blocks


def random_row_indices(n_rows: int, size: int, rng) -> np.ndarray:
    """Sorted distinct random row indices (all rows when ``size >= n_rows``).

    ``rng`` is a :class:`numpy.random.RandomState` or ``Generator``.

    Examples
    --------
    >>> random_row_indices(10, 3, np.random.RandomState(0)).size
    3
    """
    n_rows, size = int(n_rows), int(size)
    if size >= n_rows:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, size, replace=False))


@dataclass
class BlockKMeansResult:
    """Result of :func:`kmeans_blocks`.

    Attributes
    ----------
    labels : numpy.ndarray of int (n,)
        Cluster of each row (-1 for rows the transform marked invalid), assigned to
        the centres of the last pass.
    sq_distances : numpy.ndarray float32 (n, k)
        Squared Euclidean distance of each row to each of those centres (NaN rows
        for invalid ones).
    centers : numpy.ndarray (k, d)
        Means of the rows of each cluster in the last pass (a cluster that lost all
        its rows keeps its previous centre).
    counts : numpy.ndarray of int (k,)
        Rows per cluster.
    inertia : float
        Sum of the squared distances of the rows to their centre.
    passes : int
        Passes over the data.
    converged : bool
        True when the last pass moved the centres by less than ``tol``.
    shifts : list of float
        Centre shift of each pass relative to the smallest distance between centres.
    extra_sums : tuple
        The summed outputs of the caller's accumulator in the last pass.
    extra_blocks : list
        Its per-block outputs in the last pass (block order).
    """

    labels: np.ndarray
    sq_distances: np.ndarray
    centers: np.ndarray
    counts: np.ndarray
    inertia: float
    passes: int
    converged: bool
    shifts: list
    extra_sums: tuple = ()
    extra_blocks: list = field(default_factory=list)


class _Identity:
    """The default transform: the rows as float32 features, all valid."""

    def __call__(self, x, start):
        return np.ascontiguousarray(x, dtype=np.float32), None

    def __dask_tokenize__(self):
        return ("nanoml-identity-transform",)


def _assign(F, C32, c_sq):
    """Squared distances (m, k) float32 via |x|^2 - 2 x.c + |c|^2 (BLAS), clipped at 0."""
    d2 = np.einsum("ij,ij->i", F, F)[:, None] - 2.0 * (F @ C32.T) + c_sq[None, :]
    np.maximum(d2, 0.0, out=d2)
    return d2


def _lloyd_kernel(block, start, centers, transform, accumulate, ticker):
    """One block of one Lloyd pass: labels, distances, per-cluster sums."""
    k, d = centers.shape
    C32 = np.ascontiguousarray(centers, dtype=np.float32)
    c_sq = np.einsum("ij,ij->i", C32, C32)
    n = block.shape[0]
    labels = np.empty(n, dtype=np.int32)
    dist = np.empty((n, k), dtype=np.float32)
    counts = np.zeros(k, dtype=np.int64)
    fsum = np.zeros((k, d), dtype=np.float64)
    inertia = np.zeros(1, dtype=np.float64)
    state = accumulate.start(k) if accumulate is not None else None
    for a in range(0, n, _SLICE_ROWS):
        b = min(a + _SLICE_ROWS, n)
        raw = block[a:b]
        F, valid = transform(raw, start + a)
        d2 = _assign(F, C32, c_sq)
        lab = np.argmin(d2, axis=1).astype(np.int32)
        if valid is not None:
            lab[~valid] = -1
            d2[~valid] = np.nan
        labels[a:b] = lab
        dist[a:b] = d2
        ok = np.flatnonzero(lab >= 0)
        counts += np.bincount(lab[ok], minlength=k)
        onehot = np.zeros((k, ok.size), dtype=np.float32)
        onehot[lab[ok], np.arange(ok.size)] = 1.0
        fsum += onehot @ F[ok]  # per-cluster sums by BLAS (float32 slice, float64 total)
        inertia += d2[ok, lab[ok]].sum(dtype=np.float64)
        if state is not None:
            accumulate.update(state, raw, start + a, lab, d2)
    extra_block, extra_sums = accumulate.finish(state) if state is not None else (None, ())
    if ticker is not None:
        ticker.update(1)
    return (labels, dist, extra_block), (counts, fsum, inertia) + tuple(extra_sums)


class _Ticker:
    """A progress bar advanced by the block kernels (local schedulers only)."""

    def __init__(self, bar):
        self.bar = bar

    def update(self, n=1):
        self.bar.update(n)

    def __dask_tokenize__(self):
        return ("nanoml-ticker", id(self))


def _distributed_active() -> bool:
    try:
        from distributed import get_client

        get_client()
        return True
    except (ImportError, ValueError):
        return False


def progress_ticker(bar, blocks: RowBlocks):
    """An object with ``update(n)`` that block kernels call to advance ``bar``.

    None when ``bar`` is None or the blocks run on dask.distributed workers (another
    process cannot draw this process's bar); kernels skip a None ticker.
    """
    if bar is None or (blocks.is_dask and _distributed_active()):
        return None
    return _Ticker(bar)


def kmeans_blocks(
    X,
    centers,
    *,
    transform=None,
    accumulate=None,
    max_passes: int = 5,
    tol: float = 1e-3,
    blocks: RowBlocks | None = None,
    progressbar=None,
) -> BlockKMeansResult:
    """Lloyd iterations of k-means over the row blocks of ``X`` from given centres.

    Every iteration is one pass over the data (numpy blocks on threads, or one dask
    task per row block): each block is transformed slice by slice into feature rows,
    assigned to the nearest centre, and its per-cluster counts and feature sums are
    summed over the blocks in a tree; the new centres are the means. Memory is a few
    slices per block plus ``n x k`` distances; the data are read once per pass. Passes
    stop when the centres move by less than ``tol`` times the smallest distance
    between two centres (or after ``max_passes``); labels and distances refer to the
    centres the last pass used, and ``centers`` are the means of those clusters.

    Parameters
    ----------
    X : numpy.ndarray or dask.array.Array (n, m)
        The raw rows (any real dtype; never modified nor copied whole).
    centers : array_like (k, d)
        Initial centres in feature space (e.g. from :func:`choose_n_clusters` on a
        sample).
    transform : callable, optional
        ``transform(raw_rows, first_row_index) -> (features float32 (m, d), valid
        bool (m,) or None)``; invalid rows get label -1 and are left out of every
        sum. Default: the rows as float32. Give it ``__dask_tokenize__`` (or make it
        a module-level function/dataclass) so dask can name the tasks.
    accumulate : object, optional
        Extra per-cluster statistics gathered in the same passes: ``start(k) ->
        state``, ``update(state, raw_rows, first_row_index, labels, sq_distances)``
        per slice and ``finish(state) -> (per_block, tuple of arrays to sum)``.
    max_passes : int
        Upper bound on the passes over the data (>= 1).
    tol : float
        Relative centre shift that stops the iterations.
    blocks : RowBlocks, optional
        The block runner to use (to count passes together with other passes).
    progressbar : tqdm bar, optional
        Advanced by one per block processed (by a pass's blocks at the end of each pass
        under dask.distributed, whose workers cannot draw this process's bar).

    Returns
    -------
    BlockKMeansResult

    References
    ----------
    Lloyd, IEEE Trans. Inf. Theory 28, 129 (1982); Sculley, "Web-scale k-means
    clustering", WWW 2010 (mini-batches).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (500, 4)), rng.normal(8, 1, (500, 4))]
    >>> res = kmeans_blocks(X, X[[0, 999]])
    >>> np.bincount(res.labels).tolist()
    [500, 500]
    """
    C = np.array(centers, dtype=np.float64)
    if C.ndim != 2 or C.shape[0] < 1:
        raise ValueError(f"centers must be a 2-D array (k, d), got shape {C.shape}")
    if max_passes < 1:
        raise ValueError(f"max_passes must be at least 1, got {max_passes!r}")
    if blocks is None:
        blocks = RowBlocks(X)
    transform = _Identity() if transform is None else transform
    ticker = progress_ticker(progressbar, blocks)
    k = C.shape[0]
    shifts = []
    converged = False
    for _ in range(max_passes):
        per_block, sums = blocks.run(_lloyd_kernel, C, transform, accumulate, ticker)
        if ticker is None and progressbar is not None:  # workers elsewhere: per pass
            progressbar.update(blocks.n_blocks)
        counts, fsum, inertia = sums[0], sums[1], float(sums[2][0])
        new = C.copy()
        filled = counts > 0
        new[filled] = fsum[filled] / counts[filled, None]
        if k > 1:
            gaps = np.linalg.norm(new[:, None] - new[None], axis=-1)
            scale = gaps[~np.eye(k, dtype=bool)].min()
        else:
            scale = np.sqrt(inertia / max(1, int(counts.sum())))
        shift = float(np.linalg.norm(new - C, axis=1).max() / scale) if scale > 0 else 0.0
        shifts.append(shift)
        C = new
        if shift <= tol:
            converged = True
            break
    labels = np.concatenate([p[0] for p in per_block])
    dist = np.concatenate([p[1] for p in per_block])
    return BlockKMeansResult(
        labels=labels,
        sq_distances=dist,
        centers=C,
        counts=np.asarray(counts, dtype=np.int64),
        inertia=inertia,
        passes=len(shifts),
        converged=converged,
        shifts=shifts,
        extra_sums=tuple(sums[3:]),
        extra_blocks=[p[2] for p in per_block],
    )
