"""Quantification of an SEM-EDS spectrum: k-ratios from fitted line intensities, then XPP.

Two modes, and the result says which one was used and what accuracy to expect:

- **standards** (``standards`` given): every element's line is fitted against the measured
  spectrum of its standard (top-hat filter fit, :func:`hyperspy_nanoml.eds.lines.fit_lines`);
  the k-ratio is ``k = (I_unk / dose_unk) / (I_std / dose_std)`` with the dose = live time
  x probe current from the metadata; the XPP matrix correction
  (:func:`hyperspy_nanoml.eds.xpp.composition_from_k_ratios`, Pouchou & Pichoir 1991, with
  Reed fluorescence) turns the k-ratios into mass fractions, not normalised, so that the
  analytical total checks the analysis. Expected accuracy: about 2 % relative for major
  elements, the level of NIST DTSA-II (Ritchie, Newbury & Davis, Microsc. Microanal. 18,
  892 (2012)).
- **standardless** (no standards): the standards are virtual, the intensities of the pure
  elements generated from first principles (Bote & Salvat ionisation cross sections,
  fluorescence yields, XPP absorption, detector efficiency;
  :func:`hyperspy_nanoml.eds.generation.line_intensities`), and the result is normalised to
  100 %. Newbury et al. (Anal. Chem. 67, 1866 (1995)) found errors from -90 % to +150 %
  relative with first-principles standardless analysis: the printout says so.

Uncertainties (1 sigma) come from counting statistics through the fit (and the standards'
own counting statistics), propagated through the matrix correction with its Jacobian; the
model error of the standardless mode is stated, not included.

Example
-------
>>> import hyperspy.api as hs                                         # doctest: +SKIP
>>> s = hs.load("unknown.msa", signal_type="EDS_SEM")                 # doctest: +SKIP
>>> q = quantify(s, standards={"Fe": fe_std, "O": (mgo_std, "MgO"), "Mg": (mgo_std, "MgO")},
...              elements=["Fe", "Mg", "O"])                          # doctest: +SKIP
>>> print(q.table())                                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hyperspy_nanoml.eds import acquisition, xray_data
from hyperspy_nanoml.eds.lines import LineFit, detector_of, fit_lines, parse_references

__all__ = [
    "Quantification",
    "quantify",
    "default_family",
    "EXPECTED_ACCURACY",
    "MIN_OVERVOLTAGE",
]

#: Overvoltage E0 / E_edge below which a family is not the default analytical line when a
#: lower-energy family of the element is excited better (the K line of Ge at 15 kV ...).
MIN_OVERVOLTAGE = 1.5

EXPECTED_ACCURACY = {
    "standards": (
        "standards-based with the XPP matrix correction: about 2 % relative for major "
        "elements (> 10 wt%), the level of NIST DTSA-II (Ritchie et al., Microsc. "
        "Microanal. 18, 892 (2012)); minor and light elements less accurate"
    ),
    "standardless": (
        "first-principles standardless, normalised to 100 %: errors from -90 % to +150 % "
        "relative have been reported for such analyses (Newbury et al., Anal. Chem. 67, "
        "1866 (1995)); the uncertainties below are counting statistics only. Use measured "
        "standards when the numbers matter"
    ),
}

_PRINCIPAL = {"K": "Ka", "L": "La", "M": "Ma"}


# --------------------------------------------------------------------------- result


@dataclass
class Quantification:
    """Composition of a spectrum with its uncertainties and how it was obtained.

    Attributes
    ----------
    weight_percent : dict element -> float
        Mass %. Standards mode: as measured (*not* normalised; their sum is the analytical
        total). Standardless: normalised to 100 %.
    normalized_weight_percent : dict element -> float
        Mass %, normalised to 100 %.
    atomic_percent : dict element -> float
        Atom %, from the normalised mass fractions.
    uncertainty : dict element -> float
        1-sigma of ``weight_percent`` in mass % (counting statistics of spectrum and
        standards through fit and matrix correction).
    k_ratios : dict line -> float
        k-ratio of each fitted line group of the quantified elements (keys like
        ``"Fe_Ka"``), against the standard (standards mode) or the generated pure element
        (standardless). Only the lines in ``lines`` enter the composition.
    k_ratio_uncertainty : dict line -> float
        1-sigma of the k-ratios.
    lines : dict element -> str
        The line (group) used for each element.
    mode : {"standards", "standardless"}
    analytical_total : float
        Sum of the un-normalised mass %, in %.
    beam_energy, takeoff_angle : float
        keV and degrees.
    line_fit : LineFit
        The fit of the spectrum.
    metadata : dict
        What was done (recorded also as ``Processing.quantify`` by the caller's choice).
    """

    weight_percent: dict
    normalized_weight_percent: dict
    atomic_percent: dict
    uncertainty: dict
    k_ratios: dict
    k_ratio_uncertainty: dict
    lines: dict
    mode: str
    analytical_total: float
    beam_energy: float
    takeoff_angle: float
    line_fit: LineFit
    metadata: dict = field(default_factory=dict)

    @property
    def expected_accuracy(self) -> str:
        """What accuracy to expect from this mode (a sentence with its reference)."""
        return EXPECTED_ACCURACY[self.mode]

    @property
    def elements(self) -> list[str]:
        return list(self.weight_percent)

    def table(self) -> str:
        """A plain-text table: element, line, k-ratio, mass % (1 sigma), normalised
        mass %, atom %, then the analytical total, the mode and its expected accuracy."""
        head = (
            f"{'element':<8}{'line':<8}{'k-ratio':>10}{'+-':>9}{'wt%':>9}{'+-':>7}"
            f"{'norm wt%':>10}{'at%':>8}"
        )
        rows = [
            f"Quantification ({self.mode}), E0 = {self.beam_energy:g} keV, take-off "
            f"{self.takeoff_angle:.1f} deg",
            head,
            "-" * len(head),
        ]
        for el in self.weight_percent:
            line = self.lines[el]
            k = self.k_ratios.get(line, math.nan)
            sk = self.k_ratio_uncertainty.get(line, math.nan)
            rows.append(
                f"{el:<8}{line:<8}{k:>10.4f}{sk:>9.4f}{self.weight_percent[el]:>9.2f}"
                f"{self.uncertainty[el]:>7.2f}{self.normalized_weight_percent[el]:>10.2f}"
                f"{self.atomic_percent[el]:>8.2f}"
            )
        rows.append("-" * len(head))
        rows.append(f"analytical total: {self.analytical_total:.2f} %")
        rows.append(f"expected accuracy: {self.expected_accuracy}")
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        comp = ", ".join(
            f"{el} {v:.2f}({self.uncertainty[el]:.2f})"
            for el, v in self.weight_percent.items()
        )
        return (
            f"<Quantification, {self.mode} mode: {comp} wt%; total "
            f"{self.analytical_total:.1f} %. Expected accuracy: {self.expected_accuracy}>"
        )


# --------------------------------------------------------------------------- helpers


def default_family(element: str, beam_energy: float) -> str:
    """The family quantified by default: the most energetic of K, L, M whose edge has an
    overvoltage of at least ``MIN_OVERVOLTAGE`` (else the one with the highest
    overvoltage), among the families an EDS detector shows (K from Be, L from Sc, M from
    Cs; see :data:`hyperspy_nanoml.eds.lines.MIN_Z_VISIBLE`).

    Raises
    ------
    ValueError
        No family of the element is excited at ``beam_energy``.
    """
    from hyperspy_nanoml.eds.lines import MIN_Z_VISIBLE

    z = xray_data.atomic_number(element)
    best, best_u = None, 0.0
    for fam in xray_data.FAMILIES:
        if z < MIN_Z_VISIBLE[fam]:
            continue
        if not _excited(element, fam, beam_energy):
            continue
        shell = {"K": "K", "L": "L3", "M": "M5"}[fam]
        try:
            u = beam_energy / xray_data.edge_energy(element, shell)
        except ValueError:
            continue
        if u >= MIN_OVERVOLTAGE:
            return fam
        if u > best_u:
            best, best_u = fam, u
    if best is None:
        raise ValueError(
            f"no X-ray line of {element} is excited at {beam_energy:g} keV: raise the beam "
            "energy (s.set_microscope_parameters(beam_energy=...)) or remove the element"
        )
    return best


def _requested_lines(lines, elements, e0) -> dict:
    """element -> (family, line name or None) for the user's ``lines`` argument."""
    out = {}
    if lines is None:
        return out
    if not isinstance(lines, Mapping):
        raise TypeError('lines must be a dict element -> family ("K") or line ("Fe_Ka")')
    for key, value in lines.items():
        el = xray_data.element_symbol(key)
        if el not in elements:
            raise ValueError(f"a line is requested for {el}, which is not among {elements}")
        if value in xray_data.FAMILIES:
            fam, name = value, None
        else:
            sym, fam, sub = xray_data.parse_line(str(value))
            if sym != el:
                raise ValueError(f"line {value!r} is not a line of {el}")
            name = f"{el}_{sub}"
        shell = {"K": "K", "L": "L3", "M": "M5"}[fam]
        try:
            edge = xray_data.edge_energy(el, shell)
        except ValueError:
            edge = math.inf
        if name is not None:
            edge = xray_data.edge_energy(el, xray_data.line_shell(name))
        if not edge < e0:
            raise ValueError(
                f"{value} of {el} is not excited: its edge ({edge:.3g} keV) is above the beam "
                f"energy {e0:g} keV; choose another line (e.g. "
                f"{default_family(el, e0)!r}) or raise the beam energy"
            )
        out[el] = (fam, name)
    return out


def _excited(el: str, fam: str, e0: float) -> bool:
    try:
        return bool(xray_data.family_lines(el, fam, e0))
    except ValueError:
        return False


def _analytical_group(fit: LineFit, el: str, fam: str, name: str | None):
    cands = [g for g in fit.groups if g.element == el and g.family == fam]
    if name is not None:
        for g in cands:
            if name in (t[0] for t in g.lines):
                return g
    else:
        principal = f"{el}_{_PRINCIPAL[fam]}"
        for g in cands:
            if principal in (t[0] for t in g.lines):
                return g
        if cands:
            return max(cands, key=lambda g: g.fraction)
    raise ValueError(
        f"the {name or fam} line of {el} is not in the fitted energy range: choose another "
        "line (lines={...}) or widen energy_range"
    )


def _xpp_key(group):
    """XPP key for a group: the whole family when the group holds (nearly) all of it."""
    return (group.element, group.family) if group.fraction > 0.97 else group.name


# --------------------------------------------------------------------------- quantify


def quantify(
    spectrum,
    standards: Mapping | None = None,
    elements: Sequence[str] | None = None,
    *,
    lines: Mapping[str, str] | None = None,
    interferences: Sequence[str] | None = None,
    beam_energy: float | None = None,
    takeoff_angle: float | None = None,
    detector=None,
    fwhm_mn_ka: float | None = None,
    iterations: int = 2,
    fit_kwargs: Mapping | None = None,
    coating=None,
    standard_coating=None,
) -> Quantification:
    """Composition of a bulk specimen from one SEM-EDS spectrum (XPP matrix correction).

    Parameters
    ----------
    spectrum : EDSSEMSpectrum
        One spectrum of raw counts (sum a spectrum image first, or use ``bss_quantify``).
    standards : dict, optional
        element -> spectrum of the pure element, or element -> ``(spectrum, "MgO")`` /
        ``(spectrum, {"Mg": 0.603, "O": 0.397})`` for a compound. Every element needs one;
        each standard needs live time and probe current in its metadata (for the dose) and
        the spectrum's beam energy. Without standards the analysis is standardless.
    elements : list of str, optional
        Default: ``metadata.Sample.elements``, else the keys of ``standards``.
    lines : dict element -> family or line, optional
        The line quantified per element (``{"Fe": "L"}`` or ``{"Fe": "Fe_Ka"}``); default
        :func:`default_family` and its principal line.
    interferences : list of str, optional
        Elements fitted (modelled shapes) but not quantified, e.g. ``["C"]`` for a coating.
    beam_energy, takeoff_angle : float, optional
        keV and degrees; default from the metadata.
    detector : Detector, optional
        Default ``Detector.from_signal(spectrum)`` (resolution, and efficiency for
        standardless).
    fwhm_mn_ka : float, optional
        Detector FWHM at Mn Ka (eV), overriding the detector's.
    iterations : int
        Standardless: fits with the line weights of the current composition estimate
        (specimen absorption changes the ratios of the lines of an L or M family).
    fit_kwargs : dict, optional
        Passed to :func:`~hyperspy_nanoml.eds.lines.fit_lines` (``roi_width``, ...).
    coating : hyperspy_nanoml.eds.xpp.Coating, optional
        Conductive layer on the specimen (``Coating(20.0)``: 20 nm of carbon at
        1.9 g/cm^3): absorption of the emitted X-rays and the beam's energy loss in it.
    standard_coating : Coating or dict element -> Coating, optional
        Layer(s) on the standards. Default: none on either; a layer of the same thickness
        on specimen and standards cancels to first order.

    Returns
    -------
    Quantification

    Raises
    ------
    ValueError
        Up front: no elements; beam energy or take-off angle missing (naming the metadata
        field and ``s.set_microscope_parameters``); a requested line above the beam energy;
        negative counts; a standard missing for an element; a standard (or the spectrum, in
        standards mode) without dose; a standard at another beam energy.

    References
    ----------
    Pouchou & Pichoir, in *Electron Probe Quantitation* (Plenum 1991), pp. 31-75 (XPP);
    Schamber (1977) (filter fit); Newbury et al., Anal. Chem. 67, 1866 (1995) (standardless
    accuracy); Ritchie et al., Microsc. Microanal. 18, 892 (2012).

    Example
    -------
    >>> from hyperspy_nanoml.data.eds import simulate_spectrum
    >>> s, truth = simulate_spectrum({"Fe": 0.7, "Ni": 0.3}, beam_energy=20.0, random_state=0)
    >>> fe, _ = simulate_spectrum("Fe", beam_energy=20.0, random_state=1)
    >>> ni, _ = simulate_spectrum("Ni", beam_energy=20.0, random_state=2)
    >>> q = quantify(s, standards={"Fe": fe, "Ni": ni})
    >>> q.mode, round(q.weight_percent["Fe"])
    ('standards', 70)
    """
    # ---- checks, all before any fitting
    acquisition.check_spectrum(spectrum)
    if spectrum.axes_manager.navigation_size > 1:
        raise ValueError(
            "quantify takes one spectrum; this signal has "
            f"{spectrum.axes_manager.navigation_size} spectra: sum them "
            "(s.sum(s.axes_manager.navigation_axes)) or use bss_quantify for a spectrum image"
        )
    if standards is not None and not isinstance(standards, Mapping):
        raise TypeError(
            "standards must be a dict element -> spectrum of the pure element, or element -> "
            '(spectrum, "MgO") / (spectrum, {"Mg": 0.603, "O": 0.397})'
        )
    elements = acquisition.sample_elements(
        spectrum, elements, fallback=standards, purpose="quantify"
    )
    coatings = _check_coatings(coating, standard_coating, standards, elements)
    e0 = acquisition.beam_energy(spectrum, beam_energy)
    toa = acquisition.takeoff_angle(spectrum, takeoff_angle)
    requested = _requested_lines(lines, elements, e0)
    interf = [
        x
        for x in dict.fromkeys(xray_data.element_symbol(e) for e in (interferences or []))
        if x not in elements
    ]
    stds = parse_references(standards, role="standard") if standards else {}
    mode = "standards" if stds else "standardless"
    dose_unk = None
    if stds:
        missing = [el for el in elements if el not in stds]
        if missing:
            raise ValueError(
                f"no standard for {', '.join(missing)}: give a standard for every element "
                f"(standards={{'{missing[0]}': spectrum, ...}}), or quantify standardless "
                "(standards=None)"
            )
        extra = [el for el in stds if el not in elements]
        if extra:
            raise ValueError(
                f"standards given for {', '.join(extra)}, which are not among the elements "
                f"{elements}: add them to elements or drop those standards"
            )
        for std in stds.values():
            if std.dose is None:
                acquisition.dose(std.signal, std.name)  # raises naming the missing field
            std_e0 = acquisition.beam_energy(std.signal)
            if abs(std_e0 - e0) > 0.005 * e0:
                raise ValueError(
                    f"{std.name} was recorded at {std_e0:g} keV but the spectrum at {e0:g} "
                    "keV: standards must share the beam energy"
                )
        dose_unk = acquisition.dose(spectrum, "the spectrum")
    else:
        try:
            dose_unk = acquisition.dose(spectrum)
        except ValueError:
            dose_unk = None  # standardless results are normalised: the dose cancels
    det = detector_of(spectrum, detector, fwhm_mn_ka)
    fam_of = {el: requested.get(el, (default_family(el, e0), None)) for el in elements}
    fit_kwargs = dict(fit_kwargs or {})
    # fit every visible family (overlaps) plus a requested one the default would skip
    from hyperspy_nanoml.eds.lines import MIN_Z_VISIBLE

    families = {}
    for el, (fam, _) in fam_of.items():
        if xray_data.atomic_number(el) < MIN_Z_VISIBLE[fam]:
            families[el] = [fam] + [
                f
                for f in xray_data.FAMILIES
                if f != fam
                and xray_data.atomic_number(el) >= MIN_Z_VISIBLE[f]
                and _excited(el, f, e0)
            ]
    if families:
        fit_kwargs.setdefault("families", families)

    # ---- fit and k-ratios
    if stds:
        fit = fit_lines(
            spectrum,
            elements + interf,
            references=standards,
            beam_energy=e0,
            detector=det,
            **fit_kwargs,
        )
        k, sk, cov_k, used, std_fits = _k_standards(
            fit, stds, fam_of, elements, interf, e0, det, dose_unk, fit_kwargs
        )
        comp_std = {el: stds[el].composition for el in elements}
    else:
        comp_std = {el: {el: 1.0} for el in elements}
        fit, k, sk, cov_k, used = None, None, None, None, None
        weights = None
        from hyperspy_nanoml.eds.generation import line_intensities

        n_iter = max(1, int(iterations))
        for it in range(n_iter):
            fit = fit_lines(
                spectrum,
                elements + interf,
                beam_energy=e0,
                detector=det,
                line_weights=weights,
                **fit_kwargs,
            )
            k, sk, cov_k, used = _k_standardless(
                fit, fam_of, elements, e0, toa, det, dose_unk
            )
            if it == n_iter - 1:
                break
            # line ratios of the current estimate (specimen absorption) for the next fit
            est = _composition(
                k, used, elements, e0, toa, None, normalise=True, coatings=coatings
            )[0]
            weights = line_intensities(
                {el: max(v, 1e-6) for el, v in est.items()}, e0, toa, det, 1.0
            )
        std_fits = {}

    # ---- composition and its uncertainty
    comp, negative = _composition(
        k,
        used,
        elements,
        e0,
        toa,
        None if not stds else comp_std,
        mode == "standardless",
        coatings=coatings,
    )
    unc = _propagate(
        k,
        cov_k,
        used,
        elements,
        e0,
        toa,
        comp_std if stds else None,
        comp,
        mode == "standardless",
        coatings=coatings,
    )
    total = sum(comp.values())
    norm = {el: c / total for el, c in comp.items()} if total > 0 else dict(comp)
    atomic = (
        xray_data.mass_to_atomic_fractions({el: max(v, 0.0) for el, v in norm.items()})
        if total > 0
        else {el: 0.0 for el in elements}
    )
    metadata = {
        "function": "quantify",
        "mode": mode,
        "expected_accuracy": EXPECTED_ACCURACY[mode],
        "matrix_correction": "XPP (Pouchou & Pichoir 1991) with Reed characteristic "
        "fluorescence",
        "beam_energy_keV": e0,
        "takeoff_angle_deg": toa,
        "dose_nA_s": dose_unk,
        "lines": {el: used[el].name for el in elements},
        "standards": {
            el: {"name": s.name, "composition": s.composition, "dose_nA_s": s.dose}
            for el, s in stds.items()
        },
        "standards_fitted_with_model_shapes": sorted(std_fits),
        "interferences": interf,
        "negative_k_ratios_set_to_zero": negative,
        "detector_fwhm_mn_ka_eV": float(det.fwhm_mn_ka),
        "line_fit": fit.metadata,
        "iterations": int(iterations) if mode == "standardless" else 1,
        "coating": _coating_record(coatings[0]),
        "standard_coating": (
            {el: _coating_record(c) for el, c in coatings[1].items()}
            if isinstance(coatings[1], Mapping)
            else _coating_record(coatings[1])
        ),
    }
    all_k = {n: float(v) for n, v in k.items()}
    all_sk = {n: float(v) for n, v in sk.items()}
    return Quantification(
        weight_percent={el: 100.0 * comp[el] for el in elements},
        normalized_weight_percent={el: 100.0 * norm[el] for el in elements},
        atomic_percent={el: 100.0 * atomic.get(el, 0.0) for el in elements},
        uncertainty={el: 100.0 * unc[el] for el in elements},
        k_ratios=all_k,
        k_ratio_uncertainty=all_sk,
        lines={el: used[el].name for el in elements},
        mode=mode,
        analytical_total=100.0 * total,
        beam_energy=e0,
        takeoff_angle=toa,
        line_fit=fit,
        metadata=metadata,
    )


def _k_standards(fit, stds, fam_of, elements, interf, e0, det, dose_unk, fit_kwargs):
    """k-ratios of every group of the quantified elements, with the analytical group per
    element; a group the standard could not shape (an overlap within the standard) is
    compared with a model-shape fit of the standard spectrum itself."""
    names = fit.lines
    k, sk, scale, extra = {}, {}, {}, {}
    used = {el: _analytical_group(fit, el, *fam_of[el]) for el in elements}
    std_fits = {}
    for g in fit.groups:
        if g.element not in elements:
            continue
        std = stds[g.element]
        i_u, s_u = fit.intensities[g.name], fit.uncertainties[g.name]
        if g.name in fit.reference_intensity:
            net, s_net, d_std = fit.reference_intensity[g.name]
            rel_ref = s_net / net
        elif g is used[g.element]:
            if g.element not in std_fits:
                std_fits[g.element] = fit_lines(
                    std.signal,
                    list(std.composition) + interf,
                    beam_energy=e0,
                    detector=det,
                    **fit_kwargs,
                )
            sfit = std_fits[g.element]
            if g.name not in sfit.intensities or not sfit.intensities[g.name] > 0:
                raise ValueError(
                    f"{std.name} shows no {g.name} peak: choose another standard or line"
                )
            net, s_net, d_std = (
                sfit.intensities[g.name],
                sfit.uncertainties[g.name],
                std.dose,
            )
            rel_ref = s_net / net
        else:
            continue
        c = (d_std / dose_unk) / net  # k = c * I_unk
        k[g.name] = c * i_u
        # the fit's own sigma of a reference-shaped group already holds the reference term
        own = (
            s_u
            if g.name not in fit.reference_intensity
            else math.sqrt(max(s_u**2 - (i_u * rel_ref) ** 2, 0.0))
        )
        scale[g.name] = c
        extra[g.name] = (k[g.name] * rel_ref) ** 2
        sk[g.name] = math.sqrt((c * own) ** 2 + extra[g.name])
    cov_k = _k_covariance(fit, names, scale, extra)
    return k, sk, cov_k, used, std_fits


def _k_standardless(fit, fam_of, elements, e0, toa, det, dose_unk):
    """Virtual k-ratios against the generated intensity of each pure element."""
    from hyperspy_nanoml.eds.generation import line_intensities

    d = 1.0 if dose_unk is None else dose_unk
    names = fit.lines
    k, sk, scale = {}, {}, {}
    used = {el: _analytical_group(fit, el, *fam_of[el]) for el in elements}
    pure = {}
    for g in fit.groups:
        if g.element not in elements:
            continue
        if g.element not in pure:
            pure[g.element] = line_intensities({g.element: 1.0}, e0, toa, det, 1.0)
        i_pure = sum(pure[g.element].get(t[0], 0.0) for t in g.lines)
        if not i_pure > 0:
            continue
        c = 1.0 / (d * i_pure)
        scale[g.name] = c
        k[g.name] = c * fit.intensities[g.name]
        sk[g.name] = c * fit.uncertainties[g.name]
    cov_k = _k_covariance(fit, names, scale, {})
    return k, sk, cov_k, used


def _k_covariance(fit, names, scale, extra):
    """Covariance of the k-ratios (dict of dicts over the groups in ``scale``)."""
    keys = list(scale)
    idx = [names.index(n) for n in keys]
    if fit.covariance is not None:
        cov = np.asarray(fit.covariance)[np.ix_(idx, idx)].copy()
    else:
        cov = np.diag([fit.uncertainties[n] ** 2 for n in keys])
    # reference-shaped groups: fit.covariance holds the spectrum's statistics only
    c = np.array([scale[n] for n in keys])
    cov = cov * np.outer(c, c)
    cov[np.diag_indices_from(cov)] += np.array([extra.get(n, 0.0) for n in keys])
    return {"keys": keys, "matrix": cov}


def _check_coatings(coating, standard_coating, standards, elements):
    """Validate the coating arguments up front: (Coating | None, Coating | dict | None)."""
    from hyperspy_nanoml.eds.xpp import Coating

    def one(c, name):
        if c is not None and not isinstance(c, Coating):
            raise ValueError(
                f"{name} must be hyperspy_nanoml.eds.xpp.Coating (e.g. Coating(20.0) for "
                f"20 nm of carbon) or None, got {c!r}"
            )
        return c

    one(coating, "coating")
    if isinstance(standard_coating, Mapping):
        if not standards:
            raise ValueError("standard_coating is given but there are no standards")
        sc = {
            xray_data.element_symbol(el): one(c, f"standard_coating[{el!r}]")
            for el, c in standard_coating.items()
        }
        extra = [el for el in sc if el not in elements]
        if extra:
            raise ValueError(
                f"standard_coating is given for {', '.join(extra)}, which are not among "
                f"the elements {elements}"
            )
    else:
        sc = one(standard_coating, "standard_coating")
    return coating, sc


def _coating_record(c):
    if c is None:
        return None
    return {"material": c.material, "thickness_nm": c.thickness_nm, "density": c.density}


def _composition(k, used, elements, e0, toa, standards, normalise, coatings=(None, None)):
    """Mass fractions (dict) from the analytical k-ratios; negative k -> element absent."""
    from hyperspy_nanoml.eds.xpp import composition_from_k_ratios

    kk, negative = {}, []
    for el in elements:
        v = k.get(used[el].name, math.nan)
        if not math.isfinite(v):
            raise ValueError(f"no k-ratio for {used[el].name}")
        if v <= 0:
            negative.append(used[el].name)
        kk[el] = max(v, 0.0)
    present = [el for el in elements if kk[el] > 0]
    if not present:
        raise ValueError(
            "every k-ratio is zero or negative: none of the elements is detected in the "
            "spectrum (check the elements and the spectrum)"
        )
    comp = composition_from_k_ratios(
        {_xpp_key(used[el]): kk[el] for el in present},
        e0,
        toa,
        None if standards is None else {el: standards[el] for el in present},
        coating=coatings[0],
        standard_coating=(
            {el: coatings[1].get(el) for el in present}
            if isinstance(coatings[1], Mapping)
            else coatings[1]
        ),
    )
    out = {el: float(comp.get(el, 0.0)) for el in elements}
    if normalise:
        tot = sum(out.values())
        out = {el: v / tot for el, v in out.items()}
    return out, negative


def _propagate(
    k, cov_k, used, elements, e0, toa, standards, comp, normalise, coatings=(None, None)
):
    """1-sigma mass fractions: Jacobian of the matrix correction by finite differences."""
    keys = cov_k["keys"]
    cov = cov_k["matrix"]
    pos = {n: i for i, n in enumerate(keys)}
    analytic = [used[el].name for el in elements]
    present = [el for el in elements if k.get(used[el].name, 0.0) > 0]
    J = np.zeros((len(elements), len(elements)))
    base = np.array([comp[el] for el in elements])
    for j, el in enumerate(elements):
        name = used[el].name
        if el not in present:
            continue
        h = 1e-3 * k[name]
        kp = dict(k)
        kp[name] = k[name] + h
        cp, _ = _composition(
            kp, used, elements, e0, toa, standards, normalise, coatings=coatings
        )
        J[:, j] = (np.array([cp[e] for e in elements]) - base) / h
    idx = [pos[n] for n in analytic]
    C = cov[np.ix_(idx, idx)]
    var = np.einsum("ij,jk,ik->i", J, C, J)
    out = {}
    for i, el in enumerate(elements):
        if el in present:
            out[el] = float(math.sqrt(max(var[i], 0.0)))
        else:  # absent: first-order sensitivity of a trace, C ~ k * C_std
            c_std = 1.0 if standards is None else standards[el].get(el, 1.0)
            out[el] = float(math.sqrt(max(C[i, i], 0.0)) * c_std)
    return out
