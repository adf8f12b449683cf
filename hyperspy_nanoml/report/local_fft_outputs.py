"""All outputs of one local-FFT result, written as a set: whole or not at all.

Each file is first written to a hidden temporary name in the destination folder;
only when every one of them is complete are they moved into place. A failure
(full disk, TIFF error, read-only folder) leaves the folder as it was: no
truncated ``.hspy`` that loads without its loadings, no new report beside an old
TIFF of another run.
"""

import os
import tempfile
from pathlib import Path

__all__ = ["OUTPUT_SUFFIXES", "output_paths", "unique_stems", "write_local_fft_outputs"]

OUTPUT_SUFFIXES = {
    "report": "_local_fft.pdf",
    "loadings": "_local_fft_loadings.tif",
    "factors": "_local_fft_factors.tif",
    "hspy": "_local_fft.hspy",
}


def output_paths(stem, *, report=True, tiff=True, hspy=True):
    """The files :func:`write_local_fft_outputs` writes for ``stem``, by kind."""
    wanted = {"report": report, "loadings": tiff, "factors": tiff, "hspy": hspy}
    return {k: Path(f"{stem}{sfx}") for k, sfx in OUTPUT_SUFFIXES.items() if wanted[k]}


def _temp(path):
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=".part" + path.suffix, dir=path.parent
    )
    os.close(fd)
    # mkstemp makes the file private (0600); outputs get the usual permissions
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def write_local_fft_outputs(
    result,
    stem,
    *,
    report=True,
    tiff=True,
    hspy=True,
    tiff_downsample=1,
    hspy_spectra=False,
):
    """Write the report, the two ImageJ TIFFs and the ``.hspy`` of ``result``.

    Parameters
    ----------
    result : LocalFFTSignal (decomposed)
    stem : str or Path
        Output prefix, e.g. ``out/sample`` gives ``out/sample_local_fft.pdf``,
        ``..._loadings.tif``, ``..._factors.tif`` and ``..._local_fft.hspy``.
    report, tiff, hspy : bool
        Which outputs to write.
    tiff_downsample : int
        The loadings TIFF holds one value per ``n x n`` pixels (its calibration
        says so); 1 = the image's own grid.
    hspy_spectra : bool
        False (default): the ``.hspy`` holds everything but the 4-D local spectra
        (:meth:`LocalFFTSignal.without_spectra`: decomposition, axes, parameters,
        image preview; a few MB, re-opens and re-reports); True: the spectra too
        (about ``windows x window^2 x 4`` bytes, ~50 MB for a 2048 x 1536 image).

    Returns
    -------
    list of Path, the files written (all or none of them).
    """
    paths = output_paths(stem, report=report, tiff=tiff, hspy=hspy)
    folder = Path(stem).parent
    if not folder.is_dir():
        raise FileNotFoundError(f"output folder {folder} does not exist")
    temps = {}
    try:
        if report:
            temps["report"] = _temp(paths["report"])
            result.save_report(temps["report"])
        if tiff:
            temps["loadings"] = _temp(paths["loadings"])
            temps["factors"] = _temp(paths["factors"])
            result.export_imagej(
                None,
                downsample=tiff_downsample,
                paths=(temps["loadings"], temps["factors"]),
            )
        if hspy:
            temps["hspy"] = _temp(paths["hspy"])
            saved = result if hspy_spectra else result.without_spectra()
            saved.save(temps["hspy"], overwrite=True)
        for kind, tmp in temps.items():
            os.replace(tmp, paths[kind])
    except BaseException:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise
    return list(paths.values())


def unique_stems(paths, out=None):
    """One output stem per input path, never two the same.

    ``out`` (a folder) or each input's own folder holds the outputs. Inputs whose
    stems would collide (``a/img.tif`` and ``b/img.tif`` into one ``--out``, or
    ``img.tif`` and ``img.png``) get the extension and then the parent folder's
    name added (``img_tif``, ``b_img_tif``), then a number.

    Examples
    --------
    >>> [s.name for s in unique_stems([Path("a/img.tif"), Path("a/img.png")]).values()]
    ['img_tif', 'img_png']
    """
    paths = [Path(p) for p in paths]

    def folder(p):
        return Path(out) if out is not None else p.parent

    def names(level):
        result = {}
        for p in paths:
            name = p.stem
            if level >= 1:
                name = f"{name}_{p.suffix.lstrip('.')}" if p.suffix else name
            if level >= 2:
                name = f"{p.parent.name}_{name}"
            result[p] = folder(p) / name
        return result

    for level in range(3):
        stems = names(level)
        keys = [str(stems[p]) for p in dict.fromkeys(paths)]
        if len(set(keys)) == len(keys):
            break
    seen, final = set(), {}
    for p in dict.fromkeys(paths):
        stem, i = stems[p], 2
        while str(stem) in seen:
            stem = stems[p].with_name(f"{stems[p].name}_{i}")
            i += 1
        seen.add(str(stem))
        final[p] = stem
    return final
