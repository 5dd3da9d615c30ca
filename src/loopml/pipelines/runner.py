"""The driver: runs a built graph step by step on an executor, with the cache, retries, timeouts,
failure handling and resume, and records everything as runs.

The pipeline run is a parent run (its params are the pipeline's, its ``pipeline.json`` artifact
the graph); every step is a child run tagged with its cache key and its outputs. A step whose
cache key (step name, code, parameters, and the content hashes of its inputs) matches a finished
step run reuses that run's outputs, and its run says where they came from.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from loopml.entities import RunStatus
from loopml.errors import InvalidArgument, RunNotFound
from loopml.pipelines.execute import Attempt, StepTask, input_ref
from loopml.pipelines.executors import make_executor
from loopml.pipelines.graph import Graph, Node, Output, canonical
from loopml.pipelines.materialize import OutputRef
from loopml.pipelines.result import PipelineResult, StepResult

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import Run

__all__ = ["TAG", "resumable", "run_graph"]


class TAG:
    """The tags pipeline and step runs carry (``tags.`loopml.step```in a filter)."""

    KIND = "loopml.kind"  # "pipeline" or "step"
    PIPELINE = "loopml.pipeline"
    REF = "loopml.pipeline_ref"  # module:qualname of the pipeline function
    EXECUTOR = "loopml.executor"
    RESUMED_FROM = "loopml.resumed_from"
    TRIGGER = "loopml.trigger"
    STEP = "loopml.step"
    CACHE_KEY = "loopml.cache_key"
    CODE = "loopml.code_hash"
    PARAMS = "loopml.params_hash"
    INPUTS = "loopml.inputs_hash"
    CACHED_FROM = "loopml.cached_from"
    OUTPUTS = "loopml.outputs"
    UPSTREAM = "loopml.upstream"
    ATTEMPTS = "loopml.attempts"
    ERROR = "loopml.error"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class _Keys:
    code: str
    params: str
    inputs: str

    @property
    def cache_key(self) -> str:
        return _sha(f"v1|{self.code}|{self.params}|{self.inputs}")


def _with_refs(value: Any, done: Mapping[str, StepResult], digest: bool) -> Any:
    """Arguments with each handle replaced by its output's reference (or content hash)."""
    if isinstance(value, Output):
        ref = next(r for r in done[value.node].outputs if r.name == value.name)
        return ref.sha256 if digest else input_ref(ref)
    if isinstance(value, list):
        return [_with_refs(v, done, digest) for v in value]
    if isinstance(value, dict):
        return {k: _with_refs(v, done, digest) for k, v in value.items()}
    return value


def _keys(node: Node, done: Mapping[str, StepResult], seed: int | None) -> _Keys:
    """The step's hashes; the pipeline's seed counts as a parameter (outputs may depend on it)."""
    params = node.params()
    inputs = {k: _with_refs(v, done, True) for k, v in node.arguments.items() if k not in params}
    if seed is not None:
        params = {**params, "$seed": seed}
    return _Keys(
        _sha(f"{node.step.name}|{node.step.code_hash}|{','.join(node.output_names)}"),
        _sha(canonical(params)),
        _sha(canonical(inputs)),
    )


def _refs(tag: str | None) -> tuple[OutputRef, ...] | None:
    if not tag:
        return None
    try:
        return tuple(OutputRef.from_dict(d) for d in json.loads(tag))
    except (ValueError, KeyError, TypeError):
        return None


