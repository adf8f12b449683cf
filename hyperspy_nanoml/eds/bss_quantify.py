"""SEM-EDX at the nanoscale: physical components of a spectrum image, each quantified.

The workflow of Jany et al., Nano Lett. 17, 6520 (2017), with the unmixing made
physical: where features are narrower than the X-ray interaction volume every pixel's
spectrum mixes phases; blind source separation (Poisson-scaled NMF) separates them, the
rotation ambiguity of NMF is removed by the purest pixels of the map
(:mod:`hyperspy_nanoml.eds.unmix`), and each component spectrum, with the dose it
represents, is quantified by :func:`hyperspy_nanoml.eds.quantify.quantify` (XPP matrix
correction, with standards or standardless).

Example
-------
>>> import hyperspy.api as hs, hyperspy_nanoml  # doctest: +SKIP
>>> s = hs.load("map.bcf", lazy=True)[-1]  # doctest: +SKIP
>>> result = s.bss_quantify(random_state=0)  # doctest: +SKIP
>>> print(result.table())  # doctest: +SKIP
>>> result.save_report("map_bss.pdf"); result.export("map_bss")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "BSSQuantification",
    "ElementIdentification",
    "bss_quantify",
    "identify_elements",
    "mixture_fractions",
]


# ------------------------------------------------------------ element identification


@dataclass
class ElementIdentification:
    """Elements found in a spectrum's peaks and why.

    ``elements``: symbols; ``reasons``: element -> text naming the peaks it explains;
    ``unexplained``: energies (keV) of significant peaks no element explains.
    """

    elements: list
    reasons: dict
    unexplained: list = field(default_factory=list)

    def __str__(self):
        lines = [f"{el}: {self.reasons[el]}" for el in self.elements]
        if self.unexplained:
            lines.append(
                "unexplained peaks at "
                + ", ".join(f"{e:.2f}" for e in self.unexplained)
                + " keV"
            )
        return "\n".join(lines)


# noble gases and short-lived elements: never reported from peaks alone
_NOT_IN_SAMPLES = {2, 10, 18, 36, 43, 54, 61, 84, 85, 86, 87, 88, 89, 91}


def _candidate_lines(beam_energy: float, e_min: float, e_max: float):
    """(element, line name, energy, weight within family, family) of every excited line."""
    from hyperspy_nanoml.eds import xray_data
    from hyperspy_nanoml.eds.lines import MIN_Z_VISIBLE

    out = []
    for z in range(4, 93):
        if z in _NOT_IN_SAMPLES:
            continue
        el = xray_data.element_symbol(z)
        for fam in ("K", "L", "M"):
            if z < MIN_Z_VISIBLE[fam] and (fam != "M" or z < 40):
                continue  # M lines from Zr on: Sb M at 0.53 keV is no O K
            try:
                lines = xray_data.family_lines(el, fam, beam_energy=beam_energy)
            except ValueError:
                continue
            for name, energy, weight, _ in lines:
                # a line needs overvoltage >= ~1.5 to be visible; below it is faint
                if e_min <= energy <= e_max and weight >= 0.02:
                    out.append((el, name, float(energy), float(weight), fam))
    return out


def _harder_family_missing(el, fam_hit, z_data, centres, w_keV, beam_energy, threshold):
    """True when a higher-energy family of ``el`` than the one on the peak is well
    excited (overvoltage > 1.3) inside the spectrum but the data show no significant
    peak at its principal line: then the low-energy peak is not ``el``'s."""
    from hyperspy_nanoml.eds import xray_data

    harder = {"L": ("K",), "M": ("K", "L")}.get(fam_hit, ())
    for h in harder:
        shell = "K" if h == "K" else "L3"
        try:
            edge = xray_data.edge_energy(el, shell)
            _, e = xray_data.principal_line(el, h)
        except (ValueError, KeyError):
            continue
        if 1.3 * edge < beam_energy and centres[0] < e < centres[-1]:
            near = np.abs(centres - e) <= 0.5 * w_keV
            if not np.any(z_data[near] >= threshold):
                return True
    return False


def _element_columns(el, beam_energy, fwhm, edges, F, lo, hi):
    """Filtered model columns (m, n_groups) of every excited line group of ``el``.

    All of K, L and M are modelled here, also the M lines of elements lighter than Cs
    that quantification leaves out (Sb Mβ at 0.53 keV would otherwise pass for O Kα).
    """
    from hyperspy_nanoml.eds.lines import gaussian_shapes, line_groups

    groups = []
    for fam in ("K", "L", "M"):
        try:
            groups += line_groups(
                [el], beam_energy, fwhm, energy_range=(lo, hi), families=[fam]
            )
        except (ValueError, KeyError):
            continue
    if not groups:
        return None, []
    return np.asarray(F @ gaussian_shapes(edges, groups, fwhm)), groups


