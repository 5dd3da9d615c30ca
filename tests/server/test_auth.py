"""Sign-in with ``--auth``: the one-time bootstrap, API tokens (wrong, absent, revoked, expired),
service accounts, web sessions, the sign-in rate limit, and what authentication costs."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loopml.entities import now_ms
from loopml.server.auth import SESSION_COOKIE, AttemptLimit, TokenGate
from loopml.server.settings import ServerSettings
from loopml.store.auth import hash_password, hash_token, new_token
from loopml.store.sql import SqlStore

BASE_URL = "http://localhost"
TOKEN_RE = re.compile(r"lml_[A-Za-z0-9_-]{43}")


def _client(app: FastAPI, token: str | None = None) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url=BASE_URL, headers=headers)


def _token(store: SqlStore, owner: str, **kwargs: Any) -> str:
    secret = new_token()
    store.auth.create_token(owner, "test", hash_token(secret), created_at=now_ms(), **kwargs)
    return secret


@pytest.fixture
def auth_app(make_app: Callable[..., FastAPI], store: SqlStore) -> FastAPI:
    """An app with --auth and an admin ``root`` (password ``root-password``) and user ``ann``."""
    store.auth.create_account(
        "root",
        "user",
        server_admin=True,
        password_hash=hash_password("root-password"),
        created_at=1,
    )
    store.auth.create_account(
        "ann", "user", password_hash=hash_password("ann-password"), created_at=1
    )
    return make_app(auth=True)


def test_bootstrap_token_creates_the_first_admin_once(
    make_app: Callable[..., FastAPI], capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(auth=True)
    printed = capsys.readouterr().err
    secrets = TOKEN_RE.findall(printed)
    assert len(secrets) == 1 and "/api/v1/auth/bootstrap" in printed
    make_app(auth=True)  # a second process on the same database: no second token
    assert not TOKEN_RE.findall(capsys.readouterr().err)
    with _client(app) as client:
        assert client.get("/api/v1/auth/whoami").status_code == 401
        assert (
            client.get(
                "/api/v1/auth/whoami", headers={"Authorization": f"Bearer {secrets[0]}"}
            ).status_code
            == 401
        )
        wrong = {"token": new_token(), "username": "admin", "password": "a-long-password"}
        assert client.post("/api/v1/auth/bootstrap", json=wrong).status_code == 401
        body = {"token": secrets[0], "username": "admin", "password": "a-long-password"}
        created = client.post("/api/v1/auth/bootstrap", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["server_admin"] is True
        again = client.post("/api/v1/auth/bootstrap", json={**body, "username": "evil"})
        assert again.status_code == 401 and "already used" in again.json()["message"]
        login = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "a-long-password"}
        )
        assert login.status_code == 200
        assert client.get("/api/v1/auth/whoami").json()["server_admin"] is True


def test_concurrent_server_starts_print_one_bootstrap_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"sqlite:///{tmp_path}/race.db"
    stores = [SqlStore(uri) for _ in range(6)]
    barrier = threading.Barrier(len(stores))

    def start(store: SqlStore) -> None:
        barrier.wait()
        TokenGate(store, ServerSettings(auth=True))

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(TOKEN_RE.findall(capsys.readouterr().err)) == 1
    for store in stores:
        store.close()


def test_token_auth_and_every_way_a_token_fails(auth_app: FastAPI, store: SqlStore) -> None:
    good = _token(store, "ann")
    expired = _token(store, "ann", expires_at=now_ms() - 1)
    revoked = _token(store, "ann")
    found = store.auth.lookup_token(hash_token(revoked))
    assert found is not None
    store.auth.revoke_token(found[0].id, now_ms())
    with _client(auth_app, good) as client:
        me = client.get("/api/v1/auth/whoami").json()
        assert (me["name"], me["kind"], me["server_admin"]) == ("ann", "user", False)
    cases = {
        None: "asks who you are",
        new_token(): "not valid",
        expired: "expired",
        revoked: "revoked",
    }
    for secret, words in cases.items():
        with _client(auth_app, secret) as client:
            answer = client.get("/api/v1/auth/whoami")
            assert answer.status_code == 401, secret
            assert answer.json()["error_code"] == "UNAUTHENTICATED"
            assert words in answer.json()["message"]
    with _client(auth_app) as client:
        basic = client.get("/api/v1/auth/whoami", headers={"Authorization": "Basic YTpi"})
        assert basic.status_code == 401
    # the version route stays public: clients ask it whether to send a token
    with _client(auth_app) as client:
        assert client.get("/api/v1/version").json()["auth"] is True


def test_revocation_through_the_api_takes_effect_at_once(auth_app: FastAPI) -> None:
    with _client(auth_app) as client:
        client.post("/api/v1/auth/login", json={"username": "ann", "password": "ann-password"})
        made = client.post("/api/v1/auth/tokens", json={"name": "laptop", "expires_days": 30})
        assert made.status_code == 201
        secret, token_id = made.json()["token"], made.json()["id"]
        assert [t["name"] for t in client.get("/api/v1/auth/tokens").json()] == ["laptop"]
    with _client(auth_app, secret) as client:
        assert client.get("/api/v1/auth/whoami").status_code == 200
        assert client.delete(f"/api/v1/auth/tokens/{token_id}").status_code == 204
        assert client.get("/api/v1/auth/whoami").status_code == 401


def test_service_account_token_works(auth_app: FastAPI, store: SqlStore) -> None:
    root = _token(store, "root")
    with _client(auth_app, root) as admin:
        assert (
            admin.post("/api/v1/auth/service-accounts", json={"name": "serving"}).status_code
            == 201
        )
        made = admin.post("/api/v1/auth/tokens", json={"name": "prod", "owner": "serving"})
        assert made.status_code == 201
        project = admin.post("/api/v1/projects", json={"name": "churn"}).json()["project_id"]
        put = admin.put(
            f"/api/v1/auth/projects/{project}/members/serving", json={"role": "viewer"}
        )
        assert put.status_code == 200
        # users make their own tokens: an admin cannot mint one for a user
        assert (
            admin.post("/api/v1/auth/tokens", json={"name": "x", "owner": "ann"}).status_code
            == 400
        )
    with _client(auth_app, made.json()["token"]) as serving:
        assert serving.get("/api/v1/auth/whoami").json()["kind"] == "service"
        assert (
            serving.get("/api/v1/projects/lookup", params={"name_or_id": "churn"}).status_code
            == 200
        )
        assert serving.post(f"/api/v1/projects/{project}/runs", json={}).status_code == 403


def test_login_sets_a_strict_http_only_session_cookie_and_logout_ends_it(
    auth_app: FastAPI,
) -> None:
    with _client(auth_app) as client:
        bad = client.post("/api/v1/auth/login", json={"username": "ann", "password": "nope-nope"})
        assert bad.status_code == 401
        assert (
            client.post(
                "/api/v1/auth/login", json={"username": "nobody", "password": "x" * 9}
            ).status_code
            == 401
        )
        ok = client.post(
            "/api/v1/auth/login", json={"username": "ann", "password": "ann-password"}
        )
        assert ok.status_code == 200
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        secret = client.cookies[SESSION_COOKIE]
        assert client.get("/api/v1/auth/whoami").json()["name"] == "ann"
        # a session is a cookie, not a bearer token
        bearer = client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {secret}"})
        assert bearer.status_code == 401
        assert client.post("/api/v1/auth/logout").status_code == 204
        client.cookies.set(SESSION_COOKIE, secret)
        assert client.get("/api/v1/auth/whoami").status_code == 401


def test_login_page_form_signs_in_and_escapes(auth_app: FastAPI) -> None:
    with _client(auth_app) as client:
        page = client.get("/login")
        assert page.status_code == 200 and '<form method="post" action="/login">' in page.text
        wrong = client.post(
            "/login",
            content="username=%3Cscript%3E&password=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert wrong.status_code == 401 and "<script>" not in wrong.text
        ok = client.post(
            "/login",
            content="username=ann&password=ann-password",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        assert ok.status_code == 303 and SESSION_COOKIE in ok.headers["set-cookie"]


def test_login_is_rate_limited_per_user_and_per_address(
    make_app: Callable[..., FastAPI], store: SqlStore
) -> None:
    store.auth.create_account(
        "ann", "user", password_hash=hash_password("ann-password"), created_at=1
    )
    app = make_app(auth=True)
    _frozen_limit(app, 3)
    with _client(app) as client:
        for _ in range(3):
            wrong = {"username": "ann", "password": "wrong-password"}
            assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
        limited = client.post(
            "/api/v1/auth/login", json={"username": "ann", "password": "ann-password"}
        )
        assert limited.status_code == 429
        assert limited.json()["error_code"] == "RATE_LIMITED"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # the address is limited too, whatever the user name
        other = client.post("/api/v1/auth/login", json={"username": "bob", "password": "x" * 9})
        assert other.status_code == 429


def _frozen_limit(app: FastAPI, limit: int, at: float = 1_800_000_030.0) -> None:
    """Count the app's sign-ins at a fixed time, mid-minute: no window ends during a test."""
    gate = app.state.gate
    gate.sign_ins = AttemptLimit(gate.auth, limit, clock=lambda: at)


