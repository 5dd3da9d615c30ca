"""The release gate: the automated test suite a model version passes before an alias moves to it.

A :class:`Gate` is a list of checks and the evaluation data they run on::

    from loopml.models import Gate, checks

    gate = Gate(
        [
            checks.metric("f1", min=0.80),
            checks.no_regression("f1", tolerance=0.01, bootstrap=True),
            checks.slice_metric("region", "accuracy", min=0.70),
            checks.latency(p99_ms=20),
            checks.size(max_mb=50),
            checks.data_contract(),
            checks.sanity(),
        ],
        data="datasets:/churn-eval@latest",
        target="churned",
    )
    result = gate.run("models:/churn/4", champion="models:/churn@champion")

:meth:`Gate.run` loads both models, evaluates each once on the same rows
(:func:`~loopml.models.evaluation.evaluate`), then runs every check on what it found. A check
is any object with a ``name``, a ``required`` flag and ``run(context) -> CheckResult``
(:class:`Check`); a plain function ``context -> bool`` becomes one with
:func:`~loopml.models.gate_checks.custom`. The gate passes when every required check passes;
failed optional checks are warnings. A gate can also be written as YAML (:meth:`Gate.from_dict`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from loopml.errors import InvalidArgument, InvalidSchema

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion
    from loopml.models.evaluation.result import EvaluationResult
    from loopml.schema import Schema

__all__ = ["Check", "CheckResult", "Gate", "GateContext", "GateResult"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: the check's name (``metric f1 >= 0.8``).
        passed: whether it passed.
        message: what was found, in one line (the numbers that decided).
        required: a failed required check fails the gate; an optional one is a warning.
        details: the figures behind the decision (JSON-ready).
    """

    name: str
    passed: bool
    message: str
    required: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return {
            "name": self.name,
            "passed": self.passed,
            "required": self.required,
            "message": self.message,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """Read back :meth:`to_dict`."""
        return cls(
            name=str(data["name"]),
            passed=bool(data["passed"]),
            message=str(data.get("message", "")),
            required=bool(data.get("required", True)),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class GateResult:
    """Every check's outcome for one candidate.

    Attributes:
        passed: whether every required check passed.
        checks: each check's result, in the gate's order.
        candidate: the candidate model's URI.
        champion: the champion's URI, or None when there was none to compare with.
        data: the evaluation data's ``datasets:/`` URI, or None for a DataFrame.
        num_rows: how many rows were evaluated.
        candidate_metrics: the candidate's metrics on those rows.
        champion_metrics: the champion's metrics on the same rows (empty without a champion).
        evaluation_run_id: the run the candidate's evaluation was logged to, if any.
        created_at: when the gate ran (ms since the epoch).
    """

    passed: bool
    checks: tuple[CheckResult, ...]
    candidate: str
    champion: str | None = None
    data: str | None = None
    num_rows: int = 0
    candidate_metrics: Mapping[str, float] = field(default_factory=dict)
    champion_metrics: Mapping[str, float] = field(default_factory=dict)
    evaluation_run_id: str | None = None
    created_at: int = 0

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The required checks that failed."""
        return tuple(c for c in self.checks if c.required and not c.passed)

    @property
    def warnings(self) -> tuple[CheckResult, ...]:
        """The optional checks that failed."""
        return tuple(c for c in self.checks if not c.required and not c.passed)

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (what the registry stores on the version)."""
        return {
            "passed": self.passed,
            "checks": [c.to_dict() for c in self.checks],
            "candidate": self.candidate,
            "champion": self.champion,
            "data": self.data,
            "num_rows": self.num_rows,
            "candidate_metrics": dict(self.candidate_metrics),
            "champion_metrics": dict(self.champion_metrics),
            "evaluation_run_id": self.evaluation_run_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        """Read back :meth:`to_dict` (for example ``ModelVersion.gate_result``)."""
        return cls(
            passed=bool(data["passed"]),
            checks=tuple(CheckResult.from_dict(c) for c in data.get("checks", ())),
            candidate=str(data.get("candidate", "")),
            champion=data.get("champion"),
            data=data.get("data"),
            num_rows=int(data.get("num_rows", 0)),
            candidate_metrics=dict(data.get("candidate_metrics") or {}),
            champion_metrics=dict(data.get("champion_metrics") or {}),
            evaluation_run_id=data.get("evaluation_run_id"),
            created_at=int(data.get("created_at", 0)),
        )

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        against = f" against {self.champion}" if self.champion else ""
        lines = [f"gate {verdict} for {self.candidate}{against} ({self.num_rows:,} rows)"]
        for c in self.checks:
            mark = "pass" if c.passed else ("FAIL" if c.required else "warn")
            lines.append(f"  [{mark}] {c.name}: {c.message}")
        return "\n".join(lines)


@dataclass(frozen=True)
class GateContext:
    """What a check sees: both models, the evaluation data, and both evaluations.

    Attributes:
        candidate: the candidate model (a loaded predictor, or any object with ``predict``).
        champion: the champion model, or None.
        data: the evaluation rows, target included.
        features: the same rows without the target column (for a model with a signature: only
            its input columns).
        target: the target column's name.
        task: ``"classification"`` or ``"regression"``.
        candidate_eval: the candidate's evaluation on the rows.
        champion_eval: the champion's evaluation on the same rows, or None.
        schema: the data contract the rows should meet (the dataset version's schema when the
            data is a ``datasets:/`` URI), or None.
    """

    candidate: Any
    champion: Any
    data: pd.DataFrame
    features: pd.DataFrame
    target: str
    task: str
    candidate_eval: EvaluationResult
    champion_eval: EvaluationResult | None
    schema: Schema | None = None


@runtime_checkable
class Check(Protocol):
    """One test of the gate: a name, whether it is required, and ``run``."""

    @property
    def name(self) -> str:
        """A one-line description (``metric f1 >= 0.8``)."""
        ...

    @property
    def required(self) -> bool:
        """Whether failing it fails the gate (otherwise it is a warning)."""
        ...

    def run(self, context: GateContext) -> CheckResult:
        """Test the candidate and say what was found."""
        ...


class Gate:
    """A release gate: checks, and the data they evaluate the candidate on.

    Args:
        checks: the checks, run in order (see :mod:`loopml.models.gate_checks`).
        data: the evaluation data: a ``datasets:/name/version`` URI (recommended: the gate then
            records exactly which rows it used) or a DataFrame.
        target: the target column of ``data``.
        task: ``"classification"`` or ``"regression"`` (inferred from the target when None).
        positive_label: binary classification: the positive class.
        trusted: load models whose flavor runs stored code (see ``load_model``).

    Raises:
        InvalidArgument: no checks, an object that is not a check, or a missing target.
    """

    def __init__(
        self,
        checks: Sequence[Check],
        *,
        data: Any,
        target: str,
        task: str | None = None,
        positive_label: Any = None,
        trusted: bool = False,
    ) -> None:
        checks = list(checks)
        if not checks:
            raise InvalidArgument("a gate needs at least one check; see loopml.models.checks")
        for check in checks:
            if not isinstance(check, Check):
                raise InvalidArgument(
                    f"{check!r} is not a gate check (it needs name, required and run(context)); "
                    "wrap a function with loopml.models.checks.custom(fn)"
                )
        if not isinstance(target, str) or not target:
            raise InvalidArgument("target must be the name of the target column")
        self.checks = tuple(checks)
        self.data = data
        self.target = target
        self.task = task
        self.positive_label = positive_label
        self.trusted = trusted

    def __repr__(self) -> str:
        names = ", ".join(c.name for c in self.checks)
        return f"Gate([{names}], target={self.target!r})"

    def run(
        self,
        candidate: Any,
        champion: Any = None,
        *,
        client: Client | None = None,
        project: str | None = None,
        log: bool = True,
    ) -> GateResult:
        """Evaluate the candidate (and the champion, on the same rows) and run every check.

        Args:
            candidate: a ``models:/`` or ``runs:/`` URI, a model folder, a loaded predictor or
                a fitted model.
            champion: the model to compare with, the same way, or None.
            client: the client to load models and data with (default: the fluent API's).
            project: the project of the URIs (default: the client's).
            log: log the candidate's evaluation to a new run linked to its ``models:/`` URI.

        Returns:
            The result; also check ``result.passed``.
        """
        from loopml.client.context import get_client, get_project
        from loopml.models.evaluation.evaluate import evaluate
        from loopml.models.evaluation.inputs import load_data, model_columns, split_target

        c = client or get_client()
        project = project or get_project()
        frame, version = load_data(self.data, client=lambda: c, project=project)
        features, _ = split_target(frame, self.target)
        cand_model, cand_uri = load_any(candidate, c, self.trusted, project)
        champ_model, champ_uri = (
            load_any(champion, c, self.trusted, project) if champion is not None else (None, None)
        )
        slices = sorted({s for check in self.checks for s in getattr(check, "slices", ())})
        want_latency = any(getattr(check, "needs_latency", False) for check in self.checks)
        options: dict[str, Any] = {
            "target": self.target,
            "task": self.task,
            "positive_label": self.positive_label,
            "slices": slices or None,
            "plots": False,
            "client": c,
            "project": project,
        }
        linked = cand_uri if cand_uri and cand_uri.startswith("models:/") else None
        cand_eval = evaluate(
            cand_model,
            frame,
            run=log,
            model_version=linked,
            latency=want_latency,
            **options,
        )
        champ_eval = (
            evaluate(champ_model, frame, run=False, latency=want_latency, **options)
            if champ_model is not None
            else None
        )
        context = GateContext(
            candidate=cand_model,
            champion=champ_model,
            data=frame,
            features=model_columns(cand_model, features, []),
            target=self.target,
            task=cand_eval.task,
            candidate_eval=cand_eval,
            champion_eval=champ_eval,
            schema=_contract(version),
        )
        results = tuple(_run_check(check, context) for check in self.checks)
        return GateResult(
            passed=all(r.passed for r in results if r.required),
            checks=results,
            candidate=cand_uri or type(cand_model).__name__,
            champion=(champ_uri or type(champ_model).__name__)
            if champ_model is not None
            else None,
            data=version.uri if version is not None else None,
            num_rows=len(frame),
            candidate_metrics=dict(cand_eval.metrics),
            champion_metrics=dict(champ_eval.metrics) if champ_eval is not None else {},
            evaluation_run_id=cand_eval.run_id,
            created_at=int(time.time() * 1000),
        )

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], *, data: Any = None) -> Gate:
        """A gate from its YAML/JSON form.

        Example::

            data: datasets:/churn-eval@latest
            target: churned
            checks:
              - metric: {name: f1, min: 0.8}
              - no_regression: {metric: f1, tolerance: 0.01, bootstrap: true}
              - slice_metric: {column: region, metric: accuracy, min: 0.7}
              - latency: {p99_ms: 20}
              - size: {max_mb: 50}
              - data_contract: {}
              - sanity: {}

        Args:
            spec: the parsed document.
            data: use this data instead of the document's ``data``.

        Raises:
            InvalidSchema: an unknown check or option, or a missing ``target`` or ``data``.
        """
        from loopml.models import gate_checks

        if not isinstance(spec, Mapping):
            raise InvalidSchema("a gate is a mapping with data, target and checks")
        unknown = set(spec) - {"data", "target", "task", "positive_label", "checks", "trusted"}
        if unknown:
            raise InvalidSchema(
                f"unknown gate key(s) {sorted(unknown)}; "
                "a gate has data, target, task, positive_label, trusted and checks"
            )
        data = data if data is not None else spec.get("data")
        if data is None or "target" not in spec:
            raise InvalidSchema("a gate needs 'data' (a datasets:/ URI) and 'target'")
        entries = spec.get("checks")
        if not isinstance(entries, list) or not entries:
            raise InvalidSchema("a gate needs a non-empty list of 'checks'")
        built = [gate_checks.from_spec(entry, index) for index, entry in enumerate(entries)]
        return cls(
            built,
            data=data,
            target=str(spec["target"]),
            task=spec.get("task"),
            positive_label=spec.get("positive_label"),
            trusted=bool(spec.get("trusted", False)),
        )

    @classmethod
    def load(cls, path: str | Path, *, data: Any = None) -> Gate:
        """A gate from a YAML file (see :meth:`from_dict`); errors name the file."""
        import yaml

        path = Path(path)
        try:
            spec = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise InvalidSchema(f"cannot read the gate file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise InvalidSchema(f"{path} is not valid YAML: {exc}") from exc
        try:
            return cls.from_dict(spec, data=data)
        except InvalidSchema as exc:
            raise InvalidSchema(f"{path}: {exc}") from exc


def load_any(
    model: Any, client: Client, trusted: bool, project: str | None = None
) -> tuple[Any, str | None]:
    """A model given as a URI or folder, loaded (verified); a model object as it is. With the
    URI it came from (or the predictor's), or None."""
    from loopml.models.evaluation.inputs import resolve_model

    given = str(model) if isinstance(model, Path) else model
    loaded, uri = resolve_model(given, lambda: client, project=project, trusted=trusted)
    return loaded, uri or getattr(loaded, "uri", None)


def _contract(version: DatasetVersion | None) -> Schema | None:
    """The data contract stored with a dataset version, if any."""
    if version is None or not version.schema:
        return None
    from loopml.schema import Schema

    return Schema.from_dict(version.schema, source=version.uri)


def _run_check(check: Check, context: GateContext) -> CheckResult:
    """Run one check; a check that raises fails (with the error as its message)."""
    try:
        result = check.run(context)
    except Exception as exc:  # a broken check must fail the gate, not crash the promotion
        return CheckResult(
            check.name, False, f"the check raised {type(exc).__name__}: {exc}", check.required
        )
    if not isinstance(result, CheckResult):
        raise InvalidArgument(
            f"check {check.name!r} returned {type(result).__name__}, not a CheckResult"
        )
    return result


CheckFunction = Callable[[GateContext], "bool | CheckResult"]
