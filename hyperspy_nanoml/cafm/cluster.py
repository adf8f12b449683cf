"""k-means clustering of conductive-AFM I-V maps, from 10^3 to 10^6 curves, eager or lazy.

:func:`kmeans_cluster` groups the I-V curves of a map (Janas et al., Appl. Surf.
Sci. 570, 150958 (2021)), chooses the number of clusters with evidence, orders the
clusters by conductance (cluster 0 = least conductive), stores the result where
HyperSpy's ``cluster_analysis`` stores its own (so ``plot_cluster_results()``,
``get_cluster_labels()``, ``get_cluster_signals()`` and ``plot_cluster_metric()``
work) and returns an :class:`IVClusterResult` with the label map, the mean +- spread
curve and the physics of every cluster, CSV tables and a PDF report.

How the data are read (bounded memory, no pairwise distance matrix)
-------------------------------------------------------------------
1. One pass over the row blocks of the (lazy) map: NaN/inf per curve, the amplifier
   rails (repeated extremes), a constancy check and a random sample of
   ``sample_size`` curves.
2. In memory, on the sample: offset, noise floor, scaling, PCA; the choice of k
   (:func:`hyperspy_nanoml.learn.clustering.choose_n_clusters`) and the k-means
   seeds.
3. Lloyd passes of k-means over the blocks
   (:func:`hyperspy_nanoml.learn.clustering.kmeans_blocks`) until the centres
   move by less than ``tol`` of their smallest distance; each pass also sums, per
   cluster, the curves and their squares (mean +- spread), the curves of the
   members nearest the centres and the current map at ``map_bias``. Usually
   1 + 2 passes in all (``result.passes_over_data``).

Defaults, and the measurements behind them
------------------------------------------
Generated maps (:func:`hyperspy_nanoml.data.cafm.generate_iv_map`: substrate
leakage 1e11 ohm, Schottky electrodes 0.43 eV / n = 1.15 / 10 MOhm, ohmic electrodes
10 MOhm and 2.5 MOhm, 30 pA noise, 4 % of electrode pixels lost contact; 48 x 48 or
64 x 64 curves x 201 points; ARI of the labels with the true classes, which the lost
contacts bound at 0.95-0.98):

- features: with k found automatically, asinh / log_abs / linear scaling, PCA /
  Savitzky-Golay / no denoising and global / per-curve offsets all reached the
  ceiling ARI on the default map, a 10 %-scatter map and a map whose two ohmic
  classes differ by 2x only (3 seeds each). ``features="derivative"`` (the slope
  d/dV) is blind to conductance alone: k = 2-3 instead of 4 on 5 of 9 maps. With k
  = 4 given, k-means on the raw current and on asinh(I / 30 pA) with or without PCA
  were all at the ceiling on this generator (the issue's 0.346 for asinh without PCA
  came from another generator, whose noisy near-zero points dominated the
  distances). PCA to 10 components stays the default: it removes the noise the
  scaling leaves and makes each distance 10 numbers instead of 201.
- I0 = 3 sigma_noise: the separation criterion chose the right k on all 32 maps (4
  map types x 8 seeds: default; 10 % scatter; two ohmic classes 2x apart; the same
  with 8 % lost contacts and 100 pA noise) at I0 = 1, 3 and 10 sigma. Distance-based
  alternatives were sensitive to it: at 1 sigma the gap statistic, Calinski-
  Harabasz and the simplified silhouette were wrong on 6, 8 and 5 of the 32 maps; 3
  sigma keeps the noise within about +-1/3 unit of the features.
- choice of k (PCA scores of a 4096-curve sample, 5 seeds per case): the gap
  statistic (uniform reference in the PCA box, Tibshirani et al. 2001), Calinski-
  Harabasz, a full-covariance GMM's BIC, the simplified silhouette and the
  separation criterion used here were all right on the default map, 2, 3, 5 and 6
  classes, 10 % lost contacts, 1 nA noise and 32 x 32 maps. With 10 % pixel-to-pixel
  scatter of the class parameters: gap 0/5 right, CH 1/5, GMM-BIC 0/5, prediction
  strength 4/5, silhouette 5/5, separation 5/5. Two ohmic classes 1.5x apart:
  silhouette 0/5 (it merges them), the others 5/5. One class only: gap and GMM-BIC
  say 1, the silhouette cannot. The separation criterion was right everywhere (min D
  at the true k 8-75; at k + 1 at most 3.3, 3.7 with 20 % scatter).
- benchmarks/bench_cafm_cluster.py: 10^6 curves x 200 points, lazy from a .zspy,
  3.5-9.3 s (the shared 2-core machine's load), +0.3-0.4 GB, 2 reads of the file,
  k = 4, ARI at the ceiling. On 8192 curves HyperSpy 2.5's
  ``estimate_number_of_clusters`` + ``cluster_analysis`` took 42-44 s and chose
  k = 6 (ARI 0.954, default map and 10 % scatter alike); ``kmeans_cluster`` 0.3 s,
  k = 4, ARI 0.963 (the ceiling).
"""

from __future__ import annotations

import csv
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyperspy_nanoml._progress import progressbar as make_progressbar
from hyperspy_nanoml._validation import resolve_random_state
from hyperspy_nanoml.cafm.preprocess import (
    OFFSET_METHODS,
    SCALINGS,
    CurveFeatures,
    detect_saturation,
    extreme_counts,
    saturation_from_extremes,
)
from hyperspy_nanoml.learn.blocks import RowBlocks, is_lazy
from hyperspy_nanoml.learn.clustering import (
    DEFAULT_SEPARATION,
    KChoice,
    choose_n_clusters,
    kmeans_blocks,
    kmeans_sample,
    progress_ticker,
    random_row_indices,
)

__all__ = ["IVClusterResult", "kmeans_cluster", "DEFAULT_CONTACT_AREA"]

#: contact area assumed for the barrier height when neither the argument nor the
#: metadata gives one: a 10 nm radius contact, pi (10 nm)^2, in m^2
DEFAULT_CONTACT_AREA = float(np.pi * 1e-16)

