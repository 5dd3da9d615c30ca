"""``loopml deployments``: the rollout state of served endpoints, kept in the store so it
survives restarts and everyone sees it; running servers follow changes within seconds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.entities import Deployment

__all__ = ["app"]

app = typer.Typer(
    help="List and show deployments; set canary and shadow traffic, promote, roll back."
    "\n\n"
    "A deployment is a named endpoint with routes: one primary, canaries that answer a share "
    "of traffic, and shadows that get a copy of it (their answers are logged, never returned). "
    "`loopml serve` serves one; every change here is audited and picked up by running servers."
    "\n\n"
    "\b\n"
    "Examples:\n"
    "  loopml deployments list\n"
    "  loopml deployments set-traffic churn canary=0.1 --model canary=models:/churn@challenger\n"
    "  loopml deployments set-traffic churn shadow=1 -m shadow=models:/churn/5 --role shadow\n"
    "  loopml deployments promote-canary churn\n"
    "  loopml deployments rollback churn",
    no_args_is_help=True,
    rich_markup_mode=None,
)

ProjectOption = Annotated[
    str | None, typer.Option("--project", "-p", metavar="NAME", help="The project.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ReasonOption = Annotated[
    str, typer.Option("--reason", "-r", metavar="TEXT", help="Why (kept in the audit trail).")
]


def _dict(dep: Deployment) -> dict[str, Any]:
    return {
        "name": dep.name,
        "revision": dep.revision,
        "routes": [r.to_dict() for r in dep.routes],
        "sticky_key": dep.sticky_key,
        "description": dep.description,
        "config": dict(dep.config),
        "updated_at": output.iso(dep.updated_at),
        "updated_by": dep.updated_by,
    }


def _traffic(dep: Deployment) -> str:
    parts = []
    canary = sum(r.weight for r in dep.routes if str(r.role) == "canary")
    for r in dep.routes:
        role = str(r.role)
        share = 1 - canary if role == "primary" else r.weight
        verb = "mirrors" if role == "shadow" else "gets"
        parts.append(f"{r.name} {verb} {share:.0%}")
    return ", ".join(parts)


@app.command("list")
def list_(ctx: typer.Context, project: ProjectOption = None, json: JsonOption = False) -> None:
    """Every deployment of the project, with its routes' traffic."""
    client = open_client(ctx)
    deps = client.list_deployments(project=project)
    if json:
        output.print_json([_dict(d) for d in deps])
        return
    if not deps:
        output.console().print("no deployments; `loopml serve models:/NAME@ALIAS` creates one")
        return
    table = output.table("name", "revision", "primary", "traffic", "updated")
    for d in deps:
        table.add_row(
            output.escape(d.name),
            str(d.revision),
            output.escape(d.primary.model_uri),
            output.escape(_traffic(d)),
            output.iso(d.updated_at) or "",
        )
    output.console().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    project: ProjectOption = None,
    json: JsonOption = False,
) -> None:
    """A deployment's routes, models and settings, the versions they resolve to, and each
    route's requests and errors of the last hour (stored by the serving processes)."""
    from loopml.entities import now_ms

    client = open_client(ctx)
    dep = client.get_deployment(name, project=project)
    since = now_ms() - 3_600_000
    hour: dict[str, list[int]] = {}
    for w in client.list_traffic_windows(name, start=since, project=project):
        counts = hour.setdefault(w.route, [0, 0, 0])
        counts[0] += w.requests
        counts[1] += w.client_errors
        counts[2] += w.server_errors
    resolved: dict[str, str] = {}
    for r in dep.routes:
        try:
            mv = client.resolve_model_uri(r.model_uri, project=project)
            resolved[r.name] = f"{mv.name}/{mv.version}"
        except Exception as exc:  # a route whose model is gone: show why, do not fail
            resolved[r.name] = f"unresolved: {exc}"
    if json:
        data = _dict(dep)
        for route in data["routes"]:
            route["resolves_to"] = resolved[route["name"]]
        data["last_hour"] = {
            route: {"requests": c[0], "client_errors": c[1], "server_errors": c[2]}
            for route, c in sorted(hour.items())
        }
        output.print_json(data)
        return
    con = output.console()
    output.print_section(
        con,
        f"deployment {dep.name}",
        [
            ("revision", str(dep.revision)),
            ("traffic", _traffic(dep)),
            ("sticky key", dep.sticky_key or "none"),
            ("updated", f"{output.iso(dep.updated_at)} by {dep.updated_by}"),
            ("description", dep.description or ""),
        ],
    )
    table = output.table(
        "route", "role", "weight", "model", "version", "requests (1 h)", "5xx", "4xx"
    )
    for r in dep.routes:
        counts = hour.get(r.name, [0, 0, 0])
        table.add_row(
            output.escape(r.name),
            str(r.role),
            f"{r.weight:g}",
            output.escape(r.model_uri),
            output.escape(resolved[r.name]),
            f"{counts[0]:,}",
            _share(counts[2], counts[0]),
            _share(counts[1], counts[0]),
        )
    con.print(table)
    refused = hour.get("", [0, 0, 0])
    if refused[0]:
        con.print(f"refused before routing in the last hour: {refused[0]:,} requests")


