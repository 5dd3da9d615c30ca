"""Input checks of the monitoring half of the store, and the errors it raises.

The ``check_*`` functions raise :class:`~loopml.errors.InvalidArgument` with a message that
names the bad value and says what a good one looks like;
:class:`~loopml.store.monitors.MonitorStore` calls them before touching storage, so every
backend refuses the same inputs with the same words. The functions at the bottom decide what a
repeated or changing write means (:func:`alert_updated`, :func:`check_same_labels`) and build
the errors every backend raises for a taken name or id, a stale revision or a second firing
alert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields, replace

from loopml.entities import (
    Alert,
    AlertDelivery,
    AlertState,
    LabelSegment,
    MonitorResult,
    now_ms,
)
from loopml.errors import AlreadyExists, Conflict, InvalidArgument
from loopml.store import validation
from loopml.store.deployment_checks import check_deployment_name
from loopml.store.registry import MAX_DESCRIPTION_LENGTH, _check_text

__all__ = [
    "SEVERITIES",
    "alert_exists",
    "alert_updated",
    "check_alert",
    "check_bool",
    "check_delivery",
    "check_label_deployment",
    "check_label_segment",
    "check_metrics",
    "check_monitor_name",
    "check_result",
    "check_same_labels",
    "check_state",
    "delivery_exists",
    "firing_already",
    "monitor_exists",
    "monitor_revision_moved",
]

#: The severities of an alert, mildest first.
SEVERITIES = ("info", "warning", "critical")
MAX_STATUS_TEXT_LENGTH = 4_096
MAX_URI_LENGTH = 4_096
_WORD_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def check_monitor_name(value: object) -> str:
    """A monitor name: the rules of a deployment name (a display name without ``/``, ``@`` or
    surrounding spaces), e.g. ``churn-drift``."""
    name = validation.check_name(value, "monitor name")
    if "/" in name or "@" in name or name != name.strip():
        raise InvalidArgument(
            f"monitor name {name!r:.80} cannot contain '/' or '@' or start or end with a space; "
            "use e.g. 'churn-drift'"
        )
    return name


def check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{what} must be True or False, got {type(value).__name__}")
    return value


def _check_word(value: object, what: str, example: str) -> str:
    """A short lowercase word: ``[a-z][a-z0-9_-]{0,31}``."""
    if not isinstance(value, str) or not _WORD_RE.fullmatch(value):
        raise InvalidArgument(
            f"{what} {value!r:.60} is not valid: use 1 to 32 lowercase letters, digits, '_' "
            f"and '-', starting with a letter (e.g. {example!r})"
        )
    return value


def _check_time(value: object, what: str) -> int:
    return validation.check_int(value, what, minimum=0)


def check_state(value: object) -> AlertState:
    if isinstance(value, str) and value in AlertState._value2member_map_:
        return AlertState(value)
    allowed = ", ".join(s.value for s in AlertState)
    raise InvalidArgument(f"alert state {value!r:.40} is not valid; use {allowed}")


def _check_number(value: object, what: str) -> float | None:
    """None, or a finite real number."""
    if value is None:
        return None
    number = validation.check_metric_value(value, what)
    if not math.isfinite(number):
        raise InvalidArgument(f"{what} is {number}; give a finite number or None")
    return number


def check_metrics(value: object) -> dict[str, float]:
    """Metrics: a dict of names to real numbers, NaN allowed (a metric that could not be
    computed), +/-inf refused."""
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"metrics must be a dict of names to numbers, got {type(value).__name__}"
        )
    out: dict[str, float] = {}
    for key, item in value.items():
        name = validation.check_name(key, "metric name")
        number = validation.check_metric_value(item, name)
        if math.isinf(number):
            raise InvalidArgument(
                f"metric {name!r} is {number}; a monitor metric is finite, or NaN when it "
                "could not be computed"
            )
        out[name] = number
    return out


def check_result(result: object) -> MonitorResult:
    """A :class:`~loopml.entities.MonitorResult` as the store keeps it: checked fields, a copy
    of metrics (as floats) and details, ``created_at`` 0 made now."""
    if not isinstance(result, MonitorResult):
        raise InvalidArgument(f"expected a MonitorResult, got {type(result).__name__}")
    r = result
    start = _check_time(r.window_start, "window_start")
    end = _check_time(r.window_end, "window_end")
    if end <= start:
        raise InvalidArgument(
            f"window_end {end} is not after window_start {start}; a window is [start, end) in "
            "ms since the epoch"
        )
    return replace(
        r,
        id=validation.check_id(r.id, "monitor result id"),
        project_id=validation.check_name(r.project_id, "project id"),
        monitor=check_monitor_name(r.monitor),
        window_start=start,
        window_end=end,
        metrics=check_metrics(r.metrics),
        details=validation.check_json_dict(r.details, "result details"),
        status=_check_word(r.status, "result status", "ok"),
        created_at=_check_time(r.created_at, "result created_at") or now_ms(),
    )


def check_alert(alert: object) -> Alert:
    """An :class:`~loopml.entities.Alert` with checked fields and a copy of its details."""
    if not isinstance(alert, Alert):
        raise InvalidArgument(f"expected an Alert, got {type(alert).__name__}")
    a = alert
    if a.severity not in SEVERITIES:
        raise InvalidArgument(
            f"alert severity {a.severity!r:.40} is not valid; use {', '.join(SEVERITIES)}"
        )
    start, end = (
        _check_time(a.window_start, "window_start"),
        _check_time(a.window_end, "window_end"),
    )
    if end < start:
        raise InvalidArgument(f"window_end {end} is before window_start {start}")
    return replace(
        a,
        id=validation.check_id(a.id, "alert id"),
        project_id=validation.check_name(a.project_id, "project id"),
        monitor=check_monitor_name(a.monitor),
        rule=validation.check_name(a.rule, "alert rule"),
        state=check_state(a.state),
        message=_check_text(a.message, "alert message", MAX_DESCRIPTION_LENGTH),
        value=_check_number(a.value, "alert value"),
        threshold=_check_number(a.threshold, "alert threshold"),
        window_start=start,
        window_end=end,
        started_at=_check_time(a.started_at, "started_at"),
        last_seen_at=_check_time(a.last_seen_at, "last_seen_at"),
        resolved_at=None if a.resolved_at is None else _check_time(a.resolved_at, "resolved_at"),
        notified_at=None if a.notified_at is None else _check_time(a.notified_at, "notified_at"),
        occurrences=validation.check_int(a.occurrences, "occurrences", minimum=1),
        details=validation.check_json_dict(a.details, "alert details"),
    )


def check_delivery(delivery: object) -> AlertDelivery:
    """An :class:`~loopml.entities.AlertDelivery` with checked fields, ``created_at`` 0 made
    now."""
    if not isinstance(delivery, AlertDelivery):
        raise InvalidArgument(f"expected an AlertDelivery, got {type(delivery).__name__}")
    d = delivery
    return replace(
        d,
        id=validation.check_id(d.id, "delivery id"),
        project_id=validation.check_name(d.project_id, "project id"),
        alert_id=validation.check_id(d.alert_id, "alert id"),
        notifier=validation.check_name(d.notifier, "notifier name"),
        kind=_check_word(d.kind, "notifier kind", "webhook"),
        event=_check_word(d.event, "delivery event", "firing"),
        attempt=validation.check_int(d.attempt, "attempt", minimum=1),
        ok=check_bool(d.ok, "ok"),
        status=_check_text(d.status, "delivery status", MAX_STATUS_TEXT_LENGTH),
        created_at=_check_time(d.created_at, "delivery created_at") or now_ms(),
    )


def check_label_deployment(value: object) -> str:
    return "" if value == "" else check_deployment_name(value)


def check_label_segment(segment: object) -> LabelSegment:
    """A :class:`~loopml.entities.LabelSegment` with checked fields, ``created_at`` 0 made
    now."""
    if not isinstance(segment, LabelSegment):
        raise InvalidArgument(f"expected a LabelSegment, got {type(segment).__name__}")
    s = segment
    if s.digest != "":
        validation.check_sha256(s.digest, "label segment digest")
    return replace(
        s,
        id=validation.check_id(s.id, "label segment id"),
        project_id=validation.check_name(s.project_id, "project id"),
        deployment=check_label_deployment(s.deployment),
        rows=validation.check_int(s.rows, "label segment rows", minimum=0),
        uri=_check_text(
            s.uri, "label segment uri", MAX_URI_LENGTH, allow_empty=False, one_line=True
        ),
        size_bytes=validation.check_int(s.size_bytes, "label segment size_bytes", minimum=0),
        created_at=_check_time(s.created_at, "label segment created_at") or now_ms(),
    )


# --- what a write means, and its errors ------------------------------------------------------


def monitor_exists(name: str) -> AlreadyExists:
    """The error for creating a monitor under a name that is taken."""
    return AlreadyExists(
        f"monitor {name!r} already exists in this project; update it, or pick another name"
    )


def monitor_revision_moved(name: str, current: int, expected: int) -> Conflict:
    """The error for a compare-and-set of a monitor that changed meanwhile."""
    return Conflict(
        f"monitor {name!r} is at revision {current}, not {expected} as expected: it changed "
        "meanwhile; read it again (get_monitor) and retry"
    )


def firing_already(alert: Alert) -> Conflict:
    """The error for opening a second firing alert of one rule."""
    return Conflict(
        f"rule {alert.rule!r} of monitor {alert.monitor!r} has a firing alert already; update "
        "that one (list_alerts(monitor=..., rule=..., state='firing')) or resolve it first"
    )


def alert_exists(alert_id: str) -> AlreadyExists:
    return AlreadyExists(f"alert {alert_id!r} already exists; give a new alert a new id")


def delivery_exists(delivery_id: str) -> AlreadyExists:
    return AlreadyExists(
        f"alert delivery {delivery_id!r} already exists; give each attempt a new id"
    )


def alert_updated(current: Alert, new: Alert) -> Alert:
    """The stored alert after an update to ``new``: a resolved alert does not fire again, and
    what identifies an alert (monitor, rule, ``started_at``) does not change."""
    if current.state is AlertState.RESOLVED and new.state is AlertState.FIRING:
        raise InvalidArgument(
            f"alert {current.id!r} is resolved and cannot fire again; open a new alert for the "
            "rule instead"
        )
    fixed = ("monitor", "rule", "started_at")
    moved = [k for k in fixed if getattr(current, k) != getattr(new, k)]
    if moved:
        raise InvalidArgument(
            f"the {', '.join(moved)} of alert {current.id!r} cannot change (stored: "
            f"{', '.join(f'{k}={getattr(current, k)!r}' for k in moved)}); update a copy of "
            "the stored alert (dataclasses.replace)"
        )
    return new


def check_same_labels(stored: LabelSegment, new: LabelSegment) -> LabelSegment:
    """A repeated write of a label segment id: the stored segment when the content
    (``created_at`` aside) is the same, Conflict when it is not."""
    differ = [
        f.name
        for f in fields(stored)
        if f.name != "created_at" and getattr(stored, f.name) != getattr(new, f.name)
    ]
    if differ:
        raise Conflict(
            f"label segment {stored.id!r} is already stored with another "
            f"{', '.join(differ)}; ids are write-once: give new content a new id"
        )
    return stored
