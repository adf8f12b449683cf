"""Multi-page PDF reports, written whole or not at all."""

from pathlib import Path

from hyperspy_nanoml.report.atomic import atomic_path


def write_pdf(path, figures, metadata=None):
    """Write matplotlib ``figures`` as the pages of one PDF at ``path``.

    The PDF is first written to a temporary file in the same folder and then
    moved into place, so an error half-way never leaves a truncated report.
    The figures are closed afterwards.

    Parameters
    ----------
    path : str or Path
        Destination; its folder must exist. ``.pdf`` is appended if missing.
    figures : iterable of matplotlib.figure.Figure
        The pages, in order (a generator is fine: each page is built lazily).
    metadata : dict, optional
        PDF metadata (``Title``, ``Subject``, ...).

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plt.figure(); _ = fig.gca().plot([0, 1])
    >>> write_pdf(tmp_path / "report.pdf", [fig])  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    if path.suffix.lower() != ".pdf":
        path = path.with_suffix(path.suffix + ".pdf")
    info = {"Creator": "hyperspy_nanoml"}
    info.update(metadata or {})
    with atomic_path(path) as tmp, PdfPages(tmp, metadata=info) as pdf:
        for fig in figures:
            pdf.savefig(fig)
            plt.close(fig)
    return path
