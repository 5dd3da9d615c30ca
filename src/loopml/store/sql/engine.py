"""Engines, transactions and schema versions for the SQL store.

SQLite is set up so that many threads and processes can write one file without ever seeing
"database is locked": WAL journaling (readers never block the writer), a long busy timeout, and
write transactions that take the write lock up front (``BEGIN IMMEDIATE``), so a transaction never
has to upgrade a read lock to a write lock mid-way, the case a busy timeout cannot help with.

Schema versions are Alembic revisions shipped in the package. A new, empty database gets the
current schema on first open (under a lock, so concurrent first opens do not race); a database
with an older or newer schema refuses to open with a message naming the command to run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from loopml.errors import SchemaVersionError, StoreError

__all__ = [
    "HEAD_REVISION",
    "REVISIONS",
    "create_engine",
    "current_revision",
    "ensure_schema",
    "upgrade",
]

#: Every schema revision this loopml knows, oldest first; the last is the one it runs on.
REVISIONS: tuple[str, ...] = tuple(f"{n:04d}" for n in range(1, 10))
HEAD_REVISION = REVISIONS[-1]
_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x100F_1A1  # pg_advisory_lock key for migrations


def to_sqlalchemy_url(uri: str) -> str:
    """``postgresql://`` and ``postgres://`` use psycopg 3; other URLs pass through."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri


def mask_password(uri: str) -> str:
    """The URI with any password replaced by ``***`` (for messages and ``Store.uri``)."""
    try:
        return sa.engine.make_url(uri).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return uri


def create_engine(uri: str, *, busy_timeout: float = 60.0, synchronous: str = "normal") -> Engine:
    """An engine for ``uri`` with loopml's connection settings.

    Raises:
        StoreError: the URL is malformed or its driver is missing.
    """
    url = to_sqlalchemy_url(uri)
    try:
        if url.startswith("sqlite"):
            return _sqlite_engine(url, busy_timeout, synchronous)
        if url.startswith("postgresql"):
            from loopml._lazy import require

            require("psycopg", "postgres", "A PostgreSQL store")
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise StoreError(f"cannot open store {mask_password(uri)!r}: {exc}") from exc


def _sqlite_engine(url: str, busy_timeout: float, synchronous: str) -> Engine:
    if synchronous.lower() not in ("normal", "full"):
        raise StoreError(
            f"LOOPML_SQLITE_SYNCHRONOUS must be 'normal' or 'full', not {synchronous!r}"
        )
    path = sa.engine.make_url(url).database
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        pool_size=8,
        max_overflow=32,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver: we emit BEGIN ourselves (below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _ensure_wal(cur, busy_timeout)
        # NORMAL (the default) in WAL mode: a commit survives a crash of the process but may be
        # lost on power loss; FULL fsyncs the WAL at every commit and survives that too.
        cur.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA case_sensitive_like = ON")
        cur.close()
        dbapi_conn.create_function("loopml_lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("loopml_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    return engine


def _ensure_wal(cursor: Any, busy_timeout: float) -> None:
    """Switch the file to WAL journaling (a property of the file, set once).

    Switching needs the write lock, and SQLite answers "database is locked" at once, without
    using the busy timeout, when another connection holds it; so wait and retry here.
    """
    import sqlite3
    import time

    deadline = time.monotonic() + busy_timeout
    delay = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _lower(value: object) -> object:
    """Unicode lower-casing for ``ilike`` on SQLite (whose own lower() knows only ASCII)."""
    return value.lower() if isinstance(value, str) else value


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite it holds the write lock from its first statement."""
    with engine.connect() as conn:
        conn.execution_options(loopml_write=True)
        with conn.begin():
            yield conn


@contextlib.contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read transaction: one consistent snapshot for all its queries."""
    with engine.connect() as conn, conn.begin():
        yield conn


def current_revision(conn: Connection) -> str | None:
    """The schema revision of the database, or None for an empty database.

    Raises:
        SchemaVersionError: the database has tables but is not a loopml store.
    """
    from loopml.store.sql.tables import metadata

    names = set(sa.inspect(conn).get_table_names())
    if "alembic_version" not in names:
        if names & set(metadata.tables):
            raise SchemaVersionError(
                "this database has tables but no loopml schema version; point "
                "LOOPML_TRACKING_URI at an empty database or a loopml store"
            )
        return None
    row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def _check(revision: str | None, uri: str) -> None:
    if revision == HEAD_REVISION:
        return
    if revision in REVISIONS:
        raise SchemaVersionError(
            f"the store {uri!r} has schema revision {revision}, older than this loopml's "
            f"{HEAD_REVISION}; back it up, then run: loopml db upgrade --store '{uri}'"
        )
    raise SchemaVersionError(
        f"the store {uri!r} has schema revision {revision!r}, which this loopml does not know "
        f"(it knows {', '.join(REVISIONS)}); it was written by a newer loopml: "
        "upgrade with pip install -U loopml"
    )


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Serialise schema changes across processes (file lock on SQLite, advisory lock on PG)."""
    if engine.dialect.name == "sqlite":
        db = engine.url.database or ""
        with open(f"{db}.migrate-lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
    else:
        yield


def _run_alembic(engine: Engine, target: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with write_transaction(engine) as conn:  # the write lock up front, as for every write
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def ensure_schema(engine: Engine, uri: str) -> None:
    """Create the schema in an empty database; refuse one at another revision.

    Raises:
        SchemaVersionError: the database is at an older or newer revision.
        StoreError: the database cannot be reached.
    """
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
        if revision is None:
            with _migration_lock(engine):
                with engine.connect() as conn:
                    revision = current_revision(conn)
                if revision is None:
                    _run_alembic(engine, "head")
                    revision = HEAD_REVISION
        _check(revision, uri)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open store {uri!r}: {exc}") from exc


def upgrade(engine: Engine, uri: str) -> tuple[str | None, str]:
    """Upgrade the database to the newest revision; returns (before, after).

    Raises:
        SchemaVersionError: the database is newer than this loopml.
    """
    try:
        with _migration_lock(engine):
            with engine.connect() as conn:
                before = current_revision(conn)
            if before is not None and before not in REVISIONS:
                _check(before, uri)
            if before != HEAD_REVISION:
                _run_alembic(engine, "head")
        return before, HEAD_REVISION
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade store {uri!r}: {exc}") from exc
