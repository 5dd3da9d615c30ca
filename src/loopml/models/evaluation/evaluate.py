""":func:`evaluate`: score a model on labelled data, per slice, with its speed and size, and
record it all on a run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.client import context
from loopml.errors import InvalidArgument
from loopml.models.evaluation import inputs, metrics, performance, runs
from loopml.models.evaluation.bootstrap import exact_metrics
from loopml.models.evaluation.predictions import (
    CLASSIFICATION,
    Predictions,
    as_labels,
    as_probabilities,
    as_values,
)
from loopml.models.evaluation.result import EvaluationResult
from loopml.models.evaluation.slices import score_slices, slice_columns

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from loopml.client import Client

__all__ = ["evaluate"]


def evaluate(
    model: Any,
    data: Any,
    *,
    target: str,
    task: str | None = None,
    slices: str | Sequence[str] | Mapping[str, Any] | None = None,
    positive_label: Any = None,
    run: bool | str = True,
    model_version: str | None = None,
    plots: bool = True,
    latency: bool = True,
    batch_size: int = 1024,
    sample_rows_for_latency: int = 1000,
    latency_budget_seconds: float = 2.5,
    slice_bins: int = 4,
    min_slice_rows: int = 30,
    project: str | None = None,
    client: Client | None = None,
    trusted: bool = False,
) -> EvaluationResult:
    """Evaluate a model on labelled data.

    The model predicts every row once (``predict``, then ``predict_proba`` for a classifier that
    has it); every metric, slice and bootstrap reuses those predictions.

    Args:
        model: an object with ``predict`` (``predict_proba`` and ``classes_`` are used when
            present: a scikit-learn, XGBoost or LightGBM model, a loaded loopml model), or a
            model URI such as ``models:/churn/3``.
        data: a pandas or polars DataFrame, a pyarrow Table, or a ``datasets:/name/version``
            URI. The model sees every column but the target, so a column it does not take
            (an id, a slice-only column) must be dropped first; pass slice values as arrays.
        target: the column holding the true labels or values.
        task: ``"classification"`` or ``"regression"``; inferred from the model and the target
            when None.
        slices: columns to slice by (a name or several), or a mapping of slice name to a column
            name or to one value per row. Numbers with many values are cut into ``slice_bins``
            quantile bins.
        positive_label: binary classification: the positive label (default: the second class,
            ``1`` or ``True`` for 0/1 and boolean targets).
        run: True logs to the active run, or to a new run named ``evaluation``; a run id logs
            to that run; False logs nothing.
        model_version: a ``models:/name/3`` (or ``@alias``) URI to link the run to; defaults to
            ``model`` when that is a ``models:/`` URI.
        plots: save ROC, PR, calibration and confusion-matrix plots (classification) or
            residual and predicted-vs-actual plots (regression) as PNG artifacts of the run.
        latency: also time single-row and batch calls and measure the model's size (on top of
            the full prediction, which is always timed).
        batch_size: rows per batch call when timing batches.
        sample_rows_for_latency: at most this many single-row calls.
        latency_budget_seconds: each of the two latency measurements stops after this time.
        slice_bins: quantile bins for a numeric slice column.
        min_slice_rows: slices with fewer rows are flagged ``small``.
        project: the project of a new run and of a ``datasets:/`` or ``models:/`` URI (default:
            the current one).
        client: the client to log with (default: the fluent API's).
        trusted: load a model URI whose flavor runs stored code (pickle, torch, PythonModel);
            only for models from a source you trust.

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        InvalidArgument: a model without ``predict``, data that is not a table or has no rows,
            a target that is missing or has missing values, a task that does not fit the
            target, an unknown slice column, or a bad option.
        DatasetNotFound: ``data`` names no dataset version.
        RunNotFound: ``run`` is the id of no run.

    Example:
        >>> result = loopml.evaluate(model, test, target="churned", slices=["plan"])
        >>> result.metrics["roc_auc"]
        0.91
        >>> result.bootstrap_ci("roc_auc")  # no new predictions
    """
    _check_options(
        batch_size, sample_rows_for_latency, latency_budget_seconds, slice_bins, min_slice_rows
    )

    def get_client() -> Client:
        return client if client is not None else context.get_client()

    project = project or context.get_project()

    version_ref = None if model_version is None else runs.parse_model_version(model_version)
    model, model_uri = inputs.resolve_model(model, get_client, project=project, trusted=trusted)
    if version_ref is None and model_uri is not None and model_uri.startswith("models:/"):
        with contextlib.suppress(InvalidArgument):  # a URI the loader took but we cannot link
            version_ref = runs.parse_model_version(model_uri)
    frame, dataset = inputs.load_data(data, client=get_client, project=project)
    started = time.perf_counter()
    features, y = inputs.split_target(frame, target)
    notes: list[str] = []
    features = inputs.model_columns(model, features, notes)
    task_, how = inputs.infer_task(y, model, task)
    if how is not None:
        notes.append(how)
    inputs.check_positive_label(positive_label, task_, y, model)
    columns = slice_columns(frame, slices)
    preparing = time.perf_counter() - started
    tags = {} if version_ref is None else {runs.MODEL_NAME_TAG: version_ref.name}
    with runs.evaluation_run(run, client=client, project=project, tags=tags) as (c, run_id):
        started = time.perf_counter()
        classify = task_ == CLASSIFICATION
        with_proba = classify and inputs.has_probabilities(model)
        output = performance.predict_all(model, features, probabilities=with_proba)
        p = _predictions(model, y, output, classify, positive_label, notes)
        found = _score(p, notes)
        slice_result, slice_list = score_slices(
            p, columns, exact_metrics, bins=slice_bins, min_rows=min_slice_rows
        )
        perf = _performance(output, len(p), preparing + time.perf_counter() - started)
        if latency:
            perf.update(
                performance.latency(
                    model.predict,
                    features,
                    sample_rows=sample_rows_for_latency,
                    batch_size=batch_size,
                    budget_seconds=latency_budget_seconds,
                )
            )
            size, method = performance.model_size(model)
            perf["model_size_bytes"] = None if size is None else float(size)
            perf["model_size_method"] = method
        plot_paths: dict[str, str] = {}
        if plots and c is not None and run_id is not None:
            plot_paths = runs.log_figures(c, run_id, _figures(p, found))
        elif plots:
            notes.append("plots are saved on a run: with run=False none were drawn")
        result = EvaluationResult(
            task=task_,
            metrics=found["metrics"],
            num_rows=len(p),
            slices=slice_result,
            confusion_matrix=found.get("confusion_matrix"),
            classes=p.classes,
            positive_label=p.positive_label,
            per_class=found.get("per_class", {}),
            calibration=found.get("calibration"),
            performance=perf,
            plots=plot_paths,
            run_id=run_id,
            dataset=None if dataset is None else dataset.uri,
            model=model_uri if model_uri is not None else model_version,
            notes=tuple(notes),
            predictions=p,
        )
        if c is not None and run_id is not None:
            if version_ref is not None:
                runs.link_model_version(c, run_id, version_ref, project)
            runs.log_result(c, run_id, result, slice_list, dataset)
    return result


def _check_options(
    batch_size: int, sample_rows: int, budget: float, bins: int, min_rows: int
) -> None:
    for name, value, low in (
        ("batch_size", batch_size, 1),
        ("sample_rows_for_latency", sample_rows, 1),
        ("slice_bins", bins, 2),
        ("min_slice_rows", min_rows, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidArgument(f"{name} must be an integer of at least {low}, not {value!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
        raise InvalidArgument(f"latency_budget_seconds must be a positive number, not {budget!r}")


def _predictions(
    model: Any,
    y: pd.Series[Any],
    output: performance.ModelOutput,
    classify: bool,
    positive_label: Any,
    notes: list[str],
) -> Predictions:
    n = len(y)
    y_true = y.to_numpy()
    if not classify:
        return Predictions.for_regression(
            y_true.astype(np.float64), as_values(output.predictions, n, "model.predict")
        )
    proba, columns = (None, None)
    if output.probabilities is not None:
        proba, columns = as_probabilities(output.probabilities, n)
    classes = inputs.model_classes(model)
    return Predictions.for_classification(
        y_true,
        as_labels(output.predictions, n, "model.predict"),
        proba=proba,
        model_classes=classes if classes is not None else columns,
        positive_label=positive_label,
        notes=notes,
    )


def _score(p: Predictions, notes: list[str]) -> dict[str, Any]:
    if p.task != CLASSIFICATION:
        return {"metrics": metrics.regression_metrics(p, notes)}
    found, per_class = metrics.classification_metrics(p, notes)
    matrix = metrics.confusion_matrix(p)
    return {
        "metrics": found,
        "per_class": per_class,
        "confusion_matrix": tuple(tuple(int(v) for v in row) for row in matrix),
        "calibration": metrics.calibration(p),
        "matrix": matrix,
    }


def _performance(output: performance.ModelOutput, n: int, seconds: float) -> dict[str, Any]:
    """The full prediction's cost; ``overhead_seconds`` is the time :func:`evaluate` spent
    around the model's calls (checking inputs, encoding labels, metrics, slices), not counting
    latency sampling, plots and logging."""
    perf: dict[str, Any] = {"predict_seconds": output.predict_seconds}
    if output.predict_proba_seconds is not None:
        perf["predict_proba_seconds"] = output.predict_proba_seconds
    model_seconds = output.predict_seconds + (output.predict_proba_seconds or 0.0)
    perf["rows_per_second"] = n / output.predict_seconds if output.predict_seconds > 0 else None
    perf["overhead_seconds"] = max(0.0, seconds - model_seconds)
    perf["peak_memory_bytes"] = float(output.peak_memory_bytes)
    perf["peak_rss_bytes"] = float(output.peak_rss_bytes)
    perf["memory_method"] = performance.MEMORY_METHOD
    return perf


def _figures(p: Predictions, found: dict[str, Any]) -> dict[str, Figure]:
    from loopml.models.evaluation import plots

    if p.task == CLASSIFICATION:
        return plots.classification_figures(p, found["matrix"], found.get("calibration"))
    return plots.regression_figures(p)
