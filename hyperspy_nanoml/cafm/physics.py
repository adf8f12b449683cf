"""Diode physics of conductive-AFM I-V curves (pure numpy/scipy, no signal classes).

- :func:`thermionic_current`: the exact explicit Lambert-W solution of the
  diode equation with series and shunt resistance (never overflows).
- :func:`fit_diode`: ideality factor, series (and shunt) resistance, saturation
  current and the *apparent* Schottky barrier height of one I-V curve, with
  1-sigma uncertainties, started from :func:`cheung_estimate` and cross-checked
  by :func:`norde_estimate`.
- :func:`zero_bias_conductance`, :func:`rectification_ratio`,
  :func:`onset_voltage`: per-curve quantities vectorised over leading axes
  (``current`` of shape ``(..., n_points)``, one bias axis ``(n_points,)``), so
  they run on a whole map at once.
- :func:`schottky_emission_fit`: the Schottky-emission line ln J vs sqrt(E) of
  field-driven data, its slope and the implied optical permittivity.

Units are SI throughout: V, A, ohm, K, m^2, A m^-2 K^-2; barrier heights in eV.
Positive bias is the forward direction unless a function says otherwise.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.special import wrightomega

__all__ = [
    "thermal_voltage",
    "thermionic_current",
    "saturation_current_from_barrier",
    "barrier_from_saturation_current",
    "estimate_current_noise",
    "CheungEstimate",
    "cheung_estimate",
    "NordeEstimate",
    "norde_estimate",
    "DiodeFit",
    "fit_diode",
    "zero_bias_conductance",
    "rectification_ratio",
    "onset_voltage",
    "SchottkyEmissionFit",
    "schottky_emission_fit",
]

# CODATA 2018 exact SI values
ELEMENTARY_CHARGE = 1.602176634e-19  # C
BOLTZMANN = 1.380649e-23  # J/K
VACUUM_PERMITTIVITY = 8.8541878128e-12  # F/m
#: free-electron Richardson constant 4 pi q m k^2 / h^3, A m^-2 K^-2
RICHARDSON_FREE_ELECTRON = 1.20173e6

# below this argument wrightomega(x) == exp(x) to double precision (W(z) = z - z^2 + ...)
_OMEGA_EXP_LIMIT = -36.0


def thermal_voltage(temperature: float = 300.0) -> float:
    """Thermal voltage kT/q in V (0.025852 V at 300 K)."""
    return BOLTZMANN * float(temperature) / ELEMENTARY_CHARGE


def _omega(x: np.ndarray) -> np.ndarray:
    """Wright omega function, exp(x) where it equals it to rounding (faster)."""
    out = np.empty_like(x)
    small = x < _OMEGA_EXP_LIMIT
    out[small] = np.exp(x[small])
    big = ~small
    out[big] = wrightomega(x[big]).real
    return out


def thermionic_current(
    bias,
    saturation_current,
    ideality,
    series_resistance=0.0,
    shunt_resistance=np.inf,
    temperature: float = 300.0,
) -> np.ndarray:
    """Current of a diode with series and shunt resistance, exact explicit solution.

    Solves ``I = Is (exp((V - I Rs) / (n Vt)) - 1) + (V - I Rs) / Rsh`` for ``I``
    with the Lambert W function (Banwell & Jayakumar, Electron. Lett. 36, 291
    (2000); Ortiz-Conde, Garcia Sanchez & Muci, Solid-State Electron. 44, 1861
    (2000))::

        I = (n Vt / Rs) omega(x) + (V - Is Rsh) / (Rs + Rsh),
        x = ln(Is Rs Rsh / (n Vt (Rs + Rsh))) + Rsh (V + Is Rs) / (n Vt (Rs + Rsh)),

    where ``omega(x) = W(exp(x))`` is the Wright omega function
    (:func:`scipy.special.wrightomega`), evaluated from ``x`` itself so that no
    exponential of the forward bias is ever formed: it never overflows (at
    large forward bias ``omega(x) ~ x - ln x`` and ``I -> (V - ...) / Rs``).
    ``Rs = 0`` uses the explicit ideal-diode form, ``Is = 0`` the resistor
    ``V / (Rs + Rsh)``; ``Rsh = inf`` (no shunt) is handled exactly.

    Parameters
    ----------
    bias : array_like
        Applied bias V in V (positive = forward).
    saturation_current : array_like
        Is in A (>= 0).
    ideality : array_like
        Ideality factor n (> 0).
    series_resistance : array_like, optional
        Rs in ohm (>= 0), default 0.
    shunt_resistance : array_like, optional
        Rsh in ohm (> 0), default inf (no shunt).
    temperature : float, optional
        Temperature in K, default 300.

    All parameters broadcast against each other (e.g. ``bias`` of shape ``(n,)``
    and parameters of shape ``(ny, nx, 1)`` give ``(ny, nx, n)``).

    Returns
    -------
    numpy.ndarray
        Current in A (float64), the broadcast shape of the inputs.

    Examples
    --------
    >>> v = np.linspace(-1, 10, 5)
    >>> thermionic_current(v, 1e-12, 1.1, series_resistance=1e6)  # doctest: +SKIP
    """
    v, i_s, n, r_s, r_sh = np.broadcast_arrays(
        *(
            np.asarray(a, dtype=np.float64)
            for a in (
                bias,
                saturation_current,
                ideality,
                series_resistance,
                shunt_resistance,
            )
        )
    )
    if np.any(i_s < 0) or np.any(n <= 0) or np.any(r_s < 0) or np.any(r_sh <= 0):
        raise ValueError(
            "thermionic_current needs saturation_current >= 0, ideality > 0, "
            "series_resistance >= 0 and shunt_resistance > 0"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature!r}")
    a = n * thermal_voltage(temperature)
    g_sh = 1.0 / r_sh  # 0 for no shunt
    out = np.empty(v.shape, dtype=np.float64)

    lw = (i_s > 0) & (r_s > 0)  # the Lambert-W branch
    if np.any(lw):
        vv, ii, aa, rs, gg = v[lw], i_s[lw], a[lw], r_s[lw], g_sh[lw]
        f = 1.0 / (1.0 + rs * gg)  # Rsh / (Rs + Rsh), 1 without shunt
        x = np.log(ii * rs * f / aa) + f * (vv + ii * rs) / aa
        out[lw] = (aa / rs) * _omega(x) - ii + gg * f * (vv + ii * rs)

    ideal = (i_s > 0) & (r_s == 0)
    if np.any(ideal):
        with np.errstate(over="ignore"):
            out[ideal] = i_s[ideal] * np.expm1(v[ideal] / a[ideal]) + g_sh[ideal] * v[ideal]

    resistor = i_s == 0
    if np.any(resistor):
        out[resistor] = v[resistor] / (r_s[resistor] + r_sh[resistor])
    return out


def saturation_current_from_barrier(
    barrier_height, area, richardson, temperature: float = 300.0
) -> np.ndarray:
    """Thermionic-emission saturation current Is = A A* T^2 exp(-phi_B / (kT/q)).

    Parameters
    ----------
    barrier_height : array_like
        Barrier height phi_B in eV.
    area : float
        Contact area A in m^2.
    richardson : float
        Effective Richardson constant A* in A m^-2 K^-2 (free electron:
        :data:`RICHARDSON_FREE_ELECTRON`).
    temperature : float
        Temperature T in K.

    Returns
    -------
    numpy.ndarray
        Is in A.

    References
    ----------
    Sze & Ng, Physics of Semiconductor Devices, 3rd ed., Wiley (2007), ch. 3.

    Examples
    --------
    >>> saturation_current_from_barrier(0.5, 1e-14, 1.2e6)  # doctest: +SKIP
    """
    t = float(temperature)
    return (
        area * richardson * t**2 * np.exp(-np.asarray(barrier_height) / thermal_voltage(t))
    )


def barrier_from_saturation_current(
    saturation_current, area, richardson, temperature: float = 300.0
) -> np.ndarray:
    """Apparent barrier height phi_B = kT/q ln(A A* T^2 / Is) in eV.

    The inverse of :func:`saturation_current_from_barrier`; one decade of
    ``area`` moves the result by kT/q ln 10 (59.5 meV at 300 K).

    Examples
    --------
    >>> barrier_from_saturation_current(1e-12, 1e-14, 1.2e6)  # doctest: +SKIP
    """
    t = float(temperature)
    return thermal_voltage(t) * np.log(
        area * richardson * t**2 / np.asarray(saturation_current)
    )


# ------------------------------------------------------------------ validation


def _as_bias(bias, n_points: int | None = None, *, what: str = "bias") -> np.ndarray:
    b = np.asarray(bias, dtype=np.float64)
    if b.ndim != 1:
        raise ValueError(
            f"{what} must be one 1-D axis of n_points voltages shared by all curves, "
            f"got shape {b.shape}"
        )
    if n_points is not None and b.size != n_points:
        raise ValueError(
            f"{what} has {b.size} points but the curves have {n_points} (the last axis "
            "of current must be the bias axis)"
        )
    if b.size < 3:
        raise ValueError(f"{what} needs at least 3 points, got {b.size}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"{what} contains NaN or inf values; give a finite bias axis")
    d = np.diff(b)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise ValueError(
            f"{what} is not strictly monotonic (a forward-and-back sweep or repeated "
            "values?); split the sweep into its monotonic parts and pass one of them"
        )
    return b


def _as_curves(bias, current):
    """Validate; return (ascending bias, current view with ascending last axis)."""
    c = np.asarray(current)
    if c.ndim < 1:
        raise ValueError("current must be an array (..., n_points)")
    if not np.issubdtype(c.dtype, np.floating):
        c = c.astype(np.float64)
    b = _as_bias(bias, c.shape[-1])
    if c.size and np.all(np.isnan(c)):
        raise ValueError("current is all NaN: there is nothing to analyse")
    if b[0] > b[-1]:
        b, c = b[::-1], c[..., ::-1]
    return b, c


def estimate_current_noise(current, axis: int = -1) -> np.ndarray:
    """Robust standard deviation of white current noise along ``axis``.

    From the median absolute deviation of second differences
    (``I[k+1] - 2 I[k] + I[k-1]`` has variance 6 sigma^2 for white noise), so
    smooth parts of the curve (ohmic, reverse, series-resistance limited)
    hardly contribute. NaN values are ignored.

    Parameters
    ----------
    current : array_like
        Currents in A, (..., n_points).
    axis : int
        The bias axis.

    Returns
    -------
    numpy.ndarray
        sigma in A, the shape of ``current`` without ``axis``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> float(estimate_current_noise(rng.normal(0, 1e-11, 1000)))  # doctest: +SKIP
    1e-11
    """
    c = np.asarray(current, dtype=np.float64)
    d2 = np.diff(c, n=2, axis=axis)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN curves give NaN
        med = np.nanmedian(d2, axis=axis, keepdims=True)
        mad = np.nanmedian(np.abs(d2 - med), axis=axis)
    return 1.482602218505602 * mad / math.sqrt(6.0)


# ------------------------------------------------------------ start estimates


@dataclass
class CheungEstimate:
    """Result of :func:`cheung_estimate` (SI units; barrier in eV, NaN without area)."""

    ideality: float
    series_resistance: float
    series_resistance_slope: float
    saturation_current: float
    barrier_height: float
    n_points: int


def _forward_points(b, c, min_current):
    keep = (b > 0) & np.isfinite(c) & (c > min_current)
    return b[keep], c[keep]


def _forward_curve(bias, current, min_current, method):
    """One curve's forward points (bias > 0, current > the threshold) and the threshold.

    ``min_current`` None: 10 x the curve's white-noise level.
    """
    b, c = _as_curves(bias, current)
    if c.ndim != 1:
        raise ValueError(f"{method} takes one curve (1-D current)")
    if min_current is None:
        min_current = 10.0 * float(estimate_current_noise(c))
    v, i = _forward_points(b, c, max(float(min_current), 0.0))
    return v, i, min_current


def cheung_estimate(
    bias,
    current,
    *,
    temperature: float = 300.0,
    area: float | None = None,
    richardson: float | None = None,
    min_current: float | None = None,
) -> CheungEstimate:
    """Cheung & Cheung estimate of ideality, series resistance and barrier.

    For ``I >> Is`` the thermionic-emission diode with series resistance obeys
    ``V = I Rs + n kT/q ln(I / Is)``, so (Cheung & Cheung, Appl. Phys. Lett. 49,
    85 (1986))::

        dV/d(ln I) = Rs I + n kT/q                      (slope Rs, intercept n kT/q)
        H(I) = V - n kT/q ln(I / (A A* T^2)) = Rs I + n phi_B

    Both are straight lines in ``I``; they are fitted by least squares on the
    forward points (positive bias) with ``I > min_current``.
    ``dV/d(ln I)`` is taken between points a few samples apart so noise does
    not dominate it, against the logarithmic mean current of the two points
    (which makes the finite-difference form exact). Without ``area`` and ``richardson``, ``H`` is formed with
    ``A A* T^2 = 1 A`` and gives ``Is`` only (barrier NaN).

    Parameters
    ----------
    bias, current : array_like
        One curve: bias in V, current in A (1-D, same length).
    temperature : float
        K.
    area, richardson : float, optional
        Contact area (m^2) and Richardson constant (A m^-2 K^-2).
    min_current : float, optional
        Lowest current used, A; default 10x the estimated noise.

    Returns
    -------
    CheungEstimate
        ``ideality`` (from dV/dlnI), ``series_resistance`` (ohm, from H(I)),
        ``series_resistance_slope`` (ohm, from dV/dlnI), ``saturation_current`` (A),
        ``barrier_height`` (eV), ``n_points`` used.

    Raises
    ------
    ValueError
        Fewer than 4 forward points above ``min_current``.

    Examples
    --------
    >>> v = np.linspace(0, 2, 101)
    >>> i = thermionic_current(v, 1e-12, 1.2, 1e7)
    >>> round(cheung_estimate(v, i, min_current=1e-10).ideality, 1)  # doctest: +SKIP
    1.2
    """
    v, i, min_current = _forward_curve(bias, current, min_current, "cheung_estimate")
    vt = thermal_voltage(temperature)
    if v.size < 4:
        raise ValueError(
            f"too few forward points for the Cheung estimate: {v.size} with bias > 0 and "
            f"current > {min_current:.3g} A (need 4); extend the forward bias range or "
            "lower min_current"
        )
    ln_i = np.log(i)
    step = max(1, v.size // 8)
    dv = v[step:] - v[:-step]
    dln = ln_i[step:] - ln_i[:-step]
    ok = dln > 0
    if np.count_nonzero(ok) < 2:
        raise ValueError(
            "the forward current does not increase with bias: not a diode curve"
        )
    # the logarithmic mean of the two currents makes the secant exact:
    # dV / dlnI = Rs dI / dlnI + n kT/q holds for finite differences too
    i_mid = ((i[step:] - i[:-step]) / dln)[ok]
    y = (dv / dln)[ok]
    rs_1, n_vt = np.polyfit(i_mid, y, 1)
    n = n_vt / vt
    if not n > 0:
        # a slope without intercept information: take n from the low-current slope
        n = 1.0 / (vt * np.max(np.gradient(ln_i, v)))
    a_star = (
        1.0 if area is None or richardson is None else area * richardson * temperature**2
    )
    h = v - n * vt * np.log(i / a_star)
    rs_h, n_phi = np.polyfit(i, h, 1)
    saturation = a_star * math.exp(-n_phi / (n * vt))
    barrier = n_phi / n if a_star != 1.0 else float("nan")
    return CheungEstimate(
        ideality=float(n),
        series_resistance=float(rs_h),
        series_resistance_slope=float(rs_1),
        saturation_current=float(saturation),
        barrier_height=float(barrier),
        n_points=int(v.size),
    )


@dataclass
class NordeEstimate:
    """Result of :func:`norde_estimate` (barrier in eV, resistance in ohm)."""

    barrier_height: float
    series_resistance: float
    minimum_bias: float
    minimum_current: float
    gamma: float
    ideality: float


def norde_estimate(
    bias,
    current,
    *,
    area: float,
    richardson: float,
    temperature: float = 300.0,
    gamma: float = 2.0,
    ideality: float = 1.0,
    min_current: float | None = None,
) -> NordeEstimate:
    """Norde's barrier height and series resistance (with Bohlin's ideality).

    ``F(V) = V / gamma - kT/q ln(I(V) / (A A* T^2))`` has a minimum at
    ``(V0, I0)``; then (Norde, J. Appl. Phys. 50, 5052 (1979), for n = 1 and
    gamma = 2; Bohlin, J. Appl. Phys. 60, 1223 (1986), for any gamma > n)::

        phi_B = F(V0) + (gamma - n) / n (V0 / gamma - kT/q),
        Rs = (gamma - n) kT / (q I0).

    The minimum is located by a parabola through the lowest F and its
    neighbours.

    Parameters
    ----------
    bias, current : array_like
        One curve (V, A).
    area, richardson : float
        Contact area (m^2), Richardson constant (A m^-2 K^-2).
    temperature : float
        K.
    gamma : float
        Norde's gamma, must exceed the ideality.
    ideality : float
        Ideality factor n (1 in Norde's original method; take it from
        :func:`cheung_estimate` otherwise).
    min_current : float, optional
        Lowest current used, A; default 10x the estimated noise.

    Returns
    -------
    NordeEstimate

    Raises
    ------
    ValueError
        ``gamma <= ideality``, too few forward points, or a minimum of F at the
        end of the data (the curve does not reach the series-resistance regime:
        ``I0 = (gamma - n) kT / (q Rs)`` lies outside the measured currents).

    Examples
    --------
    >>> v = np.linspace(0, 2, 201)
    >>> i = thermionic_current(v, 1e-12, 1.0, 1e7)
    >>> est = norde_estimate(v, i, area=1e-14, richardson=9.6e4)  # doctest: +SKIP
    """
    v, i, min_current = _forward_curve(bias, current, min_current, "norde_estimate")
    if not gamma > ideality:
        raise ValueError(f"gamma ({gamma}) must exceed the ideality factor ({ideality})")
    vt = thermal_voltage(temperature)
    if v.size < 5:
        raise ValueError(
            f"too few forward points for the Norde estimate: {v.size} above "
            f"{min_current:.3g} A (need 5)"
        )
    a_star = area * richardson * temperature**2
    f = v / gamma - vt * np.log(i / a_star)
    k = int(np.argmin(f))
    if k == 0 or k == v.size - 1:
        raise ValueError(
            "the Norde function has its minimum at the end of the forward data: the curve "
            "does not reach the series-resistance regime for this gamma (try a larger gamma "
            "or a wider bias range)"
        )
    lo, hi = max(0, k - 2), min(v.size, k + 3)
    p2, p1, p0 = np.polyfit(v[lo:hi], f[lo:hi], 2)
    if p2 > 0:
        v0 = float(np.clip(-p1 / (2 * p2), v[lo], v[hi - 1]))
        f0 = float(np.polyval([p2, p1, p0], v0))
    else:
        v0, f0 = float(v[k]), float(f[k])
    i0 = float(np.exp(np.interp(v0, v, np.log(i))))
    n = float(ideality)
    barrier = f0 + (gamma - n) / n * (v0 / gamma - vt)
    rs = (gamma - n) * vt / i0
    return NordeEstimate(
        barrier_height=float(barrier),
        series_resistance=float(rs),
        minimum_bias=v0,
        minimum_current=i0,
        gamma=float(gamma),
        ideality=n,
    )


# ---------------------------------------------------------------- the diode fit


def _area_note(area, richardson, temperature):
    shift = thermal_voltage(temperature) * math.log(10.0) * 1e3
    if area is None or richardson is None:
        return (
            "no contact area / Richardson constant given: the barrier height is not "
            f"computed (one decade of area would move it by kT/q ln 10 = {shift:.1f} meV at "
            f"{temperature:g} K)"
        )
    return (
        f"apparent barrier phi_B = kT/q ln(A A* T^2 / Is) assuming contact area "
        f"A = {area:.3g} m^2 and Richardson constant A* = {richardson:.3g} A m^-2 K^-2 at "
        f"T = {temperature:g} K; one decade of area moves it by kT/q ln 10 = {shift:.1f} meV"
    )


@dataclass
class DiodeFit:
    """Result of :func:`fit_diode` (SI units; barrier height in eV).

    Every parameter has a 1-sigma uncertainty ``<name>_std`` from the Jacobian
    of the least-squares fit. ``barrier_height`` is the *apparent* barrier for
    the stated contact area (see ``note``). ``shunt_resistance`` is inf when no
    shunt was fitted. ``start`` holds the Cheung & Cheung and Norde estimates
    (dicts, or None when they could not be formed).
    """

    barrier_height: float
    barrier_height_std: float
    ideality: float
    ideality_std: float
    series_resistance: float
    series_resistance_std: float
    saturation_current: float
    saturation_current_std: float
    shunt_resistance: float
    shunt_resistance_std: float
    temperature: float
    area: float | None
    richardson: float | None
    polarity: str
    noise: float
    current_scale: float
    n_points: int
    n_forward: int
    residual_std: float
    success: bool
    message: str
    note: str
    parameter_names: tuple = ()
    covariance: np.ndarray = field(default=None, repr=False)
    start: dict = field(default_factory=dict, repr=False)
    excluded: dict = field(default_factory=dict)

    def current(self, bias) -> np.ndarray:
        """The fitted model current (A) at ``bias`` (V), in the data's polarity."""
        b = np.asarray(bias, dtype=np.float64)
        sign = 1.0 if self.polarity == "positive" else -1.0
        return sign * thermionic_current(
            sign * b,
            self.saturation_current,
            self.ideality,
            self.series_resistance,
            self.shunt_resistance,
            self.temperature,
        )

    def as_dict(self) -> dict:
        """The fit as a plain dict (covariance as nested lists)."""
        d = asdict(self)
        if self.covariance is not None:
            d["covariance"] = np.asarray(self.covariance).tolist()
        d["parameter_names"] = list(self.parameter_names)
        return d


