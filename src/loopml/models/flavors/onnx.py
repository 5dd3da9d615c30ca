"""ONNX models, run with ONNX Runtime (a graph of operators: data, not code).

The model is one self-contained ``model.onnx``: a model whose tensors point at external data
files is refused both when saving and when loading, so no path inside a model can make the
runtime read a file (the ONNX external-data traversal CVEs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml._lazy import require
from loopml.errors import InvalidArgument, ModelCorrupted
from loopml.models.flavors.base import LoadedModel, defined_in, installed_version, option_file

if TYPE_CHECKING:
    from loopml.models.signature import ModelSignature

__all__ = ["INPUT_COLUMNS_KEY", "OnnxFlavor", "session_signature"]

INPUT_COLUMNS_KEY = "loopml.input_columns"
"""ONNX metadata key listing which table column feeds each graph input (set by ``to_onnx``)."""
_FILE = "model.onnx"
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int16)": "int16",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "str",
}


class OnnxFlavor:
    """ONNX ``ModelProto`` objects (or their serialised bytes with ``flavor="onnx"``)."""

    name: str = "onnx"
    packages: tuple[str, ...] = ("onnx", "onnxruntime", "numpy")
    needs_trust: bool = False

    def can_save(self, model: object) -> bool:
        """ONNX ``ModelProto`` objects."""
        return defined_in(model, "onnx") and type(model).__name__ == "ModelProto"

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Write the serialised model; refuse external data; record opsets and input columns."""
        onnx = require("onnx", "onnx", "saving an ONNX model")
        data = bytes(model) if isinstance(model, bytes | bytearray) else model.SerializeToString()
        proto = _parse(onnx, data, "the model to save")
        external = _external_tensor(proto, onnx)
        if external is not None:
            raise InvalidArgument(
                f"the ONNX model keeps tensor {external!r} in an external data file; loopml "
                "saves self-contained models only (onnx.load the model with its data first)"
            )
        (folder / _FILE).write_bytes(data)
        out: dict[str, Any] = {
            "file": _FILE,
            "onnx_version": installed_version("onnx"),
            "opsets": {imp.domain or "ai.onnx": int(imp.version) for imp in proto.opset_import},
        }
        columns = _input_columns(proto)
        if columns is not None:
            out["input_columns"] = columns
        return out

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Check the graph has no external data, then open an ONNX Runtime session on CPU."""
        onnx = require("onnx", "onnx", "loading an ONNX model")
        path = option_file(folder, options, self.name)
        data = path.read_bytes()
        proto = _parse(onnx, data, path.name)
        external = _external_tensor(proto, onnx)
        if external is not None:
            raise ModelCorrupted(
                f"{path.name} keeps tensor {external!r} in an external data file; loopml loads "
                "self-contained ONNX models only (external paths could read any file); refused"
            )
        return self.wrap(proto, folder, options)

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """An ONNX Runtime session; ``predict`` is the first output, ``predict_proba`` the
        ``probabilities`` output (or a second floating-point output) when there is one."""
        ort = require("onnxruntime", "onnx", "running an ONNX model")
        data = bytes(model) if isinstance(model, bytes | bytearray) else model.SerializeToString()
        try:
            session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelCorrupted(f"ONNX Runtime cannot open the model: {exc}") from exc
        columns = options.get("input_columns")
        if columns is not None and (
            not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
        ):
            raise ModelCorrupted("the onnx model's manifest has malformed 'input_columns'")
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        proba_index = _proba_output(outputs)

        def run(data: Any) -> list[Any]:
            return list(session.run(None, _feeds(data, inputs, columns)))

        def predict(data: Any) -> Any:
            return run(data)[0]

        def proba(data: Any) -> Any:
            assert proba_index is not None
            return run(data)[proba_index]

        classes = _class_labels(model if not isinstance(model, bytes | bytearray) else None)
        return LoadedModel(session, predict, None if proba_index is None else proba, classes)


def _parse(onnx: Any, data: bytes, what: str) -> Any:
    try:
        return onnx.load_from_string(data)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelCorrupted(f"{what} is not an ONNX model: {exc}") from exc


def _graphs(onnx: Any, graph: Any) -> Iterator[Any]:
    yield graph
    for node in graph.node:
        yield from _attribute_graphs(onnx, node)


def _attribute_graphs(onnx: Any, node: Any) -> Iterator[Any]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield from _graphs(onnx, attr.g)
        for sub in attr.graphs:
            yield from _graphs(onnx, sub)


def _tensors(onnx: Any, proto: Any) -> Iterator[Any]:
    """Every tensor of a model: initializers, sparse ones, node attributes, in every subgraph
    and function."""
    nodes: list[Any] = []
    for graph in _graphs(onnx, proto.graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        nodes.extend(graph.node)
    for function in proto.functions:
        nodes.extend(function.node)
        for node in function.node:
            for graph in _attribute_graphs(onnx, node):
                nodes.extend(graph.node)
                yield from graph.initializer
    for node in nodes:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices


def _external_tensor(proto: Any, onnx: Any) -> str | None:
    """The name of the first tensor stored outside the model file, or None."""
    external = onnx.TensorProto.EXTERNAL
    for tensor in _tensors(onnx, proto):
        if tensor.data_location == external or len(tensor.external_data):
            return str(tensor.name or "(unnamed)")
    return None


_LABEL_ATTRIBUTES = ("classlabels_int64s", "classlabels_ints", "classlabels_strings")


def _class_labels(proto: Any) -> list[Any] | None:
    """A classifier's labels, from the first ONNX-ML classifier node that lists them."""
    if proto is None:
        return None
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.name in _LABEL_ATTRIBUTES:
                if attr.strings:
                    return [s.decode("utf-8", "replace") for s in attr.strings]
                if attr.ints:
                    return list(attr.ints)
    return None


