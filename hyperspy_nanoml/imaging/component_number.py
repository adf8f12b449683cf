"""The record of a number of components given by the user (no evidence to show).

:attr:`LocalFFTSignal.component_choice` returns this when ``n_components`` was an
integer, so ``result.component_choice.reason`` always works.
"""

from dataclasses import dataclass

__all__ = ["GivenNumber"]


@dataclass
class GivenNumber:
    """``n_components`` given by the user: the same interface as ``ComponentChoice``.

    Examples
    --------
    >>> GivenNumber(3).reason
    'n_components = 3 was given by the user (no automatic choice was made).'
    """

    n_components: int
    method: str = "given"

    @property
    def reason(self) -> str:
        return (
            f"n_components = {self.n_components} was given by the user "
            "(no automatic choice was made)."
        )

    def plot(self, ax=None):
        """An empty panel saying the number was given; returns the axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        ax.axis("off")
        ax.text(0.5, 0.5, self.reason, ha="center", va="center", wrap=True)
        return ax

    def as_dict(self) -> dict:
        return {"n_components": int(self.n_components), "method": self.method}

    def __str__(self) -> str:
        return f"GivenNumber(n_components={self.n_components}): {self.reason}"
