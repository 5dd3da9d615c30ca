"""Monitors, their results, alerts, alert deliveries and label segments in the in-memory store:
the :class:`~loopml.store.monitors.MonitorStore` half of
:class:`~loopml.store.memory.InMemoryStore`, as a mixin.

Everything lives in dicts behind the store's one lock, like the rest of the in-memory store.
Entities hold dicts (a spec, metrics, details): they go out as deep copies, so a caller that
changes one does not change the store.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from loopml.entities import (
    Alert,
    AlertDelivery,
    AlertState,
    AuditEvent,
    LabelSegment,
    Monitor,
    MonitorResult,
    Project,
    now_ms,
)
from loopml.errors import AlertNotFound, MonitorNotFound, ProjectNotFound
from loopml.store import monitor_checks as checks
from loopml.store import monitors as mon

__all__ = ["InMemoryMonitorStore"]


def _monitor_copy(m: Monitor) -> Monitor:
    return replace(m, spec=copy.deepcopy(dict(m.spec)))


def _result_copy(r: MonitorResult) -> MonitorResult:
    return replace(r, metrics=dict(r.metrics), details=copy.deepcopy(dict(r.details)))


def _alert_copy(a: Alert) -> Alert:
    return replace(a, details=copy.deepcopy(dict(a.details)))


class InMemoryMonitorStore:
    """The monitoring methods of :class:`~loopml.store.memory.InMemoryStore` (mixed into it; it
    calls :meth:`_init_monitors` from its constructor)."""

    if TYPE_CHECKING:
        _lock: threading.RLock
        _projects: dict[str, Project]
        _audit: list[AuditEvent]

    def _init_monitors(self) -> None:
        self._monitors: dict[tuple[str, str], Monitor] = {}  # by (project id, name)
        # by (project id, monitor name), then by (window_start, window_end)
        self._results: dict[tuple[str, str], dict[tuple[int, int], MonitorResult]] = {}
        self._alerts: dict[str, Alert] = {}  # by id
        self._deliveries: list[AlertDelivery] = []  # in the order written
        self._label_segments: dict[str, LabelSegment] = {}  # by id

    # --- helpers -------------------------------------------------------------------------------

    def _need_monitor_project(self, project_id: str) -> None:
        if project_id not in self._projects:
            raise ProjectNotFound(project_id)

    def _stored_monitor(self, project_id: str, name: str) -> Monitor:
        found = self._monitors.get((project_id, name))
        if found is None:
            self._need_monitor_project(project_id)
            raise MonitorNotFound(name)
        return found

    def _stored_alert(self, project_id: str, alert_id: str) -> Alert:
        found = self._alerts.get(alert_id)
        if found is None or found.project_id != project_id:
            self._need_monitor_project(project_id)
            raise AlertNotFound(alert_id)
        return found

    # --- monitors ------------------------------------------------------------------------------

    def _create_monitor(self, draft: Monitor) -> Monitor:
        with self._lock:
            self._need_monitor_project(draft.project_id)
            key = (draft.project_id, draft.name)
            if key in self._monitors:
                raise checks.monitor_exists(draft.name)
            now = now_ms()
            created = replace(draft, revision=1, created_at=now, updated_at=now)
            self._monitors[key] = created
            self._results[key] = {}
            self._audit.append(mon.monitor_created(created))
            return _monitor_copy(created)

    def _get_monitor(self, project_id: str, name: str) -> Monitor:
        with self._lock:
            return _monitor_copy(self._stored_monitor(project_id, name))

    def _list_monitors(self, project_id: str) -> list[Monitor]:
        with self._lock:
            self._need_monitor_project(project_id)
            found = [
                _monitor_copy(m) for (pid, _), m in self._monitors.items() if pid == project_id
            ]
        return sorted(found, key=lambda m: m.name)

    def _update_monitor(
        self,
        project_id: str,
        name: str,
        changes: dict[str, Any],
        actor: str,
        expected_revision: int | None,
    ) -> Monitor:
        with self._lock:
            current = self._stored_monitor(project_id, name)
            if expected_revision is not None and current.revision != expected_revision:
                raise checks.monitor_revision_moved(name, current.revision, expected_revision)
            new, event = mon.apply_monitor_update(current, changes, actor)
            if event is not None:
                self._monitors[project_id, name] = new
                self._audit.append(event)
            return _monitor_copy(new)

    def _delete_monitor(self, project_id: str, name: str, actor: str, reason: str) -> None:
        with self._lock:
            current = self._stored_monitor(project_id, name)
            del self._monitors[project_id, name]
            self._results.pop((project_id, name), None)
            self._audit.append(mon.monitor_deleted(current, actor, reason))

    # --- results -------------------------------------------------------------------------------

    def _add_monitor_result(self, result: MonitorResult) -> MonitorResult:
        with self._lock:
            self._stored_monitor(result.project_id, result.monitor)
            windows = self._results[result.project_id, result.monitor]
            windows[result.window_start, result.window_end] = result
            return _result_copy(result)

    def _list_monitor_results(
        self,
        project_id: str,
        monitor: str,
        start: int | None,
        end: int | None,
        limit: int | None,
    ) -> list[MonitorResult]:
        with self._lock:
            self._stored_monitor(project_id, monitor)
            found = [
                _result_copy(r)
                for (ws, we), r in sorted(self._results[project_id, monitor].items())
                if (start is None or ws >= start) and (end is None or we <= end)
            ]
        return found if limit is None else found[-limit:]

    # --- alerts --------------------------------------------------------------------------------

    def _add_alert(self, alert: Alert) -> Alert:
        with self._lock:
            self._need_monitor_project(alert.project_id)
            if alert.id in self._alerts:
                raise checks.alert_exists(alert.id)
            if alert.state is AlertState.FIRING and any(
                a.state is AlertState.FIRING
                and (a.project_id, a.monitor, a.rule)
                == (alert.project_id, alert.monitor, alert.rule)
                for a in self._alerts.values()
            ):
                raise checks.firing_already(alert)
            self._alerts[alert.id] = alert
            return _alert_copy(alert)

    def _update_alert(self, alert: Alert) -> Alert:
        with self._lock:
            current = self._stored_alert(alert.project_id, alert.id)
            new = checks.alert_updated(current, alert)
            self._alerts[alert.id] = new
            return _alert_copy(new)

    def _get_alert(self, project_id: str, alert_id: str) -> Alert:
        with self._lock:
            return _alert_copy(self._stored_alert(project_id, alert_id))

    def _list_alerts(
        self,
        project_id: str,
        monitor: str | None,
        rule: str | None,
        state: AlertState | None,
        limit: int | None,
    ) -> list[Alert]:
        with self._lock:
            self._need_monitor_project(project_id)
            found = [
                _alert_copy(a)
                for a in self._alerts.values()
                if a.project_id == project_id
                and (monitor is None or a.monitor == monitor)
                and (rule is None or a.rule == rule)
                and (state is None or a.state is state)
            ]
        found.sort(key=lambda a: a.id)
        found.sort(key=lambda a: a.started_at, reverse=True)  # stable: then by id
        return found if limit is None else found[:limit]

    # --- deliveries ----------------------------------------------------------------------------

    def _add_alert_delivery(self, delivery: AlertDelivery) -> AlertDelivery:
        with self._lock:
            self._stored_alert(delivery.project_id, delivery.alert_id)
            if any(d.id == delivery.id for d in self._deliveries):
                raise checks.delivery_exists(delivery.id)
            self._deliveries.append(delivery)
            return delivery

    def _list_alert_deliveries(
        self, project_id: str, alert_id: str | None, limit: int | None
    ) -> list[AlertDelivery]:
        with self._lock:
            self._need_monitor_project(project_id)
            found = [
                d
                for d in self._deliveries
                if d.project_id == project_id and (alert_id is None or d.alert_id == alert_id)
            ]
        found.sort(key=lambda d: d.created_at)  # stable: then in the order written
        return found if limit is None else found[-limit:]

    # --- label segments ------------------------------------------------------------------------

    def _add_label_segment(self, segment: LabelSegment) -> LabelSegment:
        with self._lock:
            self._need_monitor_project(segment.project_id)
            stored = self._label_segments.setdefault(segment.id, segment)
            return stored if stored is segment else checks.check_same_labels(stored, segment)

    def _list_label_segments(
        self, project_id: str, deployment: str | None, since: int | None
    ) -> list[LabelSegment]:
        with self._lock:
            self._need_monitor_project(project_id)
            found = [
                s
                for s in self._label_segments.values()
                if s.project_id == project_id
                and (deployment is None or s.deployment == deployment)
                and (since is None or s.created_at >= since)
            ]
        return sorted(found, key=lambda s: (s.created_at, s.id))
