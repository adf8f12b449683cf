"""Verification of NMF results: stability, residual map, explained variance, report."""

import hyperspy.api as hs
import numpy as np
import pytest

from hyperspy_nanoml.learn.verification import (
    VerificationResult,
    explained_variance,
    match_components,
    residual_norms,
    verify_nmf,
)
from hyperspy_nanoml.report.nmf_report import save_verification_report


@pytest.fixture
def decomposed(spot_data):
    s = hs.signals.Signal2D(spot_data[0].copy())
    s.axes_manager[0].scale = 2.5
    s.axes_manager[0].units = "nm"
    s.axes_manager[1].offset = 10.0
    s.metadata.General.title = "spots"
    mask = np.zeros((40, 40), dtype=bool)
    mask[:4, :6] = True
    s.nmf_decomposition(3, navigation_mask=mask, random_state=0, print_info=False)
    return s


def test_match_components_finds_permutation():
    rng = np.random.default_rng(0)
    A = rng.random((4, 50))
    perm = np.array([2, 0, 3, 1])
    B = A[perm] * np.array([[2.0], [0.5], [3.0], [1.0]])  # scaled, permuted
    sims, idx = match_components(A, B)
    np.testing.assert_allclose(sims, 1.0)
    np.testing.assert_allclose(
        B[idx] / np.linalg.norm(B[idx], axis=1, keepdims=True),
        A / np.linalg.norm(A, axis=1, keepdims=True),
    )


def test_verify_good_decomposition(decomposed):
    v = verify_nmf(decomposed, n_restarts=3, random_state=0)
    assert isinstance(v, VerificationResult)
    summary = decomposed.learning_results.nmf_verification
    np.testing.assert_array_equal(summary["stability_min"], v.stability_min)
    assert v.n_components == 3
    assert v.factor_similarity.shape == (3, 3)
    assert v.stability_min.min() > 0.99 and v.loading_stability_min.min() > 0.99
    assert v.restart_errors == pytest.approx(v.relative_error, rel=1e-3)
    # explained variance: energies ≈ totals, shares of counts sum to ~1 at a good fit
    assert v.explained_total == pytest.approx(1 - v.relative_error**2, rel=1e-6)
    assert 0.95 < v.explained_energy.sum() < 1.1
    assert v.explained_intensity.sum() == pytest.approx(1.0, abs=0.02)
    assert np.all(np.diff(v.explained_energy) <= 0)
    assert "stability" in str(v)


def test_residual_map_matches_direct_computation(decomposed):
    v = verify_nmf(decomposed, n_restarts=1)
    rmap = v.residual_map
    assert rmap.axes_manager.signal_shape == (40, 40)
    assert rmap.axes_manager.signal_axes[0].scale == 2.5
    assert rmap.axes_manager.signal_axes[0].units == "nm"
    assert rmap.axes_manager.signal_axes[1].offset == 10.0
    data = decomposed.data.reshape(1600, -1).astype(np.float64)
    lr = decomposed.learning_results
    model = np.nan_to_num(lr.loadings) @ lr.factors.T.astype(np.float64)
    direct = np.linalg.norm(data - model, axis=1) / np.linalg.norm(data, axis=1)
    masked = lr.navigation_mask
    assert np.isnan(rmap.data.ravel()[masked]).all() and masked.sum() == 24
    np.testing.assert_allclose(rmap.data.ravel()[~masked], direct[~masked], rtol=1e-4)


def test_lazy_verification_equals_eager(decomposed):
    lazy = decomposed.as_lazy()
    lr = decomposed.learning_results
    lazy.nmf_decomposition(
        3,
        navigation_mask=lr.navigation_mask.reshape(40, 40).T,
        random_state=0,
        print_info=False,
    )
    ve = verify_nmf(decomposed, n_restarts=1)
    vl = verify_nmf(lazy, n_restarts=1)
    assert not vl.residual_map._lazy
    np.testing.assert_allclose(vl.residual_map.data, ve.residual_map.data, rtol=1e-4)
    np.testing.assert_allclose(vl.explained_energy, ve.explained_energy, rtol=1e-4)


def test_too_many_components_are_unstable(spot_data):
    s = hs.signals.Signal2D(spot_data[0])
    s.nmf_decomposition(3, random_state=0, print_info=False)
    good = verify_nmf(s, n_restarts=3, random_state=0)
    s.nmf_decomposition(5, random_state=0, print_info=False)
    over = verify_nmf(s, n_restarts=3, random_state=0, max_iter=200)
    assert over.stability_min.min() < 0.9 < good.stability_min.min()


def test_array_functions(spot_matrix):
    from hyperspy_nanoml.learn.nmf import nmf

    X = spot_matrix[0]
    res = nmf(X, 3, random_state=0)
    res_sq, norm_sq, row_sum, WtX = residual_norms(X, res.W, res.H)
    assert res_sq.shape == norm_sq.shape == row_sum.shape == (X.shape[0],)
    assert np.sqrt(res_sq.sum() / norm_sq.sum()) == pytest.approx(
        res.reconstruction_error, rel=1e-5
    )
    ev = explained_variance(res.W, res.H, norm_sq.sum(), WtX, row_sum.sum())
    np.testing.assert_allclose(ev["energy"], res.explained_energy, rtol=1e-4)
    with pytest.raises(ValueError, match="shapes"):
        residual_norms(X, res.W[:5], res.H)


@pytest.mark.slow
def test_report_pdf(decomposed, tmp_path):
    path = save_verification_report(decomposed, tmp_path / "verification", n_restarts=2)
    assert path.suffix == ".pdf" and path.exists()
    content = path.read_bytes()
    assert content.startswith(b"%PDF")
    assert content.count(b"/Type /Page\n") + content.count(b"/Type /Page ") >= 6 or (
        content.count(b"/Page") >= 6
    )
    # from a result, with the automatic choice page
    s = decomposed.deepcopy()
    s.nmf_decomposition("auto", random_state=0, print_info=False)
    v = verify_nmf(s, n_restarts=1)
    assert save_verification_report(v, tmp_path / "auto.pdf").exists()


def test_verify_needs_a_decomposition():
    s = hs.signals.Signal2D(np.random.default_rng(0).random((4, 4, 8, 8)))
    with pytest.raises(ValueError, match="nmf_decomposition"):
        verify_nmf(s)
    s.decomposition(print_info=False, centre="navigation")
    with pytest.raises(ValueError, match="centred"):
        verify_nmf(s)
