"""Migration 0001 -> 0002 (datasets): a store at 0001 refuses to open and names the upgrade
command; upgrading keeps every run, param, metric, tag, artifact and environment, and the
upgraded store takes datasets.

``schemas/0001.db`` is a SQLite file written by loopml at schema 0001 (commit 5d2a610) with
``schemas/make_0001.py``: it stands for a user's real store, not for what today's code would
build. The PostgreSQL case builds its 0001 database with the shipped 0001 migration.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from typer.testing import CliRunner

from loopml.entities import RunStatus
from loopml.errors import SchemaVersionError
from loopml.store import open_store
from loopml.store.base import Store
from loopml.store.sql import SqlStore, upgrade_store
from loopml.store.sql import engine as eng
from loopml.store.sql.tables import metadata

SCHEMAS = Path(__file__).parent / "schemas"
PARENT = "d3e207d241734213b3a671156a374ea1"  # the runs in schemas/0001.db
CHILD = "e84c4d8af0414505b31d49e1e1643394"
DATASET_TABLES = {"datasets", "dataset_versions", "run_inputs"}
# Indexes on one dialect only (see tables.py); autogenerate cannot express them.
DIALECT_INDEXES = {
    "ix_params_key_value",
    "ix_tags_key_value",
    "ix_params_key_value_md5",
    "ix_tags_key_value_md5",
    "ix_latest_metrics_run_id_key_cover",
}


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    """A copy of the 0001 SQLite file (the committed one is never written)."""
    target = tmp_path / "old.db"
    shutil.copyfile(SCHEMAS / "0001.db", target)
    return target


def _revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return eng.current_revision(conn)
    finally:
        engine.dispose()


def _schema_diff(url: str) -> list[object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        return [
            d
            for d in diffs
            if not (
                isinstance(d, tuple)
                and d[0] in ("add_index", "remove_index")
                and d[1].name in DIALECT_INDEXES
            )
        ]
    finally:
        engine.dispose()


def _use_datasets(store: Store, run_id: str) -> None:
    """The 0002 features work on the upgraded store, next to the old runs."""
    project = store.get_project("legacy")
    v, created = store.create_dataset_version(
        project.project_id,
        "legacy-data",
        digest="1" * 64,
        blob="2" * 64,
        size_bytes=10,
        num_rows=2,
        num_columns=1,
        schema={"columns": [{"name": "x", "type": "integer"}]},
        run_id=run_id,
    )
    assert created and v.version == 1
    store.log_inputs(run_id, [(v.id, "train")])
    assert [i.dataset_version for i in store.get_run_inputs(run_id)] == [v]
    store.delete_run(run_id)
    assert store.get_dataset_version_by_id(v.id).run_id is None
    assert store.get_dataset_version_runs(v.id) == []


def test_the_0001_file_is_at_0001() -> None:
    with sqlite3.connect(SCHEMAS / "0001.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "runs" in tables and not tables & DATASET_TABLES
    assert eng.REVISIONS[:2] == ("0001", "0002")


def test_a_0001_store_refuses_to_open_and_names_the_upgrade_command(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    for opener in (lambda: open_store(uri), lambda: SqlStore(uri, create=False)):
        with pytest.raises(SchemaVersionError) as info:
            opener()
        message = str(info.value)
        assert "revision 0001, older than this loopml's" in message
        assert f"loopml db upgrade --store '{uri}'" in message
    assert _revision(uri) == "0001"  # refusing changed nothing


def test_upgrading_the_0001_file_keeps_every_run(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    assert upgrade_store(uri) == ("0001", eng.HEAD_REVISION)
    assert upgrade_store(uri) == (eng.HEAD_REVISION, eng.HEAD_REVISION)
    assert _schema_diff(uri) == []
    with open_store(uri) as store:
        project = store.get_project("legacy")
        assert project.description == "made by the 0001 schema"
        parent = store.get_run(PARENT)
        assert (parent.name, parent.user, parent.status) == ("parent", "alice", RunStatus.FINISHED)
        assert (parent.start_time, parent.end_time) == (1_700_000_000_000, 1_700_000_003_000)
        assert dict(parent.params) == {"lr": "0.1", "epochs": "10"}
        assert dict(parent.tags) == {"team": "ml", "note": "kept"}
        assert parent.metrics["loss"] == 1.0 / 100 and math.isnan(parent.metrics["nan"])
        history = store.get_metric_history(PARENT, "loss")
        assert list(history.steps) == list(range(100))
        assert list(history.values) == [1.0 / (i + 1) for i in range(100)]
        assert [a.path for a in store.list_artifacts(PARENT)] == ["model/model.pkl"]
        assert store.get_artifact(PARENT, "model/model.pkl").size == 123
        assert parent.environment_id is not None
        env = store.get_environment(parent.environment_id)
        assert (env.git_commit, env.seed, dict(env.packages)) == ("abc123", 7, {"numpy": "1.26.4"})
        child = store.get_run(CHILD)
        assert child.parent_run_id == PARENT and child.status is RunStatus.RUNNING
        assert store.list_datasets(project.project_id) == []
        _use_datasets(store, CHILD)
        assert len(store.search_runs([project.project_id])) == 1
    with sqlite3.connect(old_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_loopml_db_upgrade_upgrades_the_0001_file(old_db: Path) -> None:
    from loopml.cli.app import app

    uri = f"sqlite:///{old_db}"
    result = CliRunner().invoke(app, ["--store", uri, "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"0001 -> {eng.HEAD_REVISION}" in result.output
    with open_store(uri) as store:
        assert store.get_run(PARENT).params["lr"] == "0.1"


def test_upgrade_from_the_0001_migration_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade_from_0001(f"sqlite:///{tmp_path}/built.db")


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of its own (the session one is at head already)."""
    import psycopg
    from psycopg import sql

    name = f"loopml_mig_{uuid.uuid4().hex[:12]}"
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


@pytest.mark.postgres
def test_upgrade_from_the_0001_migration_on_postgresql(empty_pg_url: str) -> None:
    _check_upgrade_from_0001(empty_pg_url)


def _check_upgrade_from_0001(url: str) -> None:
    """Build schema 0001 with its migration, write runs with plain SQL, upgrade, read back."""
    engine = eng.create_engine(url)
    try:
        eng._run_alembic(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO projects (project_id, name, description, created_at) "
                    "VALUES (:p, 'legacy', '', 1)"
                ),
                {"p": "0" * 32},
            )
            for run_id, name in ((PARENT, "parent"), (CHILD, "child")):
                conn.execute(
                    sa.text(
                        'INSERT INTO runs (run_id, project_id, name, status, start_time, "user") '
                        "VALUES (:r, :p, :n, 'running', 5, '')"
                    ),
                    {"r": run_id, "p": "0" * 32, "n": name},
                )
            conn.execute(
                sa.text("INSERT INTO params (run_id, key, value) VALUES (:r, 'lr', '0.1')"),
                {"r": PARENT},
            )
    finally:
        engine.dispose()
    assert _revision(url) == "0001"
    with pytest.raises(SchemaVersionError, match="loopml db upgrade"):
        open_store(url)
    assert upgrade_store(url) == ("0001", eng.HEAD_REVISION)
    assert _schema_diff(url) == []
    with open_store(url) as store:
        assert store.get_run(PARENT).params["lr"] == "0.1"
        assert store.get_run(CHILD).name == "child"
        _use_datasets(store, CHILD)
        assert [r.name for r in store.search_runs()] == ["parent"]
