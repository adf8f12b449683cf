"""The ``nanoml`` command.

``nanoml demo``                 runs the local-FFT workflow on a generated image
                                with known regions and says where its outputs are.
``nanoml local-fft IMAGE ...``  runs it on your images (any format HyperSpy or
                                rosettasciio reads: TIFF, DM3/4, EMD, PNG, ...).
``nanoml sped FILE ...``        phase maps of SPED/4D-STEM scans by NMF: maps, patterns,
                                the report and the ``.zspy`` result (never
                                overwriting an earlier result).
``nanoml eds-quant FILE ...``   physical NMF components of SEM-EDS spectrum images,
                                each quantified (report and CSV tables, never
                                overwriting an earlier result).
``nanoml cafm-cluster FILE ...`` k-means clusters of conductive-AFM I-V maps, ordered
                                by conductance: report and CSV tables (physics per
                                cluster, label per pixel), never overwriting an
                                earlier result.
"""

import argparse
import sys
from pathlib import Path


def _add_local_fft_options(parser):
    parser.add_argument("--window", type=int, default=128, help="window size in px (128)")
    parser.add_argument("--step", type=int, default=64, help="window step in px (64)")
    parser.add_argument("--taper", default="hann", choices=("hann", "sqrt_hann", "none"))
    parser.add_argument("--scaling", default="sqrt", choices=("sqrt", "power", "log"))
    parser.add_argument(
        "--n-components", default="auto", help='"auto" (default) or an integer'
    )
    parser.add_argument("--random-state", type=int, default=0, help="seed (0)")
    parser.add_argument(
        "--out", type=Path, help="output folder (default: next to each image)"
    )
    parser.add_argument(
        "--lazy", action="store_true", help="load images lazily (big files)"
    )
    parser.add_argument(
        "--data-bar",
        default="auto",
        choices=("auto", "keep"),
        help="auto: detect a vendor info strip and leave it out (default); keep: analyse it",
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the PDF")
    parser.add_argument("--no-tiff", action="store_true", help="do not write the TIFFs")
    parser.add_argument("--no-hspy", action="store_true", help="do not write the .hspy")
    parser.add_argument(
        "--hspy-spectra",
        action="store_true",
        help="keep the 4-D local spectra in the .hspy (~50 MB per 2048 x 1536 image); "
        "default: decomposition, axes and parameters only (a few MB, re-opens and "
        "re-reports)",
    )
    parser.add_argument(
        "--features",
        default="spectrum",
        choices=("spectrum", "texture"),
        help="spectrum: NMF of the local spectra chooses the number and the regions "
        "(default, the published method); texture: texture regions for photographed "
        "/ stochastic natural textures (log-polar features, Gaussian mixture)",
    )
    parser.add_argument(
        "--tiff-downsample",
        type=int,
        default=None,
        help="loadings TIFF: one value per n x n pixels (default: step / 8, at least "
        "what keeps the long side <= 1024 px; the loadings are only known every step)",
    )


def _auto_or_int(text, option="--n-components"):
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise SystemExit(
            f'nanoml: {option} must be "auto" or an integer, got {text!r}'
        ) from None


def run_local_fft(image, stem, args):
    """Analyse one image; write ``<stem>_local_fft.{pdf,hspy}`` and two TIFFs."""
    import hyperspy_nanoml as nml

    result = nml.local_fft_features(
        image,
        window=args.window,
        step=args.step,
        taper=args.taper,
        scaling=args.scaling,
        n_components=_auto_or_int(args.n_components),
        random_state=args.random_state,
        # one bar per image on a terminal, erased when done (the outcome line
        # follows it); none in logs and pipes
        show_progressbar=sys.stderr.isatty(),
        data_bar=getattr(args, "data_bar", "auto"),
        features=getattr(args, "features", "spectrum"),
    )
    from hyperspy_nanoml.report.local_fft_outputs import write_local_fft_outputs

    H, W = result.metadata.LocalFFT.image_shape
    downsample = getattr(args, "tiff_downsample", None)
    if downsample is None:  # the loadings are known every `step` px: step / 8 is ample
        downsample = max(1, -(-max(H, W) // 1024), args.step // 8)
    outputs = write_local_fft_outputs(
        result,
        Path(stem),
        report=not getattr(args, "no_report", False),
        tiff=not getattr(args, "no_tiff", False),
        hspy=not getattr(args, "no_hspy", False),
        tiff_downsample=downsample,
        hspy_spectra=getattr(args, "hspy_spectra", False),
    )
    return result, outputs


def _load_images(path, lazy):
    import hyperspy.api as hs

    loaded = hs.load(path, lazy=lazy)
    signals = loaded if isinstance(loaded, list) else [loaded]
    images = []
    for i, s in enumerate(signals):
        if s.axes_manager.signal_dimension != 2:
            continue
        if s.axes_manager.navigation_dimension == 0:
            images.append((s, "" if len(signals) == 1 else f"_{i}"))
        else:  # a stack: every image on its own
            for j, index in enumerate(s.axes_manager):
                images.append((s.inav[index], f"_{i}_{j}" if len(signals) > 1 else f"_{j}"))
    if not images:
        raise ValueError(f"{path} holds no 2-D image")
    return images


def cmd_local_fft(args):
    import time
    import warnings

    from hyperspy_nanoml.report.local_fft_outputs import unique_stems

    _auto_or_int(args.n_components)  # a bad value stops here, before any work
    if args.out is not None:
        _check_output_folder(args.out)
    failures = 0
    paths = []
    for path in map(Path, args.images):
        if path.is_dir():
            print(
                f"nanoml: {path} is a folder; pass the images in it, e.g. {path}/*.tif",
                file=sys.stderr,
            )
            failures += 1
        elif not path.is_file():
            print(f"nanoml: {path}: no such file", file=sys.stderr)
            failures += 1
        else:
            paths.append(path)
    if args.out is None:
        for folder in sorted({p.parent for p in paths}):
            _check_output_folder(folder)
    stems = unique_stems(paths, args.out)
    for n, path in enumerate(paths, 1):
        try:
            images = _load_images(path, args.lazy)
        except Exception as error:  # one unreadable file never stops the batch
            print(f"nanoml: {path}: cannot read it: {error}", file=sys.stderr)
            failures += 1
            continue
        for image, suffix in images:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", UserWarning)
                    result, outputs = run_local_fft(image, f"{stems[path]}{suffix}", args)
            except Exception as error:
                print(
                    f"[{n}/{len(paths)}] {path}{suffix}: FAILED: {error}", file=sys.stderr
                )
                failures += 1
                continue
            k = result.learning_results.output_dimension
            regions = result.texture_regions()
            found = f"{k} components" + (
                f", {regions.n_regions} texture regions" if regions is not None else ""
            )
            print(
                f"[{n}/{len(paths)}] {path}{suffix}: {found} "
                f"({time.perf_counter() - t0:.1f} s) ->"
            )
            for w in caught:
                print(f"    note: {w.message}")
            for o in outputs:
                print(f"    {o}")
    return 1 if failures else 0


def _check_output_folder(folder):
    """Stop before any computation when results could not be written to ``folder``."""
    import os

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SystemExit(f"nanoml: --out {folder} is a file, not a folder; choose a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SystemExit(
            f"nanoml: cannot create the output folder {folder}: {error}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SystemExit(
            f"nanoml: the output folder {folder} is not writable; choose another with --out"
        )


def cmd_demo(args):
    import hyperspy.api as hs
    import numpy as np

    from hyperspy_nanoml.data.textures import make_textured_image

    out = Path(args.out or "nanoml_demo")
    out.mkdir(parents=True, exist_ok=True)
    textures = ("vertical_lines", "oblique_lines", "particles", "grain")
    data, regions = make_textured_image((1536, 2048), textures, noise=0.5, random_state=0)
    image = hs.signals.Signal2D(data)
    for axis in image.axes_manager.signal_axes:
        axis.scale, axis.units = 5.0, "nm"
    image.metadata.General.title = "demo: four textures"
    image.save(out / "demo_image.hspy", overwrite=True)
    args.window, args.step, args.taper, args.scaling = 128, 64, "hann", "sqrt"
    args.n_components, args.random_state = "auto", 0
    result, outputs = run_local_fft(image, out / "demo", args)
    seg = result.segmentation(on_image=True)
    from sklearn.metrics import adjusted_rand_score

    ari = adjusted_rand_score(regions.ravel(), seg.ravel())
    k = result.learning_results.output_dimension
    print("nanoml demo: local-FFT feature discovery on a generated image")
    print(
        f"  image: 1536 x 2048 px, 5 nm/px, {len(textures)} textured regions ({', '.join(textures)})"
    )
    print(f"  components found: {k} (truth: {len(textures)})")
    print(f"  why: {result.component_choice.reason}")
    print(
        f"  agreement of the segmentation with the true regions (adjusted Rand index): {ari:.3f}"
    )
    print("  outputs:")
    for o in [out / "demo_image.hspy", *outputs]:
        print(f"    {Path(o).resolve()}")
    return 0 if k == len(textures) and np.isfinite(ari) else 1


def _free_stem(folder, stem, suffixes):
    """``folder/stem`` or ``folder/stem_2``, ``_3``, ... so that no output file exists."""
    i = 1
    while True:
        cand = folder / (stem if i == 1 else f"{stem}_{i}")
        if not any(Path(f"{cand}{sfx}").exists() for sfx in suffixes):
            return cand
        i += 1


def _run_batch(files, desc, out, process, *, exists=Path.is_file, hint=None):
    """Run ``process(path, folder)`` on every input; one failed file never stops the batch.

    ``folder`` is ``out`` (created first) or the file's own folder. A missing input, or a
    ValueError / TypeError / OSError from ``process``, is reported on stderr (followed by
    ``hint(error)`` when given) and counted. Returns the exit status: 1 after any failure.
    """
    from hyperspy_nanoml._progress import progressbar

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in progressbar(files, desc=desc, show_progressbar=True):
        path = Path(path)
        if not exists(path):
            print(f"nanoml: {path}: no such file", file=sys.stderr)
            failures += 1
            continue
        try:
            process(path, out if out is not None else path.parent)
        except (ValueError, TypeError, OSError) as error:
            extra = hint(error) if hint is not None else ""
            print(f"nanoml: {path}: {error}{extra}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


def _load_eds_maps(path, lazy):
    import hyperspy.api as hs

    loaded = hs.load(path, lazy=lazy)
    signals = loaded if isinstance(loaded, list) else [loaded]
    maps = [
        s
        for s in signals
        if s.axes_manager.signal_dimension == 1
        and s.axes_manager.navigation_dimension >= 1
        and "EDS" in str(s.metadata.get_item("Signal.signal_type", ""))
    ]
    if not maps:
        raise ValueError(f"{path} holds no EDS spectrum image")
    return maps


def _standards_from(folder):
    """``{element: spectrum}`` from ``<Element>.msa``-like files in ``folder``."""
    import hyperspy.api as hs

    from hyperspy_nanoml.eds import xray_data

    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"nanoml: --standards {folder}: no such folder")
    standards = {}
    for f in sorted(folder.iterdir()):
        name = f.stem.split("_")[0]
        try:
            el = xray_data.element_symbol(name)
        except (ValueError, KeyError):
            continue
        standards[el] = hs.load(f, signal_type="EDS_SEM")
    if not standards:
        raise SystemExit(
            f"nanoml: --standards {folder}: no file named after an element (e.g. Fe.msa)"
        )
    return standards


def cmd_eds_quant(args):
    from hyperspy_nanoml.eds.bss_quantify import bss_quantify

    elements = None
    if args.elements:
        elements = [
            e.strip() for e in args.elements.replace(" ", ",").split(",") if e.strip()
        ]
    standards = _standards_from(args.standards) if args.standards else None
    suffixes = ("_bss.pdf", "_bss_maps.csv", "_bss_spectra.csv", "_bss_table.csv")

    def one_file(path, folder):
        maps = _load_eds_maps(path, lazy=True)
        for i, s in enumerate(maps):
            result = bss_quantify(
                s,
                n_components=_auto_or_int(args.n_components),
                standards=standards,
                elements=elements,
                random_state=args.random_state,
                show_progressbar=True,
            )
            name = path.stem + (f"_{i}" if len(maps) > 1 else "")
            stem = _free_stem(folder, name, suffixes)
            outputs = [result.save_report(f"{stem}_bss.pdf")]
            outputs += result.export(f"{stem}_bss")
            print(result)
            for o in outputs:
                print(f"    {o}")

    return _run_batch(args.files, "spectrum images", args.out, one_file)


def cmd_sped(args):
    """Phase maps of SPED/4D-STEM files: maps, patterns, report, ``.zspy`` result."""
    import warnings

    from hyperspy_nanoml.diffraction.calibration import phase_results
    from hyperspy_nanoml.diffraction.workflow import sped_phase_map

    suffixes = ("_sped.pdf", "_sped.zspy", "_sped_maps.hspy", "_sped_patterns.hspy")

    def one_file(path, folder):
        stem = _free_stem(folder, path.stem, suffixes)  # never overwrite
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            result = sped_phase_map(
                path,
                _auto_or_int(args.n_components),
                random_state=args.random_state,
                report=f"{stem}_sped.pdf",
                n_restarts=args.n_restarts,
                binning=_auto_or_int(args.binning, "--binning"),
                show_progressbar=True,
            )
        for w in caught:
            print(f"nanoml: {path}: {w.message}", file=sys.stderr)
        patterns, maps = phase_results(result)
        outputs = []
        record = result.metadata.Processing.sped_phase_map
        if record.has_item("report"):
            outputs.append(Path(record.report))
        for s, name in ((maps, "maps"), (patterns, "patterns")):
            target = Path(f"{stem}_sped_{name}.hspy")
            s.save(target, overwrite=False)
            outputs.append(target)
        target = Path(f"{stem}_sped.zspy")
        result.save(target, overwrite=False)
        outputs.append(target)
        vacuum = record.get_item("vacuum_patterns", 0)
        print(
            f"{path}: {record.n_components} phases ({record.n_components_choice}); "
            f"{vacuum} vacuum pattern(s) excluded ->"
        )
        for o in outputs:
            print(f"    {o}")

    # a .zspy result is a folder
    return _run_batch(args.files, "SPED files", args.out, one_file, exists=Path.exists)


def cmd_cafm_cluster(args):
    """Cluster the I-V curves of C-AFM maps; write the report and the CSV tables."""
    from hyperspy_nanoml.cafm.cluster import kmeans_cluster
    from hyperspy_nanoml.cafm.io import load

    n_clusters = _auto_or_int(args.n_clusters, "--n-clusters")
    suffixes = ("_clusters.pdf", "_clusters_physics.csv", "_clusters_labels.csv")

    def one_file(path, folder):
        stem = _free_stem(folder, path.stem, suffixes)  # never overwrite
        signal = load(path, channel=args.channel, lazy=args.lazy)
        result = kmeans_cluster(
            signal,
            n_clusters=n_clusters,
            scaling=args.scaling,
            random_state=args.random_state,
            invalid="exclude" if args.exclude_invalid else "raise",
            temperature=args.temperature,
            contact_area=args.contact_area,
            richardson=args.richardson,
            map_bias=args.bias,
            show_progressbar=True,
        )
        outputs = [
            result.save_report(f"{stem}_clusters.pdf"),
            result.to_csv(f"{stem}_clusters_physics.csv"),
            result.labels_to_csv(f"{stem}_clusters_labels.csv"),
        ]
        why = result.choice.reason if result.choice is not None else "given"
        sizes = ", ".join(str(int(c)) for c in result.counts)
        print(f"{path}: {result.n_clusters} clusters (curves per cluster: {sizes}); {why}")
        for note in result.notes:
            print(f"    note: {note}")
        for o in outputs:
            print(f"    {o}")

    def hint(error):
        return (
            " (on the command line: --exclude-invalid)" if "invalid=" in str(error) else ""
        )

    return _run_batch(args.files, "I-V maps", args.out, one_file, hint=hint)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="nanoml",
        description="Unsupervised ML for nanomaterials microscopy (HyperSpy).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("local-fft", help="local-FFT feature discovery on images")
    p.add_argument("images", nargs="+", help="image files")
    _add_local_fft_options(p)
    p.set_defaults(func=cmd_local_fft)
    d = sub.add_parser("demo", help="run the local-FFT workflow on a built-in example")
    d.add_argument("--out", help="output folder (default ./nanoml_demo)")
    d.set_defaults(func=cmd_demo)
    q = sub.add_parser(
        "eds-quant",
        help="SEM-EDS spectrum images: physical NMF components, each quantified",
    )
    q.add_argument("files", nargs="+", help="spectrum images (.bcf, .hspy, ...)")
    q.add_argument("--elements", help='e.g. "Au,In,Sb" (default: metadata or identified)')
    q.add_argument(
        "--standards", type=Path, help="folder of standard spectra named <Element>.msa"
    )
    q.add_argument("--n-components", default="auto", help='"auto" (default) or an integer')
    q.add_argument("--random-state", type=int, default=0, help="seed (0)")
    q.add_argument("--out", type=Path, help="output folder (default: next to each file)")
    q.set_defaults(func=cmd_eds_quant)
    sp = sub.add_parser(
        "sped", help="SPED/4D-STEM phase maps by NMF (maps, patterns, report, .zspy)"
    )
    sp.add_argument("files", nargs="+", help="SPED files (.zspy, .hspy, .blo, .mib)")
    sp.add_argument("--n-components", default="auto", help='"auto" (default) or an integer')
    sp.add_argument("--n-restarts", type=int, default=3, help="report restarts (3)")
    sp.add_argument(
        "--binning",
        default="auto",
        help='reciprocal binning: "auto" (default: sparse counts, < 0.25 e/px, binned) '
        "or an integer factor",
    )
    sp.add_argument("--random-state", type=int, default=0, help="seed (0)")
    sp.add_argument("--out", type=Path, help="output folder (default: next to each file)")
    sp.set_defaults(func=cmd_sped)
    cc = sub.add_parser(
        "cafm-cluster",
        help="C-AFM I-V maps: k-means clusters ordered by conductance, report and CSV",
    )
    cc.add_argument("files", nargs="+", help="I-V maps (.3ds, .hf5/.h5, .gwy, .ibw, .hspy)")
    cc.add_argument("--n-clusters", default="auto", help='"auto" (default) or an integer')
    cc.add_argument("--channel", help="channel / dataset to read (default: the current)")
    cc.add_argument(
        "--scaling", default="asinh", choices=("asinh", "log_abs", "linear"),
        help="sign-preserving scaling of the current (asinh)",
    )  # fmt: skip
    cc.add_argument("--random-state", type=int, default=0, help="seed (0)")
    cc.add_argument(
        "--exclude-invalid", action="store_true",
        help="leave out curves with NaN or saturated everywhere (default: stop with an error)",
    )  # fmt: skip
    cc.add_argument("--temperature", type=float, help="K (default: file, else 300)")
    cc.add_argument("--contact-area", type=float, help="m^2, for the barrier heights")
    cc.add_argument("--richardson", type=float, help="A m^-2 K^-2 (default 1.20173e6)")
    cc.add_argument("--bias", type=float, help="bias (V) of the current map in the report")
    cc.add_argument("--lazy", action="store_true", help="read the file lazily (big maps)")
    cc.add_argument("--out", type=Path, help="output folder (default: next to each file)")
    cc.set_defaults(func=cmd_cafm_cluster)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
