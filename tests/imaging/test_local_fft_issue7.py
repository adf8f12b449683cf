"""Natural textures, data bars, edges, report colours and the CLI's outputs (issue 7)."""

import os

import hyperspy.api as hs
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import hyperspy_nanoml as nml
from hyperspy_nanoml.cli import main
from hyperspy_nanoml.data.textures import make_textured_image
from hyperspy_nanoml.imaging.data_bar import detect_data_bar
from hyperspy_nanoml.imaging.texture_features import sector_matrix, texture_regions
from hyperspy_nanoml.report.local_fft_outputs import unique_stems
from hyperspy_nanoml.report.local_fft_pages import component_colours, dominant_map_colours

TWO = ("oblique_lines", "grain")


def _quadrants(names):
    from hyperspy_nanoml.data.textures import photographed_texture_quadrants

    return photographed_texture_quadrants(names)


def test_natural_texture_quadrants_with_the_true_number():
    pytest.importorskip("skimage")
    img, truth = _quadrants(["brick", "grass", "gravel", "moon"])
    regions = texture_regions(img, 4, random_state=0)
    ari = adjusted_rand_score(truth.ravel(), regions.on_image(img.shape).ravel())
    assert ari >= 0.9


def test_sector_matrix_averages_every_bin_once():
    S, edges = sector_matrix(64, 6, 8)
    assert np.allclose(S.sum(axis=0), 1)
    assert np.all((S > 0).sum(axis=1) <= 1)  # a bin is in at most one sector
    assert edges[0] == pytest.approx(2.0) and edges[-1] == pytest.approx(32.0)


def _with_data_bar(data, height=60):
    """A black info strip with white 'text' blocks along the bottom (Zeiss-like)."""
    bar = np.zeros((height, data.shape[1]), np.float32)
    for x0 in range(20, data.shape[1] - 80, 120):
        bar[15:30, x0 : x0 + 70] = 255.0
        bar[38:50, x0 + 10 : x0 + 40] = 255.0
    return np.vstack([data, bar])


def test_data_bar_is_detected_cropped_and_reported():
    data, _ = make_textured_image((512, 500), TWO, noise=0.5, random_state=1)
    img = _with_data_bar(data)
    assert detect_data_bar(img) == {"edge": "bottom", "rows": (512, 572)}
    assert detect_data_bar(data) is None
    s = hs.signals.Signal2D(img)
    with pytest.warns(UserWarning, match="data bar.*bottom.*left out"):
        result = nml.local_fft_features(s, n_components=2, random_state=0)
    region = result.metadata.LocalFFT.region
    assert list(region["crop"]) == [0, 512, 0, 500]
    assert tuple(result.metadata.LocalFFT.image_shape) == (512, 500)
    kept = nml.local_fft_features(s, n_components=2, random_state=0, data_bar="keep")
    assert tuple(kept.metadata.LocalFFT.image_shape) == (572, 500)
    cropped = nml.local_fft_features(s, n_components=2, crop=(0, 256, 0, 500))
    assert tuple(cropped.metadata.LocalFFT.image_shape) == (256, 500)


def test_edges_covered_by_reflect_padding_and_nan_when_dropped():
    data, regions = make_textured_image((500, 500), TWO, noise=0.5, random_state=2)
    padded = nml.local_fft_features(data, n_components=2, random_state=0)
    assert padded.axes_manager.navigation_shape == (7, 7)  # last windows end at 500
    assert list(padded.metadata.LocalFFT.padding) == [12, 12]
    stack = padded.loadings_on_image().data
    assert stack.shape == (2, 500, 500) and np.all(np.isfinite(stack))
    dropped = nml.local_fft_features(data, n_components=2, random_state=0, edges="drop")
    stack = dropped.loadings_on_image().data
    assert np.all(np.isnan(stack[:, 448:, :])) and np.all(np.isnan(stack[:, :, 448:]))
    assert np.all(np.isfinite(stack[:, :448, :448]))
    seg = dropped.segmentation(on_image=True)
    assert np.all(seg[448:] == -1) and np.all(seg[:448, :448] >= 0)
    ari = adjusted_rand_score(regions.ravel(), padded.segmentation(on_image=True).ravel())
    assert ari > 0.8


