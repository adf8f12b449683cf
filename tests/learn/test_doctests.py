"""The examples in the docstrings of the core run and give what they show."""

import doctest
import importlib

import pytest

MODULES = [
    "hyperspy_nanoml._validation",
    "hyperspy_nanoml.learn.blocks",
    "hyperspy_nanoml.learn.nmf",
    "hyperspy_nanoml.learn.n_components",
    "hyperspy_nanoml.learn.signal_matrix",
    "hyperspy_nanoml.learn.decomposition",
    "hyperspy_nanoml.learn.verification",
    "hyperspy_nanoml.learn.poisson",
    "hyperspy_nanoml.report.nmf_report",
    "hyperspy_nanoml.imaging.spectra",
    "hyperspy_nanoml.diffraction.preprocess",
    "hyperspy_nanoml.diffraction.workflow",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