def identify_elements(
    counts: np.ndarray,
    edges_keV: np.ndarray,
    fwhm,
    beam_energy: float,
    *,
    min_significance: float = 6.0,
    min_energy: float = 0.2,
    min_fraction: float = 0.01,
    min_gain: float = 0.02,
    max_elements: int = 15,
    model_error: float = 0.05,
) -> ElementIdentification:
    """Elements whose X-ray lines explain the significant peaks of a (summed) spectrum.

    Greedy fit of the residual, as an analyst does it: the spectrum is filtered with the
    zero-sum top-hat filter (:func:`hyperspy_nanoml.eds.lines.tophat_filter`, Schamber
    1977), which removes the continuum; the filtered spectrum is fitted (weighted
    non-negative least squares, Poisson variance through the filter) with the Gaussian
    line groups of the elements found so far; the most significant residual peak (local
    maximum at least ``min_significance`` σ) is then given to the element, among those
    with a line within half a detector FWHM of it, whose whole line pattern (every
    visible family at this beam energy, xraydb weights) lowers the χ² most, and so on.
    Overlapping families (In Lβ / Sb Lα) come apart because each new element is judged
    on what the others leave unexplained. Noble gases and short-lived elements are never
    proposed.

    Parameters
    ----------
    counts : numpy.ndarray (m,)
        Summed counts.
    edges_keV : numpy.ndarray (m + 1,)
        Channel edges, keV.
    fwhm : callable
        ``energy_keV -> FWHM (eV)`` of the detector.
    beam_energy : float
        keV (lines whose edge is above it are not excited).
    min_significance : float
        Peak threshold in standard deviations.
    min_energy : float
        Peaks below this energy (keV; noise peak, zero strobe) are ignored.
    min_fraction : float
        A residual peak must also be at least this fraction of the largest filtered
        peak, and 15 % of the model where it lies: at 10^6-10^7 counts the mismatch of
        a modelled peak (shape, energy calibration) is many σ but no new element.
    min_gain : float
        An element is added only when it lowers χ² by this fraction of its value (and
        by at least ``min_significance²``).
    max_elements : int
        At most this many elements.
    model_error : float
        Relative error of the line model (peak shape, energy calibration, detector
        artefacts such as the Si internal-fluorescence peak next to Al Kα): residual
        significance is measured against ``sqrt(σ_Poisson² + (model_error · model)²)``,
        so at 10^6-10^7 counts a modelled peak's mismatch is not a new element
        (Ta M and Hf M at 1.70 keV next to Al Kα, Te L and Yb M in a phosphate map).

    A candidate must also explain the residual with its *strongest* line of the
    family that matched: when that line (e.g. Ta Mα for a peak at Ta Mβ's energy)
    falls where the residual is not significant, another element's line already
    explains it and the candidate is rejected.

    Returns
    -------
    ElementIdentification

    Example
    -------
    >>> ident = identify_elements(counts, edges, fwhm, 20.0)  # doctest: +SKIP
    >>> ident.elements, ident.reasons["Cu"]  # doctest: +SKIP
    """
    from scipy.optimize import nnls

    from hyperspy_nanoml.eds.lines import tophat_filter

    y = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges_keV, dtype=np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w_ev = np.asarray(fwhm(centres), dtype=float)
    F = tophat_filter(edges, w_ev)
    yf = F @ y
    sd = np.sqrt(np.maximum((F.multiply(F)) @ np.maximum(y, 1.0), 1e-300))
    lo = max(min_energy, float(edges[0]))
    hi = min(float(edges[-1]), float(beam_energy))
    inside = np.asarray(abs(F).sum(axis=1)).ravel() > 0  # kernel within the spectrum
    usable = (centres >= lo) & (centres < hi) & inside
    yw = np.where(usable, yf / sd, 0.0)
    z_data = yf / sd

    by_element: dict = {}
    for el, name, energy, weight, fam in _candidate_lines(beam_energy, lo, hi):
        by_element.setdefault(el, []).append((name, energy, weight, fam))
    cache: dict = {}

    def columns(el):
        if el not in cache:
            cache[el] = _element_columns(el, beam_energy, fwhm, edges, F, lo, hi)
        return cache[el]

    def fit(els):
        if not els:
            return np.zeros_like(yf), float(yw @ yw)
        A = np.hstack([columns(e)[0] for e in els])
        Aw = np.where(usable[:, None], A / sd[:, None], 0.0)
        beta, rnorm = nnls(Aw, yw, maxiter=50 * Aw.shape[1])
        return A @ beta, float(rnorm**2)

    def significance(model):
        sd_tot = np.sqrt(sd**2 + (model_error * model) ** 2)
        return np.where(usable, (yf - model) / sd_tot, 0.0)

    def strongest_line_supported(el, fams, z):
        for fam in fams:
            lines = [t for t in by_element[el] if t[3] == fam]
            if not lines:
                continue
            _, e_s, _, _ = max(lines, key=lambda t: t[2])
            near = np.abs(centres - e_s) <= 0.5 * w_ev / 1000.0
            if np.any(z[near] >= min_significance):
                return True
        return False

    chosen, reasons, skipped = [], {}, []
    model, chi2 = fit(chosen)
    for _ in range(4 * max_elements):
        if len(chosen) >= max_elements:
            break
        z = significance(model)
        is_max = np.zeros_like(z, dtype=bool)
        is_max[1:-1] = (z[1:-1] >= z[:-2]) & (z[1:-1] > z[2:])
        resid = yf - model
        # a real peak, not the mismatch of a modelled one (shape, calibration): the
        # residual must also be a fair part of the local model and of the largest peak
        big = (resid >= 0.15 * np.abs(model)) & (resid >= min_fraction * np.max(yf))
        cand_peaks = np.flatnonzero(is_max & (z >= min_significance) & big)
        cand_peaks = [
            p
            for p in cand_peaks
            if not any(abs(centres[p] - e) < 0.5 * w_ev[p] / 1000.0 for e in skipped)
        ]
        if not cand_peaks:
            break
        p = max(cand_peaks, key=lambda i: z[i])
        e_p, w_p = centres[p], w_ev[p] / 1000.0
        best = None
        for el, lines in by_element.items():
            if el in chosen:
                continue
            hit = [f for _, e, wt, f in lines if wt >= 0.05 and abs(e - e_p) <= 0.5 * w_p]
            if not hit:
                continue
            if all(
                _harder_family_missing(
                    el, f, z_data, centres, w_ev / 1000.0, beam_energy, min_significance
                )
                for f in set(hit)
            ):
                continue
            if not strongest_line_supported(el, set(hit), z):
                continue
            if columns(el)[0] is None:
                continue
            _, c2 = fit(chosen + [el])
            if best is None or c2 < best[0]:
                best = (c2, el)
        if best is None or chi2 - best[0] < max(min_significance**2, min_gain * chi2):
            skipped.append(e_p)
            continue
        el = best[1]
        line = min(
            (t for t in by_element[el] if t[2] >= 0.05), key=lambda t: abs(t[1] - e_p)
        )[0]
        chosen.append(el)
        reasons[el] = (
            f"{line} explains the peak at {e_p:.2f} keV ({z[p]:.0f}σ above the fit of "
            f"{', '.join(chosen[:-1]) or 'no element'}); its line pattern lowers χ² by "
            f"{chi2 - best[0]:.3g}"
        )
        model, chi2 = fit(chosen)
    z = significance(model)
    is_max = np.zeros_like(z, dtype=bool)
    is_max[1:-1] = (z[1:-1] >= z[:-2]) & (z[1:-1] > z[2:])
    unexplained = sorted(
        float(centres[i]) for i in np.flatnonzero(is_max & (z >= min_significance))
    )
    return ElementIdentification(elements=chosen, reasons=reasons, unexplained=unexplained)


