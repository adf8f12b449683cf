"""Bad input, tried as a new user would: every entry point fails up front and clearly.

One test per finding of the input sweep of issue 6 (item 5), plus the seed record and
the convergence warning.
"""

import warnings

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import hyperspy_nanoml  # noqa: F401  (attaches nmf_decomposition)
from hyperspy_nanoml.learn.decomposition import nmf_result
from hyperspy_nanoml.learn.n_components import choose_n_components
from hyperspy_nanoml.learn.nmf import NMF, nmf
from hyperspy_nanoml.learn.verification import match_components, verify_nmf


def _mixture(n=120, m=48, k=3, seed=0, scale=50.0):
    rng = np.random.default_rng(seed)
    return rng.poisson(scale * rng.random((n, k)) @ rng.random((k, m))).astype(np.float32)


# ------------------------------------------------------------ degenerate data


@pytest.mark.parametrize(
    "data",
    [
        np.full((8, 8, 16, 16), 3.0, np.float32),  # constant
        np.full((10, 12, 8, 8), 7.0),  # constant, another shape
        np.tile(np.random.default_rng(0).random(64), (50, 1)),  # identical rows
    ],
)
@pytest.mark.parametrize("poisson", [False, True])
def test_constant_or_identical_rows_give_finite_factors(data, poisson):
    s = hs.signals.Signal2D(data) if data.ndim == 4 else hs.signals.Signal1D(data)
    with pytest.warns(UserWarning, match="numerical rank below n_components=3"):
        s.nmf_decomposition(
            3, normalize_poissonian_noise=poisson, random_state=0, print_info=False
        )
        res = nmf_result(s)
    lr = s.learning_results
    assert np.isfinite(lr.factors).all() and np.isfinite(lr.loadings).all()
    assert res.converged and res.reconstruction_error < 1e-5  # rank 1: an exact fit
    model = s.get_decomposition_model()
    np.testing.assert_allclose(model.data, data, rtol=0, atol=1e-4 * data.max())


def test_auto_on_constant_data_says_use_one_component():
    s = hs.signals.Signal1D(np.full((30, 20), 2.0))
    with pytest.raises(ValueError, match="n_components=1"):
        s.nmf_decomposition("auto", print_info=False)


def test_bad_init_and_budgets():
    X = _mixture()
    ref = nmf(X, 3, random_state=0)
    W = ref.W.copy()
    W[0, 0] = np.nan
    with pytest.raises(ValueError, match="init=.*NaN"):
        nmf(X, 3, init=(W, ref.H))
    with pytest.raises(ValueError, match="max_passes >= 3"):
        nmf(X, 3, max_passes=1)
    with pytest.raises(ValueError, match="max_passes >= 2"):
        nmf(X, 3, init="random", compression=False, max_passes=1)
    with pytest.raises(ValueError, match="max_iter must be at least 1"):
        nmf(X, 3, max_iter=0)
    with pytest.raises(ValueError, match="tol"):
        nmf(X, 3, tol=-1)
    with pytest.raises(ValueError, match="integer"):
        nmf(X, "auto", init=(ref.W, ref.H))


# ------------------------------------------------------- n_components="auto"


@pytest.mark.parametrize(
    "bad, match",
    [("inf", "NaN or infinite"), ("nan_rows", "NaN or infinite"), ("zeros", "all zeros")],
)
@pytest.mark.parametrize("lazy", [False, True])
def test_auto_refuses_bad_values(bad, match, lazy):
    X = _mixture()
    if bad == "inf":
        X[3, 4] = np.inf
    elif bad == "nan_rows":
        X[10:14] = np.nan  # not silently dropped as "faint samples"
    else:
        X[:] = 0
    s = hs.signals.Signal1D(X)
    if lazy:
        s = s.as_lazy()
    with pytest.raises(ValueError, match=match):
        s.nmf_decomposition("auto", print_info=False)
    with pytest.raises(ValueError, match=match):
        choose_n_components(da.from_array(X, chunks=(40, -1)) if lazy else X)


def test_choose_n_components_input():
    X = _mixture()
    assert choose_n_components(X.tolist()).n_components == 3  # a list is an array
    with pytest.raises(TypeError, match="complex"):
        choose_n_components(X.astype(complex))
    with pytest.raises(TypeError, match="integer"):
        choose_n_components(X, max_components=2.5)


# ------------------------------------------------------------ dtypes, sparse


def test_complex_signal_refused_up_front():
    s = hs.signals.Signal1D(_mixture().astype(np.complex64))
    mask = np.zeros(48, bool)
    mask[:4] = True
    for kw in ({"signal_mask": mask}, {"normalize_poissonian_noise": True}, {}):
        with pytest.raises(TypeError, match="complex"):
            s.nmf_decomposition(3, print_info=False, **kw)
    with pytest.raises(TypeError, match="complex"):
        nmf(_mixture().astype(complex), 3, normalize_poissonian_noise=True)


