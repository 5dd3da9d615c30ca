"""Run monitors: find the windows not evaluated yet (and the recent ones whose labels may still
be arriving), evaluate them, store the results, then apply the alert rules.

:func:`run_monitor` does one pass (``loopml monitor run NAME``); :func:`run_forever` repeats it
on the monitors' schedules (``loopml monitor run --every 5m``, and ``loopml server`` later).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.entities import Monitor, MonitorResult, now_ms
from loopml.errors import InvalidArgument
from loopml.monitoring.evaluate import (
    Evaluation,
    Window,
    _on_edges,
    _Sources,
    evaluate_window,
    first_logged,
)
from loopml.monitoring.rollups import DAY_SECONDS
from loopml.monitoring.spec import MonitorSpec

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.monitoring.alerting import AlertEvent

__all__ = ["MonitorRun", "create_monitor", "run_forever", "run_monitor"]

_log = logging.getLogger("loopml.monitoring")
MAX_WINDOWS = 2000
"""Windows one run evaluates at most (a first run over a long history catches up this far)."""


@dataclass
class MonitorRun:
    """What one run of a monitor did: the results it stored (by window), the alert events."""

    monitor: str
    results: list[MonitorResult] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "monitor": self.monitor,
            "windows": len(self.results),
            "seconds": round(self.seconds, 3),
            "results": [
                {
                    "window_start": r.window_start,
                    "window_end": r.window_end,
                    "status": r.status,
                    "metrics": {k: _json_float(v) for k, v in r.metrics.items()},
                }
                for r in self.results
            ],
            "alerts": [a.to_dict() for a in self.alerts],
            "notes": self.notes,
        }


def _json_float(v: float) -> float | None:
    return None if v != v else v  # NaN -> null


def create_monitor(
    client: Client,
    name: str,
    spec: MonitorSpec | dict[str, Any] | str,
    *,
    description: str = "",
    project: str | None = None,
) -> Monitor:
    """Validate a spec and store the monitor (the checks run on ``run_monitor``).

    Raises:
        InvalidArgument: the spec is not valid (every problem is named).
        AlreadyExists: a monitor of that name exists.
    """
    parsed = MonitorSpec.parse(spec)
    if parsed.deployment is not None:
        client.get_deployment(parsed.deployment, project=project)  # exists?
    return client.create_monitor(name, parsed.to_dict(), description=description, project=project)


def run_monitor(
    client: Client,
    name: str,
    *,
    now: int | None = None,
    since: int | None = None,
    project: str | None = None,
    alerts: bool = True,
) -> MonitorRun:
    """Evaluate the windows of a monitor that are due and store their results.

    Args:
        client: the store.
        name: the monitor.
        now: the time to evaluate up to (ms; default: now). Only complete windows count.
        since: evaluate windows from this time on (ms), even those evaluated before.
        project: the project.
        alerts: apply the monitor's alert rules to the new results.

    Raises:
        MonitorNotFound: no such monitor.
        InvalidArgument: its stored spec is no longer valid.
    """
    started = time.perf_counter()
    monitor = client.get_monitor(name, project=project)
    spec = MonitorSpec.parse(monitor.spec)
    run = MonitorRun(name)
    now = now_ms() if now is None else now
    if spec.deployment is not None:
        windows = _due_windows(client, monitor, spec, now, since, project, run)
        sources = _Sources(client, spec, project)
        for window in windows:
            run.evaluations.append(
                evaluate_window(client, spec, window, project=project, sources=sources)
            )
        _roll_up(client, spec, windows, now, project)
    else:
        run.evaluations.extend(_dataset_windows(client, monitor, spec, since, project))
    for ev in run.evaluations:
        run.results.append(
            client.log_monitor_result(
                name,
                window_start=ev.window.start,
                window_end=ev.window.end,
                metrics=ev.metrics,
                details=ev.details,
                status=ev.status,
                project=project,
            )
        )
    if alerts and run.results and spec.alerts:
        run.alerts.extend(_apply_alerts(client, monitor, spec, project, now))
    run.seconds = time.perf_counter() - started
    return run


def _due_windows(
    client: Client,
    monitor: Monitor,
    spec: MonitorSpec,
    now: int,
    since: int | None,
    project: str | None,
    run: MonitorRun,
) -> list[Window]:
    assert spec.deployment is not None
    if spec.window_rows is not None:
        return _count_windows(client, monitor, spec, now, since, project)
    step = int(spec.window * 1000)
    last_end = (now // step) * step  # windows ending after now are not complete
    done = client.list_monitor_results(monitor.name, limit=1, project=project)
    again: list[Window] = []
    if since is not None:
        start = (since // step) * step
    elif done:
        start = done[-1].window_end
        if spec.performance.enabled and _new_labels(client, done[-1], project):
            # labels arrived since the last run: windows still within the label delay are
            # scored again
            recent = client.list_monitor_results(
                monitor.name, start=now - int(spec.performance.label_delay * 1000), project=project
            )
            again = [Window(r.window_start, r.window_end) for r in recent]
    else:
        first = first_logged(client, spec.deployment, project=project)
        if first is None:
            run.notes.append(f"deployment {spec.deployment!r} has logged no predictions yet")
            return []
        start = (first // step) * step
    windows = [w for w in again if w.start < start]
    windows += [Window(s, s + step) for s in range(start, last_end, step)]
    if len(windows) > MAX_WINDOWS:
        run.notes.append(
            f"{len(windows)} windows are due; evaluating the latest {MAX_WINDOWS} (run with "
            "--since to go further back)"
        )
        windows = windows[-MAX_WINDOWS:]
    return windows


def _count_windows(
    client: Client,
    monitor: Monitor,
    spec: MonitorSpec,
    now: int,
    since: int | None,
    project: str | None,
) -> list[Window]:
    """Windows by count: consecutive log windows, closed once they hold ``window_rows``."""
    assert spec.deployment is not None and spec.window_rows is not None
    done = client.list_monitor_results(monitor.name, limit=1, project=project)
    start = since if since is not None else (done[-1].window_end if done else None)
    rows: dict[int, int] = {}
    length: dict[int, int] = {}
    for f in client.list_window_profiles(
        spec.deployment, start=start, route=spec.route, project=project
    ):
        if f.window_seconds >= DAY_SECONDS:  # a daily roll-up, not serving's
            continue
        rows[f.window_start] = rows.get(f.window_start, 0) + f.rows
        length[f.window_start] = f.window_seconds * 1000
    windows: list[Window] = []
    first: int | None = None
    total = 0
    for begin in sorted(rows):
        end = begin + length[begin]
        if end > now:  # a log window still open
            break
        first = begin if first is None else first
        total += rows[begin]
        if total >= spec.window_rows:
            windows.append(Window(first, end))
            first, total = None, 0
    return windows


def _roll_up(
    client: Client, spec: MonitorSpec, windows: list[Window], now: int, project: str | None
) -> None:
    """Daily roll-ups of the days the evaluated windows touched, once those days are over
    (later checks over long spans then merge one profile a day)."""
    from loopml.monitoring.rollups import DAY, roll_up_days

    assert spec.deployment is not None
    days = {d for w in windows for d in range(w.start // DAY * DAY, w.end, DAY)}
    try:
        roll_up_days(client, spec.deployment, days, now=now, project=project)
    except Exception:  # a roll-up is an optimisation: never fail the run for it
        _log.exception("daily roll-up of %s failed", spec.deployment)


def _new_labels(client: Client, last: MonitorResult, project: str | None) -> bool:
    return bool(client.list_label_segments(since=last.created_at, project=project))


def _dataset_windows(
    client: Client,
    monitor: Monitor,
    spec: MonitorSpec,
    since: int | None,
    project: str | None,
) -> list[Evaluation]:
    """One window per new version of the watched dataset (its creation time)."""
    from loopml.data import dataset_profile
    from loopml.monitoring.evaluate import _drift, _quality, stored_profile

    assert spec.dataset is not None
    ref_version = client.get_dataset_version(spec.reference, project=project)
    if not ref_version.profile_blob:
        raise InvalidArgument(
            f"the reference {ref_version.uri} has no profile; log it with a profile"
        )
    reference = dataset_profile(ref_version, client=client)
    done = client.list_monitor_results(monitor.name, limit=1, project=project)
    after = since if since is not None else (done[-1].window_start + 1 if done else None)
    out = []
    for dv in sorted(
        client.list_dataset_versions(spec.dataset, project=project), key=lambda v: v.created_at
    ):
        if after is not None and dv.created_at < after:
            continue
        ev = Evaluation(Window(dv.created_at, dv.created_at + 1))
        ev.details.update(
            rows=dv.num_rows,
            notes=[],
            dataset_version=dv.uri,
            reference={"kind": "dataset", "uri": ref_version.uri, "rows": ref_version.num_rows},
        )
        ev.metrics["rows"] = float(dv.num_rows)
        stored = stored_profile(client, dv)
        if stored is None:
            ev.details["notes"].append(f"{dv.uri} has no profile")
        else:
            current = _on_edges(stored, reference)
            ev.reference, ev.current = reference, current
            if spec.drift.enabled:
                _drift(spec, reference, current, ev)
            if spec.quality.enabled:
                _quality(spec, reference, current, ev)
            if ev.metrics.get("dataset_drift") == 1.0:
                ev.status = "drifted"
        out.append(ev)
    return out


def _apply_alerts(
    client: Client, monitor: Monitor, spec: MonitorSpec, project: str | None, now: int
) -> list[AlertEvent]:
    from loopml.monitoring.alerting import evaluate_rules

    depth = max(max(r.for_windows, r.resolve_after) for r in spec.alerts)
    recent = client.list_monitor_results(monitor.name, limit=depth + 1, project=project)
    return evaluate_rules(
        client, monitor.name, spec.alerts, spec.notifiers, recent, now=now, project=project
    )


def run_forever(
    client: Client,
    names: Sequence[str],
    *,
    every: float | None = None,
    project: str | None = None,
    stop: threading.Event | None = None,
    on_run: Callable[[MonitorRun], None] | None = None,
) -> None:
    """Run monitors on their schedules (or every ``every`` seconds) until ``stop`` is set.

    A monitor that fails is logged and tried again on its next turn; the others go on.
    """
    stop = stop or threading.Event()
    due: dict[str, float] = dict.fromkeys(names, 0.0)
    while not stop.is_set():
        for name in names:
            if time.monotonic() < due[name]:
                continue
            try:
                spec = MonitorSpec.parse(client.get_monitor(name, project=project).spec)
                interval = every or spec.schedule
                run = run_monitor(client, name, project=project)
                if on_run is not None:
                    on_run(run)
            except Exception:
                _log.exception("monitor %s failed; trying again on its next turn", name)
                interval = every or 60.0
            due[name] = time.monotonic() + interval
        wait = max(0.05, min(due.values()) - time.monotonic())
        stop.wait(wait)