def _clipped(c):
    """Points at the current's extremes repeated >= 3 times (amplifier clipping)."""
    mask = np.zeros(c.shape, dtype=bool)
    finite = np.isfinite(c)
    if not finite.any():
        return mask
    for ext in (np.nanmax(c), np.nanmin(c)):
        if ext == 0:
            continue
        at = finite & (np.abs(c - ext) <= 1e-6 * abs(ext))
        if np.count_nonzero(at) >= 3:
            mask |= at
    return mask


def _start_values(b, c, temperature, area, richardson, min_current):
    """Start (ln Is, n, Rs) from Cheung & Cheung, else from the curve's shape; Norde kept."""
    vt = thermal_voltage(temperature)
    start = {"cheung": None, "norde": None}
    try:
        ch = cheung_estimate(
            b, c, temperature=temperature, area=area, richardson=richardson,
            min_current=min_current,
        )  # fmt: skip
        start["cheung"] = asdict(ch)
    except ValueError:
        ch = None
    fwd_v, fwd_i = _forward_points(b, c, min_current)
    if ch is not None and 0.5 < ch.ideality < 20:
        n0, rs0, ln_is0 = (
            ch.ideality,
            max(ch.series_resistance, 0.0),
            math.log(ch.saturation_current),
        )
    else:
        # n from the steepest slope of ln I, Rs from the last secant minus the
        # diode's differential resistance, Is through the lowest point above noise
        n0 = float(
            np.clip(1.0 / (vt * np.max(np.gradient(np.log(fwd_i), fwd_v))), 1.0, 20.0)
        )
        secant = (fwd_v[-1] - fwd_v[-2]) / (fwd_i[-1] - fwd_i[-2])
        rs0 = max(0.0, float(secant) - n0 * vt / fwd_i[-1])
        k = int(np.argmin(fwd_i))
        ln_is0 = math.log(fwd_i[k]) - (fwd_v[k] - fwd_i[k] * rs0) / (n0 * vt)
    if area is not None and richardson is not None:
        try:
            nd = norde_estimate(
                b, c, area=area, richardson=richardson, temperature=temperature,
                gamma=max(2.0, n0 + 1.0), ideality=n0, min_current=min_current,
            )  # fmt: skip
            start["norde"] = asdict(nd)
        except ValueError:
            pass
    p0 = [float(np.clip(ln_is0, -150.0, 0.0)), float(np.clip(n0, 0.31, 49.0)), rs0]
    return p0, start


