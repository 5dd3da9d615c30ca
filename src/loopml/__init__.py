"""loopml: one package for the whole machine-learning lifecycle, and the loop that closes it.

Track experiments in three lines::

    import loopml

    with loopml.start_run(params={"lr": 0.1}):
        loopml.log_metric("loss", 0.25)

``loopml.Client`` does everything explicitly by run id; the functions here are a thin fluent layer
over it. Names load lazily, so ``import loopml`` stays fast and imports no database, web or data
library until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loopml._version import __version__ as __version__

if TYPE_CHECKING:
    from loopml import errors as errors
    from loopml.client import Client as Client
    from loopml.client import RunComparison as RunComparison
    from loopml.client import set_seed as set_seed
    from loopml.client.monitors import log_ground_truth as log_ground_truth
    from loopml.data import get_dataset as get_dataset
    from loopml.data import load_dataset as load_dataset
    from loopml.data import log_dataset as log_dataset
    from loopml.data import split_dataset as split_dataset
    from loopml.entities import ArtifactInfo as ArtifactInfo
    from loopml.entities import AuditEvent as AuditEvent
    from loopml.entities import Dataset as Dataset
    from loopml.entities import DatasetInput as DatasetInput
    from loopml.entities import DatasetVersion as DatasetVersion
    from loopml.entities import Deployment as Deployment
    from loopml.entities import Environment as Environment
    from loopml.entities import Metric as Metric
    from loopml.entities import MetricHistory as MetricHistory
    from loopml.entities import ModelVersion as ModelVersion
    from loopml.entities import Page as Page
    from loopml.entities import Param as Param
    from loopml.entities import PredictionSegment as PredictionSegment
    from loopml.entities import Project as Project
    from loopml.entities import RegisteredModel as RegisteredModel
    from loopml.entities import Route as Route
    from loopml.entities import RouteRole as RouteRole
    from loopml.entities import Run as Run
    from loopml.entities import RunStatus as RunStatus
    from loopml.entities import Tag as Tag
    from loopml.entities import TrafficWindow as TrafficWindow
    from loopml.entities import WindowProfile as WindowProfile
    from loopml.errors import LoopError as LoopError
    from loopml.models import Gate as Gate
    from loopml.models import ModelSignature as ModelSignature
    from loopml.models import evaluate as evaluate
    from loopml.models import infer_signature as infer_signature
    from loopml.models import load_model as load_model
    from loopml.models import log_model as log_model
    from loopml.models import promote as promote
    from loopml.models import rollback as rollback
    from loopml.models import save_model as save_model
    from loopml.pipelines import Pipeline as Pipeline
    from loopml.pipelines import PipelineResult as PipelineResult
    from loopml.pipelines import pipeline as pipeline
    from loopml.pipelines import step as step
    from loopml.tracking import ActiveRun as ActiveRun
    from loopml.tracking import active_run as active_run
    from loopml.tracking import end_run as end_run
    from loopml.tracking import flush as flush
    from loopml.tracking import get_client as get_client
    from loopml.tracking import get_tracking_uri as get_tracking_uri
    from loopml.tracking import log_artifact as log_artifact
    from loopml.tracking import log_artifacts as log_artifacts
    from loopml.tracking import log_dict as log_dict
    from loopml.tracking import log_figure as log_figure
    from loopml.tracking import log_metric as log_metric
    from loopml.tracking import log_metrics as log_metrics
    from loopml.tracking import log_param as log_param
    from loopml.tracking import log_params as log_params
    from loopml.tracking import log_text as log_text
    from loopml.tracking import search_runs as search_runs
    from loopml.tracking import set_project as set_project
    from loopml.tracking import set_tag as set_tag
    from loopml.tracking import set_tags as set_tags
    from loopml.tracking import set_tracking_uri as set_tracking_uri
    from loopml.tracking import start_run as start_run
    from loopml.tuning import tune as tune

_LAZY = {
    "errors": ("loopml.errors", None),
    "serving": ("loopml.serving", None),
    "LoopError": ("loopml.errors", "LoopError"),
    "Client": ("loopml.client", "Client"),
    "RunComparison": ("loopml.client", "RunComparison"),
    "set_seed": ("loopml.client", "set_seed"),
    "log_ground_truth": ("loopml.client.monitors", "log_ground_truth"),
    "tune": ("loopml.tuning", "tune"),
    **{
        name: ("loopml.pipelines", name)
        for name in ("Pipeline", "PipelineResult", "pipeline", "step")
    },
    **{
        name: ("loopml.data", name)
        for name in ("get_dataset", "load_dataset", "log_dataset", "split_dataset")
    },
    **{
        name: ("loopml.entities", name)
        for name in (
            "ArtifactInfo",
            "AuditEvent",
            "Dataset",
            "DatasetInput",
            "DatasetVersion",
            "Deployment",
            "Environment",
            "Metric",
            "MetricHistory",
            "ModelVersion",
            "Page",
            "Param",
            "PredictionSegment",
            "Project",
            "RegisteredModel",
            "Route",
            "RouteRole",
            "Run",
            "RunStatus",
            "Tag",
            "TrafficWindow",
            "WindowProfile",
        )
    },
    **{
        name: ("loopml.models", name)
        for name in (
            "Gate",
            "ModelSignature",
            "evaluate",
            "infer_signature",
            "load_model",
            "log_model",
            "promote",
            "rollback",
            "save_model",
        )
    },
    **{
        name: ("loopml.tracking", name)
        for name in (
            "ActiveRun",
            "active_run",
            "end_run",
            "flush",
            "get_client",
            "get_tracking_uri",
            "log_artifact",
            "log_artifacts",
            "log_dict",
            "log_figure",
            "log_metric",
            "log_metrics",
            "log_param",
            "log_params",
            "log_text",
            "search_runs",
            "set_project",
            "set_tag",
            "set_tags",
            "set_tracking_uri",
            "start_run",
        )
    },
}

__all__ = [
    "ActiveRun",
    "ArtifactInfo",
    "AuditEvent",
    "Client",
    "Dataset",
    "DatasetInput",
    "DatasetVersion",
    "Deployment",
    "Environment",
    "Gate",
    "LoopError",
    "Metric",
    "MetricHistory",
    "ModelSignature",
    "ModelVersion",
    "Page",
    "Param",
    "Pipeline",
    "PipelineResult",
    "PredictionSegment",
    "Project",
    "RegisteredModel",
    "Route",
    "RouteRole",
    "Run",
    "RunComparison",
    "RunStatus",
    "Tag",
    "TrafficWindow",
    "WindowProfile",
    "__version__",
    "active_run",
    "end_run",
    "errors",
    "evaluate",
    "flush",
    "get_client",
    "get_dataset",
    "get_tracking_uri",
    "infer_signature",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_dataset",
    "log_dict",
    "log_figure",
    "log_ground_truth",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "pipeline",
    "promote",
    "rollback",
    "save_model",
    "search_runs",
    "set_project",
    "set_seed",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "split_dataset",
    "start_run",
    "step",
    "tune",
]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loopml' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
