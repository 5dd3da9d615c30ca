"""``loopml tune``: the hyperparameter studies in a store: list them, show one (best trial,
trials, parameter importance), plot one to an HTML file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.entities import Run
    from loopml.tuning import TrialResult, TuneResult

__all__ = ["app"]

app = typer.Typer(
    help="Inspect hyperparameter studies run by loopml.tune: trials, the best one, parameter "
    "importance, plots."
    "\n\n"
    "A study is a run (named after the study) whose child runs are its trials; `loopml runs` "
    "shows them too."
    "\n\n"
    "\b\n"
    "Examples:\n"
    "  loopml tune list\n"
    "  loopml tune show lr-search\n"
    "  loopml tune show lr-search --sort value --limit 10 --json\n"
    "  loopml tune plot lr-search --out lr-search.html",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        metavar="NAME",
        help="The project [default: LOOPML_PROJECT, else default].",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
_STATE_STYLES = {
    "complete": "green",
    "pruned": "yellow",
    "fail": "red",
    "interrupted": "red",
    "running": "cyan",
}


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.6g}"


def _state(state: str) -> str:
    style = _STATE_STYLES.get(state, "white")
    return f"[{style}]{state}[/{style}]"


def _study_row(run: Run) -> dict[str, Any]:
    tags = run.tags
    trials = tags.get("loopml.tune.trials")
    return {
        "study": tags.get("loopml.tune.study", run.name),
        "run_id": run.run_id,
        "status": run.status.value,
        "n_trials": int(trials) if trials and trials.isdigit() else None,
        "direction": tags.get("loopml.tune.direction"),
        "metric": tags.get("loopml.tune.metric"),
        "best_value": run.metrics.get("best_value"),
        "best_trial": tags.get("loopml.tune.best_trial"),
        "sampler": tags.get("loopml.tune.sampler"),
        "started": output.iso(run.start_time),
        "duration_ms": run.duration_ms,
    }


@app.command("list")
def list_(ctx: typer.Context, project: ProjectOption = None, json: JsonOption = False) -> None:
    """The studies of a project, newest first: status, trials, best value.

    \b
    Examples:
      loopml tune list
      loopml tune list -p churn --json
    """
    from loopml.errors import ProjectNotFound
    from loopml.tuning import list_studies

    with open_client(ctx) as client:
        try:
            studies = list_studies(project=project, client=client)
        except ProjectNotFound:
            if project is not None:
                raise
            studies = []  # the default project exists once something is logged to it
    rows = [_study_row(r) for r in studies]
    if json:
        output.print_json(rows)
        return
    if not rows:
        output.console().print(
            "no studies; loopml.tune(objective, n_trials=50, study_name='NAME') runs one"
        )
        return
    table = output.table(
        "study", "status", "trials", "direction", "metric", "best value", "started", "duration"
    )
    for row, run in zip(rows, studies, strict=True):
        table.add_row(
            output.escape(row["study"]),
            output.status_markup(row["status"]),
            "-" if row["n_trials"] is None else str(row["n_trials"]),
            row["direction"] or "-",
            output.escape(row["metric"] or "-"),
            _num(row["best_value"]),
            (row["started"] or "")[:16].replace("T", " "),
            output.format_duration(run.duration_ms),
        )
    output.console().print(table)


def _trial_dict(t: TrialResult) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state,
        "value": t.value,
        "params": dict(t.params),
        "run_id": t.run_id,
        "duration_ms": t.duration_ms,
        "intermediate_values": len(t.intermediate_values),
    }


def _importance(result: TuneResult) -> tuple[dict[str, float] | None, str | None]:
    from loopml.errors import InvalidArgument

    try:
        return result.importance(), None
    except InvalidArgument as exc:
        return None, exc.message


def _sorted(result: TuneResult, sort: str) -> list[TrialResult]:
    trials = result.trials
    if sort == "number":
        return trials
    sign = -1.0 if result.direction == "maximize" else 1.0
    return sorted(
        trials,
        key=lambda t: (
            t.value is None or math.isnan(t.value),
            sign * (t.value or 0.0),
            t.number,
        ),
    )


@app.command()
def show(
    ctx: typer.Context,
    study: Annotated[str, typer.Argument(help="The study's name.")],
    sort: Annotated[
        str, typer.Option("--sort", "-s", help="Order trials by 'value' (best first) or 'number'.")
    ] = "value",
    limit: Annotated[int, typer.Option("--limit", "-n", help="Trials to show (0: all).")] = 20,
    importance: Annotated[
        bool,
        typer.Option(
            "--importance/--no-importance", help="Compute parameter importance (fANOVA)."
        ),
    ] = True,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """A study: its settings, the best trial, its trials and the importance of each param.

    \b
    Examples:
      loopml tune show lr-search
      loopml tune show lr-search --sort number --limit 0
      loopml tune show lr-search --json --no-importance
    """
    from loopml.errors import NotFound
    from loopml.tuning import load_study

    if sort not in ("value", "number"):
        raise output.fail(f"--sort must be 'value' or 'number', not {sort!r}")
    if limit < 0:
        raise output.fail(f"--limit must be 0 (all) or more, not {limit}")
    with open_client(ctx) as client:
        result = load_study(study, project=project, client=client)
        study_run = client.get_run(result.run_id)
    try:
        best: TrialResult | None = result.best_trial
    except NotFound:
        best = None
    imp, why = _importance(result) if importance else (None, "not computed (--no-importance)")
    trials = _sorted(result, sort)
    shown = trials if limit == 0 else trials[:limit]
    if json:
        output.print_json(
            {
                **_study_row(study_run),
                "project": result.project,
                "counts": {s: result.count(s) for s in ("complete", "pruned", "fail")},
                "best": None if best is None else _trial_dict(best),
                "importance": imp,
                "trials": [_trial_dict(t) for t in shown],
            }
        )
        return
    con = output.console()
    tags = study_run.tags
    counts = ", ".join(
        f"{n} {s}"
        for s in ("complete", "pruned", "fail", "interrupted", "running")
        if (n := result.count(s))
    )
    output.print_section(
        con,
        f"study {output.escape(study)}",
        [
            ("project", output.escape(result.project)),
            ("run", study_run.run_id),
            ("status", output.status_markup(study_run.status.value)),
            ("objective", f"{result.direction} {output.escape(result.metric)}"),
            ("sampler", output.escape(tags.get("loopml.tune.sampler", "-"))),
            ("pruner", output.escape(tags.get("loopml.tune.pruner", "-"))),
            ("trials", f"{len(result)} ({counts or 'none'})"),
            ("duration", output.format_duration(study_run.duration_ms)),
        ],
    )
    if best is not None:
        rows = [
            ("trial", str(best.number)),
            ("value", _num(best.value)),
            ("run", best.run_id or "-"),
        ]
        rows += [
            (f"params.{k}", output.escape(output.format_value(v))) for k, v in best.params.items()
        ]
        output.print_section(con, "best trial", rows)
    else:
        con.print("no trial completed yet\n")
    if imp is not None:
        t = output.table("param", "importance", "")
        for name, share in imp.items():
            t.add_row(output.escape(name), f"{share:.3f}", "█" * max(1, round(share * 30)))
        con.print("[bold]parameter importance[/bold] (fANOVA)")
        con.print(t)
        con.print()
    elif why:
        con.print(f"parameter importance: {output.escape(why)}\n")
    _print_trials(result, shown, len(trials))


def _print_trials(result: TuneResult, shown: list[TrialResult], total: int) -> None:
    names: list[str] = []
    for t in shown:
        names += [k for k in t.params if k not in names]
    table = output.table(
        "#", "state", output.escape(result.metric), *(output.escape(n) for n in names),
        "duration", "run",
        no_wrap=["#", "run"],
    )  # fmt: skip
    for t in shown:
        table.add_row(
            str(t.number),
            _state(t.state),
            _num(t.value),
            *(output.escape(output.format_value(t.params.get(n))) for n in names),
            output.format_duration(t.duration_ms),
            (t.run_id or "-")[:8],
        )
    con = output.console()
    con.print(f"[bold]trials[/bold] ({len(shown)} of {total})")
    con.print(table)


@app.command()
def plot(
    ctx: typer.Context,
    study: Annotated[str, typer.Argument(help="The study's name.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The HTML file to write [default: STUDY.html]."),
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            "-k",
            help="Comma-separated plots: history, importance, parallel, intermediate.",
        ),
    ] = "history,importance,parallel",
    cdn: Annotated[
        bool,
        typer.Option("--cdn", help="Load plotly.js from its CDN (a small file, needs a network)."),
    ] = False,
    project: ProjectOption = None,
) -> None:
    """Write a study's plots to one HTML page (plotly; needs the plots extra).

    \b
    Examples:
      loopml tune plot lr-search
      loopml tune plot lr-search --out report.html --kind history,parallel
    """
    from loopml.errors import InvalidArgument
    from loopml.tuning import load_study
    from loopml.tuning.plots import KINDS, html_page

    kinds = [k.strip() for k in kind.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise output.fail(
            f"--kind: unknown plot {', '.join(unknown) or kind!r}; use {', '.join(KINDS)}"
        )
    with open_client(ctx) as client:
        result = load_study(study, project=project, client=client)
    figures = []
    for k in kinds:
        try:
            figures.append(result.plot(k))
        except InvalidArgument as exc:
            if len(kinds) == 1:
                raise
            output.console().print(f"skipped {k}: {output.escape(exc.message)}")
    target = out or Path(f"{study.replace('/', '_')}.html")
    page = html_page(figures, f"study {study}", inline_js=not cdn)
    target.write_text(page, encoding="utf-8")
    output.console().print(
        f"wrote {target} ({len(figures)} plot(s), {output.format_size(len(page.encode()))})"
    )
