"""Reader for I-V volume data (``GwyBrick``) in Gwyddion ``.gwy`` files, via gwyfile.

Gwyddion stores spectroscopy grids as volume data ("bricks", container keys
``/brick/N``): ``xres x yres x zres`` values in base SI units with physical
sizes ``xreal``, ``yreal``, ``zreal`` and offsets ``xoff``, ``yoff``, ``zoff``;
the value array runs plane by plane (``data[k * xres * yres + j * xres + i]``,
i.e. shape (zres, yres, xres)), the z axis being the spectroscopic one (here
the bias). An optional ``calibration`` data line gives non-linear z values.

gwyfile parses the whole file into memory, so ``lazy=True`` wraps that array
in dask (the memory saving of lazy loading does not apply to ``.gwy``).

This module has a ``file_reader`` function, so it is a HyperSpy reader:
``hs.load("grid.gwy", file_format=hyperspy_nanoml.cafm.gwyddion)``.

Reference: Gwyddion user guide, "Gwyddion Native File Format" (GWYP
serialisation, GwyBrick components), gwyddion.net/documentation.
"""

from __future__ import annotations

import os
import re

import numpy as np

from hyperspy_nanoml.cafm.axes import (
    axis_dict,
    existing_file,
    iv_signal_dict,
    scan_axes_m,
)

_BRICK_KEY = re.compile(r"^/brick/(\d+)$")


def _unit(obj) -> str:
    if obj is None:
        return ""
    try:
        return str(obj.get("unitstr", "") or "")
    except AttributeError:
        return str(obj)


def _plain(value):
    """gwyfile objects -> plain dicts for original_metadata (arrays summarised)."""
    if isinstance(value, dict):
        return {
            str(k).strip("/").replace("/", "__") or "root": _plain(v)
            for k, v in value.items()
            if not (isinstance(v, np.ndarray) and v.size > 4096)
        }
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def list_bricks(container) -> dict[int, str]:
    """``{brick number: title}`` of the volume data in a loaded ``.gwy`` container."""
    out = {}
    for key in container:
        match = _BRICK_KEY.match(str(key))
        if match:
            number = int(match.group(1))
            out[number] = str(container.get(f"/brick/{number}/title", f"brick {number}"))
    return dict(sorted(out.items()))


def brick_to_dict(brick, *, title: str = "", lazy: bool = False, metadata=None) -> dict:
    """An I-V map dictionary from a ``GwyBrick`` object (a dict of its components).

    Parameters
    ----------
    brick : mapping
        The brick's components: ``xres``, ``yres``, ``zres``, ``xreal``,
        ``yreal``, ``zreal``, ``xoff``, ``yoff``, ``zoff``, ``si_unit_x`` /
        ``_y`` / ``_z`` / ``_w`` (``GwySIUnit`` with ``unitstr``), ``data``,
        optional ``calibration`` (a ``GwyDataLine`` of z values).
    title : str
        Signal title.
    lazy : bool
        Wrap the data in dask.
    metadata : mapping, optional
        The brick's Gwyddion metadata container, kept in original_metadata.

    Returns
    -------
    dict
        HyperSpy signal dictionary, data (yres, xres, zres) float32, scan axes
        from the lateral sizes (m -> nm/µm), signal axis from z.
    """
    try:
        xres, yres, zres = (int(brick[k]) for k in ("xres", "yres", "zres"))
        values = np.asarray(brick["data"])
    except KeyError as err:
        raise ValueError(f"the Gwyddion brick has no {err.args[0]!r} component") from None
    if values.size != xres * yres * zres:
        raise ValueError(
            f"the Gwyddion brick holds {values.size} values for {xres} x {yres} x {zres}"
        )
    cube = values.reshape(zres, yres, xres)
    data = np.moveaxis(cube, 0, -1).astype(np.float32)  # (y, x, z), a new array
    xreal = float(brick.get("xreal", xres))
    yreal = float(brick.get("yreal", yres))
    zreal = float(brick.get("zreal", zres))
    xoff, yoff, zoff = (float(brick.get(k, 0.0)) for k in ("xoff", "yoff", "zoff"))
    unit_xy = _unit(brick.get("si_unit_x"))
    unit_z = _unit(brick.get("si_unit_z")) or "V"
    unit_w = _unit(brick.get("si_unit_w"))
    calibration = brick.get("calibration")
    if calibration is not None and "data" in calibration:
        z = np.asarray(calibration["data"], dtype=np.float64)
        unit_z = _unit(calibration.get("si_unit_y")) or unit_z
        if z.size != zres:
            raise ValueError(
                f"the brick's z calibration has {z.size} values for zres = {zres}"
            )
    else:
        # Gwyddion's pixel-to-real rule, as for the lateral axes: zoff + k * zreal / zres
        z = zoff + np.arange(zres) * (zreal / zres)
    if unit_xy == "m":
        nav = scan_axes_m((yres, xres), (yreal / yres, xreal / xres), (yoff, xoff))
    else:
        nav = [
            axis_dict(
                name=name,
                units=unit_xy or "px",
                size=size,
                offset=offset,
                scale=real / size,
                navigate=True,
            )
            for name, size, offset, real in (
                ("y", yres, yoff, yreal),
                ("x", xres, xoff, xreal),
            )
        ]
    if lazy:
        import dask.array as da

        data = da.from_array(data, chunks=("auto", -1, -1))
    quantity_name = "Current" if unit_w == "A" else "Value"
    quantity = f"{quantity_name} ({unit_w})" if unit_w else quantity_name
    original = {k: _plain(v) for k, v in brick.items() if k not in ("data",)}
    if metadata is not None:
        original["meta"] = _plain(metadata)
    return iv_signal_dict(
        data,
        z,
        nav,
        title=title,
        bias_name="Bias" if unit_z == "V" else "z",
        bias_units=unit_z,
        quantity=quantity,
        original_metadata={"brick": original},
        processing={"reader": "hyperspy_nanoml.cafm.gwyddion"},
    )


