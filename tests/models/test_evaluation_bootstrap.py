"""Bootstrap intervals of evaluation metrics: each vectorised statistic equals sklearn's metric on
the resampled rows, intervals are deterministic by seed, and paired deltas compare two models on
the same resamples."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification, make_regression
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression
from sklearn.preprocessing import label_binarize
from sklearn.tree import DecisionTreeClassifier

from loopml.errors import InvalidArgument
from loopml.models.evaluation import (
    BootstrapInterval,
    EvaluationResult,
    PairedDelta,
    Predictions,
    evaluate,
    greater_is_better,
)
from loopml.models.evaluation.bootstrap import (
    bootstrap_metrics,
    exact_metrics,
    metric_on_weights,
)

RNG = np.random.default_rng(11)
N = 240


def _binary(ties: bool) -> Predictions:
    y = RNG.integers(0, 2, N)
    score = np.clip(0.35 * y + 0.65 * RNG.random(N), 0, 1)
    if ties:  # few distinct scores: every threshold groups many rows
        score = np.round(score, 1)
    labels = np.array(["no", "yes"], dtype=object)
    pred = labels[(score > 0.5).astype(int)]
    proba = np.column_stack([1 - score, score])
    return Predictions.for_classification(
        labels[y], pred, proba=proba, model_classes=["no", "yes"]
    )


def _multiclass() -> Predictions:
    y = RNG.integers(0, 4, N)
    logits = RNG.normal(size=(N, 4)) + 1.5 * np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba = np.round(proba, 2)
    proba /= proba.sum(axis=1, keepdims=True)
    pred = np.where(RNG.random(N) < 0.1, 3, proba.argmax(axis=1))  # class 3 over-predicted
    return Predictions.for_classification(y, pred, proba=proba, model_classes=[0, 1, 2, 3])


def _regression() -> Predictions:
    y = np.round(RNG.normal(10, 4, N), 1)
    y[:5] = 0.0  # rows MAPE skips
    pred = y + RNG.normal(0, 2, N)
    return Predictions.for_regression(y, pred)


def _sklearn(p: Predictions, metric: str, rows: np.ndarray) -> float:
    """The metric of the resampled rows, straight from sklearn."""
    y, pred = p.y_true[rows], p.y_pred[rows]
    if p.task == "regression":
        if metric == "mape":
            keep = y != 0
            return float(skm.mean_absolute_percentage_error(y[keep], pred[keep]))
        fns: dict[str, Callable[..., Any]] = {
            "rmse": skm.root_mean_squared_error,
            "mae": skm.mean_absolute_error,
            "r2": skm.r2_score,
            "max_error": skm.max_error,
            "median_absolute_error": skm.median_absolute_error,
        }
        return float(fns[metric](y, pred))
    assert p.proba is not None
    proba = p.proba[rows]
    classes = list(p.classes)
    if metric == "accuracy":
        return float(skm.accuracy_score(y, pred))
    if p.is_binary:
        pos, col = p.positive_label, classes.index(p.positive_label)
        label_fns: dict[str, Callable[..., Any]] = {
            "precision": skm.precision_score,
            "recall": skm.recall_score,
            "f1": skm.f1_score,
        }
        if metric in label_fns:
            return float(label_fns[metric](y, pred, pos_label=pos, zero_division=0))
        if metric == "roc_auc":
            return float(skm.roc_auc_score(y == pos, proba[:, col]))
        if metric == "pr_auc":
            return float(skm.average_precision_score(y == pos, proba[:, col]))
        if metric == "brier_score":
            return float(skm.brier_score_loss(y == pos, proba[:, col]))
    if metric == "log_loss":
        return float(skm.log_loss(y, proba, labels=classes))
    name, _, average = metric.partition("_")
    if average in ("macro", "weighted"):
        fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
        return float(fn[name](y, pred, average=average, zero_division=0))
    if metric == "roc_auc":
        return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    assert metric == "pr_auc"
    return float(skm.average_precision_score(label_binarize(y, classes=classes), proba))


CASES = {
    "binary": lambda: _binary(ties=False),
    "binary, tied scores": lambda: _binary(ties=True),
    "multiclass": _multiclass,
    "regression": _regression,
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_resampled_statistic_equals_sklearns_metric(case: str) -> None:
    p = CASES[case]()
    draws = np.random.default_rng(5).integers(0, N, size=(6, N))
    weights = np.stack([np.bincount(d, minlength=N) for d in draws]).astype(float)
    names = bootstrap_metrics(p)
    assert len(names) >= 6
    for metric in names:
        got = metric_on_weights(p, metric, weights)
        want = [_sklearn(p, metric, np.sort(d)) for d in draws]
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), metric


@pytest.mark.parametrize("case", list(CASES))
def test_exact_metrics_equal_the_sklearn_metrics_of_all_rows(case: str) -> None:
    p = CASES[case]()
    every = np.arange(N)
    exact = exact_metrics(p)
    assert exact == pytest.approx({m: _sklearn(p, m, every) for m in bootstrap_metrics(p)})


@pytest.fixture(scope="module")
def pair() -> tuple[EvaluationResult, EvaluationResult, EvaluationResult]:
    """A forest, a shallow tree and the forest again, evaluated on the same rows."""
    X, y = make_classification(n_samples=1600, n_features=8, n_informative=5, random_state=2)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    train, test = frame.iloc[:1000], frame.iloc[1000:].assign(y=y[1000:])
    forest = RandomForestClassifier(n_estimators=30, random_state=0).fit(train, y[:1000])
    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(train, y[:1000])
    options: dict[str, Any] = {"target": "y", "run": False, "plots": False, "latency": False}
    return (
        evaluate(forest, test, **options),
        evaluate(stump, test, **options),
        evaluate(forest, test, **options),
    )


def test_bootstrap_ci_holds_the_estimate_and_depends_only_on_the_seed(
    pair: tuple[EvaluationResult, ...],
) -> None:
    forest = pair[0]
    for metric in ("accuracy", "roc_auc", "f1", "log_loss"):
        ci = forest.bootstrap_ci(metric, n=400, seed=3)
        assert isinstance(ci, BootstrapInterval)
        assert ci.estimate == pytest.approx(forest.metrics[metric], rel=1e-12)
        assert ci.low < ci.estimate < ci.high and ci.estimate in ci
        assert ci.valid_resamples == 400 and ci.std_error > 0
        assert forest.bootstrap_ci(metric, n=400, seed=3) == ci
        assert forest.bootstrap_ci(metric, n=400, seed=4) != ci
    narrow = forest.bootstrap_ci("accuracy", n=400, seed=3, alpha=0.5)
    wide = forest.bootstrap_ci("accuracy", n=400, seed=3, alpha=0.01)
    assert wide.low <= narrow.low <= narrow.high <= wide.high
    assert "95% bootstrap CI" in str(forest.bootstrap_ci("accuracy", n=50))
    assert forest.bootstrap_ci("accuracy", n=50).to_dict()["n_resamples"] == 50


def test_bootstrap_ci_of_a_regression() -> None:
    X, y = make_regression(n_samples=500, n_features=4, noise=10, random_state=0)
    frame = pd.DataFrame(X, columns=list("abcd")).assign(y=y)
    model = LinearRegression().fit(frame[list("abcd")], y)
    result = evaluate(model, frame, target="y", run=False, plots=False, latency=False)
    for metric in ("rmse", "mae", "r2", "median_absolute_error"):
        ci = result.bootstrap_ci(metric, n=300)
        assert ci.low <= result.metrics[metric] <= ci.high, metric


def test_a_paired_delta_compares_two_models_on_the_same_resamples(
    pair: tuple[EvaluationResult, ...],
) -> None:
    forest, stump, forest_again = pair
    delta = forest.paired_bootstrap_delta(stump, "roc_auc", n=300, seed=1)
    assert isinstance(delta, PairedDelta)
    assert delta.estimate == pytest.approx(
        forest.metrics["roc_auc"] - stump.metrics["roc_auc"], rel=1e-12
    )
    assert 0 < delta.low < delta.estimate < delta.high
    assert delta.significant and delta.probability_better == 1.0
    # a loss: lower is better, so the forest is better when its delta is negative
    loss = forest.paired_bootstrap_delta(stump, "log_loss", n=300, seed=1)
    assert loss.high < 0 and loss.probability_better == 1.0 and not greater_is_better("log_loss")
    same = forest.paired_bootstrap_delta(forest_again, "accuracy", n=200)
    assert (same.low, same.estimate, same.high) == (0.0, 0.0, 0.0) and not same.significant
    assert "paired bootstrap CI" in str(delta)
    assert forest.compare(stump)["roc_auc"] == pytest.approx(delta.estimate)


def test_bootstrap_errors_say_what_to_do(pair: tuple[EvaluationResult, ...]) -> None:
    forest = pair[0]
    with pytest.raises(InvalidArgument, match=r"cannot bootstrap 'rmse'.*choose one of accuracy"):
        forest.bootstrap_ci("rmse")
    with pytest.raises(InvalidArgument, match="positive integer"):
        forest.bootstrap_ci("accuracy", n=0)
    with pytest.raises(InvalidArgument, match="alpha must be between 0 and 1"):
        forest.bootstrap_ci("accuracy", alpha=1.5)
    with pytest.raises(InvalidArgument, match="holds no predictions"):
        EvaluationResult.from_dict(forest.to_dict()).bootstrap_ci("accuracy")
    X, y = make_classification(n_samples=300, n_features=4, random_state=1)
    other = pd.DataFrame(X, columns=list("abcd")).assign(y=y)
    dummy = DummyClassifier(strategy="prior").fit(other[list("abcd")], y)
    elsewhere = evaluate(dummy, other, target="y", run=False, plots=False, latency=False)
    with pytest.raises(InvalidArgument, match="same rows"):
        forest.paired_bootstrap_delta(elsewhere, "accuracy")
    # a classifier without predict_proba has no probability metrics to resample
    no_proba = Predictions.for_classification(
        np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), model_classes=[0, 1]
    )
    assert "roc_auc" not in bootstrap_metrics(no_proba)
    with pytest.raises(InvalidArgument, match="without probabilities"):
        metric_on_weights(no_proba, "roc_auc", np.ones(4))
