"""SPED the pyxem way: method on pyxem's signals, calibrated results, CLI (issue 11)."""

import numpy as np
import pytest

pytest.importorskip("pyxem")

from sklearn.metrics import adjusted_rand_score  # noqa: E402

from hyperspy_nanoml.data.pyxem_grains import pyxem_grains  # noqa: E402
from hyperspy_nanoml.data.sped import make_sped_phases  # noqa: E402
from hyperspy_nanoml.diffraction.calibration import phase_results  # noqa: E402
from hyperspy_nanoml.diffraction.workflow import sped_phase_map  # noqa: E402


def _grain_map(maps):
    """Arg-max of the maps normalised to max 1 (NaN = excluded -> -1)."""
    data = np.asarray(maps.data)  # k x rows x cols
    label = np.nanargmax(np.nan_to_num(data, nan=-1.0), axis=0)
    return np.where(np.isnan(data).all(axis=0), -1, label)


@pytest.fixture(scope="module")
def grains_2000():
    return pyxem_grains(2000.0, size=24, random_state=1)


def test_method_on_pyxem_signals_and_calibration(grains_2000):
    import hyperspy_nanoml  # noqa: F401  (attaches the methods)

    s, truth = grains_2000
    assert truth.diffracting.all() and truth.n_grains == 6
    out = s.sped_phase_map(truth.n_grains, random_state=0)
    assert out is not s and s.learning_results.factors is None
    ref = sped_phase_map(s, truth.n_grains, random_state=0)  # the method is the function
    np.testing.assert_array_equal(
        out.learning_results.factors, ref.learning_results.factors
    )
    record = out.metadata.Processing.sped_phase_map
    assert record.vacuum_patterns == 0  # every pattern diffracts: none dropped
    patterns, maps = phase_results(out)
    # grains recovered
    ari = adjusted_rand_score(truth.labels.ravel(), _grain_map(maps).ravel())
    assert ari > 0.95, ari
    # calibrated: patterns on the input's reciprocal axes, maps on the scan's
    assert type(patterns).__name__ == "ElectronDiffraction2D"
    for a, b in zip(patterns.axes_manager.signal_axes, s.axes_manager.signal_axes):
        assert (a.units, a.scale, a.offset, a.name) == (b.units, b.scale, b.offset, b.name)
    assert patterns.axes_manager.signal_axes[0].units == "Å⁻¹"
    for a, b in zip(maps.axes_manager.signal_axes, s.axes_manager.navigation_axes):
        assert (a.units, a.scale, a.name) == (b.units, b.scale, b.name)
    assert np.nanmax(maps.data) == pytest.approx(1.0)
    # the factor pattern of each grain matches the true pattern outside the beam
    beam = np.isnan(patterns.data[0])
    true = truth.patterns.reshape(6, -1)[:, ~beam.ravel()]
    found = patterns.data.reshape(len(patterns.data), -1)[:, ~beam.ravel()]
    cos = (true / np.linalg.norm(true, axis=1, keepdims=True)) @ (
        found / np.linalg.norm(found, axis=1, keepdims=True)
    ).T
    assert cos.max(axis=1).min() > 0.95


def test_number_of_grains_chosen(grains_2000):
    s, truth = grains_2000
    out = sped_phase_map(s, random_state=0)
    assert out.metadata.Processing.sped_phase_map.n_components == truth.n_grains


def test_lazy_twin_has_the_method(grains_2000):
    import hyperspy_nanoml  # noqa: F401

    s, _ = grains_2000
    lazy = s.as_lazy()
    out = lazy.sped_phase_map(6, random_state=0)
    assert out._lazy
    patterns, maps = phase_results(out)
    assert not patterns._lazy and patterns.data.shape[0] == 6


def test_our_sped_maps_calibrated():
    s, truth = make_sped_phases((24, 24), 64, random_state=0)
    out = sped_phase_map(s, random_state=0)
    patterns, maps = phase_results(out)
    assert maps.axes_manager.signal_axes[0].units == "nm"
    assert patterns.axes_manager.signal_axes[0].units == s.axes_manager.signal_axes[0].units
    # vacuum positions are NaN in every map, exactly the true vacuum
    np.testing.assert_array_equal(np.isnan(maps.data).all(axis=0), truth.regions["vacuum"])
    with pytest.raises(ValueError, match="no decomposition"):
        phase_results(s)


def test_cli_sped(tmp_path, capsys):
    from hyperspy_nanoml.cli import main
    from hyperspy_nanoml.data.sped import write_sped_zspy

    path = tmp_path / "scan.zspy"
    write_sped_zspy(path, 16 * 16, 32, random_state=0)
    assert main(["sped", str(path), "--n-components", "3", "--n-restarts", "1"]) == 0
    out = capsys.readouterr().out
    assert "3 phases" in out
    for suffix in ("_sped.pdf", "_sped.zspy", "_sped_maps.hspy", "_sped_patterns.hspy"):
        assert (tmp_path / f"scan{suffix}").exists()
    # a second run never overwrites: it writes scan_2_*
    assert main(["sped", str(path), "--n-components", "3", "--n-restarts", "1"]) == 0
    assert (tmp_path / "scan_2_sped.zspy").exists()
    assert main(["sped", str(tmp_path / "missing.zspy")]) == 1
    # the binning can be given; patterns are written at the detector's resolution
    assert main(["sped", str(path), "--n-components", "3", "--binning", "2"]) == 0
    import hyperspy.api as hs

    result = hs.load(tmp_path / "scan_3_sped.zspy")
    assert result.metadata.Processing.sped_phase_map.binning == 2
    assert hs.load(tmp_path / "scan_3_sped_patterns.hspy").data.shape[1:] == (32, 32)
    with pytest.raises(SystemExit, match="--binning"):
        main(["sped", str(path), "--binning", "two"])


