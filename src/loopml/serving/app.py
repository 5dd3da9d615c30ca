"""The serving ASGI application: three protocols, routing, batching, logging, metrics.

A small hand-written ASGI app rather than a web framework: the request path is the product
here, and without a framework's request objects and middleware a request costs about a third
less CPU. Routes:

==========================================  =====================================================
``POST /predict``                           loopml's JSON (:mod:`~loopml.serving.protocols.native`)
``POST /invocations``                       MLflow's scoring protocol
``GET /ping``, ``/health``, ``/version``    MLflow's health and version routes
``POST /v2/models/{m}[/versions/{v}]/infer``  Open Inference Protocol v2
``GET /v2``, ``/v2/health/live|ready``,     v2 server and model metadata and health
``/v2/models/{m}[/versions/{v}][/ready]``
``GET /ready``                              readiness (every route loaded)
``GET /metrics``                            Prometheus
``GET /openapi.json``                       the OpenAPI document of these routes
==========================================  =====================================================
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml._version import __version__
from loopml.errors import LoopError, NotFound, SignatureMismatch
from loopml.serving.batcher import Overloaded
from loopml.serving.endpoint import Endpoint, RouteState
from loopml.serving.prediction_log import prediction_ids
from loopml.serving.protocols import BadRequest, Payload, PayloadTooLarge, dumps, native, v2
from loopml.serving.protocols import mlflow as mlflow_protocol
from loopml.serving.runtime import Outputs

if TYPE_CHECKING:
    from loopml.serving.metrics import ServingMetrics
    from loopml.serving.prediction_log import PredictionLogger

__all__ = ["ModelFailed", "ModelRefusedInput", "ServingApp"]

_log = logging.getLogger("loopml.serving")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_JSON = b"application/json"


class ModelFailed(LoopError):
    """The model raised on input that passed its signature (HTTP 500)."""

    code = "MODEL_FAILED"
    http_status = 500


class ModelRefusedInput(ModelFailed):
    """The model raised ``ValueError`` or ``TypeError`` on input that passed its signature
    (HTTP 422): values it cannot take, such as NaN for most scikit-learn models."""

    code = "MODEL_REFUSED_INPUT"
    http_status = 422


class _Gone(Exception):
    """The client disconnected before its body arrived."""


class ServingApp:
    """The ASGI app for one endpoint.

    Args:
        endpoint: the loaded routes.
        metrics: where to count (None: no ``/metrics``).
        logger: the prediction log (None: predictions are not recorded).
        max_body: the largest body, in bytes (413 beyond).
        access_log: write one JSON line per request to stderr.
        on_startup, on_shutdown: coroutines run by the ASGI lifespan (the server starts its
            watcher there, and flushes the prediction log).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        metrics: ServingMetrics | None = None,
        logger: PredictionLogger | None = None,
        max_body: int = 16 * 2**20,
        access_log: bool = False,
        on_startup: Callable[[], Awaitable[None]] | None = None,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.metrics = metrics
        self.logger = logger
        self.max_body = max_body
        self.ready = True
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        self._prefix = secrets.token_hex(5)
        self._counter = 0
        self._shadow_tasks: set[asyncio.Future[Any]] = set()
        self._access: list[bytes] | None = [] if access_log else None
        self._gets: dict[str, Callable[[], tuple[int, bytes, bytes]]] = {
            "/ping": lambda: (200, b"\n", b"text/plain"),
            "/health": lambda: (200, b"\n", b"text/plain"),
            "/version": lambda: (200, __version__.encode(), b"text/plain"),
            "/v2": self._server_metadata,
            "/v2/health/live": lambda: (200, b'{"live":true}', _JSON),
            "/v2/health/ready": self._ready,
            "/ready": self._ready,
            "/metrics": self._metrics,
            "/openapi.json": self._openapi,
            "/": self._index,
        }

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._on_startup is not None:
                        await self._on_startup()
                    if self._access is not None:
                        self._flusher = asyncio.ensure_future(self._flush_access_log())
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return

    async def shutdown(self) -> None:
        """Finish shadows, flush the access and prediction logs, run ``on_shutdown``."""
        if self._shadow_tasks:
            await asyncio.wait(list(self._shadow_tasks), timeout=10)
        if self._on_shutdown is not None:
            await self._on_shutdown()
        if self._access:
            self._write_access()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        method, path = scope["method"], scope["path"]
        if method == "POST":
            if path == "/predict":
                return await self._predict(scope, receive, send, "native", start)
            if path == "/invocations":
                return await self._predict(scope, receive, send, "mlflow", start)
            if path.startswith("/v2/models/") and path.endswith("/infer"):
                return await self._predict(scope, receive, send, "v2", start)
        if method in ("GET", "HEAD"):
            get = self._gets.get(path)
            if get is not None:
                status, body, ctype = get()
                return await self._respond(send, status, body, ctype, scope, start)
            if path.startswith("/v2/models/"):
                status, body = self._model_route(path)
                return await self._respond(send, status, body, _JSON, scope, start)
        known = (
            path in self._gets
            or path in ("/predict", "/invocations")
            or (path.startswith("/v2/models/"))
        )
        if known:
            body = dumps({"error": f"method {method} is not allowed on {path}"})
            return await self._respond(send, 405, body, _JSON, scope, start)
        body = dumps({"error": f"no route {path}; see /openapi.json for the routes"})
        await self._respond(send, 404, body, _JSON, scope, start)

    # --- prediction ----------------------------------------------------------------------------

    async def _predict(
        self, scope: Scope, receive: Receive, send: Send, protocol: str, start: float
    ) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        state: RouteState | None = None
        routed: list[RouteState] = []  # the route that took the request, once one did
        try:
            body = await self._body(headers, receive)
            pin: tuple[str, str | None] | None = None
            if protocol == "native":
                payload = native.parse(body)
            elif protocol == "mlflow":
                payload = mlflow_protocol.parse(body, headers.get("content-type", ""))
            else:
                pin = _v2_target(scope["path"])
                payload = v2.parse(body, headers)
            if payload.key is None and self.endpoint.sticky_key is not None:
                payload.key = _sticky(payload, headers, self.endpoint.sticky_key)
            state, decoded, outputs, rid = await self._serve(payload, pin, start, routed)
        except _Gone:
            return
        except Exception as exc:
            state = routed[-1] if routed else None
            error = _as_error(exc)
            if error.http_status >= 500 and not isinstance(error, Overloaded):
                _log.error("request failed: %s", error, exc_info=exc)
            status = error.http_status
            extra = [(b"retry-after", b"1")] if isinstance(error, Overloaded) else []
            if protocol == "native":
                err = native.error_body(error)
            elif protocol == "mlflow":
                err = mlflow_protocol.error_body(error)
            else:
                err = v2.error_body(error)
            if self.metrics is not None:
                if state is None:
                    self.metrics.rejected(protocol, status)
                else:
                    self.metrics.request(
                        state.name,
                        state.runtime.label,
                        protocol,
                        status,
                        time.perf_counter() - start,
                    )
            return await self._respond(send, status, err, _JSON, scope, start, extra, protocol)
        ids = prediction_ids(rid, decoded.rows)
        if protocol == "native":
            out = native.response_body(outputs, state.runtime, state.name, ids)
        elif protocol == "mlflow":
            out = mlflow_protocol.response_body(outputs)
        else:
            out = v2.response_body(outputs, state.runtime, payload.request_id, ids)
        extra = [
            (b"x-request-id", rid.encode()),
            (b"x-model-version", state.runtime.label.encode()),
            (b"x-route", state.name.encode()),
        ]
        seconds = time.perf_counter() - start
        if self.metrics is not None:
            self.metrics.request(state.name, state.runtime.label, protocol, 200, seconds)
        await self._respond(send, 200, out, _JSON, scope, start, extra, protocol, state, rid)

    async def _serve(
        self,
        payload: Payload,
        pin: tuple[str, str | None] | None,
        start: float,
        routed: list[RouteState],
    ) -> tuple[RouteState, Any, Outputs, str]:
        """Route and run the request; ``routed`` gets the route that answers (a canary's
        failure hands the request to the primary), so that a failure counts on its route."""
        endpoint = self.endpoint
        if pin is not None:
            pinned = endpoint.find(*pin)
            if pinned is None:
                name, version = pin
                what = name if version is None else f"{name} version {version}"
                raise NotFound(
                    f"model {what} is not served here; models: {sorted(endpoint.names())}"
                )
            # a version, or a model only a canary serves, pins the route; else normal routing
            state = endpoint.pick(payload.key) if pinned is endpoint.primary else pinned
        else:
            state = endpoint.pick(payload.key)
        routed.append(state)
        decoded = outputs = None
        if state.role != "primary":  # a canary: its failures fall back to the primary
            try:
                decoded = payload.decode(state.runtime)
                outputs = await state.batcher.submit(decoded, payload.method)
            except Exception as exc:
                if isinstance(exc, Overloaded):
                    raise
                if self.metrics is not None:
                    refused = isinstance(exc, SignatureMismatch)
                    self.metrics.fallback(state.name, state.runtime.label, refused)
                state, decoded, outputs = endpoint.primary, None, None
                routed.append(state)
        if outputs is None:
            decoded = payload.decode(state.runtime)
            try:
                outputs = await state.batcher.submit(decoded, payload.method)
            except LoopError:
                raise
            except Exception as exc:
                if self.metrics is not None:
                    self.metrics.route_error(state.name, state.runtime.label, "model_error")
                raise _model_failed(exc) from exc
        assert decoded is not None
        self._counter += 1
        rid = f"{self._prefix}{self._counter:x}"
        latency_ms = (time.perf_counter() - start) * 1000
        for shadow in endpoint.shadow_targets(payload.key) if endpoint.shadows else ():
            self._shadow(shadow, payload, outputs, rid)
        if self.logger is not None:
            self.logger.record(
                rid,
                decoded,
                outputs,
                route=state.name,
                model_version=state.runtime.label,
                latency_ms=latency_ms,
            )
        return state, decoded, outputs, rid

    def _shadow(self, state: RouteState, payload: Payload, primary: Outputs, rid: str) -> None:
        """Send a copy of the request to a shadow; its answer is logged and compared, never
        returned."""
        metrics = self.metrics
        label = state.runtime.label
        try:
            decoded = payload.decode(state.runtime)
        except Exception:
            if metrics is not None:
                metrics.route_error(state.name, label, "refused_input")
                metrics.shadow(state.name, label, "error", status=400)
            return
        started = time.perf_counter()
        task = asyncio.ensure_future(state.batcher.submit(decoded, "predict"))
        self._shadow_tasks.add(task)

        def done(fut: asyncio.Future[Outputs]) -> None:
            self._shadow_tasks.discard(fut)
            if fut.cancelled() or fut.exception() is not None:
                if metrics is not None:
                    metrics.route_error(state.name, label, "model_error")
                    metrics.shadow(state.name, label, "error")
                return
            outputs = fut.result()
            if metrics is not None:
                agree = _same(outputs.predictions, primary.predictions)
                metrics.shadow(state.name, label, "agree" if agree else "disagree")
            if self.logger is not None:
                self.logger.record(
                    rid,
                    decoded,
                    outputs,
                    route=state.name,
                    model_version=label,
                    latency_ms=(time.perf_counter() - started) * 1000,
                )

        task.add_done_callback(done)

    async def _body(self, headers: Mapping[str, str], receive: Receive) -> bytes:
        limit = self.max_body
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(_too_large(int(length), limit))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(_too_large(size, limit))
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # --- responses -----------------------------------------------------------------------------

    async def _respond(
        self,
        send: Send,
        status: int,
        body: bytes,
        content_type: bytes,
        scope: Scope,
        start: float,
        extra: list[tuple[bytes, bytes]] | None = None,
        protocol: str = "",
        state: RouteState | None = None,
        rid: str = "",
    ) -> None:
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
        if self._access is not None:
            line = {
                "ts": round(time.time(), 3),
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "ms": round((time.perf_counter() - start) * 1000, 3),
                "client": (scope.get("client") or ("", 0))[0],
            }
            if state is not None:
                line.update(route=state.name, model=state.runtime.label, request_id=rid)
            if protocol:
                line["protocol"] = protocol
            self._access.append(dumps(line))

    async def _flush_access_log(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            if self._access:
                self._write_access()

    def _write_access(self) -> None:
        assert self._access is not None
        lines, self._access[:] = list(self._access), []
        try:
            sys.stderr.buffer.write(b"\n".join(lines) + b"\n")
            sys.stderr.buffer.flush()
        except (OSError, ValueError, AttributeError):  # stderr closed or not binary
            pass

    # --- metadata routes -----------------------------------------------------------------------

    def _ready(self) -> tuple[int, bytes, bytes]:
        if self.ready:
            return 200, b'{"ready":true}', _JSON
        return 503, b'{"ready":false}', _JSON

    def _server_metadata(self) -> tuple[int, bytes, bytes]:
        return 200, dumps({"name": "loopml", "version": __version__, "extensions": []}), _JSON

    def _metrics(self) -> tuple[int, bytes, bytes]:
        if self.metrics is None:
            return 404, dumps({"error": "metrics are off"}), _JSON
        from loopml.serving.metrics import CONTENT_TYPE

        return 200, self.metrics.render(), CONTENT_TYPE.encode()

    def _openapi(self) -> tuple[int, bytes, bytes]:
        from loopml.serving.openapi import document

        return 200, dumps(document(self.endpoint)), _JSON

    def _index(self) -> tuple[int, bytes, bytes]:
        ep = self.endpoint
        routes = [
            {
                "name": s.name,
                "role": str(s.role),
                "weight": s.route.weight,
                "model_uri": s.route.model_uri,
                "model_version": s.runtime.label,
            }
            for s in ep.states
        ]
        return 200, dumps({"endpoint": ep.name, "revision": ep.revision, "routes": routes}), _JSON

    def _model_route(self, path: str) -> tuple[int, bytes]:
        parts = path[len("/v2/models/") :].split("/")
        ready = parts[-1] == "ready"
        if ready:
            parts = parts[:-1]
        if len(parts) == 1:
            name, version = parts[0], None
        elif len(parts) == 3 and parts[1] == "versions":
            name, version = parts[0], parts[2]
        else:
            return 404, dumps({"error": f"no route {path}"})
        state = self.endpoint.find(name, version)
        if state is None:
            what = name if version is None else f"{name} version {version}"
            return 404, dumps({"error": f"Model {what} not found"})
        if ready:
            return (200 if self.ready else 503), dumps({"name": name, "ready": self.ready})
        versions = self.endpoint.versions(name)
        return 200, dumps(v2.model_metadata(state.runtime, name, versions))


def _v2_target(path: str) -> tuple[str, str | None]:
    parts = path[len("/v2/models/") : -len("/infer")].split("/")
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 3 and parts[1] == "versions" and parts[0] and parts[2]:
        return parts[0], parts[2]
    raise BadRequest(f"{path} is not /v2/models/NAME[/versions/VERSION]/infer")


def _sticky(payload: Payload, headers: Mapping[str, str], field: str) -> str | None:
    """The sticky key: the header or, for tabular input, the first row's value of the field."""
    value = headers.get(field.lower())
    if value is not None:
        return value
    data = payload.data
    try:
        if payload.kind == "records":
            found = data[0].get(field)
        elif payload.kind == "columns":
            found = data.get(field, [None])[0]
        else:
            return None
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return None if found is None else str(found)


def _same(a: Any, b: Any) -> bool:
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return False
    if x.dtype.kind == "f" or y.dtype.kind == "f":
        try:
            return bool(np.allclose(x, y, rtol=1e-6, atol=1e-9, equal_nan=True))
        except TypeError:
            return False
    return bool(np.array_equal(x, y))


def _too_large(size: int, limit: int) -> str:
    return (
        f"the body is {size:,} bytes, over this server's limit of {limit:,}; send fewer rows "
        "per request, or raise the limit (loopml serve --max-body-mb)"
    )


def _model_failed(exc: BaseException) -> ModelFailed:
    message = f"the model failed on this input: {type(exc).__name__}: {str(exc)[:500]}"
    if isinstance(exc, ValueError | TypeError):
        return ModelRefusedInput(message)
    return ModelFailed(message)


def _as_error(exc: BaseException) -> LoopError:
    if isinstance(exc, LoopError):
        return exc
    if isinstance(exc, ValueError | TypeError):  # input the protocol layer could not take
        return BadRequest(f"the request could not be read: {type(exc).__name__}: {exc}"[:600])
    return ModelFailed(f"internal error: {type(exc).__name__}: {str(exc)[:300]}")
