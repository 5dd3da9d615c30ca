"""Promotion and rollback: move an alias only when the release gate passes.

    loopml.promote("churn", 4, "champion", gate=gate)   # runs the gate; refuses on failure
    loopml.promote("churn", 4, "champion", gate=gate, force=True, reason="hotfix for #123")
    loopml.rollback("churn", "champion")                 # back to the previous champion

Every move is an audit event (who, when, why) written with the alias in one transaction; the
gate's result is stored on the version whether it passed or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import GateFailed, InvalidArgument, ModelNotFound

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import AuditEvent, ModelVersion
    from loopml.models.evaluation.result import EvaluationResult
    from loopml.models.gate import Gate, GateResult

__all__ = ["Comparison", "Promotion", "compare_models", "promote", "rollback"]


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` did.

    Attributes:
        name: the registered model.
        version: the version the alias now points at.
        alias: the alias that moved.
        previous: the version the alias pointed at before, or None.
        gate: the gate's result, or None when promoted without a gate.
        forced: whether the alias moved although the gate failed.
        event: the audit event of the move.
    """

    name: str
    version: int
    alias: str
    previous: int | None
    gate: GateResult | None
    forced: bool
    event: AuditEvent

    def __str__(self) -> str:
        before = f" (was version {self.previous})" if self.previous is not None else ""
        how = " FORCED past a failed gate" if self.forced else ""
        verdict = (
            "" if self.gate is None else f", gate {'passed' if self.gate.passed else 'failed'}"
        )
        return f"{self.name}@{self.alias} -> version {self.version}{before}{how}{verdict}"


def _client(client: Client | None) -> Client:
    from loopml.client.context import get_client

    return client or get_client()


def _project(project: str | None) -> str | None:
    """The given project, else the one set with ``loopml.set_project`` (else the default)."""
    from loopml.client.context import get_project

    return project or get_project()


def _current(c: Client, name: str, alias: str, project: str | None) -> ModelVersion | None:
    try:
        return c.get_model_version_by_alias(name, alias, project=project)
    except ModelNotFound as exc:
        if getattr(exc, "version", None) == f"@{alias}":
            return None
        raise


def promote(
    name: str,
    version: int,
    alias: str = "champion",
    *,
    gate: Gate | None = None,
    force: bool = False,
    reason: str = "",
    project: str | None = None,
    client: Client | None = None,
) -> Promotion:
    """Point ``alias`` at ``version`` of ``name`` if it passes ``gate``.

    The gate compares the version with the one the alias points at now (the champion), on the
    gate's evaluation data; its result is stored on the version
    (``ModelVersion.gate_result``) before the alias moves.

    Args:
        name: the registered model.
        version: the version to promote.
        alias: the alias to move (``champion`` by default).
        gate: the release gate; None moves the alias without tests.
        force: move the alias even if the gate fails (needs ``reason``; audited as forced).
        reason: why (recorded in the audit event).
        project: the project (default: the client's).
        client: the client (default: the fluent API's).

    Returns:
        What happened, with the gate's result and the audit event.

    Raises:
        GateFailed: the gate failed and ``force`` is False (``.result`` holds every check).
        InvalidArgument: ``force`` without a ``reason``.
        ModelNotFound: the model or version does not exist.
    """
    if force and not reason.strip():
        raise InvalidArgument(
            "a forced promotion needs a reason (it is recorded in the audit trail): "
            "promote(..., force=True, reason='why')"
        )
    c = _client(client)
    project = _project(project)
    candidate = c.get_model_version(name, version, project=project)
    current = _current(c, name, alias, project)
    result = None
    if gate is not None:
        champion = (
            f"models:/{name}/{current.version}"
            if current is not None and current.version != candidate.version
            else None
        )
        result = gate.run(candidate.uri, champion, client=c, project=project)
        c.set_model_version_gate_result(name, version, result.to_dict(), project=project)
        if not result.passed and not force:
            failed = "; ".join(f"{f.name}: {f.message}" for f in result.failures)
            raise GateFailed(
                f"the gate failed for {candidate.uri}, so {name}@{alias} did not move: {failed}. "
                "Fix the model, or promote with force=True and a reason",
                result=result,
            )
    forced = result is not None and not result.passed
    why = f"forced past a failed gate: {reason}" if forced else reason
    if result is not None and result.passed and not why:
        why = "gate passed"
    event = c.set_model_alias(name, alias, version, reason=why, project=project)
    return Promotion(
        name=name,
        version=candidate.version,
        alias=alias,
        previous=current.version if current is not None else None,
        gate=result,
        forced=forced,
        event=event,
    )


