"""The prediction log: every prediction recorded off the request path, the feed for monitoring.

The request handler calls :meth:`PredictionLogger.record`, which only appends the request's
already-decoded columns and outputs to a buffer (no copy, no serialisation). A background
thread flushes the buffer every ``flush_seconds`` (or sooner when it holds ``flush_rows``):
it builds one Arrow table (one row per prediction: id, time, route, model version, latency,
``input.<column>`` values and the ``prediction``), hands it to a :class:`SegmentSink` (which
writes a Parquet segment to the artifact store and indexes it in the metadata store), and
updates the window profiles (mergeable statistics per route, model version and time window,
see :class:`~loopml.stats.ProfileBuilder`) that drift checks merge later.

The logger never blocks or fails a request. When the buffer is full (the sink is slow or
down) new predictions are dropped, and a segment the sink cannot write after its retries is
dropped too; both are counted, so at any quiet moment ``served == logged + dropped`` exactly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.serving.inputs import Decoded
    from loopml.serving.runtime import Outputs
    from loopml.stats import DatasetProfile, ProfileBuilder

__all__ = ["LogCounts", "PredictionLogger", "SegmentSink", "WindowSink", "prediction_ids"]

_log = logging.getLogger("loopml.serving")
PREDICTION = "prediction"
INPUT_PREFIX = "input."


class SegmentSink(Protocol):
    """Where flushed predictions go (a Parquet segment per flush, indexed)."""

    def write(self, table: pa.Table, *, start: int, end: int) -> None:
        """Store one segment durably; raise on failure (the logger retries, then drops)."""
        ...


class WindowSink(Protocol):
    """Where finished window profiles go."""

    def write_window(
        self,
        *,
        route: str,
        model_version: str,
        window_start: int,
        window_seconds: int,
        rows: int,
        profile: DatasetProfile,
    ) -> None:
        """Store one window profile fragment; raise on failure (it is then dropped)."""
        ...


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


@dataclass
class _Window:
    builder: ProfileBuilder
    rows: int = 0
    end_ms: int = 0
    columns: tuple[str, ...] = field(default_factory=tuple)


class PredictionLogger:
    """Buffers predictions and writes them in the background.

    Args:
        sink: writes segments.
        windows: writes window profiles (None: no profiles).
        flush_seconds: the longest a prediction stays in memory before its segment is written.
        flush_rows: flush sooner once this many rows wait.
        max_pending_rows: rows the buffer holds at most; beyond it predictions are dropped.
        window_seconds: the length of a profile window (aligned to the epoch).
        reference: a function giving the reference profile (its bin edges) for a model
            version (``name/version``), or None; windows are binned on the reference's edges
            so drift is a comparison of counts.
        retries: attempts to write a segment before its rows are dropped.
        on_flush: called with the counts after every flush (to publish metrics).
    """

    def __init__(
        self,
        sink: SegmentSink,
        *,
        windows: WindowSink | None = None,
        flush_seconds: float = 5.0,
        flush_rows: int = 20_000,
        max_pending_rows: int = 200_000,
        window_seconds: int = 300,
        reference: Callable[[str], DatasetProfile | None] | None = None,
        retries: int = 3,
        on_flush: Callable[[LogCounts], None] | None = None,
    ) -> None:
        self._sink = sink
        self._windows_sink = windows
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.max_pending_rows = max_pending_rows
        self.window_seconds = window_seconds
        self._reference = reference
        self._references: dict[str, DatasetProfile | None] = {}
        self._retries = retries
        self._on_flush = on_flush
        self.counts = LogCounts()
        self._buffer: list[_Entry] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._windows: dict[tuple[str, str, int], _Window] = {}
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

    # --- background thread --------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            stopping = self._stop
            try:
                self.flush(final=stopping)
            except Exception:  # never let the thread die: count and go on
                _log.exception("prediction log flush failed")
            if stopping:
                return

    def flush(self, *, final: bool = False) -> None:
        """Write what is buffered now (called by the background thread; ``close`` waits for
        the last one)."""
        with self._lock:
            entries, self._buffer = self._buffer, []
        if entries:
            rows = sum(e.rows for e in entries)
            ok = self._write(entries)
            with self._lock:
                self.counts.pending -= rows
                if ok:
                    self.counts.logged += rows
                    self.counts.segments += 1
                else:
                    self.counts.dropped += rows
                    self.counts.failures += 1
            if self._windows_sink is not None:
                self._profile(entries)
        if self._windows_sink is not None:
            self._close_windows(final)
        if self._on_flush is not None:
            self._on_flush(self.counts)

    def _write(self, entries: Sequence[_Entry]) -> bool:
        try:
            table = build_table(entries)
        except Exception:
            _log.exception(
                "could not build a prediction log segment; %d rows dropped",
                sum(e.rows for e in entries),
            )
            return False
        start = min(e.time_ms for e in entries)
        end = max(e.time_ms for e in entries)
        delay = 0.2
        for attempt in range(self._retries):
            try:
                self._sink.write(table, start=start, end=end)
                return True
            except Exception as exc:
                if attempt + 1 == self._retries or self._stop:
                    _log.warning(
                        "prediction log segment dropped (%d rows): %s", table.num_rows, exc
                    )
                    return False
                time.sleep(delay)
                delay *= 2
        return False

    def _profile(self, entries: Sequence[_Entry]) -> None:
        import pandas as pd

        from loopml.stats import ProfileBuilder

        step = self.window_seconds * 1000
        groups: dict[tuple[str, str, int], list[_Entry]] = defaultdict(list)
        for e in entries:
            groups[(e.route, e.model_version, e.time_ms // step * step)].append(e)
        for key, group in groups.items():
            frame = pd.DataFrame(_columns(group, prefix=""))
            window = self._windows.get(key)
            names = tuple(str(c) for c in frame.columns)
            if window is not None and window.columns != names:
                self._emit(key, window)  # the columns changed: a new fragment
                window = None
            if window is None:
                window = self._windows[key] = _Window(
                    ProfileBuilder(edges=self._edges(key[1], names)),
                    end_ms=key[2] + step,
                    columns=names,
                )
            try:
                window.builder.update(frame)
                window.rows += len(frame)
            except Exception:
                _log.exception("window profile update failed for %s", key)

    def _edges(self, model_version: str, names: tuple[str, ...]) -> Any:
        if self._reference is None:
            return None
        if model_version not in self._references:
            try:
                self._references[model_version] = self._reference(model_version)
            except Exception:  # no reference: edges from the first chunk
                self._references[model_version] = None
        ref = self._references[model_version]
        if ref is None:
            return None
        return {k: v for k, v in ref.edges().items() if k in names}

    def _close_windows(self, final: bool) -> None:
        now = int(time.time() * 1000)
        for key in list(self._windows):
            window = self._windows[key]
            if final or window.end_ms <= now:
                del self._windows[key]
                self._emit(key, window)

    def _emit(self, key: tuple[str, str, int], window: _Window) -> None:
        assert self._windows_sink is not None
        if window.rows == 0:
            return
        try:
            self._windows_sink.write_window(
                route=key[0],
                model_version=key[1],
                window_start=key[2],
                window_seconds=self.window_seconds,
                rows=window.rows,
                profile=window.builder.result(),
            )
        except Exception:
            _log.exception("could not store the window profile for %s", key)

    def close(self, timeout: float = 30.0) -> LogCounts:
        """Flush what is left and stop the thread; returns the final counts."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout)
        return self.counts


