"""``loopml monitor``: create monitors, run them (once or on a schedule), read their results,
reports and alerts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.entities import Alert, Monitor, MonitorResult
    from loopml.monitoring.runner import MonitorRun

__all__ = ["app"]

app = typer.Typer(
    help="Watch deployments and datasets for drift, data quality, performance and latency; "
    "alert on what the rules say."
    "\n\n"
    "A monitor is a spec (YAML) stored in the store: what it watches (a deployment's logged "
    "predictions, or a dataset's new versions), the reference (by default the data the served "
    "model was trained on), the window, the checks, the alert rules and the notifiers. "
    "`run` evaluates the windows that are due and stores one result per window."
    "\n\n"
    "\b\n"
    "Examples:\n"
    "  loopml monitor create churn-live --file monitor.yaml\n"
    "  loopml monitor create churn-live --deployment churn --window 1h\n"
    "  loopml monitor run churn-live\n"
    "  loopml monitor run --all --every 5m\n"
    "  loopml monitor report churn-live -o report.html\n"
    "  loopml monitor alerts --state firing",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ProjectOption = Annotated[
    str | None, typer.Option("--project", "-p", metavar="NAME", help="The project.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _monitor_dict(m: Monitor) -> dict[str, Any]:
    return {
        "name": m.name,
        "enabled": m.enabled,
        "revision": m.revision,
        "description": m.description,
        "spec": dict(m.spec),
        "updated_at": output.iso(m.updated_at),
        "updated_by": m.updated_by,
    }


def _watches(m: Monitor) -> str:
    spec = m.spec
    if spec.get("deployment"):
        return f"deployment {spec['deployment']}"
    return f"dataset {spec.get('dataset')}"


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The monitor's name.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", metavar="YAML", help="The spec, as YAML or JSON."),
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Watch this deployment.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Watch this dataset's new versions.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            metavar="URI",
            help="'training' (default) or datasets:/name/version.",
        ),
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", "-w", help="Window length, e.g. 1h (default).")
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    project: ProjectOption = None,
) -> None:
    """Create a monitor from a spec file, or from options for the common case (options
    override the file's settings)."""
    from loopml.monitoring.runner import create_monitor
    from loopml.monitoring.spec import MonitorSpec

    spec: dict[str, Any] = {}
    if file is not None:
        if not file.is_file():
            raise output.fail(f"spec file {str(file)!r} does not exist")
        spec = MonitorSpec.parse(file).to_dict()
    for key, value in (
        ("deployment", deployment),
        ("dataset", dataset),
        ("reference", reference),
        ("window", window),
    ):
        if value is not None:
            spec[key] = value
    if not spec:
        raise output.fail("give --file SPEC.yaml, or --deployment NAME (or --dataset NAME)")
    client = open_client(ctx)
    monitor = create_monitor(client, name, spec, description=description, project=project)
    output.console().print(f"created monitor {name!r} watching {_watches(monitor)}")


@app.command("list")
def list_(ctx: typer.Context, project: ProjectOption = None, json: JsonOption = False) -> None:
    """Every monitor of the project, with its last result."""
    client = open_client(ctx)
    monitors = client.list_monitors(project=project)
    if json:
        output.print_json([_monitor_dict(m) for m in monitors])
        return
    if not monitors:
        output.console().print("no monitors; `loopml monitor create NAME -d DEPLOYMENT` makes one")
        return
    table = output.table("name", "watches", "window", "last window", "status", "drift share")
    for m in monitors:
        last = client.list_monitor_results(m.name, limit=1, project=project)
        r = last[-1] if last else None
        table.add_row(
            output.escape(m.name),
            output.escape(_watches(m)),
            output.escape(str(m.spec.get("window", ""))) + " s",
            output.iso(r.window_end) or "-" if r else "-",
            r.status if r else "never run",
            _num(r.metrics.get("drift_share")) if r else "-",
        )
    output.console().print(table)


@app.command()
def show(
    ctx: typer.Context,
    name: str,
    last: Annotated[int, typer.Option("--last", "-n", help="Windows to show.")] = 10,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """A monitor's spec and its latest results."""
    client = open_client(ctx)
    monitor = client.get_monitor(name, project=project)
    results = client.list_monitor_results(name, limit=last, project=project)
    if json:
        output.print_json(
            {**_monitor_dict(monitor), "results": [_result_dict(r) for r in results]}
        )
        return
    con = output.console()
    output.print_section(
        con,
        f"monitor {output.escape(name)}",
        [
            ("watches", output.escape(_watches(monitor))),
            ("reference", output.escape(str(monitor.spec.get("reference")))),
            ("window", f"{monitor.spec.get('window')} s"),
            ("alert rules", ", ".join(r["name"] for r in monitor.spec.get("alerts", [])) or "-"),
        ],
    )
    _print_results(results)


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"


def _result_dict(r: MonitorResult) -> dict[str, Any]:
    return {
        "window_start": output.iso(r.window_start),
        "window_end": output.iso(r.window_end),
        "status": r.status,
        "metrics": {k: output.json_value(v) for k, v in r.metrics.items()},
    }


_COLUMNS = ("rows", "drift_share", "prediction_drift", "accuracy", "rmse", "latency_p99_ms")


def _print_results(results: list[MonitorResult]) -> None:
    if not results:
        output.console().print("no results yet; `loopml monitor run NAME` evaluates it")
        return
    shown = [c for c in _COLUMNS if any(c in r.metrics for r in results)]
    table = output.table("window start", "status", *shown)
    for r in results:
        table.add_row(
            output.iso(r.window_start) or "", r.status, *(_num(r.metrics.get(c)) for c in shown)
        )
    output.console().print(table)


@app.command()
def run(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="Monitors to run.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every enabled monitor.")] = False,
    every: Annotated[
        str | None,
        typer.Option("--every", metavar="DURATION", help="Keep running, e.g. every 5m."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="Re-evaluate from this ISO time on."),
    ] = None,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Evaluate the windows that are due, store the results, apply the alert rules."""
    import threading

    from loopml.monitoring.runner import run_forever, run_monitor
    from loopml.monitoring.spec import parse_duration

    client = open_client(ctx)
    chosen = list(names or [])
    if all_:
        chosen += [m.name for m in client.list_monitors(project=project) if m.enabled]
    if not chosen:
        raise output.fail("name the monitors to run, or pass --all")
    since_ms = _parse_time(since) if since else None

    def report(done: MonitorRun) -> None:
        if json:
            output.print_json(done.to_dict())
            return
        fired = len(done.alerts)
        output.console().print(
            f"{output.escape(done.monitor)}: {len(done.results)} window(s) evaluated in "
            f"{done.seconds:.2f} s" + (f", {fired} alert event(s)" if fired else "")
        )
        for note in done.notes:
            output.console().print(f"  note: {output.escape(note)}")
        _print_results(done.results[-10:]) if done.results else None

    if every is None:
        for name in chosen:
            report(run_monitor(client, name, since=since_ms, project=project))
        return
    interval = parse_duration(every)
    output.console().print(
        f"running {', '.join(chosen)} every {every}; Ctrl+C stops", highlight=False
    )
    stop = threading.Event()
    try:
        run_forever(client, chosen, every=interval, project=project, stop=stop, on_run=report)
    except KeyboardInterrupt:
        stop.set()


def _parse_time(text: str) -> int:
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise output.fail(
            f"--since must be an ISO time like 2026-12-01T10:00, not {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@app.command()
def report(
    ctx: typer.Context,
    name: str,
    out: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the HTML report here.")
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", metavar="TIME", help="The window starting then.")
    ] = None,
    last: Annotated[int, typer.Option("--last", "-n", help="Windows in the charts.")] = 48,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """A self-contained HTML report of a monitor (the latest window by default), or JSON."""
    from loopml.monitoring.history import build_report

    client = open_client(ctx)
    start = _parse_time(window) if window else None
    html, data = build_report(client, name, window_start=start, last=last, project=project)
    if json:
        output.print_json(data)
        return
    target = out or Path(f"{name}-report.html")
    target.write_text(html, encoding="utf-8")
    output.console().print(f"wrote {target} ({output.format_size(len(html.encode()))})")


@app.command()
def alerts(
    ctx: typer.Context,
    monitor: Annotated[str | None, typer.Option("--monitor", "-m", help="One monitor's.")] = None,
    state: Annotated[str | None, typer.Option("--state", "-s", help="firing or resolved.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 50,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Alerts, newest first, with their deliveries."""
    if state not in (None, "firing", "resolved"):
        raise output.fail(f"--state must be firing or resolved, not {state!r}")
    client = open_client(ctx)
    found = client.list_alerts(monitor=monitor, state=state, limit=limit, project=project)
    if json:
        output.print_json([_alert_dict(client, a, project) for a in found])
        return
    if not found:
        output.console().print("no alerts")
        return
    table = output.table("started", "monitor", "rule", "severity", "state", "message")
    for a in found:
        table.add_row(
            output.iso(a.started_at) or "",
            output.escape(a.monitor),
            output.escape(a.rule),
            a.severity,
            str(a.state),
            output.escape(a.message),
        )
    output.console().print(table)


def _alert_dict(client: Any, a: Alert, project: str | None) -> dict[str, Any]:
    deliveries = client.list_alert_deliveries(alert_id=a.id, project=project)
    return {
        "id": a.id,
        "monitor": a.monitor,
        "rule": a.rule,
        "severity": a.severity,
        "state": str(a.state),
        "message": a.message,
        "value": output.json_value(a.value),
        "threshold": a.threshold,
        "started_at": output.iso(a.started_at),
        "resolved_at": output.iso(a.resolved_at),
        "occurrences": a.occurrences,
        "deliveries": [
            {
                "notifier": d.notifier,
                "kind": d.kind,
                "event": d.event,
                "attempt": d.attempt,
                "ok": d.ok,
                "status": d.status,
                "at": output.iso(d.created_at),
            }
            for d in deliveries
        ],
    }


@app.command()
def delete(
    ctx: typer.Context,
    name: str,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (audited).")] = "",
    project: ProjectOption = None,
) -> None:
    """Delete a monitor and its results (its alerts stay in the history)."""
    client = open_client(ctx)
    client.delete_monitor(name, reason=reason, project=project)
    output.console().print(f"deleted monitor {name!r}")
