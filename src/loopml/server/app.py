"""The ``loopml server`` application: the REST API, blobs, sign-in and the web UI on one store.

:func:`create_app` builds it from :class:`~loopml.server.settings.ServerSettings` (or from a
store and an artifact store, for tests and embedding). The server holds no state of its own
beyond caches of facts that never change, so any number of processes on one database and one
artifact store behave as one server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loopml._version import __version__
from loopml.errors import InvalidArgument, LoopError
from loopml.server import security
from loopml.server.api import ProjectResolver, build_api_router, error_response
from loopml.server.auth_routes import build_auth_router
from loopml.server.blobs import build_blob_router
from loopml.server.principal import Gate, OpenGate
from loopml.server.scheduler import ServerScheduler, build_scheduler_router
from loopml.server.settings import ServerSettings
from loopml.server.ui import build_ui_router
from loopml.store.rest.operations import API_PREFIX

if TYPE_CHECKING:
    from loopml.store.artifacts import FsspecArtifactStore
    from loopml.store.base import Store

__all__ = ["create_app", "create_app_from_env"]

_log = logging.getLogger("loopml.server")

_STATUS_CODES = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


def _open_gate(settings: ServerSettings, store: Store) -> Gate:
    if not settings.auth:
        return OpenGate()
    from loopml.server import auth

    gate: Gate = auth.TokenGate(store, settings)
    return gate


def create_app(
    settings: ServerSettings | None = None,
    *,
    store: Store | None = None,
    artifacts: FsspecArtifactStore | None = None,
    gate: Gate | None = None,
) -> FastAPI:
    """The server's ASGI application.

    Args:
        settings: the server's settings (``LOOPML_SERVER_*`` by default).
        store: the metadata store (else ``settings.store``, else the home's database).
        artifacts: the artifact store (else ``settings.artifacts``, else beside the store).
        gate: authentication and roles (else from ``settings.auth``).
    """
    settings = settings or ServerSettings()
    if store is None or artifacts is None:
        from loopml.client import Client

        client = Client(tracking_uri=settings.store, artifact_uri=settings.artifacts)
        store = store or client.store
        if artifacts is None:
            from loopml.store.artifacts import FsspecArtifactStore

            opened = client.artifacts
            if not isinstance(opened, FsspecArtifactStore):
                raise InvalidArgument(
                    f"the server needs a folder or fsspec artifact store, not {opened!r}"
                )
            artifacts = opened
    app = FastAPI(
        title="loopml",
        version=__version__,
        description="The loopml team server: the REST API of the metadata and artifact stores.",
        openapi_url=API_PREFIX + "/openapi.json",
        docs_url=API_PREFIX + "/docs",
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.artifacts = artifacts
    app.state.gate = gate or _open_gate(settings, store)
    app.state.resolver = ProjectResolver(store)
    schema_defs: dict[str, Any] = {}
    app.include_router(build_api_router(schema_defs))
    app.include_router(build_blob_router())
    app.include_router(build_auth_router())
    app.include_router(build_ui_router())
    app.include_router(build_scheduler_router())
    security.install(app, settings)
    _add_routes(app)
    _add_error_handlers(app)
    _extend_openapi(app, schema_defs)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the scheduled work with the server (``settings.scheduler``); stop it after."""
    settings: ServerSettings = app.state.settings
    scheduler = None
    if settings.scheduler:
        scheduler = ServerScheduler(
            app.state.store,
            app.state.artifacts,
            schedules=settings.schedules,
            policies=settings.policies,
            interval=settings.scheduler_interval,
        )
        app.state.scheduler = scheduler
        scheduler.start()
    try:
        yield
    finally:
        if scheduler is not None:
            app.state.scheduler = None
            await run_in_threadpool(scheduler.stop)


def create_app_from_env() -> FastAPI:
    """The app of ``loopml server``'s worker processes (settings from ``LOOPML_SERVER_*``)."""
    import os

    known = {f"LOOPML_SERVER_{name.upper()}" for name in ServerSettings.model_fields}
    for key in sorted(os.environ):
        if key.startswith("LOOPML_SERVER_") and key not in known:
            _log.warning("loopml server: ignoring unknown setting %s (see docs/server.md)", key)
    return create_app(ServerSettings())


def _add_routes(app: FastAPI) -> None:
    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get(API_PREFIX + "/version", tags=["server"])
    async def version(request: Request) -> dict[str, Any]:
        """The server's version and whether it asks for credentials."""
        return {"version": __version__, "auth": request.app.state.gate.enabled}


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LoopError)
    async def loop_error(request: Request, exc: LoopError) -> Response:
        if exc.http_status >= 500:
            _log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors()[:10]:
            where = ".".join(str(p) for p in error.get("loc", ()))
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return error_response(
            InvalidArgument(
                f"{request.method} {request.url.path}: {'; '.join(problems)}; see "
                f"{API_PREFIX}/docs for the parameters"
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "INVALID_ARGUMENT")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = (
                f"no such route: {request.method} {request.url.path}; the API is listed at "
                f"{API_PREFIX}/docs"
            )
        elif exc.status_code == 405:
            message = f"{request.url.path} does not take {request.method}"
        import orjson

        return Response(
            orjson.dumps({"error_code": code, "message": message}),
            status_code=exc.status_code,
            media_type="application/json",
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        _log.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            LoopError(
                f"the server failed on {request.method} {request.url.path}: "
                f"{type(exc).__name__}; the server log has the details"
            )
        )


def _extend_openapi(app: FastAPI, schema_defs: dict[str, Any]) -> None:
    """Put the request bodies' shared definitions in the OpenAPI document's components."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for name, schema in schema_defs.items():
                schemas.setdefault(name, schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