# ------------------------------------------------------------------------- result


def _fmt(value, unc):
    if value is None or not np.isfinite(value):
        return "—"
    if unc is None or not np.isfinite(unc):
        return f"{value:.1f}"
    return f"{value:.1f}({unc:.1f})"


@dataclass
class BSSQuantification:
    """Result of :func:`bss_quantify`.

    Attributes
    ----------
    maps : hyperspy Signal2D (or Signal1D for line scans)
        One map per component (navigation axis "component"), abundance as a fraction of
        a pure pixel, calibrated like the input's navigation axes.
    spectra : list of EDSSEMSpectrum
        Component spectra in counts, with the dose they represent (live time × the
        number of pure pixels' worth of signal), the input's metadata.
    quantifications : list
        :class:`hyperspy_nanoml.eds.quantify.Quantification` per component.
    weight_percent, atomic_percent, uncertainty : list of dict
        One dict per component, element -> value (``uncertainty`` is 1σ in mass %).
    elements : list of str
    element_source : str
        Where the elements came from (metadata, argument, or the identified peaks).
    unmixing : hyperspy_nanoml.eds.unmix.Unmixing
        Purity, stability, component-choice evidence, plain-NMF spectra.
    parameters : dict
        What was asked for (recorded in ``metadata.Processing.bss_quantify``).
    identification : ElementIdentification or None
        Which elements were found in the summed spectrum and why (``elements=None``
        and none in the metadata).
    mixture_warnings : list of str
        One text per component that is probably a mixture of phases (see
        :func:`mixture_fractions`); printed with the result, in the table and report.
    """

    maps: object
    spectra: list
    quantifications: list
    weight_percent: list
    atomic_percent: list
    uncertainty: list
    elements: list
    element_source: str
    unmixing: object
    parameters: dict
    identification: ElementIdentification | None = None
    mixture_warnings: list = field(default_factory=list)

    @property
    def n_components(self) -> int:
        return len(self.spectra)

    @property
    def component_choice(self):
        return self.unmixing.choice

    def atomic_uncertainty(self) -> list:
        """1σ in at.%, propagated from the mass-% uncertainties (first order, the
        mass fractions taken as independent): ``a_i = (w_i/A_i) / Σ_j w_j/A_j``."""
        from hyperspy_nanoml.eds import xray_data

        out = []
        for wt, unc in zip(self.weight_percent, self.uncertainty, strict=True):
            els = list(wt)
            w = np.array([max(wt[e], 0.0) for e in els], dtype=float)
            sw = np.array([unc.get(e, np.nan) for e in els], dtype=float)
            A = np.array([xray_data.atomic_weight(e) for e in els], dtype=float)
            S = float(np.sum(w / A))
            if not S > 0:
                out.append({e: float("nan") for e in els})
                continue
            a = w / A / S
            # d a_i / d w_k = (delta_ik - a_i) / (A_k S)
            J = (np.eye(len(els)) - a[:, None]) / (A[None, :] * S)
            var = (J**2) @ np.nan_to_num(sw) ** 2
            out.append(
                {e: float(100.0 * np.sqrt(v)) for e, v in zip(els, var, strict=True)}
            )
        return out

    def table_rows(self) -> list[dict]:
        """Rows of :meth:`table`: component, element, wt.%, σ, at.%, σ, purity, stability."""
        rows = []
        at_unc = self.atomic_uncertainty()
        pur = self.unmixing.purity_table()
        for j in range(self.n_components):
            for el in self.elements:
                rows.append(
                    {
                        "component": j,
                        "element": el,
                        "weight_percent": float(self.weight_percent[j].get(el, np.nan)),
                        "weight_percent_sigma": float(self.uncertainty[j].get(el, np.nan)),
                        "atomic_percent": float(self.atomic_percent[j].get(el, np.nan)),
                        "atomic_percent_sigma": float(at_unc[j].get(el, np.nan)),
                        "max_purity": pur[j]["max_purity"],
                        "restart_similarity_min": pur[j].get(
                            "restart_similarity_min", np.nan
                        ),
                        "probable_mixture_fraction": float(
                            self.parameters.get("mixture_fraction", [0.0] * (j + 1))[j]
                        ),
                        "counts": pur[j]["counts"],
                        "mode": getattr(self.quantifications[j], "mode", ""),
                    }
                )
        return rows

    def table(self) -> str:
        """Composition table (at.% and wt.% with 1σ) with purity and stability."""
        lines = []
        head = f"{'':>10}" + "".join(f"{el:>16}" for el in self.elements)
        lines.append(head + f"{'purity':>9}{'stable':>8}")
        at_unc = self.atomic_uncertainty()
        pur = self.unmixing.purity_table()
        for j in range(self.n_components):
            at = "".join(
                f"{_fmt(self.atomic_percent[j].get(el), at_unc[j].get(el)):>16}"
                for el in self.elements
            )
            wt = "".join(
                f"{_fmt(self.weight_percent[j].get(el), self.uncertainty[j].get(el)):>16}"
                for el in self.elements
            )
            stab = pur[j].get("restart_similarity_min", np.nan)
            lines.append(
                f"{'C' + str(j) + ' at.%':>10}{at}{pur[j]['max_purity']:>9.2f}{stab:>8.3f}"
            )
            lines.append(f"{'C' + str(j) + ' wt.%':>10}{wt}")
        modes = sorted({str(getattr(q, "mode", "")) for q in self.quantifications})
        lines.append(
            f"mode: {', '.join(modes)}; 1σ in brackets from counting statistics; purity = "
            "largest fraction of a pixel's counts from the component; stable = lowest "
            "cosine similarity of the component spectrum over NMF restarts."
        )
        lines += [f"WARNING: {w}" for w in self.mixture_warnings]
        return "\n".join(lines)

    def __str__(self):
        choice = self.unmixing.choice
        why = choice.reason if choice is not None else "given"
        return (
            f"bss_quantify: {self.n_components} components ({why})\n"
            f"elements ({self.element_source}): {', '.join(self.elements)}\n" + self.table()
        )

    def table_csv(self) -> str:
        """The table as CSV text."""
        buf = io.StringIO()
        rows = self.table_rows()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def save_report(self, path) -> Path:
        """PDF report: maps, spectra with line markers, compositions, choice, purity."""
        from hyperspy_nanoml.report.eds_bss_report import save_bss_report

        return save_bss_report(self, path)

    def export(self, stem) -> list[Path]:
        """Write ``<stem>_maps.csv``, ``<stem>_spectra.csv`` and ``<stem>_table.csv``.

        All three are written to temporary files first and moved into place only when
        every one is complete (whole or not at all). Existing files are not overwritten:
        a ``FileExistsError`` is raised before anything is written.

        Returns
        -------
        list of Path
        """
        from hyperspy_nanoml.report.eds_bss_report import export_csv

        return export_csv(self, stem)


