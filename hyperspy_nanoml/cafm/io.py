"""Load conductive-AFM I-V maps as :class:`~hyperspy_nanoml.signals.iv_curve.IVCurveSignal`.

One entry point, :func:`load`, picks the reader from the file extension:

===============================  ==========================================  =======================
extension                        format                                      reader module
===============================  ==========================================  =======================
``.3ds``                         Nanonis grid spectroscopy                   :mod:`.nanonis`
``.h5 .hdf5 .hf5 .nsid .usid``   pyNSID / USID HDF5 (pycroscopy)             :mod:`.nsid`
``.gwy``                         Gwyddion volume data (GwyBrick)             :mod:`.gwyddion`
``.ibw``                         Igor binary wave (Asylum Research)          :mod:`.igor`
``.csv .txt .npy``               plain arrays, ``bias=`` required            :mod:`.arrays`
``.hspy .zspy``                  HyperSpy's own files                        ``hs.load``
===============================  ==========================================  =======================

Every reader module (and this module, which dispatches on the extension) has a
``file_reader`` function, so HyperSpy can use it directly::

    import hyperspy.api as hs
    from hyperspy_nanoml.cafm import io
    s = hs.load("grid.3ds", file_format=io.nanonis_3ds, channel="Current")
    s = hs.load("grid.3ds", file_format=io)      # any supported extension

:func:`load_array` makes an I-V map from an in-memory array and its axes.
"""

from __future__ import annotations

import os
from pathlib import Path

from hyperspy_nanoml.cafm import arrays, gwyddion, igor, nanonis, nsid
from hyperspy_nanoml.cafm.arrays import iv_dict_from_array
from hyperspy_nanoml.cafm.axes import lazy_curves

# reader objects for hs.load(path, file_format=...)
nanonis_3ds = nanonis
nsid_hdf5 = nsid
gwyddion_gwy = gwyddion
igor_ibw = igor
plain_arrays = arrays

READERS = {
    ".3ds": nanonis,
    ".h5": nsid,
    ".hdf5": nsid,
    ".hf5": nsid,
    ".nsid": nsid,
    ".usid": nsid,
    ".gwy": gwyddion,
    ".ibw": igor,
    ".csv": arrays,
    ".txt": arrays,
    ".npy": arrays,
}
_HYPERSPY = (".hspy", ".zspy")


def reader_for(path: str | os.PathLike):
    """The reader module for a file, from its extension.

    Raises
    ------
    ValueError
        For an extension no reader handles (the message lists the supported ones).
    """
    ext = Path(path).suffix.lower()
    if ext not in READERS:
        raise ValueError(
            f"no I-V map reader for {ext or 'a file without extension'!r} ({path}); "
            f"supported: {', '.join(sorted(READERS) + list(_HYPERSPY))}"
        )
    return READERS[ext]


def signal_from_dict(signal_dict: dict, lazy: bool = False):
    """An :class:`IVCurveSignal` (or its lazy twin) from a reader dictionary."""
    from hyperspy_nanoml.signals.iv_curve import IVCurveSignal, LazyIVCurveSignal

    data = signal_dict["data"]
    is_dask = type(data).__module__.startswith("dask")
    if lazy and not is_dask:
        data = lazy_curves(data)
    cls = LazyIVCurveSignal if (lazy or is_dask) else IVCurveSignal
    kwargs = dict(signal_dict)
    kwargs["data"] = data
    return cls(**kwargs)


