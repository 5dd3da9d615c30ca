"""The Open Inference Protocol v2 (KServe, Triton, MLServer, Seldon): JSON tensors.

``POST /v2/models/{name}[/versions/{v}]/infer`` with
``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data"}], "outputs"?}``.
A tabular model takes either one 2-D tensor whose columns are the signature's, in order, or one
1-D tensor per column, named as the column. Unknown ``parameters`` (such as tritonclient's
``binary_data_output``) are ignored; Triton's binary tensor extension is refused with a 400
that says how to send JSON instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopml.errors import LoopError, SignatureMismatch
from loopml.schema import ColumnType, Schema
from loopml.serving.protocols import BadRequest, Payload, dumps, loads
from loopml.serving.runtime import Method, ModelRuntime, Outputs

__all__ = ["datatype_of", "error_body", "model_metadata", "parse", "response_body"]

_DTYPES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_OUTPUTS = ("predict", "predict_proba")
BINARY_HEADER = "inference-header-content-length"
MAX_INPUTS = 1024


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The v2 datatype name of a NumPy dtype (text and objects are ``BYTES``)."""
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iuf":
        prefix = {"i": "INT", "u": "UINT", "f": "FP"}[dtype.kind]
        return f"{prefix}{dtype.itemsize * 8}"
    return "BYTES"


def parse(body: bytes, headers: Mapping[str, str]) -> Payload:
    """Read an ``infer`` body.

    Raises:
        BadRequest: binary tensor data, not JSON, or a malformed input tensor.
    """
    if BINARY_HEADER in headers:
        raise BadRequest(
            "binary tensor data (Inference-Header-Content-Length) is not supported; send JSON "
            "tensors (tritonclient: set_data_from_numpy(array, binary_data=False) and "
            "InferRequestedOutput(name, binary_data=False))"
        )
    data = loads(body)
    if not isinstance(data, dict):
        raise BadRequest('the body must be a JSON object with "inputs"')
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest(
            '"inputs" must be a non-empty list of tensors {name, shape, datatype, data}'
        )
    if len(inputs) > MAX_INPUTS:
        raise BadRequest(f"at most {MAX_INPUTS} input tensors per request")
    tensors: dict[str, Any] = {}
    for i, spec in enumerate(inputs):
        name, array = _tensor(spec, i)
        if name in tensors:
            raise BadRequest(f"input tensor {name!r} is given twice")
        tensors[name] = array
    method: Method = "predict"
    outputs = data.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise BadRequest('"outputs" must be a list of {"name": ...}')
        names = [o["name"] for o in outputs]
        unknown = sorted(set(names) - set(_OUTPUTS))
        if unknown:
            raise BadRequest(f"unknown outputs {unknown}; this server gives {list(_OUTPUTS)}")
        if "predict_proba" in names:
            method = "predict_proba"
    request_id = data.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise BadRequest('"id" must be a string')
    params = data.get("parameters")
    key = None
    if isinstance(params, dict) and isinstance(params.get("key"), str | int):
        key = str(params["key"])
    return Payload("tensors", tensors, method, key, request_id)


def _tensor(spec: Any, index: int) -> tuple[str, np.ndarray[Any, Any]]:
    where = f"inputs[{index}]"
    if not isinstance(spec, dict):
        raise BadRequest(f"{where} must be an object {{name, shape, datatype, data}}")
    name, shape, datatype = spec.get("name"), spec.get("shape"), spec.get("datatype")
    if not isinstance(name, str) or not name:
        raise BadRequest(f"{where} needs a 'name'")
    where = f"input {name!r}"
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise BadRequest(f"{where}: 'shape' must be a list of non-negative integers")
    if datatype not in _DTYPES:
        raise BadRequest(f"{where}: 'datatype' must be one of {sorted(_DTYPES)}, not {datatype!r}")
    if "data" not in spec:
        raise BadRequest(f"{where} needs 'data'")
    size = math.prod(shape)
    try:
        values = np.asarray(spec["data"], dtype=object).ravel()
    except ValueError as exc:  # ragged nesting
        raise BadRequest(f"{where}: 'data' is not a flat or evenly nested list ({exc})") from None
    kinds = set(map(type, values.tolist()))
    allowed = _VALUE_TYPES[datatype[:2]]
    if not kinds <= allowed:
        wrong = sorted(t.__name__ for t in kinds - allowed)
        raise BadRequest(
            f"{where}: 'data' is not {datatype}: {datatype} data must be "
            f"{_VALUE_NAMES[datatype[:2]]}, not {', '.join(wrong)}"
        )
    if values.size != size:
        raise BadRequest(
            f"{where}: 'data' holds {values.size} values but shape {shape} needs {size}"
        )
    try:
        with np.errstate(over="raise", invalid="raise"):
            array = values.astype(_DTYPES[datatype])
    except (ValueError, TypeError, OverflowError, FloatingPointError):
        raise BadRequest(f"{where}: 'data' is not {datatype}: values beyond its range") from None
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BadRequest(f"{where}: 'data' is not {datatype}: values beyond its range")
    return name, array.reshape(shape)


