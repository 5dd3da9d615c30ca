"""The evaluation's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state).

Classification: ROC and precision-recall curves (binary, or one-vs-rest for the
``MAX_CURVES`` most frequent classes), the calibration curve (binary) and the confusion matrix.
Regression: residuals against predictions, and predictions against targets. Scatter plots draw
at most ``MAX_POINTS`` rows (a seeded random sample), so a plot costs the same for any data size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from loopml._lazy import require
from loopml.models.evaluation.metrics import sklearn
from loopml.models.evaluation.predictions import Predictions, json_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MAX_CURVES", "MAX_POINTS", "classification_figures", "regression_figures"]

MAX_CURVES = 10
MAX_POINTS = 5000
_MAX_CELL_LABELS = 20


def _figure(title: str) -> tuple[Figure, Axes]:
    require("matplotlib", "plots", "drawing evaluation plots")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    return fig, ax


def classification_figures(
    p: Predictions,
    confusion: np.ndarray,
    calibration: dict[str, list[float]] | None,
) -> dict[str, Figure]:
    """ROC, PR and calibration curves (when there are probabilities) and the confusion matrix,
    by file name."""
    figures = {"confusion_matrix.png": _confusion(p, confusion)}
    if p.proba is not None and np.all(np.isfinite(p.proba)):
        curves = _curves(p)
        if curves:
            figures["roc_curve.png"] = _roc(curves)
            figures["pr_curve.png"] = _pr(curves)
    if calibration is not None:
        figures["calibration.png"] = _calibration(calibration)
    return figures


def _curves(p: Predictions) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, truth, score) of each curve to draw: the positive class, or one per class."""
    assert p.proba is not None and p.true_codes is not None
    y, n = p.true_codes, len(p)
    if p.is_binary:
        pos = p.positive_index
        assert pos is not None
        picked = [pos]
    else:
        support = np.bincount(y, minlength=len(p.classes))
        picked = [int(c) for c in np.argsort(-support, kind="stable")[:MAX_CURVES]]
    return [
        (str(json_label(p.classes[c])), y == c, p.proba[:, c])
        for c in picked
        if 0 < np.count_nonzero(y == c) < n
    ]


def _roc(curves: list[tuple[str, np.ndarray, np.ndarray]]) -> Figure:
    skm = sklearn()
    fig, ax = _figure("ROC curve")
    for label, truth, score in curves:
        fpr, tpr, _ = skm.roc_curve(truth, score)
        ax.plot(fpr, tpr, label=f"{label} (AUC {skm.auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize="small")
    return fig


def _pr(curves: list[tuple[str, np.ndarray, np.ndarray]]) -> Figure:
    skm = sklearn()
    fig, ax = _figure("Precision-recall curve")
    for label, truth, score in curves:
        precision, recall, _ = skm.precision_recall_curve(truth, score)
        ap = skm.average_precision_score(truth, score)
        ax.step(recall, precision, where="post", label=f"{label} (AP {ap:.3f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize="small")
    return fig


def _calibration(curve: dict[str, list[float]]) -> Figure:
    fig, ax = _figure("Calibration")
    ax.plot(
        [0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated"
    )
    ax.plot(curve["mean_predicted"], curve["fraction_positive"], marker="o", label="model")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="fraction of positives",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left", fontsize="small")
    return fig


def _confusion(p: Predictions, confusion: np.ndarray) -> Figure:
    fig, ax = _figure("Confusion matrix")
    k = len(p.classes)
    image = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set(xlabel="predicted", ylabel="true")
    if k <= _MAX_CELL_LABELS:
        labels = [str(json_label(c)) for c in p.classes]
        ax.set_xticks(
            range(k), labels, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center"
        )
        ax.set_yticks(range(k), labels)
        threshold = confusion.max() / 2 if confusion.size else 0
        for (i, j), count in np.ndenumerate(confusion):
            color = "white" if count > threshold else "black"
            ax.text(j, i, f"{count:d}", ha="center", va="center", color=color, fontsize="small")
    return fig


def _sample(n: int) -> np.ndarray:
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=MAX_POINTS, replace=False))


def regression_figures(p: Predictions) -> dict[str, Figure]:
    """Residuals against predictions, and predictions against targets, by file name."""
    rows = _sample(len(p))
    y, pred = p.y_true[rows], p.y_pred[rows]
    shown = "" if len(rows) == len(p) else f" ({len(rows):,} of {len(p):,} rows)"
    residuals, ax = _figure("Residuals" + shown)
    ax.scatter(pred, y - pred, s=6, alpha=0.4, linewidths=0)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="predicted", ylabel="residual (actual - predicted)")
    versus, ax = _figure("Predicted vs actual" + shown)
    ax.scatter(y, pred, s=6, alpha=0.4, linewidths=0)
    low, high = _range(y, pred)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual", ylabel="predicted")
    return {"residuals.png": residuals, "predicted_vs_actual.png": versus}


def _range(*arrays: Any) -> tuple[float, float]:
    values = np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays])
    return float(values.min()), float(values.max())
