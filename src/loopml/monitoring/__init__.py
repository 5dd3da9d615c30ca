"""Monitoring: drift, data quality, performance and latency of deployed models, from the window
profiles and prediction log serving writes (or from batches of data), alert rules over the
results with notifiers and action hooks, and self-contained reports.

Start with :func:`create_monitor` and :func:`run_monitor` (or ``loopml monitor``); for a batch
of new data against a reference, :func:`drift_report`. Nothing heavy loads until used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.monitoring.actions import alert_action as alert_action
    from loopml.monitoring.actions import register_action as register_action
    from loopml.monitoring.alerting import AlertEvent as AlertEvent
    from loopml.monitoring.alerting import AlertRule as AlertRule
    from loopml.monitoring.alerting import evaluate_rules as evaluate_rules
    from loopml.monitoring.batch import DriftReport as DriftReport
    from loopml.monitoring.batch import drift_report as drift_report
    from loopml.monitoring.evaluate import Evaluation as Evaluation
    from loopml.monitoring.evaluate import Window as Window
    from loopml.monitoring.evaluate import evaluate_window as evaluate_window
    from loopml.monitoring.history import build_report as build_report
    from loopml.monitoring.notifiers import NotifierSpec as NotifierSpec
    from loopml.monitoring.notifiers import deliver as deliver
    from loopml.monitoring.outliers import OutlierFlags as OutlierFlags
    from loopml.monitoring.outliers import OutlierRules as OutlierRules
    from loopml.monitoring.report import monitor_report_html as monitor_report_html
    from loopml.monitoring.report import monitor_report_json as monitor_report_json
    from loopml.monitoring.runner import MonitorRun as MonitorRun
    from loopml.monitoring.runner import create_monitor as create_monitor
    from loopml.monitoring.runner import run_forever as run_forever
    from loopml.monitoring.runner import run_monitor as run_monitor
    from loopml.monitoring.spec import DriftCheck as DriftCheck
    from loopml.monitoring.spec import LatencyCheck as LatencyCheck
    from loopml.monitoring.spec import MonitorSpec as MonitorSpec
    from loopml.monitoring.spec import PerformanceCheck as PerformanceCheck
    from loopml.monitoring.spec import PredictionDriftCheck as PredictionDriftCheck
    from loopml.monitoring.spec import QualityCheck as QualityCheck
    from loopml.monitoring.spec import parse_duration as parse_duration

_LAZY = {
    "alert_action": "loopml.monitoring.actions",
    "register_action": "loopml.monitoring.actions",
    "AlertEvent": "loopml.monitoring.alerting",
    "AlertRule": "loopml.monitoring.alerting",
    "evaluate_rules": "loopml.monitoring.alerting",
    "DriftReport": "loopml.monitoring.batch",
    "drift_report": "loopml.monitoring.batch",
    "Evaluation": "loopml.monitoring.evaluate",
    "Window": "loopml.monitoring.evaluate",
    "evaluate_window": "loopml.monitoring.evaluate",
    "build_report": "loopml.monitoring.history",
    "NotifierSpec": "loopml.monitoring.notifiers",
    "deliver": "loopml.monitoring.notifiers",
    "OutlierFlags": "loopml.monitoring.outliers",
    "OutlierRules": "loopml.monitoring.outliers",
    "monitor_report_html": "loopml.monitoring.report",
    "monitor_report_json": "loopml.monitoring.report",
    "MonitorRun": "loopml.monitoring.runner",
    "create_monitor": "loopml.monitoring.runner",
    "run_forever": "loopml.monitoring.runner",
    "run_monitor": "loopml.monitoring.runner",
    "DriftCheck": "loopml.monitoring.spec",
    "LatencyCheck": "loopml.monitoring.spec",
    "MonitorSpec": "loopml.monitoring.spec",
    "PerformanceCheck": "loopml.monitoring.spec",
    "PredictionDriftCheck": "loopml.monitoring.spec",
    "QualityCheck": "loopml.monitoring.spec",
    "parse_duration": "loopml.monitoring.spec",
}

__all__ = [
    "AlertEvent",
    "AlertRule",
    "DriftCheck",
    "DriftReport",
    "Evaluation",
    "LatencyCheck",
    "MonitorRun",
    "MonitorSpec",
    "NotifierSpec",
    "OutlierFlags",
    "OutlierRules",
    "PerformanceCheck",
    "PredictionDriftCheck",
    "QualityCheck",
    "Window",
    "alert_action",
    "build_report",
    "create_monitor",
    "deliver",
    "drift_report",
    "evaluate_rules",
    "evaluate_window",
    "monitor_report_html",
    "monitor_report_json",
    "parse_duration",
    "register_action",
    "run_forever",
    "run_monitor",
]


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loopml.monitoring' has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
