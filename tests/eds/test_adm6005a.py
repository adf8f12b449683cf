"""Measured spectra of NIST glass ADM-6005a against DTSA-II's k-ratios (shared data).

15 SDD spectra at 20 kV with measured standards (Al, CaF2, Fe, Ge, Si, SiO2, Ti, Zn); the
reference k-ratios are DTSA-II's means over the 15 spectra, as used in NeXLSpectrum.jl's
filter-fit test. The standards were recorded with other energy calibrations and doses.
"""

import numpy as np
import pytest

from hyperspy_nanoml.data.eds import ADM6005A
from hyperspy_nanoml.eds import acquisition
from hyperspy_nanoml.eds.lines import fit_lines
from hyperspy_nanoml.eds.quantify import quantify

pytestmark = pytest.mark.shared_data

# DTSA-II k-ratios (data/README.md) and the relative tolerance we hold them to: a few %
# for the majors; the L lines of the 3d metals change shape with the chemistry (metal
# standard, oxide glass) and Ti L sits on O K at 1/80 of its height.
DTSA = {
    "O_Ka": (0.4923, 0.02),
    "Ca_Ka": (0.1211, 0.02),
    "Zn_Ka": (0.1115, 0.02),
    "Ti_Ka": (0.0640, 0.02),
    "Ge_Ka": (0.2628, 0.02),
    "Al_Ka": (0.0281, 0.03),
    "Si_Ka": (0.0214, 0.03),
    "Ge_La": (0.1789, 0.03),
    "Zn_La": (0.0700, 0.07),
    "Ti_La": (0.0404, 0.6),
}


def _load(path):
    import hyperspy.api as hs

    return hs.load(str(path), signal_type="EDS_SEM")


@pytest.fixture(scope="module")
def adm(shared_data):
    folder = shared_data / "eds" / "adm6005a"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    unknowns = [_load(folder / f"ADM-6005a_{i}.msa") for i in range(1, 16)]
    standards = {
        "Al": _load(folder / "Al_std.msa"),
        "Ca": (_load(folder / "CaF2_std.msa"), "CaF2"),
        "Fe": _load(folder / "Fe_std.msa"),
        "Ge": _load(folder / "Ge_std.msa"),
        "Si": _load(folder / "Si_std.msa"),
        "O": (_load(folder / "SiO2_std.msa"), "SiO2"),
        "Ti": _load(folder / "Ti_std.msa"),
        "Zn": _load(folder / "Zn_std.msa"),
    }
    return unknowns, standards


@pytest.fixture(scope="module")
def fits(adm):
    unknowns, standards = adm
    return [fit_lines(s, list(standards), references=standards) for s in unknowns]


def _k_ratios(fit, dose):
    out = {}
    for name, (net, _, d_ref) in fit.reference_intensity.items():
        out[name] = (fit.intensities[name] / dose) / (net / d_ref)
    return out


def test_k_ratios_agree_with_dtsa(adm, fits):
    unknowns, _ = adm
    ks = {}
    for s, fit in zip(unknowns, fits):
        for name, k in _k_ratios(fit, acquisition.dose(s)).items():
            ks.setdefault(name, []).append(k)
    for name, (ref, tol) in DTSA.items():
        assert np.mean(ks[name]) == pytest.approx(ref, rel=tol), name
    # Fe is absent from the glass
    assert abs(np.mean(ks["Fe_Ka"])) < 0.002
    # the Ti standard's energy labels are 9 eV off the glass's at Ti Ka (same channels):
    # the fit aligns it
    assert fit.metadata["reference_shift_eV"]["Ti_Ka"] == pytest.approx(9.0, abs=2.0)


def test_stated_uncertainty_matches_the_scatter_of_the_15_spectra(adm, fits):
    unknowns, _ = adm
    ks, sig = {}, {}
    for s, fit in zip(unknowns, fits):
        for name in ("Ge_Ka", "Zn_Ka", "Ca_Ka", "O_Ka"):
            net, s_net, d_ref = fit.reference_intensity[name]
            c = d_ref / acquisition.dose(s) / net
            ks.setdefault(name, []).append(c * fit.intensities[name])
            # the spread between spectra holds the spectrum's statistics only
            own = np.sqrt(
                fit.uncertainties[name] ** 2 - (fit.intensities[name] * s_net / net) ** 2
            )
            sig.setdefault(name, []).append(c * own)
    ratios = []
    for name in ks:
        ratios.append(np.std(ks[name], ddof=1) / np.mean(sig[name]))
        # 15 spectra (a std known to +-19 %); probe-current drift adds to the statistics
        assert 0.5 < ratios[-1] < 2.0, name
    assert 0.7 < np.mean(ratios) < 1.5


