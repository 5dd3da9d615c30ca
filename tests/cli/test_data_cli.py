"""``loopml data``, through Typer's CliRunner against a store in ``tmp_path``."""

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
from loopml.schema import infer_schema

N = 300


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    train = pd.DataFrame(
        {
            "id": np.arange(N),
            "age": rng.integers(18, 90, N),
            "income": rng.lognormal(10, 0.5, N),
            "plan": rng.choice(["basic", "pro", "team"], N, p=[0.6, 0.3, 0.1]),
            "churned": rng.integers(0, 2, N).astype(bool),
        }
    )
    new = train.copy()
    new["id"] += N
    new["income"] = new["income"] * 3  # drifts, and breaks the range of train's schema
    return train, new


@dataclass
class Store:
    """A store holding churn/1 (train.csv, used by run RUN as train) and churn/2 (new.csv)."""

    folder: Path
    args: list[str]  # the global option: ["--store", "<db>"]
    run_id: str


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
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The store and the data files, made once per session; tests get a copy."""
    folder = tmp_path_factory.mktemp("data-template")
    train, new = _frames()
    train.to_csv(folder / "train.csv", index=False)
    new.to_csv(folder / "new.csv", index=False)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LOOPML_CAPTURE_PACKAGES", "false")
        m.setenv("LOOPML_PROJECT", "default")
        client = loopml.Client(f"sqlite:///{folder / 'store' / 'x.db'}")
        try:
            v1 = log_dataset(train, "churn", target="churned", client=client)
            log_dataset(new, "churn", description="churn customers", client=client)
            run = client.create_run("default", name="fit", heartbeat=False)
            client.log_inputs(run.run_id, [(v1, "train")])
            client.end_run(run.run_id)
        finally:
            client.close()
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


def assert_error(result: Result, expected: str) -> None:
    """Exit status 1 and exactly one line on stderr: ``error: ...`` containing ``expected``."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output


def as_json(result: Result, code: int = 0) -> Any:
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def no_home(folder: Path) -> None:
    """Nothing in ``folder`` looks like a loopml home (no store, no cache as a side effect)."""
    assert not (folder / ".loopml").exists()


# --- add ------------------------------------------------------------------------------------


def test_help_lists_the_data_commands() -> None:
    assert "data" in invoke(["--help"]).stdout
    sub = invoke(["data", "--help"]).stdout
    for word in ("add", "list", "show", "get", "validate", "profile", "diff", "check"):
        assert word in sub


