"""loopml.models.evaluation.evaluate on real scikit-learn models: metrics equal to sklearn's
(binary, multiclass, regression), slices, runs, plots, datasets:/ URIs and bad inputs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import label_binarize
from sklearn.tree import DecisionTreeClassifier

import loopml
from loopml.client import context
from loopml.data import log_dataset
from loopml.entities import RunStatus
from loopml.errors import DatasetNotFound, InvalidArgument, RunNotFound
from loopml.models.evaluation import EvaluationResult, evaluate

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


def _split(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, test = train_test_split(frame, test_size=0.35, random_state=0)
    return train.reset_index(drop=True), test.reset_index(drop=True)


@pytest.fixture(scope="module")
def cancer() -> tuple[RandomForestClassifier, pd.DataFrame]:
    """A binary problem with text labels: 'malignant' or 'benign'."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = np.where(frame["target"] == 1, "benign", "malignant")
    train, test = _split(frame, "target")
    model = RandomForestClassifier(n_estimators=25, max_depth=3, random_state=0)
    model.fit(train.drop(columns="target"), train["target"])
    return model, test


@pytest.fixture(scope="module")
def wine() -> tuple[RandomForestClassifier, pd.DataFrame]:
    frame = load_wine(as_frame=True).frame
    train, test = _split(frame, "target")
    model = RandomForestClassifier(n_estimators=5, max_depth=2, random_state=0)
    model.fit(train.drop(columns="target"), train["target"])
    return model, test


@pytest.fixture(scope="module")
def diabetes() -> tuple[RandomForestRegressor, pd.DataFrame]:
    frame = load_diabetes(as_frame=True).frame
    train, test = _split(frame, "target")
    model = RandomForestRegressor(n_estimators=20, max_depth=4, random_state=0)
    model.fit(train.drop(columns="target"), train["target"])
    return model, test


def _quick(**options: Any) -> dict[str, Any]:
    return {"run": False, "plots": False, "latency": False, **options}


# --- metrics ----------------------------------------------------------------------------------


def test_binary_metrics_equal_sklearns(cancer: tuple[Any, pd.DataFrame]) -> None:
    model, test = cancer
    x, y = test.drop(columns="target"), test["target"]
    pred, proba = model.predict(x), model.predict_proba(x)
    pos = list(model.classes_).index("malignant")
    result = evaluate(model, test, target="target", positive_label="malignant", **_quick())
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, pos_label="malignant"),
        "recall": skm.recall_score(y, pred, pos_label="malignant"),
        "f1": skm.f1_score(y, pred, pos_label="malignant"),
        "roc_auc": skm.roc_auc_score(y == "malignant", proba[:, pos]),
        "pr_auc": skm.average_precision_score(y, proba[:, pos], pos_label="malignant"),
        "log_loss": skm.log_loss(y, proba, labels=model.classes_),
        "brier_score": skm.brier_score_loss(y, proba[:, pos], pos_label="malignant"),
    }
    assert result.task == "classification" and result.num_rows == len(test)
    assert set(result.metrics) == set(expected)
    assert result.metrics == pytest.approx(expected, rel=1e-12)
    assert result.classes == tuple(model.classes_) and result.positive_label == "malignant"
    matrix = skm.confusion_matrix(y, pred, labels=model.classes_)
    assert result.confusion_matrix == tuple(map(tuple, matrix.tolist()))
    assert result.per_class["malignant"]["support"] == (y == "malignant").sum()
    assert result.per_class["benign"]["recall"] == pytest.approx(
        skm.recall_score(y, pred, pos_label="benign")
    )
    from sklearn.calibration import calibration_curve

    fraction, mean = calibration_curve(y == "malignant", proba[:, pos], n_bins=10)
    assert result.calibration is not None
    assert result.calibration["fraction_positive"] == pytest.approx(fraction.tolist())
    assert result.calibration["mean_predicted"] == pytest.approx(mean.tolist())
    assert sum(result.calibration["count"]) == len(test)
    # the default positive label is the second class, as for 0/1 and False/True
    default = evaluate(model, test, target="target", **_quick())
    assert default.positive_label == model.classes_[1] == "malignant"


