"""loopml's own JSON protocol: ``POST /predict``.

Request (one of ``rows``, ``columns`` or ``inputs``)::

    {"rows": [{"age": 41, "plan": "pro"}], "proba": true, "key": "customer-17"}
    {"columns": {"age": [41, 29], "plan": ["pro", "free"]}}
    {"inputs": [[41, 1.5], [29, 0.2]]}  # positional rows, or a tensor batch

Response::

    {
        "prediction_ids": ["6f1c...-0"],
        "predictions": [1],
        "probabilities": [[0.2, 0.8]],
        "classes": [0, 1],
        "model": "churn",
        "version": 3,
        "route": "primary",
    }
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loopml.errors import LoopError, SignatureMismatch
from loopml.serving.protocols import BadRequest, Payload, dumps, loads
from loopml.serving.runtime import Method, ModelRuntime, Outputs

__all__ = ["error_body", "parse", "response_body"]

_FORMS = ("rows", "columns", "inputs")


def parse(body: bytes) -> Payload:
    """Read a ``/predict`` body.

    Raises:
        BadRequest: not JSON, or not exactly one of ``rows``, ``columns``, ``inputs``.
    """
    data = loads(body)
    if not isinstance(data, dict):
        raise BadRequest(
            'the body must be a JSON object such as {"rows": [{"feature": 1.0}]}, not '
            f"{type(data).__name__}"
        )
    given = [k for k in _FORMS if k in data]
    if len(given) != 1:
        raise BadRequest(
            "give exactly one of 'rows' (a list of objects), 'columns' (an object of lists) "
            f"or 'inputs' (a list of rows, or tensors); got {given or sorted(data)[:10]}"
        )
    form = given[0]
    value = data[form]
    proba = data.get("proba", False)
    if not isinstance(proba, bool):
        raise BadRequest(f"'proba' must be true or false, not {proba!r:.50}")
    key = data.get("key")
    if key is not None and not isinstance(key, str | int):
        raise BadRequest("'key' (the sticky-routing key) must be a string or an integer")
    method: Method = "predict_proba" if proba else "predict"
    key = None if key is None else str(key)
    if form == "rows":
        if isinstance(value, dict):
            value = [value]  # one row
        if not isinstance(value, list) or not value:
            raise BadRequest("'rows' must be a non-empty list of objects (column -> value)")
        return Payload("records", value, method, key)
    if form == "columns":
        if not isinstance(value, dict) or not value:
            raise BadRequest("'columns' must be a non-empty object of column name -> values")
        return Payload("columns", value, method, key)
    if isinstance(value, dict) and value:
        return Payload("tensors", value, method, key)
    if not isinstance(value, list) or not value:
        raise BadRequest("'inputs' must be a non-empty list of rows, or an object of tensors")
    return Payload("rows", value, method, key)


def response_body(
    outputs: Outputs, runtime: ModelRuntime, route: str, ids: Sequence[str]
) -> bytes:
    """The JSON answer."""
    body: dict[str, Any] = {
        "prediction_ids": ids,
        "predictions": outputs.predictions,
        "model": runtime.name,
        "version": runtime.version,
        "route": route,
    }
    if outputs.proba is not None:
        body["probabilities"] = outputs.proba
        body["classes"] = outputs.classes
    return dumps(body)


def error_body(exc: LoopError) -> bytes:
    """``{"error": {"code", "message", "problems"?}}``."""
    error: dict[str, Any] = {"code": exc.code, "message": str(exc)}
    if isinstance(exc, SignatureMismatch):
        error["problems"] = exc.problems
    return dumps({"error": error})
