"""``loopml scheduler``: run pipelines on their cron schedules."""

from __future__ import annotations

from typing import Annotated

import typer

from loopml.cli import output
from loopml.cli.state import open_client

__all__ = ["app"]

app = typer.Typer(rich_markup_mode=None)


@app.command()
def scheduler(
    ctx: typer.Context,
    refs: Annotated[
        list[str],
        typer.Argument(
            metavar="PIPELINE...",
            help="Pipelines (module:attr or file.py:attr) with a schedule, or given one with "
            "--cron.",
        ),
    ],
    cron: Annotated[
        str | None,
        typer.Option(
            "--cron", metavar="EXPR", help="The schedule (instead of the pipelines' own)."
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", "-e", help="local, processes or ray.")
    ] = "local",
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between schedule checks.")
    ] = 10.0,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Run what is due now (and what never ran on its schedule), then exit.",
        ),
    ] = False,
    now: Annotated[
        bool, typer.Option("--now", help="Also run each pipeline once at start.")
    ] = False,
) -> None:
    """Run pipelines on their cron schedules (``@loopml.pipeline(schedule="0 3 * * *")`` or
    --cron), until Ctrl+C.

    The last scheduled run of each pipeline is read from the store, so a restarted scheduler
    neither repeats nor skips a run; ticks missed while it was down are caught up once.

    \b
    Examples:
      loopml scheduler flows.py:nightly
      loopml scheduler flows.py:training --cron "0 */6 * * *" --executor processes
      loopml scheduler flows.py:nightly --once
    """
    from loopml.pipelines import load_pipeline
    from loopml.pipelines.result import PipelineResult
    from loopml.pipelines.schedule import Scheduled, check_cron, run_due, scheduler_loop

    client = open_client(ctx, create=True)
    schedules = []
    for ref in refs:
        pipe = load_pipeline(ref)
        expression = cron or pipe.schedule
        if expression is None:
            raise output.fail(
                f"pipeline {ref!r} has no schedule: give it one with "
                "@loopml.pipeline(schedule='...') or pass --cron"
            )
        schedules.append(Scheduled(pipe, check_cron(expression), dict(pipe.params)))

    def report(result: PipelineResult) -> None:
        output.console().print(
            f"{output.escape(result.name)}: {output.status_markup(result.status)} in "
            f"{result.seconds:.2f} s (run {result.run_id})",
            highlight=False,
        )

    if once:
        for result in run_due(client, schedules, executor=executor, first_run=True):
            report(result)
        return
    names = ", ".join(f"{s.pipeline.name} ({s.cron})" for s in schedules)
    output.console().print(f"scheduling {names}; Ctrl+C stops", highlight=False)
    try:
        scheduler_loop(
            client,
            schedules,
            interval=interval,
            executor=executor,
            first_run=now,
            on_result=report,
        )
    except KeyboardInterrupt:
        return
