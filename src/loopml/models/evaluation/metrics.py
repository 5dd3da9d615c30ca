"""Metrics of one set of predictions, computed with :mod:`sklearn.metrics`.

Every function takes the :class:`~loopml.models.evaluation.predictions.Predictions` computed
once by :func:`~loopml.models.evaluation.evaluate` and returns plain floats: the headline metrics
of an evaluation. A metric that is not defined for the rows at hand (ROC AUC with one class, R² of
one row) is left out, and a note says why. Slices and bootstrap resamples are scored with the
numpy statistics of :mod:`~loopml.models.evaluation.bootstrap` instead, which give the same values
without sklearn's per-call input checks (the tests hold the two to each other).

Classification (labels are integer codes into ``Predictions.classes``):

* ``accuracy``;
* binary: ``precision``, ``recall``, ``f1`` of the positive label, ``brier_score``;
* multiclass: ``precision_macro``, ``recall_macro``, ``f1_macro`` and the ``_weighted`` ones, over
  the labels that occur in the target or the predictions (as sklearn does by default);
* with probabilities: ``roc_auc`` and ``pr_auc`` (average precision; multiclass: the mean over
  classes of one-vs-rest scores) and ``log_loss``.

Regression: ``rmse``, ``mae``, ``r2``, ``mape`` (rows whose target is 0 are skipped, and a note
counts them), ``max_error`` and ``median_absolute_error``.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from loopml.models.evaluation.predictions import Predictions, json_label

__all__ = [
    "CLASSIFICATION_METRICS",
    "GREATER_IS_BETTER",
    "REGRESSION_METRICS",
    "calibration",
    "classification_metrics",
    "confusion_matrix",
    "greater_is_better",
    "regression_metrics",
    "sklearn",
]

GREATER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision_weighted": True,
    "recall_weighted": True,
    "f1_weighted": True,
    "roc_auc": True,
    "pr_auc": True,
    "log_loss": False,
    "brier_score": False,
    "rmse": False,
    "mae": False,
    "r2": True,
    "mape": False,
    "max_error": False,
    "median_absolute_error": False,
}
"""Whether a larger value of each metric is better (what a gate compares with)."""

CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier_score",
)
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape", "max_error", "median_absolute_error")
CALIBRATION_BINS = 10


def sklearn(module: str = "sklearn.metrics") -> ModuleType:
    """A scikit-learn module, imported on first use (scikit-learn is slow to import, and
    untyped: through this its functions are ``Any`` to mypy)."""
    return importlib.import_module(module)


def greater_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (True for unknown metrics).

    Slice metrics (``slice/plan:pro/accuracy``) follow their last part.
    """
    return GREATER_IS_BETTER.get(metric.rsplit("/", 1)[-1], True)