class _Driver:
    def __init__(
        self,
        client: Client,
        graph: Graph,
        name: str,
        project: str,
        run_id: str,
        *,
        use_cache: bool,
        resume: Mapping[str, Run],
        quiet: bool,
        seed: int | None = None,
    ) -> None:
        self.client = client
        self.graph = graph
        self.name = name
        self.project = project
        self.run_id = run_id
        self.use_cache = use_cache
        self.resume = resume
        self.quiet = quiet
        self.seed = seed
        self.results: dict[str, StepResult] = {}  # steps that are over
        self.started: dict[str, StepResult] = {}  # steps running or waiting to retry

    def say(self, text: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"[{self.name}] {text}\n")
            sys.stderr.flush()

    def _step_run(self, node: Node, keys: _Keys, extra: Mapping[str, str]) -> str:
        run = self.client.create_run(
            self.project,
            name=node.id,
            parent_run_id=self.run_id,
            tags={
                TAG.KIND: "step",
                TAG.PIPELINE: self.name,
                TAG.STEP: node.id,
                TAG.CACHE_KEY: keys.cache_key,
                TAG.CODE: keys.code,
                TAG.PARAMS: keys.params,
                TAG.INPUTS: keys.inputs,
                TAG.UPSTREAM: ",".join(
                    r for u in node.upstream if (r := self.results[u].run_id) is not None
                ),
                **extra,
            },
            params={
                k: canonical(v) if not isinstance(v, str) else v for k, v in node.params().items()
            },
            capture_environment=False,
            heartbeat=False,
        )
        return run.run_id

    def reuse(self, node: Node, keys: _Keys) -> StepResult | None:
        """A finished run of this step to reuse: the resumed run's (whatever the cache setting),
        else the newest with the same cache key."""
        earlier = self.resume.get(node.id)
        if earlier is not None and earlier.tags.get(TAG.CACHE_KEY) == keys.cache_key:
            source, why = earlier, "resumed: finished in the run being resumed"
        elif self.use_cache and node.step.cache:
            key = keys.cache_key
            page = self.client.search_runs(
                self.project,
                f"tags.`{TAG.CACHE_KEY}` = '{key}' and status = 'finished'",
                order_by="start_time desc",
                max_results=1,
            )
            if not page.items:
                return None
            source, why = page.items[0], "same code, inputs and parameters"
        else:
            return None
        refs = _refs(source.tags.get(TAG.OUTPUTS))
        if refs is None:
            return None
        origin = source.tags.get(TAG.CACHED_FROM) or source.run_id
        run_id = self._step_run(
            node, keys, {TAG.CACHED_FROM: origin, TAG.OUTPUTS: source.tags[TAG.OUTPUTS]}
        )
        self.client.end_run(run_id, RunStatus.FINISHED)
        return StepResult(node.id, "cached", run_id, origin, why, refs)

    def why_run(self, node: Node, keys: _Keys) -> str:
        """Why the step runs: what changed since its last run in this pipeline."""
        if not (self.use_cache and node.step.cache):
            return "cache off"
        page = self.client.search_runs(
            self.project,
            f"tags.`{TAG.PIPELINE}` = '{self.name}' and tags.`{TAG.STEP}` = '{node.id}'",
            order_by="start_time desc",
            max_results=1,
        )
        last = page.items[0] if page.items else None
        if last is None:
            return "first run"
        changed = [
            what
            for what, tag, value in (
                ("code", TAG.CODE, keys.code),
                ("parameters", TAG.PARAMS, keys.params),
                ("inputs", TAG.INPUTS, keys.inputs),
            )
            if last.tags.get(tag) != value
        ]
        if changed:
            return " and ".join(changed) + " changed"
        return "no finished run to reuse"

    def task(self, node: Node, run_id: str) -> StepTask:
        import cloudpickle  # type: ignore[import-untyped]

        return StepTask(
            node=node.id,
            run_id=run_id,
            function=cloudpickle.dumps(node.step.fn),
            arguments={k: _with_refs(v, self.results, False) for k, v in node.arguments.items()},
            outputs=node.output_names,
            tracking_uri=self.client.tracking_uri,
            artifact_uri=self.client.artifact_uri,
            project=self.project,
            seed=self.seed,
        )


