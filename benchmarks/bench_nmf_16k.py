"""NMF of 16,384 SPED patterns of 64×64: ours (eager, lazy) vs HyperSpy 2.5 lazy vs sklearn.

Data: ``hyperspy_nanoml.data.sped.make_sped_phases((128, 128), 64, n_phases=3)``, a
twinned GaAs nanowire (zinc-blende, its twin, wurtzite) with Poisson noise, thickness
variation, an overlap region and a strong direct beam, which is masked
(``signal_mask``, disk of the beam radius + 3 px) in every method.

One run times, in this order:

1. ours, eager: ``s.nmf_decomposition(3, signal_mask=mask)`` on the in-memory signal,
   also with ``normalize_poissonian_noise=True`` (Keenan & Kotula weighting, the
   better estimator for Poisson counts; inside the engine's passes);
2. ours, eager, without compression (plain accelerated HALS), for the docstring of
   ``hyperspy_nanoml.learn.nmf.nmf`` (``compression="auto"`` chooses compression);
3. ours, lazy: the same calls on the signal loaded lazily from a ``.zspy`` file
   (chunks of 16 scan rows = 2048 patterns), and **the default path** a user runs:
   lazy ``.zspy``, beam mask, ``normalize_poissonian_noise=True``,
   ``n_components="auto"``;
4. HyperSpy 2.5, lazy: ``decomposition(algorithm="NMF", output_dimension=k,
   signal_mask=mask)`` on the same lazy signal, with the number our default path
   chose;
5. scikit-learn eager ``NMF(3, init="nndsvda")`` (defaults otherwise) on the masked
   in-memory matrix (float32).

For each: wall time, peak memory above the baseline before the run (RSS sampled every
5 ms), passes over the data (ours), relative error ``||X − WH||/||X||`` on the kept
pixels, and accuracy against the truth: cosine similarity of the recovered patterns
and maps with the true ones after Hungarian matching (mean and minimum).

Usage: ``python benchmarks/bench_nmf_16k.py [--quick]`` (``--quick``: 64×64 scan).
"""

import os
import sys
import tempfile
import warnings

import numpy as np
from _common import PeakRSS

from hyperspy_nanoml.learn.decomposition import nmf_result


def matched(A, B):
    from scipy.optimize import linear_sum_assignment

    A = np.asarray(A, dtype=np.float64)
    B = np.nan_to_num(np.asarray(B, dtype=np.float64))
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    nb = np.linalg.norm(B, axis=1, keepdims=True)
    B = B / np.where(nb > 0, nb, 1)
    S = A @ B.T
    r, c = linear_sum_assignment(-S)
    return S[r, c], c


def evaluate(name, X, keep_cols, truth_H, truth_W, W, H, run, extra=""):
    """W (n × k), H (k × n_kept_features) as fitted on the kept columns."""
    W = np.asarray(W, dtype=np.float64)
    H = np.asarray(H, dtype=np.float64)
    sims_h, idx = matched(truth_H, H)
    sims_w = np.array(
        [
            np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) or 1)
            for a, b in zip(truth_W.T, W.T[idx], strict=True)
        ]
    )
    # relative error on the kept pixels, in row blocks (float64)
    num = den = 0.0
    for a in range(0, X.shape[0], 2048):
        Xb = X[a : a + 2048][:, keep_cols].astype(np.float64)
        R = Xb - W[a : a + 2048] @ H
        num += float(np.einsum("ij,ij->", R, R))
        den += float(np.einsum("ij,ij->", Xb, Xb))
    return {
        "name": name,
        "time": run.seconds,
        "mem": run.mb,
        "err": np.sqrt(num / den),
        "pat": sims_h.mean(),
        "pat_min": sims_h.min(),
        "map": sims_w.mean(),
        "map_min": sims_w.min(),
        "extra": extra,
    }


