"""Detector efficiency and resolution model, metadata round trips, Bruker files."""

import math

import numpy as np
import pytest
import xraydb

from hyperspy_nanoml.eds.detector import Detector, Grid, Layer


def _mu(el, e_kev):
    return xraydb.mu_elam(el, np.asarray(e_kev) * 1000.0, kind="photo")


def test_fwhm_follows_fiori_newbury():
    det = Detector(fwhm_mn_ka=130.0)
    assert det.fwhm(5.8987) == pytest.approx(130.0)
    # Fiori & Newbury (1978): FWHM^2 = FWHM_MnKa^2 + 2.5 (E - E_MnKa), energies in eV
    for e in (0.525, 1.4866, 8.04, 17.48):
        ref = math.sqrt(130.0**2 + 2.5 * (e * 1000 - 5898.7))
        assert det.fwhm(e) == pytest.approx(ref, rel=0.005)
    e = np.linspace(0.2, 20, 7)
    assert np.all(np.diff(det.fwhm(e)) > 0)
    assert det.sigma_keV(5.8987) == pytest.approx(0.130 / 2.35482, rel=1e-4)


def test_windowless_and_be_efficiency_from_the_layer_physics():
    e = np.array([1.0, 3.0, 5.0, 8.0, 10.0, 15.0, 20.0])
    bare = Detector.windowless(contact=(), dead_layer=0.0, crystal_thickness=450.0)
    # only the crystal: 1 - exp(-mu rho t)
    ref = 1 - np.exp(-_mu("Si", e) * 2.33 * 450e-4)
    np.testing.assert_allclose(bare.efficiency(e), ref, rtol=1e-6)
    be = Detector.with_be_window(8.0)
    # near 1 at 5-10 keV, much lower at 1 keV, falling again above 10 keV (crystal)
    assert np.all(be.efficiency(np.array([5.0, 8.0])) > 0.95)
    assert be.efficiency(1.0) < 0.5
    assert be.efficiency(20.0) < be.efficiency(10.0)
    # the Be window and the contact / dead layer multiply in
    full = Detector.with_be_window(8.0, contact=(Layer("Au", 0.02),), dead_layer=0.1)
    expected = (
        np.exp(-_mu("Be", e) * 1.85 * 8e-4)
        * np.exp(-_mu("Au", e) * 19.3 * 0.02e-4)
        * np.exp(-_mu("Si", e) * 2.33 * 0.1e-4)
        * ref
    )
    np.testing.assert_allclose(full.efficiency(e), expected, rtol=2e-3)


def test_ultra_thin_window_grid_and_low_energy():
    ap = Detector()  # AP3.3-type polymer on a Si grid, 77 % open
    nogrid = ap.replace(grid=None)
    # the 380 um grid is opaque below ~8 keV: it removes 23 % of the photons
    for e in (2.0, 5.0, 8.0):
        assert ap.efficiency(e) / nogrid.efficiency(e) == pytest.approx(0.77, abs=0.005)
    # near the open fraction at 5-10 keV, far lower at C K, above a Be window there
    assert 0.7 < ap.efficiency(6.0) < 0.8
    assert ap.efficiency(0.277) < 0.5 * ap.efficiency(6.0)
    assert ap.efficiency(0.277) > 100 * Detector.with_be_window(8.0).efficiency(0.277)
    # zero at and below 0 keV, values in [0, 1] everywhere
    e = np.linspace(-0.5, 30, 500)
    eff = ap.efficiency(e)
    assert np.all(eff[e <= 0] == 0) and np.all((eff >= 0) & (eff <= 1))