# What JSON values each datatype takes (by the first two letters of its name): no silent
# rounding of 1.5 to an integer, no "no" as true, no text as a number.
_VALUE_TYPES: dict[str, set[type]] = {
    "BO": {bool},
    "UI": {int},
    "IN": {int},
    "FP": {int, float},
    "BY": {str},
}
_VALUE_NAMES = {
    "BO": "true or false",
    "UI": "integers",
    "IN": "integers",
    "FP": "numbers",
    "BY": "strings",
}


def response_body(
    outputs: Outputs, runtime: ModelRuntime, request_id: str | None, ids: Sequence[str]
) -> bytes:
    """The ``infer`` answer: the ``predict`` tensor (and ``predict_proba`` when asked)."""
    tensors = [_out("predict", np.asarray(outputs.predictions))]
    if outputs.proba is not None:
        tensors.append(_out("predict_proba", np.asarray(outputs.proba)))
    body: dict[str, Any] = {
        "model_name": runtime.name,
        "model_version": str(runtime.version) if runtime.version is not None else "local",
        "outputs": tensors,
        "parameters": {"prediction_ids": ids},
    }
    if request_id is not None:
        body["id"] = request_id
    return dumps(body)


def _out(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    datatype = datatype_of(array.dtype)
    data = array.reshape(-1)
    if datatype == "BYTES":
        data = np.asarray([str(v) for v in data.tolist()], dtype=object)
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


_COLUMN_TYPES = {
    ColumnType.FLOAT: "FP64",
    ColumnType.INTEGER: "INT64",
    ColumnType.BOOLEAN: "BOOL",
}


def model_metadata(runtime: ModelRuntime, name: str, versions: Sequence[str]) -> dict[str, Any]:
    """``GET /v2/models/{name}``: inputs and outputs from the signature."""
    signature = runtime.predictor.signature
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = [{"name": "predict", "datatype": "BYTES", "shape": [-1]}]
    if signature is not None:
        if isinstance(signature.inputs, Schema):
            inputs = [
                {"name": c.name, "datatype": _COLUMN_TYPES.get(c.type, "BYTES"), "shape": [-1]}
                for c in signature.inputs.columns
            ]
        else:
            specs = (
                signature.inputs if isinstance(signature.inputs, tuple) else (signature.inputs,)
            )
            inputs = [
                {
                    "name": s.name or f"input-{i}",
                    "datatype": datatype_of(s.np_dtype),
                    "shape": list(s.shape),
                }
                for i, s in enumerate(specs)
            ]
        out = signature.outputs
        if isinstance(out, Schema) and len(out.columns) == 1:
            outputs[0]["datatype"] = _COLUMN_TYPES.get(out.columns[0].type, "BYTES")
    if runtime.has_proba:
        classes = len(runtime.classes) if runtime.classes else -1
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, classes]})
    return {
        "name": name,
        "versions": list(versions),
        "platform": f"loopml-{runtime.predictor.flavor}",
        "inputs": inputs,
        "outputs": outputs,
    }


def error_body(exc: LoopError) -> bytes:
    """``{"error": "<message>"}`` (the protocol's shape), with ``problems`` when the input
    broke the signature."""
    body: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, SignatureMismatch):
        body["problems"] = exc.problems
    return dumps(body)
