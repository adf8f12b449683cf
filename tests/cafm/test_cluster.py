"""k-means clustering of I-V maps (hyperspy_nanoml.cafm.cluster), its report and its CLI."""

import doctest

import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from hyperspy_nanoml.cafm import cluster as cluster_module
from hyperspy_nanoml.cafm.cluster import kmeans_cluster
from hyperspy_nanoml.data.cafm import DEFAULT_CLASSES, generate_iv_map

SUBSTRATE = DEFAULT_CLASSES[0]


def ari(truth, result):
    return adjusted_rand_score(truth["labels"].ravel(), result.label_array.ravel())


def ceiling(truth):
    """The best attainable ARI: lost-contact pixels carry the substrate's curve."""
    best = np.where(truth["lost_contact"], 0, truth["labels"])
    return adjusted_rand_score(truth["labels"].ravel(), best.ravel())


def not_lost(truth):
    return ~truth["lost_contact"]


@pytest.fixture(scope="module")
def default_map():
    """The default 4 classes (two ohmic ones 4x apart), 4 % lost contacts."""
    return generate_iv_map((48, 48), random_state=0)


@pytest.fixture(scope="module")
def default_result(default_map):
    s, _ = default_map
    s = s.deepcopy()
    return kmeans_cluster(s, random_state=0, richardson=9.6e4)


# ----------------------------------------------------------- labels and k


def test_default_map_k_labels_and_order(default_map, default_result):
    _, truth = default_map
    r = default_result
    assert r.n_clusters == 4
    assert ari(truth, r) == pytest.approx(ceiling(truth), abs=1e-9)
    # clusters come ordered by conductance like the truth (0 = least conductive):
    # every pixel that kept its contact has exactly its true label
    keep = not_lost(truth)
    np.testing.assert_array_equal(r.label_array[keep], truth["labels"][keep])
    # lost-contact pixels look like the substrate and land in cluster 0
    assert (r.label_array[truth["lost_contact"]] == 0).all()
    assert r.choice.separation[3] > 10 and r.choice.separation[4] < 4
    # the order is the mean chord conductance sum |I| / sum |V| of the mean curves
    chord = np.abs(r.mean_curves).sum(1) / np.abs(r.bias).sum()
    assert np.all(np.diff(chord) > 0)


