"""``loopml models promote|rollback``: move an alias to a version when its release gate passes
(or, forced, with a reason in the audit trail), and move it back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.models._common import (
    AliasOption,
    JsonOption,
    ProjectOption,
    ReasonOption,
    app,
    event_dict,
    gate_checks_dict,
    open_registry,
    print_gate_checks,
    usage_error,
)

__all__ = ["promote", "rollback"]


def _gate_json(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    data = result.to_dict()
    return {**data, "checks": gate_checks_dict(data)}


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model.")],
    version: Annotated[
        int, typer.Argument(metavar="VERSION", min=1, help="The version to promote.")
    ],
    alias: AliasOption = "champion",
    gate: Annotated[
        Path | None,
        typer.Option(
            "--gate",
            "-g",
            metavar="GATE.yaml",
            help="The release gate: evaluation data, target and checks. Without it the alias "
            "moves untested.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Move the alias even if the gate fails (needs --reason)."),
    ] = False,
    reason: ReasonOption = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version if its release gate passes.

    The alias is champion unless --alias says otherwise.
    The gate evaluates the version and the alias's current version on the same rows and runs
    every check (metric thresholds, no regression against the champion, slices, latency,
    size...); the result is stored on the version either way. When a required check fails the
    alias does not move and the exit status is 1. --force moves it anyway and needs --reason,
    which the audit trail records with the failed gate.

    A gate file:

    \b
      data: datasets:/churn-eval@latest
      target: churned
      checks:
        - metric: {name: f1, min: 0.8}
        - no_regression: {metric: f1, tolerance: 0.01}
        - latency: {p99_ms: 20}

    \b
    Examples:
      loopml models promote churn 4 --gate gate.yaml
      loopml models promote churn 4 --alias challenger
      loopml models promote churn 4 --gate gate.yaml --force --reason "hotfix for #123"
    """
    from loopml._progress import progress
    from loopml.errors import GateFailed
    from loopml.models.gate import Gate
    from loopml.models.promotion import promote as promote_version

    if force and not reason.strip():
        raise usage_error(
            "--force needs --reason: a forced promotion is recorded in the audit trail with why "
            f'(loopml models promote {name} {version} --force --reason "...")'
        )
    if gate is not None and not gate.is_file():
        raise usage_error(
            f"--gate {gate}: no such file; write a gate YAML with data, target and checks "
            "(see 'loopml models promote --help')"
        )
    checks = Gate.load(gate) if gate is not None else None
    target = f"models:/{name}/{version}"
    with open_registry(ctx, project) as client:
        client.get_model_version(name, version, project=project)  # fail before evaluating
        try:
            with progress(f"running the release gate on {target}"):
                done = promote_version(
                    name,
                    version,
                    alias,
                    gate=checks,
                    force=force,
                    reason=reason,
                    project=project,
                    client=client,
                )
        except GateFailed as exc:
            _refused(exc.result, name, version, alias, as_json)
            raise output.fail(
                f"the gate failed for {target}, so {name}@{alias} did not move; fix the model, "
                "or promote it with --force --reason TEXT"
            ) from None
    if as_json:
        output.print_json(
            {
                "promoted": True,
                "name": done.name,
                "version": done.version,
                "alias": done.alias,
                "previous": done.previous,
                "forced": done.forced,
                "gate": _gate_json(done.gate),
                "event": event_dict(done.event),
            }
        )
        return
    if done.gate is not None:
        print_gate_checks(done.gate.to_dict())
    before = f" (was version {done.previous})" if done.previous is not None else " (new alias)"
    if done.previous == done.version:
        before = " (it already pointed there)"
    typer.echo(f"Promoted: {done.name}@{done.alias} -> version {done.version}{before}")
    if done.forced:
        typer.secho(
            f"  FORCED past a failed gate; reason recorded: {reason}", fg="yellow", err=True
        )
    elif done.gate is None:
        typer.echo("  no gate was run (give --gate GATE.yaml to test the version first)")


def _refused(result: Any, name: str, version: int, alias: str, as_json: bool) -> None:
    """What a failed gate found: every check (stdout), before the one error line (stderr)."""
    if result is None:
        return
    if as_json:
        output.print_json(
            {
                "promoted": False,
                "name": name,
                "version": version,
                "alias": alias,
                "gate": _gate_json(result),
            }
        )
    else:
        print_gate_checks(result.to_dict())


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model.")],
    alias: AliasOption = "champion",
    to: Annotated[
        int | None,
        typer.Option(
            "--to",
            metavar="VERSION",
            min=1,
            help="Move the alias to this version [default: where it pointed before its last "
            "move].",
        ),
    ] = None,
    reason: ReasonOption = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an alias back to where it pointed before.

    The alias is champion unless --alias says otherwise.
    The previous version is read from the alias's audit trail (see 'loopml models alias NAME
    --history ALIAS'); --to picks the version instead. No gate runs: a rollback restores a
    version that was released before.

    \b
    Examples:
      loopml models rollback churn
      loopml models rollback churn --alias challenger --to 2 --reason "latency spike"
    """
    from loopml.models.promotion import rollback as rollback_alias

    with open_registry(ctx, project) as client:
        current = client.get_model_version_by_alias(name, alias, project=project).version
        event = rollback_alias(
            name, alias, to_version=to, reason=reason, project=project, client=client
        )
    if as_json:
        output.print_json({"name": name, "alias": alias, "event": event_dict(event)})
        return
    now = event.details.get("version")
    typer.echo(f"Rolled back: {name}@{alias} -> version {now} (was version {current})")