def classification_metrics(
    p: Predictions, notes: list[str] | None = None
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Classification metrics, and per class its support, precision, recall and F1.

    Args:
        p: classification predictions.
        notes: a list that receives a remark for each metric left out.

    Returns:
        ``(metrics, per_class)``; ``per_class`` is keyed by the label as a string.
    """
    skm = sklearn()

    assert p.true_codes is not None and p.pred_codes is not None
    remarks = notes if notes is not None else []
    y, pred = p.true_codes, p.pred_codes
    k = len(p.classes)
    support = np.bincount(y, minlength=k)
    present = np.flatnonzero(support + np.bincount(pred, minlength=k))
    with _sklearn_notes(remarks):
        out: dict[str, float] = {"accuracy": float(skm.accuracy_score(y, pred))}
        prec, rec, f1, _ = skm.precision_recall_fscore_support(
            y, pred, labels=present, average=None, zero_division=0
        )
    weights = support[present]
    if p.is_binary:
        pos = p.positive_index
        assert pos is not None
        at = int(np.searchsorted(present, pos))
        found = at < len(present) and present[at] == pos
        out["precision"] = float(prec[at]) if found else 0.0
        out["recall"] = float(rec[at]) if found else 0.0
        out["f1"] = float(f1[at]) if found else 0.0
    else:
        for name, values in (("precision", prec), ("recall", rec), ("f1", f1)):
            out[f"{name}_macro"] = float(np.average(values))
            out[f"{name}_weighted"] = float(np.average(values, weights=weights))
    if p.proba is not None:
        out.update(_probability_metrics(p, support, remarks))
    out = {name: out[name] for name in CLASSIFICATION_METRICS if name in out}
    classes = {
        str(json_label(p.classes[c])): {
            "support": float(support[c]),
            "precision": float(prec[i]),
            "recall": float(rec[i]),
            "f1": float(f1[i]),
        }
        for i, c in enumerate(present)
    }
    return out, classes


def _probability_metrics(
    p: Predictions, support: np.ndarray, notes: list[str]
) -> dict[str, float]:
    skm = sklearn()

    assert p.proba is not None and p.true_codes is not None
    y, proba, n = p.true_codes, p.proba, len(p)
    out: dict[str, float] = {}
    if not np.all(np.isfinite(proba)):
        notes.append("predict_proba returned NaN or infinite values: no probability metrics")
        return out
    with _sklearn_notes(notes):
        if p.is_binary:
            pos = p.positive_index
            assert pos is not None
            truth, scores = y == pos, proba[:, pos]
            if 0 < support[pos] < n:
                out["roc_auc"] = float(skm.roc_auc_score(truth, scores))
                out["pr_auc"] = float(skm.average_precision_score(truth, scores))
            else:
                notes.append("roc_auc and pr_auc need both classes in the target: left out")
            out["brier_score"] = float(skm.brier_score_loss(truth, scores))
        else:
            scored = [c for c in range(len(p.classes)) if 0 < support[c] < n]
            if len(scored) >= 2:
                out["roc_auc"] = _mean(skm.roc_auc_score, y, proba, scored)
                out["pr_auc"] = _mean(skm.average_precision_score, y, proba, scored)
                absent = len(p.classes) - len(scored)
                if absent:
                    notes.append(
                        f"roc_auc and pr_auc average over the {len(scored)} classes in the "
                        f"target ({absent} absent)"
                    )
            else:
                notes.append("roc_auc and pr_auc need two classes in the target: left out")
        out["log_loss"] = float(skm.log_loss(y, proba, labels=np.arange(len(p.classes))))
    return out


def _mean(
    metric: Callable[..., Any], y: np.ndarray, proba: np.ndarray, classes: list[int]
) -> float:
    """The one-vs-rest ``metric`` averaged over ``classes`` (sklearn's ``ovr`` macro)."""
    return float(np.mean([metric(y == c, proba[:, c]) for c in classes]))


def regression_metrics(p: Predictions, notes: list[str] | None = None) -> dict[str, float]:
    """Regression metrics; see the module docstring.

    Args:
        p: regression predictions.
        notes: a list that receives a remark for each metric left out or restricted.
    """
    skm = sklearn()

    remarks = notes if notes is not None else []
    y, pred = p.y_true, p.y_pred
    with _sklearn_notes(remarks):
        out = {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
            "mae": float(skm.mean_absolute_error(y, pred)),
        }
        if len(y) >= 2:
            out["r2"] = float(skm.r2_score(y, pred))
        else:
            remarks.append("r2 needs at least two rows: left out")
        nonzero = y != 0
        skipped = int(len(y) - np.count_nonzero(nonzero))
        if skipped < len(y):
            out["mape"] = float(skm.mean_absolute_percentage_error(y[nonzero], pred[nonzero]))
        if skipped:
            remarks.append(
                f"mape skips the {skipped} row{'s' * (skipped != 1)} whose target is 0"
                + ("" if skipped < len(y) else ": left out")
            )
        out["max_error"] = float(skm.max_error(y, pred))
        out["median_absolute_error"] = float(skm.median_absolute_error(y, pred))
    return out


def confusion_matrix(p: Predictions) -> np.ndarray:
    """Counts of (true class, predicted class), rows and columns in ``p.classes`` order."""
    assert p.true_codes is not None and p.pred_codes is not None
    k = len(p.classes)
    flat = np.bincount(p.true_codes * k + p.pred_codes, minlength=k * k)
    return flat.reshape(k, k)


def calibration(p: Predictions, n_bins: int = CALIBRATION_BINS) -> dict[str, list[float]] | None:
    """The binary calibration curve (uniform bins of the positive class's probability).

    Returns:
        ``{"mean_predicted": [...], "fraction_positive": [...], "count": [...]}`` over the
        non-empty bins (sklearn's :func:`~sklearn.calibration.calibration_curve` and the rows in
        each bin), or None without probabilities or for more than two classes.
    """
    if not p.is_binary or p.proba is None or not np.all(np.isfinite(p.proba)):
        return None
    calibration_curve = sklearn("sklearn.calibration").calibration_curve

    assert p.true_codes is not None
    pos = p.positive_index
    truth, scores = p.true_codes == pos, np.clip(p.proba[:, pos], 0.0, 1.0)
    fraction, mean = calibration_curve(truth, scores, n_bins=n_bins, strategy="uniform")
    # the same bins as sklearn's, for the count of rows in each
    ids = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], scores)
    counts = np.bincount(ids, minlength=n_bins)
    return {
        "mean_predicted": [float(v) for v in mean],
        "fraction_positive": [float(v) for v in fraction],
        "count": [float(v) for v in counts[counts > 0]],
    }


@contextmanager
def _sklearn_notes(notes: list[str]) -> Iterator[None]:
    """Run sklearn without the checks :func:`evaluate` already made (labels are integer codes,
    every value is finite), and turn its warnings (probabilities that do not sum to one...)
    into notes."""
    config = sklearn("sklearn").config_context(assume_finite=True, skip_parameter_validation=True)
    with warnings.catch_warnings(record=True) as caught, config:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = f"sklearn: {w.message}"
        if text not in notes:
            notes.append(text)