@pytest.mark.parametrize(
    "name, classes, k",
    [
        (
            "two classes that differ only in conductance (2x)",
            [
                SUBSTRATE,
                {"kind": "ohmic", "resistance": 1e7},
                {"kind": "ohmic", "resistance": 5e6},
            ],
            3,
        ),
        (
            "10 % pixel-to-pixel scatter",
            [dict(c, scatter=0.10) for c in DEFAULT_CLASSES],
            4,
        ),
        (
            "five classes",
            [*DEFAULT_CLASSES, {"kind": "ohmic", "resistance": 1e6}],
            5,
        ),
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_automatic_k_on_generated_maps(name, classes, k, seed):
    s, truth = generate_iv_map((48, 48), classes=classes, random_state=seed)
    r = kmeans_cluster(s, random_state=seed)
    assert r.n_clusters == k, f"{name}: {r.choice.reason}"
    assert ari(truth, r) == pytest.approx(ceiling(truth), abs=0.005)
    keep = not_lost(truth)
    assert np.mean(r.label_array[keep] == truth["labels"][keep]) > 0.995


def test_one_class_gives_one_cluster():
    rng = np.random.default_rng(0)
    v = np.linspace(-2, 2, 101)
    r_ohm = 1e7 * np.exp(0.05 * rng.standard_normal((32, 32, 1)))
    data = (v / r_ohm + 30e-12 * rng.standard_normal((32, 32, 101))).astype(np.float32)
    s = hs.signals.Signal1D(data)
    s.axes_manager.signal_axes[0].scale = v[1] - v[0]
    s.axes_manager.signal_axes[0].offset = v[0]
    s.set_signal_type("IV_curve")
    r = kmeans_cluster(s, random_state=0)
    assert r.n_clusters == 1
    assert (r.label_array == 0).all()
    assert r.physics[0]["zero_bias_conductance_S"] == pytest.approx(1e-7, rel=0.02)


def test_given_k_and_features_and_scalings(default_map):
    s, truth = default_map
    for kwargs in (
        {"scaling": "log_abs"},
        {"scaling": "linear"},
        {"denoise": "smooth"},
        {"denoise": None},
        {"offset": "per_curve"},
        {"features": "derivative"},
    ):
        r = kmeans_cluster(s, 4, random_state=0, **kwargs)
        assert r.n_clusters == 4
        assert ari(truth, r) > 0.94, kwargs
        assert r.parameters[next(iter(kwargs))] == next(iter(kwargs.values()))


# ------------------------------------------------ HyperSpy's storage and viewers


def test_learning_results_as_cluster_analysis_stores_them(default_map, default_result):
    import matplotlib.pyplot as plt

    s = default_result.signal
    r = default_result
    lr = s.learning_results
    k, n = 4, 48 * 48
    assert lr.cluster_labels.shape == (k, n) and lr.cluster_labels.dtype == bool
    assert (lr.cluster_labels.sum(0) == 1).all()
    assert lr.number_of_clusters == k and lr.estimated_number_of_clusters == k
    merged = s.get_cluster_labels(merged=True)
    np.testing.assert_array_equal(merged.data, r.label_array)
    assert merged.axes_manager.navigation_shape == () and merged.data.shape == (48, 48)
    per = s.get_cluster_labels()
    assert per.axes_manager.navigation_shape == (k,)
    means = s.get_cluster_signals("mean")
    np.testing.assert_allclose(
        means.data, lr.cluster_sum_signals / lr.cluster_labels.sum(1)[:, None]
    )
    # the centroid signals are measured curves of members of their cluster
    rows = s.data.reshape(n, -1)
    for j in range(k):
        match = np.flatnonzero((rows == lr.cluster_centroid_signals[j]).all(axis=1))
        assert match.size == 1 and r.label_array.ravel()[match[0]] == j
    # distances: each pixel is nearest to its own cluster
    np.testing.assert_array_equal(
        np.argmin(lr.cluster_distances, axis=0), r.label_array.ravel()
    )
    assert lr.cluster_centroids.shape == (k, 10)
    np.testing.assert_array_equal(lr.cluster_metric_index, np.arange(1, 9))
    np.testing.assert_allclose(lr.cluster_centers, means.data)
    s.plot_cluster_results()
    s.plot_cluster_metric()
    s.plot_cluster_labels(with_centers=True)  # reads cluster_centers
    s.get_cluster_distances()
    plt.close("all")


def test_results_survive_export_and_save(default_result, tmp_path):
    s = default_result.signal
    s.export_cluster_results(folder=str(tmp_path))
    assert len(list(tmp_path.glob("cluster_center-*.hspy"))) == 4
    s.save(tmp_path / "clustered.hspy")
    back = hs.load(tmp_path / "clustered.hspy")
    np.testing.assert_array_equal(
        back.get_cluster_labels(merged=True).data, default_result.label_array
    )
    assert back.learning_results.kmeans_k_choice["n_clusters"] == 4


def test_label_map_is_calibrated_like_the_scan(default_map, default_result):
    s, _ = default_map
    lab = default_result.labels
    for a, b in zip(lab.axes_manager.signal_axes, s.axes_manager.navigation_axes):
        assert (a.name, a.units, a.scale, a.offset) == (b.name, b.units, b.scale, b.offset)
    rec = lab.metadata.Processing.kmeans_cluster
    assert rec["n_clusters_found"] == 4 and rec["random_state"] == 0
    assert rec["passes_over_data"] == default_result.passes_over_data


def test_mean_and_spread_curves(default_map, default_result):
    s, truth = default_map
    r = default_result
    rows = s.data.reshape(-1, 201).astype(np.float64)
    lab = r.label_array.ravel()
    for j in range(4):
        member = rows[lab == j]
        np.testing.assert_allclose(
            r.mean_curves[j],
            member.mean(0) - r.preprocessing["offset"],
            rtol=1e-6,
            atol=1e-15,
        )
        np.testing.assert_allclose(r.std_curves[j], member.std(0), rtol=1e-4, atol=1e-15)
    assert r.counts.tolist() == np.bincount(lab).tolist()
    curves = r.get_mean_curves()
    assert curves.metadata.Signal.signal_type == "IV_curve"
    assert curves.axes_manager.signal_axes[0].units == "V"
    np.testing.assert_allclose(
        curves.metadata.Signal.Noise_properties.variance, r.std_curves**2
    )


# ------------------------------------------------------------------- physics


def test_physics_per_cluster(default_map, default_result):
    _, truth = default_map
    phys = default_result.physics_table()
    classes = truth["classes"]
    schottky = phys[1]
    assert schottky["diode_like"] and schottky["fit_success"]
    assert schottky["barrier_height_eV"] == pytest.approx(
        classes[1]["barrier_height"], abs=0.01
    )
    assert schottky["ideality"] == pytest.approx(classes[1]["ideality"], abs=0.05)
    assert schottky["series_resistance_ohm"] == pytest.approx(1e7, rel=0.05)
    assert schottky["area_m2"] == 1e-14  # from the metadata
    assert "1e-14 m^2" in schottky["note"]
    assert schottky["rectification_ratio"] > 1e3
    for j in (2, 3):
        assert not phys[j]["diode_like"]
        assert phys[j]["zero_bias_conductance_S"] == pytest.approx(
            classes[j]["zero_bias_conductance"], rel=0.03
        )
        assert phys[j]["rectification_ratio"] == pytest.approx(1.0, abs=0.01)
    assert not phys[0]["diode_like"]
    assert np.all(np.diff([p["chord_conductance"] for p in phys]) > 0)


def test_default_area_is_stated():
    s, _ = generate_iv_map((32, 32), random_state=5)
    del s.metadata.Acquisition_instrument.SPM.contact_area
    r = kmeans_cluster(s, random_state=0)
    assert r.physics[1]["area_m2"] == pytest.approx(cluster_module.DEFAULT_CONTACT_AREA)
    assert any("contact area not given" in n and "meV" in n for n in r.notes)
    assert any("Richardson" in n for n in r.notes)


def test_saturated_map(tmp_path):
    s, truth = generate_iv_map((40, 40), saturation=5e-7, random_state=6)
    r = kmeans_cluster(s, random_state=0)
    assert r.n_clusters == 4
    assert ari(truth, r) == pytest.approx(ceiling(truth), abs=0.005)
    assert r.preprocessing["saturation"]["source"] == "given"
    # the 2.5 MOhm class clips beyond 1.25 V: left out of its mean curve, counted
    assert r.saturated_points[3] > 0 and r.saturated_points[:3].sum() == 0
    high = np.abs(r.bias) > 1.3
    assert np.isnan(r.mean_curves[3, high]).all()
    assert np.isfinite(r.mean_curves[2]).all()
    assert r.physics[3]["zero_bias_conductance_S"] == pytest.approx(4e-7, rel=0.03)
    assert r.physics[3]["rectification_ratio"] == pytest.approx(1.0, abs=0.01)


# --------------------------------------------------------- lazy, reads, seeds


_READS = {}


def _count(block, block_info=None):
    key = tuple(block_info[0]["chunk-location"])
    _READS[key] = _READS.get(key, 0) + 1
    return block


def test_lazy_equals_eager_and_the_reads_are_counted(default_map, default_result):
    s, _ = default_map
    lazy = s.deepcopy().as_lazy()
    lazy.data = lazy.data.rechunk((12, 48, 201)).map_blocks(_count, dtype=np.float32)
    _READS.clear()
    r = kmeans_cluster(lazy, random_state=0, richardson=9.6e4)
    assert lazy._lazy and isinstance(lazy.data, da.Array)
    np.testing.assert_array_equal(r.label_array, default_result.label_array)
    np.testing.assert_allclose(
        r.mean_curves, default_result.mean_curves, rtol=1e-6, atol=1e-15
    )
    assert r.n_clusters == default_result.n_clusters
    # every block was read exactly once per pass, and the passes are few
    assert set(_READS.values()) == {r.passes_over_data}
    assert len(_READS) == 4
    assert 2 <= r.passes_over_data <= 3
    assert r.parameters["lazy"]


def test_random_state_reproduces_and_is_recorded(default_map):
    s, _ = default_map
    a = kmeans_cluster(s, random_state=11, sample_size=1000)
    b = kmeans_cluster(s, random_state=11, sample_size=1000)
    np.testing.assert_array_equal(a.label_array, b.label_array)
    np.testing.assert_array_equal(a.mean_curves, b.mean_curves)
    c = kmeans_cluster(s, random_state=None, sample_size=1000)
    seed = c.parameters["random_state"]
    assert isinstance(seed, int)
    d = kmeans_cluster(s, random_state=seed, sample_size=1000)
    np.testing.assert_array_equal(c.label_array, d.label_array)
    np.testing.assert_array_equal(c.signal.learning_results.cluster_centroids,
                                  d.signal.learning_results.cluster_centroids)  # fmt: skip


def test_input_data_are_not_modified(default_map):
    s, _ = default_map
    before = s.data.copy()
    kmeans_cluster(s, random_state=0)
    np.testing.assert_array_equal(s.data, before)


def test_method_on_the_signal(default_map):
    s, _ = default_map
    r = s.kmeans_cluster(n_clusters=4, random_state=0)
    assert r.n_clusters == 4 and r.choice is None
    assert s.learning_results.estimated_number_of_clusters is None


# ----------------------------------------------------------------- bad input


def test_nan_curves_raise_or_are_excluded():
    s, truth = generate_iv_map((32, 32), random_state=7)
    s.data[3, 5, 10] = np.nan  # one point
    s.data[10, 2, :] = np.nan  # a padded pixel
    with pytest.raises(
        ValueError, match=r"2 curve\(s\) hold NaN.*\(5, 3\).*invalid='exclude'"
    ):
        kmeans_cluster(s, random_state=0)
    r = kmeans_cluster(s, random_state=0, invalid="exclude")
    assert r.label_array[3, 5] == -1 and r.label_array[10, 2] == -1
    assert (r.label_array >= 0).sum() == 32 * 32 - 2
    assert any("excluded" in n for n in r.notes)
    assert s.get_cluster_labels(merged=True).data[3, 5] == -1
    assert np.isnan(s.learning_results.cluster_distances[:, 3 * 32 + 5]).all()
    keep = not_lost(truth) & (r.label_array >= 0)
    assert np.mean(r.label_array[keep] == truth["labels"][keep]) > 0.995


def test_all_saturated_curves_raise():
    s, _ = generate_iv_map((24, 24), saturation=5e-7, random_state=8)
    s.data[4, 4] = 5e-7
    with pytest.raises(ValueError, match=r"saturated at every point.*\(4, 4\)"):
        kmeans_cluster(s, random_state=0)
    r = kmeans_cluster(s, random_state=0, invalid="exclude")
    assert r.label_array[4, 4] == -1


def test_constant_map_raises():
    s = hs.signals.Signal1D(np.ones((8, 8, 50), dtype=np.float32) * 1e-9)
    s.set_signal_type("IV_curve")
    with pytest.raises(ValueError, match="constant map"):
        kmeans_cluster(s)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: hs.signals.Signal2D(np.ones((4, 8, 8))), ValueError, "signal dimension 2"),
        (lambda: hs.signals.Signal1D(np.arange(50.0)), ValueError, "nothing to cluster"),
        (lambda: np.ones((8, 8, 50)), TypeError, "HyperSpy signal"),
        (lambda: hs.signals.Signal1D(np.ones((4, 4, 2))), ValueError, "at least 3"),
        (
            lambda: hs.signals.ComplexSignal1D(np.ones((4, 4, 10), dtype=complex)),
            TypeError,
            "complex",
        ),
    ],
)
def test_wrong_inputs(make, error, match):
    with pytest.raises(error, match=match):
        kmeans_cluster(make())


