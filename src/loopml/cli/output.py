"""Rendering for the CLI: Rich tables for people, JSON for scripts, and the formatters both use.

Rich is imported inside the functions that draw, so that ``loopml --help`` never pays for it. JSON
goes to stdout through :func:`print_json` and nothing else does in ``--json`` mode; non-finite
floats become the strings ``"nan"``, ``"inf"`` and ``"-inf"`` so the output stays valid JSON.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from loopml.entities import ArtifactInfo, Environment, Run

__all__ = [
    "STATUS_STYLES",
    "console",
    "environment_summary",
    "escape",
    "fail",
    "format_duration",
    "format_size",
    "format_started",
    "format_value",
    "iso",
    "json_value",
    "print_comparison",
    "print_json",
    "print_run",
    "print_runs",
    "print_section",
    "run_to_dict",
    "sparkline",
    "status_markup",
    "table",
]

STATUS_STYLES: Mapping[str, str] = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "killed": "yellow",
}
_BLOCKS = "▁▂▃▄▅▆▇█"
_PIPE_WIDTH = 200


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: <message>`` as one red line on stderr; returns the ``Exit`` to raise."""
    typer.secho(f"error: {' '.join(message.split())}", fg="red", err=True)
    return typer.Exit(code)


def console() -> Console:
    """A Rich console on stdout; wide when stdout is not a terminal, so piped tables do not fold
    at 80 columns (``COLUMNS`` still wins)."""
    from rich.console import Console

    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(file=sys.stdout, highlight=False, width=_PIPE_WIDTH if wide else None)


def table(*columns: str, title: str | None = None, no_wrap: Iterable[str] = ()) -> Table:
    """A plain Rich table with these column headers; ``no_wrap`` columns never fold."""
    from rich import box
    from rich.table import Table

    keep = set(no_wrap)
    t = Table(
        title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False, show_edge=False
    )
    for name in columns:
        t.add_column(name, overflow="fold", no_wrap=name in keep)
    return t


def print_section(con: Console, title: str, rows: Sequence[tuple[str, str]]) -> None:
    """A bold heading and a two-column table of ``(key, markup value)`` rows; nothing if empty."""
    if not rows:
        return
    t = table("key", "value", no_wrap=["key"])
    t.show_header = False
    for key, value in rows:
        t.add_row(escape(key), value)
    con.print(f"[bold]{title}[/bold]")
    con.print(t)
    con.print()


def escape(text: object) -> str:
    """``text`` with Rich markup characters escaped (user data never becomes markup)."""
    from rich.markup import escape as _escape

    return _escape(str(text))