def test_replicas_share_one_sign_in_limit(
    make_app: Callable[..., FastAPI], store: SqlStore
) -> None:
    store.auth.create_account(
        "ann", "user", password_hash=hash_password("ann-password"), created_at=1
    )
    replicas = [make_app(auth=True) for _ in range(2)]
    for app in replicas:  # two server processes on one database
        _frozen_limit(app, 4)
    wrong = {"username": "ann", "password": "wrong-password"}
    with _client(replicas[0]) as one, _client(replicas[1]) as two:
        for client in (one, two, one, two):
            assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
        for client in (one, two):  # over the limit, whichever replica is asked
            limited = client.post("/api/v1/auth/login", json=wrong)
            assert limited.status_code == 429, limited.text
            assert limited.headers["Retry-After"] == "31"  # the minute ends in 30 s


def test_auth_off_answers_sensibly(client: TestClient) -> None:
    me = client.get("/api/v1/auth/whoami")
    assert me.status_code == 200 and me.json()["name"] == "local"
    for method, path in (("POST", "/api/v1/auth/tokens"), ("GET", "/api/v1/auth/users")):
        answer = client.request(method, path, json={"name": "x"})
        assert answer.status_code == 400 and "--auth" in answer.json()["message"]


@pytest.fixture
def statements(store: SqlStore) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        if str(args[2]).strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT"):
            seen.append(str(args[2]))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(store.engine, "before_cursor_execute", record)


