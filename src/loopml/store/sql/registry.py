"""The model registry on the SQL store: the :class:`~loopml.store.registry.RegistryStore` half
of :class:`~loopml.store.sql.SqlStore`, as a mixin.

Every change to a model is one write transaction that starts by locking the model's row: SQLite
holds the write lock from the first statement (``BEGIN IMMEDIATE``), PostgreSQL locks the row
(``SELECT ... FOR UPDATE``). Changes of one model therefore run one after another: a new version
takes ``latest_version + 1`` and bumps the counter, an alias move sees the move before it, and
the audit event written in the same transaction gets its timestamp under that lock. The unique
constraint on ``(model_id, version)`` stands behind the lock; nothing is retried, so a
violation would surface as an error rather than as a silently lost version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopml.entities import (
    AuditEvent,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    now_ms,
)
from loopml.errors import AlreadyExists, ModelNotFound, ProjectNotFound, RunNotFound, StoreError
from loopml.store import registry as reg
from loopml.store.base import new_id
from loopml.store.sql.tables import (
    audit_events,
    model_aliases,
    model_versions,
    projects,
    registered_models,
    runs,
)

__all__ = ["SqlRegistryStore"]

_rm, _mv, _ma, _ae = registered_models.c, model_versions.c, model_aliases.c, audit_events.c
_bp = sa.bindparam

_PROJECT_EXISTS = sa.select(projects.c.project_id).where(projects.c.project_id == _bp("pid"))
_RUN_EXISTS = sa.select(runs.c.run_id).where(runs.c.run_id == _bp("run_id"))
_MODELS_OF = sa.select(registered_models).where(_rm.project_id == _bp("pid"))
_MODEL = _MODELS_OF.where(_rm.name == _bp("name"))
_MODEL_ID = sa.select(_rm.id).where(_rm.id == _bp("id"))
_LOCK_MODEL = _MODEL.with_for_update()  # PostgreSQL: changes of one model queue here
_ALIAS_ROWS = sa.select(_ma.model_id, _ma.alias, _ma.version)
_ALIASES_OF_MODEL = _ALIAS_ROWS.where(_ma.model_id == _bp("model_id"))
_ALIASES_IN_PROJECT = _ALIAS_ROWS.select_from(
    model_aliases.join(registered_models, _ma.model_id == _rm.id)
).where(_rm.project_id == _bp("pid"))
_ALIAS = sa.select(_ma.version).where(_ma.model_id == _bp("model_id"), _ma.alias == _bp("alias"))

# A version with its model's project and name: every read of versions starts from this.
_VERSIONS = sa.select(
    _mv.model_id,
    _rm.project_id,
    _rm.name,
    _mv.version,
    _mv.source,
    _mv.run_id,
    _mv.flavor,
    _mv.signature,
    _mv.manifest_digest,
    _mv.description,
    _mv.tags,
    _mv.status,
    _mv.gate_result,
    _mv.created_at,
    _mv.created_by,
).select_from(model_versions.join(registered_models, _mv.model_id == _rm.id))
_VERSION = _VERSIONS.where(_mv.model_id == _bp("model_id"), _mv.version == _bp("version"))


def _dump(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(dict(value), separators=(",", ":"), allow_nan=False)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _model(row: Any, aliases: Mapping[str, int]) -> RegisteredModel:
    return RegisteredModel(
        project_id=row.project_id,
        name=row.name,
        description=row.description,
        tags=MappingProxyType(_load(row.tags)),
        aliases=MappingProxyType(dict(sorted(aliases.items()))),
        latest_version=row.latest_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _version(row: Any, aliases: Iterable[str] = ()) -> ModelVersion:
    return ModelVersion(
        project_id=row.project_id,
        name=row.name,
        version=row.version,
        source=row.source,
        run_id=row.run_id,
        flavor=row.flavor,
        signature=_load(row.signature),
        manifest_digest=row.manifest_digest,
        description=row.description,
        tags=MappingProxyType(_load(row.tags)),
        status=ModelVersionStatus(row.status),
        aliases=tuple(sorted(aliases)),
        gate_result=_load(row.gate_result),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        project_id=row.project_id,
        timestamp=row.timestamp,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_name=row.object_name,
        reason=row.reason,
        details=json.loads(row.details),
        origin=row.origin,
    )


def insert_event(conn: Connection, event: AuditEvent) -> None:
    """Write an audit event (in the caller's transaction)."""
    conn.execute(
        audit_events.insert().values(
            id=event.id,
            project_id=event.project_id,
            timestamp=event.timestamp,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_name=event.object_name,
            reason=event.reason,
            details=_dump(event.details),
            origin=event.origin,
        )
    )


def _aliases(conn: Connection, *, model_id: str = "", pid: str = "") -> dict[str, dict[str, int]]:
    """The aliases of one model (``model_id``) or of every model of a project (``pid``):
    model id -> alias -> version."""
    stmt, key = (
        (_ALIASES_OF_MODEL, {"model_id": model_id})
        if model_id
        else (_ALIASES_IN_PROJECT, {"pid": pid})
    )
    found: dict[str, dict[str, int]] = {}
    for r in conn.execute(stmt, key):
        found.setdefault(r.model_id, {})[r.alias] = r.version
    return found


def _of_model(conn: Connection, model_id: str) -> dict[str, int]:
    """The aliases of one model: alias -> version."""
    return _aliases(conn, model_id=model_id).get(model_id, {})


def _versions_with_aliases(
    conn: Connection, rows: list[Any], aliases: dict[str, dict[str, int]]
) -> list[ModelVersion]:
    out = []
    for r in rows:
        of_model = aliases.get(r.model_id, {})
        out.append(_version(r, (a for a, n in of_model.items() if n == r.version)))
    return out


def _clock(model: Any) -> int:
    """The time of a change to a locked model: now, but never before its last change, so that
    its audit events sort in the order they happened even when hosts' clocks disagree."""
    return max(now_ms(), int(model.updated_at))


def _missing(conn: Connection, project_id: str, name: str) -> Exception:
    """The error for a model that was not found: is it the project or the model?"""
    if conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
        return ProjectNotFound(project_id)
    return ModelNotFound(name)


class SqlRegistryStore:
    """The registry methods of :class:`~loopml.store.sql.SqlStore` (mixed into it)."""

    if TYPE_CHECKING:
        _insert: Callable[..., Any]

        def _write(self, fn: Callable[[Connection], Any]) -> Any: ...

        def _read(self, fn: Callable[[Connection], Any]) -> Any: ...

        def _integrity(self, exc: BaseException) -> bool: ...

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _locked_model(conn: Connection, project_id: str, name: str) -> Any:
        """The model's row, locked until the transaction ends (ModelNotFound if absent)."""
        row = conn.execute(_LOCK_MODEL, {"pid": project_id, "name": name}).first()
        if row is None:
            raise _missing(conn, project_id, name)
        return row

    @staticmethod
    def _version_row(conn: Connection, model: Any, version: int) -> Any:
        row = conn.execute(_VERSION, {"model_id": model.id, "version": version}).first()
        if row is None:
            raise ModelNotFound(model.name, version)
        return row

    @staticmethod
    def _touch(conn: Connection, model: Any, now: int, **values: Any) -> None:
        conn.execute(
            registered_models.update().where(_rm.id == model.id).values(updated_at=now, **values)
        )

    @staticmethod
    def _version_aliases(conn: Connection, model_id: str, version: int) -> list[str]:
        return [a for a, n in _of_model(conn, model_id).items() if n == version]

    # --- registered models -----------------------------------------------------------------------

    def _create_registered_model(
        self, project_id: str, name: str, description: str, tags: dict[str, str], actor: str
    ) -> RegisteredModel:
        add = (
            self._insert(registered_models)
            .values(
                id=_bp("id"),
                project_id=_bp("project_id"),
                name=_bp("name"),
                description=_bp("description"),
                tags=_bp("tags"),
                latest_version=0,
                created_at=_bp("now"),
                updated_at=_bp("now"),
            )
            .on_conflict_do_nothing(index_elements=[_rm.project_id, _rm.name])
        )

        def tx(conn: Connection) -> RegisteredModel:
            if conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
                raise ProjectNotFound(project_id)
            now = now_ms()
            model_id = new_id()
            conn.execute(
                add,
                {
                    "id": model_id,
                    "project_id": project_id,
                    "name": name,
                    "description": description,
                    "tags": _dump(tags),
                    "now": now,
                },
            )
            # Ours, unless the name was taken (on PostgreSQL, maybe by a creator we waited for).
            if conn.execute(_MODEL_ID, {"id": model_id}).first() is None:
                raise AlreadyExists(
                    f"model {name!r} is already registered in this project; add a version to "
                    "it, or pick another name"
                )
            model = RegisteredModel(
                project_id,
                name,
                description,
                MappingProxyType(dict(tags)),
                created_at=now,
                updated_at=now,
            )
            facts = {"description": description, "tags": dict(tags)}
            insert_event(
                conn, reg.model_event(project_id, name, "model.create", actor, facts, now)
            )
            return model

        return self._write(tx)  # type: ignore[no-any-return]

    def _get_registered_model(self, project_id: str, name: str) -> RegisteredModel:
        def tx(conn: Connection) -> RegisteredModel:
            row = conn.execute(_MODEL, {"pid": project_id, "name": name}).first()
            if row is None:
                raise _missing(conn, project_id, name)
            return _model(row, _of_model(conn, row.id))

        return self._read(tx)  # type: ignore[no-any-return]

    def _list_registered_models(self, project_id: str) -> list[RegisteredModel]:
        def tx(conn: Connection) -> list[RegisteredModel]:
            rows = conn.execute(_MODELS_OF, {"pid": project_id}).all()
            if not rows and conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
                raise ProjectNotFound(project_id)
            aliases = _aliases(conn, pid=project_id)
            return [_model(r, aliases.get(r.id, {})) for r in rows]

        # Sorted here, not in SQL: PostgreSQL would sort by its collation, not by code point.
        return sorted(self._read(tx), key=lambda m: m.name)

    def _update_registered_model(
        self,
        project_id: str,
        name: str,
        description: str | None,
        tags: dict[str, str] | None,
        actor: str,
    ) -> RegisteredModel:
        def tx(conn: Connection) -> RegisteredModel:
            row = self._locked_model(conn, project_id, name)
            if description is not None or tags:
                old_tags = _load(row.tags)
                details = reg.changes(description, tags, None, row.description, old_tags)
                now = _clock(row)
                self._touch(
                    conn,
                    row,
                    now,
                    description=row.description if description is None else description,
                    tags=_dump({**old_tags, **(tags or {})}),
                )
                event = reg.model_event(project_id, name, "model.update", actor, details, now)
                insert_event(conn, event)
                row = conn.execute(_MODEL, {"pid": project_id, "name": name}).one()
            return _model(row, _of_model(conn, row.id))

        return self._write(tx)  # type: ignore[no-any-return]

    def _delete_registered_model(self, project_id: str, name: str, actor: str) -> None:
        def tx(conn: Connection) -> None:
            row = self._locked_model(conn, project_id, name)
            aliases = _of_model(conn, row.id)
            count = conn.execute(
                sa.select(sa.func.count())
                .select_from(model_versions)
                .where(_mv.model_id == row.id)
            ).scalar_one()
            conn.execute(model_aliases.delete().where(_ma.model_id == row.id))
            conn.execute(model_versions.delete().where(_mv.model_id == row.id))
            conn.execute(registered_models.delete().where(_rm.id == row.id))
            facts = {"versions": count, "aliases": dict(sorted(aliases.items()))}
            event = reg.model_event(project_id, name, "model.delete", actor, facts, _clock(row))
            insert_event(conn, event)

        self._write(tx)

    # --- versions ------------------------------------------------------------------------------

    def _create_model_version(self, draft: ModelVersion) -> ModelVersion:
        def tx(conn: Connection) -> ModelVersion:
            model = self._locked_model(conn, draft.project_id, draft.name)
            if (
                draft.run_id is not None
                and conn.execute(_RUN_EXISTS, {"run_id": draft.run_id}).first() is None
            ):
                raise RunNotFound(draft.run_id)
            version = replace(
                draft,
                version=model.latest_version + 1,
                tags=MappingProxyType(dict(draft.tags)),
                status=ModelVersionStatus.READY,
                aliases=(),
                gate_result=None,
                created_at=_clock(model),
            )
            conn.execute(
                model_versions.insert().values(
                    id=new_id(),
                    model_id=model.id,
                    version=version.version,
                    source=version.source,
                    run_id=version.run_id,
                    flavor=version.flavor,
                    signature=_dump(version.signature),
                    manifest_digest=version.manifest_digest,
                    description=version.description,
                    tags=_dump(version.tags),
                    status=version.status.value,
                    gate_result=None,
                    created_at=version.created_at,
                    created_by=version.created_by,
                )
            )
            self._touch(conn, model, version.created_at, latest_version=version.version)
            insert_event(conn, reg.version_created(version))
            return version

        try:
            return self._write(tx)  # type: ignore[no-any-return]
        except StoreError as exc:
            # The run was deleted between the check and the insert (PostgreSQL): say so.
            run_id = draft.run_id
            if (
                run_id is not None
                and self._integrity(exc)
                and self._read(lambda c: c.execute(_RUN_EXISTS, {"run_id": run_id}).first())
                is None
            ):
                raise RunNotFound(run_id) from exc
            raise

    def _get_model_version(self, project_id: str, name: str, version: int) -> ModelVersion:
        def tx(conn: Connection) -> ModelVersion:
            model = conn.execute(_MODEL, {"pid": project_id, "name": name}).first()
            if model is None:
                raise _missing(conn, project_id, name)
            row = self._version_row(conn, model, version)
            return _version(row, self._version_aliases(conn, model.id, version))

        return self._read(tx)  # type: ignore[no-any-return]

    def _list_model_versions(
        self, project_id: str, name: str | None, run_id: str | None
    ) -> list[ModelVersion]:
        def tx(conn: Connection) -> list[ModelVersion]:
            if name is not None:
                model = conn.execute(_MODEL, {"pid": project_id, "name": name}).first()
                if model is None:
                    raise _missing(conn, project_id, name)
                stmt = _VERSIONS.where(_mv.model_id == model.id)
                aliases = _aliases(conn, model_id=model.id)
            else:
                if conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
                    raise ProjectNotFound(project_id)
                stmt = _VERSIONS.where(_rm.project_id == project_id)
                aliases = _aliases(conn, pid=project_id)
            if run_id is not None:
                stmt = stmt.where(_mv.run_id == run_id)
            return _versions_with_aliases(conn, list(conn.execute(stmt).all()), aliases)

        return sorted(self._read(tx), key=lambda v: (v.name, v.version))

    def _update_model_version(
        self,
        project_id: str,
        name: str,
        version: int,
        description: str | None,
        tags: dict[str, str] | None,
        status: ModelVersionStatus | None,
        actor: str,
    ) -> ModelVersion:
        def tx(conn: Connection) -> ModelVersion:
            model = self._locked_model(conn, project_id, name)
            row = self._version_row(conn, model, version)
            if description is not None or tags or status is not None:
                old = _version(row)
                details = reg.changes(
                    description, tags, status, old.description, old.tags, old.status
                )
                conn.execute(
                    model_versions.update()
                    .where(_mv.model_id == model.id, _mv.version == version)
                    .values(
                        description=old.description if description is None else description,
                        tags=_dump({**old.tags, **(tags or {})}),
                        status=old.status.value if status is None else status.value,
                    )
                )
                now = _clock(model)
                self._touch(conn, model, now)
                insert_event(
                    conn,
                    reg.version_event(
                        project_id, name, version, "model_version.update", actor, details, now
                    ),
                )
                row = self._version_row(conn, model, version)
            return _version(row, self._version_aliases(conn, model.id, version))

        return self._write(tx)  # type: ignore[no-any-return]

    def _set_model_version_gate_result(
        self, project_id: str, name: str, version: int, result: dict[str, Any], actor: str
    ) -> ModelVersion:
        def tx(conn: Connection) -> ModelVersion:
            model = self._locked_model(conn, project_id, name)
            self._version_row(conn, model, version)
            conn.execute(
                model_versions.update()
                .where(_mv.model_id == model.id, _mv.version == version)
                .values(gate_result=_dump(result))
            )
            now = _clock(model)
            self._touch(conn, model, now)
            facts = {"version": version, "result": result}
            event = reg.version_event(
                project_id, name, version, "model_version.gate", actor, facts, now
            )
            insert_event(conn, event)
            row = self._version_row(conn, model, version)
            return _version(row, self._version_aliases(conn, model.id, version))

        return self._write(tx)  # type: ignore[no-any-return]

    # --- aliases -------------------------------------------------------------------------------

    def _set_model_alias(
        self,
        project_id: str,
        name: str,
        alias: str,
        version: int,
        actor: str,
        reason: str,
        expected_version: int | None,
    ) -> AuditEvent:
        upsert = self._insert(model_aliases)
        upsert = upsert.on_conflict_do_update(
            index_elements=[_ma.model_id, _ma.alias],
            set_={"version": upsert.excluded.version, "updated_at": upsert.excluded.updated_at},
        )

        def tx(conn: Connection) -> AuditEvent:
            model = self._locked_model(conn, project_id, name)
            self._version_row(conn, model, version)
            previous = conn.execute(_ALIAS, {"model_id": model.id, "alias": alias}).scalar()
            if expected_version is not None and previous != expected_version:
                raise reg.alias_moved(name, alias, previous, expected_version)
            now = _clock(model)
            conn.execute(
                upsert,
                {"model_id": model.id, "alias": alias, "version": version, "updated_at": now},
            )
            self._touch(conn, model, now)
            event = reg.alias_event(project_id, name, alias, version, previous, actor, reason, now)
            insert_event(conn, event)
            return event

        return self._write(tx)  # type: ignore[no-any-return]

    def _delete_model_alias(
        self, project_id: str, name: str, alias: str, actor: str, reason: str
    ) -> AuditEvent:
        def tx(conn: Connection) -> AuditEvent:
            model = self._locked_model(conn, project_id, name)
            previous = conn.execute(_ALIAS, {"model_id": model.id, "alias": alias}).scalar()
            if previous is None:
                raise reg.missing_alias(name, alias)
            conn.execute(
                model_aliases.delete().where(_ma.model_id == model.id, _ma.alias == alias)
            )
            now = _clock(model)
            self._touch(conn, model, now)
            event = reg.alias_event(project_id, name, alias, None, previous, actor, reason, now)
            insert_event(conn, event)
            return event

        return self._write(tx)  # type: ignore[no-any-return]

    def _get_model_version_by_alias(self, project_id: str, name: str, alias: str) -> ModelVersion:
        def tx(conn: Connection) -> ModelVersion:
            model = conn.execute(_MODEL, {"pid": project_id, "name": name}).first()
            if model is None:
                raise _missing(conn, project_id, name)
            version = conn.execute(_ALIAS, {"model_id": model.id, "alias": alias}).scalar()
            if version is None:
                raise reg.missing_alias(name, alias)
            row = self._version_row(conn, model, version)
            return _version(row, self._version_aliases(conn, model.id, version))

        return self._read(tx)  # type: ignore[no-any-return]

    # --- audit trail ---------------------------------------------------------------------------

    def _log_audit_event(self, event: AuditEvent) -> AuditEvent:
        def tx(conn: Connection) -> None:
            if conn.execute(_PROJECT_EXISTS, {"pid": event.project_id}).first() is None:
                raise ProjectNotFound(event.project_id)
            insert_event(conn, event)

        self._write(tx)
        return event

    def _search_audit_events(
        self,
        project_id: str,
        object_type: str | None,
        object_name: str | None,
        action: str | None,
        since: int | None,
        limit: int,
    ) -> list[AuditEvent]:
        stmt = sa.select(audit_events).where(_ae.project_id == project_id)
        if object_type is not None:
            stmt = stmt.where(_ae.object_type == object_type)
        if object_name is not None:
            stmt = stmt.where(_ae.object_name == object_name)
        if action is not None:
            stmt = stmt.where(_ae.action == action)
        if since is not None:
            stmt = stmt.where(_ae.timestamp >= since)
        stmt = stmt.order_by(_ae.timestamp.desc(), _ae.seq.desc()).limit(limit)

        def tx(conn: Connection) -> list[AuditEvent]:
            rows = conn.execute(stmt).all()
            if not rows and conn.execute(_PROJECT_EXISTS, {"pid": project_id}).first() is None:
                raise ProjectNotFound(project_id)
            return [_event(r) for r in rows]

        return self._read(tx)  # type: ignore[no-any-return]