# ----------------------------------------------------------------------- workflow


def _elements_of(signal):
    md = signal.metadata
    if md.has_item("Sample.elements"):
        els = list(md.get_item("Sample.elements"))
        return [str(e) for e in els]
    return []


def _component_spectrum(signal, counts, live_time_pixel, title):
    """An EDSSEMSpectrum with ``signal``'s energy axis, metadata and detector info."""
    from exspy.signals import EDSSEMSpectrum

    axis = signal.axes_manager.signal_axes[0].get_axis_dictionary()
    spec = EDSSEMSpectrum(np.asarray(counts, dtype=np.float64), axes=[axis])
    md = signal.metadata.as_dictionary()
    md.pop("_HyperSpy", None)
    md.setdefault("General", {})["title"] = title
    md.setdefault("Signal", {})["signal_type"] = "EDS_SEM"
    spec.metadata.add_dictionary(md)
    spec.original_metadata.add_dictionary(signal.original_metadata.as_dictionary())
    if live_time_pixel is not None:
        spec.metadata.set_item(
            "Acquisition_instrument.SEM.Detector.EDS.live_time", live_time_pixel
        )
    return spec


def _net_lines_function(signal, elements, beam_energy):
    """``spectra (k, m) counts -> (N, sigma)`` per family, by the top-hat filter fit."""
    from exspy.signals import EDSSEMSpectrum

    from hyperspy_nanoml.eds.lines import fit_lines

    axis = signal.axes_manager.signal_axes[0].get_axis_dictionary()

    def net_lines(spectra):
        stack = EDSSEMSpectrum(
            np.asarray(spectra, dtype=np.float64),
            axes=[{"name": "component", "size": spectra.shape[0], "navigate": True}, axis],
        )
        md = signal.metadata.as_dictionary()
        stack.metadata.add_dictionary(
            {"Acquisition_instrument": md.get("Acquisition_instrument", {})}
        )
        stack.original_metadata.add_dictionary(signal.original_metadata.as_dictionary())
        fit = fit_lines(stack, list(elements), beam_energy=beam_energy)
        fam = fit.family_intensities
        N = np.stack([np.asarray(v[0], dtype=float) for v in fam.values()], axis=1)
        sig = np.stack([np.asarray(v[1], dtype=float) for v in fam.values()], axis=1)
        return N, sig

    return net_lines


