"""The model-serving runtime: registered models put to work, online behind HTTP and offline in
batch.

Online: ``loopml serve`` (or :class:`Server`, in a thread of this process) puts a model or a
deployment behind one ASGI app speaking loopml's JSON (``/predict``), the Open Inference
Protocol v2 and MLflow's scoring protocol, with adaptive micro-batching, canary and shadow
routes, alias following, Prometheus metrics and a prediction log (:mod:`loopml.serving.app`,
:mod:`~loopml.serving.server`). Rollouts are changes to a stored deployment
(:mod:`loopml.serving.deployments`: :func:`set_traffic`, :func:`promote_canary`,
:func:`rollback`). Offline: :func:`predict_batch` scores a file, a folder of Parquet files or a
dataset version in chunks, locally or on a Ray cluster. It sits above the models layer and below
the CLI; nothing heavy loads until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.serving.background import Server as Server
    from loopml.serving.batch import BatchResult as BatchResult
    from loopml.serving.batch import predict_batch as predict_batch
    from loopml.serving.deployments import apply_file as apply_file
    from loopml.serving.deployments import promote_canary as promote_canary
    from loopml.serving.deployments import rollback as rollback
    from loopml.serving.deployments import set_traffic as set_traffic

_LAZY = {
    "Server": "loopml.serving.background",
    "BatchResult": "loopml.serving.batch",
    "predict_batch": "loopml.serving.batch",
    "apply_file": "loopml.serving.deployments",
    "promote_canary": "loopml.serving.deployments",
    "rollback": "loopml.serving.deployments",
    "set_traffic": "loopml.serving.deployments",
}

__all__ = [
    "BatchResult",
    "Server",
    "apply_file",
    "predict_batch",
    "promote_canary",
    "rollback",
    "set_traffic",
]


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loopml.serving' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
