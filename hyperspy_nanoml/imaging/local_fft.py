"""Local-FFT feature discovery (work in progress, being written now)."""


def local_fft_features(image, *args, **kwargs):
    """Local-FFT features of an image (Jany et al., Micron 130, 102800, 2020)."""
    raise NotImplementedError("local_fft_features is being written")
