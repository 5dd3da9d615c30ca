"""Migration 0002 -> 0003 (model registry): a store at 0002 refuses to open and names the upgrade
command; upgrading keeps every run, metric, dataset version and run input, and the upgraded
store registers models next to them.

``schemas/0002.db`` is a SQLite file written by loopml at schema 0002 (commit 4ddac10) with
``schemas/make_0002.py``. The PostgreSQL case builds its 0002 database with the shipped
migrations.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loopml.entities import RunStatus
from loopml.errors import SchemaVersionError
from loopml.store import open_store
from loopml.store.base import Store
from loopml.store.sql import SqlStore, upgrade_store
from loopml.store.sql import engine as eng
from loopml.store.sql.tables import metadata

SCHEMAS = Path(__file__).parent / "schemas"
RUN = "4c2ca14b3f3b45f0afe27349edf45197"  # in schemas/0002.db
DATASET_VERSION = "6e0f8d5c452143588f7cbf73923add51"
REGISTRY_TABLES = {"registered_models", "model_versions", "model_aliases", "audit_events"}
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
    """A copy of the 0002 SQLite file (the committed one is never written)."""
    target = tmp_path / "old.db"
    shutil.copyfile(SCHEMAS / "0002.db", target)
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


def _use_the_registry(store: Store, run_id: str, dataset_version_id: str) -> None:
    """The 0003 features work on the upgraded store, next to the old runs and datasets."""
    pid = store.get_project("legacy").project_id
    store.create_registered_model(pid, "churn", actor="alice")
    v = store.create_model_version(
        pid,
        "churn",
        source=f"runs:/{run_id}/model",
        run_id=run_id,
        flavor="sklearn",
        manifest_digest="a" * 64,
        actor="alice",
    )
    assert v.version == 1
    store.set_model_alias(pid, "churn", "champion", 1, actor="alice", reason="first")
    assert store.get_model_version_by_alias(pid, "churn", "champion") == store.get_model_version(
        pid, "churn", 1
    )
    users = [u.run_id for u in store.get_dataset_version_runs(dataset_version_id)]
    assert users == [run_id]
    assert store.list_model_versions(pid, run_id=run_id)[0].version == 1  # lineage both ways
    actions = [e.action for e in store.search_audit_events(pid)]
    assert actions == ["alias.set", "model_version.create", "model.create"]


def test_the_0002_file_is_at_0002() -> None:
    with sqlite3.connect(SCHEMAS / "0002.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "datasets", "run_inputs"} <= tables and not tables & REGISTRY_TABLES
    assert eng.REVISIONS[:3] == ("0001", "0002", "0003")


def test_a_0002_store_refuses_to_open_and_names_the_upgrade_command(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    for opener in (lambda: open_store(uri), lambda: SqlStore(uri, create=False)):
        with pytest.raises(SchemaVersionError) as info:
            opener()
        message = str(info.value)
        assert "revision 0002, older than this loopml's" in message
        assert f"loopml db upgrade --store '{uri}'" in message
    assert _revision(uri) == "0002"  # refusing changed nothing


def test_upgrading_the_0002_file_keeps_runs_and_datasets(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    assert upgrade_store(uri) == ("0002", eng.HEAD_REVISION)
    assert upgrade_store(uri) == (eng.HEAD_REVISION, eng.HEAD_REVISION)
    assert _schema_diff(uri) == []
    with open_store(uri) as store:
        project = store.get_project("legacy")
        assert project.description == "made by the 0002 schema"
        run = store.get_run(RUN)
        assert (run.name, run.user, run.status) == ("trainer", "alice", RunStatus.FINISHED)
        assert dict(run.params) == {"lr": "0.1"} and run.metrics["auc"] == pytest.approx(0.59)
        assert len(store.get_metric_history(RUN, "auc")) == 10
        dv = store.get_dataset_version_by_id(DATASET_VERSION)
        assert (dv.name, dv.version, dv.run_id) == ("churn", 1, RUN)
        assert dv.schema == {"columns": [{"name": "x", "type": "integer"}]}
        assert [(i.dataset_version.id, i.role) for i in store.get_run_inputs(RUN)] == [
            (DATASET_VERSION, "train")
        ]
        assert store.list_registered_models(project.project_id) == []
        assert store.search_audit_events(project.project_id) == []
        _use_the_registry(store, RUN, DATASET_VERSION)
    with sqlite3.connect(old_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_upgrade_from_the_0002_migration_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade_from_0002(f"sqlite:///{tmp_path}/built.db")


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of its own (the session one is at head already)."""
    import psycopg
    from psycopg import sql

    name = f"loopml_mig3_{uuid.uuid4().hex[:12]}"
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
def test_upgrade_from_the_0002_migration_on_postgresql(empty_pg_url: str) -> None:
    _check_upgrade_from_0002(empty_pg_url)


def _check_upgrade_from_0002(url: str) -> None:
    """Build schema 0002 with its migrations, write a run and a dataset version with plain SQL,
    upgrade, read back, use the registry."""
    engine = eng.create_engine(url)
    version_id = "1" * 32
    try:
        eng._run_alembic(engine, "0002")
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO projects (project_id, name, description, created_at) "
                    "VALUES (:p, 'legacy', '', 1)"
                ),
                {"p": "0" * 32},
            )
            conn.execute(
                sa.text(
                    'INSERT INTO runs (run_id, project_id, name, status, start_time, "user") '
                    "VALUES (:r, :p, 'trainer', 'finished', 5, '')"
                ),
                {"r": RUN, "p": "0" * 32},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO datasets (id, project_id, name, description, created_at) "
                    "VALUES (:d, :p, 'churn', '', 1)"
                ),
                {"d": "2" * 32, "p": "0" * 32},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO dataset_versions (id, dataset_id, version, digest, blob, "
                    "size_bytes, num_rows, num_columns, source, run_id, metadata, created_at) "
                    "VALUES (:v, :d, 1, :h, :h, 1, 1, 1, '', :r, '{}', 1)"
                ),
                {"v": version_id, "d": "2" * 32, "h": "3" * 64, "r": RUN},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO run_inputs (run_id, version_id, role, created_at) "
                    "VALUES (:r, :v, 'train', 1)"
                ),
                {"r": RUN, "v": version_id},
            )
    finally:
        engine.dispose()
    assert _revision(url) == "0002"
    with pytest.raises(SchemaVersionError, match="loopml db upgrade"):
        open_store(url)
    assert upgrade_store(url) == ("0002", eng.HEAD_REVISION)
    assert _schema_diff(url) == []
    with open_store(url) as store:
        assert store.get_run(RUN).name == "trainer"
        assert store.get_dataset_version_by_id(version_id).run_id == RUN
        _use_the_registry(store, RUN, version_id)
