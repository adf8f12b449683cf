"""X-ray data wrappers (xraydb): names, energies, weights, edges, MACs, formulas."""

import math

import numpy as np
import pytest

from hyperspy_nanoml.eds import xray_data as xd


@pytest.mark.parametrize(
    "line, energy",
    [  # Bearden / Elam energies, keV
        ("Fe_Ka", 6.40),
        ("Fe_Kb", 7.06),
        ("Cu_La", 0.93),
        ("Zn_Lb1", 1.035),
        ("Au_Ma", 2.12),
        ("Au_Mb", 2.20),
        ("Au_La", 9.71),
        ("C_Ka", 0.277),
    ],
)
def test_line_energies_with_exspy_names(line, energy):
    assert xd.line_energy(line) == pytest.approx(energy, abs=0.01)


def test_family_lines_names_weights_and_shells():
    for el, fam in [("Fe", "K"), ("Zn", "L"), ("Au", "L"), ("Au", "M"), ("B", "K")]:
        lines = xd.family_lines(el, fam)
        assert sum(w for _, _, w, _ in lines) == pytest.approx(1.0)
        assert all(name.startswith(el + "_" + fam) for name, *_ in lines)
        assert len({name for name, *_ in lines}) == len(lines)
    names = {n: (e, w, s) for n, e, w, s in xd.family_lines("Fe", "K")}
    assert set(names) == {"Fe_Ka", "Fe_Kb"}  # Ka1+Ka2(+Ka3) merged as in exspy
    assert names["Fe_Ka"][1] == pytest.approx(0.88, abs=0.02)  # Kb/Ka ~ 0.14
    au_m = {n: s for n, _, _, s in xd.family_lines("Au", "M")}
    assert au_m["Au_Ma"] == "M5" and au_m["Au_Mb"] == "M4"
    au_l = {n: (w, s) for n, _, w, s in xd.family_lines("Au", "L")}
    assert au_l["Au_La"][1] == "L3" and au_l["Au_Lb1"][1] == "L2"
    # published Au L intensities: Lb1/La ~ 0.4-0.5, Mb/Ma ~ 0.6 (exspy: 0.40, 0.59)
    assert 0.3 < au_l["Au_Lb1"][0] / au_l["Au_La"][0] < 0.6
    w = {n: w for n, _, w, _ in xd.family_lines("Au", "M")}
    assert 0.45 < w["Au_Mb"] / w["Au_Ma"] < 0.75


def test_family_lines_beam_energy_filter():
    # Au L3 11.92 keV, L2 13.73, L1 14.35: at 13 keV only L3 lines are excited
    lines = xd.family_lines("Au", "L", beam_energy=13.0)
    assert {s for *_, s in lines} == {"L3"}
    assert sum(w for _, _, w, _ in lines) == pytest.approx(1.0)
    assert xd.family_lines("Au", "L", beam_energy=10.0) == []
    assert xd.family_lines("Fe", "K", beam_energy=7.0) == []


def test_principal_line_and_shells():
    assert xd.principal_line("Fe", "K")[0] == "Fe_Ka"
    assert xd.principal_line("Zn", "L")[0] == "Zn_La"
    assert xd.principal_line("W", "M")[0] == "W_Ma"
    assert xd.line_shell("Zn_La") == "L3"
    assert xd.parse_line("Au_Ma") == ("Au", "M", "Ma")


def test_edges_yields_weights():
    assert xd.edge_energy("Fe", "K") == pytest.approx(7.112, abs=0.002)
    assert xd.edge_energy("Au", "M5") == pytest.approx(2.206, abs=0.002)
    assert xd.edge_energy("In", "L3") == pytest.approx(3.730, abs=0.005)  # exspy lacks
    assert xd.fluorescence_yield("Fe", "K") == pytest.approx(0.35, abs=0.02)
    assert xd.family_yield("Fe", "K") == pytest.approx(xd.fluorescence_yield("Fe", "K"))
    assert 0 < xd.family_yield("Au", "M") < xd.family_yield("Au", "L") < 1
    assert xd.jump_ratio("Fe", "K") == pytest.approx(7.9, abs=0.5)
    assert 0 < xd.coster_kronig("Au", "L1", "L3") < 1
    assert xd.atomic_number("fe") == 26 and xd.element_symbol(79) == "Au"
    assert xd.atomic_weight("Fe") == pytest.approx(55.845, abs=1e-3)


