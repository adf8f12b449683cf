import dask.array as da
import numpy as np
import pytest

from hyperspy_nanoml.learn.n_components import choose_n_components, profile_likelihood


def _mixture(k, n=600, m=150, noise=0.02, thickness=False, seed=0):
    rng = np.random.default_rng(seed)
    H = rng.random((k, m)) ** 3  # peaky, non-negative sources
    W = rng.dirichlet(np.full(k, 0.5), n)
    if thickness:
        W *= rng.uniform(0.3, 3.0, (n, 1))
    X = W @ H
    return X + noise * X.mean() * rng.standard_normal(X.shape) ** 2


@pytest.mark.parametrize("k", [2, 3, 4, 6])
@pytest.mark.parametrize("thickness", [False, True])
def test_true_number_of_sources(k, thickness):
    choice = choose_n_components(_mixture(k, thickness=thickness, seed=k))
    assert choice.n_components == k
    assert choice.n_significant == k - 1
    assert f"n_components = {k - 1} + 1 = {k}" in choice.reason


def test_row_normalisation_is_what_handles_thickness():
    X = _mixture(3, thickness=True, seed=1)
    assert choose_n_components(X, normalize_rows=False).n_components == 4
    assert choose_n_components(X).n_components == 3


def test_lazy_agrees_with_eager():
    X = _mixture(4, seed=2)
    lazy = choose_n_components(da.from_array(X, chunks=(150, -1)), random_state=0)
    assert lazy.n_components == choose_n_components(X).n_components == 4


def test_max_components_caps_and_says_so():
    choice = choose_n_components(_mixture(6, seed=3), max_components=3)
    assert choice.n_components == 3
    assert "Capped" in choice.reason


def test_profile_likelihood_finds_a_clear_split():
    values = np.r_[np.full(3, 10.0), np.full(20, 1.0)] + np.linspace(0, 0.01, 23)[::-1]
    assert int(np.argmax(profile_likelihood(values))) == 3


def test_plot_marks_the_choice():
    import matplotlib.pyplot as plt

    choice = choose_n_components(_mixture(3))
    ax = choice.plot()
    assert "n_components = 3" in ax.get_title()
    plt.close(ax.figure)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.ones((5,)), "2-D array"),
        (np.ones((2, 50)), "at least 3 samples"),
        (np.ones((50, 20)), "no variance"),
    ],
)
def test_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        choose_n_components(X)


def test_lazy_data_is_sampled_in_one_pass(monkeypatch):
    from hyperspy_nanoml.learn import n_components

    X = _mixture(3, n=4000, seed=5)
    lazy = da.from_array(X, chunks=(500, -1))
    sample, stride = n_components.sample_rows(lazy, max_bytes=X.nbytes // 8)
    assert stride == 4  # float32 rows: (n * m * 4 bytes) / (n * m * 8 / 8 bytes)
    np.testing.assert_array_equal(sample, X[::stride].astype(np.float32))
    monkeypatch.setattr(n_components, "sample_rows", lambda X: (X[::4].compute(), 4))
    choice = n_components.choose_n_components(lazy)
    assert choice.n_components == 3
    assert "one sample in 4" in choice.reason


def test_near_empty_samples_do_not_inflate_the_number():
    rng = np.random.default_rng(6)
    X = _mixture(3, n=600, seed=6)
    vacuum = rng.poisson(0.005, (400, X.shape[1])).astype(float)  # ~1 stray count each
    choice = choose_n_components(np.vstack([X, vacuum]))
    assert choice.n_components == 3
    assert "faint sample" in choice.reason
