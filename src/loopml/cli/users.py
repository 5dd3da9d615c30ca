"""``loopml users``: accounts, API tokens and project roles of ``loopml server --auth``,
managed directly in the store's database (for the server's admins, on a machine that reaches
it; a running server sees a change within a few seconds)."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import get_state, resolve_store_uri

if TYPE_CHECKING:
    from loopml.store.auth import Account, ApiToken, AuthStore
    from loopml.store.base import Store

__all__ = ["app"]

app = typer.Typer(
    help="Manage the users, service accounts, API tokens and project roles of loopml server.",
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NameArg = Annotated[str, typer.Argument(help="The user or service account.", show_default=False)]


@contextmanager
def _open(ctx: typer.Context) -> Iterator[tuple[Store, AuthStore]]:
    from loopml.errors import InvalidArgument
    from loopml.store import open_store

    store = open_store(resolve_store_uri(get_state(ctx).store))
    try:
        auth = getattr(store, "auth", None)
        if auth is None:
            raise InvalidArgument(
                f"the store {store.uri!r} keeps no accounts; point --store at the server's "
                "database (postgresql://... or sqlite:///file.db)"
            )
        yield store, auth
    finally:
        store.close()


def _audit(auth: AuthStore, action: str, kind: str, target: str, **facts: Any) -> None:
    from loopml.entities import now_ms
    from loopml.store.auth import ServerEvent

    actor = f"cli:{getpass.getuser()}"
    auth.log_server_event(ServerEvent(now_ms(), actor, action, kind, target, facts, "cli"))


def _read_password() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise output.fail('no password on stdin; pipe it in: echo "$PASSWORD" | loopml users ...')
    return line


def _account_dict(a: Account) -> dict[str, Any]:
    return {
        "name": a.name,
        "kind": a.kind,
        "server_admin": a.server_admin,
        "disabled": a.disabled,
        "has_password": a.has_password,
        "created": output.iso(a.created_at),
    }


def _token_dict(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "owner": t.owner,
        "name": t.name,
        "kind": t.kind,
        "created": output.iso(t.created_at),
        "expires": output.iso(t.expires_at),
        "last_used": output.iso(t.last_used_at),
        "revoked": output.iso(t.revoked_at),
    }


@app.command("list")
def list_users(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List users and service accounts.

    \b
    Example:
      loopml users list --store postgresql://loopml@db/loopml
    """
    with _open(ctx) as (_, auth):
        found = auth.list_accounts()
    if as_json:
        output.print_json([_account_dict(a) for a in found])
        return
    if not found:
        typer.echo("No accounts yet; create one with 'loopml users create NAME --admin'.")
        return
    t = output.table("name", "kind", "server admin", "disabled", "password")
    for a in found:
        t.add_row(
            output.escape(a.name),
            a.kind,
            "yes" if a.server_admin else "",
            "yes" if a.disabled else "",
            "set" if a.has_password else "",
        )
    output.console().print(t)


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    admin: Annotated[bool, typer.Option("--admin", help="Make it a server admin.")] = False,
    service: Annotated[
        bool, typer.Option("--service", help="A service account (tokens only, no password).")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create a user (or, with --service, a service account).

    \b
    Examples:
      echo "$PASSWORD" | loopml users create alice --admin --password-stdin
      loopml users create serving --service
    """
    from loopml.entities import now_ms
    from loopml.store.auth import hash_password

    if service and password_stdin:
        raise output.fail("a service account has no password; create a token for it instead")
    password = hash_password(_read_password()) if password_stdin else None
    with _open(ctx) as (_, auth):
        account = auth.create_account(
            name,
            "service" if service else "user",
            server_admin=admin,
            password_hash=password,
            created_at=now_ms(),
        )
        _audit(auth, f"{account.kind}.create", account.kind, name, server_admin=admin)
    typer.echo(f"Created {account.kind} {name!r}{' (server admin)' if admin else ''}.")


@app.command("password")
def password(ctx: typer.Context, name: NameArg) -> None:
    """Set a user's password, read from stdin.

    \b
    Example:
      echo "$PASSWORD" | loopml users password alice
    """
    from loopml.store.auth import hash_password

    hashed = hash_password(_read_password())
    with _open(ctx) as (_, auth):
        auth.update_account(name, password_hash=hashed)
        _audit(auth, "user.password", "user", name)
    typer.echo(f"Password of {name!r} set.")


@app.command("disable")
def disable(
    ctx: typer.Context,
    name: NameArg,
    enable: Annotated[bool, typer.Option("--enable", help="Enable it again instead.")] = False,
) -> None:
    """Disable an account (it cannot sign in; its tokens stop working), or --enable it."""
    with _open(ctx) as (_, auth):
        auth.update_account(name, disabled=not enable)
        _audit(auth, "user.update", "user", name, disabled=not enable)
    typer.echo(f"{'Enabled' if enable else 'Disabled'} {name!r}.")


@app.command("token")
def token(
    ctx: typer.Context,
    name: NameArg,
    token_name: Annotated[
        str, typer.Option("--name", help="What the token is for (ci, serving...).")
    ],
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="Expire after this many days.", min=0)
    ] = None,
) -> None:
    """Create an API token for an account; prints the secret once.

    \b
    Example:
      loopml users token serving --name prod-serving --expires-days 90
      export LOOPML_TRACKING_TOKEN=lml_...
    """
    from loopml.entities import now_ms
    from loopml.store.auth import hash_token, new_token

    secret = new_token()
    at = now_ms()
    expires = None if expires_days is None else at + int(expires_days * 86_400_000)
    with _open(ctx) as (_, auth):
        made = auth.create_token(
            name, token_name, hash_token(secret), created_at=at, expires_at=expires
        )
        _audit(auth, "token.create", "token", made.id, owner=name, name=token_name)
    typer.echo(secret)
    typer.secho(
        f"Token {made.id} of {name!r}: shown once, keep it (LOOPML_TRACKING_TOKEN).", err=True
    )


@app.command("tokens")
def tokens(ctx: typer.Context, name: NameArg, as_json: JsonOption = False) -> None:
    """List an account's API tokens (never their secrets)."""
    with _open(ctx) as (_, auth):
        found = auth.list_tokens(name, kind="api")
    if as_json:
        output.print_json([_token_dict(t) for t in found])
        return
    t = output.table("id", "name", "created", "expires", "last used", "revoked")
    for tok in found:
        d = _token_dict(tok)
        t.add_row(tok.id, output.escape(tok.name), *((d[k] or "")[:16] for k in list(d)[4:]))
    output.console().print(t)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (loopml users tokens NAME).")],
) -> None:
    """Revoke an API token (servers stop accepting it within a few seconds)."""
    from loopml.entities import now_ms

    with _open(ctx) as (_, auth):
        revoked = auth.revoke_token(token_id, now_ms())
        _audit(auth, "token.revoke", "token", token_id, owner=revoked.owner)
    typer.echo(f"Revoked token {token_id} of {revoked.owner!r}.")


