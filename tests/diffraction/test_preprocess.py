"""SPED preprocessing: direct beam, mask, binning, float conversion, laziness, errors."""

import dask.array as da
import numpy as np
import pytest
from dask.callbacks import Callback

from hyperspy_nanoml.data.sped import make_sped_phases
from hyperspy_nanoml.diffraction.preprocess import (
    as_float32,
    bin_reciprocal,
    direct_beam_mask,
    find_direct_beam,
    preprocess_sped,
)


@pytest.fixture(scope="module")
def eager():
    return make_sped_phases((24, 24), 64, random_state=0)


@pytest.fixture
def lazy():
    return make_sped_phases((24, 24), 64, random_state=0, lazy=True, chunk_patterns=96)


class _LargestResult(Callback):
    """Records the largest array any dask task produced."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        self.largest = max(self.largest, getattr(result, "nbytes", 0))


@pytest.mark.parametrize("n_phases", [1, 3, 4])
@pytest.mark.parametrize("pattern_size", [48, 64, 128])
def test_beam_centre_found(n_phases, pattern_size):
    s, truth = make_sped_phases((12, 12), pattern_size, n_phases=n_phases, random_state=1)
    centre, radius = find_direct_beam(s)
    assert np.hypot(*(centre - truth.direct_beam_centre)) < 0.5
    assert truth.direct_beam_radius + 1 <= radius <= pattern_size / 4


def test_mask_covers_the_beam(eager):
    s, truth = eager
    centre, radius = find_direct_beam(s)
    mask = direct_beam_mask(s, centre, radius)
    assert mask.shape == (64, 64) and mask.dtype == bool
    yy, xx = np.indices((64, 64))
    disk = np.hypot(xx - truth.direct_beam_centre[0], yy - truth.direct_beam_centre[1])
    assert mask[disk <= truth.direct_beam_radius + 0.5].all()
    beam = truth.direct_beam
    assert beam[~mask].sum() < 0.01 * beam.sum()
    # the first spots (111 at ~8 px) stay visible
    assert mask.sum() < np.pi * 7.5**2
    # same mask from a shape; True = excluded, at the centre
    np.testing.assert_array_equal(direct_beam_mask((64, 64), centre, radius), mask)
    cx, cy = np.round(truth.direct_beam_centre).astype(int)
    assert mask[cy, cx] and not mask[0, 0]


def test_mask_covers_the_halo_not_the_spots():
    """The mask ends where the beam's halo falls to one pattern's counting noise,
    before the first Bragg spot (generated data: beam, halo and spots known).

    The first unmasked ring may keep a halo of a few sigma (its background is
    estimated from the next rings, raised by the tails of the 111/200 spots);
    every ring beyond it holds less than one pattern's noise."""
    from scipy import stats

    from hyperspy_nanoml.diffraction.preprocess import HALO_LEVEL

    s, truth = make_sped_phases((16, 16), 64, random_state=2)
    centre, radius = find_direct_beam(s)
    mask = direct_beam_mask(s, centre, radius)
    yy, xx = np.indices((64, 64))
    ring = np.floor(np.hypot(xx - centre[0], yy - centre[1])).astype(int)
    mean = truth.model().reshape(-1, 64, 64).mean(axis=0)  # expected counts
    z = stats.norm.isf(HALO_LEVEL)
    first = int(radius)
    assert truth.direct_beam[ring == first].sum() < 2 * z * np.sqrt(
        mean[ring == first].sum()
    )
    for r in range(first + 1, 16):  # every ring beyond the first unmasked one
        left = (ring == r) & ~mask
        halo = truth.direct_beam[left].sum()
        assert halo < z * np.sqrt(mean[ring == r].sum()), (r, halo)
    # no Bragg spot under the mask: every pixel of a phase pattern above 3x its
    # diffuse level (median of the ring) lies outside it
    for pattern in truth.patterns:
        level = np.array([np.median(pattern[ring == r]) for r in range(ring.max() + 1)])
        spot = pattern > 3 * level[ring]
        assert spot.any() and not (spot & mask).any()


