"""nmf_decomposition on HyperSpy signals: learning_results, lazy data, masks, Poisson."""

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from nanoml_test_helpers import CountingArray, matched_similarity

import hyperspy_nanoml
from hyperspy_nanoml.learn.decomposition import (
    component_choice_from,
    nmf_decomposition,
    nmf_result,
)
from hyperspy_nanoml.learn.nmf import nmf
from hyperspy_nanoml.learn.signal_matrix import unfold_data


@pytest.fixture
def signal(spot_data):
    s = hs.signals.Signal2D(spot_data[0].copy())
    for ax, units in zip(s.axes_manager._axes, ["nm", "nm", "1/nm", "1/nm"], strict=True):
        ax.scale = 0.5
        ax.units = units
    return s


def test_method_is_attached_and_public():
    assert hs.signals.BaseSignal.nmf_decomposition is not None
    assert hyperspy_nanoml.nmf_decomposition is nmf_decomposition


def test_returns_none_and_the_engine_result_stays_reachable(signal):
    """Like HyperSpy's decomposition(): None back, results in learning_results;
    the engine's NMFResult through nmf_result(signal)."""
    fresh = signal.deepcopy()
    with pytest.raises(ValueError, match="run s.nmf_decomposition"):
        nmf_result(fresh)
    assert signal.nmf_decomposition(3, random_state=0, print_info=False) is None
    res = nmf_result(signal)
    lr = signal.learning_results
    np.testing.assert_allclose(lr.factors, res.H.T, rtol=1e-6)
    assert lr.nmf_info["passes"] == res.passes
    with pytest.raises(ValueError, match="not saved"):  # copies do not carry it
        nmf_result(signal.deepcopy())


def test_learning_results_like_decomposition(signal, spot_data):
    _, patterns, maps = spot_data
    signal.nmf_decomposition(3, random_state=0, print_info=False)
    res = nmf_result(signal)
    lr = signal.learning_results
    assert lr.factors.shape == (32 * 32, 3)
    assert lr.loadings.shape == (40 * 40, 3)
    assert lr.output_dimension == 3
    assert lr.centre is None and lr.mean is None
    assert lr.poissonian_noise_normalized is False
    assert lr.unfolded is True and lr.original_shape == (40, 40, 32, 32)
    assert lr.navigation_mask is None and lr.signal_mask is None
    np.testing.assert_allclose(np.nanmax(lr.factors, axis=0), 1.0, rtol=1e-6)
    assert np.all(np.diff(lr.explained_variance) <= 0)
    assert np.all(np.diff(lr.explained_variance_ratio) <= 0)
    assert 0.95 < lr.explained_variance_ratio.sum() < 1.2
    assert matched_similarity(lr.factors.T, patterns)[0].min() > 0.995
    assert matched_similarity(lr.loadings.T, maps)[0].min() > 0.995
    # HyperSpy's own tools work on the result
    loadings = signal.get_decomposition_loadings()
    factors = signal.get_decomposition_factors()
    assert loadings.data.shape == (3, 40, 40)
    assert loadings.axes_manager.signal_axes[0].units == "nm"
    assert factors.data.shape == (3, 32, 32)
    assert factors.axes_manager.signal_axes[0].scale == 0.5
    model = signal.get_decomposition_model()
    err = np.linalg.norm(model.data - signal.data) / np.linalg.norm(signal.data)
    assert err == pytest.approx(res.reconstruction_error, rel=1e-4)
    signal.plot_decomposition_results()
    signal.plot_scree_plot()
    record = signal.metadata.Processing.nmf_decomposition
    assert record.n_components == 3 and record.passes_over_data == res.passes


def test_reproducible(signal):
    signal.nmf_decomposition(3, random_state=1, print_info=False)
    a = signal.learning_results.factors.copy()
    signal.nmf_decomposition(3, random_state=1, print_info=False)
    np.testing.assert_array_equal(a, signal.learning_results.factors)


