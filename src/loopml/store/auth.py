"""The accounts of ``loopml server --auth``: users, service accounts, API tokens, per-project
roles, the one-time bootstrap token, the server-wide audit trail and the count of sign-in
attempts.

:class:`AuthStore` is the contract, with an in-memory reference implementation
(:mod:`loopml.store.memory_auth`) and a SQL one (:mod:`loopml.store.sql.auth`) in the metadata
store's database; a store that has one offers it as ``store.auth``. The conformance suite is
:mod:`loopml.testing.auth_suite`.

Secrets never reach the store: an API token is 32 random bytes (``lml_...``) kept only as its
SHA-256 (fast, and enough for a high-entropy secret; a lookup is by hash), and a password is
kept as a salted scrypt hash (:func:`hash_password`, :func:`verify_password`).
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from loopml.errors import InvalidArgument, NotFound

__all__ = [
    "MAX_ATTEMPT_KEY",
    "ROLES",
    "TOKEN_PREFIX",
    "Account",
    "AccountKind",
    "ApiToken",
    "AuthStore",
    "Member",
    "ServerEvent",
    "TokenKind",
    "account_not_found",
    "check_account_name",
    "check_password_for",
    "check_role",
    "hash_password",
    "hash_token",
    "new_token",
    "role_allows",
    "token_not_found",
    "verify_password",
]

AccountKind = Literal["user", "service"]
TokenKind = Literal["api", "session"]
#: Project roles, weakest first: a viewer reads, an editor writes, an admin also deletes and
#: manages the project's members.
ROLES: tuple[str, ...] = ("viewer", "editor", "admin")
_NEEDED = {"read": "viewer", "write": "editor", "admin": "admin"}
TOKEN_PREFIX = "lml_"  # noqa: S105 - a prefix, not a secret
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MAX_ATTEMPT_KEY = 320
_SCRYPT = (2**14, 8, 1)  # n, r, p: about 16 MiB and tens of milliseconds per hash


@dataclass(frozen=True)
class Account:
    """A user or a service account (no password: tokens only).

    Attributes:
        name: unique, 1..64 of letters, digits and ``_ . @ -``; the actor of audit events.
        kind: ``user`` or ``service``.
        server_admin: may do everything in every project and manage accounts.
        disabled: may not sign in; their tokens stop working.
        has_password: whether a password is set (users only).
        created_at: ms since the epoch.
    """

    name: str
    kind: AccountKind
    server_admin: bool = False
    disabled: bool = False
    has_password: bool = False
    created_at: int = 0


@dataclass(frozen=True)
class ApiToken:
    """An API token or a web UI session (the secret itself is never stored).

    Attributes:
        id: 32 hex characters, how the token is named when listed or revoked.
        owner: the account name.
        name: what it is for (``ci``, ``serving``...).
        kind: ``api`` or ``session``.
        created_at, expires_at, last_used_at, revoked_at: ms since the epoch, or None.
    """

    id: str
    owner: str
    name: str
    kind: TokenKind = "api"
    created_at: int = 0
    expires_at: int | None = None
    last_used_at: int | None = None
    revoked_at: int | None = None

    def usable(self, now: int) -> bool:
        """Not revoked and not expired at ``now`` (ms)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class Member:
    """An account's role on a project."""

    project_id: str
    name: str
    role: str


@dataclass(frozen=True)
class ServerEvent:
    """A server-wide audit event: accounts and tokens (not project-scoped)."""

    timestamp: int
    actor: str
    action: str
    object_type: str
    object_name: str
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    origin: str = "local"


def check_account_name(value: object) -> str:
    """An account name: 1..64 of letters, digits and ``_ . @ -``, starting alphanumeric."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise InvalidArgument(
            f"account name {value!r:.80} is not valid: use 1 to 64 letters, digits and "
            "'_ . @ -', starting with a letter or digit"
        )
    return value


def check_role(value: object) -> str:
    """A project role: ``viewer``, ``editor`` or ``admin``."""
    if value not in ROLES:
        raise InvalidArgument(f"role {value!r:.40} is not one of {', '.join(ROLES)}")
    assert isinstance(value, str)
    return value


def role_allows(role: str | None, permission: str) -> bool:
    """Whether ``role`` (or no role) allows ``permission`` (``read``, ``write``, ``admin``)."""
    if role is None:
        return False
    return ROLES.index(role) >= ROLES.index(_NEEDED[permission])


def new_token() -> str:
    """A new API token secret: ``lml_`` and 43 URL-safe characters (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password``: ``scrypt$n$r$p$salt$hash`` (hex)."""
    if not isinstance(password, str) or len(password) < 8 or len(password) > 1024:
        raise InvalidArgument("a password must be 8 to 1024 characters long")
    n, r, p = _SCRYPT
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches the ``stored`` hash (always costs one hash, even without
    one, so that a wrong user name takes as long as a wrong password)."""
    try:
        _, n, r, p, salt, digest = (stored or "").split("$")
        params = (int(n), int(r), int(p))
        salt_bytes, expected = bytes.fromhex(salt), bytes.fromhex(digest)
    except ValueError:
        params, salt_bytes, expected = _SCRYPT, b"\0" * 16, b""
    actual = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt_bytes,
        n=params[0],
        r=params[1],
        p=params[2],
        dklen=32,
    )
    return bool(expected) and hmac.compare_digest(actual, expected)


