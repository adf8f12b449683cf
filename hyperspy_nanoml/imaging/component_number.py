"""The record of a number of components given by the user (no evidence to show).

:attr:`LocalFFTSignal.component_choice` returns this when ``n_components`` was an
integer, so ``result.component_choice.reason`` always works.
"""

from dataclasses import dataclass

__all__ = ["CLEAR_GAP", "GivenNumber", "TextureCount"]

# the automatic texture count is "clear" when the last counted contrast is at
# least this factor above the first uncounted one; measured on the benchmark's
# ten real-texture layouts: the nine right counts have gaps 1.77-2.47, the wrong
# one (five textures in Voronoi regions: 4 counted for 5) 1.09
CLEAR_GAP = 1.5


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


@dataclass
class TextureCount:
    """The number of regions chosen by :func:`~hyperspy_nanoml.imaging.texture_features.texture_regions`
    (``features="texture"``): the same interface as ``ComponentChoice``.

    ``contrast`` are the generalised eigenvalues (between- over within-region
    scatter of the log-polar features), largest first; a direction counts as a
    region difference when its contrast exceeds ``min_contrast``. The count is
    ``clear`` when the contrasts on either side of the threshold differ by at
    least :data:`CLEAR_GAP` (``gap``), else marginal: the reason says so and the
    user should check the regions or give ``n_components``.

    Examples
    --------
    >>> c = TextureCount(3, [90.0, 50.0, 4.0], 36.0)
    >>> c.n_significant, c.clear
    (2, True)
    >>> TextureCount(3, [90.0, 40.0, 35.0], 36.0).clear
    False
    """

    n_components: int
    contrast: list
    min_contrast: float
    given: bool = False
    method: str = "texture_regions"

    @property
    def n_significant(self) -> int:
        return int(sum(c > self.min_contrast for c in self.contrast))

    @property
    def gap(self) -> float:
        """Ratio of the last counted to the first uncounted contrast (the
        threshold stands in for a missing side)."""
        c = [float(v) for v in self.contrast]
        q = self.n_significant
        upper = c[q - 1] if q > 0 else float(self.min_contrast)
        lower = c[q] if q < len(c) else float(self.min_contrast)
        return upper / max(lower, 1e-12)

    @property
    def clear(self) -> bool:
        """True when :attr:`gap` >= :data:`CLEAR_GAP` (or the number was given)."""
        return bool(self.given or self.gap >= CLEAR_GAP)

    @property
    def reason(self) -> str:
        if self.given:
            return (
                f"n_components = {self.n_components} was given by the user; the texture "
                f"regions were segmented into {self.n_components} regions."
            )
        q = self.n_significant
        text = (
            f"texture regions (log-polar local-spectrum features): {q} direction(s) vary "
            f"between regions at least {self.min_contrast:g}x more than within them "
            f"(neighbouring windows), so {q} + 1 = {self.n_components} regions; the NMF "
            f"was run with {self.n_components} components."
        )
        if self.clear:
            return text + f" Clear: the contrasts either side differ {self.gap:.1f}x."
        return text + (
            f" MARGINAL: the contrasts either side of the threshold differ only "
            f"{self.gap:.2f}x (< {CLEAR_GAP:g}); check the regions or give n_components."
        )

    def plot(self, ax=None):
        """The contrasts (log scale) with the threshold; returns the axes."""
        import matplotlib.pyplot as plt
        import numpy as np

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        c = np.asarray(self.contrast, float)[:20]
        idx = np.arange(c.size)
        q = self.n_significant
        ax.semilogy(idx, np.maximum(c, 1e-3), "o-", color="0.5", ms=4, label="contrast")
        ax.semilogy(
            idx[:q],
            np.maximum(c[:q], 1e-3),
            "o",
            color="C3",
            ms=7,
            label="region difference",
        )
        ax.axhline(
            self.min_contrast,
            color="C3",
            ls="--",
            lw=1,
            label=f"min_contrast {self.min_contrast:g}",
        )
        ax.set_xlabel("generalised eigenvalue index (0 = largest)")
        ax.set_ylabel("between / within-region scatter")
        title = f"{q} region differences + 1 = {self.n_components} regions"
        ax.set_title(title + ("" if self.clear else " (marginal)"))
        ax.legend(loc="upper right", fontsize=8)
        return ax

    def as_dict(self) -> dict:
        return {
            "n_components": int(self.n_components),
            "method": self.method,
            "contrast": [float(c) for c in self.contrast],
            "min_contrast": float(self.min_contrast),
            "given": bool(self.given),
            "gap": float(self.gap),
            "clear": bool(self.clear),
        }

    def __str__(self) -> str:
        return f"TextureCount(n_components={self.n_components}): {self.reason}"
