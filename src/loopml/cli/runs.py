"""``loopml runs``: search, inspect, compare and delete runs, and summarise a metric.

Every command that takes a run id also takes a unique prefix of it (six characters or more).
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli import output
from loopml.cli.state import open_client, resolve_run

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import Page, Run

__all__ = ["app"]

app = typer.Typer(
    help="Search, inspect, compare and delete runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_MAX_RESULTS = 50_000
_DEFAULT_COLUMNS = 5  # metrics and params each shown by default in `runs list`
_SECTIONS = {  # --columns prefixes, singular or plural
    **{p: "params" for p in ("params", "param")},
    **{p: "metrics" for p in ("metrics", "metric")},
    **{p: "tags" for p in ("tags", "tag")},
}


def _stdin_is_interactive() -> bool:
    return sys.stdin.isatty()


def _parse_columns(text: str) -> list[tuple[str, str]]:
    """``"params.lr,metrics.auc"`` as ``[("params", "lr"), ("metrics", "auc")]``."""
    from loopml.errors import InvalidArgument

    out = []
    for item in (c.strip() for c in text.split(",")):
        if not item:
            continue
        section, _, key = item.partition(".")
        if section not in _SECTIONS or not key:
            raise InvalidArgument(
                f"--columns: {item!r} is not params.KEY, metrics.KEY or tags.KEY "
                "(example: --columns params.lr,metrics.auc)"
            )
        out.append((_SECTIONS[section], key))
    return out


def _default_columns(runs: tuple[Run, ...]) -> list[tuple[str, str]]:
    """The metrics and params most often present in the page, up to five of each."""
    metrics = Counter(k for r in runs for k in r.metrics)
    params = Counter(k for r in runs for k in r.params)
    pick = [sorted(k for k, _ in c.most_common(_DEFAULT_COLUMNS)) for c in (metrics, params)]
    return [("metrics", k) for k in pick[0]] + [("params", k) for k in pick[1]]


def _search(
    client: Client,
    project: str | None,
    all_projects: bool,
    filter_: str | None,
    order_by: list[str] | None,
    max_results: int,
    page_token: str | None,
) -> tuple[Page, str | None]:
    """One page of runs, and the project searched (None for all)."""
    from loopml.entities import Page
    from loopml.errors import ProjectNotFound

    name = None if all_projects else (project or client.settings.project)
    try:
        return client.search_runs(name, filter_, order_by, max_results, page_token), name
    except ProjectNotFound:
        if project is not None or all_projects:
            raise
    # The default project is made by the first run logged to it: before that, it has no runs.
    # Still report a malformed filter, as a search would.
    from loopml.store.search import parse_filter, parse_order_by

    parse_filter(filter_)
    parse_order_by(order_by)
    return Page(()), name


@app.command("list")
def list_runs(
    ctx: typer.Context,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            metavar="NAME",
            help="Project to search [default: LOOPML_PROJECT, else default].",
        ),
    ] = None,
    all_projects: Annotated[
        bool, typer.Option("--all-projects", "-A", help="Search every project.")
    ] = False,
    filter_: Annotated[
        str | None,
        typer.Option(
            "--filter",
            "-f",
            metavar="EXPR",
            help="Search filter, e.g. \"metrics.auc > 0.9 and params.model = 'rf'\".",
        ),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option(
            "--order-by",
            "-o",
            metavar="CLAUSE",
            help="Sort, e.g. 'metrics.auc desc' (repeat for ties) [default: newest first].",
        ),
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", metavar="N", help="Runs per page (1 to 50000).")
    ] = 50,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            "-c",
            metavar="LIST",
            help="Comma-separated params.KEY, metrics.KEY or tags.KEY columns "
            "[default: up to 5 metrics and 5 params found in the page].",
        ),
    ] = None,
    page_token: Annotated[
        str | None,
        typer.Option("--page-token", metavar="TOKEN", help="Token of the next page."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first.

    The table shows id, name, status, start, duration and chosen params and metrics.

    Runs whose process stopped sending heartbeats are marked failed first.

    \b
    Examples:
      loopml runs list
      loopml runs list -p churn --filter "metrics.auc > 0.8" --order-by "metrics.auc desc"
      loopml runs list --columns params.lr,metrics.auc --max-results 10
      loopml runs list --all-projects --json
    """
    from loopml.errors import InvalidArgument

    if project is not None and all_projects:
        raise typer.BadParameter("use either --project or --all-projects", param_hint="--project")
    if not 1 <= max_results <= _MAX_RESULTS:
        raise InvalidArgument(
            f"--max-results must be between 1 and {_MAX_RESULTS}, got {max_results}"
        )
    chosen = _parse_columns(columns) if columns is not None else None
    with open_client(ctx) as client:
        client.mark_stale_runs()
        page, searched = _search(
            client, project, all_projects, filter_, order_by, max_results, page_token
        )
        names = {p.project_id: p.name for p in client.list_projects()} if page.items else {}
    if as_json:
        rows = [{**output.run_to_dict(r), "project": names.get(r.project_id)} for r in page]
        output.print_json({"runs": rows, "next_page_token": page.next_page_token})
        return
    where = "any project" if searched is None else f"project {searched!r}"
    if not page.items:
        typer.echo(f"No runs in {where}" + (" match the filter." if filter_ else "."))
        return
    project_names = names if all_projects else None
    output.print_runs(page.items, chosen or _default_columns(page.items), project_names)
    if page.next_page_token:
        typer.echo(f"More runs: add --page-token {page.next_page_token}")


