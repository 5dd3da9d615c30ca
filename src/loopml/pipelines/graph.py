"""The pipeline graph: built by calling the pipeline function with handles in place of data.

While a ``@loopml.pipeline`` function runs under :func:`build`, each step call adds a
:class:`Node` and returns an :class:`Output` handle (or a tuple of them). Handles passed to later
steps become the graph's edges. Everything is checked here, before any step runs, and every error
names the file and line of the call that caused it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidPipeline

if TYPE_CHECKING:
    from loopml.pipelines.step import Step

__all__ = ["Graph", "Node", "Output", "build", "current_builder"]


@dataclass(frozen=True, slots=True)
class Output:
    """A handle to a step's future output, returned by a step call inside a pipeline.

    Pass it to other steps. It has no value while the graph is built: using it as data (``if``,
    ``len``, arithmetic, attributes) is an error that says so.
    """

    node: str
    name: str
    _graph_id: int = field(repr=False, compare=False)

    def __bool__(self) -> bool:
        raise self._misuse("tested for truth")

    def __iter__(self) -> Iterator[Any]:
        raise self._misuse("unpacked or iterated (name the outputs: @step(outputs=2))")

    def __len__(self) -> int:
        raise self._misuse("measured with len()")

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise self._misuse(f"asked for .{attr}")

    def __getitem__(self, key: Any) -> Any:
        raise self._misuse("indexed")

    def _misuse(self, what: str) -> InvalidPipeline:
        return InvalidPipeline(
            f"{_caller()}: the output of step {self.node!r} is {what} while the pipeline is "
            "being built, when it has no value yet; pass it to a step and do the work there"
        )


@dataclass(slots=True)
class Node:
    """One step call: its step, its arguments (plain values and :class:`Output` handles), where
    it was called, and the nodes it depends on."""

    id: str
    step: Step
    arguments: dict[str, Any]
    call_site: str
    upstream: tuple[str, ...]

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.step.outputs or ("output",)

    def params(self) -> dict[str, Any]:
        """The arguments that are plain values (the step's parameters), JSON-ready."""
        return {k: v for k, v in self.arguments.items() if not _has_handles(v)}


@dataclass(slots=True)
class Graph:
    """A validated pipeline graph: nodes in call order (a topological order) and the pipeline's
    result (a handle, a tuple or dict of handles, or None)."""

    nodes: dict[str, Node]
    result: Any

    def downstream(self, node_id: str) -> set[str]:
        """Every node that depends on ``node_id``, directly or not."""
        out: set[str] = set()
        frontier = [node_id]
        while frontier:
            current = frontier.pop()
            for n in self.nodes.values():
                if current in n.upstream and n.id not in out:
                    out.add(n.id)
                    frontier.append(n.id)
        return out

    def describe(self) -> dict[str, Any]:
        """The graph as JSON-ready data (recorded with every pipeline run)."""
        return {
            "nodes": [
                {
                    "id": n.id,
                    "step": n.step.name,
                    "function": f"{getattr(n.step.fn, '__module__', '?')}."
                    f"{getattr(n.step.fn, '__qualname__', n.step.name)}",
                    "defined_at": n.step.location,
                    "called_at": n.call_site,
                    "code_hash": n.step.code_hash,
                    "upstream": list(n.upstream),
                    "inputs": {k: _describe_arg(v) for k, v in n.arguments.items()},
                    "outputs": list(n.output_names),
                    "cache": n.step.cache,
                    "retries": n.step.retries,
                    "timeout": n.step.timeout,
                }
                for n in self.nodes.values()
            ],
            "result": _describe_arg(self.result),
        }


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.counts: dict[str, int] = {}

    def add(self, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        site = _caller()
        try:
            bound = step.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidPipeline(
                f"{site}: step {step.name!r} (defined at {step.location}) cannot take these "
                f"arguments: {exc}"
            ) from None
        arguments: dict[str, Any] = {}
        upstream: list[str] = []
        for key, value in bound.arguments.items():
            arguments[key] = _check_value(value, id(self), site, step.name, key, upstream)
        count = self.counts.get(step.name, 0) + 1
        self.counts[step.name] = count
        node_id = step.name if count == 1 else f"{step.name}_{count}"
        self.nodes[node_id] = Node(node_id, step, arguments, site, tuple(dict.fromkeys(upstream)))
        if step.outputs is None:
            return Output(node_id, "output", id(self))
        return tuple(Output(node_id, name, id(self)) for name in step.outputs)


_BUILDER: contextvars.ContextVar[_Builder | None] = contextvars.ContextVar(
    "loopml_pipeline_builder", default=None
)


def current_builder() -> _Builder | None:
    """The graph being built in this context, if any (what step calls add to)."""
    return _BUILDER.get()


def build(fn: Callable[..., Any], params: Mapping[str, Any], *, name: str) -> Graph:
    """Call the pipeline function ``fn`` with ``params``, recording step calls, and check the
    graph.

    Raises:
        InvalidPipeline: a step call is wrong, a handle is used as data, the function returns
            something other than handles, or it calls no step.
    """
    if _BUILDER.get() is not None:
        raise InvalidPipeline(
            f"{_caller()}: pipeline {name!r} is run while another pipeline is being built; call "
            "its steps directly instead (pipelines do not nest)"
        )
    builder = _Builder()
    token = _BUILDER.set(builder)
    try:
        result = fn(**params)
    finally:
        _BUILDER.reset(token)
    if not builder.nodes:
        raise InvalidPipeline(
            f"pipeline {name!r} calls no step: decorate the functions it calls with @loopml.step"
        )
    _check_result(result, id(builder), name)
    return Graph(builder.nodes, result)


def _check_result(result: Any, graph_id: int, name: str) -> None:
    if result is None or isinstance(result, Output):
        items: list[Any] = [result]
    elif isinstance(result, (tuple, list)):
        items = list(result)
    elif isinstance(result, dict):
        items = list(result.values())
    else:
        raise InvalidPipeline(
            f"pipeline {name!r} returns a {type(result).__name__}; a pipeline returns step "
            "outputs (one, a tuple or a dict of them) or nothing"
        )
    for item in items:
        if item is not None and not isinstance(item, Output):
            raise InvalidPipeline(
                f"pipeline {name!r} returns a {type(item).__name__} among its results; return "
                "step outputs only (compute values inside a step)"
            )
        if isinstance(item, Output) and item._graph_id != graph_id:
            raise InvalidPipeline(f"pipeline {name!r} returns an output of another pipeline")


def _check_value(
    value: Any, graph_id: int, site: str, step: str, key: str, upstream: list[str]
) -> Any:
    """``value`` with handles kept and plain values made JSON-ready (so that they can be recorded
    and hashed), recording the nodes it depends on."""
    if isinstance(value, Output):
        if value._graph_id != graph_id:
            raise InvalidPipeline(
                f"{site}: argument {key!r} of step {step!r} is an output of another pipeline "
                "build; pass outputs only within the pipeline that made them"
            )
        upstream.append(value.node)
        return value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidPipeline(f"{site}: argument {key!r} of step {step!r} is {value}")
        return value
    if isinstance(value, (list, tuple)):
        return [_check_value(v, graph_id, site, step, key, upstream) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise InvalidPipeline(f"{site}: argument {key!r} of step {step!r} has non-text keys")
        return {k: _check_value(v, graph_id, site, step, key, upstream) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise InvalidPipeline(
        f"{site}: argument {key!r} of step {step!r} is a {type(value).__name__}, which a "
        "pipeline cannot record as a parameter; pass data between steps as step outputs, and "
        "pass plain values (text, numbers, lists, dicts, paths, dates) as parameters"
    )


def _has_handles(value: Any) -> bool:
    if isinstance(value, Output):
        return True
    if isinstance(value, list):
        return any(_has_handles(v) for v in value)
    if isinstance(value, dict):
        return any(_has_handles(v) for v in value.values())
    return False


def _describe_arg(value: Any) -> Any:
    if isinstance(value, Output):
        return {"$output": value.node, "name": value.name}
    if isinstance(value, (list, tuple)):
        return [_describe_arg(v) for v in value]
    if isinstance(value, dict):
        return {k: _describe_arg(v) for k, v in value.items()}
    return value


def canonical(value: Any) -> str:
    """Deterministic JSON of a parameter value (what cache keys and run params use)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _caller() -> str:
    """``file:line`` of the innermost frame outside loopml (the user's step call)."""
    frame: FrameType | None = sys._getframe(1)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(here + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"
