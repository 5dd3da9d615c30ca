"""The demo's final summary: the numbers, as Rich tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.demo.main import DemoResult

__all__ = ["print_summary"]


def _f(value: object, digits: int = 3) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.{digits}f}"
    return "-" if value is None else str(value)


def print_summary(result: DemoResult, console: Console) -> None:
    """Accuracy before and after, drift of the top features, alerts, decisions, timings, and
    where to look next."""
    from rich.table import Table

    c = result.comparison
    if c:
        t = Table(
            title=f"Accuracy on the same labelled window ({c['window'][0]} to "
            f"{c['window'][1]}, {c['rows']:,} flights, {c['delay_rate']:.1%} delayed)"
        )
        t.add_column("model")
        for k in ("accuracy", "roc_auc", "f1"):
            t.add_column(k, justify="right")
        for label, key in (
            ("before", f"v{c['before_version']}"),
            ("after", f"v{c['after_version']}"),
        ):
            s = c["scores"].get(key, {})
            t.add_row(f"{label}: {key}", *(_f(s.get(k)) for k in ("accuracy", "roc_auc", "f1")))
        t.add_row(
            "live accuracy (monitor)",
            f"{_f(c['live_accuracy_before'])} -> {_f(c['live_accuracy_after'])}",
            "",
            "",
        )
        console.print(t)
    if result.drift:
        t = Table(title="Drift of the top features (mean statistic per week vs the training data)")
        t.add_column("feature")
        t.add_column("before the retraining", justify="right")
        t.add_column("after", justify="right")
        for feature, v in list(result.drift.items())[:6]:
            t.add_row(feature, _f(v["before"]), _f(v["after"]))
        console.print(t)
    if result.alerts or result.decisions:
        t = Table(title="Alerts and the loop's decisions")
        t.add_column("when")
        t.add_column("what")
        for a in result.alerts:
            t.add_row(
                f"week {a['week']}",
                f"alert {a['kind']}: {a['rule']} ({a['severity']}): {a['message']}",
            )
        for d in result.decisions:
            t.add_row("loop", f"{d['action']}: {d['reason']}")
        console.print(t)
    t = Table(title="Timings")
    t.add_column("stage")
    t.add_column("seconds", justify="right")
    for stage, seconds in result.timings.items():
        t.add_row(stage, f"{seconds:.1f}")
    console.print(t)
    console.print("[bold]Where to look next[/]")
    for line in result.next_steps:
        console.print(f"  {line}", highlight=False, soft_wrap=True)
