"""Promotion through the release gate, forced promotion, rollback and model comparison, on a
real registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.data import log_dataset
from loopml.errors import GateFailed, InvalidArgument, ModelNotFound, NotFound
from loopml.models import gate_checks as checks
from loopml.models.gate import Gate, GateResult
from loopml.models.package import log_model
from loopml.models.promotion import compare_models, promote, rollback

FEATURES = [f"f{i}" for i in range(4)]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    X, y = make_classification(n_samples=800, n_features=4, n_redundant=0, random_state=5)
    data = pd.DataFrame(X, columns=FEATURES)
    data["y"] = y
    return data


@pytest.fixture
def client(tmp_path: Path, frame: pd.DataFrame) -> Iterator[loopml.Client]:
    c = loopml.Client(str(tmp_path / ".loopml"))
    X, y = frame[FEATURES], frame["y"]
    good = LogisticRegression(max_iter=500).fit(X, y)
    bad = DummyClassifier(strategy="most_frequent").fit(X, y)
    for model in (good, bad):  # versions 1 (good) and 2 (constant)
        log_model(model, "model", input_example=X.head(3), registered_model_name="churn", client=c)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def gate(client: loopml.Client, frame: pd.DataFrame) -> Gate:
    version = log_dataset(frame, "churn-eval", client=client)
    return Gate(
        [
            checks.metric("f1", min=0.6),
            checks.no_regression("f1", tolerance=0.02),
            checks.sanity(),
        ],
        data=version.uri,
        target="y",
    )


def test_promotion_moves_the_alias_when_the_gate_passes(client: loopml.Client, gate: Gate) -> None:
    done = promote("churn", 1, "champion", gate=gate, client=client)
    assert done.version == 1 and done.previous is None and not done.forced
    assert done.gate is not None and done.gate.passed
    assert done.event.action == "alias.set" and done.event.reason == "gate passed"
    assert client.get_model_version_by_alias("churn", "champion").version == 1
    stored = client.get_model_version("churn", 1).gate_result
    assert stored is not None and GateResult.from_dict(stored).passed
    assert "churn@champion -> version 1" in str(done)
    # The candidate's evaluation was logged to a run linked to the version.
    assert done.gate.evaluation_run_id is not None
    run = client.get_run(done.gate.evaluation_run_id)
    assert run.metrics["eval/f1"] > 0.6
    assert run.tags["loopml.model_name"] == "churn" and run.tags["loopml.model_version"] == "1"


def test_a_failing_gate_leaves_the_alias_where_it_was(client: loopml.Client, gate: Gate) -> None:
    promote("churn", 1, "champion", gate=gate, client=client)
    with pytest.raises(GateFailed, match="did not move") as info:
        promote("churn", 2, "champion", gate=gate, client=client)
    result = info.value.result
    assert isinstance(result, GateResult) and not result.passed
    assert result.champion == "models:/churn/1"
    assert {f.name for f in result.failures} >= {"metric f1 >= 0.6", "sanity"}
    assert client.get_model_version_by_alias("churn", "champion").version == 1
    stored = client.get_model_version("churn", 2).gate_result
    assert stored is not None and stored["passed"] is False  # the failure is on record


def test_forced_promotion_needs_a_reason_and_is_audited(client: loopml.Client, gate: Gate) -> None:
    promote("churn", 1, "champion", gate=gate, client=client)
    with pytest.raises(InvalidArgument, match="needs a reason"):
        promote("churn", 2, "champion", gate=gate, force=True, client=client)
    done = promote(
        "churn", 2, "champion", gate=gate, force=True, reason="incident 42", client=client
    )
    assert done.forced and done.previous == 1
    assert "FORCED" in str(done)
    assert client.get_model_version_by_alias("churn", "champion").version == 2
    history = client.alias_history("churn", "champion")
    assert history[0].reason == "forced past a failed gate: incident 42"
    assert history[0].actor


def test_rollback_returns_to_the_previous_version(client: loopml.Client) -> None:
    promote("churn", 1, "champion", client=client)  # no gate: moves the alias as told
    promote("churn", 2, "champion", reason="try the new one", client=client)
    event = rollback("churn", "champion", reason="worse in production", client=client)
    assert event.details["version"] == 1
    assert client.get_model_version_by_alias("churn", "champion").version == 1
    assert [e.reason for e in client.alias_history("churn", "champion")][:1] == [
        "worse in production"
    ]


def test_promotion_of_a_missing_version_or_model(client: loopml.Client) -> None:
    with pytest.raises(ModelNotFound):
        promote("churn", 9, "champion", client=client)
    with pytest.raises(ModelNotFound):
        promote("nope", 1, "champion", client=client)


def test_compare_models_on_the_same_rows(client: loopml.Client, frame: pd.DataFrame) -> None:
    found = compare_models(
        "models:/churn/1",
        "models:/churn/2",
        frame,
        target="y",
        bootstrap=True,
        n_resamples=200,
        client=client,
    )
    assert found.a.model == "models:/churn/1" and found.b.model == "models:/churn/2"
    assert found.deltas["accuracy"] == pytest.approx(
        found.b.metrics["accuracy"] - found.a.metrics["accuracy"]
    )
    assert found.deltas["accuracy"] < 0
    assert found.intervals["accuracy"].high < 0
    as_dict = found.to_dict()
    assert set(as_dict) == {"a", "b", "deltas", "intervals"}


def test_promotion_in_another_project_with_a_slice_only_column(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    c = loopml.Client(str(tmp_path / "other"))
    try:
        X, y = frame[FEATURES], frame["y"]
        run = c.create_run("team-b")
        good = LogisticRegression(max_iter=500).fit(X, y)
        log_model(
            good,
            "model",
            input_example=X.head(3),
            registered_model_name="churn",
            run_id=run.run_id,
            client=c,
        )
        c.end_run(run.run_id)
        data = frame.assign(region=["north", "south"] * (len(frame) // 2))
        gate = Gate([checks.slice_metric("region", "accuracy", min=0.6)], data=data, target="y")
        done = promote("churn", 1, gate=gate, project="team-b", client=c)
        assert done.gate is not None and done.gate.passed, str(done.gate)
        assert c.get_model_version_by_alias("churn", "champion", project="team-b").version == 1
        with pytest.raises(NotFound):  # the default project has no such model
            c.get_model_version_by_alias("churn", "champion")
        found = loopml.evaluate(
            "models:/churn/1",
            data,
            target="y",
            slices=["region"],
            run=False,
            plots=False,
            latency=False,
            project="team-b",
            client=c,
        )
        assert set(found.slices["region"]) == {"north", "south"}
        assert any("region" in note for note in found.notes)
    finally:
        c.close()


def test_the_fluent_project_reaches_the_registry(tmp_path: Path, frame: pd.DataFrame) -> None:
    import loopml.models.promotion  # importing the module must not shadow the function
    from loopml.client import context

    assert callable(loopml.models.promote) and callable(loopml.promote)
    loopml.set_tracking_uri(str(tmp_path / "fluent"))
    try:
        loopml.set_project("shop")
        X, y = frame[FEATURES], frame["y"]
        model = LogisticRegression(max_iter=500).fit(X, y)
        loopml.log_model(model, "model", input_example=X.head(3), registered_model_name="churn")
        # A gate whose checks see only the model's columns, although the data has one more.
        data = frame.assign(shop=["a", "b"] * (len(frame) // 2))
        gate = Gate(
            [checks.invariance(lambda X: X, name="same"), checks.sanity()], data=data, target="y"
        )
        done = loopml.promote("churn", 1, gate=gate)
        assert done.gate is not None and done.gate.passed, str(done.gate)
        predictor = loopml.load_model("models:/churn@champion")
        assert list(predictor.predict(X.head(2))) == list(model.predict(X.head(2)))
        assert loopml.rollback is loopml.models.rollback
    finally:
        context.set_project(None)
        client = context.peek_client()
        loopml.set_tracking_uri(None)
        if client is not None:
            client.close()
