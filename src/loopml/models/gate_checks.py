"""The release gate's built-in checks (``loopml.models.checks``).

Each function returns a check for :class:`~loopml.models.gate.Gate`:

================================  ===========================================================
``metric("f1", min=0.8)``         a metric of the candidate within bounds
``no_regression("f1", ...)``      not worse than the champion on the same rows (a tolerance,
                                  and optionally a paired bootstrap confidence interval)
``slice_metric(col, m, min=)``    the metric within bounds on every slice of a column
``latency(p99_ms=...)``           single-row (and batch) latency budgets
``size(max_mb=...)``              the model's size on disk
``memory(max_mb=...)``            peak memory of predicting the evaluation rows
``data_contract(schema=None)``    the evaluation rows meet the data contract
``sanity()``                      no NaN predictions, and every class is predicted
``invariance(perturb, ...)``      a change that must not move the predictions does not
``directional(perturb, ...)``     a change that must move them one way does
``custom(fn, name=...)``          any function of the gate's context
================================  ===========================================================

Every check takes ``required=True``; ``required=False`` makes it a warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidArgument, InvalidSchema
from loopml.models.gate import Check, CheckResult, GateContext

if TYPE_CHECKING:
    import pandas as pd

    from loopml.schema import Schema

__all__ = [
    "custom",
    "data_contract",
    "directional",
    "from_spec",
    "invariance",
    "latency",
    "memory",
    "metric",
    "no_regression",
    "sanity",
    "size",
    "slice_metric",
]

_MB = 1024 * 1024


def _bounds_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"in [{lo:g}, {hi:g}]"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def _within(value: float, lo: float | None, hi: float | None) -> bool:
    if math.isnan(value):
        return False
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _check_bounds(what: str, lo: float | None, hi: float | None) -> None:
    if lo is None and hi is None:
        raise InvalidArgument(f"{what} needs min=, max= or both")
    for bound in (lo, hi):
        if bound is not None and not isinstance(bound, int | float):
            raise InvalidArgument(f"{what}: bounds must be numbers, not {bound!r}")


def _metric_value(metrics: Mapping[str, float], name: str, where: str) -> float:
    if name not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        raise InvalidArgument(f"{where} has no metric {name!r}; it has: {known}")
    return float(metrics[name])


@dataclass(frozen=True)
class MetricThreshold:
    """The candidate's metric on all rows within bounds."""

    metric: str
    min: float | None = None
    max: float | None = None
    required: bool = True

    @property
    def name(self) -> str:
        return f"metric {self.metric} {_bounds_text(self.min, self.max)}"

    def run(self, context: GateContext) -> CheckResult:
        value = _metric_value(context.candidate_eval.metrics, self.metric, "the evaluation")
        ok = _within(value, self.min, self.max)
        return CheckResult(
            self.name,
            ok,
            f"{self.metric} = {value:.4g}",
            self.required,
            {"metric": self.metric, "value": value, "min": self.min, "max": self.max},
        )


@dataclass(frozen=True)
class NoRegression:
    """The candidate is not worse than the champion on the same rows, beyond a tolerance."""

    metric: str
    tolerance: float = 0.0
    bootstrap: bool = False
    confidence: float = 0.95
    n_resamples: int = 1000
    seed: int = 0
    required: bool = True

    @property
    def name(self) -> str:
        how = f", {self.confidence:.0%} paired bootstrap" if self.bootstrap else ""
        return f"no regression in {self.metric} (tolerance {self.tolerance:g}{how})"

    def run(self, context: GateContext) -> CheckResult:
        from loopml.models.evaluation.metrics import greater_is_better

        if context.champion_eval is None:
            return CheckResult(self.name, True, "no champion to compare with", self.required)
        cand = _metric_value(context.candidate_eval.metrics, self.metric, "the evaluation")
        champ = _metric_value(context.champion_eval.metrics, self.metric, "the champion")
        sign = 1.0 if greater_is_better(self.metric) else -1.0
        gain = sign * (cand - champ)  # > 0: the candidate is better
        details: dict[str, Any] = {
            "metric": self.metric,
            "candidate": cand,
            "champion": champ,
            "delta": cand - champ,
            "tolerance": self.tolerance,
        }
        if not self.bootstrap:
            ok = not math.isnan(gain) and gain >= -self.tolerance
            return CheckResult(
                self.name,
                ok,
                f"{self.metric} {cand:.4g} vs champion {champ:.4g} (delta {cand - champ:+.4g})",
                self.required,
                details,
            )
        delta = context.candidate_eval.paired_bootstrap_delta(
            context.champion_eval,
            self.metric,
            n=self.n_resamples,
            seed=self.seed,
            alpha=1.0 - self.confidence,
        )
        # Non-inferiority: even the worst plausible difference stays within the tolerance.
        worst = min(sign * delta.low, sign * delta.high)
        ok = worst >= -self.tolerance
        details.update(delta.to_dict())
        return CheckResult(self.name, ok, str(delta), self.required, details)


