"""local_fft_features against generated images with known regions."""

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import hyperspy_nanoml as nml
from hyperspy_nanoml.data.textures import make_lazy_textured_image, make_textured_image
from hyperspy_nanoml.imaging.local_fft import full_centred_spectrum, window_spectra
from hyperspy_nanoml.signals.local_fft import LazyLocalFFTSignal, LocalFFTSignal

FOUR = ("vertical_lines", "oblique_lines", "particles", "grain")


def _signal(data, scale=2.5, units="nm"):
    s = hs.signals.Signal2D(data)
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units, ax.offset = scale, units, 10.0
    s.metadata.General.title = "textures"
    return s


def _window_truth(result, regions):
    """True region label at every window centre."""
    p = result.parameters()
    ny, nx = result.axes_manager.navigation_shape[::-1]
    c = (p["window"] - 1) // 2
    return regions[np.arange(ny)[:, None] * p["step"] + c, np.arange(nx) * p["step"] + c]


@pytest.fixture(scope="module")
def four_regions():
    data, regions = make_textured_image((1024, 1024), FOUR, noise=0.5, random_state=7)
    result = nml.local_fft_features(_signal(data), random_state=0)
    return data, regions, result


def test_recovers_regions_and_number(four_regions):
    data, regions, result = four_regions
    assert result.learning_results.output_dimension == 4
    ari_windows = adjusted_rand_score(
        _window_truth(result, regions).ravel(), result.segmentation().ravel()
    )
    ari_pixels = adjusted_rand_score(
        regions.ravel(), result.segmentation(on_image=True).ravel()
    )
    assert ari_windows > 0.9
    assert ari_pixels > 0.9


@pytest.mark.parametrize("noise", [0.1, 1.0, 3.0])
@pytest.mark.parametrize("shape", [(768, 768), (1024, 1536)])
def test_true_number_across_noise_and_size(noise, shape):
    for textures in (FOUR, FOUR[:2], FOUR[1:]):
        data, _ = make_textured_image(shape, textures, noise=noise, random_state=3)
        result = nml.local_fft_features(data, random_state=0, show_progressbar=False)
        assert result.learning_results.output_dimension == len(textures), textures


def test_axes_are_calibrated(four_regions):
    _, _, result = four_regions
    x, y = result.axes_manager.navigation_axes
    kx, ky = result.axes_manager.signal_axes
    assert (x.size, y.size) == (15, 15)
    assert x.units == "nm" and x.scale == pytest.approx(64 * 2.5)
    assert x.offset == pytest.approx(10.0 + 2.5 * 63.5)  # centre of the first window
    assert kx.units == "1/nm" and kx.scale == pytest.approx(1 / (128 * 2.5))
    assert kx.offset == pytest.approx(-64 / (128 * 2.5))  # zero frequency at index 64
    assert kx.index2value(64) == pytest.approx(0.0)
    assert isinstance(result, LocalFFTSignal)
    assert result.metadata.Signal.signal_type == "local_FFT"


def test_hyperspy_decomposition_api_works(four_regions):
    _, _, result = four_regions
    loadings = result.get_decomposition_loadings()
    factors = result.get_decomposition_factors()
    assert loadings.data.shape == (4, 15, 15)
    assert factors.data.shape == (4, 128, 128)
    assert loadings.axes_manager.signal_axes[0].units == "nm"
    assert np.all(result.learning_results.factors >= 0)
    model = result.get_decomposition_model()
    assert model.data.shape == result.data.shape


def test_factor_peaks_sit_at_the_texture_frequency(four_regions):
    """The horizontal-lines grating (period 9 px) must give peaks at kx = ±1/(9 px)."""
    _, regions, result = four_regions
    truth = _window_truth(result, regions)
    seg = result.segmentation()
    # the component that dominates the horizontal-lines region
    comp = np.bincount(seg[truth == 0]).argmax()
    kx, ky = result.axes_manager.signal_axes
    pattern = result.learning_results.factors[:, comp].reshape(ky.size, kx.size)
    iy, ix = np.unravel_index(np.argmax(pattern), pattern.shape)
    assert abs(kx.index2value(ix)) == pytest.approx(1 / (9 * 2.5), abs=kx.scale)
    assert ky.index2value(iy) == pytest.approx(0, abs=ky.scale)


