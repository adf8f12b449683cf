"""pyxem's simulated multi-phase grains at realistic electron counts, with ground truth.

:func:`pyxem.data.fe_multi_phase_grains` simulates a scan over ``2 * num_grains``
grains (bcc and fcc iron, ``num_grains`` random orientations each; one
noise-free pattern per grain, peak 1, direct beam included). This module turns
it into what a detector records: Poisson counts with a given mean number of
electrons per pattern, and keeps the truth (which grain every position is in).

pyxem draws the grain orientations from NumPy's *global* random state
(``orix.quaternion.Rotation.random``), so :func:`pyxem_grains` seeds it from
``random_state`` for the call and restores it afterwards: the same
``random_state`` gives the same orientations, grains and counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PyxemGrainsTruth", "pyxem_grains"]


@dataclass
class PyxemGrainsTruth:
    """Ground truth of :func:`pyxem_grains`.

    Attributes
    ----------
    labels : ndarray of int, navigation shape (array order)
        Grain of every scan position (0 ... ``n_grains - 1``).
    patterns : ndarray, (n_grains, rows, cols)
        Expected counts of every grain's pattern (direct beam included).
    n_grains : int
        Distinct patterns (``2 * num_grains``).
    diffracting : ndarray of bool (n_grains,)
        Whether a grain's pattern holds anything but the direct beam (a random
        orientation can excite no reflection at all).
    counts : float or None
        Mean electrons per pattern (None: noise-free expectation).
    params : dict
    """

    labels: np.ndarray
    patterns: np.ndarray = field(repr=False)
    n_grains: int
    diffracting: np.ndarray
    counts: float | None
    params: dict = field(default_factory=dict)


def pyxem_grains(
    counts: float | None = 2000.0,
    *,
    num_grains: int = 3,
    size: int = 40,
    recip_pixels: int = 64,
    grain_seed: int = 7,
    random_state: int = 1,
):
    """pyxem's ``fe_multi_phase_grains`` with Poisson counts and its ground truth.

    Parameters
    ----------
    counts : float or None
        Mean electrons per pattern (the expectation of every pattern is pyxem's
        pattern times ``counts`` over the mean pattern sum); ``None`` keeps the
        noise-free expectation (float32).
    num_grains : int
        Orientations per phase (``2 * num_grains`` grains).
    size : int
        Scan side (``size x size`` positions).
    recip_pixels : int
        Pattern side in pixels (0.02 1/Å per pixel, as pyxem sets it).
    grain_seed : int
        pyxem's ``seed`` (where the grains are).
    random_state : int
        Seeds the orientations (NumPy's global state during the call, restored
        afterwards) and the Poisson counts.

    Returns
    -------
    signal : pyxem.signals.ElectronDiffraction2D
        Counts as ``float32`` (exact integers) or the expectation; navigation
        axes in px as pyxem gives them, signal axes ``kx``, ``ky`` in Å⁻¹ with the
        direct beam at the origin.
    truth : PyxemGrainsTruth

    Examples
    --------
    >>> from hyperspy_nanoml.data.pyxem_grains import pyxem_grains
    >>> s, truth = pyxem_grains(200, size=10, recip_pixels=32)  # doctest: +SKIP
    >>> s.data.shape, truth.n_grains  # doctest: +SKIP
    ((10, 10, 32, 32), 6)
    """
    import pyxem.data

    from hyperspy_nanoml._validation import check_positive_int

    num_grains = check_positive_int(num_grains, "num_grains")
    size = check_positive_int(size, "size")
    recip_pixels = check_positive_int(recip_pixels, "recip_pixels", minimum=16)
    if counts is not None and not (np.isfinite(counts) and counts > 0):
        raise ValueError(f"counts must be a positive number or None, got {counts!r}")
    seed = int(random_state)
    state = np.random.get_state()  # noqa: NPY002 (orix draws from the global state)
    try:
        np.random.seed(seed)  # noqa: NPY002
        grains = pyxem.data.fe_multi_phase_grains(
            num_grains=num_grains, seed=grain_seed, size=size, recip_pixels=recip_pixels
        )
    finally:
        np.random.set_state(state)  # noqa: NPY002
    data = np.asarray(grains.data)
    flat = data.reshape(-1, recip_pixels * recip_pixels)
    patterns, labels = np.unique(flat, axis=0, return_inverse=True)
    scale = 1.0 if counts is None else float(counts) / float(flat.sum(axis=1).mean())
    patterns = (patterns * scale).reshape(-1, recip_pixels, recip_pixels)
    expected = (data * scale).astype(np.float32)
    if counts is None:
        values = expected
    else:
        rng = np.random.default_rng([seed, 11])
        values = rng.poisson(expected).astype(np.float32)
    # the beam: the pattern's rotationally symmetric part at the centre; a grain
    # diffracts when something is left after the Gaussian beam pyxem draws
    yy, xx = np.indices((recip_pixels, recip_pixels))
    centre = recip_pixels // 2
    r2 = (xx - centre) ** 2 + (yy - centre) ** 2
    beam = np.exp(-r2 / (2 * 3.0**2))  # pyxem's sigma = 3 px
    residual = patterns - patterns[:, centre, centre, None, None] * beam
    diffracting = residual.reshape(len(patterns), -1).sum(axis=1) > 1e-3 * patterns.reshape(
        len(patterns), -1
    ).sum(axis=1)

    from pyxem.signals import ElectronDiffraction2D

    s = ElectronDiffraction2D(values)
    for axis, name in zip(s.axes_manager.signal_axes, ("kx", "ky")):
        axis.name, axis.units, axis.scale = name, "Å⁻¹", 0.02
        axis.offset = -0.02 * centre
    for axis, name in zip(s.axes_manager.navigation_axes, ("x", "y")):
        axis.name, axis.units = name, "px"
    s.metadata.General.title = (
        f"pyxem fe_multi_phase_grains, {counts:g} e/pattern" if counts else "noise-free"
    )
    params = dict(
        counts=counts,
        num_grains=num_grains,
        size=size,
        recip_pixels=recip_pixels,
        grain_seed=grain_seed,
        random_state=seed,
    )
    s.metadata.set_item("General.generator", {"pyxem_grains": params})
    truth = PyxemGrainsTruth(
        labels.reshape(size, size),
        patterns.astype(np.float32),
        int(len(patterns)),
        diffracting,
        None if counts is None else float(counts),
        params,
    )
    return s, truth
