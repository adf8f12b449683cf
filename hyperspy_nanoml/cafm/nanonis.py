"""Reader for Nanonis grid spectroscopy files (``.3ds``), tolerant of missing keys.

Format (Nanonis "Grid Spectroscopy" binary, as written by the Nanonis SPM
controller): an ASCII header of ``key=value`` lines ending with the line
``:HEADER_END:``, followed by one record per grid pixel, row by row (x fastest),
each record made of big-endian float32 values: first the ``# Parameters (4
byte)`` per-pixel parameters (the "Fixed parameters", normally ``Sweep Start``
and ``Sweep End``, then the "Experiment parameters"), then every channel of
``Channels`` with ``Points`` values each. Channels named ``... [bwd]`` hold the
backward sweep, stored (as in Nanonis' own ``.dat`` files) against the same
bias values as the forward sweep.

Only ``Grid dim``, ``Points``, ``Channels`` and the parameter count (or the
parameter names) are required; every other key is kept in
``original_metadata``. The bias axis comes from the per-pixel ``Sweep Start`` /
``Sweep End`` parameters (never from a measured ``Bias_m`` channel, which can be
constant). Incomplete grids (an interrupted measurement has fewer records than
pixels) are padded with NaN and reported in a warning.

This module has a ``file_reader`` function, so it is a HyperSpy reader:
``hs.load("grid.3ds", file_format=hyperspy_nanoml.cafm.nanonis)``.

Reference: SPECS Nanonis, "Nanonis SPM Controller: File formats" (3ds binary grid format).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from hyperspy_nanoml.cafm.axes import existing_file, iv_signal_dict, scan_axes_m

HEADER_END = b":HEADER_END:"
MAX_HEADER_BYTES = 1 << 20  # a Nanonis header is a few kB
_UNIT = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")


def split_name_unit(label: str) -> tuple[str, str]:
    """``"Current (A)"`` -> ``("Current", "A")``; no unit gives ``""``."""
    match = _UNIT.match(label.strip())
    if match:
        return match.group(1).strip(), match.group(2).strip()
    return label.strip(), ""


def _is_3ds_error(path, why: str) -> ValueError:
    return ValueError(
        f"{path} is not a readable Nanonis grid spectroscopy (.3ds) file: {why}"
    )


def read_3ds_header(path: str | os.PathLike) -> tuple[dict, int]:
    """Parse the ASCII header of a ``.3ds`` file.

    Parameters
    ----------
    path : str or path-like
        The ``.3ds`` file.

    Returns
    -------
    (header, data_offset)
        ``header`` maps every key to its string value (quotes removed);
        ``data_offset`` is the byte where the binary records start.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When no ``:HEADER_END:`` line is found (truncated or not a ``.3ds``).

    Examples
    --------
    >>> header, offset = read_3ds_header("grid.3ds")  # doctest: +SKIP
    >>> header["Grid dim"]  # doctest: +SKIP
    '30 x 30'
    """
    path = existing_file(path)
    with open(path, "rb") as f:
        head = f.read(MAX_HEADER_BYTES)
    end = head.find(HEADER_END)
    if end < 0:
        raise _is_3ds_error(
            path,
            f"no {HEADER_END.decode()} line in its first {len(head)} bytes "
            "(the header is truncated, or this is another format)",
        )
    offset = end + len(HEADER_END)
    if head[offset : offset + 2] == b"\r\n":
        offset += 2
    elif head[offset : offset + 1] == b"\n":
        offset += 1
    header = {}
    for raw in head[:end].decode("latin-1").splitlines():
        if "=" not in raw:
            continue
        key, value = raw.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        header[key.strip()] = value
    return header, offset


class GridLayout:
    """What the header says about the binary records (only the needed keys).

    Attributes
    ----------
    nx, ny : int
        Grid size (``Grid dim = "nx x ny"``).
    points : int
        Points per sweep.
    channels : list of str
        Channel labels with units, e.g. ``"Current (A)"``.
    parameters : list of str
        Per-pixel parameter names (fixed then experiment parameters).
    record_values : int
        float32 values per pixel record.
    """

    def __init__(self, header: dict, path=""):
        def need(key):
            if key not in header:
                raise _is_3ds_error(path, f"its header has no {key!r} key")
            return header[key]

        dims = re.findall(r"\d+", need("Grid dim"))
        if len(dims) != 2:
            raise _is_3ds_error(path, f"cannot read 'Grid dim' = {header['Grid dim']!r}")
        self.nx, self.ny = (int(d) for d in dims)
        points = need("Points")
        try:
            self.points = int(points)
        except ValueError:
            raise _is_3ds_error(path, f"'Points' = {points!r} is not an integer") from None
        self.channels = [c.strip() for c in need("Channels").split(";") if c.strip()]
        fixed = [
            p.strip() for p in header.get("Fixed parameters", "").split(";") if p.strip()
        ]
        experiment = [
            p.strip()
            for p in header.get("Experiment parameters", "").split(";")
            if p.strip()
        ]
        names = fixed + experiment
        count = header.get("# Parameters (4 byte)")
        if count is not None:
            n_params = int(count)
            if len(names) < n_params:
                names += [f"Parameter {i}" for i in range(len(names), n_params)]
            names = names[:n_params]
        elif not names:
            raise _is_3ds_error(
                path,
                "its header has neither '# Parameters (4 byte)' nor parameter names, "
                "so the record layout is unknown",
            )
        self.parameters = names
        if self.nx < 1 or self.ny < 1 or self.points < 1 or not self.channels:
            raise _is_3ds_error(path, "the grid, the points or the channel list is empty")
        self.record_values = len(self.parameters) + len(self.channels) * self.points
        size = header.get("Experiment size (bytes)")
        if size is not None and size.strip().isdigit():
            expected = len(self.channels) * self.points * 4
            if int(size) != expected:
                warnings.warn(
                    f"{path}: 'Experiment size (bytes)' = {size} but Channels x Points x 4 "
                    f"= {expected}; the record layout follows Channels and Points",
                    stacklevel=3,
                )

    def parameter_index(self, *names: str) -> int | None:
        """Index of the first parameter whose name (without unit) matches one of ``names``."""
        wanted = {n.lower() for n in names}
        for i, label in enumerate(self.parameters):
            if split_name_unit(label)[0].lower() in wanted or label.lower() in wanted:
                return i
        return None

    def channel_index(self, channel: str | None, backward: bool) -> int:
        """Index of the requested channel (default: the current), with clear errors."""
        names = [split_name_unit(c)[0] for c in self.channels]
        if channel is None:
            candidates = [
                i
                for i, (n, c) in enumerate(zip(names, self.channels))
                if n.lower().startswith("current") and split_name_unit(c)[1] == "A"
            ] or [i for i, c in enumerate(self.channels) if split_name_unit(c)[1] == "A"]
            candidates = [
                i for i in candidates if ("[bwd]" in names[i].lower()) == backward
            ]
            if not candidates:
                raise ValueError(
                    "no current channel (units A) "
                    f"{'for the backward sweep ' if backward else ''}in this file; "
                    f"choose one with channel=..., available: {self.channels}"
                )
            return candidates[0]
        key = channel.strip().lower()
        base, _ = split_name_unit(key)
        base = base.replace("[bwd]", "").strip()
        if "[bwd]" in key:
            backward = True
        for i, n in enumerate(names):
            stem = n.lower().replace("[bwd]", "").strip()
            if stem in (base, key) and ("[bwd]" in n.lower()) == backward:
                return i
        raise ValueError(
            f"unknown channel {channel!r}"
            f"{' (backward sweep)' if backward else ''}; available channels: {self.channels}"
        )


def _read_records(path, offset, layout, first, count):
    """Records ``first .. first+count`` as native float32 (missing ones NaN)."""
    out = np.full((count, layout.record_values), np.nan, dtype=np.float32)
    record_bytes = layout.record_values * 4
    available = max(0, (os.path.getsize(path) - offset) // record_bytes - first)
    n = min(count, available)
    if n > 0:
        with open(path, "rb") as f:
            f.seek(offset + first * record_bytes)
            raw = np.fromfile(f, dtype=">f4", count=n * layout.record_values)
        out[:n] = raw.reshape(n, layout.record_values)
    return out


def _read_channel_rows(path, offset, layout, row0, row1, start, stop):
    """Scan rows ``row0:row1`` of one channel, shape (rows, nx, points)."""
    rec = _read_records(path, offset, layout, row0 * layout.nx, (row1 - row0) * layout.nx)
    return rec[:, start:stop].reshape(row1 - row0, layout.nx, stop - start)


def resample_linear_sweeps(curves, start, end, target) -> np.ndarray:
    """Put curves measured on per-curve linear sweeps onto one bias axis.

    Curve ``p`` was measured at ``linspace(start[p], end[p], n)``; it is
    linearly interpolated at ``target``; targets outside its sweep are NaN.
    Vectorised over curves (no loop per curve).

    Parameters
    ----------
    curves : ndarray, shape (..., n)
    start, end : ndarray, shape (...)
        Sweep limits of each curve (V).
    target : ndarray, shape (m,)
        The common bias axis (V).

    Returns
    -------
    ndarray, shape (..., m), float32
    """
    curves = np.asarray(curves, dtype=np.float32)
    n = curves.shape[-1]
    start = np.asarray(start, dtype=np.float64)[..., None]
    end = np.asarray(end, dtype=np.float64)[..., None]
    step = (end - start) / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (np.asarray(target, dtype=np.float64) - start) / step
    valid = (f >= -1e-6) & (f <= n - 1 + 1e-6)
    f = np.clip(np.nan_to_num(f, nan=0.0), 0, n - 1)
    i0 = np.minimum(np.floor(f).astype(np.intp), n - 2)
    w = (f - i0).astype(np.float32)
    y0 = np.take_along_axis(curves, i0, axis=-1)
    y1 = np.take_along_axis(curves, i0 + 1, axis=-1)
    out = y0 * (1 - w) + y1 * w
    out[~valid] = np.nan
    return out


def read_3ds(
    path: str | os.PathLike,
    channel: str | None = None,
    *,
    backward: bool = False,
    lazy: bool = False,
    chunk_bytes: float = 64e6,
) -> dict:
    """Read one channel of a Nanonis grid (``.3ds``) as an I-V map dictionary.

    Parameters
    ----------
    path : str or path-like
        The ``.3ds`` file.
    channel : str, optional
        Channel name, with or without its unit (``"Current"``, ``"LockinX (V)"``),
        case-insensitive. Default: the current channel (name starting with
        "Current", units A).
    backward : bool
        Read the backward sweep (the ``[bwd]`` twin of the channel).
    lazy : bool
        Return a dask array read by row blocks of about ``chunk_bytes``.
    chunk_bytes : float
        Target size of a lazy block in bytes.

    Returns
    -------
    dict
        HyperSpy signal dictionary (``data`` (ny, nx, points) float32, ``axes``
        with the scan in nm/µm and the bias in V, ``metadata``,
        ``original_metadata`` with the whole header and the per-pixel
        parameters as (ny, nx) arrays).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, no header end, missing required key, unknown channel, no
        pixel with a valid sweep.

    Examples
    --------
    >>> d = read_3ds("grid.3ds", channel="Current")  # doctest: +SKIP
    """
    path = Path(path)
    header, offset = read_3ds_header(path)
    layout = GridLayout(header, path)
    ci = layout.channel_index(channel, backward)
    label = layout.channels[ci]
    name, units = split_name_unit(label)
    start_col = len(layout.parameters) + ci * layout.points
    stop_col = start_col + layout.points
    n_pix = layout.nx * layout.ny
    record_bytes = layout.record_values * 4
    n_records = max(0, (path.stat().st_size - offset) // record_bytes)
    if n_records == 0:
        raise _is_3ds_error(path, "it holds no complete pixel record after the header")
    if n_records > n_pix:
        warnings.warn(
            f"{path.name}: {n_records} records for a {layout.nx} x {layout.ny} grid; "
            "the extra records are ignored",
            stacklevel=2,
        )

    # per-pixel parameters: small, read whole (strided view of a memory map)
    n_read = min(n_records, n_pix)
    mm = np.memmap(
        path, dtype=">f4", mode="r", offset=offset, shape=(n_read, layout.record_values)
    )
    params = np.full((n_pix, len(layout.parameters)), np.nan, dtype=np.float32)
    params[:n_read] = mm[:, : len(layout.parameters)]
    del mm
    i_start = layout.parameter_index("Sweep Start")
    i_end = layout.parameter_index("Sweep End")
    if i_start is None or i_end is None:
        raise _is_3ds_error(
            path,
            "no 'Sweep Start'/'Sweep End' per-pixel parameters, so the bias of the "
            f"points is unknown (parameters: {layout.parameters})",
        )
    s, e = params[:, i_start].astype(np.float64), params[:, i_end].astype(np.float64)
    measured = np.isfinite(s) & np.isfinite(e) & (s != e)
    if not measured.any():
        raise _is_3ds_error(path, "no pixel has a valid sweep (Sweep Start == Sweep End)")
    first = int(np.argmax(measured))
    # float32 -> its shortest decimal (-0.22, not -0.2199999988)
    s0, e0 = (float(str(np.float32(v))) for v in (s[first], e[first]))
    bias = np.linspace(s0, e0, layout.points)
    tol = 1e-5 * abs(e0 - s0)
    differ = measured & ((np.abs(s - s0) > tol) | (np.abs(e - e0) > tol))
    n_missing = int(n_pix - measured.sum())

    def rows(r0, r1):
        block = _read_channel_rows(path, offset, layout, r0, r1, start_col, stop_col)
        sl = slice(r0 * layout.nx, r1 * layout.nx)
        bad = ~measured[sl].reshape(r1 - r0, layout.nx)
        block[bad] = np.nan
        if differ[sl].any():
            block = resample_linear_sweeps(
                block,
                s[sl].reshape(r1 - r0, layout.nx),
                e[sl].reshape(r1 - r0, layout.nx),
                bias,
            )
        return block

    if lazy:
        import dask
        import dask.array as da

        row_bytes = layout.nx * layout.record_values * 4
        step = int(max(1, min(layout.ny, chunk_bytes // max(row_bytes, 1))))
        blocks = [
            da.from_delayed(
                dask.delayed(rows, pure=True)(r0, min(r0 + step, layout.ny)),
                shape=(min(r0 + step, layout.ny) - r0, layout.nx, layout.points),
                dtype=np.float32,
            )
            for r0 in range(0, layout.ny, step)
        ]
        data = da.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
    else:
        data = rows(0, layout.ny)

    if n_missing:
        warnings.warn(
            f"{path.name}: incomplete grid, {n_pix - n_missing} of {n_pix} pixels were "
            f"measured; the {n_missing} missing pixels are NaN",
            stacklevel=2,
        )
    if differ.any():
        warnings.warn(
            f"{path.name}: {int(differ.sum())} pixels were swept over another bias range "
            f"than {s0:.6g}..{e0:.6g} V; they are linearly interpolated onto it (NaN "
            "outside their own sweep)",
            stacklevel=2,
        )

    # scan calibration from "Grid settings" = centre x; centre y; width; height; angle
    step_m = None
    settings = {}
    if "Grid settings" in header:
        try:
            cx, cy, width, height, angle = (
                float(v) for v in header["Grid settings"].split(";")[:5]
            )
            settings = {
                "centre_x_m": cx,
                "centre_y_m": cy,
                "width_m": width,
                "height_m": height,
                "angle_deg": angle,
            }
            step_m = (height / layout.ny, width / layout.nx)
        except ValueError:
            warnings.warn(
                f"{path.name}: cannot read 'Grid settings' = {header['Grid settings']!r}; "
                "the scan axes are in pixels",
                stacklevel=2,
            )
    else:
        warnings.warn(
            f"{path.name}: no 'Grid settings'; the scan axes are in pixels", stacklevel=2
        )
    nav = scan_axes_m((layout.ny, layout.nx), step_m)

    sweep_name, sweep_units = split_name_unit(header.get("Sweep Signal", "Bias (V)"))
    parameters = {
        label_: params[:, i].reshape(layout.ny, layout.nx)
        for i, label_ in enumerate(layout.parameters)
    }
    processing = {
        "reader": "hyperspy_nanoml.cafm.nanonis",
        "channel": label,
        "backward": bool(backward or "[bwd]" in name.lower()),
        "missing_pixels": n_missing,
        "resampled_pixels": int(differ.sum()),
        "bias_from": "Sweep Start / Sweep End per-pixel parameters",
    }
    extra = {"General": {"original_filename": path.name}}
    if settings:
        extra["Acquisition_instrument"] = {"SPM": {"grid": settings}}
    return iv_signal_dict(
        data,
        bias,
        nav,
        title=f"{path.stem} {name}",
        bias_name=sweep_name or "Bias",
        bias_units=sweep_units or "V",
        quantity=f"{name} ({units})" if units else name,
        original_metadata={"header": header, "parameters": parameters},
        processing=processing,
        extra_metadata=extra,
    )


def file_reader(filename, channel=None, backward=False, lazy=False, **kwds) -> list[dict]:
    """HyperSpy reader protocol: ``hs.load(path, file_format=this_module, channel=...)``.

    Parameters
    ----------
    filename : str
        The ``.3ds`` file.
    channel : str, optional
        Channel name (default: the current channel).
    backward : bool
        Read the backward sweep.
    lazy : bool
        Lazy (dask) data.
    **kwds
        Other ``hs.load`` keywords are not used by this reader.

    Returns
    -------
    list with one signal dictionary.
    """
    return [read_3ds(filename, channel, backward=backward, lazy=lazy)]