def test_auth_costs_no_query_on_a_warm_cache_and_one_lookup_when_cold(
    auth_app: FastAPI,
    make_app: Callable[..., FastAPI],
    store: SqlStore,
    statements: list[str],
) -> None:
    secret = _token(store, "ann")
    project = store.create_project("p").project_id
    store.auth.set_role(project, "ann", "viewer")
    run = store.create_run(project).run_id
    open_app = make_app()
    path = f"/api/v1/runs/{run}"
    with _client(open_app) as plain, _client(auth_app, secret) as signed:
        for c in (plain, signed):
            assert c.get(path).status_code == 200  # warm every cache
        statements.clear()
        assert plain.get(path).status_code == 200
        baseline = len(statements)
        statements.clear()
        assert signed.get(path).status_code == 200
        assert len(statements) == baseline  # no query for the token or the roles
        gate = auth_app.state.gate
        gate.forget("ann")  # cold: the token lookup (one join) and the roles
        statements.clear()
        assert signed.get(path).status_code == 200
        extra = [s for s in statements if "api_tokens" in s or "project_roles" in s]
        assert len(statements) - baseline == len(extra) == 2


def test_users_cli_manages_accounts_tokens_and_roles(
    make_app: Callable[..., FastAPI], store: SqlStore
) -> None:
    from typer.testing import CliRunner

    from loopml.cli.state import CliState
    from loopml.cli.users import app as users_app

    store.create_project("churn")
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(users_app, list(args), obj=CliState(store=store.uri), input=stdin)
        assert result.exit_code == 0, result.output
        return result.stdout

    run("create", "alice", "--admin", "--password-stdin", stdin="alice-password\n")
    run("create", "serving", "--service")
    run("grant", "serving", "churn", "viewer")
    secret = run("token", "serving", "--name", "prod").strip().splitlines()[0]
    assert TOKEN_RE.fullmatch(secret)
    assert '"role": "viewer"' in run("members", "churn", "--json")
    listed = run("list", "--json")
    assert '"alice"' in listed and '"service"' in listed
    app = make_app(auth=True)
    with _client(app, secret) as client:
        me = client.get("/api/v1/auth/whoami").json()
        assert me["kind"] == "service" and list(me["roles"].values()) == ["viewer"]
    token_id = store.auth.list_tokens("serving")[0].id
    run("revoke", token_id)
    app.state.gate.forget(token_id=token_id)  # another process: within the cache time
    with _client(app, secret) as client:
        assert client.get("/api/v1/auth/whoami").status_code == 401
    with _client(app) as web:
        login = {"username": "alice", "password": "alice-password"}
        assert web.post("/api/v1/auth/login", json=login).status_code == 200
