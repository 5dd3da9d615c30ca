"""``loopml pipelines``: run a pipeline, list pipeline runs, show a run's steps, resume one."""

from __future__ import annotations

import json as jsonlib
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import Run
    from loopml.pipelines import PipelineResult

__all__ = ["app"]

app = typer.Typer(
    help="Run pipelines, list their runs and steps, resume a failed run."
    "\n\n"
    "A pipeline is a Python function decorated with @loopml.pipeline that calls @loopml.step "
    "functions; name it as module:attribute or path/to/file.py:attribute. Steps whose code, "
    "inputs and parameters did not change reuse their earlier outputs."
    "\n\n"
    "\b\n"
    "Examples:\n"
    "  loopml pipelines run training.py:training --param C=0.5\n"
    "  loopml pipelines run flows:nightly --executor processes\n"
    "  loopml pipelines run flows:nightly --executor ray --address auto\n"
    "  loopml pipelines list\n"
    "  loopml pipelines show RUN_ID\n"
    "  loopml pipelines resume RUN_ID",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ProjectOption = Annotated[
    str | None, typer.Option("--project", "-p", metavar="NAME", help="The project.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ExecutorOption = Annotated[
    str,
    typer.Option(
        "--executor", "-e", help="local (in this process), processes (in parallel) or ray."
    ),
]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="The Ray cluster's address (with --executor ray).")
]
WorkersOption = Annotated[
    int | None, typer.Option("--max-workers", min=1, help="Steps running at once.")
]


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise output.fail(f"--param takes KEY=VALUE, got {item!r}")
        try:
            params[key] = jsonlib.loads(text)  # numbers, booleans, lists; else the text
        except ValueError:
            params[key] = text
    return params


def _result_dict(result: PipelineResult) -> dict[str, Any]:
    return {
        "pipeline": result.name,
        "run_id": result.run_id,
        "status": result.status,
        "seconds": round(result.seconds, 3),
        "steps": [
            {
                "step": s.node,
                "status": s.status,
                "run_id": s.run_id,
                "cached_from": s.cached_from,
                "reason": s.reason,
                "seconds": round(s.seconds, 3),
                "attempts": s.attempts,
                "error": s.error or None,
                "outputs": [r.to_dict() for r in s.outputs],
            }
            for s in result.steps.values()
        ],
    }


def _print_result(result: PipelineResult) -> None:
    t = output.table("step", "status", "time", "run", "why", no_wrap=("run",))
    for s in result.steps.values():
        t.add_row(
            output.escape(s.node),
            output.status_markup(s.status),
            f"{s.seconds:.2f} s" if s.status == "finished" else "",
            s.run_id or "",
            output.escape(s.error or s.reason),
        )
    con = output.console()
    con.print(t)
    con.print(
        f"pipeline {output.escape(result.name)} {output.status_markup(result.status)} in "
        f"{result.seconds:.2f} s (run {result.run_id})",
        highlight=False,
    )


def _run(
    client: Client,
    ref: str,
    params: dict[str, Any],
    *,
    executor: str,
    address: str | None,
    max_workers: int | None,
    no_cache: bool,
    resume: str | None,
    project: str | None,
    json: bool,
) -> None:
    from loopml.pipelines import load_pipeline

    pipe = load_pipeline(ref)
    result = pipe.run(
        client=client,
        executor=executor,
        address=address,
        max_workers=max_workers,
        cache=not no_cache,
        resume=resume,
        project=project,
        quiet=json,
        raise_on_failure=False,
        **params,
    )
    if json:
        output.print_json(_result_dict(result))
    else:
        _print_result(result)
    if not result.ok:
        failed = result.failed_steps[0]
        if failed.traceback and not json:
            output.console().print(output.escape(failed.traceback.rstrip()), highlight=False)
        raise output.fail(
            f"pipeline {result.name!r} failed at step {failed.node!r}; fix it and run "
            f"`loopml pipelines resume {result.run_id}`"
        )


@app.command()
def run(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="PIPELINE", help="module:attr or file.py:attr.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-P", metavar="KEY=VALUE", help="A pipeline parameter (JSON)."),
    ] = None,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    max_workers: WorkersOption = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, reusing nothing.")
    ] = False,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Run a pipeline and show each step's fate."""
    _run(
        open_client(ctx, create=True),
        ref,
        _parse_params(param),
        executor=executor,
        address=address,
        max_workers=max_workers,
        no_cache=no_cache,
        resume=None,
        project=project,
        json=json,
    )


