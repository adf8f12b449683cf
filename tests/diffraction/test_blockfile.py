"""sped_phase_map straight from a NanoMegas blockfile (.blo), the usual SPED format."""

import warnings

import numpy as np

from hyperspy_nanoml.data.sped import make_sped_phases
from hyperspy_nanoml.diffraction.workflow import sped_phase_map
from hyperspy_nanoml.learn.verification import match_components


def test_phases_from_a_blockfile(tmp_path):
    s, truth = make_sped_phases((32, 32), 64, random_state=0)
    blo = s.deepcopy()
    blo.data = np.clip(blo.data, 0, 255).astype(np.uint8)  # blockfiles hold 8-bit counts
    path = tmp_path / "scan.blo"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the format wants cm units
        blo.save(path)
    out = sped_phase_map(path, random_state=0)
    assert out._lazy  # read lazily from the file
    lr = out.learning_results
    assert lr.output_dimension == truth.n_phases
    factors = np.asarray(lr.factors).T
    pixels = ~np.isnan(factors).any(axis=0)
    # compare where neither the beam mask nor 8-bit saturation distorts the truth
    pixels &= truth.patterns.max(axis=0).ravel() * truth.thickness.max() < 200
    sim, _ = match_components(
        truth.patterns.reshape(truth.n_phases, -1)[:, pixels], factors[:, pixels]
    )
    assert sim.min() > 0.9, sim
