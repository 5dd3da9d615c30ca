"""The server under hostile and concurrent use: a schema fuzz that finds no server error, a path
traversal corpus against every path-taking route, and two server processes on one database that
lose no acknowledged write."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from loopml.entities import ArtifactInfo, Metric, Param, Tag
from loopml.server.paths import CONFINED_PARAMS
from loopml.store.artifacts import FsspecArtifactStore
from loopml.store.rest import HttpArtifactStore, RestStore
from loopml.store.rest.operations import OPERATIONS

# --- schema fuzz ---------------------------------------------------------------------------------

FUZZ_EXAMPLES = 8


def _call(case: Any, label: str, failures: dict[str, str]) -> None:
    """Send one generated request; record it in ``failures`` if the server failed on it."""
    request = f"{case.method} {case.formatted_path} query={case.query!r:.200} "
    request += f"body={case.body!r:.200}"
    try:
        response = case.call()
    except Exception as exc:  # the app raised: a 500 to a real client
        frames = traceback.extract_tb(exc.__traceback__)
        where = [f"{f.filename}:{f.lineno}" for f in frames if "loopml" in f.filename]
        key = f"{label} {type(exc).__name__}: {exc}"
        failures.setdefault(key, f"{request}\n    at {' <- '.join(where[::-1])}")
        return
    if response.status_code >= 500:
        failures.setdefault(f"{label} {response.status_code}: {response.text[:200]}", request)


def _caller(label: str, failures: dict[str, str]) -> Callable[[Any], None]:
    def call(case: Any) -> None:
        _call(case, label, failures)

    return call


@pytest.mark.slow
def test_fuzz_finds_no_server_error(make_app: Callable[..., FastAPI]) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    # schemathesis's ASGI client sends Host: testserver.
    app = make_app(allowed_hosts=("testserver",))
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: dict[str, str] = {}
    calls = 0
    fuzzing = settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    logging.disable(logging.CRITICAL)  # the app logs every failure it answers with a 500
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (
                schemathesis.GenerationMode.POSITIVE,
                schemathesis.GenerationMode.NEGATIVE,
            ):
                strategy = operation.as_strategy(generation_mode=mode)
                test = fuzzing(given(case=strategy)(_caller(operation.label, failures)))
                try:
                    test()
                except Unsatisfiable:  # no negative case exists for a parameterless route
                    pass
                calls += 1
    finally:
        logging.disable(logging.NOTSET)
    assert calls > 100
    assert not failures, "\n".join(f"{k}\n  {v}" for k, v in failures.items())


# --- traversal corpus ----------------------------------------------------------------------------

_ESCAPES = [
    "..",
    "../",
    "../secret.txt",
    "../../secret.txt",
    "a/../../secret.txt",
    "a/b/../../../secret.txt",
    "./../secret.txt",
    "/etc/passwd",
    "//etc/passwd",
    "C:/Windows/win.ini",
    "C:\\Windows\\win.ini",
    "..\\secret.txt",
    "..\\..\\secret.txt",
    "a\\..\\..\\secret.txt",
    "\\\\server\\share\\secret.txt",
    "secret.txt\x00.png",
    "..\x00/secret.txt",
    "a/\x00",
    "\n../secret.txt",
    "..\r\n",
    "../objects/secret.txt",
    "../uploads/secretdir",
    "uploads/../../secret.txt",
    "../" * 30 + "etc/passwd",
    "a/" * 600 + "b",
    "x" * 5000,
]
_LOOKALIKES = [  # harmless names that look like traversal to a human: never a server error
    "\u2024\u2024/secret.txt",
    "\uff0e\uff0e/secret.txt",
    "..\uff0fsecret.txt",
    "\u002e\u0307\u002e/secret.txt",
    "%c0%ae%c0%ae/secret.txt",
    "%e0%80%ae%e0%80%ae/secret.txt",
    "...",
    ".../secret.txt",
    "....//....//secret.txt",
    "..;/secret.txt",
    "%u002e%u002e/secret.txt",
    "/",  # a prefix of "/" is the run's root
]


def _encodings(payload: str) -> Iterator[str]:
    """``payload`` as it may arrive after one decoding: as is, and percent-encoded once, twice
    and partially (dots or slashes only), with mixed case hex."""
    yield payload
    once = quote(payload, safe="")
    yield once
    yield quote(once, safe="")
    yield payload.replace(".", "%2e").replace("/", "%2f")
    yield payload.replace(".", "%2E").replace("/", "%2F").replace("\\", "%5C")
    yield payload.replace("/", "%252f").replace(".", "%252e")


def corpus() -> tuple[list[str], list[str]]:
    """(escaping payloads, look-alike payloads), each in every encoding, without repeats."""
    escapes = list(dict.fromkeys(e for p in _ESCAPES for e in _encodings(p)))
    lookalikes = list(dict.fromkeys(e for p in _LOOKALIKES for e in _encodings(p)))
    lookalikes = [p for p in lookalikes if p not in escapes]
    return escapes, lookalikes


_GENERIC = frozenset(op.name for op in OPERATIONS)


def _params(route: APIRoute) -> tuple[set[str], set[str]]:
    """The names of ``route``'s path and query parameters."""
    dependant = route.dependant
    return {p.name for p in dependant.path_params}, {p.name for p in dependant.query_params}


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of ``app``, those of included routers too."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before included routers were kept apart
        routes = list(app.routes)
    else:
        routes = [context.original_route for context in iter_route_contexts(app.routes)]
    return [route for route in routes if isinstance(route, APIRoute)]


