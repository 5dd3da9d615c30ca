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

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.serving.log_writer import BatchPart, LogBatch, LogWriter, prediction_ids

if TYPE_CHECKING:
    from loopml.serving.inputs import Decoded
    from loopml.serving.runtime import Outputs

__all__ = ["LogCounts", "PredictionLogger", "prediction_ids"]

_log = logging.getLogger("loopml.serving")


@dataclass(slots=True)
class _Entry:
    request_id: str
    time_ms: int
    route: str
    model_version: str
    rows: int
    inputs: Decoded
    predictions: Any
    latency_ms: float


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
        self._buffer: list[_Entry] = []
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
                _Entry(
                    request_id,
                    time_ms if time_ms is not None else int(time.time() * 1000),
                    route,
                    model_version,
                    rows,
                    decoded,
                    outputs.predictions,
                    latency_ms,
                )
            )
            full = counts.pending >= self.flush_rows
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
            entries, self._buffer = self._buffer, []
        if not entries:
            self._writer.idle()
            return
        self._next_id += 1
        try:
            batch = make_batch(self._next_id, entries)
        except Exception:
            _log.exception("could not assemble a prediction log batch")
            rows = sum(e.rows for e in entries)
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


def make_batch(batch_id: int, entries: Sequence[_Entry]) -> LogBatch:
    """Join buffered requests into a batch: one part per set of input columns, each a few
    arrays (inputs stacked, not copied row by row)."""
    groups: dict[tuple[str, ...], list[_Entry]] = defaultdict(list)
    for e in entries:
        groups[_input_names(e.inputs)].append(e)
    batch = LogBatch(batch_id)
    for names, group in groups.items():
        columns: dict[str, Any] = {}
        if names:
            matrices = [e.inputs.matrix for e in group]
            if all(m is not None for m in matrices):
                stacked = np.vstack(matrices)  # type: ignore[arg-type]
                columns = {n: stacked[:, i] for i, n in enumerate(names)}
            else:
                maps = [e.inputs.column_map() or {} for e in group]
                columns = {n: np.concatenate([np.asarray(m[n]) for m in maps]) for n in names}
        preds = [np.asarray(e.predictions) for e in group]
        batch.parts.append(
            BatchPart(
                names=names,
                request_ids=[e.request_id for e in group],
                rows=np.fromiter((e.rows for e in group), np.int64, len(group)),
                times=np.fromiter((e.time_ms for e in group), np.int64, len(group)),
                routes=[e.route for e in group],
                versions=[e.model_version for e in group],
                latency_ms=np.fromiter((e.latency_ms for e in group), np.float32, len(group)),
                columns=columns,
                predictions=np.concatenate(preds) if len(preds) > 1 else preds[0],
            )
        )
    return batch


def _input_names(decoded: Decoded) -> tuple[str, ...]:
    if decoded.columns is not None:
        return tuple(decoded.columns)
    return tuple(decoded.names) if decoded.matrix is not None else ()


class _Writer:
    def submit(self, batch: LogBatch) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        """Nothing to ship this time (the thread writer closes ended windows)."""

    def close(self, timeout: float) -> None:
        raise NotImplementedError


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