# a component is flagged as a probable mixture when at least this fraction of its
# purest pixels' counts can be given to the components it co-occurs with while every
# element line stays non-negative (seed-like map: wires 0.29-0.33, substrate 0.01-0.03)
MIXTURE_FRACTION = 0.1


def mixture_fractions(unmixing, net_lines) -> np.ndarray:
    """How much of each component spectrum could be its neighbours' (0 = pure).

    The purest pixels of a phase narrower than the interaction volume hold its
    neighbours' signal. With net line intensities, the largest fraction ``α`` of a
    component's counts attributable to the components it co-occurs with (weighted by
    the full-resolution maps) while every line stays non-negative is
    :func:`hyperspy_nanoml.eds.unmix.extend_components`'s extension, computed here
    without applying it. ``α ≥`` :data:`MIXTURE_FRACTION` means the spectrum still
    holds every line its neighbours carry, in at least that proportion: either the
    phase contains all their elements, or no pixel is pure and the spectrum is a
    mixture (then ``extend=True`` gives the phase, assuming it lacks one of its
    neighbours' elements).

    Parameters
    ----------
    unmixing : hyperspy_nanoml.eds.unmix.Unmixing
    net_lines : callable
        ``spectra (k, m) counts -> (N, sigma)`` net line intensities (k, f).

    Returns
    -------
    numpy.ndarray (k,)

    Example
    -------
    >>> alpha = mixture_fractions(result.unmixing, net_lines)  # doctest: +SKIP
    """
    from hyperspy_nanoml.eds.unmix import extend_components

    S = np.asarray(unmixing.spectra, dtype=np.float64)
    k = S.shape[0]
    if k < 2:
        return np.zeros(k)
    A = np.clip(np.asarray(unmixing.maps, dtype=np.float64), 0.0, None)
    mixing = A.T @ A  # co-occurrence of the components over the pixels
    unit = S / np.maximum(S.sum(axis=1, keepdims=True), 1e-300)
    return extend_components(unit, mixing, unmixing.counts, net_lines)[1]


