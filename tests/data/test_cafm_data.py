"""The generated C-AFM I-V map: its classes, labels, noise and lazy/eager identity."""

import dask.array as da
import numpy as np
import pytest

from hyperspy_nanoml.cafm.physics import (
    saturation_current_from_barrier,
    thermal_voltage,
    thermionic_current,
    zero_bias_conductance,
)
from hyperspy_nanoml.data.cafm import DEFAULT_CLASSES, generate_iv_map

SHAPE = (40, 48)


@pytest.fixture(scope="module")
def iv_map():
    return generate_iv_map(SHAPE, random_state=3)


def test_signal_type_axes_and_metadata(iv_map):
    s, truth = iv_map
    from hyperspy_nanoml.signals.iv_curve import IVCurveSignal

    assert isinstance(s, IVCurveSignal) and s.metadata.Signal.signal_type == "IV_curve"
    assert s.data.shape == SHAPE + (201,) and s.data.dtype == np.float32
    x, y = s.axes_manager.navigation_axes
    assert (x.name, y.name, x.units, x.size, y.size) == ("x", "y", "nm", 48, 40)
    assert x.scale == y.scale > 0
    b = s.axes_manager.signal_axes[0]
    assert (b.name, b.units) == ("Bias", "V")
    np.testing.assert_allclose(b.axis, np.linspace(-2, 2, 201), atol=1e-12)
    np.testing.assert_allclose(truth["bias"], b.axis, atol=1e-12)
    assert s.metadata.Signal.quantity == "Current (A)"
    assert s.get_iv_parameter("temperature") == 300.0
    assert s.get_iv_parameter("contact_area") == truth["classes"][1]["area"]
    assert s.metadata.Processing.generate_iv_map.random_state == 3


def test_default_classes_have_the_stated_parameters_and_conductance_order(iv_map):
    _, truth = iv_map
    classes = truth["classes"]
    assert [c["label"] for c in classes] == [0, 1, 2, 3]
    assert [c["kind"] for c in classes] == ["ohmic", "schottky", "ohmic", "ohmic"]
    assert classes[0]["role"] == "substrate"
    g = [c["zero_bias_conductance"] for c in classes]
    assert g == sorted(g) and len(set(g)) == 4
    # Schottky class: Is = A A* T^2 exp(-phi / kT), G0 = 1 / (Rs + n Vt / Is)
    sch = classes[1]
    i_s = saturation_current_from_barrier(
        sch["barrier_height"], sch["area"], sch["richardson"], 300.0
    )
    assert sch["saturation_current"] == pytest.approx(float(i_s))
    assert g[1] == pytest.approx(
        1 / (sch["series_resistance"] + 1.15 * thermal_voltage() / i_s)
    )
    # the two ohmic electrode classes differ by "a factor of a few" in resistance
    assert 2 <= classes[2]["resistance"] / classes[3]["resistance"] <= 10
    # labels: every class present, the substrate the majority, counts recorded
    counts = np.bincount(truth["labels"].ravel(), minlength=4)
    assert np.all(counts > 0) and counts[0] == counts.max()
    assert [c["n_pixels"] for c in classes] == counts.tolist()
    assert DEFAULT_CLASSES[1]["barrier_height"] == 0.43  # the input is not modified


def test_curves_follow_the_class_physics_exactly_without_noise():
    s, truth = generate_iv_map(SHAPE, noise=0.0, random_state=3)
    p = truth["parameters"]
    bias = truth["bias"]
    expected = thermionic_current(
        bias,
        p["saturation_current"][..., None],
        p["ideality"][..., None],
        p["series_resistance"][..., None],
        p["shunt_resistance"][..., None],
    )
    np.testing.assert_allclose(s.data, expected, rtol=2e-7, atol=1e-30)
    # Schottky pixels' barriers scatter by a few % around 0.43 eV; ohmic ones by R
    labels, lost = truth["labels"], truth["lost_contact"]
    sch = (labels == 1) & ~lost
    phi = p["barrier_height"][sch]
    assert phi.mean() == pytest.approx(0.43, rel=0.01)
    assert 0.01 < phi.std() / phi.mean() < 0.03
    ohm = (labels == 3) & ~lost
    r = p["shunt_resistance"][ohm]
    assert np.exp(np.log(r).mean()) == pytest.approx(2.5e6, rel=0.02)
    assert 0.01 < np.log(r).std() < 0.03
    # lost contacts keep their electrode label but carry substrate curves
    assert np.all(labels[lost] > 0)
    np.testing.assert_allclose(np.median(p["shunt_resistance"][lost]), 1e11, rtol=0.05)
    # per-pixel zero-bias conductance is ordered like the labels
    g = zero_bias_conductance(bias, s.data)
    med = [np.median(g[(labels == k) & ~lost]) for k in range(4)]
    assert med == sorted(med)


def test_noise_is_gaussian_with_the_stated_sigma_and_parameters_do_not_depend_on_it(iv_map):
    s, truth = iv_map
    clean, truth0 = generate_iv_map(SHAPE, noise=0.0, random_state=3)
    np.testing.assert_array_equal(truth["labels"], truth0["labels"])
    diff = (s.data - clean.data).astype(np.float64)
    assert diff.std() == pytest.approx(30e-12, rel=0.02)
    assert abs(diff.mean()) < 1e-12
    kurtosis = np.mean(diff**4) / np.mean(diff**2) ** 2
    assert kurtosis == pytest.approx(3.0, abs=0.1)


