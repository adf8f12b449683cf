"""Generated diffraction-like data with known non-negative factors, for the NMF tests."""

import pytest
from nanoml_test_helpers import make_dataset


@pytest.fixture(scope="session")
def spot_data():
    """3 phases, 40×40 scan of 32×32 patterns, Poisson noise; with the true factors."""
    return make_dataset()


@pytest.fixture(scope="session")
def spot_matrix(spot_data):
    data, patterns, maps = spot_data
    return data.reshape(-1, data.shape[-2] * data.shape[-1]), patterns, maps
