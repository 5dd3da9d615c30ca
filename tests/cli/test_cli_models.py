"""``loopml models list|show|versions|register|alias``, through Typer's CliRunner against a real
store in ``tmp_path`` holding real scikit-learn models."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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

COMMANDS = (
    "list",
    "show",
    "versions",
    "register",
    "alias",
    "promote",
    "rollback",
    "evaluate",
    "compare",
)


@dataclass
class Store:
    """A store with model churn (v1: a logistic regression trained by run ``fit`` on
    datasets:/churn-eval/1, v2: a constant classifier) and a model folder ``folder-model``."""

    folder: Path
    args: list[str]  # the global option: ["--store", "<db>"]
    fit_run: str


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    return frame.assign(churned=(frame.a + frame.b > 0).astype(int))


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
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The store and a model folder, made once per session; tests get a copy."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("models-template")
    data = _frame()
    features, y = data[["a", "b"]], data["churned"]
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LOOPML_CAPTURE_PACKAGES", "false")
        m.setenv("LOOPML_PROJECT", "default")
        m.setenv("LOOPML_USER", "ada")
        client = loopml.Client(f"sqlite:///{folder / 'store' / 'x.db'}")
        try:
            dv = log_dataset(data, "churn-eval", target="churned", client=client)
            run = client.create_run("default", name="fit", heartbeat=False)
            client.log_inputs(run.run_id, [(dv, "train")])
            good = LogisticRegression().fit(features, y)
            example = features.head(5)
            log_model(
                good,
                input_example=example,
                registered_model_name="churn",
                run_id=run.run_id,
                client=client,
            )
            client.end_run(run.run_id)
            constant = DummyClassifier(strategy="most_frequent").fit(features, y)
            log_model(
                constant, input_example=example, registered_model_name="churn", client=client
            )
        finally:
            client.close()
    save_model(good, folder / "folder-model", input_example=example)
    return folder, run.run_id


@pytest.fixture
def store(_template: tuple[Path, str], tmp_path: Path) -> Store:
    folder, run_id = _template
    for item in folder.iterdir():
        copy = shutil.copytree if item.is_dir() else shutil.copy
        copy(item, tmp_path / item.name)
    return Store(tmp_path / "store", ["--store", str(tmp_path / "store" / "x.db")], run_id)


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(app, args)


def assert_error(result: Result, expected: str, code: int = 1) -> None:
    """Exit status ``code`` and exactly one line on stderr, ``error: ...`` with ``expected``."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# --- help ----------------------------------------------------------------------------------------


def test_help_lists_the_models_commands_with_examples() -> None:
    assert "models" in invoke(["--help"]).stdout
    group = invoke(["models", "--help"])
    assert group.exit_code == 0
    for word in COMMANDS:
        assert f"  {word} " in group.stdout, word
    assert "models:/NAME@ALIAS" in group.stdout
    for command in COMMANDS:
        page = invoke(["models", command, "--help"])
        assert page.exit_code == 0, page.output
        assert "Examples:" in page.stdout and f"loopml models {command}" in page.stdout