def test_quantify_with_the_measured_standards(adm):
    unknowns, standards = adm
    q = quantify(unknowns[0], standards)
    assert q.mode == "standards"
    assert q.lines["Ge"] == "Ge_Ka" and q.lines["O"] == "O_Ka"
    assert q.k_ratios["Ge_Ka"] == pytest.approx(0.2628, rel=0.02)
    assert q.weight_percent["Fe"] < 0.1
    # the composition is the XPP inverse of the k-ratios: majors present, total near 100 %
    for el in ("O", "Ge", "Zn"):
        assert q.weight_percent[el] > 10
    assert 90 < q.analytical_total < 110
    assert "Ca" in q.metadata["standards"] and q.metadata["standards"]["Ca"]["composition"]


# ---------------------------------------------------------------- the analytical total

NOMINAL = ADM6005A  # NeXLCore.jl data/composition.csv, row "ADM6005a"


def _carbon_k_per_dose(s):
    """Net C K counts per nA s (235-325 eV over a linear background)."""
    y = np.asarray(s.data, dtype=float)
    ax = s.axes_manager.signal_axes[0]
    e = (ax.offset + ax.scale * np.arange(y.size)) * (1000.0 if ax.units == "keV" else 1.0)
    pk = (e >= 230) & (e <= 330)
    lo, hi = (e >= 195) & (e <= 220), (e >= 345) & (e <= 375)
    bg = np.interp(e[pk], [e[lo].mean(), e[hi].mean()], [y[lo].mean(), y[hi].mean()])
    return (y[pk] - bg).sum() / acquisition.dose(s)


def test_the_106_percent_total_is_in_the_k_ratios_not_the_coating(adm):
    """XPP of DTSA-II's own k-ratios gives ~106 % (so does NIST's XPP: see test_xpp's
    K240/K458 checks); the files name no coating, and their carbon K peaks show no
    thicker layer on the glass than on the standards, so the quantification assumes
    equal (or no) coatings, which cancel: a 20 nm carbon layer on all changes the
    total by < 0.1 %. The excess is largest on lines the matrix correction barely
    touches (Ge Ka +4 %), i.e. in the measured k-ratios (dose) or the nominal values."""
    from hyperspy_nanoml.eds.xpp import Coating, composition_from_k_ratios, k_ratio

    unknowns, standards = adm
    c_glass = np.mean([_carbon_k_per_dose(s) for s in unknowns[:3]])
    c_sio2 = _carbon_k_per_dose(standards["O"][0])
    c_metals = [_carbon_k_per_dose(standards[el]) for el in ("Al", "Si", "Zn", "Ge")]
    assert c_glass <= c_sio2 and c_glass <= min(c_metals)
    ks = {
        n: DTSA[n][0]
        for n in ("O_Ka", "Al_Ka", "Si_Ka", "Ca_Ka", "Ti_Ka", "Zn_Ka", "Ge_Ka")
    }
    stds = {"O": "SiO2", "Ca": "CaF2"}
    bare = composition_from_k_ratios(ks, 20.0, 40.0, stds)
    same = composition_from_k_ratios(
        ks, 20.0, 40.0, stds, coating=Coating(20.0), standard_coating=Coating(20.0)
    )
    assert 105.0 < 100 * sum(bare.values()) < 107.5
    assert abs(sum(same.values()) - sum(bare.values())) < 1e-3
    # a layer on the glass only would raise the total further (O Ka absorbed)
    glass_only = composition_from_k_ratios(ks, 20.0, 40.0, stds, coating=Coating(20.0))
    assert sum(glass_only.values()) > sum(bare.values()) + 0.02
    # Ge Ka against pure Ge: the measured k-ratio exceeds the nominal glass's by ~4 %
    k_nom = k_ratio("Ge", "Ge_Ka", NOMINAL, 20.0, 40.0)
    assert 1.03 < DTSA["Ge_Ka"][0] / k_nom < 1.06