@app.command()
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The pipeline run to resume.")],
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    max_workers: WorkersOption = None,
    json: JsonOption = False,
) -> None:
    """Run a pipeline run again with its parameters, reusing its finished steps."""
    from loopml.pipelines.runner import TAG
    from loopml.pipelines.schedule import recorded_ref

    client = open_client(ctx)
    parent = client.get_run(run_id)
    ref = parent.tags.get(TAG.REF)
    if parent.tags.get(TAG.KIND) != "pipeline" or not ref:
        raise output.fail(f"run {run_id!r} is not a pipeline run; `loopml pipelines list`")
    recorded = jsonlib.loads(client.read_text(run_id, "pipeline.json"))
    project = client.store.get_project(parent.project_id).name
    _run(
        client,
        recorded_ref(recorded),
        dict(recorded.get("params", {})),
        executor=executor,
        address=address,
        max_workers=max_workers,
        no_cache=False,
        resume=run_id,
        project=project,
        json=json,
    )


def _pipeline_runs(client: Client, project: str | None, name: str | None, limit: int) -> list[Run]:
    from loopml.pipelines.runner import TAG

    query = f"tags.`{TAG.KIND}` = 'pipeline'"
    if name:
        query += f" and tags.`{TAG.PIPELINE}` = '{name}'"
    return list(
        client.search_runs(project, query, order_by="start_time desc", max_results=limit).items
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="Only this pipeline's runs.")] = None,
    limit: Annotated[int, typer.Option("--max-results", "-n", min=1)] = 20,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Pipeline runs, newest first."""
    from loopml.pipelines.runner import TAG

    client = open_client(ctx)
    runs = _pipeline_runs(client, project, name, limit)
    if json:
        output.print_json([output.run_to_dict(r) for r in runs])
        return
    t = output.table("run", "pipeline", "status", "started", "duration", "executor")
    for r in runs:
        t.add_row(
            r.run_id,
            output.escape(r.tags.get(TAG.PIPELINE, r.name)),
            output.status_markup(r.status.value),
            output.iso(r.start_time) or "",
            output.format_duration(r.duration_ms),
            output.escape(r.tags.get(TAG.EXECUTOR, "")),
        )
    output.console().print(t)


@app.command()
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A pipeline run.")],
    json: JsonOption = False,
) -> None:
    """A pipeline run's steps: status, cache, time, errors."""
    from loopml.pipelines.runner import TAG

    client = open_client(ctx)
    parent = client.get_run(run_id)
    if parent.tags.get(TAG.KIND) != "pipeline":
        raise output.fail(f"run {run_id!r} is not a pipeline run; `loopml pipelines list`")
    graph = jsonlib.loads(client.read_text(run_id, "pipeline.json"))
    steps = {
        r.tags.get(TAG.STEP): r for r in client.iter_runs(None, f"parent_run_id = '{run_id}'")
    }
    rows = []
    for node in graph["nodes"]:
        r = steps.get(node["id"])
        rows.append(
            {
                "step": node["id"],
                "status": "skipped"
                if r is None
                else ("cached" if r.tags.get(TAG.CACHED_FROM) else r.status.value),
                "run_id": None if r is None else r.run_id,
                "cached_from": None if r is None else r.tags.get(TAG.CACHED_FROM),
                "duration_ms": None if r is None else r.duration_ms,
                "upstream": node["upstream"],
                "error": None if r is None else r.tags.get(TAG.ERROR),
                "called_at": node["called_at"],
            }
        )
    if json:
        output.print_json(
            {"run": output.run_to_dict(parent), "params": graph.get("params"), "steps": rows}
        )
        return
    con = output.console()
    con.print(
        f"pipeline {output.escape(graph['pipeline'])} {output.status_markup(parent.status.value)} "
        f"(run {run_id}, {graph.get('ref', '')})",
        highlight=False,
    )
    t = output.table("step", "status", "duration", "after", "run", "note")
    for row in rows:
        t.add_row(
            output.escape(row["step"]),
            output.status_markup(row["status"]),
            output.format_duration(row["duration_ms"]),
            output.escape(", ".join(row["upstream"])),
            row["run_id"] or "",
            output.escape(
                row["error"] or (f"outputs of {row['cached_from']}" if row["cached_from"] else "")
            ),
        )
    con.print(t)
