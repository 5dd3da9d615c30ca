"""The lease methods of :class:`~loopml.store.sql.SqlStore`.

A lease is one row of ``leases``. Taking it is one write transaction: read the database's clock,
then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that takes the row only when it is free,
expired or already this holder's. PostgreSQL locks the conflicting row and re-checks the
condition on its latest version, and SQLite's write transactions hold the database's write lock
from their first statement, so of concurrent takers exactly one wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from loopml.entities import Lease, now_ms
from loopml.store.sql.tables import leases

__all__ = ["SqlLeaseStore"]

_l = leases.c


class SqlLeaseStore:
    """Leases in a SQL store's database (mixed into :class:`~loopml.store.sql.SqlStore`)."""

    if TYPE_CHECKING:
        _insert: Callable[..., Any]
        _dialect: str

        def _write(self, fn: Callable[[Connection], Any]) -> Any: ...

        def _read(self, fn: Callable[[Connection], Any]) -> Any: ...

    def _db_now(self, conn: Connection) -> int:
        """Now, in milliseconds, on the database server's clock (PostgreSQL), so that replicas
        with skewed clocks agree; SQLite is one machine: the process clock."""
        if self._dialect != "postgresql":
            return now_ms()
        epoch = sa.extract("epoch", sa.func.clock_timestamp()) * 1000
        return int(
            conn.execute(sa.select(sa.cast(sa.func.floor(epoch), sa.BigInteger))).scalar_one()
        )

    def _acquire_lease(self, name: str, holder: str, ttl_ms: int) -> Lease | None:
        def tx(conn: Connection) -> Lease | None:
            now = self._db_now(conn)
            stmt = self._insert(leases).values(
                name=name, holder=holder, acquired_at=now, expires_at=now + ttl_ms
            )
            excluded = stmt.excluded
            renewing = sa.and_(_l.holder == excluded.holder, _l.expires_at > now)
            stmt = stmt.on_conflict_do_update(
                index_elements=[_l.name],
                set_={
                    "holder": excluded.holder,
                    "acquired_at": sa.case((renewing, _l.acquired_at), else_=excluded.acquired_at),
                    "expires_at": excluded.expires_at,
                },
                where=sa.or_(_l.holder == excluded.holder, _l.expires_at <= now),
            )
            conn.execute(stmt)
            row = conn.execute(
                sa.select(_l.holder, _l.acquired_at, _l.expires_at).where(_l.name == name)
            ).one()
            if row.holder != holder:  # another holder has it: the update did not apply
                return None
            return Lease(name, holder, int(row.acquired_at), int(row.expires_at))

        return self._write(tx)  # type: ignore[no-any-return]

    def _release_lease(self, name: str, holder: str) -> None:
        def tx(conn: Connection) -> None:
            conn.execute(leases.delete().where(_l.name == name, _l.holder == holder))

        self._write(tx)

    def _get_lease(self, name: str) -> Lease | None:
        def tx(conn: Connection) -> Lease | None:
            now = self._db_now(conn)
            row = conn.execute(
                sa.select(_l.holder, _l.acquired_at, _l.expires_at).where(
                    _l.name == name, _l.expires_at > now
                )
            ).first()
            if row is None:
                return None
            return Lease(name, row.holder, int(row.acquired_at), int(row.expires_at))

        return self._read(tx)  # type: ignore[no-any-return]
