"""Alert rules over a monitor's results: when an alert fires, is deduplicated, notifies again,
and resolves.

A rule, in a monitor's YAML::

    alerts:
      - name: drift-high
        metric: drift_share          # or a glob: "drift.*" breaches when any column does
        op: ">"
        threshold: 0.3
        for: 2                       # consecutive breaching windows before it fires
        severity: critical
        cooldown: 1h                 # between reminders while it keeps firing
        resolve_after: 2             # consecutive clean windows before it resolves
        notify: [oncall]             # default: every notifier of the monitor
        actions: [retrain]

:func:`evaluate_rules` looks at a monitor's results in window order and, per rule:

* **fires** when the last ``for`` windows with evidence all breach and no alert of the rule is
  firing: opens an :class:`~loopml.entities.Alert`, notifies, runs the rule's actions;
* **updates** a firing alert when newer windows breach (``occurrences``, ``value``, window),
  notifying again only once ``cooldown`` has passed since the last notification;
* **resolves** a firing alert when the last ``resolve_after`` windows with evidence after it are
  clean, and notifies ``resolved``.

A NaN or missing metric is no evidence either way: such a window is skipped, neither breaching
nor clean (accuracy before labels arrive). A glob breaches when any matching metric with a value
breaches, and is clean when none does. Evaluation is idempotent (windows already counted are
not counted again) and safe to run from several processes: the store opens at most one firing
alert per rule (the loser of a race leaves notifying to the winner), and a reminder is claimed
in the store before it is sent. The store has no compare-and-set for alerts, so two evaluators
racing on a reminder or a resolution may both send it: delivery is at least once, and receivers
deduplicate on the alert id and event. A first notification that nobody received is tried
again at the next evaluation (the alert's ``details`` say ``undelivered`` until then).
"""

from __future__ import annotations

import fnmatch
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from loopml.entities import Alert, AlertDelivery, AlertState, MonitorResult, now_ms
from loopml.errors import Conflict
from loopml.monitoring.actions import run_actions
from loopml.monitoring.notifiers import (
    DeliveryLog,
    Notifier,
    NotifierSpec,
    build_notifier,
    deliver,
)

__all__ = [
    "AlertEvent",
    "AlertRule",
    "AlertStore",
    "Verdict",
    "evaluate_rules",
    "parse_duration",
]

logger = logging.getLogger("loopml.alerts")

Op = Literal[">", ">=", "<", "<=", "==", "!="]
_OPS = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
    "!=": lambda v, t: v != t,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_IN_FLIGHT = 60.0  # seconds a first notification may take before another evaluator retries it
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: float | int | str) -> float:
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"1h"``, ``"1.5d"`` or ``"500ms"``.

    Raises:
        ValueError: not a non-negative duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"{value!r} is not a duration; write seconds (90) or a number with a unit: "
                "'90s', '30m', '1h', '1d'"
            )
        seconds = float(match[1]) * _UNITS[match[2]]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a non-negative duration")
    return seconds


