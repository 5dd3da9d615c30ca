"""Scoring one chunk: what the model sees, its predictions as Arrow columns, and failures as data.

The same code runs in the driver (the local executor) and in Ray actors. A failure is returned as
a :class:`Failure` rather than raised, so that it crosses a process boundary intact (an
exception's extra attributes, such as ``SignatureMismatch.problems``, do not survive pickling)
and the driver, which knows the chunk's row offset, raises the error the user sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, InvalidData, LoopError, SignatureMismatch, from_code

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.models.predictor import Predictor

__all__ = [
    "PREDICTION",
    "PROBA_PREFIX",
    "Failure",
    "check_model",
    "model_inputs",
    "proba_names",
    "score",
]

PREDICTION = "prediction"
"""The output column holding the model's prediction (``prediction_<name>`` for several)."""
PROBA_PREFIX = "proba_"
"""Probability columns are ``proba_<class label>``."""


@dataclass(frozen=True)
class Failure:
    """Why a chunk could not be scored, as plain data.

    Attributes:
        code: the :class:`~loopml.errors.LoopError` code, or None when the model itself raised
            some other exception.
        message: the error's message.
        error_type: the exception's class name.
        problems: a signature mismatch's problems (column, expected, got).
        cause: the exception itself, in the process that caught it (never sent to another).
    """

    code: str | None
    message: str
    error_type: str
    problems: list[dict[str, object]] = field(default_factory=list)
    cause: BaseException | None = field(default=None, compare=False)

    @classmethod
    def of(cls, exc: Exception) -> Failure:
        if isinstance(exc, LoopError):
            problems = list(exc.problems) if isinstance(exc, SignatureMismatch) else []
            return cls(exc.code, exc.message, type(exc).__name__, problems, exc)
        text = str(exc).strip() or repr(exc)
        return cls(None, text, type(exc).__name__, [], exc)

    def detached(self) -> Failure:
        """This failure without its exception, to send to another process."""
        return Failure(self.code, self.message, self.error_type, self.problems)

    def error(self, where: str) -> LoopError:
        """The error to raise in the driver; ``where`` names the rows (and the input)."""
        if self.code == SignatureMismatch.code:
            return SignatureMismatch(f"{where}: {self.message}", self.problems)
        if self.code is not None:
            return from_code(self.code, f"{where}: {self.message}")
        return InvalidData(
            f"the model failed on {where}: {self.error_type}: {self.message}; check those rows "
            "(missing values, values outside what the model was trained on)"
        )


def check_model(predictor: Predictor, *, proba: bool) -> None:
    """Refuse, before any data is read, a model batch scoring cannot run.

    Raises:
        InvalidArgument: the model takes tensors, or ``proba`` for a model without
            ``predict_proba``.
    """
    signature = predictor.signature
    if signature is not None and not signature.is_tabular:
        raise InvalidArgument(
            f"the model {predictor.uri} takes tensors ({signature}); batch scoring reads tables "
            "(CSV, Parquet, datasets), so it scores models with a table signature or none"
        )
    if proba and not predictor.has_predict_proba:
        raise InvalidArgument(
            f"the model {predictor.uri} ({predictor.manifest.model_class or predictor.flavor}) "
            "has no predict_proba; score without probabilities"
        )


def model_inputs(predictor: Predictor, batch: pa.RecordBatch) -> pa.RecordBatch:
    """The columns of ``batch`` the model reads: its signature's (those present: the signature
    check reports missing ones), or every column for a model saved without a signature."""
    signature = predictor.signature
    if signature is None:
        return batch
    present = set(batch.schema.names)
    return batch.select([n for n in signature.input_names if n in present])


def proba_names(predictor: Predictor, width: int) -> list[str]:
    """``proba_<class>`` for each probability column (``proba_0``... when the model does not
    name its classes)."""
    try:
        classes = [str(c) for c in predictor.classes_]
    except AttributeError:
        classes = []
    if len(classes) != width:
        classes = [str(i) for i in range(width)]
    return [f"{PROBA_PREFIX}{c}" for c in classes]


def score(
    predictor: Predictor, inputs: pa.RecordBatch, *, proba: bool
) -> pa.RecordBatch | Failure:
    """The prediction columns (and ``proba_<class>`` columns) for one chunk, one row per input
    row; or the :class:`Failure` that stopped it."""
    import pyarrow as pa

    try:
        frame = inputs.to_pandas()
        columns = prediction_columns(predictor.predict(frame, extra="drop"), inputs.num_rows)
        if proba:
            columns.update(_proba_columns(predictor, frame, inputs.num_rows))
        return pa.RecordBatch.from_pydict(columns)
    except Exception as exc:  # any model error becomes data; the driver raises it
        return Failure.of(exc)


def prediction_columns(predictions: Any, rows: int) -> dict[str, pa.Array]:
    """What ``predict`` returned as named Arrow columns: ``prediction`` for one value per row,
    ``prediction_<name>`` (``prediction_0``...) for several.

    Raises:
        InvalidData: the output has another number of rows, or more than two dimensions.
    """
    import numpy as np
    import pandas as pd

    named: dict[str, Any]
    if isinstance(predictions, pd.DataFrame):
        named = {str(c): predictions[c].to_numpy() for c in predictions.columns}
    elif isinstance(predictions, pd.Series):
        named = {"": predictions.to_numpy()}
    elif isinstance(predictions, Mapping):
        named = {str(k): np.asarray(v) for k, v in predictions.items()}
    else:
        array = np.asarray(predictions)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 1:
            named = {"": array}
        elif array.ndim == 2:
            named = {str(i): array[:, i] for i in range(array.shape[1])}
        else:
            raise InvalidData(
                f"the model returned an array of shape {array.shape}; batch scoring writes one "
                "or more columns per row (a 1-D or 2-D output)"
            )
    if len(named) == 1:
        named = {"": next(iter(named.values()))}
    out: dict[str, pa.Array] = {}
    for name, values in named.items():
        if len(values) != rows:
            raise InvalidData(
                f"the model returned {len(values)} predictions for {rows} rows; batch scoring "
                "needs one per row"
            )
        out[f"{PREDICTION}_{name}" if name else PREDICTION] = _arrow(values)
    return out


def _proba_columns(predictor: Predictor, frame: Any, rows: int) -> dict[str, pa.Array]:
    import numpy as np

    proba = np.asarray(predictor.predict_proba(frame, extra="drop"))
    if proba.ndim == 1:
        proba = proba.reshape(-1, 1)
    if proba.ndim != 2 or proba.shape[0] != rows:
        raise InvalidData(
            f"the model's predict_proba returned shape {proba.shape} for {rows} rows; expected "
            f"({rows}, number of classes)"
        )
    names = proba_names(predictor, proba.shape[1])
    return {name: _arrow(proba[:, i]) for i, name in enumerate(names)}


def _arrow(values: Any) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    array = np.asarray(values)
    if array.dtype.kind in "OU":  # labels as Python objects or NumPy strings: nulls stay null
        return pa.array(array.tolist() if array.dtype.kind == "U" else array, from_pandas=True)
    return pa.array(array)
