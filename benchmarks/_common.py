"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/x.py``)."""

import gc
import threading
import time


class PeakRSS:
    """Peak resident memory of this process while the block runs (psutil).

    Sampled in a thread every ``interval`` seconds. After the block:
    ``start`` and ``peak`` in bytes, ``mb`` = peak above start in MiB,
    ``seconds`` = wall time of the block.
    """

    def __init__(self, interval=0.02):
        import psutil

        self._proc = psutil.Process()
        self.interval = interval

    def __enter__(self):
        gc.collect()
        self.start = self._proc.memory_info().rss
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        self.mb = (self.peak - self.start) / 2**20
