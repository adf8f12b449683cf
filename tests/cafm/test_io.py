"""I-V map readers: generated files of every format read back exactly, the real files, bad input."""

import struct
import warnings

import h5py
import hyperspy.api as hs
import numpy as np
import pytest

from hyperspy_nanoml.cafm import io, load
from hyperspy_nanoml.cafm.nanonis import resample_linear_sweeps
from hyperspy_nanoml.signals.iv_curve import IVCurveSignal, LazyIVCurveSignal

# --------------------------------------------------------------------------------------
# writers of small files with known content
# --------------------------------------------------------------------------------------

NANONIS_PARAMS = ["Sweep Start", "Sweep End", "X (m)", "Y (m)", "Z (m)"]


def write_3ds(
    path,
    channels,
    start,
    end,
    *,
    size=(40e-9, 30e-9),
    keep_records=None,
    extra_bytes=0,
    drop_keys=(),
    header_end=True,
):
    """A Nanonis grid file: ``channels`` maps label -> (ny, nx, points) array.

    ``start``/``end`` are scalars or (ny, nx) per-pixel sweep limits.
    """
    labels = list(channels)
    ny, nx, points = channels[labels[0]].shape
    start = np.broadcast_to(np.asarray(start, dtype=np.float32), (ny, nx))
    end = np.broadcast_to(np.asarray(end, dtype=np.float32), (ny, nx))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32)
    params = np.stack(
        [start, end, xx * 1e-9, yy * 1e-9, np.full((ny, nx), 1e-8, np.float32)], -1
    )
    header = {
        "Grid dim": f'"{nx} x {ny}"',
        "Grid settings": f"1.0E-7;2.0E-7;{size[0]:E};{size[1]:E};0.0E+0",
        "Sweep Signal": '"Bias (V)"',
        "Fixed parameters": '"Sweep Start;Sweep End"',
        "Experiment parameters": '"X (m);Y (m);Z (m)"',
        "# Parameters (4 byte)": str(len(NANONIS_PARAMS)),
        "Experiment size (bytes)": str(len(labels) * points * 4),
        "Points": str(points),
        "Channels": '"' + ";".join(labels) + '"',
        "Date": '"01.02.2024 10:11:12"',
        "Comment": '"generated for tests"',
    }
    text = "".join(f"{k}={v}\r\n" for k, v in header.items() if k not in drop_keys)
    body = np.concatenate([params] + [channels[c] for c in labels], axis=-1)
    records = body.reshape(ny * nx, -1).astype(">f4")
    if keep_records is not None:
        records = records[:keep_records]
    with open(path, "wb") as f:
        f.write(text.encode("latin-1"))
        if header_end:
            f.write(b":HEADER_END:\r\n")
        f.write(records.tobytes())
        f.write(b"\x00" * extra_bytes)
    return path


def _grid(ny=4, nx=5, points=9, seed=0):
    rng = np.random.default_rng(seed)
    current = rng.normal(scale=1e-9, size=(ny, nx, points)).astype(np.float32)
    lockin = rng.uniform(0, 10, size=(ny, nx, points)).astype(np.float32)
    return current, lockin


