"""The writing half of the prediction log: batches of logged predictions become Parquet
segments (through a :class:`SegmentSink`) and window profiles (through a :class:`WindowSink`).

It runs where the server's event loop is not: in a child process by default
(:func:`writer_process`), so building tables, compressing Parquet and profiling never hold the
serving process's GIL; or in a thread (tests, small setups).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    import pyarrow as pa

    from loopml.monitoring.outliers import OutlierRules
    from loopml.stats import DatasetProfile, ProfileBuilder

__all__ = ["BatchPart", "LogBatch", "LogWriter", "SegmentSink", "WindowSink", "writer_process"]

_log = logging.getLogger("loopml.serving")
PREDICTION = "prediction"
INPUT_PREFIX = "input."


class SegmentSink(Protocol):
    """Where flushed predictions go (a Parquet segment per flush, indexed)."""

    def write(self, table: pa.Table, *, start: int, end: int) -> None:
        """Store one segment durably; raise on failure (the writer retries, then drops)."""
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


@dataclass
class BatchPart:
    """Requests of a batch whose inputs have the same columns, one entry per request (the
    row-level arrays are the requests' rows, concatenated in order)."""

    names: tuple[str, ...]
    request_ids: list[str]
    rows: np.ndarray[Any, Any]
    times: np.ndarray[Any, Any]
    routes: list[str]
    versions: list[str]
    latency_ms: np.ndarray[Any, Any]
    columns: dict[str, Any]
    predictions: Any

    @property
    def total(self) -> int:
        """Rows (predictions) in the part."""
        return int(self.rows.sum())


@dataclass
class LogBatch:
    """One flush of the request side: picklable, sent to the writer."""

    id: int
    parts: list[BatchPart] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows (predictions) in the batch."""
        return sum(p.total for p in self.parts)


def prediction_ids(request_id: str, rows: int) -> list[str]:
    """The ids of a request's predictions: the request id for one row, else
    ``<request id>-<row>``."""
    if rows == 1:
        return [request_id]
    return [f"{request_id}-{i}" for i in range(rows)]


def build_table(
    parts: Sequence[BatchPart], extra: Sequence[dict[str, Any]] | None = None
) -> pa.Table:
    """One Arrow table of a batch, one row per prediction; parts whose inputs differ are
    concatenated with their columns unified (missing values are null). ``extra``: more
    columns per part (the outlier flags), row-aligned."""
    import pyarrow as pa

    tables = []
    for n_part, part in enumerate(parts):
        rows = part.rows
        requests = pa.array(part.request_ids, pa.string())
        if len(rows) and int(rows.max()) == 1:  # one row per request: no repeats
            ids, take = requests, None
        else:
            expanded: list[str] = []
            for rid, n in zip(part.request_ids, rows.tolist(), strict=True):
                expanded.extend(prediction_ids(rid, n))
            ids = pa.array(expanded, pa.string())
            take = pa.array(np.repeat(np.arange(len(rows)), rows))

        def per_row(values: pa.Array, take: pa.Array | None = take) -> pa.Array:
            return values if take is None else values.take(take)

        data: dict[str, Any] = {
            "prediction_id": ids,
            "request_id": per_row(requests),
            "time": per_row(pa.array(part.times, pa.timestamp("ms"))),
            "route": per_row(pa.array(part.routes, pa.string()).dictionary_encode()),
            "model_version": per_row(pa.array(part.versions, pa.string()).dictionary_encode()),
            "latency_ms": per_row(pa.array(part.latency_ms, pa.float32())),
        }
        for name, values in part.columns.items():
            data[INPUT_PREFIX + name] = _arrow(values)
        data[PREDICTION] = _arrow(part.predictions)
        if extra is not None:
            data.update({k: pa.array(v) for k, v in extra[n_part].items()})
        tables.append(pa.table(data))
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _arrow(values: Any) -> pa.Array:
    import pyarrow as pa

    array = np.asarray(values)
    if array.ndim > 1:
        return pa.array(list(array.reshape(len(array), -1)))
    try:
        return pa.array(array)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects
        return pa.array([None if v is None else str(v) for v in array.tolist()], pa.string())


@dataclass
class _Window:
    builder: ProfileBuilder
    rows: int = 0
    end_ms: int = 0
    columns: tuple[str, ...] = ()


class LogWriter:
    """Writes batches: a segment each (retried), and window profiles.

    Args:
        sink: writes segments.
        windows: writes window profiles (None: none).
        window_seconds: the length of a profile window (aligned to the epoch).
        reference: a function giving the reference profile for a model version
            (``name/version``), or None; windows are binned on its edges.
        retries: attempts to write a segment before its rows are dropped.
        outliers: flag each prediction whose inputs leave the reference's range or take a
            category it never had (``"range"``, the default), also with an isolation forest
            fitted on a reference sample (``"isolation_forest"``: needs ``sample``), or not
            (``"off"``); the flags are columns of the segment.
        sample: a function giving a sample of the reference data for a model version.
    """

    def __init__(
        self,
        sink: SegmentSink,
        *,
        windows: WindowSink | None = None,
        window_seconds: int = 300,
        reference: Callable[[str], DatasetProfile | None] | None = None,
        retries: int = 3,
        outliers: str = "range",
        sample: Callable[[str], Any] | None = None,
    ) -> None:
        self.sink = sink
        self.windows_sink = windows
        self.window_seconds = window_seconds
        self._reference = reference
        self._references: dict[str, DatasetProfile | None] = {}
        self.retries = retries
        self.outliers = outliers
        self._sample = sample
        self._rules: dict[str, OutlierRules | None] = {}
        self.stopping = False
        self._windows: dict[tuple[str, str, int], _Window] = {}

    def write(self, batch: LogBatch) -> tuple[int, int]:
        """Write one batch; returns ``(logged, dropped)`` rows."""
        total = batch.total
        if total == 0:
            return 0, 0
        ok = self._segment(batch)
        if self.windows_sink is not None:
            try:
                self._profile(batch)
            except Exception:
                _log.exception("window profile update failed")
        return (total, 0) if ok else (0, total)

    def _segment(self, batch: LogBatch) -> bool:
        try:
            table = build_table(batch.parts, [self._flags(p) for p in batch.parts])
        except Exception:
            _log.exception(
                "could not build a prediction log segment; %d rows dropped", batch.total
            )
            return False
        start = min(int(p.times.min()) for p in batch.parts)
        end = max(int(p.times.max()) for p in batch.parts)
        delay = 0.2
        for attempt in range(self.retries):
            try:
                self.sink.write(table, start=start, end=end)
                return True
            except Exception as exc:
                if attempt + 1 == self.retries or self.stopping:
                    _log.warning(
                        "prediction log segment dropped (%d rows): %s", table.num_rows, exc
                    )
                    return False
                time.sleep(delay)
                delay *= 2
        return False

    def _flags(self, part: BatchPart) -> dict[str, Any]:
        """The part's outlier columns (none when off or without a reference)."""
        if self.outliers == "off" or not part.columns or not part.versions:
            return {}
        version = part.versions[0]
        if version not in self._rules:
            self._rules[version] = self._outlier_rules(version)
        rules = self._rules[version]
        if rules is None:
            return {}
        found = rules.flag(part.columns, part.total)
        out: dict[str, Any] = {"outlier": found.flags, "outlier_reasons": found.reasons}
        if found.scores is not None:
            out["outlier_score"] = found.scores
        return out

    def _outlier_rules(self, version: str) -> OutlierRules | None:
        from loopml.monitoring.outliers import OutlierRules

        ref = self._reference_for(version)
        if ref is None:
            return None
        rules = OutlierRules.from_profile(ref, skip=(PREDICTION,))
        if self.outliers == "isolation_forest" and self._sample is not None:
            try:
                sample = self._sample(version)
                if sample is not None:
                    rules.fit_forest(sample)
            except Exception:
                _log.exception("no isolation forest for %s: its reference sample failed", version)
        return rules

    def _profile(self, batch: LogBatch) -> None:
        import pandas as pd

        from loopml.stats import ProfileBuilder

        step = self.window_seconds * 1000
        for part in batch.parts:
            rows = part.rows
            route = np.repeat(part.routes, rows)
            version = np.repeat(part.versions, rows)
            window = np.repeat(part.times // step * step, rows)
            frame = pd.DataFrame({**part.columns, PREDICTION: _flat(part.predictions)})
            keys = pd.DataFrame({"r": route, "v": version, "w": window})
            groups: dict[Any, Any] = keys.groupby(["r", "v", "w"], sort=False).indices
            for group, index in groups.items():
                r, v, w = group
                key = (str(r), str(v), int(w))
                chunk = frame.iloc[index] if len(index) != len(frame) else frame
                names = tuple(str(c) for c in chunk.columns)
                win = self._windows.get(key)
                if win is not None and win.columns != names:
                    self._emit(key, win)  # the columns changed: a new fragment
                    win = None
                if win is None:
                    win = self._windows[key] = _Window(
                        ProfileBuilder(edges=self._edges(key[1], names)),
                        end_ms=key[2] + step,
                        columns=names,
                    )
                win.builder.update(chunk)
                win.rows += len(chunk)

    def _edges(self, model_version: str, names: tuple[str, ...]) -> Any:
        ref = self._reference_for(model_version)
        if ref is None:
            return None
        return {k: v for k, v in ref.edges().items() if k in names}

    def _reference_for(self, model_version: str) -> DatasetProfile | None:
        if self._reference is None:
            return None
        if model_version not in self._references:
            try:
                self._references[model_version] = self._reference(model_version)
            except Exception:  # no reference: edges from the first chunk, no outlier flags
                self._references[model_version] = None
        return self._references[model_version]

    def close_windows(self, final: bool) -> None:
        """Store the windows that have ended (all of them when ``final``)."""
        if self.windows_sink is None:
            return
        now = int(time.time() * 1000)
        for key in list(self._windows):
            win = self._windows[key]
            if final or win.end_ms <= now:
                del self._windows[key]
                self._emit(key, win)

    def _emit(self, key: tuple[str, str, int], win: _Window) -> None:
        assert self.windows_sink is not None
        if win.rows == 0:
            return
        try:
            self.windows_sink.write_window(
                route=key[0],
                model_version=key[1],
                window_start=key[2],
                window_seconds=self.window_seconds,
                rows=win.rows,
                profile=win.builder.result(),
            )
        except Exception:
            _log.exception("could not store the window profile for %s", key)


def _flat(predictions: Any) -> Any:
    array = np.asarray(predictions)
    return list(array.reshape(len(array), -1)) if array.ndim > 1 else array


IDLE_CLOSE_SECONDS = 1.0
"""How often an idle writer process stores the windows that have ended."""


def writer_process(factory: Callable[[], LogWriter], conn: Connection) -> None:
    """The writer process's main loop: receive batches, write them, answer
    ``(batch id, logged, dropped)``; ``None`` closes (ends the windows, answers ``"closed"``)."""
    import os

    from threadpoolctl import threadpool_limits

    try:  # serving comes first: the writer takes the CPU the server leaves
        os.nice(10)
    except (AttributeError, OSError):  # not on this platform
        pass
    # One BLAS thread: the profiles' dot products would otherwise wake a pool of spinning
    # threads that take 4x the writer's own CPU time from the server beside it.
    threadpool_limits(1)
    writer = factory()
    while True:
        try:
            if not conn.poll(IDLE_CLOSE_SECONDS):
                # no traffic: windows that have ended are stored anyway, not when (if ever)
                # the next batch comes, so that monitors see the last window of a burst
                writer.close_windows(False)
                continue
            batch = conn.recv()
        except (EOFError, OSError):  # the server is gone
            writer.stopping = True
            writer.close_windows(True)
            return
        if batch is None:
            writer.stopping = True
            writer.close_windows(True)
            conn.send("closed")
            return
        try:
            logged, dropped = writer.write(batch)
        except Exception:
            _log.exception("prediction log batch failed")
            logged, dropped = 0, batch.total
        writer.close_windows(False)
        conn.send((batch.id, logged, dropped))
