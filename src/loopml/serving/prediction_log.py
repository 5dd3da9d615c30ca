"""The prediction log: every prediction recorded off the request path, the feed for monitoring.

The request handler calls :meth:`PredictionLogger.record`, which only appends the request's
already-decoded input and outputs to a buffer (no copy, no serialisation). A shipper thread
takes the buffer every ``flush_seconds`` (or sooner once it holds ``flush_rows``), joins it
into a few arrays (a :class:`~loopml.serving.log_writer.LogBatch`) and hands it to the writer
(:mod:`loopml.serving.log_writer`), which writes one Parquet segment to the artifact store,
indexes it in the metadata store, and updates the window profiles (mergeable statistics per
route, model version and time window) that drift checks merge later. The writer runs in a child
process by default, so its work never holds the serving process's GIL.

The logger never blocks or fails a request. When the buffer is full (the writer is slow or
down), new predictions are dropped; a segment the writer cannot store after its retries is
dropped too; if the writer process dies, what it had not confirmed is dropped and a new one is
started. All of it is counted: ``served == logged + dropped + pending`` at every moment.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.serving.log_writer import BatchPart, LogBatch, LogWriter, prediction_ids

if TYPE_CHECKING:
    from loopml.serving.inputs import Decoded
    from loopml.serving.runtime import Outputs

__all__ = ["Buffer", "LogCounts", "PredictionLogger", "prediction_ids"]

_log = logging.getLogger("loopml.serving")


class Buffer:
    """Predictions waiting to be shipped, kept column by column.

    A handful of lists whatever the number of requests: the inputs are NumPy arrays (which the
    garbage collector does not track), the rest strings and numbers. One object per request
    instead made the collector's full passes long enough to halve the server's throughput.
    """

    __slots__ = (
        "ids",
        "inputs",
        "latency",
        "names",
        "predictions",
        "routes",
        "rows",
        "times",
        "versions",
    )

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.times: list[int] = []
        self.rows: list[int] = []
        self.routes: list[str] = []
        self.versions: list[str] = []
        self.latency: list[float] = []
        self.inputs: list[Any] = []  # a 2-D array, a dict of columns, or None (tensors)
        self.names: list[Any] = []  # the array's column names (shared), else None
        self.predictions: list[Any] = []

    def __len__(self) -> int:
        return len(self.ids)

    def append(
        self,
        request_id: str,
        time_ms: int,
        route: str,
        model_version: str,
        decoded: Decoded,
        predictions: Any,
        latency_ms: float,
    ) -> None:
        """Add one request."""
        self.ids.append(request_id)
        self.times.append(time_ms)
        self.rows.append(decoded.rows)
        self.routes.append(route)
        self.versions.append(model_version)
        self.latency.append(latency_ms)
        if decoded.matrix is not None:
            self.inputs.append(decoded.matrix)
            self.names.append(decoded.names)
        else:
            self.inputs.append(decoded.columns)
            self.names.append(None)
        self.predictions.append(predictions)

    def to_batch(self, batch_id: int) -> LogBatch:
        """The buffered requests as a batch: one part per set of input columns, each a few
        arrays (inputs stacked, not copied row by row)."""
        groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for i, (inputs, names) in enumerate(zip(self.inputs, self.names, strict=True)):
            key = tuple(names) if names is not None else tuple(inputs or ())
            groups[key].append(i)
        batch = LogBatch(batch_id)
        everything = len(groups) == 1
        for names_, index in groups.items():

            def pick(values: list[Any], index: list[int] = index) -> list[Any]:
                return values if everything else [values[i] for i in index]

            columns: dict[str, Any] = {}
            if names_:
                parts = pick(self.inputs)
                if self.names[index[0]] is not None:
                    stacked = np.vstack(parts)
                    columns = {n: stacked[:, j] for j, n in enumerate(names_)}
                else:
                    columns = {
                        n: np.concatenate([np.asarray(p[n]) for p in parts]) for n in names_
                    }
            preds = pick(self.predictions)
            batch.parts.append(
                BatchPart(
                    names=names_,
                    request_ids=pick(self.ids),
                    rows=np.asarray(pick(self.rows), np.int64),
                    times=np.asarray(pick(self.times), np.int64),
                    routes=pick(self.routes),
                    versions=pick(self.versions),
                    latency_ms=np.asarray(pick(self.latency), np.float32),
                    columns=columns,
                    predictions=np.concatenate(preds) if len(preds) > 1 else np.asarray(preds[0]),
                )
            )
        return batch


@dataclass
class LogCounts:
    """Rows (predictions) the logger has seen: ``served`` = ``logged`` + ``dropped`` +
    ``pending`` at every moment."""

    served: int = 0
    logged: int = 0
    dropped: int = 0
    pending: int = 0
    segments: int = 0
    failures: int = 0


class PredictionLogger:
    """Buffers predictions and has them written in the background.

    Args:
        factory: makes the :class:`LogWriter` (called in the writer process, so it must be
            picklable there: a module-level function or a ``functools.partial`` of one).
        process: run the writer in a child process (default) or in the shipper thread.
        flush_seconds: the longest a prediction stays in memory before it is shipped.
        flush_rows: ship sooner once this many rows wait.
        max_pending_rows: rows buffered or being written at most; beyond it new predictions
            are dropped.
        on_flush: called with the counts after every batch written (to publish metrics).
    """

    def __init__(
        self,
        factory: Callable[[], LogWriter],
        *,
        process: bool = True,
        flush_seconds: float = 5.0,
        flush_rows: int = 20_000,
        max_pending_rows: int = 200_000,
        on_flush: Callable[[LogCounts], None] | None = None,
    ) -> None:
        self._factory = factory
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.max_pending_rows = max_pending_rows
        self._on_flush = on_flush
        self.counts = LogCounts()
        self._buffer = Buffer()
        self._buffered = 0  # rows in the buffer (pending also counts rows being written)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._next_id = 0
        self._writer: _Writer = (
            _ProcessWriter(factory, self._done)
            if process
            else (_ThreadWriter(factory, self._done))
        )
        self._thread = threading.Thread(target=self._loop, name="loopml-predlog", daemon=True)
        self._thread.start()

    # --- request path (event loop thread) -----------------------------------------------------

    def record(
        self,
        request_id: str,
        decoded: Decoded,
        outputs: Outputs,
        *,
        route: str,
        model_version: str,
        latency_ms: float,
        time_ms: int | None = None,
    ) -> None:
        """Queue one request's predictions; never raises, never waits."""
        rows = decoded.rows
        counts = self.counts
        with self._lock:
            counts.served += rows
            if counts.pending + rows > self.max_pending_rows or self._stop:
                counts.dropped += rows
                return
            counts.pending += rows
            self._buffer.append(
                request_id,
                time_ms if time_ms is not None else int(time.time() * 1000),
                route,
                model_version,
                decoded,
                outputs.predictions,
                latency_ms,
            )
            self._buffered += rows
            full = self._buffered >= self.flush_rows
        # Woken by what waits here, not by what is pending: while the writer is busy, pending
        # stays high, and waking on it would ship every request alone (tiny batches, a slower
        # writer, a feedback loop).
        if full:
            self._wake.set()

    # --- shipper thread -----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stop
            try:
                self.ship()
            except Exception:  # never let the thread die
                _log.exception("shipping predictions to the log writer failed")
            if stopping:
                return

    def ship(self) -> None:
        """Hand what is buffered now to the writer."""
        with self._lock:
            buffer, self._buffer = self._buffer, Buffer()
            self._buffered = 0
        if not len(buffer):
            self._writer.idle()
            return
        self._next_id += 1
        try:
            batch = buffer.to_batch(self._next_id)
        except Exception:
            _log.exception("could not assemble a prediction log batch")
            rows = sum(buffer.rows)
            self._done(self._next_id, 0, rows, rows)
            return
        self._writer.submit(batch)

    def _done(self, batch_id: int, logged: int, dropped: int, total: int) -> None:
        """A batch of ``total`` rows is settled: ``logged`` stored, ``dropped`` not."""
        with self._lock:
            c = self.counts
            c.pending -= total
            c.logged += logged
            c.dropped += dropped
            if logged:
                c.segments += 1
            if dropped:
                c.failures += 1
        if self._on_flush is not None:
            self._on_flush(self.counts)

    def close(self, timeout: float = 60.0) -> LogCounts:
        """Ship what is left, let the writer finish (it stores the open windows), stop;
        returns the final counts."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)
        self._writer.close(timeout)
        return self.counts


class _Writer(abc.ABC):
    """Where shipped batches are written: this thread, or a child process."""

    @abc.abstractmethod
    def submit(self, batch: LogBatch) -> None:
        """Write (or send) one batch; settles it through the ``done`` callback."""

    def idle(self) -> None:  # noqa: B027 (optional hook)
        """Nothing to ship this time (the thread writer closes ended windows)."""

    @abc.abstractmethod
    def close(self, timeout: float) -> None:
        """Finish: the open windows are stored."""


class _ThreadWriter(_Writer):
    """Writes in the shipper thread (tests, and setups without a spare core)."""

    def __init__(self, factory: Callable[[], LogWriter], done: Callable[..., None]) -> None:
        self._writer = factory()
        self._done = done

    def submit(self, batch: LogBatch) -> None:
        total = batch.total
        try:
            logged, dropped = self._writer.write(batch)
        except Exception:
            _log.exception("prediction log batch failed")
            logged, dropped = 0, total
        self._writer.close_windows(False)
        self._done(batch.id, logged, dropped, total)

    def idle(self) -> None:
        self._writer.close_windows(False)

    def close(self, timeout: float) -> None:
        self._writer.stopping = True
        self._writer.close_windows(True)


class _ProcessWriter(_Writer):
    """Writes in a child process; a reader thread settles the batches it confirms. A dead
    child's unconfirmed batches are dropped and a new child is started."""

    def __init__(self, factory: Callable[[], LogWriter], done: Callable[..., None]) -> None:
        self._factory = factory
        self._done = done
        self._inflight: dict[int, int] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._start()

    def _start(self) -> None:
        import multiprocessing

        from loopml.serving.log_writer import writer_process

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._conn = parent
        self._proc = ctx.Process(
            target=writer_process,
            args=(self._factory, child),
            name="loopml-log-writer",
            daemon=True,
        )
        self._proc.start()
        child.close()
        self._reader = threading.Thread(target=self._read, args=(parent,), daemon=True)
        self._reader.start()

    def _read(self, conn: Any) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message == "closed":
                self._closed.set()
                return
            batch_id, logged, dropped = message
            with self._lock:
                total = self._inflight.pop(batch_id, 0)
            self._done(batch_id, logged, dropped, total)
        # the writer died: drop what it had not confirmed
        with self._lock:
            lost, self._inflight = self._inflight, {}
        for batch_id, total in lost.items():
            self._done(batch_id, 0, total, total)
        self._closed.set()

    def submit(self, batch: LogBatch) -> None:
        total = batch.total
        with self._lock:
            self._inflight[batch.id] = total
        try:
            if not self._proc.is_alive():
                raise BrokenPipeError("the log writer process is not running")
            self._conn.send(batch)
        except (OSError, ValueError) as exc:
            _log.warning("the log writer is down (%s); %d rows dropped, restarting it", exc, total)
            with self._lock:
                self._inflight.pop(batch.id, None)
            self._done(batch.id, 0, total, total)
            self._restart()

    def _restart(self) -> None:
        self._reader.join(5)
        self._closed.clear()
        self._start()

    def close(self, timeout: float) -> None:
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._closed.wait(timeout)
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
        self._conn.close()