def rollback(
    name: str,
    alias: str = "champion",
    *,
    to_version: int | None = None,
    reason: str = "",
    project: str | None = None,
    client: Client | None = None,
) -> AuditEvent:
    """Move ``alias`` back to the version it pointed at before its last move (or ``to_version``).

    Raises:
        InvalidArgument: the alias never pointed anywhere else.
        ModelNotFound: the model, alias or version does not exist.
    """
    c = _client(client)
    project = _project(project)
    return c.rollback_alias(
        name, alias, to_version=to_version, reason=reason or "rollback", project=project
    )


@dataclass(frozen=True)
class Comparison:
    """Two models evaluated on the same rows.

    Attributes:
        a: the first model's evaluation.
        b: the second's.
        deltas: metric -> ``b - a``.
        intervals: metric -> the paired bootstrap interval of ``b - a`` (when asked).
    """

    a: EvaluationResult
    b: EvaluationResult
    deltas: dict[str, float]
    intervals: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: both metric sets, the deltas and the intervals."""
        return {
            "a": {"model": self.a.model, "metrics": dict(self.a.metrics)},
            "b": {"model": self.b.model, "metrics": dict(self.b.metrics)},
            "deltas": self.deltas,
            "intervals": {k: v.to_dict() for k, v in self.intervals.items()},
        }


def compare_models(
    a: Any,
    b: Any,
    data: Any,
    *,
    target: str,
    task: str | None = None,
    bootstrap: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
    trusted: bool = False,
    project: str | None = None,
    client: Client | None = None,
) -> Comparison:
    """Evaluate two models on the same rows and report ``b - a`` per metric.

    Args:
        a: a URI (``models:/churn@champion``), a folder or a fitted model.
        b: the same for the other model.
        data: a ``datasets:/`` URI or a DataFrame with the target column.
        target: the target column.
        task: ``classification`` or ``regression`` (inferred when None).
        bootstrap: add paired bootstrap intervals of every metric that can be resampled.
        n_resamples: resamples of the bootstrap.
        seed: the bootstrap's seed.
        trusted: load models whose flavor runs stored code.
        project: the project of the URIs.
        client: the client (default: the fluent API's).
    """
    from loopml.models.evaluation.evaluate import evaluate
    from loopml.models.evaluation.inputs import load_data
    from loopml.models.gate import load_any

    c = _client(client)
    project = _project(project)
    frame, _ = load_data(data, client=lambda: c, project=project)
    results = []
    for model in (a, b):
        loaded, uri = load_any(model, c, trusted, project)
        found = evaluate(
            loaded,
            frame,
            target=target,
            task=task,
            run=False,
            plots=False,
            latency=False,
            client=c,
            project=project,
        )
        if uri is not None and found.model is None:
            from dataclasses import replace

            found = replace(found, model=uri)
        results.append(found)
    first, second = results
    deltas = second.compare(first)
    intervals: dict[str, Any] = {}
    if bootstrap:
        from loopml.models.evaluation.bootstrap import bootstrap_metrics

        assert second.predictions is not None
        for metric in bootstrap_metrics(second.predictions):
            if metric in deltas:
                intervals[metric] = second.paired_bootstrap_delta(
                    first, metric, n=n_resamples, seed=seed
                )
    return Comparison(first, second, deltas, intervals)
