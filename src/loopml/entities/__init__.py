"""The domain entities: frozen dataclasses with no I/O.

Stores return new entity objects on every call; an entity never changes after it is returned
(a later write produces a new object on the next read). Times are integer milliseconds since the
Unix epoch, as in most trackers, so they survive JSON and every database without rounding.
"""

from __future__ import annotations

from loopml.entities._common import now_ms
from loopml.entities.datasets import (
    Dataset,
    DatasetInput,
    DatasetVersion,
)
from loopml.entities.leases import Lease
from loopml.entities.monitoring import (
    Alert,
    AlertDelivery,
    AlertState,
    LabelSegment,
    Monitor,
    MonitorResult,
)
from loopml.entities.registry import (
    AuditEvent,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
)
from loopml.entities.runs import (
    ArtifactInfo,
    Environment,
    Metric,
    MetricHistory,
    Page,
    Param,
    Project,
    Run,
    RunStatus,
    Tag,
    runs_to_pandas,
)
from loopml.entities.serving import (
    Deployment,
    PredictionSegment,
    Route,
    RouteRole,
    TrafficWindow,
    WindowProfile,
)

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertState",
    "ArtifactInfo",
    "AuditEvent",
    "Dataset",
    "DatasetInput",
    "DatasetVersion",
    "Deployment",
    "Environment",
    "LabelSegment",
    "Lease",
    "Metric",
    "MetricHistory",
    "ModelVersion",
    "ModelVersionStatus",
    "Monitor",
    "MonitorResult",
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
    "now_ms",
    "runs_to_pandas",
]
