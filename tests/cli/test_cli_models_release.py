"""``loopml models promote|rollback|evaluate|compare``, through Typer's CliRunner against a real
store in ``tmp_path``: real scikit-learn models, real gates on a logged evaluation set."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import loopml
from loopml.cli.app import app
from loopml.data.datasets import log_dataset
from loopml.models.package import log_model, save_model

PASSING_GATE = """\
data: datasets:/churn-eval/1
target: churned
checks:
  - metric: {name: accuracy, min: 0.8}
  - sanity: {}
"""
# Version 2 predicts one class: accuracy about 0.5, and worse than the champion.
FAILING_GATE = """\
data: datasets:/churn-eval/1
target: churned
checks:
  - metric: {name: accuracy, min: 0.8}
  - no_regression: {metric: accuracy, tolerance: 0.01}
  - size: {max_mb: 0.0000001, required: false}
"""


@dataclass
class Store:
    """churn v1 (a logistic regression, good) and v2 (a constant classifier, bad), the
    evaluation set datasets:/churn-eval/1 (also as eval.csv), a model folder, two gates."""

    folder: Path
    args: list[str]  # the global option: ["--store", "<db>"]

    def champion(self) -> int | None:
        shown = as_json(invoke([*self.args, "models", "show", "churn", "--json"]))
        aliases: dict[str, int] = shown["aliases"]
        return aliases.get("champion")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test in an empty folder with no loopml configuration and plain output."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "LOOPML_HOME",
        "LOOPML_TRACKING_URI",
        "LOOPML_ARTIFACT_URI",
        "LOOPML_PROJECT",
        "COLUMNS",
        "FORCE_COLOR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_CAPTURE_PACKAGES", "false")
    monkeypatch.setenv("LOOPML_USER", "ada")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("release-template")
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    data["churned"] = (data.a + data.b > 0).astype(int)
    data.to_csv(folder / "eval.csv", index=False)
    features, y = data[["a", "b"]], data["churned"]
    good = LogisticRegression().fit(features, y)
    constant = DummyClassifier(strategy="most_frequent").fit(features, y)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LOOPML_CAPTURE_PACKAGES", "false")
        m.setenv("LOOPML_PROJECT", "default")
        client = loopml.Client(f"sqlite:///{folder / 'store' / 'x.db'}")
        try:
            log_dataset(data, "churn-eval", target="churned", client=client)
            for model in (good, constant):
                log_model(
                    model,
                    input_example=features.head(5),
                    registered_model_name="churn",
                    client=client,
                )
        finally:
            client.close()
    save_model(good, folder / "folder-model", input_example=features.head(5))
    (folder / "pass.yaml").write_text(PASSING_GATE)
    (folder / "fail.yaml").write_text(FAILING_GATE)
    return folder


@pytest.fixture
def store(_template: Path, tmp_path: Path) -> Store:
    for item in _template.iterdir():
        copy = shutil.copytree if item.is_dir() else shutil.copy
        copy(item, tmp_path / item.name)
    return Store(tmp_path / "store", ["--store", str(tmp_path / "store" / "x.db")])


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args)


def assert_error(result: Result, expected: str, code: int = 1, stdout: bool = False) -> None:
    """Exit status ``code`` and exactly one line on stderr, ``error: ...`` with ``expected``
    (and nothing on stdout unless ``stdout``)."""
    assert result.exit_code == code, result.output
    if not stdout:
        assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


def as_json(result: Result, code: int = 0) -> Any:
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


# --- promote -------------------------------------------------------------------------------------


def test_promote_through_a_passing_gate(store: Store) -> None:
    done = invoke([*store.args, "models", "promote", "churn", "1", "--gate", "pass.yaml"])
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert "pass     metric accuracy >= 0.8" in out
    assert "pass     sanity" in out
    assert "gate passed for models:/churn/1 (no champion to compare with) on 300 rows" in out
    assert out.splitlines()[-1] == "Promoted: churn@champion -> version 1 (new alias)"
    assert store.champion() == 1
    shown = as_json(invoke([*store.args, "models", "show", "models:/churn/1", "--json"]))
    assert shown["gate_result"]["passed"] is True
    assert [c["result"] for c in shown["gate_result"]["checks"]] == ["pass", "pass"]
    detail = invoke([*store.args, "models", "show", "models:/churn@champion"]).stdout
    assert "Gate" in detail and "pass     metric accuracy >= 0.8" in detail
    history = as_json(
        invoke([*store.args, "models", "alias", "churn", "--history", "champion", "--json"])
    )
    assert history["events"][0]["reason"] == "gate passed"


def test_a_failing_gate_does_not_move_the_alias(store: Store) -> None:
    invoke([*store.args, "models", "promote", "churn", "1"])
    refused = invoke([*store.args, "models", "promote", "churn", "2", "--gate", "fail.yaml"])
    assert_error(
        refused, "the gate failed for models:/churn/2, so churn@champion did not move", stdout=True
    )
    out = refused.stdout
    assert "FAIL     metric accuracy >= 0.8" in out
    assert "FAIL     no regression in accuracy" in out
    assert "warn     size" in out  # an optional check that failed
    assert "gate FAILED for models:/churn/2 against models:/churn/1" in out
    assert store.champion() == 1
    shown = as_json(invoke([*store.args, "models", "show", "churn", "--json"]))
    assert shown["versions"][1]["gate_result"]["passed"] is False  # stored either way
    table = invoke([*store.args, "models", "versions", "churn"]).stdout
    assert "FAILED" in table and "passed" not in table
    as_data = as_json(
        invoke([*store.args, "models", "promote", "churn", "2", "--gate", "fail.yaml", "--json"]),
        code=1,
    )
    assert as_data["promoted"] is False and as_data["gate"]["passed"] is False
    assert [c["result"] for c in as_data["gate"]["checks"]] == ["FAIL", "FAIL", "warn"]
    assert store.champion() == 1


def test_forced_promotion_needs_a_reason_and_is_audited(store: Store) -> None:
    promote = [*store.args, "models", "promote", "churn"]
    invoke([*promote, "1"])
    assert_error(
        invoke([*promote, "2", "--gate", "fail.yaml", "--force"]), "--force needs --reason", 2
    )
    assert store.champion() == 1
    forced = invoke([*promote, "2", "--gate", "fail.yaml", "--force", "--reason", "hotfix #12"])
    assert forced.exit_code == 0, forced.output
    assert "Promoted: churn@champion -> version 2 (was version 1)" in forced.stdout
    assert "FORCED past a failed gate" in forced.stderr
    assert store.champion() == 2
    [last, *_] = as_json(
        invoke([*store.args, "models", "alias", "churn", "--history", "champion", "--json"])
    )["events"]
    assert last["reason"] == "forced past a failed gate: hotfix #12" and last["actor"] == "ada"
    data = as_json(
        invoke(
            [*promote, "2", "-a", "canary", "--gate", "fail.yaml", "--force", "-r", "x", "--json"]
        )
    )
    assert data["promoted"] is True and data["forced"] is True and data["alias"] == "canary"
    assert data["previous"] is None and data["event"]["action"] == "alias.set"


def test_promote_without_a_gate_and_to_another_alias(store: Store) -> None:
    done = invoke([*store.args, "models", "promote", "churn", "2", "--alias", "challenger"])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        "Promoted: churn@challenger -> version 2 (new alias)",
        "  no gate was run (give --gate GATE.yaml to test the version first)",
    ]


def test_promote_errors(store: Store) -> None:
    promote = [*store.args, "models", "promote", "churn"]
    assert_error(
        invoke([*promote, "1", "--gate", "missing.yaml"]), "--gate missing.yaml: no such file", 2
    )
    Path("broken.yaml").write_text("checks: [\n")
    assert_error(invoke([*promote, "1", "--gate", "broken.yaml"]), "broken.yaml is not valid YAML")
    Path("typo.yaml").write_text(PASSING_GATE.replace("metric:", "metrik:"))
    assert_error(invoke([*promote, "1", "--gate", "typo.yaml"]), "unknown check 'metrik'")
    Path("nodata.yaml").write_text("target: churned\nchecks:\n  - sanity: {}\n")
    assert_error(invoke([*promote, "1", "--gate", "nodata.yaml"]), "needs 'data'")
    assert_error(invoke([*promote, "9", "--gate", "pass.yaml"]), "version 9 of model 'churn'")
    assert_error(
        invoke([*store.args, "models", "promote", "nope", "1"]), "model 'nope' does not exist"
    )
    Path("gone.yaml").write_text(PASSING_GATE.replace("churn-eval/1", "churn-eval/7"))
    assert_error(invoke([*promote, "1", "--gate", "gone.yaml"]), "churn-eval")
    assert invoke([*promote, "0"]).exit_code == 2
    assert store.champion() is None


# --- rollback ------------------------------------------------------------------------------------


def test_rollback(store: Store) -> None:
    promote = [*store.args, "models", "promote", "churn"]
    rollback = [*store.args, "models", "rollback", "churn"]
    invoke([*promote, "1"])
    assert_error(invoke(rollback), "there is nothing to roll back to")
    invoke([*promote, "2"])
    back = invoke([*rollback, "--reason", "latency spike"])
    assert back.exit_code == 0, back.output
    assert back.stdout.strip() == "Rolled back: churn@champion -> version 1 (was version 2)"
    assert store.champion() == 1
    events = as_json(
        invoke([*store.args, "models", "alias", "churn", "--history", "champion", "--json"])
    )["events"]
    assert events[0]["reason"] == "latency spike"
    data = as_json(invoke([*rollback, "--to", "2", "--json"]))
    assert data["event"]["details"]["version"] == 2 and data["event"]["details"]["previous"] == 1
    assert store.champion() == 2
    assert_error(invoke([*rollback, "--alias", "canary"]), "alias 'canary' of model 'churn'")
    assert_error(invoke([*rollback, "--to", "9"]), "version 9 of model 'churn'")


# --- evaluate ------------------------------------------------------------------------------------


def test_evaluate_a_registered_version_on_a_logged_dataset(store: Store) -> None:
    done = invoke(
        [
            *store.args,
            "models",
            "evaluate",
            "models:/churn/1",
            "--data",
            "datasets:/churn-eval/1",
            "--target",
            "churned",
            "--no-latency",
        ]
    )
    assert done.exit_code == 0, done.output
    out = done.stdout
    assert out.startswith(
        "models:/churn/1 on datasets:/churn-eval/1: binary classification, 300 rows"
    )
    assert "accuracy ↑" in out and "log_loss ↓" in out and "Confusion matrix" in out
    assert "Recorded as run" in out and "roc_curve" in out
    run_id = out.split("Recorded as run ")[1][:8]
    run = as_json(invoke([*store.args, "runs", "show", run_id, "--json"]))
    assert run["name"] == "evaluation"
    assert run["metrics"]["eval/accuracy"] > 0.9


def test_evaluate_a_folder_on_a_file_with_slices_as_json(store: Store) -> None:
    data = as_json(
        invoke(
            [
                *store.args,
                "models",
                "evaluate",
                "folder-model",
                "--data",
                "eval.csv",
                "--target",
                "churned",
                "--slice",
                "a",
                "--task",
                "classification",
                "--no-run",
                "--no-latency",
                "--json",
            ]
        )
    )
    assert data["task"] == "classification" and data["num_rows"] == 300
    assert data["metrics"]["accuracy"] > 0.9
    assert data["run_id"] is None and data["plots"] == {}
    assert data["model"] == "folder-model" and data["dataset"] is None
    assert len(data["slices"]["a"]) == 4
    runs = as_json(invoke([*store.args, "runs", "list", "--json"]))["runs"]
    assert all(r["name"] != "evaluation" for r in runs)  # --no-run recorded nothing


def test_evaluate_errors(store: Store) -> None:
    evaluate = [*store.args, "models", "evaluate"]
    data = ["--data", "eval.csv", "--target", "churned", "--no-run", "--no-latency"]
    assert_error(
        invoke([*evaluate, "churn", *data]), "'churn' is not a model URI or a model folder"
    )
    assert_error(invoke([*evaluate, "models:/churn/9", *data]), "version 9 of model 'churn'")
    assert_error(
        invoke([*evaluate, "models:/churn/1", *data[:1], "nope.csv", *data[2:]]),
        "nope.csv: no such file",
    )
    assert_error(
        invoke([*evaluate, "models:/churn/1", "--data", "datasets:/nope/1", *data[2:]]),
        "dataset 'nope' does not exist",
    )
    wrong_target = [*data[:3], "label", *data[4:]]
    assert_error(
        invoke([*evaluate, "models:/churn/1", *wrong_target]),
        "target column 'label' is not in the data",
    )
    assert_error(
        invoke([*evaluate, "models:/churn/1", *data, "--task", "ranking"]), "task must be"
    )
    assert invoke([*evaluate, "models:/churn/1"]).exit_code == 2  # --data and --target needed


# --- compare -------------------------------------------------------------------------------------


def test_compare_two_versions(store: Store) -> None:
    args = [*store.args, "models", "compare", "models:/churn/2", "models:/churn/1"]
    table = invoke([*args, "--data", "datasets:/churn-eval/1", "--target", "churned"])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[:3] == [
        "A: models:/churn/2",
        "B: models:/churn/1",
        "on 300 rows of datasets:/churn-eval/1 (classification)",
    ]
    assert lines[3].split() == ["metric", "A", "B", "B", "-", "A"]
    accuracy = next(line for line in lines if line.startswith("accuracy"))
    assert float(accuracy.split()[-1]) > 0.3  # B, the real model, is much better
    data = as_json(
        invoke(
            [
                *args,
                "--data",
                "eval.csv",
                "--target",
                "churned",
                "--bootstrap",
                "--resamples",
                "50",
                "--json",
            ]
        )
    )
    assert data["a"]["model"] == "models:/churn/2" and data["b"]["model"] == "models:/churn/1"
    assert data["deltas"]["accuracy"] > 0.3 and data["num_rows"] == 300
    interval = data["intervals"]["accuracy"]
    assert interval["low"] > 0 and interval["n_resamples"] == 50
    shown = invoke(
        [*args, "--data", "eval.csv", "--target", "churned", "--bootstrap", "--resamples", "50"]
    )
    assert "95% CI of B - A" in shown.stdout and "* the interval excludes 0" in shown.stdout


def test_compare_errors(store: Store) -> None:
    compare = [*store.args, "models", "compare", "models:/churn/1"]
    data = ["--data", "eval.csv", "--target", "churned"]
    assert_error(invoke([*compare, "nope-folder", *data]), "'nope-folder' is not a model URI")
    assert_error(invoke([*compare, "models:/churn@gone", *data]), "alias 'gone' of model 'churn'")
    assert_error(
        invoke([*compare, "folder-model", "--data", "x.csv", "--target", "churned"]),
        "no such file",
    )
    assert invoke([*compare, "folder-model", *data, "--resamples", "1"]).exit_code == 2


def test_a_folder_on_a_file_needs_no_store(store: Store, tmp_path: Path) -> None:
    data = ["--data", "eval.csv", "--target", "churned"]
    found = as_json(
        invoke(["models", "evaluate", "folder-model", *data, "--no-run", "--no-latency", "--json"])
    )
    assert found["metrics"]["accuracy"] > 0.9
    same = as_json(invoke(["models", "compare", "folder-model", "folder-model", *data, "--json"]))
    assert set(same["deltas"].values()) == {0.0}
    assert not (tmp_path / ".loopml").exists()
    assert_error(invoke(["models", "list"]), "no loopml home found")