def main(quick=False):
    import dask
    import hyperspy.api as hs

    import hyperspy_nanoml  # noqa: F401  (attaches nmf_decomposition)
    from hyperspy_nanoml.data.sped import make_sped_phases
    from hyperspy_nanoml.diffraction.preprocess import direct_beam_mask

    hs.preferences.General.show_progressbar = False
    warnings.filterwarnings("ignore")
    k = 3
    nav = (64, 64) if quick else (128, 128)
    s, truth = make_sped_phases(nav, 64, n_phases=k, random_state=0)
    n = nav[0] * nav[1]
    mask = direct_beam_mask(s, truth.direct_beam_centre, truth.direct_beam_radius + 3)
    keep = np.flatnonzero(~mask.ravel())
    X = s.data.reshape(n, -1)
    truth_H = truth.patterns.reshape(k, -1)[:, keep]
    truth_W = truth.loadings.reshape(n, k)
    print(
        f"data: {n} patterns of 64x64 ({s.data.dtype}, {s.data.nbytes / 2**20:.0f} MiB), "
        f"{k} phases, direct beam masked ({mask.sum()} px), dask {dask.__version__}, "
        f"{os.cpu_count()} cores"
    )
    rows = []

    def ours(signal, label, n_components=k, **kw):
        with PeakRSS() as run:
            signal.nmf_decomposition(
                n_components, signal_mask=mask, random_state=0, print_info=False, **kw
            )
            res = nmf_result(signal)
        lr = signal.learning_results
        passes = signal.metadata.Processing.nmf_decomposition.passes_over_data
        rows.append(
            evaluate(
                label,
                X,
                keep,
                truth_H,
                truth_W,
                lr.loadings,
                lr.factors[keep].T,
                run,
                f"passes={passes}, iters={res.n_iter_compressed}+{res.n_iter_exact}, "
                f"converged={res.converged}, k={res.n_components}",
            )
        )
        return res

    ours(s, "ours eager")
    ours(s, "ours eager, Poisson norm.", normalize_poissonian_noise=True)
    ours(s, "ours eager, plain HALS", compression=False)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sped16k.zspy")
        s.save(path, chunks=(16, nav[1], 64, 64), overwrite=True)
        lazy = hs.load(path, lazy=True)
        print(f"lazy: {path}, chunks {lazy.data.chunksize}, {lazy.data.npartitions} chunks")
        ours(lazy, "ours lazy (zspy)")
        ours(lazy, "ours lazy, Poisson norm.", normalize_poissonian_noise=True)
        lazy = hs.load(path, lazy=True)
        default = ours(
            lazy, "ours lazy DEFAULT path", "auto", normalize_poissonian_noise=True
        )
        k_default = default.n_components

        lazy = hs.load(path, lazy=True)
        with PeakRSS() as run:
            lazy.change_dtype("float32")  # HyperSpy needs float data (lazy cast)
            lazy.decomposition(
                algorithm="NMF",
                output_dimension=k_default,
                signal_mask=mask,
                print_info=False,
            )
        lr = lazy.learning_results
        loadings = np.asarray(lr.loadings)
        factors = np.asarray(lr.factors)
        rows.append(
            evaluate(
                "HyperSpy 2.5 lazy NMF",
                X,
                keep,
                truth_H,
                truth_W,
                loadings,
                factors[keep].T,
                run,
                "MiniBatchNMF per block",
            )
        )
        del lazy

    from sklearn.decomposition import NMF as SkNMF

    Xk = X[:, keep].astype(np.float32)
    with PeakRSS() as run:
        sk = SkNMF(k, init="nndsvda")
        W = sk.fit_transform(Xk)
    rows.append(
        evaluate(
            "sklearn eager NMF",
            X,
            keep,
            truth_H,
            truth_W,
            W,
            sk.components_,
            run,
            f"n_iter={sk.n_iter_}",
        )
    )

    print()
    header = (
        f"{'method':26s}{'time s':>8s}{'peak MiB':>9s}{'rel err':>11s}"
        f"{'pattern cos':>12s}{'(min)':>8s}{'map cos':>10s}{'(min)':>8s}  notes"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:26s}{r['time']:8.2f}{r['mem']:9.0f}{r['err']:11.7f}"
            f"{r['pat']:12.6f}{r['pat_min']:8.4f}{r['map']:10.6f}{r['map_min']:8.4f}  {r['extra']}"
        )
    by = {r["name"]: r for r in rows}
    ol, oe = by["ours lazy (zspy)"], by["ours eager"]
    hl, sk = by["HyperSpy 2.5 lazy NMF"], by["sklearn eager NMF"]
    print()
    print(
        f"speed-up, ours lazy vs HyperSpy lazy:   {hl['time'] / ol['time']:.1f}x (goal >= 10x)"
    )
    print(f"speed-up, ours eager vs sklearn eager:  {sk['time'] / oe['time']:.1f}x")
    dp = by["ours lazy DEFAULT path"]
    goal = (
        hl["time"] / dp["time"] >= 10 and dp["pat"] >= hl["pat"] and dp["map"] >= hl["map"]
    )
    print(
        f"DEFAULT path (lazy zspy, beam mask, Poisson, auto -> k={k_default}): "
        f"{dp['time']:.2f} s vs HyperSpy 2.5 lazy NMF (same mask, k={k_default}) "
        f"{hl['time']:.2f} s = {hl['time'] / dp['time']:.1f}x; pattern/map cosine "
        f"{dp['pat']:.5f}/{dp['map']:.5f} vs {hl['pat']:.5f}/{hl['map']:.5f}; "
        f"goal (>= 10x at higher accuracy): {'met' if goal else 'NOT met'}"
    )
    op = by["ours lazy, Poisson norm."]
    print(
        f"ours lazy with Poisson normalisation: {hl['time'] / op['time']:.1f}x faster than "
        f"HyperSpy lazy, pattern/map cosine {op['pat']:.6f}/{op['map']:.6f}"
    )
    print(
        f"accuracy vs truth (mean pattern/map cosine): ours lazy {ol['pat']:.6f}/{ol['map']:.6f}, "
        f"sklearn {sk['pat']:.6f}/{sk['map']:.6f}, HyperSpy lazy {hl['pat']:.5f}/{hl['map']:.5f}"
    )
    print(
        f"relative error: ours lazy {ol['err']:.8f}, ours eager {oe['err']:.8f}, "
        f"sklearn {sk['err']:.8f}, HyperSpy lazy {hl['err']:.6f}"
    )
    return rows


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
