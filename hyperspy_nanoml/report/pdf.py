"""Multi-page PDF reports, written whole or not at all."""

import os
import tempfile
from pathlib import Path


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
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write the report to {path}: folder {path.parent} does not exist; "
            "create it first or choose another path"
        )
    info = {"Creator": "hyperspy_nanoml"}
    info.update(metadata or {})
    fd, tmp = tempfile.mkstemp(suffix=".pdf.part", dir=path.parent)
    os.close(fd)
    try:
        with PdfPages(tmp, metadata=info) as pdf:
            for fig in figures:
                pdf.savefig(fig)
                plt.close(fig)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
