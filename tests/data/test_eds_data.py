"""Generated EDS spectra and spectrum images: metadata, truth, noise, laziness."""

import numpy as np
import pytest

from hyperspy_nanoml.data.eds import (
    au_in_nanowires,
    expected_spectrum,
    simulate_spectrum,
    simulate_spectrum_image,
)
from hyperspy_nanoml.eds import xray_data as xd
from hyperspy_nanoml.eds.detector import Detector


@pytest.fixture(scope="module")
def fe_ni():
    comp = {"Fe": 0.7, "Ni": 0.3}
    s, truth = simulate_spectrum(
        comp,
        beam_energy=20.0,
        live_time=20.0,
        probe_current=0.5,
        random_state=3,
        offset=-0.1,
        scale=0.01,
        size=2048,
    )
    return comp, s, truth


def test_spectrum_metadata_and_axis(fe_ni):
    comp, s, truth = fe_ni
    ax = s.axes_manager.signal_axes[0]
    assert (ax.units, ax.offset, ax.scale, ax.size) == ("keV", -0.1, 0.01, 2048)
    sem = s.metadata.Acquisition_instrument.SEM
    assert sem.beam_energy == 20.0 and sem.beam_current == 0.5
    assert sem.Detector.EDS.live_time == 20.0
    assert sem.Detector.EDS.elevation_angle == 35.0
    assert sem.Detector.EDS.energy_resolution_MnKa == 130.0
    assert s.get_take_off_angle() == pytest.approx(35.0)
    assert s.metadata.Sample.elements == ["Fe", "Ni"]
    assert s.metadata.Sample.xray_lines == ["Fe_Ka", "Ni_Ka"]
    proc = s.metadata.Processing.simulate_spectrum
    assert proc.random_state == 3 and proc.beam_energy == 20.0
    assert truth["dose_nA_s"] == pytest.approx(10.0)
    assert truth["composition"] == comp and comp == {"Fe": 0.7, "Ni": 0.3}
    assert Detector.from_signal(s) == truth["detector"]


def test_expected_spectrum_holds_exactly_the_line_counts():
    lam, parts = expected_spectrum(
        {"Fe": 0.7, "Ni": 0.3}, beam_energy=20.0, live_time=20.0, offset=0.2, size=2000
    )
    # all K and L lines lie well inside 0.2-20.2 keV: the Gaussians integrate to the counts
    net = lam - parts["continuum"]
    assert net.sum() == pytest.approx(sum(parts["line_counts"].values()), rel=1e-6)
    assert np.all(net >= -1e-9)
    # Fe Ka region: the peak sits at its energy with the detector's width
    e = parts["energy"]
    det = parts["detector"]
    e_ka = xd.line_energy("Fe_Ka")
    win = np.abs(e - e_ka) < 0.25
    centroid = (net[win] * e[win]).sum() / net[win].sum()
    assert centroid == pytest.approx(e_ka, abs=0.01)
    sd = np.sqrt((net[win] * (e[win] - centroid) ** 2).sum() / net[win].sum())
    assert sd == pytest.approx(det.sigma_keV(e_ka), rel=0.05)


def test_summed_and_fitted_line_counts_agree_with_truth(fe_ni):
    _, s, truth = fe_ni
    y = s.data
    e = s.axes_manager.signal_axes[0].axis
    det = truth["detector"]
    # window sum minus the known continuum, within Poisson error
    e_ka = xd.line_energy("Ni_Ka")
    sig = det.sigma_keV(e_ka)
    win = np.abs(e - e_ka) < 3 * sig
    others = {k: v for k, v in truth["line_counts"].items() if k != "Ni_Ka"}
    lam_others, _ = expected_spectrum(
        truth["composition"],
        beam_energy=20.0,
        live_time=20.0,
        probe_current=0.5,
        offset=-0.1,
        size=2048,
    )
    background = lam_others - _single_line(e, det, "Ni_Ka", truth["line_counts"]["Ni_Ka"])
    net = y[win].sum() - background[win].sum()
    within = truth["line_counts"]["Ni_Ka"] * 0.9973  # +-3 sigma of a Gaussian
    assert abs(net - within) < 4 * np.sqrt(y[win].sum())
    assert not others.keys() & {"Ni_Ka"}
    # linear least-squares fit of the families and the continuum recovers the truth
    bases, keys = [], []
    for el, fam in truth["family_counts"]:
        lines = {
            k: v for k, v in truth["line_counts"].items() if k.startswith(el + "_" + fam)
        }
        total = sum(lines.values())
        bases.append(sum(_single_line(e, det, k, v / total) for k, v in lines.items()))
        keys.append((el, fam))
    bases.append(truth["continuum"] / truth["continuum"].sum())
    a = np.stack(bases, 1)
    w = 1 / np.sqrt(np.maximum(y, 1.0))
    coef, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    cov = np.linalg.inv((a * w[:, None] ** 2).T @ a)
    for i, key in enumerate(keys):
        true = truth["family_counts"][key]
        assert abs(coef[i] - true) < 4 * np.sqrt(cov[i, i]) + 1e-6 * true, key


def _single_line(e, det, line, counts):
    from scipy.special import ndtr

    e_l = xd.line_energy(line)
    s = det.sigma_keV(e_l)
    step = e[1] - e[0]
    edges = np.append(e - step / 2, e[-1] + step / 2)
    return counts * np.diff(ndtr((edges - e_l) / s))


