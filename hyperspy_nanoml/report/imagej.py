"""Calibrated ImageJ/FIJI hyperstack TIFFs, written whole or not at all."""

from pathlib import Path

import numpy as np

from hyperspy_nanoml.report.atomic import atomic_path


def write_imagej_stack(path, stack, *, spacing, origin=(0.0, 0.0), unit="px", labels=None):
    """Write a (k, H, W) float32 stack as an ImageJ hyperstack (axes ``CYX``).

    ``spacing`` and ``origin`` are (y, x) in ``unit``; ImageJ reads them as the
    pixel size and origin (Image > Properties), and ``labels`` as slice labels.
    Returns the path.
    """
    import tifffile

    path = Path(path)
    stack = np.asarray(stack, dtype=np.float32)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise ValueError(f"expected a (k, H, W) stack, got shape {stack.shape}")
    sy, sx = (float(v) for v in spacing)
    if sy <= 0 or sx <= 0:
        raise ValueError(f"pixel spacing must be positive, got {spacing}")
    # TIFF descriptions are ASCII; ImageJ reads "um" as micrometre
    unit = {"<undefined>": "px", "": "px"}.get(unit, unit)
    unit = unit.replace("\u00b5", "u").replace("\u03bc", "u").replace("Å", "A")
    metadata = {
        "axes": "CYX",
        "unit": unit,
        "min": float(np.nanmin(stack)),
        "max": float(np.nanmax(stack)),
        # ImageJ's origin is in pixels: physical = (pixel - origin) * size
        "xorigin": -origin[1] / sx,
        "yorigin": -origin[0] / sy,
    }
    if labels is not None:
        metadata["Labels"] = list(labels)
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            stack,
            imagej=True,
            resolution=(1.0 / sx, 1.0 / sy),
            metadata=metadata,
        )
    return path
