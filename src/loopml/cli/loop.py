"""``loopml loop``: run continuous-training policies, show their state and decisions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.loop.runner import PolicyStatus
    from loopml.loop.state import LoopState

__all__ = ["app"]

app = typer.Typer(
    help="The continuous-training loop: from a trigger (an alert, a schedule, a new dataset "
    "version) to a retrained model, gated against the champion, rolled out as a canary or a "
    "shadow, then promoted or rolled back."
    "\n\n"
    "A policy (YAML) per model says what triggers a cycle, the training entry, the release "
    "gate, the rollout and its success criteria. Every decision is recorded with its reason in "
    "the audit trail; a restarted `run` continues where the policy was."
    "\n\n"
    "\b\n"
    "Examples:\n"
    "  loopml loop validate policy.yaml\n"
    "  loopml loop run policy.yaml --once\n"
    "  loopml loop run policy.yaml other.yaml --interval 30s\n"
    "  loopml loop status\n"
    "  loopml loop status --policy churn --json",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ProjectOption = Annotated[
    str | None, typer.Option("--project", "-p", metavar="NAME", help="The project.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PolicyFiles = Annotated[
    list[Path], typer.Argument(metavar="POLICY.yaml...", help="Policy files (YAML).")
]


def _load(files: list[Path]) -> list[Any]:
    from loopml.loop.policy import Policy

    return [Policy.parse(Path(f)) for f in files]


@app.command()
def validate(files: PolicyFiles, json: JsonOption = False) -> None:
    """Check policy files (and that their training entries import) without running them."""
    from loopml.loop.policy import resolve_entry

    _importable_here()
    policies = _load(files)
    for policy in policies:
        resolve_entry(policy.train.entry)
    if json:
        output.print_json([p.describe() for p in policies])
        return
    for f, p in zip(files, policies, strict=True):
        d = p.describe()
        output.console().print(
            f"{output.escape(str(f))}: policy {output.escape(p.name)} is valid: model "
            f"{output.escape(p.model)} on deployment {output.escape(p.deployment)}, triggers "
            f"{output.escape(', '.join(d['triggers']))}, {p.rollout.strategy} at weight "
            f"{p.rollout.share:g}",
            highlight=False,
        )


@app.command()
def run(
    ctx: typer.Context,
    files: PolicyFiles,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        str, typer.Option("--interval", metavar="DURATION", help="Time between passes.")
    ] = "30s",
    lease: Annotated[
        str,
        typer.Option(
            "--lease",
            metavar="DURATION",
            help="How long an active cycle stays this process's after its last step "
            "(longer than the longest training).",
        ),
    ] = "1h",
    json: JsonOption = False,
) -> None:
    """Run the policies: check their triggers, train, gate, roll out, promote or roll back.
    Training entries ('module:function') are imported from the current folder or PYTHONPATH."""
    import threading

    from loopml.loop.runner import LoopRunner
    from loopml.monitoring.spec import parse_duration

    _importable_here()
    every = parse_duration(interval)
    runner = LoopRunner(_load(files), client=open_client(ctx), lease_seconds=parse_duration(lease))
    if once:
        _report(runner.run_once(), json)
        return
    names = ", ".join(p.name for p in runner.policies)
    output.console().print(f"running {names} every {interval}; Ctrl+C stops", highlight=False)
    last: dict[str, tuple[int, str]] = {}

    def changed(states: dict[str, LoopState]) -> None:
        fresh = {k: s for k, s in states.items() if last.get(k) != (s.seq, s.phase)}
        last.update({k: (s.seq, s.phase) for k, s in states.items()})
        if fresh:
            _report(fresh, json)

    stop = threading.Event()
    try:
        runner.run(interval=every, stop=stop, on_pass=changed)
    except KeyboardInterrupt:
        stop.set()


def _importable_here() -> None:
    import sys

    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))


def _report(states: dict[str, LoopState], json: bool) -> None:
    if json:
        output.print_json({k: s.to_dict() for k, s in states.items()})
        return
    for name, s in states.items():
        version = f" version {s.version}" if s.version is not None else ""
        output.console().print(
            f"{output.escape(name)}: {s.phase}{version}"
            + (f": {output.escape(s.reason)}" if s.reason else ""),
            highlight=False,
        )


@app.command()
def status(
    ctx: typer.Context,
    policy: Annotated[
        str | None, typer.Option("--policy", metavar="NAME", help="Only this policy.")
    ] = None,
    last: Annotated[int, typer.Option("--last", "-n", help="Decisions to show.")] = 10,
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """Each policy's state, its model's champion and challenger, and its latest decisions with
    their reasons."""
    from loopml.loop.runner import loop_status

    found = loop_status(policy, client=open_client(ctx), project=project, limit=last)
    if json:
        output.print_json([_status_dict(s) for s in found])
        return
    if not found:
        output.console().print("no policy has run yet; `loopml loop run POLICY.yaml` starts one")
        return
    for s in found:
        _print_status(s)


def _status_dict(s: PolicyStatus) -> dict[str, Any]:
    data = s.to_dict()
    data["updated_at"] = output.iso(data["updated_at"])
    data["started_at"] = output.iso(data["started_at"])
    for d in data["decisions"]:
        d["time"] = output.iso(d["time"])
    return data


def _print_status(s: PolicyStatus) -> None:
    st = s.state
    con = output.console()
    rows = [
        ("model", output.escape(f"{st.model} on deployment {st.deployment}")),
        ("phase", st.phase + (f" (cycle {st.cycle})" if st.cycle else "")),
        ("why", output.escape(st.reason) or "-"),
        ("champion", str(s.champion) if s.champion is not None else "-"),
        ("challenger", str(s.challenger) if s.challenger is not None else "-"),
    ]
    if st.active and st.started_at:
        age = (time.time() * 1000 - st.started_at) / 1000
        rows.append(
            ("rollout", f"version {st.version} since {output.iso(st.started_at)} ({age:.0f} s)")
        )
    if st.holder:
        rows.append(("holder", output.escape(st.holder)))
    output.print_section(con, f"policy {output.escape(st.policy)}", rows)
    table = output.table("time", "decision", "reason")
    for d in s.decisions:
        table.add_row(output.iso(d["time"]) or "-", d["action"], output.escape(d["reason"]))
    con.print(table)
