"""Users, API tokens, sessions and per-project roles of ``loopml server --auth``.

:class:`TokenGate` is the server's :class:`~loopml.server.principal.Gate` with ``--auth``: a
request carries an API token (``Authorization: Bearer lml_...``) or the web UI's session cookie
(``loopml_session``, itself a token of kind ``session``). Authenticating is one SHA-256 and a
dictionary lookup: tokens found by hash and each account's roles are cached for
:data:`CACHE_SECONDS`, so a revocation, a disabled account or a changed role made through
another server process takes effect within that time (at once in the process that made it).
A token's last use is written at most once a minute.

There are no default credentials: the first server to start on a database without users prints
a one-time bootstrap token that creates the first admin (``POST /api/v1/auth/bootstrap``).
Sign-in attempts are rate-limited per user name and per client address in each process (each
replica behind a load balancer counts on its own).

:func:`build_auth_router` adds the ``/api/v1/auth`` routes (and a plain ``/login`` page); each
route checks its own permission through the gate and names it in ``x-loopml-permission``.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, RedirectResponse, Response

from loopml.entities import now_ms
from loopml.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from loopml.server.api import error_response, principal_of, request_origin
from loopml.server.principal import Gate, Permission, Principal
from loopml.store.auth import (
    Account,
    ApiToken,
    AuthStore,
    ServerEvent,
    check_account_name,
    check_role,
    hash_password,
    hash_token,
    new_token,
    role_allows,
    verify_password,
)
from loopml.store.rest.operations import API_PREFIX

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from loopml.server.settings import ServerSettings
    from loopml.store.base import Store

__all__ = ["CACHE_SECONDS", "SESSION_COOKIE", "SlidingWindow", "TokenGate", "build_auth_router"]

SESSION_COOKIE = "loopml_session"
#: How long a token found by hash, and an account's roles, are trusted without asking the store.
CACHE_SECONDS = 5.0
_TOUCH_MS = 60_000  # write a token's last use at most this often
_CACHE_SIZE = 10_000
_AUTH = API_PREFIX + "/auth"
_NEEDS_AUTH = "accounts and tokens exist only on a server started with --auth"
_SIGN_IN = (
    "send an API token as 'Authorization: Bearer <token>' (LOOPML_TRACKING_TOKEN for clients; "
    "create one with `loopml users token NAME --name N`) or sign in at /login"
)


def auth_store_of(store: Store) -> AuthStore:
    """The store's :class:`AuthStore` (``store.auth``).

    Raises:
        InvalidArgument: the store keeps no accounts (a REST store).
    """
    found = getattr(store, "auth", None)
    if not isinstance(found, AuthStore):
        raise InvalidArgument(
            f"the store {getattr(store, 'uri', store)!r} keeps no accounts; --auth needs a "
            "SQL store (postgresql://... or sqlite:///file.db)"
        )
    return found


def _tell(message: str) -> None:
    """Write to the server's stderr (never to a log file: the bootstrap token is a secret)."""
    sys.stderr.write(message)
    sys.stderr.flush()


class SlidingWindow:
    """At most ``limit`` hits per key in any ``window`` seconds (in this process only)."""

    def __init__(
        self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Count a hit; 0.0 if allowed, else the seconds until the next one would be."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.001, hits[0] + self.window - now)
            hits.append(now)
            if len(self._hits) > _CACHE_SIZE:  # forget idle keys
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - 60}
            return 0.0


