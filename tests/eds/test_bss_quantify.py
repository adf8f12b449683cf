"""bss_quantify on generated spectrum images with known maps, spectra and compositions,
on the real Bruker maps (skipped when absent), and with bad input."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from hyperspy_nanoml.data.eds import au_in_nanowires, simulate_spectrum_image
from hyperspy_nanoml.eds.bss_quantify import bss_quantify, identify_elements
from hyperspy_nanoml.learn.verification import match_components


def _corr(a, b):
    a = np.ravel(a) - np.mean(a)
    b = np.ravel(b) - np.mean(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _matched(result, truth):
    """Index of the result component matching each true phase (by spectrum)."""
    spectra = np.stack([np.asarray(s.data) for s in result.spectra])
    _, idx = match_components(truth["spectra"], spectra)
    return idx


@pytest.fixture(scope="module")
def seed_case():
    """The seed's case: AuIn2 wires narrower than the interaction volume on InSb,
    In in both phases, ~300 counts per pixel, no pure wire pixel."""
    return au_in_nanowires((48, 64), random_state=0)


@pytest.fixture(scope="module")
def seed_result(seed_case):
    s, _ = seed_case
    return bss_quantify(s, extend=True, random_state=0, n_restarts=2)


def test_seed_case_compositions_maps_and_spectra(seed_case, seed_result):
    s, truth = seed_case
    res = seed_result
    assert res.n_components == 2
    assert res.element_source == "metadata.Sample.elements"
    idx = _matched(res, truth)
    sub, wire = (res.atomic_percent[i] for i in idx)
    # true: InSb 50/50, AuIn2 33.3/66.7 (Jany et al. 2017 published 45/55 and 38/62)
    assert sub["In"] == pytest.approx(50.0, abs=3.0)
    assert sub["Sb"] == pytest.approx(50.0, abs=3.0)
    assert wire["Au"] == pytest.approx(33.3, abs=3.0)
    assert wire["In"] == pytest.approx(66.7, abs=3.0)
    assert wire.get("Sb", 0.0) < 2.0 and sub.get("Au", 0.0) < 2.0
    # uncertainties are given and plausible (counting statistics of ~10^5-10^6 counts)
    for j in range(2):
        for el in ("Au", "In", "Sb"):
            assert 0 <= res.uncertainty[j][el] < 5.0
    # spectra and maps recovered
    for p, j in enumerate(idx):
        assert _corr(truth["spectra"][p], res.spectra[j].data) > 0.99
        true_map = truth["maps"][p]
        assert _corr(true_map, res.maps.data[j]) > 0.85
    # no pixel is pure wire in the truth (max 0.71): the report says so
    assert res.unmixing.max_purity[idx[1]] < 0.97
    assert res.unmixing.extension[idx[1]] > 0.1
    # the input is untouched and the run is recorded
    assert "bss_quantify" in res.maps.metadata.Processing
    assert res.parameters["random_state"] == 0


def test_seed_case_without_extension_is_the_purest_mixture(seed_case, seed_result):
    """Without the extension the wire spectrum is the purest pixels', which hold
    substrate: its Sb is the substrate's, and Au is underestimated."""
    s, truth = seed_case
    with pytest.warns(UserWarning, match="component . is probably a mixture"):
        res = bss_quantify(s, n_components=2, random_state=0, n_restarts=0)
    idx = _matched(res, truth)
    wire = res.atomic_percent[idx[1]]
    wire_ext = seed_result.atomic_percent[_matched(seed_result, truth)[1]]
    assert wire["Sb"] > 5.0
    assert wire["Au"] < wire_ext["Au"]
    # ... and the result says so loudly: the wire (true purest pixel 0.71) is flagged
    # with about the substrate share of its purest pixels, the substrate is not
    frac = res.parameters["mixture_fraction"]
    assert frac[idx[1]] == pytest.approx(1 - truth["maps"][1].max(), abs=0.1)
    assert frac[idx[0]] < 0.1
    assert len(res.mixture_warnings) == 1
    assert f"component {idx[1]} is probably a mixture" in res.mixture_warnings[0]
    assert "extend=True" in res.mixture_warnings[0]
    assert res.mixture_warnings[0] in str(res) and res.mixture_warnings[0] in res.table()
    rows = [r for r in res.table_rows() if r["component"] == idx[1]]
    assert rows[0]["probable_mixture_fraction"] == pytest.approx(frac[idx[1]])
    # with the extension the spectrum is corrected: no warning
    assert seed_result.mixture_warnings == []