def test_sparse_refused_with_the_way_out():
    import scipy.sparse

    X = scipy.sparse.csr_matrix(_mixture())
    with pytest.raises(TypeError, match=r"toarray\(\)"):
        nmf(X, 3)
    with pytest.raises(TypeError, match=r"toarray\(\)"):
        choose_n_components(X)


# ------------------------------------------------------------ verification


@pytest.fixture
def decomposed():
    s = hs.signals.Signal1D(_mixture(n=100, m=40))
    s.nmf_decomposition(3, random_state=0, print_info=False)
    return s


def test_verify_refuses_svd_results():
    s = hs.signals.Signal1D(_mixture(n=100, m=40))
    s.decomposition(print_info=False)  # SVD: negative factors, centre None
    with pytest.raises(ValueError, match="not an NMF"):
        verify_nmf(s, n_restarts=1)


def test_verify_after_crop_and_bad_restarts(decomposed):
    with pytest.raises(ValueError, match="n_restarts must be at least 1"):
        verify_nmf(decomposed, n_restarts=0)
    decomposed.crop(0, 0, 50)
    with pytest.raises(ValueError, match="cropped"):
        verify_nmf(decomposed, n_restarts=1)


def test_match_components_unequal_counts():
    rng = np.random.default_rng(0)
    A, B = rng.random((3, 20)), rng.random((2, 20))
    with pytest.raises(ValueError, match="cannot match 3 reference components to only 2"):
        match_components(A, B)
    with pytest.raises(ValueError, match="features"):
        match_components(A, rng.random((3, 21)))
    sims, index = match_components(B, A)  # fewer references than candidates is fine
    assert sims.shape == (2,) and len(set(index.tolist())) == 2 and index.max() < 3


# ------------------------------------------------------------------ seeds


def test_seeds_recorded_and_repeatable():
    X = _mixture()
    s = hs.signals.Signal1D(X)
    s.nmf_decomposition(3, random_state=np.int64(5), print_info=False)
    a = nmf_result(s)
    assert s.metadata.Processing.nmf_decomposition.random_state == 5
    assert s.learning_results.nmf_info["random_state"] == 5
    b = nmf(X, 3, random_state=5)
    np.testing.assert_array_equal(a.H, b.H)
    # a Generator is accepted; the seed drawn from it is recorded and repeats the run
    g = nmf(X, 3, random_state=np.random.default_rng(1))
    assert isinstance(g.random_state, int)
    np.testing.assert_array_equal(nmf(X, 3, random_state=g.random_state).H, g.H)
    # None: a seed is drawn and recorded
    s.nmf_decomposition(3, random_state=None, print_info=False)
    seed = s.metadata.Processing.nmf_decomposition.random_state
    assert isinstance(seed, int)
    again = hs.signals.Signal1D(X)
    again.nmf_decomposition(3, random_state=seed, print_info=False)
    np.testing.assert_array_equal(
        again.learning_results.factors, s.learning_results.factors
    )
    with pytest.raises(TypeError, match="ambiguous"):
        nmf(X, 3, random_state=True)
    with pytest.raises(TypeError, match="random_state"):
        nmf(X, 3, random_state="seed")
    est = NMF(3, random_state=np.random.default_rng(2)).fit(X)
    assert isinstance(est.random_state_, int)


# ------------------------------------------------------- convergence, passes


def test_convergence_warning_when_the_budget_ends():
    X = da.from_array(_mixture(n=400), chunks=(100, -1))
    with pytest.warns(ConvergenceWarning, match="max_passes=3"):
        res = nmf(X, 3, random_state=0, max_passes=3, tol=0.0)
    assert not res.converged and res.passes == 3


def test_noise_free_data_stop_early():
    rng = np.random.default_rng(0)
    X = (rng.random((400, 3)) @ rng.random((3, 256))).astype(np.float32)  # 20 x 20 scan
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        eager = nmf(X, 3, random_state=0)
        lazy = nmf(da.from_array(X, chunks=(100, -1)), 3, random_state=0, max_passes=1000)
    # the relative-change criterion and the caps keep the passes few (459 before)
    assert eager.passes <= 10 and lazy.passes <= 10
    assert eager.reconstruction_error < 1e-3 and lazy.reconstruction_error < 1e-3


def test_metadata_record_is_documented_keys(decomposed):
    record = decomposed.metadata.Processing.nmf_decomposition.as_dictionary()
    expected = {
        "algorithm",
        "n_components",
        "n_components_method",
        "normalize_poissonian_noise",
        "navigation_mask",
        "signal_mask",
        "random_state",
        "relative_reconstruction_error",
        "converged",
        "passes_over_data",
        "reads_of_data",
        "iterations",
        "lazy",
    }
    assert set(record) == expected
    from hyperspy_nanoml.learn.decomposition import nmf_decomposition

    for key in ("metadata.Processing.nmf_decomposition", "seed", "passes over the data"):
        assert key in nmf_decomposition.__doc__
