"""The NMF engine: accuracy against the truth and scikit-learn, laziness, checks."""

import dask
import dask.array as da
import numpy as np
import pytest
from nanoml_test_helpers import (
    CountingArray,
    make_dataset,
    matched_similarity,
    vacuum_and_beam,
)

from hyperspy_nanoml.learn.nmf import NMF, NMFResult, nmf, nnls_loadings


def rel_error(X, W, H):
    X = np.asarray(X, dtype=np.float64)
    return np.linalg.norm(X - W.astype(np.float64) @ H) / np.linalg.norm(X)


def test_recovers_true_factors(spot_matrix):
    X, patterns, maps = spot_matrix
    res = nmf(X, 3, random_state=0)
    assert isinstance(res, NMFResult)
    assert res.W.shape == (X.shape[0], 3) and res.H.shape == (3, X.shape[1])
    assert res.W.dtype == np.float32 and res.H.dtype == np.float32
    assert (res.W >= 0).all() and (res.H >= 0).all()
    assert res.converged
    assert np.allclose(res.H.max(axis=1), 1.0)
    sims_h, _ = matched_similarity(res.H, patterns)
    sims_w, _ = matched_similarity(res.W.T, maps)
    assert sims_h.min() > 0.995, sims_h
    assert sims_w.min() > 0.995, sims_w
    # reported error is the true relative Frobenius error
    assert res.reconstruction_error == pytest.approx(rel_error(X, res.W, res.H), rel=1e-5)
    # components ordered by decreasing energy
    assert np.all(np.diff(res.explained_energy) <= 0)


def test_uncompressed_hals_also_recovers(spot_matrix):
    X, patterns, _ = spot_matrix
    res = nmf(X, 3, random_state=0, compression=False)
    assert not res.compressed and res.n_iter_compressed == 0
    assert matched_similarity(res.H, patterns)[0].min() > 0.99


def test_reproducible_with_random_state(spot_matrix):
    X = spot_matrix[0]
    a = nmf(X, 3, random_state=7)
    b = nmf(X, 3, random_state=7)
    np.testing.assert_array_equal(a.W, b.W)
    np.testing.assert_array_equal(a.H, b.H)
    c = nmf(X, 3, random_state=np.random.RandomState(7))
    np.testing.assert_array_equal(a.H, c.H)


def test_at_least_as_accurate_as_sklearn():
    from sklearn.decomposition import NMF as SkNMF

    for seed, k in ((0, 3), (2, 4)):
        data, _, _ = make_dataset(n_phases=k, seed=seed)
        X = data.reshape(-1, data.shape[-2] * data.shape[-1])
        sk = SkNMF(k, init="nndsvda", random_state=0)
        W = sk.fit_transform(X)
        err_sk = rel_error(X, W, sk.components_)
        ours = nmf(X, k, random_state=0)
        # as accurate within 0.001 % (both reach the same minimum to ~1e-6)
        assert ours.reconstruction_error <= err_sk * (1 + 1e-5), (ours, err_sk)


def test_local_fft_shape():
    """The local-FFT workflow's shape: ~1000 windows × 8320 features, k = 4."""
    rng = np.random.default_rng(3)
    n, m, k = 961, 8320, 4
    H = rng.gamma(0.3, 1.0, (k, m))
    W = rng.dirichlet(np.full(k, 0.5), n)
    X = (50 * W @ H + rng.gamma(2.0, 1.0, (n, m))).astype(np.float32)
    res = nmf(X, k, random_state=0)
    assert res.converged
    assert matched_similarity(res.H, H)[0].min() > 0.99
    assert matched_similarity(res.W.T, W.T)[0].min() > 0.98


@pytest.mark.parametrize("chunks", [(400, -1), (333, 256), (1600, -1)])
def test_lazy_equals_eager(spot_matrix, chunks):
    X = spot_matrix[0]
    eager = nmf(X, 3, random_state=0)
    lazy = nmf(da.from_array(X, chunks=chunks), 3, random_state=0)
    assert lazy.passes <= 4 and lazy.converged
    np.testing.assert_allclose(lazy.H, eager.H, atol=1e-4)
    np.testing.assert_allclose(lazy.W, eager.W, rtol=0, atol=1e-4 * eager.W.max())
    assert lazy.reconstruction_error == pytest.approx(eager.reconstruction_error, rel=1e-5)


def test_lazy_reads_blocks_only_and_counts_passes(spot_matrix):
    X = spot_matrix[0]
    counting = CountingArray(X)
    Xd = da.from_array(counting, chunks=(200, -1), asarray=False)
    with dask.config.set(scheduler="threads"):
        res = nmf(Xd, 3, random_state=0, hold_in_memory=False)
    assert counting.largest_read <= 200  # never the whole array
    assert counting.rows_read == res.passes * X.shape[0] == res.reads * X.shape[0]
    assert res.passes <= 4


