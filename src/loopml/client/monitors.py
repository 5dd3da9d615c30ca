"""Monitoring through the client: monitors (every change audited, with compare-and-set on
``revision``), their results per window, alerts and the record of their notifications, and
ground truth: labels that arrive after the predictions, written as Parquet files to the
artifact store and indexed in the metadata store.

Changes to monitors are attributed to :func:`~loopml.client.context.current_actor`
(``LOOPML_USER``, else the login name) in the audit trail. Every method takes ``project``
(default: the client's project, ``LOOPML_PROJECT``); :meth:`MonitorMethods.create_monitor` and
:meth:`MonitorMethods.log_ground_truth` create it when it is missing, the others raise
:class:`~loopml.errors.ProjectNotFound`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loopml.client import ground_truth
from loopml.entities import (
    Alert,
    AlertDelivery,
    AlertState,
    LabelSegment,
    Monitor,
    MonitorResult,
    Project,
    now_ms,
)
from loopml.store.deployments import UNSET
from loopml.store.monitor_checks import check_label_deployment
from loopml.store.validation import check_int

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.config import Settings
    from loopml.store.artifacts import ArtifactStore
    from loopml.store.base import Store
    from loopml.store.deployments import _Unset

__all__ = ["MonitorMethods", "log_ground_truth"]


def _actor() -> str:
    # Imported here: loopml.client.context imports the Client, which imports this module.
    from loopml.client.context import current_actor

    return current_actor()


class MonitorMethods:
    """The monitoring methods of :class:`~loopml.Client` (a mixin: it needs ``store``,
    ``artifacts``, ``settings`` and the client's project-id cache)."""

    @property
    def store(self) -> Store:  # pragma: no cover - Client provides it
        raise NotImplementedError

    @property
    def artifacts(self) -> ArtifactStore:  # pragma: no cover - Client provides it
        raise NotImplementedError

    settings: Settings

    if TYPE_CHECKING:

        def _cached_project_id(self, name: str, lookup: Callable[[str], Project]) -> str: ...

    def _monitor_project_id(self, project: str | None, *, create: bool = False) -> str:
        """The project's id (``create``: creating the project when it does not exist)."""
        lookup = self.store.get_or_create_project if create else self.store.get_project
        return self._cached_project_id(project or self.settings.project, lookup)

    # --- monitors ------------------------------------------------------------------------------

    def create_monitor(
        self,
        name: str,
        spec: Mapping[str, Any],
        *,
        description: str = "",
        enabled: bool = True,
        project: str | None = None,
    ) -> Monitor:
        """Create a monitor (the project is created when missing); audited as
        ``monitor.create``.

        Args:
            name: the monitor's name, e.g. ``churn-drift``.
            spec: its definition, a JSON-ready dict (the monitoring package's spec, as JSON).
            description: free text.
            enabled: whether it runs.
            project: the project (default: the client's).

        Returns:
            The monitor, at revision 1.

        Raises:
            AlreadyExists: the project has a monitor with this name.
            InvalidArgument: a bad name, or a spec that is not a JSON-ready dict.
        """
        return self.store.create_monitor(
            self._monitor_project_id(project, create=True),
            name,
            spec,
            description=description,
            enabled=enabled,
            actor=_actor(),
        )

    def get_monitor(self, name: str, *, project: str | None = None) -> Monitor:
        """A monitor.

        Raises:
            MonitorNotFound: no such monitor.
        """
        return self.store.get_monitor(self._monitor_project_id(project), name)

    def list_monitors(self, *, project: str | None = None) -> list[Monitor]:
        """The monitors of a project, by name."""
        return self.store.list_monitors(self._monitor_project_id(project))

    def update_monitor(
        self,
        name: str,
        *,
        spec: Mapping[str, Any] | _Unset = UNSET,
        description: str | _Unset = UNSET,
        enabled: bool | _Unset = UNSET,
        expected_revision: int | None = None,
        project: str | None = None,
    ) -> Monitor:
        """Change the fields given (the others stay); audited as ``monitor.update`` with the
        fields before and after.

        Args:
            name: the monitor.
            spec: the new spec (replaced whole). description: the new description.
            enabled: turn it on or off.
            expected_revision: change it only if it is still at this revision (read it with
                :meth:`get_monitor`); otherwise nothing changes and Conflict is raised.
            project: the project (default: the client's).

        Returns:
            The monitor as stored; its revision is one higher when anything changed.

        Raises:
            MonitorNotFound: no such monitor.
            Conflict: it is not at ``expected_revision`` (read it again and retry).
            InvalidArgument: a bad field.
        """
        return self.store.update_monitor(
            self._monitor_project_id(project),
            name,
            spec=spec,
            description=description,
            enabled=enabled,
            actor=_actor(),
            expected_revision=expected_revision,
        )

    def delete_monitor(self, name: str, *, reason: str = "", project: str | None = None) -> None:
        """Delete a monitor and its results (audited as ``monitor.delete``); its alerts, their
        deliveries and its audit trail stay.

        Raises:
            MonitorNotFound: no such monitor.
        """
        self.store.delete_monitor(
            self._monitor_project_id(project), name, actor=_actor(), reason=reason
        )

    # --- results -------------------------------------------------------------------------------

    def log_monitor_result(
        self,
        monitor: str,
        *,
        window_start: int,
        window_end: int,
        metrics: Mapping[str, float],
        details: Mapping[str, Any] | None = None,
        status: str = "ok",
        project: str | None = None,
    ) -> MonitorResult:
        """Store what a monitor found in the window ``[window_start, window_end)`` (ms),
        replacing the result stored for that window, if any.

        Args:
            monitor: the monitor (it must exist).
            window_start, window_end: the window, in ms since the epoch.
            metrics: numbers by name (``drift_share``, ``accuracy``...); NaN for one that
                could not be computed.
            details: the full result, a JSON-ready dict.
            status: a short lowercase word (``ok``, ``error``, ``no_data``...).
            project: the project (default: the client's).

        Returns:
            The result as stored.

        Raises:
            MonitorNotFound: no such monitor.
            InvalidArgument: a bad window, metric or details.
        """
        result = MonitorResult(
            id=uuid.uuid4().hex,
            project_id=self._monitor_project_id(project),
            monitor=monitor,
            window_start=window_start,
            window_end=window_end,
            metrics=metrics,
            details={} if details is None else details,
            status=status,
        )
        return self.store.add_monitor_result(result)

    def list_monitor_results(
        self,
        monitor: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
        project: str | None = None,
    ) -> list[MonitorResult]:
        """The results of a monitor whose windows lie in ``[start, end]`` (ms; None leaves a
        side open), oldest first; with ``limit``, the latest ``limit`` windows."""
        return self.store.list_monitor_results(
            self._monitor_project_id(project), monitor, start=start, end=end, limit=limit
        )

    # --- alerts --------------------------------------------------------------------------------

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
    ) -> Alert:
        """Open a firing alert of a monitor's rule (started and last seen now, one occurrence).

        Args:
            monitor: the monitor. rule: the alert rule's name.
            severity: ``info``, ``warning`` or ``critical``.
            message: what happened, for people.
            value, threshold: the rule's metric and its bound in the breaching window.
            window_start, window_end: that window (ms).
            details: more, a JSON-ready dict.
            project: the project (default: the client's).

        Returns:
            The alert as stored.

        Raises:
            Conflict: the rule has a firing alert already (update that one instead).
            InvalidArgument: a bad field.
        """
        now = now_ms()
        alert = Alert(
            id=uuid.uuid4().hex,
            project_id=self._monitor_project_id(project),
            monitor=monitor,
            rule=rule,
            severity=severity,
            state=AlertState.FIRING,
            message=message,
            value=value,
            threshold=threshold,
            window_start=window_start,
            window_end=window_end,
            started_at=now,
            last_seen_at=now,
            occurrences=1,
            details={} if details is None else details,
        )
        return self.store.add_alert(alert)

    def update_alert(self, alert: Alert) -> Alert:
        """Store a changed copy of an alert (``dataclasses.replace(alert, state=...)``): its
        state, message, value, threshold, window, ``last_seen_at``, ``resolved_at``,
        ``notified_at``, occurrences, details and severity.

        Raises:
            AlertNotFound: no such alert.
            InvalidArgument: a bad field, or a resolved alert set firing again.
        """
        return self.store.update_alert(alert)

    def get_alert(self, alert_id: str, *, project: str | None = None) -> Alert:
        """An alert.

        Raises:
            AlertNotFound: no such alert.
        """
        return self.store.get_alert(self._monitor_project_id(project), alert_id)

    def list_alerts(
        self,
        *,
        monitor: str | None = None,
        rule: str | None = None,
        state: AlertState | str | None = None,
        limit: int | None = None,
        project: str | None = None,
    ) -> list[Alert]:
        """The alerts of a project, optionally of one monitor, rule or state (``firing``,
        ``resolved``), newest first; at most ``limit``."""
        return self.store.list_alerts(
            self._monitor_project_id(project), monitor=monitor, rule=rule, state=state, limit=limit
        )

    def log_alert_delivery(
        self,
        alert_id: str,
        *,
        notifier: str,
        kind: str,
        event: str,
        attempt: int,
        ok: bool,
        status: str = "",
        project: str | None = None,
    ) -> AlertDelivery:
        """Record one attempt to deliver an alert's notification.

        Args:
            alert_id: the alert.
            notifier: the notifier's name. kind: its kind (``webhook``, ``slack``...).
            event: what was notified (``firing``, ``resolved``).
            attempt: 1 for the first try. ok: whether it went through.
            status: what the other side said (``HTTP 200``, the error).
            project: the project (default: the client's).

        Raises:
            AlertNotFound: no such alert.
        """
        delivery = AlertDelivery(
            id=uuid.uuid4().hex,
            project_id=self._monitor_project_id(project),
            alert_id=alert_id,
            notifier=notifier,
            kind=kind,
            event=event,
            attempt=attempt,
            ok=ok,
            status=status,
        )
        return self.store.add_alert_delivery(delivery)

    def list_alert_deliveries(
        self, *, alert_id: str | None = None, limit: int | None = None, project: str | None = None
    ) -> list[AlertDelivery]:
        """The delivery attempts of a project (or of one alert), oldest first; with ``limit``,
        the latest ``limit``."""
        return self.store.list_alert_deliveries(
            self._monitor_project_id(project), alert_id=alert_id, limit=limit
        )

    # --- ground truth --------------------------------------------------------------------------

    def log_ground_truth(
        self,
        prediction_ids: Any,
        labels: Any,
        *,
        deployment: str = "",
        time: int | None = None,
        project: str | None = None,
    ) -> LabelSegment:
        """Log the true outcomes of earlier predictions, by prediction id: one Parquet file
        (``prediction_id``, ``label``, ``time``) in the artifact store, indexed in the store.
        Monitors join it to the prediction log to measure performance. A label logged again
        for the same prediction replaces the earlier one (the latest ``time`` wins).

        Args:
            prediction_ids: the ids the server returned with the predictions: a list, array
                or Series of non-empty strings.
            labels: the true labels, one per id: numbers, strings or bools.
            deployment: the deployment the predictions came from ("" for any).
            time: when the labels became known (ms since the epoch; default now).
            project: the project (default: the client's; created when missing).

        Returns:
            The label segment written. Logging the same labels with the same ``time`` again
            writes nothing new.

        Raises:
            InvalidArgument: ids and labels of different lengths, none at all, an empty or
                missing id, a missing label, or labels that are not numbers, strings or bools.

        Example:
            >>> client.log_ground_truth(["a1b2-0", "a1b2-1"], [1, 0], deployment="churn-api")
        """
        deployment = check_label_deployment(deployment)
        at = now_ms() if time is None else check_int(time, "time", minimum=0)
        table = ground_truth.label_table(prediction_ids, labels, at)
        data = ground_truth.to_parquet(table)
        project_id = self._monitor_project_id(project, create=True)
        digest, size = self.artifacts.put(data)
        # The same file in another project or for another deployment is another segment.
        key = f"{project_id}\0{deployment}\0{digest}".encode()
        segment = LabelSegment(
            id=hashlib.sha256(key).hexdigest()[:32],
            project_id=project_id,
            deployment=deployment,
            rows=table.num_rows,
            uri=f"sha256:{digest}",
            digest=digest,
            size_bytes=size,
        )
        return self.store.add_label_segment(segment)

    def list_label_segments(
        self,
        *,
        deployment: str | None = None,
        since: int | None = None,
        project: str | None = None,
    ) -> list[LabelSegment]:
        """The label segments of a project (or of one deployment) written at or after
        ``since`` (ms), oldest first."""
        return self.store.list_label_segments(
            self._monitor_project_id(project), deployment=deployment, since=since
        )

    def read_ground_truth(
        self,
        *,
        deployment: str | None = None,
        since: int | None = None,
        project: str | None = None,
    ) -> pa.Table:
        """The labels of the segments :meth:`list_label_segments` selects, one row per
        prediction id: when an id was labelled more than once, the label with the latest
        ``time`` wins (then the one logged last).

        Returns:
            A ``pyarrow.Table`` with ``prediction_id`` (string), ``label`` and ``time``
            (timestamp[ms]), by ``time``.

        Raises:
            InvalidData: segments hold labels of types that do not combine (numbers and
                strings).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        segments = self.list_label_segments(deployment=deployment, since=since, project=project)
        tables = [pq.read_table(pa.BufferReader(self.artifacts.read(s.digest))) for s in segments]
        return ground_truth.latest_labels(tables)


def log_ground_truth(
    prediction_ids: Any, labels: Any, *, deployment: str = "", time: int | None = None
) -> LabelSegment:
    """Log the true outcomes of earlier predictions with the default client, to the current
    project: see :meth:`loopml.Client.log_ground_truth`.

    Example:
        >>> loopml.log_ground_truth(["a1b2-0", "a1b2-1"], [1, 0], deployment="churn-api")
    """
    from loopml.client import context

    return context.get_client().log_ground_truth(
        prediction_ids, labels, deployment=deployment, time=time, project=context.get_project()
    )
