"""I-V map clustering: 10^6 curves lazily, and HyperSpy's own clustering on a smaller map.

    python benchmarks/bench_cafm_cluster.py                      # both parts
    python benchmarks/bench_cafm_cluster.py --shape 200 200      # quick check
    python benchmarks/bench_cafm_cluster.py --skip-large         # only the comparison
    python benchmarks/bench_cafm_cluster.py --source generator   # no file: generate per pass

1. Large map: ``generate_iv_map((1000, 1000), n_points=200)`` (4 classes: substrate
   leakage, Schottky, two ohmic classes 4x apart; 30 pA noise; 4 % lost contacts),
   written once to a chunked ``.zspy`` outside the repository (timed apart, reused
   when present), loaded lazily and clustered with ``kmeans_cluster`` at its
   defaults (``n_clusters="auto"``: the choice of k is included). Wall time, peak
   resident memory (psutil, sampled every 20 ms), the passes over the data, the
   chosen k and the ARI of the labels with the truth. Goal: < 60 s and < 3 GB.
2. Comparison on a 64 x 128 map (8192 curves x 201 points) of the same generator, in
   memory: HyperSpy 2.5's ``estimate_number_of_clusters(cluster_source="signal")``
   (its gap statistic, defaults; k-means seeded with random_state=0 as ours) then
   ``cluster_analysis`` with the k it chose, and
   ``cluster_analysis`` with the true k, against ``kmeans_cluster``: time, chosen k,
   ARI. The lost-contact pixels bound every ARI (the "ceiling" printed).

The machine is shared: the load average is printed before and after.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from _common import PeakRSS

DEFAULT_DIR = Path("/tmp/nanoml_bench")


def _ari(truth, labels):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(np.asarray(truth).ravel(), np.asarray(labels).ravel())


def _ceiling(truth):
    """ARI of the best possible labels: lost-contact pixels look like the substrate."""
    sub = [c["label"] for c in truth["classes"] if c["role"] == "substrate"][0]
    best = np.where(truth["lost_contact"], sub, truth["labels"])
    return _ari(truth["labels"], best)


def _write_map(path, shape, n_points, seed):
    """The lazy generated map written to ``path`` (.zspy), reused when it exists."""
    import hyperspy.api as hs

    from hyperspy_nanoml.data.cafm import generate_iv_map

    s, truth = generate_iv_map(shape, n_points=n_points, random_state=seed, lazy=True)
    stamp = path.with_suffix(".params")
    params = f"{shape} {n_points} {seed}"
    if path.exists() and stamp.exists() and stamp.read_text() == params:
        print(f"  reusing {path}")
        return truth
    if path.exists():
        shutil.rmtree(path)
    t = time.perf_counter()
    s.save(path, overwrite=True, chunks=s.data.chunksize)
    stamp.write_text(params)
    print(f"  generated and wrote {path} in {time.perf_counter() - t:.1f} s")
    del hs
    return truth


def bench_large(args):
    import hyperspy.api as hs

    import hyperspy_nanoml  # noqa: F401 (registers IV_curve)
    from hyperspy_nanoml.cafm.cluster import kmeans_cluster
    from hyperspy_nanoml.data.cafm import generate_iv_map

    shape = tuple(args.shape)
    n = shape[0] * shape[1]
    print(f"\n== 1. {n} curves x {args.n_points} points, lazy ({args.source}) ==")
    if args.source == "zspy":
        DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
        path = DEFAULT_DIR / f"iv_map_{shape[0]}x{shape[1]}x{args.n_points}.zspy"
        truth = _write_map(path, shape, args.n_points, args.seed)
        signal = hs.load(path, lazy=True)
        size = signal.data.nbytes / 2**20
        print(f"  file: {path} ({size:.0f} MiB of float32), chunks {signal.data.chunksize}")
    else:
        signal, truth = generate_iv_map(
            shape, n_points=args.n_points, random_state=args.seed, lazy=True
        )
    with PeakRSS() as mem:
        result = kmeans_cluster(signal, random_state=0, show_progressbar=not args.quiet)
    ari = _ari(truth["labels"], result.label_array)
    print(
        f"  kmeans_cluster (n_clusters='auto'): {mem.seconds:.1f} s, peak memory "
        f"+{mem.mb:.0f} MiB (process peak {mem.peak / 2**30:.2f} GiB), "
        f"{result.passes_over_data} passes over the data"
    )
    print(
        f"  chosen k = {result.n_clusters} (truth {len(truth['classes'])}); ARI "
        f"{ari:.3f} (ceiling {_ceiling(truth):.3f}); goal < 60 s and < 3 GiB: "
        f"{'met' if mem.seconds < 60 and mem.peak < 3 * 2**30 else 'NOT met'}"
    )
    print(f"  why: {result.choice.reason}")
    return mem.seconds, result


def bench_compare(args, scatter=None):
    from hyperspy_nanoml.cafm.cluster import kmeans_cluster
    from hyperspy_nanoml.data.cafm import DEFAULT_CLASSES, generate_iv_map

    shape = tuple(args.compare_shape)
    classes = None
    what = "default classes (2 % pixel-to-pixel scatter)"
    if scatter is not None:
        classes = [dict(c, scatter=scatter) for c in DEFAULT_CLASSES]
        what = f"{100 * scatter:.0f} % pixel-to-pixel scatter of the class parameters"
    s, truth = generate_iv_map(shape, random_state=args.seed, classes=classes)
    n = shape[0] * shape[1]
    true_k = len(truth["classes"])
    print(
        f"\n== 2. {n} curves x {s.axes_manager.signal_size} points in memory, {what}: "
        f"HyperSpy vs kmeans_cluster (ARI ceiling {_ceiling(truth):.3f}) =="
    )
    rows = []
    h = s.deepcopy()
    with PeakRSS() as mem:
        h.estimate_number_of_clusters(
            cluster_source="signal", max_clusters=8, show_progressbar=False, random_state=0
        )
    k_hs = int(h.learning_results.estimated_number_of_clusters)
    t_est, mb_est = mem.seconds, mem.mb
    with PeakRSS() as mem:
        h.cluster_analysis(cluster_source="signal", n_clusters=k_hs, random_state=0)
    labels = np.asarray(h.get_cluster_labels(merged=True).data)
    rows.append(
        (
            "HyperSpy estimate_number_of_clusters + cluster_analysis",
            t_est + mem.seconds,
            k_hs,
            _ari(truth["labels"], labels),
            max(mb_est, mem.mb),
        )
    )
    h2 = s.deepcopy()
    with PeakRSS() as mem:
        h2.cluster_analysis(cluster_source="signal", n_clusters=true_k, random_state=0)
    labels = np.asarray(h2.get_cluster_labels(merged=True).data)
    rows.append(
        (
            f"HyperSpy cluster_analysis, k = {true_k} given",
            mem.seconds,
            true_k,
            _ari(truth["labels"], labels),
            mem.mb,
        )
    )
    o = s.deepcopy()
    with PeakRSS() as mem:
        r = kmeans_cluster(o, random_state=0, show_progressbar=False)
    rows.append(
        (
            "hyperspy_nanoml kmeans_cluster, k = 'auto'",
            mem.seconds,
            r.n_clusters,
            _ari(truth["labels"], r.label_array),
            mem.mb,
        )
    )
    print(f"  {'method':58s} {'time (s)':>9s} {'k':>3s} {'ARI':>6s} {'+MiB':>6s}")
    for name, t, k, a, mb in rows:
        print(f"  {name:58s} {t:9.2f} {k:3d} {a:6.3f} {mb:6.0f}")
    print(
        f"  kmeans_cluster is {rows[0][1] / rows[2][1]:.0f}x faster than HyperSpy's "
        f"estimate + cluster_analysis (true k = {true_k})"
    )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=2, default=(1000, 1000))
    p.add_argument("--n-points", type=int, default=200)
    p.add_argument("--compare-shape", type=int, nargs=2, default=(64, 128))
    p.add_argument("--source", choices=("zspy", "generator"), default="zspy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--skip-compare", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} cores")
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if not args.skip_large:
        bench_large(args)
    if not args.skip_compare:
        bench_compare(args)
        bench_compare(args, scatter=0.10)
    print(f"\nload average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