def write_ibw5(
    path,
    data,
    *,
    sfa=(1, 1, 1, 1),
    sfb=(0, 0, 0, 0),
    dim_units=("", "", "", ""),
    data_units="",
    name="wave0",
    note="",
    labels=None,
):
    """A minimal Igor binary wave, version 5, little-endian (WaveMetrics TN003)."""
    data = np.asarray(data, dtype="<f4")
    n_dim = list(data.shape) + [0] * (4 - data.ndim)
    raw = data.tobytes(order="F")
    label_blocks = []
    for d in range(4):
        names = (labels or {}).get(d)
        if names:
            label_blocks.append(
                b"".join(n.encode().ljust(32, b"\x00")[:32] for n in [""] + names)
            )
        else:
            label_blocks.append(b"")
    note_b = note.encode("latin-1")
    wave_header = b"".join(
        [
            struct.pack("<IIIi", 0, 0, 0, data.size),
            struct.pack("<hh", 2, 0),  # NT_FP32, dLock
            b"\x00" * 6,
            struct.pack("<h", 1),
            name.encode().ljust(32, b"\x00"),
            struct.pack("<iI", 0, 0),
            struct.pack("<4i", *n_dim),
            struct.pack("<4d", *sfa),
            struct.pack("<4d", *sfb),
            data_units.encode().ljust(4, b"\x00")[:4],
            b"".join(u.encode().ljust(4, b"\x00")[:4] for u in dim_units),
            struct.pack("<hhdd", 0, 0, 0.0, 0.0),
            struct.pack("<I4I4II", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            struct.pack("<16i", *([0] * 16)),
            struct.pack("<hhhbb", 0, 0, 0, 0, 0),
            struct.pack("<Iihh", 0, 0, 0, 0),
            struct.pack("<II", 0, 0),
        ]
    )
    assert len(wave_header) == 320
    bin_header = struct.pack(
        "<hiiii4i4iiii",
        0,
        len(wave_header) + len(raw),
        0,
        len(note_b),
        0,
        0,
        0,
        0,
        0,
        *[len(b) for b in label_blocks],
        0,
        0,
        0,
    )
    with open(path, "wb") as f:
        f.write(
            struct.pack("<h", 5)
            + bin_header
            + wave_header
            + raw
            + note_b
            + b"".join(label_blocks)
        )
    return path


def write_gwy(
    path,
    cube,
    *,
    xreal=4e-7,
    yreal=3e-7,
    zreal=1.4,
    xoff=1e-7,
    yoff=0.0,
    zoff=-0.7,
    title="Current",
    calibration=None,
    unit_w="A",
):
    """A Gwyddion file with one brick; cube is (ny, nx, nz)."""
    from gwyfile.objects import GwyContainer, GwyObject, GwySIUnit

    ny, nx, nz = cube.shape
    components = {
        "xres": nx,
        "yres": ny,
        "zres": nz,
        "xreal": xreal,
        "yreal": yreal,
        "zreal": zreal,
        "xoff": xoff,
        "yoff": yoff,
        "zoff": zoff,
        "si_unit_x": GwySIUnit(unitstr="m"),
        "si_unit_y": GwySIUnit(unitstr="m"),
        "si_unit_z": GwySIUnit(unitstr="V"),
        "si_unit_w": GwySIUnit(unitstr=unit_w),
        "data": np.moveaxis(cube, -1, 0).astype(np.float64).ravel(),
    }
    codes = {k: "i" for k in ("xres", "yres", "zres")}
    codes.update({k: "d" for k in ("xreal", "yreal", "zreal", "xoff", "yoff", "zoff")})
    codes["data"] = "D"
    if calibration is not None:
        components["calibration"] = GwyObject(
            "GwyDataLine",
            {
                "res": nz,
                "real": 1.0,
                "si_unit_y": GwySIUnit(unitstr="V"),
                "data": np.asarray(calibration, dtype=np.float64),
            },
            typecodes={"res": "i", "real": "d", "data": "D"},
        )
    container = GwyContainer(
        {
            "/brick/0": GwyObject("GwyBrick", components, typecodes=codes),
            "/brick/0/title": title,
        },
        typecodes={"/brick/0/title": "s"},
    )
    container.tofile(str(path))
    return path


def write_nsid(
    path,
    data_xyz,
    x_m,
    y_m,
    spec,
    *,
    quantity="Current",
    units="A",
    spec_name="Bias",
    spec_units="V",
    second=False,
):
    """A pyNSID-like file: main dataset (x, y, spectral) with dimension scales."""
    with h5py.File(path, "w") as f:
        group = f.create_group("Measurement_000/Channel_000/IV")
        main = group.create_dataset("IV", data=data_xyz)
        main.attrs["quantity"] = quantity
        main.attrs["units"] = units
        main.attrs["data_type"] = "SPECTRAL_IMAGE"
        for i, (name, values, unit, kind) in enumerate(
            [
                ("x", x_m, "m", "SPATIAL"),
                ("y", y_m, "m", "SPATIAL"),
                (spec_name, spec, spec_units, "SPECTRAL"),
            ]
        ):
            scale = group.create_dataset(name, data=np.asarray(values, dtype=np.float64))
            scale.make_scale(name)
            scale.attrs["name"] = name
            scale.attrs["units"] = unit
            scale.attrs["quantity"] = name
            scale.attrs["dimension_type"] = kind
            main.dims[i].attach_scale(scale)
            main.dims[i].label = name
        if second:
            other = f.create_group("Measurement_000/Channel_001/Topo")
            topo = other.create_dataset("Topo3", data=data_xyz * 2)
            topo.attrs["quantity"] = "Height"
            topo.attrs["units"] = "m"
            for i, name in enumerate(("x", "y", spec_name)):
                topo.dims[i].attach_scale(group[name])
    return path


def write_usid(path, data_yx, x_m, y_m, bias):
    """A USID file: (positions, spectral) main dataset, X fastest, with ancillary datasets."""
    ny, nx, n = data_yx.shape
    with h5py.File(path, "w") as f:
        group = f.create_group("Measurement_000/Channel_000")
        main = group.create_dataset("Raw_Data", data=data_yx.reshape(ny * nx, n))
        main.attrs["quantity"] = "Current"
        main.attrs["units"] = "A"
        iy, ix = np.unravel_index(np.arange(ny * nx), (ny, nx))
        pos_ind = group.create_dataset(
            "Position_Indices", data=np.stack([ix, iy], 1).astype(np.uint32)
        )
        pos_val = group.create_dataset(
            "Position_Values", data=np.stack([np.asarray(x_m)[ix], np.asarray(y_m)[iy]], 1)
        )
        spec_ind = group.create_dataset(
            "Spectroscopic_Indices", data=np.arange(n, dtype=np.uint32)[None]
        )
        spec_val = group.create_dataset(
            "Spectroscopic_Values", data=np.asarray(bias, np.float64)[None]
        )
        for ds, labels, units in (
            (pos_ind, ["X", "Y"], ["m", "m"]),
            (pos_val, ["X", "Y"], ["m", "m"]),
            (spec_ind, ["Bias"], ["V"]),
            (spec_val, ["Bias"], ["V"]),
        ):
            ds.attrs["labels"] = labels
            ds.attrs["units"] = units
            main.attrs[ds.name.split("/")[-1]] = ds.ref
    return path


# --------------------------------------------------------------------------------------
# Nanonis .3ds
# --------------------------------------------------------------------------------------


def test_3ds_round_trip_values_axes_metadata(tmp_path):
    current, lockin = _grid()
    path = write_3ds(
        tmp_path / "g.3ds", {"Current (A)": current, "LockinX (V)": lockin}, -0.5, 0.5
    )
    s = load(path)
    assert type(s) is IVCurveSignal
    np.testing.assert_array_equal(s.data, current)
    bias = s.axes_manager.signal_axes[0]
    assert (bias.name, bias.units, bias.size) == ("Bias", "V", 9)
    np.testing.assert_allclose(bias.axis, np.linspace(-0.5, 0.5, 9), atol=1e-12)
    x, y = s.axes_manager.navigation_axes
    assert (x.name, x.units, x.size) == ("x", "nm", 5)
    assert x.scale == pytest.approx(40 / 5) and y.scale == pytest.approx(30 / 4)
    assert s.metadata.Signal.quantity == "Current (A)"
    assert s.metadata.Signal.iv_form == "current_vs_bias"
    assert s.metadata.Processing.load.channel == "Current (A)"
    assert s.metadata.Acquisition_instrument.SPM.grid.width_m == pytest.approx(40e-9)
    # keys the reader does not need are kept
    assert s.original_metadata.header.Comment == "generated for tests"
    np.testing.assert_array_equal(
        s.original_metadata.parameters["Sweep End"], np.full((4, 5), 0.5, np.float32)
    )


def test_3ds_channel_choice_by_name_and_unit(tmp_path):
    current, lockin = _grid()
    path = write_3ds(
        tmp_path / "g.3ds", {"LockinX (V)": lockin, "Current (A)": current}, -1, 1
    )
    np.testing.assert_array_equal(
        load(path).data, current
    )  # default: the current, not the first
    for name in ("LockinX", "lockinx (V)", "LOCKINX"):
        s = load(path, channel=name)
        np.testing.assert_array_equal(s.data, lockin)
        assert s.metadata.Signal.quantity == "LockinX (V)"
        assert s.metadata.Signal.iv_form != "current_vs_bias"


def test_3ds_unknown_channel_lists_the_available_ones(tmp_path):
    current, lockin = _grid()
    path = write_3ds(
        tmp_path / "g.3ds", {"Current (A)": current, "LockinX (V)": lockin}, -1, 1
    )
    with pytest.raises(
        ValueError, match=r"unknown channel 'Frequency'.*Current \(A\).*LockinX \(V\)"
    ):
        load(path, channel="Frequency")
    with pytest.raises(ValueError, match="no current channel.*backward"):
        load(path, backward=True)


def test_3ds_backward_sweep(tmp_path):
    current, lockin = _grid()
    bwd = current[..., ::-1] * 2
    path = write_3ds(
        tmp_path / "g.3ds", {"Current (A)": current, "Current [bwd] (A)": bwd}, -1, 1
    )
    np.testing.assert_array_equal(load(path).data, current)
    s = load(path, backward=True)
    np.testing.assert_array_equal(s.data, bwd)
    assert s.metadata.Processing.load.backward is True
    np.testing.assert_array_equal(load(path, channel="Current [bwd]").data, bwd)


def test_3ds_decreasing_sweep_is_reversed(tmp_path):
    current, _ = _grid()
    path = write_3ds(tmp_path / "g.3ds", {"Current (A)": current}, 0.8, -0.8)
    s = load(path)
    np.testing.assert_allclose(
        s.axes_manager.signal_axes[0].axis, np.linspace(-0.8, 0.8, 9), atol=1e-7
    )
    np.testing.assert_array_equal(s.data, current[..., ::-1])
    assert s.metadata.Processing.load.bias_reversed is True


def test_3ds_incomplete_grid_is_padded_with_nan_and_reported(tmp_path):
    current, _ = _grid()
    path = write_3ds(
        tmp_path / "g.3ds", {"Current (A)": current}, -1, 1, keep_records=13, extra_bytes=17
    )
    with pytest.warns(
        UserWarning, match="13 of 20 pixels were measured; the 7 missing pixels are NaN"
    ):
        s = load(path)
    flat = s.data.reshape(20, 9)
    np.testing.assert_array_equal(flat[:13], current.reshape(20, 9)[:13])
    assert np.isnan(flat[13:]).all()
    assert s.metadata.Processing.load.missing_pixels == 7
    with pytest.warns(UserWarning, match="7 missing pixels"):
        lazy = load(path, lazy=True)
    np.testing.assert_array_equal(lazy.data.compute(), s.data)


def test_3ds_pixels_with_another_sweep_are_interpolated(tmp_path):
    ny, nx, n = 2, 3, 11
    start = np.full((ny, nx), -1.0, np.float32)
    end = np.full((ny, nx), 1.0, np.float32)
    start[1, 2], end[1, 2] = -0.5, 1.5  # shifted sweep
    slopes = np.arange(1, ny * nx + 1, dtype=np.float32).reshape(ny, nx, 1) * 1e-9
    biases = np.linspace(start, end, n, axis=-1)
    current = (slopes * biases).astype(np.float32)  # linear: interpolation is exact
    path = write_3ds(tmp_path / "g.3ds", {"Current (A)": current}, start, end)
    with pytest.warns(UserWarning, match="1 pixels were swept over another bias range"):
        s = load(path)
    common = np.linspace(-1, 1, n)
    np.testing.assert_allclose(s.data[0, 0], slopes[0, 0] * common, rtol=1e-5)
    shifted = s.data[1, 2]
    inside = common >= -0.5
    np.testing.assert_allclose(
        shifted[inside], slopes[1, 2] * common[inside], rtol=1e-5, atol=1e-15
    )
    assert np.isnan(shifted[~inside]).all()


def test_resample_linear_sweeps_matches_numpy_interp():
    rng = np.random.default_rng(3)
    curves = rng.normal(size=(5, 21)).astype(np.float32)
    start = rng.uniform(-1.2, -0.8, 5)
    end = rng.uniform(0.8, 1.2, 5)
    target = np.linspace(-1, 1, 33)
    out = resample_linear_sweeps(curves, start, end, target)
    for p in range(5):
        x = np.linspace(start[p], end[p], 21)
        expected = np.interp(target, x, curves[p], left=np.nan, right=np.nan)
        np.testing.assert_allclose(out[p], expected, rtol=1e-5, atol=1e-6)


def test_3ds_lazy_equals_eager_with_few_blocks(tmp_path):
    current, _ = _grid(ny=10, nx=6, points=16)
    path = write_3ds(tmp_path / "g.3ds", {"Current (A)": current}, -1, 1)
    eager = load(path)
    lazy = load(path, lazy=True)
    assert type(lazy) is LazyIVCurveSignal
    np.testing.assert_array_equal(lazy.data.compute(), eager.data)
    assert lazy.data.numblocks == (1, 1, 1)
    from hyperspy_nanoml.cafm.nanonis import read_3ds

    blocks = read_3ds(path, lazy=True, chunk_bytes=3 * 6 * (5 + 16) * 4)["data"]
    assert blocks.numblocks == (4, 1, 1)  # rows of 3, 3, 3, 1
    np.testing.assert_array_equal(blocks.compute(), current)


def test_3ds_through_hs_load_with_reader_objects(tmp_path):
    current, lockin = _grid()
    path = write_3ds(
        tmp_path / "g.3ds", {"Current (A)": current, "LockinX (V)": lockin}, -1, 1
    )
    s = hs.load(path, file_format=io.nanonis_3ds)
    assert type(s) is IVCurveSignal
    np.testing.assert_array_equal(s.data, current)
    s = hs.load(path, file_format=io, channel="LockinX", lazy=True)
    assert type(s) is LazyIVCurveSignal
    np.testing.assert_array_equal(s.data.compute(), lockin)


def test_3ds_only_needed_keys_are_required(tmp_path):
    current, _ = _grid()
    path = write_3ds(
        tmp_path / "g.3ds",
        {"Current (A)": current},
        -1,
        1,
        drop_keys=("Grid settings", "Experiment size (bytes)", "Date", "Sweep Signal"),
    )
    with pytest.warns(UserWarning, match="no 'Grid settings'; the scan axes are in pixels"):
        s = load(path)
    np.testing.assert_array_equal(s.data, current)
    assert s.axes_manager.navigation_axes[0].units == "px"
    assert s.axes_manager.signal_axes[0].name == "Bias"


@pytest.mark.parametrize(
    "drop, message",
    [
        (("Points",), "its header has no 'Points' key"),
        (("Channels",), "its header has no 'Channels' key"),
        (("Grid dim",), "its header has no 'Grid dim' key"),
        (("Fixed parameters",), "no 'Sweep Start'/'Sweep End'"),
    ],
)
def test_3ds_missing_required_key_is_named(tmp_path, drop, message):
    current, _ = _grid()
    path = write_3ds(tmp_path / "g.3ds", {"Current (A)": current}, -1, 1, drop_keys=drop)
    with pytest.raises(ValueError, match=message):
        load(path)


def test_3ds_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load(tmp_path / "missing.3ds")
    current, _ = _grid()
    truncated = write_3ds(
        tmp_path / "t.3ds",
        {"Current (A)": current},
        -1,
        1,
        header_end=False,
        keep_records=0,
    )
    with pytest.raises(ValueError, match="no :HEADER_END: line.*truncated"):
        load(truncated)
    other = tmp_path / "image.3ds"
    other.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="not a readable Nanonis grid spectroscopy"):
        load(other)
    empty = write_3ds(tmp_path / "e.3ds", {"Current (A)": current}, -1, 1, keep_records=0)
    with pytest.raises(ValueError, match="no complete pixel record"):
        load(empty)
    unknown = tmp_path / "a.xyz"
    unknown.write_bytes(b"")
    with pytest.raises(ValueError, match="no I-V map reader for '.xyz'.*supported: .3ds"):
        load(unknown)


