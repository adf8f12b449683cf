"""Readers for measured binary k-ratio databases used to validate the XPP correction.

- Pouchou & Pichoir's database of microanalytical measurements on binary compounds
  (Electron Probe Quantitation, Heinrich & Newbury eds., Plenum 1991), as distributed
  with NIST's NeXLMatrixCorrection: columns ``A, Line, B, E0, WgtFracA, kA, TOA`` with
  line codes 0 = Ka1, 2 = Kb1, 12 = La1, 31 = Lb1, 72 = Ma1, 69 = Mb; E0 in keV.
- Heinrich's compilation (K. F. J. Heinrich, in *X-Ray Spectrometry in Electron Beam
  Instruments*, Goldstein, Newbury & Williams eds., Plenum 1995; digitised by Fournelle
  & Moy 2020): columns ``Item, Line, Z1, Z2, C1, E0, Ec, TOA, Kexp, Origin`` with line
  codes 1 = Ka, 2 = Kb, 3 = La1, 4 = Lb1, 8 = Ma1, 9 = Mb1; E0 in eV. Items 857-860
  are known x0.1 errors and are excluded by default.

Both give the k-ratio of element A (Z1) in a binary A-B against pure A.

Example
-------
>>> table = load_pouchou_pichoir("pouchou_pichoir_1991_dev.csv")  # doctest: +SKIP
>>> table.lines[:2], table.beam_energy[:2]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperspy_nanoml.eds import xray_data as xd

__all__ = ["KRatioTable", "load_pouchou_pichoir", "load_heinrich"]

_PAP_LINES = {0: "Ka", 2: "Kb", 12: "La", 31: "Lb1", 72: "Ma", 69: "Mb"}
_HEINRICH_LINES = {1: "Ka", 2: "Kb", 3: "La", 4: "Lb1", 8: "Ma", 9: "Mb"}
HEINRICH_KNOWN_ERRORS = (857, 858, 859, 860)


@dataclass(frozen=True)
class KRatioTable:
    """Measured binary k-ratios of element A in A-B against pure A (one row per entry).

    Attributes
    ----------
    element, matrix : ndarray of str
        Symbols of the measured element A and the other element B.
    lines : list of str
        Line names, e.g. ``"Fe_Ka"``, ``"Au_Ma"``.
    mass_fraction : ndarray
        Mass fraction of A (B = 1 - A).
    beam_energy : ndarray
        keV.
    takeoff_angle : ndarray
        Degrees.
    k_measured : ndarray
    item : ndarray of int
        Row number in the source (Heinrich's item number, or the file's data row).
    """

    element: np.ndarray
    matrix: np.ndarray
    lines: list
    mass_fraction: np.ndarray
    beam_energy: np.ndarray
    takeoff_angle: np.ndarray
    k_measured: np.ndarray
    item: np.ndarray

    def __len__(self) -> int:
        return len(self.k_measured)

    @property
    def compositions(self) -> list[dict[str, float]]:
        """The binary compositions as dicts of mass fractions."""
        return [
            {a: float(w), b: float(1.0 - w)}
            for a, b, w in zip(self.element, self.matrix, self.mass_fraction)
        ]

    def subset(self, mask) -> KRatioTable:
        """The rows where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return KRatioTable(
            self.element[mask],
            self.matrix[mask],
            [ln for ln, keep in zip(self.lines, mask) if keep],
            self.mass_fraction[mask],
            self.beam_energy[mask],
            self.takeoff_angle[mask],
            self.k_measured[mask],
            self.item[mask],
        )


def _rows(path) -> tuple[list[str], list[list[str]]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"k-ratio database {path} does not exist")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [
            r for r in csv.reader(fh) if r and r[0].strip() and not r[0].startswith("#")
        ]
    header = [h.strip() for h in rows[0]]
    return header, rows[1:]


def _build(el, mat, codes, names, w, e0, toa, k, item, path) -> KRatioTable:
    lines = []
    for a, code in zip(el, codes):
        if code not in names:
            raise ValueError(f"{path}: unknown line code {code} (known: {sorted(names)})")
        lines.append(f"{a}_{names[code]}")
    return KRatioTable(
        np.array(el),
        np.array(mat),
        lines,
        np.array(w, dtype=float),
        np.array(e0, dtype=float),
        np.array(toa, dtype=float),
        np.array(k, dtype=float),
        np.array(item, dtype=int),
    )


def load_pouchou_pichoir(path) -> KRatioTable:
    """Read Pouchou & Pichoir's binary k-ratio database (CSV, E0 in keV).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    KRatioTable
    """
    header, rows = _rows(path)
    need = ["A", "Line", "B", "E0", "WgtFracA", "kA", "TOA"]
    if any(h not in header for h in need):
        raise ValueError(f"{path}: expected columns {need}, found {header}")
    col = {h: header.index(h) for h in need}
    el, mat, codes, w, e0, toa, k = ([] for _ in range(7))
    for r in rows:
        el.append(xd.element_symbol(int(float(r[col["A"]]))))
        mat.append(xd.element_symbol(int(float(r[col["B"]]))))
        codes.append(int(float(r[col["Line"]])))
        w.append(float(r[col["WgtFracA"]]))
        e0.append(float(r[col["E0"]]))
        toa.append(float(r[col["TOA"]]))
        k.append(float(r[col["kA"]]))
    return _build(el, mat, codes, _PAP_LINES, w, e0, toa, k, np.arange(len(k)), path)


def load_heinrich(path, exclude_items=HEINRICH_KNOWN_ERRORS) -> KRatioTable:
    """Read Heinrich's (1995) binary k-ratio compilation (CSV, E0 in eV -> keV).

    Parameters
    ----------
    path : str or Path
    exclude_items : iterable of int
        Item numbers to drop (default: 857-860, known x0.1 errors).

    Returns
    -------
    KRatioTable (``item`` = Heinrich's item number).
    """
    header, rows = _rows(path)
    need = ["Item", "Line", "Z1", "Z2", "C1", "E0", "TOA", "Kexp"]
    if any(h not in header for h in need):
        raise ValueError(f"{path}: expected columns {need}, found {header}")
    col = {h: header.index(h) for h in need}
    skip = set(int(i) for i in exclude_items)
    el, mat, codes, w, e0, toa, k, item = ([] for _ in range(8))
    for r in rows:
        it = int(float(r[col["Item"]]))
        if it in skip:
            continue
        item.append(it)
        el.append(xd.element_symbol(int(float(r[col["Z1"]]))))
        mat.append(xd.element_symbol(int(float(r[col["Z2"]]))))
        codes.append(int(float(r[col["Line"]])))
        w.append(float(r[col["C1"]]))
        e0.append(float(r[col["E0"]]) / 1000.0)
        toa.append(float(r[col["TOA"]]))
        k.append(float(r[col["Kexp"]]))
    return _build(el, mat, codes, _HEINRICH_LINES, w, e0, toa, k, item, path)