@pytest.mark.slow  # creates a SQLite schema
def test_add_creates_the_store_then_reuses_the_version(tmp_path: Path) -> None:
    train, _ = _frames()
    train.to_csv("train.csv", index=False)
    first = invoke(["data", "add", "train.csv", "--name", "churn", "--target", "churned"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / ".loopml" / "loopml.db").is_file()
    lines = first.stdout.splitlines()
    assert lines[0] == "Logged datasets:/churn/1 (new version)"
    assert f"{N} rows x 5 columns" in lines[1]
    again = as_json(invoke(["data", "add", "train.csv", "--name", "churn", "--json"]))
    assert again["uri"] == "datasets:/churn/1"
    assert again["new"] is False
    assert again["num_rows"] == N and again["has_schema"] and again["has_profile"]
    assert "Reused datasets:/churn/1" in invoke(["data", "add", "train.csv", "-n", "churn"]).stdout


def test_add_options_and_lineage(store: Store) -> None:
    train, _ = _frames()
    train.head(50).to_json("part.data", orient="records", lines=True)
    args = [*store.args, "data", "add", "part.data", "-n", "part", "--format", "jsonl"]
    added = as_json(
        invoke(
            [
                *args,
                "--no-profile",
                "-d",
                "a part",
                "--run",
                store.run_id[:8],
                "--role",
                "test",
                "--json",
            ]
        )
    )
    assert added["uri"] == "datasets:/part/1" and added["new"] is True
    assert added["has_profile"] is False and added["role"] == "test"
    shown = as_json(invoke([*store.args, "data", "show", "datasets:/part/1", "--json"]))
    assert [(u["run_id"], u["role"]) for u in shown["used_by"]] == [(store.run_id, "test")]
    table = invoke([*store.args, "data", "show", "datasets:/part@latest"])
    assert table.exit_code == 0, table.output
    assert "Used by" in table.stdout and "test" in table.stdout and "fit" in table.stdout


def test_add_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    assert_error(invoke(["data", "add", "nope.csv", "--name", "x"]), "nope.csv: no such file")
    pd.DataFrame({"a": [1, 2]}).to_csv("a.csv", index=False)
    assert_error(
        invoke(["data", "add", "a.csv", "--name", "x", "--role", "train"]),
        "--run and --role go together",
    )
    Path("bad.yaml").write_text("format: 1\ncolumns:\n  - name: a\n    type: integr\n")
    assert_error(invoke(["data", "add", "a.csv", "--name", "x", "--schema", "bad.yaml"]), "line 4")
    no_home(tmp_path)
    infer_schema(pd.DataFrame({"a": [5, 6]})).save("strict.yaml")  # a in [5, 6]
    result = invoke(["data", "add", "a.csv", "--name", "x", "--schema", "strict.yaml"])
    assert_error(result, "breaks its schema")
    assert as_json(invoke(["data", "list", "--json"]))["datasets"] == []


# --- list, show, get ---------------------------------------------------------------------------


def test_list(store: Store) -> None:
    table = invoke([*store.args, "data", "list"])
    assert table.exit_code == 0, table.output
    header, _, row = table.stdout.splitlines()[:3]
    assert header.split() == [
        "name",
        "latest",
        "versions",
        "rows",
        "columns",
        "updated",
        "description",
    ]
    assert row.split()[:5] == ["churn", "2", "2", f"{N}", "5"]
    data = as_json(invoke([*store.args, "data", "list", "--json"]))
    assert data["project"] == "default"
    [churn] = data["datasets"]
    assert churn["num_versions"] == 2 and churn["latest"]["uri"] == "datasets:/churn/2"
    empty = invoke([*store.args, "data", "list", "-p", "nope"])
    assert_error(empty, "project 'nope' does not exist")


def test_show_a_dataset_and_a_version(store: Store) -> None:
    versions = invoke([*store.args, "data", "show", "churn"])
    assert versions.exit_code == 0, versions.output
    assert "Dataset churn: churn customers" in versions.stdout
    assert "new.csv" not in versions.stdout  # logged from frames: the source says so
    data = as_json(invoke([*store.args, "data", "show", "datasets:/churn", "--json"]))
    assert [v["version"] for v in data["versions"]] == [2, 1]
    one = as_json(invoke([*store.args, "data", "show", "datasets:/churn/1", "--json"]))
    assert one["schema"]["target"] == "churned"
    assert one["used_by"][0]["run_name"] == "fit"
    page = invoke([*store.args, "data", "show", "datasets:/churn/1"]).stdout
    for word in ("digest", "Schema (5 columns", "churned", "target", "Used by", "train"):
        assert word in page


def test_show_errors(store: Store) -> None:
    assert_error(invoke([*store.args, "data", "show", "nope"]), "dataset 'nope' does not exist")
    assert_error(
        invoke([*store.args, "data", "show", "datasets:/churn/9"]), "version 9 of dataset 'churn'"
    )
    assert_error(invoke([*store.args, "data", "show", "datasets:/churn@best"]), "only @latest")


def test_get_head_and_files(store: Store, tmp_path: Path) -> None:
    train, _ = _frames()
    head = invoke([*store.args, "data", "get", "datasets:/churn/1", "--head", "3"])
    assert head.exit_code == 0, head.output
    assert head.stdout.splitlines()[0].split() == list(train.columns)
    assert f"3 of {N} rows of datasets:/churn/1" in head.stdout
    rows = as_json(invoke([*store.args, "data", "get", "churn", "--head", "2", "--json"]))
    assert rows["uri"] == "datasets:/churn/2" and len(rows["rows"]) == 2
    assert rows["rows"][0]["plan"] == train["plan"][0]
    for name in ("out.csv", "out.parquet", "out.jsonl", "out.tsv"):
        done = invoke([*store.args, "data", "get", "datasets:/churn/1", "-o", name])
        assert done.stdout.strip() == f"Wrote {N:,} rows of datasets:/churn/1 to {name}"
    pd.testing.assert_frame_equal(pd.read_parquet("out.parquet"), train)
    pd.testing.assert_frame_equal(pd.read_csv("out.csv"), train)
    pd.testing.assert_frame_equal(pd.read_csv("out.tsv", sep="\t"), train)
    pd.testing.assert_frame_equal(pd.read_json("out.jsonl", lines=True), train)
    invoke([*store.args, "data", "get", "datasets:/churn/1", "-o", "few.parquet", "--head", "7"])
    assert len(pd.read_parquet("few.parquet")) == 7
    assert_error(invoke([*store.args, "data", "get", "churn", "-o", "x.txt"]), "'.txt'")
    assert not Path("x.txt").exists() and not Path(".x.txt.part").exists()
    no_home(tmp_path)


# --- validate ----------------------------------------------------------------------------------


def test_validate_a_version_against_its_schema(store: Store, tmp_path: Path) -> None:
    ok = invoke([*store.args, "data", "validate", "datasets:/churn/1"])
    assert ok.exit_code == 0, ok.output
    assert (
        ok.stdout.strip()
        == f"datasets:/churn/1: validation passed: {N} rows, 0 errors, 0 warnings"
    )
    no_home(tmp_path)


def test_validate_a_file_fails_with_a_table_and_exit_1(store: Store) -> None:
    assert invoke(["data", "validate", "train.csv", "--infer", "train.yaml"]).exit_code == 0
    assert "name: income" in Path("train.yaml").read_text()
    bad = invoke(["data", "validate", "new.csv", "--schema", "train.yaml", "--html", "v.html"])
    assert bad.exit_code == 1, bad.output
    assert "ERROR" in bad.stdout and "income" in bad.stdout and "range" in bad.stdout
    assert "validation failed" in bad.stdout.splitlines()[-1]
    assert "<!DOCTYPE html>" in Path("v.html").read_text()
    data = as_json(invoke(["data", "validate", "new.csv", "--schema", "train.yaml", "--json"]), 1)
    assert data["ok"] is False and data["data"] == "new.csv"
    rules = {(v["column"], v["rule"]) for v in data["violations"]}
    assert ("income", "range") in rules and ("id", "range") not in rules  # ids have no range


def test_validate_strict_fails_on_warnings(store: Store) -> None:
    train, _ = _frames()
    schema = infer_schema(train.head(10), unique_key=None)
    schema = schema.update_column("age", severity={"range": "warning"}).without_column("income")
    schema = schema.without_column("id").replace(allow_extra_columns=True)
    schema = schema.update_column("plan", categories=None, type="text")
    schema.save("warn.yaml")
    result = invoke(["data", "validate", "train.csv", "--schema", "warn.yaml"])
    assert result.exit_code == 0, result.output
    assert "WARN" in result.stdout and "1 warning" in result.stdout
    assert (
        invoke(["data", "validate", "train.csv", "--schema", "warn.yaml", "--strict"]).exit_code
        == 1
    )


def test_validate_errors(store: Store, tmp_path: Path) -> None:
    assert_error(invoke(["data", "validate", "train.csv"]), "give the contract with --schema")
    assert_error(invoke(["data", "validate", "missing.csv", "--schema", "x.yaml"]), "x.yaml")
    Path("bad.yaml").write_text("columns: [")
    assert_error(invoke(["data", "validate", "train.csv", "--schema", "bad.yaml"]), "bad.yaml")
    assert_error(invoke(["data", "validate", "missing.csv", "--infer", "o.yaml"]), "no such file")
    assert_error(invoke([*store.args, "data", "validate", "datasets:/nope/1"]), "'nope'")
    no_home(tmp_path)


# --- profile, diff, check ----------------------------------------------------------------------


def test_profile_table_json_and_html(store: Store, tmp_path: Path) -> None:
    result = invoke([*store.args, "data", "profile", "datasets:/churn/1", "--html", "p.html"])
    assert result.exit_code == 0, result.output
    assert "histogram" in result.stdout and "top categories" in result.stdout
    income = next(line for line in result.stdout.splitlines() if line.startswith("income"))
    assert any(block in income for block in "▁▂▃▄▅▆▇█")
    assert "Wrote the report to p.html" in result.stderr
    assert Path("p.html").read_text().count('class="chart hist"') == 3  # id, age, income
    data = as_json(invoke(["data", "profile", "train.csv", "--target", "churned", "--json"]))
    assert data["num_rows"] == N and data["target"] == "churned"
    cols = {c["name"]: c for c in data["columns"]}
    assert sum(cols["income"]["histogram"]["counts"]) == N
    assert [c for c, _ in cols["plan"]["categories"]] == ["basic", "pro", "team"]
    no_home(tmp_path)


def test_diff_versions_and_files(store: Store) -> None:
    result = invoke([*store.args, "data", "diff", "datasets:/churn/1", "datasets:/churn/2"])
    assert result.exit_code == 0, result.output
    assert "Schema changes" in result.stdout and "Drift" in result.stdout
    income = next(line for line in result.stdout.splitlines() if line.startswith("income"))
    assert "yes" in income
    data = as_json(invoke(["data", "diff", "train.csv", "new.csv", "--json", "--html", "d.html"]))
    assert data["rows"] == {"reference": N, "current": N}
    drifted = {c["column"] for c in data["drift"]["columns"] if c["drifted"]}
    assert "income" in drifted and "plan" not in drifted
    assert any(c["column"] == "income" for c in data["schema"]["changes"])
    assert "drift score" in Path("d.html").read_text()


def test_check_passes_and_fails(store: Store) -> None:
    ok = invoke([*store.args, "data", "check", "datasets:/churn/1"])
    assert ok.exit_code == 0, ok.output
    assert "class_imbalance" in ok.stdout  # the stored target is used
    assert "passed" in ok.stdout.splitlines()[-1]
    leaky = invoke(["data", "check", "train.csv", "--reference", "train.csv", "--html", "c.html"])
    assert leaky.exit_code == 1, leaky.output
    assert "ERROR" in leaky.stdout and "train_test_leakage" in leaky.stdout
    data = as_json(invoke(["data", "check", "train.csv", "--reference", "train.csv", "--json"]), 1)
    assert data["ok"] is False
    assert data["results"][-1]["name"] == "train_test_leakage"
    assert "train_test_leakage" in Path("c.html").read_text()
    assert_error(invoke(["data", "check", "train.csv", "--target", "nope"]), "'nope'")


# --- no store ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["data", "list"],
        ["data", "show", "churn"],
        ["data", "show", "datasets:/churn/1"],
        ["data", "get", "datasets:/churn/1"],
        ["data", "validate", "datasets:/churn/1"],
        ["data", "profile", "datasets:/churn/1"],
        ["data", "diff", "datasets:/churn/1", "datasets:/churn/2"],
        ["data", "check", "datasets:/churn/1"],
    ],
)
def test_read_only_commands_never_create_a_home(tmp_path: Path, args: list[str]) -> None:
    assert_error(invoke(args), f"no loopml home found in {Path.cwd()} or above")
    assert list(tmp_path.iterdir()) == []


def test_files_need_no_store(tmp_path: Path) -> None:
    _frames()[0].to_parquet("train.parquet")
    assert invoke(["data", "profile", "train.parquet"]).exit_code == 0
    assert invoke(["data", "check", "train.parquet"]).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.parquet"]