def test_multiclass_metrics_equal_sklearns(wine: tuple[Any, pd.DataFrame]) -> None:
    model, test = wine
    x, y = test.drop(columns="target"), test["target"]
    pred, proba = model.predict(x), model.predict_proba(x)
    result = evaluate(model, test, target="target", **_quick())
    expected: dict[str, float] = {"accuracy": skm.accuracy_score(y, pred)}
    for average in ("macro", "weighted"):
        for name, fn in (
            ("precision", skm.precision_score),
            ("recall", skm.recall_score),
            ("f1", skm.f1_score),
        ):
            expected[f"{name}_{average}"] = fn(y, pred, average=average, zero_division=0)
    expected["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr")
    expected["pr_auc"] = skm.average_precision_score(
        label_binarize(y, classes=model.classes_), proba, average="macro"
    )
    expected["log_loss"] = skm.log_loss(y, proba)
    assert set(result.metrics) == set(expected)
    assert result.metrics == pytest.approx(expected, rel=1e-12)
    assert np.array_equal(result.confusion_matrix, skm.confusion_matrix(y, pred))
    assert result.calibration is None and len(result.classes) == 3
    assert {k: v["support"] for k, v in result.per_class.items()} == {
        str(k): v for k, v in y.value_counts().items()
    }


def test_regression_metrics_equal_sklearns_and_mape_skips_zero_targets(
    diabetes: tuple[Any, pd.DataFrame],
) -> None:
    model, test = diabetes
    test = test.copy()
    test.loc[:2, "target"] = 0.0  # three rows whose percentage error is undefined
    x, y = test.drop(columns="target"), test["target"].to_numpy()
    pred = model.predict(x)
    result = evaluate(model, test, target="target", **_quick())
    nonzero = y != 0
    expected = {
        "rmse": skm.root_mean_squared_error(y, pred),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
        "mape": skm.mean_absolute_percentage_error(y[nonzero], pred[nonzero]),
        "max_error": skm.max_error(y, pred),
        "median_absolute_error": skm.median_absolute_error(y, pred),
    }
    assert result.task == "regression" and result.confusion_matrix is None
    assert result.metrics == pytest.approx(expected, rel=1e-12)
    assert any("mape skips the 3 rows whose target is 0" in n for n in result.notes)


def test_the_task_is_inferred_and_can_be_forced(diabetes: tuple[Any, pd.DataFrame]) -> None:
    from loopml.models.evaluation.inputs import infer_task

    model, test = diabetes
    assert evaluate(model, test, target="target", **_quick()).task == "regression"
    few = pd.Series(np.arange(60) % 3, name="label")
    assert infer_task(few, None, None)[0] == "classification"  # few integers: classes
    assert infer_task(pd.Series(np.arange(60)), None, None)[0] == "regression"
    assert infer_task(few.astype(float) + 0.5, None, None)[0] == "regression"
    assert infer_task(few.astype(str), None, None)[0] == "classification"
    assert infer_task(few > 0, None, None)[0] == "classification"
    # a model with classes_ says it classifies, whatever the target looks like
    frame = pd.DataFrame({"x": np.arange(60) % 7, "label": np.arange(60) % 30})
    tree = DecisionTreeClassifier(random_state=0).fit(frame[["x"]], frame["label"])
    assert evaluate(tree, frame, target="label", **_quick()).task == "classification"
    forced = evaluate(
        RandomForestRegressor(n_estimators=3, random_state=0).fit(frame[["x"]], few),
        frame.assign(label=few),
        target="label",
        task="regression",
        **_quick(),
    )
    assert forced.task == "regression" and "rmse" in forced.metrics


def test_tables_of_any_kind_give_the_same_result(cancer: tuple[Any, pd.DataFrame]) -> None:
    import polars as pl

    model, test = cancer
    want = evaluate(model, test, target="target", **_quick()).metrics
    for table in (pa.Table.from_pandas(test), pl.from_pandas(test)):
        assert evaluate(model, table, target="target", **_quick()).metrics == want