def test_the_group_imports_nothing_heavy() -> None:
    heavy = ["pandas", "numpy", "sklearn", "rich", "loopml.client", "loopml.models", "sqlalchemy"]
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys, loopml.cli.models; print([m for m in {heavy!r} if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


# --- list, show, versions ------------------------------------------------------------------------


def test_list(store: Store) -> None:
    invoke([*store.args, "models", "alias", "churn", "champion", "1"])
    table = invoke([*store.args, "models", "list"])
    assert table.exit_code == 0, table.output
    header, _, row = table.stdout.splitlines()[:3]
    assert header.split()[:4] == ["name", "latest", "aliases", "updated"]
    assert row.split()[:3] == ["churn", "2", "champion→1"]
    listed = as_json(invoke([*store.args, "models", "list", "--json"]))
    assert listed["project"] == "default"
    [model] = listed["models"]
    assert model["name"] == "churn" and model["latest_version"] == 2
    assert model["aliases"] == {"champion": 1}
    assert as_json(invoke([*store.args, "models", "list", "-p", "default", "--json"])) == listed


def test_show_a_model_and_its_versions(store: Store) -> None:
    shown = invoke([*store.args, "models", "show", "churn"])
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert "Model churn" in out and "Versions" in out
    for word in ("status", "flavor", "run", "created by", "gate", "sklearn", "ready", "ada"):
        assert word in out, word
    assert store.fit_run[:8] in out
    data = as_json(invoke([*store.args, "models", "show", "models:/churn", "--json"]))
    assert [v["version"] for v in data["versions"]] == [1, 2]
    assert data["versions"][0]["run_id"] == store.fit_run
    versions = invoke([*store.args, "models", "versions", "churn"])
    assert versions.exit_code == 0, versions.output
    rows = versions.stdout.splitlines()
    assert rows[0].split()[:3] == ["version", "status", "aliases"]
    assert [r.split()[0] for r in rows[2:4]] == ["2", "1"]  # newest first
    listed = as_json(invoke([*store.args, "models", "versions", "churn", "--json"]))
    assert listed["name"] == "churn" and len(listed["versions"]) == 2


def test_show_one_version_in_detail(store: Store) -> None:
    by_option = invoke([*store.args, "models", "show", "churn", "--version", "1"])
    assert by_option.exit_code == 0, by_option.output
    by_uri = invoke([*store.args, "models", "show", "models:/churn/1"])
    assert by_uri.stdout == by_option.stdout
    out = by_uri.stdout
    assert "Model churn version 1" in out
    assert "Signature: 2 input columns" in out
    assert "outputs: int64[?]" in out
    assert "Lineage: trained by run" in out and "(fit, finished)" in out
    assert "datasets:/churn-eval/1" in out and "train" in out
    data = as_json(invoke([*store.args, "models", "show", "models:/churn/1", "--json"]))
    assert len(data["manifest_digest"]) == 64 and data["manifest_digest"] in out
    assert data["flavor"] == "sklearn" and data["status"] == "ready"
    columns = data["signature"]["inputs"]["schema"]["columns"]
    assert [c["name"] for c in columns] == ["a", "b"]
    assert data["lineage"]["run"]["name"] == "fit"
    assert data["lineage"]["inputs"] == [
        {
            "dataset": "datasets:/churn-eval/1",
            "digest": data["lineage"]["inputs"][0]["digest"],
            "role": "train",
        }
    ]
    assert "Gate: not run" in out
    latest = as_json(invoke([*store.args, "models", "show", "models:/churn/latest", "--json"]))
    assert latest["version"] == 2 and latest["lineage"]["inputs"] == []


def test_show_and_versions_errors(store: Store, tmp_path: Path) -> None:
    fix = "list models with `loopml models list`"
    assert_error(invoke([*store.args, "models", "show", "nope"]), "model 'nope' does not exist")
    assert_error(invoke([*store.args, "models", "show", "nope"]), fix)
    assert_error(
        invoke([*store.args, "models", "show", "churn", "--version", "9"]),
        "version 9 of model 'churn' does not exist",
    )
    assert_error(invoke([*store.args, "models", "show", "models:/churn/x"]), "names version 'x'")
    assert_error(
        invoke([*store.args, "models", "show", "models:/churn@gone"]),
        "alias 'gone' of model 'churn' does not exist",
    )
    assert_error(
        invoke([*store.args, "models", "show", "models:/churn/1", "--version", "2"]),
        "already names a version",
        code=2,
    )
    assert_error(
        invoke([*store.args, "models", "versions", "nope"]), "model 'nope' does not exist"
    )
    assert_error(
        invoke(["--store", str(tmp_path / "none.db"), "models", "list"]), "no loopml store"
    )
    assert not (tmp_path / "none.db").exists()


# --- register ------------------------------------------------------------------------------------


def test_register_a_model_folder(store: Store, tmp_path: Path) -> None:
    folder = str(tmp_path / "folder-model")
    done = invoke([*store.args, "models", "register", folder, "churn", "-d", "from a folder"])
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == "Registered models:/churn/3 (sklearn)"
    assert lines[1].startswith("  run ") and lines[1].endswith(" (register-churn)")
    assert lines[-1] == "Promote it with: loopml models promote churn 3 --gate gate.yaml"
    shown = as_json(invoke([*store.args, "models", "show", "models:/churn/3", "--json"]))
    assert shown["description"] == "from a folder"
    assert shown["source"] == f"runs:/{shown['run_id']}/model"
    assert shown["lineage"]["run"]["status"] == "finished"
    again = as_json(invoke([*store.args, "models", "register", folder, "other", "--json"]))
    assert again["uri"] == "models:/other/1"
    assert again["manifest_digest"] == shown["manifest_digest"]  # the same files


def test_register_a_logged_model(store: Store) -> None:
    source = f"runs:/{store.fit_run[:8]}/model"
    done = as_json(invoke([*store.args, "models", "register", source, "churn-copy", "--json"]))
    assert done["uri"] == "models:/churn-copy/1"
    assert done["source"] == f"runs:/{store.fit_run}/model"  # the full run id
    assert done["run_id"] == store.fit_run
    original = as_json(invoke([*store.args, "models", "show", "models:/churn/1", "--json"]))
    assert done["manifest_digest"] == original["manifest_digest"]


def test_register_errors(store: Store, tmp_path: Path) -> None:
    register = [*store.args, "models", "register"]
    assert_error(invoke([*register, "nope", "churn"]), "nope: no such model folder")
    assert_error(invoke([*register, "runs:/zz/model", "churn"]), "'zz' is not a run id")
    assert_error(
        invoke([*register, f"runs:/{store.fit_run}/elsewhere", "churn"]),
        "see the run's files with `loopml runs show",
    )
    assert_error(invoke([*register, "runs:/model", "churn"]), "write runs:/RUN_ID/PATH")
    assert_error(invoke([*register, "models:/churn/1", "x"]), "is already registered")
    # A folder whose files no longer match its manifest is refused before anything is stored.
    folder = tmp_path / "folder-model"
    (folder / "input_example.json").write_text("[]")
    assert_error(invoke([*register, str(folder), "churn"]), "input_example.json")
    shown = as_json(invoke([*store.args, "models", "show", "churn", "--json"]))
    assert shown["latest_version"] == 2


# --- alias ---------------------------------------------------------------------------------------


def test_alias_set_move_delete_and_history(store: Store) -> None:
    alias = [*store.args, "models", "alias", "churn"]
    first = invoke([*alias, "challenger", "1", "--reason", "A/B test"])
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == "churn@challenger -> version 1 (new alias)"
    moved = invoke([*alias, "challenger", "2"])
    assert moved.stdout.strip() == "churn@challenger -> version 2 (was version 1)"
    same = as_json(invoke([*alias, "challenger", "2", "--json"]))
    assert same["action"] == "alias.set" and same["actor"] == "ada"
    assert same["details"]["version"] == 2
    shown = as_json(invoke([*store.args, "models", "show", "models:/churn@challenger", "--json"]))
    assert shown["version"] == 2 and shown["aliases"] == ["challenger"]
    removed = invoke([*alias, "challenger", "--delete", "--reason", "test over"])
    assert removed.stdout.strip() == "Removed churn@challenger (was version 2)"
    history = invoke([*alias, "--history", "challenger"])
    assert history.exit_code == 0, history.output
    lines = history.stdout.splitlines()
    assert lines[1].split()[:3] == ["when", "who", "action"]
    rows = [line.split() for line in lines[3:]]
    assert [r[3:6] for r in rows] == [
        ["delete", "2", "->"],
        ["set", "2", "->"],
        ["set", "1", "->"],
        ["set", "-", "->"],
    ]
    assert "A/B test" in lines[-1] and "test over" in lines[3]
    events = as_json(invoke([*alias, "--history", "challenger", "--json"]))["events"]
    assert [e["action"] for e in events] == ["alias.delete", "alias.set", "alias.set", "alias.set"]
    assert events[-1]["reason"] == "A/B test" and events[-1]["actor"] == "ada"
    never = invoke([*alias, "--history", "canary"])
    assert never.exit_code == 0 and "has never been set" in never.stdout


def test_alias_errors(store: Store) -> None:
    alias = [*store.args, "models", "alias", "churn"]
    assert_error(invoke(alias), "give an alias", code=2)
    assert_error(invoke([*alias, "champion"]), "give the VERSION", code=2)
    assert_error(invoke([*alias, "champion", "1", "--delete"]), "--delete takes no VERSION", 2)
    assert_error(invoke([*alias, "champion", "--history", "champion"]), "--history", code=2)
    assert invoke([*alias, "champion", "0"]).exit_code == 2  # Click: VERSION is 1 or more
    assert_error(invoke([*alias, "champion", "9"]), "version 9 of model 'churn' does not exist")
    assert_error(invoke([*alias, "bad alias!", "1"]), "alias 'bad alias!' is not valid")
    assert_error(
        invoke([*alias, "champion", "--delete"]),
        "alias 'champion' of model 'churn' does not exist",
    )
    nope = [*store.args, "models", "alias", "nope"]
    assert_error(invoke([*nope, "champion", "1"]), "model 'nope' does not exist")
    assert_error(invoke([*nope, "--history", "champion"]), "model 'nope' does not exist")


def test_commands_work_in_the_project_given(store: Store, tmp_path: Path) -> None:
    in_exp = [*store.args, "models"]
    folder = str(tmp_path / "folder-model")
    done = as_json(invoke([*in_exp, "register", folder, "scorer", "-p", "exp", "--json"]))
    assert done["uri"] == "models:/scorer/1"
    assert [
        m["name"] for m in as_json(invoke([*in_exp, "list", "-p", "exp", "--json"]))["models"]
    ] == ["scorer"]
    assert_error(invoke([*in_exp, "show", "scorer"]), "model 'scorer' does not exist")
    assert invoke([*in_exp, "alias", "scorer", "champion", "1", "-p", "exp"]).exit_code == 0
    # models:/ URIs resolved while loading the model (deep in evaluate) use --project too.
    _frame().to_csv("eval.csv", index=False)
    args = ["--data", "eval.csv", "--target", "churned", "--no-run", "--no-latency", "--json"]
    found = as_json(invoke([*in_exp, "evaluate", "models:/scorer@champion", "-p", "exp", *args]))
    assert found["model"] == "models:/scorer@champion" and found["metrics"]["accuracy"] > 0.9
    assert_error(invoke([*in_exp, "list", "-p", "nowhere"]), "project 'nowhere' does not exist")
