"""Axes and signal dictionaries shared by the I-V map readers.

Every reader in :mod:`hyperspy_nanoml.cafm` ends by calling :func:`iv_signal_dict`,
which checks the bias axis (monotonic; a decreasing sweep is reversed together
with the data), builds HyperSpy axis dictionaries (uniform when the values are
evenly spaced, otherwise a non-uniform ``DataAxis``) and returns the dictionary
that HyperSpy's ``file_reader`` protocol expects (``data``, ``axes``,
``metadata``, ``original_metadata``), with ``signal_type = "IV_curve"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# metres -> (factor, unit) for display of scan axes
_LENGTH_UNITS = ((1e-6, 1e9, "nm"), (1e-3, 1e6, "µm"), (1.0, 1e3, "mm"))


def length_units(extent_m: float) -> tuple[float, str]:
    """The factor and unit to show a length of ``extent_m`` metres with.

    Parameters
    ----------
    extent_m : float
        The largest extent (m) the axis spans.

    Returns
    -------
    (factor, unit)
        Multiply metres by ``factor`` to get ``unit``: nm below 1 µm, µm below
        1 mm, mm below 1 m, otherwise m.

    Examples
    --------
    >>> length_units(5e-9)
    (1000000000.0, 'nm')
    """
    extent_m = abs(float(extent_m))
    for limit, factor, unit in _LENGTH_UNITS:
        if extent_m < limit:
            return factor, unit
    return 1.0, "m"


def axis_dict(
    values=None,
    *,
    name: str,
    units: str,
    size: int | None = None,
    offset: float = 0.0,
    scale: float = 1.0,
    navigate: bool = False,
    rtol: float = 1e-5,
) -> dict:
    """A HyperSpy axis dictionary, uniform when ``values`` are evenly spaced.

    Parameters
    ----------
    values : array-like, optional
        Axis coordinates. When given and evenly spaced (to ``rtol`` of the
        step), a uniform axis (offset, scale) is returned, otherwise a
        non-uniform axis holding the values.
    name, units : str
        Axis name and units.
    size, offset, scale : optional
        A uniform axis given directly (when ``values`` is None).
    navigate : bool
        True for scan (navigation) axes.
    rtol : float
        Relative tolerance on the step for calling the values uniform.

    Returns
    -------
    dict
        Keys accepted by HyperSpy's ``AxesManager``.
    """
    if values is None:
        return {
            "name": name,
            "units": units,
            "size": int(size),
            "offset": float(offset),
            "scale": float(scale),
            "navigate": navigate,
        }
    values = np.asarray(values, dtype=np.float64)
    if values.size >= 2:
        steps = np.diff(values)
        step = (values[-1] - values[0]) / (values.size - 1)
        if step != 0 and np.all(np.abs(steps - step) <= rtol * abs(step)):
            return axis_dict(
                name=name,
                units=units,
                size=values.size,
                offset=values[0],
                scale=step,
                navigate=navigate,
            )
        return {"name": name, "units": units, "axis": values, "navigate": navigate}
    return axis_dict(
        name=name,
        units=units,
        size=values.size,
        offset=values[0] if values.size else 0.0,
        navigate=navigate,
    )


def scan_axes_m(
    shape: tuple[int, int],
    step_m: tuple[float, float] | None,
    offset_m: tuple[float, float] = (0.0, 0.0),
    names: tuple[str, str] = ("y", "x"),
) -> list[dict]:
    """Navigation axes (y, x) from steps in metres, shown in nm/µm.

    Parameters
    ----------
    shape : (ny, nx)
        Number of scan rows and columns.
    step_m : (step_y, step_x) or None
        Pixel size in metres; None gives uncalibrated pixel axes.
    offset_m : (offset_y, offset_x)
        Position of the first pixel in metres.
    names : (str, str)
        Axis names in array order.

    Returns
    -------
    list of two axis dictionaries, in array order (y first).
    """
    ny, nx = shape
    if step_m is None:
        return [
            axis_dict(name=names[0], units="px", size=ny, navigate=True),
            axis_dict(name=names[1], units="px", size=nx, navigate=True),
        ]
    extent = max(abs(step_m[0]) * ny, abs(step_m[1]) * nx)
    factor, unit = length_units(extent)
    return [
        axis_dict(
            name=name,
            units=unit,
            size=size,
            offset=offset * factor,
            scale=step * factor,
            navigate=True,
        )
        for name, size, offset, step in zip(names, shape, offset_m, step_m)
    ]


def existing_file(path) -> Path:
    """The path of a file a reader is asked to open, checked to exist.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        When ``path`` is not an existing file ("no such file: <path>").

    Examples
    --------
    >>> existing_file(__file__).suffix
    '.py'
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def lazy_curves(data):
    """A dask array over ``data`` whose chunks hold whole curves.

    Parameters
    ----------
    data : array-like (numpy array or memory map), shape ``nav_shape + (n_points,)``
        Not copied.

    Returns
    -------
    dask.array.Array
        Chunked "auto" along the navigation axes, the bias (last) axis in one chunk.

    Examples
    --------
    >>> import numpy as np
    >>> lazy_curves(np.zeros((4, 5, 101))).chunks[-1]
    (101,)
    """
    import dask.array as da

    return da.from_array(data, chunks=("auto",) * max(data.ndim - 1, 0) + (-1,))