def test_scale_invariance():
    data, _ = make_textured_image((768, 768), FOUR, random_state=1)
    a = nml.local_fft_features(data, random_state=0)
    b = nml.local_fft_features(data * 1000.0 + 5.0, random_state=0)
    assert a.learning_results.output_dimension == b.learning_results.output_dimension
    np.testing.assert_allclose(a.normalized_loadings(), b.normalized_loadings(), atol=1e-3)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-3, atol=1e-4)


def test_input_is_not_modified():
    data, _ = make_textured_image((512, 512), FOUR[:2], random_state=2)
    s = _signal(data.copy())
    nml.local_fft_features(s, n_components=2, random_state=0)
    np.testing.assert_array_equal(s.data, data)


def test_reproducible_with_random_state():
    data, _ = make_textured_image((768, 768), FOUR, random_state=4)
    a = nml.local_fft_features(data, random_state=3)
    b = nml.local_fft_features(data, random_state=3)
    np.testing.assert_array_equal(a.learning_results.loadings, b.learning_results.loadings)


def test_method_and_function_are_the_same(four_regions):
    data, _, result = four_regions
    via_method = _signal(data).local_fft_features(random_state=0)
    np.testing.assert_array_equal(
        via_method.learning_results.factors, result.learning_results.factors
    )


def test_full_spectrum_expansion_matches_fft2():
    rng = np.random.default_rng(0)
    img = rng.standard_normal((64, 64)).astype(np.float32)
    taper = np.ones((32, 32), np.float32)
    half = window_spectra(img, 32, 32, taper, "power", 1.0)
    full = full_centred_spectrum(half, 32)
    w = img[:32, :32] - img[:32, :32].mean()
    ref = np.abs(np.fft.fft2(w)) ** 2
    ref[0, 0] = 0
    np.testing.assert_allclose(full[0, 0], np.fft.fftshift(ref), rtol=1e-4, atol=1e-3)


def test_lazy_agrees_with_eager_over_several_strips(monkeypatch):
    from hyperspy_nanoml.imaging import local_fft

    monkeypatch.setattr(local_fft, "_WINDOWS_PER_BLOCK", 200)  # strips of 5 window rows
    image, _ = make_lazy_textured_image((2048, 2304), chunks=512, random_state=0)
    eager = nml.local_fft_features(image.compute(), random_state=0)
    lazy = nml.local_fft_features(image, random_state=0)
    assert isinstance(lazy, LazyLocalFFTSignal)
    assert len(lazy.data.chunks[0]) > 1  # really processed in strips
    assert (
        lazy.learning_results.output_dimension
        == eager.learning_results.output_dimension
        == 3
    )
    assert (
        adjusted_rand_score(lazy.segmentation().ravel(), eager.segmentation().ravel())
        > 0.98
    )
    np.testing.assert_allclose(
        lazy.data[5, 7].compute(), eager.data[5, 7], rtol=1e-4, atol=1e-5
    )
    stack = lazy.loadings_on_image()
    assert stack._lazy and stack.data.shape == (3, 2048, 2304)


def test_rgb_converted_with_a_warning():
    data, _ = make_textured_image((512, 512), FOUR[:2], random_state=5)
    rgb = np.stack([data, data, data], axis=-1)
    with pytest.warns(UserWarning, match="converted to grey"):
        result = nml.local_fft_features(rgb, n_components=2, random_state=0)
    assert result.axes_manager.navigation_shape == (7, 7)