def prediction_ids(request_id: str, rows: int) -> list[str]:
    """The ids of a request's predictions: the request id for one row, else
    ``<request id>-<row>``."""
    if rows == 1:
        return [request_id]
    return [f"{request_id}-{i}" for i in range(rows)]


def _columns(entries: Sequence[_Entry], *, prefix: str) -> dict[str, Any]:
    """The entries' input columns and predictions, concatenated."""
    out: dict[str, Any] = {}
    maps = [e.inputs.column_map() for e in entries]
    first = maps[0]
    if first is not None and all(m is not None for m in maps):
        for name in first:
            parts = [np.asarray(m[name]) for m in maps]  # type: ignore[index]
            out[prefix + name] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    preds = [np.asarray(e.predictions) for e in entries]
    joined = np.concatenate(preds) if len(preds) > 1 else preds[0]
    out[PREDICTION] = list(joined) if joined.ndim > 1 else joined
    return out


def _input_names(decoded: Decoded) -> tuple[str, ...]:
    if decoded.columns is not None:
        return tuple(decoded.columns)
    return tuple(decoded.names) if decoded.matrix is not None else ()


def build_table(entries: Sequence[_Entry]) -> pa.Table:
    """One Arrow table of the entries (one row per prediction). Entries of routes whose
    inputs differ are concatenated with their columns unified (missing values are null)."""
    import pyarrow as pa

    tables = []
    groups: dict[tuple[str, ...], list[_Entry]] = defaultdict(list)
    for e in entries:
        groups[_input_names(e.inputs)].append(e)
    for group in groups.values():
        ids: list[str] = []
        for e in group:
            ids.extend(prediction_ids(e.request_id, e.rows))
        repeat = np.asarray([e.rows for e in group])
        data: dict[str, Any] = {
            "prediction_id": pa.array(ids, pa.string()),
            "request_id": pa.array(np.repeat([e.request_id for e in group], repeat), pa.string()),
            "time": pa.array(np.repeat([e.time_ms for e in group], repeat), pa.timestamp("ms")),
            "route": pa.array(np.repeat([e.route for e in group], repeat)).dictionary_encode(),
            "model_version": pa.array(
                np.repeat([e.model_version for e in group], repeat)
            ).dictionary_encode(),
            "latency_ms": pa.array(np.repeat([e.latency_ms for e in group], repeat), pa.float32()),
        }
        for name, values in _columns(group, prefix=INPUT_PREFIX).items():
            data[name] = _arrow(values)
        tables.append(pa.table(data))
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _arrow(values: Any) -> pa.Array:
    import pyarrow as pa

    if isinstance(values, list):
        return pa.array([np.asarray(v).tolist() for v in values])
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects
        return pa.array([None if v is None else str(v) for v in values], pa.string())