def test_the_model_predicts_once_whatever_the_slices(cancer: tuple[Any, pd.DataFrame]) -> None:
    class CountingTree(DecisionTreeClassifier):  # a real tree that counts its calls
        calls: dict[str, int]

        def predict(self, X: Any, check_input: bool = True) -> Any:
            self.calls["predict"] += 1
            return super().predict(X, check_input)

        def predict_proba(self, X: Any, check_input: bool = True) -> Any:
            self.calls["predict_proba"] += 1
            return super().predict_proba(X, check_input)

    _, test = cancer
    tree = CountingTree(max_depth=3, random_state=0)
    tree.fit(test.drop(columns="target"), test["target"])
    tree.calls = {"predict": 0, "predict_proba": 0}
    result = evaluate(
        tree, test, target="target", slices=["mean radius", "mean texture"], **_quick()
    )
    assert tree.calls == {"predict": 1, "predict_proba": 1}
    result.bootstrap_ci("roc_auc", n=50)
    assert tree.calls == {"predict": 1, "predict_proba": 1}


# --- slices -----------------------------------------------------------------------------------


def test_slices_score_each_group_like_sklearn_would(cancer: tuple[Any, pd.DataFrame]) -> None:
    model, test = cancer
    x, y = test.drop(columns="target"), test["target"]
    pred, proba = model.predict(x), model.predict_proba(x)[:, 1]
    site = np.where(np.arange(len(test)) % 10 == 0, "small-clinic", "hospital")
    result = evaluate(
        model,
        test,
        target="target",
        slices={"site": site, "radius": "mean radius"},
        min_slice_rows=25,
        **_quick(),
    )
    assert list(result.slices) == ["site", "radius"]
    by_site = result.slices["site"]
    assert set(by_site) == {"hospital", "small-clinic"}
    for label, group in by_site.items():
        rows = site == label
        assert group["num_rows"] == rows.sum()
        assert group["small"] == (rows.sum() < 25)
        assert group["metrics"]["accuracy"] == pytest.approx(
            skm.accuracy_score(y[rows], pred[rows])
        )
        assert group["metrics"]["f1"] == pytest.approx(
            skm.f1_score(y[rows], pred[rows], pos_label="malignant")
        )
        assert group["metrics"]["roc_auc"] == pytest.approx(
            skm.roc_auc_score(y[rows] == "malignant", proba[rows])
        )
        assert group["metrics"]["pr_auc"] == pytest.approx(
            skm.average_precision_score(y[rows] == "malignant", proba[rows])
        )
        assert group["metrics"]["log_loss"] == pytest.approx(
            skm.log_loss(y[rows], model.predict_proba(x[rows]), labels=model.classes_)
        )
    assert by_site["small-clinic"]["small"] and not by_site["hospital"]["small"]
    # a many-valued number is cut into quartiles, labelled by their ranges
    quartiles = result.slices["radius"]
    assert len(quartiles) == 4
    assert sum(g["num_rows"] for g in quartiles.values()) == len(test)
    first = next(iter(quartiles))
    assert first.startswith("[") and first.endswith("]")
    low = float(first[1:].split(",")[0])
    assert low == pytest.approx(test["mean radius"].min(), rel=1e-3)


def test_slices_keep_missing_values_and_few_valued_numbers(
    diabetes: tuple[Any, pd.DataFrame],
) -> None:
    model, test = diabetes
    region = np.where(np.arange(len(test)) % 3 == 0, None, "north").astype(object)
    region[1::3] = "south"
    result = evaluate(
        model, test, target="target", slices={"region": region, "sex": "sex"}, **_quick()
    )
    assert set(result.slices["region"]) == {"north", "south", "(missing)"}
    assert (
        result.slices["region"]["(missing)"]["num_rows"] == (np.arange(len(test)) % 3 == 0).sum()
    )
    assert len(result.slices["sex"]) == 2  # two distinct values: no quartiles
    x, y = test.drop(columns="target"), test["target"].to_numpy()
    rows = region == "south"
    pred = model.predict(x)
    south = result.slices["region"]["south"]["metrics"]
    assert south["rmse"] == pytest.approx(skm.root_mean_squared_error(y[rows], pred[rows]))
    assert south["median_absolute_error"] == pytest.approx(
        skm.median_absolute_error(y[rows], pred[rows])
    )
    assert south["r2"] == pytest.approx(skm.r2_score(y[rows], pred[rows]))