def fit_diode(
    bias,
    current,
    *,
    temperature: float = 300.0,
    area: float | None,
    richardson: float | None,
    fit_shunt: bool = False,
    noise: float | None = None,
    relative_noise: float = 0.02,
    saturation: float | None = None,
    polarity: str = "auto",
) -> DiodeFit:
    """Fit the thermionic-emission diode with series (and shunt) resistance.

    The model is the exact Lambert-W solution :func:`thermionic_current` of
    ``I = Is (exp((V - I Rs)/(n kT/q)) - 1) + (V - I Rs)/Rsh``. The parameters
    ``ln Is``, ``n``, ``Rs`` (and ``1/Rsh`` with ``fit_shunt``) are fitted by
    least squares (:func:`scipy.optimize.least_squares`, bounded) in the
    sign-preserving space ``asinh(I / I0)`` with ``I0 = noise / relative_noise``:
    for a current noise of ``noise`` (A) plus ``relative_noise`` (fraction)
    this makes every residual about equally uncertain, so the small currents
    of the exponential regime count as much as the large currents of the
    series-resistance regime (a linear fit would see only the latter, a
    logarithmic one cannot take zero or negative currents). The fit starts from
    the Cheung & Cheung estimate (Appl. Phys. Lett. 49, 85 (1986)); the Norde
    estimate (J. Appl. Phys. 50, 5052 (1979), Bohlin's gamma > n) is kept in
    ``start`` as a cross-check. The 1-sigma uncertainties come from the
    Jacobian at the solution, ``cov = s^2 (J^T J)^-1`` with ``s^2`` the residual
    variance. The apparent barrier is ``phi_B = kT/q ln(A A* T^2 / Is)``: it
    depends on the assumed area (one decade moves it by kT/q ln 10,
    59.5 meV at 300 K); the result's ``note`` states the assumption.

    NaN currents are ignored; clipped points (``|I| >= saturation``, or the
    extreme value repeated 3 or more times) are excluded and counted in
    ``excluded``.

    Parameters
    ----------
    bias : array_like
        Bias in V, strictly monotonic (1-D).
    current : array_like
        Current in A, same length.
    temperature : float
        Temperature in K.
    area : float or None
        Contact area in m^2 (None: no barrier height, NaN).
    richardson : float or None
        Effective Richardson constant in A m^-2 K^-2 (e.g. 1.2017e6 for free
        electrons, 9.6e4 for n-InP).
    fit_shunt : bool
        Also fit a shunt resistance (else infinite).
    noise : float, optional
        Standard deviation of the current noise in A; default estimated from
        the curve (:func:`estimate_current_noise`).
    relative_noise : float
        Relative (multiplicative) noise that sets ``I0``; default 0.02.
    saturation : float, optional
        Amplifier saturation in A: points with ``|I| >= saturation`` are excluded.
    polarity : {"auto", "positive", "negative"}
        The forward direction; "auto" takes the side with the larger current.

    Returns
    -------
    DiodeFit
        ``barrier_height`` (eV), ``ideality``, ``series_resistance`` (ohm),
        ``saturation_current`` (A), ``shunt_resistance`` (ohm, inf without
        shunt), each with ``*_std``; ``note`` (the area assumption), ``start``.

    Raises
    ------
    ValueError
        All-NaN current, a non-monotonic bias, every point saturated, or fewer
        than 5 forward points measurably above the noise.

    References
    ----------
    Banwell & Jayakumar, Electron. Lett. 36, 291 (2000); Ortiz-Conde, Garcia
    Sanchez & Muci, Solid-State Electron. 44, 1861 (2000); Cheung & Cheung,
    Appl. Phys. Lett. 49, 85 (1986); Norde, J. Appl. Phys. 50, 5052 (1979).

    Examples
    --------
    >>> v = np.linspace(-1, 2, 151)
    >>> i = thermionic_current(v, 1e-12, 1.15, 1e7)
    >>> fit = fit_diode(v, i, area=1e-14, richardson=9.6e4, noise=1e-12)
    >>> round(fit.ideality, 2)  # doctest: +SKIP
    1.15
    """
    if polarity not in ("auto", "positive", "negative"):
        raise ValueError(
            f"polarity must be 'auto', 'positive' or 'negative', got {polarity!r}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature!r}")
    for name, val in (("area", area), ("richardson", richardson)):
        if val is not None and not (val > 0 and np.isfinite(val)):
            raise ValueError(
                f"{name} must be a positive number (SI units) or None, got {val!r}"
            )
    if not relative_noise > 0:
        raise ValueError(f"relative_noise must be > 0, got {relative_noise!r}")
    c_in = np.asarray(current, dtype=np.float64)
    if c_in.ndim != 1:
        raise ValueError(
            f"fit_diode fits one curve: current must be 1-D, got shape {c_in.shape} "
            "(average the curves of a cluster first, or loop over a few)"
        )
    b, c = _as_curves(bias, c_in)
    c = c.copy()
    n_nan = int(np.count_nonzero(np.isnan(c)))
    clipped = _clipped(c)
    if saturation is not None:
        clipped |= np.abs(c) >= float(saturation) * (1 - 1e-9)
    n_clipped = int(np.count_nonzero(clipped))
    finite = np.isfinite(c)
    if n_clipped and n_clipped >= np.count_nonzero(finite) - 2:
        raise ValueError(
            f"{n_clipped} of {np.count_nonzero(finite)} points are saturated (amplifier "
            "clipping): nothing left to fit; measure with a lower gain or a smaller bias range"
        )
    use = finite & ~clipped
    b, c = b[use], c[use]

    if polarity == "auto":
        pos = np.max(c[b > 0], initial=0.0)
        neg = np.max(-c[b < 0], initial=0.0)
        polarity = "negative" if neg > pos else "positive"
    if polarity == "negative":
        b, c = -b[::-1], -c[::-1]

    if noise is None:
        noise = float(estimate_current_noise(c))
    noise = float(noise)
    if not noise >= 0 or not np.isfinite(noise):
        raise ValueError(f"noise must be a finite current >= 0 in A, got {noise!r}")
    scale_floor = 1e-9 * float(np.max(np.abs(c))) if c.size else 0.0
    noise_eff = max(noise, scale_floor, 1e-300)
    n_forward = int(np.count_nonzero((b > 0) & (c > 3.0 * noise_eff)))
    n_par = 4 if fit_shunt else 3
    if n_forward < n_par + 2:
        raise ValueError(
            f"too few forward points: {n_forward} with bias > 0 and current above 3x the noise "
            f"({3 * noise_eff:.3g} A), need {n_par + 2}; extend the forward bias range, check the "
            "polarity, or the curve is not a diode (use zero_bias_conductance for ohmic curves)"
        )

    vt = thermal_voltage(temperature)
    p0, start = _start_values(b, c, temperature, area, richardson, 3.0 * noise_eff)
    i0 = noise_eff / relative_noise
    target = np.arcsinh(c / i0)

    def model(p):
        g_sh = p[3] if fit_shunt else 0.0
        r_sh = np.inf if g_sh <= 0 else 1.0 / g_sh
        return thermionic_current(b, math.exp(p[0]), p[1], p[2], r_sh, temperature)

    def residuals(p):
        return np.arcsinh(model(p) / i0) - target

    lower, upper = [-200.0, 0.3, 0.0], [5.0, 50.0, np.inf]
    if fit_shunt:
        neg = b < 0
        g0 = 0.0
        if np.count_nonzero(neg) >= 2:
            g0 = max(0.0, float(np.polyfit(b[neg], c[neg], 1)[0]))
        p0.append(g0)
        lower.append(0.0)
        upper.append(np.inf)
    trials = [p0]
    norde = start["norde"]
    if norde is not None and norde["series_resistance"] > 0:
        ln_is_norde = math.log(
            float(saturation_current_from_barrier(norde["barrier_height"], area, richardson,
                                                  temperature))
        )  # fmt: skip
        trials.append([float(np.clip(ln_is_norde, -150.0, 0.0)), p0[1],
                       norde["series_resistance"]] + p0[3:])  # fmt: skip
    else:
        trials.append([p0[0], p0[1], 0.5 * p0[2]] + p0[3:])
    best = None
    for trial in trials:  # Cheung & Cheung's start and Norde's (or a lower Rs)
        res = least_squares(
            residuals,
            trial,
            bounds=(lower, upper),
            x_scale="jac",
            method="trf",
            max_nfev=2000,
        )
        if best is None or res.cost < best.cost:
            best = res
    res = best
    p = res.x
    m = b.size
    dof = max(m - n_par, 1)
    s2 = 2.0 * res.cost / dof
    jac = res.jac
    try:
        cov = np.linalg.inv(jac.T @ jac) * s2
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(jac.T @ jac) * s2
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    i_s = math.exp(p[0])
    if area is not None and richardson is not None:
        barrier = float(barrier_from_saturation_current(i_s, area, richardson, temperature))
        barrier_std = vt * std[0]
    else:
        barrier = barrier_std = float("nan")
    if fit_shunt and p[3] > 0:
        r_sh, r_sh_std = 1.0 / p[3], std[3] / p[3] ** 2
    else:
        r_sh, r_sh_std = float("inf"), float("nan")
    names = ("ln_saturation_current", "ideality", "series_resistance") + (
        ("shunt_conductance",) if fit_shunt else ()
    )
    return DiodeFit(
        barrier_height=barrier,
        barrier_height_std=float(barrier_std),
        ideality=float(p[1]),
        ideality_std=float(std[1]),
        series_resistance=float(p[2]),
        series_resistance_std=float(std[2]),
        saturation_current=i_s,
        saturation_current_std=float(i_s * std[0]),
        shunt_resistance=float(r_sh),
        shunt_resistance_std=float(r_sh_std),
        temperature=float(temperature),
        area=None if area is None else float(area),
        richardson=None if richardson is None else float(richardson),
        polarity=polarity,
        noise=noise,
        current_scale=float(i0),
        n_points=int(m),
        n_forward=n_forward,
        residual_std=float(math.sqrt(s2)),
        success=bool(res.success),
        message=str(res.message),
        note=_area_note(area, richardson, temperature),
        parameter_names=names,
        covariance=cov,
        start=start,
        excluded={"nan": n_nan, "saturated": n_clipped},
    )


