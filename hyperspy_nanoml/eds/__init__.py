"""SEM-EDS quantification: XPP matrix correction, fitted line intensities, ``quantify()``
and the spectrum-image workflow ``bss_quantify()``.

Public names load on first use (PEP 562), so ``import hyperspy_nanoml.eds`` stays light.
"""

import importlib

# public name -> module that defines it
_LAZY = {
    "k_ratio": "hyperspy_nanoml.eds.xpp",
    "composition_from_k_ratios": "hyperspy_nanoml.eds.xpp",
    "fit_lines": "hyperspy_nanoml.eds.lines",
    "quantify": "hyperspy_nanoml.eds.quantify",
    "bss_quantify": "hyperspy_nanoml.eds.bss_quantify",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyperspy_nanoml.eds' has no attribute {name!r}")


def __dir__():
    return __all__