@app.command("grant")
def grant(
    ctx: typer.Context,
    name: NameArg,
    project: Annotated[str, typer.Argument(help="The project's name or id.")],
    role: Annotated[str, typer.Argument(help="viewer, editor or admin.")],
) -> None:
    """Give an account a role in a project (replacing any it had).

    \b
    Example:
      loopml users grant alice churn editor
    """
    with _open(ctx) as (store, auth):
        project_id = store.get_project(project).project_id
        auth.set_role(project_id, name, role)
        store.log_audit_event(
            project_id,
            actor=f"cli:{getpass.getuser()}",
            action="role.set",
            object_type="role",
            object_name=name,
            details={"role": role},
            origin="cli",
        )
    typer.echo(f"{name!r} is now {role} in {project!r}.")


@app.command("ungrant")
def ungrant(
    ctx: typer.Context,
    name: NameArg,
    project: Annotated[str, typer.Argument(help="The project's name or id.")],
) -> None:
    """Take an account's role in a project away."""
    with _open(ctx) as (store, auth):
        project_id = store.get_project(project).project_id
        if auth.remove_role(project_id, name):
            store.log_audit_event(
                project_id,
                actor=f"cli:{getpass.getuser()}",
                action="role.remove",
                object_type="role",
                object_name=name,
                origin="cli",
            )
            typer.echo(f"{name!r} has no role in {project!r} any more.")
        else:
            typer.echo(f"{name!r} had no role in {project!r}.")


@app.command("members")
def members(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project's name or id.")],
    as_json: JsonOption = False,
) -> None:
    """List the accounts with a role in a project."""
    with _open(ctx) as (store, auth):
        found = auth.list_members(store.get_project(project).project_id)
    if as_json:
        output.print_json([{"name": m.name, "role": m.role} for m in found])
        return
    t = output.table("name", "role")
    for m in found:
        t.add_row(output.escape(m.name), m.role)
    output.console().print(t)