# --- runs, plots, datasets --------------------------------------------------------------------


def test_a_new_evaluation_run_holds_metrics_plots_and_the_result(
    cancer: tuple[Any, pd.DataFrame], client: loopml.Client
) -> None:
    model, test = cancer
    result = evaluate(
        model, test, target="target", slices=["mean radius"], latency=False, client=client
    )
    run = client.get_run(result.run_id)
    assert run.name == "evaluation" and run.status == RunStatus.FINISHED
    assert run.tags["loopml.run_type"] == "evaluation"
    assert run.metrics["eval/accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert run.metrics["eval/roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    first = next(iter(result.slices["mean radius"].values()))
    assert run.metrics["eval/slice/mean radius:q1/accuracy"] == pytest.approx(
        first["metrics"]["accuracy"]
    )
    assert run.metrics["eval/slice/mean radius:q1/num_rows"] == first["num_rows"]
    assert run.metrics["eval/performance/predict_seconds"] > 0
    assert set(result.plots) == {"roc_curve", "pr_curve", "calibration", "confusion_matrix"}
    for path in result.plots.values():
        assert client.read_artifact(result.run_id, path).startswith(PNG)
    stored = client.read_dict(result.run_id, "evaluation/result.json")
    assert stored == result.to_dict()
    again = EvaluationResult.from_dict(stored)
    assert again.metrics == result.metrics and again.predictions is None
    assert again.confusion_matrix == result.confusion_matrix
    assert again.compare(result) == {k: 0.0 for k in result.metrics}


def test_regression_plots(diabetes: tuple[Any, pd.DataFrame], client: loopml.Client) -> None:
    model, test = diabetes
    result = evaluate(model, test, target="target", latency=False, client=client)
    assert set(result.plots) == {"residuals", "predicted_vs_actual"}
    names = {a.path for a in client.list_artifacts(result.run_id, "evaluation/plots")}
    assert names == {
        "evaluation/plots/residuals.png",
        "evaluation/plots/predicted_vs_actual.png",
    }
    for path in names:
        assert client.read_artifact(result.run_id, path).startswith(PNG)


def test_the_active_run_and_a_given_run_are_logged_to_and_left_open(
    cancer: tuple[Any, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.tracking import fluent

    model, test = cancer
    monkeypatch.setenv("LOOPML_ARTIFACT_URI", str(tmp_path / "fluent-art"))
    fluent.set_tracking_uri(f"sqlite:///{tmp_path}/fluent.db")
    try:
        with loopml.start_run(name="train") as active:
            result = evaluate(model, test, target="target", plots=False, latency=False)
            assert result.run_id == active.run_id
            assert loopml.get_client().get_run(active.run_id).status == RunStatus.RUNNING
        run = loopml.get_client().get_run(active.run_id)
        assert run.status == RunStatus.FINISHED and "eval/f1" in run.metrics
        c = loopml.get_client()
        other = c.create_run(name="mine")
        given = evaluate(
            model, test, target="target", run=other.run_id, plots=False, latency=False
        )
        assert given.run_id == other.run_id
        assert c.get_run(other.run_id).status == RunStatus.RUNNING
        assert "eval/accuracy" in c.get_run(other.run_id).metrics
        c.end_run(other.run_id)
    finally:
        client = context.peek_client()
        fluent.set_tracking_uri(None)
        if client is not None:
            client.close()


def test_a_failing_model_fails_its_new_run(
    cancer: tuple[Any, pd.DataFrame], client: loopml.Client
) -> None:
    from sklearn.exceptions import NotFittedError

    _, test = cancer
    with pytest.raises(NotFittedError):
        evaluate(RandomForestClassifier(), test, target="target", latency=False, client=client)
    (run,) = client.search_runs().items
    assert run.status == RunStatus.FAILED and "NotFittedError" in run.tags["loopml.error"]


def test_a_dataset_uri_is_loaded_and_recorded_as_the_runs_input(
    cancer: tuple[Any, pd.DataFrame], client: loopml.Client
) -> None:
    model, test = cancer
    version = log_dataset(test, "cancer-test", client=client)
    result = evaluate(
        model, version.uri, target="target", plots=False, latency=False, client=client
    )
    assert result.dataset == "datasets:/cancer-test/1"
    assert result.metrics == evaluate(model, test, target="target", **_quick()).metrics
    (used,) = client.get_run_inputs(result.run_id)
    assert used.role == "evaluation"
    with pytest.raises(DatasetNotFound):
        evaluate(model, "datasets:/cancer-test/9", target="target", client=client)


def test_a_model_version_is_linked_by_tags(
    cancer: tuple[Any, pd.DataFrame], client: loopml.Client
) -> None:
    model, test = cancer
    result = evaluate(
        model,
        test,
        target="target",
        model_version="models:/cancer/3",
        plots=False,
        latency=False,
        client=client,
    )
    tags = client.get_run(result.run_id).tags
    assert tags["loopml.model_name"] == "cancer" and tags["loopml.model_version"] == "3"
    assert result.model == "models:/cancer/3"


# --- performance ------------------------------------------------------------------------------


def test_latency_throughput_memory_and_size_are_measured(
    wine: tuple[Any, pd.DataFrame],
) -> None:
    model, test = wine
    result = evaluate(
        model,
        test,
        target="target",
        run=False,
        plots=False,
        batch_size=16,
        sample_rows_for_latency=20,
        latency_budget_seconds=2.0,
    )
    perf = result.performance
    assert perf["latency_rows"] == 20 and perf["batch_size"] == 16
    assert perf["batches"] == len(test) // 16
    assert 0 < perf["latency_p50_ms"] <= perf["latency_p95_ms"] <= perf["latency_p99_ms"]
    assert 0 < perf["batch_latency_p50_ms"] <= perf["batch_latency_p99_ms"]
    assert perf["latency_rows_per_second"] > 0 and perf["batch_rows_per_second"] > 0
    assert perf["predict_seconds"] > 0 and perf["predict_proba_seconds"] > 0
    assert perf["peak_rss_bytes"] >= perf["peak_memory_bytes"] >= 0
    assert "psutil" in str(perf["memory_method"])
    assert perf["model_size_method"] == "pickle"
    assert isinstance(perf["model_size_bytes"], float) and perf["model_size_bytes"] > 1000
    assert "latency (1 row)" in str(result)
    quick = evaluate(model, test, target="target", **_quick())
    assert "latency_p50_ms" not in quick.performance and "predict_seconds" in quick.performance


def test_the_result_reads_well(wine: tuple[Any, pd.DataFrame]) -> None:
    from rich.console import Console

    model, test = wine
    result = evaluate(model, test, target="target", slices=["alcohol"], **_quick())
    text = str(result)
    assert "multiclass classification" in text and "f1_macro" in text
    assert "slices by alcohol:" in text
    console = Console(record=True, width=120)
    console.print(result)
    rendered = console.export_text()
    assert "f1_macro" in rendered and "slices by alcohol" in rendered


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, d: (m, d, {"target": "nope"}), "target column 'nope' is not in the data"),
        (lambda m, d: (m, d.iloc[:0], {}), "has no rows"),
        (lambda m, d: (m, 42, {}), "data must be"),
        (lambda m, d: (m, "data.csv", {}), "datasets:/name/version"),
        (lambda m, d: (object(), d, {}), "must have a predict method"),
        (lambda m, d: (m, d, {"task": "ranking"}), "task must be 'classification'"),
        (lambda m, d: (m, d, {"task": "regression"}), "needs a numeric target"),
        (lambda m, d: (m, d, {"slices": ["nope"]}), "slice column 'nope' is not in the data"),
        (lambda m, d: (m, d, {"slices": {"s": [1, 2]}}), "one value per row"),
        (lambda m, d: (m, d, {"positive_label": "x"}), "positive_label 'x' is not a class"),
        (lambda m, d: (m, d, {"run": "abc"}), "run id 'abc' is malformed"),
        (lambda m, d: (m, d, {"run": 3}), "run must be True"),
        (lambda m, d: (m, d, {"batch_size": 0}), "batch_size must be an integer"),
        (lambda m, d: (m, d, {"model_version": "churn:3"}), "model_version must look like"),
    ],
)
def test_bad_inputs_are_refused_before_predicting(
    cancer: tuple[Any, pd.DataFrame], client: loopml.Client, change: Any, message: str
) -> None:
    model, test = cancer
    model, data, options = change(model, test)
    kwargs = {"target": "target", "latency": False, "client": client, **options}
    with pytest.raises(InvalidArgument, match=message):
        evaluate(model, data, **kwargs)
    assert len(client.search_runs()) == 0  # nothing was logged


