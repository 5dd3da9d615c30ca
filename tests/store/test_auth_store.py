"""The AuthStore conformance suite (:mod:`loopml.testing.auth_suite`) on every built-in backend:
memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

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


@pytest.mark.postgres
class TestPostgresAuth(AuthSuite):
    @pytest.fixture
    def store(self, pg_url: str, pg_truncate: Callable[[], None]) -> Iterator[Store]:
        pg_truncate()
        store = open_store(pg_url)
        yield store
        store.close()