def test_halo_radius_grows_with_the_counts():
    """pyxem's Gaussian beam (sigma 3 px): more counts, the tail is significant
    farther out, so the mask is wider; always inside the first Bragg ring (~24 px)."""
    pytest.importorskip("pyxem")
    from hyperspy_nanoml.data.pyxem_grains import pyxem_grains

    radii = []
    for counts in (200.0, 2000.0):
        s, _ = pyxem_grains(counts, size=12, random_state=1)
        centre, radius = find_direct_beam(s)
        assert np.hypot(*(centre - 32.0)) < 0.2
        radii.append(radius)
    assert 4.0 < radii[0] < radii[1] < 16.0


def test_mask_argument_errors():
    with pytest.raises(ValueError, match="radius"):
        direct_beam_mask((8, 8), (4, 4), 0)
    with pytest.raises(ValueError, match="centre"):
        direct_beam_mask((8, 8), (4, 4, 1), 2)
    with pytest.raises(ValueError, match="shape"):
        direct_beam_mask((8,), (4, 4), 2)


def test_binning_keeps_calibration(eager):
    s, truth = eager
    b = bin_reciprocal(s, 2)
    assert b.data.shape == (24, 24, 32, 32) and b.data.dtype == np.float32
    assert b.data.sum(dtype=np.float64) == s.data.sum(dtype=np.float64)
    for old, new in zip(
        s.axes_manager.signal_axes, b.axes_manager.signal_axes, strict=True
    ):
        assert new.units == old.units and new.name == old.name
        assert new.scale == pytest.approx(2 * old.scale)
        # the centre of new pixel 0 is the mean of old pixels 0 and 1
        assert new.offset == pytest.approx(old.offset + old.scale / 2)
    # the beam keeps its calibrated position
    ax = s.axes_manager.signal_axes
    true_k = [
        a.offset + a.scale * c for a, c in zip(ax, truth.direct_beam_centre, strict=True)
    ]
    centre, _ = find_direct_beam(b)
    found_k = [
        a.offset + a.scale * c
        for a, c in zip(b.axes_manager.signal_axes, centre, strict=True)
    ]
    np.testing.assert_allclose(found_k, true_k, atol=0.5 * ax[0].scale)
    # factors that do not divide the pattern drop the last pixels
    b3 = bin_reciprocal(s, 3)
    assert b3.data.shape == (24, 24, 21, 21)
    assert b3.axes_manager.signal_axes[0].scale == pytest.approx(3 * ax[0].scale)
    assert (
        b.axes_manager.navigation_axes[0].scale == s.axes_manager.navigation_axes[0].scale
    )


def test_float32_conversion(eager):
    s, _ = eager
    f = as_float32(s)
    assert f.data.dtype == np.float32 and s.data.dtype == np.uint16
    np.testing.assert_array_equal(f.data, s.data)
    g = as_float32(f)
    assert g.data is not f.data  # always a new signal, never a view of the input


def test_lazy_stays_lazy(lazy, eager):
    s, truth = lazy
    whole = s.data.nbytes * 2  # float32
    watcher = _LargestResult()
    with watcher:
        processed, mask, info = preprocess_sped(s, binning=2)
    assert processed._lazy and isinstance(processed.data, da.Array)
    assert processed.data.dtype == np.float32
    assert processed.data.chunks[2:] == ((32,), (32,))
    assert info["lazy"] is True
    assert 0 < watcher.largest <= whole / 4  # one chunk at a time, never the whole
    # lazy and eager give the same processed data and mask
    e_processed, e_mask, e_info = preprocess_sped(eager[0], binning=2)
    assert not e_processed._lazy
    np.testing.assert_array_equal(mask, e_mask)
    with watcher:
        np.testing.assert_array_equal(processed.data.compute(), e_processed.data)
    assert e_info["direct_beam_centre"] == pytest.approx(info["direct_beam_centre"])


