"""The in-memory :class:`~loopml.store.auth.AuthStore`: the reference implementation (dicts
behind one lock), what ``InMemoryStore().auth`` returns."""

from __future__ import annotations

import threading
from dataclasses import replace

from loopml.errors import AlreadyExists
from loopml.store.auth import (
    Account,
    AccountKind,
    ApiToken,
    AuthStore,
    Member,
    ServerEvent,
    TokenKind,
    account_not_found,
    check_password_for,
    token_not_found,
)
from loopml.store.base import new_id

__all__ = ["InMemoryAuthStore"]


class InMemoryAuthStore(AuthStore):
    """Accounts, tokens and roles in process memory (thread-safe; nothing survives)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._accounts: dict[str, Account] = {}
        self._passwords: dict[str, str] = {}
        self._tokens: dict[str, ApiToken] = {}  # by id
        self._by_hash: dict[str, str] = {}  # token hash -> id
        self._roles: dict[tuple[str, str], str] = {}  # (project id, name) -> role
        self._bootstrap: tuple[str, int | None] | None = None  # (hash, consumed at)
        self._events: list[ServerEvent] = []
        self._attempts: dict[tuple[str, int], int] = {}  # (key, window start) -> attempts

    # --- accounts ------------------------------------------------------------------------------

    def _create_account(
        self,
        name: str,
        kind: AccountKind,
        server_admin: bool,
        password_hash: str | None,
        created_at: int,
    ) -> Account:
        with self._lock:
            return self._add_account(name, kind, server_admin, password_hash, created_at)

    def _add_account(
        self,
        name: str,
        kind: AccountKind,
        server_admin: bool,
        password_hash: str | None,
        created_at: int,
    ) -> Account:
        if name in self._accounts:
            raise AlreadyExists(f"account {name!r} already exists; pick another name")
        account = Account(
            name, kind, bool(server_admin), False, password_hash is not None, created_at
        )
        self._accounts[name] = account
        if password_hash is not None:
            self._passwords[name] = password_hash
        return account

    def get_account(self, name: str) -> Account:
        with self._lock:
            found = self._accounts.get(name)
        if found is None:
            raise account_not_found(name)
        return found

    def list_accounts(self, kind: AccountKind | None = None) -> list[Account]:
        with self._lock:
            found = [a for a in self._accounts.values() if kind is None or a.kind == kind]
        return sorted(found, key=lambda a: a.name)

    def update_account(
        self,
        name: str,
        *,
        server_admin: bool | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> Account:
        with self._lock:
            account = self.get_account(name)
            check_password_for(account.kind, password_hash)
            if server_admin is not None:
                account = replace(account, server_admin=bool(server_admin))
            if disabled is not None:
                account = replace(account, disabled=bool(disabled))
            if password_hash is not None:
                self._passwords[name] = password_hash
                account = replace(account, has_password=True)
            self._accounts[name] = account
            return account

    def password_hash(self, name: str) -> str | None:
        with self._lock:
            return self._passwords.get(name)

    def count_users(self) -> int:
        with self._lock:
            return sum(1 for a in self._accounts.values() if a.kind == "user")

    # --- tokens --------------------------------------------------------------------------------

    def _create_token(
        self,
        owner: str,
        name: str,
        token_hash: str,
        kind: TokenKind,
        created_at: int,
        expires_at: int | None,
    ) -> ApiToken:
        with self._lock:
            self.get_account(owner)
            if token_hash in self._by_hash:
                raise AlreadyExists("a token with this hash exists; make a new token")
            token = ApiToken(new_id(), owner, name, kind, created_at, expires_at)
            self._tokens[token.id] = token
            self._by_hash[token_hash] = token.id
            return token

    def lookup_token(self, token_hash: str) -> tuple[ApiToken, Account] | None:
        with self._lock:
            token_id = self._by_hash.get(token_hash)
            if token_id is None:
                return None
            token = self._tokens[token_id]
            return token, self._accounts[token.owner]

    def get_token(self, token_id: str) -> ApiToken:
        with self._lock:
            found = self._tokens.get(token_id)
        if found is None:
            raise token_not_found(token_id)
        return found

    def list_tokens(
        self, owner: str | None = None, *, kind: TokenKind | None = None
    ) -> list[ApiToken]:
        with self._lock:
            found = [
                t
                for t in self._tokens.values()
                if (owner is None or t.owner == owner) and (kind is None or t.kind == kind)
            ]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    def revoke_token(self, token_id: str, at: int) -> ApiToken:
        with self._lock:
            token = self.get_token(token_id)
            if token.revoked_at is None:
                token = replace(token, revoked_at=at)
                self._tokens[token_id] = token
            return token

    def touch_token(self, token_id: str, at: int) -> None:
        with self._lock:
            token = self._tokens.get(token_id)
            if token is not None:
                self._tokens[token_id] = replace(token, last_used_at=at)

    # --- roles ---------------------------------------------------------------------------------

    def _set_role(self, project_id: str, name: str, role: str) -> Member:
        with self._lock:
            self.get_account(name)
            self._roles[(project_id, name)] = role
        return Member(project_id, name, role)

    def remove_role(self, project_id: str, name: str) -> bool:
        with self._lock:
            return self._roles.pop((project_id, name), None) is not None

    def list_members(self, project_id: str) -> list[Member]:
        with self._lock:
            found = [Member(p, n, r) for (p, n), r in self._roles.items() if p == project_id]
        return sorted(found, key=lambda m: m.name)

    def roles_of(self, name: str) -> dict[str, str]:
        with self._lock:
            return {p: r for (p, n), r in self._roles.items() if n == name}

    # --- bootstrap -----------------------------------------------------------------------------

    def _claim_bootstrap(self, token_hash: str, created_at: int) -> bool:
        with self._lock:
            if self._bootstrap is not None:
                return False
            self._bootstrap = (token_hash, None)
            return True

    def bootstrap_pending(self) -> bool:
        with self._lock:
            return self._bootstrap is not None and self._bootstrap[1] is None

    def _bootstrap_admin(
        self, token_hash: str, name: str, password_hash: str, at: int
    ) -> Account | None:
        with self._lock:
            if self._bootstrap is None or self._bootstrap[1] is not None:
                return None
            if self._bootstrap[0] != token_hash:
                return None
            account = self._add_account(name, "user", True, password_hash, at)
            self._bootstrap = (token_hash, at)
            return account

    # --- sign-in attempts ----------------------------------------------------------------------

    def _count_attempt(self, key: str, window_start: int, window_ms: int) -> int:
        with self._lock:
            if any(start < window_start for _, start in self._attempts):
                self._attempts = {k: v for k, v in self._attempts.items() if k[1] >= window_start}
            count = self._attempts.get((key, window_start), 0) + 1
            self._attempts[key, window_start] = count
            return count

    # --- server audit trail --------------------------------------------------------------------

    def log_server_event(self, event: ServerEvent) -> None:
        with self._lock:
            self._events.append(event)

    def search_server_events(
        self, *, since: int | None = None, max_results: int = 100
    ) -> list[ServerEvent]:
        with self._lock:
            found = [e for e in self._events if since is None or e.timestamp >= since]
        ordered = sorted(enumerate(found), key=lambda p: (p[1].timestamp, p[0]), reverse=True)
        return [e for _, e in ordered[: max(1, int(max_results))]]
