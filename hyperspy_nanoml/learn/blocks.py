"""Row blocks of a matrix behind one map-reduce interface: numpy, dask threads, dask.distributed.

Everything in :mod:`hyperspy_nanoml.learn` that reads data goes through
:class:`RowBlocks`: one *pass* maps a kernel over the row blocks and sums its small
outputs in a tree, so a lazy array is never computed whole, the task graph has one
task per block and pass, and the runner counts the passes (nobody counts by hand).

:class:`BlockPrep` is the fused per-block preparation every kernel applies to the
rows it reads, slice by slice while they are in cache: conversion to float32,
masked columns set to zero, row and column scaling. No float32 copy of a whole
block and no separate masked copy is ever made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

__all__ = [
    "HOLD_BYTES",
    "SLICE_ROWS",
    "BlockPrep",
    "RowBlocks",
    "is_lazy",
    "one_blas_thread",
]

SLICE_ROWS = 1024  # rows processed together inside a block (16 MiB at 4096 float32)
# a lazy array stored in at most this many bytes may be held in memory after its first
# read (RowBlocks(hold="auto")): re-reading and decompressing a small file every pass
# costs more than its passes (16k SPED patterns, 128 MiB .zspy: 4 reads 0.6 s, held 0.3 s)
HOLD_BYTES = 1 << 30


def is_lazy(x) -> bool:
    """True for a dask array or a lazy HyperSpy signal: the one "is it lazy" test."""
    if hasattr(x, "axes_manager"):
        return bool(getattr(x, "_lazy", False))
    return type(x).__module__.startswith("dask") and hasattr(x, "to_delayed")


_CONTROLLER = []


def one_blas_thread():
    """Context: BLAS/LAPACK on one thread (threadpoolctl, controller cached).

    Used around every pass (several tasks each calling a multi-threaded BLAS
    oversubscribe the cores: measured 2-3x slower here) and around the small
    in-memory linear algebra, which is latency-bound (an SVD of 16 x 4096 took 0.2 s
    with 2 threads under load, 5 ms with one).
    """
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class BlockPrep:
    """What a kernel does to the rows it reads before using them.

    Attributes
    ----------
    zero_columns : numpy.ndarray of int, optional
        Columns set to 0 (masked channels; their values, NaN included, are ignored).
    column_scale : numpy.ndarray, float32 (n_features,), optional
        Multiplies every row (e.g. Keenan-Kotula ``1/sqrt(column sums)``).
    row_scale : numpy.ndarray, float32, optional
        Multiplies every column, indexed by the *kept* row number (all rows when
        ``keep_rows`` is None).
    keep_rows : numpy.ndarray of bool (n_rows of the whole matrix), optional
        Rows taken (True) or skipped (a navigation mask applied inside the pass: no
        gathered copy of the data is made). Kernels then see only the kept rows:
        :meth:`slices` yields offsets among the kept rows of the block and
        :meth:`kept` gives where the block's kept rows start among all kept rows.
    """

    zero_columns: np.ndarray | None = None
    column_scale: np.ndarray | None = None
    row_scale: np.ndarray | None = None
    keep_rows: np.ndarray | None = None

    def __post_init__(self):
        if self.keep_rows is not None:
            keep = np.asarray(self.keep_rows, dtype=bool)
            object.__setattr__(self, "keep_rows", keep)
            # kept rows before every row: O(1) block offsets
            before = np.zeros(keep.size + 1, dtype=np.int64)
            np.cumsum(keep, out=before[1:])
            object.__setattr__(self, "_before", before)

    @property
    def identity(self) -> bool:
        return (
            self.zero_columns is None
            and self.column_scale is None
            and self.row_scale is None
        )

    def with_scales(self, row_scale=None, column_scale=None) -> BlockPrep:
        """The same masking and row selection with these scales."""
        return BlockPrep(self.zero_columns, column_scale, row_scale, self.keep_rows)

    def kept(self, start: int, n: int) -> tuple[int, int]:
        """``(first kept row number, kept rows)`` of the block of rows ``start:start+n``."""
        if self.keep_rows is None:
            return start, n
        before = self._before
        return int(before[start]), int(before[start + n] - before[start])

    def slices(self, block, start: int, rows: int = SLICE_ROWS, scale: bool = True):
        """Yield ``(a, b, x)``: kept rows ``a:b`` of ``block`` prepared as float32 (C order).

        ``a:b`` count the kept rows of this block (all rows without ``keep_rows``);
        the global kept-row number of ``x[0]`` is ``kept(start, n)[0] + a``. ``x`` is
        a view when nothing needs doing (float32 C-ordered data, all rows kept),
        else a fresh slice-sized copy. ``scale=False`` applies the masking only.
        """
        n = block.shape[0]
        k0 = self.kept(start, n)[0]
        ka = 0
        for a in range(0, n, rows):
            b = min(a + rows, n)
            raw = block[a:b]
            if self.keep_rows is not None:
                sel = self.keep_rows[start + a : start + b]
                if not sel.all():
                    raw = raw[sel]  # a slice-sized gather
                if raw.shape[0] == 0:
                    continue
            kb = ka + raw.shape[0]
            if self.identity or not scale and self.zero_columns is None:
                yield ka, kb, np.ascontiguousarray(raw, dtype=np.float32)
                ka = kb
                continue
            x = np.array(raw, dtype=np.float32, order="C")  # a copy, also for float32
            if self.zero_columns is not None:
                x[:, self.zero_columns] = 0
            if scale and self.column_scale is not None:
                x *= self.column_scale
            if scale and self.row_scale is not None:
                x *= self.row_scale[k0 + ka : k0 + kb, None]
            yield ka, kb, x
            ka = kb


class RowBlocks:
    """Row blocks of ``X`` (numpy or dask) and passes over them.

    ``run(kernel, *small)`` calls ``kernel(block, row_start, *small)`` on every
    block, where ``block`` is the raw block (any real dtype; kernels prepare it
    slice by slice with :class:`BlockPrep`). The kernel returns
    ``(per_block, sums)``: ``per_block`` is kept per block (rows of W, a row
    sample), ``sums`` is a tuple of arrays summed over the blocks. For dask the map
    is one delayed task per row chunk and the sums a binary tree in the graph, so
    only small arrays leave the workers; ``dask.compute`` uses a
    ``distributed.Client`` when one is active. Every call of :meth:`run` is one pass
    over the data, counted in :attr:`passes`; :attr:`reads` counts the reads of the
    data (of a dask array: its computations).

    ``hold``: keep the raw blocks of a dask array in memory from its first read on,
    so later passes run on them like on a numpy array (one read in all). ``"auto"``
    holds an array of at most :data:`HOLD_BYTES` when no ``distributed.Client`` is
    active (its blocks live on the workers); ``False`` (default) never holds.
    """

    def __init__(self, X, hold=False):
        self.is_dask = is_lazy(X)
        self.shape = tuple(int(v) for v in X.shape)
        self.passes = 0
        self.reads = 0
        self._held = None
        self.holds = False
        if self.is_dask:
            if hold not in ("auto", True, False):
                raise ValueError(f"hold must be 'auto', True or False, got {hold!r}")
            self.holds = hold is True or (
                hold == "auto" and X.nbytes <= HOLD_BYTES and not _client_active()
            )
            if len(X.chunks[1]) > 1:  # whole rows per block
                X = X.rechunk({1: -1})
            self._blocks = list(X.to_delayed()[:, 0])
            sizes = X.chunks[0]
        else:
            # the raw array, never copied nor modified: kernels convert slice by slice;
            # one block per core (threads, one BLAS thread each: numpy releases the
            # GIL), never below SLICE_ROWS rows; small arrays stay one block
            self._X = X if X.flags.c_contiguous else np.ascontiguousarray(X)
            n_threads = max(1, min(os.cpu_count() or 1, X.shape[0] // SLICE_ROWS))
            rows = -(-X.shape[0] // n_threads)
            sizes = tuple(min(rows, X.shape[0] - a) for a in range(0, X.shape[0], rows))
        self.sizes = tuple(int(v) for v in sizes)
        self.starts = tuple(int(v) for v in np.concatenate([[0], np.cumsum(sizes)[:-1]]))

    @property
    def n_blocks(self) -> int:
        return len(self.sizes)

    def run(self, kernel, *small):
        """One pass: ``(list of per-block outputs, summed outputs)``."""
        self.passes += 1
        if self._held is not None:
            return self._run_in_memory(self._held, kernel, small)
        self.reads += 1
        if not self.is_dask:
            if len(self.sizes) == 1:  # one block: BLAS may use every core
                per_block, sums = kernel(self._X, 0, *small)
                return [per_block], sums
            arrays = [self._X[a : a + n] for a, n in zip(self.starts, self.sizes)]
            return self._run_in_memory(arrays, kernel, small)
        import dask

        small_d = [dask.delayed(a, pure=True) for a in small]
        if self.holds:  # the raw blocks come back too, kept for the next passes
            f = dask.delayed(_kernel_and_block, pure=True, nout=2)
            outs = [
                f(b, s, kernel, *small_d)
                for b, s in zip(self._blocks, self.starts, strict=True)
            ]
        else:
            f = dask.delayed(kernel, pure=True, nout=2)
            outs = [
                f(b, s, *small_d) for b, s in zip(self._blocks, self.starts, strict=True)
            ]
        parts = [o[0] for o in outs]
        sums = [o[1] for o in outs]
        add = dask.delayed(add_tuples, pure=True)
        while len(sums) > 1:
            sums = [
                add(sums[i], sums[i + 1]) if i + 1 < len(sums) else sums[i]
                for i in range(0, len(sums), 2)
            ]
        # worker processes of dask.distributed already run with one BLAS thread
        with one_blas_thread():
            parts, total = dask.compute(parts, sums[0])
        if self.holds:
            self._held = [p[1] for p in parts]
            parts = [p[0] for p in parts]
        return list(parts), total

    def _run_in_memory(self, arrays, kernel, small):
        """A pass over in-memory blocks: threads (numpy releases the GIL), one BLAS
        thread each, sums added in block order (deterministic)."""
        from concurrent.futures import ThreadPoolExecutor

        def one(i):
            return kernel(arrays[i], self.starts[i], *small)

        n_threads = min(len(arrays), os.cpu_count() or 1)
        with one_blas_thread(), ThreadPoolExecutor(n_threads) as pool:
            outs = list(pool.map(one, range(len(arrays))))
        total = outs[0][1]
        for o in outs[1:]:
            total = add_tuples(total, o[1])
        return [o[0] for o in outs], total


def _kernel_and_block(block, start, kernel, *small):
    """``kernel``'s output with the raw block beside its per-block part (to hold it)."""
    per_block, sums = kernel(block, start, *small)
    return (per_block, block), sums


def _client_active() -> bool:
    """Whether a ``distributed.Client`` would run ``dask.compute`` (never imports it)."""
    import sys

    if "distributed" not in sys.modules:
        return False
    try:
        sys.modules["distributed"].default_client()
    except ValueError:
        return False
    return True


def add_tuples(a, b):
    """Element-wise sum of two tuples of arrays (the reduction of a pass)."""
    return tuple(x + y for x, y in zip(a, b, strict=True))