def test_preprocess_info_and_radius(eager):
    s, truth = eager
    processed, mask, info = preprocess_sped(s)
    assert (
        np.hypot(*(np.array(info["direct_beam_centre"]) - truth.direct_beam_centre)) < 0.5
    )
    assert info["binning"] == 1 and info["radius_source"] == "estimated"
    assert info["masked_pixels"] == mask.sum()
    assert info["dtype_in"] == "uint16" and info["units"] == "1/nm"
    kx = s.axes_manager.signal_axes[0]
    assert info["direct_beam_centre_calibrated"][0] == pytest.approx(
        kx.offset + kx.scale * truth.direct_beam_centre[0], abs=0.5 * kx.scale
    )
    assert processed.metadata.Processing.preprocess_sped.binning == 1
    assert s.data.dtype == np.uint16  # the input is untouched
    # a given radius is in input pixels, divided by the binning
    _, mask2, info2 = preprocess_sped(s, beam_radius=8.0, binning=2)
    assert info2["direct_beam_radius"] == 4.0 and info2["radius_source"] == "given"
    assert mask2.shape == (32, 32)
    _, none_mask, info3 = preprocess_sped(s, mask_direct_beam=False)
    assert none_mask is None and "direct_beam_centre" not in info3


def test_clear_errors():
    import hyperspy.api as hs

    with pytest.raises(ValueError, match="2 signal dimensions"):
        preprocess_sped(hs.signals.Signal1D(np.ones((4, 4, 16))))
    with pytest.raises(ValueError, match="navigation"):
        preprocess_sped(hs.signals.Signal2D(np.ones((16, 16))))
    with pytest.raises(TypeError, match="signal"):
        preprocess_sped(np.ones((4, 4, 16, 16)))
    s, _ = make_sped_phases((8, 8), 32, random_state=0)
    with pytest.raises(ValueError, match="binning"):
        preprocess_sped(s, binning=0)
    with pytest.raises(ValueError, match="larger than the patterns"):
        bin_reciprocal(s, 40)
    with pytest.raises(ValueError, match="beam_radius"):
        preprocess_sped(s, beam_radius=-1)
    no_beam, _ = make_sped_phases((8, 8), 32, direct_beam=False, random_state=0)
    with pytest.raises(ValueError, match="direct beam not found"):
        preprocess_sped(no_beam)
    flat = hs.signals.Signal2D(np.ones((4, 4, 16, 16)))
    with pytest.raises(ValueError, match="direct beam not found"):
        find_direct_beam(flat)
    assert preprocess_sped(no_beam, mask_direct_beam=False)[1] is None


def test_vacuum_mask(eager, lazy):
    from hyperspy_nanoml.diffraction.preprocess import vacuum_mask

    s, truth = eager
    centre, radius = find_direct_beam(s)
    beam = direct_beam_mask(s, centre, radius)
    vacuum, intensity = vacuum_mask(s, beam, return_intensity=True)
    assert vacuum.shape == truth.nav_shape and vacuum.dtype == bool
    np.testing.assert_array_equal(vacuum, truth.regions["vacuum"])
    assert intensity[vacuum].max() < 0.1 * intensity[truth.regions["pure_0"]].min()
    # lazy: same answer, one chunk at a time
    watcher = _LargestResult()
    with watcher:
        lazy_vacuum = vacuum_mask(lazy[0], beam)
    np.testing.assert_array_equal(lazy_vacuum, vacuum)
    assert watcher.largest <= lazy[0].data.nbytes * 2 / 4
    # without the beam mask the beam fills every pattern: nothing is vacuum
    assert not vacuum_mask(s).any()
    with pytest.raises(ValueError, match="threshold"):
        vacuum_mask(s, beam, threshold=2)
    with pytest.raises(ValueError, match="signal_mask"):
        vacuum_mask(s, beam[:10])


def test_vacuum_found_in_the_beam_pass(eager, lazy):
    s, truth = eager
    _, _, info = preprocess_sped(s, exclude_vacuum=True)
    assert info["passes_over_data"] == 1
    np.testing.assert_array_equal(info["vacuum_mask"], truth.regions["vacuum"])
    assert info["vacuum_patterns"] == truth.regions["vacuum"].sum()
    assert "same pass" in info["vacuum_method"]
    _, _, lazy_info = preprocess_sped(lazy[0], exclude_vacuum=True)
    np.testing.assert_array_equal(lazy_info["vacuum_mask"], info["vacuum_mask"])
    # a beam mask wider than the central disk: exact vacuum test in a pass of its own
    _, mask, wide = preprocess_sped(s, exclude_vacuum=True, beam_radius=14.0)
    assert wide["passes_over_data"] == 2 and "own pass" in wide["vacuum_method"]
    np.testing.assert_array_equal(wide["vacuum_mask"], vacuum_mask_of(s, mask))
    with pytest.raises(ValueError, match="vacuum_threshold"):
        preprocess_sped(s, exclude_vacuum=True, vacuum_threshold=0)


