"""Conductive-AFM I-V maps: readers, diode physics and k-means clustering of the curves.

Public names load on first use (PEP 562), so ``import hyperspy_nanoml.cafm`` stays light.
"""

import importlib

# public name -> module that defines it
_LAZY = {
    "load": "hyperspy_nanoml.cafm.io",
    "fit_diode": "hyperspy_nanoml.cafm.physics",
    "thermionic_current": "hyperspy_nanoml.cafm.physics",
    "zero_bias_conductance": "hyperspy_nanoml.cafm.physics",
    "rectification_ratio": "hyperspy_nanoml.cafm.physics",
    "onset_voltage": "hyperspy_nanoml.cafm.physics",
    "schottky_emission_fit": "hyperspy_nanoml.cafm.physics",
    "kmeans_cluster": "hyperspy_nanoml.cafm.cluster",
    "physics_maps": "hyperspy_nanoml.cafm.maps",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyperspy_nanoml.cafm' has no attribute {name!r}")


def __dir__():
    return __all__
