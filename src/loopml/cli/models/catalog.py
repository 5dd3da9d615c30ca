"""``loopml models list|show|versions``: what the registry holds, and one version in detail
(signature, lineage, gate result)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.models._common import (
    JsonOption,
    ProjectOption,
    app,
    gate_checks_dict,
    gate_verdict,
    is_model_uri,
    model_dict,
    open_registry,
    print_gate_checks,
    usage_error,
    version_dict,
)

if TYPE_CHECKING:
    from rich.console import Console

    from loopml.client import Client
    from loopml.entities import ModelVersion, RegisteredModel

__all__ = ["list_models", "show", "versions"]

_STATUS_STYLES = {"ready": "green", "archived": "dim"}


def _aliases_text(aliases: Mapping[str, int]) -> str:
    return ", ".join(f"{a}→{v}" for a, v in sorted(aliases.items())) or "-"


def _status(status: object) -> str:
    text = str(status)
    style = _STATUS_STYLES.get(text, "white")
    return f"[{style}]{text}[/{style}]"


# --- list ----------------------------------------------------------------------------------------


@app.command("list")
def list_models(
    ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False
) -> None:
    """List the registered models of a project.

    The table shows each model's latest version, its aliases (alias→version) and when it last
    changed (a new version, an alias move, an edit).

    \b
    Examples:
      loopml models list
      loopml models list -p churn --json
    """
    from loopml.entities import now_ms
    from loopml.errors import ProjectNotFound

    with open_registry(ctx, project) as client:
        name = project or client.settings.project
        try:
            models = client.list_registered_models(project=name)
        except ProjectNotFound:
            if project is not None:
                raise
            models = []  # the default project appears with its first run, dataset or model
    if as_json:
        output.print_json({"project": name, "models": [model_dict(m) for m in models]})
        return
    if not models:
        typer.echo(
            f"No models in project {name!r}; register one with "
            "'loopml models register runs:/RUN_ID/model NAME' or log_model(..., "
            "registered_model_name=NAME)."
        )
        return
    t = output.table("name", "latest", "aliases", "updated", "description", no_wrap=["latest"])
    now = now_ms()
    for m in models:
        t.add_row(
            output.escape(m.name),
            str(m.latest_version) if m.latest_version else "-",
            output.escape(_aliases_text(m.aliases)),
            output.format_started(m.updated_at, now),
            output.escape(m.description),
        )
    output.console().print(t)


# --- versions and show ---------------------------------------------------------------------------


def _versions_table(versions: list[ModelVersion], title: str | None = None) -> Any:
    t = output.table(
        "version",
        "status",
        "aliases",
        "flavor",
        "run",
        "created by",
        "created",
        "gate",
        title=title,
        no_wrap=["version", "run"],
    )
    for v in reversed(versions):  # newest first
        t.add_row(
            str(v.version),
            _status(v.status),
            output.escape(", ".join(v.aliases) or "-"),
            output.escape(v.flavor or "-"),
            v.run_id[:8] if v.run_id else "-",
            output.escape(v.created_by or "-"),
            (output.iso(v.created_at) or "")[:16].replace("T", " "),
            gate_verdict(v.gate_result),
        )
    return t


def _bare_name(text: str) -> str:
    """A model name, also when given as ``models:/NAME``."""
    if is_model_uri(text):
        rest = text.strip().split(":", 1)[1].strip("/")
        if "/" not in rest and "@" not in rest:
            return rest
        raise usage_error(
            f"{text!r} names a version; give the model's name (NAME or models:/NAME)"
        )
    return text


def _names_version(text: str) -> bool:
    if not is_model_uri(text):
        return False
    rest = text.strip().split(":", 1)[1].strip("/")
    return "/" in rest or "@" in rest


@app.command("show")
def show(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="NAME_OR_URI",
            help="A model name (the model and its versions) or a version: models:/NAME/3, "
            "models:/NAME@champion, models:/NAME/latest.",
        ),
    ],
    version: Annotated[
        int | None,
        typer.Option("--version", "-v", metavar="N", min=1, help="Show this version of NAME."),
    ] = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a model and its versions, or one version in detail.

    For a version: status, aliases, flavor, source, the run that trained it, its signature
    (inputs and outputs), its lineage (the run and the dataset versions it used), the manifest
    digest that pins its files, and its latest release gate result, check by check.

    \b
    Examples:
      loopml models show churn
      loopml models show churn --version 3
      loopml models show models:/churn@champion
      loopml models show models:/churn/latest --json
    """
    if _names_version(model):
        if version is not None:
            raise usage_error(
                f"{model} already names a version; drop --version, or give the model's name"
            )
        with open_registry(ctx, project) as client:
            mv = client.resolve_model_uri(model, project=project)
            _show_version(client, mv, project, as_json)
        return
    name = _bare_name(model)
    with open_registry(ctx, project) as client:
        if version is not None:
            mv = client.get_model_version(name, version, project=project)
            _show_version(client, mv, project, as_json)
            return
        registered = client.get_registered_model(name, project=project)
        found = client.list_model_versions(name, project=project)
    _show_model(registered, found, as_json)


