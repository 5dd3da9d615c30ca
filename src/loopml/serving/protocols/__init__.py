"""The wire protocols one server speaks: loopml's own JSON (``/predict``), the Open Inference
Protocol v2 (``/v2/...``) and MLflow's scoring protocol (``/invocations``).

Each protocol module parses a request body into a :class:`Payload` (the rows, independent of
which model will answer), and formats a model's :class:`~loopml.serving.runtime.Outputs`, or an
error, the way that protocol's clients expect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

from loopml.errors import LoopError, PayloadTooLarge, SignatureMismatch
from loopml.serving.inputs import Decoded, columns_from_records
from loopml.serving.runtime import Method, ModelRuntime

__all__ = [
    "BadRequest",
    "Payload",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "dumps",
    "loads",
    "tabular_columns",
    "table_from_bytes",
]


class BadRequest(LoopError):
    """The request is malformed for its protocol (HTTP 400)."""

    code = "BAD_REQUEST"
    http_status = 400


class UnsupportedMediaType(LoopError):
    """The body's content type is not one the route reads (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


Kind = Literal["columns", "records", "rows", "split", "tensors", "frame"]


@dataclass(slots=True)
class Payload:
    """What a request asks for, before a model is chosen.

    Attributes:
        kind: ``columns`` (a dict of column lists), ``records`` (a list of dicts), ``split``
            (a pair: column names, positional rows), ``rows``
            (positional rows, or a tensor batch), ``tensors`` (a dict of named arrays) or
            ``frame`` (a DataFrame, from CSV or Parquet).
        data: the rows in that shape.
        method: ``predict`` or ``predict_proba`` (both are returned for the latter).
        key: the sticky-routing key, when the request gives one.
        request_id: the caller's request id (echoed by the v2 protocol).
        lenient: drop columns the signature does not list (MLflow's behaviour) instead of
            refusing them.
    """

    kind: Kind
    data: Any
    method: Method = "predict"
    key: str | None = None
    request_id: str | None = None
    lenient: bool = False

    def decode(self, runtime: ModelRuntime) -> Decoded:
        """Check the rows against ``runtime``'s signature.

        Raises:
            SignatureMismatch: the rows break the signature (every problem listed).
        """
        plan = runtime.lenient if self.lenient else runtime.plan
        kind, data = self.kind, self.data
        if kind == "columns":
            return plan.decode_tensors(data) if plan.tensor else plan.decode_columns(data)
        if kind == "split":
            fast = plan.decode_split(data[0], data[1])
            if fast is not None:
                return fast
            columns_, rows = data
            return plan.decode_columns(
                {str(c): [r[i] for r in rows] for i, c in enumerate(columns_)}
            )
        if kind == "records":
            fast = plan.decode_records(data)
            if fast is not None:
                return fast
            columns = columns_from_records(data)
            if columns is None:
                columns = _ragged_records(data)
            return plan.decode_columns(columns)
        if kind == "rows":
            return plan.decode_rows(data)
        if kind == "tensors":
            if plan.tensor:
                single = not isinstance(plan.predictor.signature.inputs, tuple)  # type: ignore[union-attr]
                if single and len(data) == 1:
                    data = next(iter(data.values()))
                return plan.decode_tensors(data)
            return plan.decode_columns(tabular_columns(data, plan.names))
        # a DataFrame
        if plan.tensor:
            return plan.decode_tensors(data.to_numpy())
        return plan.decode_columns({str(c): data[c].to_numpy() for c in data.columns})


def tabular_columns(tensors: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """Tensors as the columns of a tabular model: one 2-D tensor of all the columns in order,
    or one tensor per column named as the column."""
    if len(tensors) == 1:
        ((name, array),) = tensors.items()
        if not names and np.ndim(array) == 2:  # no signature: positional columns
            array = np.asarray(array)
            return {str(i): array[:, i] for i in range(array.shape[1])}
        if name not in names:
            array = np.asarray(array)
            if array.ndim == 1 and len(names) == 1:
                return {names[0]: array}
            if array.ndim != 2 or array.shape[1] != len(names):
                raise SignatureMismatch(
                    f"input {name!r} has shape {list(array.shape)}; the model takes "
                    f"[rows, {len(names)}] ({', '.join(names)}) or one tensor per column",
                    [
                        {
                            "column": name,
                            "expected": f"shape [rows, {len(names)}]",
                            "got": f"shape {list(array.shape)}",
                        }
                    ],
                )
            return {n: array[:, i] for i, n in enumerate(names)}
    out = {}
    for name, values in tensors.items():
        array = np.asarray(values)
        out[name] = array.reshape(-1) if array.ndim == 2 and array.shape[1] == 1 else array
    return out


def _ragged_records(records: list[Any]) -> dict[str, list[Any]]:
    """Records with differing keys as columns (a missing key is a null)."""
    if not all(isinstance(r, dict) for r in records):
        raise BadRequest("every record must be a JSON object of column name to value")
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    return {n: [r.get(n) for r in records] for n in names}


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> bytes:
    """JSON bytes, NumPy arrays and scalars included (NaN becomes null)."""
    try:
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    except TypeError:  # arrays orjson refuses (object, text): as lists
        return orjson.dumps(_listify(obj), default=_default, option=_OPTIONS)


def _listify(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _listify(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_listify(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def loads(body: bytes) -> Any:
    """Parse a JSON body.

    Raises:
        BadRequest: the body is not valid JSON.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON ({exc}); send a JSON object such as "
            '{"rows": [{"feature": 1.0}]}'
        ) from None


def table_from_bytes(body: bytes, content_type: str) -> Any:
    """A DataFrame from a CSV (with a header row) or Parquet body.

    Raises:
        BadRequest: the body cannot be read as that format.
    """
    import io

    import pandas as pd

    try:
        if content_type == "text/csv":
            return pd.read_csv(io.BytesIO(body))
        return pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pandas/pyarrow raise many kinds of parse errors
        what = "CSV with a header row" if content_type == "text/csv" else "Parquet"
        raise BadRequest(f"the body is not readable as {what}: {str(exc)[:300]}") from None
