"""Registration with HyperSpy and the method-attachment rule."""

import importlib.metadata

import hyperspy.api as hs
import numpy as np

import hyperspy_nanoml
from hyperspy_nanoml import _methods
from hyperspy_nanoml.signals.local_fft import LazyLocalFFTSignal, LocalFFTSignal


def test_entry_point_and_yaml_are_registered():
    names = [ep.name for ep in importlib.metadata.entry_points(group="hyperspy.extensions")]
    assert "hyperspy_nanoml" in names
    from hyperspy.extensions import ALL_EXTENSIONS

    assert ALL_EXTENSIONS["signals"]["LocalFFTSignal"]["signal_type"] == "local_FFT"


def test_set_signal_type_gives_our_classes():
    s = hs.signals.Signal2D(np.zeros((2, 2, 8, 8)))
    s.set_signal_type("local_FFT")
    assert isinstance(s, LocalFFTSignal)
    lazy = s.as_lazy()
    assert isinstance(lazy, LazyLocalFFTSignal)


def test_methods_attached_and_wrap_the_public_function():
    assert (
        hs.signals.Signal2D.local_fft_features.__wrapped__
        is hyperspy_nanoml.local_fft_features
    )


def test_attach_never_replaces_an_existing_attribute(monkeypatch):
    class Owner:
        def local_fft_features(self):
            return "theirs"

    import types

    module = types.ModuleType("fake_owner")
    module.Owner = Owner
    monkeypatch.setitem(__import__("sys").modules, "fake_owner", module)
    monkeypatch.setattr(
        _methods,
        "_ATTACHMENTS",
        [
            (
                "fake_owner",
                "Owner",
                "local_fft_features",
                "hyperspy_nanoml.imaging.local_fft",
                "local_fft_features",
            )
        ],
    )
    _methods.attach()
    assert Owner().local_fft_features() == "theirs"


def test_public_names_resolve():
    for name in hyperspy_nanoml.__all__:
        assert getattr(hyperspy_nanoml, name) is not None
