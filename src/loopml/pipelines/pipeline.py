"""Pipelines: a function that calls steps, run as a graph.

::

    @loopml.step
    def load(path: str) -> pd.DataFrame: ...


    @loopml.step
    def train(df: pd.DataFrame, C: float = 1.0) -> LogisticRegression: ...


    @loopml.pipeline
    def training(path: str = "data.parquet", C: float = 1.0):
        return train(load(path), C=C)


    result = training.run(C=0.5)  # a PipelineResult; training(C=0.5) returns result.output

``run`` calls the function with the parameters to build the graph (step calls return handles),
checks it, records the pipeline run, and runs the steps on the chosen executor.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping
from typing import Any, overload

from loopml.errors import InvalidArgument, InvalidPipeline
from loopml.pipelines.graph import Graph, build, canonical
from loopml.pipelines.result import PipelineResult

__all__ = ["Pipeline", "pipeline"]


class Pipeline:
    """A pipeline: its function, name, project, and schedule.

    Attributes:
        fn: the pipeline function (it calls steps and returns their outputs, or nothing).
        name: the pipeline's name (the function's by default).
        project: the project its runs go to (None: the current one).
        schedule: a cron expression (``0 3 * * *``) that ``loopml scheduler`` runs it on.
        params: the parameters a cron-triggered run gets.
    """

    fn: Callable[..., Any]
    name: str

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        project: str | None = None,
        schedule: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn) or isinstance(fn, Pipeline):
            raise InvalidArgument(f"@pipeline decorates a function, not a {type(fn).__name__}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "pipeline"))
        if not self.name or "/" in self.name or len(self.name) > 200:
            raise InvalidArgument(
                f"a pipeline name is 1-200 characters without '/', got {self.name!r}"
            )
        self.project = project
        if schedule is not None:
            from loopml.pipelines.schedule import check_cron

            check_cron(schedule)
        self.schedule = schedule
        self.params = dict(params or {})
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name}>"

    @property
    def source_file(self) -> str | None:
        """The file that defines the pipeline function, if known."""
        try:
            return inspect.getsourcefile(self.fn)
        except TypeError:
            return None

    @property
    def ref(self) -> str:
        """``module:qualname`` of the pipeline function (how ``loopml reproduce`` finds it)."""
        return (
            f"{getattr(self.fn, '__module__', '?')}:{getattr(self.fn, '__qualname__', self.name)}"
        )

    def bind(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with the function's defaults filled in.

        Raises:
            InvalidArgument: an unknown or missing parameter.
        """
        try:
            bound = self.signature.bind(**params)
        except TypeError as exc:
            raise InvalidArgument(
                f"pipeline {self.name!r} cannot take {sorted(params)}: {exc}; its parameters: "
                f"{', '.join(self.signature.parameters) or 'none'}"
            ) from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def graph(self, **params: Any) -> Graph:
        """The graph for these parameters, built and checked, without running anything."""
        return build(self.fn, self.bind(params), name=self.name)

    def run(
        self,
        *,
        executor: str = "local",
        address: str | None = None,
        max_workers: int | None = None,
        cache: bool = True,
        resume: str | None = None,
        project: str | None = None,
        client: Any = None,
        tags: Mapping[str, Any] | None = None,
        quiet: bool = False,
        raise_on_failure: bool = True,
        seed: int | None = None,
        **params: Any,
    ) -> PipelineResult:
        """Build the graph for ``params``, check it, and run it.

        Args:
            executor: ``local`` (steps one after the other, in this process), ``processes``
                (independent steps in parallel, each in a child process) or ``ray``.
            address: the Ray cluster's address (``ray://host:10001``, ``auto``); a local Ray
                instance when None.
            max_workers: steps running at once (processes: the CPU count; ray: 64).
            cache: reuse the outputs of earlier step runs with the same code, inputs and
                parameters (steps can opt out with ``@step(cache=False)``).
            resume: a failed (or any) run of this pipeline: its finished steps are reused
                whatever the cache says, the rest run.
            project: the project of the runs (default: the pipeline's, else the current one).
            client: the :class:`~loopml.Client` to record with (default: the fluent API's).
            tags: extra tags of the pipeline run.
            quiet: print nothing (by default each step's fate is printed on stderr).
            raise_on_failure: raise :class:`PipelineFailed` when a step fails (else return
                the failed result).
            seed: seed Python's, NumPy's and PyTorch's generators (``loopml.set_seed``) here and
                before every step, wherever it runs; recorded with the run, so that
                ``loopml reproduce`` uses it again.
            params: the pipeline function's parameters.

        Returns:
            A :class:`PipelineResult`.

        Raises:
            InvalidPipeline: the graph is wrong (the message names the file and line).
            PipelineFailed: a step failed, with ``raise_on_failure``.
        """
        from loopml.pipelines.runner import TAG, resumable, run_graph

        if client is None:
            from loopml.tracking import get_client

            client = get_client()
        values = self.bind(params)
        if seed is not None:
            from loopml.client import set_seed

            set_seed(seed)  # before the run is created: its environment records the seed
        graph = build(self.fn, values, name=self.name)
        project_name = project or self.project or _current_project(client)
        earlier = resumable(client, resume, self.name) if resume else None
        run = client.create_run(
            project_name,
            name=self.name,
            tags={
                TAG.KIND: "pipeline",
                TAG.PIPELINE: self.name,
                TAG.REF: self.ref,
                TAG.EXECUTOR: executor,
                **({TAG.RESUMED_FROM: resume} if resume else {}),
                **(tags or {}),
            },
            params={
                k: v if isinstance(v, str) else canonical(_jsonable(k, v))
                for k, v in values.items()
            },
            heartbeat=True,
        )
        client.log_dict(
            run.run_id,
            {
                "pipeline": self.name,
                "ref": self.ref,
                "file": self.source_file,
                "seed": seed,
                "params": _jsonable("params", values),
                **graph.describe(),
            },
            "pipeline.json",
        )
        result = run_graph(
            client,
            graph,
            name=self.name,
            project=project_name,
            run_id=run.run_id,
            executor=executor,
            address=address,
            max_workers=max_workers,
            use_cache=cache,
            resume=earlier,
            quiet=quiet,
            seed=seed,
        )
        if raise_on_failure:
            result.raise_for_status()
        return result

    def __call__(self, **params: Any) -> Any:
        """Run the pipeline (in this process) and return what its function returned, loaded."""
        return self.run(**params).output


def _current_project(client: Any) -> str:
    from loopml.client import context

    return context.get_project() or client.settings.project or "default"


def _jsonable(key: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise InvalidPipeline(
            f"pipeline parameter {key!r} is a {type(value).__name__}, which cannot be recorded; "
            "pass plain values (text, numbers, lists, dicts) and load data inside a step"
        ) from None
    return value


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...


@overload
def pipeline(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    project: str | None = None,
    schedule: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Pipeline]: ...


def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    project: str | None = None,
    schedule: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make a function that calls steps a pipeline: ``@loopml.pipeline`` or
    ``@loopml.pipeline(schedule="0 3 * * *")``.

    Args:
        fn: the function (when used without parentheses).
        name: the pipeline's name (default: the function's).
        project: the project its runs go to.
        schedule: a cron expression for ``loopml scheduler``.
        params: the parameters scheduled runs get.
    """

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, project=project, schedule=schedule, params=params)

    return wrap(fn) if fn is not None else wrap
