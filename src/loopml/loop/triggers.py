"""Triggers: what starts a cycle of the loop.

- ``alert``: a new alert of a monitor (optionally of one rule). The loop polls the store's
  alerts, so a monitor run by another process (``loopml monitor run --every``) works; an alert
  rule may also name the ``retrain`` action, which records the request in the audit trail and
  wakes a loop running in the same process.
- ``schedule``: a cron expression; a cycle at each time it names (UTC), once.
- ``dataset``: a new version of a dataset.

Each trigger keeps a watermark in the policy's state (the newest alert, cron time or dataset
version it acted on), so a restarted loop does not act twice on the same cause. A new policy
starts from now: old alerts and versions do not start a cycle, but an alert still firing does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.entities import AlertState
from loopml.errors import DatasetNotFound, InvalidArgument
from loopml.monitoring.actions import register_action

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import Alert, MonitorResult
    from loopml.loop.policy import Policy, Trigger

__all__ = ["Fired", "check_triggers", "initial_watermarks", "retrain_action", "wake"]

WAKE = threading.Event()
"""Set by the ``retrain`` action: a loop in this process checks its triggers at once."""


@dataclass(frozen=True)
class Fired:
    """A trigger that fired: ``kind`` (alert, schedule, dataset), ``what`` (one line),
    ``details`` (JSON-ready: the alert, the cron time, the dataset version's URI), and the
    watermark key and value to keep once the cycle starts."""

    kind: str
    what: str
    details: dict[str, Any]
    key: str
    mark: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"kind": self.kind, "what": self.what, **self.details}


def _key(trigger: Trigger) -> str:
    return trigger.describe()


def initial_watermarks(
    client: Client, policy: Policy, at: int, *, project: str | None = None
) -> dict[str, Any]:
    """The watermarks of a new policy: from ``at`` on (the newest dataset versions count as
    seen)."""
    marks: dict[str, Any] = {}
    for trigger in policy.triggers:
        if trigger.dataset is not None:
            marks[_key(trigger)] = _latest_version(client, trigger.dataset, project)
        else:
            marks[_key(trigger)] = at
    return marks


def check_triggers(
    client: Client,
    policy: Policy,
    watermarks: dict[str, Any],
    created_at: int,
    at: int,
    *,
    project: str | None = None,
) -> Fired | None:
    """The first trigger of the policy that fired since its watermark, or None."""
    for trigger in policy.triggers:
        key = _key(trigger)
        mark = watermarks.get(key)
        fired: Fired | None
        if trigger.alert is not None:
            fired = _alert(client, trigger, key, mark, created_at, project)
        elif trigger.schedule is not None:
            fired = _schedule(trigger, key, mark if mark is not None else created_at, at)
        else:
            fired = _dataset(client, trigger, key, mark, project)
        if fired is not None:
            return fired
    return None


def _alert(
    client: Client,
    trigger: Trigger,
    key: str,
    mark: Any,
    created_at: int,
    project: str | None,
) -> Fired | None:
    assert trigger.alert is not None
    since = int(mark) if mark is not None else created_at
    alerts = client.list_alerts(
        monitor=trigger.alert, rule=trigger.rule, limit=50, project=project
    )
    for alert in sorted(alerts, key=lambda a: a.started_at):
        new = alert.started_at > since
        # an alert already firing when the policy was made counts, once
        ongoing = since == created_at and alert.state == AlertState.FIRING
        if not (new or ongoing):
            continue
        return Fired(
            "alert",
            f"alert {alert.rule} of monitor {alert.monitor}: {alert.message}",
            {
                "alert_id": alert.id,
                "monitor": alert.monitor,
                "rule": alert.rule,
                "value": alert.value,
                "window_start": alert.window_start,
                "window_end": alert.window_end,
            },
            key,
            max(alert.started_at, since + 1),
        )
    return None


def _schedule(trigger: Trigger, key: str, mark: Any, at: int) -> Fired | None:
    from croniter import croniter  # type: ignore[import-untyped]

    assert trigger.schedule is not None
    itr = croniter(trigger.schedule, float(mark) / 1000)
    due = int(itr.get_next(float) * 1000)
    if due > at:
        return None
    while True:  # a loop that was down catches up with one cycle, not one per missed time
        after = int(itr.get_next(float) * 1000)
        if after > at:
            break
        due = after
    return Fired(
        "schedule",
        f"schedule {trigger.schedule} (due {_iso(due)})",
        {"cron": trigger.schedule, "due": due},
        key,
        due,
    )


def _latest_version(client: Client, name: str, project: str | None) -> int:
    try:
        versions = client.list_dataset_versions(name, project=project)
    except DatasetNotFound:
        return 0
    return max((v.version for v in versions), default=0)


def _dataset(
    client: Client, trigger: Trigger, key: str, mark: Any, project: str | None
) -> Fired | None:
    assert trigger.dataset is not None
    latest = _latest_version(client, trigger.dataset, project)
    if latest <= int(mark or 0):
        return None
    uri = f"datasets:/{trigger.dataset}/{latest}"
    return Fired("dataset", f"new dataset version {uri}", {"dataset": uri}, key, latest)


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wake() -> None:
    """Make a loop running in this process check its triggers now."""
    WAKE.set()


def retrain_action(alert: Alert, result: MonitorResult | None) -> str:
    """The ``retrain`` alert action: record the request in the audit trail (``loop.requested``)
    and wake a loop of this process. Policies with an ``alert`` trigger on the monitor act on
    the alert itself (they poll the store's alerts), so a loop in another process sees it too.
    """
    from loopml.client.context import current_actor, get_client

    del result
    client = get_client()
    try:
        client.store.log_audit_event(
            alert.project_id,
            actor=current_actor(),
            action="loop.requested",
            object_type="loop_request",
            object_name=alert.monitor,
            reason=f"alert {alert.rule}: {alert.message}"[:2000],
            details={"alert_id": alert.id, "rule": alert.rule, "monitor": alert.monitor},
        )
    except InvalidArgument:
        pass  # a message the trail refuses must not stop the wake-up
    wake()
    return "retrain requested"


register_action("retrain", retrain_action, replace=True)
