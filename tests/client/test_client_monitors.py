"""Client monitoring methods: monitors with the acting user in the audit trail and project
resolution, results, alerts and their deliveries, and ground truth: the Parquet file
``log_ground_truth`` writes, its index, ``read_ground_truth`` (the latest label wins), the checks
of its inputs, and the top-level ``loopml.log_ground_truth``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loopml
from loopml.client import context
from loopml.entities import AlertState, LabelSegment
from loopml.errors import (
    AlertNotFound,
    AlreadyExists,
    Conflict,
    InvalidArgument,
    InvalidData,
    MonitorNotFound,
    ProjectNotFound,
)

SPEC = {"deployment": "churn-api", "checks": [{"type": "drift"}]}
MINUTE = 60_000


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPML_USER", "alice")
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


# --- monitors ------------------------------------------------------------------------------------


def test_monitors_through_the_client(
    client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = client.create_monitor("churn-drift", SPEC, description="v1", project="shop")
    assert (m.created_by, m.revision, m.enabled, dict(m.spec)) == ("alice", 1, True, SPEC)
    assert client.get_monitor("churn-drift", project="shop") == m
    assert client.list_monitors(project="shop") == [m]
    with pytest.raises(AlreadyExists):
        client.create_monitor("churn-drift", {}, project="shop")
    monkeypatch.setenv("LOOPML_USER", "bob")
    up = client.update_monitor("churn-drift", enabled=False, expected_revision=1, project="shop")
    assert (up.enabled, up.revision, up.updated_by, up.description) == (False, 2, "bob", "v1")
    with pytest.raises(Conflict, match="revision 2, not 1"):
        client.update_monitor("churn-drift", spec={}, expected_revision=1, project="shop")
    client.delete_monitor("churn-drift", reason="replaced", project="shop")
    with pytest.raises(MonitorNotFound, match="list_monitors"):
        client.get_monitor("churn-drift", project="shop")
    history = client.search_audit_events(object_type="monitor", project="shop")
    assert [(e.action, e.actor, e.reason) for e in history] == [
        ("monitor.delete", "bob", "replaced"),
        ("monitor.update", "bob", ""),
        ("monitor.create", "alice", ""),
    ]


def test_reads_in_an_unknown_project_raise(client: loopml.Client) -> None:
    for call in (
        lambda: client.get_monitor("m", project="nowhere"),
        lambda: client.list_monitors(project="nowhere"),
        lambda: client.list_alerts(project="nowhere"),
        lambda: client.list_label_segments(project="nowhere"),
        lambda: client.read_ground_truth(project="nowhere"),
    ):
        with pytest.raises(ProjectNotFound):
            call()


def test_the_default_project_comes_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_PROJECT", "fraud")
    with loopml.Client(f"sqlite:///{tmp_path}/p.db", artifact_uri=str(tmp_path / "a")) as c:
        m = c.create_monitor("m", SPEC)
        assert m.project_id == c.get_project("fraud").project_id
        assert c.get_monitor("m", project="fraud") == m


def test_results_through_the_client(client: loopml.Client) -> None:
    client.create_monitor("churn-drift", SPEC)
    first = client.log_monitor_result(
        "churn-drift",
        window_start=0,
        window_end=MINUTE,
        metrics={"rows": np.int64(120), "drift_share": np.float32(0.25), "accuracy": math.nan},
    )
    assert first.status == "ok" and dict(first.details) == {}
    assert first.metrics["rows"] == 120.0 and isinstance(first.metrics["drift_share"], float)
    second = client.log_monitor_result(
        "churn-drift",
        window_start=MINUTE,
        window_end=2 * MINUTE,
        metrics={"rows": 3},
        details={"notes": ["few rows"]},
        status="no_data",
    )
    again = client.log_monitor_result(
        "churn-drift", window_start=0, window_end=MINUTE, metrics={"accuracy": 0.8}
    )
    found = client.list_monitor_results("churn-drift")
    assert [r.id for r in found] == [again.id, second.id]
    assert found[0].metrics == {"accuracy": 0.8}
    assert client.list_monitor_results("churn-drift", limit=1) == [second]
    assert client.list_monitor_results("churn-drift", start=MINUTE) == [second]
    with pytest.raises(MonitorNotFound):
        client.log_monitor_result("ghost", window_start=0, window_end=1, metrics={})
    with pytest.raises(InvalidArgument, match="window_end 0 is not after window_start 0"):
        client.log_monitor_result("churn-drift", window_start=0, window_end=0, metrics={})


def test_alerts_and_deliveries_through_the_client(client: loopml.Client) -> None:
    client.create_monitor("churn-drift", SPEC)
    a = client.open_alert(
        "churn-drift",
        "drift",
        severity="warning",
        message="drift_share 0.6 > 0.5",
        value=0.6,
        threshold=0.5,
        window_start=0,
        window_end=MINUTE,
        details={"columns": ["age"]},
    )
    assert (a.state, a.occurrences, a.resolved_at, a.notified_at) == (
        AlertState.FIRING,
        1,
        None,
        None,
    )
    assert a.started_at == a.last_seen_at > 0
    with pytest.raises(Conflict, match="has a firing alert already"):
        client.open_alert("churn-drift", "drift", severity="warning", message="again")
    seen = client.update_alert(dataclasses.replace(a, occurrences=2, value=0.7))
    assert client.get_alert(a.id) == seen and seen.occurrences == 2
    d = client.log_alert_delivery(
        a.id, notifier="ops", kind="webhook", event="firing", attempt=1, ok=False, status="503"
    )
    d2 = client.log_alert_delivery(
        a.id, notifier="ops", kind="webhook", event="firing", attempt=2, ok=True
    )
    assert client.list_alert_deliveries(alert_id=a.id) == [d, d2]
    assert client.list_alert_deliveries(limit=1) == [d2]
    done = client.update_alert(dataclasses.replace(seen, state=AlertState.RESOLVED, resolved_at=9))
    assert client.list_alerts(state="firing") == []
    assert client.list_alerts(monitor="churn-drift", rule="drift") == [done]
    with pytest.raises(InvalidArgument, match="cannot fire again"):
        client.update_alert(dataclasses.replace(done, state=AlertState.FIRING))
    with pytest.raises(AlertNotFound):
        client.get_alert("0" * 32)
    with pytest.raises(AlertNotFound):
        client.log_alert_delivery(
            "0" * 32, notifier="ops", kind="webhook", event="firing", attempt=1, ok=True
        )
    with pytest.raises(InvalidArgument, match="severity"):
        client.open_alert("churn-drift", "drift", severity="fatal", message="x")


# --- ground truth --------------------------------------------------------------------------------


def test_log_ground_truth_writes_one_parquet_file(client: loopml.Client) -> None:
    seg = client.log_ground_truth(["p-0", "p-1", "p-2"], [1, 0, 1], deployment="churn-api", time=5)
    assert isinstance(seg, LabelSegment)
    assert (seg.deployment, seg.rows, seg.uri) == ("churn-api", 3, f"sha256:{seg.digest}")
    assert seg.size_bytes == len(client.artifacts.read(seg.digest)) and len(seg.id) == 32
    parquet = pq.ParquetFile(pa.BufferReader(client.artifacts.read(seg.digest)))
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
    table = parquet.read()
    assert table.schema.names == ["prediction_id", "label", "time"]
    assert table.schema.field("prediction_id").type == pa.string()
    assert table.schema.field("time").type == pa.timestamp("ms")
    assert table.column("label").to_pylist() == [1, 0, 1]
    assert [t.value for t in table.column("time")] == [5, 5, 5]
    assert client.list_label_segments() == [seg]
    # The same labels at the same time again: the same file, the same segment.
    assert (
        client.log_ground_truth(["p-0", "p-1", "p-2"], [1, 0, 1], deployment="churn-api", time=5)
        == seg
    )
    # The same file for another deployment is another segment.
    other = client.log_ground_truth(["p-0", "p-1", "p-2"], [1, 0, 1], time=5)
    assert other.id != seg.id and other.digest == seg.digest and other.deployment == ""
    assert client.list_label_segments(deployment="churn-api") == [seg]
    assert client.list_label_segments(deployment="") == [other]
    assert client.list_label_segments(since=other.created_at) == [other]


def test_the_latest_label_wins(client: loopml.Client) -> None:
    client.log_ground_truth(["a", "b", "c"], [0, 0, 0], time=1_000)
    client.log_ground_truth(["b"], [1], time=3_000)
    client.log_ground_truth(["c", "a"], [1, 1], time=500)  # later written, but older
    client.log_ground_truth(["b"], [2], time=3_000)  # the same time: the last written wins
    client.log_ground_truth(["d"], [5], deployment="other", time=2_000)
    truth = client.read_ground_truth()
    assert truth.schema.names == ["prediction_id", "label", "time"]
    got = {r["prediction_id"]: (r["label"], r["time"]) for r in truth.to_pylist()}
    assert {k: v[0] for k, v in got.items()} == {"a": 0, "b": 2, "c": 0, "d": 5}
    assert [t.value for t in truth.column("time")] == sorted(t.value for t in truth.column("time"))
    assert truth.num_rows == 4
    only = client.read_ground_truth(deployment="other")
    assert only.column("prediction_id").to_pylist() == ["d"]
    empty = client.read_ground_truth(deployment="nothing-here")
    assert empty.num_rows == 0 and empty.schema.names == ["prediction_id", "label", "time"]


def test_labels_of_several_kinds(client: loopml.Client) -> None:
    client.log_ground_truth(np.array(["a", "b"]), pd.Series([True, False]), deployment="x")
    client.log_ground_truth(pd.Series(["c"]), pa.array(["yes"]), deployment="y")
    client.log_ground_truth(("d", "e"), np.array([0.5, 1.5]), deployment="z")
    client.log_ground_truth(pa.chunked_array([["f"]]), [3], deployment="z", time=0)
    assert client.read_ground_truth(deployment="x").column("label").to_pylist() == [True, False]
    assert client.read_ground_truth(deployment="y").column("label").to_pylist() == ["yes"]
    z = client.read_ground_truth(deployment="z")  # ints and floats combine as floats
    assert z.schema.field("label").type == pa.float64()
    assert sorted(z.column("label").to_pylist()) == [0.5, 1.5, 3.0]
    with pytest.raises(InvalidData, match="labels of different types"):
        client.read_ground_truth(deployment=None)  # strings with numbers


@pytest.mark.parametrize(
    ("ids", "labels", "message"),
    [
        (["a", "b"], [1], "got 2 prediction ids and 1 labels"),
        ([], [], "no labels given"),
        (["a", None], [1, 0], "prediction id 1 is missing"),
        (["a", ""], [1, 0], "prediction id 1 is empty"),
        ([1, 2], [1, 0], "prediction ids must be strings"),
        ("ab", [1, 0], "must be a list, array or Series, got str"),
        ({"a": 1}, [1], "must be a list, array or Series, got dict"),
        (None, [1], "must be a list, array or Series"),
        (["a", "b"], [1, None], "label 1 is missing"),
        (["a", "b"], [1.0, math.nan], "label 1 is missing"),
        (["a", "b"], [1, "x"], "must hold values of one kind"),
        (["a"], [[1, 2]], "labels must be numbers, strings or bools"),
        (["a"], [b"x"], "labels must be numbers, strings or bools"),
        (["a"], 5, "must be a list, array or Series, got int"),
    ],
)
def test_bad_ground_truth_is_refused(
    client: loopml.Client, ids: Any, labels: Any, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        client.log_ground_truth(ids, labels)
    assert client.list_projects() == []  # refused before anything was written


def test_bad_deployment_or_time(client: loopml.Client) -> None:
    with pytest.raises(InvalidArgument, match="deployment name"):
        client.log_ground_truth(["a"], [1], deployment="a/b")
    with pytest.raises(InvalidArgument, match="time"):
        client.log_ground_truth(["a"], [1], time=-5)
    with pytest.raises(InvalidArgument, match="time"):
        client.log_ground_truth(["a"], [1], time="now")  # type: ignore[arg-type]


def test_top_level_log_ground_truth_uses_the_default_client(client: loopml.Client) -> None:
    old = context.replace_client(client)
    try:
        loopml.set_project("labels")
        seg = loopml.log_ground_truth(["p-0"], ["churned"], deployment="churn-api")
        assert seg.project_id == client.get_project("labels").project_id
        truth = client.read_ground_truth(project="labels")
        assert truth.column("label").to_pylist() == ["churned"]
    finally:
        context.set_project(None)
        context.replace_client(old)
