"""Generated SPED data: shapes, calibration, determinism, ground truth, zspy files."""

import numpy as np
import pytest

from hyperspy_nanoml.data import sped
from hyperspy_nanoml.data.sped import make_sped_phases, sped_nav_shape, write_sped_zspy


@pytest.fixture(scope="module")
def small():
    return make_sped_phases((16, 20), 64, random_state=0)


def test_shapes_and_calibration(small):
    s, truth = small
    assert s.data.shape == (16, 20, 64, 64)
    assert s.data.dtype == np.uint16
    assert type(s).__name__ == "ElectronDiffraction2D"
    am = s.axes_manager
    assert am.navigation_shape == (20, 16)
    assert [a.name for a in am.navigation_axes] == ["x", "y"]
    assert {a.units for a in am.navigation_axes} == {"nm"}
    assert [a.name for a in am.signal_axes] == ["kx", "ky"]
    assert {a.units for a in am.signal_axes} == {"1/nm"}
    kx = am.signal_axes[0]
    assert kx.scale == pytest.approx(truth.scale) and kx.scale == pytest.approx(24 / 64)
    # the beam sits near the calibrated origin
    cx = kx.offset + kx.scale * truth.direct_beam_centre[0]
    assert abs(cx) < 2 * kx.scale
    assert truth.patterns.shape == (3, 64, 64)
    assert truth.maps.shape == (16, 20, 3)
    assert truth.thickness.shape == (16, 20)
    assert truth.n_phases == 3 and len(truth.phase_names) == 3


def test_determinism():
    a, _ = make_sped_phases((8, 8), 32, random_state=5)
    b, _ = make_sped_phases((8, 8), 32, random_state=np.int64(5))
    c, _ = make_sped_phases((8, 8), 32, random_state=6)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


@pytest.mark.parametrize("n_phases", [1, 2, 3, 4])
def test_truth_consistency(n_phases):
    s, truth = make_sped_phases((24, 24), 48, n_phases=n_phases, noise=None)
    assert s.data.dtype == np.float32
    np.testing.assert_allclose(s.data, truth.model(), rtol=1e-5, atol=1e-3)
    maps = truth.maps
    assert maps.min() >= 0 and maps.sum(-1).max() <= 1 + 1e-6
    assert truth.regions["vacuum"].any()
    for k in range(n_phases):
        assert truth.regions[f"pure_{k}"].sum() >= 4, k
    if n_phases >= 2:
        assert truth.regions["overlap"].sum() >= 10
    # phase patterns carry `counts` (the film 0.6 of it) and exclude the beam
    sums = truth.patterns.sum(axis=(1, 2))
    expected = [2000.0 * (0.6 if k == 3 else 1.0) for k in range(n_phases)]
    np.testing.assert_allclose(sums, expected, rtol=1e-4)
    cx, cy = truth.direct_beam_centre
    beam_pixel = truth.direct_beam[int(round(cy)), int(round(cx))]
    assert beam_pixel > 100 * truth.patterns.max()  # orders of magnitude brighter
    assert 1.3 < truth.thickness.max() / truth.thickness.min() < 4


def test_twin_is_the_mirror_of_the_first_phase():
    # with the beam centred on a pixel, the twin is the left-right mirror of phase 0
    centre, scale = (32.0, 32.0), 24 / 64
    pats = sped._phase_patterns(3, 64, centre, scale, 2000.0)
    zb, twin = pats[0][:, 1:], pats[1][:, ::-1][:, :-1]  # column c <-> 64 - c
    np.testing.assert_allclose(twin, zb, rtol=0.02, atol=1e-3 * zb.max())
    assert np.abs(pats[0] - pats[1]).max() > 0.3 * pats[0].max()


def test_poisson_mean_matches_model(small):
    s, truth = small
    model = truth.model()
    ratio = s.data.sum(dtype=np.float64) / model.sum(dtype=np.float64)
    assert ratio == pytest.approx(1.0, abs=2e-3)
    away = ~(
        np.hypot(
            *np.indices((64, 64))[::-1] - np.reshape(truth.direct_beam_centre, (2, 1, 1))
        )
        < 8
    )
    ratio = s.data[..., away].sum(dtype=np.float64) / model[..., away].sum(dtype=np.float64)
    assert ratio == pytest.approx(1.0, abs=0.01)


