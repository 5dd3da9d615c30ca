#!/usr/bin/env python3
"""The team-server benchmark (issue 8, "Performance"): ``loopml server`` beside ``mlflow server``
3.x on the same data and the same requests, in one invocation.

    python bench/server.py            # full run (~5 min on the 2-core box)
    python bench/server.py --quick    # smoke test (< 2 min): 2k runs, 100k points, 20k PG runs
    python bench/server.py --skip-mlflow --pg-url none

What it measures, every server a real subprocess on 127.0.0.1 with one worker process, every
request an ``httpx`` call from this process over a keep-alive connection:

1. **10,000 runs** (10 params + 5 metrics each, bulk-loaded into a fresh SQLite file: loopml's
   tables through the store's engine, MLflow's through its own migrations and ``sqlite3``; not
   timed). loopml: the runs page ``GET /projects/P/runs`` (default 50 rows, and filtered +
   ordered at 200 rows), ``POST /api/v1/runs/search`` filtered + ordered with 100 results and
   unfiltered with the default 1,000, and the same two through ``RestStore.search_runs``.
   MLflow: the same two searches, ``POST /api/2.0/mlflow/runs/search`` and
   ``MlflowClient.search_runs``. Results are checked against a Python reference.
2. **A run with 1,000,000 points** of one metric: the chart data ``GET /ui/api/runs/R/metric?
   key=loss&points=2000`` (server-side min/max downsampling) and, for reference, the raw
   ``GET /api/v1/runs/R/metric-history``.
3. **Authentication**: two loopml servers on the same database, one with ``--auth`` (first
   admin made through the printed bootstrap token, then an API token through
   ``/api/v1/auth/login`` + ``/api/v1/auth/tokens``), the same GET sent to each, sequentially,
   in alternating blocks so that drift on the shared box hits both. Same for ``mlflow server``
   and ``mlflow server --app-name basic-auth`` (HTTP Basic).
4. **Logging through the server**: N runs x (10 params + 1,000 ``log_metric`` calls) through
   each tool's fluent API pointed at its server (``http://...``), each server on a fresh SQLite
   file; wall time, points/s, and the points and params read back.
5. **100,000 runs on PostgreSQL** (throwaway database, ``COPY``-loaded, ``VACUUM ANALYZE``):
   the same searches and the runs page.
6. **A deployment's page** with a day of traffic (1,440 minutes x 2 routes x 2 serving
   processes of traffic windows; the page reads the latest 5,000) and 2,000 prediction-log
   segments, the latest 30 of them real Parquet files of 10,000 predictions (the latency
   percentiles): ``GET /projects/P/deployments/D`` (no peer page).

``mlflow server`` runs with ``--workers 1`` (about 8x faster per request than its default of 4
on this box, see shared/bench/RESULTS.md) and ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` (no 7
job-consumer processes competing for the 2 cores). The MLflow venv is
``bench/.work/venv-mlflow`` (created if missing: ``python3 -m venv`` + ``pip install
'mlflow[auth]>=3,<4' httpx``). Results: ``bench/results/server-<stamp>.md`` (+ ``.jsonl``) and
``server-latest.md``; a ``--quick`` run writes to ``bench/.work/results/``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from run import git_state
from server_workers import N_METRICS, N_PARAMS

from tracking import FILTER, ORDER, _expected_top, bulk_load

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LOOPML_PY = str(REPO / ".venv" / "bin" / "python")
MLFLOW_VENV = BENCH / ".work" / "venv-mlflow"
WORKERS = BENCH / "server_workers.py"
MLFLOW_ORDER = ["metrics.m1 DESC"]


def say(msg: str) -> None:
    print(f"[server-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPML_", "MLFLOW_"))}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        "mean": statistics.fmean(samples),
        "p99": pct(samples, 0.99),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
    }


# --- servers ----------------------------------------------------------------------------------


class Server:
    """One server subprocess in its own process group, stopped (the whole group) on exit."""

    def __init__(
        self, label: str, cmd: list[str], env: dict[str, str], cwd: Path, log: Path, port: int
    ) -> None:
        self.label, self.cmd, self.env, self.cwd, self.log, self.port = (
            label,
            cmd,
            env,
            cwd,
            log,
            port,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as lf:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.cwd,
                stdout=lf,
                stderr=lf,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self.startup_s = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        say(f"{self.label} up on {self.url} after {self.startup_s:.1f} s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _wait_ready(self, timeout: float = 120.0) -> float:
        assert self.proc is not None
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.label}: no 200 from /health in {timeout:g} s")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGINT to the group, then SIGTERM, then SIGKILL, until no process of it is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGINT, 15.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(0.2)
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                continue
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self.proc = None


def loopml_server(
    label: str, store: str, work: Path, *, auth: bool = False, extra: list[str] | None = None
) -> Server:
    port = free_port()
    cmd = [LOOPML_PY, "-m", "loopml.cli", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--store", store, "--artifacts", str(work / "artifacts")]
    cmd += ["--auth"] if auth else []
    cmd += extra or []
    slug = re.sub(r"\W+", "-", label).strip("-")
    return Server(label, cmd, base_env(), work, work / f"{slug}.log", port)


def mlflow_server(
    label: str, db: Path, work: Path, workers: int, *, basic_auth: bool = False
) -> Server:
    port = free_port()
    mlflow = str(MLFLOW_VENV / "bin" / "mlflow")
    cmd = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", str(workers), "--backend-store-uri", f"sqlite:///{db}"]
    cmd += ["--default-artifact-root", str(work / "mlartifacts")]
    env = base_env()
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    if basic_auth:
        cmd += ["--app-name", "basic-auth"]
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = "bench-password-1234"
        env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = uuid.uuid4().hex
    slug = re.sub(r"\W+", "-", label).strip("-")
    return Server(label, cmd, env, work, work / f"{slug}.log", port)


def ensure_mlflow_venv() -> str | None:
    py = MLFLOW_VENV / "bin" / "python"
    ok = lambda: subprocess.run(  # noqa: E731
        [str(py), "-c", "import mlflow.server, httpx, flask_wtf"], capture_output=True, check=False
    )
    if py.exists() and ok().returncode == 0:
        return str(py)
    say(f"creating {MLFLOW_VENV} (python3 -m venv + pip install 'mlflow[auth]>=3,<4' httpx)")
    base = getattr(sys, "_base_executable", None) or shutil.which("python3") or sys.executable
    try:
        subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "mlflow[auth]>=3,<4", "httpx"],
            check=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        say(f"could not install the full mlflow package: {exc}")
        return None
    return str(py) if ok().returncode == 0 else None


def worker(py: str, *args: str, timeout: float = 900) -> dict:
    out = subprocess.run(
        [py, str(WORKERS), *args],
        env=base_env(),
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"worker {args[0]} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


# --- seeding ----------------------------------------------------------------------------------


def populate(store: Any, project: str, n: int, chunk: int = 10_000) -> tuple[str, float]:
    """Bulk-load n finished runs (10 params + 5 latest metrics) into loopml's SQL tables, as
    ``bench/tracking.py``'s 100k-run search does (:func:`tracking.bulk_load`)."""
    return bulk_load(store, project, n, params=N_PARAMS, metrics=N_METRICS, chunk=chunk)


