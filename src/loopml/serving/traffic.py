"""Request and error counts per route and time window, kept in the store for the deployment page.

The Prometheus metrics on ``/metrics`` are live and per process; nothing keeps their history
unless someone scrapes them. So each serving process also counts its answers per route, model
version and window (``traffic_seconds``, a minute by default) in a :class:`TrafficCounter`,
and a :class:`TrafficRecorder` stores every window that has ended as a
:class:`~loopml.entities.TrafficWindow`, one fragment per process, and the current window when
the server stops. A window that could not be stored is kept and retried with the same id, so a
retry never counts twice; one the store refuses (a bad name) is dropped, with an error logged.
:func:`merge_windows` adds the fragments of one window up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.errors import Conflict, InvalidArgument

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import TrafficWindow

__all__ = ["TrafficCounter", "TrafficRecorder", "TrafficTotals", "merge_windows"]

_log = logging.getLogger("loopml.serving")

MAX_PENDING = 10_000
"""Windows kept for a retry while the store is unreachable; the oldest go first beyond it."""


@dataclass(frozen=True, slots=True)
class TrafficTotals:
    """The requests of one route (``""``: refused before routing) in one window, all
    processes together."""

    window_start: int
    window_seconds: int
    route: str
    requests: int
    client_errors: int
    server_errors: int

    @property
    def error_rate(self) -> float:
        """The share of requests answered with a 5xx status (0 without requests)."""
        return self.server_errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class _Ended:
    """A window that has ended, with the id its writes (and retries) use."""

    id: str
    route: str
    model_version: str
    window_start: int
    requests: int
    client_errors: int
    server_errors: int


class TrafficCounter:
    """Counts answers per (route, model version, window) in this process.

    Args:
        window_seconds: the length of a window (windows start at multiples of it).
        clock: seconds since the epoch (tests pass their own).
    """

    def __init__(self, window_seconds: int, clock: Callable[[], float] = time.time) -> None:
        if window_seconds < 1:
            raise ValueError(f"window_seconds must be at least 1, not {window_seconds}")
        self.window_seconds = window_seconds
        self._clock = clock
        # (route, version, window start ms) -> [requests, client errors, server errors]
        self._counts: dict[tuple[str, str, int], list[int]] = {}

    def count(self, route: str, version: str, status: int) -> None:
        """Count one answer of ``route`` (``""`` with ``version`` ``""``: refused before
        routing) with HTTP ``status``."""
        step = self.window_seconds
        key = (route, version, int(self._clock() // step) * step * 1000)
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0, 0, 0]
        counts[0] += 1
        if status >= 500:
            counts[2] += 1
        elif status >= 400:
            counts[1] += 1

    def take(self, final: bool = False) -> list[_Ended]:
        """Remove and return the windows that have ended (all of them when ``final``), each
        with a new id."""
        current = int(self._clock() // self.window_seconds) * self.window_seconds * 1000
        ended = [k for k in self._counts if final or k[2] < current]
        return [_Ended(uuid.uuid4().hex, *key, *self._counts.pop(key)) for key in ended]


class TrafficRecorder:
    """Stores the windows of a :class:`TrafficCounter` as they end (a task of the serving
    process's event loop).

    Args:
        client: the store.
        deployment: the endpoint's name. project: its project.
        window_seconds: the window length.
        flush_seconds: how often to look for ended windows (default: a sixth of a window,
            at most 10 s).
    """

    def __init__(
        self,
        client: Client,
        deployment: str,
        project: str | None,
        window_seconds: int,
        *,
        flush_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.deployment = deployment
        self.project = project
        self.counter = TrafficCounter(window_seconds, clock)
        self.flush_seconds = flush_seconds or min(10.0, window_seconds / 6)
        self._pending: list[_Ended] = []
        self._writing = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start storing ended windows in the background."""
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        """Stop, and store every window, the current one too."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._pending.extend(self.counter.take(final=True))
        await asyncio.to_thread(self._write)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            # counted on the event loop's thread, so taken there; stored on a worker thread
            self._pending.extend(self.counter.take())
            await asyncio.to_thread(self._write)

    def flush(self, final: bool = False) -> int:
        """Store the ended windows (all when ``final``) and those a failure left pending,
        from a thread that also does the counting; returns how many are still pending."""
        self._pending.extend(self.counter.take(final))
        return self._write()

    def _write(self) -> int:
        with self._writing:  # a write cancelled by stop() may still run on its thread
            seconds = self.counter.window_seconds
            while self._pending:
                w = self._pending[0]
                try:
                    self.client.log_traffic_window(
                        self.deployment,
                        route=w.route,
                        model_version=w.model_version,
                        window_start=w.window_start,
                        window_seconds=seconds,
                        requests=w.requests,
                        client_errors=w.client_errors,
                        server_errors=w.server_errors,
                        window_id=w.id,
                        project=self.project,
                    )
                except (InvalidArgument, Conflict):  # never takes it: do not block the rest
                    _log.error(
                        "dropped the request counts of a window the store refuses (route %r, "
                        "model version %r)",
                        w.route,
                        w.model_version,
                        exc_info=True,
                    )
                    self._pending.pop(0)
                    continue
                except Exception:
                    _log.warning(
                        "could not store the request counts of %d window(s); retrying later",
                        len(self._pending),
                        exc_info=True,
                    )
                    break
                self._pending.pop(0)
            if len(self._pending) > MAX_PENDING:
                lost = len(self._pending) - MAX_PENDING
                _log.error("dropped the request counts of %d window(s) never stored", lost)
                del self._pending[:lost]
            return len(self._pending)


def merge_windows(windows: Iterable[TrafficWindow]) -> list[TrafficTotals]:
    """Add up the fragments of each window and route (one per serving process and model
    version); by window start, then route."""
    totals: dict[tuple[int, str, int], list[int]] = {}
    for w in windows:
        t = totals.setdefault((w.window_start, w.route, w.window_seconds), [0, 0, 0])
        t[0] += w.requests
        t[1] += w.client_errors
        t[2] += w.server_errors
    return [
        TrafficTotals(start, seconds, route, *counts)
        for (start, route, seconds), counts in sorted(totals.items())
    ]