def monotonic_bias(bias) -> tuple[np.ndarray, bool]:
    """Check a bias axis is strictly monotonic; return it increasing.

    Parameters
    ----------
    bias : array-like, 1-D
        Bias values (V) in the order of the data points.

    Returns
    -------
    (bias_increasing, reversed)
        ``reversed`` is True when the input was decreasing: the data must then
        be reversed along the bias axis too.

    Raises
    ------
    ValueError
        When the bias is not 1-D, has fewer than 2 points, has NaN, or is not
        strictly monotonic (e.g. a forward+backward loop in one curve).
    """
    bias = np.asarray(bias, dtype=np.float64)
    if bias.ndim != 1 or bias.size < 2:
        raise ValueError(
            f"the bias axis must be 1-D with at least 2 points, got shape {bias.shape}"
        )
    if not np.all(np.isfinite(bias)):
        raise ValueError("the bias axis has NaN or infinite values; give finite biases")
    steps = np.diff(bias)
    if np.all(steps > 0):
        return bias, False
    if np.all(steps < 0):
        return bias[::-1].copy(), True
    turn = int(np.argmax(np.sign(steps) != np.sign(steps[0])))
    raise ValueError(
        "the bias axis is not monotonic (its direction changes after point "
        f"{turn + 1} of {bias.size}, at {bias[turn + 1]:.6g} V); split the "
        "sweep into its forward and backward parts and load each separately"
    )


def iv_signal_dict(
    data,
    bias,
    nav_axes: list[dict],
    *,
    title: str,
    bias_name: str = "Bias",
    bias_units: str = "V",
    quantity: str = "Current (A)",
    original_metadata: dict | None = None,
    processing: dict | None = None,
    extra_metadata: dict | None = None,
) -> dict:
    """The ``file_reader`` dictionary of an I-V map.

    Parameters
    ----------
    data : numpy or dask array, shape ``nav_shape + (n_points,)``
        Values, the last axis along ``bias``. Never modified.
    bias : array-like, shape (n_points,)
        Signal-axis coordinates; reversed with the data when decreasing.
    nav_axes : list of dict
        Navigation axis dictionaries in array order.
    title : str
        ``metadata.General.title``.
    bias_name, bias_units : str
        Name and units of the signal axis ("Bias", "V" for I-V curves).
    quantity : str
        ``metadata.Signal.quantity``, e.g. "Current (A)".
    original_metadata : dict, optional
        Everything read from the file.
    processing : dict, optional
        What the reader did; stored under ``metadata.Processing.load``.
    extra_metadata : dict, optional
        Nested dictionary merged into the metadata (e.g. ``Acquisition_instrument``).

    Returns
    -------
    dict
        With keys ``data``, ``axes``, ``metadata``, ``original_metadata``.
    """
    bias, reversed_ = monotonic_bias(bias)
    if data.shape[-1] != bias.size:
        raise ValueError(
            f"the data have {data.shape[-1]} points per curve but the bias axis "
            f"has {bias.size}; give one bias value per point"
        )
    if len(nav_axes) != data.ndim - 1:
        raise ValueError(
            f"{data.ndim - 1} navigation dimensions in the data but "
            f"{len(nav_axes)} navigation axes"
        )
    if reversed_:
        data = data[..., ::-1]
    processing = dict(processing or {})
    processing["bias_reversed"] = bool(reversed_)
    is_iv = bias_units == "V" and quantity.endswith("(A)")
    metadata = {
        "General": {"title": title},
        "Signal": {
            "signal_type": "IV_curve",
            "quantity": quantity,
            "iv_form": "current_vs_bias"
            if is_iv
            else f"{quantity} vs {bias_name} ({bias_units})",
        },
        "Processing": {"load": processing},
    }
    if not is_iv:
        metadata["General"]["notes"] = (
            f"The values are {quantity} versus {bias_name} ({bias_units}) as stored in the "
            "file, not current (A) versus bias (V)."
        )
    for key, value in (extra_metadata or {}).items():
        if isinstance(value, dict) and isinstance(metadata.get(key), dict):
            metadata[key].update(value)
        else:
            metadata[key] = value
    axes = list(nav_axes) + [
        axis_dict(bias, name=bias_name, units=bias_units, navigate=False)
    ]
    return {
        "data": data,
        "axes": axes,
        "metadata": metadata,
        "original_metadata": original_metadata or {},
    }
