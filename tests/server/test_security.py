"""The server's HTTP hardening: host allowlist, cross-origin writes, headers, body limit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loopml.server.security import CONTENT_SECURITY_POLICY

PROJECTS = "/api/v1/projects"


def _client(app: FastAPI, base_url: str = "http://localhost") -> TestClient:
    return TestClient(app, base_url=base_url)


# --- Host ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:8080", "[::1]:5000", "LOCALHOST"],
)
def test_local_hosts_are_always_allowed(client: TestClient, host: str) -> None:
    response = client.get("/api/v1/version", headers={"Host": host})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:5000", "127.0.0.1.evil.example", ""]
)
def test_unknown_host_is_refused(client: TestClient, host: str) -> None:
    response = client.get("/api/v1/version", headers={"Host": host})
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "INVALID_ARGUMENT"
    assert "--allowed-host" in body["message"]
    assert response.headers["x-frame-options"] == "DENY"


def test_allowed_and_bound_hosts(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(host="10.1.2.3", allowed_hosts=("ml.example.com", "*.corp.example"))
    with _client(app) as client:
        for host in ("ml.example.com", "ML.example.com:443", "10.1.2.3:5000", "a.corp.example"):
            assert client.get("/health", headers={"Host": host}).status_code == 200, host
        for host in ("example.com", "corp.example", "ml.example.com.evil"):
            assert client.get("/health", headers={"Host": host}).status_code == 400, host


def test_wildcard_bind_is_not_a_host_but_star_allows_all(make_app: Callable[..., FastAPI]) -> None:
    with _client(make_app(host="0.0.0.0")) as client:
        assert client.get("/health", headers={"Host": "0.0.0.0"}).status_code == 400
    with _client(make_app(allowed_hosts=("*",))) as client:
        assert client.get("/health", headers={"Host": "anything.example"}).status_code == 200


# --- Origin --------------------------------------------------------------------------------------


def _create(client: TestClient, name: str, **headers: str) -> httpx.Response:
    return client.post(PROJECTS, json={"name": name}, headers=headers)


def test_same_origin_and_headerless_writes_pass(client: TestClient) -> None:
    assert _create(client, "plain").status_code == 201
    assert _create(client, "same", origin="http://localhost").status_code == 201
    assert _create(client, "proxied", origin="https://localhost").status_code == 201
    assert _create(client, "ref", referer="http://localhost/ui/runs?x=1").status_code == 201
    assert _create(client, "site", **{"sec-fetch-site": "same-origin"}).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "http://localhost:9999"},
        {"origin": "http://localhost.evil.example"},
        {"origin": "null"},
        {"origin": "file://"},
        {"referer": "http://evil.example/attack.html"},
        {"origin": "http://evil.example", "referer": "http://localhost/"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "http://localhost", "sec-fetch-site": "cross-site"},
    ],
)
def test_cross_origin_writes_are_refused(client: TestClient, headers: dict[str, str]) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = client.request(method, PROJECTS, json={"name": "x"}, headers=headers)
        assert response.status_code == 403, (method, headers, response.text)
        assert response.json()["error_code"] == "PERMISSION_DENIED"
        assert "--allowed-origin" in response.json()["message"]
    assert client.get(PROJECTS).json() == []


def test_cross_origin_reads_pass(client: TestClient) -> None:
    response = client.get(PROJECTS, headers={"origin": "http://evil.example"})
    assert response.status_code == 200


def test_allowed_origins(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(allowed_origins=("https://app.example.com",))
    with _client(app) as client:
        assert _create(client, "a", origin="https://app.example.com").status_code == 201
        assert _create(client, "b", origin="https://app.example.com:443").status_code == 201
        assert _create(client, "c", origin="http://app.example.com").status_code == 403


# --- Headers -------------------------------------------------------------------------------------


def _assert_hardened(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert "content-security-policy" in response.headers


def test_security_headers_on_every_response(client: TestClient) -> None:
    for response in (
        client.get("/health"),
        client.get("/api/v1/version"),
        client.get("/api/v1/no-such-route"),
        client.get("/api/v1/runs/nope"),
        _create(client, "x", origin="http://evil.example"),
    ):
        _assert_hardened(response)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "strict-transport-security" not in response.headers
    policy = client.get("/api/v1/version").headers["content-security-policy"]
    for directive in ("script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
        assert directive in policy


def test_hsts_on_https_only(app: FastAPI) -> None:
    with _client(app, "https://localhost") as client:
        assert "max-age=" in client.get("/health").headers["strict-transport-security"]


def test_a_routes_own_policy_is_kept(client: TestClient) -> None:
    run = _run(client)
    data = b"<script>alert(1)</script>"
    sha = hashlib.sha256(data).hexdigest()
    assert client.put(f"/api/v1/blobs/{sha}", content=data).status_code == 201
    infos = {"infos": [{"path": "page.html", "sha256": sha, "size": len(data)}]}
    assert client.post(f"/api/v1/runs/{run}/artifacts", json=infos).status_code < 300
    response = client.get(f"/api/v1/runs/{run}/artifacts/content", params={"path": "page.html"})
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-security-policy"].startswith("sandbox")
    _assert_hardened(response)


def _run(client: TestClient) -> str:
    project = _create(client, f"p{id(client)}").json()["project_id"]
    run = client.post(f"{PROJECTS}/{project}/runs", json={})
    assert run.status_code == 201, run.text
    run_id: str = run.json()["run_id"]
    return run_id


# --- Body size -----------------------------------------------------------------------------------

LIMIT = 4096


@pytest.fixture
def small(make_app: Callable[..., FastAPI]) -> Iterator[TestClient]:
    with _client(make_app(max_body_bytes=LIMIT)) as client:
        yield client


def _chunks(total: int, size: int = 1000) -> Iterator[bytes]:
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    _assert_hardened(response)


def test_content_length_over_the_limit(small: TestClient) -> None:
    _assert_too_large(small.post(PROJECTS, content=b"x" * (LIMIT + 1)))
    body: dict[str, Any] = {"name": "ok", "description": "d" * 100}
    assert small.post(PROJECTS, json=body).status_code == 201


def test_chunked_body_over_the_limit(small: TestClient) -> None:
    sha = "0" * 64
    for path in (PROJECTS, "/api/v1/runs/search", f"/api/v1/blobs/{sha}"):
        method = "PUT" if "blobs" in path else "POST"
        _assert_too_large(small.request(method, path, content=_chunks(LIMIT * 3)))
    assert small.get(PROJECTS).json() == []


def test_chunked_body_over_the_limit_on_a_real_server(
    make_app: Callable[..., FastAPI], serve: Callable[[FastAPI], str]
) -> None:
    url = serve(make_app(max_body_bytes=LIMIT))
    with httpx.Client(base_url=url) as client:
        response = client.put(f"/api/v1/blobs/{'0' * 64}", content=_chunks(LIMIT * 50))
        _assert_too_large(response)
        response = client.post(PROJECTS, content=b"{" * (LIMIT + 10))
        _assert_too_large(response)
        small = b'{"name": "chunked"}'
        response = client.post(PROJECTS, content=iter([small[:5], small[5:]]))
        assert response.status_code == 201, response.text


def test_malformed_content_length_is_refused(client: TestClient) -> None:
    response = client.post(PROJECTS, content=b"{}", headers={"content-length": "abc"})
    assert response.status_code == 400