# --------------------------------------------------------------------------------------
# NSID / USID HDF5
# --------------------------------------------------------------------------------------


def _nsid_data(nx=6, ny=4, n=7, seed=1):
    rng = np.random.default_rng(seed)
    data_xyz = rng.uniform(3, 13, size=(nx, ny, n))
    x = np.arange(nx) * 2e-9
    y = 5e-9 + np.arange(ny) * 3e-9
    spec = np.sqrt(np.linspace(7e7, 1.2e8, n))  # non-uniform, like sqrt(E)
    return data_xyz, x, y, spec


def test_nsid_round_trip_transposes_to_y_x_and_keeps_axes(tmp_path):
    data_xyz, x, y, spec = _nsid_data()
    path = write_nsid(
        tmp_path / "m.h5", data_xyz, x, y, spec, quantity="Current", units="A"
    )
    s = load(path)
    assert type(s) is IVCurveSignal
    np.testing.assert_allclose(s.data, data_xyz.transpose(1, 0, 2), rtol=1e-6)
    assert s.data[2, 5, 3] == pytest.approx(data_xyz[5, 2, 3], rel=1e-6)
    ax_x, ax_y = s.axes_manager.navigation_axes
    assert (ax_x.name, ax_x.units, ax_x.size, ax_x.scale) == (
        "x",
        "nm",
        6,
        pytest.approx(2.0),
    )
    assert (ax_y.name, ax_y.offset, ax_y.scale) == (
        "y",
        pytest.approx(5.0),
        pytest.approx(3.0),
    )
    sig = s.axes_manager.signal_axes[0]
    np.testing.assert_allclose(sig.axis, spec)
    assert s.metadata.Signal.quantity == "Current (A)"
    assert s.metadata.Processing.load.zeros_masked is False


