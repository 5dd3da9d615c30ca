"""Models: packaging with a signature, safe loading, the registry, evaluation and the release gate.

Save a model into a folder (:func:`save_model`) or log it to a run (:func:`log_model`); a
``loopml-model.json`` manifest records its flavor, signature, pinned requirements and the sha256
of every file. :func:`load_model` verifies all of that before anything is deserialised, refuses
code-carrying models (pickle, torch, :class:`PythonModel`) unless ``trusted=True``, and returns
a :class:`Predictor` that enforces the signature on every call.
"""

from __future__ import annotations

from loopml.models.archive import export_model as export_model
from loopml.models.archive import import_model as import_model
from loopml.models.flavors import FLAVORS as FLAVORS
from loopml.models.flavors import Flavor as Flavor
from loopml.models.flavors import PythonModel as PythonModel
from loopml.models.flavors import PythonModelContext as PythonModelContext
from loopml.models.loading import load_model as load_model
from loopml.models.loading import verify_model as verify_model
from loopml.models.manifest import MANIFEST_FILE as MANIFEST_FILE
from loopml.models.manifest import Manifest as Manifest
from loopml.models.manifest import read_manifest as read_manifest
from loopml.models.onnx_export import to_onnx as to_onnx
from loopml.models.package import ModelInfo as ModelInfo
from loopml.models.package import log_model as log_model
from loopml.models.package import save_model as save_model
from loopml.models.predictor import Predictor as Predictor
from loopml.models.signature import ModelSignature as ModelSignature
from loopml.models.signature import TensorSpec as TensorSpec
from loopml.models.signature import infer_signature as infer_signature

__all__ = [
    "FLAVORS",
    "MANIFEST_FILE",
    "Flavor",
    "Manifest",
    "ModelInfo",
    "ModelSignature",
    "Predictor",
    "PythonModel",
    "PythonModelContext",
    "TensorSpec",
    "export_model",
    "import_model",
    "infer_signature",
    "load_model",
    "log_model",
    "read_manifest",
    "save_model",
    "to_onnx",
    "verify_model",
]
