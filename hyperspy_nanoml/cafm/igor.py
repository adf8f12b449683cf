"""Reader for I-V data in Igor binary waves (``.ibw``, e.g. Asylum Research), via igor2.

Layouts understood (Igor dimensions are rows, columns, layers, chunks; igor2
returns them as a numpy array in that order):

* 3-D wave (x, y, points): one channel of a spectroscopy map; the per-dimension
  scaling ``value = sfA[d] * index + sfB[d]`` and units give the scan
  calibration and the bias axis.
* 4-D wave (x, y, points, channels): several channels, named by the dimension
  labels of the 4th dimension; choose one with ``channel``.
* 2-D wave (points, channels): a single curve whose columns are named by the
  dimension labels of the 2nd dimension (Asylum force/I-V curves); the bias is
  the column named like "Bias" (or "Volt"), the values the chosen channel
  (default: the column named like "Current").
* 1-D wave (points): a single curve, bias from the wave scaling.

Asylum writes its settings into the wave note as ``key: value`` lines; they are
kept in ``original_metadata.note``.

igor2 reads the whole wave, so ``lazy=True`` wraps that array in dask.

This module has a ``file_reader`` function, so it is a HyperSpy reader:
``hs.load("map.ibw", file_format=hyperspy_nanoml.cafm.igor)``.

Reference: WaveMetrics Technical Note 003, "Igor Binary Format" (version 5).
"""

from __future__ import annotations

import os

import numpy as np

from hyperspy_nanoml.cafm.axes import (
    axis_dict,
    existing_file,
    iv_signal_dict,
    length_units,
)


def _text(value) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return value.split(b"\x00", 1)[0].decode("latin-1").strip()
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "S" and value.size:
            return (
                b"".join(value.ravel().tolist())
                .split(b"\x00", 1)[0]
                .decode("latin-1")
                .strip()
            )
        return ""
    return str(value).strip()


def parse_note(note) -> dict:
    """Asylum-style wave note (``key: value`` lines) -> dict of strings."""
    text = _text(note) if not isinstance(note, str) else note
    out = {}
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if ":" in line:
            key, value = line.split(":", 1)
            if key.strip():
                out[key.strip()] = value.strip()
    return out


def _dim_units(wave: dict) -> list[str]:
    header = wave["wave_header"]
    units = [_text(u) for u in header.get("dimUnits", [b""] * 4)]
    extended = wave.get("dimension_units", b"")
    sizes = wave.get("bin_header", {}).get("dimEUnitsSize", [0, 0, 0, 0])
    raw = (
        b"".join(extended.tolist())
        if isinstance(extended, np.ndarray)
        else bytes(extended or b"")
    )
    start = 0
    for d, size in enumerate(sizes):
        if size:
            units[d] = raw[start : start + size].decode("latin-1").strip("\x00 ")
            start += size
    return units + [""] * (4 - len(units))


def _data_units(wave: dict) -> str:
    extended = wave.get("data_units", b"")
    raw = (
        b"".join(extended.tolist())
        if isinstance(extended, np.ndarray)
        else bytes(extended or b"")
    )
    return raw.decode("latin-1").strip("\x00 ") or _text(
        wave["wave_header"].get("dataUnits", b"")
    )


def _dim_labels(wave: dict, dim: int) -> list[str]:
    labels = wave.get("labels") or []
    if dim < len(labels) and labels[dim]:
        return [_text(v) for v in labels[dim]][1:]  # [0] names the dimension itself
    return []


def _pick(labels: list[str], channel, keywords, what):
    if channel is not None:
        if isinstance(channel, (int, np.integer)):
            if 0 <= int(channel) < len(labels) or not labels:
                return int(channel)
        for i, label in enumerate(labels):
            if label.lower() == str(channel).lower():
                return i
        raise ValueError(f"unknown channel {channel!r}; available channels: {labels}")
    for keyword in keywords:
        for i, label in enumerate(labels):
            if keyword in label.lower():
                return i
    if labels:
        raise ValueError(
            f"no {what} channel found; choose one with channel=..., available: {labels}"
        )
    return 0


