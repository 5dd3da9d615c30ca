"""Experiment tracking, the fluent way: ``with loopml.start_run(): loopml.log_metric(...)``.

Everything here is re-exported at the top level (``loopml.start_run``); see
:mod:`loopml.tracking.fluent` for how runs start, end and survive signals.
"""

from __future__ import annotations

from loopml.tracking.fluent import ActiveRun as ActiveRun
from loopml.tracking.fluent import active_run as active_run
from loopml.tracking.fluent import end_run as end_run
from loopml.tracking.fluent import flush as flush
from loopml.tracking.fluent import get_client as get_client
from loopml.tracking.fluent import get_tracking_uri as get_tracking_uri
from loopml.tracking.fluent import log_artifact as log_artifact
from loopml.tracking.fluent import log_artifacts as log_artifacts
from loopml.tracking.fluent import log_dict as log_dict
from loopml.tracking.fluent import log_figure as log_figure
from loopml.tracking.fluent import log_metric as log_metric
from loopml.tracking.fluent import log_metrics as log_metrics
from loopml.tracking.fluent import log_param as log_param
from loopml.tracking.fluent import log_params as log_params
from loopml.tracking.fluent import log_text as log_text
from loopml.tracking.fluent import search_runs as search_runs
from loopml.tracking.fluent import set_project as set_project
from loopml.tracking.fluent import set_tag as set_tag
from loopml.tracking.fluent import set_tags as set_tags
from loopml.tracking.fluent import set_tracking_uri as set_tracking_uri
from loopml.tracking.fluent import start_run as start_run

__all__ = [
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
]
