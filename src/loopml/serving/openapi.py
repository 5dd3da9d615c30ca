"""The OpenAPI 3 document of a serving endpoint (``GET /openapi.json``): every route with its
request schema, so clients can be generated and fuzzers (schemathesis) can exercise it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml._version import __version__

if TYPE_CHECKING:
    from loopml.serving.endpoint import Endpoint

__all__ = ["document"]

_ERROR = {"description": "An error, with a message (and the signature problems for bad input)"}
_VALUE: dict[str, Any] = {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _post(summary: str, body: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    responses: dict[str, Any] = {
        "200": {"description": "Predictions", **_json({"type": "object"})},
        "400": _ERROR,
        "404": _ERROR,
        "413": _ERROR,
        "415": _ERROR,
        "422": _ERROR,
        "503": _ERROR,
    }
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, **body},
            "responses": responses,
            **(extra or {}),
        }
    }


def _get(summary: str, params: list[dict[str, Any]] | None = None) -> Any:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "OK"}, "404": _ERROR, "503": _ERROR},
    }
    if params:
        op["parameters"] = params
    return {"get": op}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def document(endpoint: Endpoint) -> dict[str, Any]:
    """The document for this endpoint."""
    rows = {
        "type": "array",
        "minItems": 1,
        "items": {"type": "object", "additionalProperties": _VALUE},
    }
    native = {
        "type": "object",
        "properties": {
            "rows": rows,
            "columns": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": _VALUE},
            },
            "inputs": {"type": "array", "items": {"type": "array", "items": _VALUE}},
            "proba": {"type": "boolean"},
            "key": {"type": "string"},
        },
    }
    split = {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "array", "items": {"type": "array", "items": _VALUE}},
        },
        "required": ["data"],
    }
    mlflow = {
        "type": "object",
        "properties": {
            "dataframe_split": split,
            "dataframe_records": rows,
            "instances": {"type": "array"},
            "inputs": {},
            "params": {"type": "object"},
        },
    }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {
                "type": "string",
                "enum": [
                    "BOOL",
                    "UINT8",
                    "UINT16",
                    "UINT32",
                    "UINT64",
                    "INT8",
                    "INT16",
                    "INT32",
                    "INT64",
                    "FP16",
                    "FP32",
                    "FP64",
                    "BYTES",
                ],
            },
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    }
    infer = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": tensor},
            "outputs": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        },
    }
    csv = {"text/csv": {"schema": {"type": "string"}}}
    paths: dict[str, Any] = {
        "/predict": _post("Predict (loopml JSON)", _json(native)),
        "/invocations": _post(
            "Predict (MLflow scoring protocol)",
            {"content": {"application/json": {"schema": mlflow}, **csv}},
        ),
        "/v2/models/{model_name}/infer": _post(
            "Infer (Open Inference Protocol v2)",
            _json(infer),
            {"parameters": [_param("model_name")]},
        ),
        "/v2/models/{model_name}/versions/{model_version}/infer": _post(
            "Infer on one version",
            _json(infer),
            {"parameters": [_param("model_name"), _param("model_version")]},
        ),
        "/v2/models/{model_name}": _get("Model metadata", [_param("model_name")]),
        "/v2/models/{model_name}/ready": _get("Model ready", [_param("model_name")]),
        "/v2/models/{model_name}/versions/{model_version}": _get(
            "Model version metadata", [_param("model_name"), _param("model_version")]
        ),
        "/v2/models/{model_name}/versions/{model_version}/ready": _get(
            "Model version ready", [_param("model_name"), _param("model_version")]
        ),
        "/v2": _get("Server metadata"),
        "/v2/health/live": _get("Live"),
        "/v2/health/ready": _get("Ready"),
        "/ping": _get("Live (MLflow)"),
        "/health": _get("Live (MLflow)"),
        "/version": _get("Server version"),
        "/ready": _get("Ready: every route's model is loaded"),
        "/metrics": _get("Prometheus metrics"),
        "/": _get("The endpoint's routes and model versions"),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"loopml endpoint {endpoint.name}", "version": __version__},
        "paths": paths,
    }
