"""Fixtures of the server tests: an app on a fresh SQLite store and artifact folder, a
``TestClient`` on it, and real servers (uvicorn in a thread) on free ports.

* ``server_settings``: the app's :class:`ServerSettings` (localhost, no auth); override the
  fixture, or use ``make_app(**overrides)``, for other settings.
* ``store`` / ``artifact_store``: a :class:`SqlStore` at ``tmp_path/loopml.db`` and a
  :class:`FsspecArtifactStore` at ``tmp_path/art``.
* ``make_app(**overrides)``: another app on the same store and artifacts, with settings changed.
* ``app``, ``client``: the app, and a ``TestClient`` with ``base_url="http://localhost"`` (the
  server refuses hosts it does not know, and ``testserver`` is not one).
* ``serve(app)``: runs ``app`` under uvicorn on a free port and returns its base URL; every server
  is stopped at teardown. ``live_server``: ``serve(app)``.
"""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

with warnings.catch_warnings():
    # Starlette asks for its httpx2 fork for the test client; httpx works and is what we ship.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from loopml.server.app import create_app
from loopml.server.settings import ServerSettings
from loopml.store.artifacts import FsspecArtifactStore
from loopml.store.sql import SqlStore

BASE_URL = "http://localhost"


@pytest.fixture
def server_settings() -> ServerSettings:
    return ServerSettings(host="127.0.0.1", auth=False, allowed_hosts=(), allowed_origins=())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore(f"sqlite:///{tmp_path / 'loopml.db'}")
    yield opened
    opened.close()


@pytest.fixture
def artifact_store(tmp_path: Path) -> FsspecArtifactStore:
    return FsspecArtifactStore(str(tmp_path / "art"))


@pytest.fixture
def make_app(
    server_settings: ServerSettings, store: SqlStore, artifact_store: FsspecArtifactStore
) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        settings = server_settings.model_copy(update=overrides) if overrides else server_settings
        return create_app(settings, store=store, artifacts=artifact_store)

    return make


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


class _Served:
    def __init__(self, app: FastAPI) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="auto", ws="none", server_header=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], str]]:
    started: list[_Served] = []

    def run(app: FastAPI) -> str:
        served = _Served(app)
        started.append(served)
        return served.start()

    yield run
    for served in reversed(started):
        served.stop()


@pytest.fixture
def live_server(app: FastAPI, serve: Callable[[FastAPI], str]) -> str:
    return serve(app)
