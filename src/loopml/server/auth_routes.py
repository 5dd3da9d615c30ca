"""The ``/api/v1/auth`` routes of ``loopml server`` (and a plain ``/login`` page): whoami,
bootstrap, sign-in and out, users, service accounts, API tokens, the server's audit trail and
project members. Each route checks its own permission through the gate
(:class:`~loopml.server.auth.TokenGate`) and names it in ``x-loopml-permission``; without
``--auth`` they answer that accounts need it.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, RedirectResponse, Response

from loopml.entities import now_ms
from loopml.errors import (
    InvalidArgument,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from loopml.server.api import error_response, principal_of, request_origin
from loopml.server.auth import (
    AUTH_PREFIX,
    NEEDS_AUTH,
    SESSION_COOKIE,
    TokenGate,
)
from loopml.server.principal import Gate, Principal
from loopml.store.auth import (
    Account,
    ApiToken,
    ServerEvent,
    check_account_name,
    check_role,
    hash_password,
    hash_token,
    new_token,
    verify_password,
)

__all__ = ["build_auth_router"]


class BootstrapBody(BaseModel):
    token: str = Field(max_length=200)
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class LoginBody(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class AccountBody(BaseModel):
    name: str = Field(max_length=64)
    password: str | None = Field(default=None, max_length=1024)
    server_admin: bool = False


class AccountPatch(BaseModel):
    disabled: bool | None = None
    server_admin: bool | None = None


class PasswordBody(BaseModel):
    password: str = Field(max_length=1024)
    current_password: str | None = Field(default=None, max_length=1024)


class TokenBody(BaseModel):
    name: str = Field(max_length=256)
    owner: str | None = Field(default=None, max_length=64)
    expires_days: float | None = Field(default=None, gt=0, le=3650)


class RoleBody(BaseModel):
    role: str


def _perm(permission: str) -> dict[str, Any]:
    return {"x-loopml-permission": permission}


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type="application/json")


def _account_json(a: Account) -> dict[str, Any]:
    return {
        "name": a.name,
        "kind": a.kind,
        "server_admin": a.server_admin,
        "disabled": a.disabled,
        "has_password": a.has_password,
        "created_at": a.created_at,
    }


def _token_json(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "owner": t.owner,
        "name": t.name,
        "kind": t.kind,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at,
    }


def _gate(request: Request) -> TokenGate:
    gate: Gate = request.app.state.gate
    if not isinstance(gate, TokenGate):
        raise InvalidArgument(f"{NEEDS_AUTH}: start the server with --auth")
    return gate


def _admin(request: Request) -> tuple[TokenGate, Principal]:
    gate = _gate(request)
    principal = principal_of(request)
    gate.check(principal, "admin", ())
    return gate, principal


def _audit(
    gate: TokenGate,
    request: Request,
    actor: str,
    action: str,
    kind: str,
    name: str,
    facts: dict[str, Any] | None = None,
) -> None:
    gate.auth.log_server_event(
        ServerEvent(now_ms(), actor, action, kind, name, facts or {}, request_origin(request))
    )


def _rate_limited(exc: RateLimited) -> Response:
    response = error_response(exc)
    seconds = "".join(c for c in exc.message.rsplit(" in ", 1)[-1] if c.isdigit()) or "60"
    response.headers["Retry-After"] = seconds
    return response


def _session_response(request: Request, response: Response, secret: str, hours: float) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


_LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - loopml</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Sign in to loopml</h1>{error}
<form method="post" action="/login">
<p><label>User name <input name="username" autocomplete="username" required
value="{username}"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password"
required></label></p>
<p><button type="submit">Sign in</button></p>
</form></main></body></html>
"""