def test_shared_element_with_pure_pixels():
    """Ag substrate, Au-Ag wires wider than the interaction volume: pure pixels exist;
    the default (purest pixels) recovers the alloy where plain NMF rotates it."""
    ny, nx = 40, 48
    w = np.zeros((ny, nx))
    for x0 in (6, 22, 36):
        w[:, x0 : x0 + 7] = 1.0
    w = np.clip(gaussian_filter(w, 1.5) / gaussian_filter(w, 1.5).max(), 0, 1)
    maps = np.stack([1 - w, w])
    s, truth = simulate_spectrum_image(
        maps,
        [{"Ag": 1.0}, {"Au": 0.6, "Ag": 0.4}],
        beam_energy=20.0,
        live_time=0.05,
        size=1024,
        scale=0.02,
        random_state=1,
    )
    s.add_elements(["Ag", "Au"])
    res = bss_quantify(s, n_components=2, random_state=0, n_restarts=0)
    idx = _matched(res, truth)
    alloy = res.weight_percent[idx[1]]
    total = alloy["Au"] + alloy["Ag"]
    assert alloy["Au"] / total == pytest.approx(0.6, abs=0.03)
    assert (
        res.weight_percent[idx[0]]["Ag"] / sum(res.weight_percent[idx[0]].values()) > 0.97
    )
    assert _corr(truth["spectra"][1], res.spectra[idx[1]].data) > 0.995
    nmf_corr = _corr(truth["spectra"][1], res.unmixing.nmf_spectra[idx[1]])
    assert _corr(truth["spectra"][1], res.spectra[idx[1]].data) > nmf_corr


def test_eager_equals_lazy():
    s, _ = au_in_nanowires((24, 32), random_state=3)
    sl, _ = au_in_nanowires((24, 32), random_state=3, lazy=True)
    assert sl._lazy
    r1 = bss_quantify(s, n_components=2, random_state=0, n_restarts=1)
    r2 = bss_quantify(sl, n_components=2, random_state=0, n_restarts=1)
    for a, b in zip(r1.atomic_percent, r2.atomic_percent, strict=True):
        for el in a:
            assert a[el] == pytest.approx(b[el], abs=0.05)
    np.testing.assert_allclose(r1.maps.data, r2.maps.data, atol=2e-3)
    assert r2.parameters["lazy"] and not r1.parameters["lazy"]


def test_few_counts_per_pixel_auto_choice():
    """~15 counts per pixel (real maps have 1-25): the choice and the compositions hold."""
    s, truth = au_in_nanowires((96, 128), random_state=4, live_time=0.001, wire_width=150.0)
    assert float(s.data.sum(-1).mean()) < 25
    res = bss_quantify(s, random_state=0, n_restarts=2)
    assert res.n_components == 2
    assert res.unmixing.bin_factor > 1
    idx = _matched(res, truth)
    sub, wire = (res.atomic_percent[i] for i in idx)
    assert sub["In"] == pytest.approx(50.0, abs=5.0)
    assert wire["Au"] == pytest.approx(33.3, abs=5.0)


def test_elements_identified_when_none_set():
    s, truth = au_in_nanowires((24, 32), random_state=5)
    s.metadata.Sample.elements = []
    del s.metadata.Sample.xray_lines
    res = bss_quantify(s, n_components=2, random_state=0, n_restarts=0)
    assert set(res.elements) >= {"Au", "In", "Sb"}
    assert res.element_source.startswith("identified")
    assert "In_La" in res.identification.reasons["In"]


