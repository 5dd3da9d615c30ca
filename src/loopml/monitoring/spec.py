"""What a monitor watches and checks: :class:`MonitorSpec`, written in YAML or Python.

A monitor watches a deployment's logged predictions in time windows (``deployment:``), or the
versions of a dataset as they arrive (``dataset:``), against a reference: by default the profile
of the dataset the served model was trained on, or any dataset version. Each window gets the
checks that are switched on (drift per feature and of the prediction, data quality, performance
once labels arrive, latency) and the alert rules read the results::

    name: churn-live
    deployment: churn
    window: 1h
    drift: {drift_share: 0.3, tests: {age: psi}}
    performance: {metrics: [accuracy, f1]}
    alerts:
      - {name: drift, metric: drift_share, op: ">", threshold: 0.3, for: 2}
    notifiers:
      - {name: ops, kind: webhook, url: "https://hooks.example.com/loopml"}

The stored form is :meth:`MonitorSpec.to_dict`; :meth:`MonitorSpec.parse` reads it back with
every problem named (field and what to write instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from loopml.errors import InvalidArgument
from loopml.monitoring.alerting import AlertRule
from loopml.monitoring.alerting import parse_duration as _seconds
from loopml.monitoring.notifiers import NotifierSpec

__all__ = [
    "DriftCheck",
    "LatencyCheck",
    "MonitorSpec",
    "PerformanceCheck",
    "PredictionDriftCheck",
    "QualityCheck",
    "parse_duration",
]


def parse_duration(value: Any) -> float:
    """Seconds from ``"90s"``, ``"5m"``, ``"1h"``, ``"1d"`` or a number of seconds.

    Raises:
        InvalidArgument: not a positive duration.
    """
    try:
        seconds = _seconds(value)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    if not seconds > 0:
        raise InvalidArgument(f"a duration must be positive, not {value!r}")
    return seconds


def _duration(value: Any) -> Any:
    try:
        return parse_duration(value)
    except InvalidArgument as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds, given as ``"5m"`` / ``"1h"`` / a number."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DriftCheck(_Model):
    """Data drift per input feature against the reference.

    Attributes:
        enabled: run the check.
        columns: the features to test (default: every column both sides have, but the
            prediction and the target).
        exclude: features never tested (ids, timestamps).
        tests: per-feature test, column -> ``psi``, ``jensenshannon``, ``chisquare``,
            ``wasserstein``, ``ks`` (others get the default for their type).
        drift_share: the window drifted when at least this share of features drifted.
        exact: also run the exact two-sample KS test on each numeric feature's raw values:
            the window's inputs read back from the prediction log against the reference
            dataset's rows (slower: it reads both; results under ``ks_exact.<feature>``).
        exact_threshold: the p-value below which the exact KS test calls a feature drifted.
    """

    enabled: bool = True
    columns: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    tests: dict[str, str] = Field(default_factory=dict)
    drift_share: float = Field(default=0.5, gt=0, le=1)
    exact: bool = False
    exact_threshold: float = Field(default=0.05, gt=0, lt=1)


class PredictionDriftCheck(_Model):
    """Drift of the model's output, against the reference's target column (the labels the
    model was trained on) or, without one, against the first window seen (``baseline``).

    Attributes:
        enabled: run the check.
        test: the drift test (default: by the prediction's type).
    """

    enabled: bool = True
    test: str | None = None


_CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
_REGRESSION = ("rmse", "mae", "r2", "mape")


class PerformanceCheck(_Model):
    """Model quality once ground truth arrives (``loopml.log_ground_truth``), joined to the
    window's predictions by prediction id.

    Attributes:
        enabled: run the check.
        task: ``classification``, ``regression`` or ``auto`` (from the labels).
        metrics: the metrics to compute (default: accuracy, f1 / rmse, mae, r2).
        positive_label: the positive class for binary precision, recall and f1 (default: the
            larger label).
        label_delay: how long labels may keep arriving after a window ends; windows that
            recent are evaluated again on each run.
    """

    enabled: bool = True
    task: Literal["auto", "classification", "regression"] = "auto"
    metrics: list[str] | None = None
    positive_label: Any = None
    label_delay: Duration = 86400.0

    @model_validator(mode="after")
    def _known_metrics(self) -> PerformanceCheck:
        unknown = sorted(set(self.metrics or ()) - set(_CLASSIFICATION) - set(_REGRESSION))
        if unknown:
            raise ValueError(
                f"unknown metrics {unknown}; known: {', '.join(_CLASSIFICATION + _REGRESSION)}"
            )
        return self


class QualityCheck(_Model):
    """Data quality of live inputs: nulls, values outside the reference's range, categories the
    reference never had, columns missing or new.

    Attributes:
        enabled: run the check.
        max_null_increase: a column is flagged when its null share exceeds the reference's
            by more than this.
    """

    enabled: bool = True
    max_null_increase: float = Field(default=0.1, ge=0, le=1)


class LatencyCheck(_Model):
    """Serving latency percentiles from the prediction log (deployments only)."""

    enabled: bool = True


class MonitorSpec(_Model):
    """A monitor's definition.

    Attributes:
        deployment: the deployment whose logged predictions to watch; or
        dataset: a dataset name whose new versions to check (each version is one window).
        route: only this route's predictions (default: every route).
        reference: ``training`` (the profile of the dataset the served model version was
            trained on, from its lineage) or a ``datasets:/name/version`` URI.
        window: the window length (a multiple of the serving log's window, 5 minutes by
            default), e.g. ``1h``.
        window_rows: windows by count instead: each window closes once it holds at least this
            many predictions (at the serving log's granularity: whole log windows).
        schedule: how often ``loopml monitor run --every`` and the server evaluate it.
        drift, prediction_drift, performance, quality, latency: the checks.
        alerts: rules over the results.
        notifiers: where alerts go.
    """

    deployment: str | None = None
    dataset: str | None = None
    route: str | None = None
    reference: str = "training"
    window: Duration = 3600.0
    window_rows: int | None = Field(default=None, ge=1)
    schedule: Duration = 300.0
    drift: DriftCheck = Field(default_factory=DriftCheck)
    prediction_drift: PredictionDriftCheck = Field(default_factory=PredictionDriftCheck)
    performance: PerformanceCheck = Field(default_factory=PerformanceCheck)
    quality: QualityCheck = Field(default_factory=QualityCheck)
    latency: LatencyCheck = Field(default_factory=LatencyCheck)
    alerts: list[AlertRule] = Field(default_factory=list)
    notifiers: list[NotifierSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> MonitorSpec:
        if (self.deployment is None) == (self.dataset is None):
            raise ValueError("give exactly one of deployment: (a deployment name) or dataset:")
        if self.reference != "training" and not self.reference.startswith("datasets:/"):
            raise ValueError(
                f"reference must be 'training' or a datasets:/name/version URI, not "
                f"{self.reference!r}"
            )
        if self.window_rows is not None and self.deployment is None:
            raise ValueError("window_rows (windows by count) is for deployment monitors")
        if self.dataset is not None and self.reference == "training":
            raise ValueError("a dataset monitor needs reference: datasets:/name/version")
        names = [n.name for n in self.notifiers]
        if len(set(names)) != len(names):
            raise ValueError(f"notifier names must be unique, got {names}")
        rules = [r.name for r in self.alerts]
        if len(set(rules)) != len(rules):
            raise ValueError(f"alert rule names must be unique, got {rules}")
        for rule in self.alerts:
            missing = sorted(set(rule.notify or ()) - set(names))
            if missing:
                raise ValueError(
                    f"alert rule {rule.name!r} notifies {missing}, which are not among the "
                    f"notifiers {names}"
                )
        return self

    @classmethod
    def parse(cls, data: MonitorSpec | Mapping[str, Any] | str | Path) -> MonitorSpec:
        """A spec from a dict, a YAML/JSON string or file path, or a spec (returned as is).

        Raises:
            InvalidArgument: the spec is not valid; the message names each problem.
        """
        if isinstance(data, MonitorSpec):
            return data
        if isinstance(data, Path) or (
            isinstance(data, str)
            and "\n" not in data
            and (data.endswith((".yaml", ".yml", ".json")))
        ):
            path = Path(data)
            if not path.is_file():
                raise InvalidArgument(f"monitor spec file {str(path)!r} does not exist")
            data = path.read_text(encoding="utf-8")
        if isinstance(data, str):
            import yaml

            try:
                data = yaml.safe_load(data)
            except yaml.YAMLError as exc:
                raise InvalidArgument(f"the monitor spec is not valid YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise InvalidArgument(
                f"a monitor spec must be a mapping of settings, not {type(data).__name__}"
            )
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidArgument(_problems(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form the store keeps."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=False)


def _problems(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {msg}")
    return "invalid monitor spec: " + "; ".join(lines)