_SLICE = 8192  # rows per slice inside a block (bounded temporaries)
_SPM = "Acquisition_instrument.SPM"


# ------------------------------------------------------------------ validation


def _bias_axis(signal) -> np.ndarray:
    am = signal.axes_manager
    axis = am.signal_axes[0]
    bias = np.asarray(axis.axis, dtype=np.float64)
    if bias.size < 3:
        raise ValueError(
            f"the bias axis has {bias.size} points; an I-V curve needs at least 3"
        )
    if not np.isfinite(bias).all():
        raise ValueError("the bias axis holds NaN or inf values; calibrate it first")
    d = np.diff(bias)
    if not (np.all(d > 0) or np.all(d < 0)):
        turn = int(np.flatnonzero(np.sign(d) != np.sign(d[0]))[0]) + 1 if d[0] != 0 else 0
        raise ValueError(
            "the bias axis is not strictly monotonic (it turns back at point "
            f"{turn}, {bias[turn]:g} V: a forward and a backward sweep in one curve?). "
            "Cluster one sweep at a time, e.g. s.isig[:n] and s.isig[n:], or sort the axis."
        )
    return bias


def _check_signal(signal):
    if not hasattr(signal, "axes_manager"):
        raise TypeError(
            f"kmeans_cluster needs a HyperSpy signal (an IVCurveSignal: one I-V curve per "
            f"pixel), got {type(signal).__name__}; wrap arrays with "
            "hs.signals.Signal1D(data).set_signal_type('IV_curve')"
        )
    am = signal.axes_manager
    if am.signal_dimension != 1:
        raise ValueError(
            f"kmeans_cluster needs one I-V curve per pixel: a signal with one signal axis "
            f"(bias); this one has signal dimension {am.signal_dimension} "
            f"(shape {am.signal_shape}). Use s.as_signal1D(<bias axis>) first."
        )
    if am.navigation_dimension < 1 or am.navigation_size < 2:
        raise ValueError(
            "kmeans_cluster needs a map of curves (navigation axes = scan x, y); this "
            f"signal holds {am.navigation_size or 1} curve(s): nothing to cluster"
        )
    dtype = np.dtype(signal.data.dtype)
    if dtype.kind not in "biuf":
        raise TypeError(
            f"the currents have dtype {dtype}; real numbers are needed (complex lock-in "
            "data: take the real part or the modulus first)"
        )


def _check_parameters(n_clusters, max_clusters, features, scaling, denoise, offset,
                      invalid, sample_size, max_passes, n_components):  # fmt: skip
    if isinstance(n_clusters, str):
        if n_clusters != "auto":
            raise ValueError(f'n_clusters must be "auto" or an integer, got {n_clusters!r}')
    elif isinstance(n_clusters, (bool, np.bool_)) or not isinstance(
        n_clusters, numbers.Integral
    ):
        raise TypeError(f'n_clusters must be "auto" or an integer, got {n_clusters!r}')
    elif n_clusters < 1:
        raise ValueError(f"n_clusters must be at least 1, got {n_clusters}")
    for name, value, low in (
        ("max_clusters", max_clusters, 1),
        ("sample_size", sample_size, 10),
        ("max_passes", max_passes, 1),
        ("n_components", n_components, 1),
    ):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be at least {low}, got {value}")
    if features not in ("curves", "derivative"):
        raise ValueError(
            f"features must be 'curves' (the scaled I-V curves) or 'derivative' (their "
            f"slope d/dV), got {features!r}"
        )
    if scaling not in SCALINGS:
        raise ValueError(
            f"scaling must be one of {', '.join(map(repr, SCALINGS))}, got {scaling!r}"
        )
    if denoise not in ("pca", "smooth", None):
        raise ValueError(f"denoise must be 'pca', 'smooth' or None, got {denoise!r}")
    if offset not in OFFSET_METHODS:
        raise ValueError(f"offset must be 'global', 'per_curve' or None, got {offset!r}")
    if invalid not in ("raise", "exclude"):
        raise ValueError(f"invalid must be 'raise' or 'exclude', got {invalid!r}")


def _pixels(index, nav_shape, at_most=5) -> str:
    """Navigation coordinates (HyperSpy order x, y, ...) of flat indices."""
    out = []
    for i in np.asarray(index)[:at_most]:
        coords = np.unravel_index(int(i), nav_shape)[::-1]
        out.append("(" + ", ".join(str(int(c)) for c in coords) + ")")
    more = len(index) - at_most
    return ", ".join(out) + (f" and {more} more" if more > 0 else "")


# ------------------------------------------------------------- block kernels


def _scan_kernel(block, start, sample_index, ticker):
    """Pass 1 over one block: invalid values per row, extremes, column range, sample."""
    n, m = block.shape
    nonfinite = np.empty(n, dtype=np.int32)
    min_abs = np.empty(n, dtype=np.float32)
    extremes = []
    col_lo = np.full(m, np.inf)
    col_hi = np.full(m, -np.inf)
    for a in range(0, n, _SLICE):
        b = min(a + _SLICE, n)
        x = np.asarray(block[a:b])
        fin = np.isfinite(x)
        nonfinite[a:b] = (~fin).sum(axis=1)
        with np.errstate(invalid="ignore"):
            min_abs[a:b] = np.where(fin, np.abs(x), np.inf).min(axis=1)
        extremes.append(extreme_counts(x))
        rows = fin.all(axis=1)
        if rows.any():
            xr = x[rows] if not rows.all() else x
            col_lo = np.minimum(col_lo, xr.min(axis=0))
            col_hi = np.maximum(col_hi, xr.max(axis=0))
    lo, hi = np.searchsorted(sample_index, [start, start + n])
    local = sample_index[lo:hi] - start
    sample = np.array(block[local], dtype=np.float64) if local.size else np.empty((0, m))
    if ticker is not None:
        ticker.update(1)
    per_block = (nonfinite, min_abs, np.asarray(extremes), col_lo, col_hi, sample)
    return per_block, (np.zeros(1),)


