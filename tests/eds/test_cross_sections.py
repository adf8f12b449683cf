"""Bote & Salvat ionisation cross sections against published values."""

import math

import numpy as np
import pytest

from hyperspy_nanoml.eds.cross_sections import (
    has_shell,
    ionization_cross_section,
    ionization_energy,
)

# (Z, shell, electron energy eV, cross section cm^2) computed with the authors' program
# xion.f (Bote, Salvat, Jablonski & Powell 2008), as quoted in the test suite of NIST's
# BoteSalvatICX.jl (public domain). They cover both branches of the parametrisation
# (U <= 16 and U > 16), K, L and M subshells and Z = 1-99.
XION_REFERENCE = [
    (12, "L3", 7.71792e01, 3.85315e-18),
    (12, "L3", 1.29569e04, 1.24124e-18),
    (12, "L3", 5.78762e06, 1.30393e-19),
    (23, "L1", 2.90068e08, 5.64142e-21),
    (23, "L1", 1.53993e04, 2.63509e-20),
    (45, "M3", 6.68344e08, 1.62343e-20),
    (45, "M3", 1.22321e03, 2.11571e-19),
    (67, "K", 1.63117e05, 1.36404e-23),
    (78, "M5", 2.98538e03, 2.02808e-20),
    (99, "L2", 1.00000e09, 1.39024e-22),
    (99, "L2", 2.66073e04, 3.85171e-24),
    (1, "K", 6.87860e02, 1.57729e-17),
]


@pytest.mark.parametrize(("z", "shell", "e_ev", "expected"), XION_REFERENCE)
def test_matches_xion_program(z, shell, e_ev, expected):
    got = ionization_cross_section(z, shell, e_ev / 1000.0)
    assert got == pytest.approx(expected, rel=1e-4)


def test_ionisation_energies_of_the_parametrisation():
    # Bote et al. (2009) ionisation energies (eV), also from BoteSalvatICX.jl's tests
    assert ionization_energy("Ho", "M5") * 1000 == pytest.approx(1.36386e3, abs=1.0)
    assert ionization_energy("La", "L3") * 1000 == pytest.approx(5.48366e3, abs=1.0)
    assert ionization_energy("Mo", "K") * 1000 == pytest.approx(1.99691e4, abs=1.0)


def _casnati_k(z_edge_kev, e_kev):
    """Casnati, Tartari & Baraldi, J. Phys. B 15, 155 (1982), K shell (2 electrons), cm^2.

    Powell (Ultramicroscopy 28, 24 (1989)) found it within ~10 % of measured K-shell
    cross sections for 1 <= U <= 20 and 6 <= Z <= 79: an independent published reference.
    """
    rydberg = 13.605693e-3  # keV
    a0 = 5.29177210903e-9  # cm
    mc2 = 510.99895  # keV
    u = e_kev / z_edge_kev
    phi = 10.57 * math.exp(-1.736 / u + 0.317 / u**2)
    psi = (z_edge_kev / rydberg) ** (-0.0318 + 0.3160 / u - 0.1135 / u**2)
    i = z_edge_kev / mc2
    t = e_kev / mc2
    f = (
        (2 + i)
        / (2 + t)
        * ((1 + t) / (1 + i)) ** 2
        * (((i + t) * (2 + t) * (1 + i) ** 2) / (t * (2 + t) * (1 + i) ** 2 + i * (2 + i)))
        ** 1.5
    )
    return 2 * (a0 * rydberg / z_edge_kev) ** 2 * f * psi * phi * math.log(u) / u


@pytest.mark.parametrize("element", ["Cu", "Ni", "Ag"])
@pytest.mark.parametrize("overvoltage", [1.5, 2.0, 4.0, 10.0])
def test_k_shell_agrees_with_casnati(element, overvoltage):
    edge = ionization_energy(element, "K")
    bs = ionization_cross_section(element, "K", overvoltage * edge)
    assert bs == pytest.approx(_casnati_k(edge, overvoltage * edge), rel=0.15)


@pytest.mark.parametrize(("element", "shell"), [("Cu", "K"), ("Ag", "L3"), ("Au", "M5")])
def test_zero_below_edge_and_vectorised(element, shell):
    edge = ionization_energy(element, shell)
    e = np.array([[0.0, 0.5 * edge, edge], [1.01 * edge, 3 * edge, 30 * edge]])
    q = ionization_cross_section(element, shell, e)
    assert q.shape == e.shape
    assert np.all(q[0] == 0.0)
    assert np.all(q[1] > 0)
    assert isinstance(ionization_cross_section(element, shell, 3 * edge), float)


@pytest.mark.parametrize(("element", "shell"), [("Cu", "K"), ("Ag", "L3"), ("Au", "M5")])
def test_branches_meet_at_u_16(element, shell):
    # the two analytical formulas were fitted to meet at U = 16 (Bote et al. 2009)
    edge = ionization_energy(element, shell)
    lo = ionization_cross_section(element, shell, 15.9999 * edge)
    hi = ionization_cross_section(element, shell, 16.0001 * edge)
    assert hi == pytest.approx(lo, rel=0.01)


def test_shape_of_cu_k_curve():
    # rises from the edge to a maximum at U ~ 3-4, then falls slowly
    edge = ionization_energy("Cu", "K")
    u = np.array([1.2, 2.0, 3.5, 8.0, 20.0])
    q = ionization_cross_section("Cu", "K", u * edge)
    assert q[0] < q[1] < q[2] and q[2] > q[3] > q[4]
    # magnitude: a few 1e-22 cm^2 (a few hundred barn) at the maximum
    assert 3e-22 < q[2] < 6e-22


def test_custom_edge_energy_sets_the_overvoltage():
    edge = ionization_energy("Cu", "K")
    q_own = ionization_cross_section("Cu", "K", 2 * edge)
    q_shift = ionization_cross_section("Cu", "K", 2 * 8.979, edge_energy=8.979)
    assert q_shift == pytest.approx(q_own, rel=1e-12)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown shell"):
        ionization_cross_section("Cu", "N1", 10.0)
    with pytest.raises(ValueError, match="no Bote-Salvat cross section for the L1 shell"):
        ionization_cross_section("H", "L1", 10.0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        ionization_cross_section("Cu", "K", [-1.0, 10.0])
    with pytest.raises(ValueError, match="unknown element"):
        ionization_cross_section("Xx", "K", 10.0)
    assert has_shell("Au", "M5") and has_shell("Cu", "M3") and not has_shell("Cu", "M4")
