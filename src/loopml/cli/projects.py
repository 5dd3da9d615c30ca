"""``loopml projects``: list and create projects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.entities import Project

__all__ = ["app"]

app = typer.Typer(
    help="List and create projects (namespaces for runs).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _project_dict(project: Project) -> dict[str, Any]:
    return {
        "project_id": project.project_id,
        "name": project.name,
        "description": project.description,
        "created_at": project.created_at,
        "created": output.iso(project.created_at),
    }


@app.command("list")
def list_projects(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every project, by name.

    \b
    Examples:
      loopml projects list
      loopml projects list --json
    """
    with open_client(ctx) as client:
        found = client.list_projects()
    if as_json:
        output.print_json([_project_dict(p) for p in found])
        return
    if not found:
        typer.echo("No projects yet; create one with 'loopml projects create NAME'.")
        return
    t = output.table("name", "id", "created", "description")
    for p in found:
        t.add_row(
            output.escape(p.name),
            p.project_id[:8],
            (output.iso(p.created_at) or "")[:10],
            output.escape(p.description),
        )
    output.console().print(t)


@app.command("create")
def create_project(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Project name.", show_default=False)],
    description: Annotated[
        str, typer.Option("--description", "-d", help="What the project is for.")
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """Create a project.

    Like the Python API, this creates the store on first use when there is none.

    \b
    Example:
      loopml projects create churn --description "Churn model for the EU market"
    """
    with open_client(ctx, create=True) as client:
        project = client.create_project(name, description)
    if as_json:
        output.print_json(_project_dict(project))
    else:
        typer.echo(f"Created project {project.name!r} (id {project.project_id})")