@dataclass(frozen=True)
class SliceMetric:
    """The candidate's metric within bounds on every slice of a column (large enough ones)."""

    column: str
    metric: str
    min: float | None = None
    max: float | None = None
    min_rows: int = 30
    required: bool = True

    @property
    def name(self) -> str:
        return f"{self.metric} {_bounds_text(self.min, self.max)} on every {self.column} slice"

    @property
    def slices(self) -> tuple[str, ...]:
        return (self.column,)

    def run(self, context: GateContext) -> CheckResult:
        groups = context.candidate_eval.slices.get(self.column)
        if groups is None:
            raise InvalidArgument(f"the evaluation data has no column {self.column!r} to slice")
        failing: dict[str, float] = {}
        skipped: list[str] = []
        for label, entry in groups.items():
            if int(entry.get("num_rows", 0)) < self.min_rows:
                skipped.append(str(label))
                continue
            value = float(entry.get("metrics", {}).get(self.metric, float("nan")))
            if not _within(value, self.min, self.max):
                failing[str(label)] = value
        checked = len(groups) - len(skipped)
        if failing:
            worst = ", ".join(f"{k}: {v:.4g}" for k, v in sorted(failing.items())[:5])
            message = f"{len(failing)} of {checked} slices fail ({worst})"
        else:
            message = f"all {checked} slices pass"
        if skipped:
            message += f"; {len(skipped)} slices under {self.min_rows} rows not checked"
        return CheckResult(
            self.name,
            not failing,
            message,
            self.required,
            {"failing": failing, "skipped": skipped, "checked": checked},
        )


@dataclass(frozen=True)
class LatencyBudget:
    """Single-row and batch latency within budgets (measured by the evaluation)."""

    p50_ms: float | None = None
    p99_ms: float | None = None
    batch_p99_ms: float | None = None
    required: bool = True
    needs_latency: bool = field(default=True, init=False)

    @property
    def name(self) -> str:
        parts = [
            f"{label} <= {value:g} ms"
            for label, value in (
                ("p50", self.p50_ms),
                ("p99", self.p99_ms),
                ("batch p99", self.batch_p99_ms),
            )
            if value is not None
        ]
        return "latency " + ", ".join(parts)

    def run(self, context: GateContext) -> CheckResult:
        perf = context.candidate_eval.performance
        found: dict[str, float] = {}
        over: list[str] = []
        for key, budget in (
            ("latency_p50_ms", self.p50_ms),
            ("latency_p99_ms", self.p99_ms),
            ("batch_latency_p99_ms", self.batch_p99_ms),
        ):
            if budget is None:
                continue
            value = perf.get(key)
            if not isinstance(value, int | float):
                raise InvalidArgument(f"the evaluation measured no {key}")
            found[key] = float(value)
            if value > budget:
                over.append(f"{key} {value:.3g} > {budget:g}")
        message = "; ".join(over) if over else ", ".join(f"{k} {v:.3g}" for k, v in found.items())
        return CheckResult(self.name, not over, message, self.required, found)


@dataclass(frozen=True)
class SizeBudget:
    """The model's size within a budget."""

    max_mb: float
    required: bool = True

    @property
    def name(self) -> str:
        return f"size <= {self.max_mb:g} MiB"

    def run(self, context: GateContext) -> CheckResult:
        size = context.candidate_eval.performance.get("model_size_bytes")
        if not isinstance(size, int | float):
            raise InvalidArgument("the model's size could not be measured")
        mb = float(size) / _MB
        return CheckResult(
            self.name, mb <= self.max_mb, f"{mb:.3g} MiB", self.required, {"size_mib": mb}
        )


