"""The monitor report's content, for :mod:`loopml.monitoring.report`: what the page shows and
the JSON form carries, built from a monitor, its results (one per window) and its alerts.

Details are JSON written by the monitor runner, or by any other version of it: every field is
read defensively (missing, None or of the wrong type is left out), and drift tests come back as
:class:`~loopml.stats.ColumnDrift` to score them with :func:`loopml.data.report.drift_score`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.data.report import drift_score

if TYPE_CHECKING:
    from loopml.entities import Alert, Monitor, MonitorResult
    from loopml.stats import ColumnDrift

MAX_WINDOWS = 90
"""Windows in the charts and the time series: the latest this many (the report says so)."""
BOUNDED = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")
"""Performance metrics that are shares (drawn together); ``ERRORS`` are in the label's units."""
ERRORS = ("rmse", "mae", "mape", "log_loss")
MAIN = {"classification": ("accuracy", "f1", "roc_auc"), "regression": ("rmse", "mae", "r2")}
"""The metric a tile shows, by task: the first the window has."""
_HYPOTHESIS_TESTS = ("ks", "chisquare")


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` if a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` as a list if a list or tuple, else an empty one."""
    return list(value) if isinstance(value, list | tuple) else []


def as_float(value: Any) -> float:
    """A number from JSON; None, missing or not a number is NaN."""
    return float(value) if isinstance(value, int | float) else math.nan


def _int(value: Any) -> int:
    number = as_float(value)
    return int(number) if math.isfinite(number) else 0


def _column_drift(d: Mapping[str, Any]) -> ColumnDrift:
    """A :class:`~loopml.stats.ColumnDrift` back from its ``to_dict`` form."""
    from loopml.stats import ColumnDrift, DriftResult

    p, note = d.get("p_value"), d.get("note")
    result = DriftResult(
        str(d.get("test") or "?"),
        as_float(d.get("statistic")),
        None if p is None else as_float(p),
        as_float(d.get("threshold")),
        bool(d.get("drifted")),
        None if note is None else str(note),
    )
    return ColumnDrift(
        str(d.get("column", "")),
        str(d.get("kind") or ""),
        _int(d.get("reference_count")),
        _int(d.get("current_count")),
        as_float(d.get("reference_null_share")),
        as_float(d.get("current_null_share")),
        result,
    )


def _feature(d: Mapping[str, Any], history: list[float]) -> dict[str, Any]:
    c = _column_drift(d)
    r = c.result
    return {
        "column": c.column,
        "kind": c.kind,
        "test": r.test,
        "statistic": r.statistic,
        "p_value": r.p_value,
        "threshold": r.threshold,
        "score": drift_score(c),
        "drifted": r.drifted,
        "reference_count": c.reference_count,
        "current_count": c.current_count,
        "reference_null_share": c.reference_null_share,
        "current_null_share": c.current_null_share,
        "note": r.note,
        "history": history,
    }


def _rank(score: float) -> float:
    """Sort key: the most drifted first, untested last."""
    return math.inf if math.isnan(score) else -score


def _drift_columns(result: MonitorResult) -> dict[str, Mapping[str, Any]]:
    cols = as_list(as_map(result.details.get("drift")).get("columns"))
    return {str(c.get("column")): c for c in cols if isinstance(c, Mapping)}


def _score(test: Mapping[str, Any] | None, statistic: Any, known: Mapping[str, Any]) -> float:
    """The drift score of a window's test, or, without its details, from the statistic alone
    when the feature's test (as ``known`` from another window) is a distance: a hypothesis
    test's statistic gives no score without its p-value."""
    if test is not None:
        return drift_score(_column_drift(test))
    threshold = as_float(known.get("threshold"))
    name = known.get("test")
    distance = name is not None and name not in _HYPOTHESIS_TESTS and known.get("p_value") is None
    return as_float(statistic) / threshold if distance and threshold > 0 else math.nan


def _history(shown: Sequence[MonitorResult], latest: Mapping[str, Any]) -> dict[str, list[float]]:
    """Drift score per feature (the window's first) and window of ``shown``."""
    per_window = [_drift_columns(r) for r in shown]
    names: dict[str, None] = dict.fromkeys(latest)
    for r, cols in zip(shown, per_window, strict=True):
        names.update(dict.fromkeys(cols))
        names.update(dict.fromkeys(k[6:] for k in r.metrics if k.startswith("drift.")))
    known = {n: c for cols in per_window for n, c in cols.items()} | dict(latest)
    return {
        name: [
            _score(cols.get(name), r.metrics.get("drift." + name), known.get(name, {}))
            for r, cols in zip(shown, per_window, strict=True)
        ]
        for name in names
    }


def _spec_summary(spec: Mapping[str, Any]) -> dict[str, Any]:
    window = spec.get("window")
    rules = [r for r in as_list(spec.get("alerts")) if isinstance(r, Mapping)]
    return {
        "deployment": spec.get("deployment"),
        "dataset": spec.get("dataset"),
        "route": spec.get("route"),
        "reference": spec.get("reference"),
        "window_seconds": window if isinstance(window, int | float) else None,
        "alert_rules": [
            {k: r.get(k) for k in ("name", "metric", "op", "threshold", "severity")} for r in rules
        ],
    }