@dataclass(frozen=True)
class _ClusterSums:
    """Per-cluster sums gathered in every Lloyd pass (see ``kmeans_blocks``)."""

    transform: CurveFeatures
    map_index: int

    def start(self, k):
        m = self.transform.bias.size
        return {
            "count": np.zeros((k, m)),
            "s1": np.zeros((k, m)),
            "s2": np.zeros((k, m)),
            "raw": np.zeros((k, m)),
            "n_sat": np.zeros(k),
            "best_d": np.full(k, np.inf),
            "best_i": np.full(k, -1, dtype=np.int64),
            "best_curve": np.full((k, m), np.nan),
            "map": [],
            "sat_rows": [],
        }

    def update(self, st, raw, start, labels, d2):
        x = np.asarray(raw, dtype=np.float64)
        t = self.transform
        sat = t.saturation.mask(x) if t.saturation.any else np.zeros(x.shape, dtype=bool)
        st["map"].append(np.asarray(raw[:, self.map_index], dtype=np.float32))
        st["sat_rows"].append(sat.sum(axis=1).astype(np.int32))
        k = st["count"].shape[0]
        ok = np.flatnonzero(labels >= 0)
        if ok.size == 0:
            return
        lab = labels[ok]
        x = x[ok]
        sat = sat[ok]
        if t.offset_weights is not None:
            off = x @ t.offset_weights
            xc = x - off[:, None]
        else:
            xc = x - t.offset
        good = ~sat
        xz = np.where(good, xc, 0.0)
        onehot = np.zeros((k, ok.size))
        onehot[lab, np.arange(ok.size)] = 1.0
        st["count"] += onehot @ good
        st["s1"] += onehot @ xz
        st["s2"] += onehot @ (xz * xz)
        st["raw"] += onehot @ x
        st["n_sat"] += onehot @ sat.sum(axis=1)
        dd = d2[ok, lab]
        for j in np.unique(lab):
            members = np.flatnonzero(lab == j)
            i = members[np.argmin(dd[members])]
            if dd[i] < st["best_d"][j]:
                st["best_d"][j] = dd[i]
                st["best_i"][j] = start + ok[i]
                st["best_curve"][j] = x[i]

    def finish(self, st):
        per_block = (
            np.concatenate(st["map"]) if st["map"] else np.empty(0, np.float32),
            np.concatenate(st["sat_rows"]) if st["sat_rows"] else np.empty(0, np.int32),
            st["best_d"],
            st["best_i"],
            st["best_curve"],
        )
        return per_block, (st["count"], st["s1"], st["s2"], st["raw"], st["n_sat"])

    def __dask_tokenize__(self):
        return ("nanoml-cluster-sums", self.transform.__dask_tokenize__(), self.map_index)


# ----------------------------------------------------------------- the result


