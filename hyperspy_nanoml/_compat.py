"""The HyperSpy private API this package uses, in one place.

HyperSpy offers no public spelling for these; if a HyperSpy release renames one,
this module is the only one to change. Signal classes that subclass HyperSpy's
(``signals/``) import ``hyperspy._signals`` directly, as HyperSpy's own
extension guide does.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_navigation_mask",
    "check_signal_mask",
    "deepcopy_with_new_data",
    "is_lazy_signal",
    "navigation_shape_in_array",
    "navigation_signal",
    "signal_shape_in_array",
]


def is_lazy_signal(signal) -> bool:
    """True for a lazy HyperSpy signal (``signal._lazy``)."""
    return bool(getattr(signal, "_lazy", False))


def navigation_shape_in_array(signal) -> tuple:
    """Navigation shape in array order."""
    return tuple(int(n) for n in signal.axes_manager._navigation_shape_in_array)


def signal_shape_in_array(signal) -> tuple:
    """Signal shape in array order."""
    return tuple(int(n) for n in signal.axes_manager._signal_shape_in_array)


def navigation_signal(signal, data: np.ndarray):
    """A signal over the navigation axes of ``signal`` (calibrated like them)."""
    return signal._get_navigation_signal(data=data)


def deepcopy_with_new_data(signal, data):
    """A copy of ``signal`` (axes, metadata) holding ``data``."""
    return signal._deepcopy_with_new_data(data)


def check_navigation_mask(signal, mask) -> None:
    """HyperSpy's own check of a ``navigation_mask`` argument."""
    signal._check_navigation_mask(mask)


def check_signal_mask(signal, mask) -> None:
    """HyperSpy's own check of a ``signal_mask`` argument."""
    signal._check_signal_mask(mask)