def vacuum_mask_of(signal, mask):
    from hyperspy_nanoml.diffraction.preprocess import vacuum_mask

    return vacuum_mask(signal, mask)


def test_float32_blocks_stay_small(lazy):
    s, _ = lazy  # chunks of 4 scan rows of 24 patterns of 64 x 64 px
    row_bytes = 24 * 64 * 64 * 4
    f = as_float32(s, block_bytes=row_bytes * 1.5)
    assert f._lazy and f.data.dtype == np.float32
    assert max(f.data.chunks[0]) == 1 and sum(f.data.chunks[0]) == 24
    np.testing.assert_array_equal(f.data.compute(), s.data.compute())
    g = as_float32(s, block_bytes=row_bytes * 2)
    assert set(g.data.chunks[0]) == {2}
    assert as_float32(s).data.chunks == s.data.chunks  # small chunks are kept


def test_binned_beam_mask_covers_the_full_resolution_beam(eager):
    """The beam is found on the unbinned patterns; the binned mask holds every
    binned pixel that any masked pixel falls in, and the centre maps back."""
    s, truth = eager
    _, full, info1 = preprocess_sped(s)
    for factor in (2, 4):
        processed, mask, info = preprocess_sped(s, binning=factor)
        assert mask.shape == processed.data.shape[-2:] == (64 // factor, 64 // factor)
        rows, cols = np.nonzero(full)
        assert mask[rows // factor, cols // factor].all()
        assert info["masked_pixels"] == mask.sum() and info["binning_source"] == "given"
        x, y = info["direct_beam_centre"]
        back = (x * factor + (factor - 1) / 2, y * factor + (factor - 1) / 2)
        assert back == pytest.approx(info1["direct_beam_centre"])
        assert info["direct_beam_radius"] == pytest.approx(
            info1["direct_beam_radius"] / factor
        )
        # the calibrated centre is the same physical position
        assert info["direct_beam_centre_calibrated"] == pytest.approx(
            info1["direct_beam_centre_calibrated"]
        )
        kx = processed.axes_manager.signal_axes[0]
        assert kx.offset + kx.scale * x == pytest.approx(
            info1["direct_beam_centre_calibrated"][0]
        )


def test_auto_binning_only_of_sparse_counts(eager):
    from hyperspy_nanoml.diffraction.preprocess import choose_binning

    s, _ = eager  # ~25 counts per pixel: not binned
    processed, _, info = preprocess_sped(s, binning="auto")
    assert info["binning"] == 1 and info["binning_source"] == "auto"
    assert "not binned" in info["binning_reason"]
    # sparse counts: the smallest factor reaching 0.25 per binned pixel
    assert choose_binning(np.full((64, 64), 0.3), True)[0] == 1
    assert choose_binning(np.full((64, 64), 0.1), True)[0] == 2
    assert choose_binning(np.full((64, 64), 0.02), True)[0] == 4
    # never below 16 px per side; never for data that are not counts
    assert choose_binning(np.full((32, 32), 0.02), True)[0] == 2
    assert choose_binning(np.full((12, 12), 0.02), True)[0] == 1
    assert choose_binning(np.full((64, 64), 0.02), False)[0] == 1
    # thinned to 0.4 % of the electrons (binomially: still Poisson counts), ~0.1 per px
    rng = np.random.default_rng(0)
    thin = rng.binomial(np.asarray(s.data, dtype=np.int64), 0.004).astype(np.uint16)
    sparse = s._deepcopy_with_new_data(thin)
    processed, mask, info = preprocess_sped(sparse, binning="auto")
    assert info["binning"] == 2 and processed.data.shape[-2:] == mask.shape == (32, 32)
    scaled = s._deepcopy_with_new_data(np.asarray(s.data, np.float32) / 20.5)
    assert preprocess_sped(scaled, binning="auto")[2]["binning"] == 1  # not counts
    with pytest.raises(ValueError, match="'auto' or a positive int"):
        preprocess_sped(s, binning="yes")
