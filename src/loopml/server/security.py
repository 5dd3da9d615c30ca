"""HTTP hardening of ``loopml server``: one pure-ASGI middleware in front of every route.

:func:`install` adds :class:`SecurityMiddleware`, which, in this order:

* refuses a ``Host`` the server does not answer to (400): a page on ``evil.example`` whose name
  is re-pointed at 127.0.0.1 (DNS rebinding) still sends ``Host: evil.example``. Allowed are
  ``--allowed-host`` names, the bound host, and localhost on any port; ``*`` allows any;
* refuses a state-changing request (POST, PUT, PATCH, DELETE) that a browser sent from another
  origin (403): its ``Origin`` (else ``Referer``) must be the server's own or an
  ``--allowed-origin``, and ``Sec-Fetch-Site`` must not be ``cross-site``. Requests with neither
  header (API clients, curl, the REST store) are not from a page, and pass;
* refuses a body over ``max_body_bytes`` (413): by ``Content-Length`` before the route runs, and
  by counting the chunks of a streamed body as the route reads them;
* adds security headers to every response (a Content-Security-Policy unless the route set its own,
  such as the artifact download's sandbox; HSTS on https only).

It is plain ASGI rather than ``BaseHTTPMiddleware``, so a request costs one pass over its headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from loopml.errors import InvalidArgument, LoopError, PayloadTooLarge, PermissionDenied
from loopml.server.settings import LOCAL_HOSTS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from fastapi import FastAPI

    from loopml.server.settings import ServerSettings

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityMiddleware", "install"]

STATE_CHANGING = frozenset(("POST", "PUT", "PATCH", "DELETE"))
#: The policy of every page: the server's own scripts, styles and images, no frames, no plugins.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'"
)
# FastAPI's Swagger page loads its scripts from a CDN and starts them with an inline script.
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_HSTS = (b"strict-transport-security", b"max-age=31536000")
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def install(app: FastAPI, settings: ServerSettings) -> None:
    """Add the security middleware to ``app``."""
    docs = frozenset(p for p in (app.docs_url, app.swagger_ui_oauth2_redirect_url) if p)
    app.add_middleware(SecurityMiddleware, settings=settings, docs_paths=docs)


def _split_host(value: str) -> tuple[str, str]:
    """``(host, port)`` of a ``Host`` header or netloc, lowercased, IPv6 brackets removed."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if value.count(":") > 1:  # a bare IPv6 address
        return value, ""
    host, _, port = value.partition(":")
    return host.rstrip("."), port


def _origin(url: str) -> tuple[str, str, str] | None:
    """``(scheme, host, port)`` of an origin or URL, the port made explicit; None if malformed."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        return None
    host, port = _split_host(parts.netloc.rpartition("@")[2])
    return scheme, host, port or _DEFAULT_PORTS[scheme]


class SecurityMiddleware:
    """Host allowlist, cross-origin write refusal, body limit and security headers (see the
    module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: ServerSettings,
        docs_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.limit = settings.max_body_bytes
        self.docs_paths = docs_paths
        hosts = {_split_host(h)[0] for h in settings.allowed_hosts}
        self.any_host = "*" in hosts
        self.subdomains = tuple(h[1:] for h in hosts if h.startswith("*."))
        if settings.host not in ("0.0.0.0", "::", ""):  # noqa: S104 - not a bind, a comparison
            hosts.add(_split_host(settings.host)[0])
        self.hosts = frozenset(hosts | LOCAL_HOSTS)
        self.origins = frozenset(o for o in map(_origin, settings.allowed_origins) if o)

    def _host_allowed(self, host: str) -> bool:
        return self.any_host or host in self.hosts or host.endswith(self.subdomains or ("\0",))

    def _cross_origin(self, scope: Scope, host: str, headers: dict[bytes, str]) -> str | None:
        """Why a state-changing request comes from another site, or None when it does not."""
        if headers.get(b"sec-fetch-site") == "cross-site":
            return "the browser marked it cross-site (Sec-Fetch-Site)"
        claimed = headers.get(b"origin") or headers.get(b"referer")
        if claimed is None:
            return None
        origin = _origin(claimed)
        if origin is None:
            return f"its origin {claimed!r:.100} is not a web origin"
        if origin in self.origins:
            return None
        scheme = str(scope.get("scheme", "http")).replace("ws", "http")
        own_host, own_port = _split_host(host)
        # https as well: behind a TLS-terminating proxy the page is https, the hop to us http.
        if origin[0] in (scheme, "https") and origin[1] == own_host:
            if origin[2] == (own_port or _DEFAULT_PORTS[origin[0]]):
                return None
        return f"it comes from {claimed!r:.100}, not from this server's pages"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in headers:  # only the first of a repeated header counts
                continue
            headers[name] = value.decode("latin-1")
        send = self._with_headers(scope, send)
        host = headers.get(b"host", "")
        if not self._host_allowed(_split_host(host)[0]):
            await _refuse(
                scope,
                send,
                InvalidArgument(
                    f"this server does not answer to host {host!r:.100}; if clients reach it by "
                    "that name, start it with --allowed-host NAME (LOOPML_SERVER_ALLOWED_HOSTS)"
                ),
            )
            return
        method = "POST" if kind == "websocket" else scope["method"]
        if method in STATE_CHANGING:
            why = self._cross_origin(scope, host, headers)
            if why is not None:
                await _refuse(
                    scope,
                    send,
                    PermissionDenied(
                        f"{method} {scope['path']!r:.200} is refused: {why}; to allow another "
                        "web origin, start the server with --allowed-origin ORIGIN"
                    ),
                )
                return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _refuse(scope, send, InvalidArgument("Content-Length is not a number"))
                return
            if int(declared) > self.limit:
                await _refuse(scope, send, PayloadTooLarge(self._too_large(int(declared))))
                return
        await self._limited(scope, receive, send)

    def _too_large(self, size: int) -> str:
        return (
            f"the request body is {size:,} bytes or more; this server accepts up to "
            f"{self.limit:,} per request (LOOPML_SERVER_MAX_BODY_BYTES); send a large file in "
            "parts (POST /api/v1/uploads), as the REST artifact store does"
        )

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app, refusing the body once its chunks pass the limit. The route then fails
        with :class:`PayloadTooLarge`, or with whatever it makes of it: either way, the answer
        is a 413 unless the route had already started its response."""
        received = 0
        over = started = replaced = False

        async def counting() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    over = True
                    raise PayloadTooLarge(self._too_large(received))
            return message

        async def guarded(message: Message) -> None:
            nonlocal started, replaced
            if over and not started:
                started = replaced = True
                await _refuse(scope, send, PayloadTooLarge(self._too_large(received)))
            if replaced:
                return  # the route's own answer (and its body) is replaced by the 413
            started = True
            await send(message)

        try:
            await self.app(scope, counting, guarded)
        except Exception:
            if not over or started:
                raise
            started = True
            await _refuse(scope, send, PayloadTooLarge(self._too_large(received)))

    def _with_headers(self, scope: Scope, send: Send) -> Send:
        policy = _DOCS_POLICY if scope.get("path") in self.docs_paths else CONTENT_SECURITY_POLICY
        extra = [*_HEADERS, (b"content-security-policy", policy.encode())]
        if scope.get("scheme") in ("https", "wss"):
            extra.append(_HSTS)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        return sending


async def _refuse(scope: Scope, send: Send, error: LoopError) -> None:
    """Answer ``error`` as the API's JSON error body (a websocket is closed instead)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": error.code})
        return
    body = orjson.dumps(error.to_dict())
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
