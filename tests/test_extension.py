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


def test_owners_imported_later_get_their_methods_without_slowing_the_import():
    """exspy and pyxem are not imported by us; their classes get the methods when the
    user's code imports them (checked in a fresh interpreter)."""
    import subprocess
    import sys

    code = (
        "import sys, hyperspy_nanoml\n"
        "assert 'exspy' not in sys.modules and 'pyxem' not in sys.modules\n"
        "from exspy.signals import EDSSEMSpectrum\n"
        "from pyxem.signals import LazyDiffraction2D\n"
        "from hyperspy_nanoml.eds.quantify import quantify\n"
        "assert EDSSEMSpectrum.quantify.__wrapped__ is quantify\n"
        "assert callable(LazyDiffraction2D.sped_phase_map)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
