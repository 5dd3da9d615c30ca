"""Every route of the app maps to a permission decision, and the roles decide exactly as the
operation table says: for every operation and every role (none, viewer, editor, admin) on a
project, the answer is 403 exactly when the role lacks the operation's permission. Then the
account, token and member routes' own checks, and their audit trail."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import inspect
import re
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from loopml.entities import now_ms
from loopml.server.app import create_app
from loopml.server.settings import ServerSettings
from loopml.store.artifacts import FsspecArtifactStore
from loopml.store.auth import hash_token, new_token, role_allows
from loopml.store.rest.operations import API_PREFIX, OPERATIONS, Operation
from loopml.store.sql import SqlStore

BASE_URL = "http://localhost"
#: Routes anyone may call without a credential.
PUBLIC = {
    "/health",
    API_PREFIX + "/version",
    API_PREFIX + "/auth/login",
    API_PREFIX + "/auth/bootstrap",
    "/login",
    API_PREFIX + "/openapi.json",
    API_PREFIX + "/docs",
    API_PREFIX + "/docs/oauth2-redirect",
}
PERMISSIONS = {
    "read",
    "write",
    "admin",
    "signed-in",
    "server-admin",
    "self-or-server-admin",
    "owner-or-server-admin",
    "public",
}
ROLES = (None, "viewer", "editor", "admin")


def test_every_route_maps_to_a_permission_decision(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(auth=True)
    missing = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        permission = (route.openapi_extra or {}).get("x-loopml-permission")
        if permission is None and route.path not in PUBLIC:
            missing.append(f"{sorted(route.methods)} {route.path}")
        elif permission is not None:
            assert permission in PERMISSIONS, (route.path, permission)
    assert not missing, f"routes without x-loopml-permission: {missing}"


# --- the role-by-route matrix ------------------------------------------------------------------


def _fill(annotation: Any, ids: Mapping[str, str], name: str = "") -> Any:
    """A JSON value of ``annotation`` that decodes (the store may still refuse it: fine)."""
    if name in ids:
        return ids[name]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        kept = [a for a in args if a is not type(None) and "Unset" not in str(a)]
        return _fill(kept[0], ids, name) if kept else None
    if origin is typing.Literal:
        return args[0]
    if origin in (list, Sequence, tuple, set, frozenset) or annotation in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return [_fill(a, ids) for a in args]
        return []
    if origin in (dict, Mapping) or annotation is dict:
        return {}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation)).value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        hints = typing.get_type_hints(annotation)
        return {
            f.name: _fill(hints[f.name], ids, f.name)
            for f in dataclasses.fields(annotation)
            if f.init
        }
    if annotation is bool:
        return False
    if annotation is int:
        return 1
    if annotation is float:
        return 1.0
    return "x"


def _request(op: Operation, ids: Mapping[str, str]) -> tuple[str, dict[str, Any], Any]:
    """The path, query and body of a call of ``op`` on the test project's objects."""
    path = op.path
    for param in op.path_params:
        path = path.replace("{" + param + "}", ids.get(param, "1" if param == "version" else "x"))
    hints = op.hints()
    required = {
        name: _fill(hints.get(name, str), ids, name)
        for name, p in op.signature().parameters.items()
        if name not in op.path_params
        and (p.default is inspect.Parameter.empty or name in ids)
        and name != "actor"
    }
    if op.scope == "runs":
        required["run_ids"] = [ids["run_id"]]
    if op.scope == "projects":
        required["project_ids"] = [ids["project_id"]]
    if op.has_body:
        return API_PREFIX + path, {}, required
    return API_PREFIX + path, required, None


def _populate(store: SqlStore) -> dict[str, Any]:
    """A project with a run and a dataset version, and a token per role (and a server admin)."""
    project = store.create_project("matrix").project_id
    run = store.create_run(project).run_id
    version, _ = store.create_dataset_version(
        project, "d", digest="0" * 64, blob="1" * 64, size_bytes=1, num_rows=1, num_columns=1
    )
    tokens: dict[str | None, str] = {}
    for role in ROLES:
        name = role or "nobody"
        store.auth.create_account(name, "user", created_at=1)
        if role is not None:
            store.auth.set_role(project, name, role)
        tokens[role] = new_token()
        store.auth.create_token(name, "t", hash_token(tokens[role]), created_at=now_ms())
    store.auth.create_account("root", "user", server_admin=True, created_at=1)
    root = new_token()
    store.auth.create_token("root", "t", hash_token(root), created_at=now_ms())
    ids = {"project_id": project, "name_or_id": project, "run_id": run, "version_id": version.id}
    return {"tokens": tokens, "root": root, "ids": ids}


