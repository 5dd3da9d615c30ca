"""Migration 0003 -> 0004 (deployments, prediction-log segments, window profiles): a store at 0003
refuses to open and names the upgrade command; upgrading keeps every run, dataset version, model
version, alias and audit event, and the upgraded store keeps deployments next to them.

``schemas/0003.db`` is a SQLite file written by loopml at schema 0003 (commit a090056) with
``schemas/make_0003.py``. The PostgreSQL case builds its 0003 database with the shipped
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

from loopml.entities import PredictionSegment, Route, RouteRole, RunStatus, WindowProfile
from loopml.errors import SchemaVersionError
from loopml.store import open_store
from loopml.store.base import Store, new_id
from loopml.store.sql import engine as eng
from loopml.store.sql import upgrade_store
from loopml.store.sql.tables import metadata

SCHEMAS = Path(__file__).parent / "schemas"
RUN = "79e6d82173324f43a8ea9d16881bf535"  # in schemas/0003.db
DATASET_VERSION = "f95080d39e3c4b9ab17fb4ff07919bc7"
SERVING_TABLES = {"deployments", "prediction_segments", "window_profiles"}
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
    """A copy of the 0003 SQLite file (the committed one is never written)."""
    target = tmp_path / "old.db"
    shutil.copyfile(SCHEMAS / "0003.db", target)
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


def _use_deployments(store: Store) -> None:
    """The 0004 features work on the upgraded store, next to the old registry."""
    pid = store.get_project("legacy").project_id
    routes = [
        Route("primary", "models:/churn@champion", RouteRole.PRIMARY),
        Route("canary", "models:/churn/1", RouteRole.CANARY, 0.2),
    ]
    d = store.create_deployment(pid, "churn-api", routes, actor="alice")
    assert d.primary.model_uri == "models:/churn@champion"
    assert store.get_model_version_by_alias(pid, "churn", "champion").version == 2
    up = store.update_deployment(
        pid, "churn-api", description="x", actor="bob", expected_revision=1
    )
    assert up.revision == 2
    seg = PredictionSegment(new_id(), pid, "churn-api", 0, 10, 3, "s3://logs/0.parquet")
    store.add_prediction_segment(seg)
    assert [s.id for s in store.list_prediction_segments(pid, "churn-api", start=5)] == [seg.id]
    wp = WindowProfile(new_id(), pid, "churn-api", "primary", "churn/2", 0, 60, 3, {"rows": 3})
    store.add_window_profile(wp)
    assert store.list_window_profiles(pid, "churn-api")[0].profile == {"rows": 3}
    actions = [e.action for e in store.search_audit_events(pid, max_results=100)]
    assert actions[:2] == ["deployment.update", "deployment.create"]


def test_the_0003_file_is_at_0003() -> None:
    with sqlite3.connect(SCHEMAS / "0003.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0003",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "model_versions", "audit_events"} <= tables
    assert not tables & SERVING_TABLES
    assert eng.REVISIONS[:4] == ("0001", "0002", "0003", "0004")


def test_a_0003_store_refuses_to_open_and_names_the_upgrade_command(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    with pytest.raises(SchemaVersionError) as info:
        open_store(uri)
    message = str(info.value)
    assert "revision 0003, older than this loopml's" in message
    assert f"loopml db upgrade --store '{uri}'" in message
    assert _revision(uri) == "0003"  # refusing changed nothing


def test_upgrading_the_0003_file_keeps_runs_datasets_and_the_registry(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    assert upgrade_store(uri) == ("0003", eng.HEAD_REVISION)
    assert upgrade_store(uri) == (eng.HEAD_REVISION, eng.HEAD_REVISION)
    assert _schema_diff(uri) == []
    with open_store(uri) as store:
        project = store.get_project("legacy")
        pid = project.project_id
        assert project.description == "made by the 0003 schema"
        run = store.get_run(RUN)
        assert (run.name, run.user, run.status) == ("trainer", "alice", RunStatus.FINISHED)
        assert dict(run.params) == {"lr": "0.1"} and run.metrics["auc"] == pytest.approx(0.59)
        dv = store.get_dataset_version_by_id(DATASET_VERSION)
        assert (dv.name, dv.version, dv.run_id) == ("churn", 1, RUN)
        model = store.get_registered_model(pid, "churn")
        assert (model.description, model.latest_version, dict(model.aliases)) == (
            "who leaves",
            2,
            {"champion": 2},
        )
        v2 = store.get_model_version(pid, "churn", 2)
        assert (v2.run_id, v2.signature) == (RUN, {"inputs": [{"name": "x", "type": "integer"}]})
        events = store.search_audit_events(pid)
        assert [e.action for e in events] == [
            "alias.set",
            "model_version.create",
            "model_version.create",
            "model.create",
        ]
        assert (events[0].actor, events[0].reason) == ("bob", "better auc")
        assert store.list_deployments(pid) == []
        _use_deployments(store)
    with sqlite3.connect(old_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_upgrade_from_the_0003_migration_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade_from_0003(f"sqlite:///{tmp_path}/built.db")


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of its own (the session one is at head already)."""
    import psycopg
    from psycopg import sql

    name = f"loopml_mig4_{uuid.uuid4().hex[:12]}"
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
def test_upgrade_from_the_0003_migration_on_postgresql(empty_pg_url: str) -> None:
    _check_upgrade_from_0003(empty_pg_url)


def _check_upgrade_from_0003(url: str) -> None:
    """Build schema 0003 with its migrations, write a project, a model with two versions and an
    alias with plain SQL, upgrade, read back, use deployments."""
    engine = eng.create_engine(url)
    model_id = "2" * 32
    try:
        eng._run_alembic(engine, "0003")
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
                    "INSERT INTO registered_models (id, project_id, name, description, tags, "
                    "latest_version, created_at, updated_at) "
                    "VALUES (:m, :p, 'churn', '', '{}', 2, 1, 1)"
                ),
                {"m": model_id, "p": "0" * 32},
            )
            for version in (1, 2):
                conn.execute(
                    sa.text(
                        "INSERT INTO model_versions (id, model_id, version, source, flavor, "
                        "manifest_digest, description, tags, status, created_at, created_by) "
                        "VALUES (:id, :m, :v, 's', 'sklearn', :h, '', '{}', 'ready', 1, 'a')"
                    ),
                    {"id": str(version) * 32, "m": model_id, "v": version, "h": "3" * 64},
                )
            conn.execute(
                sa.text(
                    "INSERT INTO model_aliases (model_id, alias, version, updated_at) "
                    "VALUES (:m, 'champion', 2, 1)"
                ),
                {"m": model_id},
            )
    finally:
        engine.dispose()
    assert _revision(url) == "0003"
    with pytest.raises(SchemaVersionError, match="loopml db upgrade"):
        open_store(url)
    assert upgrade_store(url) == ("0003", eng.HEAD_REVISION)
    assert _schema_diff(url) == []
    with open_store(url) as store:
        _use_deployments(store)
