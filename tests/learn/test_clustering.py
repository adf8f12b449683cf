"""k-means over row blocks and the choice of k (hyperspy_nanoml.learn.clustering)."""

import doctest

import dask.array as da
import numpy as np
import pytest

from hyperspy_nanoml.learn import clustering
from hyperspy_nanoml.learn.blocks import RowBlocks
from hyperspy_nanoml.learn.clustering import (
    KChoice,
    choose_n_clusters,
    kmeans_blocks,
    random_row_indices,
    separation_matrix,
)


def blobs(centres, n=300, sigma=1.0, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c, sigma, (n, d)) for c in centres])
    y = np.repeat(np.arange(len(centres)), n)
    return X, y


# --------------------------------------------------------------- separation


def test_separation_of_one_gaussian_cut_in_two_is_about_2_65():
    """k-means cuts N(0, 1) at 0: halves at +-0.798 with sd 0.603 -> D = 2.65."""
    x = np.random.default_rng(1).normal(size=(40000, 1))
    labels = (x[:, 0] > 0).astype(int)
    C = np.array([x[labels == 0].mean(0), x[labels == 1].mean(0)])
    d = separation_matrix(x, labels, C)[0, 1]
    assert d == pytest.approx(2.65, abs=0.05)


def test_separation_of_a_uniform_cut_in_two_is_2_sqrt3():
    x = np.random.default_rng(2).uniform(size=(40000, 1))
    labels = (x[:, 0] > 0.5).astype(int)
    C = np.array([x[labels == 0].mean(0), x[labels == 1].mean(0)])
    assert separation_matrix(x, labels, C)[0, 1] == pytest.approx(2 * np.sqrt(3), abs=0.05)


def test_separation_of_two_distant_groups_is_their_distance_in_sd():
    # two groups 10 sd apart: D = sqrt(2) * 10 / sqrt(2) = 10
    X, y = blobs([0, 10], n=5000, sigma=1.0, d=1, seed=3)
    C = np.array([X[y == 0].mean(0), X[y == 1].mean(0)])
    D = separation_matrix(X, y, C)
    assert D[0, 1] == pytest.approx(10, rel=0.03)
    assert D[0, 1] == D[1, 0] and np.isinf(D[0, 0])


# ----------------------------------------------------------------- choice of k


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_choice_finds_the_number_of_separated_groups(k):
    X, _ = blobs([12.0 * i for i in range(k)], seed=k)
    choice, fits = choose_n_clusters(X, 8, random_state=0)
    assert choice.n_clusters == k
    assert set(fits) == set(range(1, 9))
    assert choice.valid()[k - 1]
    if k < 8:
        assert not choice.valid()[k]  # one more cluster cuts a group in two


def test_choice_does_not_split_an_elongated_group():
    """A long uniform bar (where gap-type criteria keep splitting) is one cluster."""
    rng = np.random.default_rng(4)
    bar = np.c_[rng.uniform(0, 100, 3000), rng.normal(0, 1, (3000, 3))]
    choice, _ = choose_n_clusters(bar, 6, random_state=0)
    assert choice.n_clusters == 1
    assert np.nanmax(choice.separation) < 4


def test_choice_merges_groups_that_overlap():
    X, _ = blobs([0.0, 1.0], seed=5)  # centres 2 sd apart (4-D): one unimodal cloud
    choice, _ = choose_n_clusters(X, 4, random_state=0)
    assert choice.n_clusters == 1


def test_choice_ignores_a_tiny_group_below_min_cluster_fraction():
    X, _ = blobs([0.0, 15.0], n=1000, seed=6)
    X = np.r_[X, np.full((3, 4), 60.0) + np.random.default_rng(0).normal(0, 0.1, (3, 4))]
    choice, _ = choose_n_clusters(X, 5, random_state=0, min_cluster_fraction=0.005)
    assert choice.n_clusters == 2
    assert choice.min_size[2] < 0.005
    choice, _ = choose_n_clusters(X, 5, random_state=0, min_cluster_fraction=0.0)
    assert choice.n_clusters == 3


def test_choice_is_reproducible_and_explained():
    X, _ = blobs([0, 12, 24], seed=7)
    a, _ = choose_n_clusters(X, 6, random_state=3)
    b, _ = choose_n_clusters(X, 6, random_state=3)
    np.testing.assert_array_equal(a.separation, b.separation)
    assert "k = 3" in a.reason and "k = 4" in a.reason
    back = KChoice.from_dict(a.as_dict())
    assert back.n_clusters == 3
    np.testing.assert_array_equal(back.separation, a.separation)
    assert back.reason == a.reason


