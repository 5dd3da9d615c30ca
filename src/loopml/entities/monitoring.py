"""Monitoring: monitors, their results per window, alerts and their deliveries, and the
index of ground-truth label segments."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml.entities._common import _EMPTY


@dataclass(frozen=True, slots=True)
class Monitor:
    """What to watch and how: a named monitor of a project.

    ``spec`` is the monitor's definition in its JSON form (see
    :class:`loopml.monitoring.MonitorSpec`: the deployment or dataset it watches, the reference,
    the windows, the checks and thresholds, the alert rules and notifiers); the store keeps it
    as given, fresh on every read: treat it as read-only. ``revision`` grows by one with every
    update; pass it back as ``expected_revision`` to update only if nobody changed it meanwhile.
    """

    project_id: str
    name: str
    spec: Mapping[str, Any]
    description: str = ""
    enabled: bool = True
    revision: int = 1
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""
    updated_by: str = ""


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """What one evaluation of a monitor found in one window: a point of its time series.

    ``metrics`` holds the numbers alert rules and charts use, by name (``rows``,
    ``drift_share``, ``drift.<column>``, ``prediction_drift``, ``accuracy``,
    ``latency_p99_ms``, ``null_share.<column>``, ...); ``details`` the full result (per-column
    tests, quality findings, notes), JSON-ready. Windows are ``[window_start, window_end)`` in
    ms. A monitor has one result per window: storing another for the same window replaces it
    (labels that arrive late update the performance of windows already evaluated).
    """

    id: str
    project_id: str
    monitor: str
    window_start: int
    window_end: int
    metrics: Mapping[str, float]
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    status: str = "ok"
    created_at: int = 0


class AlertState(enum.StrEnum):
    """An alert is ``firing`` while its rule's condition holds, then ``resolved``."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One occurrence of an alert rule of a monitor, from the window it fired in until the
    condition cleared. At most one alert per (monitor, rule) is ``firing`` at a time: later
    windows that still breach update it (``occurrences``, ``value``, ``last_seen_at``) rather
    than open another (deduplication).

    ``severity`` is ``info``, ``warning`` or ``critical``; ``value`` and ``threshold`` are the
    rule's metric and bound in the window that last breached; ``notified_at`` is when its last
    notification went out (None: never), which the rule's cooldown counts from.
    """

    id: str
    project_id: str
    monitor: str
    rule: str
    severity: str
    state: AlertState
    message: str
    value: float | None = None
    threshold: float | None = None
    window_start: int = 0
    window_end: int = 0
    started_at: int = 0
    last_seen_at: int = 0
    resolved_at: int | None = None
    notified_at: int | None = None
    occurrences: int = 1
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class AlertDelivery:
    """One attempt to deliver an alert's notification: which notifier (its name and kind:
    ``webhook``, ``slack``, ``email``, ``log``), for which event (``firing`` or
    ``resolved``), the attempt number, whether it went through, and what the other side said
    (``HTTP 200``, an SMTP reply, the error)."""

    id: str
    project_id: str
    alert_id: str
    notifier: str
    kind: str
    event: str
    attempt: int
    ok: bool
    status: str = ""
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class LabelSegment:
    """One Parquet file of ground truth (``prediction_id``, ``label``, ``time``) in the artifact
    store, as :func:`loopml.log_ground_truth` wrote it, indexed so that monitors find the
    labels that arrived since a time without listing the artifact store. ``deployment`` is the
    deployment the labels belong to ("" when not given: they join by prediction id alone).
    Segments are immutable."""

    id: str
    project_id: str
    deployment: str
    rows: int
    uri: str
    digest: str = ""
    size_bytes: int = 0
    created_at: int = 0
