"""Progress bars that follow HyperSpy's ``show_progressbar`` preference."""


def show_progressbar_default(show_progressbar=None):
    """Resolve ``show_progressbar``: an explicit bool wins, else HyperSpy's preference."""
    if show_progressbar is not None:
        return bool(show_progressbar)
    from hyperspy.defaults_parser import preferences

    return bool(preferences.General.show_progressbar)


def progressbar(iterable=None, *, total=None, desc=None, show_progressbar=None, **kwargs):
    """A tqdm progress bar, disabled when ``show_progressbar`` resolves to False."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not show_progressbar_default(show_progressbar),
        **kwargs,
    )
