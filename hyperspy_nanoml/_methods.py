"""The one place where methods are attached to classes that other packages own.

Each attached method is a thin wrapper over a public function of
``hyperspy_nanoml`` that takes the signal as first argument, so both spellings
work and the tests exercise the function. An attribute that already exists is
never replaced: if HyperSpy (or another extension) grows a method of the same
name, theirs wins and ours stays reachable as the function.

Owners that are not imported yet (exspy, pyxem: a second or more each) are not
imported for us: their methods are attached the moment the user's own code imports
them (a post-import hook on ``sys.meta_path``), so ``import hyperspy_nanoml`` stays
fast and ``hs.load(...)`` of an EDS or diffraction file still gets the methods.
"""

import functools
import importlib
import importlib.abc
import importlib.util
import logging
import sys

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
        "bss_quantify",
        "hyperspy_nanoml.eds.bss_quantify",
        "bss_quantify",
    ),
    (
        "exspy.signals",
        "EDSSEMSpectrum",
        "quantify",
        "hyperspy_nanoml.eds.quantify",
        "quantify",
    ),
    (
        "pyxem.signals",
        "Diffraction2D",
        "sped_phase_map",
        "hyperspy_nanoml.diffraction.workflow",
        "sped_phase_map",
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


def _attach_one(owner, owner_class, name, impl_module, impl_name):
    cls = getattr(owner, owner_class, None)
    if cls is None:
        _logger.info(
            "not attaching %s.%s: %s has no %s", owner_class, name, owner, owner_class
        )
        return
    if hasattr(cls, name):
        if (cls, name) not in attached:
            _logger.info("%s.%s already exists; not replacing it", owner_class, name)
        return
    try:
        method = _wrapper(impl_module, impl_name)
    except Exception as error:  # never break the import of the owner's package
        _logger.warning("could not attach %s.%s: %s", owner_class, name, error)
        return
    setattr(cls, name, method)
    attached.append((cls, name))


class _AttachAfterImport(importlib.abc.MetaPathFinder):
    """Attach the pending methods of a module right after it is first imported."""

    def __init__(self):
        self.pending = {}  # owner module name -> attachment tuples

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending:
            return None
        for finder in sys.meta_path:  # the spec the import would have used
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, hook = spec.loader, self

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                for entry in hook.pending.pop(fullname, []):
                    _attach_one(module, *entry)

        spec.loader = _Loader()
        return spec


_hook = _AttachAfterImport()


def attach():
    """Attach the methods (now, or when their owner module is imported); idempotent."""
    for owner_module, *entry in _ATTACHMENTS:
        owner = sys.modules.get(owner_module)
        if owner is not None:
            _attach_one(owner, *entry)
            continue
        if importlib.util.find_spec(owner_module.split(".")[0]) is None:
            _logger.info(
                "not attaching %s.%s: %s is not installed", *entry[:2], owner_module
            )
            continue
        queued = _hook.pending.setdefault(owner_module, [])
        if tuple(entry) not in queued:
            queued.append(tuple(entry))
        if _hook not in sys.meta_path:
            sys.meta_path.insert(0, _hook)