def _mixture_warnings(alpha, elements_of) -> list:
    out = []
    for j, a in enumerate(alpha):
        if a < MIXTURE_FRACTION:
            continue
        others = [i for i in range(len(alpha)) if i != j]
        out.append(
            f"component {j} is probably a mixture: its spectrum still holds every element "
            f"line of component(s) {', '.join(map(str, others))} "
            f"({', '.join(elements_of(others))}); up to {a:.0%} of its purest pixels' "
            "counts can be theirs, so no pixel is shown to be more than "
            f"{1 - a:.0%} pure and its composition is biased toward its neighbours. If the "
            "phase lacks an element of its neighbours, rerun with extend=True."
        )
    return out


def _maps_signal(signal, maps, nav_shape):
    """(k, *nav_shape) abundance maps as a calibrated stack."""
    import hyperspy.api as hs

    k = maps.shape[1]
    data = np.ascontiguousarray(maps.T.reshape(k, *nav_shape).astype(np.float32))
    nav_axes = [
        ax.get_axis_dictionary() for ax in signal.axes_manager.navigation_axes[::-1]
    ]
    for ax in nav_axes:
        ax["navigate"] = False
    comp = {
        "name": "component",
        "size": k,
        "scale": 1.0,
        "offset": 0.0,
        "units": "",
        "navigate": True,
    }
    axes = [comp, *nav_axes]
    cls = hs.signals.Signal2D if len(nav_shape) == 2 else hs.signals.Signal1D
    if len(nav_shape) > 2:
        cls = hs.signals.BaseSignal
    out = cls(data, axes=axes)
    out.metadata.General.title = "bss_quantify maps (fraction of a pure pixel)"
    out.metadata.Signal.quantity = "abundance (fraction of a pure pixel)"
    return out


def _auto_stable(X, nav_shape, kwargs, stability_threshold, choice_k):
    """Lower k from the PCA choice until every component is stable across restarts."""
    from hyperspy_nanoml.eds.unmix import unmix

    k = choice_k
    tried = []
    while True:
        res = unmix(X, k, nav_shape=nav_shape, **kwargs)
        worst = (
            float(res.stability["spectrum_similarity"].min())
            if res.stability is not None and res.stability["spectrum_similarity"].size
            else 1.0
        )
        tried.append((k, worst))
        if worst >= stability_threshold or k <= 1:
            return res, tried
        k -= 1