def cluster_colors(k: int) -> list:
    """One colour per cluster (hex), the same in every figure of a result."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    return [matplotlib.colors.to_hex(cmap(j % cmap.N)) for j in range(k)]


@dataclass
class IVClusterResult:
    """What :func:`kmeans_cluster` found (clusters ordered by conductance, 0 = least).

    Attributes
    ----------
    signal : IVCurveSignal
        The clustered map; its ``learning_results`` hold the clustering as HyperSpy's
        ``cluster_analysis`` stores it.
    labels : hyperspy.signal.BaseSignal
        The label map (int, -1 = excluded curve), calibrated like the scan.
    n_clusters : int
    choice : KChoice or None
        The evidence for k (None when ``n_clusters`` was given).
    bias : numpy.ndarray
        Bias (V) of the curve points, in the signal's order.
    mean_curves, std_curves : numpy.ndarray (k, n_points)
        Mean and standard deviation of the members' currents (A), offset-corrected,
        saturated points left out; NaN at a bias where more than 1 % of the members
        are saturated (the mean of the others would be biased low).
    centroid_curves : numpy.ndarray (k, n_points)
        The measured curve of the member nearest each cluster centre (A).
    counts : numpy.ndarray of int (k,)
        Curves per cluster.
    saturated_points : numpy.ndarray of int (k,)
        Saturated points per cluster.
    physics : list of dict
        Per-cluster physics (see :meth:`physics_table`).
    current_map : numpy.ndarray
        The measured current (A) at ``map_bias`` on the navigation grid.
    map_bias : float
        Bias (V) of ``current_map``.
    preprocessing : dict
        Offset, noise floor, I0, saturation rails, PCA explained variance.
    parameters : dict
        The arguments and the integer ``random_state`` used.
    passes_over_data : int
        Reads of the whole map (1 scan + the Lloyd passes).
    colors : list of str
        One colour per cluster, used by every figure.
    notes : list of str
        Assumptions and warnings (contact area, excluded curves, ...).
    """

    signal: object
    labels: object
    n_clusters: int
    choice: KChoice | None
    bias: np.ndarray
    mean_curves: np.ndarray
    std_curves: np.ndarray
    centroid_curves: np.ndarray
    counts: np.ndarray
    saturated_points: np.ndarray
    physics: list
    current_map: np.ndarray
    map_bias: float
    preprocessing: dict
    parameters: dict
    passes_over_data: int
    converged: bool
    colors: list
    notes: list = field(default_factory=list)

    # --- views -----------------------------------------------------------------

    @property
    def label_array(self) -> np.ndarray:
        """The labels as a numpy array in array order (-1 = excluded)."""
        return np.asarray(self.labels.data)

    def get_mean_curves(self):
        """Mean curve of every cluster as an IVCurveSignal (navigation: cluster index);
        the standard deviation is ``metadata.Signal.Noise_properties.variance``."""
        return self._curves_signal(self.mean_curves, "Mean I-V curve per cluster", True)

    def get_centroid_curves(self):
        """The member curve nearest each centre, as an IVCurveSignal."""
        return self._curves_signal(
            self.centroid_curves, "Curve nearest each cluster centre", False
        )

    def _curves_signal(self, data, title, variance):
        import hyperspy.api as hs

        axis = self.signal.axes_manager.signal_axes[0]
        s = hs.signals.Signal1D(np.asarray(data, dtype=np.float64))
        s.axes_manager.navigation_axes[0].name = "Cluster index"
        sa = s.axes_manager.signal_axes[0]
        if axis.is_uniform:
            sa.scale, sa.offset = axis.scale, axis.offset
        else:
            s.axes_manager.signal_axes[0].convert_to_non_uniform_axis()
            s.axes_manager.signal_axes[0].axis = self.bias
        sa = s.axes_manager.signal_axes[0]
        sa.name, sa.units = axis.name, axis.units
        s.set_signal_type("IV_curve")
        s.metadata.General.title = title
        s.metadata.set_item("Signal.quantity", "Current (A)")
        if variance:
            s.metadata.set_item("Signal.Noise_properties.variance", self.std_curves**2)
        return s

    def physics_table(self) -> list:
        """Per-cluster physics as a list of flat dicts (one per cluster, in order).

        Keys: ``cluster``, ``n_curves``, ``fraction``, ``chord_conductance`` (the
        ordering key: sum |I| / sum |V| of the mean curve, S for currents in A vs bias
        in V), ``zero_bias_conductance_S``,
        ``rectification_ratio``, ``onset_voltage_V`` (forward side, where the mean
        current passes ``onset_threshold_A``), ``diode_like``, and for diode-like
        clusters the :func:`~hyperspy_nanoml.cafm.physics.fit_diode` results
        ``barrier_height_eV``, ``ideality``, ``series_resistance_ohm``,
        ``saturation_current_A`` with ``*_std``, ``temperature_K``, ``area_m2``,
        ``richardson_A_m2_K2``, and ``note``.
        """
        return [dict(p) for p in self.physics]

    # --- writers -----------------------------------------------------------------

    def to_csv(self, path, overwrite: bool = False) -> Path:
        """Write :meth:`physics_table` to a CSV file (whole or not at all)."""
        from hyperspy_nanoml.report.atomic import atomic_path

        path = _output_path(path, ".csv", overwrite)
        rows = self.physics_table()
        keys = []
        for r in rows:
            keys += [key for key in r if key not in keys]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in rows:
                w.writerow({key: _csv_value(r.get(key, "")) for key in keys})
        return path

    def labels_to_csv(self, path, overwrite: bool = False) -> Path:
        """Write one row per pixel: calibrated navigation coordinates and the label."""
        from hyperspy_nanoml.report.atomic import atomic_path

        path = _output_path(path, ".csv", overwrite)
        am = self.signal.axes_manager
        nav_axes = am.navigation_axes  # HyperSpy order (x, y, ...)
        labels = self.label_array
        grids = np.meshgrid(*[ax.axis for ax in nav_axes[::-1]], indexing="ij")
        names = [f"{ax.name} ({ax.units})" if ax.units else str(ax.name) for ax in nav_axes]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([*names, "label", f"current at {self.map_bias:g} V (A)"])
            cols = [g.ravel() for g in grids[::-1]] + [
                labels.ravel(),
                self.current_map.ravel(),
            ]
            w.writerows(zip(*[c.tolist() for c in cols]))
        return path

    def save_report(self, path, *, bias: float | None = None, overwrite: bool = False):
        """Write the PDF report (see :func:`hyperspy_nanoml.report.cafm_report.write_cafm_report`).

        Parameters
        ----------
        path : str or Path
            The PDF to write (``.pdf`` appended when missing).
        bias : float, optional
            Bias (V) of the current map under the labels; default ``map_bias`` (the
            map kept while clustering: no extra read of lazy data).
        overwrite : bool
            Replace an existing file (default: refuse with FileExistsError).
        """
        from hyperspy_nanoml.report.cafm_report import write_cafm_report

        path = _output_path(path, ".pdf", overwrite)
        return write_cafm_report(self, path, bias=bias)

    def __repr__(self):
        sizes = ", ".join(str(int(c)) for c in self.counts)
        return (
            f"<IVClusterResult: {self.n_clusters} clusters ordered by conductance "
            f"(curves per cluster: {sizes}); {self.passes_over_data} passes over the data>"
        )


def _csv_value(v):
    if isinstance(v, float | np.floating):
        return repr(float(v))
    return v


def _output_path(path, suffix, overwrite):
    from hyperspy_nanoml._validation import check_output_path

    path = check_output_path(path, suffix)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} exists; pass overwrite=True to replace it, or choose another name"
        )
    return path


# ------------------------------------------------------------------- physics


def _acquisition(signal, name, given):
    if given is not None:
        return float(given), "given"
    key = f"{_SPM}.{name}"
    if key in signal.metadata:
        return float(signal.metadata.get_item(key)), "metadata"
    return None, "default"


def _cluster_physics(bias, mean, counts, chord, temperature, area, richardson,
                     onset_threshold, is_current):  # fmt: skip
    """Zero-bias conductance, rectification, onset and a diode fit per cluster."""
    from hyperspy_nanoml.cafm import physics

    order = np.argsort(bias)
    b = bias[order]
    total = counts.sum()
    rows = []
    for j in range(mean.shape[0]):
        c = mean[j][order]
        row = {
            "cluster": j,
            "n_curves": int(counts[j]),
            "fraction": float(counts[j] / total) if total else np.nan,
            "chord_conductance": float(chord[j]),
        }
        if not is_current:
            rows.append(row)
            continue
        finite = np.isfinite(c)
        g0 = rr = onset = np.nan
        if finite.sum() >= 3:
            # saturated points are NaN in the mean curve: measure on the rest
            bf, cf = b[finite], c[finite]
            if bf[0] <= 0 <= bf[-1]:
                try:
                    g0 = float(physics.zero_bias_conductance(bf, cf))
                except ValueError:
                    pass
            if bf[0] < 0 < bf[-1]:
                try:
                    rr = float(physics.rectification_ratio(bf, cf))
                except ValueError:
                    pass
            side = "negative" if np.isfinite(rr) and rr < 1 else "positive"
            try:
                onset = float(physics.onset_voltage(bf, cf, onset_threshold, polarity=side))
            except ValueError:
                pass
        row["zero_bias_conductance_S"] = g0
        row["rectification_ratio"] = rr
        row["onset_voltage_V"] = onset
        row["onset_threshold_A"] = float(onset_threshold)
        diode = bool(np.isfinite(rr) and (rr >= 10 or rr <= 0.1))
        row["diode_like"] = diode
        if diode:
            try:
                fit = physics.fit_diode(
                    b, c, temperature=temperature, area=area, richardson=richardson,
                    saturation=None,
                )  # fmt: skip
                row.update(
                    barrier_height_eV=fit.barrier_height,
                    barrier_height_eV_std=fit.barrier_height_std,
                    ideality=fit.ideality,
                    ideality_std=fit.ideality_std,
                    series_resistance_ohm=fit.series_resistance,
                    series_resistance_ohm_std=fit.series_resistance_std,
                    saturation_current_A=fit.saturation_current,
                    saturation_current_A_std=fit.saturation_current_std,
                    polarity=fit.polarity,
                    temperature_K=temperature,
                    area_m2=area,
                    richardson_A_m2_K2=richardson,
                    fit_success=bool(fit.success),
                    note=fit.note,
                )
            except ValueError as error:
                row["note"] = f"diode fit not possible: {error}"
        rows.append(row)
    return rows


# ------------------------------------------------------------------ the workflow


def kmeans_cluster(
    signal,
    n_clusters="auto",
    features: str = "curves",
    scaling: str = "asinh",
    random_state=None,
    *,
    max_clusters: int = 8,
    i0: float | None = None,
    denoise: str | None = "pca",
    n_components: int = 10,
    smoothing: int = 7,
    offset: str | None = "global",
    saturation_current: float | None = None,
    invalid: str = "raise",
    sample_size: int = 20000,
    max_passes: int = 5,
    tol: float = 1e-3,
    separation: float = DEFAULT_SEPARATION,
    min_cluster_fraction: float = 0.005,
    n_init: int = 4,
    temperature: float | None = None,
    contact_area: float | None = None,
    richardson: float | None = None,
    onset_threshold: float | None = None,
    map_bias: float | None = None,
    show_progressbar: bool | None = None,
    print_info: bool = False,
) -> IVClusterResult:
    """k-means clustering of the I-V curves of a C-AFM map, ordered by conductance.

    Each curve is offset-corrected, scaled sign-preservingly (``asinh(I / I0)``
    by default), denoised (PCA to ``n_components``) and assigned to the nearest of k
    centres; k is chosen on a sample by the separation criterion (every pair of
    clusters separated: Ashman's D >= ``separation``; see
    :mod:`hyperspy_nanoml.learn.clustering` and the measurements in this module's
    docstring). Clusters are ordered by their mean chord conductance
    ``sum |I| / sum |V|`` of the mean curve: cluster 0 is the least conductive.
    Lazy maps are read block by block (1 + a few passes, counted; no pairwise
    distance matrix); the input's data are never modified.

    Results go where HyperSpy's ``cluster_analysis`` puts them, in
    ``signal.learning_results``: ``cluster_labels`` (k, n_pixels) bool,
    ``cluster_centroids`` (k, n_features), ``cluster_sum_signals`` and
    ``cluster_centroid_signals`` (k, n_points), ``cluster_distances`` (k, n_pixels),
    ``number_of_clusters``, ``cluster_algorithm``, and with ``n_clusters="auto"``
    ``estimated_number_of_clusters``, ``cluster_metric_index``,
    ``cluster_metric_data`` and ``cluster_metric``. So ``plot_cluster_results()``,
    ``get_cluster_labels()``, ``get_cluster_signals()`` and
    ``plot_cluster_metric()`` work. Excluded curves have no label (merged label -1).

    Parameters
    ----------
    signal : IVCurveSignal or LazyIVCurveSignal
        Current (A) vs bias (V, strictly monotonic) at every pixel.
    n_clusters : int or "auto"
        Number of clusters, or chosen in ``1..max_clusters``.
    features : {"curves", "derivative"}
        Cluster the scaled curves, or their slope d/dV (shape of the turn-on rather
        than its magnitude).
    scaling : {"asinh", "log_abs", "linear"}
        ``asinh(I/I0)``, ``sign(I) log10(1 + |I|/I0)`` or ``I/I0``
        (:func:`hyperspy_nanoml.cafm.preprocess.scale_current`).
    random_state : int, numpy Generator or None
        Seed of the sample and the k-means seeding; the integer used is recorded
        (``result.parameters["random_state"]``) and reproduces the result.
    max_clusters : int
        Largest k tried with ``"auto"`` (default 8).
    i0 : float, optional
        Scale current I0 in A; default 3 x the noise floor estimated on the sample.
    denoise : {"pca", "smooth", None}
        PCA to ``n_components`` (default), Savitzky-Golay smoothing of ``smoothing``
        points, or nothing.
    n_components : int
        PCA components kept (default 10).
    smoothing : int
        Savitzky-Golay window (odd number of points) for ``denoise="smooth"``.
    offset : {"global", "per_curve", None}
        Amplifier-offset correction (the zero-bias current; see
        :mod:`hyperspy_nanoml.cafm.preprocess`).
    saturation_current : float, optional
        Amplifier saturation (A); default the metadata
        (``Acquisition_instrument.SPM.saturation_current``) or a detected rail.
    invalid : {"raise", "exclude"}
        Curves with NaN/inf or saturated at every point: raise a ValueError naming
        them (default), or leave them out (label -1).
    sample_size : int
        Curves sampled for the noise floor, the PCA and the choice of k (default
        20000; all curves of smaller maps).
    max_passes : int
        Upper bound on the Lloyd passes over the data (default 5).
    tol : float
        Centre shift, relative to the smallest distance between centres, that
        ends the passes (default 1e-3).
    separation : float
        Ashman's D that counts as separated for the choice of k (default 4).
    min_cluster_fraction : float
        Smallest cluster (fraction of the sample) the choice accepts (0.005).
    n_init : int
        k-means restarts on the sample for each k.
    temperature : float, optional
        K, for the diode fits; default the metadata, else 300 K (stated).
    contact_area : float, optional
        m^2, for the apparent barrier; default the metadata, else
        :data:`DEFAULT_CONTACT_AREA` (a 10 nm radius contact; stated in the notes:
        one decade of area moves the barrier by 59.5 meV at 300 K).
    richardson : float, optional
        Effective Richardson constant, A m^-2 K^-2; default the free-electron value
        1.20173e6 (stated).
    onset_threshold : float, optional
        Current (A) defining the onset voltage; default 10 x the noise floor.
    map_bias : float, optional
        Bias (V) of the current map kept for the report; default the largest
        forward (most positive) bias.
    show_progressbar : bool, optional
        Default: HyperSpy's preference.
    print_info : bool
        Print k, the reason and the passes.

    Returns
    -------
    IVClusterResult

    Raises
    ------
    TypeError, ValueError
        Not a map of curves (signal dimension other than 1, a single curve),
        a non-monotonic bias axis, bad parameters (before any data are read);
        NaN or fully saturated curves with ``invalid="raise"``, a constant map, or
        fewer valid curves than clusters (after the first pass).

    References
    ----------
    Janas et al., Appl. Surf. Sci. 570, 150958 (2021); Lloyd, IEEE Trans. Inf. Theory
    28, 129 (1982); Arthur & Vassilvitskii, k-means++, SODA 2007; Ashman, Bird & Zepf,
    Astron. J. 108, 2348 (1994).

    Examples
    --------
    >>> from hyperspy_nanoml.data.cafm import generate_iv_map
    >>> s, truth = generate_iv_map((32, 32), random_state=0)
    >>> result = kmeans_cluster(s, random_state=0)
    >>> result.n_clusters
    4
    >>> s.get_cluster_labels(merged=True).data.shape
    (32, 32)
    """
    # ---- everything checked before the data are read
    _check_signal(signal)
    bias = _bias_axis(signal)
    _check_parameters(n_clusters, max_clusters, features, scaling, denoise, offset,
                      invalid, sample_size, max_passes, n_components)  # fmt: skip
    for name, value in (("i0", i0), ("saturation_current", saturation_current),
                        ("temperature", temperature), ("contact_area", contact_area),
                        ("richardson", richardson), ("onset_threshold", onset_threshold)):  # fmt: skip
        if value is not None and not (np.isfinite(float(value)) and float(value) > 0):
            raise ValueError(f"{name} must be a positive number (SI units), got {value!r}")
    if not separation > 0:
        raise ValueError(f"separation must be > 0, got {separation!r}")
    if denoise == "smooth" and (
        smoothing % 2 == 0 or smoothing < 3 or smoothing > bias.size
    ):
        raise ValueError(
            f"smoothing must be an odd number of points between 3 and {bias.size}, "
            f"got {smoothing}"
        )
    rng, seed = resolve_random_state(random_state)
    sk_seed = seed if seed is not None else int(rng.randint(0, 2**31 - 1))
    from hyperspy_nanoml.learn.signal_matrix import unfold_data

    X, nav_shape, _ = unfold_data(signal)
    n, m = int(X.shape[0]), int(X.shape[1])
    if n_clusters != "auto" and n_clusters > n:
        raise ValueError(
            f"n_clusters={n_clusters} is larger than the number of curves ({n})"
        )
    map_index = (
        int(np.argmax(bias))
        if map_bias is None
        else int(np.argmin(np.abs(bias - map_bias)))
    )
    lazy = is_lazy(signal)
    blocks = RowBlocks(X)
    bar = make_progressbar(
        total=blocks.n_blocks * (1 + max_passes),
        desc="kmeans_cluster",
        unit="block",
        show_progressbar=show_progressbar,
    )
    try:
        # ---- pass 1: invalid curves, rails, constancy, sample
        sample_index = random_row_indices(n, sample_size, rng)
        ticker = progress_ticker(bar, blocks)
        parts, _ = blocks.run(_scan_kernel, sample_index, ticker)
        if ticker is None:  # dask.distributed workers: advance the bar per pass
            bar.update(blocks.n_blocks)
        nonfinite = np.concatenate([p[0] for p in parts])
        min_abs = np.concatenate([p[1] for p in parts])
        col_lo = np.min([p[3] for p in parts], axis=0)
        col_hi = np.max([p[4] for p in parts], axis=0)
        sample = np.concatenate([p[5] for p in parts])

        valid_cols = np.isfinite(col_lo) & np.isfinite(col_hi)
        if valid_cols.any() and np.all(col_hi[valid_cols] - col_lo[valid_cols] == 0):
            raise ValueError(
                "every curve of the map is the same (a constant map): there is nothing to "
                "cluster. Check the channel (a bias or a constant monitor channel instead of "
                "the current?) and the amplifier gain."
            )
        if saturation_current is None and f"{_SPM}.saturation_current" in signal.metadata:
            saturation_current = float(
                signal.metadata.get_item(f"{_SPM}.saturation_current")
            )
        if saturation_current is not None:
            saturation = detect_saturation(np.zeros(1), saturation_current)
        else:
            saturation = saturation_from_extremes(np.concatenate([p[2] for p in parts]))
        rails = [abs(v) for v in (saturation.low, saturation.high) if v is not None]
        if rails:
            rail = min(rails) * (1 - saturation.rtol)
            all_saturated = (nonfinite == 0) & (min_abs >= rail)
        else:
            all_saturated = np.zeros(n, dtype=bool)
        has_nan = nonfinite > 0
        invalid_rows = has_nan | all_saturated
        notes = []
        n_invalid = int(invalid_rows.sum())
        if n_invalid:
            parts_msg = []
            if has_nan.any():
                n_full = int((nonfinite == m).sum())
                whole = (
                    f" ({n_full} entirely: an incomplete grid padded with NaN?)"
                    if n_full
                    else ""
                )
                parts_msg.append(
                    f"{int(has_nan.sum())} curve(s) hold NaN or inf values{whole} at "
                    f"pixel(s) {_pixels(np.flatnonzero(has_nan), nav_shape)}"
                )
            if all_saturated.any():
                parts_msg.append(
                    f"{int(all_saturated.sum())} curve(s) are saturated at every point "
                    f"(amplifier rail {min(rails):.3g} A) at pixel(s) "
                    f"{_pixels(np.flatnonzero(all_saturated), nav_shape)}"
                )
            message = "; ".join(parts_msg)
            if n_invalid >= n - 1:
                raise ValueError(
                    f"{message}: fewer than 2 valid curves are left, nothing to cluster"
                )
            if invalid == "raise":
                raise ValueError(
                    f"{message}. They cannot be compared with the others: leave them out with "
                    "kmeans_cluster(..., invalid='exclude') (label -1), or fix the data first "
                    "(e.g. interpolate isolated NaN points)."
                )
            notes.append(f"excluded (label -1): {message}")
        keep = ~invalid_rows[sample_index]
        sample = sample[keep]
        if sample.shape[0] < 2:
            raise ValueError(
                "fewer than 2 valid curves in the sample; increase sample_size"
            )

        # ---- in memory, on the sample: preprocessing, k, seeds
        transform, prep = CurveFeatures.from_sample(
            sample, bias, scaling=scaling, i0=i0, offset=offset, saturation=saturation,
            features=features, denoise=denoise, n_components=n_components,
            smoothing=smoothing,
        )  # fmt: skip
        prep["saturation"] = saturation.as_dict()
        F_sample = transform(sample)[0].astype(np.float64)
        if not np.any(F_sample.std(axis=0) > 0):
            raise ValueError(
                "the sampled curves are all the same after scaling (a constant map): there "
                "is nothing to cluster"
            )
        n_valid = n - n_invalid
        choice = None
        if n_clusters == "auto":
            choice, fits = choose_n_clusters(
                F_sample, max_clusters, threshold=separation,
                min_cluster_fraction=min_cluster_fraction, n_init=n_init,
                random_state=sk_seed,
            )  # fmt: skip
            k = choice.n_clusters
            init = fits[k][0]
        else:
            k = int(n_clusters)
            if k > n_valid:
                raise ValueError(f"n_clusters={k} but only {n_valid} valid curves")
            init = kmeans_sample(F_sample, k, n_init=n_init, random_state=sk_seed)[0]

        # ---- Lloyd passes over the blocks, with the per-cluster sums
        acc = _ClusterSums(transform=transform, map_index=map_index)
        res = kmeans_blocks(
            X, init, transform=transform, accumulate=acc, max_passes=max_passes, tol=tol,
            blocks=blocks, progressbar=bar,
        )  # fmt: skip
        bar.total = bar.n
        bar.refresh()
        count, s1, s2, raw_sum, n_sat = res.extra_sums
        current_map = np.concatenate([p[0] for p in res.extra_blocks])
        best_d = np.stack([p[2] for p in res.extra_blocks])
        best_curve = np.stack([p[4] for p in res.extra_blocks])
        labels = res.labels.astype(np.int64)
        dist = np.sqrt(res.sq_distances.astype(np.float64))
        counts = res.counts

        # drop clusters that ended empty (rare; k-means from sample seeds)
        alive = np.flatnonzero(counts > 0)
        if alive.size < k:
            notes.append(f"{k - alive.size} cluster(s) ended empty and were dropped")

        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s1 / count
            var = np.maximum(s2 / count - mean**2, 0.0)
            # where more than 1 % of the members are saturated the mean of the others
            # would be biased towards the less conductive ones: no value there
            biased = count < 0.99 * counts[:, None]
        mean[biased] = np.nan
        var[biased] = np.nan
        std = np.sqrt(var)
        # ---- order by conductance: mean chord conductance sum|I| / sum|V| of the
        # members' mean curve, saturated points kept at the rail (a lower bound: a
        # saturated cluster stays the most conductive)
        with np.errstate(invalid="ignore", divide="ignore"):
            measured = raw_sum / counts[:, None] - prep["offset"]
            chord = np.abs(measured).sum(axis=1) / max(np.abs(bias).sum(), 1e-300)
        chord = np.where(np.isfinite(chord), chord, np.inf)
        order = alive[np.argsort(chord[alive], kind="stable")]
        k = order.size
        remap = np.full(res.centers.shape[0], -1, dtype=np.int64)
        remap[order] = np.arange(k)
        labels = np.where(labels >= 0, remap[np.maximum(labels, 0)], -1)
        mean, std, count = mean[order], std[order], count[order]
        raw_sum, n_sat, counts = raw_sum[order], n_sat[order], counts[order]
        centers = res.centers[order]
        dist = dist[:, order]
        winner = np.argmin(best_d[:, order], axis=0)
        centroid_curves = best_curve[winner, order]

        # ---- HyperSpy's cluster_analysis storage
        _store_learning_results(
            signal, labels, centers, raw_sum, centroid_curves, dist, k, choice
        )

        # ---- physics per cluster
        quantity = str(signal.metadata.get_item("Signal.quantity", ""))
        units = str(signal.axes_manager.signal_axes[0].units)
        is_current = quantity.lower().startswith("current") and units == "V"
        t_val, t_src = _acquisition(signal, "temperature", temperature)
        a_val, a_src = _acquisition(signal, "contact_area", contact_area)
        if t_val is None:
            t_val = 300.0
        if a_val is None:
            a_val = DEFAULT_CONTACT_AREA
        from hyperspy_nanoml.cafm.physics import RICHARDSON_FREE_ELECTRON

        if richardson is not None:
            r_val, r_src = float(richardson), "given"
        else:
            r_val, r_src = RICHARDSON_FREE_ELECTRON, "default (free electron)"
        noise = prep["noise_floor"]
        if onset_threshold is None:
            onset_threshold = 10 * noise if np.isfinite(noise) and noise > 0 else 1e-9
        physics = _cluster_physics(
            bias, mean, counts, chord[order], t_val, a_val, r_val, onset_threshold,
            is_current,
        )  # fmt: skip
        if not is_current:
            notes.append(
                f"the signal holds {quantity or 'an unnamed quantity'} vs "
                f"{units or 'unitless'} bias, not current (A) vs bias (V): no diode physics"
            )
        if any("barrier_height_eV" in p for p in physics):
            # the assumptions behind the barrier heights, stated with them
            if a_src == "default":
                notes.append(
                    f"contact area not given nor in the metadata: the barrier heights "
                    f"assume {a_val:.3g} m^2 (a 10 nm radius contact); one decade of area "
                    f"moves them by {1e3 * 8.617333262e-5 * t_val * np.log(10):.1f} meV "
                    f"at {t_val:g} K"
                )
            if t_src == "default":
                notes.append("temperature not given nor in the metadata: 300 K assumed")
            if r_src != "given":
                notes.append(
                    f"Richardson constant not given: the free-electron value {r_val:.4g} "
                    "A m^-2 K^-2 is assumed (pass richardson=..., e.g. 9.6e4 for n-InP)"
                )

        # ---- the label map and the record
        from hyperspy_nanoml._compat import navigation_signal

        label_map = navigation_signal(signal, labels.reshape(nav_shape))
        if getattr(label_map, "_lazy", False):
            label_map.compute()
        label_map.metadata.General.title = (
            f"Cluster labels of {signal.metadata.General.title}"
        )
        label_map.metadata.set_item("Signal.quantity", "cluster (0 = least conductive)")
        parameters = {
            "n_clusters": n_clusters if n_clusters == "auto" else int(n_clusters),
            "features": features,
            "scaling": scaling,
            "random_state": seed,
            "max_clusters": int(max_clusters),
            "denoise": denoise,
            "n_components": int(n_components),
            "offset": offset,
            "invalid": invalid,
            "sample_size": int(sample_size),
            "separation": float(separation),
            "min_cluster_fraction": float(min_cluster_fraction),
            "temperature_K": t_val,
            "temperature_source": t_src,
            "contact_area_m2": a_val,
            "contact_area_source": a_src,
            "richardson_A_m2_K2": r_val,
            "richardson_source": r_src,
            "lazy": bool(lazy),
        }
        record = {
            **parameters,
            "n_clusters_found": int(k),
            "reason": choice.reason if choice is not None else "given",
            "passes_over_data": int(blocks.passes),
            "converged": bool(res.converged),
            "centre_shifts": [float(v) for v in res.shifts],
            "i0_A": float(prep["i0"]),
            "noise_floor_A": float(noise),
            "offset_A": float(prep["offset"]),
            "excluded_curves": n_invalid,
            "order": "mean chord conductance sum|I|/sum|V| of the mean curve, ascending",
        }
        label_map.metadata.set_item("Processing.kmeans_cluster", record)
        signal.learning_results.kmeans_cluster_info = record
        result = IVClusterResult(
            signal=signal,
            labels=label_map,
            n_clusters=int(k),
            choice=choice,
            bias=bias,
            mean_curves=mean,
            std_curves=std,
            centroid_curves=centroid_curves,
            counts=np.asarray(counts, dtype=np.int64),
            saturated_points=np.asarray(n_sat, dtype=np.int64),
            physics=physics,
            current_map=current_map.reshape(nav_shape),
            map_bias=float(bias[map_index]),
            preprocessing=prep,
            parameters=parameters,
            passes_over_data=int(blocks.passes),
            converged=bool(res.converged),
            colors=cluster_colors(int(k)),
            notes=notes,
        )
        if print_info:
            print(
                f"kmeans_cluster: {k} clusters ("
                + (choice.reason if choice is not None else "given")
                + f"); {blocks.passes} passes over the data; curves per cluster: "
                + ", ".join(str(int(c)) for c in counts)
            )
        return result
    finally:
        bar.close()


def _store_learning_results(signal, labels, centers, raw_sum, centroid_curves, dist, k,
                            choice):  # fmt: skip
    """Fill ``learning_results`` as HyperSpy's ``cluster_analysis`` does."""
    lr = signal.learning_results
    n = labels.size
    member = np.zeros((k, n), dtype=bool)
    ok = labels >= 0
    member[labels[ok], np.flatnonzero(ok)] = True
    distances = np.full((k, n), np.nan)
    distances[:, ok] = dist[ok].T
    lr.cluster_labels = member
    lr.cluster_algorithm = "kmeans (hyperspy_nanoml, ordered by conductance)"
    lr.number_of_clusters = int(k)
    lr.cluster_sum_signals = np.asarray(raw_sum, dtype=np.float64)
    lr.cluster_centroid_signals = np.asarray(centroid_curves, dtype=np.float64)
    lr.cluster_distances = distances
    lr.cluster_centroids = np.asarray(centers, dtype=np.float64)
    # the mean signal of each cluster (k, n_points): what plot_cluster_labels(
    # with_centers=True) and export_cluster_results() read (cluster_analysis leaves it unset)
    with np.errstate(invalid="ignore", divide="ignore"):
        lr.cluster_centers = lr.cluster_sum_signals / member.sum(axis=1)[:, None]
    if choice is not None:
        lr.estimated_number_of_clusters = int(choice.n_clusters)
        lr.cluster_metric_index = [int(v) for v in choice.k_values]
        lr.cluster_metric_data = [
            float(v) if np.isfinite(v) else np.nan for v in choice.separation
        ]
        lr.cluster_metric = "separation (min. pairwise Ashman D)"
        lr.kmeans_k_choice = choice.as_dict()
    else:
        lr.estimated_number_of_clusters = None
        lr.cluster_metric_index = None
        lr.cluster_metric_data = None
        lr.cluster_metric = None
        lr.kmeans_k_choice = None