def json_value(value: Any) -> Any:
    """A JSON-safe copy of ``value``: non-finite floats become strings, mappings become dicts."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    typer.echo(json.dumps(json_value(data), indent=2, allow_nan=False))


def iso(ms: int | None) -> str | None:
    """Milliseconds since the epoch as an ISO 8601 UTC timestamp (``2024-05-01T12:00:00Z``)."""
    if ms is None:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )


def format_started(ms: int, now_ms: int) -> str:
    """A start time for a table: relative when under a week old (``5m ago``), else the date."""
    age = (now_ms - ms) / 1000
    if age < 0 or age >= 7 * 86400:
        return (iso(ms) or "")[:16].replace("T", " ")
    if age < 60:
        return f"{int(age)}s ago"
    if age < 3600:
        return f"{int(age // 60)}m ago"
    if age < 86400:
        return f"{int(age // 3600)}h ago"
    return f"{int(age // 86400)}d ago"


def format_duration(ms: int | None) -> str:
    """A duration as ``850ms``, ``12.3s``, ``4m 05s`` or ``2h 03m``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_value(value: object) -> str:
    """A param or metric for a table cell: floats with 6 significant digits, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def status_markup(status: str) -> str:
    """The status word in its colour, as Rich markup."""
    style = STATUS_STYLES.get(status, "white")
    return f"[{style}]{status}[/{style}]"


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """A one-line chart of ``values`` in unicode blocks, averaged down to ``width`` buckets.

    Non-finite values are skipped; a flat series is drawn at mid height.
    """
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(finite) > width:
        buckets = []
        for i in range(width):
            lo, hi = i * len(finite) // width, (i + 1) * len(finite) // width
            chunk = finite[lo:hi]
            buckets.append(sum(chunk) / len(chunk))
        finite = buckets
    low, high = min(finite), max(finite)
    if high == low:
        return _BLOCKS[len(_BLOCKS) // 2] * len(finite)
    scale = (len(_BLOCKS) - 1) / (high - low)
    return "".join(_BLOCKS[round((v - low) * scale)] for v in finite)


def run_to_dict(run: Run) -> dict[str, Any]:
    """A run as a JSON-ready dict (times in ms and ISO 8601)."""
    return {
        "run_id": run.run_id,
        "name": run.name,
        "project_id": run.project_id,
        "status": run.status.value,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "started": iso(run.start_time),
        "ended": iso(run.end_time),
        "duration_ms": run.duration_ms,
        "parent_run_id": run.parent_run_id,
        "user": run.user,
        "params": dict(sorted(run.params.items())),
        "metrics": dict(sorted(run.metrics.items())),
        "tags": dict(sorted(run.tags.items())),
    }


def environment_summary(env: Environment | None) -> dict[str, Any] | None:
    """Where a run ran, without the package list (only its length)."""
    if env is None:
        return None
    return {
        "python_version": env.python_version,
        "platform": env.platform,
        "git_commit": env.git_commit,
        "git_dirty": env.git_dirty,
        "packages": len(env.packages),
        "seed": env.seed,
        "command": list(env.command),
    }


def format_size(n: int) -> str:
    """A byte count as ``512 B``, ``1.5 KiB``, ``12.0 MiB`` or ``3.2 GiB``."""
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def print_runs(
    runs: Sequence[Run],
    columns: Sequence[tuple[str, str]],
    project_names: Mapping[str, str] | None = None,
) -> None:
    """The ``runs list`` table: id, name, [project,] status, started, duration, then ``columns``
    (``("params", "lr")``, ``("metrics", "auc")``, ``("tags", "team")``)."""
    from loopml.entities import now_ms

    fixed = ["id", "name", "status", "started", "duration"]
    if project_names is not None:
        fixed.insert(2, "project")
    t = table(*fixed, *(f"{s}.{k}" for s, k in columns), no_wrap=["id", "status", "duration"])
    now = now_ms()
    for run in runs:
        if run.end_time is None:
            duration = f"[dim]{format_duration(now - run.start_time)}…[/dim]"
        else:
            duration = format_duration(run.duration_ms)
        cells = [
            run.run_id[:8],
            escape(run.name),
            status_markup(run.status.value),
            format_started(run.start_time, now),
            duration,
        ]
        if project_names is not None:
            cells.insert(2, escape(project_names.get(run.project_id, run.project_id[:8])))
        sections: dict[str, Mapping[str, Any]] = {
            "params": run.params,
            "metrics": run.metrics,
            "tags": run.tags,
        }
        cells += [escape(format_value(sections[s].get(k))) for s, k in columns]
        t.add_row(*cells)
    console().print(t)


def print_run(
    run: Run,
    project: str,
    env: Mapping[str, Any] | None,
    artifacts: Sequence[ArtifactInfo],
) -> None:
    """The ``runs show`` page: attributes, params, metrics, tags, environment, artifacts."""
    con = console()
    attrs = [
        ("id", run.run_id),
        ("name", escape(run.name)),
        ("project", escape(project)),
        ("status", status_markup(run.status.value)),
        ("user", escape(run.user)),
        ("started", iso(run.start_time) or "-"),
        ("ended", iso(run.end_time) or "-"),
        ("duration", format_duration(run.duration_ms)),
    ]
    if run.parent_run_id:
        attrs.append(("parent", run.parent_run_id))
    print_section(con, f"Run {escape(run.name)}", attrs)
    print_section(con, "Params", [(k, escape(v)) for k, v in sorted(run.params.items())])
    metrics = [(k, format_value(v)) for k, v in sorted(run.metrics.items())]
    print_section(con, "Metrics (latest)", metrics)
    print_section(con, "Tags", [(k, escape(v)) for k, v in sorted(run.tags.items())])
    if env is not None:
        dirty = {True: " (dirty)", False: " (clean)"}.get(env["git_dirty"], "")
        rows = [
            ("python", escape(env["python_version"])),
            ("platform", escape(env["platform"])),
            ("git commit", escape(f"{env['git_commit'] or '-'}{dirty}")),
            ("packages", str(env["packages"])),
            ("seed", format_value(env["seed"])),
        ]
        print_section(con, "Environment", rows)
    if artifacts:
        t = table("path", "size", "sha256", no_wrap=["size", "sha256"])
        for a in artifacts:
            t.add_row(escape(a.path), format_size(a.size), a.sha256[:12])
        con.print("[bold]Artifacts[/bold]")
        con.print(t)


def print_comparison(
    runs: Sequence[Run],
    params: Mapping[str, Sequence[str | None]],
    metrics: Mapping[str, Sequence[float | None]],
    differing: Iterable[str],
) -> None:
    """The ``runs compare`` table: one column per run, params (those in ``differing`` marked
    with ``*`` and in bold yellow), then metrics."""
    highlight = set(differing)
    t = table("", *(f"{escape(r.name)}\n{r.run_id[:8]}" for r in runs))
    if highlight & set(params):
        t.caption, t.caption_justify = "* params that differ", "left"
    for key, pvalues in params.items():
        differs = key in highlight
        t.add_row(
            f"params.{escape(key)}{' *' if differs else ''}",
            *(escape(format_value(v)) for v in pvalues),
            style="bold yellow" if differs else None,
        )
    if params and metrics:
        t.add_section()
    for key, mvalues in metrics.items():
        t.add_row(f"metrics.{escape(key)}", *(format_value(v) for v in mvalues))
    console().print(t)