def test_loadings_on_image_rejects_bad_downsample():
    data, _ = make_textured_image((256, 256), TWO, random_state=0)
    result = nml.local_fft_features(data, window=64, step=32, n_components=2)
    for bad in (0, -2, 1.5):
        with pytest.raises(ValueError, match="downsample must be an integer >= 1"):
            result.loadings_on_image(downsample=bad)
    assert result.loadings_on_image(downsample=4).data.shape == (2, 64, 64)


def test_component_choice_is_never_none():
    data, _ = make_textured_image((256, 256), TWO, random_state=0)
    result = nml.local_fft_features(data, window=64, step=32, n_components=3)
    assert result.component_choice.n_components == 3
    assert "given" in result.component_choice.reason


def test_tiny_image_gets_a_valid_suggestion():
    with pytest.raises(ValueError, match=r"window=8\b"):
        nml.local_fft_features(np.random.default_rng(0).random((20, 20)))
    with pytest.raises(ValueError, match="too small"):
        nml.local_fft_features(np.random.default_rng(0).random((6, 20)))


def test_non_uniform_axis_is_refused_clearly():
    s = hs.signals.Signal2D(np.random.default_rng(0).random((64, 64)))
    s.axes_manager.signal_axes[0].convert_to_non_uniform_axis()
    with pytest.raises(ValueError, match="not uniform"):
        nml.local_fft_features(s, window=32, step=16)