def path_taking_routes(app: FastAPI) -> list[tuple[APIRoute, str, bool]]:
    """``(route, parameter, in_path)`` for every parameter of every route that names a place
    in storage (by its name: :data:`CONFINED_PARAMS`)."""
    found = []
    for route in api_routes(app):
        in_path, in_query = _params(route)
        for name in sorted((in_path | in_query) & CONFINED_PARAMS):
            found.append((route, name, name in in_path))
    return found


def test_every_path_taking_route_declares_its_confinement(
    app: FastAPI, client: TestClient
) -> None:
    routes = path_taking_routes(app)
    generic = {route.name for route, _, _ in routes if route.name in _GENERIC}
    assert {"blobs", "uploads", "artifacts/content"} <= {
        seg
        for route, _, _ in routes
        for seg in ("blobs", "uploads", "artifacts/content")
        if seg in route.path
    }
    assert generic >= {"get_artifact", "list_artifacts"}
    for route, name, _ in routes:
        declared = (route.openapi_extra or {}).get("x-loopml-confined")
        if route.name in _GENERIC and declared is None:
            continue  # the operation table's routes: the store confines (the corpus checks)
        assert declared is not None and name in declared, (
            f"{route.methods} {route.path} takes {name!r} but does not declare it in "
            "openapi_extra['x-loopml-confined']: confine it with loopml.server.paths.confine"
        )
    for route in api_routes(app):
        in_path, in_query = _params(route)
        declared = (route.openapi_extra or {}).get("x-loopml-confined", [])
        assert set(declared) <= in_path | in_query, (route.path, declared)
    document = client.get("/api/v1/openapi.json").json()
    marked = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, entry in item.items()
        if "x-loopml-confined" in entry
    }
    assert len(marked) >= 8


