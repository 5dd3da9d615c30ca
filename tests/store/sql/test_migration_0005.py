"""Migration 0004 -> 0005 (monitors, monitor results, alerts, alert deliveries, label segments): a
store at 0004 refuses to open and names the upgrade command; upgrading keeps every run, model
version, alias, deployment, segment, window profile and audit event, and the upgraded store keeps
monitors next to them, with one firing alert per rule.

``schemas/0004.db`` is a SQLite file written by loopml at schema 0004 (commit e49678f) with
``schemas/make_0004.py``. The PostgreSQL case builds its 0004 database with the shipped
migrations.
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

from loopml.entities import Alert, AlertDelivery, AlertState, LabelSegment, MonitorResult
from loopml.errors import Conflict, SchemaVersionError
from loopml.store import open_store
from loopml.store.base import Store, new_id
from loopml.store.sql import engine as eng
from loopml.store.sql import upgrade_store
from loopml.store.sql.tables import metadata

SCHEMAS = Path(__file__).parent / "schemas"
RUN = "022ff15b0c0b4cd0a4b93ba8ce76f21a"  # in schemas/0004.db
MONITORING_TABLES = {
    "monitors",
    "monitor_results",
    "alerts",
    "alert_deliveries",
    "label_segments",
}
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
    """A copy of the 0004 SQLite file (the committed one is never written)."""
    target = tmp_path / "old.db"
    shutil.copyfile(SCHEMAS / "0004.db", target)
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


def _use_monitoring(store: Store) -> None:
    """The 0005 features work on the upgraded store, next to the old deployment."""
    pid = store.get_project("legacy").project_id
    assert store.get_deployment(pid, "churn-api").description == "scores"
    m = store.create_monitor(pid, "churn-drift", {"deployment": "churn-api"}, actor="alice")
    assert m.revision == 1
    result = MonitorResult(new_id(), pid, "churn-drift", 0, 60_000, {"acc": math.nan})
    store.add_monitor_result(result)
    [got] = store.list_monitor_results(pid, "churn-drift")
    assert math.isnan(got.metrics["acc"])
    alert = Alert(new_id(), pid, "churn-drift", "drift", "warning", AlertState.FIRING, "drift")
    store.add_alert(alert)
    with pytest.raises(Conflict):
        store.add_alert(
            Alert(new_id(), pid, "churn-drift", "drift", "info", AlertState.FIRING, "")
        )
    store.add_alert_delivery(
        AlertDelivery(new_id(), pid, alert.id, "ops", "webhook", "firing", 1, True)
    )
    assert len(store.list_alert_deliveries(pid)) == 1
    seg = LabelSegment(new_id(), pid, "churn-api", 3, "sha256:x")
    assert store.add_label_segment(seg).rows == 3
    actions = [e.action for e in store.search_audit_events(pid, max_results=100)]
    assert actions[0] == "monitor.create"


def test_the_0004_file_is_at_0004() -> None:
    with sqlite3.connect(SCHEMAS / "0004.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0004",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "model_versions", "deployments", "window_profiles"} <= tables
    assert not tables & MONITORING_TABLES
    assert eng.REVISIONS[:5] == ("0001", "0002", "0003", "0004", "0005")


def test_a_0004_store_refuses_to_open_and_names_the_upgrade_command(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    with pytest.raises(SchemaVersionError) as info:
        open_store(uri)
    message = str(info.value)
    assert "revision 0004, older than this loopml's" in message
    assert f"loopml db upgrade --store '{uri}'" in message
    assert _revision(uri) == "0004"  # refusing changed nothing


def test_upgrading_the_0004_file_keeps_everything(old_db: Path) -> None:
    uri = f"sqlite:///{old_db}"
    assert upgrade_store(uri) == ("0004", eng.HEAD_REVISION)
    assert upgrade_store(uri) == (eng.HEAD_REVISION, eng.HEAD_REVISION)
    assert _schema_diff(uri) == []
    with open_store(uri) as store:
        project = store.get_project("legacy")
        pid = project.project_id
        assert project.description == "made by the 0004 schema"
        assert store.get_run(RUN).name == "trainer"
        assert store.get_model_version_by_alias(pid, "churn", "champion").version == 1
        d = store.get_deployment(pid, "churn-api")
        assert (d.revision, d.created_by, d.primary.model_uri) == (
            1,
            "alice",
            "models:/churn@champion",
        )
        assert [s.id for s in store.list_prediction_segments(pid, "churn-api")] == ["5" * 32]
        assert store.list_window_profiles(pid, "churn-api")[0].profile == {"rows": 10}
        assert [e.action for e in store.search_audit_events(pid)] == [
            "deployment.create",
            "alias.set",
            "model_version.create",
            "model.create",
        ]
        assert store.list_monitors(pid) == [] and store.list_alerts(pid) == []
        _use_monitoring(store)
    with sqlite3.connect(old_db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_upgrade_from_the_0004_migration_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade_from_0004(f"sqlite:///{tmp_path}/built.db")


@pytest.fixture
def empty_pg_url(pg_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database of its own (the session one is at head already)."""
    import psycopg
    from psycopg import sql

    name = f"loopml_mig5_{uuid.uuid4().hex[:12]}"
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
def test_upgrade_from_the_0004_migration_on_postgresql(empty_pg_url: str) -> None:
    _check_upgrade_from_0004(empty_pg_url)


def _check_upgrade_from_0004(url: str) -> None:
    """Build schema 0004 with its migrations, write a project and a deployment with plain SQL,
    upgrade, read back, use monitoring; then downgrade to 0004 and upgrade again."""
    engine = eng.create_engine(url)
    try:
        eng._run_alembic(engine, "0004")
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
                    "INSERT INTO deployments (id, project_id, name, routes, sticky_key, "
                    "description, config, revision, created_at, updated_at, created_by, "
                    "updated_by) VALUES (:id, :p, 'churn-api', :routes, NULL, 'scores', '{}', "
                    "1, 1, 1, 'alice', 'alice')"
                ),
                {
                    "id": "1" * 32,
                    "p": "0" * 32,
                    "routes": '[{"name":"primary","model_uri":"models:/churn/1",'
                    '"role":"primary","weight":0.0}]',
                },
            )
    finally:
        engine.dispose()
    assert _revision(url) == "0004"
    with pytest.raises(SchemaVersionError, match="loopml db upgrade"):
        open_store(url)
    assert upgrade_store(url) == ("0004", eng.HEAD_REVISION)
    assert _schema_diff(url) == []
    with open_store(url) as store:
        _use_monitoring(store)
    _downgrade_and_upgrade_again(url)


def _downgrade_and_upgrade_again(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = eng.create_engine(url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(eng._MIGRATIONS))
        with eng.write_transaction(engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        with engine.connect() as conn:
            assert not set(sa.inspect(conn).get_table_names()) & MONITORING_TABLES
    finally:
        engine.dispose()
    assert upgrade_store(url) == ("0004", eng.HEAD_REVISION)
    assert _schema_diff(url) == []