@dataclass(frozen=True)
class MemoryBudget:
    """Peak memory of predicting every evaluation row within a budget."""

    max_mb: float
    required: bool = True

    @property
    def name(self) -> str:
        return f"peak memory <= {self.max_mb:g} MiB"

    def run(self, context: GateContext) -> CheckResult:
        peak = context.candidate_eval.performance.get("peak_memory_bytes")
        if not isinstance(peak, int | float):
            raise InvalidArgument("the evaluation measured no peak memory")
        mb = float(peak) / _MB
        return CheckResult(
            self.name, mb <= self.max_mb, f"{mb:.3g} MiB", self.required, {"peak_mib": mb}
        )


@dataclass(frozen=True)
class DataContract:
    """The evaluation rows meet the data contract (the given schema, the dataset version's, or
    the inputs of the candidate's signature)."""

    schema: Schema | None = None
    required: bool = True
    name: str = "data contract"

    def run(self, context: GateContext) -> CheckResult:
        from loopml.schema import Schema, validate

        schema, data = self.schema or context.schema, context.data
        if schema is None:
            signature = getattr(context.candidate, "signature", None)
            inputs = getattr(signature, "inputs", None)
            if not isinstance(inputs, Schema):
                raise InvalidArgument(
                    "no data contract to check: pass data_contract(schema=...), evaluate on a "
                    "datasets:/ URI, or log the model with a signature"
                )
            schema, data = inputs.replace(allow_extra_columns=True), context.features
        report = validate(data, schema)
        errors = [v for v in report.violations if v.severity == "error"]
        message = (
            f"{report.num_rows:,} rows meet the contract"
            if not errors
            else "; ".join(f"{v.column}: {v.message}" for v in errors[:5])
        )
        return CheckResult(self.name, not errors, message, self.required, report.to_dict())


@dataclass(frozen=True)
class Sanity:
    """No NaN or missing predictions, and (classification) every class is predicted."""

    all_classes: bool = True
    required: bool = True
    name: str = "sanity"

    def run(self, context: GateContext) -> CheckResult:
        p = context.candidate_eval.predictions
        if p is None:
            raise InvalidArgument("the evaluation kept no predictions")
        problems: list[str] = []
        y_pred = np.asarray(p.y_pred)
        if y_pred.dtype.kind == "f":
            bad = int(np.count_nonzero(~np.isfinite(y_pred)))
        else:
            bad = int(sum(v is None or (isinstance(v, float) and math.isnan(v)) for v in y_pred))
        if bad:
            problems.append(f"{bad:,} predictions are NaN, infinite or missing")
        if p.proba is not None and not np.all(np.isfinite(p.proba)):
            problems.append("some probabilities are NaN or infinite")
        missing: list[str] = []
        if self.all_classes and p.task == "classification" and p.true_codes is not None:
            seen = set(np.unique(np.asarray(p.pred_codes)).tolist())
            expected = set(np.unique(np.asarray(p.true_codes)).tolist())
            missing = [str(p.classes[i]) for i in sorted(expected - seen)]
            if missing:
                problems.append(f"never predicts class(es) {', '.join(missing)}")
        message = "; ".join(problems) or f"{len(y_pred):,} finite predictions"
        if self.all_classes and p.task == "classification" and not missing:
            message += ", every class predicted"
        return CheckResult(
            self.name,
            not problems,
            message,
            self.required,
            {"bad_predictions": bad, "missing_classes": missing},
        )


Perturbation = Callable[["pd.DataFrame"], "pd.DataFrame"]


def _outputs(model: Any, features: pd.DataFrame, on: str) -> np.ndarray:
    if on == "proba":
        proba = np.asarray(model.predict_proba(features), dtype=float)
        return proba[:, -1] if proba.ndim == 2 else proba
    return np.asarray(model.predict(features))