def test_report_export_and_never_overwrite(seed_result, tmp_path):
    pdf = seed_result.save_report(tmp_path / "bss.pdf")
    assert pdf.stat().st_size > 10_000
    files = seed_result.export(tmp_path / "bss")
    assert [f.name for f in files] == ["bss_maps.csv", "bss_spectra.csv", "bss_table.csv"]
    table = np.genfromtxt(files[2], delimiter=",", names=True, dtype=None, encoding=None)
    assert len(table) == 2 * len(seed_result.elements)
    maps = np.loadtxt(files[0], delimiter=",", skiprows=1)
    assert maps.shape == (48 * 64, 2 + 2)
    before = [f.read_bytes() for f in files]
    with pytest.raises(FileExistsError, match="not overwriting"):
        seed_result.export(tmp_path / "bss")
    assert [f.read_bytes() for f in files] == before
    text = seed_result.table()
    assert "at.%" in text and "standardless" in text.lower() + str(
        seed_result.quantifications[0].mode
    )


def test_method_is_attached(seed_case):
    import hyperspy_nanoml  # noqa: F401

    s, _ = seed_case
    assert hasattr(s, "bss_quantify")
    data = s.data.copy()
    md = s.metadata.as_dictionary()
    r = s.bss_quantify(n_components=2, random_state=0, n_restarts=0)
    np.testing.assert_array_equal(s.data, data)  # the input is never modified
    assert s.metadata.as_dictionary().keys() == md.keys()
    assert "bss_quantify" not in s.metadata.get_item("Processing", {})
    r2 = bss_quantify(s, n_components=2, random_state=0, n_restarts=0)
    assert r.atomic_percent == r2.atomic_percent


def test_bad_input():
    s, _ = au_in_nanowires((12, 16), random_state=6)
    with pytest.raises(ValueError, match="beam energy"):
        t = s.deepcopy()
        del t.metadata.Acquisition_instrument.SEM.beam_energy
        bss_quantify(t, n_components=2)
    with pytest.raises(ValueError, match="take-off angle"):
        t = s.deepcopy()
        del t.metadata.Acquisition_instrument.SEM.Detector.EDS.elevation_angle
        bss_quantify(t, n_components=2)
    with pytest.raises(ValueError, match="empty"):
        bss_quantify(s * 0, n_components=2)
    with pytest.raises(ValueError, match="negative counts"):
        t = s.deepcopy()
        t.data[0, 0, 100] = -1
        bss_quantify(t, n_components=2)
    with pytest.raises(ValueError, match="single spectrum|navigation"):
        bss_quantify(s.inav[0, 0], n_components=2)
    # no elements set and no peak: a flat, featureless map
    flat = s.deepcopy()
    flat.data[:] = np.random.default_rng(0).poisson(0.2, flat.data.shape)
    flat.metadata.Sample.elements = []
    with pytest.raises(ValueError, match="none could be identified"):
        bss_quantify(flat, n_components=2)


def test_identify_elements_on_a_spectrum():
    # 24 x 32 pixels: at 6.5 kV Sb La is weakly excited (overvoltage 1.6); on 12 x 16
    # pixels it is only ~5σ above the continuum
    s, _ = au_in_nanowires((24, 32), random_state=7)
    from hyperspy_nanoml.eds import acquisition
    from hyperspy_nanoml.eds.lines import detector_fwhm

    total = s.data.reshape(-1, s.data.shape[-1]).sum(0)
    ident = identify_elements(total, acquisition.energy_edges(s), detector_fwhm(s), 6.5)
    assert {"Au", "In", "Sb"} <= set(ident.elements)
    assert "keV" in str(ident)