async def _asgi(
    app: FastAPI, method: str, path: str, query: str, body: bytes
) -> tuple[int, bytes]:
    """One request straight to the app, the way uvicorn hands it over: the raw target percent-
    decoded once into ``path``, the query string left raw."""
    raw = path.encode("utf-8", "surrogateescape")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": raw,
        "root_path": "",
        "query_string": query.encode("utf-8"),
        "headers": [(b"host", b"localhost"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5000),
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await anyio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception:
        status = status or 500
    return status, b"".join(chunks)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    tree: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if name.startswith("loopml.db"):
                continue  # the store's own database
            stat = path.lstat()
            tree[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return tree


def test_traversal_corpus(
    app: FastAPI, client: TestClient, tmp_path: Path, artifact_store: FsspecArtifactStore
) -> None:
    secret = f"SENTINEL-{uuid.uuid4().hex}".encode()
    art = Path(artifact_store.root)
    for place in (
        "secret.txt",
        "art/secret.txt",
        "art/objects/secret.txt",
        "art/uploads/secret.txt",
    ):
        (tmp_path / place).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / place).write_bytes(secret)
    outside = tmp_path / "art" / "uploads" / "secretdir"
    outside.mkdir()
    (outside / "started").write_bytes(b"")
    (outside / f"{0:020d}").write_bytes(secret)
    # A run with one real file, a real blob and an upload in progress, for the other parameters.
    project = client.post("/api/v1/projects", json={"name": "t"}).json()["project_id"]
    run_id = client.post(f"/api/v1/projects/{project}/runs", json={}).json()["run_id"]
    sha, size = artifact_store.put(b"inside")
    info = {"path": "ok.txt", "sha256": sha, "size": size}
    assert (
        client.post(f"/api/v1/runs/{run_id}/artifacts", json={"infos": [info]}).status_code < 300
    )
    upload_id = client.post("/api/v1/uploads").json()["upload_id"]
    fill = {
        "run_id": run_id,
        "sha256": sha,
        "upload_id": upload_id,
        "path": "ok.txt",
        "offset": "0",
    }
    assert art.is_dir()

    escapes, lookalikes = corpus()
    assert len(escapes) + len(lookalikes) > 200
    targets = path_taking_routes(app)
    before = _snapshot(tmp_path)
    bad: list[str] = []

    async def attack() -> int:
        sent = 0
        for route, name, _ in targets:
            in_path_names, in_query = _params(route)
            for method in sorted(route.methods or ()):
                for payload, escaping in [(p, True) for p in escapes] + [
                    (p, False) for p in lookalikes
                ]:
                    path = route.path
                    for other in in_path_names:
                        value = payload if other == name else fill[other]
                        # the raw target: characters a client may not send raw go encoded
                        raw = value if other == name else quote(value, safe="")
                        path = path.replace("{" + other + "}", quote(raw, safe="/%\\.:;"))
                    query = "&".join(
                        f"{q}={quote(payload if q == name else fill.get(q, 'false'), safe='%')}"
                        for q in sorted(in_query)
                        if q == name or q in fill
                    )
                    status, content = await _asgi(app, method, path, query, b"x")
                    sent += 1
                    where = f"{method} {path}?{query[:120]} -> {status}"
                    if secret in content or b"root:x:0:0" in content:
                        bad.append(f"{where}: leaked a file outside the root")
                    elif status >= 500:
                        bad.append(f"{where}: server error {content[:200]!r}")
                    elif (
                        escaping
                        and not 400 <= status < 500
                        and not (
                            # Starlette's trailing-slash redirect (to a path refused in turn)
                            status == 307 and unquote(path).endswith("/") and not content
                        )
                    ):
                        bad.append(f"{where}: not refused {content[:200]!r}")
                    elif (
                        status == 200
                        and route.name == "list_artifacts"
                        and b"ok.txt" not in content
                        and content != b"[]"
                    ):
                        bad.append(f"{where}: listed {content[:200]!r}")
        return sent

    logging.disable(logging.CRITICAL)
    try:
        sent = anyio.run(attack)
    finally:
        logging.disable(logging.NOTSET)
    assert sent > 2000
    assert not bad, f"{len(bad)} of {sent} requests:\n" + "\n".join(bad[:40])
    assert _snapshot(tmp_path) == before
    assert (outside / f"{0:020d}").read_bytes() == secret


# --- two server processes ------------------------------------------------------------------------

THREADS, RUNS, BATCHES, POINTS = 4, 2, 4, 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _loopml() -> list[str]:
    return [sys.executable, "-m", "loopml.cli"]


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[Callable[[str], list[str]]]:
    """``start(store_uri)``: two ``loopml server`` processes on one store and one artifact
    folder; their URLs. Every process is killed at teardown."""
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []

    def start(store_uri: str) -> list[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
        env["LOOPML_HOME"] = str(tmp_path / "home")
        urls = []
        for i in range(2):
            port = _free_port()
            log = tmp_path / f"server{i}.log"
            logs.append(log)
            with open(log, "wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            *_loopml(),
                            "server",
                            "--port",
                            str(port),
                            "--store",
                            store_uri,
                            "--artifacts",
                            str(tmp_path / "shared-art"),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=tmp_path,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=2) as http:
            for url, proc, log in zip(urls, procs[-2:], logs[-2:], strict=True):
                while True:
                    if proc.poll() is not None:
                        raise AssertionError(f"the server exited: {log.read_text()[-3000:]}")
                    try:
                        if http.get(url + "/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"the server did not start: {log.read_text()[-3000:]}"
                        )
                    time.sleep(0.1)
        return urls

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def _write_concurrently(urls: list[str]) -> None:
    stores = [RestStore(url) for url in urls]
    blobs = [HttpArtifactStore(store.transport, part_size=64 * 1024) for store in stores]
    try:
        project = stores[0].create_project(f"shared-{uuid.uuid4().hex[:8]}")
        assert stores[1].get_project(project.name).project_id == project.project_id
        listed = httpx.get(urls[1] + "/api/v1/projects", timeout=30).json()
        assert project.project_id in {p["project_id"] for p in listed}
        written: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()

        def work(thread: int) -> None:
            store, blob_store = stores[thread % 2], blobs[thread % 2]
            for r in range(RUNS):
                run = store.create_run(project.project_id, name=f"t{thread}-r{r}")
                expected: dict[str, Any] = {"params": {}, "tags": {}, "metrics": {}, "files": {}}
                for b in range(BATCHES):
                    metrics = [
                        Metric("loss", float(thread * 1e6 + b * POINTS + i), b * POINTS + i, 1)
                        for i in range(POINTS)
                    ]
                    params = [Param(f"p{b}", f"{thread}-{r}-{b}")]
                    tags = [Tag(f"t{b}", f"v{b}")]
                    # alternate servers within a run: both write the same rows
                    target = stores[(thread + b) % 2]
                    target.log_batch(run.run_id, metrics=metrics, params=params, tags=tags)
                    expected["metrics"].update({m.step: m.value for m in metrics})
                    expected["params"].update({p.key: p.value for p in params})
                    expected["tags"].update({t.key: t.value for t in tags})
                data = os.urandom(100_000 + thread * 1000 + r)  # two parts and more
                sha, size = blob_store.put(data)
                store.log_artifacts(run.run_id, [ArtifactInfo(f"model-{r}.bin", sha, size)])
                expected["files"][f"model-{r}.bin"] = hashlib.sha256(data).hexdigest()
                with lock:
                    written[run.run_id] = expected

        with ThreadPoolExecutor(THREADS) as pool:
            for future in [pool.submit(work, t) for t in range(THREADS)]:
                future.result()

        assert len(written) == THREADS * RUNS
        for store, blob_store in zip(stores, blobs, strict=True):
            page = store.search_runs([project.project_id], max_results=1000)
            assert {r.run_id for r in page.items} == set(written)
            for run_id, expected in written.items():
                run = store.get_run(run_id)
                assert dict(run.params) == expected["params"]
                assert dict(run.tags) == expected["tags"]
                history = store.get_metric_history(run_id, "loss")
                assert {m.step: m.value for m in history} == expected["metrics"]
                assert len(history) == BATCHES * POINTS
                files = {a.path: a.sha256 for a in store.list_artifacts(run_id)}
                assert files == expected["files"]
                for sha in files.values():
                    assert hashlib.sha256(blob_store.read(sha)).hexdigest() == sha
    finally:
        for store in stores:
            store.close()


def test_two_servers_on_one_sqlite_database_lose_nothing(
    two_servers: Callable[[str], list[str]], tmp_path: Path
) -> None:
    _write_concurrently(two_servers(f"sqlite:///{tmp_path / 'shared.db'}"))


@pytest.mark.postgres
def test_two_servers_on_one_postgres_database_lose_nothing(
    two_servers: Callable[[str], list[str]], pg_url: str
) -> None:
    _write_concurrently(two_servers(pg_url))
