"""The whole cycle against a real server: an alert fires, the loop trains, gates, starts a
canary, the test sends live traffic (and labels), and the loop promotes or rolls back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from loop_helpers import (
    MODEL,
    build_world,
    fire_alert,
    policy_dict,
    send_traffic,
    serving,
    wait_for_route,
)

import loopml
from loopml.loop import LoopRunner, Policy, loop_status


@pytest.fixture
def world(tmp_path: Path) -> tuple[loopml.Client, Path]:
    root = tmp_path / "store"
    return build_world(root), root


def _actions(client: loopml.Client) -> list[str]:
    events = client.search_audit_events(object_type="loop", object_name="clf-loop")
    return [e.action for e in reversed(events) if e.action != "loop.lease"]


def test_alert_to_promotion(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    accuracy = {"metric": "accuracy", "min_labeled": 10, "max_drop": 0.1}
    policy = Policy.parse(
        policy_dict(root, criteria={"max_error_rate": 0.05, "accuracy": accuracy})
    )
    runner = LoopRunner([policy], client=client)
    with serving(client) as url:
        assert runner.run_once()["clf-loop"].phase == "idle"  # nothing fired yet
        fire_alert(client)
        state = runner.run_once()["clf-loop"]
        assert state.phase == "canary", state.reason
        assert state.version == 2 and state.champion == 1
        dep = client.get_deployment(MODEL)
        assert [(r.name, r.model_uri, r.weight) for r in dep.canaries] == [
            ("challenger", "models:/clf/2", 0.5)
        ]
        assert client.get_model_version_by_alias(MODEL, "challenger").version == 2
        wait_for_route(url, "challenger")
        routes = send_traffic(url, client, 120)
        assert routes.get("challenger", 0) > 20 and routes.get("primary", 0) > 20
        time.sleep(max(0.0, 1.0 - (time.time() * 1000 - state.started_at) / 1000))
        state = runner.run_once()["clf-loop"]
        assert state.phase == "promoted", state.reason
        assert "every criterion passed" in state.reason and "accuracy" in state.reason
    assert client.get_model_version_by_alias(MODEL, "champion").version == 2
    dep = client.get_deployment(MODEL)
    assert [r.name for r in dep.routes] == ["primary"]
    assert dep.primary.model_uri == "models:/clf@champion"
    assert _actions(client) == [
        "loop.created",
        "loop.triggered",
        "loop.training",
        "loop.trained",
        "loop.canary",
        "loop.promoted",
    ]
    (status,) = loop_status(client=client)
    assert status.state.phase == "promoted" and status.champion == 2
    assert status.decisions[0]["action"] == "loop.promoted"
    # the same alert does not start another cycle
    assert runner.run_once()["clf-loop"].phase == "promoted"


def test_worse_canary_rolled_back(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    accuracy = {"metric": "accuracy", "min_labeled": 10, "max_drop": 0.02}
    policy = policy_dict(root, "worse", criteria={"accuracy": accuracy})
    runner = LoopRunner([policy], client=client)
    with serving(client) as url:
        runner.run_once()
        fire_alert(client)
        assert runner.run_once()["clf-loop"].phase == "canary"
        wait_for_route(url, "challenger")
        send_traffic(url, client, 120, seed=7)
        time.sleep(1.0)
        state = runner.run_once()["clf-loop"]
    assert state.phase == "rolled_back", state.reason
    assert "accuracy" in state.reason and "clf@champion stays at version 1" in state.reason
    assert client.get_model_version_by_alias(MODEL, "champion").version == 1
    assert [r.name for r in client.get_deployment(MODEL).routes] == ["primary"]


def test_failing_canary_rolled_back_on_error_rate(world: tuple[loopml.Client, Path]) -> None:
    client, root = world
    runner = LoopRunner([policy_dict(root, "extra")], client=client)
    with serving(client) as url:
        runner.run_once()
        fire_alert(client)
        assert runner.run_once()["clf-loop"].phase == "canary"
        wait_for_route(url, "challenger")
        routes = send_traffic(url, client, 80, labels=False)
        assert set(routes) == {"primary"}  # every canary failure fell back to the primary
        state = runner.run_once()["clf-loop"]
    assert state.phase == "rolled_back", state.reason
    assert "error rate" in state.reason
    assert client.get_model_version_by_alias(MODEL, "champion").version == 1


def test_shadow_restart_and_cli(world: tuple[loopml.Client, Path], tmp_path: Path) -> None:
    """A shadow rollout whose loop restarts half-way; the CLI runs and shows it."""
    import json

    import yaml
    from typer.testing import CliRunner

    from loopml.cli.app import app

    client, root = world
    spec = policy_dict(root, strategy="shadow", predictions=20, criteria={"min_agreement": 0.8})
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(spec))
    cli = CliRunner()
    store = ["--store", client.tracking_uri]
    result = cli.invoke(app, [*store, "loop", "validate", str(path)])
    assert result.exit_code == 0 and "policy clf-loop is valid" in result.output
    assert cli.invoke(app, [*store, "loop", "run", str(path), "--once"]).exit_code == 0
    fire_alert(client)
    result = cli.invoke(app, [*store, "loop", "run", str(path), "--once", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["clf-loop"]["phase"] == "shadow"
    with serving(client) as url:
        wait_for_route(url, "challenger")
        routes = send_traffic(url, client, 60, labels=False)
        assert set(routes) == {"primary"}  # a shadow never answers
        restarted = LoopRunner([spec], client=client, lease_seconds=0.01)  # the old one died
        for _ in range(30):  # passes, until the log has the shadow's answers
            state = restarted.run_once()["clf-loop"]
            if state.phase != "shadow":
                break
            time.sleep(0.3)
    assert state.phase == "promoted", state.reason
    assert "agree with the primary" in state.reason
    assert client.get_model_version_by_alias(MODEL, "champion").version == 2
    result = cli.invoke(app, [*store, "loop", "status", "--json"])
    (status,) = json.loads(result.output)
    assert status["phase"] == "promoted" and status["champion"] == 2
    assert [d["action"] for d in status["decisions"]][:2] == ["loop.promoted", "loop.shadow"]
    result = cli.invoke(app, [*store, "loop", "status"])
    assert "loop.promoted" in result.output and "champion" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: clf\n")
    result = cli.invoke(app, [*store, "loop", "validate", str(bad)])
    assert result.exit_code == 1 and "deployment: Field required" in result.output