def seed_deployment(store_uri: str, artifacts: Path, project: str) -> tuple[str, float]:
    """A deployment with a day of traffic windows and 2,000 segments (the latest 30 of them
    real Parquet files of 10,000 predictions) in the server's stores."""
    import io

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import loopml
    from loopml.entities import PredictionSegment, TrafficWindow
    from loopml.store.base import new_id

    t0 = time.perf_counter()
    client = loopml.Client(store_uri, str(artifacts))
    try:
        store = client.store
        pid = store.get_or_create_project(project).project_id
        routes = [
            {"name": "primary", "model_uri": "models:/churn@champion", "role": "primary"},
            {"name": "canary", "model_uri": "models:/churn/4", "role": "canary", "weight": 0.1},
        ]
        store.create_deployment(pid, "churn-api", routes, actor="bench")
        rng = np.random.default_rng(0)
        day = int(time.time() * 1000) // 60_000 * 60_000 - 86_400_000
        for k in range(2000):
            start = day + k * 43_000
            if k >= 1970:
                n = 10_000
                table = pa.table(
                    {
                        "route": ["primary"] * 9_000 + ["canary"] * 1_000,
                        "latency_ms": pa.array(rng.gamma(2.0, 1.0, n), pa.float32()),
                    }
                )
                buf = io.BytesIO()
                pq.write_table(table, buf)
                digest, size = client.artifacts.put(buf.getvalue())
            else:
                digest, size = "ab" * 32, 1
            store.add_prediction_segment(
                PredictionSegment(
                    new_id(),
                    pid,
                    "churn-api",
                    start,
                    start + 42_000,
                    10_000,
                    f"sha256:{digest}",
                    digest=digest,
                    size_bytes=size,
                    routes=("canary", "primary"),
                )
            )
        for minute in range(1440):
            for route, version, share in (("primary", "churn/3", 0.9), ("canary", "churn/4", 0.1)):
                for _process in range(2):
                    requests = int(600 * share)
                    store.add_traffic_window(
                        TrafficWindow(
                            new_id(),
                            pid,
                            "churn-api",
                            route,
                            version,
                            day + minute * 60_000,
                            60,
                            requests,
                            requests // 50,
                            int(rng.integers(0, 3)),
                        )
                    )
    finally:
        client.close()
    return "churn-api", time.perf_counter() - t0


