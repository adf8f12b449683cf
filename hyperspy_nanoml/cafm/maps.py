"""Per-pixel I-V physics as calibrated maps: zero-bias conductance, rectification, onset.

The per-curve functions of :mod:`hyperspy_nanoml.cafm.physics` are vectorised over the
leading axes; here they run on the whole map at once (one read of lazy data, block by
block) and come back as HyperSpy images calibrated like the scan.
"""

from __future__ import annotations

import numpy as np

from hyperspy_nanoml._compat import is_lazy_signal, navigation_signal
from hyperspy_nanoml.cafm.axes import monotonic_bias
from hyperspy_nanoml.cafm.physics import (
    onset_voltage,
    rectification_ratio,
    zero_bias_conductance,
)

__all__ = ["physics_maps"]

# name -> (title, units)
QUANTITIES = {
    "zero_bias_conductance": ("Zero-bias conductance", "S"),
    "rectification_ratio": ("Rectification ratio |I(+V)/I(-V)|", ""),
    "onset_voltage": ("Onset voltage", "V"),
}


def physics_maps(
    signal,
    *,
    window: float | None = None,
    at: float | None = None,
    onset_threshold: float = 1e-9,
    polarity: str = "positive",
) -> dict:
    """Zero-bias conductance, rectification ratio and onset voltage at every pixel.

    Parameters
    ----------
    signal : IVCurveSignal or LazyIVCurveSignal
        Current (A) versus bias (V) at every scan pixel; not modified. Lazy data are
        read once, block by block.
    window : float, optional
        Half-width (V) of the linear fit around 0 V for the conductance (default:
        2.5 % of the largest |bias|, see :func:`~hyperspy_nanoml.cafm.physics.zero_bias_conductance`).
    at : float, optional
        |V| at which the rectification ratio ``|I(+V) / I(-V)|`` is taken (default:
        the largest bias reached on both sides).
    onset_threshold : float
        Current (A) whose last crossing defines the onset voltage.
    polarity : {"positive", "negative"}
        Which side's onset to report.

    Returns
    -------
    dict of str -> hyperspy.signal.BaseSignal
        ``"zero_bias_conductance"`` (S), ``"rectification_ratio"`` and
        ``"onset_voltage"`` (V): images with the scan's calibrated axes; NaN where a
        curve has no valid value (e.g. no crossing of the threshold).

    References
    ----------
    Janas et al., Appl. Surf. Sci. 570, 150958 (2021) (per-pixel conductance maps of
    C-AFM I-V data).

    Examples
    --------
    >>> from hyperspy_nanoml.data.cafm import generate_iv_map
    >>> iv, truth = generate_iv_map(shape=(16, 16), random_state=0)
    >>> maps = physics_maps(iv)
    >>> maps["zero_bias_conductance"].data.shape
    (16, 16)
    """
    am = signal.axes_manager
    if am.signal_dimension != 1 or am.navigation_dimension < 1:
        raise ValueError(
            "physics_maps needs a map of I-V curves (one signal axis: bias; at least one "
            f"navigation axis), got signal dimension {am.signal_dimension} and "
            f"navigation dimension {am.navigation_dimension}"
        )
    if polarity not in ("positive", "negative"):
        raise ValueError(f'polarity must be "positive" or "negative", got {polarity!r}')
    bias, reversed_ = monotonic_bias(am.signal_axes[0].axis)

    def kernel(block):
        curves = np.asarray(block, dtype=np.float64)
        if reversed_:
            curves = curves[..., ::-1]
        with np.errstate(all="ignore"):
            return np.stack(
                [
                    zero_bias_conductance(bias, curves, window=window),
                    rectification_ratio(bias, curves, at=at),
                    onset_voltage(
                        bias, curves, threshold=onset_threshold, polarity=polarity
                    ),
                ],
                axis=-1,
            )

    data = signal.data
    if is_lazy_signal(signal):
        data = data.rechunk({data.ndim - 1: -1})
        values = data.map_blocks(
            kernel, chunks=data.chunks[:-1] + ((3,),), dtype=np.float64
        ).compute()
    else:
        values = kernel(data)
    maps = {}
    for i, (name, (title, units)) in enumerate(QUANTITIES.items()):
        image = navigation_signal(signal, np.ascontiguousarray(values[..., i]))
        image.metadata.General.title = title
        image.metadata.set_item("Signal.quantity", f"{title} ({units})" if units else title)
        image.metadata.set_item(
            "Processing.physics_maps",
            {
                "window": window,
                "at": at,
                "onset_threshold": onset_threshold,
                "polarity": polarity,
            },
        )
        maps[name] = image
    return maps
