"""Policies: YAML and Python forms, and the errors bad ones get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loop_helpers import gate_spec

from loopml.errors import InvalidArgument
from loopml.loop import Policy
from loopml.loop.policy import resolve_entry
from loopml.models import Gate
from loopml.models import gate_checks as checks

YAML = """
model: churn
deployment: churn
triggers:
  - {alert: churn-live, rule: accuracy}
  - {schedule: "0 3 * * *"}
  - {dataset: churn-daily}
train: {entry: "loop_helpers:train", params: {quality: good}, data_param: data}
gate:
  data: datasets:/clf-eval@latest
  target: y
  checks: [{metric: {name: accuracy, min: 0.6}}]
rollout:
  strategy: shadow
  predictions: 200
  criteria: {min_agreement: 0.9, accuracy: {metric: f1, min_labeled: 50}}
cooldown: 10m
"""


def _base(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": "churn",
        "deployment": "churn",
        "triggers": [{"alert": "churn-live"}],
        "train": "loop_helpers:train",
        "gate": gate_spec(),
    }
    spec.update(changes)
    return spec


def test_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(YAML)
    policy = Policy.parse(path)
    assert policy.name == "churn" and policy.cooldown == 600
    assert [t.describe() for t in policy.triggers] == [
        "alert churn-live/accuracy",
        "schedule 0 3 * * *",
        "dataset churn-daily",
    ]
    assert policy.rollout.share == 1.0 and policy.rollout.criteria.accuracy is not None
    assert isinstance(policy.gate, Gate)
    assert resolve_entry(policy.train.entry).__name__ == "train"


def test_python_form_with_objects() -> None:
    def my_train(**params: Any) -> str:
        return "models:/churn/2"

    gate = Gate([checks.metric("accuracy", min=0.5)], data="datasets:/x/1", target="y")
    policy = Policy(
        model="churn",
        deployment="churn",
        triggers=[{"schedule": "*/5 * * * *"}],
        train=my_train,
        gate=gate,
    )
    assert policy.gate is gate and policy.rollout.strategy == "canary"
    assert policy.rollout.share == 0.1
    assert policy.train.describe().endswith("my_train")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"triggers": []}, "triggers"),
        ({"triggers": [{"alert": "m", "schedule": "* * * * *"}]}, "a trigger is one of"),
        ({"triggers": [{"schedule": "every day"}]}, "not a cron expression"),
        ({"triggers": [{"rule": "accuracy"}]}, "a trigger is one of"),
        ({"train": "no_colon"}, "'module:function'"),
        (
            {"gate": {"data": "datasets:/x/1", "target": "y", "checks": [{"bogus": {}}]}},
            "unknown check",
        ),
        ({"gate": "strict"}, "gate must be a mapping"),
        ({"rollout": {"strategy": "canary", "criteria": {"min_agreement": 0.9}}}, "shadow"),
        ({"rollout": {"strategy": "blue-green"}}, "rollout.strategy"),
        ({"rollout": {"duration": "2h", "max_duration": "1h"}}, "max_duration"),
        ({"rollout": {"servers": ["localhost:8080"]}}, "not an http(s) URL"),
        ({"rollout": {"route": "primary"}}, "primary"),
        ({"train": {"entry": "m:f", "data_param": "data"}}, "add a dataset trigger"),
        ({"retrain": True}, "retrain: Extra inputs are not permitted"),
        ({"cooldown": "soon"}, "cooldown"),
    ],
)
def test_bad_policies(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid policy") as info:
        Policy.parse(_base(**changes))
    assert message in str(info.value)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="does not exist"):
        Policy.parse(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(InvalidArgument, match=r"bad\.yaml is not valid YAML"):
        Policy.parse(bad)
    bad.write_text("- a list\n")
    with pytest.raises(InvalidArgument, match="must be a mapping"):
        Policy.parse(bad)
    bad.write_text("model: churn\n")
    with pytest.raises(InvalidArgument, match=r"in .*bad.yaml: deployment: Field required"):
        Policy.parse(bad)


def test_entry_errors() -> None:
    with pytest.raises(InvalidArgument, match="cannot import 'no_such_module_x'"):
        resolve_entry("no_such_module_x:train")
    with pytest.raises(
        InvalidArgument,
        match=r"has no 'nope' \(the training entry 'loop_helpers:nope'\); is it a typo",
    ):
        resolve_entry("loop_helpers:nope")
    with pytest.raises(InvalidArgument, match="not callable"):
        resolve_entry("loop_helpers:MODEL")
