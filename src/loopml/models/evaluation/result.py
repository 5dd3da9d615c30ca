"""The :class:`EvaluationResult`: what one evaluation found, and the predictions behind it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidArgument
from loopml.models.evaluation import bootstrap
from loopml.models.evaluation.bootstrap import BootstrapInterval, PairedDelta
from loopml.models.evaluation.metrics import greater_is_better
from loopml.models.evaluation.predictions import CLASSIFICATION, Predictions, json_label

__all__ = ["EvaluationResult"]

_MIB = 1024 * 1024


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """The outcome of :func:`~loopml.models.evaluation.evaluate`.

    Attributes:
        task: ``"classification"`` or ``"regression"``.
        metrics: metric name -> value on all rows (``accuracy``, ``roc_auc``, ``rmse``...).
        num_rows: how many rows were evaluated.
        slices: slice column -> slice label -> ``{"num_rows": n, "small": bool,
            "metrics": {...}}``.
        confusion_matrix: classification: counts, rows the true and columns the predicted
            class, both in :attr:`classes` order.
        classes: classification: the labels, in the order of the confusion matrix.
        positive_label: binary classification: the label counted as positive.
        per_class: classification: label (as text) -> support, precision, recall and F1.
        calibration: binary classification with probabilities: ``mean_predicted``,
            ``fraction_positive`` and ``count`` of each non-empty probability bin.
        performance: timings (``predict_seconds``, ``rows_per_second``, latency percentiles in
            ms), ``peak_memory_bytes`` of the full prediction and how it was measured,
            ``model_size_bytes`` and how it was measured.
        plots: plot name -> artifact path in the run (``evaluation/plots/roc_curve.png``).
        run_id: the run the evaluation was logged to, or None.
        dataset: the ``datasets:/`` URI of the evaluated data, when it was one.
        model: the ``models:/`` URI (or other URI) of the model, when it was one.
        notes: what was left out or restricted, and why.
        predictions: the targets, predictions and probabilities of every row (not in
            :meth:`to_dict`), for :meth:`bootstrap_ci` and :meth:`paired_bootstrap_delta`.
    """

    task: str
    metrics: Mapping[str, float]
    num_rows: int
    slices: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None
    classes: tuple[Any, ...] = ()
    positive_label: Any = None
    per_class: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    calibration: Mapping[str, list[float]] | None = None
    performance: Mapping[str, float | str | None] = field(default_factory=dict)
    plots: Mapping[str, str] = field(default_factory=dict)
    run_id: str | None = None
    dataset: str | None = None
    model: str | None = None
    notes: tuple[str, ...] = ()
    predictions: Predictions | None = field(default=None, repr=False)

    # --- comparing -------------------------------------------------------------------------------

    def compare(self, other: EvaluationResult) -> dict[str, float]:
        """This evaluation's metrics minus ``other``'s, for the metrics both have.

        A positive delta is an improvement for metrics where larger is better (accuracy, AUC,
        R²) and a regression for losses and errors (log loss, RMSE); see
        :func:`~loopml.models.evaluation.greater_is_better`.

        Raises:
            InvalidArgument: the two evaluations are of different tasks.
        """
        if not isinstance(other, EvaluationResult):
            raise InvalidArgument(
                f"compare takes another EvaluationResult, not {type(other).__name__}"
            )
        if other.task != self.task:
            raise InvalidArgument(
                f"cannot compare a {self.task} evaluation with a {other.task} evaluation"
            )
        return {
            name: float(value) - float(other.metrics[name])
            for name, value in self.metrics.items()
            if name in other.metrics
        }

    def bootstrap_ci(
        self, metric: str, n: int = 1000, seed: int = 0, alpha: float = 0.05
    ) -> BootstrapInterval:
        """A percentile bootstrap confidence interval of ``metric`` over the evaluated rows.

        Args:
            metric: a metric of :attr:`metrics` (``accuracy``, ``roc_auc``, ``rmse``...).
            n: the number of resamples.
            seed: the resampling seed (the same seed gives the same interval).
            alpha: one minus the confidence level (0.05: a 95% interval).

        Raises:
            InvalidArgument: the result holds no predictions (it was read back from JSON), or
                the metric cannot be resampled.
        """
        return bootstrap.bootstrap_ci(self._predictions(), metric, n=n, seed=seed, alpha=alpha)

    def paired_bootstrap_delta(
        self,
        other: EvaluationResult,
        metric: str,
        *,
        n: int = 1000,
        seed: int = 0,
        alpha: float = 0.05,
    ) -> PairedDelta:
        """A paired bootstrap interval of this model's ``metric`` minus ``other``'s.

        Both are scored on the same resamples of the same rows, so noise they share cancels:
        call it on the challenger with the champion as ``other``.

        Raises:
            InvalidArgument: the two were not evaluated on the same rows, either holds no
                predictions, or the metric cannot be resampled.
        """
        return bootstrap.paired_bootstrap_delta(
            self._predictions(), other._predictions(), metric, n=n, seed=seed, alpha=alpha
        )

    def _predictions(self) -> Predictions:
        if self.predictions is None:
            raise InvalidArgument(
                "this evaluation result holds no predictions (it was read back from JSON); "
                "run loopml.models.evaluation.evaluate again to resample"
            )
        return self.predictions

    # --- serialising -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything but the predictions, JSON-ready (what the run stores as
        ``evaluation/result.json``)."""
        return {
            "task": self.task,
            "num_rows": self.num_rows,
            "metrics": dict(self.metrics),
            "slices": {c: {k: dict(v) for k, v in s.items()} for c, s in self.slices.items()},
            "confusion_matrix": None
            if self.confusion_matrix is None
            else [list(r) for r in self.confusion_matrix],
            "classes": [json_label(c) for c in self.classes],
            "positive_label": json_label(self.positive_label),
            "per_class": {k: dict(v) for k, v in self.per_class.items()},
            "calibration": None if self.calibration is None else dict(self.calibration),
            "performance": dict(self.performance),
            "plots": dict(self.plots),
            "run_id": self.run_id,
            "dataset": self.dataset,
            "model": self.model,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationResult:
        """A result from :meth:`to_dict`'s output (without predictions)."""
        matrix = data.get("confusion_matrix")
        return cls(
            task=data["task"],
            metrics=dict(data["metrics"]),
            num_rows=int(data["num_rows"]),
            slices=data.get("slices") or {},
            confusion_matrix=None if matrix is None else tuple(tuple(r) for r in matrix),
            classes=tuple(data.get("classes") or ()),
            positive_label=data.get("positive_label"),
            per_class=data.get("per_class") or {},
            calibration=data.get("calibration"),
            performance=data.get("performance") or {},
            plots=data.get("plots") or {},
            run_id=data.get("run_id"),
            dataset=data.get("dataset"),
            model=data.get("model"),
            notes=tuple(data.get("notes") or ()),
        )

    # --- showing ---------------------------------------------------------------------------------

    def _title(self) -> str:
        kind = self.task
        if self.task == CLASSIFICATION:
            kind = ("binary " if len(self.classes) == 2 else "multiclass ") + kind
        where = f", run {self.run_id}" if self.run_id else ""
        return f"Evaluation: {kind}, {self.num_rows:,} rows{where}"

    def _performance_lines(self) -> list[str]:
        number = {k: v for k, v in self.performance.items() if isinstance(v, (int, float))}
        lines = []
        if "predict_seconds" in number:
            line = f"predict {number['predict_seconds']:.3f} s"
            if "rows_per_second" in number:
                line += f" ({number['rows_per_second']:,.0f} rows/s)"
            if "peak_memory_bytes" in number:
                line += f", peak memory +{number['peak_memory_bytes'] / _MIB:.1f} MiB"
            lines.append(line)
        for part, label in (("latency", "1 row"), ("batch_latency", "batch")):
            if f"{part}_p50_ms" in number:
                lines.append(
                    f"latency ({label}): p50 {number[f'{part}_p50_ms']:.2f} ms, "
                    f"p95 {number[f'{part}_p95_ms']:.2f} ms, p99 {number[f'{part}_p99_ms']:.2f} ms"
                )
        if "model_size_bytes" in number:
            size = number["model_size_bytes"] / _MIB
            lines.append(
                f"model size {size:.2f} MiB ({self.performance.get('model_size_method')})"
            )
        return lines

    def __str__(self) -> str:
        lines = [self._title()]
        width = max((len(k) for k in self.metrics), default=0)
        lines += [f"  {k:<{width}}  {v:.4f}" for k, v in self.metrics.items()]
        for column, groups in self.slices.items():
            lines.append(f"slices by {column}:")
            for label, s in groups.items():
                shown = ", ".join(f"{k} {v:.4f}" for k, v in list(s["metrics"].items())[:4])
                small = " (small)" if s["small"] else ""
                lines.append(f"  {label}: {s['num_rows']:,} rows{small}  {shown}")
        perf = self._performance_lines()
        if perf:
            lines.append("performance:")
            lines += [f"  {line}" for line in perf]
        if self.notes:
            lines.append("notes:")
            lines += [f"  - {note}" for note in self.notes]
        return "\n".join(lines)

    def __rich__(self) -> Any:
        """A Rich rendering: metrics, slices and performance as tables."""
        from rich.console import Group
        from rich.markup import escape
        from rich.table import Table

        metrics = Table(title=self._title(), show_header=True, title_justify="left")
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for name, value in self.metrics.items():
            arrow = "↑" if greater_is_better(name) else "↓"
            metrics.add_row(f"{name} {arrow}", f"{value:.4f}")
        parts: list[Any] = [metrics]
        for column, groups in self.slices.items():
            names = list(next(iter(groups.values()))["metrics"]) if groups else []
            table = Table(title=f"slices by {column}", title_justify="left")
            table.add_column(column)
            table.add_column("rows", justify="right")
            for name in names:
                table.add_column(name, justify="right")
            for label, s in groups.items():
                rows = f"{s['num_rows']:,}" + (" [yellow](small)[/]" if s["small"] else "")
                cells = [f"{s['metrics'][n]:.4f}" if n in s["metrics"] else "-" for n in names]
                table.add_row(escape(label), rows, *cells)
            parts.append(table)
        parts += [escape(line) for line in self._performance_lines()]
        parts += [f"[dim]note: {escape(note)}[/]" for note in self.notes]
        return Group(*parts)
