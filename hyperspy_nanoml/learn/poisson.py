"""Keenan-Kotula scaling factors for Poisson data, in one place.

Keenan & Kotula, Surf. Interface Anal. 36, 203 (2004): counts ``X`` are scaled to
``diag(a) X diag(b)`` with ``a = 1/sqrt(row sums)`` and ``b = 1/sqrt(column sums)``,
so that the Poisson noise becomes roughly uniform.
"""

import numpy as np

__all__ = ["inverse_root_sums"]


def inverse_root_sums(sums, dtype=None):
    """``1 / sqrt(sums)`` with empty (zero-sum) rows or columns left at scale 1.

    Parameters
    ----------
    sums : array_like
        Row or column sums of non-negative counts.
    dtype : numpy dtype, optional
        Cast the result (e.g. ``np.float32`` for the block kernels); by default the
        result keeps the dtype numpy gives ``sums``.

    Examples
    --------
    >>> inverse_root_sums(np.array([4.0, 0.0, 16.0]))
    array([0.5 , 1.  , 0.25])
    """
    sums = np.asarray(sums)
    scale = 1.0 / np.sqrt(np.where(sums > 0, sums, 1.0))
    return scale if dtype is None else scale.astype(dtype)
