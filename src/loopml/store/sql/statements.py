"""The hot write statements, compiled once per dialect and run on the driver's own cursor.

Logging is the hot path of a tracker: every run start, param, metric flush and run end is a small
write transaction. Building and compiling a SQLAlchemy statement costs more than executing it on
SQLite, so the statements here are built with SQLAlchemy Core (no SQL is written by hand), compiled
once for the engine's dialect, and then executed through the DB-API cursor inside one transaction
(:func:`raw_write`). Every value is a bound parameter.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine

from loopml.store.sql.tables import (
    artifacts,
    environments,
    latest_metrics,
    metric_chunks,
    params,
    runs,
    tags,
)

__all__ = ["Prepared", "RawTx", "Statements", "raw_write"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for one dialect: its SQL, for positional paramstyles the order of
    its parameters, and the values of the parameters the statement carries itself (literals
    that SQLAlchemy bound, such as the metric key of a cached search)."""

    sql: str
    order: tuple[str, ...] | None
    defaults: Mapping[str, Any]

    @classmethod
    def of(cls, stmt: sa.ClauseElement, dialect: Dialect) -> Prepared:
        compiled: Any = stmt.compile(dialect=dialect)
        order = getattr(compiled, "positiontup", None)
        defaults = {
            name: bind.value
            for bind, name in compiled.bind_names.items()
            if not bind.required and bind.callable is None
        }
        return cls(str(compiled), None if order is None else tuple(order), defaults)

    def bind(self, values: Mapping[str, Any]) -> Any:
        """The parameters in the form the driver takes (a tuple or a mapping)."""
        if self.defaults:
            values = {**self.defaults, **values}
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)


class RawTx:
    """One write transaction on a DB-API cursor."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self.rowcount = 0

    def run(self, st: Prepared, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute one statement; returns its rows (empty for writes), sets :attr:`rowcount`."""
        cur = self._cursor
        cur.execute(st.sql, st.bind(values))
        self.rowcount = cur.rowcount
        return list(cur.fetchall()) if cur.description else []

    def many(self, st: Prepared, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute one statement for each row of parameters."""
        if rows:
            self._cursor.executemany(st.sql, [st.bind(r) for r in rows])


@contextlib.contextmanager
def raw_write(engine: Engine) -> Iterator[RawTx]:
    """A write transaction on a pooled connection's driver connection.

    On SQLite it starts with ``BEGIN IMMEDIATE`` (the write lock up front, see
    :mod:`loopml.store.sql.engine`); on PostgreSQL the driver opens the transaction itself.
    """
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        if engine.dialect.name == "sqlite":
            raw.execute("BEGIN IMMEDIATE")
        cursor = raw.cursor()
        try:
            yield RawTx(cursor)
        except BaseException:
            raw.rollback()
            raise
        else:
            raw.commit()
        finally:
            cursor.close()


def _bp(*names: str) -> dict[str, Any]:
    return {name: sa.bindparam(name) for name in names}


class Statements:
    """The prepared hot statements of one dialect."""

    def __init__(self, dialect: Dialect, insert: Callable[..., Any]) -> None:
        self._dialect = dialect
        p = self.prepare
        self.insert_environment = p(
            insert(environments)
            .values(_bp("environment_id", "data", "created_at"))
            .on_conflict_do_nothing()
        )
        self.insert_run = p(runs.insert().values(_bp(*runs.c.keys())))
        self.select_run = p(sa.select(runs).where(runs.c.run_id == sa.bindparam("run_id")))
        self.run_exists = p(
            sa.select(runs.c.run_id).where(runs.c.run_id == sa.bindparam("run_id"))
        )
        self.insert_param = p(
            insert(params).values(_bp("run_id", "key", "value")).on_conflict_do_nothing()
        )
        self.select_params = p(
            sa.select(params.c.key, params.c.value).where(
                params.c.run_id == sa.bindparam("run_id")
            )
        )
        tag = insert(tags).values(_bp("run_id", "key", "value"))
        self.upsert_tag = p(
            tag.on_conflict_do_update(
                index_elements=[tags.c.run_id, tags.c.key], set_={"value": tag.excluded.value}
            )
        )
        self.insert_chunk = p(
            metric_chunks.insert().values(
                _bp("run_id", "key", "count", "steps", "timestamps", "values")
            )
        )
        t = latest_metrics
        latest = insert(t).values(_bp("run_id", "key", "step", "timestamp", "value"))
        ex = latest.excluded
        self.upsert_latest = p(
            latest.on_conflict_do_update(
                index_elements=[t.c.run_id, t.c.key],
                set_={"step": ex.step, "timestamp": ex.timestamp, "value": ex.value},
                where=sa.or_(
                    ex.step > t.c.step,
                    sa.and_(ex.step == t.c.step, ex.timestamp >= t.c.timestamp),
                ),
            )
        )
        self.heartbeat = p(
            runs.update()
            .where(runs.c.run_id == sa.bindparam("id"))
            .values(heartbeat_at=sa.bindparam("at"))
        )
        art = insert(artifacts).values(_bp("run_id", "path", "sha256", "size", "created_at"))
        self.upsert_artifact = p(
            art.on_conflict_do_update(
                index_elements=[artifacts.c.run_id, artifacts.c.path],
                set_={
                    "sha256": art.excluded.sha256,
                    "size": art.excluded.size,
                    "created_at": art.excluded.created_at,
                },
            )
        )
        self._updates: dict[tuple[str, ...], Prepared] = {}

    def prepare(self, stmt: sa.ClauseElement) -> Prepared:
        """Compile a statement for this dialect."""
        return Prepared.of(stmt, self._dialect)

    def update_run(self, fields: tuple[str, ...]) -> Prepared:
        """``UPDATE runs SET <fields> WHERE run_id = :id`` (cached per set of fields)."""
        st = self._updates.get(fields)
        if st is None:
            st = self.prepare(
                runs.update().where(runs.c.run_id == sa.bindparam("id")).values(_bp(*fields))
            )
            self._updates[fields] = st
        return st