# --------------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize(
    "name", ["bcf_v2_50x50px.bcf", "30x30_instructively_packed_16bit_compressed.bcf"]
)
def test_real_bruker_maps_lazy_end_to_end(shared_data, name, tmp_path):
    import hyperspy.api as hs

    path = shared_data / "eds" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    s = [x for x in hs.load(path, lazy=True) if "EDS" in type(x).__name__][-1]
    assert s._lazy
    res = bss_quantify(s, random_state=0, n_restarts=2)
    assert 1 <= res.n_components <= 8
    assert res.parameters["lazy"]
    for at in res.atomic_percent:
        assert sum(at.values()) == pytest.approx(100.0, abs=0.5)
        assert all(np.isfinite(v) for v in at.values())
    assert res.maps.data.shape == (res.n_components, *s.data.shape[:2])
    # the detector resolution comes from the file, not the 130 eV default
    from hyperspy_nanoml.eds.lines import detector_fwhm

    assert detector_fwhm(res.spectra[0])(5.8987) != pytest.approx(130.0, abs=0.5)
    res.save_report(tmp_path / "real.pdf")
    if name.startswith("bcf_v2"):
        # Ag / Al-Cu regions: the choice holds when thinned to ~2 counts per pixel
        counts = np.asarray(s.data.compute()).astype(np.int64)
        rng = np.random.default_rng(0)
        thin = rng.binomial(counts, 2.0 / counts.sum(-1).mean())
        t = hs.signals.Signal1D(thin.astype(np.float32))
        t.set_signal_type("EDS_SEM")
        src, dst = s.axes_manager.signal_axes[0], t.axes_manager.signal_axes[0]
        dst.scale, dst.offset, dst.units = src.scale, src.offset, src.units
        t.metadata.add_dictionary(
            {"Acquisition_instrument": s.metadata.Acquisition_instrument.as_dictionary()}
        )
        r2 = bss_quantify(t, elements=res.elements, random_state=0, n_restarts=2)
        assert r2.n_components == res.n_components


def test_cli_eds_quant_never_overwrites(tmp_path, capsys):
    from hyperspy_nanoml.cli import main

    s, _ = au_in_nanowires((16, 24), random_state=8)
    path = tmp_path / "map.hspy"
    s.save(path)
    out = tmp_path / "out"
    assert main(["eds-quant", str(path), "--n-components", "2", "--out", str(out)]) == 0
    first = sorted(p.name for p in out.iterdir())
    assert first == [
        "map_bss.pdf",
        "map_bss_maps.csv",
        "map_bss_spectra.csv",
        "map_bss_table.csv",
    ]
    before = (out / "map_bss_table.csv").read_bytes()
    assert main(["eds-quant", str(path), "--n-components", "2", "--out", str(out)]) == 0
    assert (out / "map_bss_table.csv").read_bytes() == before
    assert (out / "map_2_bss_table.csv").exists()
    assert "at.%" in capsys.readouterr().out
    # a missing file is reported, not a traceback
    assert main(["eds-quant", str(tmp_path / "nope.hspy"), "--out", str(out)]) == 1


def test_atomic_uncertainty_matches_monte_carlo():
    from hyperspy_nanoml.eds import xray_data
    from hyperspy_nanoml.eds.bss_quantify import BSSQuantification

    wt = {"Au": 46.2, "In": 53.6, "Sb": 0.2}
    unc = {"Au": 0.4, "In": 0.4, "Sb": 0.5}
    r = BSSQuantification(None, [], [], [wt], [{}], [unc], list(wt), "", None, {})
    got = r.atomic_uncertainty()[0]
    rng = np.random.default_rng(0)
    A = np.array([xray_data.atomic_weight(e) for e in wt])
    W = np.array(list(wt.values())) + rng.standard_normal((200_000, 3)) * np.array(
        list(unc.values())
    )
    at = (W / A) / (W / A).sum(1, keepdims=True) * 100
    for i, el in enumerate(wt):
        assert got[el] == pytest.approx(at[:, i].std(), rel=0.02)


@pytest.mark.shared_data
def test_identify_elements_on_a_real_map_against_its_metadata(shared_data):
    """bcf_v2 map (metadata: Ag, Al, C, Cu, O): the modelled peaks' mismatch at 10^6
    counts (Al Ka shoulder, Si internal-fluorescence peak) used to add Ta and Hf."""
    import hyperspy.api as hs

    from hyperspy_nanoml.eds import acquisition
    from hyperspy_nanoml.eds.lines import detector_fwhm

    path = shared_data / "eds" / "bcf_v2_50x50px.bcf"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    s = hs.load(str(path))[-1]
    total = np.asarray(s.data.reshape(-1, s.data.shape[-1]).sum(0), dtype=float)
    ident = identify_elements(
        total, acquisition.energy_edges(s), detector_fwhm(s), acquisition.beam_energy(s)
    )
    meta = set(s.metadata.Sample.elements)
    assert {"Ag", "Al", "Cu"} <= set(ident.elements)
    assert set(ident.elements) <= meta, set(ident.elements) - meta
