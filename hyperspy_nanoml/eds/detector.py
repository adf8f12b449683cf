"""Energy-dispersive X-ray detector model: efficiency and energy resolution.

Efficiency of a silicon drift (or Si(Li)) detector, the fraction of photons that reach the
detector's solid angle and are counted (e.g. Goldstein et al., *Scanning Electron Microscopy
and X-Ray Microanalysis*, 4th ed., Springer 2018, ch. 16; the layer model of NIST EPQ's
``XRayWindow``/``GridMountedWindow``):

    eff(E) = T_window(E) x [f_open + (1 - f_open) exp(-mu_grid rho t_grid)]
             x T_contact(E) x T_dead(E) x [1 - exp(-mu_Si rho_Si t_crystal)]

with T = exp(-sum mu_i rho_i t_i) over the layers (mass absorption coefficients from
xraydb, Elam et al. 2002). Energy resolution: the Fano-limited peak width (Fiori & Newbury,
Scanning Electron Microsc. I, 401 (1978)),

    FWHM(E)^2 = FWHM(Mn Ka)^2 + 8 ln 2 F eps (E - E_MnKa)

with the Fano factor F (default 0.12) and eps = 3.76 eV per electron-hole pair in Si
(8 ln 2 F eps = 2.50 eV, the constant of Fiori & Newbury).

Defaults (:class:`Detector`): a 450 um SDD behind a Moxtek AP3.3-type polymer window
(0.3 um parylene C10H8O4N at 1.39 g/cm^3 and 40 nm Al on a 380 um Si grid with 77 % open
area, as EPQ's ``Moxtek AP 3.3 (model)``), a 30 nm Al contact, 30 nm Si dead layer,
solid angle 0.03 sr, FWHM(Mn Ka) 130 eV, elevation 35 deg.

Example
-------
>>> from hyperspy_nanoml.eds.detector import Detector
>>> det = Detector()
>>> round(float(det.fwhm(5.8987)), 1)
130.0
>>> 0.7 < float(det.efficiency(8.0)) < 0.8   # the grid shadows 23 %
True
>>> be = Detector.with_be_window(8.0)
>>> float(be.efficiency(0.5)) < 0.01 < 0.95 < float(be.efficiency(8.0))
True
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hyperspy_nanoml.eds import xray_data as xd

__all__ = ["Layer", "Grid", "Detector", "MN_KA_KEV"]

#: Mn Ka energy (keV) at which detector resolution is specified.
MN_KA_KEV = 5.8987
_PAIR_ENERGY_EV = 3.76  # electron-hole pair creation energy in Si at ~ -20 C
_EIGHT_LN2 = 8.0 * math.log(2.0)
_SI_DENSITY = 2.33
# Densities (g/cm^3) of window and contact constituents when none is given: the element's
# solid density from xraydb, except for the light constituents of polymer windows and
# passivation layers (B, C, N, O, F, H), which have no meaningful elemental density: they
# take a polymer density.
_POLYMER_DENSITY = 1.4
_LIGHT = {"H", "B", "C", "N", "O", "F"}


def _density(material: dict) -> float:
    import xraydb

    if len(material) == 1:
        (el,) = material
        if el in _LIGHT:
            return _POLYMER_DENSITY
        return float(xraydb.atomic_density(el))
    raise ValueError(
        f"give the density of the compound layer {material!r} (g/cm^3), e.g. "
        "Layer('C10H8O4N', 0.3, density=1.39)"
    )


def _mac(element: str, energy_keV: np.ndarray) -> np.ndarray:
    """Photoabsorption mass absorption coefficient (cm^2/g), vectorised (xraydb, Elam)."""
    import xraydb

    e = np.clip(np.asarray(energy_keV, dtype=float), 0.01, None) * 1000.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # xraydb warns below 100 eV
        return np.asarray(xraydb.mu_elam(element, e, kind="photo"), dtype=float)


@dataclass(frozen=True)
class Layer:
    """A uniform absorbing layer.

    Parameters
    ----------
    material : str or dict
        An element ("Al"), a chemical formula ("C10H8O4N", "Si3N4") or a dict of mass
        fractions.
    thickness : float
        Thickness in micrometres.
    density : float, optional
        g/cm^3. Default: the element's solid density (xraydb); 1.4 g/cm^3 for the light
        polymer constituents H, B, C, N, O, F given alone. Required for compounds.
    """

    material: str | Mapping[str, float]
    thickness: float
    density: float | None = None

    def __post_init__(self):
        comp = self.composition
        t = float(self.thickness)
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(
                f"layer thickness must be >= 0 micrometres, got {self.thickness!r}"
            )
        rho = _density(comp) if self.density is None else float(self.density)
        if not (math.isfinite(rho) and rho > 0):
            raise ValueError(f"layer density must be > 0 g/cm^3, got {self.density!r}")
        object.__setattr__(self, "thickness", t)
        object.__setattr__(self, "density", rho)

    @property
    def composition(self) -> dict[str, float]:
        """Mass fractions of the layer material."""
        if isinstance(self.material, str):
            try:
                return {xd.element_symbol(self.material): 1.0}
            except ValueError:
                return xd.parse_formula(self.material)
        comp = xd.check_composition(self.material, "layer material")
        total = sum(comp.values())
        return {el: w / total for el, w in comp.items()}

    @property
    def mass_thickness(self) -> float:
        """rho t in g/cm^2."""
        return self.density * self.thickness * 1e-4

    def optical_depth(self, energy_keV) -> np.ndarray:
        """mu rho t (dimensionless) at ``energy_keV``."""
        e = np.asarray(energy_keV, dtype=float)
        mu = sum(w * _mac(el, e) for el, w in self.composition.items())
        return mu * self.mass_thickness

    def transmission(self, energy_keV) -> np.ndarray:
        """exp(-mu rho t) at ``energy_keV`` (keV)."""
        return np.exp(-self.optical_depth(energy_keV))

    def to_dict(self) -> dict:
        mat = self.material if isinstance(self.material, str) else dict(self.material)
        return {"material": mat, "thickness_um": self.thickness, "density": self.density}


@dataclass(frozen=True)
class Grid:
    """A window support grid: ``open_area`` of the window is free, the rest lies behind
    ``thickness`` micrometres of ``material``."""

    material: str = "Si"
    thickness: float = 380.0
    open_area: float = 0.77
    density: float | None = None

    def __post_init__(self):
        if not 0.0 < float(self.open_area) <= 1.0:
            raise ValueError(f"grid open_area must be in (0, 1], got {self.open_area!r}")
        layer = Layer(self.material, self.thickness, self.density)
        object.__setattr__(self, "density", layer.density)
        object.__setattr__(self, "open_area", float(self.open_area))

    def transmission(self, energy_keV) -> np.ndarray:
        t = Layer(self.material, self.thickness, self.density).transmission(energy_keV)
        return self.open_area + (1.0 - self.open_area) * t

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _ap33_window() -> tuple:
    return (Layer("C10H8O4N", 0.3, density=1.39), Layer("Al", 0.04))


@dataclass(frozen=True)
class Detector:
    """An EDS detector: window, contact, dead layer, crystal, solid angle and resolution.

    Parameters
    ----------
    window : sequence of Layer
        Window film layers (empty: windowless). Default: Moxtek AP3.3-type, 0.3 um
        parylene (C10H8O4N, 1.39 g/cm^3) + 40 nm Al.
    grid : Grid or None
        Window support grid (default Si, 380 um, 77 % open; None for a free-standing
        window such as Be).
    contact : sequence of Layer
        Front contact and passivation layers on the crystal (default 30 nm Al; Si(Li)
        detectors typically 20 nm Au).
    dead_layer : float
        Si dead layer in micrometres (default 0.03).
    crystal_thickness : float
        Active Si thickness in micrometres (default 450, an SDD; Si(Li): 3000-5000).
    solid_angle : float
        Collection solid angle in steradians (default 0.03).
    fwhm_mn_ka : float
        Energy resolution, FWHM at Mn Ka in eV (default 130).
    fano : float
        Fano factor of Si (default 0.12), sets how the FWHM grows with energy.
    elevation_angle, azimuth_angle : float
        Degrees (defaults 35, 0).
    name : str

    Methods
    -------
    efficiency(energy_keV), fwhm(energy_keV), sigma_keV(energy_keV),
    from_signal(signal), with_be_window(thickness), windowless(), to_dict(), replace(...)

    Example
    -------
    >>> det = Detector(fwhm_mn_ka=125.0, solid_angle=0.05)
    >>> round(float(det.fwhm(1.486)), 1)   # Al Ka
    67.7
    """

    window: Sequence[Layer] = field(default_factory=_ap33_window)
    grid: Grid | None = field(default_factory=Grid)
    contact: Sequence[Layer] = field(default_factory=lambda: (Layer("Al", 0.03),))
    dead_layer: float = 0.03
    crystal_thickness: float = 450.0
    solid_angle: float = 0.03
    fwhm_mn_ka: float = 130.0
    fano: float = 0.12
    elevation_angle: float = 35.0
    azimuth_angle: float = 0.0
    name: str = "SDD, Moxtek AP3.3-type window (model)"

    def __post_init__(self):
        for attr in ("window", "contact"):
            layers = getattr(self, attr)
            if isinstance(layers, Layer):
                layers = (layers,)
            layers = tuple(layers)
            for layer in layers:
                if not isinstance(layer, Layer):
                    raise TypeError(
                        f"Detector.{attr} must be a sequence of Layer objects, got {layer!r}"
                    )
            object.__setattr__(self, attr, layers)
        if self.grid is not None and not isinstance(self.grid, Grid):
            raise TypeError(f"Detector.grid must be a Grid or None, got {self.grid!r}")
        for name, lo in (
            ("dead_layer", 0.0),
            ("crystal_thickness", None),
            ("solid_angle", None),
            ("fwhm_mn_ka", None),
            ("fano", 0.0),
        ):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                v = math.nan
            ok = math.isfinite(v) and (v >= lo if lo is not None else v > 0)
            if not ok:
                need = ">= 0" if lo is not None else "> 0"
                raise ValueError(
                    f"Detector.{name} must be a finite number {need}, got {v!r}"
                )
            object.__setattr__(self, name, v)
        if self.solid_angle > 4 * math.pi:
            raise ValueError(
                f"Detector.solid_angle is in sr (<= 4 pi), got {self.solid_angle}"
            )
        if self.fwhm_mn_ka < 40.0 or self.fwhm_mn_ka > 1000.0:
            raise ValueError(
                f"Detector.fwhm_mn_ka is the FWHM at Mn Ka in eV (typically 120-160), "
                f"got {self.fwhm_mn_ka}"
            )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def with_be_window(cls, thickness: float = 8.0, **kwargs) -> Detector:
        """A detector behind a free-standing Be window of ``thickness`` micrometres."""
        kwargs.setdefault("name", f"Be window ({thickness:g} um)")
        return cls(window=(Layer("Be", thickness),), grid=None, **kwargs)

    @classmethod
    def windowless(cls, **kwargs) -> Detector:
        """A windowless detector (only contact, dead layer and crystal absorb)."""
        kwargs.setdefault("name", "windowless")
        return cls(window=(), grid=None, **kwargs)

    def replace(self, **changes) -> Detector:
        """A copy with some fields changed (``det.replace(fwhm_mn_ka=125)``)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ physics
    def efficiency(self, energy_keV):
        """Fraction of the photons entering the solid angle that are counted.

        Parameters
        ----------
        energy_keV : float or array_like
            Photon energy in keV (vectorised). Zero at and below 0 keV.

        Returns
        -------
        float or ndarray (shape of ``energy_keV``), between 0 and 1.
        """
        e = np.asarray(energy_keV, dtype=float)
        if not np.all(np.isfinite(e)):
            raise ValueError("energy_keV must be finite (keV)")
        tau = np.zeros(e.shape)
        for layer in (*self.window, *self.contact):
            tau = tau + layer.optical_depth(e)
        tau = tau + _mac("Si", e) * _SI_DENSITY * self.dead_layer * 1e-4
        eff = np.exp(-tau)
        if self.grid is not None:
            eff = eff * self.grid.transmission(e)
        absorbed = -np.expm1(-_mac("Si", e) * _SI_DENSITY * self.crystal_thickness * 1e-4)
        eff = np.where(e > 0, eff * absorbed, 0.0)
        return float(eff) if eff.ndim == 0 else eff

    def fwhm(self, energy_keV):
        """Peak FWHM in eV at ``energy_keV`` (Fiori & Newbury 1978, Fano-limited).

        FWHM(E)^2 = FWHM(Mn Ka)^2 + 8 ln2 F eps (E - 5.8987 keV); floored at the
        electronic-noise width, FWHM(Mn Ka)^2 - 8 ln2 F eps 5.8987 keV (E = 0).
        """
        e = np.asarray(energy_keV, dtype=float) * 1000.0
        slope = _EIGHT_LN2 * self.fano * _PAIR_ENERGY_EV
        var = self.fwhm_mn_ka**2 + slope * (np.maximum(e, 0.0) - MN_KA_KEV * 1000.0)
        out = np.sqrt(np.maximum(var, 1.0))
        return float(out) if out.ndim == 0 else out

    def sigma_keV(self, energy_keV):
        """Gaussian standard deviation of a peak at ``energy_keV``, in keV."""
        return np.asarray(self.fwhm(energy_keV)) / (1000.0 * math.sqrt(_EIGHT_LN2))

    # ------------------------------------------------------------------ metadata
    def to_dict(self) -> dict:
        """A plain dict (JSON/HyperSpy-metadata friendly) describing the detector."""
        return {
            "name": self.name,
            "window": [layer.to_dict() for layer in self.window],
            "grid": None if self.grid is None else self.grid.to_dict(),
            "contact": [layer.to_dict() for layer in self.contact],
            "dead_layer_um": self.dead_layer,
            "crystal_thickness_um": self.crystal_thickness,
            "solid_angle_sr": self.solid_angle,
            "fwhm_mn_ka_eV": self.fwhm_mn_ka,
            "fano": self.fano,
            "elevation_angle": self.elevation_angle,
            "azimuth_angle": self.azimuth_angle,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Detector:
        """Inverse of :meth:`to_dict`."""

        def layers(items):
            return tuple(
                Layer(it["material"], it["thickness_um"], it.get("density")) for it in items
            )

        grid = d.get("grid")
        return cls(
            window=layers(d.get("window", ())),
            grid=None if not grid else Grid(**dict(grid)),
            contact=layers(d.get("contact", ())),
            dead_layer=d.get("dead_layer_um", 0.03),
            crystal_thickness=d.get("crystal_thickness_um", 450.0),
            solid_angle=d.get("solid_angle_sr", 0.03),
            fwhm_mn_ka=d.get("fwhm_mn_ka_eV", 130.0),
            fano=d.get("fano", 0.12),
            elevation_angle=d.get("elevation_angle", 35.0),
            azimuth_angle=d.get("azimuth_angle", 0.0),
            name=d.get("name", "detector"),
        )

    def write_metadata(self, signal) -> None:
        """Write the detector into ``signal.metadata`` (resolution, angles and the full
        model under ``Acquisition_instrument.SEM.Detector.EDS.model``).

        Used on signals this package creates; :meth:`from_signal` reads it back.
        """
        md = signal.metadata
        md.set_item(_EDS + ".energy_resolution_MnKa", self.fwhm_mn_ka)
        md.set_item(_EDS + ".elevation_angle", self.elevation_angle)
        md.set_item(_EDS + ".azimuth_angle", self.azimuth_angle)
        md.set_item(_EDS + ".model", self.to_dict())

    @classmethod
    def from_signal(cls, signal, **overrides) -> Detector:
        """The detector of a HyperSpy EDS signal, from its metadata (never modified).

        Read, in increasing priority:

        1. defaults of :class:`Detector`;
        2. Bruker files (``original_metadata.Detector``/``Spectrum``): window layers
           (``WindowLayers``: atomic number, thickness in um; a layer with
           ``RelativeArea`` is the support grid, covering that fraction of the window),
           detector layers (``DetLayers``, as the contact), ``SiDeadLayerThickness`` (um),
           ``DetectorThickness`` (mm) and the peak width model sigma^2 = SigmaAbs +
           SigmaLin E (keV^2; FWHM(Mn Ka) = 2.3548 sqrt(SigmaAbs + SigmaLin 5.8987 keV),
           Fano factor = SigmaLin / 3.76 eV);
        3. ``metadata.Acquisition_instrument.SEM.Detector.EDS``: ``model`` (written by
           :meth:`write_metadata`), ``elevation_angle``, ``azimuth_angle`` and
           ``energy_resolution_MnKa`` -- the latter only when it is not rosettasciio's
           130 eV placeholder while a Bruker width model is present;
        4. keyword ``overrides`` (any :class:`Detector` field).

        Parameters
        ----------
        signal : hyperspy signal (EDSSEMSpectrum)
        **overrides
            Detector fields that win over the file (e.g. ``solid_angle=0.05``).

        Returns
        -------
        Detector

        Example
        -------
        >>> import hyperspy.api as hs                                  # doctest: +SKIP
        >>> s = hs.load("map.bcf")[-1]                                 # doctest: +SKIP
        >>> Detector.from_signal(s).fwhm_mn_ka                         # doctest: +SKIP
        137.4
        """
        md = getattr(signal, "metadata", None)
        if md is None:
            raise TypeError(
                f"Detector.from_signal needs a HyperSpy signal, got {type(signal).__name__}"
            )
        fields: dict = {}
        bruker = _bruker_detector(getattr(signal, "original_metadata", None))
        fields.update(bruker)
        if md.has_item(_EDS + ".model"):
            model = md.get_item(_EDS + ".model")
            model = model.as_dictionary() if hasattr(model, "as_dictionary") else model
            base = cls.from_dict(model)
            fields.update({f.name: getattr(base, f.name) for f in dataclasses.fields(cls)})
        for key, name in (
            ("elevation_angle", "elevation_angle"),
            ("azimuth_angle", "azimuth_angle"),
        ):
            if md.has_item(_EDS + "." + key):
                fields[name] = float(md.get_item(_EDS + "." + key))
        if md.has_item(_EDS + ".energy_resolution_MnKa"):
            res = float(md.get_item(_EDS + ".energy_resolution_MnKa"))
            if not ("fwhm_mn_ka" in bruker and res == _RSCIIO_DEFAULT_RESOLUTION):
                fields["fwhm_mn_ka"] = res
        fields.update(overrides)
        return cls(**fields)


_EDS = "Acquisition_instrument.SEM.Detector.EDS"
_RSCIIO_DEFAULT_RESOLUTION = 130.0


def _om_get(node, *keys):
    for key in keys:
        if node is None:
            return None
        if hasattr(node, "has_item"):
            node = node.get_item(key) if node.has_item(key) else None
        elif isinstance(node, Mapping):
            node = node.get(key)
        else:
            return None
    return node


def _layers(node):
    """Bruker ``WindowLayers``/``DetLayers`` -> list of (Z, thickness um, relative area)."""
    if node is None:
        return []
    d = node.as_dictionary() if hasattr(node, "as_dictionary") else dict(node)
    out = []
    for key in sorted(d, key=lambda k: int("".join(c for c in k if c.isdigit()) or 0)):
        item = d[key]
        if not isinstance(item, Mapping) or "Atom" not in item or "Thickness" not in item:
            continue
        out.append(
            (int(float(item["Atom"])), float(item["Thickness"]), item.get("RelativeArea"))
        )
    return out


def _bruker_detector(om) -> dict:
    """Detector fields from a Bruker (.bcf/.spx) ``original_metadata``; {} otherwise."""
    det = _om_get(om, "Detector")
    if det is None:
        return {}
    fields: dict = {}
    window, grid = [], None
    for z, thick, rel in _layers(_om_get(det, "WindowLayers")):
        if z <= 0 or thick <= 0:
            continue
        sym = xd.element_symbol(z)
        if rel is not None and float(rel) < 1.0:
            grid = Grid(sym, thick, open_area=1.0 - float(rel))
        else:
            window.append(Layer(sym, thick))
    if window or grid is not None:
        fields["window"] = tuple(window)
        fields["grid"] = grid
    contact = [
        Layer(xd.element_symbol(z), t)
        for z, t, _ in _layers(_om_get(det, "DetLayers"))
        if t > 0
    ]
    if contact:
        fields["contact"] = tuple(contact)
    dead = _om_get(det, "SiDeadLayerThickness")
    if dead is not None:
        fields["dead_layer"] = float(dead)
    thick = _om_get(det, "DetectorThickness")
    if thick is not None and float(thick) > 0:
        fields["crystal_thickness"] = float(thick) * 1000.0  # mm -> um
    name = " ".join(str(x) for x in (_om_get(det, "Type"), _om_get(det, "WindowType")) if x)
    if name:
        fields["name"] = f"Bruker {name}"
    s_abs = _om_get(om, "Spectrum", "SigmaAbs")
    s_lin = _om_get(om, "Spectrum", "SigmaLin")
    if s_abs is not None and s_lin is not None:
        var = float(s_abs) + float(s_lin) * MN_KA_KEV  # keV^2
        if var > 0 and float(s_lin) > 0:
            fields["fwhm_mn_ka"] = 1000.0 * math.sqrt(_EIGHT_LN2 * var)
            fields["fano"] = float(s_lin) * 1000.0 / _PAIR_ENERGY_EV
    return fields
