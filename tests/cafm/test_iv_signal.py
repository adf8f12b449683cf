"""The registered I-V signal class: signal_type, lazy twin, metadata, save/load."""

import sys
import types

import hyperspy.api as hs
import numpy as np
import pytest

from hyperspy_nanoml.signals.iv_curve import IVCurveSignal, LazyIVCurveSignal


def _map(shape=(3, 4, 11)):
    rng = np.random.default_rng(0)
    return rng.normal(scale=1e-9, size=shape).astype(np.float32)


def test_yaml_registers_both_classes():
    from hyperspy.extensions import ALL_EXTENSIONS

    signals = ALL_EXTENSIONS["signals"]
    assert signals["IVCurveSignal"]["signal_type"] == "IV_curve"
    assert signals["IVCurveSignal"]["lazy"] is False
    assert signals["LazyIVCurveSignal"]["lazy"] is True
    assert signals["IVCurveSignal"]["signal_dimension"] == 1


@pytest.mark.parametrize("name", ["IV_curve", "IV", "iv_curve"])
def test_set_signal_type_on_eager_and_lazy(name):
    data = _map()
    s = hs.signals.Signal1D(data)
    s.set_signal_type(name)
    assert type(s) is IVCurveSignal
    assert s.metadata.Signal.signal_type == "IV_curve"
    axis = s.axes_manager.signal_axes[0]
    assert (axis.name, axis.units) == ("Bias", "V")
    assert s.metadata.Signal.quantity == "Current (A)"
    np.testing.assert_array_equal(s.data, data)

    lazy = hs.signals.Signal1D(data).as_lazy()
    lazy.set_signal_type(name)
    assert type(lazy) is LazyIVCurveSignal
    np.testing.assert_array_equal(lazy.data.compute(), data)
    assert type(lazy.compute() or lazy) is IVCurveSignal
    assert type(IVCurveSignal(data).as_lazy()) is LazyIVCurveSignal


def test_existing_axis_names_and_quantity_are_kept():
    s = hs.signals.Signal1D(np.zeros((2, 5)))
    s.axes_manager.signal_axes[0].name = "sqrt(E)"
    s.axes_manager.signal_axes[0].units = "(V/m)^0.5"
    s.metadata.set_item("Signal.quantity", "ln J (A/m^2)")
    s.set_signal_type("IV_curve")
    assert s.axes_manager.signal_axes[0].name == "sqrt(E)"
    assert s.axes_manager.signal_axes[0].units == "(V/m)^0.5"
    assert s.metadata.Signal.quantity == "ln J (A/m^2)"


def test_iv_parameters_set_read_and_missing_message():
    s = IVCurveSignal(_map())
    s.set_iv_parameters(temperature=295.0, contact_area=1e-16)
    assert s.metadata.Acquisition_instrument.SPM.temperature == 295.0
    assert s.get_iv_parameter("contact_area") == 1e-16
    s.set_iv_parameters(amplifier_gain=1e9)  # None leaves the others alone
    assert s.get_iv_parameters() == {
        "temperature": 295.0,
        "contact_area": 1e-16,
        "amplifier_gain": 1e9,
    }
    with pytest.raises(
        ValueError, match=r"saturation_current.*set_iv_parameters\(saturation_current="
    ):
        s.get_iv_parameter("saturation_current")
    with pytest.raises(ValueError, match="unknown I-V parameter 'area'"):
        s.get_iv_parameter("area")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -3.0}, "temperature must be a finite positive number in K"),
        ({"contact_area": 0.0}, "contact_area must be a finite positive"),
        ({"saturation_current": np.inf}, "saturation_current must be a finite positive"),
        ({"amplifier_gain": "high"}, "amplifier_gain must be a number in V/A"),
    ],
)
def test_iv_parameters_are_validated_before_anything_is_stored(kwargs, message):
    s = IVCurveSignal(_map())
    good = {} if "temperature" in kwargs else {"temperature": 300.0}
    with pytest.raises((ValueError, TypeError), match=message):
        s.set_iv_parameters(**good, **kwargs)
    assert "Acquisition_instrument.SPM.temperature" not in s.metadata


@pytest.mark.parametrize("lazy", [False, True])
def test_hspy_round_trip_keeps_class_axes_and_parameters(tmp_path, lazy):
    s = IVCurveSignal(_map())
    s.axes_manager.signal_axes[0].offset = -1.0
    s.axes_manager.signal_axes[0].scale = 0.2
    s.axes_manager.navigation_axes[0].scale = 12.5
    s.axes_manager.navigation_axes[0].units = "nm"
    s.set_iv_parameters(temperature=77.0, saturation_current=1e-8)
    path = tmp_path / "iv.hspy"
    s.save(path)
    back = hs.load(path, lazy=lazy)
    assert type(back) is (LazyIVCurveSignal if lazy else IVCurveSignal)
    data = back.data.compute() if lazy else back.data
    np.testing.assert_array_equal(data, s.data)
    assert back.axes_manager.signal_axes[0].offset == -1.0
    assert back.axes_manager.signal_axes[0].scale == 0.2
    assert back.axes_manager.navigation_axes[0].scale == 12.5
    assert back.get_iv_parameters() == {"temperature": 77.0, "saturation_current": 1e-8}


def test_kmeans_cluster_is_a_thin_wrapper(monkeypatch):
    calls = []

    def fake(signal, n_clusters="auto", **kwargs):
        calls.append((signal, n_clusters, kwargs))
        return "result"

    module = types.ModuleType("hyperspy_nanoml.cafm.cluster")
    module.kmeans_cluster = fake
    monkeypatch.setitem(sys.modules, "hyperspy_nanoml.cafm.cluster", module)
    s = IVCurveSignal(_map())
    assert s.kmeans_cluster() == "result"
    assert s.kmeans_cluster(3, random_state=1) == "result"
    assert calls[0][0] is s and calls[0][1] == "auto" and calls[0][2] == {}
    assert calls[1][1] == 3 and calls[1][2] == {"random_state": 1}