def _share(part: int, whole: int) -> str:
    return f"{part:,} ({100 * part / whole:.1f}%)" if whole else "0"


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise output.fail(f"{what} must look like ROUTE=VALUE, not {item!r}", code=2)
        out[key] = value
    return out


@app.command("set-traffic", no_args_is_help=True)
def set_traffic(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    weights: Annotated[
        list[str],
        typer.Argument(metavar="ROUTE=WEIGHT...", help="e.g. canary=0.1 (a share in [0, 1])."),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="ROUTE=URI",
            help="The model of a route to add (or to change): canary=models:/churn@challenger.",
        ),
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="Role of routes added: canary or shadow.")
    ] = "canary",
    reason: ReasonOption = "",
    project: ProjectOption = None,
) -> None:
    """Set the share of traffic a canary answers (or a shadow mirrors); add the route with
    --model when it is new."""
    from loopml.entities import RouteRole
    from loopml.serving import deployments

    if role not in ("canary", "shadow"):
        raise output.fail(f"--role must be canary or shadow, not {role!r}", code=2)
    parsed: dict[str, float] = {}
    for key, value in _pairs(weights, "a weight").items():
        try:
            parsed[key] = float(value.rstrip("%")) / (100 if value.endswith("%") else 1)
        except ValueError:
            raise output.fail(f"weight {value!r} of {key!r} is not a number", code=2) from None
    client = open_client(ctx)
    dep = deployments.set_traffic(
        client,
        name,
        parsed,
        models=_pairs(model or [], "--model"),
        role=RouteRole(role),
        reason=reason,
        project=project,
    )
    output.console().print(f"{dep.name} revision {dep.revision}: {_traffic(dep)}")


@app.command("promote-canary", no_args_is_help=True)
def promote_canary(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    route: Annotated[
        str | None, typer.Option("--route", help="The canary, when there are several.")
    ] = None,
    reason: ReasonOption = "",
    project: ProjectOption = None,
) -> None:
    """Make the canary's version the primary's (moving the primary's alias when it follows
    one) and remove the canary route."""
    from loopml.serving import deployments

    client = open_client(ctx)
    dep, what = deployments.promote_canary(
        client, name, route=route, reason=reason, project=project
    )
    output.console().print(f"{dep.name} revision {dep.revision}: {what}; {_traffic(dep)}")


@app.command("rollback", no_args_is_help=True)
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    reason: ReasonOption = "",
    project: ProjectOption = None,
) -> None:
    """Abort a rollout (remove the canaries), or, with none, move the primary's alias back to
    its previous version."""
    from loopml.serving import deployments

    client = open_client(ctx)
    dep, what = deployments.rollback(client, name, reason=reason, project=project)
    output.console().print(f"{dep.name}: {what}")


@app.command("apply", no_args_is_help=True)
def apply(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(metavar="FILE", help="A deployment YAML file.")],
    reason: ReasonOption = "",
    project: ProjectOption = None,
) -> None:
    """Create a deployment from a file, or update the stored one to match it."""
    from loopml.serving.config import load_deployment_file
    from loopml.serving.deployments import apply_file

    spec = load_deployment_file(file)
    client = open_client(ctx, create=True)
    dep, what = apply_file(client, spec, reason=reason, project=project)
    output.console().print(f"{dep.name}: {what} (revision {dep.revision}); {_traffic(dep)}")


@app.command("delete", no_args_is_help=True)
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME")],
    reason: ReasonOption = "",
    project: ProjectOption = None,
) -> None:
    """Delete a deployment (its prediction log stays)."""
    client = open_client(ctx)
    client.delete_deployment(name, reason=reason, project=project)
    output.console().print(f"deleted deployment {name}")
