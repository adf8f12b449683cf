"""Generated scanning precession electron diffraction (SPED) data with ground truth.

The data set imitates pyxem's demo 1 (a GaAs nanowire with twinned zinc-blende
segments and a wurtzite segment, van Helvoort et al.): a 4D signal of
``nav_shape`` diffraction patterns of ``pattern_size`` squared pixels.

Model (expected counts of pattern ``i`` at pixel ``q``)::

    lambda[i, q] = thickness[i] * sum_k maps[i, k] * patterns[k, q] + beam[q]

- ``patterns`` (k x p x p): kinematic spot patterns of the phases (Gaussian
  spots on a 2-D reciprocal lattice, integrated over each pixel, plus a weak
  diffuse background), each summing to ``counts`` (the thin carbon film to
  0.6 ``counts``). Phase 0 is zinc-blende GaAs
  seen along [1-10]; phase 1 is its twin, the mirror of phase 0 about the
  [111] growth axis (vertical in the pattern; both share the 111 row of spots);
  phase 2 is wurtzite GaAs along [11-20] (its 0002 spot nearly coincides with
  the zinc-blende 111 spot); phase 3 is an amorphous carbon film (two broad
  rings).
- ``maps`` (nav x k): phase fractions, summing to at most 1 (0 in vacuum). The
  wire runs vertically through the scan; its segments are separated by
  parallel, inclined boundaries; across the first (a twin boundary inclined
  through the foil) the two twins mix linearly over a wide band (the overlap
  region).
- ``thickness`` (nav): a smooth multiplicative scale (thicker in the middle of
  the wire, tapering along it).
- ``beam`` (p x p): the direct beam, a soft-edged disk with a faint halo
  (a Gaussian tail of 2 % of the disk level, 1.2 px wide), slightly off the
  pattern centre, ``beam_counts`` in total (about two orders of magnitude
  brighter per pixel than the brightest spot). It does not depend on the
  position.

Counts are Poisson distributed (``noise="poisson"``, stored as ``uint16``,
saturating at 65535 like a detector) or the expectation itself
(``noise=None``, ``float32``). Noise is drawn row by row of the scan from
``numpy.random.default_rng([seed, row])``, so the eager signal, its lazy twin
(whatever the number of rows per chunk) and the ``.zspy`` file written by
:func:`write_sped_zspy` hold exactly the same values for the same
``random_state``. Only the noise depends on ``random_state``.

Pixel coordinates follow the image convention: ``x`` is the column, ``y`` the
row, and the centre of pixel ``(row, col)`` is at ``(x, y) = (col, row)``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import ndtr

__all__ = ["SPEDTruth", "make_sped_phases", "write_sped_zspy", "sped_nav_shape"]

_GENERATOR_VERSION = 2
_PHASE_NAMES = (
    "zinc-blende [1-10]",
    "zinc-blende twin [1-10]",
    "wurtzite [11-20]",
    "amorphous carbon",
)
# reciprocal field of view: the pattern spans +-12 1/nm whatever its size
_HALF_FOV = 12.0  # 1/nm
_SCAN_STEP = 2.5  # nm
_BEAM_RADIUS = 0.9  # 1/nm, disk edge at half maximum
_SPOT_SIGMA = 0.25  # 1/nm
_A_ZB = 0.5653  # nm, GaAs zinc-blende
_A_WZ, _C_WZ = 0.3996, 0.6574  # nm, GaAs wurtzite
_F_GA, _F_AS = 31.0, 33.0  # atomic numbers as scattering strengths
_BEAM_OFFSET = (0.6, -0.35)  # px at 64 px, scaled with the pattern size


@dataclass
class SPEDTruth:
    """Ground truth of a generated SPED data set (see the module docstring).

    Attributes
    ----------
    patterns : ndarray, shape (n_phases, p, p), float32
        Noise-free phase patterns (expected counts at unit fraction and unit
        thickness), direct beam excluded.
    maps : ndarray, shape nav_shape + (n_phases,), float32
        Phase fractions; they sum to at most 1 (0 in vacuum).
    thickness : ndarray, shape nav_shape, float32
        Multiplicative scale on the diffracted counts.
    direct_beam : ndarray, shape (p, p), float32
        Expected counts of the direct beam (the same in every pattern).
    direct_beam_centre : tuple of float
        ``(x, y)`` in pixels (column, row) of the beam disk centre.
    direct_beam_radius : float
        Radius of the beam disk (edge at half maximum) in pixels; a faint halo
        extends a few pixels beyond it.
    n_phases : int
    phase_names : tuple of str
    regions : dict of str -> bool ndarray (nav_shape)
        ``"vacuum"`` (no phase), ``"overlap"`` (two or more phases above 5 %),
        and ``"pure_<k>"`` (phase k above 99 %).
    scale : float
        Reciprocal pixel size in 1/nm.
    params : dict
        The generator's parameters.
    """

    patterns: np.ndarray
    maps: np.ndarray
    thickness: np.ndarray
    direct_beam: np.ndarray
    direct_beam_centre: tuple
    direct_beam_radius: float
    n_phases: int
    phase_names: tuple
    regions: dict = field(repr=False)
    scale: float = 0.0
    params: dict = field(default_factory=dict)

    @property
    def nav_shape(self):
        return self.thickness.shape

    @property
    def loadings(self):
        """``maps * thickness``: what an NMF loading should be proportional to."""
        return self.maps * self.thickness[..., None]

    def model(self, rows=None):
        """Noise-free expected counts, ``nav_shape + (p, p)`` (float32).

        ``rows`` (a slice of scan rows) limits the computation to those rows.
        """
        rows = slice(None) if rows is None else rows
        loadings = self.loadings[rows]
        p = self.patterns.shape[-1]
        flat = loadings.reshape(-1, self.n_phases) @ self.patterns.reshape(
            self.n_phases, -1
        )
        flat += self.direct_beam.reshape(1, -1)
        return flat.reshape(loadings.shape[:-1] + (p, p))


# --------------------------------------------------------------------------- patterns


def _integrated_gaussian_1d(centres, sigma, size):
    """Fraction of unit Gaussians centred at ``centres`` falling in each pixel."""
    edges = np.arange(size + 1, dtype=np.float64) - 0.5
    cdf = ndtr((edges[None, :] - np.asarray(centres, dtype=np.float64)[:, None]) / sigma)
    return np.diff(cdf, axis=1)


def _render_spots(gx, gy, intensity, centre, scale, size):
    """Sum of pixel-integrated Gaussian spots at reciprocal positions (1/nm)."""
    sigma = _SPOT_SIGMA / scale
    px = centre[0] + np.asarray(gx) / scale
    py = centre[1] + np.asarray(gy) / scale
    keep = (
        (px > -4 * sigma) & (px < size - 1 + 4 * sigma) & (py > -4 * sigma)
        & (py < size - 1 + 4 * sigma)
    )  # fmt: skip
    ex = _integrated_gaussian_1d(px[keep], sigma, size)
    ey = _integrated_gaussian_1d(py[keep], sigma, size)
    return np.einsum("s,sy,sx->yx", np.asarray(intensity)[keep], ey, ex)


def _radius_grid(centre, size, supersample=1):
    """Distance (px) of (sub)pixel centres to ``centre``; mean over subpixels later."""
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    coords = (np.arange(size)[:, None] + offsets[None, :]).ravel()
    dy = coords[:, None] - centre[1]
    dx = coords[None, :] - centre[0]
    return np.hypot(dx, dy)


def _supersampled(function, centre, size, supersample=5):
    values = function(_radius_grid(centre, size, supersample))
    return values.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def _decay(g):
    """Kinematic intensity fall-off with |g| (form factor and Debye-Waller)."""
    return np.exp(-((g / 7.0) ** 2))


def _zinc_blende_spots():
    """(gx, gy, I) of GaAs zinc-blende along [1-10], [111] pointing up (+y)."""
    h, ell = np.meshgrid(np.arange(-12, 13), np.arange(-12, 13), indexing="ij")
    h, ell = h.ravel(), ell.ravel()
    all_odd = (h % 2 == 1) & (ell % 2 == 1)
    all_even = (h % 2 == 0) & (ell % 2 == 0)
    strong = all_even & ((2 * h + ell) % 4 == 0)
    weak = all_even & ((2 * h + ell) % 4 == 2)
    f2 = np.zeros(h.shape)
    f2[all_odd] = _F_GA**2 + _F_AS**2
    f2[strong] = (_F_GA + _F_AS) ** 2
    f2[weak] = (_F_GA - _F_AS) ** 2
    # in-plane components along [110] and [001]
    e1 = h * np.sqrt(2.0) / _A_ZB
    e2 = ell / _A_ZB
    # rotate so that [111] = (sqrt2, 1)/sqrt3 in (e1, e2) points along +y
    growth = np.array([np.sqrt(2.0), 1.0]) / np.sqrt(3.0)
    gy = e1 * growth[0] + e2 * growth[1]
    gx = e1 * growth[1] - e2 * growth[0]
    g = np.hypot(gx, gy)
    keep = (f2 > 0) & (g > 0)
    return gx[keep], gy[keep], (f2 * _decay(g))[keep]


def _wurtzite_spots():
    """(gx, gy, I) of GaAs wurtzite along [11-20], c (the growth axis) up."""
    h, ell = np.meshgrid(np.arange(-8, 9), np.arange(-12, 13), indexing="ij")
    h, ell = h.ravel(), ell.ravel()
    # reflections (h, -h, 0, l); atoms Ga (1/3, 2/3, 0), (2/3, 1/3, 1/2), As +3/8 c
    k = -h
    phase_site = np.exp(2j * np.pi * ((h + 2 * k) / 3.0)) + np.exp(
        2j * np.pi * ((2 * h + k) / 3.0 + ell / 2.0)
    )
    f = (_F_GA + _F_AS * np.exp(2j * np.pi * 0.375 * ell)) * phase_site
    f2 = np.abs(f) ** 2
    gx = h * 2.0 / (np.sqrt(3.0) * _A_WZ)
    gy = ell / _C_WZ
    g = np.hypot(gx, gy)
    keep = (f2 > 1e-6 * f2.max()) & (g > 0)
    return gx[keep], gy[keep], (f2 * _decay(g))[keep]


def _phase_patterns(n_phases, size, centre, scale, counts):
    """(n_phases, p, p) float64 noise-free phase patterns, each summing to ``counts``."""
    diffuse = _supersampled(lambda r: np.exp(-r * scale / 4.0), centre, size)
    diffuse /= diffuse.sum()
    patterns = []
    gx, gy, intensity = _zinc_blende_spots()
    for k in range(n_phases):
        if k == 0:
            spots = _render_spots(gx, gy, intensity, centre, scale, size)
        elif k == 1:  # the twin: mirror of the zinc-blende lattice about the growth axis
            spots = _render_spots(-gx, gy, intensity, centre, scale, size)
        elif k == 2:
            spots = _render_spots(*_wurtzite_spots(), centre, scale, size)
        else:  # amorphous carbon: two broad rings
            spots = _supersampled(
                lambda r: (
                    np.exp(-0.5 * ((r * scale - 4.7) / 0.5) ** 2)
                    + 0.6 * np.exp(-0.5 * ((r * scale - 8.3) / 0.7) ** 2)
                ),
                centre,
                size,
            )
        spots = spots / spots.sum()
        pattern = 0.8 * spots + 0.2 * diffuse
        strength = 0.6 if k == 3 else 1.0  # a thin film scatters less
        patterns.append(strength * counts * pattern)
    return np.stack(patterns)


def _beam_pattern(size, centre, radius_px, beam_counts):
    """Soft-edged disk with a faint Gaussian halo, summing to ``beam_counts``."""

    def profile(r):
        disk = 1.0 / (1.0 + np.exp((r - radius_px) / 0.3))
        halo = 0.02 * np.exp(-((np.clip(r - radius_px, 0.0, None) / 1.2) ** 2))
        return disk + halo

    beam = _supersampled(profile, centre, size)
    return beam * (beam_counts / beam.sum())


# ---------------------------------------------------------------------------- layout


def _layout(nav_shape, n_phases, rows=None):
    """Phase fractions (rows, nx, k) and thickness (rows, nx) for scan ``rows``."""
    ny, nx = nav_shape
    rows = slice(0, ny) if rows is None else rows
    y = np.arange(ny, dtype=np.float64)[rows]
    v = ((y + 0.5) / ny)[:, None]
    u = ((np.arange(nx, dtype=np.float64) + 0.5) / nx)[None, :]
    hump = np.sqrt(np.clip(1.0 - ((u - 0.5) / 0.34) ** 2, 0.0, 1.0))
    thickness = (0.6 + 0.5 * hump) * (1.0 + 0.3 * (v - 0.5))
    # the wire: a vertical band with edges one pixel wide (partial coverage)
    wire = np.clip((0.32 - np.abs(u - 0.5)) * nx + 0.5, 0.0, 1.0)
    slope = 0.4  # parallel boundaries inclined in the scan

    def ramp(position, width):
        return np.clip((v - position - slope * (u - 0.5)) / width + 0.5, 0.0, 1.0)

    s1 = ramp(0.30, 0.14)  # the inclined twin boundary: a wide overlap band
    s2 = ramp(0.56, 1.5 / ny)
    s3 = ramp(0.72, 2.0 / ny)
    shape = (v.shape[0], nx)
    maps = np.zeros(shape + (n_phases,))
    if n_phases == 1:
        maps[..., 0] = wire
    elif n_phases == 2:
        maps[..., 0] = wire * (1.0 - s1 + s2)
        maps[..., 1] = wire * (s1 - s2)
    else:
        maps[..., 0] = wire * (1.0 - s1 + s2 - s3)
        maps[..., 1] = wire * (s1 - s2)
        maps[..., 2] = wire * s3
    if n_phases == 4:  # carbon film on the left of the wire, vacuum on the right
        maps[..., 3] = (1.0 - wire) * np.clip((0.5 - u) * nx + 0.5, 0.0, 1.0)
    return maps.astype(np.float32), np.broadcast_to(thickness, shape).astype(np.float32)


def _regions(maps):
    total = maps.sum(axis=-1)
    regions = {
        "vacuum": total < 1e-6,
        "overlap": (maps > 0.05).sum(axis=-1) >= 2,
    }
    for k in range(maps.shape[-1]):
        regions[f"pure_{k}"] = maps[..., k] > 0.99
    return regions


# -------------------------------------------------------------------------- sampling


def _seed_from(random_state):
    """An integer seed: ``None`` draws fresh entropy, ints pass, generators draw one."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, (int, np.integer)) and random_state >= 0:
        return int(random_state)
    raise ValueError(
        f"random_state must be None, a non-negative int or a numpy Generator/RandomState, "
        f"got {random_state!r}"
    )


