"""Preprocessing of I-V curves before distances (hyperspy_nanoml.cafm.preprocess)."""

import doctest

import numpy as np
import pytest

from hyperspy_nanoml.cafm import preprocess
from hyperspy_nanoml.cafm.preprocess import (
    CurveFeatures,
    Saturation,
    detect_saturation,
    extreme_counts,
    fit_pca,
    inverse_scale_current,
    noise_floor,
    offset_signal,
    saturation_from_extremes,
    saturation_mask,
    scale_current,
    smooth_curves,
    zero_bias_offset,
)
from hyperspy_nanoml.data.cafm import generate_iv_map

RAIL = 5e-7


@pytest.fixture(scope="module")
def clipped_map():
    """A map clipped at +-0.5 uA and the same map unclipped (same seed)."""
    s, truth = generate_iv_map((24, 24), saturation=RAIL, random_state=3)
    raw, _ = generate_iv_map((24, 24), random_state=3)
    return s, raw, truth


# ------------------------------------------------------------------ saturation


def test_detect_saturation_finds_the_rails_and_the_clipped_points(clipped_map):
    s, raw, _ = clipped_map
    sat = detect_saturation(s.data)
    assert sat.source == "detected"
    assert sat.high == pytest.approx(RAIL) and sat.low == pytest.approx(-RAIL)
    expected = np.abs(raw.data) >= RAIL  # the points the amplifier clipped
    assert expected.sum() > 100
    np.testing.assert_array_equal(sat.mask(s.data), expected)


def test_detect_saturation_with_a_given_limit():
    sat = detect_saturation(np.zeros(3), saturation_current=1e-8)
    assert (sat.low, sat.high, sat.source) == (-1e-8, 1e-8, "given")
    # within the relative tolerance of the rail counts as saturated
    assert sat.mask(np.array([0.9995e-8, 0.99e-8, -1.2e-8])).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="positive current"):
        detect_saturation(np.zeros(3), saturation_current=-1.0)


def test_noisy_unclipped_data_have_no_rail(clipped_map):
    _, raw, _ = clipped_map
    sat = detect_saturation(raw.data)
    assert sat.source == "none" and not sat.any
    assert not sat.mask(raw.data).any()


def test_rails_merge_over_blocks(clipped_map):
    s, _, _ = clipped_map
    rows = s.data.reshape(-1, s.data.shape[-1])
    parts = [extreme_counts(rows[i : i + 100]) for i in range(0, rows.shape[0], 100)]
    merged = saturation_from_extremes(parts)
    whole = detect_saturation(rows)
    assert (merged.low, merged.high) == (whole.low, whole.high)


def test_nanonis_lockin_channel_clips_at_10_V_in_8_pixels(shared_data):
    from hyperspy_nanoml.cafm import load

    s = load(shared_data / "cafm" / "nanonis_sts_grid_30x30.3ds", channel="LockinX")
    m = saturation_mask(s)
    assert m.metadata.Processing.saturation_mask["high"] == pytest.approx(10.0)
    assert int(np.asarray(m.data).any(axis=-1).sum()) == 8
    current = load(shared_data / "cafm" / "nanonis_sts_grid_30x30.3ds", channel="Current")
    assert not np.asarray(saturation_mask(current).data).any()


def test_saturation_mask_lazy_equals_eager_and_keeps_input(clipped_map):
    s, _, _ = clipped_map
    before = s.data.copy()
    eager = saturation_mask(s)
    lazy = saturation_mask(s.as_lazy())
    assert lazy._lazy
    np.testing.assert_array_equal(np.asarray(lazy.data.compute()), eager.data)
    np.testing.assert_array_equal(s.data, before)
    # the metadata's saturation current is used when present
    assert s.metadata.Acquisition_instrument.SPM.saturation_current == RAIL
    assert eager.metadata.Processing.saturation_mask["source"] == "given"


# ------------------------------------------------------------- offset and noise


def test_noise_floor_recovers_the_generated_noise():
    for sigma in (30e-12, 1e-9):
        s, _ = generate_iv_map((24, 24), noise=sigma, random_state=1)
        assert noise_floor(s.data.reshape(-1, 201)) == pytest.approx(sigma, rel=0.05)


def test_noise_floor_ignores_saturated_points(clipped_map):
    s, _, _ = clipped_map
    rows = s.data.reshape(-1, 201)
    sat = detect_saturation(rows).mask(rows)
    assert noise_floor(rows, sat) == pytest.approx(30e-12, rel=0.05)


def test_zero_bias_offset_of_straight_lines():
    v = np.linspace(-1, 1, 51)
    offsets = np.array([-3e-11, 0.0, 2e-10])
    curves = v[None, :] / np.array([[1e9], [1e8], [1e7]]) + offsets[:, None]
    np.testing.assert_allclose(zero_bias_offset(v, curves), offsets, atol=1e-20)
    # a sweep that does not reach 0 V has no offset to measure
    assert np.isnan(zero_bias_offset(np.linspace(0.5, 1, 11), np.ones(11)))


