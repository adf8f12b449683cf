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


class _CountingArray:
    """Read-only array counting the scan rows handed out (one pass = every row once)."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = (
            array,
            array.shape,
            array.dtype,
            array.ndim,
        )
        self.rows_read = 0

    def __getitem__(self, key):
        out = self.array[key]
        self.rows_read += out.shape[0]
        return out


def test_lazy_nmf_reads_only_for_its_own_passes(phases):
    """Lazy: the beam, the vacuum test, the Poisson scaling and the component choice
    ride on the NMF's own passes (the beam and vacuum decided from its first pass);
    the same result as nmf_decomposition after preprocess_sped, which reads once more
    (the same masks; factors equal up to the NMF's convergence, the same error)."""
    import dask.array as da
    import hyperspy.api as hs

    from hyperspy_nanoml.diffraction.preprocess import preprocess_sped
    from hyperspy_nanoml.learn.decomposition import component_choice_from

    s, truth = phases
    counting = _CountingArray(np.asarray(s.data))
    lazy = hs.signals.Signal2D(
        da.from_array(counting, chunks=(8, 48, 64, 64), asarray=False)
    ).as_lazy()
    out = sped_phase_map(lazy, random_state=0)
    record = out.metadata.Processing.sped_phase_map
    nmf_record = out.metadata.Processing.nmf_decomposition
    nmf_passes = out.learning_results.nmf_info["passes"]
    assert nmf_record.passes_over_data == nmf_passes  # nothing but the NMF's passes
    assert record.passes_over_data == nmf_passes  # no preprocessing pass
    # small lazy data: read once by the NMF's first pass and held in memory
    assert nmf_record.reads_of_data == 1
    assert counting.rows_read == 48
    # the same as the two steps by hand
    counting.rows_read = 0
    processed, beam, info = preprocess_sped(lazy, exclude_vacuum=True)
    processed.nmf_decomposition(
        "auto",
        normalize_poissonian_noise=True,
        signal_mask=hs.signals.Signal2D(beam),
        navigation_mask=hs.signals.BaseSignal(info["vacuum_mask"]).T,
        random_state=0,
        print_info=False,
    )
    ref = processed.learning_results
    # the preprocessing read and the NMF's one, nothing else
    assert counting.rows_read == 2 * 48
    lr = out.learning_results
    # the same masks: NaN on the same beam pixels and vacuum positions
    np.testing.assert_array_equal(np.isnan(lr.factors), np.isnan(ref.factors))
    np.testing.assert_array_equal(np.isnan(lr.loadings), np.isnan(ref.loadings))
    assert record.vacuum_patterns == info["vacuum_patterns"]
    # the sketch differs (it saw every pattern): the same optimum within the NMF's
    # convergence (factors max 1, about 1 % apart) and the same fitted error
    np.testing.assert_allclose(lr.factors, ref.factors, atol=0.03)
    np.testing.assert_allclose(
        lr.loadings, ref.loadings, atol=0.03 * np.nanmax(ref.loadings)
    )
    np.testing.assert_allclose(
        lr.explained_variance_ratio, ref.explained_variance_ratio, rtol=0.03
    )
    np.testing.assert_allclose(
        out.metadata.Processing.nmf_decomposition.relative_reconstruction_error,
        processed.metadata.Processing.nmf_decomposition.relative_reconstruction_error,
        rtol=1e-4,
    )
    a, b = component_choice_from(lr), component_choice_from(ref)
    assert a.n_components == b.n_components == truth.n_phases
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=1e-5)


def test_lazy_wide_beam_mask_falls_back_and_counts_every_read(phases):
    """A beam mask reaching beyond the central disk: the vacuum test cannot use the
    rings of the NMF's first pass; the call falls back to the preprocessing path
    (the stopped pass's mean pattern gives the beam) and the test's own pass, and
    every read (the stopped first pass too) is counted."""
    import dask.array as da
    import hyperspy.api as hs

    s, truth = phases
    counting = _CountingArray(np.asarray(s.data))
    lazy = hs.signals.Signal2D(
        da.from_array(counting, chunks=(8, 48, 64, 64), asarray=False)
    ).as_lazy()
    out = sped_phase_map(lazy, 3, beam_radius=14.0, random_state=0)
    record = out.metadata.Processing.sped_phase_map
    nmf_record = out.metadata.Processing.nmf_decomposition
    assert record.passes_over_data == nmf_record.passes_over_data + 2  # + stopped
    # pass (its statistics give the beam), vacuum; the NMF reads the small data once
    # and holds them
    assert nmf_record.reads_of_data == 1
    assert counting.rows_read == (2 + nmf_record.reads_of_data) * 48
    assert "own pass" in record.vacuum_method
    eager = sped_phase_map(s, 3, beam_radius=14.0, random_state=0)
    np.testing.assert_array_equal(
        np.isnan(out.learning_results.loadings), np.isnan(eager.learning_results.loadings)
    )
    assert (
        record.vacuum_patterns == eager.metadata.Processing.sped_phase_map.vacuum_patterns
    )


def test_checks_before_computing(phases, tmp_path, monkeypatch):
    """Missing report folder, n_restarts=0, bad n_components or seed: refused before
    any work (the preprocessing is never reached)."""
    from hyperspy_nanoml.diffraction import preprocess

    s, _ = phases

    def fail(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(preprocess, "preprocess_sped", fail)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sped_phase_map(s, report=tmp_path / "missing" / "report.pdf")
    with pytest.raises(ValueError, match="n_restarts must be at least 1"):
        sped_phase_map(s, report=tmp_path / "report.pdf", n_restarts=0)
    with pytest.raises(ValueError, match="'auto'"):
        sped_phase_map(s, "three")
    with pytest.raises(TypeError, match="ambiguous"):
        sped_phase_map(s, random_state=True)


def test_failed_report_keeps_the_result(phases, tmp_path, monkeypatch):
    from hyperspy_nanoml.report import nmf_report

    s, truth = phases

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nmf_report, "save_verification_report", disk_full)
    with pytest.warns(RuntimeWarning, match="No space left"):
        out = sped_phase_map(
            s, truth.n_phases, random_state=0, report=tmp_path / "r.pdf", n_restarts=1
        )
    assert out.learning_results.factors.shape[1] == truth.n_phases
    record = out.metadata.Processing.sped_phase_map
    assert "No space left" in record.report_error and "report" not in record
    assert record.random_state == 0
    # the seed recorded repeats the run
    again = sped_phase_map(s, truth.n_phases, random_state=record.random_state)
    np.testing.assert_array_equal(
        again.learning_results.factors, out.learning_results.factors
    )