def bss_quantify(
    signal,
    n_components="auto",
    standards=None,
    elements=None,
    *,
    random_state=None,
    n_restarts: int = 3,
    target_counts: float = 150.0,
    max_components: int = 8,
    stability_threshold: float = 0.75,
    extend: bool = False,
    beam_energy: float | None = None,
    takeoff_angle: float | None = None,
    show_progressbar=None,
    **quantify_kwargs,
) -> BSSQuantification:
    """Physical components of an SEM-EDS spectrum image, each quantified with uncertainties.

    Parameters
    ----------
    signal : exspy.signals.EDSSEMSpectrum (eager or lazy)
        Spectrum image of raw counts (navigation axes = scan, signal axis = energy in
        eV or keV). Never modified; lazy data are read block by block.
    n_components : int or "auto"
        ``"auto"``: :func:`~hyperspy_nanoml.learn.n_components.choose_n_components` on
        the Poisson-scaled map binned to ``target_counts`` counts per pixel, then lowered
        while a component's spectrum is not reproduced (cosine < ``stability_threshold``)
        by ``n_restarts`` NMF restarts. The evidence is in ``result.unmixing``.
    standards : dict, optional
        As :func:`hyperspy_nanoml.eds.quantify.quantify` (element -> spectrum, or
        ``(spectrum, formula)``); ``None`` = standardless.
    elements : list of str, optional
        Default: ``metadata.Sample.elements``; when none are set, identified from the
        peaks of the summed spectrum (:func:`identify_elements`; the reason for each
        is in ``result.identification``).
    random_state : None or int
        Seeds the NMF and its restarts (recorded).
    n_restarts : int
        NMF restarts for the stability of the component spectra (default 3).
    target_counts : float
        Counts per binned pixel for estimating the spectra (see
        :func:`hyperspy_nanoml.eds.unmix.unmix`).
    max_components : int
        Upper bound for ``"auto"``.
    stability_threshold : float
        Lowest acceptable restart similarity for ``"auto"`` (default 0.75: on the real
        Bruker map thinned to 2 counts per pixel, 6 × 6 binned pixels, the minor one of
        its two components came back from restarts at 0.79-0.98; at 7 components
        chosen on such data the unstable ones fell to 0.36-0.6).
    extend : bool
        ``False`` (default): component spectra are those of the purest pixels of the
        map, no assumption on the elements; right when every phase fills the
        interaction volume somewhere (pure pixels exist). ``True``: each component is
        then extended away from the others until one of its element lines (fitted
        net intensity) vanishes (:func:`hyperspy_nanoml.eds.unmix.extend_components`):
        right when features are narrower than the interaction volume (no pure pixel)
        and each phase lacks an element of its neighbours (AuIn2 wires on InSb: no Sb
        in the wires); wrong when one phase's elements are all contained in another's
        (Au-Ag wires on Ag would lose their Ag). The extension of each component is in
        ``result.unmixing.extension`` and the report.
    beam_energy, takeoff_angle : float, optional
        keV and degrees; default from the metadata (an error names the missing field).
    show_progressbar : bool, optional
    **quantify_kwargs
        Passed to ``quantify``.

    Returns
    -------
    BSSQuantification

    Raises
    ------
    ValueError
        Missing beam energy or take-off angle, no elements and none identifiable,
        negative counts, an empty map — before the unmixing starts.

    References
    ----------
    Jany et al., Nano Lett. 17, 6520 (2017); Gillis & Vavasis, IEEE TPAMI 36, 698
    (2014); Pouchou & Pichoir, in *Electron Probe Quantitation* (1991).

    Example
    -------
    >>> result = bss_quantify(s, random_state=0)  # doctest: +SKIP
    >>> result.atomic_percent[0]  # doctest: +SKIP
    {'In': 50.2, 'Sb': 49.8}
    """
    from hyperspy_nanoml._compat import is_lazy_signal, navigation_shape_in_array
    from hyperspy_nanoml.eds import acquisition
    from hyperspy_nanoml.eds.lines import detector_fwhm
    from hyperspy_nanoml.eds.unmix import unmix

    # ---- checks before any long work
    if not hasattr(signal, "axes_manager") or signal.axes_manager.signal_dimension != 1:
        raise TypeError(
            f"bss_quantify needs an EDS spectrum image (EDSSEMSpectrum), got {type(signal).__name__}"
        )
    if signal.axes_manager.navigation_dimension == 0:
        raise ValueError(
            "bss_quantify needs a spectrum image (navigation axes); this is a single "
            "spectrum: use quantify(spectrum) instead"
        )
    e0 = acquisition.beam_energy(signal, beam_energy)
    toa = acquisition.takeoff_angle(signal, takeoff_angle)
    edges = acquisition.energy_edges(signal)
    lazy = is_lazy_signal(signal)
    nav_shape = navigation_shape_in_array(signal)
    m = edges.size - 1
    data = signal.data
    if not lazy:
        data = np.asarray(data)
        if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
            raise TypeError(
                f"the spectrum image must hold real counts, got dtype {data.dtype}"
            )
        if data.size and float(data.min()) < 0:
            raise ValueError(
                f"the spectrum image has negative counts (min {float(data.min()):.4g}): "
                "give raw counts (no background subtraction or offset)"
            )
        if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
            raise ValueError(
                "the spectrum image has NaN or infinite values: give raw counts"
            )
        if not data.any():
            raise ValueError(
                "the spectrum image is empty (all counts are zero): nothing to quantify"
            )
    X = data.reshape(-1, m)
    live_pixel = None
    md = signal.metadata
    lt_path = acquisition.SEM + ".Detector.EDS.live_time"
    if md.has_item(lt_path):
        live_pixel = float(md.get_item(lt_path))
    if standards is not None and live_pixel is None:
        raise ValueError(
            f"standards were given but the map has no live time (metadata.{lt_path}): the "
            "component doses are live time x pixels; set it with "
            "s.set_microscope_parameters(live_time=...) (s per pixel)"
        )

    # ---- elements
    identification = None
    if elements is not None:
        elements = [str(e) for e in elements]
        source = "given"
    else:
        elements = _elements_of(signal)
        source = "metadata.Sample.elements"
    if not elements:
        total = np.asarray(X.sum(axis=0, dtype=np.float64))
        if hasattr(total, "compute") or type(total).__module__.startswith("dask"):
            total = np.asarray(X.sum(axis=0, dtype=np.float64).compute())
        if not total.any():
            raise ValueError(
                "the spectrum image is empty (all counts are zero): nothing to quantify"
            )
        identification = identify_elements(total, edges, detector_fwhm(signal), e0)
        elements = identification.elements
        source = "identified from the peaks of the summed spectrum"
        if not elements:
            raise ValueError(
                "no elements are set (metadata.Sample.elements is empty) and none could be "
                "identified: the summed spectrum has no significant X-ray peak. Give them: "
                "bss_quantify(s, elements=['Fe', 'O']) or s.add_elements([...])"
            )

    # ---- unmixing
    kwargs = dict(
        net_lines=_net_lines_function(signal, elements, e0) if extend else None,
        target_counts=target_counts,
        max_components=max_components,
        n_restarts=n_restarts,
        random_state=random_state,
        show_progressbar=show_progressbar,
    )
    tried = None
    if n_components == "auto":
        res0 = unmix(X, "auto", nav_shape=nav_shape, **kwargs)
        choice = res0.choice
        worst = (
            float(res0.stability["spectrum_similarity"].min())
            if res0.stability is not None and res0.stability["spectrum_similarity"].size
            else 1.0
        )
        tried = [(res0.n_components, worst)]
        res = res0
        if worst < stability_threshold and res0.n_components > 1:
            res, more = _auto_stable(
                X, nav_shape, kwargs, stability_threshold, res0.n_components - 1
            )
            tried += more
            res.choice = choice
        if len(tried) > 1 and choice is not None:
            choice.notes.append(
                "Lowered while a component spectrum was not reproduced by NMF restarts "
                f"(cosine < {stability_threshold}): "
                + ", ".join(f"k={k}: worst {w:.3f}" for k, w in tried)
                + f"; kept k = {res.n_components}."
            )
    else:
        res = unmix(X, n_components, nav_shape=nav_shape, **kwargs)

    # ---- is a component (without the extension) still a mixture of its neighbours?
    mixture = np.zeros(res.n_components)
    if not extend and res.n_components > 1:
        mixture = mixture_fractions(res, _net_lines_function(signal, elements, e0))

    # ---- quantify every component spectrum with its dose
    from hyperspy_nanoml.eds.quantify import quantify

    spectra, quants = [], []
    for j in range(res.n_components):
        counts = res.spectra[j] / max(res.spectra[j].sum(), 1e-300) * res.counts[j]
        lt = None if live_pixel is None else live_pixel * float(res.pixels_equivalent[j])
        spec = _component_spectrum(signal, counts, lt, f"component {j}")
        spec.metadata.set_item("Sample.elements", sorted(elements))
        spec.metadata.set_item("Acquisition_instrument.SEM.beam_energy", e0)
        spectra.append(spec)
        quants.append(
            quantify(spec, standards=standards, elements=elements, **quantify_kwargs)
        )

    maps = _maps_signal(signal, res.maps, nav_shape)
    params = {
        "n_components": n_components
        if isinstance(n_components, str)
        else int(n_components),
        "n_components_used": res.n_components,
        "n_components_tried": [list(t) for t in tried] if tried else [],
        "elements": list(elements),
        "element_source": source,
        "standards": None if standards is None else sorted(standards),
        "random_state": random_state if isinstance(random_state, int | None) else "object",
        "n_restarts": int(n_restarts),
        "extend": bool(extend),
        "extension": [float(v) for v in res.extension],
        "mixture_fraction": [float(v) for v in mixture],
        "target_counts": float(target_counts),
        "bin_factor": int(res.bin_factor),
        "beam_energy_keV": e0,
        "takeoff_angle_deg": toa,
        "lazy": bool(lazy),
        "passes_over_data": int(res.passes),
        "method": "Poisson-scaled NMF, SPA purest pixels, weighted refit; XPP quantify",
    }
    maps.metadata.set_item("Processing.bss_quantify", params)
    for spec in spectra:
        spec.metadata.set_item("Processing.bss_quantify", params)

    def _d(q, name):
        v = getattr(q, name)
        return {str(k): float(x) for k, x in dict(v).items()}

    def elements_of(components):
        found = set()
        for i in components:
            found |= {e for e, v in quants[i].atomic_percent.items() if v >= 1.0}
        return sorted(found)

    warn_text = _mixture_warnings(mixture, elements_of)
    if warn_text:
        import warnings

        for w in warn_text:
            warnings.warn(w, UserWarning, stacklevel=2)

    return BSSQuantification(
        maps=maps,
        spectra=spectra,
        quantifications=quants,
        weight_percent=[_d(q, "weight_percent") for q in quants],
        atomic_percent=[_d(q, "atomic_percent") for q in quants],
        uncertainty=[_d(q, "uncertainty") for q in quants],
        elements=list(elements),
        element_source=source,
        unmixing=res,
        parameters=params,
        identification=identification,
        mixture_warnings=warn_text,
    )
