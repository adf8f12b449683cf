"""Generated SEM-EDS spectra and spectrum images with ground truth.

A spectrum is the expected continuum plus every characteristic line of the excited
families, each a Gaussian of the detector's width at its energy, integrated over the
channels, with Poisson counting noise::

    lambda[ch] = B[ch] + sum_l N_l (Phi((E_hi - E_l)/s_l) - Phi((E_lo - E_l)/s_l))

- ``N_l``: expected detected counts of line ``l``
  (:func:`hyperspy_nanoml.eds.generation.line_intensities`: Bote-Salvat cross sections,
  xraydb yields and line weights, XPP absorption and Reed fluorescence, detector
  efficiency), for the dose probe current x live time;
- ``s_l``: Gaussian sigma from :meth:`Detector.fwhm` (Fiori & Newbury 1978);
- ``B``: the continuum (:func:`hyperspy_nanoml.eds.generation.continuum`, Castellano 2004,
  absorbed, times the detector efficiency);
- ``[E_lo, E_hi]``: a channel (the axis value is the channel centre).

A spectrum image mixes the expected spectra of pure phases linearly with per-pixel
fractions (``maps``): lambda[y, x] = sum_p maps[p, y, x] lambda_p. This is the
linear-mixing model of blind source separation (Jany et al., Nano Lett. 17, 6520 (2017)),
exact for phases side by side in the interaction volume and an approximation for layered
ones.

Noise: ``numpy.random.default_rng([seed, block])`` per block of scan rows, so the eager
signal and its lazy twin hold the same counts for the same ``random_state``.

Example
-------
>>> from hyperspy_nanoml.data.eds import simulate_spectrum
>>> s, truth = simulate_spectrum({"Fe": 0.7, "Ni": 0.3}, beam_energy=20.0, random_state=0)
>>> s.axes_manager[-1].units, sorted(truth["line_counts"])[:2]
('keV', ['Fe_Ka', 'Fe_Kb'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import ndtr

from hyperspy_nanoml._validation import resolve_random_state
from hyperspy_nanoml.eds import xray_data as xd
from hyperspy_nanoml.eds.detector import Detector
from hyperspy_nanoml.eds.generation import continuum, family_intensities, line_intensities

__all__ = [
    "ADM6005A",
    "simulate_spectrum",
    "simulate_spectrum_image",
    "expected_spectrum",
    "au_in_nanowires",
]

# nominal composition (mass fractions, summing to 0.9955) of the NIST glass
# ADM-6005a whose measured spectra are the real-data check of quantify(); from
# NeXLCore.jl data/composition.csv (public domain), row "ADM6005a"
ADM6005A = {
    "O": 0.3398,
    "Al": 0.0664,
    "Si": 0.0405,
    "Ca": 0.0683,
    "Ti": 0.0713,
    "Zn": 0.1055,
    "Ge": 0.3037,
}

_GENERATOR_VERSION = 1
_CHUNK_BYTES = 64 * 2**20  # lazy blocks of scan rows, ~64 MB of float32


def _seed(random_state) -> int:
    """The integer seed of ``random_state`` (a numpy RandomState gives one it draws)."""
    rng, seed = resolve_random_state(random_state)
    return int(rng.randint(0, 2**31 - 1)) if seed is None else seed


def _acquisition(beam_energy, takeoff_angle, live_time, probe_current) -> dict:
    """The acquisition parameters as floats, in the order the records list them."""
    return {
        "beam_energy": float(beam_energy),
        "takeoff_angle": float(takeoff_angle),
        "live_time": float(live_time),
        "probe_current": float(probe_current),
    }


def _positive(value, name, unit, allow_zero=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    ok = math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        raise ValueError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
            f"number ({unit}), got {value!r}"
        )
    return v


def _axis(offset, scale, size):
    offset = float(offset)
    scale = _positive(scale, "scale", "keV per channel")
    if not (
        isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size >= 16
    ):
        raise ValueError(f"size must be an integer number of channels >= 16, got {size!r}")
    if not math.isfinite(offset):
        raise ValueError(f"offset must be a finite energy (keV), got {offset!r}")
    return offset + scale * np.arange(int(size))


def _peaks(lines: Mapping[str, float], energies: np.ndarray, det: Detector, scale: float):
    """Sum over lines of N_l times the Gaussian integrated over each channel."""
    if not lines:
        return np.zeros(energies.shape)
    names = list(lines)
    e_l = np.array([xd.line_energy(n) for n in names])
    n_l = np.array([lines[n] for n in names], dtype=float)
    s_l = np.asarray(det.sigma_keV(e_l), dtype=float)
    edges = np.concatenate([energies - scale / 2.0, [energies[-1] + scale / 2.0]])
    cdf = ndtr((edges[None, :] - e_l[:, None]) / s_l[:, None])
    return n_l @ np.diff(cdf, axis=1)


def expected_spectrum(
    composition_wt: Mapping[str, float] | str,
    *,
    beam_energy: float,
    takeoff_angle: float = 35.0,
    live_time: float = 60.0,
    probe_current: float = 1.0,
    detector: Detector | None = None,
    offset: float = 0.0,
    scale: float = 0.01,
    size: int = 2048,
    families=None,
) -> tuple[np.ndarray, dict]:
    """Noise-free expected counts per channel and their parts.

    Parameters are those of :func:`simulate_spectrum`.

    Returns
    -------
    (expected, parts): ``expected`` (size,) float64; ``parts`` a dict with ``energy``
    (channel centres, keV), ``continuum`` (size,), ``line_counts`` (line -> expected
    counts) and ``detector``.

    Example
    -------
    >>> lam, parts = expected_spectrum("MgO", beam_energy=15.0, size=1024)
    >>> sorted(parts["line_counts"])
    ['Mg_Ka', 'Mg_Kb', 'O_Ka']
    """
    e0 = _positive(beam_energy, "beam_energy", "keV")
    live = _positive(live_time, "live_time", "s")
    current = _positive(probe_current, "probe_current", "nA")
    det = Detector() if detector is None else detector
    if not isinstance(det, Detector):
        raise TypeError(
            f"detector must be a Detector or None, got {type(detector).__name__}"
        )
    energy = _axis(offset, scale, size)
    dose = live * current
    lines = line_intensities(
        composition_wt, e0, takeoff_angle, det, dose, families=families
    )
    cont = continuum(
        composition_wt, e0, takeoff_angle, energy, det, dose, channel_width=scale
    )
    expected = cont + _peaks(lines, energy, det, float(scale))
    return expected, {
        "energy": energy,
        "continuum": cont,
        "line_counts": lines,
        "detector": det,
    }


def _make_signal(
    data,
    energy_offset,
    scale,
    det,
    line_counts,
    *,
    beam_energy,
    takeoff_angle,
    live_time,
    probe_current,
):
    import exspy

    if hasattr(data, "dask") or type(data).__module__.startswith("dask"):
        s = exspy.signals.LazyEDSSEMSpectrum(data)
    else:
        s = exspy.signals.EDSSEMSpectrum(data)
    ax = s.axes_manager.signal_axes[0]
    ax.name, ax.units, ax.offset, ax.scale = (
        "Energy",
        "keV",
        float(energy_offset),
        float(scale),
    )
    s.set_microscope_parameters(
        beam_energy=beam_energy,
        live_time=live_time,
        tilt_stage=0.0,
        azimuth_angle=det.azimuth_angle,
        elevation_angle=takeoff_angle,
        energy_resolution_MnKa=det.fwhm_mn_ka,
    )
    s.metadata.set_item("Acquisition_instrument.SEM.beam_current", float(probe_current))
    det.replace(elevation_angle=takeoff_angle).write_metadata(s)
    s.metadata.set_item("Signal.quantity", "X-rays (Counts)")
    # the elements that emit lines (H, He, Li have none in the tables)
    emitting = sorted({line.split("_")[0] for line in line_counts})
    if emitting:
        try:
            s.add_elements(emitting)
            s.add_lines()
        except (KeyError, ValueError):  # an element exspy has no lines for
            fams = family_intensities(line_counts)
            s.metadata.set_item("Sample.elements", emitting)
            s.metadata.set_item(
                "Sample.xray_lines",
                sorted(
                    xd.principal_line(
                        el,
                        max(
                            (f for e, f in fams if e == el),
                            key=lambda f, el=el: fams[(el, f)],
                        ),
                    )[0]
                    for el in emitting
                ),
            )
    return s


def simulate_spectrum(
    composition_wt: Mapping[str, float] | str,
    *,
    beam_energy: float,
    takeoff_angle: float = 35.0,
    live_time: float = 60.0,
    probe_current: float = 1.0,
    detector: Detector | None = None,
    offset: float = 0.0,
    scale: float = 0.01,
    size: int = 2048,
    noise: bool = True,
    random_state=None,
    families=None,
):
    """A generated bulk SEM-EDS spectrum with known line intensities.

    Parameters
    ----------
    composition_wt : dict or str
        Mass fractions (element -> fraction) or a chemical formula ("AuIn2").
    beam_energy : float
        keV.
    takeoff_angle : float
        Degrees (stored as the detector elevation with zero stage tilt).
    live_time : float
        Seconds.
    probe_current : float
        nA (``metadata.Acquisition_instrument.SEM.beam_current``).
    detector : Detector, optional
        Default :class:`~hyperspy_nanoml.eds.detector.Detector()` (SDD, AP3.3-type window,
        130 eV at Mn Ka, 0.03 sr).
    offset, scale : float
        Energy of channel 0 and channel width (keV).
    size : int
        Number of channels.
    noise : bool
        Poisson counts (default) or the expectation itself.
    random_state : int, numpy Generator or None
        Seed of the Poisson noise; recorded in
        ``metadata.Processing.simulate_spectrum.random_state``.
    families : optional
        Families to include (see :func:`~hyperspy_nanoml.eds.generation.line_intensities`);
        default: all excited families with lines above 0.1 keV.

    Returns
    -------
    (EDSSEMSpectrum, truth)
        ``truth``: ``line_counts`` (line -> expected counts, whole peak, even if partly off
        the axis), ``family_counts`` ((element, family) -> expected counts),
        ``composition`` (the mass fractions given), ``detector`` (the
        :class:`Detector`), ``continuum`` and ``expected`` (arrays per channel),
        ``beam_energy``, ``takeoff_angle``, ``live_time``, ``probe_current``,
        ``dose_nA_s``, ``random_state`` (the seed used).

    References
    ----------
    See :mod:`hyperspy_nanoml.eds.generation`.

    Example
    -------
    >>> s, truth = simulate_spectrum("AuIn2", beam_energy=6.5, live_time=30, random_state=1)
    >>> s.metadata.Sample.xray_lines
    ['Au_Ma', 'In_La']
    """
    expected, parts = expected_spectrum(
        composition_wt,
        beam_energy=beam_energy,
        takeoff_angle=takeoff_angle,
        live_time=live_time,
        probe_current=probe_current,
        detector=detector,
        offset=offset,
        scale=scale,
        size=size,
        families=families,
    )
    seed = _seed(random_state)
    if noise:
        data = np.random.default_rng([seed, 0]).poisson(expected).astype(np.float64)
    else:
        data = expected.copy()
    comp = xd.check_composition(composition_wt, "composition_wt")
    det = parts["detector"]
    acq = _acquisition(beam_energy, takeoff_angle, live_time, probe_current)
    s = _make_signal(data, offset, scale, det, parts["line_counts"], **acq)
    s.metadata.General.title = f"Simulated EDS spectrum ({_formula_title(comp)})"
    s.metadata.set_item(
        "Processing.simulate_spectrum",
        {
            "composition_wt": dict(comp),
            **acq,
            "noise": bool(noise),
            "random_state": seed,
            "generator_version": _GENERATOR_VERSION,
        },
    )
    truth = {
        "line_counts": dict(parts["line_counts"]),
        "family_counts": family_intensities(parts["line_counts"]),
        "composition": dict(comp),
        "detector": det,
        "continuum": parts["continuum"],
        "expected": expected,
        **acq,
        "dose_nA_s": acq["live_time"] * acq["probe_current"],
        "random_state": seed,
    }
    return s, truth


def _formula_title(comp: Mapping[str, float]) -> str:
    total = sum(comp.values())
    return ", ".join(f"{el} {100 * w / total:.1f} wt%" for el, w in comp.items())


def _check_maps(maps) -> np.ndarray:
    m = np.asarray(maps, dtype=float)
    if m.ndim != 3:
        raise ValueError(
            f"maps must have shape (n_phases, ny, nx) (mixing fractions), got shape {m.shape}"
        )
    if m.shape[0] < 1 or m.shape[1] < 1 or m.shape[2] < 1:
        raise ValueError(f"maps is empty (shape {m.shape})")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError("maps must hold finite, non-negative mixing fractions")
    return m


def simulate_spectrum_image(
    maps,
    compositions: Sequence[Mapping[str, float] | str],
    *,
    beam_energy: float,
    takeoff_angle: float = 35.0,
    live_time: float = 0.05,
    probe_current: float = 1.0,
    detector: Detector | None = None,
    offset: float = 0.0,
    scale: float = 0.01,
    size: int = 1024,
    pixel_size: float = 10.0,
    pixel_units: str = "nm",
    noise: bool = True,
    random_state=None,
    lazy: bool = False,
    phase_names: Sequence[str] | None = None,
):
    """A generated SEM-EDS spectrum image: pure-phase spectra mixed by known maps.

    Parameters
    ----------
    maps : array_like (n_phases, ny, nx)
        Mixing fractions of each phase in each pixel (usually summing to 1).
    compositions : sequence of dict or str
        One composition (mass fractions or formula) per phase.
    beam_energy, takeoff_angle : float
        keV, degrees.
    live_time : float
        Live time per pixel (s); the dose per pixel is ``live_time * probe_current``.
    probe_current : float
        nA.
    detector : Detector, optional
    offset, scale, size
        Energy axis (keV, keV/channel, channels).
    pixel_size : float
        Scan step, in ``pixel_units`` (default 10 nm).
    noise : bool
        Poisson counts (float32) or the expectation.
    random_state : int, numpy Generator or None
        Seed; the noise of each block of scan rows comes from
        ``default_rng([seed, first_row])``, so eager and lazy agree.
    lazy : bool
        Return a lazy signal (dask, blocks of whole scan rows, ~64 MB each).
    phase_names : sequence of str, optional

    Returns
    -------
    (EDSSEMSpectrum (ny, nx | size), truth)
        ``truth``: ``maps`` (n_phases, ny, nx), ``spectra`` (n_phases, size) expected
        spectra of the pure phases for the dose of one pixel, ``line_counts`` (list, one
        dict per phase, per pixel dose), ``compositions``, ``phase_names``, ``detector``,
        ``dose_nA_s`` (per pixel), ``random_state``.

    Example
    -------
    >>> import numpy as np
    >>> maps = np.zeros((2, 8, 8)); maps[0] = 1.0; maps[0, :, 4:] = 0.3; maps[1] = 1 - maps[0]
    >>> s, truth = simulate_spectrum_image(maps, ["InSb", "AuIn2"], beam_energy=6.5,
    ...                                    random_state=0)
    >>> s.data.shape
    (8, 8, 1024)
    """
    m = _check_maps(maps)
    comps = list(compositions) if not isinstance(compositions, (str, Mapping)) else None
    if comps is None or len(comps) != m.shape[0]:
        raise ValueError(
            f"compositions must be a sequence with one composition per phase "
            f"({m.shape[0]} for maps of shape {m.shape}), got {compositions!r}"
        )
    names = (
        [f"phase {i}" for i in range(m.shape[0])]
        if phase_names is None
        else list(phase_names)
    )
    if len(names) != m.shape[0]:
        raise ValueError(f"phase_names needs {m.shape[0]} names, got {len(names)}")
    _positive(pixel_size, "pixel_size", pixel_units)
    spectra, lines = [], []
    det = Detector() if detector is None else detector
    for comp in comps:
        lam, parts = expected_spectrum(
            comp,
            beam_energy=beam_energy,
            takeoff_angle=takeoff_angle,
            live_time=live_time,
            probe_current=probe_current,
            detector=det,
            offset=offset,
            scale=scale,
            size=size,
        )
        spectra.append(lam)
        lines.append(parts["line_counts"])
    spectra = np.asarray(spectra, dtype=np.float32)
    seed = _seed(random_state)
    n_phases, ny, nx = m.shape
    maps32 = m.astype(np.float32)
    row_bytes = nx * int(size) * 4
    rows = int(max(1, min(ny, _CHUNK_BYTES // max(row_bytes, 1))))

    def block(y0, y1):
        lam = np.einsum("pyx,pc->yxc", maps32[:, y0:y1], spectra, optimize=True)
        if not noise:
            return lam
        rng = np.random.default_rng([seed, y0])
        return rng.poisson(lam).astype(np.float32)

    if lazy:
        import dask
        import dask.array as da

        starts = list(range(0, ny, rows))
        blocks = [
            da.from_delayed(
                dask.delayed(block)(y0, min(ny, y0 + rows)),
                shape=(min(ny, y0 + rows) - y0, nx, int(size)),
                dtype=np.float32,
            )
            for y0 in starts
        ]
        data = da.concatenate(blocks, axis=0)
    else:
        data = np.concatenate([block(y0, min(ny, y0 + rows)) for y0 in range(0, ny, rows)])
    all_lines: dict = {}
    for counts in lines:
        for line, v in counts.items():
            all_lines[line] = all_lines.get(line, 0.0) + v
    acq = _acquisition(beam_energy, takeoff_angle, live_time, probe_current)
    s = _make_signal(data, offset, scale, det, all_lines, **acq)
    for ax, name in zip(s.axes_manager.navigation_axes, ("x", "y")):
        ax.name, ax.units, ax.scale, ax.offset = name, pixel_units, float(pixel_size), 0.0
    s.metadata.General.title = "Simulated EDS spectrum image"
    s.metadata.set_item(
        "Processing.simulate_spectrum_image",
        {
            "compositions": [dict(xd.check_composition(c)) for c in comps],
            "phase_names": names,
            **acq,
            "noise": bool(noise),
            "random_state": seed,
            "generator_version": _GENERATOR_VERSION,
        },
    )
    truth = {
        "maps": m,
        "spectra": spectra,
        "line_counts": lines,
        "compositions": [dict(xd.check_composition(c)) for c in comps],
        "phase_names": names,
        "detector": det,
        "beam_energy": float(beam_energy),
        "takeoff_angle": float(takeoff_angle),
        "dose_nA_s": float(live_time) * float(probe_current),
        "random_state": seed,
    }
    return s, truth


def au_in_nanowires(
    shape: tuple[int, int] = (48, 64),
    *,
    pixel_size: float = 10.0,
    n_wires: int = 3,
    wire_width: float = 60.0,
    interaction_fwhm: float = 120.0,
    beam_energy: float = 6.5,
    takeoff_angle: float = 35.0,
    live_time: float = 0.02,
    probe_current: float = 1.0,
    detector: Detector | None = None,
    scale: float = 0.01,
    size: int = 1024,
    noise: bool = True,
    random_state=None,
    lazy: bool = False,
):
    """AuIn2 nanowires on InSb(001) at 6.5 kV, after Jany et al., Nano Lett. 17, 6520 (2017).

    Straight wires (AuIn2, width ``wire_width`` nm) run across an InSb substrate along
    [110]-like directions (horizontal and inclined). The X-rays of a pixel come from an
    interaction volume wider than the wires: the wire fraction of a pixel is the wire mask
    blurred by a Gaussian of FWHM ``interaction_fwhm`` nm, so wire pixels always mix with
    the substrate (In occurs in both phases) and the purest wire pixel stays below 1.
    Counts per pixel are low (default ~300: 20 ms at 1 nA; ``live_time=0.001`` gives
    ~15, the level of real Bruker maps).

    Parameters
    ----------
    shape : (ny, nx)
        Scan size in pixels.
    pixel_size : float
        nm.
    n_wires : int
        Number of wires.
    wire_width, interaction_fwhm : float
        nm.
    beam_energy, takeoff_angle, live_time, probe_current, detector, scale, size, noise,
    random_state, lazy
        As :func:`simulate_spectrum_image` (the wire geometry depends on ``random_state``
        too).

    Returns
    -------
    (EDSSEMSpectrum, truth)
        As :func:`simulate_spectrum_image`, phases ``["InSb substrate", "AuIn2 wires"]``,
        plus ``wire_mask`` (ny, nx) bool (the wires' footprint) and
        ``atomic_percent`` (list of dicts: In 50 / Sb 50 and Au 33.3 / In 66.7).

    Example
    -------
    >>> s, truth = au_in_nanowires((24, 32), random_state=0)
    >>> truth["phase_names"]
    ['InSb substrate', 'AuIn2 wires']
    """
    from scipy.ndimage import gaussian_filter

    ny, nx = (int(v) for v in shape)
    if ny < 4 or nx < 4:
        raise ValueError(f"shape must be at least (4, 4) pixels, got {shape!r}")
    if not (isinstance(n_wires, (int, np.integer)) and n_wires >= 1):
        raise ValueError(f"n_wires must be a positive integer, got {n_wires!r}")
    px = _positive(pixel_size, "pixel_size", "nm")
    width = _positive(wire_width, "wire_width", "nm")
    fwhm = _positive(interaction_fwhm, "interaction_fwhm", "nm")
    seed = _seed(random_state)
    rng = np.random.default_rng([seed, 1_000_003])
    yy, xx = np.mgrid[0:ny, 0:nx] * px
    mask = np.zeros((ny, nx), bool)
    # supersample the footprint 4 x 4 for partial pixels
    sub = (np.arange(4) + 0.5) / 4.0 * px - px / 2
    cover = np.zeros((ny, nx))
    for i in range(int(n_wires)):
        angle = rng.choice([0.0, 0.0, math.pi / 4, -math.pi / 4])
        y_c = (i + 0.5 + rng.uniform(-0.2, 0.2)) / n_wires * ny * px
        x_c = rng.uniform(0.3, 0.7) * nx * px
        n = np.array([-math.sin(angle), math.cos(angle)])
        frac = np.zeros((ny, nx))
        for dy in sub:
            for dx in sub:
                d = (xx + dx - x_c) * n[0] + (yy + dy - y_c) * n[1]
                frac += np.abs(d) <= width / 2
        frac /= sub.size**2
        cover = np.maximum(cover, frac)
        mask |= frac >= 0.5
    wire = gaussian_filter(
        cover, sigma=fwhm / px / (2 * math.sqrt(2 * math.log(2))), mode="nearest"
    )
    wire = np.clip(wire, 0.0, 1.0)
    maps = np.stack([1.0 - wire, wire])
    s, truth = simulate_spectrum_image(
        maps,
        [xd.parse_formula("InSb"), xd.parse_formula("AuIn2")],
        beam_energy=beam_energy,
        takeoff_angle=takeoff_angle,
        live_time=live_time,
        probe_current=probe_current,
        detector=detector,
        scale=scale,
        size=size,
        pixel_size=px,
        noise=noise,
        random_state=seed,
        lazy=lazy,
        phase_names=["InSb substrate", "AuIn2 wires"],
    )
    s.metadata.General.title = "Simulated AuIn2 nanowires on InSb (6.5 kV)"
    s.metadata.set_item(
        "Processing.au_in_nanowires",
        {
            "shape": [ny, nx],
            "pixel_size": px,
            "n_wires": int(n_wires),
            "wire_width": width,
            "interaction_fwhm": fwhm,
            "random_state": seed,
        },
    )
    truth["wire_mask"] = mask
    truth["atomic_percent"] = [{"In": 50.0, "Sb": 50.0}, {"Au": 100 / 3, "In": 200 / 3}]
    return s, truth