def _login_page(error: str = "", username: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p role="alert">{html.escape(error)}</p>' if error else ""
    body = _LOGIN_PAGE.format(error=shown, username=html.escape(username, quote=True))
    return HTMLResponse(body, status_code=status)


def build_auth_router() -> APIRouter:
    """Sign-in and the user, token and role routes (``/api/v1/auth/...`` and ``/login``)."""
    router = APIRouter(tags=["auth"])

    @router.get(AUTH_PREFIX + "/whoami", openapi_extra=_perm("signed-in"))
    def whoami(request: Request) -> Response:
        """The caller: name, kind (user, service or local), whether a server admin, and roles."""
        principal = principal_of(request)
        gate = request.app.state.gate
        roles = gate.roles(principal.name) if isinstance(gate, TokenGate) else {}
        return _json(
            {
                "name": principal.name,
                "kind": principal.kind,
                "server_admin": principal.server_admin,
                "auth": bool(gate.enabled),
                "roles": roles,
            }
        )

    @router.post(AUTH_PREFIX + "/bootstrap", openapi_extra=_perm("public"))
    def bootstrap(request: Request, body: BootstrapBody) -> Response:
        """Create the first admin user with the one-time bootstrap token the server printed."""
        gate = _gate(request)
        try:
            if gate.sign_ins.hit(f"addr:{request_origin(request)}"):
                raise RateLimited("too many bootstrap attempts; try again in 60 seconds")
        except RateLimited as exc:
            return _rate_limited(exc)
        check_account_name(body.username)
        account = gate.auth.bootstrap_admin(
            hash_token(body.token), body.username, hash_password(body.password), now_ms()
        )
        if account is None:
            raise Unauthenticated(
                "the bootstrap token is wrong or already used; sign in, or ask an admin"
            )
        _audit(gate, request, account.name, "user.bootstrap", "user", account.name)
        return _json(_account_json(account), 201)

    @router.post(AUTH_PREFIX + "/login", openapi_extra=_perm("public"))
    def login(request: Request, body: LoginBody) -> Response:
        """Sign in with a user name and password: sets the HttpOnly session cookie."""
        gate = _gate(request)
        try:
            secret, token = gate.sign_in(body.username, body.password, request_origin(request))
        except RateLimited as exc:
            return _rate_limited(exc)
        response = _json({"name": token.owner, "expires_at": token.expires_at})
        _session_response(request, response, secret, gate.settings.session_hours)
        return response

    @router.post(AUTH_PREFIX + "/logout", openapi_extra=_perm("signed-in"))
    def logout(request: Request) -> Response:
        """End the web session of the cookie (an API token is revoked with DELETE tokens)."""
        gate = _gate(request)
        principal_of(request)
        token: ApiToken | None = getattr(request.state, "token", None)
        if token is not None and token.kind == "session":
            gate.auth.revoke_token(token.id, now_ms())
            gate.forget(token_id=token.id)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/login", include_in_schema=False, openapi_extra=_perm("public"))
    def login_page(request: Request) -> Response:
        """The sign-in page of the web UI."""
        _gate(request)
        return _login_page()

    @router.post("/login", include_in_schema=False, openapi_extra=_perm("public"))
    async def login_form(request: Request) -> Response:
        """The sign-in form's post: a session cookie and back to the web UI."""
        gate = _gate(request)
        form = parse_qs((await request.body())[:8192].decode("utf-8", "replace"))
        username = form.get("username", [""])[0][:64]
        password = form.get("password", [""])[0][:1024]
        from starlette.concurrency import run_in_threadpool

        try:
            secret, _ = await run_in_threadpool(
                gate.sign_in, username, password, request_origin(request)
            )
        except RateLimited as exc:
            page = _login_page(exc.message, username, 429)
            page.headers["Retry-After"] = _rate_limited(exc).headers["Retry-After"]
            return page
        except Unauthenticated as exc:
            return _login_page(exc.message, username, 401)
        response = RedirectResponse("/", status_code=303)
        _session_response(request, response, secret, gate.settings.session_hours)
        return response

    # --- accounts ----------------------------------------------------------------------------

    @router.get(AUTH_PREFIX + "/users", openapi_extra=_perm("server-admin"))
    def list_users(request: Request) -> Response:
        """Every user and service account (server admins)."""
        gate, _ = _admin(request)
        return _json([_account_json(a) for a in gate.auth.list_accounts()])

    @router.post(AUTH_PREFIX + "/users", status_code=201, openapi_extra=_perm("server-admin"))
    def create_user(request: Request, body: AccountBody) -> Response:
        """Create a user, with a password for the web UI (server admins)."""
        gate, principal = _admin(request)
        password = None if body.password is None else hash_password(body.password)
        account = gate.auth.create_account(
            body.name,
            "user",
            server_admin=body.server_admin,
            password_hash=password,
            created_at=now_ms(),
        )
        _audit(
            gate,
            request,
            principal.name,
            "user.create",
            "user",
            account.name,
            {"server_admin": account.server_admin},
        )
        return _json(_account_json(account), 201)

    @router.get(AUTH_PREFIX + "/users/{name}", openapi_extra=_perm("self-or-server-admin"))
    def get_user(request: Request, name: str) -> Response:
        """One account (the caller's own, or any for server admins)."""
        gate = _gate(request)
        principal = principal_of(request)
        if principal.name != name:
            gate.check(principal, "admin", ())
        return _json(_account_json(gate.auth.get_account(name)))

    @router.patch(AUTH_PREFIX + "/users/{name}", openapi_extra=_perm("server-admin"))
    def update_user(request: Request, name: str, body: AccountPatch) -> Response:
        """Disable or enable an account, or make it a server admin or not (server admins)."""
        gate, principal = _admin(request)
        if name == principal.name and (body.disabled or body.server_admin is False):
            raise InvalidArgument("you cannot disable yourself or drop your own admin rights")
        account = gate.auth.update_account(
            name, disabled=body.disabled, server_admin=body.server_admin
        )
        gate.forget(name)
        _audit(
            gate,
            request,
            principal.name,
            "user.update",
            "user",
            name,
            body.model_dump(exclude_none=True),
        )
        return _json(_account_json(account))

    @router.put(
        AUTH_PREFIX + "/users/{name}/password", openapi_extra=_perm("self-or-server-admin")
    )
    def set_password(request: Request, name: str, body: PasswordBody) -> Response:
        """Set a user's password: your own (give current_password), or anyone's as a server
        admin."""
        gate = _gate(request)
        principal = principal_of(request)
        if principal.name != name or not principal.server_admin:
            if principal.name != name:
                gate.check(principal, "admin", ())
            elif not verify_password(body.current_password or "", gate.auth.password_hash(name)):
                raise PermissionDenied("current_password is wrong; give your current password")
        gate.auth.update_account(name, password_hash=hash_password(body.password))
        _audit(gate, request, principal.name, "user.password", "user", name)
        return Response(status_code=204)

    @router.get(AUTH_PREFIX + "/service-accounts", openapi_extra=_perm("server-admin"))
    def list_service_accounts(request: Request) -> Response:
        """The service accounts (server admins)."""
        gate, _ = _admin(request)
        return _json([_account_json(a) for a in gate.auth.list_accounts("service")])

    @router.post(
        AUTH_PREFIX + "/service-accounts", status_code=201, openapi_extra=_perm("server-admin")
    )
    def create_service_account(request: Request, body: AccountBody) -> Response:
        """Create a service account (tokens only, for serving and automation; server admins)."""
        gate, principal = _admin(request)
        if body.password is not None:
            raise InvalidArgument("a service account has no password; create a token for it")
        account = gate.auth.create_account(
            body.name, "service", server_admin=body.server_admin, created_at=now_ms()
        )
        _audit(gate, request, principal.name, "service.create", "service", account.name)
        return _json(_account_json(account), 201)

    # --- tokens ------------------------------------------------------------------------------

    @router.post(AUTH_PREFIX + "/tokens", status_code=201, openapi_extra=_perm("signed-in"))
    def create_token(request: Request, body: TokenBody) -> Response:
        """Create an API token for yourself, or for a service account as a server admin. The
        secret is in the answer only: keep it."""
        gate = _gate(request)
        principal = principal_of(request)
        owner = body.owner or principal.name
        if owner != principal.name:
            gate.check(principal, "admin", ())
            if gate.auth.get_account(owner).kind != "service":
                raise InvalidArgument(
                    f"{owner!r} is a user: users create their own tokens; admins create tokens "
                    "for service accounts only"
                )
        secret = new_token()
        at = now_ms()
        expires = None if body.expires_days is None else at + int(body.expires_days * 86_400_000)
        token = gate.auth.create_token(
            owner, body.name, hash_token(secret), created_at=at, expires_at=expires
        )
        _audit(
            gate,
            request,
            principal.name,
            "token.create",
            "token",
            token.id,
            {"owner": owner, "name": token.name},
        )
        return _json({**_token_json(token), "token": secret}, 201)

    @router.get(AUTH_PREFIX + "/tokens", openapi_extra=_perm("signed-in"))
    def list_tokens(request: Request, owner: str | None = None) -> Response:
        """Your API tokens (server admins: anyone's with ``owner``). Never the secrets."""
        gate = _gate(request)
        principal = principal_of(request)
        if owner is not None and owner != principal.name:
            gate.check(principal, "admin", ())
        found = gate.auth.list_tokens(owner or principal.name, kind="api")
        return _json([_token_json(t) for t in found])

    @router.delete(
        AUTH_PREFIX + "/tokens/{token_id}", openapi_extra=_perm("owner-or-server-admin")
    )
    def revoke_token(request: Request, token_id: str) -> Response:
        """Revoke a token: your own, or anyone's as a server admin."""
        gate = _gate(request)
        principal = principal_of(request)
        token = gate.auth.get_token(token_id)
        if token.owner != principal.name:
            gate.check(principal, "admin", ())
        gate.auth.revoke_token(token_id, now_ms())
        gate.forget(token_id=token_id)
        _audit(
            gate,
            request,
            principal.name,
            "token.revoke",
            "token",
            token_id,
            {"owner": token.owner},
        )
        return Response(status_code=204)

    @router.get(AUTH_PREFIX + "/audit", openapi_extra=_perm("server-admin"))
    def server_audit(
        request: Request, since: int | None = None, max_results: int = 100
    ) -> Response:
        """The server-wide audit trail (accounts and tokens), newest first (server admins)."""
        gate, _ = _admin(request)
        events = gate.auth.search_server_events(since=since, max_results=min(max_results, 10_000))
        return _json([{**e.__dict__, "details": dict(e.details)} for e in events])

    # --- project roles -----------------------------------------------------------------------

    def _project(request: Request, project_id: str) -> tuple[TokenGate, Principal, str]:
        gate = _gate(request)
        principal = principal_of(request)
        pid = request.app.state.resolver.project(project_id)
        gate.check(principal, "admin", [pid])
        return gate, principal, pid

    @router.get(AUTH_PREFIX + "/projects/{project_id}/members", openapi_extra=_perm("admin"))
    def list_members(request: Request, project_id: str) -> Response:
        """The accounts with a role in a project (project admins)."""
        gate, _, pid = _project(request, project_id)
        return _json([m.__dict__ for m in gate.auth.list_members(pid)])

    @router.put(
        AUTH_PREFIX + "/projects/{project_id}/members/{name}", openapi_extra=_perm("admin")
    )
    def set_member(request: Request, project_id: str, name: str, body: RoleBody) -> Response:
        """Give an account a role in a project: viewer, editor or admin (project admins)."""
        gate, principal, pid = _project(request, project_id)
        member = gate.auth.set_role(pid, name, check_role(body.role))
        gate.forget(name)
        request.app.state.store.log_audit_event(
            pid,
            actor=principal.name,
            action="role.set",
            object_type="role",
            object_name=name,
            details={"role": member.role},
            origin=request_origin(request),
        )
        return _json(member.__dict__)

    @router.delete(
        AUTH_PREFIX + "/projects/{project_id}/members/{name}", openapi_extra=_perm("admin")
    )
    def remove_member(request: Request, project_id: str, name: str) -> Response:
        """Take an account's role in a project away (project admins)."""
        gate, principal, pid = _project(request, project_id)
        if gate.auth.remove_role(pid, name):
            gate.forget(name)
            request.app.state.store.log_audit_event(
                pid,
                actor=principal.name,
                action="role.remove",
                object_type="role",
                object_name=name,
                origin=request_origin(request),
            )
        return Response(status_code=204)

    return router