def test_nsid_log_quantity_zeros_are_masked_and_counted(tmp_path):
    data_xyz, x, y, spec = _nsid_data()
    data_xyz[1, 2, :3] = 0.0
    data_xyz[4, 0, 6] = 0.0
    path = write_nsid(
        tmp_path / "m.h5",
        data_xyz,
        x,
        y,
        spec,
        quantity="log J",
        units="A/m^2",
        spec_name="sqrt(E)",
        spec_units="(V/m)^0.5",
    )
    with pytest.warns(UserWarning, match="4 values in 2 curves are exactly 0"):
        s = load(path)
    expected = data_xyz.transpose(1, 0, 2).astype(np.float32)
    expected[expected == 0] = np.nan
    np.testing.assert_array_equal(s.data, expected)
    assert s.metadata.Processing.load.masked_values == 4
    assert s.axes_manager.signal_axes[0].name == "sqrt(E)"
    assert s.axes_manager.signal_axes[0].units == "(V/m)^0.5"
    assert s.metadata.Signal.iv_form == "log J (A/m^2) vs sqrt(E) ((V/m)^0.5)"
    with pytest.warns(UserWarning, match="masked"):
        lazy = load(path, lazy=True)
    assert type(lazy) is LazyIVCurveSignal
    np.testing.assert_array_equal(lazy.data.compute(), s.data)
    s_kept = load(path, mask_zeros=False)
    assert np.count_nonzero(s_kept.data == 0) == 4


