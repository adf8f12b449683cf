"""local_fft_features on the real Zeiss SEM image pair (skips when ../shared is absent)."""

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import hyperspy_nanoml as nml
from hyperspy_nanoml.cli import main

SEM = "sem/zeiss_sem_fib_lamella_2x2048x1536.tif"


@pytest.fixture(scope="module")
def sem_pair(shared_data):
    path = shared_data / SEM
    if not path.is_file():
        pytest.skip(f"real SEM image {path} is absent from ../shared/data")
    return path, hs.load(path)


def test_calibrated_result_on_real_image(sem_pair):
    _, pair = sem_pair
    img = pair.inav[0]
    result = nml.local_fft_features(img, random_state=0)
    x = result.axes_manager.navigation_axes[0]
    kx = result.axes_manager.signal_axes[0]
    assert result.axes_manager.navigation_shape == (31, 23)
    # 12.3 nm pixels: windows every 64 px = 0.789 µm, frequency step 1/(128 px)
    assert x.units == "µm" and x.scale == pytest.approx(64 * 0.0123264, rel=1e-3)
    assert kx.units == "1/µm" and kx.scale == pytest.approx(1 / (128 * 0.0123264), rel=1e-3)
    k = result.learning_results.output_dimension
    assert 2 <= k <= 12  # a handful of textures (curtaining, lamella, background), not 9-12
    assert np.all(np.isfinite(result.learning_results.loadings))
    # the input is untouched and the features are scale-free on real data too
    scaled = nml.local_fft_features(img.data.astype(np.float32) * 1000, random_state=0)
    assert scaled.learning_results.output_dimension == k
    assert (
        adjusted_rand_score(result.segmentation().ravel(), scaled.segmentation().ravel())
        > 0.95
    )


def test_lazy_equals_eager_on_real_image(sem_pair):
    _, pair = sem_pair
    data = pair.inav[1].data
    eager = nml.local_fft_features(data, random_state=0)
    lazy = nml.local_fft_features(da.from_array(data, chunks=512), random_state=0)
    assert lazy.learning_results.output_dimension == eager.learning_results.output_dimension
    np.testing.assert_allclose(
        lazy.normalized_loadings(), eager.normalized_loadings(), atol=2e-3
    )


@pytest.mark.slow
def test_cli_on_the_real_tiff_stack(sem_pair, tmp_path, capsys):
    path, _ = sem_pair
    assert main(["local-fft", str(path), "--out", str(tmp_path)]) == 0
    for i in (0, 1):
        stem = tmp_path / f"{path.stem}_{i}_local_fft"
        assert stem.with_suffix(".pdf").stat().st_size > 10_000
        back = hs.load(stem.with_suffix(".hspy"))
        assert back.axes_manager.navigation_axes[0].units == "µm"