class AlertRule(BaseModel):
    """When a monitor's metric means trouble, and who to tell.

    Attributes:
        name: the rule's name (a slug), unique in its monitor.
        metric: a metric of the monitor's results (``drift_share``, ``accuracy``,
            ``drift.age``), or a glob (``drift.*``) that breaches when any match does.
        op: how the metric compares with ``threshold`` to breach.
        threshold: the bound.
        for_windows: consecutive breaching windows before it fires (``for`` in YAML).
        severity: ``info``, ``warning`` or ``critical``.
        cooldown: seconds between reminders of an alert still firing (``"30m"``, ``"1h"``).
        resolve_after: consecutive clean windows before a firing alert resolves.
        notify: names of the monitor's notifiers to tell (None: all of them; []: none).
        actions: names of registered action hooks to run when it fires (``retrain``).
        description: what it means and what to do, added to notifications.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    name: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")
    metric: str = Field(min_length=1, max_length=256)
    op: Op
    threshold: float = Field(allow_inf_nan=False)
    for_windows: int = Field(default=1, ge=1, le=10_000, alias="for")
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: float = Field(default=3600.0, ge=0)
    resolve_after: int = Field(default=1, ge=1, le=10_000)
    notify: list[str] | None = None
    actions: list[str] = Field(default_factory=list)
    description: str = Field(default="", max_length=4000)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value != value.strip() or any(ord(c) < 32 for c in value):
            raise ValueError(f"{value!r} has surrounding spaces or control characters")
        return value

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown(cls, value: Any) -> float:
        return parse_duration(value)

    @property
    def is_glob(self) -> bool:
        """Whether ``metric`` is a pattern (has ``*``, ``?`` or ``[``)."""
        return any(c in self.metric for c in "*?[")

    def check(self, metrics: Mapping[str, float]) -> Verdict:
        """The verdict on one window's metrics (see :class:`Verdict`)."""
        names = (
            sorted(n for n in metrics if fnmatch.fnmatchcase(n, self.metric))
            if self.is_glob
            else [self.metric]
        )
        values = [(n, float(metrics[n])) for n in names if n in metrics]
        values = [(n, v) for n, v in values if not math.isnan(v)]
        if not values:
            return Verdict(None, self.metric, math.nan)
        breaching = [(n, v) for n, v in values if _OPS[self.op](v, self.threshold)]
        pool = breaching or values
        # The worst is the farthest past (or nearest to) the bound in the breaching direction.
        if self.op in (">", ">="):
            name, value = max(pool, key=lambda nv: nv[1])
        elif self.op in ("<", "<="):
            name, value = min(pool, key=lambda nv: nv[1])
        else:
            name, value = pool[0]
        return Verdict(bool(breaching), name, value, tuple(n for n, _ in breaching))


class Verdict(NamedTuple):
    """A rule's verdict on one window.

    Attributes:
        breach: True (breaching), False (clean) or None (no evidence: missing or NaN).
        metric: the metric (for a glob: the worst match).
        value: its value (NaN without evidence).
        breaching: every metric that breaches (for a glob, possibly several).
    """

    breach: bool | None
    metric: str
    value: float
    breaching: tuple[str, ...] = ()


class AlertStore(DeliveryLog, Protocol):
    """The store methods alerting needs (a :class:`~loopml.Client` has them all)."""

    def open_alert(
        self,
        monitor: str,
        rule: str,
        *,
        severity: str,
        message: str,
        value: float | None = None,
        threshold: float | None = None,
        window_start: int = 0,
        window_end: int = 0,
        details: Mapping[str, Any] | None = None,
        project: str | None = None,
    ) -> Alert: ...

    def update_alert(self, alert: Alert) -> Alert: ...

    def get_alert(self, alert_id: str, *, project: str | None = None) -> Alert: ...

    def list_alerts(
        self,
        *,
        monitor: str | None = None,
        rule: str | None = None,
        state: AlertState | str | None = None,
        limit: int | None = None,
        project: str | None = None,
    ) -> list[Alert]: ...


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """What evaluation did to one rule's alert.

    Attributes:
        kind: ``fired`` (opened), ``updated`` (newer breaching windows, or a reminder), or
            ``resolved``.
        alert: the alert as stored afterwards.
        rule: the rule.
        result: the window that decided it.
        notified: whether notifications were sent (a first one, a reminder, a resolution).
        deliveries: every delivery attempt and action run, as recorded.
    """

    kind: Literal["fired", "updated", "resolved"]
    alert: Alert
    rule: AlertRule
    result: MonitorResult | None
    notified: bool = False
    deliveries: tuple[AlertDelivery, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        a = self.alert
        return {
            "kind": self.kind,
            "rule": a.rule,
            "alert_id": a.id,
            "state": str(a.state),
            "severity": a.severity,
            "message": a.message,
            "value": a.value if a.value is not None and math.isfinite(a.value) else None,
            "threshold": a.threshold,
            "window_start": a.window_start,
            "window_end": a.window_end,
            "occurrences": a.occurrences,
            "notified": self.notified,
            "deliveries": [
                {
                    "notifier": d.notifier,
                    "kind": d.kind,
                    "event": d.event,
                    "attempt": d.attempt,
                    "ok": d.ok,
                    "status": d.status,
                }
                for d in self.deliveries
            ],
        }


def evaluate_rules(
    store: AlertStore,
    monitor: str,
    rules: Sequence[AlertRule],
    notifiers: Sequence[NotifierSpec | Notifier],
    results: Sequence[MonitorResult],
    *,
    now: int | None = None,
    project: str | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    block_private: bool = False,
) -> list[AlertEvent]:
    """Apply a monitor's alert rules to its latest results: fire, update, notify, resolve.

    Pass at least the last ``max(for_windows, resolve_after)`` windows (more is harmless; NaN
    windows do not count). Firing alerts of rules no longer in ``rules`` are resolved.

    Args:
        store: the alert store (a :class:`~loopml.Client`).
        monitor: the monitor's name.
        rules: its alert rules.
        notifiers: its notifiers (specs, or notifiers already built).
        results: its results, in any order (sorted by window here).
        now: the current time in ms (default: the clock), for cooldowns and timestamps.
        project: the monitor's project (default: the store's).
        retries: delivery attempts per notifier (see :func:`deliver`).
        backoff: seconds before a notifier's second attempt.
        block_private: refuse webhooks to loopback, private and link-local addresses (see
            :func:`~loopml.monitoring.notifiers.build_notifier`).

    Returns:
        One event per alert that changed, in rule order; rules with nothing new have none.
    """
    now = now_ms() if now is None else now
    built = [
        n if isinstance(n, Notifier) else build_notifier(n, block_private=block_private)
        for n in notifiers
    ]
    ordered = sorted(results, key=lambda r: (r.window_start, r.window_end))
    firing: dict[str, Alert] = {}
    for alert in store.list_alerts(monitor=monitor, state=AlertState.FIRING, project=project):
        firing.setdefault(alert.rule, alert)  # newest first; there should be one per rule
    ctx = _Context(store, monitor, built, now, project, retries, backoff)
    events: list[AlertEvent] = []
    for rule in rules:
        event = ctx.evaluate(rule, ordered, firing.pop(rule.name, None))
        if event is not None:
            events.append(event)
    for orphan in firing.values():
        events.append(ctx.retire(orphan))
    return events


@dataclass(frozen=True)
class _Context:
    store: AlertStore
    monitor: str
    notifiers: Sequence[Notifier]
    now: int
    project: str | None
    retries: int
    backoff: float

    def evaluate(
        self, rule: AlertRule, results: Sequence[MonitorResult], alert: Alert | None
    ) -> AlertEvent | None:
        evidence = [(r, v) for r in results if (v := rule.check(r.metrics)).breach is not None]
        if alert is None:
            tail = evidence[-rule.for_windows :]
            if not tail or len(tail) < rule.for_windows or not all(v.breach for _, v in tail):
                return None
            return self._fire(rule, *tail[-1])
        newer = [(r, v) for r, v in evidence if r.window_end > alert.window_end]
        clean = newer[-rule.resolve_after :]
        if len(clean) == rule.resolve_after and not any(v.breach for _, v in clean):
            return self._resolve(rule, alert, *clean[-1])
        breaches = [(r, v) for r, v in newer if v.breach]
        if breaches:
            seen, verdict = breaches[-1]
            alert = self.store.update_alert(
                replace(
                    alert,
                    occurrences=alert.occurrences + len(breaches),
                    value=verdict.value,
                    threshold=rule.threshold,
                    severity=rule.severity,
                    window_start=seen.window_start,
                    window_end=seen.window_end,
                    last_seen_at=self.now,
                    message=self._message(rule, seen, verdict),
                    details={**alert.details, **self._details(rule, verdict)},
                )
            )
        last = evidence[-1][0] if evidence else (results[-1] if results else None)
        if evidence and not evidence[-1][1].breach:
            # Clean, but not for long enough yet: no reminder.
            return AlertEvent("updated", alert, rule, last) if breaches else None
        if not self._due(rule, alert):
            return AlertEvent("updated", alert, rule, last) if breaches else None
        # Claim the reminder before sending it, so that a racing evaluator sees it is done.
        previous = alert.notified_at
        claimed = self.store.update_alert(replace(alert, notified_at=self.now))
        if self.store.get_alert(alert.id, project=self.project).notified_at != self.now:
            return AlertEvent("updated", claimed, rule, last) if breaches else None
        sent = self._notify(rule, claimed, "firing", repeat=previous is not None)
        claimed = self._delivered(claimed, sent, previous)
        return AlertEvent("updated", claimed, rule, last, bool(sent), tuple(sent))

    def _due(self, rule: AlertRule, alert: Alert) -> bool:
        """Whether a firing alert should be notified (again) now."""
        if alert.notified_at is not None:
            return self.now - alert.notified_at >= rule.cooldown * 1000
        if alert.details.get("undelivered"):
            return True  # its first notification failed: try again
        # Its opener is sending the first notification, or died before it could.
        opened = int(alert.details.get("opened_at", 0))
        return self.now - opened >= max(rule.cooldown, _IN_FLIGHT) * 1000

    def _delivered(
        self, alert: Alert, sent: Sequence[AlertDelivery], previous: int | None
    ) -> Alert:
        """Record the outcome of a notification: ``notified_at`` when anyone heard it (or
        nobody was to be told), else the earlier time, and ``undelivered`` while never heard."""
        details = {k: v for k, v in alert.details.items() if k != "undelivered"}
        if sent and not any(d.ok for d in sent):
            if previous is None:
                details["undelivered"] = True
            return self.store.update_alert(replace(alert, notified_at=previous, details=details))
        return self.store.update_alert(replace(alert, notified_at=self.now, details=details))

    @staticmethod
    def _details(rule: AlertRule, verdict: Verdict) -> dict[str, Any]:
        details: dict[str, Any] = {"metric": verdict.metric, "op": rule.op}
        if rule.is_glob:
            details["pattern"] = rule.metric
            details["breaching"] = list(verdict.breaching)
        return details

    def _fire(self, rule: AlertRule, result: MonitorResult, verdict: Verdict) -> AlertEvent | None:
        latest = self.store.list_alerts(
            monitor=self.monitor, rule=rule.name, limit=1, project=self.project
        )
        if latest and latest[0].window_end >= result.window_end:
            return None  # these windows were already alerted on (and resolved since)
        try:
            alert = self.store.open_alert(
                self.monitor,
                rule.name,
                severity=rule.severity,
                message=self._message(rule, result, verdict),
                value=verdict.value,
                threshold=rule.threshold,
                window_start=result.window_start,
                window_end=result.window_end,
                details={**self._details(rule, verdict), "opened_at": self.now},
                project=self.project,
            )
        except Conflict:
            return None  # another evaluator opened it first, and notifies
        sent = self._notify(rule, alert, "firing")
        alert = self._delivered(alert, sent, None)
        ran = run_actions(self.store, alert, result, rule.actions, project=self.project)
        return AlertEvent("fired", alert, rule, result, bool(sent), (*sent, *ran))

    def _resolve(
        self, rule: AlertRule, alert: Alert, result: MonitorResult, verdict: Verdict
    ) -> AlertEvent | None:
        current = self.store.get_alert(alert.id, project=self.project)
        if current.state != AlertState.FIRING:
            return None  # a racing evaluator resolved it
        n = rule.resolve_after
        windows = f"{n} window" + ("s" if n != 1 else "")
        resolution = (
            f"{verdict.metric} = {_fmt(verdict.value)}, not {rule.op} {_fmt(rule.threshold)}, "
            f"for {windows} ({_window(result)})"
        )
        return self._close(rule, current, result, resolution)

    def retire(self, alert: Alert) -> AlertEvent:
        """Resolve a firing alert whose rule was removed from the monitor."""
        rule = AlertRule.model_construct(name=alert.rule, metric="", op=">", threshold=0.0)
        return self._close(rule, alert, None, "its rule was removed from the monitor")

    def _close(
        self, rule: AlertRule, alert: Alert, result: MonitorResult | None, resolution: str
    ) -> AlertEvent:
        resolved = self.store.update_alert(
            replace(
                alert,
                state=AlertState.RESOLVED,
                resolved_at=self.now,
                details={**alert.details, "resolution": resolution},
            )
        )
        deliveries = self._notify(rule, resolved, "resolved")
        return AlertEvent("resolved", resolved, rule, result, bool(deliveries), tuple(deliveries))

    def _targets(self, rule: AlertRule) -> list[Notifier]:
        if rule.notify is None:
            return list(self.notifiers)
        by_name = {n.name: n for n in self.notifiers}
        for name in rule.notify:
            if name not in by_name:
                logger.warning(
                    "alert rule %r of monitor %r notifies %r, which the monitor does not define",
                    rule.name,
                    self.monitor,
                    name,
                )
        return [by_name[name] for name in rule.notify if name in by_name]

    def _notify(
        self,
        rule: AlertRule,
        alert: Alert,
        event: Literal["firing", "resolved"],
        *,
        repeat: bool = False,
    ) -> list[AlertDelivery]:
        return deliver(
            self.store,
            alert,
            event,
            self._targets(rule),
            repeat=repeat,
            description=rule.description,
            retries=self.retries,
            backoff=self.backoff,
            project=self.project,
        )

    def _message(self, rule: AlertRule, result: MonitorResult, verdict: Verdict) -> str:
        n = rule.for_windows
        more = len(verdict.breaching) - 1
        also = f" and {more} more of {rule.metric}" if rule.is_glob and more > 0 else ""
        return (
            f"{verdict.metric} = {_fmt(verdict.value)} {rule.op} {_fmt(rule.threshold)}{also} "
            f"for {n} window{'s' if n != 1 else ''} (monitor {self.monitor}, {_window(result)})"
        )


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _window(result: MonitorResult) -> str:
    """``window 2026-12-02 10:00-11:00 UTC`` (the end's date only when it is another day)."""
    start = datetime.fromtimestamp(result.window_start / 1000, UTC)
    end = datetime.fromtimestamp(result.window_end / 1000, UTC)
    if end.date() == start.date():
        tail = f"{end:%H:%M}"
    elif end - start <= timedelta(days=1) and end.time() == time.min:
        tail = "24:00"
    else:
        tail = f"{end:%Y-%m-%d %H:%M}"
    return f"window {start:%Y-%m-%d %H:%M}-{tail} UTC"
