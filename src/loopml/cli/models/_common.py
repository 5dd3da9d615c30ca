"""What every ``loopml models`` command shares: the Typer group, common options, opening the
registry in a project, and how versions, aliases, audit events and gate results are shown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import AuditEvent, ModelVersion, RegisteredModel

__all__ = [
    "AliasOption",
    "JsonOption",
    "ProjectOption",
    "ReasonOption",
    "TrustedOption",
    "app",
    "event_dict",
    "gate_checks_dict",
    "gate_verdict",
    "is_model_uri",
    "model_dict",
    "open_registry",
    "print_gate_checks",
    "usage_error",
    "version_dict",
]

app = typer.Typer(
    help="Register, inspect, promote, roll back, evaluate and compare models."
    "\n\n"
    "A version is named models:/NAME/VERSION, models:/NAME@ALIAS (an alias such as champion "
    "points at one version) or models:/NAME/latest. Every alias move is recorded in the audit "
    "trail with who, when and why."
    "\n\n"
    "\b\n"
    "Examples:\n"
    "  loopml models list\n"
    "  loopml models show models:/churn@champion\n"
    "  loopml models register runs:/3f2a9c41/model churn\n"
    "  loopml models promote churn 4 --gate gate.yaml\n"
    "  loopml models rollback churn\n"
    "  loopml models compare models:/churn@champion models:/churn/4 --data test.csv "
    "--target churned",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        metavar="NAME",
        help="Project of the model [default: LOOPML_PROJECT, else default].",
    ),
]
AliasOption = Annotated[
    str,
    typer.Option("--alias", "-a", metavar="ALIAS", help="The alias to move."),
]
ReasonOption = Annotated[
    str,
    typer.Option("--reason", "-r", metavar="TEXT", help="Why (recorded in the audit trail)."),
]
TrustedOption = Annotated[
    bool,
    typer.Option(
        "--trusted",
        help="Load models whose flavor runs stored code (pickle, torch, python): "
        "only for models from a source you trust.",
    ),
]
_CHECK_MARKS = {"pass": "[green]pass[/green]", "FAIL": "[bold red]FAIL[/bold red]"}
_CHECK_MARKS["warn"] = "[yellow]warn[/yellow]"


def usage_error(message: str) -> typer.Exit:
    """One ``error:`` line for options that do not go together; exit status 2, like Click's
    usage errors. Returns the ``Exit`` to raise."""
    return output.fail(message, code=2)


def is_model_uri(text: str) -> bool:
    return text.strip().startswith("models:")


def open_registry(ctx: typer.Context, project: str | None, *, create: bool = False) -> Client:
    """A client whose current project is ``project`` (when given), so that ``models:/`` URIs
    resolved deep inside loading, evaluation and the gate name models of that project."""
    client = open_client(ctx, create=create)
    if project is not None:
        client.settings = client.settings.model_copy(update={"project": project})
    return client


# --- JSON shapes ---------------------------------------------------------------------------------


def model_dict(m: RegisteredModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "description": m.description,
        "tags": dict(m.tags),
        "aliases": dict(sorted(m.aliases.items())),
        "latest_version": m.latest_version,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "created": output.iso(m.created_at),
        "updated": output.iso(m.updated_at),
    }


def version_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "uri": v.uri,
        "name": v.name,
        "version": v.version,
        "status": str(v.status),
        "aliases": list(v.aliases),
        "flavor": v.flavor,
        "source": v.source,
        "run_id": v.run_id,
        "manifest_digest": v.manifest_digest,
        "description": v.description,
        "tags": dict(v.tags),
        "signature": None if v.signature is None else dict(v.signature),
        "gate_result": None if v.gate_result is None else dict(v.gate_result),
        "created_at": v.created_at,
        "created": output.iso(v.created_at),
        "created_by": v.created_by,
    }


def event_dict(e: AuditEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "timestamp": e.timestamp,
        "when": output.iso(e.timestamp),
        "actor": e.actor,
        "action": e.action,
        "object_type": e.object_type,
        "object_name": e.object_name,
        "reason": e.reason,
        "details": dict(e.details),
        "origin": e.origin,
    }


# --- gate results --------------------------------------------------------------------------------


def gate_verdict(result: Mapping[str, Any] | None) -> str:
    """A stored gate result as one coloured word (markup): ``passed``, ``FAILED`` or ``-``."""
    if not result:
        return "-"
    return "[green]passed[/green]" if result.get("passed") else "[bold red]FAILED[/bold red]"


def _mark(check: Mapping[str, Any]) -> str:
    if check.get("passed"):
        return "pass"
    return "FAIL" if check.get("required", True) else "warn"


def gate_checks_dict(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each check of a gate result (``GateResult.to_dict()``) with its ``result`` word."""
    return [{**dict(c), "result": _mark(c)} for c in result.get("checks", ())]


def print_gate_checks(result: Mapping[str, Any], title: str | None = None) -> None:
    """A gate result (``GateResult.to_dict()``): one row per check (pass, FAIL or warn, its name,
    what it found), then the verdict against the champion on how many rows."""
    con = output.console()
    t = output.table("result", "check", "found", title=title, no_wrap=["result"])
    for check in result.get("checks", ()):
        t.add_row(
            _CHECK_MARKS[_mark(check)],
            output.escape(check.get("name", "")),
            output.escape(check.get("message", "")),
        )
    con.print(t)
    against = result.get("champion")
    rows = result.get("num_rows")
    where = " against " + output.escape(against) if against else " (no champion to compare with)"
    on = f" on {rows:,} rows" if isinstance(rows, int) else ""
    data = f" of {output.escape(result['data'])}" if result.get("data") else ""
    con.print(
        f"gate {gate_verdict(result)} for {output.escape(result.get('candidate', ''))}"
        f"{where}{on}{data}"
    )
