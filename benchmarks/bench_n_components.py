"""Automatic number of components before/after the Poisson noise floor (issues 9, 11).

"before": the profile likelihood on the Keenan-Kotula scaled matrix (what
``nmf(X, "auto", normalize_poissonian_noise=True)`` chose until now, reproduced with
``noise="unknown"``); "after": the same scaled matrix with its scales, i.e. Poisson
parallel analysis (what the engine runs now). Data: pyxem's simulated grains (direct
beam masked, 6 distinct patterns; also binned as ``sped_phase_map`` fits sparse counts), our SPED sets (2-4 phases), generated EDS spectrum
images (2-4 phases at ~2, ~20, ~300 counts per pixel) and the real Bruker maps in
``../shared/data/eds`` (truth unknown; the 50x50 map also thinned to ~2 and ~20
counts per pixel, binomially, which keeps Poisson statistics).

Run:  python benchmarks/bench_n_components.py
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

COMPS = ["Cu", "Al2O3", "SiO2", "Fe3O4"]
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "eds"


def _scaled(C):
    a, b = C.sum(axis=1, dtype=np.float64), C.sum(axis=0, dtype=np.float64)
    r = 1 / np.sqrt(np.where(a > 0, a, 1))
    c = 1 / np.sqrt(np.where(b > 0, b, 1))
    return (C * r[:, None] * c[None, :]).astype(np.float32), (r, c)


def _row(name, C, truth):
    from hyperspy_nanoml.learn.n_components import choose_n_components

    Xs, scales = _scaled(np.asarray(C, dtype=np.float32))
    started = time.perf_counter()
    before = choose_n_components(Xs, noise="unknown", random_state=0).n_components
    t0 = time.perf_counter() - started
    started = time.perf_counter()
    after = choose_n_components(Xs, poisson_scales=scales, random_state=0)
    t1 = time.perf_counter() - started
    per_row = float(np.median(C.sum(axis=1)))
    mark = "" if truth is None else ("ok" if after.n_components == truth else "WRONG")
    print(
        f"{name:34s} {str(C.shape):13s} {per_row:8.1f} {truth if truth else '?':>5} "
        f"{before:6d} {after.n_components:5d} {after.binning:4d} "
        f"{after.dispersion:6.3f} {t0:6.2f} {t1:6.2f}  {mark}",
        flush=True,
    )


def _voronoi_maps(k, shape=(48, 48), seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    pts = rng.random((k, 2)) * shape
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = (yy[None] - pts[:, 0, None, None]) ** 2 + (xx[None] - pts[:, 1, None, None]) ** 2
    lab = np.argmin(d, axis=0)
    m = np.stack([gaussian_filter((lab == i).astype(float), 1.5) for i in range(k)])
    return m / m.sum(axis=0)


def main():
    print(
        f"{'data set':34s} {'shape':13s} {'cnt/row':>8s} {'true':>5s} {'before':>6s} "
        f"{'after':>5s} {'bin':>4s} {'disp':>6s} {'t_bef':>6s} {'t_aft':>6s}"
    )
    try:
        from hyperspy_nanoml.data.pyxem_grains import pyxem_grains

        yy, xx = np.mgrid[:64, :64]
        beam = ((yy - 32) ** 2 + (xx - 32) ** 2 <= 6**2).ravel()
        for rs in (1, 2):
            for counts in (200.0, 2000.0, None):
                s, truth = pyxem_grains(counts, size=40, random_state=rs)
                C = np.asarray(s.data, dtype=np.float32).reshape(1600, -1)
                C[:, beam] = 0
                if counts is None:  # noise-free expectation: counts of 2000/pattern
                    C *= 2000.0 / C.sum(axis=1).mean()
                label = f"pyxem grains rot{rs} {counts or 'noise-free'}"
                _row(label, C, truth.n_grains)
        # as sped_phase_map fits sparse counts: binned (choose_binning), beam and
        # vacuum decided on the unbinned patterns
        from hyperspy_nanoml.diffraction.preprocess import preprocess_sped

        for rs in (1, 2):
            for counts in (200.0, 500.0):
                s, truth = pyxem_grains(counts, size=40, random_state=rs)
                binned, mask, info = preprocess_sped(s, binning="auto")
                C = np.asarray(binned.data, dtype=np.float32).reshape(1600, -1)
                C[:, mask.ravel()] = 0
                f = info["binning"]
                _row(f"pyxem rot{rs} {counts:g} binned {f}x{f}", C, truth.n_grains)
    except ImportError:
        print("pyxem not installed: grains skipped")
    from hyperspy_nanoml.data.sped import make_sped_phases

    for k in (2, 3, 4):
        s, truth = make_sped_phases((48, 48), 64, n_phases=k, random_state=1)
        C = np.asarray(s.data, dtype=np.float32).reshape(48 * 48, -1)
        keep = ~truth.regions["vacuum"].ravel()
        C = C[keep]
        C[:, ((yy - 32) ** 2 + (xx - 32) ** 2 <= 6**2).ravel()] = 0
        _row(f"our SPED {k} phases", C, k)
    # vacuum kept, mask of radius + 3 px (as a user would draw it): the beam halo
    # leaves ~7 counts per pattern outside the mask, all there is in vacuum, a
    # fourth linear source (3 phases + halo)
    from hyperspy_nanoml.diffraction.preprocess import direct_beam_mask

    s, truth = make_sped_phases((48, 48), 64, n_phases=3, random_state=1)
    C = np.asarray(s.data, dtype=np.float32).reshape(48 * 48, -1)
    halo = direct_beam_mask(s, truth.direct_beam_centre, truth.direct_beam_radius + 3)
    C[:, np.asarray(halo).ravel()] = 0
    _row("our SPED 3 ph. + vacuum, beam+3px", C, 4)
    from hyperspy_nanoml.data.eds import simulate_spectrum_image

    for k in (2, 3, 4):
        maps = _voronoi_maps(k, seed=k)
        s0, _ = simulate_spectrum_image(
            maps, COMPS[:k], beam_energy=15.0, live_time=1.0, noise=False, random_state=0
        )
        per_second = float(s0.data.sum(-1).mean())
        for target in (2, 20, 300):
            s, _ = simulate_spectrum_image(
                maps,
                COMPS[:k],
                beam_energy=15.0,
                live_time=target / per_second,
                random_state=k,
            )
            C = np.asarray(s.data, dtype=np.float32).reshape(-1, s.data.shape[-1])
            _row(f"EDS {k} phases ~{target} cnt/px", C, k)
    if DATA.exists():
        import hyperspy.api as hs

        rng = np.random.default_rng(0)
        for f in sorted(DATA.glob("*.bcf")):
            s = hs.load(f)
            s = [x for x in (s if isinstance(s, list) else [s]) if x.data.ndim == 3][0]
            C = np.asarray(s.data).reshape(-1, s.data.shape[-1]).astype(np.float32)
            _row(f"bcf {f.name[:28]}", C, None)
            for target in (2, 20):
                p = min(1.0, target / C.sum(axis=1).mean())
                thin = rng.binomial(C.astype(np.int64), p).astype(np.float32)
                _row(f"bcf {f.name[:18]} thin ~{target}", thin, None)
    else:
        print(f"{DATA} absent: real Bruker maps skipped")


if __name__ == "__main__":
    main()
