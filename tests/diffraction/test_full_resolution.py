"""Full-resolution phase patterns of a binned fit: exact on exact data, lazy in one
pass, rows left out, errors, and kept through save and reload."""

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest

from hyperspy_nanoml.diffraction.full_resolution import full_resolution_patterns


def _exact(rng, n=60, k=3, side=12):
    H = rng.random((k, side, side))
    H[:, rng.random((side, side)) < 0.5] = 0.0  # sparse, non-negative patterns
    W = rng.random((n, k))
    return W, H, (W @ H.reshape(k, -1)).reshape(6, n // 6, side, side)


def test_exact_lazy_one_pass_with_rows_left_out():
    rng = np.random.default_rng(1)
    W, H, data = _exact(rng)
    lazy = hs.signals.Signal2D(da.from_array(data, chunks=(2, -1, -1, -1))).as_lazy()
    W_nan = W.copy()
    W_nan[[3, 17, 40]] = np.nan  # excluded positions (vacuum)
    found, passes = full_resolution_patterns(lazy, W_nan)
    assert passes == 1 and found.dtype == np.float32
    np.testing.assert_allclose(found, H, atol=1e-4)
    assert (found >= 0).all()


def test_errors():
    rng = np.random.default_rng(2)
    W, _, data = _exact(rng)
    s = hs.signals.Signal2D(data)
    with pytest.raises(ValueError, match="60 positions"):
        full_resolution_patterns(s, W[:10])
    with pytest.raises(ValueError, match="every row"):
        full_resolution_patterns(s, np.full_like(W, np.nan))


def test_sparse_result_survives_save_and_reload(tmp_path):
    pytest.importorskip("pyxem")
    from hyperspy_nanoml.data.pyxem_grains import pyxem_grains
    from hyperspy_nanoml.diffraction.calibration import phase_results
    from hyperspy_nanoml.diffraction.workflow import sped_phase_map

    s, truth = pyxem_grains(300.0, size=16, random_state=2)
    out = sped_phase_map(s, truth.n_grains, random_state=0)
    assert out.metadata.Processing.sped_phase_map.binning > 1
    patterns, maps = phase_results(out)
    out.save(tmp_path / "r.zspy")
    back = hs.load(tmp_path / "r.zspy")
    patterns2, maps2 = phase_results(back)
    assert patterns2.data.shape[1:] == s.data.shape[-2:]
    np.testing.assert_array_equal(patterns2.data, patterns.data)
    np.testing.assert_array_equal(maps2.data, maps.data)
    assert (
        patterns2.axes_manager.signal_axes[0].scale == s.axes_manager.signal_axes[0].scale
    )
