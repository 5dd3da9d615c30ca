"""What an evaluation starts from: the model, the data, the target and the task.

Each function checks its input and says what to do when it is wrong, before anything is
predicted: a model without ``predict``, a ``datasets:/`` URI that does not exist, a target that
is not a column or has missing values, a task that does not fit the target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml._frames import TABLE_TYPES, as_pandas, is_table
from loopml.errors import InvalidArgument
from loopml.models.evaluation.predictions import CLASSIFICATION, REGRESSION, Task, json_label

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion

__all__ = [
    "MAX_INTEGER_CLASSES",
    "check_positive_label",
    "has_probabilities",
    "infer_task",
    "load_data",
    "model_classes",
    "resolve_model",
    "split_target",
]

MAX_INTEGER_CLASSES = 20
"""An integer target with at most this many distinct values is taken as class labels."""


def resolve_model(
    model: Any,
    client: Callable[[], Client],
    *,
    project: str | None = None,
    trusted: bool = False,
) -> tuple[Any, str | None]:
    """The model object, and its URI when it was given as one.

    Args:
        model: an object with ``predict`` (and optionally ``predict_proba`` and ``classes_``),
            or a model URI (``models:/churn/3``, ``models:/churn@champion``, ``runs:/...``),
            loaded with ``loopml.models.load_model``.
        client: gives the client to load with.
        project: the project of a ``models:/`` URI.
        trusted: load a model whose flavor runs stored code (see ``load_model``).

    Raises:
        InvalidArgument: the model has no ``predict``, or this loopml cannot load URIs yet.
    """
    uri = None
    if isinstance(model, str):
        uri = model
        model = _load(uri, client(), project, trusted)
    if not callable(getattr(model, "predict", None)):
        raise InvalidArgument(
            f"the model must have a predict method (or be a model URI such as "
            f"'models:/churn/3'), not {type(model).__name__}"
        )
    return model, uri


def model_classes(model: Any) -> list[Any] | None:
    """The model's classes, in the order of its probability columns: ``classes_`` of the
    model, or of the framework's model inside a loaded loopml model (``native``)."""
    for owner in (model, getattr(model, "native", None)):
        classes = getattr(owner, "classes_", None)
        if classes is not None:
            return list(classes)
    return None


def has_probabilities(model: Any) -> bool:
    """Whether the model gives class probabilities (a loaded loopml model says so itself)."""
    return callable(getattr(model, "predict_proba", None)) and bool(
        getattr(model, "has_predict_proba", True)
    )


def _load(uri: str, client: Client, project: str | None, trusted: bool) -> Any:
    from loopml.models.loading import load_model

    return load_model(uri, client=client, project=project, trusted=trusted)


def load_data(
    data: Any, *, client: Callable[[], Client], project: str | None
) -> tuple[pd.DataFrame, DatasetVersion | None]:
    """The evaluation data as a pandas DataFrame, and its dataset version when it is one.

    Raises:
        InvalidArgument: not a table or a ``datasets:/`` URI, or no rows.
        DatasetNotFound: the URI names no dataset version.
    """
    version = None
    if isinstance(data, str):
        if not data.startswith("datasets:/"):
            raise InvalidArgument(
                f"data must be {TABLE_TYPES}, or a 'datasets:/name/version' URI, not the string "
                f"{data!r}; version a file first with loopml.log_dataset(path, name)"
            )
        from loopml.data.datasets import get_dataset, load_dataset

        c = client()
        version = get_dataset(data, project=project, client=c)
        frame = load_dataset(version, client=c)
    elif is_table(data):
        frame = as_pandas(data, what="the evaluation data")
    else:
        raise InvalidArgument(
            f"data must be {TABLE_TYPES}, or a 'datasets:/name/version' URI, "
            f"not {type(data).__name__}"
        )
    if len(frame) == 0:
        where = version.uri if version is not None else "the evaluation data"
        raise InvalidArgument(f"{where} has no rows; evaluate on at least one row")
    return frame, version