# ------------------------------------------------- per-curve quantities on maps


def _linear_fit_masked(x, y, w):
    """Slope, intercept of y = a x + b along the last axis with 0/1 weights ``w``."""
    sw = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w * x).sum(axis=-1) / sw
        ym = (w * y).sum(axis=-1) / sw
        dx = x - xm[..., None]
        sxx = (w * dx * dx).sum(axis=-1)
        sxy = (w * dx * (y - ym[..., None])).sum(axis=-1)
        slope = sxy / sxx
    return slope, ym - slope * xm, sw, sxx


def zero_bias_conductance(bias, current, window: float | None = None) -> np.ndarray:
    """Zero-bias conductance dI/dV at V = 0, per curve (S).

    The slope of a straight line ``I = G V + I_offset`` fitted by least squares
    to the points with ``|V| <= window`` (an offset current does not bias it).
    Vectorised over the leading axes of ``current``.

    Parameters
    ----------
    bias : array_like
        The bias axis in V, (n_points,), strictly monotonic, spanning 0 V.
    current : array_like
        Currents in A, (..., n_points). NaN points are left out of each fit.
    window : float, optional
        Half-width of the fit window in V. Default: 2.5 % of the largest
        ``|bias|``, at least two bias steps (5 points around 0 V on a uniform
        axis); a wider window sees the diode's curvature.

    Returns
    -------
    numpy.ndarray
        G in S, shape ``current.shape[:-1]``; NaN for a curve with fewer than
        2 finite points in the window.

    Raises
    ------
    ValueError
        A bias axis that does not span 0 V, fewer than 3 bias points in the
        window, an all-NaN current or mismatched shapes.

    Examples
    --------
    >>> v = np.linspace(-1, 1, 101)
    >>> zero_bias_conductance(v, v[None, :] / np.array([[1e6], [2e6]]))
    array([1.e-06, 5.e-07])
    """
    b, c = _as_curves(bias, current)
    if not b[0] <= 0 <= b[-1]:
        raise ValueError(
            f"the bias axis runs from {b[0]:g} to {b[-1]:g} V and does not span 0 V: "
            "there is no zero-bias conductance to measure"
        )
    if window is None:
        step = float(np.min(np.abs(np.diff(b))))
        window = max(0.025 * float(np.max(np.abs(b))), 2.0 * step) * (1 + 1e-9)
    if not window > 0:
        raise ValueError(f"window must be a positive voltage, got {window!r}")
    sel = np.flatnonzero(np.abs(b) <= window)
    if sel.size < 3:
        raise ValueError(
            f"only {sel.size} bias points within +-{window:g} V of 0 V (need 3): widen window"
        )
    y = np.asarray(c[..., sel], dtype=np.float64)
    w = np.isfinite(y).astype(np.float64)
    y = np.where(w > 0, y, 0.0)
    x = b[sel]
    slope, _, sw, sxx = _linear_fit_masked(np.broadcast_to(x, y.shape), y, w)
    return np.where((sw >= 2) & (sxx > 0), slope, np.nan)[()]


