"""Monitors, their results, alerts, alert deliveries and label segments on the SQL store: the
:class:`~loopml.store.monitors.MonitorStore` half of :class:`~loopml.store.sql.SqlStore`, as a
mixin.

A change to a monitor is one write transaction that starts by locking its row (SQLite holds the
write lock from the first statement, PostgreSQL locks the row with ``SELECT ... FOR UPDATE``),
so a compare-and-set on ``revision`` sees every update before it, and the audit event is written
in the same transaction. A result is one upsert on its (monitor, window) key after a shared lock
on the monitor's row, so a concurrent delete of the monitor waits for it or is seen by it.

An alert is inserted with ``ON CONFLICT DO NOTHING`` and read back by id in the same
transaction: when it is missing, the partial unique index ``ix_alerts_one_firing`` refused it
(on PostgreSQL a concurrent insert for the same rule waits for the first to commit, then finds
the conflict). Label segments follow the prediction-log segments: insert, read back, compare.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

from loopml.entities import (
    Alert,
    AlertDelivery,
    AlertState,
    LabelSegment,
    Monitor,
    MonitorResult,
    now_ms,
)
from loopml.errors import AlertNotFound, MonitorNotFound, ProjectNotFound
from loopml.store import monitor_checks as checks
from loopml.store import monitors as mon
from loopml.store.base import new_id
from loopml.store.sql.registry import insert_event
from loopml.store.sql.tables import (
    alert_deliveries,
    alerts,
    label_segments,
    monitor_results,
    monitors,
    projects,
)

__all__ = ["SqlMonitorStore"]

_m, _r, _a, _ad, _ls = (
    monitors.c,
    monitor_results.c,
    alerts.c,
    alert_deliveries.c,
    label_segments.c,
)
_bp = sa.bindparam
_E = TypeVar("_E", bound="DataclassInstance")

_PROJECT_EXISTS = sa.select(projects.c.project_id).where(projects.c.project_id == _bp("pid"))
_MONITORS_OF = sa.select(monitors).where(_m.project_id == _bp("pid"))
_MONITOR = _MONITORS_OF.where(_m.name == _bp("name"))
_LOCK_MONITOR = _MONITOR.with_for_update()  # PostgreSQL: updates of one queue here
_SHARE_MONITOR = _MONITOR.with_for_update(read=True)  # results: a delete waits for them
_MONITOR_ID = sa.select(_m.id).where(_m.id == _bp("id"))
_ALERT = sa.select(alerts).where(_a.id == _bp("id"))
_LOCK_ALERT = _ALERT.with_for_update()
_DELIVERY_ID = sa.select(_ad.id).where(_ad.id == _bp("id"))
_LABELS = sa.select(label_segments).where(_ls.id == _bp("id"))


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _dump_metrics(metrics: Mapping[str, float]) -> str:
    """Metrics as JSON, NaN as ``null`` (JSON has no NaN; infinities are refused upstream)."""
    return _dump({k: None if math.isnan(v) else v for k, v in metrics.items()})


def _load_metrics(text: str) -> dict[str, float]:
    return {k: math.nan if v is None else float(v) for k, v in json.loads(text).items()}


def _entity(cls: type[_E], row: Any, **converted: Any) -> _E:
    """An entity from the columns of its name, with ``converted`` fields in place of theirs."""
    columns = row._mapping
    return cls(
        **{f.name: columns[f.name] for f in fields(cls) if f.name not in converted}, **converted
    )


def _monitor(row: Any) -> Monitor:
    return _entity(Monitor, row, spec=json.loads(row.spec), enabled=bool(row.enabled))


def _monitor_fields(m: Monitor) -> dict[str, Any]:
    """The columns of a monitor that an update may change."""
    return {
        "spec": _dump(dict(m.spec)),
        "description": m.description,
        "enabled": m.enabled,
        "revision": m.revision,
        "updated_at": m.updated_at,
        "updated_by": m.updated_by,
    }


def _result(row: Any, project_id: str, monitor: str) -> MonitorResult:
    return MonitorResult(
        id=row.id,
        project_id=project_id,
        monitor=monitor,
        window_start=row.window_start,
        window_end=row.window_end,
        metrics=_load_metrics(row.metrics),
        details=json.loads(row.details),
        status=row.status,
        created_at=row.created_at,
    )


def _alert(row: Any) -> Alert:
    state, details = AlertState(row.state), json.loads(row.details)
    return _entity(Alert, row, state=state, details=details)


def _alert_fields(a: Alert) -> dict[str, Any]:
    """The columns of an alert that an update may change."""
    return {
        "severity": a.severity,
        "state": a.state.value,
        "message": a.message,
        "value": a.value,
        "threshold": a.threshold,
        "window_start": a.window_start,
        "window_end": a.window_end,
        "last_seen_at": a.last_seen_at,
        "resolved_at": a.resolved_at,
        "notified_at": a.notified_at,
        "occurrences": a.occurrences,
        "details": _dump(dict(a.details)),
    }


def _delivery(row: Any) -> AlertDelivery:
    return _entity(AlertDelivery, row, ok=bool(row.ok))


def _labels(row: Any) -> LabelSegment:
    return LabelSegment(
        id=row.id,
        project_id=row.project_id,
        deployment=row.deployment,
        rows=row.num_rows,
        uri=row.uri,
        digest=row.digest,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


def _need_project(conn: Connection, project_id: str) -> None:
    if conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
        raise ProjectNotFound(project_id)


def _missing(conn: Connection, project_id: str, error: Exception) -> Exception:
    """The error for an object that was not found: is it the project, or the object?"""
    if conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
        return ProjectNotFound(project_id)
    return error


class SqlMonitorStore:
    """The monitoring methods of :class:`~loopml.store.sql.SqlStore` (mixed into it)."""

    if TYPE_CHECKING:
        _insert: Callable[..., Any]
        _dialect: str

        def _write(self, fn: Callable[[Connection], Any]) -> Any: ...

        def _read(self, fn: Callable[[Connection], Any]) -> Any: ...

    def _by_id(self, column: Any) -> Any:
        # Ids are lowercase hex; "C" orders them by code point on PostgreSQL too.
        return column.collate("C") if self._dialect == "postgresql" else column

    # --- monitors ------------------------------------------------------------------------------

    def _create_monitor(self, draft: Monitor) -> Monitor:
        add = self._insert(monitors).on_conflict_do_nothing(
            index_elements=[_m.project_id, _m.name]
        )

        def tx(conn: Connection) -> Monitor:
            _need_project(conn, draft.project_id)
            now = now_ms()
            created = Monitor(
                project_id=draft.project_id,
                name=draft.name,
                spec=draft.spec,
                description=draft.description,
                enabled=draft.enabled,
                revision=1,
                created_at=now,
                updated_at=now,
                created_by=draft.created_by,
                updated_by=draft.updated_by,
            )
            row_id = new_id()
            conn.execute(
                add,
                {
                    "id": row_id,
                    "project_id": created.project_id,
                    "name": created.name,
                    "created_at": now,
                    "created_by": created.created_by,
                    **_monitor_fields(created),
                },
            )
            # Ours, unless the name was taken (on PostgreSQL, maybe by a creator we waited for).
            if conn.execute(_MONITOR_ID, {"id": row_id}).first() is None:
                raise checks.monitor_exists(draft.name)
            insert_event(conn, mon.monitor_created(created))
            return created

        return self._write(tx)  # type: ignore[no-any-return]

    def _get_monitor(self, project_id: str, name: str) -> Monitor:
        def tx(conn: Connection) -> Monitor:
            row = conn.execute(_MONITOR, {"pid": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, MonitorNotFound(name))
            return _monitor(row)

        return self._read(tx)  # type: ignore[no-any-return]

    def _list_monitors(self, project_id: str) -> list[Monitor]:
        def tx(conn: Connection) -> list[Monitor]:
            rows = conn.execute(_MONITORS_OF, {"pid": project_id}).all()
            if not rows:
                _need_project(conn, project_id)
            return [_monitor(r) for r in rows]

        # Sorted here, not in SQL: PostgreSQL would sort by its collation, not by code point.
        return sorted(self._read(tx), key=lambda m: m.name)

    def _update_monitor(
        self,
        project_id: str,
        name: str,
        changes: dict[str, Any],
        actor: str,
        expected_revision: int | None,
    ) -> Monitor:
        def tx(conn: Connection) -> Monitor:
            row = conn.execute(_LOCK_MONITOR, {"pid": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, MonitorNotFound(name))
            current = _monitor(row)
            if expected_revision is not None and current.revision != expected_revision:
                raise checks.monitor_revision_moved(name, current.revision, expected_revision)
            new, event = mon.apply_monitor_update(current, changes, actor)
            if event is not None:
                conn.execute(
                    monitors.update().where(_m.id == row.id).values(**_monitor_fields(new))
                )
                insert_event(conn, event)
            return new

        return self._write(tx)  # type: ignore[no-any-return]

    def _delete_monitor(self, project_id: str, name: str, actor: str, reason: str) -> None:
        def tx(conn: Connection) -> None:
            row = conn.execute(_LOCK_MONITOR, {"pid": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, MonitorNotFound(name))
            # Its results go too: explicitly, not only by the foreign key's cascade.
            conn.execute(monitor_results.delete().where(_r.monitor_id == row.id))
            conn.execute(monitors.delete().where(_m.id == row.id))
            insert_event(conn, mon.monitor_deleted(_monitor(row), actor, reason))

        self._write(tx)

    # --- results -------------------------------------------------------------------------------

    def _add_monitor_result(self, result: MonitorResult) -> MonitorResult:
        r = result
        values = {
            "window_start": r.window_start,
            "window_end": r.window_end,
            "id": r.id,
            "metrics": _dump_metrics(r.metrics),
            "details": _dump(dict(r.details)),
            "status": r.status,
            "created_at": r.created_at,
        }

        def tx(conn: Connection) -> MonitorResult:
            row = conn.execute(_SHARE_MONITOR, {"pid": r.project_id, "name": r.monitor}).first()
            if row is None:
                raise _missing(conn, r.project_id, MonitorNotFound(r.monitor))
            add = self._insert(monitor_results).values(monitor_id=row.id, **values)
            replace_ = {k: add.excluded[k] for k in ("id", "metrics", "details", "status")}
            conn.execute(
                add.on_conflict_do_update(
                    index_elements=[_r.monitor_id, _r.window_start, _r.window_end],
                    set_={**replace_, "created_at": add.excluded.created_at},
                )
            )
            return r

        return self._write(tx)  # type: ignore[no-any-return]

    def _list_monitor_results(
        self,
        project_id: str,
        monitor: str,
        start: int | None,
        end: int | None,
        limit: int | None,
    ) -> list[MonitorResult]:
        stmt = (
            sa.select(monitor_results)
            .join(monitors, _m.id == _r.monitor_id)
            .where(_m.project_id == project_id, _m.name == monitor)
        )
        if start is not None:
            stmt = stmt.where(_r.window_start >= start)
        if end is not None:
            stmt = stmt.where(_r.window_end <= end)
        if limit is not None:  # the latest windows
            stmt = stmt.order_by(_r.window_start.desc(), _r.window_end.desc()).limit(limit)

        def tx(conn: Connection) -> list[MonitorResult]:
            rows = conn.execute(stmt).all()
            if (
                not rows
                and not conn.execute(_MONITOR, {"pid": project_id, "name": monitor}).first()
            ):
                raise _missing(conn, project_id, MonitorNotFound(monitor))
            return [_result(row, project_id, monitor) for row in rows]

        found: list[MonitorResult] = self._read(tx)
        return sorted(found, key=lambda x: (x.window_start, x.window_end))

    # --- alerts --------------------------------------------------------------------------------

    def _add_alert(self, alert: Alert) -> Alert:
        a = alert
        add = (
            self._insert(alerts)
            .values(
                id=a.id,
                project_id=a.project_id,
                monitor=a.monitor,
                rule=a.rule,
                started_at=a.started_at,
                **_alert_fields(a),
            )
            .on_conflict_do_nothing()  # any unique index: the id, or one firing per rule
        )

        def tx(conn: Connection) -> Alert:
            _need_project(conn, a.project_id)
            if conn.execute(_ALERT, {"id": a.id}).first() is not None:
                raise checks.alert_exists(a.id)
            conn.execute(add)
            if conn.execute(_ALERT, {"id": a.id}).first() is None:
                raise checks.firing_already(a)
            return a

        return self._write(tx)  # type: ignore[no-any-return]

    def _update_alert(self, alert: Alert) -> Alert:
        def tx(conn: Connection) -> Alert:
            row = conn.execute(_LOCK_ALERT, {"id": alert.id}).first()
            if row is None or row.project_id != alert.project_id:
                raise _missing(conn, alert.project_id, AlertNotFound(alert.id))
            new = checks.alert_updated(_alert(row), alert)
            conn.execute(alerts.update().where(_a.id == alert.id).values(**_alert_fields(new)))
            return new

        return self._write(tx)  # type: ignore[no-any-return]

    def _get_alert(self, project_id: str, alert_id: str) -> Alert:
        def tx(conn: Connection) -> Alert:
            row = conn.execute(_ALERT, {"id": alert_id}).first()
            if row is None or row.project_id != project_id:
                raise _missing(conn, project_id, AlertNotFound(alert_id))
            return _alert(row)

        return self._read(tx)  # type: ignore[no-any-return]

    def _list_alerts(
        self,
        project_id: str,
        monitor: str | None,
        rule: str | None,
        state: AlertState | None,
        limit: int | None,
    ) -> list[Alert]:
        stmt = sa.select(alerts).where(_a.project_id == project_id)
        if monitor is not None:
            stmt = stmt.where(_a.monitor == monitor)
        if rule is not None:
            stmt = stmt.where(_a.rule == rule)
        if state is not None:
            stmt = stmt.where(_a.state == state.value)
        stmt = stmt.order_by(_a.started_at.desc(), self._by_id(_a.id))
        if limit is not None:
            stmt = stmt.limit(limit)

        def tx(conn: Connection) -> list[Alert]:
            rows = conn.execute(stmt).all()
            if not rows:
                _need_project(conn, project_id)
            return [_alert(r) for r in rows]

        return self._read(tx)  # type: ignore[no-any-return]

    # --- deliveries ----------------------------------------------------------------------------

    def _add_alert_delivery(self, delivery: AlertDelivery) -> AlertDelivery:
        d = delivery
        add = alert_deliveries.insert().values(
            id=d.id,
            project_id=d.project_id,
            alert_id=d.alert_id,
            notifier=d.notifier,
            kind=d.kind,
            event=d.event,
            attempt=d.attempt,
            ok=d.ok,
            status=d.status,
            created_at=d.created_at,
        )

        def tx(conn: Connection) -> AlertDelivery:
            row = conn.execute(_ALERT, {"id": d.alert_id}).first()
            if row is None or row.project_id != d.project_id:
                raise _missing(conn, d.project_id, AlertNotFound(d.alert_id))
            if conn.execute(_DELIVERY_ID, {"id": d.id}).first() is not None:
                raise checks.delivery_exists(d.id)
            conn.execute(add)
            return d

        return self._write(tx)  # type: ignore[no-any-return]

    def _list_alert_deliveries(
        self, project_id: str, alert_id: str | None, limit: int | None
    ) -> list[AlertDelivery]:
        stmt = sa.select(alert_deliveries).where(_ad.project_id == project_id)
        if alert_id is not None:
            stmt = stmt.where(_ad.alert_id == alert_id)
        if limit is not None:  # the latest
            stmt = stmt.order_by(_ad.created_at.desc(), _ad.seq.desc()).limit(limit)
        else:
            stmt = stmt.order_by(_ad.created_at, _ad.seq)

        def tx(conn: Connection) -> list[AlertDelivery]:
            rows = conn.execute(stmt).all()
            if not rows:
                _need_project(conn, project_id)
            return [_delivery(r) for r in (rows if limit is None else rows[::-1])]

        return self._read(tx)  # type: ignore[no-any-return]

    # --- label segments ------------------------------------------------------------------------

    def _add_label_segment(self, segment: LabelSegment) -> LabelSegment:
        s = segment
        add = (
            self._insert(label_segments)
            .values(
                id=s.id,
                project_id=s.project_id,
                deployment=s.deployment,
                num_rows=s.rows,
                uri=s.uri,
                digest=s.digest,
                size_bytes=s.size_bytes,
                created_at=s.created_at,
            )
            .on_conflict_do_nothing(index_elements=[_ls.id])
        )

        def tx(conn: Connection) -> LabelSegment:
            _need_project(conn, s.project_id)
            conn.execute(add)
            # Ours (the same but maybe for created_at), or there already: a retry, or a clash.
            return checks.check_same_labels(_labels(conn.execute(_LABELS, {"id": s.id}).one()), s)

        return self._write(tx)  # type: ignore[no-any-return]

    def _list_label_segments(
        self, project_id: str, deployment: str | None, since: int | None
    ) -> list[LabelSegment]:
        stmt = sa.select(label_segments).where(_ls.project_id == project_id)
        if deployment is not None:
            stmt = stmt.where(_ls.deployment == deployment)
        if since is not None:
            stmt = stmt.where(_ls.created_at >= since)
        stmt = stmt.order_by(_ls.created_at, self._by_id(_ls.id))

        def tx(conn: Connection) -> list[LabelSegment]:
            rows = conn.execute(stmt).all()
            if not rows:
                _need_project(conn, project_id)
            return [_labels(r) for r in rows]

        return self._read(tx)  # type: ignore[no-any-return]
