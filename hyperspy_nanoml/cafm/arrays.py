"""I-V maps from plain arrays and from CSV / NPY files, with explicit axes.

Plain files carry no calibration, so the bias (and optionally the scan step)
is given by the caller:

* :func:`iv_dict_from_array` / :func:`hyperspy_nanoml.cafm.io.load_array`:
  an array of shape (ny, nx, n_points), (n_curves, n_points) or (n_points,).
* ``.npy``: such an array (memory-mapped when lazy).
* ``.csv`` / ``.txt``: one curve per row (``#`` comments allowed); the bias is
  given, or read from the first row with ``bias="first_row"``; ``scan_shape``
  folds the rows into a (ny, nx) scan, row-major (x fastest).
"""

from __future__ import annotations

import os

import numpy as np

from hyperspy_nanoml.cafm.axes import (
    axis_dict,
    existing_file,
    iv_signal_dict,
    lazy_curves,
    length_units,
)

_LENGTH_IN_M = {"m": 1.0, "mm": 1e-3, "µm": 1e-6, "um": 1e-6, "nm": 1e-9, "pm": 1e-12}


def _nav_axes(shape, scan_step, scan_units, scan_offset):
    if len(shape) == 0:
        return []
    if scan_step is None:
        names = ("y", "x") if len(shape) == 2 else ("curve",)
        return [
            axis_dict(name=n, units="px" if n != "curve" else "", size=s, navigate=True)
            for n, s in zip(names, shape)
        ]
    steps = np.broadcast_to(np.asarray(scan_step, dtype=np.float64), (len(shape),))
    offsets = np.broadcast_to(np.asarray(scan_offset, dtype=np.float64), (len(shape),))
    if np.any(steps <= 0) or not np.all(np.isfinite(steps)):
        raise ValueError(f"scan_step must be positive and finite, got {scan_step!r}")
    units = scan_units
    if scan_units in _LENGTH_IN_M:
        metres = steps * _LENGTH_IN_M[scan_units]
        factor, units = length_units(float(np.max(metres * np.asarray(shape))))
        steps = metres * factor
        offsets = offsets * _LENGTH_IN_M[scan_units] * factor
    names = ("y", "x") if len(shape) == 2 else ("x",)
    return [
        axis_dict(name=n, units=units, size=s, offset=o, scale=st, navigate=True)
        for n, s, o, st in zip(names, shape, offsets, steps)
    ]


def iv_dict_from_array(
    data,
    bias,
    *,
    scan_step=None,
    scan_units: str = "nm",
    scan_offset=0.0,
    quantity: str = "Current (A)",
    bias_units: str = "V",
    title: str = "I-V map",
    lazy: bool = False,
    reader: str = "hyperspy_nanoml.cafm.arrays",
) -> dict:
    """Signal dictionary of an I-V map from an array and its axes.

    Parameters
    ----------
    data : array-like or dask array
        Shape (ny, nx, n_points), (n_curves, n_points) or (n_points,); current
        in A unless ``quantity`` says otherwise. Copied (the input is never
        modified later through the signal), float32.
    bias : array-like, shape (n_points,)
        Bias of each point (V); strictly monotonic (a decreasing sweep is
        reversed with the data).
    scan_step : float or (step_y, step_x), optional
        Pixel size in ``scan_units``; default uncalibrated pixels.
    scan_units : str
        Units of ``scan_step`` / ``scan_offset`` ("nm", "µm", "m", ... are
        converted to a readable length unit).
    scan_offset : float or (offset_y, offset_x)
        Position of the first pixel.
    quantity, bias_units, title : str
        ``metadata.Signal.quantity``, the bias units, the title.
    lazy : bool
        Dask data (a numpy input is wrapped).

    Returns
    -------
    dict
        HyperSpy signal dictionary.
    """
    import dask.array as da

    if isinstance(data, da.Array):
        arr = data.astype(np.float32)
        lazy = True
    else:
        arr = np.array(data, dtype=np.float32, copy=True)
        if lazy:
            arr = lazy_curves(arr)
    if arr.ndim not in (1, 2, 3):
        raise ValueError(
            f"data must have 1 to 3 dimensions ((ny, nx, n_points), (n_curves, n_points) "
            f"or (n_points,)), got shape {arr.shape}"
        )
    bias = np.asarray(bias, dtype=np.float64)
    if bias.ndim != 1 or bias.size != arr.shape[-1]:
        raise ValueError(
            f"bias must be 1-D with one value per point ({arr.shape[-1]}), got shape {bias.shape}"
        )
    nav = _nav_axes(arr.shape[:-1], scan_step, scan_units, scan_offset)
    return iv_signal_dict(
        arr,
        bias,
        nav,
        title=title,
        bias_units=bias_units,
        quantity=quantity,
        processing={"reader": reader},
    )