class TokenGate:
    """The gate of ``--auth``: API tokens and session cookies, per-project roles.

    Args:
        store: the server's store; its ``auth`` keeps the accounts unless ``auth`` is given.
        settings: the server's settings (session length, sign-in rate limit).
        auth: the accounts, tokens and roles (default: ``store.auth``).
        cache_seconds: how long token and role lookups are reused (:data:`CACHE_SECONDS`).
    """

    enabled = True

    def __init__(
        self,
        store: Store,
        settings: ServerSettings,
        *,
        auth: AuthStore | None = None,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        self.store = store
        self.settings = settings
        self.auth = auth if auth is not None else auth_store_of(store)
        self.cache_seconds = cache_seconds
        self.sign_ins = SlidingWindow(settings.login_attempts_per_minute)
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, ApiToken, Account]] = {}
        self._roles: dict[str, tuple[float, dict[str, str]]] = {}
        self._offer_bootstrap()

    # --- bootstrap -----------------------------------------------------------------------------

    def _offer_bootstrap(self) -> None:
        if self.auth.count_users():
            return
        secret = new_token()
        if self.auth.claim_bootstrap(hash_token(secret), now_ms()):
            _tell(
                "\nloopml server: no users yet. Create the first admin (once) with this one-time "
                f"bootstrap token:\n\n    {secret}\n\n  curl -X POST http://HOST:PORT"
                f"{_AUTH}/bootstrap -H 'Content-Type: application/json' -d "
                '\'{"token": "<token>", "username": "admin", "password": "<password>"}\'\n'
                "  or: loopml users create admin --admin --password-stdin --store <store URI>\n"
            )
        elif self.auth.bootstrap_pending():
            _tell(
                "loopml server: no users yet; the bootstrap token was printed by the server "
                "process that started first. If it is lost, create an admin with: loopml users "
                "create admin --admin --password-stdin --store <store URI>\n"
            )

    # --- the Gate protocol ---------------------------------------------------------------------

    def authenticate(self, request: HTTPConnection) -> Principal:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise Unauthenticated(
                    f"the Authorization header is not a bearer token; {_SIGN_IN}"
                )
            kind = "api"
        else:
            secret = request.cookies.get(SESSION_COOKIE, "")
            kind = "session"
            if not secret:
                raise Unauthenticated(f"this server asks who you are: {_SIGN_IN}")
        token, account = self._token(secret.strip(), kind)
        request.state.token = token
        return Principal(account.name, account.kind, server_admin=account.server_admin)

    def _token(self, secret: str, kind: str) -> tuple[ApiToken, Account]:
        digest = hash_token(secret)
        now = time.monotonic()
        cached = self._tokens.get(digest)
        if cached is not None and cached[0] > now:
            _, token, account = cached
        else:
            found = self.auth.lookup_token(digest)
            if found is None:
                raise Unauthenticated(f"the token is not valid (mistyped or deleted?); {_SIGN_IN}")
            token, account = found
            with self._lock:
                if len(self._tokens) >= _CACHE_SIZE:
                    self._tokens.clear()
                self._tokens[digest] = (now + self.cache_seconds, token, account)
        at = now_ms()
        what = "session" if token.kind == "session" else "token"
        if token.kind != kind:
            raise Unauthenticated(
                f"a {what} cannot be used as a {kind} credential here; {_SIGN_IN}"
            )
        if token.revoked_at is not None:
            raise Unauthenticated(f"this {what} was revoked; {_SIGN_IN}")
        if not token.usable(at):
            raise Unauthenticated(f"this {what} has expired; {_SIGN_IN}")
        if account.disabled:
            raise Unauthenticated(
                f"account {account.name!r} is disabled; ask a server admin to enable it"
            )
        if token.last_used_at is None or at - token.last_used_at >= _TOUCH_MS:
            self.auth.touch_token(token.id, at)
            token = ApiToken(**{**token.__dict__, "last_used_at": at})
            with self._lock:
                self._tokens[digest] = (now + self.cache_seconds, token, account)
        return token, account

    def roles(self, name: str) -> dict[str, str]:
        """``name``'s roles by project id (cached for :attr:`cache_seconds`)."""
        now = time.monotonic()
        cached = self._roles.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        roles = self.auth.roles_of(name)
        with self._lock:
            if len(self._roles) >= _CACHE_SIZE:
                self._roles.clear()
            self._roles[name] = (now + self.cache_seconds, roles)
        return roles

    def check(
        self, principal: Principal, permission: Permission, project_ids: Collection[str]
    ) -> None:
        if principal.server_admin:
            return
        if not project_ids:
            raise PermissionDenied(
                f"{principal.name!r} may not do this: it is a server-wide action, for server "
                "admins only; ask one to do it or to make you a server admin"
            )
        roles = self.roles(principal.name)
        for project_id in project_ids:
            role = roles.get(project_id)
            if not role_allows(role, permission):
                needed = {"read": "viewer", "write": "editor", "admin": "admin"}[permission]
                has = "no role" if role is None else f"the {role} role"
                raise PermissionDenied(
                    f"{principal.name!r} has {has} in project {project_id!r}, and this needs "
                    f"{needed}; ask a project admin: loopml users grant {principal.name} "
                    f"{project_id} {needed}"
                )

    def readable_projects(self, principal: Principal) -> frozenset[str] | None:
        if principal.server_admin:
            return None
        return frozenset(self.roles(principal.name))

    def grant_creator(self, principal: Principal, project_id: str) -> None:
        if principal.kind in ("user", "service"):
            self.auth.set_role(project_id, principal.name, "admin")
            self.forget(principal.name)

    def forget(self, name: str | None = None, token_id: str | None = None) -> None:
        """Drop cached lookups of an account (its tokens and roles) or of one token, after a
        change made in this process."""
        with self._lock:
            if name is not None:
                self._roles.pop(name, None)
            self._tokens = {
                k: v for k, v in self._tokens.items() if v[2].name != name and v[1].id != token_id
            }

    # --- sign-in -------------------------------------------------------------------------------

    def sign_in(self, username: str, password: str, origin: str) -> tuple[str, ApiToken]:
        """Check a user's password and open a session; returns (secret, token).

        Raises:
            RateLimited: too many attempts for this user or from this address in a minute.
            Unauthenticated: a wrong user name or password, or a disabled account.
        """
        for key in (f"user:{username.lower()}", f"addr:{origin}"):
            wait = self.sign_ins.hit(key)
            if wait:
                raise RateLimited(
                    f"too many sign-in attempts for {key.split(':', 1)[0]} "
                    f"{key.split(':', 1)[1]!r}; try again in {int(wait) + 1} seconds"
                )
        stored = self.auth.password_hash(username) if _valid_name(username) else None
        ok = verify_password(password, stored)  # costs the same with or without a user
        account = self._account(username) if ok else None
        if account is None or account.disabled:
            raise Unauthenticated("wrong user name or password (or a disabled account)")
        secret = new_token()
        at = now_ms()
        token = self.auth.create_token(
            account.name,
            "web session",
            hash_token(secret),
            kind="session",
            created_at=at,
            expires_at=at + int(self.settings.session_hours * 3_600_000),
        )
        return secret, token

    def _account(self, name: str) -> Account | None:
        try:
            return self.auth.get_account(name)
        except NotFound:
            return None


