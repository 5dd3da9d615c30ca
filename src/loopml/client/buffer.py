"""The metric buffer: ``log_metric`` costs microseconds, the store sees a few large batches.

Points wait in memory and are written in one transaction per run per flush, by a background
thread every ``flush_interval`` seconds, by the caller when ``max_points`` are waiting
(backpressure: a producer faster than the store slows down instead of growing memory), and by
:meth:`MetricBuffer.flush`, which returns only once every point added before the call is
committed. The same thread sends the heartbeats of the runs it serves. At interpreter exit every
live buffer is flushed.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable

from loopml.entities import Metric
from loopml.errors import LoopError, NotFound
from loopml.store.base import Store

__all__ = ["MetricBuffer"]

log = logging.getLogger("loopml")
_LIVE: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


class MetricBuffer:
    """A thread-safe buffer of metric points in front of a :class:`Store`.

    Args:
        store: where points go.
        flush_interval: seconds between background flushes.
        max_points: waiting points that make the adding thread flush.
        heartbeat_interval: seconds between heartbeats of the registered runs.
    """

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 1.0,
        max_points: int = 10_000,
        heartbeat_interval: float = 30.0,
    ) -> None:
        self._store = store
        self._interval = flush_interval
        self._max_points = max_points
        self._heartbeat_interval = heartbeat_interval
        self._lock = threading.Lock()  # guards _pending, _count, _runs, _errors
        self._flush_lock = threading.Lock()  # one writer at a time keeps batches in order
        self._pending: dict[str, list[Metric]] = {}
        self._count = 0
        self._runs: set[str] = set()
        self._errors: dict[str, LoopError] = {}  # per run: what a background flush hit
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _LIVE.add(self)

    # --- producers -------------------------------------------------------------------------------

    def add(self, run_id: str, metrics: list[Metric]) -> None:
        """Queue points for a run (already validated). May flush when the buffer is full."""
        with self._lock:
            self._pending.setdefault(run_id, []).extend(metrics)
            self._count += len(metrics)
            full = self._count >= self._max_points
            self._ensure_thread()
        if full:
            self.flush()

    def track(self, run_id: str) -> None:
        """Send heartbeats for this run until :meth:`untrack`."""
        with self._lock:
            self._runs.add(run_id)
            self._ensure_thread()

    def untrack(self, run_id: str) -> None:
        """Stop the heartbeats of a run."""
        with self._lock:
            self._runs.discard(run_id)

    def discard(self, run_id: str) -> None:
        """Drop the waiting points of a run (it is being deleted)."""
        with self._lock:
            self._count -= len(self._pending.pop(run_id, []))

    @property
    def pending(self) -> int:
        """Points waiting to be written."""
        return self._count

    # --- flushing --------------------------------------------------------------------------------

    def flush(self, run_id: str | None = None) -> None:
        """Write waiting points (of one run, or all) and return once they are committed.

        Raises:
            LoopError: a write for that run failed, now or in the background since the last
                flush. The points of a run that no longer exists are dropped; others stay
                queued and are retried by the next flush.
        """
        with self._flush_lock:
            with self._lock:
                if run_id is None:
                    batches, self._pending = self._pending, {}
                    errors, self._errors = list(self._errors.values()), {}
                else:
                    batch = self._pending.pop(run_id, None)
                    batches = {run_id: batch} if batch else {}
                    old = self._errors.pop(run_id, None)
                    errors = [] if old is None else [old]
                self._count -= sum(len(b) for b in batches.values())
            for rid, points in batches.items():
                try:
                    self._store.log_batch(rid, points)
                except NotFound as exc:
                    errors.append(exc)  # the run is gone: its points cannot be written anywhere
                except LoopError as exc:
                    errors.append(exc)
                    with self._lock:  # keep them, in front of anything added meanwhile
                        self._pending[rid] = points + self._pending.get(rid, [])
                        self._count += len(points)
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Flush everything and stop the background thread."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, self._interval * 2))
        self.flush()

    # --- the background thread -------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=_loop, args=(weakref.ref(self),), name="loopml-metric-buffer", daemon=True
            )
            self._thread.start()

    def _background_flush(self) -> None:
        with self._lock:
            run_ids = list(self._pending)
        for rid in run_ids:
            try:
                self.flush(rid)
            except NotFound as exc:
                log.warning("loopml: metric points dropped: %s", exc)
                with self._lock:
                    self._errors[rid] = exc
            except LoopError as exc:
                log.warning("loopml: background metric flush failed (will retry): %s", exc)
                with self._lock:
                    self._errors[rid] = exc

    def _beat(self) -> None:
        with self._lock:
            runs = sorted(self._runs)
        if runs:
            try:
                self._store.heartbeat(runs)
            except LoopError as exc:
                log.warning("loopml: heartbeat failed: %s", exc)


def _loop(ref: Callable[[], MetricBuffer | None]) -> None:
    """Flush and beat until the buffer is closed or garbage-collected."""
    last_beat = 0.0
    import time

    while True:
        buf = ref()
        if buf is None or buf._stop.is_set():
            return
        interval, beat_every, wake = buf._interval, buf._heartbeat_interval, buf._wake
        del buf  # hold no strong reference while sleeping
        wake.wait(interval)
        wake.clear()
        buf = ref()
        if buf is None or buf._stop.is_set():
            return
        buf._background_flush()
        now = time.monotonic()
        if now - last_beat >= beat_every:
            last_beat = now
            buf._beat()
        del buf


@atexit.register
def _flush_all_at_exit() -> None:
    for buf in list(_LIVE):
        try:
            buf.flush()
        except LoopError as exc:  # pragma: no cover - nothing left to report to
            log.error("loopml: metrics could not be written at exit: %s", exc)