def test_small_lazy_data_are_read_once_and_fit_as_in_memory(spot_matrix):
    """hold_in_memory="auto": one read, then the numpy path's budget and result."""
    X = spot_matrix[0]
    counting = CountingArray(X)
    Xd = da.from_array(counting, chunks=(200, -1), asarray=False)
    eager = nmf(X, 3, random_state=0)
    res = nmf(Xd, 3, random_state=0)
    assert res.reads == 1 and counting.rows_read == X.shape[0]
    assert counting.largest_read <= 200  # read block by block
    assert res.passes == eager.passes and res.converged
    np.testing.assert_allclose(res.H, eager.H, atol=1e-4)
    assert res.reconstruction_error == pytest.approx(eager.reconstruction_error, rel=1e-5)
    assert "held in memory" in res.method
    with pytest.raises(ValueError, match="hold must be"):
        nmf(Xd, 3, hold_in_memory="yes")


def test_integer_dask_data_converted_blockwise(spot_matrix):
    X = spot_matrix[0]
    Xi = da.from_array(X.astype(np.uint16), chunks=(400, -1))
    a = nmf(Xi, 3, random_state=0)
    b = nmf(da.from_array(X, chunks=(400, -1)), 3, random_state=0)
    np.testing.assert_allclose(a.H, b.H, atol=1e-6)


def test_more_passes_when_allowed(spot_matrix):
    Xd = da.from_array(spot_matrix[0], chunks=(400, -1))
    res = nmf(Xd, 3, random_state=0, max_passes=6, tol=0.0)
    assert res.passes == 6 and res.n_iter_exact == 4
    assert np.all(
        np.diff(res.error_history) <= 1e-7
    )  # exact passes never increase the error


def test_input_never_modified(spot_matrix):
    X = spot_matrix[0].copy()
    X64 = X.astype(np.float64)
    before = X64.copy()
    nmf(X64, 3, random_state=0)
    np.testing.assert_array_equal(X64, before)
    np.testing.assert_array_equal(X, spot_matrix[0])


@pytest.mark.parametrize(
    "X, k, error, match",
    [
        (np.array([[1.0, -2.0], [-3.0, 4.0]]), 1, ValueError, r"2 negative values.*clip"),
        (np.array([[1.0, np.nan], [np.inf, 4.0]]), 1, ValueError, r"2 NaN or infinite"),
        (np.ones((5, 4)), 5, ValueError, r"larger than the rank bound.*min\(n_samples"),
        (np.ones((5, 4)), 0, ValueError, r"at least 1"),
        (np.ones((5, 4)), 2.0, TypeError, r"must be an integer"),
        (np.ones(5), 1, ValueError, r"must be 2-D"),
        (np.ones((2, 3, 4)), 1, ValueError, r"must be 2-D"),
        (np.ones((0, 4)), 1, ValueError, r"empty"),
        (np.ones((3, 4), dtype=complex), 1, TypeError, r"real numbers"),
        (np.zeros((3, 4)), 1, ValueError, r"all zeros"),
    ],
)
def test_bad_input_messages(X, k, error, match):
    with pytest.raises(error, match=match):
        nmf(X, k)


def test_negative_dask_data_raises_after_first_pass():
    X = np.abs(np.random.default_rng(0).normal(size=(100, 20)))
    X[3, 4] = -1.0
    with pytest.raises(ValueError, match="1 negative values"):
        nmf(da.from_array(X, chunks=(30, -1)), 2)


def test_rank_deficient_warns():
    rng = np.random.default_rng(0)
    X = rng.random((60, 2)) @ rng.random((2, 30))
    with pytest.warns(UserWarning, match="numerical rank"):
        res = nmf(X, 4, random_state=0)
    assert res.reconstruction_error < 1e-3


def test_custom_and_random_init(spot_matrix):
    X, patterns, _ = spot_matrix
    ref = nmf(X, 3, random_state=0)
    res = nmf(X, 3, init=(ref.W, ref.H), random_state=0)
    assert matched_similarity(res.H, ref.H)[0].min() > 0.9999
    rnd = nmf(X, 3, init="random", random_state=1)
    assert matched_similarity(rnd.H, patterns)[0].min() > 0.99
    with pytest.raises(ValueError, match="init="):
        nmf(X, 3, init="svd")
    with pytest.raises(ValueError, match="shapes"):
        nmf(X, 3, init=(ref.W[:10], ref.H))


