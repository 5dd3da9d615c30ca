"""Deployments, prediction-log segments, window profiles and traffic windows on the SQL store: the
:class:`~loopml.store.deployments.DeploymentStore` half of :class:`~loopml.store.sql.SqlStore`,
as a mixin.

A change to a deployment is one write transaction that starts by locking its row (SQLite holds
the write lock from the first statement, PostgreSQL locks the row with ``SELECT ... FOR
UPDATE``), so a compare-and-set on ``revision`` sees every update before it, and the audit event
is written in the same transaction. A segment, window profile or traffic window is inserted with
``ON CONFLICT DO NOTHING`` on its id and read back by id in the same transaction: when the id
was there already, the stored row differs from the new one only if it is a clash (a retried
write is a no-op, other content a Conflict). The row count of the insert would say which, but
psycopg does not report it for this statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopml.entities import (
    Deployment,
    PredictionSegment,
    Route,
    RouteRole,
    TrafficWindow,
    WindowProfile,
    now_ms,
)
from loopml.errors import AlreadyExists, DeploymentNotFound, ProjectNotFound
from loopml.store import deployments as dep
from loopml.store.base import new_id
from loopml.store.sql.registry import insert_event
from loopml.store.sql.tables import (
    deployments,
    prediction_segments,
    projects,
    traffic_windows,
    window_profiles,
)

__all__ = ["SqlDeploymentStore"]

_d, _ps, _wp, _tw = deployments.c, prediction_segments.c, window_profiles.c, traffic_windows.c
_bp = sa.bindparam

_PROJECT_EXISTS = sa.select(projects.c.project_id).where(projects.c.project_id == _bp("pid"))
_DEPLOYMENTS_OF = sa.select(deployments).where(_d.project_id == _bp("pid"))
_DEPLOYMENT = _DEPLOYMENTS_OF.where(_d.name == _bp("name"))
_LOCK_DEPLOYMENT = _DEPLOYMENT.with_for_update()  # PostgreSQL: updates of one queue here
_DEPLOYMENT_ID = sa.select(_d.id).where(_d.id == _bp("id"))


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _deployment(row: Any) -> Deployment:
    return Deployment(
        project_id=row.project_id,
        name=row.name,
        routes=tuple(
            Route(r["name"], r["model_uri"], RouteRole(r["role"]), float(r["weight"]))
            for r in json.loads(row.routes)
        ),
        sticky_key=row.sticky_key,
        description=row.description,
        config=json.loads(row.config),
        revision=row.revision,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
        updated_by=row.updated_by,
    )


def _fields(d: Deployment) -> dict[str, Any]:
    """The columns of a deployment that an update may change."""
    return {
        "routes": _dump([r.to_dict() for r in d.routes]),
        "sticky_key": d.sticky_key,
        "description": d.description,
        "config": _dump(dict(d.config)),
        "revision": d.revision,
        "updated_at": d.updated_at,
        "updated_by": d.updated_by,
    }


def _segment(row: Any) -> PredictionSegment:
    return PredictionSegment(
        id=row.id,
        project_id=row.project_id,
        deployment=row.deployment,
        start_time=row.start_time,
        end_time=row.end_time,
        rows=row.num_rows,
        uri=row.uri,
        digest=row.digest,
        size_bytes=row.size_bytes,
        routes=tuple(json.loads(row.routes)),
        model_versions=tuple(json.loads(row.model_versions)),
        created_at=row.created_at,
    )


def _profile(row: Any) -> WindowProfile:
    return WindowProfile(
        id=row.id,
        project_id=row.project_id,
        deployment=row.deployment,
        route=row.route,
        model_version=row.model_version,
        window_start=row.window_start,
        window_seconds=row.window_seconds,
        rows=row.num_rows,
        profile=json.loads(row.profile),
        created_at=row.created_at,
    )


def _traffic(row: Any) -> TrafficWindow:
    return TrafficWindow(**row._mapping)  # the columns are the fields


def _windows_query(
    table: sa.Table,
    project_id: str,
    deployment: str,
    start: int | None,
    end: int | None,
    route: str | None,
) -> sa.Select[Any]:
    """The rows of a table of time windows (profiles, traffic) of a deployment whose
    ``window_start`` is in ``[start, end)``, of one route or all."""
    c = table.c
    stmt = sa.select(table).where(c.project_id == project_id, c.deployment == deployment)
    if start is not None:
        stmt = stmt.where(c.window_start >= start)
    if end is not None:
        stmt = stmt.where(c.window_start < end)
    if route is not None:
        stmt = stmt.where(c.route == route)
    return stmt


def segments_query(
    project_id: str,
    deployment: str,
    start: int | None,
    end: int | None,
    limit: int | None,
    dialect: str,
) -> sa.Select[Any]:
    """The segments of a deployment that overlap ``[start, end]``, by start time, then id.

    One bounded range of the ``(project_id, deployment, start_time)`` index: a segment spans at
    most :data:`~loopml.store.deployments.MAX_SEGMENT_SPAN_MS`, so one that ends at or after
    ``start`` starts at or after ``start`` minus that span.
    """
    stmt = sa.select(prediction_segments).where(
        _ps.project_id == project_id, _ps.deployment == deployment
    )
    if start is not None:
        stmt = stmt.where(_ps.end_time >= start, _ps.start_time >= start - dep.MAX_SEGMENT_SPAN_MS)
    if end is not None:
        stmt = stmt.where(_ps.start_time <= end)
    # Ids are lowercase hex; "C" orders them by code point on PostgreSQL too.
    by_id = _ps.id.collate("C") if dialect == "postgresql" else _ps.id
    stmt = stmt.order_by(_ps.start_time, by_id)
    return stmt if limit is None else stmt.limit(limit)


def _need_project(conn: Connection, project_id: str) -> None:
    if conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
        raise ProjectNotFound(project_id)


def _missing(conn: Connection, project_id: str, name: str) -> Exception:
    """The error for a deployment that was not found: is it the project or the deployment?"""
    if conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
        return ProjectNotFound(project_id)
    return DeploymentNotFound(name)


class SqlDeploymentStore:
    """The deployment methods of :class:`~loopml.store.sql.SqlStore` (mixed into it)."""

    if TYPE_CHECKING:
        _insert: Callable[..., Any]
        _dialect: str

        def _write(self, fn: Callable[[Connection], Any]) -> Any: ...

        def _read(self, fn: Callable[[Connection], Any]) -> Any: ...

    def _add_once(
        self, table: sa.Table, values: dict[str, Any], record: Any, read: Callable[[Any], Any]
    ) -> None:
        """Insert a write-once row (a segment, window profile or traffic window) keyed by its
        id, and check it against the row stored with that id."""
        add = self._insert(table).values(**values).on_conflict_do_nothing(index_elements=["id"])
        stored = sa.select(table).where(table.c.id == record.id)

        def tx(conn: Connection) -> None:
            _need_project(conn, record.project_id)
            conn.execute(add)
            # Ours (the same but maybe for created_at), or there already: a retry, or a clash.
            dep.check_same(read(conn.execute(stored).one()), record)

        self._write(tx)

    # --- deployments ---------------------------------------------------------------------------

    def _create_deployment(self, draft: Deployment) -> Deployment:
        add = (
            self._insert(deployments)
            .values(
                id=_bp("id"),
                project_id=_bp("project_id"),
                name=_bp("name"),
                routes=_bp("routes"),
                sticky_key=_bp("sticky_key"),
                description=_bp("description"),
                config=_bp("config"),
                revision=_bp("revision"),
                created_at=_bp("created_at"),
                updated_at=_bp("updated_at"),
                created_by=_bp("created_by"),
                updated_by=_bp("updated_by"),
            )
            .on_conflict_do_nothing(index_elements=[_d.project_id, _d.name])
        )

        def tx(conn: Connection) -> Deployment:
            _need_project(conn, draft.project_id)
            now = now_ms()
            created = Deployment(
                project_id=draft.project_id,
                name=draft.name,
                routes=draft.routes,
                sticky_key=draft.sticky_key,
                description=draft.description,
                config=draft.config,
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
                    **_fields(created),
                },
            )
            # Ours, unless the name was taken (on PostgreSQL, maybe by a creator we waited for).
            if conn.execute(_DEPLOYMENT_ID, {"id": row_id}).first() is None:
                raise AlreadyExists(
                    f"deployment {draft.name!r} already exists in this project; update it, or "
                    "pick another name"
                )
            insert_event(conn, dep.deployment_created(created))
            return created

        return self._write(tx)  # type: ignore[no-any-return]

    def _get_deployment(self, project_id: str, name: str) -> Deployment:
        def tx(conn: Connection) -> Deployment:
            row = conn.execute(_DEPLOYMENT, {"pid": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, name)
            return _deployment(row)

        return self._read(tx)  # type: ignore[no-any-return]

    def _list_deployments(self, project_id: str) -> list[Deployment]:
        def tx(conn: Connection) -> list[Deployment]:
            rows = conn.execute(_DEPLOYMENTS_OF, {"pid": project_id}).all()
            if not rows:
                _need_project(conn, project_id)
            return [_deployment(r) for r in rows]

        # Sorted here, not in SQL: PostgreSQL would sort by its collation, not by code point.
        return sorted(self._read(tx), key=lambda d: d.name)

    def _update_deployment(
        self,
        project_id: str,
        name: str,
        changes: dict[str, Any],
        actor: str,
        reason: str,
        expected_revision: int | None,
    ) -> Deployment:
        def tx(conn: Connection) -> Deployment:
            row = conn.execute(_LOCK_DEPLOYMENT, {"pid": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, name)
            current = _deployment(row)
            if expected_revision is not None and current.revision != expected_revision:
                raise dep.revision_moved(name, current.revision, expected_revision)
            new, event = dep.apply_update(current, changes, actor, reason)
            if event is not None:
                conn.execute(deployments.update().where(_d.id == row.id).values(**_fields(new)))
                insert_event(conn, event)
            return new

        return self._write(tx)  # type: ignore[no-any-return]

    def _delete_deployment(self, project_id: str, name: str, actor: str, reason: str) -> None:
        def tx(conn: Connection) -> None:
            row = conn.execute(_LOCK_DEPLOYMENT, {"pid": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, name)
            conn.execute(deployments.delete().where(_d.id == row.id))
            insert_event(conn, dep.deployment_deleted(_deployment(row), actor, reason))

        self._write(tx)

    # --- segments and window profiles ----------------------------------------------------------

    def _add_prediction_segment(self, segment: PredictionSegment) -> None:
        s = segment
        values = dict(
            id=s.id,
            project_id=s.project_id,
            deployment=s.deployment,
            start_time=s.start_time,
            end_time=s.end_time,
            num_rows=s.rows,
            uri=s.uri,
            digest=s.digest,
            size_bytes=s.size_bytes,
            routes=_dump(list(s.routes)),
            model_versions=_dump(list(s.model_versions)),
            created_at=s.created_at,
        )
        self._add_once(prediction_segments, values, s, _segment)

    def _list_prediction_segments(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        limit: int | None,
    ) -> list[PredictionSegment]:
        stmt = segments_query(project_id, deployment, start, end, limit, self._dialect)

        def tx(conn: Connection) -> list[PredictionSegment]:
            rows = conn.execute(stmt).all()
            if not rows:
                _need_project(conn, project_id)
            return [_segment(r) for r in rows]

        return self._read(tx)  # type: ignore[no-any-return]

    def _add_window_profile(self, profile: WindowProfile) -> None:
        p = profile
        values = dict(
            id=p.id,
            project_id=p.project_id,
            deployment=p.deployment,
            route=p.route,
            model_version=p.model_version,
            window_start=p.window_start,
            window_seconds=p.window_seconds,
            num_rows=p.rows,
            profile=_dump(dict(p.profile)),
            created_at=p.created_at,
        )
        self._add_once(window_profiles, values, p, _profile)

    def _list_window_profiles(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        route: str | None,
        model_version: str | None,
        window_seconds: int | None = None,
    ) -> list[WindowProfile]:
        stmt = _windows_query(window_profiles, project_id, deployment, start, end, route)
        if model_version is not None:
            stmt = stmt.where(_wp.model_version == model_version)
        if window_seconds is not None:
            stmt = stmt.where(_wp.window_seconds == window_seconds)

        def tx(conn: Connection) -> list[WindowProfile]:
            rows = conn.execute(stmt).all()
            if not rows:
                _need_project(conn, project_id)
            return [_profile(r) for r in rows]

        # Sorted here, not in SQL: PostgreSQL would sort route names by its collation.
        return sorted(self._read(tx), key=lambda p: (p.window_start, p.route, p.id))

    def _add_traffic_window(self, window: TrafficWindow) -> None:
        self._add_once(traffic_windows, asdict(window), window, _traffic)

    def _list_traffic_windows(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        route: str | None,
        limit: int | None,
    ) -> list[TrafficWindow]:
        stmt = _windows_query(traffic_windows, project_id, deployment, start, end, route)
        if limit is not None:
            # the latest windows, in the order of the sort below (code points, not collation)
            by_route, by_id = (
                (_tw.route.collate("C"), _tw.id.collate("C"))
                if self._dialect == "postgresql"
                else (_tw.route, _tw.id)
            )
            stmt = stmt.order_by(_tw.window_start.desc(), by_route.desc(), by_id.desc())
            stmt = stmt.limit(limit)

        def tx(conn: Connection) -> list[TrafficWindow]:
            rows = conn.execute(stmt).all()
            if not rows:
                _need_project(conn, project_id)
            return [_traffic(r) for r in rows]

        # Sorted here, not in SQL: PostgreSQL would sort route names by its collation.
        return sorted(self._read(tx), key=lambda w: (w.window_start, w.route, w.id))