def test_lost_contact_fraction(iv_map):
    _, truth = iv_map
    electrode = truth["labels"] > 0
    k, n = np.count_nonzero(truth["lost_contact"]), np.count_nonzero(electrode)
    assert abs(k - 0.04 * n) < 4 * np.sqrt(0.04 * 0.96 * n)
    assert not np.any(truth["lost_contact"] & ~electrode)
    _, none = generate_iv_map(SHAPE, lost_contact=0.0, random_state=3)
    assert not none["lost_contact"].any()


def test_saturation_clips_and_is_recorded():
    s, _ = generate_iv_map(SHAPE, saturation=1e-7, random_state=3)
    assert np.abs(s.data).max() == pytest.approx(1e-7)
    assert np.count_nonzero(np.abs(s.data) >= np.float32(1e-7)) > 100
    assert s.get_iv_parameter("saturation_current") == 1e-7


def test_reproducible_and_seed_dependent(iv_map):
    s, _ = iv_map
    again, _ = generate_iv_map(SHAPE, random_state=3)
    np.testing.assert_array_equal(s.data, again.data)
    other, _ = generate_iv_map(SHAPE, random_state=4)
    assert not np.array_equal(s.data, other.data)
    rng_seeded, t = generate_iv_map(SHAPE, random_state=np.random.default_rng(1))
    assert rng_seeded.metadata.Processing.generate_iv_map.random_state == t["random_state"]


@pytest.mark.parametrize("chunks", [None, 7, (9, 20)])
def test_lazy_equals_eager(iv_map, chunks):
    s, truth = iv_map
    lazy, truth_l = generate_iv_map(SHAPE, random_state=3, lazy=True, chunks=chunks)
    assert lazy._lazy and isinstance(lazy.data, da.Array)
    assert lazy.metadata.Signal.signal_type == "IV_curve"
    assert lazy.data.chunks[2] == (201,)
    np.testing.assert_array_equal(truth_l["labels"], truth["labels"])
    np.testing.assert_array_equal(lazy.data.compute(), s.data)


def test_large_lazy_map_has_few_large_chunks():
    s, truth = generate_iv_map((1000, 1000), n_points=200, random_state=0, lazy=True)
    assert s.data.shape == (1000, 1000, 200)
    assert s.data.numblocks[1:] == (1, 1) and 5 <= s.data.numblocks[0] <= 40
    assert len(s.data.__dask_graph__()) < 100
    assert (
        truth["labels"].shape == (1000, 1000)
        and np.bincount(truth["labels"].ravel()).size == 4
    )
    # one block is generated on its own, consistently with the truth of its rows
    rows = s.data.chunks[0][0]
    block = s.data.blocks[0].compute()
    assert block.shape == (rows, 1000, 200)
    substrate = (truth["labels"][:rows] == 0) | truth["lost_contact"][:rows]
    assert np.abs(block[substrate][:, -1]).max() < 1e-9  # 20 pA + noise at +2 V
    assert np.median(block[truth["labels"][:rows] == 3][:, -1]) > 5e-7


def test_custom_classes_and_bad_input():
    classes = [
        {"kind": "ohmic", "resistance": 1e9, "name": "film"},
        {"kind": "schottky", "saturation_current": 1e-11, "ideality": 1.3,
         "series_resistance": 1e6, "name": "dots"},
    ]  # fmt: skip
    s, truth = generate_iv_map((16, 16), random_state=0, classes=classes, n_points=51)
    # dots: G0 = Is / (n Vt) ~ 3e-10 S < 1e-9 S: label 0 and, least conductive, the
    # background unless another class has role="substrate"
    assert [c["name"] for c in truth["classes"]] == ["dots", "film"]
    assert [c["role"] for c in truth["classes"]] == ["substrate", "electrode"]
    classes[0]["role"] = "substrate"
    _, truth = generate_iv_map((16, 16), random_state=0, classes=classes, n_points=51)
    assert [c["role"] for c in truth["classes"]] == ["electrode", "substrate"]
    counts = np.bincount(truth["labels"].ravel())
    assert counts[1] > counts[0] > 0
    assert "contact_area" not in s.metadata.Acquisition_instrument.SPM
    with pytest.raises(ValueError, match="shape"):
        generate_iv_map((3, 64))
    with pytest.raises(ValueError, match="lost_contact"):
        generate_iv_map(lost_contact=1.5)
    with pytest.raises(ValueError, match="noise"):
        generate_iv_map(noise=-1.0)
    with pytest.raises(ValueError, match="bias axis cannot be chunked"):
        generate_iv_map(lazy=True, chunks=(8, 8, 10))
    with pytest.raises(ValueError, match="kind"):
        generate_iv_map(classes=[{"kind": "ohmic", "resistance": 1e9}, {"kind": "tunnel"}])
    with pytest.raises(ValueError, match="barrier_height"):
        generate_iv_map(
            classes=[{"kind": "ohmic", "resistance": 1e9}, {"kind": "schottky"}]
        )
    with pytest.raises(ValueError, match="random_state"):
        generate_iv_map(random_state=-3)
