#!/usr/bin/env python3
"""loopml side of the tracking benchmark: a 1:1 port of ``shared/bench/mlflow_tracking.py``.

Same point counts, batch size, run shape, filters and repetition scheme as the MLflow script, so
the two can be compared row by row (``bench/run.py`` runs both in one invocation):

  loop        10k points, fluent ``loopml.log_metric(key, v, step=i)``, one call per point. loopml
              buffers points, so the timed span runs until they are committed: the loop, then
              ``loopml.flush()`` and the end of the run (which flushes again and sets the status).
  batch       ``Client.log_batch`` 10 calls x 1000 prebuilt ``Metric`` objects (written now, one
              transaction per call, no buffering).
  history     ingest a 100k-point metric (log_batch x1000, untimed setup row), then time
              ``Client.get_metric_history`` (columnar numpy arrays) and, separately, the same call
              followed by ``list(history)`` (100k ``Metric`` objects materialised).
  create      1000 runs with the fluent API: ``start_run`` + ``log_params(10)`` +
              ``log_metrics(10)`` + end of run (``with`` block), i.e. data committed.
  search      ``Client.search_runs`` of all 1000 runs (full Run objects with params, metrics,
              tags), filtered+ordered (``metrics.m0 > 0.5 and params.p1 = 'v3'`` by
              ``metrics.m1 desc``), and fluent ``loopml.search_runs(...).to_pandas()``.
  search100k  the filtered+ordered search over 100,000 runs, on SQLite and (with --pg-url) on a
              throwaway PostgreSQL database. The runs are bulk-loaded straight into the SQL store's
              tables (population is setup, not measured); the search goes through the public
              ``Client.search_runs`` and its result is checked against a Python reference.

Durability: the default loopml SQLite mode is WAL + synchronous=NORMAL (a commit survives a crash
of the process). Run with ``LOOPML_SQLITE_SYNCHRONOUS=full`` for fsync-per-commit (power-loss
durable); the effective PRAGMAs are read back from the database and recorded in every line.

Output: one JSON line per workload on stdout and appended to --out (same shape as the MLflow
script: tool, backend, workload, median, unit, samples, raw_seconds, notes, versions, ...), plus a
``key`` field that ``bench/run.py`` uses to pair rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
FILTER = "metrics.m0 > 0.5 and params.p1 = 'v3'"
ORDER = ["metrics.m1 desc"]


def _p(i: int, k: int) -> str:
    return f"v{(i * 7 + k) % 13}"


def _m(i: int, k: int) -> float:
    return ((i * 31 + k * 17) % 1000) / 1000.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def git_state() -> str:
    """The commit of the loopml checkout this process imports, and whether src/ had changes."""
    import subprocess

    repo = str(BENCH.parent)
    try:
        head = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    n = len(dirty.splitlines())
    return f"{head}" + (f"+{n} uncommitted under src/" if n else " (clean src/)")


def _versions() -> dict[str, str]:
    import sqlite3

    import sqlalchemy

    import loopml

    v = {
        "loopml": loopml.__version__,
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "loopml_git": git_state(),
    }
    try:
        import psycopg

        v["psycopg"] = psycopg.__version__
    except ImportError:
        pass
    return v


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def sqlite_mode(client) -> str:
    """The journal and synchronous PRAGMAs a loopml connection really runs with."""
    store = client.store
    if store.engine.dialect.name != "sqlite":
        return store.engine.dialect.name
    with store.engine.connect() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return f"journal_mode={journal}, synchronous={names.get(sync, sync)}"


class Emitter:
    def __init__(self, out: str, tool: str, backend: str) -> None:
        self.out, self.tool, self.backend = out, tool, backend
        self.versions = _versions()

    def __call__(self, key, workload, samples, unit, fn, notes, backend=None, **extra):
        figs = [fn(s) for s in samples]
        rec = {
            "tool": self.tool,
            "backend": backend or self.backend,
            "key": key,
            "workload": workload,
            "median": statistics.median(figs) if figs else None,
            "unit": unit,
            "samples": figs,
            "raw_seconds": samples,
            "notes": notes,
            "versions": self.versions,
            "loadavg1": _loadavg(),
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
            **extra,
        }
        line = json.dumps(rec)
        print(line, flush=True)
        if self.out:
            with open(self.out, "a") as f:
                f.write(line + "\n")
        return rec


# --- log: per-call loop and batch -------------------------------------------------------------


def w_loop(a, emit, mode: str) -> None:
    import loopml

    loopml.set_tracking_uri(a.uri)
    loopml.set_project(f"bench-log-{uuid.uuid4().hex[:8]}")
    n = a.n
    samples, parts = [], []
    for r in range(a.reps):
        run = loopml.start_run(name=f"loop-{r}")
        t0 = time.perf_counter()
        for i in range(n):
            loopml.log_metric("loss", 1.0 / (i + 1), step=i)
        t1 = time.perf_counter()
        loopml.flush()
        t2 = time.perf_counter()
        run.end()
        t3 = time.perf_counter()
        samples.append(t3 - t0)
        parts.append({"calls_s": t1 - t0, "flush_s": t2 - t1, "end_run_s": t3 - t2})
        hist = loopml.get_client().get_metric_history(run.run_id, "loss")
        assert len(hist) == n and int(hist.steps[-1]) == n - 1, (len(hist), n)
        log(
            f"  loop rep {r}: {samples[-1]:.3f}s (calls {t1 - t0:.3f}, flush {t2 - t1:.3f}, "
            f"end {t3 - t2:.3f})"
        )
    emit(
        "loop",
        f"log_metric loop, {n} pts",
        samples,
        "points/s",
        lambda s: n / s,
        "fluent loopml.log_metric(key, v, step=i), one call per point; timed until durable: "
        "loop + loopml.flush() + end of run",
        parts=parts,
        sqlite_mode=mode,
    )


def w_batch(a, emit, mode: str) -> None:
    import loopml
    from loopml import Metric

    client = loopml.Client(a.uri)
    project = f"bench-batch-{uuid.uuid4().hex[:8]}"
    n, b = a.n, a.batch
    samples = []
    for r in range(a.reps):
        run = client.create_run(project, name=f"batch-{r}")
        ts = int(time.time() * 1000)
        batches = [
            [Metric("loss", 1.0 / (i + 1), i, ts) for i in range(j, min(j + b, n))]
            for j in range(0, n, b)
        ]
        t0 = time.perf_counter()
        for mb in batches:
            client.log_batch(run.run_id, metrics=mb)
        samples.append(time.perf_counter() - t0)
        client.end_run(run.run_id)
        assert len(client.get_metric_history(run.run_id, "loss")) == n
        log(f"  batch rep {r}: {samples[-1]:.4f}s")
    client.close()
    emit(
        "batch",
        f"log_batch x{b}, {n} pts",
        samples,
        "points/s",
        lambda s: n / s,
        f"Client.log_batch, {n // b} calls of {b} metrics (Metric objects prebuilt), "
        "each call one committed transaction",
        sqlite_mode=mode,
    )


# --- readback: history, run creation, search --------------------------------------------------


def w_readback(a, emit, mode: str, workloads: set[str]) -> None:
    import loopml
    from loopml import Metric

    loopml.set_tracking_uri(a.uri)
    client = loopml.get_client()
    project = f"bench-read-{uuid.uuid4().hex[:8]}"
    loopml.set_project(project)
    h, nruns = a.hist, a.runs

    if "history" in workloads:
        run = client.create_run(project, name="history")
        rid = run.run_id
        ts = int(time.time() * 1000)
        t0 = time.perf_counter()
        for j in range(0, h, 1000):
            client.log_batch(
                rid,
                metrics=[
                    Metric("hist", float(i) * 1e-3, i, ts + i) for i in range(j, min(j + 1000, h))
                ],
            )
        ingest = time.perf_counter() - t0
        client.end_run(rid)
        emit(
            "ingest",
            f"ingest {h} pts via log_batch x1000",
            [ingest],
            "points/s",
            lambda s: h / s,
            "setup for history read; single sample",
            sqlite_mode=mode,
        )
        col, full = [], []
        for r in range(a.reps):
            t0 = time.perf_counter()
            hist = client.get_metric_history(rid, "hist")
            t1 = time.perf_counter()
            items = list(hist)
            t2 = time.perf_counter()
            col.append(t1 - t0)
            full.append(t2 - t0)
            assert len(hist) == h and len(items) == h, (len(hist), h)
            assert items[-1].step == h - 1 and abs(items[-1].value - (h - 1) * 1e-3) < 1e-12
            assert isinstance(items[0], Metric)
            log(f"  history rep {r}: columnar {t1 - t0:.4f}s, +list {t2 - t0:.4f}s")
        emit(
            "history",
            f"get_metric_history {h} pts (columnar numpy arrays)",
            col,
            "s",
            lambda s: s,
            "Client.get_metric_history -> MetricHistory (.steps/.timestamps/.values "
            "numpy arrays); length and last point verified",
            sqlite_mode=mode,
        )
        emit(
            "history_list",
            f"get_metric_history {h} pts + list(history) (Metric objects)",
            full,
            "s",
            lambda s: s,
            f"same call, then list(history): {h} Metric objects "
            "materialised (what MLflow's call returns)",
            sqlite_mode=mode,
        )

    if "create" in workloads:
        t0 = time.perf_counter()
        for i in range(nruns):
            with loopml.start_run(name=f"r{i}"):
                loopml.log_params({f"p{k}": _p(i, k) for k in range(10)})
                loopml.log_metrics({f"m{k}": _m(i, k) for k in range(10)})
        create = time.perf_counter() - t0
        emit(
            "create",
            f"create {nruns} runs (10 params+10 metrics)",
            [create],
            "runs/s",
            lambda s: nruns / s,
            "fluent: start_run + log_params(dict) + log_metrics(dict) + "
            "end of run (with block: flush + status) per run; single sample",
            sqlite_mode=mode,
        )

    if "search" in workloads:
        expected = _expected_top(range(nruns), 10**9)
        samples = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            page = client.search_runs(project, "name like 'r%'", max_results=nruns)
            samples.append(time.perf_counter() - t0)
            assert len(page.items) == nruns, len(page.items)
            assert len(page.items[0].params) == 10 and len(page.items[0].metrics) == 10
        emit(
            "search_all",
            f"search_runs all {nruns} runs",
            samples,
            "s",
            lambda s: s,
            f"Client.search_runs(max_results={nruns}) returning full Run objects (params, "
            "latest metrics, tags)",
        )

        samples = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            page = client.search_runs(project, FILTER, ORDER, max_results=100)
            samples.append(time.perf_counter() - t0)
        got = [r.name for r in page.items]
        assert got == [f"r{i}" for i in expected[:100]], (got[:5], expected[:5])
        emit(
            "search_filtered",
            f"search_runs filtered+ordered over {nruns} runs",
            samples,
            "s",
            lambda s: s,
            f"filter {FILTER!r}, order_by metrics.m1 desc -> {len(got)} rows "
            "(checked against a Python reference)",
        )

        # `import mlflow` imports pandas; import it here too so the row times the conversion,
        # not a one-off import in the first rep.
        import pandas  # noqa: F401

        samples = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            df = loopml.search_runs(
                "name like 'r%'", project=project, max_results=nruns
            ).to_pandas()
            samples.append(time.perf_counter() - t0)
            assert len(df) == nruns, len(df)
        emit(
            "search_pandas",
            f"search_runs -> pandas, {nruns} runs",
            samples,
            "s",
            lambda s: s,
            "fluent loopml.search_runs(...).to_pandas() returning a DataFrame",
        )
    loopml.flush()


def _expected_top(ids, limit: int) -> list[int]:
    """Python reference for FILTER/ORDER: m1 desc, then newest start first (= higher i)."""
    hits = [i for i in ids if _m(i, 0) > 0.5 and _p(i, 1) == "v3"]
    hits.sort(key=lambda i: (-_m(i, 1), -i))
    return hits[:limit]


# --- 100k-run search --------------------------------------------------------------------------


_RUN_COLS = (
    "run_id",
    "project_id",
    "name",
    "status",
    "start_time",
    "end_time",
    "parent_run_id",
    "user",
    "heartbeat_at",
    "environment_id",
)
_PARAM_COLS = ("run_id", "key", "value")
_METRIC_COLS = ("run_id", "key", "step", "timestamp", "value")


def populate(client, project: str, n: int, chunk: int = 10_000) -> float:
    """Bulk-load n finished runs (10 params + 10 latest metrics each); see :func:`bulk_load`.
    Setup only: the benchmark measures the search, not this."""
    return bulk_load(client.store, project, n, params=10, metrics=10, chunk=chunk)[1]


def bulk_load(
    store, project: str, n: int, *, params: int, metrics: int, chunk: int = 10_000
) -> tuple[str, float]:
    """Bulk-load n finished runs straight into the SQL store's tables (``runs``, ``params``,
    ``latest_metrics``), ``chunk`` runs per transaction: driver-level ``executemany`` on SQLite,
    ``COPY`` on PostgreSQL. Run ``s{i}`` starts at base + i ms, with the params and metrics of
    :func:`_p` and :func:`_m`. Returns the project id and the seconds it took."""
    pid = store.get_or_create_project(project).project_id
    base = int(time.time() * 1000) - n - 10_000
    engine = store.engine
    t0 = time.perf_counter()
    for j in range(0, n, chunk):
        rrows, prows, mrows = [], [], []
        for i in range(j, min(j + chunk, n)):
            rid = uuid.uuid4().hex
            start = base + i
            rrows.append(
                (rid, pid, f"s{i}", "finished", start, start + 5, None, "bench", start, None)
            )
            prows.extend((rid, f"p{k}", _p(i, k)) for k in range(params))
            mrows.extend((rid, f"m{k}", 0, start, _m(i, k)) for k in range(metrics))
        tables = (
            ("runs", _RUN_COLS, rrows),
            ("params", _PARAM_COLS, prows),
            ("latest_metrics", _METRIC_COLS, mrows),
        )
        raw = engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            if engine.dialect.name == "postgresql":
                with dbapi.cursor() as cur:
                    for table, cols, rows in tables:
                        names = ", ".join(f'"{c}"' for c in cols)
                        with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                dbapi.commit()
            else:
                cur = dbapi.cursor()
                cur.execute("BEGIN IMMEDIATE")
                for table, cols, rows in tables:
                    names = ", ".join(f'"{c}"' for c in cols)
                    marks = ", ".join("?" for _ in cols)
                    cur.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
                cur.execute("COMMIT")
                cur.close()
        finally:
            raw.close()
    return pid, time.perf_counter() - t0


def search_100k(a, emit, uri: str, backend: str, analyze: bool) -> None:
    import loopml

    client = loopml.Client(uri)
    project = "bench-100k"
    n = a.search_runs
    log(f"  populating {n} runs on {backend} ...")
    pop = populate(client, project, n)
    log(f"  populated in {pop:.1f}s")
    expected = [f"s{i}" for i in _expected_top(range(n), 100)]
    notes_extra = ""
    if analyze:
        t0 = time.perf_counter()
        page = client.search_runs(project, FILTER, ORDER, max_results=100)
        pre = time.perf_counter() - t0
        assert [r.name for r in page.items] == expected
        import sqlalchemy as sa

        # VACUUM ANALYZE, what autovacuum does on its own shortly after a bulk load: statistics
        # for the planner and the visibility map that makes index-only scans skip the heap.
        with client.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
        notes_extra = (
            f"; VACUUM ANALYZE run after the bulk load (what autovacuum does on its own "
            f"shortly after); one search before it took {pre * 1000:.0f} ms"
        )
    samples = []
    for r in range(max(a.reps, 5)):
        t0 = time.perf_counter()
        page = client.search_runs(project, FILTER, ORDER, max_results=100)
        samples.append(time.perf_counter() - t0)
        got = [r.name for r in page.items]
        assert got == expected, (got[:5], expected[:5])
        log(f"  {n}-run search rep {r}: {samples[-1] * 1000:.1f} ms")
    matches = len(_expected_top(range(n), 10**9))
    emit(
        f"search100k_{backend.split()[0].lower()}",
        f"search_runs filtered+ordered over {n} runs",
        samples,
        "s",
        lambda s: s,
        f"Client.search_runs({FILTER!r}, order_by metrics.m1 desc, max_results=100): "
        f"{matches} matches, top 100 checked against a Python reference; runs bulk-loaded "
        f"(10 params + 10 metrics each) in {pop:.1f}s (not measured){notes_extra}",
        backend=backend,
        population_s=pop,
    )
    client.close()


def w_search100k(a, emit) -> None:
    work = (
        Path(a.uri[len("sqlite:///") :]).parent
        if a.uri.startswith("sqlite:///")
        else BENCH / ".work"
    )
    db = work / f"search100k-{uuid.uuid4().hex[:8]}.db"
    search_100k(a, emit, f"sqlite:///{db}", "SQLite (local file)", analyze=False)
    if a.pg_url and a.pg_url != "none":
        search_100k_pg(a, emit)


def search_100k_pg(a, emit) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(a.pg_url.replace("postgresql+psycopg://", "postgresql://"))
    dbname = f"loopml_bench_{uuid.uuid4().hex[:12]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    except psycopg.OperationalError as exc:
        log(f"  PostgreSQL not reachable at {a.pg_url}: {exc}")
        emit(
            "search100k_postgresql",
            f"search_runs filtered+ordered over {a.search_runs} runs",
            [],
            "s",
            lambda s: s,
            f"not measured: PostgreSQL not reachable ({exc})",
            backend="PostgreSQL",
            error=str(exc),
        )
        return
    try:
        url = admin.set(database=dbname).render_as_string(hide_password=False)
        search_100k(a, emit, url, "PostgreSQL (127.0.0.1)", analyze=True)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        log(f"  dropped {dbname}")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--uri", default="", help="loopml store, default a fresh SQLite file in bench/.work"
    )
    p.add_argument("--out", default="", help="append JSON lines here")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--n", type=int, default=10_000, help="points for the loop and batch rows")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--hist", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--search-runs", type=int, default=100_000)
    p.add_argument(
        "--pg-url",
        default=DEFAULT_PG,
        help="admin URL of a PostgreSQL server for the 100k search ('none' to skip); "
        "a throwaway database loopml_bench_<hex> is created there and dropped",
    )
    p.add_argument("--workloads", default="loop,batch,history,create,search,search100k")
    p.add_argument("--tool", default="loopml")
    p.add_argument("--label", default="", help="suffix for the backend label")
    a = p.parse_args()
    if not a.uri:
        work = BENCH / ".work"
        work.mkdir(parents=True, exist_ok=True)
        a.uri = f"sqlite:///{work / f'loopml-{uuid.uuid4().hex[:8]}.db'}"
    os.environ.setdefault(
        "LOOPML_HOME",
        str(Path(a.uri[len("sqlite:///") :]).parent / ".loopml")
        if a.uri.startswith("sqlite:///")
        else str(BENCH / ".work" / ".loopml"),
    )
    workloads = set(a.workloads.split(","))
    unknown = workloads - {"loop", "batch", "history", "create", "search", "search100k"}
    if unknown:
        p.error(f"unknown workloads {sorted(unknown)}")

    import loopml

    probe = loopml.Client(a.uri)
    mode = sqlite_mode(probe)
    probe.close()
    backend = "local SQLite" + (f" ({mode})" if mode else "") + (f", {a.label}" if a.label else "")
    emit = Emitter(a.out, a.tool, backend)
    log(f"loopml {loopml.__version__} on {a.uri}: {mode}")
    if "loop" in workloads:
        w_loop(a, emit, mode)
    if "batch" in workloads:
        w_batch(a, emit, mode)
    if workloads & {"history", "create", "search"}:
        w_readback(a, emit, mode, workloads)
    if "search100k" in workloads:
        w_search100k(a, emit)


if __name__ == "__main__":
    main()
