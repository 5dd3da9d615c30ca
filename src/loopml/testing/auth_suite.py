"""The :class:`~loopml.store.auth.AuthStore` conformance suite.

Subclass :class:`AuthSuite` in a test module and provide a ``store`` fixture returning a
:class:`~loopml.store.base.Store` whose ``auth`` property is the backend under test::

    class TestMyAuth(AuthSuite):
        @pytest.fixture
        def store(self) -> Store:
            return MyStore()
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from loopml.errors import AlreadyExists, InvalidArgument, NotFound
from loopml.store.auth import (
    AuthStore,
    ServerEvent,
    hash_password,
    hash_token,
    new_token,
    role_allows,
    verify_password,
)

__all__ = ["AuthSuite"]

_HASH = hash_password("service-password")  # a service account may not have one


class AuthSuite:
    """The tests every AuthStore must pass."""

    @pytest.fixture
    def auth(self, store: Any) -> AuthStore:
        found: AuthStore = store.auth
        return found

    def test_accounts(self, auth: AuthStore) -> None:
        alice = auth.create_account("alice", "user", server_admin=True, created_at=5)
        assert (alice.name, alice.kind, alice.server_admin, alice.has_password) == (
            "alice",
            "user",
            True,
            False,
        )
        auth.create_account("ci", "service", created_at=6)
        assert auth.get_account("alice") == alice
        assert [a.name for a in auth.list_accounts()] == ["alice", "ci"]
        assert [a.name for a in auth.list_accounts("service")] == ["ci"]
        assert auth.count_users() == 1
        with pytest.raises(AlreadyExists):
            auth.create_account("alice", "user", created_at=7)
        with pytest.raises(NotFound):
            auth.get_account("nobody")
        for bad in ("", "a b", "-x", "x" * 65, "é/"):
            with pytest.raises(InvalidArgument):
                auth.create_account(bad, "user", created_at=1)
        with pytest.raises(InvalidArgument):
            auth.create_account("svc", "service", password_hash=_HASH, created_at=1)
        with pytest.raises(InvalidArgument):
            auth.create_account("robot", "robot", created_at=1)  # type: ignore[arg-type]

    def test_update_account_and_password(self, auth: AuthStore) -> None:
        auth.create_account("bob", "user", created_at=1)
        assert auth.password_hash("bob") is None
        stored = hash_password("correct horse")
        bob = auth.update_account("bob", password_hash=stored, disabled=True)
        assert bob.has_password and bob.disabled and not bob.server_admin
        assert verify_password("correct horse", auth.password_hash("bob"))
        assert not verify_password("wrong horse", auth.password_hash("bob"))
        assert not verify_password("anything", None)
        assert auth.update_account("bob", disabled=False, server_admin=True).server_admin
        with pytest.raises(NotFound):
            auth.update_account("nobody", disabled=True)
        auth.create_account("svc", "service", created_at=1)
        with pytest.raises(InvalidArgument):
            auth.update_account("svc", password_hash=stored)
        assert auth.password_hash("svc") is None

    def test_tokens(self, auth: AuthStore) -> None:
        auth.create_account("alice", "user", created_at=1)
        secret = new_token()
        assert secret.startswith("lml_") and len(secret) > 40
        token = auth.create_token(
            "alice", "laptop", hash_token(secret), created_at=10, expires_at=1000
        )
        found = auth.lookup_token(hash_token(secret))
        assert found is not None
        assert found[0] == token and found[1].name == "alice"
        assert token.usable(999) and not token.usable(1000)
        assert auth.lookup_token(hash_token(new_token())) is None
        session = auth.create_token(
            "alice", "web", hash_token(new_token()), kind="session", created_at=11
        )
        assert [t.id for t in auth.list_tokens("alice")] == [token.id, session.id]
        assert [t.id for t in auth.list_tokens(kind="session")] == [session.id]
        assert auth.list_tokens("nobody") == []
        revoked = auth.revoke_token(token.id, 20)
        assert revoked.revoked_at == 20 and not revoked.usable(15)
        assert auth.revoke_token(token.id, 30).revoked_at == 20
        auth.touch_token(token.id, 25)
        assert auth.get_token(token.id).last_used_at == 25
        with pytest.raises(NotFound):
            auth.get_token("0" * 32)
        with pytest.raises(NotFound):
            auth.revoke_token("0" * 32, 1)
        with pytest.raises(NotFound):
            auth.create_token("nobody", "x", hash_token(new_token()), created_at=1)
        with pytest.raises(InvalidArgument):
            auth.create_token("alice", "x", "not-a-hash", created_at=1)
        with pytest.raises(InvalidArgument):
            auth.create_token("alice", "", hash_token(new_token()), created_at=1)

    def test_roles(self, auth: AuthStore, store: Any) -> None:
        p1 = store.create_project("one").project_id
        p2 = store.create_project("two").project_id
        auth.create_account("carol", "user", created_at=1)
        auth.create_account("ci", "service", created_at=1)
        auth.set_role(p1, "carol", "viewer")
        auth.set_role(p1, "carol", "editor")
        auth.set_role(p2, "carol", "admin")
        auth.set_role(p1, "ci", "viewer")
        assert auth.roles_of("carol") == {p1: "editor", p2: "admin"}
        assert [(m.name, m.role) for m in auth.list_members(p1)] == [
            ("carol", "editor"),
            ("ci", "viewer"),
        ]
        assert auth.remove_role(p1, "carol") is True
        assert auth.remove_role(p1, "carol") is False
        assert auth.roles_of("carol") == {p2: "admin"}
        with pytest.raises(InvalidArgument):
            auth.set_role(p1, "carol", "owner")
        with pytest.raises(NotFound):
            auth.set_role(p1, "nobody", "viewer")
        assert role_allows("admin", "write") and role_allows("viewer", "read")
        assert not role_allows("viewer", "write") and not role_allows(None, "read")
        assert not role_allows("editor", "admin")

    def test_bootstrap_once(self, auth: AuthStore) -> None:
        first, second = hash_token(new_token()), hash_token(new_token())
        assert not auth.bootstrap_pending()
        assert auth.claim_bootstrap(first, 1) is True
        assert auth.claim_bootstrap(second, 2) is False
        assert auth.bootstrap_pending()
        assert auth.bootstrap_admin(second, "root", hash_password("p" * 12), 3) is None
        admin = auth.bootstrap_admin(first, "root", hash_password("p" * 12), 3)
        assert admin is not None and admin.server_admin and admin.has_password
        assert not auth.bootstrap_pending()
        assert auth.bootstrap_admin(first, "again", hash_password("p" * 12), 4) is None
        assert auth.claim_bootstrap(second, 5) is False  # consumed is never replaced
        assert [a.name for a in auth.list_accounts()] == ["root"]

    def test_bootstrap_name_taken_keeps_the_token(self, auth: AuthStore) -> None:
        auth.create_account("svc", "service", created_at=1)
        token = hash_token(new_token())
        assert auth.claim_bootstrap(token, 1)
        with pytest.raises(AlreadyExists):
            auth.bootstrap_admin(token, "svc", hash_password("p" * 12), 2)
        assert auth.bootstrap_pending()
        assert auth.bootstrap_admin(token, "root", hash_password("p" * 12), 2) is not None

    def test_concurrent_bootstrap_claims_make_one_token(self, auth: AuthStore) -> None:
        hashes = [hash_token(new_token()) for _ in range(8)]
        won: list[bool] = []
        barrier = threading.Barrier(len(hashes))

        def claim(h: str) -> None:
            barrier.wait()
            won.append(auth.claim_bootstrap(h, 1))

        threads = [threading.Thread(target=claim, args=(h,)) for h in hashes]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(won) == [False] * 7 + [True]

    def test_server_events(self, auth: AuthStore) -> None:
        for i, action in enumerate(("user.create", "token.create", "token.revoke")):
            auth.log_server_event(
                ServerEvent(100 + i // 2, "root", action, "token", f"t{i}", {"n": i}, "1.2.3.4")
            )
        events = auth.search_server_events()
        assert [e.action for e in events] == ["token.revoke", "token.create", "user.create"]
        assert events[0].details == {"n": 2} and events[0].origin == "1.2.3.4"
        assert [e.action for e in auth.search_server_events(since=101)] == ["token.revoke"]
        assert len(auth.search_server_events(max_results=1)) == 1

    def test_sign_in_attempts_are_counted_per_key_and_window(self, auth: AuthStore) -> None:
        minute = 60_000
        assert [auth.count_attempt("user:ann", minute, minute) for _ in range(3)] == [1, 2, 3]
        assert auth.count_attempt("addr:10.0.0.7", minute, minute) == 1
        assert auth.count_attempt("user:Ann", minute, minute) == 1  # keys are exact
        assert auth.count_attempt("user:ann", 2 * minute, minute) == 1  # a new window
        assert auth.count_attempt("u" * 320, 2 * minute, minute) == 1
        bad: list[tuple[Any, Any, Any]] = [
            ("", minute, minute),
            ("u" * 321, minute, minute),
            (None, minute, minute),
            ("user:ann", minute + 1, minute),  # not aligned
            ("user:ann", -minute, minute),
            ("user:ann", minute, 0),
            ("user:ann", True, minute),
            ("user:ann", minute, 1.5),
        ]
        for key, start, window in bad:
            with pytest.raises(InvalidArgument):
                auth.count_attempt(key, start, window)

    def test_concurrent_sign_in_attempts_are_all_counted(self, auth: AuthStore) -> None:
        counts: list[int] = []
        barrier = threading.Barrier(8)

        def attempt() -> None:
            barrier.wait()
            for _ in range(5):
                counts.append(auth.count_attempt("addr:10.0.0.7", 0, 60_000))

        threads = [threading.Thread(target=attempt) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(counts) == list(range(1, 41))  # no attempt lost, none counted twice
