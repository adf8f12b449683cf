"""The vacuum test: vacuum excluded, diffracting patterns never (issue 11, item 2)."""

import numpy as np
import pytest

from hyperspy_nanoml.data.sped import make_sped_phases
from hyperspy_nanoml.diffraction.preprocess import preprocess_sped
from hyperspy_nanoml.diffraction.vacuum import (
    RingSectors,
    mean_and_ring_sector_sums,
    ring_sector_sums,
    vacuum_test,
)


def _beam(shape, centre, sigma, total):
    yy, xx = np.indices(shape)
    g = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma**2))
    return total * g / g.sum()


def _spot_pair(shape, centre, g, sigma, total):
    """A Friedel pair of Gaussian spots at +-g (px) from the centre."""
    return _beam(shape, (centre[0] + g[0], centre[1] + g[1]), sigma, total / 2) + _beam(
        shape, (centre[0] - g[0], centre[1] - g[1]), sigma, total / 2
    )


@pytest.mark.parametrize("counts", [20.0, 200.0])
@pytest.mark.parametrize("beam_sigma", [1.5, 2.0])
def test_faint_grain_never_dropped(counts, beam_sigma):
    """Vacuum on the left, a grain whose spots hold few counts per pattern on the right.
    The grain is never dropped; the vacuum is excluded exactly when the grain stands
    out of the beam tail (sigma 1.5 px: tail beyond 8 px ~1e-3 counts), and at worst
    (spots as faint as the tail: 20 counts against 17) nothing is excluded."""
    rng = np.random.default_rng(0)
    shape, c = (48, 48), (24.0, 24.0)
    beam = _beam(shape, c, beam_sigma, 5e4)
    spots = _spot_pair(shape, c, (10.0, 4.0), 1.5, counts)
    truth = np.zeros((20, 30), dtype=bool)
    truth[:, :12] = True
    lam = np.where(truth[..., None, None], beam, beam + spots)
    data = rng.poisson(lam).astype(np.float32)
    g = RingSectors.around(shape)
    mean, sums = mean_and_ring_sector_sums(data, g)
    np.testing.assert_allclose(mean, data.mean(axis=(0, 1)), rtol=1e-6)
    result = vacuum_test(sums, g, 8)
    assert not (result.mask & ~truth).any()  # no grain pattern dropped
    if beam_sigma == 1.5 or counts == 200.0:
        np.testing.assert_array_equal(result.mask, truth)
        assert result.n_vacuum == truth.sum() and "isotropic" in result.reason
    else:
        assert result.n_vacuum == 0 and "Bragg" in result.reason


def test_no_vacuum_in_a_weak_grain_only_scan():
    """No vacuum at all, one grain much fainter than the other: nothing is dropped
    (the emptiest patterns hold Bragg spots: anisotropic)."""
    rng = np.random.default_rng(1)
    shape, c = (48, 48), (24.0, 24.0)
    beam = _beam(shape, c, 2.0, 5e4)
    strong = _spot_pair(shape, c, (12.0, 0.0), 1.5, 2000.0)
    weak = _spot_pair(shape, c, (3.0, 11.0), 1.5, 100.0)
    half = np.zeros((16, 16), dtype=bool)
    half[:, :8] = True
    lam = np.where(half[..., None, None], beam + weak, beam + strong)
    data = rng.poisson(lam).astype(np.float32)
    g = RingSectors.around(shape)
    result = vacuum_test(ring_sector_sums(data, g), g, 8)
    assert result.n_vacuum == 0 and not result.mask.any()
    assert result.reference_isotropy_p < 1e-3 and "Bragg" in result.reason


def test_beam_only_patterns_are_vacuum_whatever_the_tail():
    """A broad beam tail (a Gaussian wider than the mask) is not diffraction."""
    rng = np.random.default_rng(2)
    shape, c = (40, 40), (20.0, 20.0)
    beam = _beam(shape, c, 4.0, 1e4)  # ~5 % of it outside a 10 px mask
    lam = np.broadcast_to(beam, (12, 12) + shape).copy()
    lam[6:] += _spot_pair(shape, c, (0.0, 13.0), 1.5, 300.0)
    data = rng.poisson(lam).astype(np.float32)
    yy, xx = np.indices(shape)
    mask = np.hypot(xx - c[0], yy - c[1]) <= 10
    g = RingSectors.around(shape, c, mask=mask)
    result = vacuum_test(ring_sector_sums(data, g), g, alpha=0.01)
    truth = np.zeros((12, 12), dtype=bool)
    truth[:6] = True
    np.testing.assert_array_equal(result.mask, truth)
    outside = beam[~mask].sum() / beam[mask].sum()
    assert result.tail_ratio == pytest.approx(outside, rel=0.05)


def test_lazy_sums_equal_eager():
    s, _ = make_sped_phases((8, 8), 32, random_state=0)
    lazy, _ = make_sped_phases((8, 8), 32, random_state=0, lazy=True, chunk_patterns=16)
    g = RingSectors.around((32, 32))
    eager_mean, eager_sums = mean_and_ring_sector_sums(s.data, g)
    lazy_sums = ring_sector_sums(lazy.data, g)
    assert lazy_sums.npartitions == lazy.data.npartitions  # one task per block
    np.testing.assert_allclose(lazy_sums.compute(), eager_sums, rtol=1e-6)
    # every pixel counted once: the groups add up to the pattern sums
    np.testing.assert_allclose(
        eager_sums.sum(axis=-1), s.data.sum(axis=(-2, -1)), rtol=1e-6
    )


