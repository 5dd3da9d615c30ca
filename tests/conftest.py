"""Session fixtures shared by every test package: a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

# The shipped conformance suites assert with plain `assert`; let pytest explain their failures.
pytest.register_assert_rewrite("loopml.testing")

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test session, dropped at the end.

    Skips when the server is not reachable, except on CI, where that is a failure.
    """
    psycopg = pytest.importorskip("psycopg")
    from psycopg import sql

    name = f"loopml_test_{uuid.uuid4().hex[:16]}"
    admin = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres connect_timeout=5"
    try:
        conn = psycopg.connect(admin, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT}: {exc}")
    with conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_url(pg_database: str) -> str:
    """The SQLAlchemy URL of the session's PostgreSQL database."""
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{pg_database}"


@pytest.fixture(autouse=True, scope="session")
def _private_dataset_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Dataset files loaded by tests are cached in a temporary folder, not in ~/.cache."""
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if old is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = old