@pytest.mark.parametrize("hold", ["auto", False])
def test_lazy_equals_eager_and_stays_lazy(signal, hold):
    signal.nmf_decomposition(3, random_state=0, print_info=False)
    eager_f = signal.learning_results.factors.copy()
    eager_l = signal.learning_results.loadings.copy()
    counting = CountingArray(signal.data)
    lazy = hs.signals.Signal2D(
        da.from_array(counting, chunks=(8, 40, 32, 32), asarray=False)
    )
    lazy = lazy.as_lazy()
    assert lazy._lazy
    lazy.nmf_decomposition(3, random_state=0, print_info=False, hold_in_memory=hold)
    res = nmf_result(lazy)
    assert lazy._lazy and isinstance(lazy.data, da.Array)
    assert counting.largest_read <= 8  # chunks of 8 scan rows, never the whole array
    # small data are read once and held (default), else read every pass
    assert res.reads == (1 if hold == "auto" else res.passes)
    assert counting.rows_read == res.reads * 40
    assert lazy.metadata.Processing.nmf_decomposition.reads_of_data == res.reads
    lr = lazy.learning_results
    np.testing.assert_allclose(lr.factors, eager_f, atol=1e-4)
    np.testing.assert_allclose(lr.loadings, eager_l, rtol=0, atol=1e-4 * eager_l.max())
    model = lazy.get_decomposition_model()
    assert model._lazy


def test_lazy_graph_is_small():
    data = da.zeros((64, 64, 16, 16), chunks=(4, 4, 16, 16), dtype=np.uint16)
    s = hs.signals.Signal2D(data).as_lazy()
    X, nav_shape, sig_shape = unfold_data(s)
    assert X.shape == (64 * 64, 256)
    assert X.numblocks == (1, 1)  # 4 MiB of float32 fits in one 64 MiB block
    assert len(X.__dask_graph__()) < 1000  # from 256 chunks: merged, not 10^4 tasks


def test_integer_lazy_signal(signal):
    s = hs.signals.Signal2D(signal.data.astype(np.uint16)).as_lazy()
    s.nmf_decomposition(3, random_state=0, print_info=False)
    signal.nmf_decomposition(3, random_state=0, print_info=False)
    np.testing.assert_allclose(
        s.learning_results.factors, signal.learning_results.factors, atol=1e-4
    )


def test_navigation_mask_like_hyperspy(signal):
    mask = np.zeros((40, 40), dtype=bool)
    mask[:5, :3] = True  # navigation_shape order (x, y), as HyperSpy reads numpy masks
    ref = signal.deepcopy()
    ref.decomposition(
        algorithm="NMF",
        output_dimension=3,
        navigation_mask=mask,
        print_info=False,
        max_iter=20,
    )
    signal.nmf_decomposition(3, navigation_mask=mask, random_state=0, print_info=False)
    lr = signal.learning_results
    np.testing.assert_array_equal(
        np.isnan(lr.loadings[:, 0]), np.isnan(ref.learning_results.loadings[:, 0])
    )
    assert np.isnan(lr.loadings).any(axis=1).sum() == 15
    assert not np.isnan(lr.factors).any()
    signal.get_decomposition_loadings()
    # a navigation mask given as a HyperSpy signal (array order data)
    nav = hs.signals.BaseSignal(mask.T.copy()).T
    signal.nmf_decomposition(3, navigation_mask=nav, random_state=0, print_info=False)
    np.testing.assert_array_equal(
        np.isnan(signal.learning_results.loadings[:, 0]), np.isnan(lr.loadings[:, 0])
    )


def test_masked_data_do_not_influence(signal):
    nav_mask = np.zeros((40, 40), dtype=bool)
    nav_mask[10:20, 5:8] = True
    sig_mask = np.zeros((32, 32), dtype=bool)
    sig_mask[14:18, 14:18] = True
    spoiled = signal.deepcopy()
    spoiled.data[nav_mask.T] = -1000.0  # negative and huge, but excluded
    spoiled.data[..., sig_mask] = np.nan
    kw = dict(
        navigation_mask=nav_mask, signal_mask=sig_mask, random_state=0, print_info=False
    )
    signal.nmf_decomposition(3, **kw)
    spoiled.nmf_decomposition(3, **kw)
    a, b = signal.learning_results, spoiled.learning_results
    np.testing.assert_array_equal(a.factors, b.factors)
    np.testing.assert_array_equal(a.loadings, b.loadings)
    assert np.isnan(b.factors).any(axis=1).sum() == 16
    assert np.isnan(b.factors.reshape(32, 32, 3)[sig_mask]).all()
    assert np.isnan(b.loadings).any(axis=1).sum() == 30
    assert b.signal_mask.shape == (1024,) and b.navigation_mask.shape == (1600,)
    # lazy too
    lazy = spoiled.as_lazy()
    lazy.nmf_decomposition(3, **kw)
    # lazy data get masked channels zero-filled instead of removed: same optimum,
    # slightly different path
    np.testing.assert_allclose(lazy.learning_results.factors, a.factors, atol=1e-3)
    assert np.isnan(lazy.learning_results.factors).any(axis=1).sum() == 16