def _values_at(b, c, v):
    """Linear interpolation of c (..., n) on ascending b at the voltage v."""
    k = int(np.clip(np.searchsorted(b, v), 1, b.size - 1))
    t = (v - b[k - 1]) / (b[k] - b[k - 1])
    return (1.0 - t) * np.asarray(c[..., k - 1], np.float64) + t * np.asarray(
        c[..., k], np.float64
    )


def rectification_ratio(bias, current, at: float | None = None) -> np.ndarray:
    """Rectification ratio ``|I(+V) / I(-V)|`` per curve.

    Currents at +-``at`` are linearly interpolated between the neighbouring
    bias points. Vectorised over the leading axes of ``current``.

    Parameters
    ----------
    bias : array_like
        Bias axis in V, (n_points,), strictly monotonic.
    current : array_like
        Currents in A, (..., n_points).
    at : float, optional
        The bias magnitude |V| in V; default the largest symmetric bias,
        ``min(max(bias), -min(bias))``.

    Returns
    -------
    numpy.ndarray
        The ratio (dimensionless), shape ``current.shape[:-1]``: > 1 when the
        positive bias conducts better; inf where ``I(-V) = 0``, NaN where a
        current at +-``at`` is NaN.

    Raises
    ------
    ValueError
        The bias axis does not reach both polarities, or ``at`` is outside it.

    Examples
    --------
    >>> v = np.linspace(-2, 2, 201)
    >>> i = thermionic_current(v, 1e-12, 1.1, 1e7)
    >>> float(rectification_ratio(v, i)) > 1e3
    True
    """
    b, c = _as_curves(bias, current)
    largest = min(float(b[-1]), float(-b[0]))
    if not largest > 0:
        raise ValueError(
            f"the bias axis ({b[0]:g} to {b[-1]:g} V) does not reach both polarities: no "
            "rectification ratio"
        )
    if at is None:
        at = largest
    at = abs(float(at))
    if not 0 < at <= largest * (1 + 1e-12):
        raise ValueError(
            f"at must be in (0, {largest:g}] V (both polarities measured), got {at}"
        )
    at = min(at, largest)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(_values_at(b, c, at) / _values_at(b, c, -at))[()]