def _metric(result: MonitorResult | None, name: str, fallback: Any = None) -> float:
    if result is not None and name in result.metrics:
        return as_float(result.metrics[name])
    return as_float(fallback)


def _main_performance(result: MonitorResult) -> dict[str, Any] | None:
    """The tile's metric: accuracy (or f1, roc_auc), rmse (or mae, r2), else the first."""
    perf = as_map(result.details.get("performance"))
    metrics = dict(as_map(perf.get("metrics")))
    metrics.update({k: v for k, v in result.metrics.items() if k in BOUNDED + ERRORS})
    if not metrics:
        return None
    task = str(perf.get("task") or ("regression" if "rmse" in metrics else "classification"))
    name = next(n for n in (*MAIN.get(task, ()), *metrics) if n in metrics)
    labelled = perf.get("labelled", result.metrics.get("labelled"))
    return {"metric": name, "value": as_float(metrics[name]), "labelled": labelled, "task": task}


def _alert(a: Alert) -> dict[str, Any]:
    keys: tuple[str, ...] = ("id", "rule", "severity", "message", "value", "threshold")
    keys += (
        "window_start",
        "window_end",
        "started_at",
        "last_seen_at",
        "resolved_at",
        "occurrences",
    )
    return {k: getattr(a, k) for k in keys} | {"state": str(a.state)}


def _summary(c: Mapping[str, Any], window: MonitorResult) -> dict[str, Any]:
    details = window.details
    drift = as_map(details.get("drift"))
    latency = as_map(details.get("latency"))
    pred, features = c["prediction_drift"], c["features"]
    return {
        "rows": _metric(window, "rows", details.get("rows")),
        "drift_share": _metric(window, "drift_share", drift.get("drifted_share")),
        "dataset_drift": _metric(window, "dataset_drift", drift.get("dataset_drift")) == 1,
        "drifted_features": (
            sum(f["drifted"] for f in features)
            if features
            else _metric(window, "drifted_features")
        ),
        "features": len(features) or None,
        "prediction_drift": (
            {k: pred[k] for k in ("column", "test", "statistic", "drifted")} if pred else None
        ),
        "performance": _main_performance(window),
        "latency_p99_ms": _metric(window, "latency_p99_ms", latency.get("p99_ms")),
        "open_alerts": sum(a["state"] == "firing" for a in c["alerts"]),
    }


def content(
    monitor: Monitor,
    results: Sequence[MonitorResult],
    window: MonitorResult | None,
    alerts: Sequence[Alert],
) -> dict[str, Any]:
    """The report's content: JSON-shaped, but with NaN and infinities still floats."""
    ordered = sorted(results, key=lambda r: (r.window_start, r.window_end))
    window = window or (ordered[-1] if ordered else None)
    shown = ordered[-MAX_WINDOWS:]
    details = as_map(window.details) if window is not None else {}
    drift = as_map(details.get("drift"))
    latest = _drift_columns(window) if window is not None else {}
    history = _history(shown, latest)
    features = [_feature(d, history[n]) for n, d in latest.items()]
    features.sort(key=lambda f: (_rank(f["score"]), f["column"]))
    others = {n: s for n, s in history.items() if n not in latest and not all(map(math.isnan, s))}
    prediction = as_map(details.get("prediction_drift"))
    pred = None
    if prediction:
        scores = [
            _score(
                as_map(r.details.get("prediction_drift")) or None,
                r.metrics.get("prediction_drift"),
                prediction,
            )
            for r in shown
        ]
        pred = _feature(prediction, scores) | {"against": prediction.get("against")}
    c: dict[str, Any] = {
        "monitor": {
            "project_id": monitor.project_id,
            "name": monitor.name,
            "description": monitor.description,
            "enabled": monitor.enabled,
            "revision": monitor.revision,
            **_spec_summary(as_map(monitor.spec)),
        },
        "window": None
        if window is None
        else {
            "id": window.id,
            "start": window.window_start,
            "end": window.window_end,
            "status": window.status,
        },
        "windows_total": len(ordered),
        "windows": [
            {
                "start": r.window_start,
                "end": r.window_end,
                "status": r.status,
                "metrics": dict(r.metrics),
            }
            for r in shown
        ],
        "summary": None,
        "reference": dict(as_map(details.get("reference"))) or None,
        "dataset_drift_share": drift.get("drift_share"),
        "only_in_reference": as_list(drift.get("only_in_reference")),
        "only_in_current": as_list(drift.get("only_in_current")),
        "features": features,
        "drift_history": dict(sorted(others.items(), key=lambda kv: min(map(_rank, kv[1])))),
        "prediction_drift": pred,
        "quality": dict(as_map(details.get("quality"))) or None,
        "performance": dict(as_map(details.get("performance"))) or None,
        "latency": dict(as_map(details.get("latency"))) or None,
        "notes": [str(n) for n in as_list(details.get("notes"))],
        "alerts": sorted(
            (_alert(a) for a in alerts),
            key=lambda a: (a["state"] != "firing", -(a["started_at"] or 0)),
        ),
    }
    if window is not None:
        c["summary"] = _summary(c, window)
    return c


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as None, tuples as lists, keys as strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)
