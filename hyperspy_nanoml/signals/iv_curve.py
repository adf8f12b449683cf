"""The conductive-AFM I-V map: one current-bias curve per scan pixel.

Registered with HyperSpy as signal_type ``"IV_curve"`` (aliases ``"IV"``,
``"iv_curve"``), so ``s.set_signal_type("IV_curve")`` and ``hs.load`` of a saved
``.hspy`` give this class back. Navigation axes are the scan (x, y), the signal
axis is the bias ("Bias", V) and the values are the current in A
(``metadata.Signal.quantity = "Current (A)"``).

The acquisition parameters the physics needs (temperature, tip/sample contact
area, amplifier gain, amplifier saturation current) live under
``metadata.Acquisition_instrument.SPM`` in SI units; set them with
:meth:`IVCurveSignal.set_iv_parameters` and read them with
:meth:`IVCurveSignal.get_iv_parameter`, which names the missing field and the
setter when one is absent.

Reference: Janas et al., Appl. Surf. Sci. 570, 150958 (2021) (k-means clustering
of C-AFM I-V maps).
"""

from __future__ import annotations

import traits.api as t
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal1d import Signal1D

# parameter -> (unit, description) stored under metadata.Acquisition_instrument.SPM
IV_PARAMETERS = {
    "temperature": ("K", "sample temperature"),
    "contact_area": ("m^2", "tip/sample electrical contact area"),
    "amplifier_gain": ("V/A", "current amplifier gain (transimpedance)"),
    "saturation_current": ("A", "current at which the amplifier saturates (clips)"),
}

_SPM = "Acquisition_instrument.SPM"