def _poisson_uint16(lam, rng):
    """Exact Poisson counts of the float32 rates ``lam`` (1-D), saturating at 65535.

    A Poisson(lam) count is the number of arrivals of a unit-rate Poisson
    process in [0, lam]. The first arrival time E ~ Exp(1) is drawn for every
    pixel (a fast ziggurat draw); where E >= lam the count is 0, elsewhere it is
    1 + Poisson(lam - E) by memorylessness. Most SPED pixels have lam << 1, so
    numpy's Poisson sampler (~25-30 ns a value) only runs on the few pixels
    with a count: 2-3x faster than ``rng.poisson(lam)`` on the whole pattern.
    """
    first = rng.standard_exponential(lam.size, dtype=np.float32)
    hit = first < lam
    out = hit.view(np.uint8).astype(np.uint16)
    idx = np.flatnonzero(hit)
    rest = rng.poisson(lam[idx] - first[idx])
    np.minimum(rest, 65534, out=rest)
    out[idx] += rest.astype(np.uint16)
    return out


class _Generator:
    """Everything needed to produce any block of scan rows, cheap to pickle."""

    def __init__(self, nav_shape, pattern_size, n_phases, counts, beam_counts, noise, seed):
        self.nav_shape = tuple(int(n) for n in nav_shape)
        self.size = int(pattern_size)
        self.n_phases = int(n_phases)
        self.noise = noise
        self.seed = seed
        self.scale = 2.0 * _HALF_FOV / self.size
        f = self.size / 64.0
        self.centre = (
            self.size / 2.0 + _BEAM_OFFSET[0] * f,
            self.size / 2.0 + _BEAM_OFFSET[1] * f,
        )
        self.beam_radius = _BEAM_RADIUS / self.scale
        self.patterns = _phase_patterns(
            self.n_phases, self.size, self.centre, self.scale, float(counts)
        ).astype(np.float32)
        if beam_counts:
            self.beam = _beam_pattern(
                self.size, self.centre, self.beam_radius, float(beam_counts)
            ).astype(np.float32)
        else:
            self.beam = np.zeros((self.size, self.size), np.float32)
        self.dtype = np.dtype(np.uint16) if noise == "poisson" else np.dtype(np.float32)

    def rows(self, start, stop):
        """Data of scan rows ``start:stop``, shape (rows, nx, p, p)."""
        ny, nx = self.nav_shape
        p2 = self.size * self.size
        maps, thickness = _layout(self.nav_shape, self.n_phases, slice(start, stop))
        weights = (maps * thickness[..., None]).reshape(-1, self.n_phases)
        out = np.empty((stop - start, nx, self.size, self.size), self.dtype)
        flat_patterns = self.patterns.reshape(self.n_phases, p2)
        beam = self.beam.reshape(1, p2)
        for i, row in enumerate(range(start, stop)):
            lam = np.matmul(weights[i * nx : (i + 1) * nx], flat_patterns)
            lam += beam
            if self.noise == "poisson":
                rng = np.random.default_rng([self.seed, row])
                out[i] = _poisson_uint16(lam.ravel(), rng).reshape(nx, self.size, self.size)
            else:
                out[i] = lam.reshape(nx, self.size, self.size)
        return out

    def block(self, block_info=None):
        (start, stop) = block_info[None]["array-location"][0]
        return self.rows(start, stop)

    def truth(self, params):
        maps, thickness = _layout(self.nav_shape, self.n_phases)
        return SPEDTruth(
            patterns=self.patterns,
            maps=maps,
            thickness=thickness,
            direct_beam=self.beam,
            direct_beam_centre=tuple(float(c) for c in self.centre),
            direct_beam_radius=float(self.beam_radius),
            n_phases=self.n_phases,
            phase_names=_PHASE_NAMES[: self.n_phases],
            regions=_regions(maps),
            scale=float(self.scale),
            params=dict(params),
        )


