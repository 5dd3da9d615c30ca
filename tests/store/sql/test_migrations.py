"""Schema versions: the migrations build exactly the tables the code uses, new databases get the
schema once even when many processes open them at the same moment, and a database at another
revision refuses to open with the command to run."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from loopml.errors import SchemaVersionError
from loopml.store import open_store
from loopml.store.sql import SqlStore, upgrade_store
from loopml.store.sql import engine as eng
from loopml.store.sql.tables import metadata


def _script() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(eng._MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def test_known_revisions_match_the_shipped_migrations() -> None:
    script = _script()
    assert script.get_current_head() == eng.HEAD_REVISION
    chain = [rev.revision for rev in script.walk_revisions()][::-1]
    assert tuple(chain) == eng.REVISIONS


# Indexes that exist on one dialect only (see tables.py); autogenerate cannot express that.
SQLITE_ONLY_INDEXES = {"ix_params_key_value", "ix_tags_key_value"}
POSTGRES_ONLY_INDEXES = {
    "ix_params_key_value_md5",
    "ix_tags_key_value_md5",
    "ix_latest_metrics_run_id_key_cover",
}


def _diff(url: str) -> list[object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            diffs = list(compare_metadata(MigrationContext.configure(conn), metadata))
            names = {
                i["name"]
                for t in ("params", "tags", "latest_metrics")
                for i in sa.inspect(conn).get_indexes(t)
            }
            expected = (
                SQLITE_ONLY_INDEXES if engine.dialect.name == "sqlite" else POSTGRES_ONLY_INDEXES
            )
            assert expected <= names
        return [
            d
            for d in diffs
            if not (
                isinstance(d, tuple)
                and d[0] in ("add_index", "remove_index")
                and d[1].name in SQLITE_ONLY_INDEXES | POSTGRES_ONLY_INDEXES
            )
        ]
    finally:
        engine.dispose()


def test_migrations_build_exactly_the_tables_in_code_sqlite(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/m.db")
    store.close()
    assert _diff(f"sqlite:///{tmp_path}/m.db") == []


@pytest.mark.postgres
def test_migrations_build_exactly_the_tables_in_code_postgres(pg_url: str) -> None:
    store = SqlStore(pg_url)
    store.close()
    assert _diff(pg_url) == []


def test_newer_schema_is_refused_with_upgrade_hint(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    open_store(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaVersionError, match=r"newer loopml.*pip install -U loopml"):
        open_store(f"sqlite:///{db}")


def test_older_schema_is_refused_and_names_the_upgrade_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "old.db"
    open_store(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    monkeypatch.setattr(eng, "REVISIONS", ("0000", *eng.REVISIONS))
    with pytest.raises(SchemaVersionError, match=r"loopml db upgrade --store 'sqlite:///"):
        open_store(f"sqlite:///{db}")


def test_foreign_tables_without_version_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
    with pytest.raises(SchemaVersionError, match="no loopml schema version"):
        open_store(f"sqlite:///{db}")


def test_unrelated_tables_do_not_stop_a_new_store(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE something_else (id INTEGER)")
    store = open_store(f"sqlite:///{db}")
    assert store.list_projects() == []
    store.close()


def test_upgrade_store_is_idempotent(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/u.db"
    assert upgrade_store(uri) == (None, eng.HEAD_REVISION)
    assert upgrade_store(uri) == (eng.HEAD_REVISION, eng.HEAD_REVISION)
    with SqlStore(uri, create=False) as store:
        assert store.list_projects() == []


def test_open_without_create_refuses_an_empty_database(tmp_path: Path) -> None:
    with pytest.raises(SchemaVersionError):
        SqlStore(f"sqlite:///{tmp_path}/empty.db", create=False)


def test_concurrent_first_open_creates_the_schema_once(tmp_path: Path) -> None:
    db = tmp_path / "race.db"
    code = (
        "import sys\n"
        "from loopml.store import open_store\n"
        "s = open_store(sys.argv[1])\n"
        "p = s.get_or_create_project('race')\n"
        "s.create_run(p.project_id)\n"
        "print('ok')\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"sqlite:///{db}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for (out, err), p in zip(results, procs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (8,)
        assert conn.execute("SELECT count(*) FROM projects").fetchone() == (1,)
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
