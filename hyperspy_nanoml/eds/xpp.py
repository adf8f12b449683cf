"""XPP matrix correction for electron-probe / SEM-EDS quantification of bulk samples.

The phi(rho z) model "XPP" of Pouchou & Pichoir:

    J.-L. Pouchou and F. Pichoir, "Quantitative analysis of homogeneous or stratified
    microvolumes applying the model 'PAP'", in *Electron Probe Quantitation*,
    K. F. J. Heinrich and D. E. Newbury (eds.), Plenum, New York 1991, pp. 31-75.

Equation numbers below refer to that chapter ("PAP") as annotated in
NeXLMatrixCorrection.jl's ``src/xpp.jl`` (the chapter itself was not at hand to re-check
them). Characteristic secondary
fluorescence follows S. J. B. Reed, Br. J. Appl. Phys. 16, 913 (1965) with the
ionisation-depth ratio of Reed (Microbeam Analysis 1990, p. 109), Heinrich's Lenard
coefficient (EPASA 2, paper 7, 1967) and Reed's K/L/M family factors, in the form used by
NIST EPQ (``Fluorescence.ReedFluorescence``) and NeXLMatrixCorrection.jl (``src/reed.jl``);
those public-domain programs were read for the equations, this is an independent numpy
implementation. X-ray data (edges, lines, yields, jump ratios, mass absorption
coefficients) come from :mod:`hyperspy_nanoml.eds.xray_data` (xraydb).

Everything is vectorised over "line cases" (one composition, one X-ray line, one beam
energy, one take-off angle): :func:`k_ratios` evaluates a whole k-ratio table at once.

Example
-------
>>> from hyperspy_nanoml.eds.xpp import k_ratio, composition_from_k_ratios
>>> k = k_ratio("Fe", "K", {"Fe": 0.5, "Ni": 0.5}, beam_energy=20.0, takeoff_angle=40.0)
>>> comp = composition_from_k_ratios({"Fe_Ka": k, "Ni_Ka": 0.46}, 20.0, 40.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from hyperspy_nanoml.eds import xray_data as xd

__all__ = [
    "Coating",
    "XPPIntensity",
    "ConvergenceError",
    "k_ratio",
    "k_ratios",
    "composition_from_k_ratios",
    "emitted_intensity",
    "phi_rho_z",
]

_SQRT2 = math.sqrt(2.0)
#: Mass absorption coefficients used by default (see ``xray_data.mass_absorption``).
DEFAULT_MAC_TABLE = "pap1991"


class ConvergenceError(RuntimeError):
    """The iteration of :func:`composition_from_k_ratios` did not converge."""


@dataclass(frozen=True)
class XPPIntensity:
    """Generated and emitted intensity of one line (or family) in the XPP model.

    Attributes
    ----------
    line : str
        Line name (``"Fe_Ka"``), or the principal line of a family.
    energy : float
        Line energy in keV (the principal line's for a family).
    generated : float
        Area of phi(rho z) in g/cm^2, PAP normalisation (phi of an isolated thin layer
        = 1), i.e. F = (R/S)/Q(E0) (PAP eqn 13). Family: line-weighted mean.
    emitted : float
        Area of phi(rho z) exp(-chi rho z) in g/cm^2 (the absorption-weighted area F(chi)).
        Family: line-weighted mean.
    fluorescence : float
        1 + I_f/I_p, characteristic secondary fluorescence after Reed (1965).
    """

    line: str
    energy: float
    generated: float
    emitted: float
    fluorescence: float


@dataclass(frozen=True)
class Coating:
    """A conductive surface layer (e.g. evaporated carbon) on a specimen or standard.

    The correction is the usual thin-layer one (e.g. Kerrigan, Pouchou & Pichoir 1991
    p. 52; NeXLMatrixCorrection.jl's ``Coating`` with the beam energy lowered by the
    loss in the film): the beam crosses the layer at normal incidence and enters the
    substrate with ``E0 - dE``, dE = rho t S(E) with S the PAP deceleration law of the
    layer material (PAP eqn 5, the same law as the XPP model; for carbon at 20 keV it
    gives 11.7 MeV cm^2/g, ESTAR's collision stopping power is 11.6), evaluated at the
    mid-film energy; the emitted X-rays are attenuated by
    exp(-(mu/rho)(E_line) rho t / sin(takeoff)). X-rays generated in the layer itself
    and the change of the substrate's backscatter are neglected (both are second order
    for layers of a few tens of nm).

    Parameters
    ----------
    thickness_nm : float
        Layer thickness in nm (>= 0).
    material : str or dict
        Formula or mass fractions of the layer, default ``"C"``.
    density : float, optional
        g/cm^3; default 1.9 for carbon (evaporated carbon; NeXLSpectrum's choice), required
        for other materials.

    Example
    -------
    >>> c = Coating(20.0)              # 20 nm of carbon at 1.9 g/cm^3
    >>> round(c.mass_thickness * 1e6, 2)  # ug/cm^2
    3.8
    """

    thickness_nm: float
    material: str | Mapping = "C"
    density: float | None = None

    def __post_init__(self):
        t = float(self.thickness_nm)
        if not math.isfinite(t) or t < 0:
            raise ValueError(
                f"coating thickness_nm must be finite and >= 0 (nm), got {self.thickness_nm!r}"
            )
        comp = xd.check_composition(self.material, name="coating material")
        rho = self.density
        if rho is None:
            if set(comp) != {"C"}:
                raise ValueError(
                    f"give the density (g/cm^3) of the coating {self.material!r}; only "
                    "carbon has a default (1.9 g/cm^3)"
                )
            rho = 1.9
        rho = float(rho)
        if not math.isfinite(rho) or rho <= 0 or rho > 25:
            raise ValueError(f"coating density must be in (0, 25] g/cm^3, got {rho!r}")
        object.__setattr__(self, "thickness_nm", t)
        object.__setattr__(self, "density", rho)

    @property
    def composition(self) -> dict:
        """Normalised mass fractions of the layer."""
        return _normalised(xd.check_composition(self.material, name="coating material"))

    @property
    def mass_thickness(self) -> float:
        """rho t in g/cm^2."""
        return self.density * self.thickness_nm * 1.0e-7

    def energy_loss(self, beam_energy) -> np.ndarray:
        """Energy lost by the beam crossing the layer at normal incidence (keV)."""
        e0 = np.asarray(beam_energy, dtype=float)
        rt = self.mass_thickness
        if rt == 0:
            return np.zeros_like(e0)
        s0 = _stopping_power(self.composition, e0)
        mid = np.maximum(e0 - 0.5 * rt * s0, 0.05 * e0)
        # a layer thick enough to stop the beam loses all of it (no X-rays below)
        return np.minimum(rt * _stopping_power(self.composition, mid), e0)

    def transmission(self, energy_keV, takeoff_angle_rad, mac_table=DEFAULT_MAC_TABLE):
        """Fraction of X-rays of ``energy_keV`` leaving through the layer."""
        e = np.asarray(energy_keV, dtype=float)
        if self.mass_thickness == 0:
            return np.ones_like(e)
        comp = self.composition
        mu = sum(w * xd.mass_absorption(el, e, table=mac_table) for el, w in comp.items())
        return np.exp(-mu * self.mass_thickness / np.sin(takeoff_angle_rad))


def _stopping_power(comp: dict, energy) -> np.ndarray:
    """PAP deceleration law -dE/d(rho s) in keV cm^2/g (PAP eqns 5-8) of a material."""
    e = np.asarray(energy, dtype=float)
    w = np.array(list(comp.values()))
    z = np.array([xd.atomic_number(el) for el in comp], dtype=float)
    a = np.array([xd.atomic_weight(el) for el in comp], dtype=float)
    za = w * z / a
    big_m = za.sum()
    j = math.exp(float((za * np.log(_mean_ionization_potential(z))).sum() / big_m))
    v = e / j
    f = (
        6.6e-6 * v**0.78
        + 1.12e-5 * (1.35 - 0.45 * j**2) * v**0.1
        + 2.2e-6 / j * v ** (-0.5 + 0.25 * j)
    )
    return big_m / j / f


def _check_coating(value, name: str):
    if value is None or isinstance(value, Coating):
        return value
    raise ValueError(
        f"{name} must be a Coating (e.g. Coating(20.0) for 20 nm of carbon) or None, "
        f"got {value!r}"
    )


# ============================================================================ XPP kernel


def _mean_ionization_potential(z):
    """J in keV, PAP eqn 7 (Zeller 1973): J = Z (10.04 + 8.25 exp(-Z/11.22)) eV."""
    return 1.0e-3 * z * (10.04 + 8.25 * np.exp(-z / 11.22))


def _shell_exponent(family_index, z):
    """Exponent m of the PAP ionisation cross section Q ~ ln(U)/(U^m E_c^2) (PAP eqn 10)."""
    return np.where(
        family_index == 0,
        0.86 + 0.12 * np.exp(-((z / 5.0) ** 2)),
        np.where(family_index == 1, 0.82, 0.78),
    )


def _xpp_parameters(w, z, a, ec, m, e0):
    """The XPP phi(rho z) parameters, vectorised over the first axis.

    Parameters
    ----------
    w, z, a : (n, k) arrays
        Normalised mass fractions (0 in padding), atomic numbers and weights.
    ec, m, e0 : (n,) arrays
        Edge energy (keV), cross-section exponent, beam energy (keV).

    Returns
    -------
    dict of (n,) arrays: phi0, A, a, B, b, F (F in g/cm^2).
    """
    # PAP p. 35 and eqns 6-7: M = sum C Z/A; ln J = sum (C Z/A) ln J_i / M
    za = w * z / a
    big_m = za.sum(axis=1)
    ln_j = (za * np.log(_mean_ionization_potential(z))).sum(axis=1) / big_m
    j = np.exp(ln_j)
    # PAP eqn 8: deceleration law dE/drhos = -(M/J) / sum_k D_k (E/J)^P_k
    d = np.stack([np.full_like(j, 6.6e-6), 1.12e-5 * (1.35 - 0.45 * j**2), 2.2e-6 / j])
    p = np.stack([np.full_like(j, 0.78), np.full_like(j, 0.1), -0.5 + 0.25 * j])
    u0 = e0 / ec
    v0 = e0 / j
    # 1/S = integral from E0 down to Ec of (Q(E)/Q(E0)) / (dE/drhos) dE in closed form,
    # with Q ~ ln(U)/U^m and T_k = 1 + P_k - m (PAP, near eqn 11)
    t = 1.0 + p - m
    ln_u0 = np.log(u0)
    inv_s = (
        u0
        / (v0 * big_m)
        * (d * (v0 / u0) ** p * (t * u0**t * ln_u0 - u0**t + 1.0) / t**2).sum(axis=0)
    )
    # PAP eqn 10: relative ionisation cross section at E0
    q_e0 = ln_u0 / (u0**m * ec**2)
    # PAP appendix 1: backscatter loss factor R with the mean Z of (sum C sqrt Z)^2
    zb = ((w * np.sqrt(z)).sum(axis=1)) ** 2
    eta = 1.75e-3 * zb + 0.37 * (1.0 - np.exp(-0.015 * zb**1.3))
    wbar = 0.595 + eta / 3.7 + eta**4.55
    q = (2.0 * wbar - 1.0) / (1.0 - wbar)
    ju0 = 1.0 + u0 * (ln_u0 - 1.0)
    g_u0 = (u0 - 1.0 - (1.0 - u0 ** -(1.0 + q)) / (1.0 + q)) / ((2.0 + q) * ju0)
    r = 1.0 - eta * wbar * (1.0 - g_u0)
    # PAP eqn 13: area F = (R/S)/Q(E0)
    f = r * inv_s / q_e0
    # surface ionisation phi(0) (PAP, XPP section)
    phi0 = 1.0 + 3.3 * (1.0 - u0 ** -(2.0 - 2.3 * eta)) * eta**1.2
    # PAP eqn 28: mean depth of ionisation Rbar, with F/Rbar >= phi0
    x = 1.0 + 1.3 * np.log(zb)
    y = 0.2 + zb / 200.0
    f_over_rbar = 1.0 + x * np.log(1.0 + y * (1.0 - u0**-0.42)) / np.log(1.0 + y)
    f_over_rbar = np.maximum(f_over_rbar, phi0)
    rbar = f / f_over_rbar
    # PAP eqn 29: initial slope P; appendix 4: b
    g = 0.22 * np.log(4.0 * zb) * (1.0 - 2.0 * np.exp(-zb * (u0 - 1.0) / 15.0))
    h = 1.0 - 10.0 * (1.0 - 1.0 / (1.0 + u0 / 10.0)) / zb**2
    b = _SQRT2 * (1.0 + np.sqrt(np.maximum(1.0 - rbar * phi0 / f, 0.0))) / rbar
    gh4 = np.minimum(g * h**4, 0.9 * b * rbar**2 * (b - 2.0 * phi0 / f))
    slope = gh4 * f / rbar**2
    # appendix 4: a, epsilon, B, A
    a_small = (slope + b * (2.0 * phi0 - b * f)) / (b * f * (2.0 - b * rbar) - phi0)
    eps = (a_small - b) / b
    tiny = 1.0e-6
    eps = np.where(np.abs(eps) < tiny, np.where(eps < 0, -tiny, tiny), eps)
    a_small = b * (1.0 + eps)
    big_b = (b**2 * f * (1.0 + eps) - slope - phi0 * b * (2.0 + eps)) / eps
    big_a = (big_b / b + phi0 - b * f) * (1.0 + eps) / eps
    return {"phi0": phi0, "A": big_a, "a": a_small, "B": big_b, "b": b, "F": f}


def _f_chi(prm, chi):
    """Absorption-weighted area F(chi) = integral phi(rho z) exp(-chi rho z) (XPP)."""
    b, eps = prm["b"], prm["a"] / prm["b"] - 1.0
    return (
        prm["phi0"] + prm["B"] / (b + chi) - prm["A"] * b * eps / (b * (1.0 + eps) + chi)
    ) / (b + chi)


# ============================================================================ line cases


@dataclass
class _Cases:
    """Flat arrays describing n line cases (composition, line, E0, take-off angle)."""

    comp: list  # normalised composition dicts (symbol -> fraction), one per case
    element: list  # measured element symbol
    energy: np.ndarray  # line energy, keV
    shell: list  # ionised subshell
    e0: np.ndarray  # keV
    toa: np.ndarray  # radians
    mac_table: str = DEFAULT_MAC_TABLE


_FAMILY_INDEX = {"K": 0, "L": 1, "M": 2}


def _mac_lookup(requests, table):
    """Mass absorption coefficients for a list of (element, energy) pairs, one
    vectorised xraydb lookup per element."""
    by_el: dict = {}
    for i, (el, e) in enumerate(requests):
        by_el.setdefault(el, ([], []))
        by_el[el][0].append(i)
        by_el[el][1].append(e)
    out = np.empty(len(requests))
    for el, (idx, energies) in by_el.items():
        out[idx] = xd.mass_absorption(el, np.asarray(energies), table=table)
    return out


def _padded(comps):
    """(n, k) arrays of mass fractions, Z, A and symbols for a list of compositions."""
    k = max(len(c) for c in comps)
    n = len(comps)
    w = np.zeros((n, k))
    z = np.ones((n, k))
    a = np.ones((n, k))
    syms = [list(c) for c in comps]
    for i, c in enumerate(comps):
        for j, (el, frac) in enumerate(c.items()):
            w[i, j] = frac
            z[i, j] = xd.atomic_number(el)
            a[i, j] = xd.atomic_weight(el)
    return w, z, a, syms


def _mixture_mac(comps, energies, table):
    """sum_i w_i mu_i(E) for each (composition, energy) pair."""
    req, owner, frac = [], [], []
    for i, (c, e) in enumerate(zip(comps, energies)):
        for el, wf in c.items():
            req.append((el, float(e)))
            owner.append(i)
            frac.append(wf)
    mu = _mac_lookup(req, table)
    out = np.zeros(len(comps))
    np.add.at(out, np.asarray(owner, dtype=int), np.asarray(frac) * mu)
    return out


def _evaluate(cases: _Cases, fluorescence: bool = True):
    """Generated area F, emitted area F(chi) and Reed factor for every line case."""
    w, z, a, syms = _padded(cases.comp)
    zel = np.array([xd.atomic_number(el) for el in cases.element], dtype=float)
    fam = np.array([_FAMILY_INDEX[s[0]] for s in cases.shell])
    ec = np.array([xd.edge_energy(el, s) for el, s in zip(cases.element, cases.shell)])
    m = _shell_exponent(fam, zel)
    prm = _xpp_parameters(w, z, a, ec, m, cases.e0)
    mu = _mixture_mac(cases.comp, cases.energy, cases.mac_table)
    chi = mu / np.sin(cases.toa)
    emitted = _f_chi(prm, chi)
    fl = np.ones(len(cases.e0))
    if fluorescence:
        fl = 1.0 + _reed(cases, ec, fam, mu)
    return prm["F"], emitted, fl


# ============================================================================ Reed


@cache
def _reed_exciters(a_el: str, a_shell: str, b_el: str, e0: float) -> tuple:
    """Lines of element B that fluoresce shell ``a_shell`` of element A (EPQ's choice).

    As EPQ's ``Fluorescence.compute``: take B's family of lowest energy (M, then L, then
    K) that has a line above A's edge; ignore B when that family's strongest such line
    is not excited (its edge >= E0) or lies more than 5 keV (A in K) / 3.5 keV (A in L,
    M) above A's edge. Returns (energy, family weight, B shell, B family) of each line of
    that family above A's edge whose own edge is below E0.
    """
    ea = xd.edge_energy(a_el, a_shell)
    delta = 5.0 if a_shell == "K" else 3.5
    for fam in ("M", "L", "K"):
        try:
            lines = xd.family_lines(b_el, fam)
        except ValueError:
            continue
        above = [t for t in lines if t[1] > ea]
        if not above:
            continue
        best = max(above, key=lambda t: t[2])
        if xd.edge_energy(b_el, best[3]) >= e0 or best[1] >= ea + delta:
            return ()
        return tuple(
            (e, wt, sh, fam) for _, e, wt, sh in above if xd.edge_energy(b_el, sh) < e0
        )
    return ()


def _ionisation_fraction(el: str, shell: str, energy: float) -> float:
    """Fraction of photoabsorption by ``el`` at ``energy`` that ionises ``shell``:
    (r_s - 1)/r_s times 1/r_t for each more tightly bound edge t below ``energy``."""
    frac = 1.0
    for t in xd.SHELLS:
        try:
            et = xd.edge_energy(el, t)
            r = xd.jump_ratio(el, t)
        except ValueError:
            continue
        if r < 1.0:
            r = 1.0
        if t == shell:
            return frac * (r - 1.0) / r
        if et < energy:
            frac /= r
    return 0.0


# Reed's factor for a different family of exciting (B) and excited (A) shells.
_FAMILY_FACTOR = {
    ("K", "L"): 1.0 / 0.24,
    ("L", "K"): 0.24,
    ("M", "K"): 0.02,
    ("M", "L"): 0.02,
}


def _reed(cases: _Cases, ec, fam, mu_a_line):
    """I_f / I_p for every line case (Reed 1965, EPQ/NeXL form), vectorised over the
    (case, exciting line) pairs."""
    rows, e_b, wt_b, cb, aa_ab, ion, omega, ub, ff, mu_b_in_a = ([] for _ in range(10))
    comps_b = []
    a_fam = "KLM"
    for i, (comp, a_el, a_shell) in enumerate(zip(cases.comp, cases.element, cases.shell)):
        e0 = float(cases.e0[i])
        fa = a_fam[fam[i]]
        for b_el, c_b in comp.items():
            if c_b <= 0:
                continue
            for e, wt, sh, fb in _reed_exciters(a_el, a_shell, b_el, e0):
                f = 1.0 if fa == fb else _FAMILY_FACTOR.get((fa, fb), 0.0)
                if f == 0.0:
                    continue
                rows.append(i)
                e_b.append(e)
                wt_b.append(wt)
                cb.append(c_b)
                aa_ab.append(xd.atomic_weight(a_el) / xd.atomic_weight(b_el))
                ion.append(_ionisation_fraction(a_el, a_shell, e))
                omega.append(xd.family_yield(b_el, fb))
                ub.append(e0 / xd.edge_energy(b_el, sh))
                ff.append(f)
                mu_b_in_a.append((a_el, e))
                comps_b.append(comp)
    out = np.zeros(len(cases.e0))
    if not rows:
        return out
    rows = np.asarray(rows)
    e_b = np.asarray(e_b)
    mu_b = _mixture_mac(comps_b, e_b, cases.mac_table)  # B radiation in the specimen
    mu_ba = _mac_lookup(mu_b_in_a, cases.mac_table)  # B radiation in pure A
    e0 = cases.e0[rows]
    ua = e0 / ec[rows]
    ub = np.asarray(ub)

    def ion_depth(u):  # Reed 1990 ionisation-depth ratio term
        return u * np.log(u) - u + 1.0

    ss = ion_depth(ub) / ion_depth(ua)
    # absorption of the fluorescence (u) and depth of the primary generation (v, Lenard)
    u = np.maximum(mu_a_line[rows] / (np.sin(cases.toa[rows]) * mu_b), 1.0e-6)
    lenard = 4.5e5 / (e0**1.65 - ec[rows] ** 1.65)
    v = lenard / mu_b
    term = (
        np.asarray(ff)
        * 0.5
        * np.asarray(cb)
        * (mu_ba / mu_b)
        * np.asarray(ion)
        * np.asarray(omega)
        * np.asarray(wt_b)
        * np.asarray(aa_ab)
        * ss
        * (np.log1p(u) / u + np.log1p(v) / v)
    )
    np.add.at(out, rows, term)
    return out


# ============================================================================ input checks


def _check_beam(beam_energy) -> np.ndarray:
    e0 = np.asarray(beam_energy, dtype=float)
    if not np.all(np.isfinite(e0)) or np.any(e0 <= 0):
        raise ValueError(
            f"beam_energy must be positive and finite, in keV (e.g. 20.0), got {beam_energy!r}"
        )
    if np.any(e0 > 50.0):
        raise ValueError(
            f"beam_energy {beam_energy!r} keV is above 50 keV, outside the XPP model's "
            "range; give the energy in keV, not eV"
        )
    return e0


def _check_toa(takeoff_angle) -> np.ndarray:
    t = np.asarray(takeoff_angle, dtype=float)
    if not np.all(np.isfinite(t)) or np.any(t <= 0) or np.any(t > 90):
        raise ValueError(
            f"takeoff_angle must lie in (0, 90] degrees, got {takeoff_angle!r}"
        )
    return t


def _check_mac_table(table: str) -> str:
    if table not in xd.MAC_TABLES:
        raise ValueError(f"unknown mac_table {table!r}: give one of {xd.MAC_TABLES}")
    return table


def _normalised(comp: dict) -> dict:
    total = sum(comp.values())
    return {el: v / total for el, v in comp.items()}


def _resolve_lines(element: str, spec, e0: float) -> list[tuple[str, float, float, str]]:
    """Lines (name, energy, weight, shell) for an element and a family/line spec,
    weights normalised over the lines excited at ``e0``."""
    sym = xd.element_symbol(element)
    if isinstance(spec, str) and spec in xd.FAMILIES:
        lines = xd.family_lines(sym, spec, beam_energy=e0)
        if not lines:
            shell = xd.family_lines(sym, spec)[0][3]
            raise ValueError(
                f"no {sym} {spec} line is excited: the {sym} {shell} edge "
                f"({xd.edge_energy(sym, shell):.3f} keV) is above the beam energy "
                f"({e0:g} keV); use another family or a higher beam energy"
            )
        return lines
    if not isinstance(spec, str):
        raise ValueError(
            f"family must be 'K', 'L', 'M' or a line name such as 'Fe_Ka', got {spec!r}"
        )
    name = spec if "_" in spec else f"{sym}_{spec}"
    line_el, family, _ = xd.parse_line(name)
    if line_el != sym:
        raise ValueError(f"line {spec!r} does not belong to element {sym}")
    shell = xd.line_shell(name)
    edge = xd.edge_energy(sym, shell)
    if edge >= e0:
        raise ValueError(
            f"{name} is not excited: the {sym} {shell} edge ({edge:.3f} keV) is above the "
            f"beam energy ({e0:g} keV); use a lower-energy line or a higher beam energy"
        )
    return [(name, xd.line_energy(name), 1.0, shell)]


def _parse_key(key) -> tuple[str, str]:
    """k-ratio key -> (element, spec): "Fe_Ka" -> ("Fe", "Fe_Ka"); ("Fe", "K") -> ("Fe", "K")."""
    if isinstance(key, tuple) and len(key) == 2:
        if not isinstance(key[1], str):
            raise ValueError(
                f"family in {key!r} must be 'K', 'L', 'M' or a line name such as 'Ka'"
            )
        return xd.element_symbol(key[0]), key[1]
    if isinstance(key, str):
        el, _, _ = xd.parse_line(key)
        return el, key
    raise ValueError(
        f"k-ratio key {key!r} must be a line name such as 'Fe_Ka' or a tuple "
        "(element, family) such as ('Fe', 'K')"
    )


def _standard_for(element: str, standards) -> dict:
    if standards is None or element not in standards:
        return {element: 1.0}
    std = xd.check_composition(standards[element], name=f"standard for {element}")
    if std.get(element, 0.0) <= 0:
        raise ValueError(
            f"the standard for {element} ({standards[element]!r}) does not contain {element}"
        )
    return std


# ============================================================================ public API


def _k_ratio_table(
    lines,
    compositions,
    e0,
    toa,
    standards,
    fluorescence,
    mac_table,
    coatings=None,
    standard_coatings=None,
):
    """k-ratios of n rows; e0/toa already checked arrays of shape (n,) or scalars;
    coatings / standard_coatings: None or one Coating (or None) per row."""
    n = len(lines)
    e0 = np.broadcast_to(e0, (n,)).astype(float)
    toa = np.broadcast_to(toa, (n,)).astype(float)
    coatings = [None] * n if coatings is None else coatings
    standard_coatings = [None] * n if standard_coatings is None else standard_coatings
    c_comp, c_el, c_e, c_sh, c_e0, c_toa, c_row, c_w, c_std = ([] for _ in range(9))
    c_tr = []
    conc = np.zeros(n)
    conc_std = np.zeros(n)
    for i in range(n):  # assemble the line cases (bookkeeping only; numerics below)
        el, spec = _parse_key(lines[i])
        comp = xd.check_composition(compositions[i], name=f"composition of row {i}")
        if el not in comp:
            raise ValueError(
                f"row {i}: the measured element {el} is not in the composition "
                f"{compositions[i]!r} (give it with mass fraction 0 if it is absent)"
            )
        if standards is not None and standards[i] is not None:
            std = xd.check_composition(standards[i], name=f"standard of row {i}")
        else:
            std = {el: 1.0}
        if std.get(el, 0.0) <= 0:
            raise ValueError(
                f"row {i}: the standard {standards[i]!r} does not contain {el}"
            )
        conc[i] = comp[el]
        conc_std[i] = std[el]
        unk_n, std_n = _normalised(comp), _normalised(std)
        sides = []
        for is_std, cmp, coat in (
            (False, unk_n, coatings[i]),
            (True, std_n, standard_coatings[i]),
        ):
            e_in = float(e0[i])
            if coat is not None:  # the beam enters the substrate with E0 - dE
                e_in -= float(coat.energy_loss(e_in))
            sides.append((is_std, cmp, coat, e_in))
        for _, energy, weight, shell in _resolve_lines(el, spec, float(e0[i])):
            for is_std, cmp, coat, e_in in sides:
                edge = xd.edge_energy(el, shell)
                if e_in <= edge * 1.01:
                    raise ValueError(
                        f"row {i}: the beam loses {float(e0[i]) - e_in:.3g} keV in the "
                        f"{'standard' if is_std else 'specimen'} coating and no longer "
                        f"excites {el} {shell} ({edge:.3f} keV): check the coating thickness"
                    )
                c_comp.append(cmp)
                c_el.append(el)
                c_e.append(energy)
                c_sh.append(shell)
                c_e0.append(e_in)
                c_toa.append(math.radians(toa[i]))
                c_row.append(i)
                c_w.append(weight)
                c_std.append(is_std)
                c_tr.append(
                    1.0
                    if coat is None
                    else float(coat.transmission(energy, math.radians(toa[i]), mac_table))
                )
    cases = _Cases(
        c_comp, c_el, np.asarray(c_e), c_sh, np.asarray(c_e0), np.asarray(c_toa), mac_table
    )
    _, emitted, fl = _evaluate(cases, fluorescence)
    inten = np.asarray(c_w) * emitted * fl * np.asarray(c_tr)
    is_std = np.asarray(c_std)
    rows = np.asarray(c_row)
    num = np.zeros(n)
    den = np.zeros(n)
    np.add.at(num, rows[~is_std], inten[~is_std])
    np.add.at(den, rows[is_std], inten[is_std])
    return conc * num / (conc_std * den)


def k_ratios(
    lines: Sequence,
    compositions: Sequence,
    beam_energy,
    takeoff_angle,
    *,
    standards: Sequence | None = None,
    fluorescence: bool = True,
    mac_table: str = DEFAULT_MAC_TABLE,
    coating: Coating | Sequence | None = None,
    standard_coating: Coating | Sequence | None = None,
) -> np.ndarray:
    """Vectorised XPP k-ratios for a table of (line, composition, E0, take-off angle).

    Parameters
    ----------
    lines : sequence of str or (element, family)
        Per row: a line name (``"Fe_Ka"``, ``"Au_Ma"``, ``"Zn_Lb1"``) or a tuple
        ``(element, family)`` with family ``"K"``, ``"L"`` or ``"M"`` (the family's
        excited lines, weighted by :func:`~hyperspy_nanoml.eds.xray_data.family_lines`).
    compositions : sequence of dict or str
        Per row: mass fractions of the specimen (or a formula). Used normalised for the
        matrix correction; the measured element's own fraction enters as given.
    beam_energy : float or array_like (n,)
        keV.
    takeoff_angle : float or array_like (n,)
        Degrees, in (0, 90].
    standards : sequence of (dict, str or None), optional
        Per row: the standard's composition; ``None`` (or no sequence) = pure element.
    fluorescence : bool
        Include Reed characteristic fluorescence (default).
    mac_table : str
        Mass absorption coefficients (see
        :func:`~hyperspy_nanoml.eds.xray_data.mass_absorption`); default ``"pap1991"``.
    coating, standard_coating : Coating or sequence of (Coating or None), optional
        Surface layer on the specimen / on the standard (one for all rows, or one per
        row); ``None``: uncoated. See :class:`Coating`.

    Returns
    -------
    ndarray (n,) of k-ratios ``I(specimen)/I(standard)``.

    References
    ----------
    Pouchou & Pichoir (1991), Electron Probe Quantitation, pp. 31-75; Reed (1965).

    Example
    -------
    >>> k = k_ratios(["Fe_Ka", ("Ni", "K")], [{"Fe": 0.5, "Ni": 0.5}] * 2, 20.0, 40.0)
    """
    n = len(lines)
    if len(compositions) != n:
        raise ValueError(
            f"lines and compositions must have the same length ({n} != {len(compositions)})"
        )
    if standards is not None and len(standards) != n:
        raise ValueError("standards must have one entry per row (None = pure element)")
    e0 = _check_beam(beam_energy)
    toa = _check_toa(takeoff_angle)
    for name, arr in (("beam_energy", e0), ("takeoff_angle", toa)):
        if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
            raise ValueError(f"{name} must be a scalar or have one value per row ({n})")
    coats = [
        _per_row(c, n, name)
        for c, name in ((coating, "coating"), (standard_coating, "standard_coating"))
    ]
    if n == 0:
        return np.zeros(0)
    return _k_ratio_table(
        lines,
        compositions,
        e0,
        toa,
        standards,
        fluorescence,
        _check_mac_table(mac_table),
        *coats,
    )


def _per_row(value, n: int, name: str):
    """A Coating / None for all rows, or a sequence of them with one per row."""
    if value is None or isinstance(value, Coating):
        return [value] * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != n:
            raise ValueError(f"{name} must have one entry per row ({n}), got {len(value)}")
        return [_check_coating(v, name) for v in value]
    return [_check_coating(value, name)]


def k_ratio(
    element: str,
    family: str,
    composition_wt: Mapping[str, float] | str,
    beam_energy: float,
    takeoff_angle: float,
    *,
    standard: Mapping[str, float] | str | None = None,
    fluorescence: bool = True,
    mac_table: str = DEFAULT_MAC_TABLE,
    coating: Coating | None = None,
    standard_coating: Coating | None = None,
) -> float:
    """XPP k-ratio of an element's line (or family) in a specimen against a standard.

    Parameters
    ----------
    element : str
        Chemical symbol of the measured element.
    family : str
        ``"K"``, ``"L"`` or ``"M"`` (all excited lines of the family, weighted by their
        relative intensities), or one line: ``"Fe_Ka"`` or ``"Ka"``.
    composition_wt : dict or str
        Mass fractions of the specimen (normalised for the matrix correction; the
        element's own fraction enters as given), or a chemical formula.
    beam_energy : float
        keV.
    takeoff_angle : float
        Degrees, in (0, 90].
    standard : dict or str, optional
        The standard's composition (formula or mass fractions); pure element by default.
    fluorescence : bool
        Include Reed characteristic fluorescence (default True).
    mac_table : str
        Mass absorption coefficients, default ``"pap1991"``.
    coating, standard_coating : Coating, optional
        Surface layer (e.g. ``Coating(20.0)``, 20 nm carbon) on the specimen / standard.

    Returns
    -------
    float
        k = C I(specimen)/(C_std I(standard)), I = F(chi) (1 + I_f/I_p) T_coating, summed
        over the family's lines with their weights.

    Raises
    ------
    ValueError
        Unknown element or line, element missing from the composition, a line whose
        edge is above the beam energy, negative/NaN fractions, take-off outside (0, 90].

    References
    ----------
    Pouchou & Pichoir (1991), Electron Probe Quantitation, pp. 31-75; Reed (1965).

    Example
    -------
    >>> k = k_ratio("Fe", "K", {"Fe": 0.5, "Ni": 0.5}, 20.0, 40.0)  # about 0.54
    """
    el = xd.element_symbol(element)
    if not isinstance(family, str):
        raise ValueError(
            f"family must be 'K', 'L', 'M' or a line name such as 'Fe_Ka', got {family!r}"
        )
    return float(
        k_ratios(
            [(el, family)],
            [composition_wt],
            float(_check_beam(beam_energy)),
            float(_check_toa(takeoff_angle)),
            standards=[standard],
            fluorescence=fluorescence,
            mac_table=mac_table,
            coating=_check_coating(coating, "coating"),
            standard_coating=_check_coating(standard_coating, "standard_coating"),
        )[0]
    )


def emitted_intensity(
    element: str,
    family: str,
    composition_wt: Mapping[str, float] | str,
    beam_energy: float,
    takeoff_angle: float,
    *,
    fluorescence: bool = True,
    mac_table: str = DEFAULT_MAC_TABLE,
) -> XPPIntensity:
    """Generated and emitted phi(rho z) areas of a line or family (for standardless work).

    Counts per electron per steradian of a line are then
    ``C * N_A / A * Q(E0) * omega * p_line * emitted * fluorescence * efficiency(E)``
    with Q(E0) an absolute ionisation cross section (cm^2).

    Parameters
    ----------
    element, family, composition_wt, beam_energy, takeoff_angle
        As in :func:`k_ratio`.
    fluorescence : bool
        Include Reed characteristic fluorescence (default True).
    mac_table : str
        Mass absorption coefficients, default ``"pap1991"``.

    Returns
    -------
    XPPIntensity
        ``generated`` and ``emitted`` in g/cm^2 (PAP normalisation: phi of an isolated
        thin layer = 1), ``fluorescence`` = 1 + I_f/I_p. For a family, the areas are
        averaged over the excited lines with their relative weights, and ``line`` /
        ``energy`` are the principal line's.

    References
    ----------
    Pouchou & Pichoir (1991), eqn 13 (F) and the XPP F(chi); Reed (1965).

    Example
    -------
    >>> r = emitted_intensity("Fe", "K", {"Fe": 1.0}, 20.0, 40.0)
    >>> r.emitted < r.generated
    True
    """
    el = xd.element_symbol(element)
    comp = xd.check_composition(composition_wt)
    e0 = float(_check_beam(beam_energy))
    toa = float(_check_toa(takeoff_angle))
    _check_mac_table(mac_table)
    if el not in comp:
        raise ValueError(f"{el} is not in the composition {composition_wt!r}")
    lines = _resolve_lines(el, family, e0)
    comp_n = _normalised(comp)
    cases = _Cases(
        [comp_n] * len(lines),
        [el] * len(lines),
        np.array([t[1] for t in lines]),
        [t[3] for t in lines],
        np.full(len(lines), e0),
        np.full(len(lines), math.radians(toa)),
        mac_table,
    )
    gen, emi, fl = _evaluate(cases, fluorescence)
    w = np.array([t[2] for t in lines])
    name, energy = lines[0][0], lines[0][1]
    if family in xd.FAMILIES:
        principal = xd.principal_line(el, family)
        if principal[0] in [t[0] for t in lines]:
            name, energy = principal
    emitted = float(np.sum(w * emi))
    return XPPIntensity(
        line=name,
        energy=float(energy),
        generated=float(np.sum(w * gen)),
        emitted=emitted,
        fluorescence=float(np.sum(w * emi * fl) / emitted),
    )


def phi_rho_z(
    element: str,
    line: str,
    composition_wt: Mapping[str, float] | str,
    beam_energy: float,
    rho_z,
) -> np.ndarray:
    """The XPP depth distribution phi(rho z) of the ionisations for one line.

    phi(rho z) = A exp(-a rho z) + (B rho z + phi0 - A) exp(-b rho z) (PAP, XPP form);
    its integral over rho z is F (PAP eqn 13).

    Parameters
    ----------
    element : str
    line : str
        Line name (``"Fe_Ka"`` or ``"Ka"``) or family (its principal line).
    composition_wt : dict or str
    beam_energy : float
        keV.
    rho_z : array_like
        Mass depth in g/cm^2.

    Returns
    -------
    ndarray, the shape of ``rho_z``.

    Example
    -------
    >>> import numpy as np
    >>> phi = phi_rho_z("Cu", "Ka", {"Cu": 1.0}, 20.0, np.linspace(0, 2e-3, 50))
    """
    el = xd.element_symbol(element)
    comp = _normalised(xd.check_composition(composition_wt))
    e0 = float(_check_beam(beam_energy))
    spec = xd.principal_line(el, line)[0] if line in xd.FAMILIES else line
    _, _, _, shell = _resolve_lines(el, spec, e0)[0]
    w, z, a, _ = _padded([comp])
    zel = np.array([float(xd.atomic_number(el))])
    m = _shell_exponent(np.array([_FAMILY_INDEX[shell[0]]]), zel)
    ec = np.array([xd.edge_energy(el, shell)])
    prm = _xpp_parameters(w, z, a, ec, m, np.array([e0]))
    rz = np.asarray(rho_z, dtype=float)
    big_a, a_s, big_b, b, phi0 = (float(prm[k][0]) for k in ("A", "a", "B", "b", "phi0"))
    return big_a * np.exp(-a_s * rz) + (big_b * rz + phi0 - big_a) * np.exp(-b * rz)


def composition_from_k_ratios(
    k_ratios: Mapping,
    beam_energy: float,
    takeoff_angle: float,
    standards: Mapping | None = None,
    *,
    fluorescence: bool = True,
    mac_table: str = DEFAULT_MAC_TABLE,
    tolerance: float = 1.0e-6,
    max_iterations: int = 100,
    coating: Coating | None = None,
    standard_coating: Coating | Mapping | None = None,
) -> dict[str, float]:
    """Mass fractions from measured k-ratios by iterating the XPP correction.

    Fixed-point iteration C_i <- k_i C_i / k_calc,i(C) (the matrix correction evaluated
    on the normalised composition, as in EPQ), from C_i = k_i C_std,i, until the
    largest change of a mass fraction is below ``tolerance``.

    Parameters
    ----------
    k_ratios : dict
        Keys: line names (``"Fe_Ka"``: that line) or ``(element, family)`` tuples
        (``("Fe", "K")``: the whole family); values: k-ratios >= 0. One key per element.
    beam_energy : float
        keV.
    takeoff_angle : float
        Degrees, in (0, 90].
    standards : dict, optional
        Element -> standard composition: a formula (``"MgO"``) or a dict of mass
        fractions. Pure elements by default.
    fluorescence : bool
        Include Reed characteristic fluorescence (default True).
    mac_table : str
        Mass absorption coefficients, default ``"pap1991"``.
    tolerance : float
        Convergence criterion on the mass fractions.
    max_iterations : int
    coating : Coating, optional
        Surface layer on the specimen (e.g. ``Coating(20.0)``: 20 nm carbon).
    standard_coating : Coating or dict, optional
        Surface layer on the standards: one for all, or element -> Coating (or None) for
        standards coated differently (e.g. insulating SiO2 coated, metals bare).

    Returns
    -------
    dict element -> mass fraction, *not* normalised (the analytical total is meaningful).

    Raises
    ------
    ValueError
        Bad keys, negative/NaN k-ratios, two k-ratios for one element, bad standards.
    ConvergenceError
        The iteration did not converge within ``max_iterations``.

    References
    ----------
    Pouchou & Pichoir (1991), Electron Probe Quantitation, pp. 31-75.

    Example
    -------
    >>> c = composition_from_k_ratios({"Fe_Ka": 0.54, "Ni_Ka": 0.47}, 20.0, 40.0)
    """
    if not isinstance(k_ratios, Mapping) or not k_ratios:
        raise ValueError(
            "k_ratios must be a non-empty dict line -> k-ratio, e.g. {'Fe_Ka': 0.52}"
        )
    e0 = float(_check_beam(beam_energy))
    toa = float(_check_toa(takeoff_angle))
    _check_mac_table(mac_table)
    if standards is not None and not isinstance(standards, Mapping):
        raise ValueError("standards must be a dict element -> formula or mass fractions")
    std_map = {xd.element_symbol(el): v for el, v in (standards or {}).items()}
    els, keys, ks = [], [], []
    for key, value in k_ratios.items():
        el, spec = _parse_key(key)
        if el in els:
            raise ValueError(
                f"two k-ratios given for {el}: give one line (or family) per element"
            )
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"k-ratio of {key!r} is not a number: {value!r}") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(
                f"k-ratio of {key!r} must be finite and >= 0, got {value!r} (clip small "
                "negative fitted values to 0 or drop the element)"
            )
        _resolve_lines(el, spec, e0)  # raises on unknown / unexcited lines
        els.append(el)
        keys.append((el, spec))
        ks.append(v)
    ks = np.asarray(ks)
    if not np.any(ks > 0):
        raise ValueError("all k-ratios are zero: nothing to quantify")
    for el in std_map:
        if el not in els:
            raise ValueError(f"a standard is given for {el}, which has no k-ratio")
    stds = [_standard_for(el, std_map) for el in els]
    coat_unk = [_check_coating(coating, "coating")] * len(els)
    if isinstance(standard_coating, Mapping):
        sc_map = {xd.element_symbol(el): v for el, v in standard_coating.items()}
        for el in sc_map:
            if el not in els:
                raise ValueError(
                    f"a standard_coating is given for {el}, which has no k-ratio"
                )
        coat_std = [_check_coating(sc_map.get(el), f"standard_coating[{el}]") for el in els]
    else:
        coat_std = [_check_coating(standard_coating, "standard_coating")] * len(els)
    c = ks * np.array([s[el] for s, el in zip(stds, els)])
    change = np.inf
    for _ in range(max_iterations):
        comp = dict(zip(els, c))
        kc = _k_ratio_table(
            keys,
            [comp] * len(els),
            e0,
            toa,
            stds,
            fluorescence,
            mac_table,
            coat_unk,
            coat_std,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            c_new = np.where(kc > 0, ks * c / kc, 0.0)
        change = float(np.max(np.abs(c_new - c)))
        c = c_new
        if change < tolerance:
            return {el: float(ci) for el, ci in zip(els, c)}
    raise ConvergenceError(
        f"composition_from_k_ratios did not converge in {max_iterations} iterations "
        f"(last change {change:.2g}; k-ratios {dict(zip(els, ks.tolist()))}); "
        "check the k-ratios and standards, or raise max_iterations"
    )
