"""What the continuous-training loop does for one model: :class:`Policy`, in YAML or Python.

A policy names the model, its deployment, what starts a retraining (an alert of a monitor, a
cron schedule, a new version of a dataset), the training entry, the release gate, the rollout
(a shadow for N predictions or a canary at a weight for a while) and the success criteria the
challenger's live traffic must meet before it becomes the champion::

    name: churn-retrain
    model: churn
    deployment: churn
    triggers:
      - {alert: churn-live, rule: accuracy}
      - {schedule: "0 3 * * 1"}
      - {dataset: churn-daily}
    train:
      entry: "churn_pipeline:train"
      params: {C: 0.5}
      data_param: data          # the new dataset version's URI goes to train(data=...)
    gate:
      data: datasets:/churn-eval@latest
      target: churned
      checks:
        - no_regression: {metric: accuracy, tolerance: 0.01}
    rollout:
      strategy: canary
      weight: 0.2
      duration: 30m
      min_predictions: 500
      criteria:
        max_error_rate: 0.01
        max_p99_latency_ratio: 1.5
        accuracy: {metric: accuracy, min_labeled: 200, max_drop: 0.01}

:meth:`Policy.parse` reads a dict, a YAML string or a file and names every problem.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from loopml.errors import InvalidArgument
from loopml.monitoring.spec import Duration, parse_duration

__all__ = [
    "AccuracyCriterion",
    "Criteria",
    "Policy",
    "Rollout",
    "TrainSpec",
    "Trigger",
    "resolve_entry",
]

_LOWER_IS_BETTER = frozenset({"rmse", "mae", "mape"})
_METRICS = ("accuracy", "precision", "recall", "f1", "r2", *sorted(_LOWER_IS_BETTER))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class Trigger(_Model):
    """What starts a cycle: exactly one of ``alert``, ``schedule`` or ``dataset``.

    Attributes:
        alert: a monitor's name: a new alert of it (of ``rule``, when given) starts a cycle.
        rule: only this alert rule of the monitor.
        schedule: a cron expression (``"0 3 * * *"``: every day at 03:00 UTC).
        dataset: a dataset's name: each new version starts a cycle.
    """

    alert: str | None = None
    rule: str | None = None
    schedule: str | None = None
    dataset: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        given = [k for k in ("alert", "schedule", "dataset") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a trigger is one of {alert: MONITOR}, {schedule: CRON} or {dataset: NAME}, "
                f"got {given or 'none of them'}"
            )
        if self.rule is not None and self.alert is None:
            raise ValueError("rule: names a rule of an alert trigger's monitor; add alert:")
        if self.schedule is not None:
            from croniter import croniter  # type: ignore[import-untyped]

            if not croniter.is_valid(self.schedule):
                raise ValueError(
                    f"{self.schedule!r} is not a cron expression; write e.g. '0 3 * * *' "
                    "(minute hour day month weekday)"
                )
        return self

    def describe(self) -> str:
        """One line: ``alert churn-live/accuracy``, ``schedule 0 3 * * *``, ``dataset x``."""
        if self.alert is not None:
            return f"alert {self.alert}" + (f"/{self.rule}" if self.rule else "")
        if self.schedule is not None:
            return f"schedule {self.schedule}"
        return f"dataset {self.dataset}"


def _train(value: Any) -> Any:
    """``train: "module:fn"`` or a callable is shorthand for ``train: {entry: ...}``."""
    if isinstance(value, str) or callable(value):
        return {"entry": value}
    return value


class TrainSpec(_Model):
    """The training entry and its parameters.

    Attributes:
        entry: ``"module:function"`` (or, in Python, the callable itself: a function or a
            pipeline). It is called with ``params`` as keyword arguments and returns the new
            model version: a :class:`~loopml.entities.ModelVersion`, a ``models:/name/version``
            URI, what ``log_model`` returns, or an object whose ``output`` is one of those
            (a pipeline run).
        params: keyword arguments of every call.
        data_param: pass the URI of the dataset version that triggered the cycle under this
            keyword (dataset triggers only).
        trigger_param: pass a dict describing the trigger under this keyword.
        max_attempts: how many times a cycle runs the entry when it raises, or when the
            process stopped while it ran.
    """

    entry: Any
    params: dict[str, Any] = Field(default_factory=dict)
    data_param: str | None = None
    trigger_param: str | None = None
    max_attempts: int = Field(default=1, ge=1, le=10)

    @field_validator("entry")
    @classmethod
    def _entry(cls, value: Any) -> Any:
        if callable(value):
            return value
        if not isinstance(value, str) or value.count(":") != 1 or not all(value.split(":")):
            raise ValueError(
                f"the training entry must be 'module:function' (e.g. 'churn_pipeline:train'), "
                f"not {value!r}"
            )
        return value

    def describe(self) -> str:
        """The entry as text."""
        if isinstance(self.entry, str):
            return self.entry
        mod = getattr(self.entry, "__module__", "?")
        return f"{mod}:{getattr(self.entry, '__qualname__', type(self.entry).__name__)}"


class AccuracyCriterion(_Model):
    """Live quality once labels arrive: the challenger's metric on its labelled predictions
    against the primary's.

    Attributes:
        metric: ``accuracy``, ``precision``, ``recall``, ``f1``, ``r2`` (higher is better) or
            ``rmse``, ``mae``, ``mape`` (lower is better).
        min_labeled: labelled predictions each route needs before the metric counts.
        max_drop: how much worse than the primary the challenger may be.
        required: without enough labels by ``max_duration``, roll back (True) or decide on
            the other criteria (False).
    """

    metric: str = "accuracy"
    min_labeled: int = Field(default=100, ge=1)
    max_drop: float = Field(default=0.0, ge=0)
    required: bool = True

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        if value not in _METRICS:
            raise ValueError(f"unknown metric {value!r}; one of {', '.join(_METRICS)}")
        return value

    @property
    def lower_is_better(self) -> bool:
        """Whether a smaller value is better (error metrics)."""
        return self.metric in _LOWER_IS_BETTER


class Criteria(_Model):
    """What the challenger's live traffic must show (None: not checked).

    Attributes:
        max_error_rate: the share of the challenger's requests that failed.
        max_p99_latency_ms: the challenger's p99 latency.
        max_p99_latency_ratio: the challenger's p99 over the primary's.
        min_agreement: shadow: the share of compared predictions equal to the primary's.
        accuracy: quality once labels arrive.
    """

    max_error_rate: float | None = Field(default=0.01, ge=0, le=1)
    max_p99_latency_ms: float | None = Field(default=None, gt=0)
    max_p99_latency_ratio: float | None = Field(default=None, gt=0)
    min_agreement: float | None = Field(default=None, ge=0, le=1)
    accuracy: AccuracyCriterion | None = None


class Rollout(_Model):
    """How the challenger meets live traffic, and for how long.

    Attributes:
        strategy: ``canary`` (answers ``weight`` of the requests) or ``shadow`` (gets a copy of
            ``weight`` of them; its answers are logged and compared, never returned).
        weight: the canary's share of traffic, or the share of requests copied to the shadow.
        route: the route's name in the deployment.
        duration: canary: the least time before a decision.
        min_predictions: canary: the challenger's least predictions before a decision.
        predictions: shadow: the compared predictions before a decision.
        max_duration: roll back when the evidence is still missing after this long.
        servers: base URLs of the serving processes (``http://host:8080``); their
            ``/metrics`` give the exact error counts, live. Without them the counts come from
            the traffic windows the servers store each minute, and before the first of those
            the error rate is estimated from the prediction log (requests the challenger
            should have answered and did not).
    """

    strategy: Literal["canary", "shadow"] = "canary"
    weight: float | None = Field(default=None, gt=0, le=1)
    route: str = Field(default="challenger", min_length=1, max_length=64)
    duration: Duration = 600.0
    min_predictions: int = Field(default=100, ge=1)
    predictions: int = Field(default=500, ge=1)
    max_duration: Duration = 86400.0
    servers: list[str] = Field(default_factory=list)
    criteria: Criteria = Field(default_factory=Criteria)

    @model_validator(mode="after")
    def _consistent(self) -> Rollout:
        if self.weight is None:
            self.weight = 0.1 if self.strategy == "canary" else 1.0
        if self.strategy == "canary" and self.criteria.min_agreement is not None:
            raise ValueError(
                "min_agreement compares a shadow's answers with the primary's; a canary's "
                "requests get one answer only. Use strategy: shadow, or drop min_agreement"
            )
        if self.route == "primary":
            raise ValueError("route: 'primary' is the deployment's primary; name it otherwise")
        if self.max_duration < self.duration:
            raise ValueError(
                f"max_duration ({self.max_duration:g}s) is shorter than duration "
                f"({self.duration:g}s)"
            )
        for url in self.servers:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"servers: {url!r} is not an http(s) URL")
        return self

    @property
    def share(self) -> float:
        """The weight, set."""
        assert self.weight is not None
        return self.weight


class Policy(_Model):
    """The continuous-training policy of one model.

    Attributes:
        name: the policy's name (default: the model's); its state and decisions are kept
            under it.
        model: the registered model retrained.
        project: the project (default: the client's).
        deployment: the deployment the challenger is rolled out on.
        triggers: what starts a cycle (at least one).
        train: the training entry.
        gate: the release gate, in :meth:`loopml.models.Gate.from_dict` form (``data``,
            ``target``, ``checks``), or a :class:`~loopml.models.Gate`.
        rollout: the rollout and its success criteria.
        champion_alias: the alias promotion moves.
        challenger_alias: the alias set on a version that passed the gate.
        cooldown: after a cycle ends, triggers wait this long.
    """

    name: str = ""
    model: str = Field(min_length=1)
    project: str | None = None
    deployment: str = Field(min_length=1)
    triggers: list[Trigger] = Field(min_length=1)
    train: Annotated[TrainSpec, BeforeValidator(_train)]
    gate: Any
    rollout: Rollout = Field(default_factory=Rollout)
    champion_alias: str = "champion"
    challenger_alias: str = "challenger"
    cooldown: float = 0.0

    @field_validator("cooldown", mode="before")
    @classmethod
    def _cooldown(cls, value: Any) -> Any:
        if value in (0, "0", None):
            return 0.0
        try:
            return parse_duration(value)
        except InvalidArgument as exc:
            raise ValueError(str(exc)) from None

    @field_validator("gate")
    @classmethod
    def _gate(cls, value: Any) -> Any:
        from loopml.errors import InvalidSchema
        from loopml.models.gate import Gate

        if isinstance(value, Gate):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(
                "gate must be a mapping with data, target and checks (or a loopml.models.Gate)"
            )
        try:
            return Gate.from_dict(value)
        except (InvalidSchema, InvalidArgument) as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _named(self) -> Policy:
        if not self.name:
            self.name = self.model
        if "/" in self.name or "@" in self.name or self.name != self.name.strip():
            raise ValueError(f"policy name {self.name!r} cannot contain '/' or '@'")
        if self.champion_alias == self.challenger_alias:
            raise ValueError("champion_alias and challenger_alias must differ")
        if self.train.data_param and not any(t.dataset for t in self.triggers):
            raise ValueError(
                "train.data_param passes a new dataset version: add a dataset trigger"
            )
        return self

    @classmethod
    def parse(cls, data: Policy | Mapping[str, Any] | str | Path) -> Policy:
        """A policy from a dict, a YAML string or file path, or a policy (returned as is).

        Raises:
            InvalidArgument: the policy is not valid; the message names each problem (and the
                file).
        """
        if isinstance(data, Policy):
            return data
        where = "the policy"
        if isinstance(data, Path) or (
            isinstance(data, str) and "\n" not in data and data.endswith((".yaml", ".yml"))
        ):
            path = Path(data)
            if not path.is_file():
                raise InvalidArgument(f"policy file {str(path)!r} does not exist")
            where = str(path)
            data = path.read_text(encoding="utf-8")
        if isinstance(data, str):
            import yaml

            try:
                data = yaml.safe_load(data)
            except yaml.YAMLError as exc:
                raise InvalidArgument(f"{where} is not valid YAML: {exc}") from None
        if not isinstance(data, Mapping):
            raise InvalidArgument(
                f"{where} must be a mapping (model, deployment, triggers, train, gate, "
                f"rollout), not {type(data).__name__}"
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidArgument(_problems(exc, where)) from None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (recorded with every cycle)."""
        return {
            "name": self.name,
            "model": self.model,
            "deployment": self.deployment,
            "triggers": [t.describe() for t in self.triggers],
            "train": self.train.describe(),
            "rollout": self.rollout.strategy,
            "weight": self.rollout.weight,
        }


def resolve_entry(entry: Any) -> Callable[..., Any]:
    """The training callable of ``"module:attr"`` (or the callable given).

    Raises:
        InvalidArgument: the module or attribute does not exist, or is not callable.
    """
    if callable(entry):
        return entry  # type: ignore[no-any-return]
    module_name, _, attr = str(entry).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(
            f"cannot import {module_name!r} for the training entry {entry!r}: {exc}. Is it on "
            "PYTHONPATH (run from the folder that holds it)?"
        ) from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise InvalidArgument(
                f"module {module_name!r} has no {attr!r} (the training entry {entry!r}); "
                "is it a typo?"
            ) from None
    if not callable(target):
        raise InvalidArgument(f"the training entry {entry!r} is not callable")
    return target  # type: ignore[no-any-return]


def _problems(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "policy"
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}")
    return f"invalid policy in {where}: " + "; ".join(lines)