@pytest.mark.parametrize("counts", [200.0, 2000.0, None])
def test_our_sped_vacuum_exact(counts):
    s, truth = make_sped_phases(
        (32, 32),
        64,
        counts=counts or 2000.0,
        noise="poisson" if counts else None,
        random_state=3,
    )
    _, _, info = preprocess_sped(s, exclude_vacuum=True)
    np.testing.assert_array_equal(info["vacuum_mask"], truth.regions["vacuum"])
    assert info["vacuum_test"]["n_vacuum"] == truth.regions["vacuum"].sum()
    assert info["passes_over_data"] == 1


def test_vacuum_found_when_the_pooled_tail_is_bright():
    """The 10^6-pattern failure at 1/1000 of the cost: the tail counts pooled over
    the vacuum patterns of a 1000 x 1000 scan (here: 320 patterns with a 100x
    brighter beam) made the rings just outside the disk, where the tail falls
    ~30x per px, fail the isotropy test through pixelation and the beam's offset,
    so no vacuum was found at all. The steep tail is left out of that test."""
    s, truth = make_sped_phases((32, 32), 64, beam_counts=1e7, noise=None, random_state=0)
    lam = s.data
    s.data = np.random.default_rng(0).poisson(lam).astype(np.float32)  # no uint16 cap
    _, _, info = preprocess_sped(s, exclude_vacuum=True)
    np.testing.assert_array_equal(info["vacuum_mask"], truth.regions["vacuum"])
    assert "isotropic" in info["vacuum_test"]["reason"]
    # the same scan with a grain instead of vacuum on the right keeps everything
    yy, xx = np.indices((64, 64))
    spots = 40.0 * np.exp(-((xx - 46) ** 2 + (yy - 40) ** 2) / 2.0)
    spots = spots + spots[::-1, ::-1]  # a Friedel pair about (32, 32)
    faint = np.where(truth.regions["vacuum"][..., None, None], lam + spots, lam)
    s.data = np.random.default_rng(1).poisson(faint).astype(np.float32)
    _, _, info = preprocess_sped(s, exclude_vacuum=True)
    assert info["vacuum_patterns"] == 0 and "Bragg" in info["vacuum_test"]["reason"]


@pytest.mark.parametrize("counts", [200.0, 2000.0])
def test_pyxem_grains_none_dropped(counts):
    """pyxem's simulated iron grains: every pattern diffracts, none is excluded."""
    pytest.importorskip("pyxem")
    from hyperspy_nanoml.data.pyxem_grains import pyxem_grains

    s, truth = pyxem_grains(counts, random_state=1)
    assert truth.diffracting.all()
    _, _, info = preprocess_sped(s, exclude_vacuum=True)
    assert info["vacuum_patterns"] == 0, info["vacuum_test"]["reason"]
    assert "Bragg" in info["vacuum_test"]["reason"]


def test_pyxem_grain_without_reflections_is_vacuum():
    """An orientation that excites no reflection gives the direct beam alone: that
    grain, and only it, holds no diffracted signal."""
    pytest.importorskip("pyxem")
    from hyperspy_nanoml.data.pyxem_grains import pyxem_grains

    s, truth = pyxem_grains(2000.0, random_state=0)
    assert (~truth.diffracting).sum() == 1
    _, _, info = preprocess_sped(s, exclude_vacuum=True)
    beam_only = ~truth.diffracting[truth.labels]
    np.testing.assert_array_equal(info["vacuum_mask"], beam_only)


def test_bad_level():
    g = RingSectors.around((16, 16))
    with pytest.raises(ValueError, match="alpha"):
        vacuum_test(np.zeros((4, g.n_groups)), g, 3, alpha=1.5)
    with pytest.raises(ValueError, match="even"):
        RingSectors.around((16, 16), n_sectors=5)


def test_ring_sector_sums_are_the_group_sums():
    """Every group sum equals the sum of its pixels (uint16 input, a masked group,
    a pattern count that is no multiple of the internal tile)."""
    rng = np.random.default_rng(3)
    data = rng.poisson(5.0, (7, 43, 40, 36)).astype(np.uint16)
    yy, xx = np.indices((40, 36))
    mask = np.hypot(xx - 17.3, yy - 21.6) <= 4
    g = RingSectors.around((40, 36), (17.3, 21.6), mask=mask)
    sums = ring_sector_sums(data, g)
    flat = data.reshape(-1, 40 * 36).astype(np.float64)
    labels = g.labels.ravel()
    expected = np.stack([flat[:, labels == j].sum(axis=1) for j in range(g.n_groups)], 1)
    np.testing.assert_array_equal(sums.reshape(-1, g.n_groups), expected)
    mean, sums2 = mean_and_ring_sector_sums(data, g)
    np.testing.assert_array_equal(sums2, sums)
    np.testing.assert_allclose(mean, flat.mean(axis=0).reshape(40, 36), rtol=1e-12)
