"""How fast and how big a model is: the full prediction, latency, throughput, memory, size.

* The full prediction (``predict``, then ``predict_proba`` for a classifier that has it) runs
  once, timed, while a thread samples the process's resident memory (RSS) with psutil every
  ``SAMPLE_INTERVAL`` seconds; the peak above the RSS before the call is the prediction's memory.
  Sampling may miss a spike shorter than the interval, and counts everything the process
  allocates meanwhile. (``tracemalloc`` would see every allocation, but only Python's, and slows
  the model down several times.)
* Latency (optional, as it calls the model many more times): single-row ``predict`` calls on a
  random sample of rows, and calls on ``batch_size`` rows, each within a time budget, reported as
  p50/p95/p99 in milliseconds with the throughput they imply.
* Size: the files of a model that has a folder (a loaded loopml model), else the size of its
  pickle (counted as it streams, never held in memory).
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MEMORY_METHOD",
    "ModelOutput",
    "PeakMemory",
    "latency",
    "model_size",
    "predict_all",
]

SAMPLE_INTERVAL = 0.005
MEMORY_METHOD = "psutil RSS sampled every 5 ms in a thread, peak minus RSS before predict"
_FOLDER_ATTRIBUTES = ("path", "local_path", "model_path", "root", "directory")


class PeakMemory:
    """Sample the process's RSS in a thread while the ``with`` block runs.

    Attributes:
        baseline: RSS in bytes when the block started.
        peak: the highest RSS seen in bytes (including at the start and the end).
    """

    def __init__(self, interval: float = SAMPLE_INTERVAL) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="loopml-rss", daemon=True)
        self.baseline = 0
        self.peak = 0

    @property
    def increase(self) -> int:
        """The peak above the baseline, in bytes."""
        return max(0, self.peak - self.baseline)

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakMemory:
        self.baseline = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())


@dataclass(frozen=True)
class ModelOutput:
    """What the full prediction returned, and what it cost."""

    predictions: Any
    probabilities: Any
    predict_seconds: float
    predict_proba_seconds: float | None
    peak_memory_bytes: int
    peak_rss_bytes: int


def predict_all(model: Any, features: pd.DataFrame, *, probabilities: bool) -> ModelOutput:
    """Call ``model.predict`` (and ``model.predict_proba`` when asked) once on every row."""
    with PeakMemory() as memory:
        start = time.perf_counter()
        predictions = model.predict(features)
        predict_seconds = time.perf_counter() - start
        proba, proba_seconds = None, None
        if probabilities:
            start = time.perf_counter()
            proba = model.predict_proba(features)
            proba_seconds = time.perf_counter() - start
    return ModelOutput(
        predictions, proba, predict_seconds, proba_seconds, memory.increase, memory.peak
    )


def latency(
    predict: Callable[[Any], Any],
    features: pd.DataFrame,
    *,
    sample_rows: int,
    batch_size: int,
    budget_seconds: float,
    seed: int = 0,
) -> dict[str, float]:
    """Time single-row and batch calls of ``predict``.

    Args:
        predict: the model's ``predict``.
        features: the rows to draw from.
        sample_rows: at most this many single-row calls (on distinct random rows).
        batch_size: rows per batch call.
        budget_seconds: each of the two parts stops after this much time (having made at least
            one call).
        seed: the seed that draws the sampled rows.

    Returns:
        ``latency_p50_ms``/``p95``/``p99`` and ``latency_rows`` (single rows),
        ``batch_latency_p50_ms``/``p95``/``p99``, ``batch_size``, ``batches``, and the
        throughputs they imply (``latency_rows_per_second``, ``batch_rows_per_second``).
    """
    n = len(features)
    rows = np.random.default_rng(seed).choice(n, size=min(sample_rows, n), replace=False)
    predict(features.iloc[rows[:1]])  # warm-up: lazy initialisation is not latency
    single = _timed(predict, (features.iloc[[int(i)]] for i in rows), budget_seconds)
    size = min(batch_size, n)
    starts = range(0, n - size + 1, size)
    batch = _timed(predict, (features.iloc[s : s + size] for s in starts), budget_seconds)
    out: dict[str, float] = {}
    for name, times in (("latency", single), ("batch_latency", batch)):
        p50, p95, p99 = np.percentile(times, [50, 95, 99]) * 1000.0
        out.update({f"{name}_p50_ms": p50, f"{name}_p95_ms": p95, f"{name}_p99_ms": p99})
    out["latency_rows"] = float(len(single))
    out["latency_rows_per_second"] = float(1.0 / np.mean(single))
    out["batch_size"] = float(size)
    out["batches"] = float(len(batch))
    out["batch_rows_per_second"] = float(size / np.mean(batch))
    return {k: float(v) for k, v in out.items()}


def _timed(predict: Callable[[Any], Any], inputs: Any, budget: float) -> np.ndarray:
    """Seconds of each call on the inputs, until they run out or the budget is spent."""
    times: list[float] = []
    deadline = time.perf_counter() + budget
    for x in inputs:  # the slicing happens outside the timed region
        start = time.perf_counter()
        predict(x)
        end = time.perf_counter()
        times.append(end - start)
        if end > deadline:
            break
    return np.asarray(times)


def model_size(model: Any) -> tuple[int | None, str]:
    """The model's size in bytes, and how it was measured.

    Returns:
        ``(bytes, "folder")`` for a model with a folder or file on disk (``model.path`` and
        the like), ``(bytes, "pickle")`` otherwise, or ``(None, why)`` when the model cannot
        be pickled.
    """
    for attr in _FOLDER_ATTRIBUTES:
        where = getattr(model, attr, None)
        if isinstance(where, (str, os.PathLike)) and Path(where).exists():
            return _disk_size(Path(where)), "folder"
    counter = _Counter()
    try:
        pickle.dump(model, counter, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # any object may refuse to pickle, in any way
        return None, f"not measured: the model does not pickle ({type(exc).__name__})"
    return counter.size, "pickle"


def _disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class _Counter:
    """A write-only file that only counts bytes."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        size = memoryview(data).nbytes  # large arrays arrive as buffers, not bytes
        self.size += size
        return size
