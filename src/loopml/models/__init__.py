"""Models: packaging with a signature, safe loading, the registry, evaluation and the release gate.

Save a model into a folder (:func:`save_model`) or log it to a run (:func:`log_model`); a
``loopml-model.json`` manifest records its flavor, signature, pinned requirements and the sha256
of every file. :func:`load_model` verifies all of that before anything is deserialised, refuses
code-carrying models (pickle, torch, :class:`PythonModel`) unless ``trusted=True``, and returns
a :class:`Predictor` that enforces the signature on every call.

:func:`evaluate` scores a model on labelled data; a :class:`Gate` of :mod:`checks` decides
whether a version may be promoted; :func:`promote` moves an alias only when its gate passes, and
:func:`rollback` moves it back. The registry itself is on :class:`loopml.Client`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from loopml.models import gate_checks as checks
    from loopml.models.evaluation import EvaluationResult as EvaluationResult
    from loopml.models.evaluation.evaluate import evaluate as evaluate
    from loopml.models.gate import CheckResult as CheckResult
    from loopml.models.gate import Gate as Gate
    from loopml.models.gate import GateContext as GateContext
    from loopml.models.gate import GateResult as GateResult
    from loopml.models.promotion import Comparison as Comparison
    from loopml.models.promotion import Promotion as Promotion
    from loopml.models.promotion import compare_models as compare_models
    from loopml.models.promotion import promote as promote
    from loopml.models.promotion import rollback as rollback

# Evaluation, the gate and promotion load on first use (scikit-learn's metrics are slow).
_LAZY = {
    "checks": ("loopml.models.gate_checks", None),
    "EvaluationResult": ("loopml.models.evaluation", "EvaluationResult"),
    "evaluate": ("loopml.models.evaluation", "evaluate"),
    **{n: ("loopml.models.gate", n) for n in ("CheckResult", "Gate", "GateContext", "GateResult")},
    **{
        n: ("loopml.models.promotion", n)
        for n in ("Comparison", "Promotion", "compare_models", "promote", "rollback")
    },
}

__all__ = [
    "CheckResult",
    "Comparison",
    "EvaluationResult",
    "FLAVORS",
    "Flavor",
    "Gate",
    "GateContext",
    "GateResult",
    "MANIFEST_FILE",
    "Manifest",
    "ModelInfo",
    "ModelSignature",
    "Predictor",
    "Promotion",
    "PythonModel",
    "PythonModelContext",
    "TensorSpec",
    "checks",
    "compare_models",
    "evaluate",
    "export_model",
    "import_model",
    "infer_signature",
    "load_model",
    "log_model",
    "promote",
    "read_manifest",
    "rollback",
    "save_model",
    "to_onnx",
    "verify_model",
]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loopml.models' has no attribute {name!r}") from None
    import importlib

    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value
