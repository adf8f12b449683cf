"""Acquisition parameters of an SEM-EDS spectrum, read from HyperSpy metadata.

One place reads the beam energy, take-off angle, live time, probe current and the energy
axis of a spectrum, so that every EDS entry point (``fit_lines``, ``quantify``, and later
``bss_quantify``) raises the same message when a field is missing: the message names the
metadata field and how to set it (``s.set_microscope_parameters(...)`` or
``s.metadata.set_item(...)``).

Example
-------
>>> import numpy as np, exspy
>>> s = exspy.signals.EDSSEMSpectrum(np.ones(1024))
>>> s.set_microscope_parameters(beam_energy=15.0, live_time=60.0)
>>> s.metadata.set_item("Acquisition_instrument.SEM.beam_current", 2.0)
>>> beam_energy(s), dose(s)
(15.0, 120.0)
"""

from __future__ import annotations

import math

import numpy as np

from hyperspy_nanoml.eds import xray_data

__all__ = [
    "SEM",
    "beam_energy",
    "takeoff_angle",
    "live_time",
    "probe_current",
    "dose",
    "energy_edges",
    "check_spectrum",
    "sample_elements",
]

SEM = "Acquisition_instrument.SEM"
_EDS = SEM + ".Detector.EDS"


def _get(signal, path):
    md = getattr(signal, "metadata", None)
    if md is None:
        raise TypeError(
            f"expected a HyperSpy signal (an EDSSEMSpectrum), got {type(signal).__name__}"
        )
    if not md.has_item(path):
        return None
    return md.get_item(path)


def _positive(value, path, what, how):
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise ValueError(
            f"{what} is {value!r} in metadata.{path}: it must be a positive number; "
            f"set it with {how}"
        )
    return v


def _required(signal, path, what, how, alternative=""):
    """The positive number at ``metadata.<path>``; its absence names ``how`` to set it."""
    v = _get(signal, path)
    if v is None:
        raise ValueError(
            f"{what} is not set (metadata.{path} is missing): set it with {how}{alternative}"
        )
    return _positive(v, path, what, how)


def beam_energy(signal, value: float | None = None) -> float:
    """Beam energy in keV: ``value`` when given, else ``metadata.Acquisition_instrument.SEM.beam_energy``.

    Raises
    ------
    ValueError
        When it is missing or not positive, naming the field and
        ``s.set_microscope_parameters(beam_energy=...)``.
    """
    how = "s.set_microscope_parameters(beam_energy=...) (keV)"
    if value is not None:
        return _positive(value, SEM + ".beam_energy", "the beam energy", how)
    return _required(
        signal, SEM + ".beam_energy", "the beam energy", how, " or pass beam_energy="
    )


def takeoff_angle(signal, value: float | None = None) -> float:
    """X-ray take-off angle in degrees: ``value``, else from the stage tilt, detector
    azimuth and elevation in the metadata (exspy's ``take_off_angle``).

    Raises
    ------
    ValueError
        When the detector elevation angle is missing, naming
        ``metadata.Acquisition_instrument.SEM.Detector.EDS.elevation_angle`` and
        ``s.set_microscope_parameters(elevation_angle=...)``.
    """
    how = "s.set_microscope_parameters(elevation_angle=..., tilt_stage=..., azimuth_angle=...)"
    if value is not None:
        v = _positive(value, _EDS + ".elevation_angle", "the take-off angle", how)
    else:
        elevation = _get(signal, _EDS + ".elevation_angle")
        if elevation is None:
            raise ValueError(
                f"the take-off angle is unknown (metadata.{_EDS}.elevation_angle is "
                f"missing): set it with {how} or pass takeoff_angle= (degrees)"
            )
        from exspy.utils.eds import take_off_angle

        tilt = _get(signal, SEM + ".Stage.tilt_alpha") or 0.0
        azimuth = _get(signal, _EDS + ".azimuth_angle") or 0.0
        beta = _get(signal, SEM + ".Stage.tilt_beta") or 0.0
        v = float(take_off_angle(tilt, azimuth, float(elevation), beta))
    if not 0 < v <= 90:
        raise ValueError(
            f"take-off angle {v:.3g} degrees is outside (0, 90]: check the stage tilt and "
            f"detector angles ({how})"
        )
    return v


def live_time(signal) -> float:
    """Live time in s from ``metadata.Acquisition_instrument.SEM.Detector.EDS.live_time``."""
    how = "s.set_microscope_parameters(live_time=...) (s)"
    return _required(signal, _EDS + ".live_time", "the live time", how)


