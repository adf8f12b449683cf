"""Vendor data bars (info strips) of SEM/FIB images: detection and cropping.

Zeiss, Thermo Fisher/FEI, JEOL, Hitachi and TESCAN microscopes burn an info
strip (magnification, high voltage, detector, scale bar, logo) into the saved
image, along the bottom edge (sometimes the top). It is drawn, not measured: a
flat background colour covers most of each of its rows, with text and logos on
it, and it starts abruptly. A micrograph's rows are never that flat (noise), so
the strip is found as the run of rows at an edge in which one grey value covers
at least ``min_flat_fraction`` of the pixels, starting with a jump of that
fraction. Numpy only; no signal classes.
"""

import numpy as np

__all__ = ["detect_data_bar", "row_flatness"]


def row_flatness(data) -> np.ndarray:
    """Fraction of each row's pixels that share the row's most common value.

    Vectorised: each row is sorted once and the longest run of equal values
    counted (works for integer and float images).

    Examples
    --------
    >>> row_flatness(np.array([[1, 1, 1, 2], [1, 2, 3, 4]]))
    array([0.75, 0.25])
    """
    a = np.sort(np.asarray(data), axis=1)
    n = a.shape[1]
    change = np.ones(a.shape, bool)
    change[:, 1:] = a[:, 1:] != a[:, :-1]
    # run start positions; run length = next start - start
    rows, cols = np.nonzero(change)
    starts = np.full(a.shape, n)
    starts[rows, cols] = cols
    # longest run: differences between consecutive starts in each row
    nxt = np.minimum.accumulate(starts[:, ::-1], axis=1)[:, ::-1]
    nxt = np.concatenate([nxt[:, 1:], np.full((a.shape[0], 1), n)], axis=1)
    lengths = np.where(change, nxt - np.arange(n), 0)
    return lengths.max(axis=1) / n


def detect_data_bar(
    data,
    *,
    min_flat_fraction: float = 0.5,
    max_height_fraction: float = 0.3,
    min_rows: int = 8,
):
    """Find a vendor info strip along the bottom or top edge of an image.

    Parameters
    ----------
    data : 2-D array (numpy or dask; only the top and bottom
        ``max_height_fraction`` of the rows are read)
    min_flat_fraction : float
        A row belongs to the strip when one grey value covers at least this
        fraction of it (default 0.5).
    max_height_fraction : float
        The strip is at most this fraction of the image height (default 0.3).
    min_rows : int
        Fewer flat rows than this at an edge are not a strip (default 8).

    Returns
    -------
    None, or a dict ``{"edge": "bottom" | "top", "rows": (start, stop)}`` with the
    strip's row range (``stop`` exclusive) in the image.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.integers(0, 255, (200, 300)).astype(np.uint8)
    >>> img[170:] = 0; img[180:190, 20:120] = 255  # a black strip with "text"
    >>> detect_data_bar(img)
    {'edge': 'bottom', 'rows': (170, 200)}
    """
    H = data.shape[0]
    h = max(min_rows, int(H * max_height_fraction))
    if H < 4 * min_rows:
        return None
    for edge in ("bottom", "top"):
        part = data[H - h :] if edge == "bottom" else data[:h]
        if hasattr(part, "compute"):
            part = part.compute()
        flat = row_flatness(np.asarray(part))
        run = flat[::-1] if edge == "bottom" else flat  # from the edge inwards
        inside = np.flatnonzero(run < min_flat_fraction)
        n = int(inside[0]) if inside.size else len(run)
        # rows of text may dip below the threshold: close gaps of a few rows
        while inside.size:
            nxt = inside[inside >= n]
            if nxt.size == 0:
                break
            later = np.flatnonzero(run[n:] >= min_flat_fraction)
            if later.size == 0 or later[0] > max(3, n // 4):
                break
            gap_end = n + int(later[0])
            tail = np.flatnonzero(run[gap_end:] < min_flat_fraction)
            n = gap_end + (int(tail[0]) if tail.size else len(run) - gap_end)
        if n < min_rows or n >= len(run):
            continue
        # the specimen next to the strip is not flat (a drawn strip starts abruptly)
        beyond = run[n : n + min_rows]
        if beyond.size and np.median(beyond) > 0.5 * min_flat_fraction:
            continue
        rows = (H - n, H) if edge == "bottom" else (0, n)
        return {"edge": edge, "rows": rows}
    return None
