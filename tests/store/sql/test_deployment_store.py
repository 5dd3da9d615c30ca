"""The SQL deployment store, on SQLite and PostgreSQL: a deployment change and its audit event
are one transaction, time-range queries read one bounded range of their index, and a project's
deployments, segments and window profiles go with it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.entities import PredictionSegment, Route, RouteRole, TrafficWindow, WindowProfile
from loopml.errors import StoreError
from loopml.store import open_store
from loopml.store.base import Store, new_id
from loopml.store.deployments import MAX_SEGMENT_SPAN_MS
from loopml.store.sql import SqlStore
from loopml.store.sql.deployments import segments_query
from loopml.store.sql.tables import window_profiles

ROUTES = [Route("primary", "models:/churn/1", RouteRole.PRIMARY)]
SEGMENT_INDEX = "ix_prediction_segments_project_id_deployment_start_time"
PROFILE_INDEX = "ix_window_profiles_project_id_deployment_window_start"

SQLITE_REFUSE = (
    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
)
SQLITE_ALLOW = ("DROP TRIGGER refuse_audit",)
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

    name = f"loopml_dep_{uuid.uuid4().hex[:12]}"
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
    """Project ``p`` with deployment ``api`` at revision 1, one segment and one profile."""
    pid = store.get_or_create_project("p").project_id
    store.create_deployment(pid, "api", ROUTES, actor="setup")
    store.add_prediction_segment(PredictionSegment(new_id(), pid, "api", 0, 10, 1, "s3://x/0"))
    store.add_window_profile(
        WindowProfile(new_id(), pid, "api", "primary", "churn/1", 0, 60, 1, {"rows": 1})
    )
    store.add_traffic_window(TrafficWindow(new_id(), pid, "api", "primary", "churn/1", 0, 60, 9))
    return pid


# --- a change and its audit event: both or neither -----------------------------------------------


def _refused_audit_blocks_every_change(
    url: str, refuse: tuple[str, ...], allow: tuple[str, ...]
) -> None:
    with open_store(url) as store:
        assert isinstance(store, SqlStore)
        pid = _setup(store)
        before = store.get_deployment(pid, "api")
        with store.engine.begin() as conn:
            for statement in refuse:
                conn.exec_driver_sql(statement)
        changes = (
            lambda: store.create_deployment(pid, "other", ROUTES, actor="a"),
            lambda: store.update_deployment(pid, "api", description="x", actor="a"),
            lambda: store.delete_deployment(pid, "api", actor="a"),
        )
        for change in changes:
            with pytest.raises(StoreError, match="audit refused"):
                change()
        assert store.list_deployments(pid) == [before]
        assert len(store.search_audit_events(pid)) == 1
        # Segments and profiles are not audited: they are written all the same.
        store.add_prediction_segment(PredictionSegment(new_id(), pid, "api", 5, 6, 1, "s3://x/1"))
        assert len(store.list_prediction_segments(pid, "api")) == 2
        with store.engine.begin() as conn:
            for statement in allow:
                conn.exec_driver_sql(statement)
        assert store.update_deployment(pid, "api", description="x", actor="a").revision == 2


def test_a_refused_audit_event_blocks_the_change_on_sqlite(tmp_path: Path) -> None:
    _refused_audit_blocks_every_change(f"sqlite:///{tmp_path}/a.db", SQLITE_REFUSE, SQLITE_ALLOW)


@pytest.mark.postgres
def test_a_refused_audit_event_blocks_the_change_on_postgresql(own_pg_url: str) -> None:
    _refused_audit_blocks_every_change(own_pg_url, PG_REFUSE, PG_ALLOW)


# --- time-range queries use their index ----------------------------------------------------------


def test_segment_and_profile_queries_use_their_index_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    open_store(url).close()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for start, end in ((10**12, 10**12 + 60_000), (10**12, None), (None, 10**12)):
                stmt = segments_query("p" * 32, "api", start, end, 100, "sqlite")
                plan = _sqlite_plan(conn, stmt)
                assert f"USING INDEX {SEGMENT_INDEX} (project_id=? AND deployment=?" in plan, plan
                assert "SCAN prediction_segments" not in plan, plan
                # Rows come in index order: only ties of start_time are sorted (by id).
                assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
            bounded = _sqlite_plan(conn, segments_query("p" * 32, "api", 10**12, 10**12, 9, ""))
            assert "start_time>? AND start_time<?" in bounded  # both ends of the range
            wp = window_profiles.c
            stmt = sa.select(window_profiles).where(
                wp.project_id == "p", wp.deployment == "api", wp.window_start >= 0
            )
            assert f"USING INDEX {PROFILE_INDEX}" in _sqlite_plan(conn, stmt)
    finally:
        engine.dispose()


def _sqlite_plan(conn: sa.Connection, stmt: sa.Select[object]) -> str:
    sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
    return " | ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))


@pytest.mark.postgres
def test_segment_queries_use_their_index_on_postgresql(own_pg_url: str) -> None:
    with open_store(own_pg_url) as store:
        assert isinstance(store, SqlStore)
        pid = store.get_or_create_project("p").project_id
        for i in range(200):  # a history, so that the planner has something to choose from
            start = i * 3_600_000
            store.add_prediction_segment(
                PredictionSegment(new_id(), pid, "api", start, start + 60_000, 1, f"s3://x/{i}")
            )
        start = 150 * 3_600_000
        stmt = segments_query(pid, "api", start, start + 60_000, None, "postgresql")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE prediction_segments")
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
        assert SEGMENT_INDEX in plan, plan
        # The index condition bounds start_time on both sides.
        assert f"(start_time >= {start - MAX_SEGMENT_SPAN_MS})" in plan, plan
        assert f"(start_time <= {start + 60_000})" in plan, plan
        found = store.list_prediction_segments(pid, "api", start=start, end=start + 60_000)
        assert [s.start_time for s in found] == [start]


# --- a project takes its serving data with it ----------------------------------------------------


def test_deleting_a_project_row_cascades_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    with open_store(url) as store:
        assert isinstance(store, SqlStore)
        pid = _setup(store)
        keep = store.get_or_create_project("keep").project_id
        store.create_deployment(keep, "api", ROUTES, actor="a")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            conn.execute(sa.text("DELETE FROM projects WHERE project_id = :p"), {"p": pid})
            counts = {
                table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in (
                    "deployments",
                    "prediction_segments",
                    "window_profiles",
                    "traffic_windows",
                )
            }
        assert counts == {
            "deployments": 1,
            "prediction_segments": 0,
            "window_profiles": 0,
            "traffic_windows": 0,
        }
        assert store.get_deployment(keep, "api").name == "api"