def test_nsid_channel_choice_and_errors(tmp_path):
    data_xyz, x, y, spec = _nsid_data()
    path = write_nsid(tmp_path / "m.h5", data_xyz, x, y, spec, second=True)
    with pytest.warns(UserWarning, match="2 main datasets"):
        load(path)
    s = load(path, channel="Topo3")
    np.testing.assert_allclose(s.data, 2 * data_xyz.transpose(1, 0, 2), rtol=1e-6)
    with pytest.raises(
        ValueError, match="unknown channel 'nope'.*Measurement_000/Channel_000/IV/IV"
    ):
        load(path, channel="nope")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["data"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match="no NSID main dataset"):
        load(plain)
    fake = tmp_path / "fake.h5"
    fake.write_text("not hdf5")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        load(fake)


def test_usid_positions_are_unfolded(tmp_path):
    rng = np.random.default_rng(2)
    data_yx = rng.normal(size=(3, 5, 8)) * 1e-9
    x = np.arange(5) * 1e-8
    y = np.arange(3) * 2e-8
    bias = np.linspace(2, -2, 8)  # decreasing: reversed
    path = write_usid(tmp_path / "u.h5", data_yx, x, y, bias)
    s = load(path)
    np.testing.assert_allclose(s.data, data_yx[..., ::-1], rtol=1e-6)
    np.testing.assert_allclose(s.axes_manager.signal_axes[0].axis, bias[::-1])
    ax_x, ax_y = s.axes_manager.navigation_axes
    assert (ax_x.name, ax_x.units, ax_x.scale) == ("X", "nm", pytest.approx(10.0))
    assert (ax_y.name, ax_y.scale) == ("Y", pytest.approx(20.0))
    assert s.metadata.Processing.load.format == "USID"
    lazy = load(path, lazy=True)
    np.testing.assert_array_equal(lazy.data.compute(), s.data)


