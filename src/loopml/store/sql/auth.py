"""The SQL :class:`~loopml.store.auth.AuthStore`, in the metadata store's database
(``SqlStore.auth``). Each method is one transaction; the bootstrap token is claimed by inserting
the one row of ``auth_bootstrap`` (the primary key decides between servers starting at once) and
consumed with a conditional update in the transaction that creates the first admin. A sign-in
attempt is counted with one upsert (``INSERT ... ON CONFLICT DO UPDATE``), atomic on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from loopml.errors import AlreadyExists, LoopError, ProjectNotFound, StoreError
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
from loopml.store.sql import engine as eng
from loopml.store.sql.tables import (
    accounts,
    api_tokens,
    auth_bootstrap,
    project_roles,
    projects,
    server_audit,
    sign_in_attempts,
)

__all__ = ["SqlAuthStore"]

T = TypeVar("T")
_ACCOUNT_COLS = (
    accounts.c.name,
    accounts.c.kind,
    accounts.c.server_admin,
    accounts.c.disabled,
    accounts.c.password_hash.is_not(None),
    accounts.c.created_at,
)
_TOKEN_COLS = (
    api_tokens.c.id,
    api_tokens.c.owner,
    api_tokens.c.name,
    api_tokens.c.kind,
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.last_used_at,
    api_tokens.c.revoked_at,
)


def _account(row: Any) -> Account:
    return Account(row[0], row[1], bool(row[2]), bool(row[3]), bool(row[4]), int(row[5]))


def _token(row: Any) -> ApiToken:
    return ApiToken(*row[:8])


class SqlAuthStore(AuthStore):
    """Accounts, tokens and roles in a SQL store's database.

    Args:
        engine: the store's engine (its schema is already checked).
        uri: the store's URI, with any password masked (for messages).
        insert: the dialect's INSERT (with its ``ON CONFLICT`` clauses).
    """

    def __init__(self, engine: Engine, uri: str, insert: Callable[..., Any]) -> None:
        self._engine = engine
        self._uri = uri
        self._insert = insert

    def _write(self, fn: Callable[[Connection], T]) -> T:
        try:
            with eng.write_transaction(self._engine) as conn:
                return fn(conn)
        except LoopError:
            raise
        except IntegrityError as exc:  # a concurrent writer made the same account or token
            raise AlreadyExists(f"it already exists (a concurrent change): {exc.orig}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"write to store {self._uri!r} failed: {exc}") from exc

    def _read(self, fn: Callable[[Connection], T]) -> T:
        try:
            with eng.read_transaction(self._engine) as conn:
                return fn(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"read from store {self._uri!r} failed: {exc}") from exc

    # --- accounts ------------------------------------------------------------------------------

    def _create_account(
        self,
        name: str,
        kind: AccountKind,
        server_admin: bool,
        password_hash: str | None,
        created_at: int,
    ) -> Account:

        def tx(conn: Connection) -> Account:
            return self._insert_account(conn, name, kind, server_admin, password_hash, created_at)

        return self._write(tx)

    @staticmethod
    def _insert_account(
        conn: Connection,
        name: str,
        kind: str,
        server_admin: bool,
        password_hash: str | None,
        created_at: int,
    ) -> Account:
        if conn.execute(sa.select(accounts.c.name).where(accounts.c.name == name)).first():
            raise AlreadyExists(f"account {name!r} already exists; pick another name")
        conn.execute(
            accounts.insert().values(
                name=name,
                kind=kind,
                server_admin=bool(server_admin),
                disabled=False,
                password_hash=password_hash,
                created_at=created_at,
            )
        )
        return Account(
            name,
            kind,  # type: ignore[arg-type]
            bool(server_admin),
            False,
            password_hash is not None,
            created_at,
        )

    def get_account(self, name: str) -> Account:
        def tx(conn: Connection) -> Account:
            row = conn.execute(sa.select(*_ACCOUNT_COLS).where(accounts.c.name == name)).first()
            if row is None:
                raise account_not_found(name)
            return _account(row)

        return self._read(tx)

    def list_accounts(self, kind: AccountKind | None = None) -> list[Account]:
        query = sa.select(*_ACCOUNT_COLS).order_by(accounts.c.name)
        if kind is not None:
            query = query.where(accounts.c.kind == kind)
        return self._read(lambda conn: [_account(r) for r in conn.execute(query)])

    def update_account(
        self,
        name: str,
        *,
        server_admin: bool | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> Account:
        values: dict[str, Any] = {}
        if server_admin is not None:
            values["server_admin"] = bool(server_admin)
        if disabled is not None:
            values["disabled"] = bool(disabled)
        if password_hash is not None:
            values["password_hash"] = password_hash

        def tx(conn: Connection) -> Account:
            row = conn.execute(sa.select(*_ACCOUNT_COLS).where(accounts.c.name == name)).first()
            if row is None:
                raise account_not_found(name)
            check_password_for(row[1], password_hash)
            if values:
                conn.execute(accounts.update().where(accounts.c.name == name).values(**values))
            row = conn.execute(sa.select(*_ACCOUNT_COLS).where(accounts.c.name == name)).one()
            return _account(row)

        return self._write(tx)

    def password_hash(self, name: str) -> str | None:
        query = sa.select(accounts.c.password_hash).where(
            accounts.c.name == name, accounts.c.kind == "user"
        )
        return self._read(lambda conn: conn.execute(query).scalar())

    def count_users(self) -> int:
        query = sa.select(sa.func.count()).select_from(accounts).where(accounts.c.kind == "user")
        return self._read(lambda conn: int(conn.execute(query).scalar_one()))

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
        token = ApiToken(new_id(), owner, name, kind, created_at, expires_at)

        def tx(conn: Connection) -> ApiToken:
            found = conn.execute(sa.select(accounts.c.name).where(accounts.c.name == owner))
            if found.first() is None:
                raise account_not_found(owner)
            conn.execute(
                api_tokens.insert().values(
                    id=token.id,
                    token_hash=token_hash,
                    owner=owner,
                    name=name,
                    kind=kind,
                    created_at=created_at,
                    expires_at=expires_at,
                )
            )
            return token

        return self._write(tx)

    def lookup_token(self, token_hash: str) -> tuple[ApiToken, Account] | None:
        query = (
            sa.select(*_TOKEN_COLS, *_ACCOUNT_COLS)
            .select_from(api_tokens.join(accounts, accounts.c.name == api_tokens.c.owner))
            .where(api_tokens.c.token_hash == token_hash)
        )

        def tx(conn: Connection) -> tuple[ApiToken, Account] | None:
            row = conn.execute(query).first()
            if row is None:
                return None
            return _token(row), _account(row[8:])

        return self._read(tx)

    def get_token(self, token_id: str) -> ApiToken:
        def tx(conn: Connection) -> ApiToken:
            row = conn.execute(sa.select(*_TOKEN_COLS).where(api_tokens.c.id == token_id)).first()
            if row is None:
                raise token_not_found(token_id)
            return _token(row)

        return self._read(tx)

    def list_tokens(
        self, owner: str | None = None, *, kind: TokenKind | None = None
    ) -> list[ApiToken]:
        query = sa.select(*_TOKEN_COLS).order_by(api_tokens.c.created_at, api_tokens.c.id)
        if owner is not None:
            query = query.where(api_tokens.c.owner == owner)
        if kind is not None:
            query = query.where(api_tokens.c.kind == kind)
        return self._read(lambda conn: [_token(r) for r in conn.execute(query)])

    def revoke_token(self, token_id: str, at: int) -> ApiToken:
        def tx(conn: Connection) -> ApiToken:
            conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            row = conn.execute(sa.select(*_TOKEN_COLS).where(api_tokens.c.id == token_id)).first()
            if row is None:
                raise token_not_found(token_id)
            return _token(row)

        return self._write(tx)

    def touch_token(self, token_id: str, at: int) -> None:
        statement = api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=at)
        self._write(lambda conn: conn.execute(statement))

    # --- roles ---------------------------------------------------------------------------------

    def _set_role(self, project_id: str, name: str, role: str) -> Member:

        def tx(conn: Connection) -> Member:
            if (
                conn.execute(sa.select(accounts.c.name).where(accounts.c.name == name)).first()
                is None
            ):
                raise account_not_found(name)
            found = sa.select(projects.c.project_id).where(projects.c.project_id == project_id)
            if conn.execute(found).first() is None:
                raise ProjectNotFound(project_id)
            where = (project_roles.c.project_id == project_id) & (project_roles.c.account == name)
            if conn.execute(project_roles.update().where(where).values(role=role)).rowcount == 0:
                conn.execute(
                    project_roles.insert().values(project_id=project_id, account=name, role=role)
                )
            return Member(project_id, name, role)

        return self._write(tx)

    def remove_role(self, project_id: str, name: str) -> bool:
        statement = project_roles.delete().where(
            project_roles.c.project_id == project_id, project_roles.c.account == name
        )
        return self._write(lambda conn: conn.execute(statement).rowcount > 0)

    def list_members(self, project_id: str) -> list[Member]:
        query = (
            sa.select(project_roles.c.project_id, project_roles.c.account, project_roles.c.role)
            .where(project_roles.c.project_id == project_id)
            .order_by(project_roles.c.account)
        )
        return self._read(lambda conn: [Member(*r) for r in conn.execute(query)])

    def roles_of(self, name: str) -> dict[str, str]:
        query = sa.select(project_roles.c.project_id, project_roles.c.role).where(
            project_roles.c.account == name
        )
        return self._read(lambda conn: {p: r for p, r in conn.execute(query)})

    # --- bootstrap -----------------------------------------------------------------------------

    def _claim_bootstrap(self, token_hash: str, created_at: int) -> bool:

        def tx(conn: Connection) -> bool:
            if conn.execute(sa.select(auth_bootstrap.c.id)).first() is not None:
                return False
            conn.execute(
                auth_bootstrap.insert().values(id=1, token_hash=token_hash, created_at=created_at)
            )
            return True

        try:
            return self._write(tx)
        except AlreadyExists:  # another server claimed it first
            return False

    def bootstrap_pending(self) -> bool:
        query = sa.select(auth_bootstrap.c.id).where(auth_bootstrap.c.consumed_at.is_(None))
        return self._read(lambda conn: conn.execute(query).first() is not None)

    def _bootstrap_admin(
        self, token_hash: str, name: str, password_hash: str, at: int
    ) -> Account | None:

        def tx(conn: Connection) -> Account | None:
            consumed = conn.execute(
                auth_bootstrap.update()
                .where(
                    auth_bootstrap.c.id == 1,
                    auth_bootstrap.c.token_hash == token_hash,
                    auth_bootstrap.c.consumed_at.is_(None),
                )
                .values(consumed_at=at)
            )
            if consumed.rowcount != 1:
                return None
            # An AlreadyExists rolls the update back: the token stays pending.
            return self._insert_account(conn, name, "user", True, password_hash, at)

        return self._write(tx)

    # --- sign-in attempts ----------------------------------------------------------------------

    def _count_attempt(self, key: str, window_start: int, window_ms: int) -> int:
        a = sign_in_attempts.c
        add = self._insert(sign_in_attempts).values(key=key, window_start=window_start, attempts=1)
        add = add.on_conflict_do_update(
            index_elements=[a.key, a.window_start], set_={"attempts": a.attempts + 1}
        ).returning(a.attempts)

        def tx(conn: Connection) -> int:
            count = int(conn.execute(add).scalar_one())
            if count == 1:  # the key's first attempt in this window: forget earlier windows
                conn.execute(sign_in_attempts.delete().where(a.window_start < window_start))
            return count

        return self._write(tx)

    # --- server audit trail --------------------------------------------------------------------

    def log_server_event(self, event: ServerEvent) -> None:
        statement = server_audit.insert().values(
            timestamp=event.timestamp,
            actor=event.actor[:256],
            action=event.action[:64],
            object_type=event.object_type[:64],
            object_name=event.object_name[:512],
            details=json.dumps(dict(event.details), sort_keys=True),
            origin=event.origin[:256],
        )
        self._write(lambda conn: conn.execute(statement))

    def search_server_events(
        self, *, since: int | None = None, max_results: int = 100
    ) -> list[ServerEvent]:
        t = server_audit.c
        query = (
            sa.select(
                t.timestamp, t.actor, t.action, t.object_type, t.object_name, t.details, t.origin
            )
            .order_by(t.timestamp.desc(), t.seq.desc())
            .limit(max(1, int(max_results)))
        )
        if since is not None:
            query = query.where(t.timestamp >= since)

        def tx(conn: Connection) -> list[ServerEvent]:
            return [
                ServerEvent(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6])
                for r in conn.execute(query)
            ]

        return self._read(tx)