def test_layers_and_validation():
    parylene = Layer("C10H8O4N", 0.3, density=1.39)
    assert parylene.mass_thickness == pytest.approx(1.39 * 0.3e-4)
    assert sum(parylene.composition.values()) == pytest.approx(1.0)
    assert Layer("Al", 1.0).density == pytest.approx(2.70, rel=0.01)
    with pytest.raises(ValueError, match="density of the compound"):
        Layer("Si3N4", 0.1)
    with pytest.raises(ValueError, match="thickness must be >= 0"):
        Layer("Al", -1.0)
    with pytest.raises(ValueError, match="open_area"):
        Grid(open_area=1.5)
    with pytest.raises(ValueError, match="fwhm_mn_ka"):
        Detector(fwhm_mn_ka=0.13)  # keV instead of eV
    with pytest.raises(ValueError, match="solid_angle"):
        Detector(solid_angle=-0.1)
    with pytest.raises(TypeError, match="sequence of Layer"):
        Detector(window=("Be",))


def test_dict_and_metadata_round_trip():
    import exspy

    det = Detector.with_be_window(12.0, fwhm_mn_ka=142.0, solid_angle=0.011, fano=0.115)
    assert Detector.from_dict(det.to_dict()) == det
    s = exspy.signals.EDSSEMSpectrum(np.zeros(16))
    det.write_metadata(s)
    before = s.metadata.as_dictionary()
    back = Detector.from_signal(s)
    assert back == det
    assert s.metadata.as_dictionary() == before  # never modifies the signal
    # overrides win
    assert Detector.from_signal(s, solid_angle=0.05).solid_angle == 0.05


def test_from_signal_plain_hyperspy_metadata():
    import exspy

    s = exspy.signals.EDSSEMSpectrum(np.zeros(16))
    s.set_microscope_parameters(
        energy_resolution_MnKa=125.0, elevation_angle=30.0, azimuth_angle=90.0
    )
    det = Detector.from_signal(s)
    assert (det.fwhm_mn_ka, det.elevation_angle, det.azimuth_angle) == (125.0, 30.0, 90.0)
    assert det.window == Detector().window  # defaults otherwise
    with pytest.raises(TypeError, match="HyperSpy signal"):
        Detector.from_signal(np.zeros(3))


@pytest.mark.shared_data
def test_from_signal_reads_bruker_bcf(shared_data):
    import hyperspy.api as hs

    path = shared_data / "eds" / "bcf_v2_50x50px.bcf"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    s = [x for x in hs.load(path, lazy=True) if "EDS" in type(x).__name__][0]
    # rosettasciio leaves the 130 eV placeholder; the file holds the real width model
    assert (
        s.metadata.Acquisition_instrument.SEM.Detector.EDS.energy_resolution_MnKa == 130.0
    )
    om = s.original_metadata
    var = float(om.Spectrum.SigmaAbs) + float(om.Spectrum.SigmaLin) * 5.8987
    expected_fwhm = 1000 * math.sqrt(8 * math.log(2) * var)
    before = s.metadata.as_dictionary()
    det = Detector.from_signal(s)
    assert s.metadata.as_dictionary() == before
    assert det.fwhm_mn_ka == pytest.approx(expected_fwhm, rel=1e-9)
    assert abs(det.fwhm_mn_ka - 130.0) > 1.0
    # the window layers of the file: a Moxtek-like polymer stack on a Si grid (23 % shadow)
    assert det.grid is not None and det.grid.material == "Si"
    assert det.grid.open_area == pytest.approx(0.77)
    assert {layer.material for layer in det.window} >= {"C", "O", "Al"}
    assert det.crystal_thickness == pytest.approx(450.0, rel=1e-3)
    assert det.dead_layer == pytest.approx(0.029, rel=1e-3)
    assert det.azimuth_angle == 45.0 and det.elevation_angle == 35.0
    eff = det.efficiency(np.array([0.525, 1.74, 6.0]))
    assert eff[0] < eff[1] < 0.8 and eff[2] == pytest.approx(0.77, abs=0.03)
    # a resolution the user set explicitly wins over the file's
    s2 = s.deepcopy()
    s2.metadata.Acquisition_instrument.SEM.Detector.EDS.energy_resolution_MnKa = 125.0
    assert Detector.from_signal(s2).fwhm_mn_ka == 125.0