@app.command("versions")
def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model.")],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the versions of a model, newest first.

    Each row: status (ready or archived), aliases, flavor, the run that trained it, who
    registered it and when, and the verdict of its latest release gate.

    \b
    Examples:
      loopml models versions churn
      loopml models versions churn --json
    """
    name = _bare_name(name)
    with open_registry(ctx, project) as client:
        client.get_registered_model(name, project=project)  # ModelNotFound names the fix
        found = client.list_model_versions(name, project=project)
    if as_json:
        output.print_json({"name": name, "versions": [version_dict(v) for v in found]})
        return
    if not found:
        typer.echo(f"Model {name!r} has no versions yet.")
        return
    output.console().print(_versions_table(found))


def _show_model(m: RegisteredModel, found: list[ModelVersion], as_json: bool) -> None:
    if as_json:
        output.print_json({**model_dict(m), "versions": [version_dict(v) for v in found]})
        return
    con = output.console()
    now_title = f"Model {output.escape(m.name)}"
    attrs = [
        ("description", output.escape(m.description or "-")),
        ("aliases", output.escape(_aliases_text(m.aliases))),
        ("latest version", str(m.latest_version or "-")),
        ("created", output.iso(m.created_at) or "-"),
        ("updated", output.iso(m.updated_at) or "-"),
    ]
    output.print_section(con, now_title, attrs)
    output.print_section(con, "Tags", [(k, output.escape(v)) for k, v in sorted(m.tags.items())])
    if found:
        con.print(_versions_table(found, title="Versions"))
    else:
        con.print(
            "[bold]Versions[/bold]: none yet; register one with "
            f"'loopml models register runs:/RUN_ID/model {output.escape(m.name)}'"
        )


def _show_version(client: Client, mv: ModelVersion, project: str | None, as_json: bool) -> None:
    lineage = client.model_lineage(mv.name, mv.version, project=project)
    run, inputs = lineage["run"], lineage["inputs"]
    if as_json:
        data = version_dict(mv)
        data["lineage"] = {
            "run": None if run is None else output.run_to_dict(run),
            "inputs": [
                {
                    "dataset": i.dataset_version.uri,
                    "digest": i.dataset_version.digest,
                    "role": i.role,
                }
                for i in inputs
            ],
        }
        if mv.gate_result:
            data["gate_result"] = {
                **dict(mv.gate_result),
                "checks": gate_checks_dict(mv.gate_result),
            }
        output.print_json(data)
        return
    con = output.console()
    if mv.run_id is None:
        run_text = "-"
    else:
        shown = run.name if run is not None else "(deleted)"
        run_text = f"{mv.run_id[:8]} ({output.escape(shown)})"
    attrs = [
        ("uri", output.escape(mv.uri)),
        ("status", _status(mv.status)),
        ("aliases", output.escape(", ".join(mv.aliases) or "-")),
        ("flavor", output.escape(mv.flavor or "-")),
        ("source", output.escape(mv.source)),
        ("run", run_text),
        ("created by", output.escape(mv.created_by or "-")),
        ("created", output.iso(mv.created_at) or "-"),
        ("manifest digest", mv.manifest_digest or "-"),
    ]
    if mv.description:
        attrs.append(("description", output.escape(mv.description)))
    output.print_section(con, f"Model {output.escape(mv.name)} version {mv.version}", attrs)
    output.print_section(con, "Tags", [(k, output.escape(v)) for k, v in sorted(mv.tags.items())])
    _print_signature(con, mv.signature)
    _print_lineage(con, run, inputs)
    if mv.gate_result:
        print_gate_checks(mv.gate_result, title="Gate")
    else:
        con.print(
            "[bold]Gate[/bold]: not run; run it with "
            f"'loopml models promote {output.escape(mv.name)} {mv.version} --gate gate.yaml'"
        )


def _spec_rows(spec: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Table headers and rows for one side of a signature (its JSON form)."""
    if spec.get("type") == "table":
        schema = spec.get("schema") or {}
        rows = []
        for col in schema.get("columns", ()):
            flags = [w for w in ("nullable", "unique") if col.get(w)]
            if col.get("name") == schema.get("target"):
                flags.append("target")
            if col.get("categories") is not None:
                allowed = ", ".join(str(c) for c in col["categories"][:8])
            elif col.get("min") is not None or col.get("max") is not None:
                allowed = f"{output.format_value(col.get('min'))} .. "
                allowed += output.format_value(col.get("max"))
            else:
                allowed = ""
            rows.append([str(col.get("name")), str(col.get("type")), ", ".join(flags), allowed])
        return ["column", "type", "flags", "allowed"], rows
    rows = []
    for tensor in spec.get("tensors", ()):
        dims = ", ".join("?" if d == -1 else str(d) for d in tensor.get("shape", ()))
        rows.append([str(tensor.get("name") or "-"), str(tensor.get("dtype")), f"[{dims}]"])
    return ["tensor", "dtype", "shape"], rows