# --------------------------------------------------------------------------------------
# Gwyddion .gwy and Igor .ibw
# --------------------------------------------------------------------------------------


def test_gwy_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    cube = rng.normal(size=(3, 4, 7)) * 1e-10
    path = write_gwy(tmp_path / "v.gwy", cube)
    s = load(path)
    np.testing.assert_allclose(s.data, cube, rtol=1e-6)
    ax_x, ax_y = s.axes_manager.navigation_axes
    assert (ax_x.units, ax_x.offset, ax_x.scale) == (
        "nm",
        pytest.approx(100.0),
        pytest.approx(100.0),
    )
    assert ax_y.scale == pytest.approx(100.0)
    np.testing.assert_allclose(
        s.axes_manager.signal_axes[0].axis, -0.7 + 0.2 * np.arange(7)
    )
    assert s.metadata.Signal.quantity == "Current (A)"
    assert s.metadata.Processing.load.channel == "Current"
    lazy = load(path, lazy=True)
    np.testing.assert_array_equal(lazy.data.compute(), s.data)
    s2 = hs.load(path, file_format=io.gwyddion_gwy)
    np.testing.assert_array_equal(s2.data, s.data)


def test_gwy_calibrated_z_and_channel_errors(tmp_path):
    cube = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)
    z = np.array([-1.0, -0.5, 0.0, 0.2, 0.3])
    path = write_gwy(tmp_path / "v.gwy", cube, calibration=z, title="I")
    s = load(path, channel="I")
    np.testing.assert_allclose(s.axes_manager.signal_axes[0].axis, z)
    np.testing.assert_array_equal(s.data, cube)
    with pytest.raises(ValueError, match=r"unknown channel 'Z'.*0: I"):
        load(path, channel="Z")
    bad = tmp_path / "bad.gwy"
    bad.write_bytes(b"GWYQ....")
    with pytest.raises(ValueError, match="not a Gwyddion native file"):
        load(bad)


