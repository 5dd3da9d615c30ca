"""``loopml reproduce``: a seeded pipeline reproduces; a changed step, a changed dataset or an
unseeded random step do not, and the report says which recorded input differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import loopml
from loopml.cli.app import app
from loopml.errors import InvalidArgument
from loopml.pipelines.reproduce import reproduce

FLOW = """
import numpy as np
import pandas as pd
import loopml
from sklearn.ensemble import RandomForestClassifier

@loopml.step
def data(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    df["y"] = (df.a * df.b > 0).astype(int)
    loopml.log_dataset(df, "points", role="train", profile=False)
    return df

@loopml.step
def fit(df: pd.DataFrame, trees: int):
    model = RandomForestClassifier(n_estimators=trees, random_state=np.random.randint(1_000_000))
    model.fit(df[["a", "b"]], df.y)
    loopml.log_metric("train_accuracy", model.score(df[["a", "b"]], df.y))
    return model

@loopml.pipeline
def forest(rows: int = 300, trees: int = 5):
    return fit(data(rows), trees)
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "forestflow.py"
    path.write_text(FLOW)
    monkeypatch.syspath_prepend(str(tmp_path))
    return path


def _run(client: loopml.Client, seed: int | None) -> str:
    from loopml.pipelines import load_pipeline

    return load_pipeline("forestflow:forest").run(client=client, seed=seed, quiet=True).run_id


def test_a_seeded_run_reproduces(tmp_path: Path, flow: Path) -> None:
    client = loopml.Client(str(tmp_path / "store"))
    run_id = _run(client, seed=7)
    rep = reproduce(run_id, client=client)
    assert rep.reproduced, rep.to_dict()
    fit = next(s for s in rep.steps if s.node == "fit")
    assert fit.outputs_match and fit.predictions_match in (True, None)
    assert not fit.metric_differences
    assert client.get_run(rep.rerun).tags["loopml.reproduces"] == run_id
    assert client.get_run(rep.rerun).tags["loopml.reproduced"] == "true"

    res = CliRunner().invoke(
        app, ["--store", str(tmp_path / "store"), "reproduce", run_id, "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["reproduced"] is True


def test_an_unseeded_random_step_does_not_and_a_code_change_is_named(
    tmp_path: Path, flow: Path
) -> None:
    client = loopml.Client(str(tmp_path / "store"))
    run_id = _run(client, seed=None)
    rep = reproduce(run_id, client=client)
    assert not rep.reproduced
    fit = next(s for s in rep.steps if s.node == "fit")
    assert fit.outputs_match is False and fit.predictions_match is False
    assert any("predictions differ" in n for n in fit.notes)
    data = next(s for s in rep.steps if s.node == "data")
    assert data.ok and data.notes == ["output 'output': identical content"]

    # change one step's code and the dataset it logs: both are named as differences
    flow.write_text(FLOW.replace("rng.normal(size=rows)})", "rng.normal(size=rows) + 1})"))
    import importlib
    import sys

    sys.modules.pop("forestflow", None)
    importlib.invalidate_caches()
    rep = reproduce(run_id, client=client)
    assert not rep.reproduced
    assert any("the code of step 'data' changed" in d for d in rep.differences)
    assert any(
        "read dataset points (train): version 1" in d and "version 2" in d for d in rep.differences
    )

    res = CliRunner().invoke(app, ["--store", str(tmp_path / "store"), "reproduce", run_id])
    assert res.exit_code == 1
    assert "did NOT reproduce" in res.output and "the code of step 'data' changed" in res.output


def test_only_pipeline_runs_reproduce(tmp_path: Path) -> None:
    client = loopml.Client(str(tmp_path / "store"))
    plain = client.create_run("p")
    with pytest.raises(InvalidArgument, match="not a pipeline run"):
        reproduce(plain.run_id, client=client)