def probe_current(signal) -> float:
    """Probe current in nA from ``metadata.Acquisition_instrument.SEM.beam_current``."""
    how = f's.metadata.set_item("{SEM}.beam_current", ...) (nA)'
    return _required(signal, SEM + ".beam_current", "the probe current", how)


def dose(signal, name: str = "spectrum") -> float:
    """Electron dose in nA s: live time x probe current.

    Raises
    ------
    ValueError
        Naming ``name`` (e.g. "the Fe standard") and the missing field.
    """
    try:
        return live_time(signal) * probe_current(signal)
    except ValueError as err:
        raise ValueError(f"no dose for {name}: {err}") from None


def energy_edges(signal) -> np.ndarray:
    """Channel edges of the signal axis in keV (n_channels + 1, increasing).

    HyperSpy's axis values are the channel centres; units "eV" or "keV" (a unit-less axis
    is read as eV when it extends beyond 100).

    Raises
    ------
    ValueError
        For a non-energy or decreasing axis.
    """
    axis = signal.axes_manager.signal_axes[0]
    centres = np.asarray(axis.axis, dtype=float)
    units = str(getattr(axis, "units", "") or "").strip()
    if units.lower() == "ev":
        factor = 1e-3
    elif units.lower() == "kev":
        factor = 1.0
    elif units in ("", "<undefined>") or units.startswith("<"):
        factor = 1e-3 if centres.max() > 100 else 1.0
    else:
        raise ValueError(
            f"the signal axis has units {units!r}: an EDS spectrum needs an energy axis in "
            "eV or keV (set axes_manager.signal_axes[0].units)"
        )
    centres = centres * factor
    if centres.size < 8 or np.any(np.diff(centres) <= 0):
        raise ValueError("the energy axis must be increasing with at least 8 channels")
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate(
        [[centres[0] - (mid[0] - centres[0])], mid, [centres[-1] + (centres[-1] - mid[-1])]]
    )


def check_spectrum(signal, name: str = "spectrum") -> None:
    """Raise when ``signal`` is not a 1D-signal spectrum of counts (finite, >= 0).

    Lazy data are not checked value by value (that would read them).
    """
    if not hasattr(signal, "axes_manager") or signal.axes_manager.signal_dimension != 1:
        raise TypeError(
            f"{name} must be a HyperSpy 1D signal (EDSSEMSpectrum), got "
            f"{type(signal).__name__}"
        )
    if getattr(signal, "_lazy", False):
        return
    data = np.asarray(signal.data)
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise TypeError(f"{name} must hold real counts, got dtype {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{name} has NaN or infinite counts: give raw counts")
    if data.size and data.min() < 0:
        idx = np.unravel_index(int(np.argmin(data)), data.shape)[-1]
        e = energy_edges(signal)
        raise ValueError(
            f"{name} has negative counts (min {data.min():.4g} at "
            f"{0.5 * (e[idx] + e[idx + 1]):.3f} keV): the fit needs raw counts with "
            "Poisson statistics; do not subtract a background or offset beforehand"
        )


def sample_elements(signal, elements=None, *, fallback=None, purpose: str = "fit") -> list:
    """The elements to work on: ``elements``, else ``metadata.Sample.elements``, else
    ``fallback``; as chemical symbols, in order, without repeats.

    Parameters
    ----------
    signal : HyperSpy signal
        Its ``metadata.Sample.elements`` is the default.
    elements : str or sequence of str, optional
        Symbols or names ("Fe", "iron").
    fallback : iterable of str, optional
        Used when neither is given (e.g. the elements of the standards).
    purpose : str
        What the elements are for, in the error message ("no elements to fit").

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        When there are none, naming ``elements=[...]`` and ``s.add_elements([...])``.

    Example
    -------
    >>> import numpy as np, exspy
    >>> s = exspy.signals.EDSSEMSpectrum(np.ones(16))
    >>> sample_elements(s, ["Fe", "Ni", "Fe"])
    ['Fe', 'Ni']
    """
    if elements is None:
        md = signal.metadata
        if md.has_item("Sample.elements") and len(md.Sample.elements):
            elements = list(md.Sample.elements)
        elif fallback:
            elements = list(fallback)
    if elements is None or len(elements) == 0:
        raise ValueError(
            f"no elements to {purpose}: pass elements=[...] or set them with "
            "s.add_elements([...]) (metadata.Sample.elements)"
        )
    if isinstance(elements, str):
        elements = [elements]
    return list(dict.fromkeys(xray_data.element_symbol(e) for e in elements))
