"""What a model predicted on the evaluated rows, kept once and reused by every metric.

:class:`Predictions` holds the targets, the predictions and (for a classifier with
``predict_proba``) the class probabilities of one evaluation. For classification it also holds the
labels encoded as integer codes into :attr:`Predictions.classes`, so that metrics, slices and the
bootstrap work on small integer arrays instead of comparing labels again and again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "Predictions",
    "Task",
    "as_labels",
    "as_probabilities",
    "as_values",
    "json_label",
]

Task = Literal["classification", "regression"]
CLASSIFICATION: Task = "classification"
REGRESSION: Task = "regression"


@dataclass(frozen=True, eq=False)
class Predictions:
    """A model's outputs on the evaluated rows, in row order.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        y_true: the target values (labels or numbers), one per row.
        y_pred: what ``model.predict`` returned, one per row.
        proba: classification only: the class probabilities, one column per entry of
            :attr:`classes` (None when the model has no ``predict_proba``).
        classes: classification only: every label, in the order of the columns of
            :attr:`proba` (the model's ``classes_``, then labels it never saw).
        positive_label: binary classification only: the label counted as positive.
        true_codes: classification only: ``y_true`` as indices into :attr:`classes`.
        pred_codes: classification only: ``y_pred`` as indices into :attr:`classes`.
    """

    task: Task
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray | None = None
    classes: tuple[Any, ...] = ()
    positive_label: Any = None
    true_codes: np.ndarray | None = None
    pred_codes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y_true.shape[0])

    @property
    def is_binary(self) -> bool:
        """Whether this is a classification with exactly two classes."""
        return self.task == CLASSIFICATION and len(self.classes) == 2

    @property
    def positive_index(self) -> int | None:
        """The column of the positive class in :attr:`proba` (binary only, else None)."""
        if not self.is_binary:
            return None
        return self.classes.index(self.positive_label)

    @classmethod
    def for_regression(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Predictions:
        """Regression predictions (both arrays become float64)."""
        return cls(REGRESSION, y_true.astype(np.float64), y_pred.astype(np.float64))

    @classmethod
    def for_classification(
        cls,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        *,
        proba: np.ndarray | None = None,
        model_classes: Sequence[Any] | None = None,
        positive_label: Any = None,
        notes: list[str] | None = None,
    ) -> Predictions:
        """Encode classification outputs.

        Args:
            y_true: the target labels.
            y_pred: the predicted labels.
            proba: the probabilities, one column per entry of ``model_classes`` (or, without
                them, per sorted label).
            model_classes: the classes the model knows (``classes_``), in ``proba`` order.
            positive_label: the positive label of a binary problem (default: the second class,
                which is ``1`` or ``True`` for 0/1 and boolean targets).
            notes: a list to which remarks on the labels are appended.

        Raises:
            InvalidArgument: fewer than two classes, predictions that share no label with the
                target, a ``positive_label`` that is not a class, or probabilities that do not
                fit the classes.
        """
        import pandas as pd

        remarks = notes if notes is not None else []
        if model_classes is not None:
            known = [json_label(c) if isinstance(c, np.generic) else c for c in model_classes]
            index = pd.Index(known)
            true_codes = index.get_indexer(y_true)
            pred_codes = index.get_indexer(y_pred)
            unknown = np.concatenate([y_true[true_codes < 0], y_pred[pred_codes < 0]])
            if unknown.size:  # labels the model never saw (or of another type than its classes)
                extra = [v for v in pd.unique(_objects(unknown)) if v not in set(_hashable(known))]
                remarks.append(
                    f"labels {_show(extra)} are not classes of the model; "
                    "their probability counts as 0"
                )
                known += _sorted(extra)
                index = pd.Index(known, dtype=object)
                true_codes = index.get_indexer(_objects(y_true))
                pred_codes = index.get_indexer(_objects(y_pred))
            classes = tuple(known)
        else:
            seen = pd.unique(np.concatenate([_objects(y_true), _objects(y_pred)]))
            classes = tuple(_sorted(list(seen)))
            index = pd.Index(list(classes), dtype=object)
            true_codes = index.get_indexer(_objects(y_true))
            pred_codes = index.get_indexer(_objects(y_pred))
        true_codes = true_codes.astype(np.int64, copy=False)
        pred_codes = pred_codes.astype(np.int64, copy=False)
        if len(classes) < 2:
            raise InvalidArgument(
                f"classification needs at least two classes, but the target and the predictions "
                f"only hold {_show(classes)}; evaluate on data with more than one class"
            )
        k = len(classes)
        if not np.any(np.bincount(true_codes, minlength=k) * np.bincount(pred_codes, minlength=k)):
            raise InvalidArgument(
                f"the model predicts {_show(pd.unique(_objects(y_pred)))} but the target holds "
                f"{_show(pd.unique(_objects(y_true)))}: no predicted label is a target label. "
                "Is `target` the right column, or does the model need its labels encoded?"
            )
        if proba is not None:
            proba = _fit_proba(proba, len(classes), model_classes is not None, remarks)
        positive: Any = None
        if len(classes) == 2:
            positive = classes[1] if positive_label is None else positive_label
            if positive not in classes:
                raise InvalidArgument(
                    f"positive_label {positive_label!r} is not a class; the classes are "
                    f"{_show(classes)}"
                )
        elif positive_label is not None:
            raise InvalidArgument(
                f"positive_label is for binary classification, but there are {len(classes)} "
                f"classes ({_show(classes)}); drop it to get macro and weighted averages"
            )
        return cls(
            CLASSIFICATION,
            y_true,
            y_pred,
            proba=proba,
            classes=classes,
            positive_label=positive,
            true_codes=true_codes,
            pred_codes=pred_codes,
        )

    def take(self, rows: np.ndarray) -> Predictions:
        """The predictions of some rows only (a slice, or one bootstrap resample)."""
        return Predictions(
            self.task,
            self.y_true[rows],
            self.y_pred[rows],
            proba=None if self.proba is None else self.proba[rows],
            classes=self.classes,
            positive_label=self.positive_label,
            true_codes=None if self.true_codes is None else self.true_codes[rows],
            pred_codes=None if self.pred_codes is None else self.pred_codes[rows],
        )

    def same_rows(self, other: Predictions) -> bool:
        """Whether ``other`` holds predictions for the same targets, in the same order."""
        return (
            self.task == other.task
            and len(self) == len(other)
            and bool(np.array_equal(self.y_true, other.y_true))
        )


def _fit_proba(
    proba: np.ndarray, n_classes: int, from_model: bool, notes: list[str]
) -> np.ndarray:
    """Probabilities with one column per class (missing classes get probability 0)."""
    if proba.shape[1] > n_classes or (not from_model and proba.shape[1] != n_classes):
        raise InvalidArgument(
            f"predict_proba returned {proba.shape[1]} columns for {n_classes} classes; give the "
            "model a `classes_` attribute naming the column of each class"
        )
    if not from_model:
        notes.append("the model has no classes_: probability columns are taken as sorted labels")
    if proba.shape[1] < n_classes:
        pad = np.zeros((proba.shape[0], n_classes - proba.shape[1]), dtype=proba.dtype)
        proba = np.hstack([proba, pad])
    return proba


def as_labels(values: Any, n_rows: int, what: str) -> np.ndarray:
    """One-dimensional labels from what a model's ``predict`` returned.

    Raises:
        InvalidArgument: not one value per row.
    """
    arr = _column(values, what)
    if arr.ndim != 1 or arr.shape[0] != n_rows:
        raise InvalidArgument(
            f"{what} returned an array of shape {arr.shape} for {n_rows} rows; evaluate needs one "
            "prediction per row (multi-output models are not supported)"
        )
    return arr


def as_values(values: Any, n_rows: int, what: str) -> np.ndarray:
    """One float per row from a regressor's ``predict``.

    Raises:
        InvalidArgument: not one number per row, or missing (NaN) predictions.
    """
    arr = as_labels(values, n_rows, what)
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"{what} returned {arr.dtype} values, not numbers; is this a classifier? "
            "Pass task='classification'"
        ) from exc
    missing = int(np.isnan(out).sum())
    if missing:
        raise InvalidArgument(f"{what} returned {missing} missing (NaN) predictions")
    return out


def as_probabilities(values: Any, n_rows: int) -> tuple[np.ndarray, list[Any] | None]:
    """Class probabilities from ``predict_proba``, and their columns' labels when it says.

    A one-dimensional result is taken as the probability of the second class of two.

    Raises:
        InvalidArgument: not one row of probabilities per row.
    """
    columns = None
    if type(values).__module__.startswith("pandas") and hasattr(values, "columns"):
        columns = list(values.columns)
    arr = np.asarray(values)
    if arr.dtype.kind != "f":  # float32 stays float32: its rounding is the model's
        arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = np.column_stack([1.0 - arr, arr])
    if arr.ndim != 2 or arr.shape[0] != n_rows:
        raise InvalidArgument(
            f"predict_proba returned an array of shape {arr.shape} for {n_rows} rows; it should "
            "return one row of class probabilities per input row"
        )
    return arr, columns


def json_label(value: Any) -> Any:
    """A label as a JSON-ready value (numpy scalars become Python ones)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _column(values: Any, what: str) -> np.ndarray:
    if hasattr(values, "columns"):  # a one-column DataFrame (a loopml Predictor's output)
        if len(values.columns) != 1:
            raise InvalidArgument(
                f"{what} returned {len(values.columns)} columns; evaluate needs one prediction "
                "per row"
            )
        values = values[values.columns[0]]
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def _objects(values: np.ndarray) -> np.ndarray:
    return values if values.dtype == object else values.astype(object)


def _hashable(values: Sequence[Any]) -> list[Any]:
    return [json_label(v) if isinstance(v, np.generic) else v for v in values]


def _sorted(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:  # labels of mixed types keep their order of appearance
        return values


def _show(values: Sequence[Any] | np.ndarray | pd.Index[Any], limit: int = 6) -> str:
    items = [repr(json_label(v)) for v in list(values)[:limit]]
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return "[" + ", ".join(items) + more + "]"
