"""Running one step attempt, wherever an executor puts it: in this process, in a child process,
or on a Ray worker.

The driver creates the step's run and hands a :class:`StepTask` to an executor; the attempt
loads its inputs, runs the function with the step's run active (so ``loopml.log_metric`` in a
step lands in that run), saves its outputs as artifacts of the run, and returns a
:class:`Attempt`. The driver then ends the run. Everything in a task pickles, so the same code
runs on every executor.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.pipelines.materialize import OutputRef, load_output, save_output

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["Attempt", "StepTask", "execute", "execute_remote"]

_REF = "$loopml_output"


@dataclass(frozen=True, slots=True)
class StepTask:
    """One step attempt to run.

    Attributes:
        node: the node's id in the graph.
        run_id: the step's run (created by the driver).
        function: the step function, pickled with cloudpickle (functions defined in ``__main__``
            or a notebook travel by value).
        arguments: the call's arguments, with upstream outputs as ``{"$loopml_output": ref}``.
        outputs: the names of the outputs (one, ``output``, unless the step names several).
        tracking_uri, artifact_uri, project: where a worker in another process writes.
        seed: the pipeline's seed, set (``loopml.set_seed``) before each attempt.
    """

    node: str
    run_id: str
    function: bytes
    arguments: dict[str, Any]
    outputs: tuple[str, ...]
    tracking_uri: str
    artifact_uri: str
    project: str
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """How a step attempt went: its outputs, or the error and its traceback."""

    node: str
    ok: bool
    outputs: tuple[OutputRef, ...] = ()
    error: str = ""
    traceback: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def input_ref(ref: OutputRef) -> dict[str, Any]:
    """How an upstream output travels in a task's arguments."""
    return {_REF: ref.to_dict()}


def _resolve(value: Any, client: Client, loaded: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_REF}:
            ref = OutputRef.from_dict(value[_REF])
            key = f"{ref.run_id}/{ref.path}"
            if key not in loaded:
                loaded[key] = load_output(client, ref)
            return loaded[key]
        return {k: _resolve(v, client, loaded) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, client, loaded) for v in value]
    return value


def _split(node: str, names: tuple[str, ...], value: Any) -> list[tuple[str, Any]]:
    if names == ("output",):
        return [("output", value)]
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        got = f"a {type(value).__name__}" + (
            f" of {len(value)}" if isinstance(value, (tuple, list)) else ""
        )
        raise TypeError(
            f"step {node!r} declares {len(names)} outputs ({', '.join(names)}) but returned "
            f"{got}; return a tuple of {len(names)} values"
        )
    return list(zip(names, value, strict=True))


def execute(task: StepTask, client: Client, fn: Callable[..., Any] | None = None) -> Attempt:
    """Run one attempt of ``task`` with ``client`` (``fn``: the function, when the caller has it
    unpickled already). Never raises for an error of the step: it is returned."""
    from loopml.tracking.fluent import activated

    start = time.perf_counter()
    try:
        if fn is None:
            import cloudpickle  # type: ignore[import-untyped]

            fn = cloudpickle.loads(task.function)
        assert fn is not None
        args = _resolve(task.arguments, client, {})
        if task.seed is not None:
            from loopml.client import set_seed

            set_seed(task.seed)
        run = client.get_run(task.run_id)
        with activated(run, client):
            value = fn(**args)
        refs = tuple(
            save_output(client, task.run_id, name, v)
            for name, v in _split(task.node, task.outputs, value)
        )
        client.flush(task.run_id)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return Attempt(
            task.node,
            False,
            error="".join(traceback.format_exception_only(exc)).strip(),
            traceback="".join(traceback.format_exception(exc)),
            seconds=time.perf_counter() - start,
        )
    return Attempt(task.node, True, refs, seconds=time.perf_counter() - start)


def _worker_client(task: StepTask) -> Client:
    """The client of a worker in another process, made the fluent API's too."""
    from loopml.client import Client, context

    client = Client(task.tracking_uri, artifact_uri=task.artifact_uri)
    context.replace_client(client)
    context.set_project(task.project)
    return client


def execute_remote(task: StepTask) -> Attempt:
    """:func:`execute` in a child process or on a Ray worker: its own client, flushed and
    closed before the attempt is returned."""
    client = _worker_client(task)
    try:
        return execute(task, client)
    finally:
        client.close()