def load(
    path: str | os.PathLike, channel: str | None = None, lazy: bool = False, **options
):
    """Load an I-V map from a file as an ``IVCurveSignal``.

    Parameters
    ----------
    path : str or path-like
        The file; the reader is chosen from the extension (see the module doc).
    channel : str, optional
        Which channel/dataset: a Nanonis channel name ("Current", "LockinX"),
        an HDF5 dataset path, a Gwyddion brick title, an Igor channel label.
        Default: the current channel (or the only dataset).
    lazy : bool
        Return a ``LazyIVCurveSignal`` (dask); Nanonis and HDF5 files are
        read by blocks, the other formats are parsed whole and wrapped.
    **options
        Reader options: ``backward=True`` (Nanonis backward sweep),
        ``mask_zeros`` (HDF5 log quantities), ``bias``, ``scan_shape``,
        ``scan_step``, ``scan_units``, ``scan_offset``, ``quantity``,
        ``delimiter`` (CSV/NPY).

    Returns
    -------
    IVCurveSignal or LazyIVCurveSignal
        Navigation = scan (calibrated from the file), signal = bias (V),
        values = current (A) unless the file stores another quantity
        (``metadata.Signal.quantity``, ``metadata.Signal.iv_form``). What the
        reader did is in ``metadata.Processing.load``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unsupported extension, unreadable file, unknown channel (the message
        lists the available ones), non-monotonic bias.

    Examples
    --------
    >>> from hyperspy_nanoml.cafm import load
    >>> s = load("nanonis_sts_grid_30x30.3ds", channel="Current")  # doctest: +SKIP
    >>> s.axes_manager.signal_axes[0].units  # doctest: +SKIP
    'V'
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix.lower() in _HYPERSPY:
        import hyperspy.api as hs

        signal = hs.load(path, lazy=lazy)
        if isinstance(signal, list):
            raise ValueError(
                f"{path.name} holds {len(signal)} signals; load it with hs.load"
            )
        if signal.metadata.Signal.get_item("signal_type", "") != "IV_curve":
            if signal.axes_manager.signal_dimension != 1:
                raise ValueError(
                    f"{path.name} holds a signal with {signal.axes_manager.signal_dimension} "
                    "signal dimensions; an I-V map has one (the bias)"
                )
            signal.set_signal_type("IV_curve")
        return signal
    reader = reader_for(path)
    if reader is arrays:
        if channel is not None:
            raise ValueError(
                f"channel={channel!r} does not apply to {path.suffix} files (one array); "
                "leave it out"
            )
        signal_dict = reader.file_reader(str(path), lazy=lazy, **options)[0]
    else:
        signal_dict = reader.file_reader(str(path), channel=channel, lazy=lazy, **options)[
            0
        ]
    signal = signal_from_dict(signal_dict, lazy=lazy)
    signal.tmp_parameters.folder = str(path.resolve().parent)
    signal.tmp_parameters.filename = path.stem
    signal.tmp_parameters.extension = path.suffix.lstrip(".")
    return signal


def load_array(
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
):
    """An ``IVCurveSignal`` from an array and explicit axes.

    Parameters
    ----------
    data : array-like or dask array
        Shape (ny, nx, n_points), (n_curves, n_points) or (n_points,); current
        in A. Copied to float32 (the input is never modified through the signal);
        NaN is kept.
    bias : array-like, shape (n_points,)
        Bias of each point in V, strictly monotonic (a decreasing sweep is
        reversed together with the data).
    scan_step : float or (step_y, step_x), optional
        Pixel size in ``scan_units``; default uncalibrated pixels.
    scan_units : str
        Units of ``scan_step``/``scan_offset``; lengths ("nm", "µm", "m") are
        shown in nm or µm.
    scan_offset : float or (offset_y, offset_x)
        Position of the first pixel in ``scan_units``.
    quantity : str
        ``metadata.Signal.quantity``.
    bias_units : str
        Units of the bias axis.
    title : str
        ``metadata.General.title``.
    lazy : bool
        Return a lazy signal (a dask input always gives one).

    Returns
    -------
    IVCurveSignal or LazyIVCurveSignal

    Raises
    ------
    ValueError
        Wrong dimensions, a bias of the wrong length, non-monotonic or non-finite
        bias, a non-positive scan step.

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_nanoml.cafm.io import load_array
    >>> bias = np.linspace(-1, 1, 101)
    >>> s = load_array(np.zeros((4, 5, 101)), bias, scan_step=20.0, scan_units="nm")
    >>> s.axes_manager.navigation_shape
    (5, 4)
    """
    signal_dict = iv_dict_from_array(
        data,
        bias,
        scan_step=scan_step,
        scan_units=scan_units,
        scan_offset=scan_offset,
        quantity=quantity,
        bias_units=bias_units,
        title=title,
        lazy=lazy,
        reader="hyperspy_nanoml.cafm.io.load_array",
    )
    return signal_from_dict(signal_dict, lazy=lazy)


def file_reader(filename, lazy=False, **kwds) -> list[dict]:
    """HyperSpy reader protocol dispatching on the extension: ``hs.load(path, file_format=io)``.

    Parameters
    ----------
    filename : str
        A ``.3ds``, NSID/USID HDF5, ``.gwy``, ``.ibw``, ``.csv``/``.txt``/``.npy`` file.
    lazy : bool
        Lazy (dask) data.
    **kwds
        Reader options (``channel``, ``backward``, ``bias``, ...).

    Returns
    -------
    list of signal dictionaries.
    """
    return reader_for(filename).file_reader(filename, lazy=lazy, **kwds)
