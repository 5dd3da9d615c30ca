"""``loopml models alias``: point an alias at a version, remove it, or read its history (who
moved it, when, from which version to which, and why) from the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli import output
from loopml.cli.models._common import (
    JsonOption,
    ProjectOption,
    ReasonOption,
    app,
    event_dict,
    open_registry,
    usage_error,
)

if TYPE_CHECKING:
    from loopml.entities import AuditEvent

__all__ = ["alias"]


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model.")],
    alias_name: Annotated[
        str | None,
        typer.Argument(
            metavar="ALIAS", help="The alias (champion, challenger...).", show_default=False
        ),
    ] = None,
    version: Annotated[
        int | None,
        typer.Argument(
            metavar="VERSION", min=1, help="The version to point it at.", show_default=False
        ),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    history: Annotated[
        str | None,
        typer.Option(
            "--history", metavar="ALIAS", help="Show every move of this alias, newest first."
        ),
    ] = None,
    reason: ReasonOption = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point an alias at a version, remove it, or show its history.

    Setting an alias that exists moves it. Every set and delete is recorded in the audit trail
    with who did it and --reason; --history reads that trail back. To move an alias only when
    a release gate passes, use 'loopml models promote'.

    \b
    Examples:
      loopml models alias churn challenger 4 --reason "A/B test from Monday"
      loopml models alias churn challenger --delete
      loopml models alias churn --history champion
    """
    if history is not None:
        if alias_name is not None or version is not None or delete:
            raise usage_error(
                "--history ALIAS only reads the trail; drop ALIAS, VERSION and --delete "
                f"(loopml models alias {name} --history {history})"
            )
        _history(ctx, name, history, project, as_json)
        return
    if alias_name is None:
        raise usage_error(
            f"give an alias: 'loopml models alias {name} ALIAS VERSION' sets it, "
            f"'... {name} ALIAS --delete' removes it, '... {name} --history ALIAS' shows its moves"
        )
    if delete:
        if version is not None:
            raise usage_error(
                f"--delete takes no VERSION (loopml models alias {name} {alias_name} --delete)"
            )
        with open_registry(ctx, project) as client:
            event = client.delete_model_alias(name, alias_name, reason, project=project)
        if as_json:
            output.print_json(event_dict(event))
            return
        was = event.details.get("previous")
        typer.echo(f"Removed {name}@{alias_name}" + (f" (was version {was})" if was else ""))
        return
    if version is None:
        raise usage_error(
            f"give the VERSION to point {name}@{alias_name} at, or --delete to remove it "
            f"(see where it points with 'loopml models show models:/{name}@{alias_name}')"
        )
    with open_registry(ctx, project) as client:
        event = client.set_model_alias(name, alias_name, version, reason, project=project)
    if as_json:
        output.print_json(event_dict(event))
        return
    previous = event.details.get("previous")
    if previous == version:
        typer.echo(f"{name}@{alias_name} already points at version {version}")
    elif previous is None:
        typer.echo(f"{name}@{alias_name} -> version {version} (new alias)")
    else:
        typer.echo(f"{name}@{alias_name} -> version {version} (was version {previous})")


def _move(event: AuditEvent) -> str:
    before = event.details.get("previous")
    after = event.details.get("version") if event.action == "alias.set" else None
    return f"{before if before is not None else '-'} -> {after if after is not None else '-'}"


def _history(
    ctx: typer.Context, name: str, alias_name: str, project: str | None, as_json: bool
) -> None:
    with open_registry(ctx, project) as client:
        client.get_registered_model(name, project=project)  # an unknown model is an error
        events = client.alias_history(name, alias_name, project=project)
    if as_json:
        output.print_json(
            {"name": name, "alias": alias_name, "events": [event_dict(e) for e in events]}
        )
        return
    if not events:
        typer.echo(
            f"{name}@{alias_name} has never been set; set it with "
            f"'loopml models alias {name} {alias_name} VERSION'"
        )
        return
    t = output.table(
        "when",
        "who",
        "action",
        "version",
        "reason",
        title=f"History of {output.escape(name)}@{output.escape(alias_name)} (newest first)",
        no_wrap=["when", "version"],
    )
    for e in events:
        t.add_row(
            (output.iso(e.timestamp) or "").replace("T", " ").rstrip("Z"),
            output.escape(e.actor),
            e.action.removeprefix("alias."),
            _move(e),
            output.escape(e.reason or "-"),
        )
    output.console().print(t)
