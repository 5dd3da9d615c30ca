#!/usr/bin/env python3
"""Child processes of ``bench/server.py``: each sub-command runs in the venv of the tool it drives
(loopml's ``.venv`` or the MLflow venv, which has no loopml) and prints one JSON line.

  mlflow-seed    create an MLflow SQLite database (its own migrations) and bulk-load N finished
                 runs into its tables with the same params and metrics as loopml's seeded runs
  mlflow-search  ``MlflowClient.search_runs`` against ``mlflow server`` (client-side figure)
  mlflow-log     the logging workload through MLflow's fluent API (tracking URI http://...)
  loopml-log     the same workload through loopml's fluent API (LOOPML_TRACKING_URI=http://...)

The logging workload is what a user's training script does: for each of RUNS runs, start a run,
log 10 params, call ``log_metric`` once per point for POINTS steps, end the run. The clock runs
from the first ``start_run`` to the end of the last run (for loopml, which buffers points, the
run's end flushes them, so the data is on the server when the clock stops). Then every run is
read back through the same tracking URI and its params and points are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import time
import uuid

from tracking import FILTER, ORDER, _m, _p  # the 1,000/100k-run search workload's shapes

N_PARAMS = 10
N_METRICS = 5


def _out(rec: dict) -> None:
    print(json.dumps(rec), flush=True)


def mlflow_seed(a: argparse.Namespace) -> None:
    import mlflow

    t0 = time.perf_counter()
    client = mlflow.MlflowClient(f"sqlite:///{a.db}")  # runs MLflow's own migrations
    exp = client.create_experiment(a.experiment, artifact_location=a.artifacts)
    migrate_s = time.perf_counter() - t0
    base = int(time.time() * 1000) - a.n - 10_000
    t0 = time.perf_counter()
    runs, params, latest, metrics, tags = [], [], [], [], []
    for i in range(a.n):
        rid = uuid.uuid4().hex
        start = base + i
        uri = f"{a.artifacts}/{rid}/artifacts"
        runs.append(
            (rid, f"s{i}", "UNKNOWN", "", "", "bench", "FINISHED", start, start + 5, "", "active")
        )
        runs[-1] += (uri, int(exp))
        params.extend((f"p{k}", _p(i, k), rid) for k in range(N_PARAMS))
        latest.extend((f"m{k}", _m(i, k), start, 0, 0, rid) for k in range(N_METRICS))
        metrics.extend((f"m{k}", _m(i, k), start, rid, 0, 0) for k in range(N_METRICS))
        tags.append(("mlflow.runName", f"s{i}", rid))
        tags.append(("mlflow.user", "bench", rid))
    con = sqlite3.connect(a.db)
    with con:
        con.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            runs,
        )
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", params)
        con.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?,?,?,?,?,?)",
            latest,
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?,?,?,?,?,?)",
            metrics,
        )
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tags)
    con.close()
    _out(
        {
            "experiment_id": str(exp),
            "seed_s": time.perf_counter() - t0,
            "migrate_s": migrate_s,
            "mlflow": mlflow.__version__,
        }
    )


def mlflow_search(a: argparse.Namespace) -> None:
    import mlflow

    client = mlflow.MlflowClient(a.uri)
    out: dict = {"mlflow": mlflow.__version__}
    cases = {
        "filtered": dict(filter_string=FILTER, order_by=["metrics.m1 DESC"], max_results=100),
        "all1000": dict(max_results=1000),
    }
    for name, kw in cases.items():
        samples, names = [], []
        for rep in range(a.reps + 1):
            t0 = time.perf_counter()
            found = client.search_runs([a.experiment_id], **kw)
            if rep:  # the first is a warm-up
                samples.append(time.perf_counter() - t0)
            names = [r.info.run_name for r in found]
        out[name] = {"samples": samples, "median": statistics.median(samples), "n": len(names)}
        if name == "filtered":
            out[name]["names"] = names
    _out(out)


def mlflow_log(a: argparse.Namespace) -> None:
    import mlflow

    mlflow.set_tracking_uri(a.uri)
    mlflow.set_experiment(a.experiment)
    ids, per_run = [], []
    t0 = time.perf_counter()
    for r in range(a.runs):
        t1 = time.perf_counter()
        with mlflow.start_run(run_name=f"log{r}") as run:
            mlflow.log_params({f"p{k}": f"v{r}-{k}" for k in range(N_PARAMS)})
            for i in range(a.points):
                mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        ids.append(run.info.run_id)
        per_run.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    client = mlflow.MlflowClient(a.uri)
    points = sum(len(client.get_metric_history(rid, "loss")) for rid in ids)
    params = sum(len(client.get_run(rid).data.params) for rid in ids)
    _out(
        {
            "tool": "mlflow",
            "version": mlflow.__version__,
            "wall_s": wall,
            "per_run_s": per_run,
            "runs": a.runs,
            "points_sent": a.runs * a.points,
            "points_read": points,
            "params_read": params,
        }
    )


def loopml_log(a: argparse.Namespace) -> None:
    import loopml

    loopml.set_tracking_uri(a.uri)
    ids, per_run = [], []
    t0 = time.perf_counter()
    for r in range(a.runs):
        t1 = time.perf_counter()
        with loopml.start_run(f"log{r}", project=a.experiment) as run:
            loopml.log_params({f"p{k}": f"v{r}-{k}" for k in range(N_PARAMS)})
            for i in range(a.points):
                loopml.log_metric("loss", 1.0 / (i + 1), step=i)
        ids.append(run.run_id)
        per_run.append(time.perf_counter() - t1)
    wall = time.perf_counter() - t0
    client = loopml.Client(a.uri)
    points = sum(len(client.get_metric_history(rid, "loss")) for rid in ids)
    params = sum(len(client.get_run(rid).params) for rid in ids)
    _out(
        {
            "tool": "loopml",
            "version": loopml.__version__,
            "wall_s": wall,
            "per_run_s": per_run,
            "runs": a.runs,
            "points_sent": a.runs * a.points,
            "points_read": points,
            "params_read": params,
        }
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("cmd", choices=("mlflow-seed", "mlflow-search", "mlflow-log", "loopml-log"))
    p.add_argument("--db", default="")
    p.add_argument("--artifacts", default="")
    p.add_argument("--uri", default="")
    p.add_argument("--experiment", default="bench")
    p.add_argument("--experiment-id", default="")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--points", type=int, default=1000)
    a = p.parse_args()
    assert ORDER == ["metrics.m1 desc"]  # mlflow_search spells it "metrics.m1 DESC"
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    {
        "mlflow-seed": mlflow_seed,
        "mlflow-search": mlflow_search,
        "mlflow-log": mlflow_log,
        "loopml-log": loopml_log,
    }[a.cmd](a)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