@dataclass(frozen=True)
class Invariance:
    """Predictions do not change under a perturbation that should not matter."""

    perturb: Perturbation
    name: str = "invariance"
    max_change_rate: float = 0.0
    tolerance: float = 1e-9
    required: bool = True

    def run(self, context: GateContext) -> CheckResult:
        before = _outputs(context.candidate, context.features, "prediction")
        after = _outputs(context.candidate, self.perturb(context.features.copy()), "prediction")
        if before.dtype.kind in "fc" and after.dtype.kind in "fc":
            changed = ~np.isclose(before, after, rtol=0.0, atol=self.tolerance)
        else:
            changed = before != after
        rate = float(np.mean(changed)) if len(changed) else 0.0
        return CheckResult(
            self.name,
            rate <= self.max_change_rate,
            f"{rate:.2%} of predictions changed (allowed {self.max_change_rate:.2%})",
            self.required,
            {"change_rate": rate},
        )


@dataclass(frozen=True)
class Directional:
    """Predictions (or the positive-class probability) move one way under a perturbation."""

    perturb: Perturbation
    expect: str = "increase"
    on: str = "prediction"
    min_rate: float = 1.0
    name: str = "directional"
    required: bool = True

    def __post_init__(self) -> None:
        if self.expect not in {"increase", "decrease"}:
            raise InvalidArgument(f"expect must be 'increase' or 'decrease', not {self.expect!r}")
        if self.on not in {"prediction", "proba"}:
            raise InvalidArgument(f"on must be 'prediction' or 'proba', not {self.on!r}")

    def run(self, context: GateContext) -> CheckResult:
        before = _outputs(context.candidate, context.features, self.on).astype(float)
        after = _outputs(context.candidate, self.perturb(context.features.copy()), self.on)
        moved = after.astype(float) - before
        ok_rows = moved >= 0 if self.expect == "increase" else moved <= 0
        rate = float(np.mean(ok_rows)) if len(ok_rows) else 1.0
        return CheckResult(
            self.name,
            rate >= self.min_rate,
            f"{self.on} moved the expected way ({self.expect} or unchanged) on {rate:.2%} of "
            f"rows (needs at least {self.min_rate:.0%})",
            self.required,
            {"rate": rate},
        )


@dataclass(frozen=True)
class Custom:
    """A user function of the gate's context: ``True``/``False`` or a CheckResult."""

    fn: Callable[[GateContext], Any]
    name: str
    required: bool = True

    def run(self, context: GateContext) -> CheckResult:
        out = self.fn(context)
        if isinstance(out, CheckResult):
            return out
        if not isinstance(out, bool | np.bool_):
            raise InvalidArgument(
                f"custom check {self.name!r} returned {type(out).__name__}; "
                "return True, False or a CheckResult"
            )
        return CheckResult(self.name, bool(out), "passed" if out else "failed", self.required)


def metric(
    name: str, *, min: float | None = None, max: float | None = None, required: bool = True
) -> MetricThreshold:
    """The candidate's ``name`` metric (``f1``, ``roc_auc``, ``rmse``...) within bounds."""
    _check_bounds(f"metric({name!r})", min, max)
    return MetricThreshold(name, min, max, required)


def no_regression(
    metric: str,
    *,
    tolerance: float = 0.0,
    bootstrap: bool = False,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    required: bool = True,
) -> NoRegression:
    """Not worse than the champion on the same rows by more than ``tolerance``.

    With ``bootstrap=True`` the decision is a non-inferiority test: the whole paired bootstrap
    confidence interval of the difference must stay above ``-tolerance`` (so a small sample
    cannot pass by luck). Passes when there is no champion.
    """
    if tolerance < 0:
        raise InvalidArgument(f"tolerance must be 0 or more, not {tolerance}")
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence must be between 0 and 1, not {confidence}")
    return NoRegression(metric, tolerance, bootstrap, confidence, n_resamples, seed, required)


def slice_metric(
    column: str,
    metric: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_rows: int = 30,
    required: bool = True,
) -> SliceMetric:
    """``metric`` within bounds on every slice of ``column`` with at least ``min_rows`` rows."""
    _check_bounds(f"slice_metric({column!r}, {metric!r})", min, max)
    return SliceMetric(column, metric, min, max, min_rows, required)