def run_graph(
    client: Client,
    graph: Graph,
    *,
    name: str,
    project: str,
    run_id: str,
    executor: str = "local",
    address: str | None = None,
    max_workers: int | None = None,
    use_cache: bool = True,
    resume: Mapping[str, Run] | None = None,
    quiet: bool = False,
    seed: int | None = None,
) -> PipelineResult:
    """Run ``graph``'s steps under the pipeline run ``run_id`` (already created) and end it.

    ``resume`` maps node ids to the finished step runs of the run being resumed
    (:func:`resumable`).
    """
    started = time.perf_counter()
    try:
        ex = make_executor(executor, client, max_workers=max_workers, address=address)
    except BaseException:
        client.end_run(run_id, RunStatus.FAILED)
        raise
    d = _Driver(
        client,
        graph,
        name,
        project,
        run_id,
        use_cache=use_cache,
        resume=resume or {},
        quiet=quiet,
        seed=seed,
    )
    waiting = list(graph.nodes)
    running: dict[str, tuple[Any, Node, str, int]] = {}  # node -> (handle, node, run id, attempt)
    retry_at: dict[str, tuple[float, str, int]] = {}  # node -> (when, run id, attempt)
    try:
        while waiting or running or retry_at:
            progressed = False
            for node_id in list(waiting):
                node = graph.nodes[node_id]
                states = [d.results.get(u) for u in node.upstream]
                if any(s is not None and s.status in ("failed", "skipped") for s in states):
                    waiting.remove(node_id)
                    d.results[node_id] = StepResult(
                        node_id, "skipped", reason="an upstream step failed"
                    )
                    d.say(f"{node_id}: skipped (an upstream step failed)")
                    progressed = True
                    continue
                if any(s is None for s in states) or len(running) >= ex.max_workers:
                    continue
                waiting.remove(node_id)
                progressed = True
                keys = _keys(node, d.results, seed)
                reused = d.reuse(node, keys)
                if reused is not None:
                    d.results[node_id] = reused
                    d.say(
                        f"{node_id}: cached ({reused.reason}; outputs of run {reused.cached_from})"
                    )
                    continue
                why = d.why_run(node, keys)
                step_run = d._step_run(node, keys, {})
                d.started[node_id] = StepResult(node_id, "finished", step_run, reason=why)
                d.say(f"{node_id}: running ({why})")
                running[node_id] = (
                    ex.start(d.task(node, step_run), node.step.fn, node.step.timeout),
                    node,
                    step_run,
                    1,
                )
            now = time.perf_counter()
            for node_id, (when, step_run, attempt) in list(retry_at.items()):
                if now >= when and len(running) < ex.max_workers:
                    del retry_at[node_id]
                    node = graph.nodes[node_id]
                    running[node_id] = (
                        ex.start(d.task(node, step_run), node.step.fn, node.step.timeout),
                        node,
                        step_run,
                        attempt,
                    )
                    progressed = True
            if not running:
                if not progressed and retry_at:
                    time.sleep(
                        max(0.0, min(w for w, _, _ in retry_at.values()) - time.perf_counter())
                    )
                continue
            handles = {id(h): n for n, (h, *_rest) in running.items()}
            for handle, attempt_result in ex.wait([h for h, *_ in running.values()], 0.5):
                node_id = handles[id(handle)]
                _, node, step_run, attempt = running.pop(node_id)
                _finish(d, node, step_run, attempt, attempt_result, retry_at)
    except BaseException:
        client.end_run(run_id, RunStatus.KILLED)  # interrupted, or a bug of ours: not left running
        for _, _, step_run, _ in running.values():
            client.end_run(step_run, RunStatus.KILLED)
        raise
    finally:
        ex.shutdown()
    failed = any(s.status == "failed" for s in d.results.values())
    status: Literal["finished", "failed"] = "failed" if failed else "finished"
    client.end_run(run_id, RunStatus.FAILED if failed else RunStatus.FINISHED)
    seconds = time.perf_counter() - started
    d.say(f"{status} in {seconds:.2f} s (run {run_id})")
    return PipelineResult(name, run_id, status, d.results, graph.result, client, seconds)


def _finish(
    d: _Driver,
    node: Node,
    step_run: str,
    attempt: int,
    result: Attempt,
    retry_at: dict[str, tuple[float, str, int]],
) -> None:
    client = d.client
    previous = d.started.pop(node.id)
    if result.ok:
        client.set_tags(
            step_run,
            {
                TAG.OUTPUTS: json.dumps([r.to_dict() for r in result.outputs]),
                TAG.ATTEMPTS: str(attempt),
            },
        )
        client.end_run(step_run, RunStatus.FINISHED)
        d.results[node.id] = replace(
            previous, outputs=result.outputs, seconds=result.seconds, attempts=attempt
        )
        d.say(f"{node.id}: finished in {result.seconds:.2f} s")
        return
    if attempt <= node.step.retries:
        delay = node.step.retry_delay * 2 ** (attempt - 1)
        d.say(f"{node.id}: attempt {attempt} failed ({result.error}); retrying in {delay:g} s")
        retry_at[node.id] = (time.perf_counter() + delay, step_run, attempt + 1)
        d.started[node.id] = previous
        return
    client.set_tags(step_run, {TAG.ERROR: result.error[:8000], TAG.ATTEMPTS: str(attempt)})
    if result.traceback:
        client.log_text(step_run, result.traceback, "error.txt")
    client.end_run(step_run, RunStatus.FAILED)
    d.results[node.id] = replace(
        previous,
        status="failed",
        seconds=result.seconds,
        attempts=attempt,
        error=result.error,
        traceback=result.traceback,
    )
    d.say(f"{node.id}: failed after {attempt} attempt(s): {result.error}")


def resumable(client: Client, run_id: str, name: str) -> dict[str, Run]:
    """The finished step runs of pipeline run ``run_id``, by node id."""
    try:
        run = client.get_run(run_id)
    except RunNotFound:
        raise InvalidArgument(
            f"cannot resume: run {run_id!r} does not exist; `loopml pipelines list` shows "
            "pipeline runs"
        ) from None
    if run.tags.get(TAG.KIND) != "pipeline" or run.tags.get(TAG.PIPELINE) != name:
        raise InvalidArgument(f"cannot resume: run {run_id!r} is not a run of pipeline {name!r}")
    out: dict[str, Run] = {}
    for child in client.iter_runs(None, f"parent_run_id = '{run_id}' and status = 'finished'"):
        node = child.tags.get(TAG.STEP)
        if node:
            out[node] = child
    return out