def seed_points(store: Any, project: str, n: int, batch: int = 100_000) -> tuple[str, float]:
    """One run with n points of ``loss`` (a random walk), logged with ``log_batch``."""
    import numpy as np

    from loopml.entities import Metric

    pid = store.get_or_create_project(project).project_id
    run = store.create_run(pid, name="million-points")
    values = np.cumsum(np.random.default_rng(0).normal(size=n)).tolist()
    t0 = time.perf_counter()
    ts = int(time.time() * 1000)
    for j in range(0, n, batch):
        store.log_batch(
            run.run_id,
            metrics=[Metric("loss", values[i], i, ts + i) for i in range(j, min(j + batch, n))],
        )
    store.update_run(run.run_id, status="finished")
    return run.run_id, time.perf_counter() - t0


# --- measuring --------------------------------------------------------------------------------


class Samples(list):
    """Timed repetitions; ``cold`` is the first (discarded) call's time."""

    cold: float | None = None


def timed(fn: Callable[[], Any], reps: int, warmup: int = 1) -> tuple[Samples, Any]:
    samples = Samples()
    last = None
    for w in range(warmup):
        t0 = time.perf_counter()
        last = fn()
        if w == 0:
            samples.cold = time.perf_counter() - t0
    for _ in range(reps):
        t0 = time.perf_counter()
        last = fn()
        samples.append(time.perf_counter() - t0)
    return samples, last


def ok(r: httpx.Response) -> httpx.Response:
    if r.status_code >= 400:
        raise RuntimeError(
            f"{r.request.method} {r.request.url} -> {r.status_code}: {r.text[:500]}"
        )
    return r