def _input_columns(proto: Any) -> list[str] | None:
    for prop in proto.metadata_props:
        if prop.key == INPUT_COLUMNS_KEY:
            try:
                value = json.loads(prop.value)
            except ValueError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
    return None


def _proba_output(outputs: list[Any]) -> int | None:
    for i, out in enumerate(outputs):
        if out.name == "probabilities":
            return i
    if len(outputs) >= 2 and outputs[1].type in ("tensor(float)", "tensor(double)"):
        return 1
    return None


def _np_dtype(onnx_type: str) -> Any:
    name = _DTYPES.get(onnx_type)
    if name is None:
        raise InvalidArgument(f"loopml cannot feed an ONNX input of type {onnx_type}")
    return np.dtype(object) if name == "str" else np.dtype(name)


def _feeds(data: Any, inputs: list[Any], columns: list[str] | None) -> dict[str, Any]:
    """Arrays for the session's inputs from a prepared table, array or dict of arrays."""
    if isinstance(data, Mapping):
        return {i.name: np.asarray(data[i.name]).astype(_np_dtype(i.type)) for i in inputs}
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):  # a table
        if len(inputs) == 1:
            return {inputs[0].name: data.to_numpy().astype(_np_dtype(inputs[0].type))}
        names = columns or [i.name for i in inputs]
        if len(names) != len(inputs):
            raise InvalidArgument(
                f"the ONNX model has {len(inputs)} inputs but {len(names)} input columns"
            )
        return {
            i.name: data[c].to_numpy().astype(_np_dtype(i.type)).reshape(-1, 1)
            for i, c in zip(inputs, names, strict=True)
        }
    if len(inputs) != 1:
        raise InvalidArgument(
            f"the ONNX model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
            "give a dict of arrays by input name"
        )
    return {inputs[0].name: np.asarray(data).astype(_np_dtype(inputs[0].type))}


def session_signature(model: Any) -> ModelSignature | None:
    """The tensor signature an ONNX model declares: each input's name, dtype and shape (and
    the outputs'), with symbolic dimensions as ``-1``."""
    from loopml.models.signature import ModelSignature, TensorSpec

    ort = require("onnxruntime", "onnx", "reading an ONNX model's inputs")
    data = bytes(model) if isinstance(model, bytes | bytearray) else model.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])

    def specs(args: list[Any]) -> list[TensorSpec]:
        return [
            TensorSpec(
                dtype=_DTYPES.get(a.type, "float32"),
                shape=tuple(d if isinstance(d, int) else -1 for d in (a.shape or [])),
                name=a.name,
            )
            for a in args
            if a.type in _DTYPES
        ]

    inputs, outputs = specs(session.get_inputs()), specs(session.get_outputs())
    if not inputs:
        return None
    return ModelSignature(inputs=tuple(inputs), outputs=tuple(outputs) or None)
