"""Reproduce a pipeline run: run it again from what it recorded and say whether it came out the
same, and if not, which recorded input differs.

What a pipeline run records is enough to rebuild it: the pipeline (``module:function`` and its
file), the parameters, the seed, the code hash of every step, the environment (git commit and
dirty flag, Python, platform, package versions) and, per step, the dataset versions it read. A
reproduction loads the pipeline, re-runs it with the cache off, then compares step by step: the
outputs' content hashes, a model's predictions on the data it was trained on when the model files
differ, and the metrics the steps logged. Where something differs, it lists the recorded inputs
that differ now, the likely causes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import Environment, Run
    from loopml.pipelines.materialize import OutputRef
    from loopml.pipelines.result import PipelineResult

__all__ = ["Reproduction", "StepComparison", "reproduce"]


@dataclass(frozen=True, slots=True)
class StepComparison:
    """One step, then and now.

    Attributes:
        node: the step.
        outputs_match: every output has the same content hash (or, for a model, the same
            predictions); None when the step did not run both times.
        predictions_match: for a model output whose files differ: whether both models predict
            the same on the data the step was given (None: no model, or nothing to compare on).
        metric_differences: ``metric -> (then, now)`` for metrics that differ beyond the
            tolerance (or exist only once).
        notes: what was compared and how.
    """

    node: str
    outputs_match: bool | None
    predictions_match: bool | None = None
    metric_differences: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outputs_match is not False and not self.metric_differences


@dataclass(frozen=True, slots=True)
class Reproduction:
    """The outcome of :func:`reproduce`.

    Attributes:
        original: the reproduced run's id; ``rerun`` the new run's.
        reproduced: every step's outputs and metrics match.
        steps: each step's comparison, in graph order.
        differences: the recorded inputs that differ now (code, parameters, seed, data,
            packages, git commit, Python): where to look when it did not reproduce.
    """

    original: str
    rerun: str
    reproduced: bool
    steps: list[StepComparison]
    differences: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "rerun": self.rerun,
            "reproduced": self.reproduced,
            "differences": list(self.differences),
            "steps": [
                {
                    "step": s.node,
                    "ok": s.ok,
                    "outputs_match": s.outputs_match,
                    "predictions_match": s.predictions_match,
                    "metric_differences": {k: list(v) for k, v in s.metric_differences.items()},
                    "notes": list(s.notes),
                }
                for s in self.steps
            ],
        }


def _environment_differences(then: Environment | None, now: Environment) -> list[str]:
    if then is None:
        return ["the original run recorded no environment"]
    out = []
    if then.git_commit != now.git_commit:
        out.append(f"git commit: {then.git_commit or 'none'} then, {now.git_commit or 'none'} now")
    if then.git_dirty and now.git_dirty:
        out.append("uncommitted changes then and now: the code may differ from both commits")
    elif then.git_dirty != now.git_dirty and now.git_dirty is not None:
        out.append(f"uncommitted changes: {bool(then.git_dirty)} then, {bool(now.git_dirty)} now")
    if then.python_version != now.python_version:
        out.append(f"Python {then.python_version} then, {now.python_version} now")
    if then.packages and now.packages:
        changed = [
            f"{name} {version} -> {now.packages.get(name, 'missing')}"
            for name, version in sorted(then.packages.items())
            if now.packages.get(name) != version
        ]
        if changed:
            shown = ", ".join(changed[:10]) + (
                f" and {len(changed) - 10} more" if len(changed) > 10 else ""
            )
            out.append(f"packages changed: {shown}")
    return out


def _steps_by_node(client: Client, run_id: str) -> dict[str, Run]:
    from loopml.pipelines.runner import TAG

    out = {}
    for r in client.iter_runs(None, f"parent_run_id = '{run_id}'"):
        if TAG.STEP in r.tags:
            # a cached step's metrics are where its outputs were made
            source = r.tags.get(TAG.CACHED_FROM)
            out[r.tags[TAG.STEP]] = client.get_run(source) if source else r
    return out


def _refs(run: Run | None) -> dict[str, OutputRef]:
    from loopml.pipelines.materialize import OutputRef
    from loopml.pipelines.runner import TAG

    if run is None or TAG.OUTPUTS not in run.tags:
        return {}
    return {d["name"]: OutputRef.from_dict(d) for d in json.loads(run.tags[TAG.OUTPUTS])}


def _data(client: Client, run: Run | None) -> dict[str, str]:
    if run is None:
        return {}
    return {
        f"{i.dataset_version.name} ({i.role})": f"version {i.dataset_version.version} "
        f"({i.dataset_version.digest[:12]})"
        for i in client.get_run_inputs(run.run_id)
    }


def _same_predictions(
    client: Client, then: OutputRef, now: OutputRef, inputs: list[Any]
) -> bool | None:
    """Whether two models predict the same on the first table among the step's inputs (its
    feature columns, when the model names them)."""
    from loopml._frames import is_table
    from loopml.pipelines.materialize import load_output

    table = next((v for v in inputs if is_table(v)), None)
    if table is None:
        return None
    a, b = load_output(client, then), load_output(client, now)
    frame = (
        table.to_pandas() if hasattr(table, "to_pandas") and not hasattr(table, "iloc") else table
    )
    columns = getattr(a, "feature_names_in_", None)
    if columns is not None:
        frame = frame[list(columns)]
    sample = frame.iloc[:2000]
    import numpy as np

    try:
        pa, pb = np.asarray(a.predict(sample)), np.asarray(b.predict(sample))
    except Exception:
        return None
    if pa.dtype.kind in "fc":
        return bool(np.allclose(pa, pb, rtol=1e-9, atol=1e-12, equal_nan=True))
    return bool(np.array_equal(pa, pb))


def _metric_differences(
    then: Run | None, now: Run | None, tolerance: float
) -> dict[str, tuple[float | None, float | None]]:
    if then is None or now is None:
        return {}
    out: dict[str, tuple[float | None, float | None]] = {}
    for key in sorted(set(then.metrics) | set(now.metrics)):
        a, b = then.metrics.get(key), now.metrics.get(key)
        if a is None or b is None:
            out[key] = (a, b)
        elif not (
            math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
            or (math.isnan(a) and math.isnan(b))
        ):
            out[key] = (a, b)
    return out


def reproduce(
    run_id: str,
    *,
    client: Client | None = None,
    executor: str = "local",
    tolerance: float = 1e-9,
    quiet: bool = True,
) -> Reproduction:
    """Re-run pipeline run ``run_id`` from its record and compare the two.

    Args:
        run_id: a pipeline run (``loopml pipelines list``).
        client: the client (default: the fluent API's).
        executor: where the re-run's steps run.
        tolerance: relative and absolute tolerance for metrics.
        quiet: print nothing while the pipeline runs.

    Raises:
        InvalidArgument: the run is not a pipeline run, or its pipeline cannot be loaded.
        RunNotFound: no such run.
    """
    from loopml.client.environment import capture_environment
    from loopml.pipelines.runner import TAG
    from loopml.pipelines.schedule import load_pipeline, recorded_ref

    if client is None:
        from loopml.tracking import get_client

        client = get_client()
    original = client.get_run(run_id)
    if original.tags.get(TAG.KIND) != "pipeline":
        raise InvalidArgument(f"run {run_id!r} is not a pipeline run; `loopml pipelines list`")
    record = json.loads(client.read_text(run_id, "pipeline.json"))
    pipe = load_pipeline(recorded_ref(record))
    differences: list[str] = []
    graph = pipe.graph(**record.get("params", {}))
    recorded_code = {n["id"]: n["code_hash"] for n in record["nodes"]}
    for node in graph.nodes.values():
        before = recorded_code.get(node.id)
        if before is None:
            differences.append(f"step {node.id!r} is new")
        elif before != node.step.code_hash:
            differences.append(f"the code of step {node.id!r} changed ({node.step.location})")
    for gone in set(recorded_code) - set(graph.nodes):
        differences.append(f"step {gone!r} is gone")
    differences += _environment_differences(
        client.get_environment(run_id), capture_environment(packages=True)
    )
    project = client.store.get_project(original.project_id).name
    result: PipelineResult = pipe.run(
        client=client,
        executor=executor,
        cache=False,
        project=project,
        quiet=quiet,
        raise_on_failure=False,
        seed=record.get("seed"),
        tags={"loopml.reproduces": run_id},
        **record.get("params", {}),
    )
    then_runs, now_runs = _steps_by_node(client, run_id), _steps_by_node(client, result.run_id)
    comparisons = []
    for node_id in graph.nodes:
        then, now = then_runs.get(node_id), now_runs.get(node_id)
        data_then, data_now = _data(client, then), _data(client, now)
        for name in sorted(set(data_then) | set(data_now)):
            if data_then.get(name) != data_now.get(name):
                differences.append(
                    f"step {node_id!r} read dataset {name}: {data_then.get(name, 'nothing')} "
                    f"then, {data_now.get(name, 'nothing')} now"
                )
        comparisons.append(_compare_step(client, graph, node_id, then, now, result, tolerance))
    reproduced = result.ok and all(c.ok for c in comparisons)
    if not result.ok:
        differences.insert(
            0,
            "the re-run failed: " + "; ".join(f"{s.node}: {s.error}" for s in result.failed_steps),
        )
    client.set_tag(result.run_id, "loopml.reproduced", str(reproduced).lower())
    return Reproduction(run_id, result.run_id, reproduced, comparisons, differences)


def _compare_step(
    client: Client,
    graph: Any,
    node_id: str,
    then: Run | None,
    now: Run | None,
    result: PipelineResult,
    tolerance: float,
) -> StepComparison:
    refs_then, refs_now = _refs(then), _refs(now)
    if not refs_then or not refs_now:
        return StepComparison(node_id, None, notes=["the step did not finish both times"])
    notes: list[str] = []
    outputs_match = True
    predictions: bool | None = None
    for name, ref in refs_then.items():
        new = refs_now.get(name)
        if new is None:
            outputs_match = False
            notes.append(f"output {name!r} is missing now")
        elif ref.sha256 == new.sha256:
            notes.append(f"output {name!r}: identical content")
        elif ref.kind == "model" and new.kind == "model":
            node = graph.nodes[node_id]
            inputs = [
                result.load(v.node, v.name)
                for v in node.arguments.values()
                if type(v).__name__ == "Output"
            ]
            predictions = _same_predictions(client, ref, new, inputs)
            if predictions is None:
                outputs_match = False
                notes.append(f"model {name!r}: files differ, no table to compare predictions on")
            else:
                outputs_match = outputs_match and predictions
                notes.append(
                    f"model {name!r}: files differ, predictions "
                    + ("identical" if predictions else "differ")
                    + " on its training input"
                )
        else:
            outputs_match = False
            notes.append(f"output {name!r}: content differs")
    return StepComparison(
        node_id,
        outputs_match,
        predictions,
        _metric_differences(then, now, tolerance),
        notes,
    )
