"""The one place where methods are attached to classes that other packages own.

Each attached method is a thin wrapper over a public function of
``hyperspy_nanoml`` that takes the signal as first argument, so both spellings
work and the tests exercise the function. An attribute that already exists is
never replaced: if HyperSpy (or another extension) grows a method of the same
name, theirs wins and ours stays reachable as the function.
"""

import functools
import importlib
import logging

_logger = logging.getLogger(__name__)

# (owner module, owner class, method name, implementing module, function name)
_ATTACHMENTS = [
    (
        "hyperspy._signals.signal2d",
        "Signal2D",
        "local_fft_features",
        "hyperspy_nanoml.imaging.local_fft",
        "local_fft_features",
    ),
    (
        "exspy.signals",
        "EDSSEMSpectrum",
        "quantify",
        "hyperspy_nanoml.eds.quantify",
        "quantify",
    ),
    (
        "hyperspy.signal",
        "BaseSignal",
        "nmf_decomposition",
        "hyperspy_nanoml.learn.decomposition",
        "nmf_decomposition",
    ),
]

attached = []  # (class, name) pairs actually attached, for introspection and tests


def _wrapper(module_name, function_name):
    # Implementing modules keep their top-level imports light (numpy, scipy) and
    # import heavy dependencies inside functions, so this import is cheap.
    module = importlib.import_module(module_name)
    function = getattr(module, function_name)

    @functools.wraps(function)
    def method(self, *args, **kwargs):
        return function(self, *args, **kwargs)

    return method


def attach():
    """Attach the methods; safe to call more than once."""
    for owner_module, owner_class, name, impl_module, impl_name in _ATTACHMENTS:
        try:
            cls = getattr(importlib.import_module(owner_module), owner_class)
        except (ImportError, AttributeError) as error:  # optional owner missing
            _logger.info("not attaching %s.%s: %s", owner_class, name, error)
            continue
        if hasattr(cls, name):
            if (cls, name) not in attached:
                _logger.info("%s.%s already exists; not replacing it", owner_class, name)
            continue
        setattr(cls, name, _wrapper(impl_module, impl_name))
        attached.append((cls, name))