def test_mask_errors(signal):
    with pytest.raises(ValueError, match="All the data are masked"):
        signal.nmf_decomposition(3, navigation_mask=np.ones((40, 40), bool))
    with pytest.raises(ValueError, match="All the data are masked"):
        signal.nmf_decomposition(3, signal_mask=np.ones((32, 32), bool))
    with pytest.raises(ValueError, match="shape"):
        signal.nmf_decomposition(3, navigation_mask=np.zeros((40, 39), bool))


def test_bad_input_on_signals(signal):
    neg = signal.deepcopy()
    neg.data[0, 0, 0, :5] = -1
    with pytest.raises(ValueError, match="5 negative values"):
        neg.nmf_decomposition(3, print_info=False)
    nan = signal.deepcopy()
    nan.data[1, 1, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        nan.nmf_decomposition(3, print_info=False)
    with pytest.raises(ValueError, match="rank bound"):
        signal.nmf_decomposition(2000, print_info=False)
    with pytest.raises(ValueError, match="'auto'"):
        signal.nmf_decomposition("five", print_info=False)
    with pytest.raises(ValueError, match="navigation"):
        nmf_decomposition(hs.signals.Signal2D(np.ones((8, 8))), 1)


def test_poisson_normalisation_eager_and_lazy(signal, spot_data):
    _, patterns, maps = spot_data
    signal.nmf_decomposition(
        3, normalize_poissonian_noise=True, random_state=0, print_info=False
    )
    lr = signal.learning_results
    assert lr.poissonian_noise_normalized is True
    assert np.nanmin(lr.factors) >= 0 and np.nanmin(lr.loadings) >= 0
    assert matched_similarity(lr.factors.T, patterns)[0].min() > 0.99
    assert matched_similarity(lr.loadings.T, maps)[0].min() > 0.99
    lazy = signal.as_lazy()
    lazy.nmf_decomposition(
        3, normalize_poissonian_noise=True, random_state=0, print_info=False
    )
    np.testing.assert_allclose(lazy.learning_results.factors, lr.factors, atol=1e-4)
    model = signal.get_decomposition_model()  # in the data's own units
    err = np.linalg.norm(model.data - signal.data) / np.linalg.norm(signal.data)
    assert err < 0.15


def test_auto_number_of_components(signal, capsys):
    signal.nmf_decomposition("auto", random_state=0)
    lr = signal.learning_results
    assert lr.output_dimension == 3
    assert lr.nmf_component_choice["n_components"] == 3
    choice = component_choice_from(lr)
    assert choice.n_components == 3 and "centred" in choice.reason
    assert (
        "profile likelihood"
        in signal.metadata.Processing.nmf_decomposition.n_components_method
    )
    assert "chosen automatically" in capsys.readouterr().out


def test_auto_number_of_components_lazy(signal):
    lazy = signal.as_lazy()
    lazy.nmf_decomposition("auto", random_state=0, print_info=False)
    assert lazy.learning_results.output_dimension == 3
    assert lazy.metadata.Processing.nmf_decomposition.lazy is True


def test_spectrum_line(spot_data):
    """A 1-D navigation axis and a 1-D signal (EDS-like)."""
    data, _, _ = spot_data
    s = hs.signals.Signal1D(data.reshape(1600, 1024)[::4])
    s.nmf_decomposition(3, random_state=0, print_info=False)
    res = nmf_result(s)
    assert s.learning_results.factors.shape == (1024, 3)
    assert s.learning_results.unfolded is False
    assert s.get_decomposition_loadings().data.shape == (3, 400)
    assert res.converged


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_save_and_load_results(signal, tmp_path, caplog, ext):
    from hyperspy_nanoml.learn.verification import verify_nmf

    signal.nmf_decomposition("auto", random_state=0, print_info=False)
    verify_nmf(signal, n_restarts=1)
    path = tmp_path / f"decomposed.{ext}"
    with caplog.at_level("WARNING"):
        signal.save(path)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    back = hs.load(path)
    np.testing.assert_array_equal(
        back.learning_results.factors, signal.learning_results.factors
    )
    assert component_choice_from(back.learning_results).n_components == 3
    assert (
        back.learning_results.nmf_info["passes"]
        == signal.learning_results.nmf_info["passes"]
    )
    assert back.get_decomposition_loadings().data.shape == (3, 40, 40)


def _keenan_kotula(X, column_mask=None):
    """The scaled matrix ``X / sqrt(a ⊗ b)`` formed directly (float64 sums)."""
    X = np.array(X, dtype=np.float32)
    if column_mask is not None:
        X[:, column_mask] = 0
    a = X.sum(axis=1, dtype=np.float64)
    b = X.sum(axis=0, dtype=np.float64)
    ia = (1 / np.sqrt(np.where(a > 0, a, 1))).astype(np.float32)
    ib = (1 / np.sqrt(np.where(b > 0, b, 1))).astype(np.float32)
    return X * ia[:, None] * ib[None, :], ia, ib


def test_poisson_and_choice_ride_on_the_engine_passes(signal):
    """Lazy, auto and Poisson: no pass but the engine's own; the same evidence as the
    choice reading the scaled data itself."""
    from hyperspy_nanoml.learn.n_components import choose_n_components

    for hold in (False, "auto"):
        counting = CountingArray(signal.data)
        lazy = hs.signals.Signal2D(
            da.from_array(counting, chunks=(8, 40, 32, 32), asarray=False)
        ).as_lazy()
        lazy.nmf_decomposition(
            "auto",
            normalize_poissonian_noise=True,
            random_state=0,
            print_info=False,
            hold_in_memory=hold,
        )
        res = nmf_result(lazy)
        record = lazy.metadata.Processing.nmf_decomposition
        # every read counted: nothing but the engine's passes (or its one read)
        assert record.passes_over_data == res.passes
        if hold is False:
            assert res.passes <= 4 and res.reads == res.passes
        else:
            assert res.reads == 1
        assert counting.rows_read == record.reads_of_data * 40
    Xs, ia, ib = _keenan_kotula(signal.data.reshape(1600, -1))
    ref = choose_n_components(Xs, random_state=0, poisson_scales=(ia, ib))
    choice = component_choice_from(lazy.learning_results)
    assert choice.n_components == ref.n_components == 3
    np.testing.assert_allclose(choice.eigenvalues, ref.eigenvalues, rtol=1e-4)
    assert choice.notes == ref.notes
    # without Poisson scaling the choice reads nothing either
    counting.rows_read = 0
    lazy.nmf_decomposition("auto", random_state=0, print_info=False)
    res = nmf_result(lazy)
    record = lazy.metadata.Processing.nmf_decomposition
    assert record.passes_over_data == res.passes and record.reads_of_data == 1
    assert counting.rows_read == 40


def test_poisson_scaling_inside_the_engine_is_keenan_kotula(signal):
    """With masks, eager and lazy: the factors are those of an NMF of the explicitly
    scaled data, un-scaled; no pass but the NMF's own."""
    nav_mask = np.zeros((40, 40), dtype=bool)
    nav_mask[10:20, 5:8] = True  # navigation_shape order
    sig_mask = np.zeros((32, 32), dtype=bool)
    sig_mask[14:18, 14:18] = True
    kw = dict(
        normalize_poissonian_noise=True,
        navigation_mask=nav_mask,
        signal_mask=sig_mask,
        random_state=0,
        print_info=False,
    )
    rows = signal.data.reshape(1600, 1024)[~nav_mask.T.ravel()]
    Xs, ia, ib = _keenan_kotula(rows, sig_mask.ravel())
    ref = nmf(Xs, 3, random_state=0)
    H_ref = ref.H / ib[None, :]
    W_ref = ref.W / ia[:, None]
    keep = ~sig_mask.ravel()
    for make_lazy in (False, True):
        counting = CountingArray(signal.data)
        s = hs.signals.Signal2D(
            da.from_array(counting, chunks=(8, 40, 32, 32), asarray=False)
        ).as_lazy()
        if not make_lazy:
            s = hs.signals.Signal2D(signal.data.copy())
        s.nmf_decomposition(3, **kw)
        res = nmf_result(s)
        lr = s.learning_results
        sims, idx = matched_similarity(H_ref[:, keep], lr.factors[keep].T)
        assert sims.min() > 0.99999, sims
        loadings = lr.loadings[~nav_mask.T.ravel()]
        assert matched_similarity(W_ref.T, loadings.T)[0].min() > 0.99999
        assert res.reconstruction_error == pytest.approx(ref.reconstruction_error, rel=1e-4)
        record = s.metadata.Processing.nmf_decomposition
        assert record.passes_over_data == res.passes
        if make_lazy:  # read once, held in memory (small data)
            assert res.reads == 1
            assert counting.rows_read == 40
        # explained variance ratio in the data's own units
        total = float(np.sum(rows[:, keep].astype(np.float64) ** 2))
        W, H = lr.loadings[~nav_mask.T.ravel()], lr.factors[keep].T
        energy = np.sum(W.astype(float) ** 2, axis=0) * np.sum(H.astype(float) ** 2, axis=1)
        np.testing.assert_allclose(lr.explained_variance_ratio, energy / total, rtol=1e-4)
