"""MLflow's scoring protocol (``mlflow models serve``): ``POST /invocations``, ``/ping``,
``/health``, ``/version``, so callers written for MLflow switch without changes.

JSON bodies hold exactly one of ``dataframe_split``, ``dataframe_records``, ``instances`` or
``inputs`` (plus an optional ``params``, accepted and ignored); ``text/csv`` (with a header
row) and ``application/vnd.apache.parquet`` bodies are tables. The answer is
``{"predictions": [...]}``; errors are ``{"error_code", "message"}`` with MLflow's codes.
Columns the signature does not list are dropped, as MLflow does.
"""

from __future__ import annotations

from typing import Any

from loopml.errors import LoopError, SignatureMismatch
from loopml.serving.protocols import (
    BadRequest,
    Payload,
    UnsupportedMediaType,
    dumps,
    loads,
    table_from_bytes,
)
from loopml.serving.runtime import Outputs

__all__ = ["error_body", "parse", "response_body"]

_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
JSON = "application/json"


def media_type(content_type: str) -> str:
    """The media type of a ``Content-Type`` header, checked as MLflow does: a ``charset``
    parameter is fine (UTF-8 only), any other parameter is refused.

    Raises:
        UnsupportedMediaType: not JSON, CSV or Parquet, or an unknown parameter.
    """
    parts = [p.strip() for p in content_type.split(";")]
    kind = parts[0].lower()
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() != "charset" or value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise UnsupportedMediaType(
                f"content type parameter {param!r} is not supported; send "
                "'application/json' (or '; charset=utf-8')"
            )
    if kind not in (JSON, CSV, PARQUET):
        raise UnsupportedMediaType(
            f"content type {kind!r} is not supported; send {JSON}, {CSV} (with a header row) or "
            f"{PARQUET}"
        )
    return kind


def parse(body: bytes, content_type: str) -> Payload:
    """Read an ``/invocations`` body.

    Raises:
        UnsupportedMediaType: see :func:`media_type`.
        BadRequest: malformed JSON, not exactly one input key, or an unreadable CSV/Parquet.
    """
    kind = media_type(content_type)
    if kind != JSON:
        return Payload("frame", table_from_bytes(body, kind), lenient=True)
    data = loads(body)
    if not isinstance(data, dict):
        raise BadRequest(_keys_message(data))
    given = [k for k in _KEYS if k in data]
    unknown = sorted(set(data) - set(_KEYS) - {"params"})
    if len(given) != 1 or unknown:
        raise BadRequest(_keys_message(data))
    key = given[0]
    value = data[key]
    if key == "dataframe_split":
        return _split(value)
    if key == "dataframe_records":
        if not isinstance(value, list) or not value:
            raise BadRequest("'dataframe_records' must be a non-empty list of objects")
        return Payload("records", value, lenient=True)
    if key == "instances":
        if not isinstance(value, list) or not value:
            raise BadRequest("'instances' must be a non-empty list of rows or objects")
        if isinstance(value[0], dict):
            return Payload("records", value, lenient=True)
        return Payload("rows", value, lenient=True)
    # inputs: a dict of column (or tensor) name -> values, or a tensor batch
    if isinstance(value, dict) and value:
        if all(isinstance(v, list) for v in value.values()):
            return Payload("columns", value, lenient=True)
        return Payload("columns", {k: [v] for k, v in value.items()}, lenient=True)
    if isinstance(value, list) and value:
        return Payload("rows", value, lenient=True)
    raise BadRequest("'inputs' must be an object of column -> values, or a list of rows")


def _split(value: Any) -> Payload:
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise BadRequest(
            "'dataframe_split' must be an object with 'columns' (a list of names) and 'data' "
            "(a list of rows)"
        )
    columns, rows = value.get("columns"), value["data"]
    if not rows:
        raise BadRequest("'dataframe_split' has no rows in 'data'")
    if columns is None:
        return Payload("rows", rows, lenient=True)
    if not isinstance(columns, list) or not all(isinstance(c, str | int) for c in columns):
        raise BadRequest("'dataframe_split.columns' must be a list of column names")
    width = len(columns)
    if not all(isinstance(r, list) and len(r) == width for r in rows):
        raise BadRequest(f"every row of 'dataframe_split.data' must be a list of {width} values")
    return Payload("split", ([str(c) for c in columns], rows), lenient=True)


def _keys_message(data: Any) -> str:
    got = sorted(data)[:10] if isinstance(data, dict) else type(data).__name__
    return (
        "The input must be a JSON dictionary with exactly one of the input fields "
        f"{set(_KEYS)} (and optionally 'params'); got {got}"
    )


def response_body(outputs: Outputs) -> bytes:
    """``{"predictions": [...]}``."""
    return dumps({"predictions": outputs.predictions})


def error_body(exc: LoopError) -> bytes:
    """MLflow's error shape: ``BAD_REQUEST`` for malformed bodies, ``INVALID_PARAMETER_VALUE``
    for input that breaks the signature (with ``problems``)."""
    if isinstance(exc, SignatureMismatch):
        return dumps(
            {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": str(exc),
                "problems": exc.problems,
            }
        )
    code = "BAD_REQUEST" if exc.http_status < 500 else "INTERNAL_ERROR"
    return dumps({"error_code": code, "message": str(exc)})