def test_bad_targets_are_refused(
    cancer: tuple[Any, pd.DataFrame], diabetes: tuple[Any, pd.DataFrame]
) -> None:
    model, test = cancer
    holes = test.copy()
    holes.loc[[3, 5], "target"] = None
    with pytest.raises(InvalidArgument, match="has 2 missing values"):
        evaluate(model, holes, target="target", **_quick())
    with pytest.raises(InvalidArgument, match="only the target column"):
        evaluate(model, test[["target"]], target="target", **_quick())
    regressor, numbers = diabetes
    with pytest.raises(InvalidArgument, match="fractional values"):
        evaluate(
            regressor,
            numbers.assign(target=numbers["target"] / 7),
            target="target",
            task="classification",
            **_quick(),
        )
    # labels the model never predicts: 0/1 predictions against text labels
    coded = test.copy()
    coded["target"] = (coded["target"] == "malignant").astype(int)
    zero_one = RandomForestClassifier(n_estimators=3, random_state=0)
    zero_one.fit(coded.drop(columns="target"), coded["target"])
    with pytest.raises(InvalidArgument, match="no predicted label is a target label"):
        evaluate(zero_one, test, target="target", **_quick())
    wine_model = RandomForestClassifier(n_estimators=3, random_state=0)
    three = load_wine(as_frame=True).frame
    wine_model.fit(three.drop(columns="target"), three["target"])
    with pytest.raises(InvalidArgument, match="positive_label is for binary"):
        evaluate(wine_model, three, target="target", positive_label=1, **_quick())


