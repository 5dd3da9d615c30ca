"""The REST store and the HTTP artifact store pass the same conformance suites as the local
stores, against a live ``loopml server`` (uvicorn on a real socket): the metadata store suite on
SQLite and on PostgreSQL behind the server, and the artifact store suite through the blob routes
(with parts small enough that uploads span many)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn

from loopml.server.api import ProjectResolver
from loopml.server.app import create_app
from loopml.store import Store, open_store
from loopml.store.artifacts import ArtifactStore, FsspecArtifactStore, blob_key
from loopml.store.rest import HttpArtifactStore, RestStore
from loopml.testing import StoreSuite
from loopml.testing.artifact_suite import ArtifactStoreSuite
from loopml.testing.store_suite_deployments import DeploymentSuite
from loopml.testing.store_suite_leases import LeaseSuite
from loopml.testing.store_suite_monitors import MonitorSuite


class _LiveServer:
    """A real server in a thread whose store and artifact store a test may swap."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = open_store(f"sqlite:///{root}/first.db")
        self.app = create_app(store=self.store, artifacts=FsspecArtifactStore(str(root / "art")))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def use(self, store: Store, artifacts: FsspecArtifactStore | None = None) -> None:
        self.app.state.store = store
        self.app.state.resolver = ProjectResolver(store)
        if artifacts is not None:
            self.app.state.artifacts = artifacts

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_LiveServer]:
    server = _LiveServer(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


class _RestSuites(StoreSuite, DeploymentSuite, MonitorSuite, LeaseSuite):
    pass


class TestRestStoreOnSqlite(_RestSuites):
    @pytest.fixture
    def store(self, live: _LiveServer, tmp_path: Path) -> Iterator[Store]:
        backend = open_store(f"sqlite:///{tmp_path}/t.db")
        live.use(backend)
        client = RestStore(live.url)
        yield client
        client.close()
        backend.close()


@pytest.mark.postgres
class TestRestStoreOnPostgres(_RestSuites):
    @pytest.fixture
    def store(
        self, live: _LiveServer, pg_url: str, pg_truncate: Callable[[], None]
    ) -> Iterator[Store]:
        pg_truncate()
        backend = open_store(pg_url)
        live.use(backend)
        client = RestStore(live.url)
        yield client
        client.close()
        backend.close()


class TestHttpArtifactStore(ArtifactStoreSuite):
    @pytest.fixture
    def artifact_store(
        self, live: _LiveServer, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[HttpArtifactStore]:
        backend = FsspecArtifactStore(str(tmp_path_factory.mktemp("server") / "artifacts"))
        live.use(live.app.state.store, backend)
        self._backend = backend
        store = HttpArtifactStore(live.url, part_size=256 * 1024)
        yield store

    def corrupt(self, artifact_store: ArtifactStore, sha256: str) -> None:
        (Path(self._backend.root) / blob_key(sha256)).write_bytes(b"tampered")
