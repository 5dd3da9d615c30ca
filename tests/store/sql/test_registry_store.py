"""The SQL registry writes a change and its audit event in one transaction, on SQLite and
PostgreSQL: when the audit event cannot be written the change is not made, and a process killed
between the two leaves neither behind (nor a lock that blocks the next writer)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.errors import StoreError
from loopml.store import open_store
from loopml.store.base import Store
from loopml.store.sql import SqlStore

DIGEST = "e" * 64

SQLITE_REFUSE = (
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
)
PG_REFUSE = (
    "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
)
PG_ALLOW = ("DROP TRIGGER refuse_audit ON audit_events", "DROP FUNCTION refuse_audit()")


@pytest.fixture
def own_pg_url(pg_url: str) -> Iterator[str]:
    """A new PostgreSQL database for one test (its triggers must not reach other tests)."""
    import psycopg
    from psycopg import sql

    name = f"loopml_reg_{uuid.uuid4().hex[:12]}"
    admin = sa.engine.make_url(pg_url).set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


def _setup(store: Store) -> str:
    """A project with model ``m`` at versions 1 and 2, ``champion`` on 1; its id."""
    pid = store.get_or_create_project("p").project_id
    store.create_registered_model(pid, "m", actor="setup")
    for _ in range(2):
        store.create_model_version(
            pid, "m", source="s", flavor="sklearn", manifest_digest=DIGEST, actor="setup"
        )
    store.set_model_alias(pid, "m", "champion", 1, actor="setup")
    return pid


def _unchanged(store: Store, pid: str, events: int) -> None:
    """Nothing of the failed changes was written."""
    assert store.get_model_version_by_alias(pid, "m", "champion").version == 1
    assert store.get_registered_model(pid, "m").latest_version == 2
    assert [v.version for v in store.list_model_versions(pid, "m")] == [1, 2]
    assert store.get_model_version(pid, "m", 2).description == ""
    assert len(store.search_audit_events(pid, max_results=1000)) == events


def _refused_audit_blocks_every_change(
    url: str, refuse: tuple[str, ...], allow: tuple[str, ...]
) -> None:
    with open_store(url) as store:
        assert isinstance(store, SqlStore)
        pid = _setup(store)
        events = len(store.search_audit_events(pid))
        with store.engine.begin() as conn:
            for statement in refuse:
                conn.exec_driver_sql(statement)
        changes = (
            lambda: store.set_model_alias(pid, "m", "champion", 2, actor="a"),
            lambda: store.delete_model_alias(pid, "m", "champion", actor="a"),
            lambda: store.create_model_version(
                pid, "m", source="s", flavor="sklearn", manifest_digest=DIGEST, actor="a"
            ),
            lambda: store.update_model_version(pid, "m", 2, description="x", actor="a"),
            lambda: store.set_model_version_gate_result(pid, "m", 2, {"ok": True}, actor="a"),
            lambda: store.update_registered_model(pid, "m", description="x", actor="a"),
            lambda: store.delete_registered_model(pid, "m", actor="a"),
            lambda: store.create_registered_model(pid, "other", actor="a"),
        )
        for change in changes:
            with pytest.raises(StoreError, match="audit refused"):
                change()
        _unchanged(store, pid, events)
        assert [m.name for m in store.list_registered_models(pid)] == ["m"]
        with store.engine.begin() as conn:
            for statement in allow:
                conn.exec_driver_sql(statement)
        store.set_model_alias(pid, "m", "champion", 2, actor="a")  # and it works again
        assert store.search_audit_events(pid)[0].details["previous"] == 1


def test_a_refused_audit_event_blocks_the_change_on_sqlite(tmp_path: Path) -> None:
    _refused_audit_blocks_every_change(
        f"sqlite:///{tmp_path}/a.db", (SQLITE_REFUSE,), ("DROP TRIGGER refuse_audit",)
    )


@pytest.mark.postgres
def test_a_refused_audit_event_blocks_the_change_on_postgresql(own_pg_url: str) -> None:
    _refused_audit_blocks_every_change(own_pg_url, PG_REFUSE, PG_ALLOW)


# A process that dies (os._exit: no cleanup, no rollback of its own) in the middle of a change,
# after the change's rows were written in the transaction and before its audit event.
CRASH = r"""
import os, sys
from loopml.store import open_store
from loopml.store.sql import registry

