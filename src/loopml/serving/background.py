"""A server in a background thread of this process: for notebooks, examples and tests.

    with loopml.serving.Server("models:/churn@champion") as server:
        httpx.post(server.url + "/predict", json={"rows": [...]})

It is the same app as ``loopml serve`` (one worker, uvicorn), stopped gracefully when the
``with`` block ends (the prediction log is flushed).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopError

if TYPE_CHECKING:
    from types import TracebackType

    from loopml.client import Client
    from loopml.serving.app import ServingApp

__all__ = ["Server"]


class Server:
    """Serve a model (or a stored deployment) from a thread of this process.

    Args:
        model_uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or a model folder; None
            with ``deployment``.
        deployment: serve this stored deployment instead (following its changes).
        name: the endpoint's name (default: the model's name).
        host, port: where to listen (port 0: a free port; see :attr:`url`).
        settings: server settings (see :class:`~loopml.serving.config.ServerSettings`), e.g.
            ``{"batching": {"enabled": False}, "prediction_log": {"enabled": False}}``.
        client: the store (default: the fluent API's).
        project: the project.

    Attributes:
        url: ``http://host:port`` once started.
        app: the ASGI app (its ``endpoint``, ``metrics`` and ``logger``).
    """

    def __init__(
        self,
        model_uri: str | None = None,
        *,
        deployment: str | None = None,
        name: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: dict[str, Any] | None = None,
        client: Client | None = None,
        project: str | None = None,
    ) -> None:
        from loopml.client import context
        from loopml.serving.server import ServeSpec

        if (model_uri is None) == (deployment is None):
            raise LoopError("give a model URI or a deployment name (one of them)")
        self.client = client or context.get_client()
        if deployment is not None:
            spec = ServeSpec(name=deployment, project=project)
        else:
            assert model_uri is not None
            endpoint = name or _model_name(model_uri)
            route = {"name": "primary", "model_uri": model_uri, "role": "primary"}
            spec = ServeSpec(name=endpoint, routes=[route], project=project)
        spec.settings = dict(settings or {})
        self.spec = spec
        self.host, self.port = host, port
        self.url = ""
        self.app: ServingApp | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_app(cls, app: ServingApp, *, host: str = "127.0.0.1", port: int = 0) -> Server:
        """A server for an app already built (with :func:`~loopml.serving.server.build_app`);
        start it with :meth:`serve_app`."""
        server = cls.__new__(cls)
        server.host, server.port, server.url = host, port, ""
        server.app, server._server, server._thread = app, None, None
        return server

    def serve_app(self, timeout: float = 60.0) -> Server:
        """Start listening with the app already built; returns when the server answers."""
        self._serve(timeout)
        return self

    def start(self, timeout: float = 60.0) -> Server:
        """Load the models and start listening; returns when the server answers."""
        from loopml.serving.server import build_app

        self.app = build_app(self.spec, client=self.client)
        self._serve(timeout)
        return self

    def _serve(self, timeout: float = 60.0) -> None:
        import uvicorn

        if self.app is None:
            raise LoopError("no app to serve; call start()")
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            loop="asyncio",
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="loopml-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise LoopError(f"the server did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{self.host}:{port}"

    def stop(self, timeout: float = 60.0) -> None:
        """Stop gracefully: in-flight requests finish, the prediction log is flushed."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _model_name(uri: str) -> str:
    if uri.startswith("models:/"):
        from loopml.client.registry import parse_model_uri

        return parse_model_uri(uri)[0]
    from pathlib import Path

    return Path(uri.rstrip("/")).name or "model"
