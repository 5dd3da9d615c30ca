"""A small project with one of everything the web UI shows, hostile strings included (no tests
here: ``test_ui_pages`` and ``test_ui_browser`` import :func:`seed`)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from loopml.entities import ArtifactInfo, Metric, Param, Tag
from loopml.pipelines.runner import TAG
from loopml.stats.dataset import profile
from loopml.store.artifacts import FsspecArtifactStore
from loopml.store.base import Store
from loopml.testing.store_suite_alerts import alert
from loopml.testing.store_suite_deployments import deploy
from loopml.testing.store_suite_monitors import make_monitor, result
from loopml.testing.store_suite_segments import segment
from loopml.testing.store_suite_traffic import traffic

XSS = "<script>alert(1)</script>"
XSS2 = '"><img src=x onerror=alert(1)>'
HOSTILE = (XSS, XSS2)
MANY_POINTS = 100_000


@dataclass
class Seeded:
    project: str
    project_id: str
    run_id: str
    big_run_id: str
    hostile_run_id: str
    pipeline_run_id: str
    model: str


def seed(store: Store, artifacts: FsspecArtifactStore) -> Seeded:
    p = store.create_project("churn", "the churn model")
    pid = p.project_id
    runs = []
    for i in range(12):
        run = store.create_run(
            pid,
            name=f"run-{i:02d}",
            params={"lr": str(0.1 * (i + 1)), "model": "rf" if i % 2 else "xgb"},
            tags={"team": "risk"},
        )
        store.log_batch(
            run.run_id, [Metric("auc", 0.5 + i / 100, 0, 1), Metric("loss", 1 - i / 20)]
        )
        store.update_run(run.run_id, status="finished", end_time=run.start_time + 1000)
        runs.append(run)
    big = runs[0]
    steps = np.arange(MANY_POINTS)
    values = np.sin(steps / 1000.0)
    values[54_321] = 100.0  # a spike that downsampling must keep
    values[77_777] = -100.0
    store.log_batch(
        big.run_id,
        [Metric("curve", float(v), int(s), 1) for s, v in zip(steps, values, strict=True)],
    )
    hostile = store.create_run(
        pid, name=XSS, params={"evil": XSS2, "p2": XSS}, tags={"note": XSS2}
    )
    store.log_batch(hostile.run_id, [Metric("auc", 0.9)])
    text_sha, text_size = artifacts.put(io.BytesIO(b"hello <b>artifact</b>\n"))
    png_sha, png_size = artifacts.put(io.BytesIO(b"\x89PNG\r\n\x1a\n"))
    store.log_artifacts(
        hostile.run_id,
        [
            ArtifactInfo("notes/readme.txt", text_sha, text_size),
            ArtifactInfo(f"odd/{XSS2}.txt", text_sha, text_size),
            ArtifactInfo("plot.png", png_sha, png_size),
        ],
    )
    frame = pd.DataFrame({"age": np.arange(50) % 30 + 20, "plan": ["a", "b"] * 25})
    prof = profile(frame)
    prof_sha, _ = artifacts.put(io.BytesIO(prof.to_json().encode()))
    data_sha, data_size = artifacts.put(io.BytesIO(b"age,plan\n"))
    version, _ = store.create_dataset_version(
        pid,
        "customers",
        digest="ab" * 32,
        blob=data_sha,
        size_bytes=data_size,
        num_rows=50,
        num_columns=2,
        schema={"columns": {"age": "int", "plan": XSS}},
        profile_blob=prof_sha,
        source=XSS2,
        run_id=big.run_id,
    )
    store.log_inputs(big.run_id, [(version.id, "train")])
    store.create_registered_model(pid, "churn", description=XSS, actor="alice")
    for run in (runs[1], runs[2], runs[3]):
        store.create_model_version(
            pid,
            "churn",
            source=f"runs:/{run.run_id}/model",
            run_id=run.run_id,
            flavor="sklearn",
            manifest_digest="cd" * 32,
            description=XSS2,
            actor="alice",
        )
    store.set_model_version_gate_result(pid, "churn", 2, {"passed": True}, actor="alice")
    store.set_model_alias(pid, "churn", "champion", 1, actor="alice")
    store.set_model_alias(pid, "churn", "champion", 2, actor="alice", reason="better auc")
    deploy(store, pid, description=XSS)
    for k in range(5):
        store.add_prediction_segment(
            segment(pid, 1_000 + k * 60_000, 60_000 + k * 60_000, routes=("primary", "canary"))
        )
        store.add_traffic_window(traffic(pid, k * 60_000))  # 100 requests, 3 4xx, 2 5xx
        store.add_traffic_window(
            traffic(pid, k * 60_000, route="canary", model_version="churn/4", server_errors=k)
        )
    make_monitor(store, pid, description=XSS2)
    for k in range(4):
        store.add_monitor_result(result(pid, k * 60_000, (k + 1) * 60_000))
    store.add_alert(alert(pid, message=XSS))
    pipe = store.create_run(
        pid, name="train-pipeline", tags={TAG.KIND: "pipeline", TAG.PIPELINE: "train"}
    )
    for step, upstream in (("load", ""), ("features", "load"), ("fit", "features,load")):
        child = store.create_run(
            pid,
            name=f"step-{step}",
            parent_run_id=pipe.run_id,
            tags={TAG.KIND: "step", TAG.STEP: step, TAG.PIPELINE: "train", TAG.UPSTREAM: upstream},
        )
        store.update_run(child.run_id, status="finished")
    store.log_audit_event(pid, actor=XSS, action="note.add", object_type="note", object_name=XSS2)
    store.log_batch(big.run_id, params=[Param("only", "big")], tags=[Tag("t", "v")])
    return Seeded("churn", pid, runs[5].run_id, big.run_id, hostile.run_id, pipe.run_id, "churn")
