"""Generated images of textured regions with known ground truth.

The local-FFT workflow (Jany et al., Micron 130, 102800, 2020) is tested and
demonstrated on these: each region carries a texture with a distinct Fourier
signature, the region map is returned with the image, and the noise level is a
parameter, so the number of components (= number of textures) and the region
recovery can be checked.
"""

import numpy as np


def _grating(shape, period, angle_deg, rng):
    yy, xx = np.indices(shape, dtype=np.float32)
    a = np.deg2rad(angle_deg)
    phase = rng.uniform(0, 2 * np.pi)
    return np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period + phase)


def _band_noise(shape, f_low, f_high, rng):
    """Isotropic random texture with power in the band f_low..f_high (cycles/px)."""
    f = np.hypot(
        *np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.rfftfreq(shape[1]), indexing="ij")
    )
    spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) * (
        (f >= f_low) & (f <= f_high)
    )
    field = np.fft.irfft2(spectrum, s=shape)
    return (field / field.std()).astype(np.float32)


def _spots(shape, period, rng):
    """Hexagonal lattice of round particles (a 'nanoparticle array' texture)."""
    yy, xx = np.indices(shape, dtype=np.float32)
    out = np.zeros(shape, np.float32)
    for ang in (0.0, 60.0, 120.0):
        out += _grating(shape, period, ang + 15.0, rng)
    return np.clip(out, 0, None) ** 2 / 4.0


TEXTURES = {
    # a grating with its wave vector along x: the stripes run vertically
    "vertical_lines": lambda shape, rng: _grating(shape, 9.0, 0.0, rng),
    "oblique_lines": lambda shape, rng: _grating(shape, 5.0, 60.0, rng),
    "particles": lambda shape, rng: _spots(shape, 14.0, rng),
    "grain": lambda shape, rng: _band_noise(shape, 0.08, 0.14, rng),
    "flat": lambda shape, rng: np.zeros(shape, np.float32),
}

# the earlier name of "vertical_lines" (its stripes were always vertical)
_RENAMED = {"horizontal_lines": "vertical_lines"}


def _texture_names(textures):
    """Texture names with the old, misleading ``horizontal_lines`` mapped (with a
    FutureWarning) to ``vertical_lines``."""
    import warnings

    names = []
    for name in textures:
        if name in _RENAMED:
            warnings.warn(
                f"texture {name!r} is now called {_RENAMED[name]!r} (its stripes are "
                "vertical); the old name will be removed",
                FutureWarning,
                stacklevel=3,
            )
            name = _RENAMED[name]
        names.append(name)
    return tuple(names)


def region_map(shape, n_regions, random_state=None):
    """Irregular regions: a Voronoi partition of ``shape`` from random seeds.

    Seeds are kept apart (at least ~a third of the mean cell spacing) so that
    every region is large enough to hold a few analysis windows.
    """
    rng = np.random.default_rng(random_state)
    h, w = shape
    min_dist = 0.45 * np.sqrt(h * w / n_regions)
    seeds = []
    while len(seeds) < n_regions:
        candidate = rng.uniform((0.1 * h, 0.1 * w), (0.9 * h, 0.9 * w))
        if all(np.hypot(*(candidate - s)) > min_dist for s in seeds):
            seeds.append(candidate)
        min_dist *= 0.995  # always terminates
    seeds = np.asarray(seeds)
    yy, xx = np.indices(shape)
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    return np.argmin(d, axis=-1).astype(np.int16)


def make_textured_image(
    shape=(1024, 1024),
    textures=("vertical_lines", "oblique_lines", "particles", "grain"),
    *,
    noise=0.3,
    background=100.0,
    contrast=40.0,
    random_state=None,
):
    """An image whose regions carry different textures, with the region map.

    Parameters
    ----------
    shape : (int, int)
        Image shape in pixels.
    textures : sequence of str
        One texture per region, from :data:`TEXTURES`; their number is the
        true number of components.
    noise : float
        Standard deviation of the added white Gaussian noise relative to the
        texture amplitude ``contrast``.
    background, contrast : float
        Mean intensity and texture amplitude (arbitrary units: the workflow
        must not depend on them).
    random_state : int or None
        Seed for reproducibility.

    Returns
    -------
    image : numpy.ndarray (float32)
    regions : numpy.ndarray (int16)
        Index into ``textures`` for every pixel.

    Examples
    --------
    >>> img, regions = make_textured_image((512, 512), random_state=0)
    >>> img.shape, np.unique(regions).tolist()
    ((512, 512), [0, 1, 2, 3])
    """
    textures = _texture_names(textures)
    unknown = [t for t in textures if t not in TEXTURES]
    if unknown:
        raise ValueError(f"unknown textures {unknown}; choose from {sorted(TEXTURES)}")
    rng = np.random.default_rng(random_state)
    regions = region_map(shape, len(textures), rng)
    image = np.zeros(shape, np.float32)
    for i, name in enumerate(textures):
        tex = TEXTURES[name](shape, rng)
        if tex.std() > 0:
            tex = tex / tex.std()
        image[regions == i] = tex[regions == i]
    image = background + contrast * (image + noise * rng.standard_normal(shape, np.float32))
    return image.astype(np.float32), regions