def test_non_monotonic_bias_raises():
    s, _ = generate_iv_map((8, 8), n_points=20, random_state=0)
    s.axes_manager.signal_axes[0].convert_to_non_uniform_axis()
    s.axes_manager.signal_axes[0].axis = np.r_[
        np.linspace(-1, 1, 10), np.linspace(1, -1, 10)
    ]
    with pytest.raises(ValueError, match="not strictly monotonic.*backward sweep"):
        kmeans_cluster(s)


def test_backward_sweep_is_fine():
    s, truth = generate_iv_map((32, 32), bias_range=(2, -2), random_state=9)
    r = kmeans_cluster(s, random_state=0)
    assert r.n_clusters == 4
    keep = not_lost(truth)
    assert np.mean(r.label_array[keep] == truth["labels"][keep]) > 0.995
    assert r.physics[1]["diode_like"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"n_clusters": "many"}, ValueError, "n_clusters"),
        ({"n_clusters": 0}, ValueError, "at least 1"),
        ({"n_clusters": True}, TypeError, "n_clusters"),
        ({"n_clusters": 5000}, ValueError, "larger than the number of curves"),
        ({"scaling": "log"}, ValueError, "scaling must be one of"),
        ({"features": "physics"}, ValueError, "features must be"),
        ({"denoise": "wavelet"}, ValueError, "denoise"),
        ({"offset": "median"}, ValueError, "offset"),
        ({"invalid": "ignore"}, ValueError, "invalid"),
        ({"i0": -1.0}, ValueError, "i0 must be a positive"),
        ({"max_clusters": 0}, ValueError, "max_clusters"),
        ({"denoise": "smooth", "smoothing": 4}, ValueError, "odd"),
        ({"random_state": True}, TypeError, "ambiguous"),
    ],
)
def test_bad_parameters(default_map, kwargs, error, match):
    s, _ = default_map
    with pytest.raises(error, match=match):
        kmeans_cluster(s, **kwargs)


