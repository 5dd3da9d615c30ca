"""Monitors over a deployment's prediction log: windows, drift, quality, performance once labels
arrive, latency, and runs that pick up where the last one stopped."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mon_helpers import HOUR, T0, LogFn, make_frame, truth
from sklearn.metrics import accuracy_score, f1_score

import loopml
from loopml.errors import InvalidArgument
from loopml.monitoring.runner import create_monitor, run_monitor
from loopml.monitoring.spec import MonitorSpec, parse_duration


def _monitor(client: loopml.Client, **spec: object) -> str:
    create_monitor(client, "live", {"deployment": "churn", "window": "1h", **spec})
    return "live"


def test_stable_traffic_raises_no_drift(mon_client: loopml.Client, log_predictions: LogFn) -> None:
    for h in range(3):
        log_predictions(make_frame(400, seed=10 + h), T0 + h * HOUR)
    name = _monitor(mon_client)
    run = run_monitor(mon_client, name, now=T0 + 3 * HOUR + 1)
    assert [r.window_start for r in run.results] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    for r in run.results:
        assert r.metrics["rows"] == 400
        assert r.metrics["dataset_drift"] == 0.0, r.details["drift"]
        assert r.status == "ok"
        assert 1.0 <= r.metrics["latency_p50_ms"] <= 10.0
        assert r.details["reference"]["kind"] == "training"
    # nothing new: the next run evaluates nothing
    assert run_monitor(mon_client, name, now=T0 + 3 * HOUR + 2).results == []


def test_shifted_traffic_drifts_and_names_the_features(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    log_predictions(make_frame(400, seed=3), T0)
    log_predictions(make_frame(400, shift=1.5, seed=4), T0 + HOUR)
    run = run_monitor(mon_client, _monitor(mon_client), now=T0 + 2 * HOUR)
    calm, shifted = run.results
    assert calm.metrics["dataset_drift"] == 0.0
    assert shifted.metrics["dataset_drift"] == 1.0 and shifted.status == "drifted"
    drifted = {c["column"] for c in shifted.details["drift"]["columns"] if c["drifted"]}
    assert {"age", "income", "visits"} <= drifted and "plan" not in drifted
    assert shifted.metrics["drift.age"] > calm.metrics["drift.age"]
    # stored: the time series reads back
    stored = mon_client.list_monitor_results("live")
    assert [r.metrics["dataset_drift"] for r in stored] == [0.0, 1.0]


def test_quality_flags_nulls_unseen_categories_and_out_of_range(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    frame = make_frame(400, seed=5)
    frame.loc[:59, "age"] = np.nan  # 15 % nulls
    frame.loc[40:59, "plan"] = "enterprise"  # 5 % never seen in training
    frame.loc[60:79, "income"] = 1e9  # 5 % far above the training range
    log_predictions(frame, T0)
    run = run_monitor(mon_client, _monitor(mon_client), now=T0 + HOUR)
    (r,) = run.results
    assert r.metrics["null_share.age"] == pytest.approx(0.15)
    assert r.metrics["unseen_category_share"] > 0
    quality = {c["column"]: c for c in r.details["quality"]["columns"]}
    assert quality["plan"]["unseen"] == ["enterprise"]
    assert quality["plan"]["unseen_share"] == pytest.approx(0.05)
    assert quality["age"]["null_increase"] is True
    assert quality["income"]["out_of_range"] == pytest.approx(20, abs=2)


def test_performance_when_labels_arrive_late(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    frame = make_frame(300, seed=6)
    preds = truth(frame).copy()
    preds[:30] = 1 - preds[:30]  # the model is wrong on 30 rows
    ids = log_predictions(frame, T0, predictions=preds)
    name = _monitor(mon_client, performance={"metrics": ["accuracy", "f1"]})
    (first,) = run_monitor(mon_client, name, now=T0 + HOUR).results
    assert "accuracy" not in first.metrics  # no labels yet
    labels = truth(frame)
    mon_client.log_ground_truth(ids[:200], labels[:200].tolist())
    (again,) = run_monitor(mon_client, name, now=T0 + HOUR + 1000).results
    assert again.window_start == T0  # re-evaluated: labels arrived
    assert again.metrics["labelled"] == 200
    assert again.metrics["accuracy"] == pytest.approx(accuracy_score(labels[:200], preds[:200]))
    assert again.metrics["f1"] == pytest.approx(f1_score(labels[:200], preds[:200]))
    # one result per window: the new one replaced the first
    assert len(mon_client.list_monitor_results(name)) == 1


def test_prediction_drift_against_the_training_target(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    frame = make_frame(400, seed=7)
    log_predictions(frame, T0)
    log_predictions(make_frame(400, seed=8), T0 + HOUR, predictions=np.ones(400, dtype=int))
    run = run_monitor(mon_client, _monitor(mon_client), now=T0 + 2 * HOUR)
    ok, bad = run.results
    assert ok.metrics["prediction_drifted"] == 0.0
    assert bad.metrics["prediction_drifted"] == 1.0
    assert bad.details["prediction_drift"]["against"] == "target"


def test_a_route_filter_and_a_run_without_data(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    name = _monitor(mon_client, route="canary")
    run = run_monitor(mon_client, name, now=T0 + HOUR)
    assert run.results == [] and "no predictions" in run.notes[0]
    log_predictions(make_frame(50, seed=9), T0, route="primary")
    log_predictions(make_frame(70, seed=9), T0, route="canary", version="churn/1")
    (r,) = run_monitor(mon_client, name, now=T0 + HOUR).results
    assert r.metrics["rows"] == 70


def test_error_rates_from_the_traffic_windows_and_an_alert_on_them(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    for h in range(2):
        log_predictions(make_frame(100, seed=20 + h), T0 + h * HOUR)
        for minute in range(60):  # the servers' counts; the second hour fails 5 % of requests
            for route, version in (("primary", "churn/1"), ("canary", "churn/2")):
                mon_client.log_traffic_window(
                    "churn",
                    route=route,
                    model_version=version,
                    window_start=T0 + h * HOUR + minute * 60_000,
                    window_seconds=60,
                    requests=20,
                    client_errors=1,
                    server_errors=h if route == "canary" else 0,
                )
    name = _monitor(
        mon_client,
        alerts=[{"name": "failing", "metric": "error_rate", "op": ">", "threshold": 0.01}],
    )
    first, second = run_monitor(mon_client, name, now=T0 + 2 * HOUR + 1).results
    assert first.metrics["requests"] == second.metrics["requests"] == 2_400
    assert first.metrics["error_rate"] == 0.0
    assert second.metrics["error_rate"] == pytest.approx(60 / 2_400)
    assert second.metrics["client_error_rate"] == pytest.approx(0.05)
    assert second.details["latency"]["server_errors"] == 60
    assert 1.0 <= second.metrics["latency_p50_ms"] <= 10.0  # from the log, beside them
    [alert] = mon_client.list_alerts(monitor=name)
    assert alert.rule == "failing" and alert.state == "firing"
    canary = _monitor_named(mon_client, "canary-only", route="canary")
    _, only = run_monitor(mon_client, canary, now=T0 + 2 * HOUR + 1).results
    assert only.metrics["requests"] == 1_200
    assert only.metrics["error_rate"] == pytest.approx(60 / 1_200)


def _monitor_named(client: loopml.Client, name: str, **spec: object) -> str:
    create_monitor(client, name, {"deployment": "churn", "window": "1h", **spec})
    return name


def test_dataset_monitor_checks_each_new_version(mon_client: loopml.Client) -> None:
    from loopml.data import log_dataset

    ref = mon_client.get_dataset_version("churn-train")
    create_monitor(
        mon_client, "batches", {"dataset": "daily", "reference": ref.uri, "window": "1d"}
    )
    log_dataset(make_frame(800, seed=20), "daily", client=mon_client)
    first = run_monitor(mon_client, "batches").results
    log_dataset(make_frame(800, shift=2, seed=21), "daily", client=mon_client)
    second = run_monitor(mon_client, "batches").results
    assert [r.metrics["dataset_drift"] for r in first] == [0.0]
    assert [r.metrics["dataset_drift"] for r in second] == [1.0]
    assert second[0].details["dataset_version"].endswith("/2")


def test_specs_are_checked_with_every_problem_named(mon_client: loopml.Client) -> None:
    with pytest.raises(InvalidArgument, match="exactly one of deployment"):
        MonitorSpec.parse({"window": "1h"})
    with pytest.raises(InvalidArgument, match=r"window: .*not a duration"):
        MonitorSpec.parse({"deployment": "churn", "window": "soon"})
    with pytest.raises(InvalidArgument, match="drift_share"):
        MonitorSpec.parse("deployment: churn\ndrift: {drift_share: 2}\n")
    with pytest.raises(InvalidArgument, match="unknown metrics"):
        MonitorSpec.parse({"deployment": "churn", "performance": {"metrics": ["acc"]}})
    with pytest.raises(InvalidArgument, match="colour"):
        MonitorSpec.parse({"deployment": "churn", "colour": "red"})
    with pytest.raises(loopml.errors.DeploymentNotFound):
        create_monitor(mon_client, "x", {"deployment": "nope"})
    assert parse_duration("90s") == 90 and parse_duration("1.5h") == 5400
    assert math.isclose(parse_duration(0.5), 0.5)
    spec = MonitorSpec.parse({"deployment": "churn", "window": "30m"})
    assert MonitorSpec.parse(spec.to_dict()) == spec


def test_windows_by_count(mon_client: loopml.Client, log_predictions: LogFn) -> None:
    for h in range(5):  # 5 log windows of 150 rows, an hour apart
        log_predictions(make_frame(150, seed=50 + h), T0 + h * HOUR)
    name = _monitor(mon_client, window_rows=300)
    run = run_monitor(mon_client, name, now=T0 + 5 * HOUR)
    assert [r.metrics["rows"] for r in run.results] == [300, 300]  # the 5th waits for more
    assert run.results[0].window_start == T0
    log_predictions(make_frame(150, seed=60), T0 + 5 * HOUR)
    (last,) = run_monitor(mon_client, name, now=T0 + 6 * HOUR).results
    assert last.metrics["rows"] == 300 and last.window_start == T0 + 4 * HOUR
    with pytest.raises(InvalidArgument, match="window_rows"):
        MonitorSpec.parse({"dataset": "d", "reference": "datasets:/d/1", "window_rows": 5})


def test_exact_ks_on_the_logged_rows_matches_scipy(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    from scipy.stats import ks_2samp

    from loopml.data import load_dataset

    frame = make_frame(300, shift=0.5, seed=70)
    log_predictions(frame, T0)
    (r,) = run_monitor(
        mon_client, _monitor(mon_client, drift={"exact": True}), now=T0 + HOUR
    ).results
    train = load_dataset("datasets:/churn-train/1", client=mon_client)
    for name in ("age", "income", "visits"):
        expected = ks_2samp(train[name], frame[name])
        assert r.metrics[f"ks_exact.{name}"] == pytest.approx(expected.statistic)
        assert r.details["drift_exact"][name]["p_value"] == pytest.approx(expected.pvalue)
    assert r.details["drift_exact"]["age"]["drifted"] is True
    assert "plan" not in r.details["drift_exact"]
