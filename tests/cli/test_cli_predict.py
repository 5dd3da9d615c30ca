"""``loopml predict``, through Typer's CliRunner against a real store in ``tmp_path`` holding a
registered scikit-learn model."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import loopml
from loopml.cli.app import app
from loopml.models.package import log_model, save_model


@dataclass
class Store:
    """A store with model churn (v1, alias champion), a dataset customers/1, an input file
    ``in.parquet`` and ``in.csv`` of the same rows, and a model folder ``model``."""

    folder: Path
    args: list[str]  # the global option: ["--store", "<db>"]
    frame: pd.DataFrame


def _frame(n: int = 250) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"id": np.arange(n), "a": rng.normal(size=n), "b": rng.normal(size=n)}
    ).assign(plan=lambda f: np.where(f.a > 0, "plus", "basic"))
    return frame


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test in an empty folder with no loopml configuration and plain output."""
    monkeypatch.chdir(tmp_path)
    for name in ("LOOPML_HOME", "LOOPML_TRACKING_URI", "LOOPML_ARTIFACT_URI", "LOOPML_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOOPML_CAPTURE_PACKAGES", "false")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("predict-cli")
    frame = _frame()
    features, y = frame[["a", "b"]], (frame.a + frame.b > 0).astype(int)
    model = LogisticRegression().fit(features, y)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOPML_CAPTURE_PACKAGES", "false")
        mp.setenv("LOOPML_PROJECT", "default")
        client = loopml.Client(f"sqlite:///{folder / 'store' / 'loopml.db'}")
        try:
            log_model(
                model,
                input_example=features.head(5),
                registered_model_name="churn",
                client=client,
            )
            client.set_model_alias("churn", "champion", 1)
            loopml.log_dataset(frame, "customers", client=client, profile=False)
        finally:
            client.close()
    save_model(model, folder / "model", input_example=features.head(5))
    frame.to_parquet(folder / "in.parquet", index=False)
    frame.to_csv(folder / "in.csv", index=False)
    return Store(folder, ["--store", str(folder / "store" / "loopml.db")], frame)


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


def test_help_lists_predict_and_its_examples() -> None:
    top = invoke(["--help"])
    assert "  predict " in top.stdout
    page = invoke(["predict", "--help"])
    assert page.exit_code == 0, page.output
    assert "Examples:" in page.stdout and "loopml predict models:/churn@champion" in page.stdout
    for option in ("--input", "--output", "--chunk-rows", "--proba", "--only-predictions",
                   "--keep", "--trusted", "--executor", "--ray-address", "--project"):  # fmt: skip
        assert option in page.stdout, option


def test_loopml_help_does_not_import_predict() -> None:
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom loopml.cli.app import app\n"
            "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('loopml.cli.predict', 'loopml.serving', 'pyarrow') "
            "if m in sys.modules])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip().splitlines()[-1] == "[]"


def test_predict_parquet_by_alias(store: Store, tmp_path: Path) -> None:
    result = invoke(
        [*store.args, "predict", "models:/churn@champion",
         "--input", str(store.folder / "in.parquet"), "--output", "out.parquet",
         "--chunk-rows", "100"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith("scored 250 rows in 3 chunks in ")
    assert "rows/s) with models:/churn/1 -> out.parquet" in line
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert list(written.columns) == [*store.frame.columns, "prediction"]
    pd.testing.assert_frame_equal(written[store.frame.columns], store.frame)


def test_predict_csv_with_probabilities_and_kept_columns(store: Store, tmp_path: Path) -> None:
    result = invoke(
        [*store.args, "predict", "models:/churn/1", "-i", str(store.folder / "in.csv"),
         "-o", "out.csv", "--proba", "--keep", "id"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written.columns) == ["id", "prediction", "proba_0", "proba_1"]
    np.testing.assert_allclose(written.proba_0 + written.proba_1, 1.0)


def test_only_predictions_from_a_dataset_as_json(store: Store, tmp_path: Path) -> None:
    result = invoke(
        [*store.args, "predict", "models:/churn@champion", "-i", "datasets:/customers/1",
         "-o", "only.parquet", "--only-predictions", "--json"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 250 and summary["chunks"] == 1
    assert summary["input"] == "datasets:/customers/1"
    assert summary["model"] == "models:/churn/1" and summary["output"] == "only.parquet"
    assert pd.read_parquet(tmp_path / "only.parquet").columns.tolist() == ["prediction"]


def test_a_model_folder_needs_no_store(store: Store, tmp_path: Path) -> None:
    result = invoke(
        ["predict", str(store.folder / "model"), "-i", str(store.folder / "in.parquet"),
         "-o", "out.tsv"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "out.tsv").read_text().splitlines()) == 251
    assert not (tmp_path / ".loopml").exists()


def test_a_signature_mismatch_is_one_line_and_leaves_no_file(store: Store, tmp_path: Path) -> None:
    bad = store.frame.copy()
    bad.loc[170, "a"] = np.nan
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    result = invoke(
        [*store.args, "predict", "models:/churn@champion", "-i", "bad.parquet",
         "-o", "out.parquet", "--chunk-rows", "50"]
    )  # fmt: skip
    assert_error(result, "chunk 4 (rows 150 to 199, counted from 0) of bad.parquet")
    assert "column 'a': expected float without nulls, got 1 null value" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.parquet"]


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["-i", "nothere.csv", "-o", "out.parquet"], "input 'nothere.csv' does not exist", 1),
        (["-i", "IN", "-o", "out.json"], "cannot tell the output format of 'out.json'", 1),
        (["-i", "IN", "-o", "o.csv", "--executor", "dask"], "--executor must be local or ray", 1),
        (["-i", "IN", "-o", "o.csv", "--keep", "nope"], "no column(s) 'nope' to keep", 1),
        (["-i", "IN", "-o", "o.csv", "--keep", "id", "--only-predictions"], "do not go", 2),
    ],
)
def test_errors(store: Store, args: list[str], expected: str, code: int) -> None:
    args = [str(store.folder / "in.parquet") if a == "IN" else a for a in args]
    result = invoke([*store.args, "predict", "models:/churn@champion", *args])
    assert_error(result, expected, code)


def test_an_unknown_model_or_project(store: Store) -> None:
    parquet = str(store.folder / "in.parquet")
    missing = invoke(
        [*store.args, "predict", "models:/nope@champion", "-i", parquet, "-o", "o.csv"]
    )
    assert_error(missing, "nope")
    elsewhere = invoke(
        [*store.args, "predict", "models:/churn@champion", "-i", parquet, "-o", "o.csv",
         "--project", "other"]
    )  # fmt: skip
    assert_error(elsewhere, "project 'other' does not exist")


def test_no_store_for_a_registry_uri_says_what_to_do(store: Store) -> None:
    result = invoke(
        [
            "predict",
            "models:/churn@champion",
            "-i",
            str(store.folder / "in.parquet"),
            "-o",
            "o.csv",
        ]
    )
    assert_error(result, "loopml init")