def test_offset_signal_removes_an_amplifier_offset_and_keeps_the_input():
    s, _ = generate_iv_map((16, 16), random_state=2)
    shifted = s + 2e-10
    before = shifted.data.copy()
    out = offset_signal(shifted)
    np.testing.assert_array_equal(shifted.data, before)  # input untouched
    rec = out.metadata.Processing.offset_signal
    assert rec["offset"] == pytest.approx(2e-10, abs=5e-12)
    np.testing.assert_allclose(out.data, s.data, atol=5e-12)
    lazy = offset_signal(shifted.as_lazy(), "per_curve")
    assert lazy._lazy
    assert abs(float(lazy.data.mean().compute() - s.data.mean())) < 5e-12


def test_offset_signal_needs_zero_bias():
    s, _ = generate_iv_map((8, 8), bias_range=(0.5, 2.0), random_state=0)
    with pytest.raises(ValueError, match="does not reach 0 V"):
        offset_signal(s)


# ---------------------------------------------------------------------- scaling


@pytest.mark.parametrize("scaling", ["asinh", "log_abs", "linear"])
def test_scalings_preserve_sign_and_invert(scaling):
    i = np.array([-1e-6, -1e-10, 0.0, 3e-11, 2e-7])
    y = scale_current(i, scaling, 1e-10)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(np.sign(y), np.sign(i))
    assert np.all(np.diff(y[np.argsort(i)]) > 0)  # monotonic
    np.testing.assert_allclose(inverse_scale_current(y, scaling, 1e-10), i, rtol=2e-6)


def test_asinh_is_logarithmic_above_i0():
    # decades of current are equally spaced: asinh(10x) - asinh(x) -> ln 10
    y = scale_current(np.array([1e-8, 1e-7, 1e-6]), "asinh", 1e-11)
    np.testing.assert_allclose(np.diff(y), np.log(10), rtol=1e-4)


def test_bad_scaling_is_refused():
    with pytest.raises(ValueError, match="scaling must be one of"):
        scale_current(np.ones(3), "log", 1e-10)
    with pytest.raises(ValueError, match="positive current"):
        scale_current(np.ones(3), "asinh", 0.0)


# -------------------------------------------------------------------- denoising


def test_smoothing_keeps_quadratics_and_reduces_noise():
    x = np.linspace(-1, 1, 101)
    quad = 3 * x**2 - x
    np.testing.assert_allclose(smooth_curves(quad, 7, 2), quad, atol=1e-5)
    noisy = quad + np.random.default_rng(0).normal(0, 0.1, (50, 101))
    assert np.std(smooth_curves(noisy, 7, 2) - quad) < 0.6 * np.std(noisy - quad)
    with pytest.raises(ValueError, match="odd"):
        smooth_curves(quad, 6)


def test_pca_recovers_a_low_rank_subspace():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(50, 3)))[0].T  # 3 orthonormal rows
    X = rng.normal(size=(2000, 3)) * [10, 5, 2] @ basis + 0.01 * rng.normal(size=(2000, 50))
    p = fit_pca(X, 3)
    np.testing.assert_allclose(p.components @ p.components.T, np.eye(3), atol=1e-5)
    # the fitted components span the true subspace
    s = np.linalg.svd(p.components @ basis.T, compute_uv=False)
    np.testing.assert_allclose(s, 1.0, atol=1e-4)
    assert p.explained_variance_ratio.sum() > 0.999
    assert np.all(np.diff(p.explained_variance_ratio) <= 0)


# ------------------------------------------------------------- the block transform


def test_curve_features_flags_invalid_rows_and_keeps_the_input(clipped_map):
    s, _, _ = clipped_map
    rows = s.data.reshape(-1, 201).copy()
    rows[3, 10] = np.nan
    rows[7] = RAIL  # saturated at every point
    before = rows.copy()
    sat = detect_saturation(rows[np.isfinite(rows).all(1)])
    t, info = CurveFeatures.from_sample(rows[np.isfinite(rows).all(1)], np.linspace(-2, 2, 201),
                                        saturation=sat)  # fmt: skip
    F, valid = t(rows)
    np.testing.assert_array_equal(rows, before)
    assert F.shape == (rows.shape[0], 10) and F.dtype == np.float32
    assert not valid[3] and not valid[7] and valid.sum() == rows.shape[0] - 2
    assert np.isfinite(F).all()
    assert info["i0"] == pytest.approx(3 * info["noise_floor"])
    assert info["noise_floor"] == pytest.approx(30e-12, rel=0.1)


def test_curve_features_options():
    s, _ = generate_iv_map((16, 16), random_state=4)
    rows = s.data.reshape(-1, 201)
    bias = np.linspace(-2, 2, 201)
    t, _ = CurveFeatures.from_sample(rows, bias, denoise="smooth", features="derivative")
    F, _ = t(rows)
    assert F.shape == rows.shape
    t, info = CurveFeatures.from_sample(rows, bias, denoise=None, i0=1e-9, scaling="linear")
    np.testing.assert_allclose(
        t(rows)[0], (rows - info["offset"]) / 1e-9, rtol=1e-4, atol=1e-4
    )
    assert info["i0_source"] == "given"
    with pytest.raises(ValueError, match="features"):
        CurveFeatures.from_sample(rows, bias, features="physics")
    with pytest.raises(ValueError, match="every current of the sample is zero"):
        CurveFeatures.from_sample(np.zeros((10, 201)), bias)


def test_saturation_record_is_plain():
    d = Saturation(low=None, high=1e-8, source="given").as_dict()
    assert np.isnan(d["low"]) and d["high"] == 1e-8


def test_docstring_examples():
    result = doctest.testmod(preprocess, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