def _rows_per_chunk(nav_shape, pattern_size, itemsize, chunk_patterns):
    ny, nx = nav_shape
    if chunk_patterns is None:
        target_bytes = 200e6
        chunk_patterns = max(1, int(target_bytes // (pattern_size**2 * itemsize)))
    rows = max(1, min(ny, int(chunk_patterns) // nx))
    # prefer a divisor of ny close to the target (equal chunks)
    for candidate in range(rows, max(1, rows // 2) - 1, -1):
        if ny % candidate == 0:
            return candidate
    return rows


def _build_signal(gen, lazy, chunk_patterns, params):
    import dask.array as da
    from pyxem.signals import ElectronDiffraction2D, LazyElectronDiffraction2D

    ny, nx = gen.nav_shape
    p = gen.size
    if lazy:
        rows = _rows_per_chunk(gen.nav_shape, p, gen.dtype.itemsize, chunk_patterns)
        chunks = (tuple(min(rows, ny - s) for s in range(0, ny, rows)), (nx,), (p,), (p,))
        data = da.map_blocks(
            gen.block,
            dtype=gen.dtype,
            chunks=chunks,
            meta=np.empty((0, 0, 0, 0), gen.dtype),
            name=f"sped-phases-{uuid.uuid4().hex}",
        )
    else:
        data = gen.rows(0, ny)
    signal = LazyElectronDiffraction2D(data) if lazy else ElectronDiffraction2D(data)
    signal.metadata.General.title = "Generated SPED: twinned GaAs nanowire"
    signal.metadata.set_item("Acquisition_instrument.TEM.beam_energy", 200.0)
    signal.metadata.set_item("Acquisition_instrument.TEM.rocking_angle", 1.0)
    signal.metadata.set_item("General.nanoml_generator", dict(params))
    am = signal.axes_manager
    for axis, name in zip(am.navigation_axes, ("x", "y"), strict=True):
        axis.name, axis.units, axis.scale, axis.offset = name, "nm", _SCAN_STEP, 0.0
    for axis, name in zip(am.signal_axes, ("kx", "ky"), strict=True):
        axis.name, axis.units, axis.scale = name, "1/nm", gen.scale
        axis.offset = -gen.scale * p / 2.0
    return signal


def _params(**kwargs):
    # flat scalars only: HyperSpy stores lists in metadata as arrays
    out = {"generator": "hyperspy_nanoml.data.sped", "version": _GENERATOR_VERSION}
    for key, value in kwargs.items():
        if isinstance(value, tuple):
            value = "x".join(str(v) for v in value)
        out[key] = value
    return out


def _check_common(pattern_size, n_phases, counts, noise):
    if not isinstance(pattern_size, (int, np.integer)) or pattern_size < 16:
        raise ValueError(f"pattern_size must be an int >= 16, got {pattern_size!r}")
    if n_phases not in (1, 2, 3, 4):
        raise ValueError(f"n_phases must be 1, 2, 3 or 4, got {n_phases!r}")
    if not counts > 0:
        raise ValueError(f"counts must be positive, got {counts!r}")
    if noise not in ("poisson", None):
        raise ValueError(f"noise must be 'poisson' or None, got {noise!r}")


def make_sped_phases(
    nav_shape=(64, 64),
    pattern_size=64,
    *,
    n_phases=3,
    counts=2000.0,
    beam_counts=None,
    direct_beam=True,
    noise="poisson",
    lazy=False,
    chunk_patterns=None,
    random_state=None,
):
    """A SPED data set of a twinned GaAs nanowire with known phases (pyxem demo 1 style).

    Parameters
    ----------
    nav_shape : (int, int)
        Scan shape (rows, columns); the layout scales with it.
    pattern_size : int
        Side of the square patterns in pixels (>= 16). The reciprocal field of
        view is fixed (+-12 1/nm), so the pixel size is ``24 / pattern_size`` 1/nm.
    n_phases : {1, 2, 3, 4}
        Zinc-blende, + its twin, + wurtzite, + an amorphous carbon film.
    counts : float
        Expected diffracted counts of a pattern of one pure phase at unit thickness.
    beam_counts : float, optional
        Expected counts in the direct beam; ``50 * counts`` by default (the beam
        disk is then about two orders of magnitude brighter per pixel than the
        brightest spot).
    direct_beam : bool
        Add the direct beam (excluded from ``truth.patterns`` either way).
    noise : {"poisson", None}
        Poisson counts as ``uint16`` (saturating at 65535), or the expectation
        as ``float32``.
    lazy : bool
        Return the lazy twin: a dask array generated block by block, chunks of
        whole scan rows (whole patterns), about 200 MB each by default.
    chunk_patterns : int, optional
        Patterns per chunk when lazy (rounded to whole scan rows).
    random_state : None, int, numpy Generator or RandomState
        Seed of the noise (the only random part).

    Returns
    -------
    signal : pyxem.signals.ElectronDiffraction2D or LazyElectronDiffraction2D
        Navigation axes ``x``, ``y`` in nm; signal axes ``kx``, ``ky`` in 1/nm.
    truth : SPEDTruth
        Phase patterns, maps, thickness, direct beam and its centre/radius.

    Examples
    --------
    >>> from hyperspy_nanoml.data.sped import make_sped_phases
    >>> s, truth = make_sped_phases((32, 32), 64, random_state=0)
    >>> s.data.shape, truth.patterns.shape, truth.maps.shape
    ((32, 32, 64, 64), (3, 64, 64), (32, 32, 3))
    """
    nav_shape = tuple(int(n) for n in nav_shape)
    if len(nav_shape) != 2 or min(nav_shape) < 1:
        raise ValueError(f"nav_shape must be two positive ints, got {nav_shape!r}")
    _check_common(pattern_size, n_phases, counts, noise)
    seed = _seed_from(random_state) if noise else 0
    if beam_counts is None:
        beam_counts = 50.0 * counts
    beam_counts = float(beam_counts) if direct_beam else 0.0
    gen = _Generator(nav_shape, pattern_size, n_phases, counts, beam_counts, noise, seed)
    params = _params(
        nav_shape=nav_shape,
        pattern_size=int(pattern_size),
        n_phases=int(n_phases),
        counts=float(counts),
        beam_counts=beam_counts,
        noise=noise or "none",
        seed=seed,
    )
    signal = _build_signal(gen, lazy, chunk_patterns, params)
    return signal, gen.truth(params)


def sped_nav_shape(n_patterns):
    """The scan shape used for ``n_patterns``: the most square ``(rows, cols)``."""
    n_patterns = int(n_patterns)
    if n_patterns < 1:
        raise ValueError(f"n_patterns must be positive, got {n_patterns}")
    rows = int(np.sqrt(n_patterns))
    while n_patterns % rows:
        rows -= 1
    return (rows, n_patterns // rows)


def _read_params(path):
    """The generator parameters stored in a ``.zspy`` file, or None."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        for name in group["Experiments"]:
            meta = group[f"Experiments/{name}/metadata/General/nanoml_generator"]
            return dict(meta.attrs)
    except Exception:  # missing, partial or foreign file: not reusable
        return None
    return None


def write_sped_zspy(
    path,
    n_patterns=10**6,
    pattern_size=64,
    *,
    chunk_patterns=None,
    n_phases=3,
    counts=2000.0,
    random_state=None,
    show_progressbar=None,
    overwrite=False,
):
    """Write a generated SPED data set to a chunked ``.zspy`` file, streaming.

    The data (``uint16`` Poisson counts, see :func:`make_sped_phases`) are made
    chunk by chunk while being written, so memory stays bounded (a few hundred
    MB per worker thread) whatever the size: 10^6 patterns of 64 x 64 pixels
    (8 GB) need well under 2 GB. Chunks hold whole patterns and whole scan
    rows (about 200 MB uncompressed by default). The file is written to a
    temporary name in the same folder and renamed at the end, so it is either
    complete or absent. If ``path`` already holds a file made with the same
    parameters (stored in its metadata, ``General.nanoml_generator``), it is
    reused and not written again (with ``random_state=None`` any seed matches).

    Parameters
    ----------
    path : str or Path
        Destination, normally ending in ``.zspy``; its folder is created.
    n_patterns : int
        Number of patterns; the scan shape is :func:`sped_nav_shape` of it
        (1000 x 1000 for 10^6).
    pattern_size : int
    chunk_patterns : int, optional
        Patterns per chunk (rounded to whole scan rows).
    n_phases, counts :
        As in :func:`make_sped_phases`.
    random_state : None, int, numpy Generator or RandomState
    show_progressbar : bool, optional
        Defaults to HyperSpy's preference.
    overwrite : bool
        Regenerate even if a matching file exists.

    Returns
    -------
    SPEDTruth
        The ground truth (its ``params`` are those stored in the file).
    """
    import dask

    from hyperspy_nanoml._progress import show_progressbar_default

    path = Path(path)
    _check_common(pattern_size, n_phases, counts, "poisson")
    nav_shape = sped_nav_shape(n_patterns)
    rows = _rows_per_chunk(nav_shape, pattern_size, 2, chunk_patterns)
    wanted = _params(
        nav_shape=nav_shape,
        pattern_size=int(pattern_size),
        n_phases=int(n_phases),
        counts=float(counts),
        beam_counts=50.0 * float(counts),
        noise="poisson",
        chunk_rows=rows,
    )
    if path.exists() and not overwrite:
        stored = _read_params(path)
        if stored is not None:
            same = all(stored.get(k) == v for k, v in wanted.items())
            if same and (
                random_state is None or stored.get("seed") == _seed_from(random_state)
            ):
                gen = _Generator(
                    nav_shape, pattern_size, n_phases, counts, 50.0 * counts, "poisson",
                    stored["seed"],
                )  # fmt: skip
                return gen.truth(stored)
    seed = _seed_from(random_state)
    params = dict(wanted, seed=seed)
    gen = _Generator(
        nav_shape, pattern_size, n_phases, counts, 50.0 * counts, "poisson", seed
    )
    signal = _build_signal(gen, True, rows * nav_shape[1], params)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.part-{uuid.uuid4().hex[:8]}.zspy"
    # our own thread pool, so that after an error every running chunk has
    # finished writing before the partial file is removed
    pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1))
    try:
        with dask.config.set(scheduler="threads", pool=pool):
            signal.save(
                tmp,
                chunks=(rows, nav_shape[1], pattern_size, pattern_size),
                show_progressbar=show_progressbar_default(show_progressbar),
                overwrite=True,
            )
        pool.shutdown(wait=True)
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return gen.truth(params)