def test_ibw_3d_map_scaling_units_note(tmp_path):
    rng = np.random.default_rng(5)
    xyz = rng.normal(size=(4, 3, 6)).astype(np.float32)  # Igor rows = x, columns = y
    path = write_ibw5(
        tmp_path / "m.ibw",
        xyz,
        sfa=(2e-8, 3e-8, 0.1, 1),
        sfb=(1e-8, 0, -0.25, 0),
        dim_units=("m", "m", "V", ""),
        data_units="A",
        name="IVmap",
        note="ScanSize: 8e-08\rSetpoint: 0.5\r",
    )
    s = load(path)
    np.testing.assert_array_equal(s.data, xyz.transpose(1, 0, 2))
    ax_x, ax_y = s.axes_manager.navigation_axes
    assert (ax_x.size, ax_x.units, ax_x.scale, ax_x.offset) == (
        4,
        "nm",
        pytest.approx(20.0),
        pytest.approx(10.0),
    )
    assert (ax_y.size, ax_y.scale) == (3, pytest.approx(30.0))
    np.testing.assert_allclose(
        s.axes_manager.signal_axes[0].axis, -0.25 + 0.1 * np.arange(6)
    )
    assert s.metadata.Signal.quantity == "IVmap (A)"
    assert s.original_metadata.note.ScanSize == "8e-08"
    lazy = load(path, lazy=True)
    np.testing.assert_array_equal(lazy.data.compute(), s.data)


def test_ibw_4d_channels_and_2d_single_curve(tmp_path):
    rng = np.random.default_rng(6)
    xyzc = rng.normal(size=(2, 3, 5, 2)).astype(np.float32)
    path = write_ibw5(
        tmp_path / "c.ibw",
        xyzc,
        sfa=(1e-9, 1e-9, 0.5, 1),
        sfb=(0, 0, -1, 0),
        dim_units=("m", "m", "V", ""),
        labels={3: ["Height", "Current"]},
    )
    s = load(path)  # default: the current channel
    np.testing.assert_array_equal(s.data, xyzc[..., 1].transpose(1, 0, 2))
    np.testing.assert_array_equal(
        load(path, channel="height").data, xyzc[..., 0].transpose(1, 0, 2)
    )
    with pytest.raises(
        ValueError, match=r"unknown channel 'Phase'.*\['Height', 'Current'\]"
    ):
        load(path, channel="Phase")

    bias = np.array([0.5, 0.25, 0.0, -0.25, -0.5], np.float32)
    current = np.array([5, 2, 0, -1, -3], np.float32) * 1e-9
    path = write_ibw5(
        tmp_path / "curve.ibw",
        np.stack([current, bias], 1),
        labels={1: ["Current", "Bias"]},
        data_units="A",
    )
    c = load(path)
    assert c.axes_manager.navigation_dimension == 0
    np.testing.assert_array_equal(c.data, current[::-1])
    np.testing.assert_allclose(c.axes_manager.signal_axes[0].axis, bias[::-1])


# --------------------------------------------------------------------------------------
# plain arrays, CSV, NPY
# --------------------------------------------------------------------------------------


def test_load_array_axes_copy_and_nan():
    rng = np.random.default_rng(7)
    data = rng.normal(size=(3, 4, 6)) * 1e-9
    data[0, 1, 2] = np.nan
    original = data.copy()
    bias = np.linspace(-1, 1, 6)
    s = io.load_array(
        data, bias, scan_step=(0.5, 0.25), scan_units="µm", scan_offset=(1.0, 2.0)
    )
    assert np.isnan(s.data[0, 1, 2])
    np.testing.assert_allclose(s.data, data.astype(np.float32))
    s.data[:] = 0
    np.testing.assert_array_equal(data, original)  # the input is not shared
    ax_x, ax_y = s.axes_manager.navigation_axes
    assert (ax_x.units, ax_x.scale, ax_x.offset) == ("µm", 0.25, 2.0)
    assert (ax_y.units, ax_y.scale, ax_y.offset) == ("µm", 0.5, 1.0)
    small = io.load_array(data, bias, scan_step=20.0, scan_units="nm")
    assert small.axes_manager.navigation_axes[0].units == "nm"


@pytest.mark.parametrize(
    "bias, message",
    [
        (np.array([0.0, 0.5, 1.0, 0.5, 0.0, -0.5]), "not monotonic.*split the sweep"),
        (np.array([0.0, 0.1, np.nan, 0.3, 0.4, 0.5]), "NaN or infinite"),
        (np.linspace(0, 1, 5), r"one value per point \(6\)"),
    ],
)
def test_load_array_bad_bias(bias, message):
    with pytest.raises(ValueError, match=message):
        io.load_array(np.zeros((2, 2, 6)), bias)


def test_load_array_wrong_dimensions():
    with pytest.raises(ValueError, match="1 to 3 dimensions"):
        io.load_array(np.zeros((2, 2, 2, 6)), np.arange(6.0))