def read_npy(path: str | os.PathLike, *, bias, lazy: bool = False, **axes) -> dict:
    """An I-V map from a ``.npy`` array (memory-mapped when lazy).

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file: shape (ny, nx, n_points), (n_curves, n_points) or (n_points,).
    bias : array-like
        Bias of each point (V).
    lazy : bool
        Dask array over a memory map of the file.
    **axes
        ``scan_step``, ``scan_units``, ``scan_offset``, ``quantity``,
        ``bias_units`` of :func:`iv_dict_from_array`.

    Returns
    -------
    dict
    """
    path = existing_file(path)
    if bias is None:
        raise ValueError(f"{path.name}: a .npy file has no bias axis; give bias=... (V)")
    try:
        arr = np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path} is not a readable .npy array ({err})") from None
    if lazy:
        arr = lazy_curves(arr)
    result = iv_dict_from_array(
        arr, bias, title=path.stem, reader="hyperspy_nanoml.cafm.arrays (npy)", **axes
    )
    result["metadata"]["General"]["original_filename"] = path.name
    return result


def read_csv(
    path: str | os.PathLike,
    *,
    bias,
    scan_shape=None,
    delimiter: str | None = None,
    lazy: bool = False,
    **axes,
) -> dict:
    """An I-V map from a CSV/text file with one curve per row.

    Parameters
    ----------
    path : str or path-like
        The file; ``#`` starts a comment.
    bias : array-like or "first_row"
        Bias of each column (V), or ``"first_row"`` when the first data row holds it.
    scan_shape : (ny, nx), optional
        Fold the rows into a scan (row-major, x fastest); default a list of curves.
    delimiter : str, optional
        Column separator; default "," when the first data line has one, else whitespace.
    lazy : bool
        Wrap the data in dask (the text is parsed whole).
    **axes
        ``scan_step``, ``scan_units``, ``scan_offset``, ``quantity``,
        ``bias_units`` of :func:`iv_dict_from_array`.

    Returns
    -------
    dict
    """
    path = existing_file(path)
    if bias is None:
        raise ValueError(
            f"{path.name}: a CSV file has no bias axis; give bias=... (V) or "
            "bias='first_row' when its first row holds the biases"
        )
    if delimiter is None:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = next(
                (ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")), ""
            )
        delimiter = "," if "," in first else None
    try:
        table = np.loadtxt(
            path, delimiter=delimiter, comments="#", ndmin=2, dtype=np.float64
        )
    except ValueError as err:
        raise ValueError(f"{path.name}: not a table of numbers ({err})") from None
    if isinstance(bias, str):
        if bias != "first_row":
            raise ValueError(f"bias must be an array or 'first_row', got {bias!r}")
        bias, table = table[0], table[1:]
    if scan_shape is not None:
        ny, nx = (int(v) for v in scan_shape)
        if ny * nx != table.shape[0]:
            raise ValueError(
                f"{path.name} has {table.shape[0]} curves, which is not scan_shape "
                f"{ny} x {nx} = {ny * nx}"
            )
        table = table.reshape(ny, nx, table.shape[1])
    result = iv_dict_from_array(
        table,
        bias,
        title=path.stem,
        lazy=lazy,
        reader="hyperspy_nanoml.cafm.arrays (csv)",
        **axes,
    )
    result["metadata"]["General"]["original_filename"] = path.name
    return result


def file_reader(filename, bias=None, lazy=False, **kwds) -> list[dict]:
    """HyperSpy reader protocol for ``.npy`` and ``.csv``/``.txt`` (``bias`` required).

    Parameters
    ----------
    filename : str
        The file.
    bias : array-like or "first_row"
        Bias of each point (V).
    lazy : bool
        Lazy (dask) data.
    **kwds
        ``scan_shape``, ``scan_step``, ``scan_units``, ``scan_offset``,
        ``quantity``, ``bias_units``, ``delimiter``; other ``hs.load``
        keywords are ignored.

    Returns
    -------
    list with one signal dictionary.
    """
    known = {"scan_step", "scan_units", "scan_offset", "quantity", "bias_units"}
    axes = {k: v for k, v in kwds.items() if k in known}
    if str(filename).lower().endswith(".npy"):
        return [read_npy(filename, bias=bias, lazy=lazy, **axes)]
    return [
        read_csv(
            filename,
            bias=bias,
            scan_shape=kwds.get("scan_shape"),
            delimiter=kwds.get("delimiter"),
            lazy=lazy,
            **axes,
        )
    ]
