"""scikit-learn to ONNX with skl2onnx, checked: the converted model must agree with the original.

Log the result like any model; it loads without ``trusted=True`` and runs in ONNX Runtime::

    onx = to_onnx(pipeline, X_train.head(200))
    loopml.models.log_model(onx, "model-onnx", input_example=X_train.head(5))

(Exporting is a separate call, not a ``log_model`` option, so that a conversion failure or
disagreement is reported on its own and never stops the original model from being logged.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from loopml._lazy import require
from loopml.errors import InvalidArgument
from loopml.models import _inputs
from loopml.models.flavors.onnx import INPUT_COLUMNS_KEY

__all__ = ["to_onnx"]


def to_onnx(
    model: Any,
    sample: Any,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    target_opset: int | None = None,
) -> Any:
    """Convert a fitted scikit-learn model to ONNX and check it against the original.

    All-numeric input becomes one ``float32`` tensor ``X`` of shape ``[None, n_features]``;
    a table with text columns becomes one ``[None, 1]`` input per column (the column names are
    kept in the model's metadata so the ONNX flavor feeds each from its column). Classifiers
    output ``label`` and a ``probabilities`` tensor; a boolean target's labels come out as 0
    and 1.

    Args:
        model: a fitted estimator or pipeline that skl2onnx supports.
        sample: input rows (a DataFrame, dict of columns, records or 2-D array) used to fix
            the input types and to compare predictions.
        rtol, atol: the tolerance for probabilities and regression outputs (float32 rounding
            makes exact equality impossible). Class labels must match exactly.
        target_opset: the ONNX opset to target (default: skl2onnx's latest).

    Returns:
        The ``onnx.ModelProto``.

    Raises:
        MissingExtra: skl2onnx or onnxruntime is not installed (``loopml[onnx]``).
        InvalidArgument: skl2onnx cannot convert the model, or the converted model disagrees
            with scikit-learn on ``sample`` (the message gives the worst row and difference).
    """
    skl2onnx = require("skl2onnx", "onnx", "converting a scikit-learn model to ONNX")
    from sklearn.base import is_classifier

    frame, array = _sample(sample)
    options = {"zipmap": False} if is_classifier(model) else None
    columns: list[str] | None = None
    try:
        if array is not None:
            onx = skl2onnx.to_onnx(model, array[:1], options=options, target_opset=target_opset)
        else:
            assert frame is not None
            columns = [str(c) for c in frame.columns]
            types = [(c, _column_type(skl2onnx, frame[c])) for c in frame.columns]
            onx = skl2onnx.to_onnx(
                model, initial_types=types, options=options, target_opset=target_opset
            )
    except Exception as exc:  # skl2onnx raises RuntimeError, NotImplementedError, TypeError...
        raise InvalidArgument(
            f"skl2onnx cannot convert {type(model).__name__}: {type(exc).__name__}: {exc}"
        ) from exc
    if columns is not None:
        prop = onx.metadata_props.add()
        prop.key, prop.value = INPUT_COLUMNS_KEY, json.dumps(columns)
    _compare(model, onx, sample, frame, array, rtol=rtol, atol=atol)
    return onx


def _sample(sample: Any) -> tuple[Any, np.ndarray[Any, Any] | None]:
    array = _inputs.as_array(sample)
    if array is not None:
        if array.ndim != 2:
            raise InvalidArgument(f"the sample must be a table or 2-D array, not {array.ndim}-D")
        return None, array.astype(np.float32)
    frame = _inputs.as_frame(sample)
    if frame is None or frame.empty:
        raise InvalidArgument("the sample must be a non-empty table or 2-D array")
    if all(frame[c].dtype.kind in "biuf" for c in frame.columns):
        return frame, frame.to_numpy(dtype=np.float32)
    return frame, None


def _column_type(skl2onnx: Any, column: Any) -> Any:
    types = skl2onnx.common.data_types
    kind = column.dtype.kind
    if kind in "iu" or kind == "b":
        return types.Int64TensorType([None, 1])
    if kind == "f":
        return types.FloatTensorType([None, 1])
    return types.StringTensorType([None, 1])


def _compare(
    model: Any,
    onx: Any,
    sample: Any,
    frame: Any,
    array: np.ndarray[Any, Any] | None,
    *,
    rtol: float,
    atol: float,
) -> None:
    from loopml.models.flavors.onnx import OnnxFlavor

    columns = [p.value for p in onx.metadata_props if p.key == INPUT_COLUMNS_KEY]
    options = {"input_columns": json.loads(columns[0])} if columns else {}
    loaded = OnnxFlavor().wrap(onx, Path(), options)
    onnx_input = array if array is not None else frame
    original = frame if frame is not None else sample
    name = type(model).__name__
    expected = np.asarray(model.predict(original))
    got = np.asarray(loaded.predict(onnx_input)).reshape(expected.shape)
    if expected.dtype.kind in "fc":
        _close(name, "predictions", expected, got, rtol=rtol, atol=atol)
    else:
        if expected.dtype.kind == "b":  # ONNX labels of a boolean target are 0 and 1
            expected = expected.astype(np.int64)
        wrong = np.flatnonzero(expected.astype(str) != got.astype(str))
        if wrong.size:
            row = int(wrong[0])
            raise InvalidArgument(
                f"the ONNX conversion of {name} disagrees with scikit-learn on {wrong.size} of "
                f"{expected.size} sample rows (row {row}: {expected[row]!r} vs {got[row]!r}); "
                "keep the scikit-learn model"
            )
    if hasattr(model, "predict_proba") and loaded.predict_proba is not None:
        want = np.asarray(model.predict_proba(original))
        have = np.asarray(loaded.predict_proba(onnx_input)).reshape(want.shape)
        _close(name, "probabilities", want, have, rtol=rtol, atol=atol)


def _close(
    name: str,
    what: str,
    expected: np.ndarray[Any, Any],
    got: np.ndarray[Any, Any],
    *,
    rtol: float,
    atol: float,
) -> None:
    expected = expected.astype(np.float64)
    got = got.astype(np.float64)
    if np.allclose(expected, got, rtol=rtol, atol=atol, equal_nan=True):
        return
    diff = np.abs(expected - got)
    worst = np.unravel_index(int(np.nanargmax(diff)), diff.shape)
    raise InvalidArgument(
        f"the ONNX conversion of {name} disagrees with scikit-learn: its {what} differ by up to "
        f"{float(diff[worst]):.3g} (row {int(worst[0])}: {float(expected[worst]):.6g} vs "
        f"{float(got[worst]):.6g}; tolerance rtol={rtol}, atol={atol}); keep the scikit-learn "
        "model, or pass larger rtol/atol if float32 rounding explains it"
    )