def test_csv_and_npy_round_trips(tmp_path):
    rng = np.random.default_rng(8)
    data = rng.normal(size=(2, 3, 5)).astype(np.float32) * 1e-9
    bias = np.linspace(-0.4, 0.4, 5)
    csv = tmp_path / "m.csv"
    np.savetxt(
        csv,
        np.vstack([bias, data.reshape(6, 5)]),
        delimiter=",",
        header="first row: bias (V)",
    )
    s = load(csv, bias="first_row", scan_shape=(2, 3), scan_step=10.0)
    np.testing.assert_allclose(s.data, data, rtol=1e-6)
    np.testing.assert_allclose(s.axes_manager.signal_axes[0].axis, bias)
    assert s.axes_manager.navigation_shape == (3, 2)
    assert s.axes_manager.navigation_axes[0].scale == 10.0
    flat = load(csv, bias="first_row")
    with pytest.raises(ValueError, match="channel='Current' does not apply to .csv"):
        load(csv, bias="first_row", channel="Current")
    assert flat.axes_manager.navigation_shape == (6,)
    with pytest.raises(ValueError, match="6 curves, which is not scan_shape 4 x 4"):
        load(csv, bias="first_row", scan_shape=(4, 4))
    with pytest.raises(ValueError, match="no bias axis; give bias="):
        load(csv)

    npy = tmp_path / "m.npy"
    np.save(npy, data)
    s = load(npy, bias=bias, scan_step=(1.0, 2.0), scan_units="nm")
    np.testing.assert_array_equal(s.data, data)
    lazy = load(npy, bias=bias, lazy=True)
    assert type(lazy) is LazyIVCurveSignal
    np.testing.assert_array_equal(lazy.data.compute(), data)
    s = hs.load(npy, file_format=io.plain_arrays, bias=bias)
    np.testing.assert_array_equal(s.data, data)


def test_hspy_files_come_back_as_iv(tmp_path):
    plain = hs.signals.Signal1D(np.ones((2, 3, 4), np.float32))
    plain.save(tmp_path / "plain.hspy")
    s = load(tmp_path / "plain.hspy")
    assert type(s) is IVCurveSignal
    hs.signals.Signal2D(np.ones((3, 4), np.float32)).save(tmp_path / "image.hspy")
    with pytest.raises(ValueError, match="2 signal dimensions; an I-V map has one"):
        load(tmp_path / "image.hspy")


# --------------------------------------------------------------------------------------
# the real files
# --------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_nanonis_grid(shared_data):
    path = shared_data / "cafm" / "nanonis_sts_grid_30x30.3ds"
    s = load(path)
    assert s.data.shape == (30, 30, 200)
    bias = s.axes_manager.signal_axes[0]
    assert bias.axis[0] == pytest.approx(-0.22) and bias.axis[-1] == pytest.approx(0.22)
    assert bias.units == "V"
    # the measured Bias_m channel is constant: the axis does not come from it
    bias_m = load(path, channel="Bias_m")
    assert np.ptp(bias_m.data) < 1e-3
    x = s.axes_manager.navigation_axes[0]
    assert (x.units, x.scale) == ("nm", pytest.approx(5 / 30))
    assert s.metadata.Signal.quantity == "Current (A)"
    assert np.isfinite(s.data).all()
    assert 1e-10 < np.abs(s.data).max() < 1e-8  # currents of ~nA, in A
    lockin = load(path, channel="LockinX")
    clipped = (lockin.data >= 10.0).any(axis=-1)
    assert clipped.sum() == 8  # the amplifier clips at 10 V in 8 pixels
    assert lockin.data.max() == 10.0
    lazy = load(path, lazy=True, channel="LockinX")
    np.testing.assert_array_equal(lazy.data.compute(), lockin.data)


@pytest.mark.shared_data
def test_real_bfo_nsid(shared_data):
    path = shared_data / "cafm" / "bfo_cafm_iv_50x50.hf5"
    with pytest.warns(UserWarning, match="47 values in 4 curves are exactly 0"):
        s = load(path)
    assert s.data.shape == (50, 50, 53)
    assert np.isnan(s.data).sum() == 47
    with h5py.File(path, "r") as f:
        raw = f["Measurement_000/Channel_000/IV_BFO/IV_BFO"][()].transpose(1, 0, 2)
    keep = raw != 0
    np.testing.assert_allclose(s.data[keep], raw[keep], rtol=1e-6)
    axis = s.axes_manager.signal_axes[0]
    assert axis.axis[0] == pytest.approx(8591.79, abs=0.01)
    assert axis.axis[-1] == pytest.approx(11180.34, abs=0.01)
    assert axis.units == "$(V/m)^{0.5}$"
    assert s.metadata.Signal.quantity == "log J ($A/m^2$)"
    assert s.metadata.Signal.iv_form != "current_vs_bias"
    assert "not current (A) versus bias (V)" in s.metadata.General.notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = load(path, lazy=True)
    np.testing.assert_array_equal(lazy.data.compute(), s.data)