class AuthStore(abc.ABC):
    """Accounts, tokens and roles of one server database.

    Contract, for every implementation:

    * Thread-safe; several processes on one database see one state (the SQL implementation
      keeps everything in the database; each method is one transaction).
    * Returned objects are frozen and never change afterwards.
    * Names are checked with :func:`check_account_name` and roles with :func:`check_role`
      (:class:`~loopml.errors.InvalidArgument`). A missing account or token raises
      :class:`~loopml.errors.NotFound`; creating an existing account raises
      :class:`~loopml.errors.AlreadyExists`.
    * Secrets are passed in hashed (:func:`hash_token`, :func:`hash_password`); the store never
      sees a token or a password.
    * :meth:`claim_bootstrap` and :meth:`bootstrap_admin` are atomic: of many servers starting
      at once only one bootstrap token becomes valid, and it creates one admin, once.
    * Times are ms since the epoch and come from the caller.
    * :meth:`count_attempt` is atomic: attempts counted at once through any number of server
      processes are all counted.
    """

    # --- accounts ------------------------------------------------------------------------------

    def create_account(
        self,
        name: str,
        kind: AccountKind,
        *,
        server_admin: bool = False,
        password_hash: str | None = None,
        created_at: int,
    ) -> Account:
        """Create a user or a service account (a service account has no password).

        Raises:
            AlreadyExists: an account has this name.
            InvalidArgument: a bad name or kind, or a password for a service account.
        """
        check_account_name(name)
        check_kind(kind, ("user", "service"), "account kind")
        check_password_for(kind, password_hash)
        return self._create_account(name, kind, bool(server_admin), password_hash, created_at)

    @abc.abstractmethod
    def _create_account(
        self,
        name: str,
        kind: AccountKind,
        server_admin: bool,
        password_hash: str | None,
        created_at: int,
    ) -> Account:
        """:meth:`create_account` on checked arguments."""

    @abc.abstractmethod
    def get_account(self, name: str) -> Account:
        """The account ``name``.

        Raises:
            NotFound: there is none.
        """

    @abc.abstractmethod
    def list_accounts(self, kind: AccountKind | None = None) -> list[Account]:
        """Every account (of ``kind``), by name."""

    @abc.abstractmethod
    def update_account(
        self,
        name: str,
        *,
        server_admin: bool | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> Account:
        """Change what is given (None: unchanged); returns the account after the change.

        Raises:
            NotFound: there is no such account.
            InvalidArgument: a password for a service account.
        """

    @abc.abstractmethod
    def password_hash(self, name: str) -> str | None:
        """The stored password hash of ``name``, or None (no such user, or no password)."""

    @abc.abstractmethod
    def count_users(self) -> int:
        """How many accounts of kind ``user`` exist."""

    # --- tokens --------------------------------------------------------------------------------

    def create_token(
        self,
        owner: str,
        name: str,
        token_hash: str,
        *,
        kind: TokenKind = "api",
        created_at: int,
        expires_at: int | None = None,
    ) -> ApiToken:
        """Store a new token of ``owner`` by its hash.

        Raises:
            NotFound: there is no such account.
            AlreadyExists: a token has this hash.
            InvalidArgument: a bad name, kind or hash.
        """
        check_token_name(name)
        check_token_hash(token_hash)
        check_kind(kind, ("api", "session"), "token kind")
        return self._create_token(owner, name, token_hash, kind, created_at, expires_at)

    @abc.abstractmethod
    def _create_token(
        self,
        owner: str,
        name: str,
        token_hash: str,
        kind: TokenKind,
        created_at: int,
        expires_at: int | None,
    ) -> ApiToken:
        """:meth:`create_token` on checked arguments."""

    @abc.abstractmethod
    def lookup_token(self, token_hash: str) -> tuple[ApiToken, Account] | None:
        """The token with this hash and its owner (one query), or None. Revoked and expired
        tokens are returned too: the caller decides."""

    @abc.abstractmethod
    def get_token(self, token_id: str) -> ApiToken:
        """The token ``token_id``.

        Raises:
            NotFound: there is none.
        """

    @abc.abstractmethod
    def list_tokens(
        self, owner: str | None = None, *, kind: TokenKind | None = None
    ) -> list[ApiToken]:
        """Tokens (of ``owner``, of ``kind``), oldest first."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str, at: int) -> ApiToken:
        """Revoke a token (a second revocation keeps the first time).

        Raises:
            NotFound: there is no such token.
        """

    @abc.abstractmethod
    def touch_token(self, token_id: str, at: int) -> None:
        """Record that the token was used at ``at`` (callers do it at most once a minute)."""

    # --- roles ---------------------------------------------------------------------------------

    def set_role(self, project_id: str, name: str, role: str) -> Member:
        """Give ``name`` ``role`` on the project (replacing any role it had).

        Raises:
            NotFound: there is no such account. ProjectNotFound: no such project (SQL).
            InvalidArgument: a bad role.
        """
        return self._set_role(project_id, name, check_role(role))

    @abc.abstractmethod
    def _set_role(self, project_id: str, name: str, role: str) -> Member:
        """:meth:`set_role` with a checked role."""

    @abc.abstractmethod
    def remove_role(self, project_id: str, name: str) -> bool:
        """Take ``name``'s role on the project away; whether it had one."""

    @abc.abstractmethod
    def list_members(self, project_id: str) -> list[Member]:
        """The accounts with a role on the project, by name."""

    @abc.abstractmethod
    def roles_of(self, name: str) -> dict[str, str]:
        """``name``'s roles: project id to role."""

    # --- bootstrap -----------------------------------------------------------------------------

    def claim_bootstrap(self, token_hash: str, created_at: int) -> bool:
        """Make ``token_hash`` the bootstrap token if there is none yet (atomic); whether it
        became the one. A consumed bootstrap token is never replaced."""
        return self._claim_bootstrap(check_token_hash(token_hash), created_at)

    @abc.abstractmethod
    def _claim_bootstrap(self, token_hash: str, created_at: int) -> bool:
        """:meth:`claim_bootstrap` with a checked hash."""

    @abc.abstractmethod
    def bootstrap_pending(self) -> bool:
        """Whether a bootstrap token waits to be used."""

    def bootstrap_admin(
        self, token_hash: str, name: str, password_hash: str, at: int
    ) -> Account | None:
        """Consume the bootstrap token and create the first admin user, atomically; None when
        the hash is not that of a pending bootstrap token (wrong, or already used).

        Raises:
            AlreadyExists: an account has this name (the token stays pending).
            InvalidArgument: a bad name.
        """
        return self._bootstrap_admin(token_hash, check_account_name(name), password_hash, at)

    @abc.abstractmethod
    def _bootstrap_admin(
        self, token_hash: str, name: str, password_hash: str, at: int
    ) -> Account | None:
        """:meth:`bootstrap_admin` with a checked name."""

    # --- sign-in attempts ----------------------------------------------------------------------

    def count_attempt(self, key: str, window_start: int, window_ms: int) -> int:
        """Count one sign-in attempt of ``key`` (``"user:ann"``, ``"addr:10.0.0.7"``) in the
        window of ``window_ms`` that starts at ``window_start`` (ms), atomically; returns the
        attempts of this window, this one included. Earlier windows (of every key) are
        forgotten.

        Raises:
            InvalidArgument: an empty key or one over 320 characters, a negative start, a
                window under 1 ms, or a start that is not a multiple of the window.
        """
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_ATTEMPT_KEY:
            raise InvalidArgument(f"an attempt key is 1 to {MAX_ATTEMPT_KEY} characters")
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 1:
            raise InvalidArgument(f"window_ms must be a positive integer, not {window_ms!r}")
        if (
            isinstance(window_start, bool)
            or not isinstance(window_start, int)
            or window_start < 0
            or window_start % window_ms
        ):
            raise InvalidArgument(
                f"window_start must be a multiple of window_ms {window_ms}, not {window_start!r}"
            )
        return self._count_attempt(key, window_start, window_ms)

    @abc.abstractmethod
    def _count_attempt(self, key: str, window_start: int, window_ms: int) -> int:
        """:meth:`count_attempt` on checked arguments."""

    # --- server audit trail --------------------------------------------------------------------

    @abc.abstractmethod
    def log_server_event(self, event: ServerEvent) -> None:
        """Record a server-wide audit event (account and token changes)."""

    @abc.abstractmethod
    def search_server_events(
        self, *, since: int | None = None, max_results: int = 100
    ) -> list[ServerEvent]:
        """Server-wide audit events, newest first (then latest written first)."""


def account_not_found(name: str) -> NotFound:
    """The error for a missing account (every backend says the same)."""
    return NotFound(
        f"account {name!r} does not exist; list accounts with `loopml users list` or create it "
        "with `loopml users create NAME`"
    )


def token_not_found(token_id: str) -> NotFound:
    """The error for a missing token."""
    return NotFound(f"token {token_id!r} does not exist; list tokens with GET /api/v1/auth/tokens")


def check_password_for(kind: str, password_hash: str | None) -> None:
    """A service account has no password."""
    if kind == "service" and password_hash is not None:
        raise InvalidArgument("a service account has no password; it signs in with API tokens")


def check_token_hash(value: object) -> str:
    """A token hash: 64 lowercase hex characters."""
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise InvalidArgument("a token hash must be 64 lowercase hex characters (hash_token)")
    return value


def check_token_name(value: object) -> str:
    """A token name: 1..256 printable characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise InvalidArgument(f"token name {value!r:.80} must be 1 to 256 characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidArgument(f"token name {value!r:.80} contains control characters")
    return value


def check_kind(value: object, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InvalidArgument(f"{what} {value!r:.40} is not one of {', '.join(allowed)}")
    assert isinstance(value, str)
    return value
