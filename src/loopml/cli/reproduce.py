"""``loopml reproduce``: re-run a recorded pipeline run and check that it comes out the same."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.state import open_client

__all__ = ["app"]

app = typer.Typer(rich_markup_mode=None)


@app.command()
def reproduce(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A pipeline run (loopml pipelines list).")],
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="local, processes or ray.")
    ] = "local",
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="Relative and absolute metric tolerance.")
    ] = 1e-9,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-run a pipeline run from what it recorded (pipeline, parameters, seed) with the cache
    off, and compare each step's outputs, a model's predictions and the metrics; when something
    differs, list the recorded inputs that differ now (step code, data versions, packages, git
    commit, Python). Exits 1 when the run does not reproduce.

    \b
    Examples:
      loopml reproduce 3f2a9c...
      loopml reproduce 3f2a9c... --json
    """
    from loopml.pipelines.reproduce import reproduce as run_reproduction

    client = open_client(ctx)
    rep = run_reproduction(run_id, client=client, executor=executor, tolerance=tolerance)
    if json:
        output.print_json(rep.to_dict())
    else:
        con = output.console()
        t = output.table("step", "same", "what was compared", "metrics that differ")
        for s in rep.steps:
            t.add_row(
                output.escape(s.node),
                "yes" if s.ok else ("-" if s.outputs_match is None else "NO"),
                output.escape("; ".join(s.notes)),
                output.escape(
                    ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in s.metric_differences.items())
                ),
            )
        con.print(t)
        verdict = "reproduced" if rep.reproduced else "did NOT reproduce"
        con.print(f"run {rep.original} {verdict} (re-run {rep.rerun})", highlight=False)
        if rep.differences:
            con.print("recorded inputs that differ now:", highlight=False)
            for d in rep.differences:
                con.print(f"  - {output.escape(d)}", highlight=False)
    if not rep.reproduced:
        raise typer.Exit(1)