uri, what = sys.argv[1:3]
digest = "e" * 64
store = open_store(uri)
pid = store.get_project("p").project_id
registry.insert_event = lambda conn, event: os._exit(17)
if what == "alias":
    store.set_model_alias(pid, "m", "champion", 2, actor="crash")
elif what == "version":
    store.create_model_version(pid, "m", source="s", flavor="f", manifest_digest=digest, actor="x")
else:
    store.update_model_version(pid, "m", 2, description="x", actor="crash")
print("not reached")
"""


def _crash_leaves_nothing(url: str, tmp_path: Path) -> None:
    with open_store(url) as store:
        pid = _setup(store)
        events = len(store.search_audit_events(pid))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    for what in ("alias", "version", "update"):
        done = subprocess.run(
            [sys.executable, "-c", CRASH, url, what],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 17, done.stderr
        assert "not reached" not in done.stdout
    with open_store(url) as store:
        _unchanged(store, pid, events)
        # No lock was left behind: the next writer goes ahead, and numbering has no gap.
        v = store.create_model_version(
            pid, "m", source="s", flavor="sklearn", manifest_digest=DIGEST, actor="after"
        )
        assert v.version == 3
        event = store.set_model_alias(pid, "m", "champion", 3, actor="after")
        assert event.details == {"alias": "champion", "version": 3, "previous": 1}


def test_a_crash_between_change_and_audit_leaves_neither_on_sqlite(tmp_path: Path) -> None:
    _crash_leaves_nothing(f"sqlite:///{tmp_path}/c.db", tmp_path)


@pytest.mark.postgres
def test_a_crash_between_change_and_audit_leaves_neither_on_postgresql(
    own_pg_url: str, tmp_path: Path
) -> None:
    _crash_leaves_nothing(own_pg_url, tmp_path)


def test_the_schema_holds_the_registry_constraints(tmp_path: Path) -> None:
    """What stands behind the locks: one number per model, one alias name per model."""
    url = f"sqlite:///{tmp_path}/s.db"
    open_store(url).close()
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        uniques = {
            tuple(u["column_names"]) for u in inspector.get_unique_constraints("model_versions")
        }
        assert ("model_id", "version") in uniques
        assert inspector.get_pk_constraint("model_aliases")["constrained_columns"] == [
            "model_id",
            "alias",
        ]
        indexes = {i["name"] for i in inspector.get_indexes("audit_events")}
        assert {
            "ix_audit_events_project_id_timestamp",
            "ix_audit_events_project_id_object_type_object_name",
        } <= indexes
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_a_clock_that_steps_back_does_not_reorder_a_models_events(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another host's clock may be behind: a model's events still sort as they happened."""
    import loopml.store.memory
    import loopml.store.sql.registry

    module = loopml.store.memory if backend == "memory" else loopml.store.sql.registry
    store = open_store("memory://" if backend == "memory" else f"sqlite:///{tmp_path}/k.db")
    pid = _setup(store)
    last = store.get_registered_model(pid, "m").updated_at
    monkeypatch.setattr(module, "now_ms", lambda: last - 60_000)  # a minute behind
    store.set_model_alias(pid, "m", "champion", 2, actor="behind")
    v = store.create_model_version(
        pid, "m", source="s", flavor="sklearn", manifest_digest=DIGEST, actor="behind"
    )
    assert v.created_at == last
    events = store.search_audit_events(pid, max_results=3)
    assert [e.action for e in events] == ["model_version.create", "alias.set", "alias.set"]
    assert events[1].details == {"alias": "champion", "version": 2, "previous": 1}
    assert store.get_registered_model(pid, "m").updated_at == last
    store.close()
