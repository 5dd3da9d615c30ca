"""The hot reads (search, get a run) on the driver's own cursor.

Like the hot writes in :mod:`.statements`, these run statements compiled once per dialect on the
DB-API cursor, skipping SQLAlchemy's per-call compile and result machinery: a search of a thousand
runs spends more time there than in SQLite. Rows come back as plain tuples in the column order of
the ``runs`` table, and :class:`RunLoader` fetches the params, tags and latest metrics of a page of
runs in one statement.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Sequence
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine

from loopml.entities import Run, RunStatus
from loopml.store.sql.statements import Prepared, RawTx
from loopml.store.sql.tables import latest_metrics, params, runs, tags

__all__ = ["RUN_COLUMNS", "RunLoader", "raw_read"]

RUN_COLUMNS = tuple(runs.c.keys())
"""The columns of a run row, in the order the search statement selects them."""
_STATUS = {s.value: s for s in RunStatus}
_FIELDS = (
    "run_id",
    "project_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
    "user",
    "heartbeat_at",
    "environment_id",
)


@contextlib.contextmanager
def raw_read(engine: Engine) -> Iterator[RawTx]:
    """A read transaction (one consistent snapshot) on a pooled connection's driver connection."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        if engine.dialect.name == "sqlite":
            raw.execute("BEGIN")
        cursor = raw.cursor()
        try:
            yield RawTx(cursor)
        finally:
            cursor.close()
            raw.rollback()


class RunLoader:
    """Builds :class:`Run` entities from run rows, with their params, tags and latest metrics."""

    def __init__(self, dialect: Dialect) -> None:
        self._sqlite = dialect.name == "sqlite"
        if self._sqlite:
            # One JSON array parameter for any number of ids (no limit on bound variables).
            ids = sa.select(sa.func.json_each(sa.bindparam("ids")).table_valued("value").c.value)

            def of(table: sa.Table) -> Any:
                return table.c.run_id.in_(ids.scalar_subquery())

        else:
            array = sa.bindparam("ids", type_=sa.ARRAY(sa.String))

            def of(table: sa.Table) -> Any:
                return table.c.run_id == sa.any_(array)

        no_text = sa.cast(sa.null(), sa.String)
        no_number = sa.cast(sa.null(), sa.Float)
        details = sa.union_all(
            sa.select(
                sa.literal(0), params.c.run_id, params.c.key, params.c.value, no_number
            ).where(of(params)),
            sa.select(sa.literal(1), tags.c.run_id, tags.c.key, tags.c.value, no_number).where(
                of(tags)
            ),
            sa.select(
                sa.literal(2),
                latest_metrics.c.run_id,
                latest_metrics.c.key,
                no_text,
                latest_metrics.c.value,
            ).where(of(latest_metrics)),
        )
        self._details = Prepared.of(details, dialect)
        self._index = [RUN_COLUMNS.index(name) for name in _FIELDS]

    def load(self, tx: RawTx, rows: Sequence[Sequence[Any]]) -> list[Run]:
        """The runs of ``rows`` (tuples in :data:`RUN_COLUMNS` order), in the same order."""
        if not rows:
            return []
        id_at = self._index[0]
        ids = [r[id_at] for r in rows]
        found: dict[str, tuple[dict[str, str], dict[str, str], dict[str, float]]] = {
            i: ({}, {}, {}) for i in ids
        }
        bound = json.dumps(ids) if self._sqlite else ids
        nan = math.nan
        for kind, run_id, key, text, number in tx.run(self._details, {"ids": bound}):
            if kind == 2:
                found[run_id][2][key] = nan if number is None else number
            else:
                found[run_id][kind][key] = text
        out = []
        ix = self._index
        for r in rows:
            p, t, m = found[r[ix[0]]]
            out.append(
                Run(
                    r[ix[0]],
                    r[ix[1]],
                    r[ix[2]],
                    _STATUS[r[ix[3]]],
                    r[ix[4]],
                    r[ix[5]],
                    r[ix[6]],
                    r[ix[7]],
                    r[ix[8]],
                    MappingProxyType(dict(sorted(p.items()))),
                    MappingProxyType(dict(sorted(m.items()))),
                    MappingProxyType(dict(sorted(t.items()))),
                    r[ix[9]],
                )
            )
        return out