def test_an_unknown_run_id_is_refused(
    cancer: tuple[Any, pd.DataFrame], client: loopml.Client
) -> None:
    model, test = cancer
    with pytest.raises(RunNotFound):
        evaluate(model, test, target="target", run="0" * 32, latency=False, client=client)


def test_a_saved_loopml_model_is_evaluated_by_object_or_uri(
    cancer: tuple[Any, pd.DataFrame], tmp_path: Path
) -> None:
    package = pytest.importorskip("loopml.models.package")
    loading = pytest.importorskip("loopml.models.loading")
    model, test = cancer
    folder = tmp_path / "cancer-model"
    package.save_model(model, folder)
    predictor = loading.load_model(str(folder))
    by_object = evaluate(predictor, test, target="target", run=False, plots=False)
    assert by_object.metrics == evaluate(model, test, target="target", **_quick()).metrics
    assert by_object.classes == tuple(model.classes_)  # from the framework's model inside
    assert by_object.performance["model_size_method"] == "folder"
    by_uri = evaluate(str(folder), test, target="target", **_quick())
    assert by_uri.metrics == by_object.metrics and by_uri.model == str(folder)


def test_a_registered_version_notes_its_evaluation_run(
    cancer: tuple[Any, pd.DataFrame], client: loopml.Client
) -> None:
    if not hasattr(client, "create_model_version"):
        pytest.skip("this client has no model registry")
    model, test = cancer
    version = client.create_model_version(
        "cancer", "runs:/0/model", flavor="sklearn", manifest_digest="0" * 64
    )
    client.set_model_alias("cancer", "champion", version.version)
    options: dict[str, Any] = {"target": "target", "plots": False, "latency": False}
    result = evaluate(
        model, test, model_version="models:/cancer@champion", client=client, **options
    )
    assert client.get_run(result.run_id).tags["loopml.model_version"] == str(version.version)
    noted = client.get_model_version("cancer", version.version).tags
    assert noted["loopml.evaluation_run_id"] == result.run_id