def wave_to_dict(wave: dict, *, channel=None, title: str = "", lazy: bool = False) -> dict:
    """An I-V map dictionary from the wave structure igor2 returns.

    Parameters
    ----------
    wave : dict
        ``igor2.binarywave.load(path)["wave"]``: ``wave_header`` (``nDim``,
        ``sfA``, ``sfB``, ``dimUnits``, ``dataUnits``, ``bname``), ``wData``,
        optional ``note``, ``labels``, ``dimension_units``, ``data_units``.
    channel : str or int, optional
        Channel label or index (4-D and 2-D layouts).
    title : str
        Signal title (default: the wave name).
    lazy : bool
        Wrap the data in dask.

    Returns
    -------
    dict
        HyperSpy signal dictionary.

    Raises
    ------
    ValueError
        Unknown channel, text or complex waves, unsupported layouts.
    """
    header = wave["wave_header"]
    values = np.asarray(wave["wData"])
    if values.dtype.kind not in "fiu":
        raise ValueError(
            f"the Igor wave has dtype {values.dtype}; only real numeric waves are I-V data"
        )
    name = _text(header.get("bname", b"")) or "wave"
    sfa = [float(v) for v in header.get("sfA", [1.0] * 4)]
    sfb = [float(v) for v in header.get("sfB", [0.0] * 4)]
    units = _dim_units(wave)
    data_units = _data_units(wave)
    note = parse_note(wave.get("note", b""))
    original = {
        "wave_name": name,
        "dimensions": list(values.shape),
        "sfA": sfa,
        "sfB": sfb,
        "dimension_units": units,
        "data_units": data_units,
        "labels": [_dim_labels(wave, d) for d in range(4)],
        "note": note,
    }
    ndim = values.ndim
    channel_label = None
    if ndim in (3, 4):
        if ndim == 4:
            labels = _dim_labels(wave, 3)
            ci = _pick(labels, channel, ("current",), "current")
            channel_label = labels[ci] if labels else str(ci)
            cube = values[..., ci]
        else:
            if channel is not None:
                raise ValueError(
                    f"this Igor wave holds one channel ({name!r}); channel={channel!r} "
                    "does not apply"
                )
            cube = values
        data = np.ascontiguousarray(np.transpose(cube, (1, 0, 2)), dtype=np.float32)
        n_points = data.shape[-1]
        bias = sfb[2] + sfa[2] * np.arange(n_points)
        bias_units = units[2] or "V"
        nav = []
        for d, axis_name in ((1, "y"), (0, "x")):
            unit = units[d]
            size, offset, scale = values.shape[d], sfb[d], sfa[d]
            if unit == "m":
                factor, unit = length_units(abs(scale) * size)
                offset, scale = offset * factor, scale * factor
            nav.append(
                axis_dict(
                    name=axis_name,
                    units=unit or "px",
                    size=size,
                    offset=offset,
                    scale=scale,
                    navigate=True,
                )
            )
    elif ndim == 2:
        labels = _dim_labels(wave, 1)
        if not labels:
            raise ValueError(
                "this 2-D Igor wave has no column labels, so the bias and current columns "
                "are unknown; label them (SetDimLabel) or save a 3-D map"
            )
        bi = _pick(labels, None, ("bias", "volt"), "bias")
        ci = _pick(labels, channel, ("current",), "current")
        if bi == ci:
            raise ValueError(f"the bias and the values are the same column {labels[bi]!r}")
        bias = values[:, bi].astype(np.float64)
        data = values[:, ci].astype(np.float32)
        channel_label = labels[ci]
        bias_units = "V"
        nav = []
    elif ndim == 1:
        data = values.astype(np.float32)
        bias = sfb[0] + sfa[0] * np.arange(values.shape[0])
        bias_units = units[0] or "V"
        nav = []
    else:
        raise ValueError(f"an Igor wave of {ndim} dimensions is not an I-V map")
    if lazy:
        import dask.array as da

        data = da.from_array(data, chunks=("auto",) + (-1,) * (data.ndim - 1))
    label = channel_label or name
    if data_units:
        quantity = f"{label} ({data_units})"
    else:
        quantity = label
    return iv_signal_dict(
        data,
        bias,
        nav,
        title=title or name,
        bias_name="Bias",
        bias_units=bias_units,
        quantity=quantity,
        original_metadata=original,
        processing={"reader": "hyperspy_nanoml.cafm.igor", "channel": label},
    )


def read_ibw(path: str | os.PathLike, channel=None, *, lazy: bool = False) -> dict:
    """Read an Igor binary wave (``.ibw``) as an I-V map dictionary.

    Parameters
    ----------
    path : str or path-like
        The ``.ibw`` file.
    channel : str or int, optional
        Channel label or index for multi-channel waves.
    lazy : bool
        Wrap the data in dask.

    Returns
    -------
    dict
        HyperSpy signal dictionary (see :func:`wave_to_dict`).

    Examples
    --------
    >>> d = read_ibw("iv_map.ibw", channel="Current")  # doctest: +SKIP
    """
    from igor2 import binarywave

    path = existing_file(path)
    try:
        wave = binarywave.load(str(path))["wave"]
    except Exception as err:  # igor2 raises assorted errors on foreign files
        raise ValueError(f"{path} is not a readable Igor binary wave ({err})") from None
    result = wave_to_dict(wave, channel=channel, title=path.stem, lazy=lazy)
    result["metadata"]["General"]["original_filename"] = path.name
    return result


def file_reader(filename, channel=None, lazy=False, **kwds) -> list[dict]:
    """HyperSpy reader protocol: ``hs.load(path, file_format=this_module)``.

    Parameters
    ----------
    filename : str
        The ``.ibw`` file.
    channel : str or int, optional
        Channel label or index.
    lazy : bool
        Lazy (dask) data.
    **kwds
        Other ``hs.load`` keywords are not used by this reader.

    Returns
    -------
    list with one signal dictionary.
    """
    return [read_ibw(filename, channel, lazy=lazy)]