def test_report_colours_match_between_panels_and_dominant_map(tmp_path):
    """Component i has the same colour in its panel and in the dominant map."""
    import matplotlib

    from hyperspy_nanoml.report.local_fft_pages import page_overlays

    data, _ = make_textured_image(
        (384, 384), ("oblique_lines", "grain", "particles"), random_state=0
    )
    result = nml.local_fft_features(
        data, window=64, step=32, n_components=3, random_state=0
    )
    maps = np.asarray(result.loadings_on_image().data)
    fig = page_overlays(result, data, result.parameters(), maps)
    axes = fig.axes
    cmap = dominant_map_colours(3)
    dominant_image = axes[3].images[0]
    for i, colour in enumerate(component_colours(3)):
        np.testing.assert_allclose(
            matplotlib.colors.to_rgb(axes[i].title.get_color()), colour
        )
        overlay = np.asarray(axes[i].images[1].get_array())[..., :3].reshape(-1, 3)
        np.testing.assert_allclose(overlay[0], colour, rtol=1e-6)
        # the dominant map's norm sends class i to colour i
        rgba = dominant_image.cmap(dominant_image.norm(i))
        np.testing.assert_allclose(rgba[:3], colour)
        np.testing.assert_allclose(cmap(i)[:3], colour)
    import matplotlib.pyplot as plt

    plt.close(fig)
    pdf = result.save_report(tmp_path / "r.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"


def test_unique_stems_never_collide(tmp_path):
    stems = unique_stems([tmp_path / "a" / "img.tif", tmp_path / "b" / "img.tif"], tmp_path)
    assert len({str(s) for s in stems.values()}) == 2
    stems = unique_stems([tmp_path / "img.tif", tmp_path / "img.png"])
    assert sorted(s.name for s in stems.values()) == ["img_png", "img_tif"]


@pytest.fixture
def two_images(tmp_path):
    data, _ = make_textured_image((256, 256), TWO, random_state=0)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        s = hs.signals.Signal2D(data * (1 if folder == "a" else 2))
        s.save(tmp_path / folder / "img.hspy")
    return tmp_path


def test_cli_same_stem_inputs_keep_both_results(two_images, capsys):
    out = two_images / "out"
    args = ["local-fft", str(two_images / "a/img.hspy"), str(two_images / "b/img.hspy")]
    assert main(args + ["--window", "64", "--step", "32", "--out", str(out)]) == 0
    results = sorted(p.name for p in out.glob("*_local_fft.hspy"))
    assert results == ["a_img_hspy_local_fft.hspy", "b_img_hspy_local_fft.hspy"]
    assert not list(out.glob(".*part*"))  # no temporary file left


def test_cli_bad_out_and_inputs_fail_early_and_clearly(two_images, capsys):
    img = str(two_images / "a/img.hspy")
    target = two_images / "afile"
    target.write_text("x")
    with pytest.raises(SystemExit, match="is a file, not a folder"):
        main(["local-fft", img, "--out", str(target)])
    with pytest.raises(SystemExit, match="n-components"):
        main(["local-fft", img, "--n-components", "many"])
    assert main(["local-fft", str(two_images / "a"), "--out", str(two_images / "o")]) == 1
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_cli_read_only_out(two_images):
    ro = two_images / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(SystemExit, match="not writable"):
            main(["local-fft", str(two_images / "a/img.hspy"), "--out", str(ro)])
    finally:
        ro.chmod(0o700)


def test_failed_tiff_export_leaves_no_mixed_outputs(two_images, monkeypatch):
    from hyperspy_nanoml.signals.local_fft import LocalFFTSignal

    out = two_images / "out"
    img = str(two_images / "a/img.hspy")
    opts = ["--window", "64", "--step", "32", "--out", str(out)]
    assert main(["local-fft", img, *opts]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(LocalFFTSignal, "export_imagej", broken)
    assert main(["local-fft", img, *opts]) == 1  # reported, batch goes on
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after == before  # the old set untouched, no new report beside old TIFFs


def _vendor_bar(width, style, rng):
    """Drawn info strips in the styles of common vendors: flat background, rows of
    glyph-like blocks (text), and the style's own furniture."""
    height, background, ink, text_rows = {
        "fei": (70, 0.0, 255.0, (8, 30, 50)),  # black table, white text, cell lines
        "jeol": (28, 40.0, 255.0, (9,)),  # thin dark-grey strip, one line of text
        "tescan": (90, 230.0, 0.0, (8, 28, 48, 68)),  # light strip, dark text, logo
    }[style]
    bar = np.full((height, width), background, np.float32)
    for y in text_rows:
        x = 10
        while x < width - 120:
            word = int(rng.integers(3, 9))  # glyphs per word
            for _ in range(word):
                w = int(rng.integers(3, 7))
                bar[y : y + 11, x : x + w] = ink  # one glyph, 11 px high
                x += w + 2
            x += int(rng.integers(12, 40))  # gap between fields
    if style == "fei":
        bar[:, :: width // 6] = ink  # table cell borders
        bar[0] = ink
    if style == "jeol":
        bar[20:23, width - 100 : width - 20] = ink  # the scale bar
    if style == "tescan":
        logo = (np.indices((60, 60)).sum(0) // 6 % 2) * 255.0  # a patterned logo
        bar[15:75, width - 80 : width - 20] = logo
    return bar


@pytest.mark.parametrize("style", ["fei", "jeol", "tescan"])
def test_vendor_data_bars_of_different_heights_are_found(style):
    """FEI/Thermo (black table, 70 px), JEOL (thin dark-grey strip, 28 px) and TESCAN
    (light strip with a logo, 90 px) style strips under a uint8 micrograph: the
    exact rows are found, the strip is left out with a warning, and a micrograph
    without a strip is left alone."""
    rng = np.random.default_rng(3)
    data, _ = make_textured_image((384, 448), TWO, noise=0.5, random_state=2)
    micrograph = np.clip((data - data.min()) / np.ptp(data) * 255, 0, 255)
    bar = _vendor_bar(448, style, rng)
    img = np.vstack([micrograph, bar]).astype(np.uint8)
    assert detect_data_bar(img) == {"edge": "bottom", "rows": (384, 384 + len(bar))}
    assert detect_data_bar(micrograph.astype(np.uint8)) is None
    with pytest.warns(UserWarning, match="data bar"):
        result = nml.local_fft_features(img, window=64, step=32, n_components=2)
    assert tuple(result.metadata.LocalFFT.image_shape) == (384, 448)
    # at the top edge (some vendors) it is found too
    flipped = np.vstack([bar[::-1], micrograph]).astype(np.uint8)
    assert detect_data_bar(flipped) == {"edge": "top", "rows": (0, len(bar))}
