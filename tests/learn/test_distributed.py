"""The same NMF call on dask.distributed gives the threaded scheduler's result."""

import dask
import dask.array as da
import hyperspy.api as hs
import numpy as np
import pytest
from nanoml_test_helpers import CountingArray

from hyperspy_nanoml.learn.nmf import nmf
from hyperspy_nanoml.learn.verification import residual_norms

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        dashboard_address=":0",
        silence_logs=40,
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.mark.slow
def test_distributed_equals_threaded(client, spot_matrix):
    X = spot_matrix[0]
    Xd = da.from_array(X, chunks=(400, -1))
    with dask.config.set(scheduler="threads"):
        threaded = nmf(Xd, 3, random_state=0)
    with client.as_current():
        assert dask.base.get_scheduler() == client.get
        dist = nmf(Xd, 3, random_state=0)
        rows = residual_norms(Xd, dist.W, dist.H)
    assert dist.passes == threaded.passes <= 4
    np.testing.assert_allclose(dist.H, threaded.H, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dist.W, threaded.W, rtol=1e-5, atol=1e-6 * threaded.W.max())
    res = np.sqrt(rows[0].sum() / rows[1].sum())
    assert res == pytest.approx(dist.reconstruction_error, rel=1e-5)


@pytest.mark.slow
def test_distributed_signal_decomposition(client, spot_data):
    data = spot_data[0]
    lazy = hs.signals.Signal2D(da.from_array(data, chunks=(10, 40, 32, 32))).as_lazy()
    with dask.config.set(scheduler="threads"):
        lazy.nmf_decomposition(3, random_state=0, print_info=False)
    ref = lazy.learning_results.factors.copy()
    with client.as_current():
        lazy.nmf_decomposition(
            3, random_state=0, normalize_poissonian_noise=False, print_info=False
        )
    np.testing.assert_allclose(lazy.learning_results.factors, ref, atol=1e-6)


@pytest.mark.slow
def test_distributed_worker_processes(spot_matrix):
    """Worker processes: every block function and argument must pickle."""
    X = spot_matrix[0]
    Xd = da.from_array(X, chunks=(400, -1))
    with dask.config.set(scheduler="threads"):
        threaded = nmf(Xd, 3, random_state=0)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        dist = nmf(Xd, 3, random_state=0)
    np.testing.assert_allclose(dist.H, threaded.H, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_poisson_distributed_equals_threaded_and_eager(client, spot_matrix):
    """Keenan-Kotula scaling inside the engine: the same factors and the same number of
    passes on numpy, dask threads and dask.distributed (no extra pass anywhere)."""
    X = spot_matrix[0]
    counting = CountingArray(X)
    Xd = da.from_array(counting, chunks=(400, -1), asarray=False)
    eager = nmf(X, 3, normalize_poissonian_noise=True, random_state=0)
    with dask.config.set(scheduler="threads"):
        threaded = nmf(Xd, 3, normalize_poissonian_noise=True, random_state=0)
    assert counting.rows_read == threaded.passes * X.shape[0]
    with client.as_current():
        dist = nmf(Xd, 3, normalize_poissonian_noise=True, random_state=0)
        auto = nmf(Xd, "auto", normalize_poissonian_noise=True, random_state=0)
    assert eager.passes == threaded.passes == dist.passes == auto.passes == 4
    assert auto.n_components == 3 and auto.component_choice.n_components == 3
    np.testing.assert_allclose(dist.H, threaded.H, rtol=0, atol=1e-6)
    np.testing.assert_allclose(dist.W, threaded.W, rtol=1e-5, atol=1e-6 * threaded.W.max())
    np.testing.assert_allclose(dist.row_scale, eager.row_scale, rtol=1e-6)
    np.testing.assert_allclose(dist.column_scale, eager.column_scale, rtol=1e-6)
    # one in-memory block against 4 chunks: sums in another order, same optimum
    np.testing.assert_allclose(dist.H, eager.H, rtol=0, atol=5e-4)
    assert dist.reconstruction_error == pytest.approx(eager.reconstruction_error, rel=1e-5)
    # the factors are those of an NMF of the explicitly scaled data, un-scaled
    a = X.sum(axis=1, dtype=np.float64)
    b = X.sum(axis=0, dtype=np.float64)
    a, b = np.where(a > 0, a, 1), np.where(b > 0, b, 1)
    Xs = X / np.sqrt(np.outer(a, b))
    ref = nmf(Xs, 3, random_state=0)
    H = ref.H * np.sqrt(b)[None, :].astype(np.float32)
    H /= H.max(axis=1, keepdims=True)
    sims = [
        max(float(h @ g / np.linalg.norm(h) / np.linalg.norm(g)) for g in H) for h in dist.H
    ]
    assert min(sims) > 0.99999


@pytest.mark.slow
def test_masks_from_first_pass_distributed_equals_threaded(client):
    """Masks decided from the first pass's statistics on the cluster: the same masks,
    choice and factors as with threads, in the same passes (nothing held in memory
    when a client is active: the blocks stay on the workers)."""
    from nanoml_test_helpers import vacuum_and_beam

    from hyperspy_nanoml.learn.nmf import FirstPassMasks

    X, column_mask, row_mask, _ = vacuum_and_beam()
    n = X.shape[0]

    def statistics(block):
        return np.asarray(block[:, 8:], dtype=np.float32).sum(axis=1, keepdims=True)

    def decide(column_sums, stats):
        return column_sums / n > 100, stats[:, 0] == 0

    masks = FirstPassMasks(statistics, decide)
    Xd = da.from_array(X, chunks=(700, -1))
    kw = dict(normalize_poissonian_noise=True, random_state=0, masks_from_first_pass=masks)
    with dask.config.set(scheduler="threads"):
        threaded = nmf(Xd, "auto", hold_in_memory=False, **kw)
    with client.as_current():
        dist = nmf(Xd, "auto", **kw)
    assert dist.reads == dist.passes == threaded.passes == 4
    np.testing.assert_array_equal(dist.column_mask, column_mask)
    np.testing.assert_array_equal(dist.row_mask, row_mask)
    assert dist.n_components == threaded.n_components == 3
    np.testing.assert_allclose(dist.H, threaded.H, rtol=0, atol=1e-5)
    assert dist.reconstruction_error == pytest.approx(
        threaded.reconstruction_error, rel=1e-5
    )