class IVCurveSignal(Signal1D):
    """Conductive-AFM I-V map: current (A) versus bias (V) at every scan pixel.

    Navigation axes are the scan positions (calibrated like the scan, e.g. nm),
    the signal axis is the bias named ``"Bias"`` in ``"V"``; the data are
    currents in A. When the class is assigned to a signal whose signal axis has
    no name or units (``s.set_signal_type("IV_curve")``), they are set to
    ``"Bias"`` / ``"V"``, and ``metadata.Signal.quantity`` defaults to
    ``"Current (A)"``; existing names, units and quantity are never overwritten
    (a reader of field-driven data such as ln J vs sqrt(E) keeps its own).

    Examples
    --------
    >>> import numpy as np, hyperspy.api as hs
    >>> s = hs.signals.Signal1D(np.zeros((4, 5, 101)))
    >>> s.set_signal_type("IV_curve")
    >>> s.axes_manager.signal_axes[0].name
    'Bias'
    >>> s.set_iv_parameters(temperature=300.0, contact_area=1e-16)
    >>> s.get_iv_parameter("temperature")
    300.0
    """

    _signal_type = "IV_curve"
    _alias_signal_types = ["IV", "iv_curve"]
    _lazy = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.axes_manager.signal_dimension == 1:
            axis = self.axes_manager.signal_axes[0]
            if axis.name is t.Undefined or axis.name in ("", None):
                axis.name = "Bias"
            if axis.units is t.Undefined or axis.units in ("", None):
                axis.units = "V"
        if "Signal.quantity" not in self.metadata:
            self.metadata.set_item("Signal.quantity", "Current (A)")

    # --- acquisition parameters ----------------------------------------------

    def set_iv_parameters(
        self,
        temperature: float | None = None,
        contact_area: float | None = None,
        amplifier_gain: float | None = None,
        saturation_current: float | None = None,
    ) -> None:
        """Store acquisition parameters under ``metadata.Acquisition_instrument.SPM``.

        Parameters left as None are not changed.

        Parameters
        ----------
        temperature : float, optional
            Sample temperature in K (> 0).
        contact_area : float, optional
            Electrical contact area of the tip in m^2 (> 0); the apparent
            Schottky barrier depends on it (one decade moves it by kT ln 10,
            59.5 meV at 300 K).
        amplifier_gain : float, optional
            Transimpedance gain of the current amplifier in V/A (> 0).
        saturation_current : float, optional
            Current in A at which the amplifier saturates (> 0); currents at or
            beyond it are clipped.

        Examples
        --------
        >>> import numpy as np, hyperspy.api as hs
        >>> s = hs.signals.Signal1D(np.zeros((4, 5, 101)))
        >>> s.set_signal_type("IV_curve")
        >>> s.set_iv_parameters(temperature=295.0, saturation_current=1e-8)
        >>> s.metadata.Acquisition_instrument.SPM.temperature
        295.0
        """
        values = {
            "temperature": temperature,
            "contact_area": contact_area,
            "amplifier_gain": amplifier_gain,
            "saturation_current": saturation_current,
        }
        checked = {}
        for name, value in values.items():
            if value is None:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"{name} must be a number in {IV_PARAMETERS[name][0]}, got {value!r}"
                ) from None
            if not value > 0 or value == float("inf"):
                raise ValueError(
                    f"{name} must be a finite positive number in "
                    f"{IV_PARAMETERS[name][0]}, got {value!r}"
                )
            checked[name] = value
        for name, value in checked.items():
            self.metadata.set_item(f"{_SPM}.{name}", value)

    def get_iv_parameter(self, name: str) -> float:
        """Read one acquisition parameter, with a clear error when it is missing.

        Parameters
        ----------
        name : str
            One of ``"temperature"`` (K), ``"contact_area"`` (m^2),
            ``"amplifier_gain"`` (V/A), ``"saturation_current"`` (A).

        Returns
        -------
        float
            The value in SI units.

        Raises
        ------
        ValueError
            For an unknown name, or when the value is not in the metadata (the
            message names the field and the setter to call).

        Examples
        --------
        >>> import numpy as np, hyperspy.api as hs
        >>> s = hs.signals.Signal1D(np.zeros((4, 5, 101)))
        >>> s.set_signal_type("IV_curve")
        >>> s.set_iv_parameters(temperature=295.0)
        >>> s.get_iv_parameter("temperature")
        295.0
        """
        if name not in IV_PARAMETERS:
            raise ValueError(
                f"unknown I-V parameter {name!r}; known: {', '.join(IV_PARAMETERS)}"
            )
        key = f"{_SPM}.{name}"
        if key not in self.metadata:
            unit, what = IV_PARAMETERS[name]
            raise ValueError(
                f"metadata.{key} ({what}, in {unit}) is not set; set it with "
                f"s.set_iv_parameters({name}=...) or pass it to the function explicitly"
            )
        return float(self.metadata.get_item(key))

    def get_iv_parameters(self) -> dict:
        """All acquisition parameters that are set, as ``{name: value}`` (SI units)."""
        out = {}
        for name in IV_PARAMETERS:
            key = f"{_SPM}.{name}"
            if key in self.metadata:
                out[name] = float(self.metadata.get_item(key))
        return out

    # --- analysis --------------------------------------------------------------

    def kmeans_cluster(self, n_clusters="auto", **kwargs):
        """K-means clustering of the I-V curves, clusters ordered by conductance.

        Thin wrapper over :func:`hyperspy_nanoml.cafm.cluster.kmeans_cluster`;
        see it for the parameters and the result.

        Examples
        --------
        >>> from hyperspy_nanoml.data.cafm import generate_iv_map
        >>> s, truth = generate_iv_map((32, 32), random_state=0)
        >>> result = s.kmeans_cluster(4, random_state=0, show_progressbar=False)
        >>> result.labels.data.shape
        (32, 32)
        """
        from hyperspy_nanoml.cafm.cluster import kmeans_cluster

        return kmeans_cluster(self, n_clusters=n_clusters, **kwargs)

    def physics_maps(self, **kwargs):
        """Zero-bias conductance, rectification ratio and onset voltage at every pixel.

        Thin wrapper over :func:`hyperspy_nanoml.cafm.maps.physics_maps`; returns a
        dict of images calibrated like the scan.
        """
        from hyperspy_nanoml.cafm.maps import physics_maps

        return physics_maps(self, **kwargs)


class LazyIVCurveSignal(LazySignal, IVCurveSignal):
    """Lazy twin of :class:`IVCurveSignal` (data in a dask array)."""

    _lazy = True
