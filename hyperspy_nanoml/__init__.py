"""hyperspy_nanoml: unsupervised machine learning for nanomaterials characterisation.

Importing the package attaches a few methods to HyperSpy's own signal classes
(see :mod:`hyperspy_nanoml._methods`); every one of them is a thin wrapper over a
public function listed here, so ``img.local_fft_features()`` and
``hyperspy_nanoml.local_fft_features(img)`` are the same call.

The heavy modules load on first use, so ``import hyperspy_nanoml`` stays fast.
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first access, PEP 562)
_LAZY = {
    "local_fft_features": "hyperspy_nanoml.imaging.local_fft",
    "choose_n_components": "hyperspy_nanoml.learn.n_components",
    "NMF": "hyperspy_nanoml.learn.nmf",
    "nmf": "hyperspy_nanoml.learn.nmf",
    "nmf_decomposition": "hyperspy_nanoml.learn.decomposition",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyperspy_nanoml' has no attribute {name!r}")


def __dir__():
    return __all__


from hyperspy_nanoml import _methods  # noqa: E402

_methods.attach()
