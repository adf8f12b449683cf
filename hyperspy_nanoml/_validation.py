"""Input checks shared by every entry point, so all of them fail the same clear way.

Each check raises up front (before any long work) with a message that names the
problem and the fix; none modifies its input.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np

__all__ = [
    "check_init",
    "check_matrix",
    "check_n_components",
    "check_nonnegative_finite",
    "check_output_path",
    "check_positive_int",
    "check_real_dtype",
    "resolve_random_state",
]


def check_real_dtype(dtype, what: str = "the data") -> None:
    """Raise TypeError unless ``dtype`` holds real numbers (bool, integer or float)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(
            f"{what} are complex ({dtype}); NMF and the component choice need real "
            "numbers. Take the modulus or the power first (np.abs(x), np.abs(x) ** 2, or "
            "s.amplitude / s.power_spectrum on a HyperSpy complex signal)."
        )
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{what} have dtype {dtype}; real numbers (integer or float) are needed. "
            "Convert them first, e.g. x.astype('float32')."
        )


def check_matrix(X, name: str = "X"):
    """``X`` as a 2-D, non-empty, real numpy or dask array (lists are converted).

    Sparse matrices are refused with the way out (``.toarray()``): the engines read
    dense row blocks.
    """
    if type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a scipy.sparse matrix; NMF here works on dense row blocks. Use "
            f"{name}.toarray() (or a dask array for data larger than memory)."
        )
    if not (hasattr(X, "ndim") and hasattr(X, "shape") and hasattr(X, "dtype")):
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as error:
            raise TypeError(
                f"{name} cannot be read as an array ({error}); give a 2-D numpy or dask "
                "array of shape (n_samples, n_features)"
            ) from None
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D, a 2-D array (n_samples, n_features); got {X.ndim}-D "
            f"data of shape "
            f"{tuple(X.shape)}. Reshape it to rows = patterns/spectra and columns = "
            "channels (for a HyperSpy signal use nmf_decomposition(signal), which "
            "unfolds it)."
        )
    n, m = (int(v) for v in X.shape)
    if n == 0 or m == 0:
        raise ValueError(
            f"{name} is empty (shape {(n, m)}): there is nothing to factorise. Check "
            "that masks or crops did not exclude all rows or columns."
        )
    check_real_dtype(X.dtype, name)
    return X


def check_n_components(n_components, *, allow_auto: bool = True, upper: int | None = None):
    """``n_components`` as an int in ``[1, upper]``, or ``"auto"`` when allowed."""
    either = " or 'auto'" if allow_auto else ""
    if isinstance(n_components, str):
        if allow_auto and n_components == "auto":
            return "auto"
        raise ValueError(f"n_components must be an integer{either}, not {n_components!r}")
    if isinstance(n_components, (bool, np.bool_)) or not isinstance(
        n_components, numbers.Integral
    ):
        raise TypeError(
            f"n_components must be an integer{either}, "
            f"not {n_components!r} ({type(n_components).__name__})"
        )
    k = int(n_components)
    if k < 1:
        raise ValueError(f"n_components must be at least 1 (>= 1), got {k}")
    if upper is not None and k > upper:
        raise ValueError(
            f"n_components={k} is larger than the rank bound min(n_samples, n_features) "
            f"= {upper}; a rank-{k} factorisation of these data does not exist. Use "
            f"n_components <= {upper}."
        )
    return k


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum`` (bools refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})"
        )
    if int(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(value)}")
    return int(value)


def resolve_random_state(random_state):
    """The generator to use and the integer seed to record.

    Returns ``(rng, seed)``: ``rng`` a :class:`numpy.random.RandomState`, ``seed`` an
    int that reproduces the run when given back as ``random_state`` (``None`` only
    for a ``RandomState`` instance, whose state cannot be written as a seed).

    - ``None``: a fresh seed is drawn from the operating system and recorded;
    - an int (also ``np.int64`` and other numpy integers): used as is;
    - a :class:`numpy.random.Generator`: a seed is drawn from it;
    - a :class:`numpy.random.RandomState`: used as is;
    - ``True``/``False`` are refused (they would silently mean seed 1/0).
    """
    if isinstance(random_state, (bool, np.bool_)):
        raise TypeError(
            f"random_state={random_state!r} is ambiguous (it would mean seed "
            f"{int(random_state)}); give an integer seed, None, or a numpy Generator"
        )
    if random_state is None:
        seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        return np.random.RandomState(seed), seed
    if isinstance(random_state, numbers.Integral):
        seed = int(random_state)
        if not 0 <= seed < 2**32:
            raise ValueError(f"random_state must be between 0 and 2**32 - 1, got {seed}")
        return np.random.RandomState(seed), seed
    if isinstance(random_state, np.random.Generator):
        seed = int(random_state.integers(0, 2**31 - 1))
        return np.random.RandomState(seed), seed
    if isinstance(random_state, np.random.RandomState):
        return random_state, None
    raise TypeError(
        f"random_state must be None, an integer seed, a numpy Generator or RandomState; "
        f"got {random_state!r} ({type(random_state).__name__})"
    )


def check_nonnegative_finite(
    n_negative: int, minimum: float, n_nonfinite: int, shape
) -> None:
    """Raise for NaN/inf or negative values counted in a pass over the data."""
    if n_nonfinite:
        raise ValueError(
            f"X contains {n_nonfinite} NaN or infinite values (shape {tuple(shape)}); NMF "
            "needs finite data. Replace them (np.nan_to_num, or interpolate) or exclude "
            "the affected rows/columns (navigation_mask / signal_mask in "
            "nmf_decomposition)."
        )
    if n_negative:
        raise ValueError(
            f"X contains {n_negative} negative values (minimum {minimum:.4g}); NMF needs "
            "non-negative data. If they are noise around zero clip them "
            "(np.clip(X, 0, None), or s.data.clip(0) on a signal); if the whole baseline "
            "is shifted, add an offset (X - X.min()) or subtract a smaller background."
        )


def check_init(init, n: int, m: int, k: int):
    """A ``(W, H)`` initialisation as float32 arrays of the right shapes, checked."""
    try:
        W0, H0 = init
    except (TypeError, ValueError):
        raise ValueError(
            "init must be one of 'nndsvda', 'nndsvd', 'nndsvdar', 'random' or a (W, H) "
            "pair of arrays"
        ) from None
    W0 = np.array(W0, dtype=np.float32)
    H0 = np.array(H0, dtype=np.float32)
    if W0.shape != (n, k) or H0.shape != (k, m):
        raise ValueError(
            f"init=(W, H) must have shapes {(n, k)} and {(k, m)}, got {W0.shape} and "
            f"{H0.shape}"
        )
    if not (np.isfinite(W0).all() and np.isfinite(H0).all()):
        raise ValueError("init=(W, H) contains NaN or infinite values; give finite factors")
    if (W0 < 0).any() or (H0 < 0).any():
        raise ValueError("init=(W, H) must be non-negative")
    return W0, H0


def check_output_path(path, suffix: str | None = None) -> Path:
    """``path`` as a Path whose folder exists and is writable (checked before work)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the output path must be a str or Path, got {type(path).__name__}")
    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"the folder {folder} for {path.name} does not exist; create it first "
            "(Path(...).mkdir(parents=True)) or choose another path"
        )
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"the folder {folder} is not writable; choose another path")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    return path
