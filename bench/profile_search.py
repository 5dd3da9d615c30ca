#!/usr/bin/env python3
"""Profile the loopml search rows of the tracking benchmark (for whoever optimises the library).

Builds the same data as ``bench/tracking.py`` (1,000 runs through the fluent API; 100,000 runs
bulk-loaded on SQLite and, with --pg-url, on a throwaway PostgreSQL database), then prints for each
search workload: wall times, a cProfile of repeated calls (by cumulative and by own time), the time
of the bare SQL statement versus the whole call, and the database's query plan.

    python bench/profile_search.py > bench/results/profile-search.txt
    python bench/profile_search.py --search-runs 20000 --pg-url none   # quicker
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tracking as T  # the benchmark's own data builders

WORK = Path(__file__).resolve().parent / ".work"


def section(title: str) -> None:
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}", flush=True)


def profile(fn, calls: int, limit: int = 25) -> None:
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(calls):
        fn()
    pr.disable()
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(pr, stream=buf).strip_dirs().sort_stats(key).print_stats(limit)
        text = buf.getvalue()
        print(f"--- cProfile, {calls} calls, sorted by {key} ---")
        print(text[text.index("   ncalls") :] if "   ncalls" in text else text)


def timings(fn, n: int) -> str:
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    med, lo, hi = ts[len(ts) // 2] * 1000, ts[0] * 1000, ts[-1] * 1000
    return f"median {med:.1f} ms (min {lo:.1f}, max {hi:.1f}, n={n})"


def statement(client, project: str):
    from loopml.store import search
    from loopml.store.sql.query import search_statement

    pid = client.store.get_project(project).project_id
    expr = search.parse_filter(T.FILTER)
    order = search.parse_order_by(T.ORDER)
    return search_statement((pid,), expr, order, 101, 0, client.store.engine.dialect.name)


def sql_only(client, stmt) -> str:
    def run() -> None:
        with client.store.engine.connect() as conn:
            conn.execute(stmt).all()

    return timings(run, 5)


def plan(client, stmt, analyze: bool) -> None:
    engine = client.store.engine
    sql = str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    print("--- SQL ---\n" + sql)
    prefix = (
        "EXPLAIN QUERY PLAN "
        if engine.dialect.name == "sqlite"
        else ("EXPLAIN (ANALYZE, BUFFERS) " if analyze else "EXPLAIN ")
    )
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + sql).all()
    print(f"--- {prefix.strip()} ---")
    for row in rows:
        print("  " + " | ".join(str(c) for c in row))


def small(a) -> None:
    import loopml

    section("1,000 runs (fluent-created, as in the benchmark)")
    db = WORK / f"profile-{uuid.uuid4().hex[:8]}.db"
    loopml.set_tracking_uri(f"sqlite:///{db}")
    loopml.set_project("p")
    for i in range(1000):
        with loopml.start_run(name=f"r{i}"):
            loopml.log_params({f"p{k}": T._p(i, k) for k in range(10)})
            loopml.log_metrics({f"m{k}": T._m(i, k) for k in range(10)})
    c = loopml.get_client()
    c.search_runs("p", "name like 'r%'", max_results=1000)  # first call: stale-run sweep

    def filtered():
        return c.search_runs("p", T.FILTER, T.ORDER, max_results=100)

    def everything():
        return c.search_runs("p", "name like 'r%'", max_results=1000)

    def pandas():
        return loopml.search_runs("name like 'r%'", project="p", max_results=1000).to_pandas()

    page = everything()
    t0 = time.perf_counter()
    for _ in range(5):
        page.to_pandas()
    conv = (time.perf_counter() - t0) / 5
    print(f"search all:       {timings(everything, 5)}")
    print(f"search filtered:  {timings(filtered, 20)}")
    print(
        f"search -> pandas: {timings(pandas, 5)}; "
        f"of which Page.to_pandas() alone {conv * 1000:.0f} ms"
    )
    stmt = statement(c, "p")
    print(f"filtered, bare SQL statement only: {sql_only(c, stmt)}")
    section("1,000 runs: search filtered + ordered (x50)")
    profile(filtered, 50)
    plan(c, stmt, False)
    section("1,000 runs: search all (x5)")
    profile(everything, 5, 20)
    section("1,000 runs: search -> pandas (x3)")
    profile(pandas, 3, 20)


def big(a, uri: str, label: str, analyze: bool) -> None:
    import loopml

    section(f"{a.search_runs:,} runs bulk-loaded, {label}")
    client = loopml.Client(uri)
    pop = T.populate(client, "bench-100k", a.search_runs)
    print(f"populated in {pop:.1f}s")
    if analyze:
        import sqlalchemy as sa

        with client.store.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
            conn.commit()

    def filtered():
        return client.search_runs("bench-100k", T.FILTER, T.ORDER, max_results=100)

    filtered()
    print(f"search filtered:  {timings(filtered, 5)}")
    stmt = statement(client, "bench-100k")
    print(f"bare SQL statement only: {sql_only(client, stmt)}")
    profile(filtered, 3, 20)
    plan(client, stmt, True)
    client.close()


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--search-runs", type=int, default=100_000)
    p.add_argument("--pg-url", default=T.DEFAULT_PG, help="admin URL, or 'none'")
    a = p.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"loopml source: {T.git_state()}")
    small(a)
    big(a, f"sqlite:///{WORK / f'profile100k-{uuid.uuid4().hex[:8]}.db'}", "SQLite", False)
    if a.pg_url != "none":
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(a.pg_url)
        conninfo = admin.render_as_string(hide_password=False)
        dbname = f"loopml_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        try:
            big(
                a,
                admin.set(database=dbname).render_as_string(hide_password=False),
                "PostgreSQL (after ANALYZE)",
                True,
            )
        finally:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            print(f"dropped {dbname}")
    print(f"loopml source at the end: {T.git_state()}")


if __name__ == "__main__":
    main()
