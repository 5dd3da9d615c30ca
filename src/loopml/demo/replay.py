"""Replay May onward as live traffic: one simulated week per monitor window.

Time is compressed: each simulated week is sent to the server over HTTP inside one wall-clock
window of ``window_seconds`` (the serving log's window and the monitor's), so that the monitor
sees one window per week. The labels of each day arrive a (simulated) day late, after the next
day's traffic, through ``loopml.log_ground_truth``. Once the next week has been served, the
monitor evaluates the week's window (its labels are all in by then), the labelled flights of
the last weeks land as a new dataset version (what the loop retrains on), and the
continuous-training loop takes one pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.demo.data import FEATURES, TARGET, TIME

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.loop import LoopRunner

__all__ = ["Replay", "Week", "weeks_of"]


@dataclass
class Week:
    """One simulated week and what happened in it.

    Attributes:
        number: 1, 2, ...
        first_day, last_day: its dates (``2013-05-01``).
        sent: predictions served.
        routes: predictions per route (``primary``, the canary's route).
        versions: predictions per model version served.
        window: the wall-clock window it was served in (ms since the epoch).
        metrics: the monitor's final metrics of the week (labels complete).
        alerts: alerts that fired or resolved after the week (``rule: message``).
        loop: the loop's phase after the week, and its reason.
        labelled: the flights of the week whose labels arrived.
    """

    number: int
    first_day: str
    last_day: str
    sent: int = 0
    routes: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    window: tuple[int, int] = (0, 0)
    metrics: dict[str, float] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    loop: tuple[str, str] = ("idle", "")
    send_seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.metrics.get("accuracy", math.nan)


def weeks_of(start: str, end: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The weeks ``[first day, first day of the next week)`` from ``start`` to ``end``."""
    import pandas as pd

    first, stop = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    out = []
    while first < stop:
        out.append((first, min(first + pd.Timedelta(days=7), stop)))
        first += pd.Timedelta(days=7)
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)


def _sleep_until(ms: int) -> None:
    delay = ms / 1000 - time.time()
    if delay > 0:
        time.sleep(delay)