def _valid_name(name: str) -> bool:
    try:
        check_account_name(name)
    except InvalidArgument:
        return False
    return True


# --- the routes --------------------------------------------------------------------------------


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
        raise InvalidArgument(f"{_NEEDS_AUTH}: start the server with --auth")
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

    @router.get(_AUTH + "/whoami", openapi_extra=_perm("signed-in"))
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

    @router.post(_AUTH + "/bootstrap", openapi_extra=_perm("public"))
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

    @router.post(_AUTH + "/login", openapi_extra=_perm("public"))
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

    @router.post(_AUTH + "/logout", openapi_extra=_perm("signed-in"))
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

    @router.get(_AUTH + "/users", openapi_extra=_perm("server-admin"))
    def list_users(request: Request) -> Response:
        """Every user and service account (server admins)."""
        gate, _ = _admin(request)
        return _json([_account_json(a) for a in gate.auth.list_accounts()])

    @router.post(_AUTH + "/users", status_code=201, openapi_extra=_perm("server-admin"))
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

    @router.get(_AUTH + "/users/{name}", openapi_extra=_perm("self-or-server-admin"))
    def get_user(request: Request, name: str) -> Response:
        """One account (the caller's own, or any for server admins)."""
        gate = _gate(request)
        principal = principal_of(request)
        if principal.name != name:
            gate.check(principal, "admin", ())
        return _json(_account_json(gate.auth.get_account(name)))

    @router.patch(_AUTH + "/users/{name}", openapi_extra=_perm("server-admin"))
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

    @router.put(_AUTH + "/users/{name}/password", openapi_extra=_perm("self-or-server-admin"))
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

    @router.get(_AUTH + "/service-accounts", openapi_extra=_perm("server-admin"))
    def list_service_accounts(request: Request) -> Response:
        """The service accounts (server admins)."""
        gate, _ = _admin(request)
        return _json([_account_json(a) for a in gate.auth.list_accounts("service")])

    @router.post(_AUTH + "/service-accounts", status_code=201, openapi_extra=_perm("server-admin"))
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

    @router.post(_AUTH + "/tokens", status_code=201, openapi_extra=_perm("signed-in"))
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

    @router.get(_AUTH + "/tokens", openapi_extra=_perm("signed-in"))
    def list_tokens(request: Request, owner: str | None = None) -> Response:
        """Your API tokens (server admins: anyone's with ``owner``). Never the secrets."""
        gate = _gate(request)
        principal = principal_of(request)
        if owner is not None and owner != principal.name:
            gate.check(principal, "admin", ())
        found = gate.auth.list_tokens(owner or principal.name, kind="api")
        return _json([_token_json(t) for t in found])

    @router.delete(_AUTH + "/tokens/{token_id}", openapi_extra=_perm("owner-or-server-admin"))
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

    @router.get(_AUTH + "/audit", openapi_extra=_perm("server-admin"))
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

    @router.get(_AUTH + "/projects/{project_id}/members", openapi_extra=_perm("admin"))
    def list_members(request: Request, project_id: str) -> Response:
        """The accounts with a role in a project (project admins)."""
        gate, _, pid = _project(request, project_id)
        return _json([m.__dict__ for m in gate.auth.list_members(pid)])

    @router.put(_AUTH + "/projects/{project_id}/members/{name}", openapi_extra=_perm("admin"))
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

    @router.delete(_AUTH + "/projects/{project_id}/members/{name}", openapi_extra=_perm("admin"))
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