def test_fast_poisson_sampler_is_poisson():
    rng = np.random.default_rng(0)
    for lam in (0.02, 0.7, 3.0, 40.0):
        x = sped._poisson_uint16(np.full(400_000, lam, np.float32), rng).astype(float)
        assert x.mean() == pytest.approx(lam, rel=0.02, abs=1e-3)
        assert x.var() == pytest.approx(lam, rel=0.03, abs=1e-3)
        assert (x == 0).mean() == pytest.approx(np.exp(-lam), rel=0.02, abs=1e-3)


def test_lazy_twin_equals_eager():
    eager, _ = make_sped_phases((12, 10), 32, random_state=2)
    lazy, _ = make_sped_phases((12, 10), 32, random_state=2, lazy=True, chunk_patterns=35)
    assert type(lazy).__name__ == "LazyElectronDiffraction2D"
    chunks = lazy.data.chunks
    assert chunks[0] == (3, 3, 3, 3)  # whole scan rows
    assert chunks[1:] == ((10,), (32,), (32,))  # whole patterns
    np.testing.assert_array_equal(lazy.data.compute(), eager.data)
    assert lazy.axes_manager.signal_axes[0].units == "1/nm"


def test_nav_shape():
    assert sped_nav_shape(10**6) == (1000, 1000)
    assert sped_nav_shape(2000) == (40, 50)
    assert sped_nav_shape(7) == (1, 7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_phases"):
        make_sped_phases((4, 4), 32, n_phases=5)
    with pytest.raises(ValueError, match="noise"):
        make_sped_phases((4, 4), 32, noise="gaussian")
    with pytest.raises(ValueError, match="pattern_size"):
        make_sped_phases((4, 4), 8)
    with pytest.raises(ValueError, match="random_state"):
        make_sped_phases((4, 4), 32, random_state=-1)


def test_zspy_round_trip(tmp_path, monkeypatch):
    import hyperspy.api as hs

    path = tmp_path / "sub" / "sped.zspy"
    truth = write_sped_zspy(path, 2000, 32, chunk_patterns=500, random_state=3)
    assert truth.maps.shape == (40, 50, 3)
    s = hs.load(path, lazy=True)
    assert s._lazy and s.data.dtype == np.uint16
    assert s.data.chunks[1:] == ((50,), (32,), (32,))
    assert set(s.data.chunks[0]) == {10}
    eager, _ = make_sped_phases((40, 50), 32, random_state=3)
    np.testing.assert_array_equal(s.data.compute(), eager.data)
    assert s.axes_manager.signal_axes[0].units == "1/nm"
    assert s.metadata.General.nanoml_generator.seed == 3
    assert [p.name for p in path.parent.iterdir()] == ["sped.zspy"]

    # cached: same parameters -> nothing is generated again
    def boom(*args, **kwargs):
        raise AssertionError("regenerated a cached file")

    monkeypatch.setattr(sped, "_build_signal", boom)
    again = write_sped_zspy(path, 2000, 32, chunk_patterns=500, random_state=3)
    np.testing.assert_array_equal(again.maps, truth.maps)
    assert write_sped_zspy(path, 2000, 32, chunk_patterns=500).params["seed"] == 3
    with pytest.raises(AssertionError, match="regenerated"):
        write_sped_zspy(path, 2000, 32, chunk_patterns=500, random_state=4)


def test_zspy_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "sped.zspy"
    calls = []
    original = sped._Generator.block

    def failing(self, block_info=None):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk full")
        return original(self, block_info)

    monkeypatch.setattr(sped._Generator, "block", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_sped_zspy(path, 400, 32, chunk_patterns=100, random_state=0)
    assert list(tmp_path.iterdir()) == []
    # a stale file made with other parameters is replaced whole
    monkeypatch.setattr(sped._Generator, "block", original)
    write_sped_zspy(path, 400, 32, chunk_patterns=100, random_state=0)
    truth = write_sped_zspy(path, 400, 32, chunk_patterns=200, random_state=0)
    assert truth.params["chunk_rows"] == 10
    assert [p.name for p in tmp_path.iterdir()] == ["sped.zspy"]