class Replay:
    """The replay of live traffic against a running server.

    Args:
        client: the store.
        project: the project.
        frame: every flight (from the ingest stage).
        url: the server's base URL.
        deployment: the deployment's name.
        monitor: the monitor's name.
        runner: the loop (None: no loop).
        window_seconds: the wall-clock window of one simulated week.
        rows_per_week: predictions per simulated week (a sample of the week's flights).
        batch_rows: rows per HTTP request.
        recent_days: days of labelled flights each weekly ``flights-recent`` version holds.
        recent_rows: at most this many of them (sampled).
        seed: the sampling seed.
        on_week: called with each finished week (progress).
        on_loop: called before each loop pass with a short description.
    """

    def __init__(
        self,
        client: Client,
        project: str,
        frame: pd.DataFrame,
        url: str,
        *,
        deployment: str,
        monitor: str,
        runner: LoopRunner | None,
        window_seconds: int,
        rows_per_week: int,
        batch_rows: int = 100,
        recent_days: int = 56,
        recent_rows: int = 30_000,
        seed: int = 0,
        on_week: Callable[[Week], None] | None = None,
    ) -> None:
        self.client = client
        self.project = project
        self.frame = frame
        self.url = url
        self.deployment = deployment
        self.monitor = monitor
        self.runner = runner
        self.window_ms = window_seconds * 1000
        self.rows_per_week = rows_per_week
        self.batch_rows = batch_rows
        self.recent_days = recent_days
        self.recent_rows = recent_rows
        self.seed = seed
        self.on_week = on_week
        self.weeks: list[Week] = []
        self.alert_events: list[dict[str, Any]] = []
        self.recent_versions: list[str] = []
        self._pending: tuple[list[str], list[int]] | None = None

    # --- one week -----------------------------------------------------------------------------

    def run(self, start: str, end: str) -> list[Week]:
        """Replay ``[start, end)`` week by week.

        A week is scored once the next one has been served: by then the labels of its last
        day have arrived, and the server has stored its window's profile (a window's profile
        is written when the first batch after its end arrives).
        """
        import httpx

        with httpx.Client(base_url=self.url, timeout=60) as http:
            for number, (first, stop) in enumerate(weeks_of(start, end), 1):
                week = Week(number, first.date().isoformat(), (stop - _day()).date().isoformat())
                self._serve_week(http, week, first, stop)
                self.weeks.append(week)
                if len(self.weeks) > 1:
                    self._settle(self.weeks[-2], stop)
        self._flush_labels()  # the last day's labels
        if self.weeks:
            _sleep_until(self.weeks[-1].window[1] + 500)
            self._settle(self.weeks[-1], None)
        return self.weeks

    def _settle(self, week: Week, stop: pd.Timestamp | None) -> None:
        """Score ``week``, land the labelled data known by ``stop``, let the loop act."""
        self._score(week)
        if stop is not None:
            self._land_recent(stop)
        if self.runner is not None:
            for state in self.runner.run_once().values():
                week.loop = (state.phase, state.reason)
        if self.on_week is not None:
            self.on_week(week)

    def _serve_week(self, http: Any, week: Week, first: pd.Timestamp, stop: pd.Timestamp) -> None:
        import pandas as pd

        # start on a fresh window, so that the week is one window of the monitor
        now = _now_ms()
        _sleep_until((now // self.window_ms + 1) * self.window_ms)
        begin = _now_ms()
        days = pd.date_range(first, stop - _day(), freq="D")
        per_day = max(1, self.rows_per_week // 7)
        for i, day in enumerate(days):
            rows = self._day_rows(day, per_day, seed=self.seed + week.number * 7 + i)
            ids: list[str] = []
            for j in range(0, len(rows), self.batch_rows):
                batch = rows.iloc[j : j + self.batch_rows]
                body = {
                    "columns": {c: batch[c].tolist() for c in FEATURES},
                    "key": f"{day.date()}-{j}",  # sticky: one caller, one route
                }
                answer = http.post("/predict", json=body)
                if answer.status_code != 200:
                    raise RuntimeError(
                        f"the server answered {answer.status_code} to a batch of "
                        f"{len(batch)} flights of {day.date()}: {answer.text[:500]}"
                    )
                out = answer.json()
                ids.extend(out["prediction_ids"])
                route, version = str(out["route"]), f"v{out['version']}"
                week.routes[route] = week.routes.get(route, 0) + len(batch)
                week.versions[version] = week.versions.get(version, 0) + len(batch)
            week.sent += len(rows)
            self._flush_labels()  # yesterday's labels arrive today
            self._pending = (ids, rows[TARGET].astype(int).tolist())
        end = _now_ms()
        week.send_seconds = (end - begin) / 1000
        week.window = (
            begin // self.window_ms * self.window_ms,
            -(-end // self.window_ms) * self.window_ms,
        )

    def _day_rows(self, day: pd.Timestamp, n: int, seed: int) -> pd.DataFrame:
        import pandas as pd

        times = self.frame[TIME]
        on_day = self.frame[(times >= day) & (times < day + pd.Timedelta(days=1))]
        if len(on_day) > n:
            on_day = on_day.sample(n, random_state=seed).sort_values(TIME, kind="stable")
        return on_day

    def _flush_labels(self) -> None:
        from loopml.client.monitors import log_ground_truth

        if self._pending is None:
            return
        ids, labels = self._pending
        self._pending = None
        if ids:
            log_ground_truth(ids, labels, deployment=self.deployment)

    def _score(self, week: Week) -> None:
        from loopml.monitoring import run_monitor

        start, end = week.window
        run = run_monitor(self.client, self.monitor, since=start, now=end, project=self.project)
        if run.results:
            week.metrics = _merge([dict(r.metrics) for r in run.results])
        for event in run.alerts:
            if event.kind == "updated":
                continue
            what = f"{event.kind}: {event.alert.rule} ({event.alert.message})"
            week.alerts.append(what)
            self.alert_events.append(
                {
                    "week": week.number,
                    "kind": event.kind,
                    "rule": event.alert.rule,
                    "severity": str(event.alert.severity),
                    "value": event.alert.value,
                    "message": event.alert.message,
                }
            )

    def _land_recent(self, stop: pd.Timestamp) -> None:
        """The labelled flights of the last ``recent_days`` days (labels known up to the day
        before ``stop``) land as a version of ``flights-recent``."""
        import pandas as pd

        from loopml.data import log_dataset

        known = stop - _day()
        times = self.frame[TIME]
        recent = self.frame[
            (times >= known - pd.Timedelta(days=self.recent_days)) & (times < known)
        ]
        if len(recent) > self.recent_rows:
            recent = recent.sample(self.recent_rows, random_state=self.seed).sort_values(
                TIME, kind="stable"
            )
        version = log_dataset(
            recent.reset_index(drop=True),
            "flights-recent",
            target=TARGET,
            description=f"labelled flights of the {self.recent_days} days before {known.date()}",
            client=self.client,
            project=self.project,
        )
        self.recent_versions.append(version.uri)


def _merge(results: list[dict[str, float]]) -> dict[str, float]:
    """One week's metrics from its windows (usually one): counts added up, performance
    weighted by labelled predictions, the rest by rows."""
    if len(results) == 1:
        return results[0]
    counts = ("rows", "labelled", "drifted_features")
    by_labels = ("accuracy", "precision", "recall", "f1")
    merged: dict[str, float] = {}
    for key in {k for r in results for k in r}:
        weight_key = "labelled" if key in by_labels else "rows"
        pairs = [
            (r[key], r.get(weight_key, 0.0)) for r in results if key in r and r[key] == r[key]
        ]
        if not pairs:
            continue
        if key in counts:
            merged[key] = sum(v for v, _ in pairs)
            continue
        weight = sum(w for _, w in pairs)
        merged[key] = sum(v * w for v, w in pairs) / weight if weight else pairs[-1][0]
    return merged


def _day() -> Any:
    import pandas as pd

    return pd.Timedelta(days=1)