def test_choice_plot_has_labelled_axes():
    import matplotlib.pyplot as plt

    X, _ = blobs([0, 12], seed=8)
    choice, _ = choose_n_clusters(X, 4, random_state=0)
    ax = choice.plot()
    assert "k" in ax.get_xlabel() and "D" in ax.get_ylabel()
    plt.close("all")


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((1, 3)), "at least 2 rows"),
        (np.array([[0.0, np.nan], [1.0, 2.0], [3, 4]]), "NaN"),
    ],
)
def test_choice_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        choose_n_clusters(bad)


# -------------------------------------------------------- k-means over blocks


def test_kmeans_blocks_numpy_and_dask_agree_and_count_passes():
    X, y = blobs([0, 8, 16], n=3000, seed=9)
    X = X.astype(np.float32)
    init = X[[0, 3000, 6000]] + 1.0
    a = kmeans_blocks(X, init, max_passes=10)
    blocks = RowBlocks(da.from_array(X, chunks=(1000, 4)))
    b = kmeans_blocks(
        da.from_array(X, chunks=(1000, 4)), init, max_passes=10, blocks=blocks
    )
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_allclose(a.centers, b.centers, rtol=1e-5, atol=1e-5)
    assert b.passes == blocks.passes and 2 <= b.passes <= 10 and b.converged
    # labels are the true groups, centres their means
    assert (a.labels == y).all()
    for j in range(3):
        np.testing.assert_allclose(a.centers[j], X[y == j].mean(0), rtol=1e-4, atol=1e-4)
    assert a.counts.tolist() == [3000, 3000, 3000]
    # squared distances are to the centres the last pass used
    assert (np.argmin(a.sq_distances, axis=1) == a.labels).all()


def test_kmeans_blocks_stops_at_max_passes():
    X, _ = blobs([0, 3], n=2000, seed=10)
    res = kmeans_blocks(X, X[:2], max_passes=1)
    assert res.passes == 1 and not res.converged


class _DropNegatives:
    """A transform marking rows whose first value is negative as invalid."""

    def __call__(self, x, start):
        x = np.asarray(x, dtype=np.float32)
        return x, x[:, 0] >= -50

    def __dask_tokenize__(self):
        return ("drop-negatives",)


class _SumRows:
    """An accumulator: per-cluster sum of the raw rows and the first row indices seen."""

    def start(self, k):
        return {"s": np.zeros((k, 4)), "starts": []}

    def update(self, st, raw, start, labels, d2):
        ok = labels >= 0
        np.add.at(st["s"], labels[ok], np.asarray(raw)[ok])
        st["starts"].append(start)

    def finish(self, st):
        return st["starts"], (st["s"],)


def test_kmeans_blocks_invalid_rows_and_accumulator():
    X, y = blobs([0, 10], n=1000, seed=11)
    X[5] = -100.0  # invalid
    res = kmeans_blocks(
        da.from_array(X, chunks=(500, 4)),
        X[[0, 1500]],
        transform=_DropNegatives(),
        accumulate=_SumRows(),
    )
    assert res.labels[5] == -1 and np.isnan(res.sq_distances[5]).all()
    assert (res.labels[np.arange(2000) != 5] == y[np.arange(2000) != 5]).all()
    (sums,) = res.extra_sums
    keep = np.arange(2000) != 5
    np.testing.assert_allclose(sums[0], X[keep & (y == 0)].sum(0))
    np.testing.assert_allclose(sums[1], X[y == 1].sum(0))
    assert [s[0] for s in res.extra_blocks] == [0, 500, 1000, 1500]


def test_kmeans_blocks_progress_bar_counts_blocks():
    class Bar:
        n = 0

        def update(self, k):
            self.n += k

    X, _ = blobs([0, 10], n=1000, seed=12)
    bar = Bar()
    res = kmeans_blocks(da.from_array(X, chunks=(500, 4)), X[[0, 1500]], progressbar=bar)
    assert bar.n == 4 * res.passes


def test_kmeans_blocks_bad_centres():
    with pytest.raises(ValueError, match="2-D"):
        kmeans_blocks(np.zeros((10, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="max_passes"):
        kmeans_blocks(np.zeros((10, 2)), np.zeros((1, 2)), max_passes=0)


def test_random_row_indices():
    rng = np.random.RandomState(0)
    idx = random_row_indices(1000, 100, rng)
    assert idx.size == 100 and np.all(np.diff(idx) > 0) and idx.max() < 1000
    assert random_row_indices(10, 100, rng).tolist() == list(range(10))


def test_docstring_examples():
    result = doctest.testmod(clustering, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