@pytest.fixture
def world(make_app: Callable[..., FastAPI], store: SqlStore) -> dict[str, Any]:
    """:func:`_populate` on the test's store, with an app with --auth."""
    return {**_populate(store), "app": make_app(auth=True)}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One world and one client per role for the whole matrix (the calls may change it: only
    403 or not matters)."""
    root = tmp_path_factory.mktemp("matrix")
    store = SqlStore(f"sqlite:///{root}/m.db")
    found = _populate(store)
    settings = ServerSettings(host="127.0.0.1", auth=True)
    app = create_app(settings, store=store, artifacts=FsspecArtifactStore(str(root / "art")))
    tokens = {**found["tokens"], "server-admin": found["root"]}
    with contextlib.ExitStack() as stack:
        clients = {
            role: stack.enter_context(
                TestClient(app, base_url=BASE_URL, headers={"Authorization": f"Bearer {t}"})
            )
            for role, t in tokens.items()
        }
        yield {**found, "clients": clients}
    store.close()


def _allowed(op: Operation, role: str | None) -> bool:
    if op.scope == "server":
        return False
    if op.scope == "any":
        return True
    return role_allows(role, op.permission)


@pytest.mark.parametrize(
    "op",
    OPERATIONS,
    ids=lambda op: op.name,
)
def test_roles_decide_each_operation_as_the_table_says(
    op: Operation, matrix: dict[str, Any]
) -> None:
    path, query, body = _request(op, matrix["ids"])
    wrong = []
    for role, client in matrix["clients"].items():
        answer = client.request(op.method, path, params=query, json=body)
        allowed = role == "server-admin" or _allowed(op, role)
        if (answer.status_code == 403) == allowed or answer.status_code == 401:
            wrong.append(f"{role}: {answer.status_code} {answer.text[:200]}")
    assert not wrong, f"{op.method} {path}: " + "; ".join(wrong)


# --- the account, token and member routes ------------------------------------------------------


def test_management_routes_check_their_own_permissions(world: dict[str, Any]) -> None:
    app, tokens, ids = world["app"], world["tokens"], world["ids"]
    project = ids["project_id"]

    def client(token: str) -> TestClient:
        return TestClient(app, base_url=BASE_URL, headers={"Authorization": f"Bearer {token}"})

    members = f"{API_PREFIX}/auth/projects/{project}/members"
    with client(tokens["editor"]) as editor:
        assert editor.get(f"{API_PREFIX}/auth/users").status_code == 403
        assert editor.post(f"{API_PREFIX}/auth/users", json={"name": "x"}).status_code == 403
        assert editor.get(f"{API_PREFIX}/auth/users/editor").status_code == 200
        assert editor.get(f"{API_PREFIX}/auth/users/admin").status_code == 403
        assert editor.get(members).status_code == 403
        assert editor.put(f"{members}/nobody", json={"role": "viewer"}).status_code == 403
        assert editor.get(f"{API_PREFIX}/auth/audit").status_code == 403
        made = editor.post(f"{API_PREFIX}/auth/tokens", json={"name": "mine"}).json()
    with client(tokens["viewer"]) as viewer:
        denied = viewer.delete(f"{API_PREFIX}/auth/tokens/{made['id']}")
        assert denied.status_code == 403 and "server admin" in denied.json()["message"]
    with client(tokens["admin"]) as admin:
        assert admin.put(f"{members}/nobody", json={"role": "owner"}).status_code == 400
        assert admin.put(f"{members}/nobody", json={"role": "viewer"}).status_code == 200
        listed = {m["name"]: m["role"] for m in admin.get(members).json()}
        assert listed == {
            "admin": "admin",
            "editor": "editor",
            "nobody": "viewer",
            "viewer": "viewer",
        }
        assert admin.delete(f"{members}/nobody").status_code == 204
    with client(world["root"]) as root:
        assert (
            root.post(
                f"{API_PREFIX}/auth/users", json={"name": "new", "password": "p" * 10}
            ).status_code
            == 201
        )
        assert (
            root.patch(f"{API_PREFIX}/auth/users/viewer", json={"disabled": True}).status_code
            == 200
        )
        actions = [e["action"] for e in root.get(f"{API_PREFIX}/auth/audit").json()]
        assert actions[:3] == ["user.update", "user.create", "token.create"]
        audit = root.get(f"{API_PREFIX}/projects/{project}/audit").json()
        role_events = [(e["action"], e["object_name"], e["actor"]) for e in audit]
        assert ("role.set", "nobody", "admin") in role_events
        assert ("role.remove", "nobody", "admin") in role_events
    with client(tokens["viewer"]) as disabled:
        answer = disabled.get(f"{API_PREFIX}/auth/whoami")
        assert answer.status_code == 401 and "disabled" in answer.json()["message"]


def test_a_user_changes_their_own_password_with_the_current_one(world: dict[str, Any]) -> None:
    app, tokens = world["app"], world["tokens"]
    with TestClient(
        app, base_url=BASE_URL, headers={"Authorization": f"Bearer {tokens['editor']}"}
    ) as editor:
        url = f"{API_PREFIX}/auth/users/editor/password"
        assert editor.put(url, json={"password": "new-password"}).status_code == 403
        assert (
            editor.put(
                f"{API_PREFIX}/auth/users/viewer/password", json={"password": "x" * 9}
            ).status_code
            == 403
        )
        first = editor.put(url, json={"password": "first-password", "current_password": ""})
        assert first.status_code == 403  # no password yet: an admin sets the first one
    with TestClient(
        app, base_url=BASE_URL, headers={"Authorization": f"Bearer {world['root']}"}
    ) as root:
        url = f"{API_PREFIX}/auth/users/editor/password"
        assert root.put(url, json={"password": "first-password"}).status_code == 204
    with TestClient(app, base_url=BASE_URL) as web:
        signed = web.post(
            f"{API_PREFIX}/auth/login", json={"username": "editor", "password": "first-password"}
        )
        assert signed.status_code == 200
        changed = web.put(
            f"{API_PREFIX}/auth/users/editor/password",
            json={"password": "second-password", "current_password": "first-password"},
        )
        assert changed.status_code == 204


def test_unused_pattern_guard() -> None:
    # the matrix fills path parameters it knows; a new one must be added to _request's ids
    known = {"project_id", "run_id", "version_id", "name", "version", "alias", "environment_id"}
    known |= {"deployment", "monitor", "alert_id"}
    found = {p for op in OPERATIONS for p in re.findall(r"{(\w+)}", op.path)}
    assert found <= known, found - known
