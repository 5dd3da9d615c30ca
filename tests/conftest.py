"""Session fixtures shared by every test package: a throwaway PostgreSQL database, a real S3
endpoint from moto's server, and a private dataset cache."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

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


@pytest.fixture(scope="session")
def pg_truncate(pg_url: str) -> Iterator[Callable[[], None]]:
    """A function that empties every table of the session database (its schema made on first
    use): a fresh, empty PostgreSQL store per test without a database per test."""
    import sqlalchemy as sa

    from loopml.store import open_store

    open_store(pg_url).close()
    engine = sa.create_engine(pg_url)
    meta = sa.MetaData()
    meta.reflect(engine)
    tables = [t for t in meta.sorted_tables if t.name != "alembic_version"]
    quote = engine.dialect.identifier_preparer.format_table
    statement = sa.text(f"TRUNCATE {', '.join(quote(t) for t in tables)} RESTART IDENTITY CASCADE")

    def truncate() -> None:
        with engine.begin() as conn:
            conn.execute(statement)

    yield truncate
    engine.dispose()


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


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on a free local port, with dummy credentials in the env."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "LOOPML_S3_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    """A boto3 S3 client talking to the moto server."""
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A new, empty bucket for one test."""
    name = f"loopml-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name