def onset_voltage(
    bias, current, threshold: float = 1e-9, polarity: str = "positive"
) -> np.ndarray:
    """Onset (turn-on) voltage: the bias beyond which |I| stays above ``threshold``.

    On the chosen side of 0 V the last crossing of ``threshold`` (walking away
    from 0 V) is located and interpolated linearly, so an isolated noise spike
    before the turn-on does not count. Vectorised over the leading axes.

    Parameters
    ----------
    bias : array_like
        Bias axis in V, (n_points,), strictly monotonic.
    current : array_like
        Currents in A, (..., n_points).
    threshold : float
        Current magnitude in A (default 1 nA).
    polarity : {"positive", "negative"}
        Which side of 0 V; on the negative side the onset is negative and
        ``-I`` is compared with ``threshold``.

    Returns
    -------
    numpy.ndarray
        Onset bias in V, shape ``current.shape[:-1]``; NaN where the current
        never exceeds ``threshold`` at the end of the sweep (no onset within the
        measured range); the first bias of the side where it is above the
        threshold everywhere.

    Examples
    --------
    >>> v = np.linspace(-2, 2, 401)
    >>> float(onset_voltage(v, v / 1e9, threshold=1e-9))  # an ohmic 1 GOhm curve
    1.0
    """
    if polarity not in ("positive", "negative"):
        raise ValueError(f"polarity must be 'positive' or 'negative', got {polarity!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be a positive current in A, got {threshold!r}")
    b, c = _as_curves(bias, current)
    # views (no copy of the map): the side of 0 V, walking away from 0 V
    if polarity == "positive":
        first = int(np.searchsorted(b, 0.0, side="left"))
        v, y, sign = b[first:], c[..., first:], 1.0
    else:
        last = int(np.searchsorted(b, 0.0, side="right"))
        v, y, sign = -b[:last][::-1], c[..., :last][..., ::-1], -1.0
    if v.size < 2:
        raise ValueError(f"fewer than 2 bias points on the {polarity} side of 0 V")
    below = ~(sign * y > threshold)  # NaN counts as below: it is no evidence of conduction
    m = v.size
    any_below = below.any(axis=-1)
    last_below = m - 1 - np.argmax(below[..., ::-1], axis=-1)
    k = np.clip(last_below, 0, m - 2)
    y0 = sign * np.take_along_axis(y, k[..., None], axis=-1)[..., 0].astype(np.float64)
    y1 = sign * np.take_along_axis(y, (k + 1)[..., None], axis=-1)[..., 0].astype(
        np.float64
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.clip((threshold - y0) / (y1 - y0), 0.0, 1.0)
    t = np.where(np.isfinite(t), t, 1.0)
    onset = v[k] + t * (v[k + 1] - v[k])
    onset = np.where(any_below, onset, v[0])
    onset = np.where(any_below & (last_below == m - 1), np.nan, onset)
    return (onset if polarity == "positive" else -onset)[()]


# ------------------------------------------------------------ Schottky emission


@dataclass
class SchottkyEmissionFit:
    """Result of :func:`schottky_emission_fit`; arrays of the curves' leading shape.

    ``slope`` in (m/V)^0.5, ``intercept`` (ln of A/m^2), ``permittivity`` the
    implied optical (high-frequency) relative permittivity, ``barrier_height``
    in eV, each with ``*_std`` (1 sigma); ``r_squared`` and ``n_points`` per fit.
    """

    slope: np.ndarray
    slope_std: np.ndarray
    intercept: np.ndarray
    intercept_std: np.ndarray
    permittivity: np.ndarray
    permittivity_std: np.ndarray
    barrier_height: np.ndarray
    barrier_height_std: np.ndarray
    r_squared: np.ndarray
    n_points: np.ndarray
    temperature: float
    richardson: float
    note: str


def schottky_emission_fit(
    sqrt_field,
    ln_j,
    temperature: float = 300.0,
    *,
    richardson: float = RICHARDSON_FREE_ELECTRON,
    sqrt_field_range: tuple[float, float] | None = None,
) -> SchottkyEmissionFit:
    """Fit the Schottky-emission line ln J vs sqrt(E) of field-driven conduction.

    Schottky (thermionic) emission over a barrier lowered by the image force
    (Sze & Ng, Physics of Semiconductor Devices, 3rd ed. (2007), sec. 4.3.4;
    applied to BiFeO3 e.g. by Pabst et al., Appl. Phys. Lett. 90, 072902
    (2007))::

        ln J = ln(A* T^2) - q Phi / kT + (q / kT) sqrt(q / (4 pi eps0 eps_r)) sqrt(E)

    A straight line ``ln J = slope sqrt(E) + intercept`` is fitted by least
    squares to each curve; then ``eps_r = q / (4 pi eps0 (slope kT/q)^2)`` (the
    optical permittivity: the image force acts on the fast electron) and
    ``Phi = kT/q (ln(A* T^2) - intercept)``. Uncertainties are the standard
    errors of the line (residual variance), propagated. Vectorised: ``ln_j``
    may be ``(..., n_points)`` (one fit per pixel).

    Parameters
    ----------
    sqrt_field : array_like
        sqrt(E) in (V/m)^0.5, (n_points,) or the shape of ``ln_j``.
    ln_j : array_like
        Natural log of the current density J in A/m^2, (..., n_points);
        non-finite values are left out.
    temperature : float
        K.
    richardson : float
        Effective Richardson constant A* in A m^-2 K^-2 (default free electron,
        1.2017e6) for the barrier height.
    sqrt_field_range : (float, float), optional
        Only points with sqrt(E) in this range are fitted.

    Returns
    -------
    SchottkyEmissionFit
        NaN permittivity where the slope is not positive (the data do not
        follow Schottky emission there), NaN everything for a curve with fewer
        than 3 points.

    Examples
    --------
    >>> x = np.linspace(8.6e3, 1.1e4, 50)
    >>> fit = schottky_emission_fit(x, 2.0 + 7.4e-4 * x)  # doctest: +SKIP
    >>> round(float(fit.permittivity), 1)  # doctest: +SKIP
    3.9
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature!r}")
    y = np.asarray(ln_j, dtype=np.float64)
    if y.ndim < 1:
        raise ValueError("ln_j must be an array (..., n_points)")
    x = np.asarray(sqrt_field, dtype=np.float64)
    if x.ndim == 1 and x.size != y.shape[-1]:
        raise ValueError(
            f"sqrt_field has {x.size} points but ln_j has {y.shape[-1]} on its last axis"
        )
    try:
        x = np.broadcast_to(x, y.shape)
    except ValueError:
        raise ValueError(
            f"sqrt_field of shape {x.shape} does not match ln_j of shape {y.shape}"
        ) from None
    if np.any(x < 0):
        raise ValueError("sqrt_field must be >= 0 ((V/m)^0.5)")
    w = np.isfinite(y) & np.isfinite(x)
    if sqrt_field_range is not None:
        lo, hi = sqrt_field_range
        w &= (x >= lo) & (x <= hi)
    if not w.any():
        raise ValueError(
            "no finite (sqrt_field, ln_j) points to fit"
            + (" in sqrt_field_range" if sqrt_field_range is not None else "")
        )
    wf = w.astype(np.float64)
    y0 = np.where(w, y, 0.0)
    x0 = np.where(w, x, 0.0)
    slope, intercept, m, sxx = _linear_fit_masked(x0, y0, wf)
    with np.errstate(invalid="ignore", divide="ignore"):
        fit = slope[..., None] * x0 + intercept[..., None]
        rss = (wf * (y0 - fit) ** 2).sum(axis=-1)
        ym = (wf * y0).sum(axis=-1) / m
        tss = (wf * (y0 - ym[..., None]) ** 2).sum(axis=-1)
        s2 = rss / (m - 2)
        xm = (wf * x0).sum(axis=-1) / m
        slope_std = np.sqrt(s2 / sxx)
        intercept_std = np.sqrt(s2 * (1.0 / m + xm**2 / sxx))
        r2 = 1.0 - rss / tss
    ok = m >= 3
    slope = np.where(ok, slope, np.nan)
    intercept = np.where(ok, intercept, np.nan)
    slope_std = np.where(ok, slope_std, np.nan)
    intercept_std = np.where(ok, intercept_std, np.nan)
    vt = thermal_voltage(temperature)
    with np.errstate(invalid="ignore", divide="ignore"):
        eps = ELEMENTARY_CHARGE / (4 * np.pi * VACUUM_PERMITTIVITY * (slope * vt) ** 2)
        eps = np.where(slope > 0, eps, np.nan)
        eps_std = 2.0 * eps * slope_std / np.abs(slope)
    barrier = vt * (np.log(richardson * temperature**2) - intercept)
    slope, slope_std, intercept, intercept_std, eps, eps_std, barrier, r2, m = (
        np.asarray(a)[()]
        for a in (
            slope,
            slope_std,
            intercept,
            intercept_std,
            eps,
            eps_std,
            barrier,
            np.where(ok, r2, np.nan),
            m.astype(np.int64),
        )
    )
    return SchottkyEmissionFit(
        slope=slope,
        slope_std=slope_std,
        intercept=intercept,
        intercept_std=intercept_std,
        permittivity=eps,
        permittivity_std=eps_std,
        barrier_height=barrier,
        barrier_height_std=vt * np.asarray(intercept_std)[()],
        r_squared=r2,
        n_points=m,
        temperature=float(temperature),
        richardson=float(richardson),
        note=(
            f"barrier from the intercept with A* = {richardson:.4g} A m^-2 K^-2 at "
            f"{temperature:g} K (an A* ten times smaller lowers it by kT/q ln 10 = "
            f"{vt * math.log(10) * 1e3:.1f} meV)"
        ),
    )