def latency(
    *,
    p50_ms: float | None = None,
    p99_ms: float | None = None,
    batch_p99_ms: float | None = None,
    required: bool = True,
) -> LatencyBudget:
    """Single-row p50/p99 and batch p99 latency budgets, in milliseconds."""
    if p50_ms is None and p99_ms is None and batch_p99_ms is None:
        raise InvalidArgument("latency() needs p50_ms=, p99_ms= or batch_p99_ms=")
    return LatencyBudget(p50_ms, p99_ms, batch_p99_ms, required)


def size(*, max_mb: float, required: bool = True) -> SizeBudget:
    """The model's size on disk at most ``max_mb`` MiB."""
    return SizeBudget(float(max_mb), required)


def memory(*, max_mb: float, required: bool = True) -> MemoryBudget:
    """Peak memory of predicting the evaluation rows at most ``max_mb`` MiB."""
    return MemoryBudget(float(max_mb), required)


def data_contract(schema: Schema | None = None, *, required: bool = True) -> DataContract:
    """The evaluation rows meet ``schema`` (default: the dataset version's schema, else the
    candidate's input signature)."""
    return DataContract(schema, required)


def sanity(*, all_classes: bool = True, required: bool = True) -> Sanity:
    """No NaN or missing predictions; with ``all_classes``, every true class is predicted."""
    return Sanity(all_classes, required)


def invariance(
    perturb: Perturbation,
    *,
    name: str = "invariance",
    max_change_rate: float = 0.0,
    tolerance: float = 1e-9,
    required: bool = True,
) -> Invariance:
    """Predictions stay the same (numbers within ``tolerance``) after ``perturb(features)``,
    except on at most ``max_change_rate`` of the rows."""
    return Invariance(perturb, name, max_change_rate, tolerance, required)


def directional(
    perturb: Perturbation,
    *,
    expect: str = "increase",
    on: str = "prediction",
    min_rate: float = 1.0,
    name: str = "directional",
    required: bool = True,
) -> Directional:
    """The prediction (``on="proba"``: the last class's probability) moves the ``expect`` way
    (or stays) after ``perturb(features)`` on at least ``min_rate`` of the rows."""
    return Directional(perturb, expect, on, min_rate, name, required)


def custom(
    fn: Callable[[GateContext], Any], *, name: str | None = None, required: bool = True
) -> Custom:
    """Any function of the :class:`~loopml.models.gate.GateContext` as a check."""
    if not callable(fn):
        raise InvalidArgument(f"custom() needs a function, not {type(fn).__name__}")
    return Custom(fn, name or str(getattr(fn, "__name__", "custom")), required)


_FROM_SPEC: dict[str, Callable[..., Check]] = {
    "metric": metric,
    "no_regression": no_regression,
    "slice_metric": slice_metric,
    "latency": latency,
    "size": size,
    "memory": memory,
    "data_contract": lambda required=True: data_contract(required=required),
    "sanity": sanity,
}


def from_spec(entry: Any, index: int = 0) -> Check:
    """One check from its YAML form: ``{kind: {options}}`` (``{metric: {name: f1, min: 0.8}}``).

    Raises:
        InvalidSchema: an unknown kind or option, naming the entry.
    """
    where = f"checks[{index}]"
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise InvalidSchema(
            f"{where} must be one mapping like {{metric: {{name: f1, min: 0.8}}}}, not {entry!r}"
        )
    ((kind, options),) = entry.items()
    if kind not in _FROM_SPEC:
        raise InvalidSchema(
            f"{where}: unknown check {kind!r}; one of {', '.join(sorted(_FROM_SPEC))} "
            "(invariance, directional and custom checks are Python only)"
        )
    options = options or {}
    if not isinstance(options, Mapping):
        raise InvalidSchema(f"{where}: the options of {kind!r} must be a mapping")
    try:
        return _FROM_SPEC[kind](**options)
    except TypeError as exc:
        raise InvalidSchema(f"{where} ({kind}): {exc}") from exc
    except InvalidArgument as exc:
        raise InvalidSchema(f"{where} ({kind}): {exc}") from exc