# ---------------------------------------------------------- report and tables


def test_report_and_tables(default_result, tmp_path):
    import csv

    r = default_result
    pdf = r.save_report(tmp_path / "report")
    assert pdf.suffix == ".pdf" and pdf.stat().st_size > 10000
    assert (
        pdf.read_bytes().count(b"/Type /Page\n") + pdf.read_bytes().count(b"/Type /Page ")
        >= 4
    )
    with pytest.raises(FileExistsError, match="overwrite=True"):
        r.save_report(tmp_path / "report.pdf")
    r.save_report(tmp_path / "report.pdf", overwrite=True, bias=-1.0)
    table = r.to_csv(tmp_path / "physics.csv")
    rows = list(csv.DictReader(open(table)))
    assert [int(row["cluster"]) for row in rows] == [0, 1, 2, 3]
    assert float(rows[1]["barrier_height_eV"]) == pytest.approx(0.43, abs=0.01)
    labels = r.labels_to_csv(tmp_path / "labels.csv")
    rows = list(csv.DictReader(open(labels)))
    assert len(rows) == 48 * 48
    assert set(rows[0]) == {"x (nm)", "y (nm)", "label", "current at 2 V (A)"}
    # the row of pixel (x=5, y=3) holds the label of array element [3, 5]
    row = next(q for q in rows if float(q["x (nm)"]) == 100 and float(q["y (nm)"]) == 60)
    assert int(row["label"]) == r.label_array[3, 5]
    with pytest.raises(FileExistsError):
        r.to_csv(table)


