"""The ``nanoml`` command.

``nanoml demo``                 runs the local-FFT workflow on a generated image
                                with known regions and says where its outputs are.
``nanoml local-fft IMAGE ...``  runs it on your images (any format HyperSpy or
                                rosettasciio reads: TIFF, DM3/4, EMD, PNG, ...).
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


def _n_components(text):
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise SystemExit(
            f'nanoml: --n-components must be "auto" or an integer, got {text!r}'
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
        n_components=_n_components(args.n_components),
        random_state=args.random_state,
        show_progressbar=False,
    )
    stem = Path(stem)
    outputs = [result.save_report(f"{stem}_local_fft.pdf")]
    outputs += list(result.export_imagej(f"{stem}_local_fft"))
    hspy = Path(f"{stem}_local_fft.hspy")
    result.save(hspy, overwrite=True)  # a lazy result is written chunk by chunk
    outputs.append(hspy)
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
    from hyperspy_nanoml._progress import progressbar

    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in progressbar(args.images, desc="images", show_progressbar=True):
        path = Path(path)
        if not path.is_file():
            print(f"nanoml: {path}: no such file", file=sys.stderr)
            failures += 1
            continue
        folder = args.out if args.out is not None else path.parent
        try:
            for image, suffix in _load_images(path, args.lazy):
                result, outputs = run_local_fft(
                    image, folder / f"{path.stem}{suffix}", args
                )
                k = result.learning_results.output_dimension
                print(f"{path}{suffix}: {k} components ->")
                for o in outputs:
                    print(f"    {o}")
        except (ValueError, TypeError, OSError) as error:
            print(f"nanoml: {path}: {error}", file=sys.stderr)
            failures += 1
    return 1 if failures else 0


def cmd_demo(args):
    import hyperspy.api as hs
    import numpy as np

    from hyperspy_nanoml.data.textures import make_textured_image

    out = Path(args.out or "nanoml_demo")
    out.mkdir(parents=True, exist_ok=True)
    textures = ("horizontal_lines", "oblique_lines", "particles", "grain")
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
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