def read_gwy(
    path: str | os.PathLike, channel: str | int | None = None, *, lazy: bool = False
) -> dict:
    """Read one volume (brick) of a Gwyddion ``.gwy`` file as an I-V map dictionary.

    Parameters
    ----------
    path : str or path-like
        The ``.gwy`` file.
    channel : str or int, optional
        Brick title or number; default the first brick.
    lazy : bool
        Wrap the (in-memory) data in dask.

    Returns
    -------
    dict
        HyperSpy signal dictionary (see :func:`brick_to_dict`).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, not a Gwyddion file, no volume data, unknown channel.

    Examples
    --------
    >>> d = read_gwy("grid.gwy", channel="Current")  # doctest: +SKIP
    """
    import gwyfile

    path = existing_file(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GWYP":
        raise ValueError(
            f"{path} is not a Gwyddion native file (it starts with {magic!r}, not b'GWYP')"
        )
    container = gwyfile.load(str(path))
    bricks = list_bricks(container)
    if not bricks:
        raise ValueError(
            f"{path.name} has no volume data (/brick/N); Gwyddion images (/N/data) are not I-V maps"
        )
    if channel is None:
        number = next(iter(bricks))
    elif isinstance(channel, (int, np.integer)) and int(channel) in bricks:
        number = int(channel)
    else:
        matches = [n for n, t in bricks.items() if t.lower() == str(channel).lower()]
        if not matches:
            raise ValueError(
                f"unknown channel {channel!r} in {path.name}; available volume data: "
                f"{[f'{n}: {t}' for n, t in bricks.items()]}"
            )
        number = matches[0]
    result = brick_to_dict(
        container[f"/brick/{number}"],
        title=f"{path.stem} {bricks[number]}",
        lazy=lazy,
        metadata=container.get(f"/brick/{number}/meta"),
    )
    result["metadata"]["General"]["original_filename"] = path.name
    result["metadata"]["Processing"]["load"]["channel"] = bricks[number]
    return result


def file_reader(filename, channel=None, lazy=False, **kwds) -> list[dict]:
    """HyperSpy reader protocol: ``hs.load(path, file_format=this_module)``.

    Parameters
    ----------
    filename : str
        The ``.gwy`` file.
    channel : str or int, optional
        Brick title or number.
    lazy : bool
        Lazy (dask) data.
    **kwds
        Other ``hs.load`` keywords are not used by this reader.

    Returns
    -------
    list with one signal dictionary.
    """
    return [read_gwy(filename, channel, lazy=lazy)]
