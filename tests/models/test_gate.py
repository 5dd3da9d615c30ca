"""The release gate: every built-in check passing and failing on real models, YAML gates, and
results that survive a round trip through JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.data import log_dataset
from loopml.errors import InvalidArgument, InvalidSchema
from loopml.models import gate_checks as checks
from loopml.models.gate import CheckResult, Gate, GateContext, GateResult
from loopml.schema import ColumnSchema, ColumnType, Schema

FEATURES = [f"f{i}" for i in range(5)]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    X, y = make_classification(
        n_samples=1500, n_features=5, n_informative=4, n_redundant=0, random_state=3
    )
    data = pd.DataFrame(X, columns=FEATURES)
    data["y"] = y
    return data


@pytest.fixture(scope="module")
def good(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(frame[FEATURES], frame["y"])


@pytest.fixture(scope="module")
def dummy(frame: pd.DataFrame) -> DummyClassifier:
    return DummyClassifier(strategy="most_frequent").fit(frame[FEATURES], frame["y"])


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.Client(str(tmp_path / ".loopml"))
    try:
        yield c
    finally:
        c.close()


def run(gate: Gate, candidate: Any, client: loopml.Client, champion: Any = None) -> GateResult:
    return gate.run(candidate, champion, client=client, log=False)


def by_name(result: GateResult) -> dict[str, CheckResult]:
    return {c.name: c for c in result.checks}


def test_a_good_model_passes_every_check(
    frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    version = log_dataset(frame, "eval", client=client)
    gate = Gate(
        [
            checks.metric("f1", min=0.7),
            checks.metric("log_loss", max=1.0),
            checks.no_regression("f1"),
            checks.slice_metric("f0", "accuracy", min=0.5),
            checks.latency(p99_ms=2000, batch_p99_ms=5000),
            checks.size(max_mb=50),
            checks.memory(max_mb=2000),
            checks.data_contract(),
            checks.sanity(),
        ],
        data=version.uri,
        target="y",
    )
    result = run(gate, good, client)
    assert result.passed, str(result)
    assert result.failures == () and result.warnings == ()
    assert result.data == version.uri and result.num_rows == len(frame)
    assert result.candidate_metrics["f1"] > 0.7 and result.champion_metrics == {}
    found = by_name(result)
    assert found["no regression in f1 (tolerance 0)"].message == "no champion to compare with"
    assert found["data contract"].message == "1,500 rows meet the contract"
    assert "every class predicted" in found["sanity"].message
    assert found["latency p99 <= 2000 ms, batch p99 <= 5000 ms"].details["latency_p99_ms"] > 0
    assert "PASSED" in str(result)


def test_a_constant_model_fails_metric_sanity_and_regression(
    frame: pd.DataFrame, good: LogisticRegression, dummy: DummyClassifier, client: loopml.Client
) -> None:
    gate = Gate(
        [
            checks.metric("f1", min=0.7),
            checks.no_regression("accuracy", tolerance=0.01),
            checks.sanity(),
            checks.metric("accuracy", min=0.99, required=False),
        ],
        data=frame,
        target="y",
    )
    result = run(gate, dummy, client, champion=good)
    assert not result.passed
    assert [f.name for f in result.failures] == [
        "metric f1 >= 0.7",
        "no regression in accuracy (tolerance 0.01)",
        "sanity",
    ]
    assert [w.name for w in result.warnings] == ["metric accuracy >= 0.99"]
    sanity = by_name(result)["sanity"]
    assert sanity.details["missing_classes"] == ["1"] or sanity.details["missing_classes"] == ["0"]
    regression = by_name(result)["no regression in accuracy (tolerance 0.01)"]
    assert regression.details["delta"] < -0.2
    assert result.champion_metrics["accuracy"] == pytest.approx(
        float(np.mean(good.predict(frame[FEATURES]) == frame["y"]))
    )
    assert "FAIL" in str(result)


def test_bootstrap_non_inferiority(
    frame: pd.DataFrame, good: LogisticRegression, dummy: DummyClassifier, client: loopml.Client
) -> None:
    gate = Gate(
        [checks.no_regression("roc_auc", bootstrap=True, n_resamples=300, seed=1)],
        data=frame,
        target="y",
    )
    same = run(gate, good, client, champion=good)
    assert same.passed  # identical predictions: every resampled difference is 0
    assert same.checks[0].details["low"] == same.checks[0].details["high"] == 0.0
    worse = run(gate, dummy, client, champion=good)
    assert not worse.passed and worse.checks[0].details["high"] < 0
    # A slightly weaker model passes only within a tolerance wide enough for its interval.
    weak = LogisticRegression(max_iter=500).fit(frame[["f0", "f1", "f2"]], frame["y"])

    class ThreeFeatures:
        classes_ = weak.classes_

        def predict(self, X: pd.DataFrame) -> Any:
            return weak.predict(X[["f0", "f1", "f2"]])

        def predict_proba(self, X: pd.DataFrame) -> Any:
            return weak.predict_proba(X[["f0", "f1", "f2"]])

    strict = run(gate, ThreeFeatures(), client, champion=good)
    loose_gate = Gate(
        [checks.no_regression("roc_auc", tolerance=0.5, bootstrap=True, n_resamples=300)],
        data=frame,
        target="y",
    )
    loose = run(loose_gate, ThreeFeatures(), client, champion=good)
    assert strict.checks[0].details["delta"] < 0
    assert not strict.passed and loose.passed


def test_slices_are_checked_with_small_ones_skipped(
    frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    data = frame.copy()
    data["region"] = np.where(np.arange(len(data)) < 10, "tiny", "big")
    gate = Gate(
        [
            checks.slice_metric("region", "accuracy", min=1.01, min_rows=50),
            checks.slice_metric("region", "accuracy", min=0.0, min_rows=50),
        ],
        data=data,
        target="y",
    )
    # region is not a feature of the model: the gate must not pass it to predict.
    features_only = _Columns(good, FEATURES)
    failing, passing = run(gate, features_only, client).checks
    assert not failing.passed and failing.details["failing"].keys() == {"big"}
    assert failing.details["skipped"] == ["tiny"]
    assert "1 slices under 50 rows not checked" in failing.message
    assert passing.passed and passing.details["checked"] == 1


class _Columns:
    """A model that uses only some columns of what it is given."""

    def __init__(self, model: Any, columns: list[str]) -> None:
        self.model, self.columns, self.classes_ = model, columns, model.classes_

    def predict(self, X: pd.DataFrame) -> Any:
        return self.model.predict(X[self.columns])

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self.model.predict_proba(X[self.columns])


def test_budgets_fail_when_exceeded(
    frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    gate = Gate(
        [
            checks.latency(p50_ms=1e-9),
            checks.size(max_mb=1e-9),
            checks.memory(max_mb=-1),
        ],
        data=frame,
        target="y",
    )
    result = run(gate, good, client)
    assert [c.passed for c in result.checks] == [False, False, False]
    assert "latency_p50_ms" in result.checks[0].message


def test_data_contract_finds_violations(
    frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    contract = Schema(
        (
            *(ColumnSchema(f, ColumnType.FLOAT, min=-0.5, max=0.5) for f in FEATURES),
            ColumnSchema("y", ColumnType.INTEGER),
        )
    )
    gate = Gate([checks.data_contract(contract)], data=frame, target="y")
    result = run(gate, good, client)
    assert not result.passed
    assert "out of range" in result.checks[0].message
    # Without a schema, a DataFrame and a model without a signature: nothing to check against.
    bare = run(Gate([checks.data_contract()], data=frame, target="y"), good, client)
    assert not bare.passed and "no data contract to check" in bare.checks[0].message


def test_invariance_directional_and_custom_checks(
    frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    strongest = int(np.argmax(np.abs(good.coef_[0])))
    column = FEATURES[strongest]
    up = "increase" if good.coef_[0][strongest] > 0 else "decrease"

    def shift(X: pd.DataFrame) -> pd.DataFrame:
        X[column] = X[column] + 1.0
        return X

    def shuffle(X: pd.DataFrame) -> pd.DataFrame:
        X[column] = X[column].sample(frac=1.0, random_state=0).to_numpy()
        return X

    def boom(context: GateContext) -> bool:
        raise RuntimeError("broken check")

    gate = Gate(
        [
            checks.invariance(lambda X: X, name="identity"),
            checks.invariance(shuffle, name="shuffled key feature"),
            checks.directional(shift, expect=up, on="proba", name="monotone"),
            checks.directional(
                shift,
                expect="decrease" if up == "increase" else "increase",
                on="proba",
                name="wrong way",
            ),
            checks.custom(lambda ctx: len(ctx.features) == len(frame), name="all rows"),
            checks.custom(boom, required=False),
        ],
        data=frame,
        target="y",
    )
    result = run(gate, good, client)
    found = by_name(result)
    assert found["identity"].passed
    assert not found["shuffled key feature"].passed
    assert found["monotone"].passed and not found["wrong way"].passed
    assert found["all rows"].passed
    assert not found["boom"].passed and "RuntimeError: broken check" in found["boom"].message
    assert not result.passed  # the shuffled and wrong-way checks are required


def test_gate_from_yaml(
    tmp_path: Path, frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    version = log_dataset(frame, "eval", client=client)
    path = tmp_path / "gate.yaml"
    path.write_text(
        f"data: {version.uri}\n"
        "target: y\n"
        "checks:\n"
        "  - metric: {name: f1, min: 0.7}\n"
        "  - no_regression: {metric: f1, tolerance: 0.01, bootstrap: true}\n"
        "  - latency: {p99_ms: 5000}\n"
        "  - sanity: {}\n"
        "  - data_contract:\n"
    )
    gate = Gate.load(path)
    assert gate.checks[0].name == "metric f1 >= 0.7"
    assert run(gate, good, client).passed
    # The data can be overridden (a DataFrame instead of the file's URI).
    assert Gate.load(path, data=frame).data is frame


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("target: y\nchecks: [{sanity: {}}]\n", "needs 'data'"),
        ("data: d\ntarget: y\nchecks: []\n", "non-empty list of 'checks'"),
        ("data: d\ntarget: y\nchecks: [{sanity: {}}, {speed: {}}]\n", "checks[1]: unknown check"),
        ("data: d\ntarget: y\nchecks: [{metric: {name: f1}}]\n", "needs min=, max= or both"),
        ("data: d\ntarget: y\nchecks: [{size: {max_gb: 1}}]\n", "unexpected keyword"),
        ("data: d\ntarget: y\nowner: me\nchecks: [{sanity: {}}]\n", "unknown gate key"),
        ("data: [unclosed\n", "is not valid YAML"),
    ],
)
def test_bad_gate_files_name_the_problem(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(InvalidSchema, match=str(path)) as info:
        Gate.load(path)
    assert error in str(info.value)


def test_bad_gates_and_checks_are_refused(frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgument, match="at least one check"):
        Gate([], data=frame, target="y")
    with pytest.raises(InvalidArgument, match="is not a gate check"):
        Gate([lambda ctx: True], data=frame, target="y")  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match="target"):
        Gate([checks.sanity()], data=frame, target="")
    with pytest.raises(InvalidArgument, match="tolerance"):
        checks.no_regression("f1", tolerance=-1)
    with pytest.raises(InvalidArgument, match="confidence"):
        checks.no_regression("f1", confidence=1.5)
    with pytest.raises(InvalidArgument, match="latency"):
        checks.latency()
    with pytest.raises(InvalidArgument, match="expect"):
        checks.directional(lambda X: X, expect="sideways")
    with pytest.raises(InvalidSchema, match="a mapping with data"):
        Gate.from_dict(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_unknown_metric_fails_the_check_with_the_known_names(
    frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    result = run(Gate([checks.metric("auc", min=0.5)], data=frame, target="y"), good, client)
    assert not result.passed
    assert "has no metric 'auc'" in result.checks[0].message
    assert "roc_auc" in result.checks[0].message


def test_result_round_trips_through_json(
    frame: pd.DataFrame, good: LogisticRegression, client: loopml.Client
) -> None:
    gate = Gate([checks.metric("accuracy", min=0.5), checks.sanity()], data=frame, target="y")
    result = run(gate, good, client, champion=good)
    again = GateResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again.created_at > 0 and again.champion is not None