@pytest.fixture(scope="module")
def sparse_grains():
    """pyxem's grains at 500 electrons per pattern (0.12 per pixel, 78 % in the
    beam): unbinned, the least diffracting grain keeps 37 counts per pattern
    outside the beam mask and was lost (5 grains found for 6, ARI 0.976)."""
    return pyxem_grains(500.0, size=40, random_state=2)


@pytest.mark.parametrize("lazy", [False, True])
def test_sparse_counts_binned_and_every_grain_found(sparse_grains, lazy):
    import dask.array as da
    from nanoml_test_helpers import CountingArray

    s, truth = sparse_grains
    data = s
    if lazy:  # scan rows counted as they are read
        counting = CountingArray(np.asarray(s.data))
        data = s._deepcopy_with_new_data(
            da.from_array(counting, chunks=(8, 40, 64, 64), asarray=False)
        ).as_lazy()
    out = sped_phase_map(data, random_state=0)
    record = out.metadata.Processing.sped_phase_map
    assert record.binning == 2 and record.binning_source == "auto"
    assert "sparse counts" in record.binning_reason
    assert record.vacuum_patterns == 0  # none dropped
    # the report's first page says what was done before the fit
    from hyperspy_nanoml.diffraction.workflow import _report_notes

    notes = _report_notes(out)
    assert notes[0].startswith("patterns binned 2 x 2") and "full resolution" in notes[0]
    assert notes[1].startswith("direct beam masked") and "Å⁻¹" in notes[1]
    assert notes[2] == "vacuum patterns left out of the fit: 0"
    assert record.n_components == truth.n_grains == 6
    patterns, maps = phase_results(out)
    ari = adjusted_rand_score(truth.labels.ravel(), _grain_map(maps).ravel())
    assert ari > 0.95, ari
    # the patterns come at the detector's resolution, on the input's axes, and
    # match the true grain patterns outside the beam
    assert patterns.data.shape[1:] == s.data.shape[-2:]
    for a, b in zip(patterns.axes_manager.signal_axes, s.axes_manager.signal_axes):
        assert (a.units, a.scale, a.offset, a.name) == (b.units, b.scale, b.offset, b.name)
    beam = np.isnan(patterns.data[0])
    assert 0 < beam.sum() < 0.1 * beam.size
    true = truth.patterns.reshape(6, -1)[:, ~beam.ravel()]
    found = patterns.data.reshape(6, -1)[:, ~beam.ravel()]
    cos = (true / np.linalg.norm(true, axis=1, keepdims=True)) @ (
        found / np.linalg.norm(found, axis=1, keepdims=True)
    ).T
    # 5 grains > 0.98; one (125 patterns, 96 counts each outside the beam) at 0.88,
    # as noisy as the binned fit's own pattern of it (0.91 against the binned truth)
    best = np.sort(cos.max(axis=1))
    assert best[0] > 0.85 and best[1] > 0.97, best
    # the binned patterns of the fit: same field of view in Å⁻¹, 2 x the pixel
    binned, _ = phase_results(out, full_resolution=False)
    kx, sx = binned.axes_manager.signal_axes[0], s.axes_manager.signal_axes[0]
    assert kx.units == "Å⁻¹" and kx.scale == pytest.approx(2 * sx.scale)
    assert kx.offset + kx.scale * (kx.size - 0.5) == pytest.approx(
        sx.offset + sx.scale * (sx.size - 0.5)
    )
    # summed over each bin, the full-resolution patterns agree with the binned ones
    summed = patterns.data.reshape(6, 32, 2, 32, 2).sum(axis=(2, 4))
    fit = ~np.isnan(binned.data[0])
    np.testing.assert_allclose(
        summed[:, fit], binned.data[:, fit], atol=0.05 * np.nanmax(binned.data)
    )
    if lazy:  # the NMF's first pass found the counts sparse: stopped, and its
        # statistics served the beam, vacuum and binning; the NMF on the binned
        # patterns (small: read once, held), one pass for the full-resolution patterns
        assert out._lazy
        nmf_passes = out.metadata.Processing.nmf_decomposition.passes_over_data
        assert record.passes_over_data == nmf_passes + 2
        assert out.metadata.Processing.nmf_decomposition.reads_of_data == 1
        # 3 reads of the 40 scan rows, and the first scan row's 40 patterns twice
        # (are they counts? asked by the first pass's path and the binned one)
        assert counting.rows_read == 3 * 40 + 2 * 40