def split_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series[Any]]:
    """The feature columns (every column but the target) and the target column.

    Raises:
        InvalidArgument: the target is not a column, has missing values, or is the only column.
    """
    if not isinstance(target, str) or not target:
        raise InvalidArgument(f"target must be the name of a column, not {target!r}")
    if target not in frame.columns:
        names = [str(c) for c in frame.columns]
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        raise InvalidArgument(
            f"target column {target!r} is not in the data; its columns are {shown}"
        )
    y = frame[target]
    missing = int(y.isna().sum())
    if missing:
        raise InvalidArgument(
            f"target column {target!r} has {missing} missing value{'s' * (missing != 1)} in "
            f"{len(frame)} rows; drop or fill those rows before evaluating"
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise InvalidArgument(f"the data holds only the target column {target!r}: no features")
    return features, y


def infer_task(y: pd.Series[Any], model: Any, task: str | None) -> tuple[Task, str | None]:
    """The task, checked against the target, and how it was inferred when it was not given.

    Without ``task``: classification for a model with ``classes_``, and for text, boolean,
    categorical or integer targets with at most ``MAX_INTEGER_CLASSES`` distinct values;
    regression for other numbers.

    Raises:
        InvalidArgument: an unknown task, regression on a non-numeric target, or classification
            of a target with fractional values.
    """
    import pandas as pd

    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if task is not None:
        if task not in (CLASSIFICATION, REGRESSION):
            raise InvalidArgument(
                f"task must be 'classification' or 'regression' (or None to infer it), "
                f"not {task!r}"
            )
        if task == REGRESSION and not numeric:
            raise InvalidArgument(
                f"task='regression' needs a numeric target, but {y.name!r} holds {y.dtype} "
                "values; use task='classification'"
            )
        if task == CLASSIFICATION and numeric and not _integral(y):
            example = y[np.asarray(y) % 1 != 0].iloc[0]
            raise InvalidArgument(
                f"task='classification' needs class labels, but {y.name!r} holds fractional "
                f"values (such as {example!r}); use task='regression'"
            )
        return task, None
    if model_classes(model) is not None:
        return CLASSIFICATION, "task inferred as classification: the model has classes_"
    if not numeric:
        return CLASSIFICATION, f"task inferred as classification from the {y.dtype} target"
    if pd.api.types.is_integer_dtype(y):
        distinct = int(y.nunique())
        if distinct <= MAX_INTEGER_CLASSES:
            return CLASSIFICATION, (
                f"task inferred as classification: the integer target has {distinct} distinct "
                "values (pass task='regression' if they are amounts)"
            )
    return REGRESSION, "task inferred as regression from the numeric target"


def check_positive_label(positive_label: Any, task: Task, y: pd.Series[Any], model: Any) -> None:
    """Refuse a ``positive_label`` that cannot be right, before anything is predicted.

    Raises:
        InvalidArgument: a positive label for regression, or one that is neither a class of the
            model nor a value of the target.
    """
    import pandas as pd

    if positive_label is None:
        return
    if task != CLASSIFICATION:
        raise InvalidArgument("positive_label is for classification, not regression")
    labels = list(model_classes(model) or []) + list(pd.unique(y))
    if positive_label not in labels:
        shown = ", ".join(repr(json_label(v)) for v in list(dict.fromkeys(labels))[:12])
        raise InvalidArgument(
            f"positive_label {positive_label!r} is not a class; the classes are {shown}"
        )


def _integral(y: pd.Series[Any]) -> bool:
    values = np.asarray(y, dtype=np.float64)
    return bool(np.all(np.mod(values, 1) == 0))


def model_columns(model: Any, features: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The columns a model with a tabular signature takes, when the data has every one of them
    and more (a slice-only or id column): the others stay out of ``predict``, with a note."""
    from loopml.schema import Schema

    inputs_ = getattr(getattr(model, "signature", None), "inputs", None)
    if not isinstance(inputs_, Schema):
        return features
    wanted = inputs_.names
    present = {str(c) for c in features.columns}
    if not set(wanted) <= present or len(wanted) == len(present):
        return features
    left_out = sorted(present - set(wanted))
    notes.append(f"columns outside the model's signature not passed to it: {', '.join(left_out)}")
    return features[[c for c in features.columns if str(c) in set(wanted)]]