class Results:
    def __init__(self, raw: Path) -> None:
        self.raw = raw
        self.rows: list[dict] = []
        self.targets: list[dict] = []
        self.notes: list[str] = []

    def row(self, section: str, what: str, tool: str, samples: list[float], **extra: Any) -> dict:
        rec = {"section": section, "what": what, "tool": tool, "samples_s": list(samples)}
        rec["cold_s"] = getattr(samples, "cold", None)
        if samples:
            rec.update(summary(samples))
        rec.update(extra)
        rec["loadavg1"] = os.getloadavg()[0]
        self.rows.append(rec)
        with open(self.raw, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
        if samples:
            say(
                f"{section} | {what} | {tool}: median {rec['median'] * 1000:.1f} ms "
                f"(p99 {rec['p99'] * 1000:.1f}, n={len(samples)})"
            )
        return rec

    def find(self, section: str, what: str, tool: str) -> dict | None:
        for r in self.rows:
            if (r["section"], r["what"], r["tool"]) == (section, what, tool):
                return r
        return None

    def target(self, name: str, figures: str, ratio: str, passed: bool | None) -> None:
        verdict = "pass" if passed else ("n/a" if passed is None else "FAIL")
        self.targets.append({"target": name, "figures": figures, "ratio": ratio, "v": verdict})
        with open(self.raw, "a") as f:
            f.write(json.dumps({"target": name, "figures": figures, "verdict": verdict}) + "\n")


def expected_names(n: int, limit: int) -> list[str]:
    return [f"s{i}" for i in _expected_top(range(n), limit)]


def loopml_reads(
    res: Results, section: str, srv: Server, project: str, pid: str, n: int, reps: int
) -> None:
    """The runs page and the API searches of one loopml server over n seeded runs."""
    from loopml.store.rest import RestStore

    want100 = expected_names(n, 100)
    matches = len(_expected_top(range(n), 10**9))
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        s, r = timed(lambda: ok(c.get(f"/projects/{project}/runs")), reps)
        assert f">s{n - 1}<" in r.text, r.text[:300]  # newest run first
        res.row(section, "runs page, default (50 rows)", "loopml", s, bytes=len(r.content))
        params = {"filter": FILTER, "order": ORDER[0], "size": 200}
        s, r = timed(lambda: ok(c.get(f"/projects/{project}/runs", params=params)), reps)
        res.row(
            section, "runs page, filtered + ordered (200 rows)", "loopml", s, bytes=len(r.content)
        )

        body = {"project_ids": [pid], "filter": FILTER, "order_by": ORDER, "max_results": 100}
        s, r = timed(lambda: ok(c.post("/api/v1/runs/search", json=body)), reps)
        got = [x["name"] for x in r.json()["items"]]
        assert got == want100, (got[:5], want100[:5])
        res.row(
            section,
            "API search, filtered + ordered, max 100",
            "loopml",
            s,
            bytes=len(r.content),
            matches=matches,
        )
        body = {"project_ids": [pid]}
        s, r = timed(lambda: ok(c.post("/api/v1/runs/search", json=body)), reps)
        assert len(r.json()["items"]) == min(n, 1000)
        res.row(
            section, "API search, all runs, default max 1000", "loopml", s, bytes=len(r.content)
        )

    store = RestStore(srv.url)
    try:
        s, page = timed(
            lambda: store.search_runs([pid], FILTER, ORDER, max_results=100), max(3, reps // 2)
        )
        assert [x.name for x in page.items] == want100
        res.row(section, "client search, filtered + ordered, max 100", "loopml", s)
        s, page = timed(lambda: store.search_runs([pid]), max(3, reps // 2))
        assert len(page.items) == min(n, 1000)
        res.row(section, "client search, all runs, default max 1000", "loopml", s)
    finally:
        store.close()


def mlflow_reads(
    res: Results, section: str, srv: Server, exp_id: str, n: int, reps: int, mpy: str
) -> None:
    want100 = expected_names(n, 100)
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        body: dict[str, Any] = {
            "experiment_ids": [exp_id],
            "filter": FILTER,
            "order_by": MLFLOW_ORDER,
            "max_results": 100,
        }
        s, r = timed(lambda: ok(c.post("/api/2.0/mlflow/runs/search", json=body)), reps)
        got = [x["info"]["run_name"] for x in r.json().get("runs", [])]
        if got != want100:
            res.notes.append(
                f"MLflow's filtered search returned {got[:3]}... where the reference has "
                f"{want100[:3]}... (tie-break order differs; same filter)"
            )
        res.row(
            section, "API search, filtered + ordered, max 100", "mlflow", s, bytes=len(r.content)
        )
        body = {"experiment_ids": [exp_id], "max_results": 1000}
        s, r = timed(lambda: ok(c.post("/api/2.0/mlflow/runs/search", json=body)), reps)
        assert len(r.json()["runs"]) == min(n, 1000)
        res.row(
            section, "API search, all runs, default max 1000", "mlflow", s, bytes=len(r.content)
        )
    out = worker(
        mpy,
        "mlflow-search",
        "--uri",
        srv.url,
        "--experiment-id",
        exp_id,
        "--reps",
        str(max(3, reps // 2)),
    )
    res.row(
        section,
        "client search, filtered + ordered, max 100",
        "mlflow",
        out["filtered"]["samples"],
    )
    res.row(
        section, "client search, all runs, default max 1000", "mlflow", out["all1000"]["samples"]
    )


def alternate(
    calls: dict[str, Callable[[], Any]], blocks: int, per_block: int, warmup: int = 30
) -> dict[str, list[float]]:
    """Sequential requests, alternating blocks between the callables, so drift hits each."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(blocks):
        for name, fn in calls.items():
            for _ in range(per_block):
                t0 = time.perf_counter()
                fn()
                out[name].append(time.perf_counter() - t0)
    return out


def loopml_token(srv: Server) -> tuple[str, str]:
    """An API token from a fresh ``--auth`` server: bootstrap token from its stderr, the first
    admin, sign-in, then ``POST /api/v1/auth/tokens``. Returns (token, how)."""
    deadline = time.monotonic() + 20
    m = None
    while time.monotonic() < deadline:
        m = re.search(r"\b(lml_[A-Za-z0-9_\-]{20,})", srv.log_tail(20_000))
        if m:
            break
        time.sleep(0.2)
    if m is None:
        raise RuntimeError(f"no bootstrap token in the server's stderr:\n{srv.log_tail()}")
    password = uuid.uuid4().hex
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        ok(
            c.post(
                "/api/v1/auth/bootstrap",
                json={"token": m.group(1), "username": "bench", "password": password},
            )
        )
        ok(c.post("/api/v1/auth/login", json={"username": "bench", "password": password}))
        r = ok(c.post("/api/v1/auth/tokens", json={"name": "bench"}))
        return r.json()["token"], "bootstrap token -> /api/v1/auth/login -> /api/v1/auth/tokens"


def auth_rows(
    res: Results,
    tool: str,
    plain: Server,
    authed: Server,
    headers: dict[str, str],
    paths: list[str],
    blocks: int,
    per_block: int,
    warmup: int = 30,
) -> None:
    with (
        httpx.Client(base_url=plain.url, timeout=30) as cp,
        httpx.Client(base_url=authed.url, timeout=30, headers=headers) as ca,
    ):
        ok(ca.get(paths[0]))
        r = ca.get(paths[0], headers={"Authorization": ""})
        if r.status_code not in (401, 403):
            raise RuntimeError(f"{tool} auth server answered {r.status_code} without credentials")
        for path in paths:
            got = alternate(
                {
                    "off": lambda p=path: ok(cp.get(p)),
                    "on": lambda p=path: ok(ca.get(p)),
                },
                blocks,
                per_block,
                warmup,
            )
            label = re.sub(r"[0-9a-f]{32}", "{id}", path)
            for mode in ("off", "on"):
                res.row("auth", f"GET {label} auth {mode}", tool, got[mode])


# --- sections ---------------------------------------------------------------------------------


def sqlite_label(a: argparse.Namespace) -> str:
    return f"{a.runs // 1000}k runs, SQLite"


def section_sqlite(a: argparse.Namespace, res: Results, work: Path, mpy: str | None) -> None:
    import loopml

    db = work / "loopml-10k.db"
    store_uri = f"sqlite:///{db}"
    client = loopml.Client(store_uri)
    try:
        pid, pop = populate(client.store, "bench-10k", a.runs)
        say(f"seeded {a.runs} runs into {db.name} in {pop:.1f} s")
        run_id, pts = seed_points(client.store, "bench-chart", a.points)
        say(f"logged {a.points} points into one run in {pts:.1f} s")
        some_run = client.store.search_runs([pid], max_results=1).items[0].run_id
    finally:
        client.close()
    deployment, dep_s = seed_deployment(store_uri, work / "artifacts", "bench-deploy")
    say(f"seeded a deployment with a day of traffic in {dep_s:.1f} s")
    res.notes.append(
        f"SQLite seeding (not timed against a target): {a.runs:,} runs bulk-loaded in "
        f"{pop:.1f} s; {a.points:,} points through `store.log_batch` (100k per call) in "
        f"{pts:.1f} s."
    )

    with contextlib.ExitStack() as stack:
        srv = stack.enter_context(loopml_server("loopml server (sqlite)", store_uri, work))
        loopml_reads(res, sqlite_label(a), srv, "bench-10k", pid, a.runs, a.reps)
        with httpx.Client(base_url=srv.url, timeout=300) as c:
            q = {"key": "loss", "points": 2000}
            s, r = timed(lambda: ok(c.get(f"/ui/api/runs/{run_id}/metric", params=q)), a.reps)
            body = r.json()
            assert body["total"] == a.points and 2 <= len(body["steps"]) <= 2000, body["total"]
            res.row(
                f"{a.points:,} points",
                "chart data (downsampled to 2,000)",
                "loopml",
                s,
                bytes=len(r.content),
            )
            s, r = timed(
                lambda: ok(c.get(f"/api/v1/runs/{run_id}/metric-history", params={"key": "loss"})),
                3,
            )
            assert len(r.json()["steps"]) == a.points
            res.row(
                f"{a.points:,} points",
                "raw metric history (REST)",
                "loopml",
                s,
                bytes=len(r.content),
            )
            page = f"/projects/bench-deploy/deployments/{deployment}"
            s, r = timed(lambda: ok(c.get(page)), a.reps)
            assert 'id="errors"' in r.text and "primary p99" in r.text, r.text[:300]
            res.row(
                "deployment page",
                "a day of traffic windows, 2,000 segments (30 read for latency)",
                "loopml",
                s,
                bytes=len(r.content),
            )

        # authentication: the same database behind a second server with --auth
        authed = stack.enter_context(
            loopml_server("loopml server --auth (sqlite)", store_uri, work, auth=True)
        )
        token, how = loopml_token(authed)
        res.notes.append(f"loopml API token for the --auth server made by: {how}.")
        auth_rows(
            res,
            "loopml",
            srv,
            authed,
            {"Authorization": f"Bearer {token}"},
            [f"/api/v1/runs/{some_run}", "/api/v1/projects"],
            a.auth_blocks,
            a.auth_per_block,
        )

    if mpy is None:
        return
    mdb = work / "mlflow-10k.db"
    seed = worker(
        mpy,
        "mlflow-seed",
        "--db",
        str(mdb),
        "--n",
        str(a.runs),
        "--experiment",
        "bench-10k",
        "--artifacts",
        str(work / "mlartifacts"),
    )
    res.notes.append(
        f"MLflow {seed['mlflow']} seeding: its migrations {seed['migrate_s']:.1f} s, then "
        f"{a.runs:,} runs (10 params + 5 metrics, `latest_metrics` and `metrics`, runName and "
        f"user tags) inserted with sqlite3 in {seed['seed_s']:.1f} s (not timed)."
    )
    with contextlib.ExitStack() as stack:
        msrv = stack.enter_context(mlflow_server("mlflow server", mdb, work, a.mlflow_workers))
        mlflow_reads(res, sqlite_label(a), msrv, seed["experiment_id"], a.runs, a.reps, mpy)
        some = ok(
            httpx.post(
                msrv.url + "/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [seed["experiment_id"]], "max_results": 1},
            )
        ).json()["runs"][0]["info"]["run_id"]
        try:
            mauth = stack.enter_context(
                mlflow_server(
                    "mlflow server basic-auth", mdb, work, a.mlflow_workers, basic_auth=True
                )
            )
        except RuntimeError as exc:
            last = str(exc).strip().splitlines()[-1][:300]
            res.notes.append(f"`mlflow server --app-name basic-auth` did not start: {last}")
            return
        import base64

        basic = base64.b64encode(b"admin:bench-password-1234").decode()
        auth_rows(
            res,
            "mlflow",
            msrv,
            mauth,
            {"Authorization": f"Basic {basic}"},
            [
                f"/api/2.0/mlflow/runs/get?run_id={some}",
                "/api/2.0/mlflow/experiments/search?max_results=100",
            ],
            # every basic-auth request checks the password hash (~0.3-0.5 s here): fewer
            min(a.auth_blocks, 3),
            max(5, a.auth_per_block // 10),
            warmup=3,
        )


def section_logging(a: argparse.Namespace, res: Results, work: Path, mpy: str | None) -> None:
    lwork = work / "logging"
    lwork.mkdir(exist_ok=True)
    wargs = ["--runs", str(a.log_runs), "--points", str(a.log_points), "--experiment", "bench-log"]
    with loopml_server("loopml server (logging)", f"sqlite:///{lwork / 'loopml.db'}", lwork) as s:
        out = worker(LOOPML_PY, "loopml-log", "--uri", s.url, *wargs)
    out.pop("tool")
    res.row("logging", "fluent log_metric loop via server", "loopml", [out["wall_s"]], **out)
    if mpy is None:
        return
    with mlflow_server(
        "mlflow server (logging)", lwork / "mlflow.db", lwork, a.mlflow_workers
    ) as s:
        out = worker(mpy, "mlflow-log", "--uri", s.url, *wargs, timeout=1800)
    out.pop("tool")
    res.row("logging", "fluent log_metric loop via server", "mlflow", [out["wall_s"]], **out)


def section_pg(a: argparse.Namespace, res: Results, work: Path) -> None:
    import psycopg
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    import loopml

    admin = make_url(a.pg_url.replace("postgresql+psycopg://", "postgresql://"))
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    dbname = f"loopml_bench_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
    except psycopg.OperationalError as exc:
        res.notes.append(f"PostgreSQL not reachable at {a.pg_url}: {exc}; 100k-run rows skipped.")
        return
    try:
        url = admin.set(drivername="postgresql+psycopg", database=dbname).render_as_string(
            hide_password=False
        )
        client = loopml.Client(url)
        try:
            pid, pop = populate(client.store, "bench-100k", a.pg_runs)
            t0 = time.perf_counter()
            with client.store.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as conn:
                conn.execute(sa.text("VACUUM ANALYZE"))
            vac = time.perf_counter() - t0
        finally:
            client.close()
        say(
            f"seeded {a.pg_runs} runs into PostgreSQL in {pop:.1f} s "
            f"(+ VACUUM ANALYZE {vac:.1f} s)"
        )
        res.notes.append(
            f"PostgreSQL seeding (not timed against a target): {a.pg_runs:,} runs COPY-loaded in "
            f"{pop:.1f} s, then `VACUUM ANALYZE` ({vac:.1f} s; what autovacuum does by itself "
            "shortly after a bulk load)."
        )
        with loopml_server("loopml server (postgresql)", url, work) as srv:
            loopml_reads(
                res,
                f"{a.pg_runs // 1000}k runs, PostgreSQL",
                srv,
                "bench-100k",
                pid,
                a.pg_runs,
                a.reps,
            )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        say(f"dropped {dbname}")


# --- report -----------------------------------------------------------------------------------


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:,.1f}"


def fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}"


def evaluate(a: argparse.Namespace, res: Results) -> None:
    def med(section: str, what: str, tool: str) -> float | None:
        r = res.find(section, what, tool)
        return None if r is None or not r.get("samples_s") else r["median"]

    s10 = sqlite_label(a)
    for what, limit in (
        ("runs page, default (50 rows)", 1.0),
        ("runs page, filtered + ordered (200 rows)", 1.0),
    ):
        v = med(s10, what, "loopml")
        res.target(
            f"{a.runs:,} runs: {what} < 1 s", f"{ms(v)} ms", "-", v is not None and v < limit
        )
    for what in (
        "API search, filtered + ordered, max 100",
        "API search, all runs, default max 1000",
    ):
        v, m = med(s10, what, "loopml"), med(s10, what, "mlflow")
        ratio = f"{m / v:.1f}x faster than MLflow" if v and m else "-"
        res.target(
            f"{a.runs:,} runs: {what} < 200 ms",
            f"{ms(v)} ms (MLflow {ms(m)} ms)",
            ratio,
            v is not None and v < 0.2,
        )
    spg = f"{a.pg_runs // 1000}k runs, PostgreSQL"
    for what in (
        "API search, filtered + ordered, max 100",
        "API search, all runs, default max 1000",
    ):
        v = med(spg, what, "loopml")
        res.target(
            f"{a.pg_runs:,} runs on PostgreSQL: {what} < 300 ms",
            f"{ms(v)} ms",
            "-",
            None if v is None else v < 0.3,
        )
    pts = f"{a.points:,} points"
    v = med(pts, "chart data (downsampled to 2,000)", "loopml")
    res.target(f"{pts}: chart data < 1 s", f"{ms(v)} ms", "-", v is not None and v < 1.0)
    for tool in ("loopml", "mlflow"):
        offs = [
            r
            for r in res.rows
            if r["section"] == "auth" and r["tool"] == tool and r["what"].endswith("auth off")
        ]
        for off in offs:
            on = res.find("auth", off["what"].replace("auth off", "auth on"), tool)
            if on is None:
                continue
            added = on["median"] / off["median"] - 1
            added_mean = on["mean"] / off["mean"] - 1
            added99 = on["p99"] / off["p99"] - 1
            micro = (on["median"] - off["median"]) * 1e6
            added_abs = f"{micro:+.0f} µs" if abs(micro) < 10_000 else f"{micro / 1000:+.0f} ms"
            name = off["what"].replace(" auth off", "")
            figs = (
                f"median {off['median'] * 1000:.2f} -> {on['median'] * 1000:.2f} ms "
                f"({added_abs}), mean {off['mean'] * 1000:.2f} -> {on['mean'] * 1000:.2f} ms, "
                f"p99 {off['p99'] * 1000:.2f} -> {on['p99'] * 1000:.2f} ms"
            )
            if tool == "loopml":
                res.target(
                    f"auth on: < 10 % added latency (median), {name}",
                    figs,
                    f"{added:+.1%} median, {added_mean:+.1%} mean, {added99:+.1%} p99",
                    added < 0.10,
                )
            else:
                res.target(
                    f"(MLflow basic-auth, information) {name}",
                    figs,
                    f"{added:+.1%} median, {added_mean:+.1%} mean, {added99:+.1%} p99",
                    None,
                )
    lo = res.find("logging", "fluent log_metric loop via server", "loopml")
    ml = res.find("logging", "fluent log_metric loop via server", "mlflow")
    if lo and ml:
        lp, mp = lo["points_sent"] / lo["wall_s"], ml["points_sent"] / ml["wall_s"]
        res.target(
            "logging through the server >= 10x mlflow server",
            f"{fmt(lp)} vs {fmt(mp)} points/s",
            f"{lp / mp:.1f}x",
            lp / mp >= 10 and lo["points_read"] == lo["points_sent"],
        )
    elif lo:
        lp = lo["points_sent"] / lo["wall_s"]
        res.target(
            "logging through the server >= 10x mlflow server",
            f"{fmt(lp)} points/s (MLflow not run; anchor: 155 points/s, --workers 1)",
            f"{lp / 155:.1f}x vs anchor",
            None,
        )


def report(a: argparse.Namespace, res: Results, stamp: str, mver: str | None) -> str:
    lines = [
        f"# Team-server benchmark: loopml server vs mlflow server ({stamp})",
        "",
        f"`python bench/server.py{' --quick' if a.quick else ''}` on {os.cpu_count()} CPUs "
        f"({platform.platform()}), Python {platform.python_version()}; loopml {git_state()}; "
        + (
            f"MLflow {mver} (`mlflow server --workers {a.mlflow_workers}`, job execution off)"
            if mver
            else "MLflow not run"
        )
        + ". Every server is a subprocess on 127.0.0.1 with one worker process; every request is "
        "an `httpx` call from the bench process over a keep-alive connection (client and server "
        "share the 2 cores). Times are medians of sequential requests after a warm-up; the box "
        "is shared (1-min load average in the raw `.jsonl`).",
        "",
    ]
    sections: dict[str, list[dict]] = {}
    for r in res.rows:
        if r["section"] not in ("auth", "logging"):
            sections.setdefault(r["section"], []).append(r)
    for section, rows in sections.items():
        lines += [
            f"## {section}",
            "",
            "| request | loopml ms (median / p99) | MLflow ms (median / p99) "
            "| MLflow / loopml | first request ms (loopml / MLflow) | response |",
            "|---|---|---|---|---|---|",
        ]
        for what in dict.fromkeys(r["what"] for r in rows):
            lo = res.find(section, what, "loopml")
            ml = res.find(section, what, "mlflow")
            cell = lambda r: "-" if r is None else f"{ms(r['median'])} / {ms(r['p99'])}"  # noqa: E731
            ratio = f"{ml['median'] / lo['median']:.1f}x" if lo and ml else "-"
            size = (lo or ml or {}).get("bytes")
            extra = f"{size / 1e6:.2f} MB" if size else ""
            if ml and ml.get("bytes"):
                extra += f" (MLflow {ml['bytes'] / 1e6:.2f} MB)"
            cold = " / ".join(ms(r.get("cold_s")) if r else "-" for r in (lo, ml))
            lines.append(f"| {what} | {cell(lo)} | {cell(ml)} | {ratio} | {cold} | {extra} |")
        lines.append("")
    auth = [r for r in res.rows if r["section"] == "auth"]
    if auth:
        lines += [
            "## Authentication: the same GET, sequential, auth off vs on",
            "",
            f"loopml: {a.auth_blocks} alternating blocks of {a.auth_per_block} requests per "
            "server (after 30 discarded), both servers up at once on the same database. MLflow "
            f"(`--app-name basic-auth`, default config, user `admin`): "
            f"{min(a.auth_blocks, 3)} blocks of {max(5, a.auth_per_block // 10)} (after 3 "
            "discarded), because each authenticated request costs a password-hash check.",
            "",
            "| tool | request | median ms | mean ms | p99 ms | n |",
            "|---|---|---|---|---|---|",
        ]
        for r in auth:
            lines.append(
                f"| {r['tool']} | {r['what']} | {r['median'] * 1000:.2f} "
                f"| {r['mean'] * 1000:.2f} | {r['p99'] * 1000:.2f} | {r['n']} |"
            )
        lines.append("")
    logs = [r for r in res.rows if r["section"] == "logging"]
    if logs:
        lines += [
            "## Logging through the server",
            "",
            f"{a.log_runs} runs x (10 params + {a.log_points:,} `log_metric` calls, one per step) "
            "through each tool's fluent API with the tracking URI `http://127.0.0.1:PORT`; each "
            "server on a fresh SQLite file. The clock runs from the first `start_run` to the end "
            "of the last run (loopml's run end flushes its buffered points), then every run is "
            "read back through the server.",
            "",
            "| tool | wall s | points/s | per run s | points read / sent | params read |",
            "|---|---|---|---|---|---|",
        ]
        for r in logs:
            per = ", ".join(f"{x:.2f}" for x in r["per_run_s"])
            lines.append(
                f"| {r['tool']} {r['version']} | {r['wall_s']:.2f} "
                f"| {fmt(r['points_sent'] / r['wall_s'])} | {per} "
                f"| {r['points_read']:,} / {r['points_sent']:,} | {r['params_read']} |"
            )
        lines.append("")
    lines += [
        "## Targets (issue 8)",
        "",
        "| target | figures | ratio | |",
        "|---|---|---|---|",
    ]
    for t in res.targets:
        lines.append(f"| {t['target']} | {t['figures']} | {t['ratio']} | {t['v']} |")
    lines.append("")
    if res.notes:
        lines += ["## Notes", ""] + [f"* {n}" for n in res.notes] + [""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke test, results in bench/.work")
    p.add_argument("--runs", type=int, default=10_000, help="runs for the SQLite searches")
    p.add_argument("--pg-runs", type=int, default=100_000, help="runs for the PostgreSQL search")
    p.add_argument("--points", type=int, default=1_000_000, help="points of the chart's run")
    p.add_argument("--reps", type=int, default=9, help="timed requests per read row")
    p.add_argument("--auth-blocks", type=int, default=10)
    p.add_argument("--auth-per-block", type=int, default=400)
    p.add_argument("--log-runs", type=int, default=5)
    p.add_argument("--log-points", type=int, default=1000)
    p.add_argument("--mlflow-workers", type=int, default=1)
    p.add_argument("--skip-mlflow", action="store_true")
    p.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL of a PostgreSQL server ('none' to skip)",
    )
    p.add_argument("--results-dir", default="")
    p.add_argument("--sections", default="sqlite,logging,pg")
    a = p.parse_args()
    if a.quick:
        a.runs, a.pg_runs, a.points, a.reps = 2000, 20_000, 100_000, 3
        a.auth_blocks, a.auth_per_block, a.log_runs, a.log_points = 2, 100, 1, 200
    sections = set(a.sections.split(","))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    results = (
        Path(a.results_dir)
        if a.results_dir
        else (BENCH / ".work" / "results" if a.quick else BENCH / "results")
    )
    results.mkdir(parents=True, exist_ok=True)
    work = BENCH / ".work" / f"server-{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    res = Results(results / f"server-{stamp}.jsonl")
    mpy = None if a.skip_mlflow else ensure_mlflow_venv()
    mver = None
    if mpy:
        mver = subprocess.run(
            [mpy, "-c", "import mlflow; print(mlflow.__version__)"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    elif not a.skip_mlflow:
        res.notes.append("The full `mlflow` package could not be installed: MLflow rows skipped.")
    res.notes.append(
        "MLflow has no downsampled chart endpoint to compare with; for scale, its "
        "`get_metric_history` of 100k points through `mlflow server --workers 1` took 4.69 s "
        "in the anchors (shared/bench/RESULTS.md, not this run)."
    )
    t0 = time.perf_counter()
    failures = []
    for name, fn in (
        ("sqlite", lambda: section_sqlite(a, res, work, mpy)),
        ("logging", lambda: section_logging(a, res, work, mpy)),
        ("pg", lambda: section_pg(a, res, work) if a.pg_url != "none" else None),
    ):
        if name not in sections:
            continue
        try:
            fn()
        except Exception as exc:
            say(f"section {name} failed: {exc!r}")
            last = (str(exc).strip().splitlines() or [""])[-1][:500]
            failures.append(f"section `{name}` failed: {type(exc).__name__}: {last}")
    for f in failures:
        res.notes.append(f)
    res.notes.append(
        f"Whole bench: {time.perf_counter() - t0:.0f} s. Work files: `{work.relative_to(REPO)}`."
    )
    evaluate(a, res)
    text = report(a, res, stamp, mver)
    md = results / f"server-{stamp}.md"
    md.write_text(text)
    if not a.quick:
        shutil.copyfile(md, results / "server-latest.md")
    print(text)
    say(f"wrote {md}")
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