def _analytic_texture(name, yy, xx):
    """Textures defined by pixel coordinates (for images built block by block)."""

    def grating(period, angle_deg):
        a = np.deg2rad(angle_deg)
        return np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period)

    if name == "vertical_lines":
        return grating(9.0, 0.0)
    if name == "oblique_lines":
        return grating(5.0, 60.0)
    if name == "particles":
        s = sum(grating(14.0, ang + 15.0) for ang in (0.0, 60.0, 120.0))
        s = np.clip(s, 0, None) ** 2 / 4.0
        return (s - 0.6) / 0.9  # about zero mean, unit spread
    raise ValueError(
        f"texture {name!r} cannot be generated block by block; "
        "use vertical_lines, oblique_lines or particles"
    )


def make_lazy_textured_image(
    shape=(16384, 16384),
    textures=("vertical_lines", "oblique_lines", "particles"),
    *,
    chunks=4096,
    noise=0.3,
    background=100.0,
    contrast=40.0,
    random_state=None,
):
    """A dask image of textured Voronoi regions, generated block by block.

    Nothing is held in memory: each block computes its region labels and
    textures from its pixel coordinates, so a 16384 x 16384 image costs only
    the blocks being processed. Returns ``(image, region_function)`` where
    ``region_function(yy, xx)`` gives the true region index at any pixels.
    """
    import dask.array as da

    textures = _texture_names(textures)
    rng = np.random.default_rng(random_state)
    seeds = rng.uniform((0, 0), shape, size=(len(textures), 2))
    noise_seed = int(rng.integers(2**31))

    def regions_at(yy, xx):
        d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
        return np.argmin(d, axis=-1)

    def block(block_info=None):
        info = block_info[None]
        (y0, y1), (x0, x1) = info["array-location"]
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        labels = regions_at(yy, xx)
        out = np.zeros(labels.shape, np.float32)
        for i, name in enumerate(textures):
            mask = labels == i
            if mask.any():
                out[mask] = _analytic_texture(name, yy[mask], xx[mask])
        block_rng = np.random.default_rng([noise_seed, *info["chunk-location"]])
        out += noise * block_rng.standard_normal(out.shape, np.float32)
        return background + contrast * out

    image = da.map_blocks(
        block, dtype=np.float32, chunks=da.core.normalize_chunks(chunks, shape)
    )
    return image, regions_at


def photographed_texture_quadrants(names, *, wavy=0.0, random_state=0):
    """Four of scikit-image's photographed textures in the quadrants of a 1024² image.

    Real textures (``skimage.data.brick``, ``grass``, ``gravel``, ``moon``, ...;
    a name ending in ``_rot`` is turned by 90 degrees) with known regions, for
    testing and benchmarking texture segmentation on natural, stochastic content.

    Parameters
    ----------
    names : sequence of 4 str
        Texture per quadrant: top left, top right, bottom left, bottom right.
    wavy : float
        Amplitude in pixels of sine-shaped boundaries (0: straight); the textures are
        mirrored at their edges to fill the bulges.
    random_state : int
        Phases of the sine boundaries.

    Returns
    -------
    image : (1024, 1024) float32
    truth : (1024, 1024) int16, quadrant index (0-3) of every pixel

    Examples
    --------
    >>> img, truth = photographed_texture_quadrants(["brick", "grass", "gravel", "moon"])
    >>> img.shape, np.unique(truth).tolist()
    ((1024, 1024), [0, 1, 2, 3])
    """
    try:
        from skimage import data
    except ImportError as err:  # a test extra, not a dependency of the package
        raise ImportError(
            "photographed_texture_quadrants needs scikit-image (pip install "
            "'hyperspy_nanoml[tests]' or scikit-image)"
        ) from err
    names = list(names)
    if len(names) != 4:
        raise ValueError(f"give 4 texture names (one per quadrant), got {len(names)}")

    def texture(name):
        if name.endswith("_rot"):
            return np.rot90(texture(name[:-4])).copy()
        if not hasattr(data, name):
            raise ValueError(f"scikit-image has no texture {name!r} in skimage.data")
        return getattr(data, name)().astype(np.float32)[:512, :512]

    rng = np.random.default_rng(random_state)
    yy, xx = np.indices((1024, 1024))
    phase = rng.uniform(0, 2 * np.pi, 2)
    bx = 512 + wavy * np.sin(2 * np.pi * yy / 1024 * 1.5 + phase[0])
    by = 512 + wavy * np.sin(2 * np.pi * xx / 1024 * 1.3 + phase[1])
    truth = (xx >= bx).astype(np.int16) + 2 * (yy >= by).astype(np.int16)
    image = np.zeros((1024, 1024), np.float32)
    pad = int(wavy) + 2
    for i, name in enumerate(names):
        t = np.pad(texture(name), pad, mode="symmetric")
        m = truth == i
        image[m] = t[yy[m] - (i // 2) * 512 + pad, xx[m] - (i % 2) * 512 + pad]
    return image, truth
