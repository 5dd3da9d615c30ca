"""Pipelines: plain Python functions as steps (``@loopml.step``), composed by a function that
calls them (``@loopml.pipeline``), run as a checked graph with content-addressed caching,
retries, timeouts and resume, on this process, local processes or Ray; every pipeline run and
step run is a tracked run. ``loopml scheduler`` runs pipelines on cron schedules;
:func:`reproduce` re-runs a recorded run and says whether it came out the same.
"""

from __future__ import annotations

from loopml.errors import InvalidPipeline as InvalidPipeline
from loopml.errors import PipelineFailed as PipelineFailed
from loopml.pipelines.graph import Output as Output
from loopml.pipelines.materialize import OutputRef as OutputRef
from loopml.pipelines.pipeline import Pipeline as Pipeline
from loopml.pipelines.pipeline import pipeline as pipeline
from loopml.pipelines.reproduce import Reproduction as Reproduction
from loopml.pipelines.reproduce import reproduce as reproduce
from loopml.pipelines.result import PipelineResult as PipelineResult
from loopml.pipelines.result import StepResult as StepResult
from loopml.pipelines.schedule import load_pipeline as load_pipeline
from loopml.pipelines.step import Step as Step
from loopml.pipelines.step import step as step

__all__ = [
    "InvalidPipeline",
    "Output",
    "OutputRef",
    "Pipeline",
    "PipelineFailed",
    "PipelineResult",
    "Reproduction",
    "Step",
    "StepResult",
    "load_pipeline",
    "pipeline",
    "reproduce",
    "step",
]