def test_noise_reproducible_and_poisson():
    kw = dict(beam_energy=15.0, live_time=5.0, size=1024)
    a, ta = simulate_spectrum("MgO", random_state=7, **kw)
    b, _ = simulate_spectrum("MgO", random_state=7, **kw)
    c, _ = simulate_spectrum("MgO", random_state=8, **kw)
    clean, tc = simulate_spectrum("MgO", noise=False, **kw)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    np.testing.assert_allclose(clean.data, tc["expected"])
    assert np.all(a.data == np.round(a.data)) and a.data.min() >= 0
    # Poisson: the scaled residuals have unit variance
    lam = ta["expected"]
    sel = lam > 20
    z = (a.data[sel] - lam[sel]) / np.sqrt(lam[sel])
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2


def test_spectrum_realistic_peak_to_background():
    s, truth = simulate_spectrum({"Cu": 1.0}, beam_energy=20.0, noise=False)
    e = s.axes_manager.signal_axes[0].axis
    i = np.argmin(np.abs(e - xd.line_energy("Cu_Ka")))
    # measured SDD spectra of pure Fe, Zn at 20 kV: Ka peak ~50-100 x the continuum under it
    assert 30 < s.data[i] / truth["continuum"][i] < 300


def test_spectrum_image_is_mixture_of_pure_spectra_and_lazy_matches():
    maps = np.zeros((2, 6, 5))
    maps[0] = np.linspace(0, 1, 5)[None, :]
    maps[1] = 1 - maps[0]
    maps_in = maps.copy()
    kw = dict(beam_energy=10.0, live_time=0.5, size=512, random_state=11, pixel_size=20.0)
    clean, truth = simulate_spectrum_image(maps, ["Cu", {"Al": 1.0}], noise=False, **kw)
    np.testing.assert_array_equal(maps, maps_in)
    assert clean.data.shape == (6, 5, 512)
    expected = np.einsum("pyx,pc->yxc", maps, truth["spectra"])
    np.testing.assert_allclose(clean.data, expected, rtol=1e-5)
    nav = clean.axes_manager.navigation_axes
    assert [(a.name, a.units, a.scale) for a in nav] == [
        ("x", "nm", 20.0),
        ("y", "nm", 20.0),
    ]
    assert clean.metadata.Sample.elements == ["Al", "Cu"]
    eager, _ = simulate_spectrum_image(maps, ["Cu", {"Al": 1.0}], **kw)
    lazy, _ = simulate_spectrum_image(maps, ["Cu", {"Al": 1.0}], lazy=True, **kw)
    assert lazy._lazy and lazy.data.npartitions <= 2
    np.testing.assert_array_equal(lazy.data.compute(), eager.data)
    # pixel totals are Poisson around the expectation
    tot, lam = eager.data.sum(-1), expected.sum(-1)
    assert np.all(np.abs(tot - lam) < 5 * np.sqrt(lam))


def test_au_in_nanowires_case():
    s, truth = au_in_nanowires((24, 32), random_state=5)
    maps = truth["maps"]
    assert maps.shape == (2, 24, 32)
    np.testing.assert_allclose(maps.sum(0), 1.0)
    # the interaction volume is wider than the wires: no pure wire pixel
    assert 0.3 < maps[1].max() < 0.95
    assert truth["wire_mask"].any() and maps[1][truth["wire_mask"]].mean() > maps[1].mean()
    assert truth["phase_names"] == ["InSb substrate", "AuIn2 wires"]
    assert truth["compositions"][1] == pytest.approx(xd.parse_formula("AuIn2"))
    assert xd.mass_to_atomic_fractions(truth["compositions"][1])["Au"] == pytest.approx(
        1 / 3
    )
    assert s.metadata.Acquisition_instrument.SEM.beam_energy == 6.5
    assert s.metadata.Sample.elements == ["Au", "In", "Sb"]
    counts = s.data.sum(-1)
    assert 20 < counts.mean() < 1000  # few counts per pixel
    # In is in both phases; Au only in the wires
    e = s.axes_manager.signal_axes[0].axis
    au = truth["spectra"][:, np.abs(e - 2.12) < 0.06].sum(1)
    inn = truth["spectra"][:, np.abs(e - 3.29) < 0.06].sum(1)
    assert au[1] > 5 * au[0] and inn.min() > 0.3 * inn.max()
    assert s.metadata.Processing.au_in_nanowires.random_state == 5


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="beam_energy"):
        simulate_spectrum({"Cu": 1.0}, beam_energy=0.0)
    with pytest.raises(ValueError, match="live_time"):
        simulate_spectrum({"Cu": 1.0}, beam_energy=20.0, live_time=-1)
    with pytest.raises(ValueError, match="size"):
        simulate_spectrum({"Cu": 1.0}, beam_energy=20.0, size=3)
    with pytest.raises(TypeError, match="random_state"):
        simulate_spectrum({"Cu": 1.0}, beam_energy=20.0, random_state=True)
    with pytest.raises(ValueError, match="mass fraction of Cu must be finite"):
        simulate_spectrum({"Cu": -1.0}, beam_energy=20.0)
    with pytest.raises(ValueError, match=r"\(n_phases, ny, nx\)"):
        simulate_spectrum_image(np.ones((4, 4)), ["Cu"], beam_energy=20.0)
    with pytest.raises(ValueError, match="one composition per phase"):
        simulate_spectrum_image(np.ones((2, 4, 4)), ["Cu"], beam_energy=20.0)
    with pytest.raises(ValueError, match="non-negative"):
        simulate_spectrum_image(-np.ones((1, 4, 4)), ["Cu"], beam_energy=20.0)
