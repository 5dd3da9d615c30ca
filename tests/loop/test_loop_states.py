"""The state machine without live traffic: rejection by the gate, failed training, triggers,
two loops on one policy, a takeover after the lease ran out, and the judge's rules."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from loop_helpers import MODEL, build_world, fire_alert, policy_dict

import loopml
from loopml.loop import LoopRunner, Policy, loop_status
from loopml.loop.live import Evidence, RouteStats, judge
from loopml.loop.policy import Rollout
from loopml.loop.state import load_state
from loopml.loop.triggers import check_triggers


@pytest.fixture(scope="module")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loop-world")
    build_world(root)
    return root


@pytest.fixture
def world(_template: Path, tmp_path: Path) -> tuple[loopml.Client, Path]:
    import shutil

    root = tmp_path / "store"
    shutil.copytree(_template, root)
    return loopml.Client(str(root)), root


def test_gate_rejects(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    runner = LoopRunner([policy_dict(root, "constant")], client=client)
    runner.run_once()
    fire_alert(client)
    state = runner.run_once()["clf-loop"]
    assert state.phase == "rejected"
    assert "the gate failed for models:/clf/2 against version 1: metric accuracy" in state.reason
    assert client.get_model_version(MODEL, 2).gate_result["passed"] is False
    assert [r.name for r in client.get_deployment(MODEL).routes] == ["primary"]
    assert client.get_model_version_by_alias(MODEL, "champion").version == 1
    (event,) = client.search_audit_events(object_type="loop", action="loop.rejected")
    assert event.details["gate"]["passed"] is False and event.reason == state.reason


def test_training_failure_and_retry(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    spec = policy_dict(root, "broken")
    spec["train"]["max_attempts"] = 2
    runner = LoopRunner([spec], client=client)
    runner.run_once()
    fire_alert(client)
    state = runner.run_once()["clf-loop"]
    assert state.phase == "training" and "trying again" in state.reason
    state = runner.run_once()["clf-loop"]
    assert state.phase == "failed"
    assert state.reason == "training raised RuntimeError: the training data is not there"


def test_training_must_return_a_version(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    spec = policy_dict(root)
    spec["train"] = lambda **_: 42
    runner = LoopRunner([spec], client=client)
    runner.run_once()
    fire_alert(client)
    state = runner.run_once()["clf-loop"]
    assert state.phase == "failed" and "returned int, not a model version" in state.reason


def test_dataset_and_schedule_triggers(world: tuple[loopml.Client, Path]) -> None:
    from loop_helpers import make_data

    from loopml.data import log_dataset

    client, root = world
    spec = policy_dict(root)
    spec["triggers"] = [{"dataset": "clf-eval"}, {"schedule": "*/5 * * * *"}]
    policy = Policy.parse(spec)
    runner = LoopRunner([policy], client=client)
    state = runner.run_once()["clf-loop"]
    assert state.phase == "idle"  # the existing version 1 does not count
    marks = dict(state.watermarks)
    assert marks["dataset clf-eval"] == 1
    log_dataset(make_data(50, seed=9, extra=True), "clf-eval", target="y", client=client)
    fired = check_triggers(client, policy, marks, state.created_at, state.created_at)
    assert fired is not None and fired.details == {"dataset": "datasets:/clf-eval/2"}
    # the cron: due at the next 5-minute mark after the watermark; once, however late
    t0 = 1_800_000_000_000  # a multiple of 5 minutes
    marks = {"dataset clf-eval": 2, "schedule */5 * * * *": t0 + 1}
    assert check_triggers(client, policy, marks, t0, t0 + 299_000) is None
    fired = check_triggers(client, policy, marks, t0, t0 + 3_600_000)
    assert fired is not None and fired.kind == "schedule" and fired.mark == t0 + 3_600_000


def test_two_loops_one_policy(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    a = LoopRunner([policy_dict(root)], client=client, holder="a")
    b = LoopRunner([policy_dict(root)], client=client, holder="b")
    a.run_once()
    fire_alert(client)
    before = load_state(client, "clf-loop")
    # b decided from the same state but a recorded its transition first: b must back off
    from dataclasses import replace

    from loopml.errors import Conflict
    from loopml.loop.state import commit

    training = replace(before, phase="training")
    commit(client, training, "loop.triggered", "a wins", holder="a")
    with pytest.raises(Conflict, match=r"another loop \(a\)"):
        commit(client, training, "loop.triggered", "b loses", holder="b")
    assert load_state(client, "clf-loop").holder == "a"
    assert b.step(b.policies[0]).holder == "a"  # b sees a's active cycle and leaves it alone


def test_takeover_after_lease(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    spec = policy_dict(root)
    first = LoopRunner([spec], client=client, holder="first", lease_seconds=3600)
    first.run_once()
    fire_alert(client)
    started = first.run_once()["clf-loop"]
    assert started.phase == "canary"
    later = LoopRunner([spec], client=client, holder="second", lease_seconds=3600)
    assert later.run_once()["clf-loop"].holder == "first"  # the lease is first's
    restarted = LoopRunner([spec], client=client, holder="second", lease_seconds=0.2)
    time.sleep(0.3)
    state = restarted.run_once()["clf-loop"]
    assert state.phase == "canary" and state.holder == "second"
    assert state.started_at == started.started_at and state.version == started.version
    assert "waiting for evidence" in state.reason
    (status,) = loop_status("clf-loop", client=client)
    assert status.challenger == 2 and status.champion == 1


def _ev(**kw: object) -> Evidence:
    ev = Evidence(
        RouteStats("challenger", 200, 200, 5.0), RouteStats("primary", 200, 200, 4.0), 60.0
    )
    for k, v in kw.items():
        setattr(ev, k, v)
    return ev


def test_judge_rules() -> None:
    canary = Rollout.model_validate(
        {
            "duration": "30s",
            "min_predictions": 100,
            "max_duration": "10m",
            "criteria": {"max_error_rate": 0.02, "max_p99_latency_ratio": 1.5},
        }
    )
    assert judge(canary, _ev()).action == "promote"
    slow = _ev(challenger=RouteStats("challenger", 200, 200, 9.0))
    verdict = judge(canary, slow)
    assert verdict.action == "rollback" and "p99_latency_ratio" in verdict.reason
    noisy = _ev(error_rate=0.05, attempts=200, error_source="log", error_significant=False)
    assert judge(canary, noisy).action == "promote"  # a shortfall within chance is not failure
    failing = _ev(error_rate=0.05, attempts=200, error_source="metrics", error_significant=True)
    assert judge(canary, failing).action == "rollback"
    early = _ev(elapsed_s=5.0)
    assert judge(canary, early).action == "wait"
    starved = _ev(elapsed_s=700.0, challenger=RouteStats("challenger", 10, 10, 5.0))
    verdict = judge(canary, starved)
    assert verdict.action == "rollback" and "not enough evidence" in verdict.reason
    shadow = Rollout.model_validate(
        {
            "strategy": "shadow",
            "predictions": 100,
            "criteria": {"min_agreement": 0.9, "accuracy": {"min_labeled": 50, "max_drop": 0.01}},
        }
    )
    unlabeled = _ev(compared=150, agreement=0.95)
    assert judge(shadow, unlabeled).action == "wait"
    labeled = _ev(compared=150, agreement=0.95)
    labeled.challenger.labeled, labeled.challenger.metric = 60, 0.90
    labeled.primary.labeled, labeled.primary.metric = 60, 0.93
    verdict = judge(shadow, labeled)
    assert (
        verdict.action == "rollback"
        and "accuracy 0.9000 vs the primary's 0.9300" in verdict.reason
    )
    labeled.challenger.metric = 0.925
    assert judge(shadow, labeled).action == "promote"


def test_error_rate_from_the_traffic_windows(tmp_path: Path) -> None:
    """Without server URLs, the exact counts the serving processes stored win over the
    estimate from the log; windows of another version, route or before the start are left
    out."""
    from loopml.loop.live import _errors, _traffic

    client = loopml.Client(str(tmp_path / "store"))
    start = 1_800_000_030_000  # mid-minute
    minute = start - start % 60_000
    for window_start, route, version, requests, failed in (
        (minute, "challenger", "clf/2", 40, 2),  # the minute the rollout started in
        (minute + 60_000, "challenger", "clf/2", 60, 1),
        (minute + 60_000, "challenger", "clf/2", 50, 0),  # another process
        (minute - 60_000, "challenger", "clf/2", 99, 99),  # ended before the start
        (minute + 60_000, "challenger", "clf/1", 70, 70),  # the previous cycle's version
        (minute + 60_000, "primary", "clf/1", 500, 0),
    ):
        client.log_traffic_window(
            "clf",
            route=route,
            model_version=version,
            window_start=window_start,
            window_seconds=60,
            requests=requests,
            server_errors=failed,
        )
    counted = _traffic(client, "clf", "challenger", "clf/2", start, None)
    assert counted == (150, 3)
    assert _traffic(client, "clf", "challenger", "clf/3", start, None) is None
    canary = Rollout.model_validate({"criteria": {"max_error_rate": 0.01}})
    ev = _ev(error_rate=None)
    _errors(ev, canary, "clf/2", None, counted)
    assert (ev.error_source, ev.attempts, ev.error_significant) == ("traffic", 150, True)
    assert ev.error_rate == pytest.approx(0.02)
    verdict = judge(canary, ev)
    assert verdict.action == "rollback" and "traffic windows" in verdict.reason