@app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix (6+ characters).")],
    as_json: JsonOption = False,
) -> None:
    """Show one run in detail.

    Attributes, params, latest metrics, tags, environment (Python, platform, git commit, number
    of packages, seed) and artifacts (path, size, sha256 prefix).

    \b
    Examples:
      loopml runs show 3f2a9c41
      loopml runs show 3f2a9c41 --json
    """
    with open_client(ctx) as client:
        run = resolve_run(client, run_id)
        project = client.get_project(run.project_id)
        env = output.environment_summary(client.get_environment(run.run_id))
        artifacts = client.list_artifacts(run.run_id)
    if as_json:
        data = {**output.run_to_dict(run), "project": project.name, "environment": env}
        data["artifacts"] = [
            {"path": a.path, "size": a.size, "sha256": a.sha256} for a in artifacts
        ]
        output.print_json(data)
        return
    output.print_run(run, project.name, env, artifacts)


@app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[
        list[str], typer.Argument(help="Two or more run ids (or unique prefixes).")
    ],
    only_diff: Annotated[
        bool, typer.Option("--only-diff", help="Show only params and metrics that differ.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side.

    One column per run: params (those that differ are marked) and latest metrics.

    \b
    Examples:
      loopml runs compare 3f2a9c41 8be01d77
      loopml runs compare 3f2a9c41 8be01d77 c0ffee12 --only-diff --json
    """
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two runs to compare", param_hint="RUN_IDS...")
    with open_client(ctx) as client:
        ids = [resolve_run(client, r).run_id for r in run_ids]
        cmp = client.compare_runs(ids)
    differing = set(cmp.differing_params)
    params = {k: v for k, v in cmp.params.items() if not only_diff or k in differing}
    metrics = {k: v for k, v in cmp.metrics.items() if not only_diff or _differ(v)}
    if as_json:
        output.print_json(
            {
                "runs": [{"run_id": r.run_id, "name": r.name} for r in cmp.runs],
                "params": {k: list(v) for k, v in params.items()},
                "metrics": {k: list(v) for k, v in metrics.items()},
                "differing_params": sorted(differing),
            }
        )
        return
    if not params and not metrics:
        typer.echo(
            "The runs have the same params and metrics."
            if only_diff
            else "Nothing to compare: the runs have no params or metrics."
        )
        return
    output.print_comparison(cmp.runs, params, metrics, differing)


def _differ(values: tuple[float | None, ...]) -> bool:
    return len({repr(v) for v in values}) > 1  # repr: NaN equals NaN here


@app.command("delete")
def delete_runs(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Run ids (or unique prefixes) to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete runs (asks for confirmation).

    Deletes each run with its params, metrics, tags and artifact records; it cannot be undone.
    Artifact files shared with other runs stay.

    Asks for confirmation unless --yes is given; without a terminal, --yes is required.

    \b
    Examples:
      loopml runs delete 3f2a9c41
      loopml runs delete 3f2a9c41 8be01d77 --yes
    """
    with open_client(ctx) as client:
        targets = list({r.run_id: r for r in (resolve_run(client, i) for i in run_ids)}.values())
        count = f"{len(targets)} run" + ("s" if len(targets) > 1 else "")
        if not yes:
            if not _stdin_is_interactive():
                raise output.fail(
                    f"refusing to delete {count} without confirmation: stdin is not a terminal; "
                    "pass --yes to delete"
                )
            for r in targets:
                typer.echo(f"  {r.run_id}  {r.name}  ({r.status.value})")
            try:
                confirmed = typer.confirm(f"Delete {count}? This cannot be undone", default=False)
            except typer.Abort:
                raise typer.Exit(130) from None
            if not confirmed:
                typer.echo("Nothing deleted.", err=True)
                raise typer.Exit(1)
        for r in targets:
            client.delete_run(r.run_id)
            typer.echo(f"Deleted run {r.run_id} ({r.name})")


@app.command("metric")
def metric_history(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix (6+ characters).")],
    key: Annotated[str, typer.Argument(help="Metric key, e.g. loss.")],
    as_json: JsonOption = False,
) -> None:
    """Summarise one metric's history.

    Points, first and last step, min, max and last value, and a sparkline of the values.

    --json prints every point (step, timestamp, value).

    \b
    Examples:
      loopml runs metric 3f2a9c41 loss
      loopml runs metric 3f2a9c41 loss --json
    """
    import math

    from loopml.errors import NotFound

    with open_client(ctx) as client:
        run = resolve_run(client, run_id)
        history = client.get_metric_history(run.run_id, key)
    if len(history) == 0:
        known = ", ".join(sorted(run.metrics)) or "none"
        raise NotFound(f"run {run.run_id} has no metric {key!r}; its metrics are: {known}")
    steps, values = history.steps.tolist(), history.values.tolist()
    finite = [v for v in values if not math.isnan(v)]
    summary = {
        "points": len(values),
        "first_step": steps[0],
        "last_step": steps[-1],
        "min": min(finite) if finite else None,
        "max": max(finite) if finite else None,
        "last": values[-1],
    }
    if as_json:
        points = [{"step": m.step, "timestamp": m.timestamp, "value": m.value} for m in history]
        output.print_json({"run_id": run.run_id, "key": key, "summary": summary, "points": points})
        return
    rows = [(k.replace("_", " "), output.format_value(v)) for k, v in summary.items()]
    line = output.sparkline(values)
    if line:
        rows.append(("trend", line))
    title = f"{output.escape(key)} in run {output.escape(run.name)} ({run.run_id[:8]})"
    output.print_section(output.console(), title, rows)
