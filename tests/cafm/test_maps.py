"""Per-pixel physics maps against the generator's known classes."""

import numpy as np
import pytest

from hyperspy_nanoml.cafm import physics_maps
from hyperspy_nanoml.cafm.physics import zero_bias_conductance
from hyperspy_nanoml.data.cafm import generate_iv_map


@pytest.fixture(scope="module")
def iv_map():
    return generate_iv_map(shape=(24, 32), noise=1e-12, lost_contact=0.0, random_state=3)


def test_maps_are_calibrated_and_match_the_per_curve_functions(iv_map):
    iv, truth = iv_map
    maps = iv.physics_maps()
    g = maps["zero_bias_conductance"]
    assert g.data.shape == (24, 32)
    nav = iv.axes_manager.navigation_axes
    for image_axis, scan_axis in zip(g.axes_manager.signal_axes, nav):
        assert image_axis.scale == pytest.approx(scan_axis.scale)
        assert image_axis.units == scan_axis.units
    bias = iv.axes_manager.signal_axes[0].axis
    direct = zero_bias_conductance(bias, np.asarray(iv.data, dtype=np.float64))
    np.testing.assert_allclose(g.data, direct)
    assert "Processing.physics_maps" in g.metadata


def test_ohmic_classes_have_their_conductance(iv_map):
    iv, truth = iv_map
    g = physics_maps(iv)["zero_bias_conductance"].data
    ohmic = [(i, c) for i, c in enumerate(truth["classes"]) if c.get("kind") == "ohmic"]
    assert len(ohmic) >= 2
    for label, cls in ohmic:
        median = np.median(g[truth["labels"] == label])
        assert median == pytest.approx(1.0 / cls["resistance"], rel=0.05)


def test_rectification_separates_schottky_from_ohmic(iv_map):
    iv, truth = iv_map
    r = physics_maps(iv)["rectification_ratio"].data
    kinds = [c.get("kind") for c in truth["classes"]]
    schottky = [i for i, k in enumerate(kinds) if k == "schottky"]
    ohmic = [i for i, k in enumerate(kinds) if k == "ohmic"]
    r_s = np.median(np.concatenate([r[truth["labels"] == i] for i in schottky]))
    r_o = np.median(np.concatenate([r[truth["labels"] == i] for i in ohmic]))
    assert r_s > 10 * r_o
    assert r_o == pytest.approx(1.0, abs=0.2)


def test_lazy_equals_eager_and_input_untouched(iv_map):
    iv, _ = iv_map
    before = iv.data.copy()
    eager = physics_maps(iv)
    lazy = physics_maps(iv.as_lazy())
    for name in eager:
        np.testing.assert_allclose(lazy[name].data, eager[name].data, equal_nan=True)
    np.testing.assert_array_equal(iv.data, before)


def test_bad_input_is_refused(iv_map):
    iv, _ = iv_map
    with pytest.raises(ValueError, match="map of I-V curves"):
        physics_maps(iv.inav[0, 0])
    with pytest.raises(ValueError, match="polarity"):
        physics_maps(iv, polarity="up")
