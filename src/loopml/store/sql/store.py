"""The SQL store: the :class:`~loopml.store.base.Store` contract on SQLite and PostgreSQL.

Written with SQLAlchemy Core (no ORM objects): every write method is one transaction, batches are
inserted with ``executemany``, and reads fetch plain rows that become frozen entities. The
dataset methods live in :mod:`loopml.store.sql.datasets`, the registry's in
:mod:`loopml.store.sql.registry` and the deployments' in :mod:`loopml.store.sql.deployments`,
mixins of :class:`SqlStore`.
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from loopml.entities import (
    ArtifactInfo,
    Environment,
    Metric,
    MetricHistory,
    Param,
    Project,
    Run,
    RunStatus,
    Tag,
)
from loopml.errors import (
    AlreadyExists,
    ArtifactNotFound,
    LoopError,
    ParamConflict,
    ProjectNotFound,
    RunNotFound,
    StoreError,
)
from loopml.store import search
from loopml.store.base import (
    FAILURE_REASON_TAG,
    Store,
    environment_id,
    missing_environment,
    new_id,
)
from loopml.store.sql import engine as eng
from loopml.store.sql.auth import SqlAuthStore
from loopml.store.sql.datasets import SqlDatasetStore
from loopml.store.sql.deployments import SqlDeploymentStore
from loopml.store.sql.leases import SqlLeaseStore
from loopml.store.sql.monitors import SqlMonitorStore
from loopml.store.sql.query import prepared_search
from loopml.store.sql.reads import RunLoader, raw_read
from loopml.store.sql.registry import SqlRegistryStore
from loopml.store.sql.statements import RawTx, Statements, raw_write
from loopml.store.sql.tables import (
    artifacts,
    environments,
    latest_metrics,
    metric_chunks,
    params,
    projects,
    run_inputs,
    runs,
    tags,
)

__all__ = ["SqlStore"]

_CHUNK_POINTS = 10_000  # metric points per stored chunk


def _nan_to_null(value: float) -> float | None:
    return None if math.isnan(value) else value


def _null_to_nan(value: float | None) -> float:
    return math.nan if value is None else value


class SqlStore(
    SqlDatasetStore, SqlRegistryStore, SqlDeploymentStore, SqlMonitorStore, SqlLeaseStore, Store
):
    """A store on SQLite (a file) or PostgreSQL, chosen by the URL.

    Args:
        uri: ``sqlite:///path/to/loopml.db`` or ``postgresql://user:pass@host:5432/db``.
        busy_timeout: seconds a SQLite writer waits for the write lock.
        synchronous: SQLite only: ``normal`` (a commit survives a crash of the process) or
            ``full`` (it also survives power loss, at one fsync per commit).
        create: create the schema in an empty database (default); with False an empty
            database is an error.
    """

    def __init__(
        self,
        uri: str,
        *,
        busy_timeout: float = 60.0,
        synchronous: str = "normal",
        create: bool = True,
    ) -> None:
        self.uri = eng.mask_password(uri)
        self._engine = eng.create_engine(uri, busy_timeout=busy_timeout, synchronous=synchronous)
        self._dialect = self._engine.dialect.name
        self._insert: Callable[..., Any] = _dialect_insert(self._dialect)
        self._st = Statements(self._engine.dialect, self._insert)
        self._loader = RunLoader(self._engine.dialect)
        self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        self._dbapi_integrity: type[Exception] = self._engine.dialect.loaded_dbapi.IntegrityError
        self._known_envs: set[str] = set()  # environments this store has written
        self._stats_checked = -1e9  # monotonic time of the last planner-statistics check
        self._auth: SqlAuthStore | None = None
        if create:
            eng.ensure_schema(self._engine, self.uri)
        else:
            with self._engine.connect() as conn:
                eng._check(eng.current_revision(conn), self.uri)

    @property
    def auth(self) -> SqlAuthStore:
        """Accounts, API tokens and roles of ``loopml server --auth``, in this database."""
        if self._auth is None:
            self._auth = SqlAuthStore(self._engine, self.uri, self._insert)
        return self._auth

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine (for migrations and tests)."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # --- transactions ------------------------------------------------------------------------

    def _write(self, fn: Callable[[Connection], Any]) -> Any:
        try:
            with eng.write_transaction(self._engine) as conn:
                return fn(conn)
        except LoopError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"write to store {self.uri!r} failed: {exc}") from exc

    def _raw(self, fn: Callable[[RawTx], Any]) -> Any:
        """A hot write through prepared statements (see :mod:`.statements`)."""
        try:
            with raw_write(self._engine) as tx:
                return fn(tx)
        except LoopError:
            raise
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreError(f"write to store {self.uri!r} failed: {exc}") from exc

    def _raw_read(self, fn: Callable[[RawTx], Any]) -> Any:
        """A hot read through prepared statements (see :mod:`.reads`)."""
        try:
            with raw_read(self._engine) as tx:
                return fn(tx)
        except LoopError:
            raise
        except (SQLAlchemyError, self._dbapi_error) as exc:
            raise StoreError(f"read from store {self.uri!r} failed: {exc}") from exc

    def _integrity(self, exc: BaseException) -> bool:
        cause = exc.__cause__
        return isinstance(cause, (IntegrityError, self._dbapi_integrity))

    def _read(self, fn: Callable[[Connection], Any]) -> Any:
        try:
            with eng.read_transaction(self._engine) as conn:
                return fn(conn)
        except LoopError:
            raise
        except SQLAlchemyError as exc:
            raise StoreError(f"read from store {self.uri!r} failed: {exc}") from exc

    # --- projects ------------------------------------------------------------------------------

    def _create_project(self, name: str, description: str, created_at: int) -> Project:
        project = Project(new_id(), name, description, created_at)

        def tx(conn: Connection) -> Project:
            exists = conn.execute(
                sa.select(projects.c.name).where(projects.c.name == name)
            ).first()
            if exists is not None:
                raise AlreadyExists(
                    f"project {name!r} already exists; use it or pick another name"
                )
            conn.execute(
                projects.insert().values(
                    project_id=project.project_id,
                    name=name,
                    description=description,
                    created_at=created_at,
                )
            )
            return project

        try:
            return self._write(tx)  # type: ignore[no-any-return]
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # a concurrent create won (PostgreSQL)
                raise AlreadyExists(f"project {name!r} already exists") from exc
            raise

    def _get_project(self, name_or_id: str) -> Project:
        def tx(conn: Connection) -> Project:
            row = conn.execute(sa.select(projects).where(projects.c.name == name_or_id)).first()
            if row is None:
                row = conn.execute(
                    sa.select(projects).where(projects.c.project_id == name_or_id)
                ).first()
            if row is None:
                raise ProjectNotFound(name_or_id)
            return Project(row.project_id, row.name, row.description, row.created_at)

        return self._read(tx)  # type: ignore[no-any-return]

    def list_projects(self) -> list[Project]:
        def tx(conn: Connection) -> list[Project]:
            rows = conn.execute(sa.select(projects)).all()
            return [Project(r.project_id, r.name, r.description, r.created_at) for r in rows]

        return sorted(self._read(tx), key=lambda p: p.name)

    # --- runs ----------------------------------------------------------------------------------

    def _create_run(
        self,
        run_id: str,
        project_id: str,
        name: str,
        parent_run_id: str | None,
        user: str,
        start_time: int,
        params_: list[Param],
        tags_: list[Tag],
        environment: Environment | None,
    ) -> Run:
        env_id = None if environment is None else environment_id(environment)

        st = self._st
        run_row = {
            "run_id": run_id,
            "project_id": project_id,
            "name": name,
            "status": RunStatus.RUNNING.value,
            "start_time": start_time,
            "end_time": None,
            "parent_run_id": parent_run_id,
            "user": user,
            "heartbeat_at": start_time,
            "environment_id": env_id,
        }

        def tx(t: RawTx, insert_env: bool) -> None:
            if parent_run_id is not None and not t.run(st.run_exists, {"run_id": parent_run_id}):
                raise RunNotFound(parent_run_id, f"parent run {parent_run_id!r} does not exist")
            if environment is not None and insert_env:
                t.run(
                    st.insert_environment,
                    {
                        "environment_id": env_id,
                        "data": json.dumps(environment.to_dict(), sort_keys=True),
                        "created_at": start_time,
                    },
                )
            t.run(st.insert_run, run_row)
            t.many(
                st.insert_param,
                [{"run_id": run_id, "key": p.key, "value": p.value} for p in params_],
            )
            t.many(
                st.upsert_tag, [{"run_id": run_id, "key": x.key, "value": x.value} for x in tags_]
            )

        known = env_id in self._known_envs
        try:
            # The project is checked by its foreign key: no extra query on the happy path.
            self._raw(lambda t: tx(t, insert_env=not known))
        except StoreError as exc:
            if not self._integrity(exc):
                raise
            exists = self._read(
                lambda conn: conn.execute(
                    sa.select(projects.c.project_id).where(projects.c.project_id == project_id)
                ).first()
            )
            if exists is None:
                raise ProjectNotFound(project_id) from exc
            if not known:
                raise
            self._known_envs.clear()  # the database was emptied behind our back: insert it again
            self._raw(lambda t: tx(t, insert_env=True))
        if env_id is not None:
            self._known_envs.add(env_id)
        return Run(
            run_id=run_id,
            project_id=project_id,
            name=name,
            status=RunStatus.RUNNING,
            start_time=start_time,
            parent_run_id=parent_run_id,
            user=user,
            heartbeat_at=start_time,
            params=MappingProxyType({p.key: p.value for p in params_}),
            tags=MappingProxyType({t.key: t.value for t in tags_}),
            environment_id=env_id,
        )

    @staticmethod
    def _run_exists(conn: Connection, run_id: str) -> bool:
        return (
            conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
            is not None
        )

    def _require_run(self, conn: Connection, run_id: str) -> None:
        if not self._run_exists(conn, run_id):
            raise RunNotFound(run_id)

    def _for_run(self, run_id: str, tx: Callable[[RawTx], None]) -> None:
        """Run a write whose rows reference ``run_id``; a foreign-key failure on a run that does
        not exist becomes RunNotFound (one query fewer than checking first)."""
        try:
            self._raw(tx)
        except StoreError as exc:
            if self._integrity(exc) and not self._read(
                lambda conn: self._run_exists(conn, run_id)
            ):
                raise RunNotFound(run_id) from exc
            raise

    def _get_run(self, run_id: str) -> Run:
        def tx(t: RawTx) -> Run:
            rows = t.run(self._st.select_run, {"run_id": run_id})
            if not rows:
                raise RunNotFound(run_id)
            return self._loader.load(t, rows)[0]

        return self._raw_read(tx)  # type: ignore[no-any-return]

    def _update_run(
        self, run_id: str, status: RunStatus | None, end_time: int | None, name: str | None
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status.value
            if not status.is_terminal:
                values["end_time"] = None
        if end_time is not None:
            values["end_time"] = end_time
        if name is not None:
            values["name"] = name

        def tx(t: RawTx) -> None:
            if values:
                t.run(self._st.update_run(tuple(sorted(values))), {**values, "id": run_id})
                if t.rowcount == 0:
                    raise RunNotFound(run_id)
            elif not t.run(self._st.run_exists, {"run_id": run_id}):
                raise RunNotFound(run_id)

        self._raw(tx)

    def _delete_run(self, run_id: str) -> None:
        def tx(conn: Connection) -> None:
            self._require_run(conn, run_id)
            # Its dataset versions stay: their run_id becomes NULL (ON DELETE SET NULL).
            for table in (metric_chunks, latest_metrics, params, tags, artifacts, run_inputs):
                conn.execute(table.delete().where(table.c.run_id == run_id))
            conn.execute(runs.delete().where(runs.c.run_id == run_id))

        self._write(tx)

    def _log_batch(
        self, run_id: str, metrics_: list[Metric], params_: list[Param], tags_: list[Tag]
    ) -> None:
        def tx(t: RawTx) -> None:
            # The run is checked by the foreign keys of what is inserted (see _for_run).
            if params_:
                self._write_params(t, run_id, params_)
            t.many(
                self._st.upsert_tag,
                [{"run_id": run_id, "key": x.key, "value": x.value} for x in tags_],
            )
            if metrics_:
                self._write_metrics(t, run_id, metrics_)

        self._for_run(run_id, tx)

    def _write_params(self, t: RawTx, run_id: str, params_: list[Param]) -> None:
        wanted = {p.key: p.value for p in params_}

        def check() -> dict[str, str]:
            existing = {
                key: value
                for key, value in t.run(self._st.select_params, {"run_id": run_id})
                if key in wanted
            }
            for key, old in existing.items():
                if old != wanted[key]:
                    raise ParamConflict(
                        f"param {key!r} of run {run_id!r} is already {old!r}; it cannot become "
                        f"{wanted[key]!r} (params are logged once: log a new run, or use a tag)"
                    )
            return existing

        existing = check()
        new = [
            {"run_id": run_id, "key": k, "value": v}
            for k, v in wanted.items()
            if k not in existing
        ]
        if new:
            t.many(self._st.insert_param, new)
            if self._dialect != "sqlite":
                check()  # another transaction may have inserted a key between check and insert

    def _write_metrics(self, t: RawTx, run_id: str, metrics_: list[Metric]) -> None:
        by_key: dict[str, list[Metric]] = {}
        for m in metrics_:
            by_key.setdefault(m.key, []).append(m)
        chunks = []
        latest = []
        for key, points in by_key.items():
            for i in range(0, len(points), _CHUNK_POINTS):
                part = points[i : i + _CHUNK_POINTS]
                n = len(part)
                chunks.append(
                    {
                        "run_id": run_id,
                        "key": key,
                        "count": n,
                        "steps": struct.pack(f"<{n}q", *[m.step for m in part]),
                        "timestamps": struct.pack(f"<{n}q", *[m.timestamp for m in part]),
                        "values": struct.pack(f"<{n}d", *[m.value for m in part]),
                    }
                )
            best = points[0]
            for m in points:
                if (m.step, m.timestamp) >= (best.step, best.timestamp):
                    best = m
            latest.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "step": best.step,
                    "timestamp": best.timestamp,
                    "value": _nan_to_null(best.value),
                }
            )
        t.many(self._st.insert_chunk, chunks)
        t.many(self._st.upsert_latest, latest)

    def _delete_tag(self, run_id: str, key: str) -> None:
        def tx(conn: Connection) -> None:
            self._require_run(conn, run_id)
            conn.execute(tags.delete().where(tags.c.run_id == run_id, tags.c.key == key))

        self._write(tx)

    def _get_metric_history(self, run_id: str, key: str) -> MetricHistory:
        import numpy as np

        c = metric_chunks.c

        def tx(conn: Connection) -> list[Any]:
            self._require_run(conn, run_id)
            stmt = (
                sa.select(c.steps, c.timestamps, c["values"])
                .where(c.run_id == run_id, c.key == key)
                .order_by(c.id)
            )
            return list(conn.execute(stmt).all())

        rows = self._read(tx)

        def column(i: int, dtype: str) -> Any:
            return np.concatenate([np.frombuffer(r[i], dtype) for r in rows]) if rows else []

        return MetricHistory.from_arrays(key, column(0, "<i8"), column(1, "<i8"), column(2, "<f8"))

    def _heartbeat(self, run_ids: list[str], at: int) -> None:
        self._raw(lambda t: t.many(self._st.heartbeat, [{"id": r, "at": at} for r in run_ids]))

    def _fail_stale_runs(self, older_than: int, now: int) -> list[str]:
        last = sa.func.coalesce(runs.c.heartbeat_at, runs.c.start_time)

        def tx(conn: Connection) -> list[str]:
            rows = conn.execute(
                sa.select(runs.c.run_id, last.label("last")).where(
                    runs.c.status == RunStatus.RUNNING.value, last < older_than
                )
            ).all()
            for row in rows:
                conn.execute(
                    runs.update()
                    .where(runs.c.run_id == row.run_id, runs.c.status == RunStatus.RUNNING.value)
                    .values(status=RunStatus.FAILED.value, end_time=row.last)
                )
            if rows:
                stmt = self._insert(tags)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[tags.c.run_id, tags.c.key],
                        set_={"value": stmt.excluded.value},
                    ),
                    [
                        {
                            "run_id": row.run_id,
                            "key": FAILURE_REASON_TAG,
                            "value": "lost heartbeat: the process stopped reporting",
                        }
                        for row in rows
                    ],
                )
            return sorted(row.run_id for row in rows)

        return self._write(tx)  # type: ignore[no-any-return]

    def _search_runs(
        self,
        project_ids: tuple[str, ...] | None,
        expr: search.Expr | None,
        order: tuple[search.OrderBy, ...],
        limit: int,
        offset: int,
    ) -> list[Run]:
        stmt, values = prepared_search(
            project_ids, expr, order, limit, offset, self._engine.dialect
        )
        if expr is not None and self._dialect == "sqlite":
            self._refresh_statistics()

        def tx(t: RawTx) -> list[Run]:
            return self._loader.load(t, t.run(stmt, values))

        return self._raw_read(tx)  # type: ignore[no-any-return]

    def _refresh_statistics(self) -> None:
        """Keep SQLite's planner statistics current enough to pick the selective index.

        Without statistics SQLite guesses that ``metrics.m > 0.5`` is more selective than
        ``params.p = 'v'`` and may walk half the runs; ``ANALYZE`` (about a second per 10^5 runs)
        fixes that. It runs when a store of over 5,000 runs has no statistics or has doubled
        since they were taken, checked at most once a minute.
        """
        now = time.monotonic()
        if now - self._stats_checked < 60.0:
            return
        self._stats_checked = now

        def tx(conn: Connection) -> tuple[int, int]:
            runs_now = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
            names = set(sa.inspect(conn).get_table_names())
            if "sqlite_stat1" not in names:
                return runs_now, 0
            row = conn.execute(
                sa.text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' LIMIT 1")
            ).first()
            return runs_now, int(str(row[0]).split()[0]) if row else 0

        runs_now, runs_then = self._read(tx)
        if runs_now > 5_000 and runs_now > 2 * runs_then:
            self._write(lambda conn: conn.exec_driver_sql("ANALYZE"))

    def _get_environment(self, environment_id: str) -> Environment:
        def tx(conn: Connection) -> Environment:
            row = conn.execute(
                sa.select(environments.c.data).where(
                    environments.c.environment_id == environment_id
                )
            ).first()
            if row is None:
                raise missing_environment(environment_id)
            return Environment.from_dict(json.loads(row.data))

        return self._read(tx)  # type: ignore[no-any-return]

    # --- artifact index --------------------------------------------------------------------------

    def _log_artifacts(self, run_id: str, infos: list[ArtifactInfo]) -> None:
        rows = [
            {
                "run_id": run_id,
                "path": i.path,
                "sha256": i.sha256,
                "size": i.size,
                "created_at": i.created_at,
            }
            for i in infos
        ]
        self._for_run(run_id, lambda t: t.many(self._st.upsert_artifact, rows))

    def _list_artifacts(self, run_id: str, folder: str) -> list[ArtifactInfo]:
        def tx(conn: Connection) -> list[ArtifactInfo]:
            self._require_run(conn, run_id)
            stmt = sa.select(artifacts).where(artifacts.c.run_id == run_id)
            if folder:
                prefix = folder + "/"
                stmt = stmt.where(
                    sa.or_(
                        artifacts.c.path == folder,
                        sa.func.substr(artifacts.c.path, 1, len(prefix)) == prefix,
                    )
                )
            rows = conn.execute(stmt).all()
            return [ArtifactInfo(r.path, r.sha256, r.size, r.created_at) for r in rows]

        return sorted(self._read(tx), key=lambda a: a.path)

    def _get_artifact(self, run_id: str, path: str) -> ArtifactInfo:
        def tx(conn: Connection) -> ArtifactInfo:
            self._require_run(conn, run_id)
            row = conn.execute(
                sa.select(artifacts).where(artifacts.c.run_id == run_id, artifacts.c.path == path)
            ).first()
            if row is None:
                raise ArtifactNotFound(
                    f"run {run_id!r} has no artifact {path!r}; list them with "
                    f"`loopml runs show {run_id}`"
                )
            return ArtifactInfo(row.path, row.sha256, row.size, row.created_at)

        return self._read(tx)  # type: ignore[no-any-return]


def _dialect_insert(dialect: str) -> Callable[..., Any]:
    """The INSERT with ON CONFLICT clauses of this dialect."""
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    raise StoreError(f"loopml supports SQLite and PostgreSQL stores, not {dialect!r}")
