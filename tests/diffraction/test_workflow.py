"""One-call SPED workflow: phases recovered on generated data with ground truth."""

import numpy as np
import pytest

from hyperspy_nanoml.data.sped import make_sped_phases, write_sped_zspy
from hyperspy_nanoml.diffraction.workflow import sped_phase_map
from hyperspy_nanoml.learn.verification import match_components


def _scores(signal, truth):
    """Matched cosine similarity of patterns (unmasked pixels) and maps (fitted positions)."""
    lr = signal.learning_results
    factors = np.asarray(lr.factors).T  # k x pixels, NaN on the masked beam
    loadings = np.asarray(lr.loadings)  # positions x k, NaN on vacuum
    pixels = ~np.isnan(factors).any(axis=0)
    positions = ~np.isnan(loadings).any(axis=1)
    n = truth.n_phases
    patterns = truth.patterns.reshape(n, -1)[:, pixels]
    sim, index = match_components(patterns, factors[:, pixels])
    true_maps = truth.loadings.reshape(-1, n)[positions].T
    map_sim, _ = match_components(true_maps, loadings[positions][:, index].T)
    return (
        sim,
        np.diag(
            (true_maps / np.linalg.norm(true_maps, axis=1, keepdims=True))
            @ (
                loadings[positions][:, index]
                / np.linalg.norm(loadings[positions][:, index], axis=0)
            )
        ),
        map_sim,
    )


@pytest.fixture(scope="module")
def phases():
    return make_sped_phases((48, 48), 64, random_state=0)


def test_phases_recovered(phases):
    s, truth = phases
    out = sped_phase_map(s, random_state=0)
    assert out is not s and s.learning_results.factors is None  # input untouched
    lr = out.learning_results
    assert lr.factors.shape == (64 * 64, truth.n_phases)  # chosen number = truth
    assert (
        "stand above the noise"
        in out.metadata.Processing.sped_phase_map.n_components_choice
    )
    pattern_sim, map_sim, _ = _scores(out, truth)
    assert pattern_sim.min() > 0.9, pattern_sim
    assert map_sim.min() > 0.9, map_sim
    record = out.metadata.Processing.sped_phase_map
    assert record.n_components == truth.n_phases
    assert record.vacuum_patterns == truth.regions["vacuum"].sum()
    assert np.hypot(*(np.array(record.direct_beam_centre) - truth.direct_beam_centre)) < 0.5
    # loadings are NaN exactly on vacuum, factors NaN exactly on the beam mask
    vacuum = np.isnan(np.asarray(lr.loadings)[:, 0]).reshape(truth.nav_shape)
    np.testing.assert_array_equal(vacuum, truth.regions["vacuum"])
    assert np.isnan(np.asarray(lr.factors)[:, 0]).sum() == record.masked_pixels
    # HyperSpy's own accessors work on the result
    maps = out.get_decomposition_loadings()
    assert maps.axes_manager.navigation_shape == (truth.n_phases,)
    assert maps.axes_manager.signal_axes[0].units == "nm"


def test_given_number_and_options(phases):
    s, truth = phases
    out = sped_phase_map(
        s, 2, random_state=0, exclude_vacuum=False, normalize_poissonian_noise=False
    )
    assert out.learning_results.factors.shape[1] == 2
    record = out.metadata.Processing.sped_phase_map
    assert record.n_components_choice == "given"
    assert "vacuum_patterns" not in record
    assert not np.isnan(np.asarray(out.learning_results.loadings)).any()


@pytest.mark.slow
@pytest.mark.parametrize("n_phases", [2, 4])
def test_number_of_phases_chosen(n_phases):
    s, truth = make_sped_phases((48, 48), 64, n_phases=n_phases, random_state=1)
    out = sped_phase_map(s, random_state=0)
    assert out.learning_results.factors.shape[1] == n_phases
    pattern_sim, map_sim, _ = _scores(out, truth)
    assert pattern_sim.min() > 0.9 and map_sim.min() > 0.9


@pytest.mark.slow
def test_lazy_from_zspy_with_report(tmp_path):
    path = tmp_path / "scan.zspy"
    truth = write_sped_zspy(path, 48 * 48, 64, chunk_patterns=480, random_state=2)
    report = tmp_path / "report.pdf"
    out = sped_phase_map(path, random_state=0, report=report, n_restarts=2)
    assert out._lazy  # loaded lazily, stays lazy
    assert out.data.dtype == np.float32
    assert out.learning_results.factors.shape[1] == truth.n_phases
    pattern_sim, map_sim, _ = _scores(out, truth)
    assert pattern_sim.min() > 0.9 and map_sim.min() > 0.9
    assert report.is_file() and report.read_bytes()[:4] == b"%PDF"
    record = out.metadata.Processing.sped_phase_map
    assert record.report == str(report) and record.source == str(path)
    assert record.passes_over_data >= 3


def test_bad_input(tmp_path):
    with pytest.raises(TypeError, match="signal or the path"):
        sped_phase_map(np.zeros((4, 4, 8, 8)))
    with pytest.raises(FileNotFoundError):
        sped_phase_map(tmp_path / "missing.zspy")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="zspy"):
        sped_phase_map(tmp_path / "notes.txt")