def _outputs_text(spec: Mapping[str, Any] | None) -> str:
    if not spec:
        return "unknown"
    _, rows = _spec_rows(spec)
    if spec.get("type") == "table":
        return ", ".join(f"{r[0]} ({r[1]})" for r in rows)
    return ", ".join(f"{r[0]}: {r[1]}{r[2]}" if r[0] != "-" else f"{r[1]}{r[2]}" for r in rows)


def _print_signature(con: Console, signature: Mapping[str, Any] | None) -> None:
    if not signature:
        con.print("[bold]Signature[/bold]: none (inputs are not checked)\n")
        return
    inputs = signature.get("inputs") or {}
    headers, rows = _spec_rows(inputs)
    what = "columns" if inputs.get("type") == "table" else "tensors"
    con.print(f"[bold]Signature[/bold]: {len(rows)} input {what}")
    t = output.table(*headers)
    for row in rows:
        t.add_row(*(output.escape(c) for c in row))
    con.print(t)
    con.print(f"outputs: {output.escape(_outputs_text(signature.get('outputs')))}")
    con.print()


def _print_lineage(con: Console, run: Any, inputs: list[Any]) -> None:
    if run is None:
        con.print("[bold]Lineage[/bold]: no run recorded (or it was deleted)\n")
        return
    con.print(
        f"[bold]Lineage[/bold]: trained by run {run.run_id[:8]} ({output.escape(run.name)}, "
        f"{output.status_markup(run.status.value)})"
    )
    if inputs:
        t = output.table("dataset", "role", "digest", "rows", no_wrap=["digest"])
        for i in inputs:
            dv = i.dataset_version
            t.add_row(
                output.escape(dv.uri), output.escape(i.role), dv.digest[:12], f"{dv.num_rows:,}"
            )
        con.print(t)
    else:
        con.print("no dataset inputs recorded (log them with loopml.log_input or data add --run)")
    con.print()
