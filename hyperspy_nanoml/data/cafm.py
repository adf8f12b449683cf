"""Generated conductive-AFM I-V maps with ground truth.

The map imitates Janas et al., Appl. Surf. Sci. 570, 150958 (2021): AuIn2
nanoelectrodes on InP(001) probed by conductive AFM, one I-V curve per pixel.
By default there are four classes of pixels (truth label in brackets, ordered
by zero-bias conductance, 0 = least conductive):

- [0] substrate leakage: a very high resistance (1e11 ohm, 20 pA at 2 V, below
  the default 30 pA noise);
- [1] Schottky electrodes: thermionic emission over a 0.43 eV barrier
  (ideality 1.15, contact area 1e-14 m^2, Richardson constant of n-InP
  9.6e4 A m^-2 K^-2, 300 K) with a 10 MOhm series resistance, evaluated with
  the exact Lambert-W solution :func:`hyperspy_nanoml.cafm.physics.thermionic_current`;
- [2] ohmic electrodes, 10 MOhm;
- [3] ohmic electrodes, 2.5 MOhm (a factor of 4 more conductive than [2]).

Electrodes are non-overlapping discs (radii of 1.5 px to a tenth of the map,
about 35 % of the area) on the substrate; every electrode class gets the same
number of discs. Each pixel's parameters scatter around the class values by
a few % (``scatter``, relative standard deviation: barrier height and ideality
normally, resistances log-normally). A fraction ``lost_contact`` of the
electrode pixels (the tip lost contact) carries a substrate curve but keeps
its electrode label (``truth["lost_contact"]`` marks them: they bound the
attainable label recovery). Gaussian current noise of standard deviation
``noise`` is added and, when ``saturation`` is given, the current is clipped at
+-``saturation`` like a saturated current amplifier.

Random numbers: the geometry and the per-pixel parameters come from
``numpy.random.default_rng([seed, 0])`` and ``([seed, 1])`` (drawn for the
whole map: a few numbers per pixel), the noise from one stream per scan row,
``default_rng([seed, 2, row])``. The eager map and the lazy one (whatever its
chunks) therefore hold the same values for the same ``random_state``, and the
lazy map is generated block by block, never whole.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral

import numpy as np

from hyperspy_nanoml._validation import resolve_random_state
from hyperspy_nanoml.cafm.physics import thermal_voltage, thermionic_current

__all__ = ["generate_iv_map", "DEFAULT_CLASSES"]

#: Richardson constant of n-InP, 120 A cm^-2 K^-2 x m*/m0 (0.08), in A m^-2 K^-2
RICHARDSON_N_INP = 9.6e4

#: The four default classes (see the module docstring). ``role="substrate"`` marks
#: the background class (and the curve of lost-contact pixels).
DEFAULT_CLASSES = (
    {"name": "substrate leakage", "kind": "ohmic", "resistance": 1e11, "role": "substrate"},
    {
        "name": "Schottky electrode",
        "kind": "schottky",
        "barrier_height": 0.43,
        "ideality": 1.15,
        "series_resistance": 1e7,
        "shunt_resistance": np.inf,
        "area": 1e-14,
        "richardson": RICHARDSON_N_INP,
        "temperature": 300.0,
    },
    {"name": "ohmic electrode, high resistance", "kind": "ohmic", "resistance": 1e7},
    {"name": "ohmic electrode, low resistance", "kind": "ohmic", "resistance": 2.5e6},
)

_DEFAULT_SCATTER = 0.02
_PIXEL_SIZE_NM = 20.0
_COVERAGE = 0.35
_TARGET_CHUNK_BYTES = 48 * 2**20


# --------------------------------------------------------------------- classes


def _seed_from(random_state) -> int:
    """The integer seed of the map (recorded; a RandomState instance draws one)."""
    rng, seed = resolve_random_state(random_state)
    return int(rng.randint(0, 2**31 - 1)) if seed is None else seed


def _positive(cls_name, key, value, allow_inf=False):
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"class {cls_name!r}: {key} must be a number, got {value!r}"
        ) from None
    if not value > 0 or (math.isinf(value) and not allow_inf):
        raise ValueError(
            f"class {cls_name!r}: {key} must be a positive number, got {value!r}"
        )
    return value


def _complete_classes(classes):
    """Validate class dicts, derive Is and G0, sort by zero-bias conductance."""
    if classes is None:
        classes = DEFAULT_CLASSES
    if isinstance(classes, dict) or not hasattr(classes, "__len__"):
        raise TypeError("classes must be a list of dicts (see DEFAULT_CLASSES)")
    if len(classes) < 2:
        raise ValueError(
            "classes needs at least 2 entries: a substrate and one electrode class"
        )
    out = []
    temperatures = set()
    for i, c in enumerate(classes):
        if not isinstance(c, dict):
            raise TypeError(f"classes[{i}] must be a dict, got {type(c).__name__}")
        c = copy.deepcopy(dict(c))
        name = c.setdefault("name", f"class {i}")
        kind = c.get("kind")
        scatter = float(c.setdefault("scatter", _DEFAULT_SCATTER))
        if not 0 <= scatter < 0.5:
            raise ValueError(
                f"class {name!r}: scatter must be in [0, 0.5), got {scatter!r}"
            )
        if kind == "ohmic":
            c["resistance"] = _positive(name, "resistance", c.get("resistance"))
            c["zero_bias_conductance"] = 1.0 / c["resistance"]
        elif kind == "schottky":
            t = _positive(name, "temperature", c.setdefault("temperature", 300.0))
            temperatures.add(t)
            n = _positive(name, "ideality", c.get("ideality", 1.0))
            c["ideality"] = n
            rs = float(c.setdefault("series_resistance", 0.0))
            if not rs >= 0 or math.isinf(rs):
                raise ValueError(
                    f"class {name!r}: series_resistance must be finite and >= 0"
                )
            c["series_resistance"] = rs
            c["shunt_resistance"] = _positive(
                name, "shunt_resistance", c.setdefault("shunt_resistance", np.inf), True
            )
            if "barrier_height" in c:
                c["area"] = _positive(name, "area", c.get("area"))
                c["richardson"] = _positive(
                    name, "richardson", c.setdefault("richardson", RICHARDSON_N_INP)
                )
                c["barrier_height"] = _positive(name, "barrier_height", c["barrier_height"])
                c["saturation_current"] = (
                    c["area"]
                    * c["richardson"]
                    * t**2
                    * math.exp(-c["barrier_height"] / thermal_voltage(t))
                )
            elif "saturation_current" in c:
                c["saturation_current"] = _positive(
                    name, "saturation_current", c["saturation_current"]
                )
            else:
                raise ValueError(
                    f"class {name!r}: a schottky class needs barrier_height (eV, with area "
                    "in m^2 and richardson in A m^-2 K^-2) or saturation_current (A)"
                )
            g_d = (
                c["saturation_current"] / (n * thermal_voltage(t))
                + 1.0 / c["shunt_resistance"]
            )
            c["zero_bias_conductance"] = 1.0 / (rs + 1.0 / g_d)
        else:
            raise ValueError(
                f"class {name!r}: kind must be 'ohmic' or 'schottky', got {kind!r}"
            )
        out.append(c)
    if len(temperatures) > 1:
        raise ValueError(
            f"all schottky classes must share one temperature, got {temperatures}"
        )
    order = np.argsort([c["zero_bias_conductance"] for c in out], kind="stable")
    out = [out[k] for k in order]
    g = [c["zero_bias_conductance"] for c in out]
    if len(set(g)) < len(g):
        raise ValueError(
            "two classes have the same zero-bias conductance: labels would be ambiguous"
        )
    roles = [k for k, c in enumerate(out) if c.get("role") == "substrate"]
    if len(roles) > 1:
        raise ValueError("only one class may have role='substrate'")
    substrate = roles[0] if roles else 0
    for k, c in enumerate(out):
        c["label"] = k
        c["role"] = "substrate" if k == substrate else "electrode"
    temperature = temperatures.pop() if temperatures else 300.0
    return out, substrate, temperature


# -------------------------------------------------------------------- geometry


def _electrode_discs(shape, n_electrode_classes, rng):
    """Non-overlapping discs: (centre y, centre x, radius, class slot), ~35 % cover."""
    ny, nx = shape
    r_min = 1.5
    r_max = max(3.0, 0.1 * min(ny, nx))
    mean_area = math.pi * (r_min**2 + r_min * r_max + r_max**2) / 3.0
    n_target = max(n_electrode_classes, int(round(_COVERAGE * ny * nx / mean_area)))
    cy, cx, rr = [], [], []
    attempts = 0
    while len(rr) < n_target and attempts < 50 * n_target:
        attempts += 1
        r = rng.uniform(r_min, r_max)
        y, x = rng.uniform(0, ny - 1), rng.uniform(0, nx - 1)
        if rr:
            d = np.hypot(np.asarray(cy) - y, np.asarray(cx) - x)
            if np.any(d < np.asarray(rr) + r + 1.0):
                continue
        cy.append(y)
        cx.append(x)
        rr.append(r)
    if len(rr) < n_electrode_classes:
        raise ValueError(
            f"shape {shape} is too small for {n_electrode_classes} electrode classes"
        )
    # the same number of discs per class, in random order
    slots = np.resize(np.arange(n_electrode_classes), len(rr))
    rng.shuffle(slots)
    return np.asarray(cy), np.asarray(cx), np.asarray(rr), slots


def _rasterise(shape, discs, electrode_labels, substrate):
    ny, nx = shape
    labels = np.full(shape, substrate, dtype=np.int64)
    for y, x, r, slot in zip(*discs):
        y0, y1 = max(0, int(y - r)), min(ny, int(y + r) + 2)
        x0, x1 = max(0, int(x - r)), min(nx, int(x + r) + 2)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        inside = (yy - y) ** 2 + (xx - x) ** 2 <= r**2
        labels[y0:y1, x0:x1][inside] = electrode_labels[slot]
    return labels


# -------------------------------------------------------------- pixel parameters


def _pixel_parameters(classes, curve_class, temperature, rng):
    """Per-pixel (Is, n, Rs, Rsh, barrier) with the class scatter, shape (ny, nx)."""
    shape = curve_class.shape
    z = rng.standard_normal((4,) + shape)
    i_s = np.zeros(shape)
    n = np.ones(shape)
    r_s = np.zeros(shape)
    r_sh = np.full(shape, np.inf)
    barrier = np.full(shape, np.nan)
    vt = thermal_voltage(temperature)
    for c in classes:
        m = curve_class == c["label"]
        s = c["scatter"]
        if c["kind"] == "ohmic":
            r_sh[m] = c["resistance"] * np.exp(s * z[2][m])
            continue
        n[m] = c["ideality"] * (1.0 + s * z[1][m])
        r_s[m] = c["series_resistance"] * np.exp(s * z[2][m])
        r_sh[m] = c["shunt_resistance"] * np.exp(s * z[3][m])
        if "barrier_height" in c:
            phi = c["barrier_height"] * (1.0 + s * z[0][m])
            barrier[m] = phi
            i_s[m] = c["area"] * c["richardson"] * temperature**2 * np.exp(-phi / vt)
        else:
            i_s[m] = c["saturation_current"] * np.exp(s * z[0][m])
    return i_s, n, r_s, r_sh, barrier


def _curves(params, bias, temperature, noise, saturation, seed, row0, col0):
    """Noisy (rows, cols, n_points) float32 currents of one block of the map."""
    i_s, n, r_s, r_sh = (params[..., k] for k in range(4))
    rows, cols = i_s.shape
    n_points = bias.size
    diode = i_s > 0
    conductance = np.where(diode, 0.0, 1.0 / (r_s + r_sh)).astype(np.float32)
    out = conductance[..., None] * bias.astype(np.float32)
    if np.any(diode):
        out[diode] = thermionic_current(
            bias,
            i_s[diode][:, None],
            n[diode][:, None],
            r_s[diode][:, None],
            r_sh[diode][:, None],
            temperature,
        )
    if noise > 0:
        for k in range(rows):  # one stream per scan row: chunk-independent values
            # the stream of a row is drawn from its first column: a prefix of the same
            # numbers whatever the column chunking
            rng = np.random.default_rng([seed, 2, row0 + k])
            draw = rng.standard_normal((col0 + cols, n_points), dtype=np.float32)
            out[k] += np.float32(noise) * draw[col0:]
    if saturation is not None:
        np.clip(out, -saturation, saturation, out=out)
    return out


def _block(params, block_info=None, *, bias, temperature, noise, saturation, seed):
    loc = block_info[0]["array-location"]
    return _curves(params, bias, temperature, noise, saturation, seed, loc[0][0], loc[1][0])


def _resolve_chunks(chunks, shape, n_points):
    ny, nx = shape
    if chunks is None or chunks == "auto":
        rows = max(1, _TARGET_CHUNK_BYTES // (4 * nx * n_points))
        return (min(rows, ny), nx)
    if isinstance(chunks, Integral):
        chunks = (int(chunks),)
    chunks = tuple(chunks)
    if not 1 <= len(chunks) <= 3:
        raise ValueError(
            f"chunks must be an int (rows per chunk) or a tuple, got {chunks!r}"
        )
    if len(chunks) == 3 and chunks[2] not in (-1, n_points):
        raise ValueError("the bias axis cannot be chunked: give chunks=(rows, cols) or -1")
    rows = ny if chunks[0] == -1 else chunks[0]
    cols = nx if len(chunks) < 2 or chunks[1] == -1 else chunks[1]
    if not (
        isinstance(rows, Integral) and isinstance(cols, Integral) and rows > 0 and cols > 0
    ):
        raise ValueError(f"chunks must hold positive ints (or -1), got {chunks!r}")
    return (min(int(rows), ny), min(int(cols), nx))


# ------------------------------------------------------------------ public API


def generate_iv_map(
    shape: tuple[int, int] = (64, 64),
    n_points: int = 201,
    bias_range: tuple[float, float] = (-2.0, 2.0),
    noise: float = 30e-12,
    lost_contact: float = 0.04,
    saturation: float | None = None,
    random_state=None,
    classes: list[dict] | None = None,
    lazy: bool = False,
    chunks=None,
):
    """Generate a conductive-AFM I-V map with known regions (see the module docstring).

    Parameters
    ----------
    shape : (int, int)
        Scan size (ny, nx) in pixels; pixels are 20 nm apart.
    n_points : int
        Bias points per curve (>= 3).
    bias_range : (float, float)
        First and last bias in V (the sweep runs from the first to the last).
    noise : float
        Standard deviation of the Gaussian current noise in A (>= 0).
    lost_contact : float
        Fraction (probability) in [0, 1) of electrode pixels that lost contact
        and carry a substrate curve.
    saturation : float, optional
        Amplifier saturation in A: currents are clipped to +-saturation.
    random_state : None, int, numpy Generator or RandomState
        Seed for reproducible maps; the integer seed used is recorded in
        ``metadata.Processing.generate_iv_map.random_state``.
    classes : list of dict, optional
        Class definitions, default :data:`DEFAULT_CLASSES`. Each dict has
        ``kind="ohmic"`` with ``resistance`` (ohm), or ``kind="schottky"`` with
        ``ideality``, ``series_resistance`` (ohm), ``shunt_resistance`` (ohm,
        default inf), ``temperature`` (K, default 300) and either
        ``barrier_height`` (eV) with ``area`` (m^2) and ``richardson``
        (A m^-2 K^-2) or ``saturation_current`` (A); optional ``name``,
        ``scatter`` (relative pixel-to-pixel standard deviation, default 0.02)
        and ``role="substrate"`` for the background class (default: the least
        conductive). Classes are sorted by zero-bias conductance.
    lazy : bool
        Return a lazy signal whose dask array is generated block by block.
    chunks : int or tuple, optional
        Rows per chunk, or (rows, cols); the bias axis is never chunked.
        Default: whole rows, about 48 MB per chunk.

    Returns
    -------
    signal : IVCurveSignal or LazyIVCurveSignal
        Current (A, float32) versus bias ("Bias", V) on calibrated scan axes
        ("x", "y", nm); temperature and, with a Schottky class given by its
        barrier, the contact area under ``metadata.Acquisition_instrument.SPM``
        (and ``saturation_current`` when ``saturation`` is given).
    truth : dict
        ``"labels"`` (ny, nx) int, 0 = least conductive class; ``"classes"``
        (list of dicts, index = label, with the class parameters, the derived
        ``saturation_current`` of Schottky classes, ``zero_bias_conductance``
        in S and ``n_pixels``); ``"lost_contact"`` (ny, nx) bool;
        ``"parameters"``: per-pixel maps ``saturation_current``, ``ideality``,
        ``series_resistance``, ``shunt_resistance`` (an ohmic pixel is
        ``saturation_current=0`` with its resistance as shunt) and
        ``barrier_height`` (eV, NaN where not a Schottky curve); ``"bias"``,
        ``"temperature"``, ``"random_state"`` (the integer seed).

    References
    ----------
    Janas et al., Appl. Surf. Sci. 570, 150958 (2021).

    Examples
    --------
    >>> s, truth = generate_iv_map((32, 32), random_state=0)
    >>> s.axes_manager.signal_axes[0].units
    'V'
    >>> int(truth["labels"].max())
    3
    """
    import hyperspy.api as hs

    if (
        not hasattr(shape, "__len__")
        or len(shape) != 2
        or not all(isinstance(k, Integral) and k >= 4 for k in shape)
    ):
        raise ValueError(f"shape must be two ints >= 4 (ny, nx), got {shape!r}")
    shape = (int(shape[0]), int(shape[1]))
    if not isinstance(n_points, Integral) or n_points < 3:
        raise ValueError(f"n_points must be an int >= 3, got {n_points!r}")
    b0, b1 = (float(b) for b in bias_range)
    if not (np.isfinite(b0) and np.isfinite(b1)) or b0 == b1:
        raise ValueError(
            f"bias_range must be two different finite voltages, got {bias_range!r}"
        )
    noise = float(noise)
    if not noise >= 0 or not np.isfinite(noise):
        raise ValueError(f"noise must be a finite current >= 0 in A, got {noise!r}")
    lost_contact = float(lost_contact)
    if not 0 <= lost_contact < 1:
        raise ValueError(f"lost_contact must be a fraction in [0, 1), got {lost_contact!r}")
    if saturation is not None:
        saturation = float(saturation)
        if not saturation > 0 or not np.isfinite(saturation):
            raise ValueError(
                f"saturation must be a positive current in A, got {saturation!r}"
            )
    seed = _seed_from(random_state)
    classes, substrate, temperature = _complete_classes(classes)
    chunk_shape = _resolve_chunks(chunks, shape, n_points) if lazy else None

    # geometry, lost contacts and per-pixel parameters (a few numbers per pixel)
    rng = np.random.default_rng([seed, 0])
    electrode_labels = [c["label"] for c in classes if c["role"] == "electrode"]
    discs = _electrode_discs(shape, len(electrode_labels), rng)
    labels = _rasterise(shape, discs, electrode_labels, substrate)
    lost = (labels != substrate) & (rng.random(shape) < lost_contact)
    curve_class = np.where(lost, substrate, labels)
    i_s, n, r_s, r_sh, barrier = _pixel_parameters(
        classes, curve_class, temperature, np.random.default_rng([seed, 1])
    )
    for c in classes:
        c["n_pixels"] = int(np.count_nonzero(labels == c["label"]))
    params = np.stack([i_s, n, r_s, r_sh], axis=-1)
    bias = np.linspace(b0, b1, n_points)

    kwargs = dict(
        bias=bias, temperature=temperature, noise=noise, saturation=saturation, seed=seed
    )
    if lazy:
        import dask.array as da

        p = da.from_array(params, chunks=chunk_shape + (4,), name=f"iv-params-{seed}")
        data = da.map_blocks(
            _block,
            p,
            chunks=p.chunks[:2] + ((n_points,),),
            dtype=np.float32,
            meta=np.empty((0, 0, 0), dtype=np.float32),
            **kwargs,
        )
        signal = hs.signals.Signal1D(data).as_lazy()
    else:
        data = _curves(params, bias, temperature, noise, saturation, seed, 0, 0)
        signal = hs.signals.Signal1D(data)

    am = signal.axes_manager
    for ax, name in zip(am.navigation_axes, ("x", "y")):
        ax.name, ax.units, ax.scale, ax.offset = name, "nm", _PIXEL_SIZE_NM, 0.0
    sa = am.signal_axes[0]
    sa.name, sa.units, sa.offset = "Bias", "V", b0
    sa.scale = (b1 - b0) / (n_points - 1)
    signal.metadata.General.title = "Generated C-AFM I-V map"
    signal.metadata.set_item("Signal.quantity", "Current (A)")
    signal.set_signal_type("IV_curve")
    spm = "Acquisition_instrument.SPM"
    signal.metadata.set_item(f"{spm}.temperature", float(temperature))
    areas = {c["area"] for c in classes if "area" in c}
    if len(areas) == 1:
        signal.metadata.set_item(f"{spm}.contact_area", float(areas.pop()))
    if saturation is not None:
        signal.metadata.set_item(f"{spm}.saturation_current", saturation)
    signal.metadata.set_item(
        "Processing.generate_iv_map",
        {
            "shape": list(shape),
            "n_points": int(n_points),
            "bias_range": [b0, b1],
            "noise": noise,
            "lost_contact": lost_contact,
            "saturation": saturation,
            "random_state": seed,
            "n_classes": len(classes),
            "lazy": bool(lazy),
        },
    )
    truth = {
        "labels": labels,
        "classes": classes,
        "lost_contact": lost,
        "parameters": {
            "saturation_current": i_s,
            "ideality": n,
            "series_resistance": r_s,
            "shunt_resistance": r_sh,
            "barrier_height": barrier,
        },
        "bias": bias,
        "temperature": temperature,
        "random_state": seed,
    }
    return signal, truth
