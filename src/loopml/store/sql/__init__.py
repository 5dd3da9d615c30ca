"""The SQL metadata store on SQLAlchemy 2: SQLite for one machine, PostgreSQL for a team.

The only part of loopml that imports SQLAlchemy and Alembic.
"""

from __future__ import annotations

from loopml.store.sql.engine import HEAD_REVISION as HEAD_REVISION
from loopml.store.sql.store import SqlStore as SqlStore

__all__ = ["HEAD_REVISION", "SqlStore", "upgrade_store"]


def upgrade_store(uri: str) -> tuple[str | None, str]:
    """Upgrade the database at ``uri`` to this loopml's schema; returns (before, after)."""
    from loopml.store.sql import engine as eng

    engine = eng.create_engine(uri)
    try:
        return eng.upgrade(engine, eng.mask_password(uri))
    finally:
        engine.dispose()
