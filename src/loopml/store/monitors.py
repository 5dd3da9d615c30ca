"""The monitoring half of the metadata store contract: monitors, their results, alerts, alert
deliveries, and the index of ground-truth label segments.

:class:`MonitorStore` is an abstract mixin that :class:`~loopml.store.Store` inherits. It
follows the template of the rest of the contract: public methods validate their arguments
(with :mod:`loopml.store.monitor_checks`) and call protected ``_methods`` that each backend
implements and that may assume valid input. The helpers at the bottom
(:func:`monitor_created`, :func:`apply_monitor_update`, :func:`monitor_deleted`) build the
audit events and decide what an update means, so that every backend records the same facts in
the same shape.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from loopml.entities import (
    Alert,
    AlertDelivery,
    AlertState,
    AuditEvent,
    LabelSegment,
    Monitor,
    MonitorResult,
    now_ms,
)
from loopml.store import validation
from loopml.store.deployment_checks import check_range
from loopml.store.deployments import UNSET, _Unset
from loopml.store.monitor_checks import (
    check_alert,
    check_bool,
    check_delivery,
    check_label_deployment,
    check_label_segment,
    check_monitor_name,
    check_result,
    check_state,
)
from loopml.store.registry import MAX_DESCRIPTION_LENGTH, MAX_REASON_LENGTH, _check_text, new_event

__all__ = ["MonitorStore", "apply_monitor_update", "monitor_created", "monitor_deleted"]

_UPDATABLE = ("spec", "description", "enabled")


class MonitorStore(abc.ABC):
    """Monitors, monitor results, alerts, alert deliveries and label segments (mixed into
    :class:`~loopml.store.Store`).

    Contract, on top of the store-wide one (thread and process safety, immutable entities, one
    transaction per write, validation before storage):

    * **Monitors** are named within their project like deployments
      (:func:`~.monitor_checks.check_monitor_name`). The ``spec`` is a JSON-ready dict the
      store keeps as given without looking inside. ``revision`` starts at 1 and grows by one
      with every update that changes something; an update with ``expected_revision`` is a
      compare-and-set: of concurrent updates that expect one revision, exactly one succeeds.
    * **Audit.** Creating, changing and deleting a monitor writes an
      :class:`~loopml.entities.AuditEvent` (``monitor.create``, ``monitor.update``,
      ``monitor.delete``; object type ``monitor``) in the same transaction as the change. Its
      timestamp is never earlier than the monitor's last change. Results, alerts, deliveries
      and label segments are data, not changes: they are not audited.
    * **Results** belong to a monitor that exists when they are written, and go with it when it
      is deleted. A monitor has one result per window ``(window_start, window_end)``: writing
      another replaces it (the last write wins). Metrics are floats; NaN is kept (it reads back
      as NaN), +/-inf is refused.
    * **Alerts** name their monitor and rule without needing the monitor to exist, and outlive
      it (with their deliveries): they are history. At most one alert per (project, monitor,
      rule) is ``firing`` at a time, also under concurrent writers: adding a second raises
      :class:`~loopml.errors.Conflict`. An update replaces the fields that change over an
      alert's life (state, message, value, threshold, window, ``last_seen_at``,
      ``resolved_at``, ``notified_at``, ``occurrences``, details, severity); a resolved alert
      never fires again (open a new one).
    * **Label segments** are immutable and keyed by the caller's id, so a retried write is
      safe: adding an id again with the same content is a no-op (``created_at`` aside), with
      other content :class:`~loopml.errors.Conflict`. They go with their project.
    * ``created_at`` (and a monitor's ``updated_at``) of 0 means now: the store fills it in.
    * **Errors.** An unknown monitor raises :class:`~loopml.errors.MonitorNotFound`; an unknown
      alert :class:`~loopml.errors.AlertNotFound`; an unknown project
      :class:`~loopml.errors.ProjectNotFound`; a duplicate monitor name or object id
      :class:`~loopml.errors.AlreadyExists`; a stale ``expected_revision``, a second firing
      alert or a conflicting repeated segment id :class:`~loopml.errors.Conflict`; a bad
      argument :class:`~loopml.errors.InvalidArgument`.
    """

    # --- monitors ------------------------------------------------------------------------------

    def create_monitor(
        self,
        project_id: str,
        name: str,
        spec: Mapping[str, Any],
        *,
        description: str = "",
        enabled: bool = True,
        actor: str,
    ) -> Monitor:
        """Create a monitor at revision 1 (audited as ``monitor.create``, details: its spec,
        description, ``enabled`` and revision).

        Raises:
            AlreadyExists: the project has a monitor with this name.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name, spec (not a JSON-ready dict), description or actor.
        """
        validation.check_name(project_id, "project id")
        draft = Monitor(
            project_id=project_id,
            name=check_monitor_name(name),
            spec=validation.check_json_dict(spec, "monitor spec"),
            description=_check_text(description, "monitor description", MAX_DESCRIPTION_LENGTH),
            enabled=check_bool(enabled, "enabled"),
            created_by=validation.check_name(actor, "actor"),
            updated_by=actor,
        )
        return self._create_monitor(draft)

    def get_monitor(self, project_id: str, name: str) -> Monitor:
        """A monitor.

        Raises:
            MonitorNotFound: the project has no monitor with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        return self._get_monitor(project_id, check_monitor_name(name))

    def list_monitors(self, project_id: str) -> list[Monitor]:
        """The monitors of a project, by name (code point order).

        Raises:
            ProjectNotFound: the project does not exist.
        """
        return self._list_monitors(validation.check_name(project_id, "project id"))

    def update_monitor(
        self,
        project_id: str,
        name: str,
        *,
        spec: Mapping[str, Any] | _Unset = UNSET,
        description: str | _Unset = UNSET,
        enabled: bool | _Unset = UNSET,
        actor: str,
        expected_revision: int | None = None,
    ) -> Monitor:
        """Change the fields given (``spec`` is replaced whole); the others stay. When anything
        changes the revision grows by one and a ``monitor.update`` event records it (details:
        ``before`` and ``after`` of the fields that changed, and the new ``revision``).

        Raises:
            MonitorNotFound: the project has no monitor with this name.
            ProjectNotFound: the project does not exist.
            Conflict: the monitor is not at ``expected_revision``.
            InvalidArgument: a bad field or actor.
        """
        validation.check_name(project_id, "project id")
        check_monitor_name(name)
        changes: dict[str, Any] = {}
        if not isinstance(spec, _Unset):
            changes["spec"] = validation.check_json_dict(spec, "monitor spec")
        if not isinstance(description, _Unset):
            changes["description"] = _check_text(
                description, "monitor description", MAX_DESCRIPTION_LENGTH
            )
        if not isinstance(enabled, _Unset):
            changes["enabled"] = check_bool(enabled, "enabled")
        expected = (
            None
            if expected_revision is None
            else validation.check_int(expected_revision, "expected_revision", minimum=1)
        )
        return self._update_monitor(
            project_id, name, changes, validation.check_name(actor, "actor"), expected
        )

    def delete_monitor(self, project_id: str, name: str, *, actor: str, reason: str = "") -> None:
        """Delete a monitor with its results (audited as ``monitor.delete``, details: its last
        state); its alerts, their deliveries and its audit events stay. The name may then be
        used again, from revision 1.

        Raises:
            MonitorNotFound: the project has no monitor with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        self._delete_monitor(
            project_id,
            check_monitor_name(name),
            validation.check_name(actor, "actor"),
            _check_text(reason, "reason", MAX_REASON_LENGTH),
        )

    # --- results -------------------------------------------------------------------------------

    def add_monitor_result(self, result: MonitorResult) -> MonitorResult:
        """Store the result of one window of a monitor, replacing the one stored for the same
        window (``window_start``, ``window_end``) if any. ``created_at`` 0 means now.

        Returns:
            The result as stored.

        Raises:
            MonitorNotFound: the monitor does not exist.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field: ``window_end`` not after ``window_start``, a metric
                that is not a number (or is infinite), details that are not JSON-ready.
        """
        return self._add_monitor_result(check_result(result))

    def list_monitor_results(
        self,
        project_id: str,
        monitor: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
    ) -> list[MonitorResult]:
        """The results of a monitor whose window lies in ``[start, end]`` (``window_start >=
        start`` and ``window_end <= end``; None leaves a side open), by ``window_start`` (then
        ``window_end``); with ``limit``, the latest ``limit`` windows (still oldest first).

        Raises:
            MonitorNotFound: the monitor does not exist.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name, time or limit, or ``start`` after ``end``.
        """
        validation.check_name(project_id, "project id")
        lo, hi = check_range(start, end)
        most = None if limit is None else validation.check_max_results(limit)
        return self._list_monitor_results(project_id, check_monitor_name(monitor), lo, hi, most)

    # --- alerts --------------------------------------------------------------------------------

    def add_alert(self, alert: Alert) -> Alert:
        """Store a new alert (its id given by the caller, 32 hex characters).

        Raises:
            Conflict: an alert of the same monitor and rule is firing already (update it).
            AlreadyExists: an alert with this id exists.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field (severity, state, numbers, times, details).
        """
        return self._add_alert(check_alert(alert))

    def update_alert(self, alert: Alert) -> Alert:
        """Replace the changing fields of the stored alert with ``alert.id`` by those of
        ``alert`` (build it with ``dataclasses.replace(stored, ...)``).

        Raises:
            AlertNotFound: the project has no alert with this id.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field; a resolved alert set firing again; another
                monitor, rule or ``started_at`` than the stored alert's.
        """
        return self._update_alert(check_alert(alert))

    def get_alert(self, project_id: str, alert_id: str) -> Alert:
        """An alert.

        Raises:
            AlertNotFound: the project has no alert with this id.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        return self._get_alert(project_id, validation.check_id(alert_id, "alert id"))

    def list_alerts(
        self,
        project_id: str,
        *,
        monitor: str | None = None,
        rule: str | None = None,
        state: AlertState | str | None = None,
        limit: int | None = None,
    ) -> list[Alert]:
        """The alerts of a project, optionally of one monitor, rule or state, newest first
        (``started_at`` descending, then by id); with ``limit``, the newest ``limit``.

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad filter or limit.
        """
        validation.check_name(project_id, "project id")
        return self._list_alerts(
            project_id,
            None if monitor is None else check_monitor_name(monitor),
            None if rule is None else validation.check_name(rule, "alert rule"),
            None if state is None else check_state(state),
            None if limit is None else validation.check_max_results(limit),
        )

    # --- deliveries ----------------------------------------------------------------------------

    def add_alert_delivery(self, delivery: AlertDelivery) -> AlertDelivery:
        """Record one attempt to deliver an alert's notification (``created_at`` 0 means now).

        Returns:
            The delivery as stored.

        Raises:
            AlertNotFound: the project has no alert ``delivery.alert_id``.
            AlreadyExists: a delivery with this id exists.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field.
        """
        return self._add_alert_delivery(check_delivery(delivery))

    def list_alert_deliveries(
        self, project_id: str, *, alert_id: str | None = None, limit: int | None = None
    ) -> list[AlertDelivery]:
        """The deliveries of a project (or of one alert), oldest first (by ``created_at``,
        then in the order written); with ``limit``, the latest ``limit`` (still oldest first).

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad id or limit.
        """
        validation.check_name(project_id, "project id")
        return self._list_alert_deliveries(
            project_id,
            None if alert_id is None else validation.check_id(alert_id, "alert id"),
            None if limit is None else validation.check_max_results(limit),
        )

    # --- label segments ------------------------------------------------------------------------

    def add_label_segment(self, segment: LabelSegment) -> LabelSegment:
        """Index a file of ground-truth labels (idempotent by ``segment.id``; ``created_at``
        0 means now).

        Returns:
            The segment as stored (on a repeated write, the first one).

        Raises:
            Conflict: a segment with this id exists with other content.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field.
        """
        return self._add_label_segment(check_label_segment(segment))

    def list_label_segments(
        self, project_id: str, *, deployment: str | None = None, since: int | None = None
    ) -> list[LabelSegment]:
        """The label segments of a project (or of one deployment; ``""`` selects those written
        without one) created at or after ``since`` (ms), by ``created_at`` then id.

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name or time.
        """
        validation.check_name(project_id, "project id")
        return self._list_label_segments(
            project_id,
            None if deployment is None else check_label_deployment(deployment),
            None if since is None else validation.check_int(since, "since", minimum=0),
        )

    # --- what implementations provide ----------------------------------------------------------

    @abc.abstractmethod
    def _create_monitor(self, draft: Monitor) -> Monitor:
        """Store ``draft`` at revision 1, created and updated now, with its
        :func:`monitor_created` event; :func:`~.monitor_checks.monitor_exists` when the name
        is taken."""

    @abc.abstractmethod
    def _get_monitor(self, project_id: str, name: str) -> Monitor: ...

    @abc.abstractmethod
    def _list_monitors(self, project_id: str) -> list[Monitor]: ...

    @abc.abstractmethod
    def _update_monitor(
        self,
        project_id: str,
        name: str,
        changes: dict[str, Any],
        actor: str,
        expected_revision: int | None,
    ) -> Monitor:
        """Under the monitor's lock: :func:`~.monitor_checks.monitor_revision_moved` when
        ``expected_revision`` differs, then :func:`apply_monitor_update` and store its result
        (with its event)."""

    @abc.abstractmethod
    def _delete_monitor(self, project_id: str, name: str, actor: str, reason: str) -> None:
        """Delete it and its results, with its :func:`monitor_deleted` event."""

    @abc.abstractmethod
    def _add_monitor_result(self, result: MonitorResult) -> MonitorResult:
        """Store it in place of the monitor's result of the same window, if any."""

    @abc.abstractmethod
    def _list_monitor_results(
        self,
        project_id: str,
        monitor: str,
        start: int | None,
        end: int | None,
        limit: int | None,
    ) -> list[MonitorResult]: ...

    @abc.abstractmethod
    def _add_alert(self, alert: Alert) -> Alert:
        """Store it: :func:`~.monitor_checks.alert_exists` for a known id,
        :func:`~.monitor_checks.firing_already` when it is firing and its rule has a firing
        alert."""

    @abc.abstractmethod
    def _update_alert(self, alert: Alert) -> Alert:
        """Under the alert's lock: store :func:`~.monitor_checks.alert_updated` of the stored
        alert."""

    @abc.abstractmethod
    def _get_alert(self, project_id: str, alert_id: str) -> Alert: ...

    @abc.abstractmethod
    def _list_alerts(
        self,
        project_id: str,
        monitor: str | None,
        rule: str | None,
        state: AlertState | None,
        limit: int | None,
    ) -> list[Alert]: ...

    @abc.abstractmethod
    def _add_alert_delivery(self, delivery: AlertDelivery) -> AlertDelivery:
        """Store it: AlertNotFound for an alert not in its project,
        :func:`~.monitor_checks.delivery_exists` for a known id."""

    @abc.abstractmethod
    def _list_alert_deliveries(
        self, project_id: str, alert_id: str | None, limit: int | None
    ) -> list[AlertDelivery]: ...

    @abc.abstractmethod
    def _add_label_segment(self, segment: LabelSegment) -> LabelSegment:
        """Store it, or :func:`~.monitor_checks.check_same_labels` against the stored segment
        with its id."""

    @abc.abstractmethod
    def _list_label_segments(
        self, project_id: str, deployment: str | None, since: int | None
    ) -> list[LabelSegment]: ...


# --- one behaviour for every backend -------------------------------------------------------------


def _state(m: Monitor) -> dict[str, Any]:
    """The changeable fields of a monitor as JSON-ready values (for audit details)."""
    return {"spec": dict(m.spec), "description": m.description, "enabled": m.enabled}


def _event(
    m: Monitor, action: str, actor: str, details: dict[str, Any], at: int, reason: str = ""
) -> AuditEvent:
    return new_event(
        m.project_id, actor, action, "monitor", m.name, details, timestamp=at, reason=reason
    )


def monitor_created(m: Monitor) -> AuditEvent:
    """The ``monitor.create`` event of a new monitor (details: its fields, revision 1)."""
    return _event(
        m, "monitor.create", m.created_by, {**_state(m), "revision": m.revision}, m.created_at
    )


def apply_monitor_update(
    current: Monitor, changes: Mapping[str, Any], actor: str
) -> tuple[Monitor, AuditEvent | None]:
    """The monitor after ``changes`` and its ``monitor.update`` event, or ``(current, None)``
    when no field would change. The event's time is now, but never before the monitor's last
    change (clocks may step back), so its events sort in order."""
    before, after = _state(current), _state(replace(current, **changes))
    changed = [k for k in _UPDATABLE if k in changes and before[k] != after[k]]
    if not changed:
        return current, None
    at = max(now_ms(), current.updated_at)
    new = replace(
        current, **changes, revision=current.revision + 1, updated_at=at, updated_by=actor
    )
    details = {
        "before": {k: before[k] for k in changed},
        "after": {k: after[k] for k in changed},
        "revision": new.revision,
    }
    return new, _event(new, "monitor.update", actor, details, at)


def monitor_deleted(current: Monitor, actor: str, reason: str) -> AuditEvent:
    """The ``monitor.delete`` event (details: its last fields and revision, enough to create
    it again)."""
    at = max(now_ms(), current.updated_at)
    details = {**_state(current), "revision": current.revision}
    return _event(current, "monitor.delete", actor, details, at, reason)
