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
Sign-in attempts are rate-limited per user name and per client address, counted in the store
(:class:`AttemptLimit`), so that replicas behind a load balancer share one limit.

The ``/api/v1/auth`` routes that use it are in :mod:`loopml.server.auth_routes`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from loopml.entities import now_ms
from loopml.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
)
from loopml.server.principal import Permission, Principal
from loopml.store.auth import (
    MAX_ATTEMPT_KEY,
    Account,
    ApiToken,
    AuthStore,
    check_account_name,
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

__all__ = ["CACHE_SECONDS", "SESSION_COOKIE", "AttemptLimit", "TokenGate"]

SESSION_COOKIE = "loopml_session"
#: How long a token found by hash, and an account's roles, are trusted without asking the store.
CACHE_SECONDS = 5.0
_TOUCH_MS = 60_000  # write a token's last use at most this often
_CACHE_SIZE = 10_000
AUTH_PREFIX = API_PREFIX + "/auth"
NEEDS_AUTH = "accounts and tokens exist only on a server started with --auth"
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


class AttemptLimit:
    """At most ``limit`` attempts per key in each minute (``window`` seconds, aligned to the
    epoch), counted in the auth store: every server process on the database adds to one count.
    An attempt over the limit is counted too, so a caller that keeps trying stays refused
    until the window ends.

    Args:
        auth: where the attempts are counted.
        limit: attempts allowed per key and window.
        window: the window's length in seconds.
        clock: seconds since the epoch (every process must agree on the window).
    """

    def __init__(
        self,
        auth: AuthStore,
        limit: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.auth, self.limit, self._clock = auth, limit, clock
        self.window_ms = max(1, int(window * 1000))

    def hit(self, key: str) -> float:
        """Count an attempt of ``key``; 0.0 if allowed, else the seconds until the window
        ends (when the next attempt may be allowed)."""
        now = int(self._clock() * 1000)
        start = now - now % self.window_ms
        if self.auth.count_attempt(key[:MAX_ATTEMPT_KEY], start, self.window_ms) <= self.limit:
            return 0.0
        return max(0.001, (start + self.window_ms - now) / 1000)


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
        self.sign_ins = AttemptLimit(self.auth, settings.login_attempts_per_minute)
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
                f"{AUTH_PREFIX}/bootstrap -H 'Content-Type: application/json' -d "
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