def test_report_of_lazy_and_one_cluster_results(tmp_path):
    s, _ = generate_iv_map((16, 16), random_state=3, lazy=True)
    r = kmeans_cluster(s, 1, random_state=0)
    assert r.n_clusters == 1 and r.choice is None
    assert r.save_report(tmp_path / "one.pdf").exists()


def test_cli_writes_report_and_tables_and_never_overwrites(tmp_path, capsys):
    from hyperspy_nanoml.cli import main

    s, _ = generate_iv_map((24, 24), random_state=0)
    path = tmp_path / "map.hspy"
    s.save(path)
    out = tmp_path / "out"
    assert main(["cafm-cluster", str(path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 clusters" in text
    for suffix in ("_clusters.pdf", "_clusters_physics.csv", "_clusters_labels.csv"):
        assert (out / f"map{suffix}").exists()
    assert main(["cafm-cluster", str(path), "--out", str(out), "--n-clusters", "3"]) == 0
    assert (out / "map_2_clusters.pdf").exists()  # the first result is kept
    assert "3 clusters" in capsys.readouterr().out
    s.data[0, 0] = np.nan
    bad = tmp_path / "bad.hspy"
    s.save(bad)
    assert main(["cafm-cluster", str(bad), "--out", str(out)]) == 1
    assert "--exclude-invalid" in capsys.readouterr().err
    assert main(["cafm-cluster", str(bad), "--out", str(out), "--exclude-invalid"]) == 0


# ----------------------------------------------------------------- real data


def test_real_nanonis_grid(shared_data):
    from hyperspy_nanoml.cafm import load

    s = load(shared_data / "cafm" / "nanonis_sts_grid_30x30.3ds")
    r = kmeans_cluster(s, random_state=0)
    lazy = kmeans_cluster(load(shared_data / "cafm" / "nanonis_sts_grid_30x30.3ds", lazy=True),
                          random_state=0)  # fmt: skip
    np.testing.assert_array_equal(r.label_array, lazy.label_array)
    assert r.n_clusters >= 1 and r.counts.sum() == 900
    assert r.choice.reason.startswith(f"k = {r.n_clusters}")


def test_real_bfo_map_needs_the_invalid_pixels_excluded(shared_data):
    from hyperspy_nanoml.cafm import load

    s = load(shared_data / "cafm" / "bfo_cafm_iv_50x50.hf5")
    with pytest.raises(ValueError, match="4 curve"):
        kmeans_cluster(s, random_state=0)
    r = kmeans_cluster(s, 3, scaling="linear", invalid="exclude", random_state=0)
    assert (r.label_array == -1).sum() == 4
    assert any("no diode physics" in n for n in r.notes)
    assert "diode_like" not in r.physics[0]


def test_docstring_examples():
    result = doctest.testmod(cluster_module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
