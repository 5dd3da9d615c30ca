"""What a pipeline run gives back: each step's outcome and the pipeline's outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from loopml.errors import PipelineFailed
from loopml.pipelines.graph import Output
from loopml.pipelines.materialize import OutputRef, load_output

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["PipelineResult", "StepResult"]

StepStatus = Literal["finished", "cached", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a pipeline run.

    Attributes:
        node: the node's id (the step's name, ``name_2`` for its second call).
        status: ``finished`` (ran), ``cached`` (reused an earlier run's outputs), ``failed``,
            or ``skipped`` (an upstream step failed).
        run_id: the step's run in this pipeline run (None when skipped).
        cached_from: the run whose outputs were reused, when cached.
        reason: why the step ran or was reused (``code changed``, ``same code, inputs and
            parameters``).
        outputs: the outputs' references (load them with :meth:`PipelineResult.load`).
        seconds: wall time of the last attempt.
        attempts: attempts made (1 + retries used).
        error: the error of a failed step (its last line); ``traceback`` the whole of it.
    """

    node: str
    status: StepStatus
    run_id: str | None = None
    cached_from: str | None = None
    reason: str = ""
    outputs: tuple[OutputRef, ...] = ()
    seconds: float = 0.0
    attempts: int = 0
    error: str = ""
    traceback: str = ""


class PipelineResult:
    """A pipeline run: its status, its steps, and its outputs (loaded on first access).

    Attributes:
        name: the pipeline's name.
        run_id: the pipeline's run (each step's run is a child of it).
        status: ``finished`` or ``failed``.
        steps: node id -> :class:`StepResult`, in the graph's order.
        seconds: wall time of the whole run.
    """

    def __init__(
        self,
        name: str,
        run_id: str,
        status: Literal["finished", "failed"],
        steps: Mapping[str, StepResult],
        result: Any,
        client: Client,
        seconds: float,
    ) -> None:
        self.name = name
        self.run_id = run_id
        self.status = status
        self.steps = dict(steps)
        self.seconds = seconds
        self._result = result
        self._client = client
        self._loaded: dict[tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for s in self.steps.values():
            counts[s.status] = counts.get(s.status, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in counts.items())
        return f"<PipelineResult {self.name} {self.status} run={self.run_id} ({summary})>"

    @property
    def ok(self) -> bool:
        return self.status == "finished"

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps.values() if s.status == "failed"]

    def load(self, node: str, name: str = "output") -> Any:
        """The value of output ``name`` of step ``node``.

        Raises:
            InvalidArgument: no such step or output, or the step did not finish.
        """
        from loopml.errors import InvalidArgument

        key = (node, name)
        if key in self._loaded:
            return self._loaded[key]
        step = self.steps.get(node)
        if step is None:
            raise InvalidArgument(
                f"pipeline {self.name!r} has no step {node!r}; its steps: {', '.join(self.steps)}"
            )
        ref = next((r for r in step.outputs if r.name == name), None)
        if ref is None:
            if step.status in ("failed", "skipped"):
                raise InvalidArgument(f"step {node!r} {step.status}: it has no outputs")
            names = ", ".join(r.name for r in step.outputs)
            raise InvalidArgument(f"step {node!r} has no output {name!r}; its outputs: {names}")
        value = load_output(self._client, ref)
        self._loaded[key] = value
        return value

    @property
    def output(self) -> Any:
        """What the pipeline function returned, with each step output loaded (None when it
        returned nothing).

        Raises:
            PipelineFailed: the run failed.
        """
        self.raise_for_status()
        return self._materialize(self._result)

    def _materialize(self, value: Any) -> Any:
        if isinstance(value, Output):
            return self.load(value.node, value.name)
        if isinstance(value, (list, tuple)):
            return type(value)(self._materialize(v) for v in value)
        if isinstance(value, dict):
            return {k: self._materialize(v) for k, v in value.items()}
        return value

    def raise_for_status(self) -> None:
        """Raise :class:`PipelineFailed` when the run failed."""
        if self.status != "finished":
            raise PipelineFailed(_failure_message(self), self)


def _failure_message(result: PipelineResult) -> str:
    failed = result.failed_steps
    lines = [
        f"pipeline {result.name!r} failed (run {result.run_id}): "
        + ", ".join(f"step {s.node!r}: {s.error}" for s in failed)
    ]
    for s in failed[:1]:
        if s.traceback:
            lines.append(s.traceback.rstrip())
    lines.append(
        f"Fix the step and resume: loopml pipelines resume {result.run_id} (or "
        f".run(resume={result.run_id!r})); finished steps are not run again."
    )
    return "\n".join(lines)
