"""The Store conformance suite (:mod:`loopml.testing.store_suite`, with the deployment suite of
:mod:`loopml.testing.store_suite_deployments` and the monitoring suite of
:mod:`loopml.testing.store_suite_monitors`) on every built-in backend: the in-memory reference
store, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from loopml.store import Store, open_store
from loopml.store.memory import InMemoryStore
from loopml.testing import StoreSuite
from loopml.testing.store_suite_deployments import DeploymentSuite
from loopml.testing.store_suite_leases import LeaseSuite
from loopml.testing.store_suite_monitors import MonitorSuite

try:
    from loopml.store.sql import SqlStore  # noqa: F401 - only checks the SQL store is there
except ImportError as exc:
    SQL_MISSING: str | None = f"the SQL store (loopml.store.sql) does not import: {exc}"
else:
    SQL_MISSING = None

needs_sql = pytest.mark.skipif(SQL_MISSING is not None, reason=SQL_MISSING or "")


class TestMemoryStore(StoreSuite, DeploymentSuite, MonitorSuite, LeaseSuite):
    @pytest.fixture
    def store(self) -> InMemoryStore:
        return InMemoryStore()


@needs_sql
class TestSqliteStore(StoreSuite, DeploymentSuite, MonitorSuite, LeaseSuite):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = open_store(f"sqlite:///{tmp_path}/t.db")
        yield store
        store.close()


@needs_sql
@pytest.mark.postgres
class TestPostgresStore(StoreSuite, DeploymentSuite, MonitorSuite, LeaseSuite):
    @pytest.fixture
    def store(self, pg_url: str, pg_truncate: Callable[[], None]) -> Iterator[Store]:
        pg_truncate()
        store = open_store(pg_url)
        yield store
        store.close()
