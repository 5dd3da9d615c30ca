"""Pipelines run in this process: outputs, tracked runs, the cache and what it says, results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pipe_helpers as ph
import pytest

import loopml
from loopml.pipelines import PipelineResult, step
from loopml.pipelines.runner import TAG


@pytest.fixture
def client(tmp_path: Path) -> loopml.Client:
    return loopml.Client(str(tmp_path / "store"))


def test_run_records_parent_and_step_runs(client: loopml.Client) -> None:
    result = ph.training.run(client=client, project="p", C=0.5, quiet=True)
    assert isinstance(result, PipelineResult) and result.ok
    assert list(result.steps) == ["make_frame", "split", "fit", "score"]
    out = result.output
    assert out["rows"] == 100 and 0.8 < out["accuracy"] <= 1.0

    parent = client.get_run(result.run_id)
    assert parent.status.value == "finished"
    assert parent.tags[TAG.KIND] == "pipeline" and parent.tags[TAG.REF] == "pipe_helpers:training"
    assert parent.params == {"n": "400", "C": "0.5"}
    graph = json.loads(client.read_text(result.run_id, "pipeline.json"))
    assert [n["id"] for n in graph["nodes"]] == ["make_frame", "split", "fit", "score"]
    assert graph["nodes"][2]["upstream"] == ["split"]
    line = (
        Path(ph.__file__).read_text().splitlines().index("    train, test = split(make_frame(n))")
    )
    assert graph["nodes"][1]["called_at"] == f"{ph.__file__}:{line + 1}"

    children = {
        r.tags[TAG.STEP]: r for r in client.iter_runs("p", f"parent_run_id = '{result.run_id}'")
    }
    assert set(children) == set(result.steps)
    fit = children["fit"]
    assert fit.params == {"C": "0.5"}
    assert fit.metrics["train_rows"] == 300  # logged inside the step, to the step's run
    assert children["score"].metrics["accuracy"] == pytest.approx(out["accuracy"])
    assert fit.tags[TAG.UPSTREAM] == children["split"].run_id
    # the model is stored in the loopml model format, the frames as Parquet
    refs = {r.name: r for r in result.steps["split"].outputs}
    assert refs["train"].kind == "parquet" and refs["train"].path == "outputs/train.parquet"
    assert result.steps["fit"].outputs[0].kind == "model"
    model = result.load("fit")
    assert model.predict(pd.DataFrame({"x": [3.0], "y": [3.0]}))[0] == 1


def test_second_run_is_cached_and_changes_rerun_what_they_touch(client: loopml.Client) -> None:
    first = ph.training.run(client=client, quiet=True)
    again = ph.training.run(client=client, quiet=True)
    assert {s.status for s in again.steps.values()} == {"cached"}
    assert again.steps["fit"].cached_from == first.steps["fit"].run_id
    assert again.output == first.output
    cached_run = client.get_run(again.steps["fit"].run_id)
    assert cached_run.tags[TAG.CACHED_FROM] == first.steps["fit"].run_id

    changed = ph.training.run(client=client, C=0.01, quiet=True)
    status = {k: (s.status, s.reason) for k, s in changed.steps.items()}
    assert status["make_frame"][0] == status["split"][0] == "cached"
    assert status["fit"] == ("finished", "parameters changed")
    assert status["score"] == ("finished", "inputs changed")

    off = ph.training.run(client=client, cache=False, quiet=True)
    assert {s.status for s in off.steps.values()} == {"finished"}
    assert {s.reason for s in off.steps.values()} == {"cache off"}


def test_code_change_invalidates_the_cache(client: loopml.Client) -> None:
    def make(body: int):  # two versions of one step: the source differs
        if body == 1:

            def value() -> int:
                return 1
        else:

            def value() -> int:
                return 2

        s = step(value)

        @loopml.pipeline(name="code")
        def p():
            return s()

        return p

    assert make(1).run(client=client, quiet=True).output == 1
    second = make(2).run(client=client, quiet=True)
    assert second.output == 2
    assert second.steps["value"].reason == "code changed"


def test_outputs_of_every_kind_round_trip(client: loopml.Client) -> None:
    import polars as pl
    import pyarrow as pa

    class Thing:
        def __init__(self, v: int) -> None:
            self.v = v

    @step(outputs=6)
    def many():
        return (
            np.arange(6).reshape(2, 3),
            pa.table({"a": [1, 2]}),
            pl.DataFrame({"b": [1.5]}),
            {"k": [1, None, "x"]},
            Thing(7),
            None,
        )

    @loopml.pipeline(name="kinds")
    def p():
        return many()

    result = p.run(client=client, quiet=True)
    kinds = [r.kind for r in result.steps["many"].outputs]
    assert kinds == ["numpy", "parquet", "parquet", "json", "pickle", "json"]
    arr, table, frame, doc, thing, nothing = result.output
    assert arr.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert table.column("a").to_pylist() == [1, 2]
    assert isinstance(frame, pl.DataFrame) and frame["b"].to_list() == [1.5]
    assert doc == {"k": [1, None, "x"]} and thing.v == 7 and nothing is None


def test_step_called_outside_a_pipeline_is_the_function() -> None:
    assert ph.add(2, 3) == 5
    assert ph.add.name == "add" and ph.add.__doc__ is None
    frame = ph.make_frame(10)
    assert len(frame) == 10


def test_same_step_twice_gets_numbered_nodes(client: loopml.Client) -> None:
    result = ph.fragile.graph(marker="/nonexistent")
    assert list(result.nodes) == ["one", "fails_until_file", "add", "one_2", "add_2"]
    assert result.nodes["add_2"].upstream == ("one_2", "one")


def test_calling_the_pipeline_returns_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    loopml.set_tracking_uri(str(tmp_path / "fluent"))
    try:
        out = ph.training(n=200)
        assert out["rows"] == 50
    finally:
        loopml.set_tracking_uri(None)