def test_mass_absorption_tables_and_mixtures():
    # Cu Ka in Fe: ~300 cm2/g (Elam; NIST XCOM 302)
    for table in ("elam", "chantler", "heinrich1986"):
        assert xd.mass_absorption("Fe", 8.04, table=table) == pytest.approx(302, rel=0.05)
    # vectorised, shape kept, edge jump visible (Ni K edge 8.333 keV)
    e = np.array([[8.0, 8.2], [8.5, 9.0]])
    mu = xd.mass_absorption("Ni", e)
    assert mu.shape == (2, 2) and mu[1, 0] > 5 * mu[0, 1]
    # Pouchou & Pichoir's measured value for B Ka in U is used by the default table
    b_ka = xd.line_energy("B_Ka")
    assert xd.mass_absorption("U", b_ka) == pytest.approx(7400.0)
    assert xd.mass_absorption("U", b_ka, table="elam") != pytest.approx(7400.0, rel=0.05)
    mix = xd.mixture_mass_absorption({"Fe": 0.3, "Ni": 0.7}, 6.4)
    assert mix == pytest.approx(
        0.3 * xd.mass_absorption("Fe", 6.4) + 0.7 * xd.mass_absorption("Ni", 6.4)
    )
    # Heinrich's parametrisation agrees with Elam within ~15 % away from edges
    for el, en in [("Al", 1.74), ("Si", 6.4), ("Ni", 1.49), ("Cu", 9.71), ("Au", 8.04)]:
        h = xd.mass_absorption(el, en, table="heinrich1986")
        assert h == pytest.approx(xd.mass_absorption(el, en, table="elam"), rel=0.15)


def test_formulas_and_fraction_conversions():
    mgo = xd.parse_formula("MgO")
    assert mgo["Mg"] == pytest.approx(24.305 / (24.305 + 15.999), abs=1e-3)
    assert sum(xd.parse_formula("Ca(OH)2").values()) == pytest.approx(1.0)
    assert xd.parse_formula("Ca(OH)2")["H"] == pytest.approx(2 * 1.008 / 74.09, rel=1e-3)
    at = {"Au": 1 / 3, "In": 2 / 3}
    wt = xd.atomic_to_mass_fractions(at)
    back = xd.mass_to_atomic_fractions(wt)
    assert back["Au"] == pytest.approx(1 / 3) and back["In"] == pytest.approx(2 / 3)
    comp = {"Fe": 0.2, "Ni": 0.8}
    checked = xd.check_composition(comp)
    assert checked == comp and checked is not comp


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: xd.element_symbol("Xx"), "unknown element 'Xx'"),
        (lambda: xd.atomic_number(0), "unknown element"),
        (lambda: xd.family_lines("Fe", "M"), "no M lines"),
        (lambda: xd.family_lines("Fe", "N"), "unknown line family"),
        (lambda: xd.parse_line("Fe_Ma"), "unknown X-ray line 'Fe_Ma'"),
        (lambda: xd.parse_line("FeKa"), "malformed X-ray line name"),
        (lambda: xd.edge_energy("Fe", "L4"), "unknown shell"),
        (lambda: xd.parse_formula("Xx2O"), "cannot read chemical formula"),
        (lambda: xd.mass_absorption("Fe", -1.0), "positive"),
        (lambda: xd.mass_absorption("Fe", 1.0, table="x"), "unknown MAC table"),
        (lambda: xd.check_composition({"Fe": -0.1}), "finite and >= 0"),
        (lambda: xd.check_composition({"Fe": math.nan}), "finite and >= 0"),
        (lambda: xd.check_composition({}), "non-empty"),
        (lambda: xd.check_composition({"Fe": 0.0}), "sum to zero"),
    ],
)
def test_bad_input_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
