"""The AuthStore conformance suite (:mod:`loopml.testing.auth_suite`) on every built-in backend:
memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.store import Store, open_store
from loopml.store.memory import InMemoryStore
from loopml.testing.auth_suite import AuthSuite


class TestMemoryAuth(AuthSuite):
    @pytest.fixture
    def store(self) -> InMemoryStore:
        return InMemoryStore()


class TestSqliteAuth(AuthSuite):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = open_store(f"sqlite:///{tmp_path}/t.db")
        yield store
        store.close()


@pytest.fixture(scope="session")
def _pg_empty(pg_url: str) -> Iterator[Any]:
    """A function that empties every table of the session database."""
    import sqlalchemy as sa

    open_store(pg_url).close()
    engine = sa.create_engine(pg_url)
    meta = sa.MetaData()
    meta.reflect(engine)
    names = ", ".join(
        engine.dialect.identifier_preparer.format_table(t)
        for t in meta.sorted_tables
        if t.name != "alembic_version"
    )

    def empty() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    yield empty
    engine.dispose()


@pytest.mark.postgres
class TestPostgresAuth(AuthSuite):
    @pytest.fixture
    def store(self, pg_url: str, _pg_empty: Any) -> Iterator[Store]:
        _pg_empty()
        store = open_store(pg_url)
        yield store
        store.close()
