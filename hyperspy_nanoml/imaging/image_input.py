"""Preparing an image for the local FFT: uniform axes, crop, vendor data bars and
edge padding (numpy/dask only; calibrations are plain dicts, no signal classes)."""

import warnings

import numpy as np

from hyperspy_nanoml.imaging.data_bar import detect_data_bar

__all__ = [
    "DATA_BAR_MODES",
    "check_uniform_axes",
    "edge_padding",
    "pad_to_cover",
    "prepare_region",
]

DATA_BAR_MODES = ("auto", "keep")


def check_uniform_axes(signal) -> None:
    """Raise a clear error when an image axis of ``signal`` is not uniform.

    The local FFT needs evenly spaced pixels (its frequency axis is 1 / (window x
    pixel size)).
    """
    for axis in signal.axes_manager.signal_axes:
        if not getattr(axis, "is_uniform", True):
            raise ValueError(
                f"the image axis {axis.name!r} is not uniform (its pixels are not evenly "
                "spaced); the local FFT needs a uniform pixel size: resample the image "
                "onto a uniform grid first (e.g. with scipy.interpolate), or convert the "
                "axis with s.axes_manager[...].convert_to_uniform_axis() if it is close to "
                "uniform"
            )


def _check_crop(crop, shape):
    if len(crop) != 4:
        raise ValueError(f"crop must be (y0, y1, x0, x1) in pixels, got {crop!r}")
    y0, y1, x0, x1 = (int(v) for v in crop)
    H, W = shape
    if not (0 <= y0 < y1 <= H and 0 <= x0 < x1 <= W):
        raise ValueError(
            f"crop {crop!r} is outside the {H} x {W} px image: give 0 <= y0 < y1 <= {H} "
            f"and 0 <= x0 < x1 <= {W}"
        )
    return y0, y1, x0, x1


def prepare_region(data, axes, *, crop=None, data_bar="auto", stacklevel=3):
    """Apply ``crop`` or cut off a detected vendor data bar.

    Parameters
    ----------
    data : 2-D numpy or dask array
    axes : list of two calibration dicts (y, x) with ``scale`` and ``offset``
    crop : (y0, y1, x0, x1) or None
        Pixel ranges to analyse (``y1``, ``x1`` exclusive); overrides detection.
    data_bar : {"auto", "keep"}
        ``"auto"`` detects an info strip (:func:`detect_data_bar`) and leaves it
        out with a warning; ``"keep"`` analyses every pixel.

    Returns
    -------
    (data, axes, record): the region, its calibration (offsets moved to the
    region's first pixel) and a dict saying what was done (``crop`` in pixels of
    the input, ``data_bar`` detected or None, ``reason``).
    """
    if data_bar not in DATA_BAR_MODES:
        raise ValueError(f"data_bar must be one of {DATA_BAR_MODES}, got {data_bar!r}")
    H, W = data.shape
    record = {"crop": [0, H, 0, W], "data_bar": None, "reason": "whole image analysed"}
    if crop is not None:
        y0, y1, x0, x1 = _check_crop(crop, (H, W))
        record["reason"] = f"crop given: rows {y0}-{y1}, columns {x0}-{x1}"
    elif data_bar == "auto":
        bar = detect_data_bar(data)
        if bar is None:
            return data, axes, record
        (b0, b1), edge = bar["rows"], bar["edge"]
        y0, y1, x0, x1 = (b1, H, 0, W) if edge == "top" else (0, b0, 0, W)
        record["data_bar"] = {"edge": edge, "rows": [int(b0), int(b1)]}
        record["reason"] = (
            f"a data bar (uniform info strip) was detected along the {edge} edge, rows "
            f"{b0}-{b1}; it was left out (analysed rows {y0}-{y1}); pass "
            "data_bar='keep' to analyse it, or crop=(y0, y1, x0, x1)"
        )
        warnings.warn(record["reason"], UserWarning, stacklevel=stacklevel)
    else:
        return data, axes, record
    record["crop"] = [y0, y1, x0, x1]
    axes = [dict(a) for a in axes]
    axes[0]["offset"] = axes[0]["offset"] + y0 * axes[0]["scale"]
    axes[1]["offset"] = axes[1]["offset"] + x0 * axes[1]["scale"]
    return data[y0:y1, x0:x1], axes, record


def edge_padding(shape, window, step):
    """Pixels to add at the bottom and right so that the last window ends at the edge.

    Examples
    --------
    >>> edge_padding((500, 512), 128, 64)
    (12, 0)
    """
    return tuple(int((-(n - window)) % step) for n in shape)


def pad_to_cover(data, window, step):
    """Mirror-pad (``symmetric``) ``data`` at the bottom/right to be covered whole."""
    py, px = edge_padding(data.shape, window, step)
    if py == 0 and px == 0:
        return data, (0, 0)
    if hasattr(data, "dask"):
        import dask.array as da

        return da.pad(data, ((0, py), (0, px)), mode="symmetric"), (py, px)
    return np.pad(data, ((0, py), (0, px)), mode="symmetric"), (py, px)