def test_estimator_sklearn_api(spot_matrix):
    from sklearn.base import clone

    X, patterns, _ = spot_matrix
    est = NMF(n_components=3, random_state=0)
    assert clone(est).get_params() == est.get_params()
    assert est.fit(X) is est
    assert est.components_.shape == (3, X.shape[1])
    assert est.n_iter_ > 0 and est.n_components_ == 3
    W = est.fit_transform(X)
    assert est.reconstruction_err_ == pytest.approx(
        rel_error(X, W, est.components_) * np.linalg.norm(X.astype(np.float64)), rel=1e-5
    )
    W2 = est.transform(X)
    assert matched_similarity(W2.T, W.T)[0].min() > 0.9999
    assert matched_similarity(est.components_, patterns)[0].min() > 0.995


def test_nnls_loadings_lazy_equals_eager(spot_matrix):
    X = spot_matrix[0]
    H = nmf(X, 3, random_state=0).H
    a = nnls_loadings(X, H)
    b = nnls_loadings(da.from_array(X, chunks=(300, -1)), H)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="features"):
        nnls_loadings(X[:, :10], H)


def test_hyperspy_decomposition_accepts_estimator(spot_data):
    import hyperspy.api as hs

    data, patterns, _ = spot_data
    s = hs.signals.Signal2D(data)
    s.decomposition(algorithm=NMF(n_components=3, random_state=0), print_info=False)
    factors = s.learning_results.factors
    assert factors.shape == (data.shape[-1] * data.shape[-2], 3)
    assert matched_similarity(factors.T, patterns)[0].min() > 0.995
    assert s.get_decomposition_loadings().data.shape == (3, 40, 40)


@pytest.mark.parametrize("lazy", [False, True])
def test_row_mask_equals_gathered_rows(lazy):
    """Rows skipped inside the passes: the same as fitting the gathered rows."""
    X, column_mask, row_mask, _ = vacuum_and_beam()
    Xin = da.from_array(X, chunks=(700, -1)) if lazy else X
    a = nmf(
        Xin,
        3,
        normalize_poissonian_noise=True,
        column_mask=column_mask,
        row_mask=row_mask,
        random_state=0,
    )
    b = nmf(
        X[~row_mask],
        3,
        normalize_poissonian_noise=True,
        column_mask=column_mask,
        random_state=0,
        max_passes=a.passes,
    )
    assert a.W.shape == (int((~row_mask).sum()), 3)
    np.testing.assert_array_equal(a.row_mask, row_mask)
    np.testing.assert_allclose(a.H, b.H, atol=1e-4)
    np.testing.assert_allclose(a.W, b.W, rtol=1e-3, atol=1e-3 * b.W.max())
    with pytest.raises(ValueError, match="excludes every row"):
        nmf(X, 3, row_mask=np.ones(X.shape[0], bool))
    with pytest.raises(ValueError, match="row_mask has"):
        nmf(X, 3, row_mask=row_mask[:-1])


def test_masks_from_first_pass_match_given_masks():
    """Masks decided from the first pass (beam = bright columns of the mean, vacuum =
    rows with no counts off the beam): the same masks, the same optimum, no pass of
    their own, the data read by blocks only."""
    from nanoml_test_helpers import CountingArray

    from hyperspy_nanoml.learn.nmf import FirstPassMasks

    X, column_mask, row_mask, H_true = vacuum_and_beam()
    n = X.shape[0]
    given = nmf(
        da.from_array(X, chunks=(700, -1)),
        "auto",
        normalize_poissonian_noise=True,
        column_mask=column_mask,
        row_mask=row_mask,
        random_state=0,
        hold_in_memory=False,
    )
    seen = {}

    def statistics(block):  # counts off the 8 brightest columns of the scan
        return np.asarray(block[:, 8:], dtype=np.float32).sum(axis=1, keepdims=True)

    def decide(column_sums, stats):
        seen["shape"] = stats.shape
        return column_sums / n > 100, stats[:, 0] == 0

    counting = CountingArray(X)
    Xd = da.from_array(counting, chunks=(700, -1), asarray=False)
    res = nmf(
        Xd,
        "auto",
        normalize_poissonian_noise=True,
        random_state=0,
        masks_from_first_pass=FirstPassMasks(statistics, decide),
        hold_in_memory=False,
    )
    assert seen["shape"] == (n, 1)
    np.testing.assert_array_equal(res.column_mask, column_mask)
    np.testing.assert_array_equal(res.row_mask, row_mask)
    assert res.passes == given.passes == 4 and counting.rows_read == 4 * n
    assert counting.largest_read <= 700
    assert res.n_components == given.n_components == 3
    assert res.W.shape == given.W.shape and (res.H[:, column_mask] == 0).all()
    assert res.reconstruction_error == pytest.approx(given.reconstruction_error, rel=1e-4)
    assert matched_similarity(res.H, given.H)[0].min() > 0.9999
    assert matched_similarity(res.H[:, 8:], H_true[:, 8:])[0].min() > 0.99
    with pytest.raises(ValueError, match="not both"):
        nmf(
            X,
            3,
            column_mask=column_mask,
            masks_from_first_pass=FirstPassMasks(statistics, decide),
        )
