"""Reader for pyNSID and USID HDF5 files (read-only, via h5py).

* **NSID** (pycroscopy's N-dimensional Spectroscopy and Imaging Data): the main
  dataset is N-dimensional with one HDF5 dimension scale per dimension; each
  scale carries ``name``, ``units``, ``quantity`` and ``dimension_type``
  (``SPATIAL``, ``SPECTRAL``, ...). The spectral dimension becomes the signal
  axis, the others the scan.
* **USID** (Universal Spectroscopy and Imaging Data): the main dataset is 2-D
  (positions x spectroscopic values) with references to ``Position_Indices`` /
  ``Position_Values`` / ``Spectroscopic_Indices`` / ``Spectroscopic_Values``
  ancillary datasets, whose ``labels`` and ``units`` attributes name the
  dimensions. Positions are unfolded into the scan grid.

Axes and the stored quantity are kept as they are in the file: the pycroscopy
BiFeO3 C-AFM map stores ln J (A/m^2) against sqrt(E) ((V/m)^0.5), not current
against bias, and is returned as such (``metadata.Signal.iv_form`` says what the
values are). For a quantity that is a logarithm, values that are exactly 0 are
placeholders for invalid logs (log of a non-positive current): they are masked
(NaN) and counted in a warning.

This module has a ``file_reader`` function, so it is a HyperSpy reader:
``hs.load("map.h5", file_format=hyperspy_nanoml.cafm.nsid)``.

References: S. Somnath et al., "USID and Pycroscopy: open frameworks for storing
and analyzing spectroscopic and imaging data", arXiv:1903.09515 (2019); pyNSID
documentation (pycroscopy.github.io/pyNSID).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from hyperspy_nanoml.cafm.axes import (
    axis_dict,
    existing_file,
    iv_signal_dict,
    length_units,
)


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.item())
    return str(value)


def _attrs(obj) -> dict:
    """HDF5 attributes as plain Python (references and arrays of objects as text)."""
    out = {}
    for key, value in obj.attrs.items():
        try:
            if isinstance(value, np.ndarray):
                if value.dtype.kind in "OSU":
                    value = [_text(v) for v in value.ravel()]
                elif value.dtype.names is not None:
                    continue
                else:
                    value = value.tolist()
            elif isinstance(value, (bytes, np.bytes_)):
                value = _text(value)
            elif isinstance(value, np.generic):
                value = value.item()
            elif not isinstance(value, (str, int, float, bool)):
                value = str(value)
        except Exception:  # an exotic attribute is not worth failing for
            value = str(value)
        out[key] = value
    return out


def find_main_datasets(h5) -> list[str]:
    """Paths of the NSID/USID main datasets in an open ``h5py.File``.

    NSID main datasets have dimension scales attached to every dimension
    (``DIMENSION_LIST``); USID main datasets reference ``Position_Indices`` and
    ``Spectroscopic_Values``.
    """
    import h5py

    found = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset) or obj.ndim < 2:
            return
        attrs = obj.attrs
        if "Position_Indices" in attrs and "Spectroscopic_Values" in attrs:
            found.append(name)
        elif "DIMENSION_LIST" in attrs:
            found.append(name)

    h5.visititems(visit)
    return found


def _unit_axis(values, name, units, navigate):
    """Axis dict; lengths in m shown in nm/µm."""
    values = np.asarray(values, dtype=np.float64)
    if units == "m" and navigate and values.size:
        factor, units = length_units(np.ptp(values) if values.size > 1 else values[0])
        values = values * factor
    return axis_dict(values, name=name, units=units, navigate=navigate)


def _nsid_layout(dset):
    """(nav dims in output order, spectral dim, axis dicts) of an NSID dataset."""
    dims = []
    for i, dim in enumerate(dset.dims):
        scale = dim[0] if len(dim) else None
        info = _attrs(scale) if scale is not None else {}
        label = dim.label or info.get("name", f"dim_{i}")
        values = scale[()] if scale is not None else np.arange(dset.shape[i], dtype=float)
        if np.ndim(values) != 1 or len(values) != dset.shape[i]:
            values = np.arange(dset.shape[i], dtype=float)
        dims.append(
            {
                "index": i,
                "name": _text(info.get("name", label)),
                "units": _text(info.get("units", "")),
                "quantity": _text(info.get("quantity", "")),
                "type": _text(info.get("dimension_type", "")).upper(),
                "values": np.asarray(values, dtype=np.float64),
            }
        )
    spectral = [d for d in dims if d["type"] == "SPECTRAL"]
    if len(spectral) > 1:
        raise ValueError(
            f"{dset.name} has {len(spectral)} spectral dimensions "
            f"({[d['name'] for d in spectral]}); an I-V map has one"
        )
    spec = spectral[0] if spectral else dims[-1]
    nav = [d for d in dims if d is not spec]
    if (
        len(nav) == 2
        and nav[0]["name"].lower().startswith("x")
        and nav[1]["name"].lower().startswith("y")
    ):
        nav = nav[::-1]  # HyperSpy array order is (y, x): x is the horizontal axis
    return nav, spec, dims


def _read_nsid(dset, lazy):
    nav, spec, dims = _nsid_layout(dset)
    order = [d["index"] for d in nav] + [spec["index"]]
    if lazy:
        import dask.array as da

        chunks = ["auto"] + [-1] * (dset.ndim - 1)
        data = da.from_array(dset, chunks=tuple(chunks) if order[0] == 0 else "auto")
        data = data.transpose(order) if order != list(range(dset.ndim)) else data
        data = data.astype(np.float32)
    else:
        data = np.asarray(dset[()], dtype=np.float32)
        if order != list(range(dset.ndim)):
            data = np.ascontiguousarray(data.transpose(order))
    nav_axes = [_unit_axis(d["values"], d["name"], d["units"], True) for d in nav]
    description = {
        "format": "NSID",
        "dimensions": {f"dim_{d['index']}": dict(d) for d in dims},
        "dataset_order_in_signal": order,
    }
    return data, nav_axes, spec["values"], spec["name"], spec["units"], description


def _ancillary(h5, dset, key):
    ref = dset.attrs[key]
    anc = h5[ref] if not isinstance(ref, str) else h5[ref]
    labels = [_text(v) for v in np.atleast_1d(anc.attrs.get("labels", []))]
    units = [_text(v) for v in np.atleast_1d(anc.attrs.get("units", []))]
    return np.asarray(anc[()]), labels, units


def _read_usid(h5, dset, lazy):
    if dset.ndim != 2:
        raise ValueError(f"USID main dataset {dset.name} must be 2-D, got {dset.shape}")
    if dset.dtype.kind not in "fiu":
        raise ValueError(
            f"USID main dataset {dset.name} has dtype {dset.dtype}; only real values "
            "are an I-V map (split complex or compound data first)"
        )
    pos_ind, pos_labels, pos_units = _ancillary(h5, dset, "Position_Indices")
    pos_val, _, _ = _ancillary(h5, dset, "Position_Values")
    spec_val, spec_labels, spec_units = _ancillary(h5, dset, "Spectroscopic_Values")
    pos_ind = pos_ind.reshape(dset.shape[0], -1)
    pos_val = pos_val.reshape(dset.shape[0], -1)
    spec_val = spec_val.reshape(-1, dset.shape[1])
    varying = [i for i in range(spec_val.shape[0]) if np.unique(spec_val[i]).size > 1]
    if len(varying) != 1:
        raise ValueError(
            f"USID dataset {dset.name} has spectroscopic dimensions {spec_labels} of which "
            f"{len(varying)} vary; an I-V map has exactly one (the bias)"
        )
    si = varying[0]
    n_dims = pos_ind.shape[1]
    sizes = [int(pos_ind[:, i].max()) + 1 for i in range(n_dims)]
    changes = [int(np.count_nonzero(np.diff(pos_ind[:, i]))) for i in range(n_dims)]
    slow_to_fast = sorted(range(n_dims), key=lambda i: changes[i])
    shape = tuple(sizes[i] for i in slow_to_fast)
    if int(np.prod(shape)) != dset.shape[0]:
        raise ValueError(
            f"USID positions of {dset.name} do not form a full grid ({sizes} for "
            f"{dset.shape[0]} positions)"
        )
    expected = np.stack(np.unravel_index(np.arange(dset.shape[0]), shape), axis=1)
    if not np.array_equal(pos_ind[:, slow_to_fast], expected):
        raise ValueError(f"USID positions of {dset.name} are not in raster order")
    nav_axes = []
    for k, i in enumerate(slow_to_fast):
        stride = int(np.prod(shape[k + 1 :]))
        values = pos_val[: shape[k] * stride : stride, i]
        label = pos_labels[i] if i < len(pos_labels) else f"dim_{i}"
        unit = pos_units[i] if i < len(pos_units) else ""
        nav_axes.append(_unit_axis(values, label, unit, True))
    if lazy:
        import dask.array as da

        data = da.from_array(dset, chunks=("auto", -1)).astype(np.float32)
    else:
        data = np.asarray(dset[()], dtype=np.float32)
    data = data.reshape(shape + (dset.shape[1],))
    description = {
        "format": "USID",
        "position_labels": pos_labels,
        "position_units": pos_units,
        "spectroscopic_labels": spec_labels,
        "spectroscopic_units": spec_units,
    }
    name = spec_labels[si] if si < len(spec_labels) else "Bias"
    unit = spec_units[si] if si < len(spec_units) else "V"
    return data, nav_axes, spec_val[si].astype(np.float64), name, unit, description


def read_hdf5(
    path: str | os.PathLike,
    channel: str | None = None,
    *,
    lazy: bool = False,
    mask_zeros: bool | None = None,
) -> dict:
    """Read an NSID or USID main dataset as an I-V map dictionary.

    Parameters
    ----------
    path : str or path-like
        The HDF5 file (opened read-only).
    channel : str, optional
        Path of the main dataset inside the file (or its name); default the
        first main dataset found (a warning lists the others).
    lazy : bool
        Dask array over the h5py dataset (the file stays open while the signal
        lives).
    mask_zeros : bool, optional
        Replace exact zeros by NaN. Default: True when the stored quantity is a
        logarithm (its zeros are placeholders for invalid logs).

    Returns
    -------
    dict
        HyperSpy signal dictionary; the axes, their names/units and
        ``metadata.Signal.quantity`` are those stored in the file.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, no NSID/USID main dataset, unknown channel, layouts that
        are not an I-V map.

    Examples
    --------
    >>> d = read_hdf5("bfo_cafm_iv_50x50.hf5")  # doctest: +SKIP
    """
    import h5py

    path = existing_file(path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not an HDF5 file ({err})") from None
    try:
        mains = find_main_datasets(h5)
        if not mains:
            raise ValueError(
                f"{path} has no NSID main dataset (dimension scales on every dimension) "
                "nor USID main dataset (Position_/Spectroscopic_ references)"
            )
        if channel is None:
            name = mains[0]
            if len(mains) > 1:
                warnings.warn(
                    f"{path.name} has {len(mains)} main datasets; reading {name!r} "
                    f"(choose another with channel=..., available: {mains})",
                    stacklevel=2,
                )
        else:
            key = channel.strip("/")
            matches = [m for m in mains if m == key or m.split("/")[-1] == key]
            if not matches:
                raise ValueError(
                    f"unknown channel {channel!r} in {path.name}; available main "
                    f"datasets: {mains}"
                )
            name = matches[0]
        dset = h5[name]
        info = _attrs(dset)
        if "Position_Indices" in dset.attrs:
            data, nav_axes, spec, spec_name, spec_units, layout = _read_usid(h5, dset, lazy)
        else:
            data, nav_axes, spec, spec_name, spec_units, layout = _read_nsid(dset, lazy)
        quantity_name = _text(info.get("quantity", "")) or dset.name.split("/")[-1]
        quantity_units = _text(info.get("units", ""))
        quantity = (
            f"{quantity_name} ({quantity_units})" if quantity_units else quantity_name
        )
        if mask_zeros is None:
            q = quantity_name.lower()
            mask_zeros = q.startswith(("log", "ln")) or " log" in q
        n_masked = None
        if mask_zeros:
            if lazy:
                import dask.array as da

                data = da.where(data == 0, np.float32(np.nan), data)
                warnings.warn(
                    f"{path.name}: values exactly 0 are masked (NaN) as placeholders of "
                    f"invalid {quantity_name}; compute the signal to count them",
                    stacklevel=2,
                )
            else:
                zeros = data == 0
                n_masked = int(zeros.sum())
                if n_masked:
                    data = np.where(zeros, np.float32(np.nan), data)
                    n_curves = int(zeros.any(axis=-1).sum())
                    warnings.warn(
                        f"{path.name}: {n_masked} values in {n_curves} curves are exactly 0, "
                        f"placeholders for invalid {quantity_name}; they are masked (NaN)",
                        stacklevel=2,
                    )
        groups = {}
        for part in name.split("/")[:-1]:
            key = part if not groups else f"{list(groups)[-1]}/{part}"
            groups[key] = _attrs(h5[key])
        original = {
            "dataset": name,
            "attributes": info,
            "group_attributes": {k.replace("/", "__"): v for k, v in groups.items()},
            "file_attributes": _attrs(h5),
            "layout": layout,
        }
        processing = {
            "reader": "hyperspy_nanoml.cafm.nsid",
            "dataset": name,
            "format": layout["format"],
            "zeros_masked": bool(mask_zeros),
            "masked_values": -1 if n_masked is None else n_masked,
        }
        result = iv_signal_dict(
            data,
            spec,
            nav_axes,
            title=f"{path.stem} {name.split('/')[-1]}",
            bias_name=spec_name,
            bias_units=spec_units,
            quantity=quantity,
            original_metadata=original,
            processing=processing,
            extra_metadata={"General": {"original_filename": path.name}},
        )
    except BaseException:
        h5.close()
        raise
    if not lazy:
        h5.close()
    return result


def file_reader(filename, channel=None, lazy=False, mask_zeros=None, **kwds) -> list[dict]:
    """HyperSpy reader protocol: ``hs.load(path, file_format=this_module)``.

    Parameters
    ----------
    filename : str
        The HDF5 file.
    channel : str, optional
        Main dataset path or name.
    lazy : bool
        Lazy (dask) data.
    mask_zeros : bool, optional
        See :func:`read_hdf5`.
    **kwds
        Other ``hs.load`` keywords are not used by this reader.

    Returns
    -------
    list with one signal dictionary.
    """
    return [read_hdf5(filename, channel, lazy=lazy, mask_zeros=mask_zeros)]