def test_report_and_imagej_export(four_regions, tmp_path):
    import tifffile

    _, _, result = four_regions
    pdf = result.save_report(tmp_path / "report.pdf")
    assert pdf.stat().st_size > 10_000
    assert pdf.read_bytes()[:4] == b"%PDF"
    loadings_tif, factors_tif = result.export_imagej(tmp_path / "textures")
    with tifffile.TiffFile(loadings_tif) as tif:
        assert tif.is_imagej
        meta = tif.imagej_metadata
        stack = tif.asarray()
        xres = tif.pages[0].tags["XResolution"].value
    assert stack.shape == (4, 1024, 1024)
    assert meta["unit"] == "nm"
    assert xres[1] / xres[0] == pytest.approx(2.5, rel=1e-4)  # pixel size in nm
    np.testing.assert_allclose(stack, result.loadings_on_image().data, rtol=1e-6)
    with tifffile.TiffFile(factors_tif) as tif:
        assert tif.asarray().shape == (4, 128, 128)
        assert tif.imagej_metadata["unit"] == "1/nm"


def test_save_and_load_round_trip(four_regions, tmp_path):
    _, _, result = four_regions
    path = tmp_path / "result.hspy"
    result.save(path)
    back = hs.load(path)
    assert isinstance(back, LocalFFTSignal)
    np.testing.assert_array_equal(back.data, result.data)
    np.testing.assert_allclose(
        back.learning_results.loadings, result.learning_results.loadings
    )
    assert back.metadata.LocalFFT.window == 128
    assert back.segmentation().shape == (15, 15)


def test_reloaded_result_reports_with_the_image(four_regions, tmp_path):
    """The report reads the image preview saved in the metadata, not an attribute."""
    image, _, result = four_regions
    path = tmp_path / "result.hspy"
    result.save(path)
    back = hs.load(path)
    preview = np.asarray(back.metadata.Processing.local_fft_features.image_preview)
    data = np.asarray(image)
    f = back.metadata.Processing.local_fft_features.image_preview_factor
    assert preview.shape == (data.shape[0] // f, data.shape[1] // f)
    np.testing.assert_allclose(preview.mean(), data.mean(), rtol=1e-4)
    pdf = back.save_report(tmp_path / "reloaded.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_navigation_stack_refused():
    stack = hs.signals.Signal2D(np.ones((2, 256, 256), np.float32))
    with pytest.raises(ValueError, match=r"stack of images.*inav\[0\]"):
        nml.local_fft_features(stack)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"window": 1024}, ValueError, "larger than the image"),
        ({"step": 0}, ValueError, "step must be a positive"),
        ({"step": -3}, ValueError, "step must be a positive"),
        ({"window": 33}, ValueError, "even number"),
        ({"step": 1.5}, TypeError, "integer"),
        ({"taper": "gauss"}, ValueError, "unknown taper"),
        ({"scaling": "abs"}, ValueError, "unknown scaling"),
        ({"n_components": "many"}, ValueError, "auto"),
        ({"n_components": 0}, ValueError, ">= 1"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    data = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    with pytest.raises(error, match=match):
        nml.local_fft_features(data, **kwargs)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_bad_images():
    rng = np.random.default_rng(0)
    img = rng.random((300, 300)).astype(np.float32)
    bad = img.copy()
    bad[5, 5] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        nml.local_fft_features(bad)
    bad[5, 5] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        nml.local_fft_features(da.from_array(bad, chunks=100))
    with pytest.raises(TypeError, match="complex"):
        nml.local_fft_features(img + 1j * img)
    with pytest.raises(ValueError, match="2-D image"):
        nml.local_fft_features(rng.random((4, 5, 6, 7)))
    with pytest.raises(ValueError, match="constant"):
        nml.local_fft_features(np.ones((300, 300)))
    with pytest.raises(ValueError, match="2-D image"):
        nml.local_fft_features(hs.signals.Signal1D(rng.random((300, 300))))


@pytest.mark.parametrize("textures", [("particles", "flat"), FOUR + ("flat",)])
def test_a_flat_region_counts_as_a_texture(textures):
    data, regions = make_textured_image((1024, 1024), textures, noise=0.5, random_state=3)
    result = nml.local_fft_features(data, random_state=0)
    assert result.learning_results.output_dimension == len(textures)
    truth = _window_truth(result, regions)
    assert adjusted_rand_score(truth.ravel(), result.segmentation().ravel()) > 0.85
