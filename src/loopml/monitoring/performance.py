"""Model quality over a window: the window's logged predictions joined with the ground truth
that arrived for them (by prediction id), scored with scikit-learn's metrics."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from loopml.monitoring.spec import PerformanceCheck

__all__ = ["performance"]

_DEFAULTS = {"classification": ["accuracy", "f1"], "regression": ["rmse", "mae", "r2"]}
_PROBABILITY = {"roc_auc", "log_loss"}  # need probabilities, which the log does not hold


def performance(
    predictions: pd.DataFrame, labels: pd.DataFrame, check: PerformanceCheck
) -> dict[str, Any] | None:
    """Score the predictions that have labels.

    Args:
        predictions: the window's log rows (``prediction_id``, ``prediction``).
        labels: ground truth (``prediction_id``, ``label``), one per id.
        check: the monitor's performance settings.

    Returns:
        ``{"labelled", "task", "metrics", "notes"}``, or None when no prediction of the window
        has a label yet.
    """
    if "prediction" not in predictions or labels.empty:
        return None
    joined = predictions[["prediction_id", "prediction"]].merge(
        labels, on="prediction_id", how="inner"
    )
    joined = joined[joined["label"].notna() & joined["prediction"].notna()]
    if joined.empty:
        return None
    y_true, y_pred = joined["label"].to_numpy(), joined["prediction"].to_numpy()
    task = check.task if check.task != "auto" else _task(y_true)
    wanted = check.metrics or _DEFAULTS[task]
    notes: list[str] = []
    metrics: dict[str, float] = {}
    for name in wanted:
        if name in _PROBABILITY:
            notes.append(f"{name} needs predicted probabilities, which the log does not hold")
            continue
        try:
            metrics[name] = _score(name, task, y_true, y_pred, check.positive_label)
        except (ValueError, TypeError) as exc:
            notes.append(f"{name} not computed: {exc}")
            metrics[name] = math.nan
    return {"labelled": len(joined), "task": task, "metrics": metrics, "notes": notes}


def _task(y: Any) -> str:
    import numpy as np

    if y.dtype.kind in "fc":
        values = y[~np.isnan(y.astype(float))]
        if values.size and np.all(values == np.round(values)) and np.unique(values).size <= 20:
            return "classification"
        return "regression"
    return "classification"


def _score(name: str, task: str, y_true: Any, y_pred: Any, positive: Any) -> float:
    import numpy as np
    from sklearn import metrics as m

    if task == "regression":
        t, p = y_true.astype(float), y_pred.astype(float)
        if name == "rmse":
            return float(np.sqrt(m.mean_squared_error(t, p)))
        if name == "mae":
            return float(m.mean_absolute_error(t, p))
        if name == "r2":
            return float(m.r2_score(t, p)) if len(t) > 1 else math.nan
        if name == "mape":
            return float(m.mean_absolute_percentage_error(t, p))
        raise ValueError(f"{name} is a classification metric; this is a regression")
    t, p = _same_type(y_true, y_pred)
    if name == "accuracy":
        return float(m.accuracy_score(t, p))
    if name in ("precision", "recall", "f1"):
        classes = sorted(set(t.tolist()) | set(p.tolist()), key=str)
        fn = {"precision": m.precision_score, "recall": m.recall_score, "f1": m.f1_score}[name]
        if len(classes) <= 2:
            pos = positive if positive is not None else classes[-1]
            return float(fn(t, p, pos_label=pos, average="binary", zero_division=0))
        return float(fn(t, p, average="macro", zero_division=0))
    raise ValueError(f"{name} is a regression metric; this is a classification")


def _same_type(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Labels and predictions comparable: numbers stay numbers, else both as strings
    (``1`` and ``"1"`` must match: labels often come back as text)."""
    import numpy as np

    if y_true.dtype.kind in "biuf" and y_pred.dtype.kind in "biuf":
        return y_true.astype(float), y_pred.astype(float)
    if y_true.dtype.kind == "b" or y_pred.dtype.kind == "b":
        return np.asarray(y_true, dtype=str), np.asarray(y_pred, dtype=str)
    return np.asarray([str(v) for v in y_true]), np.asarray([str(v) for v in y_pred])
