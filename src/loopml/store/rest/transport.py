"""The HTTP connection to ``loopml server``: one pooled httpx client, errors turned back into
loopml errors, and retries where a request cannot have reached the server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from loopml.errors import InvalidArgument, LoopError, StoreError, from_code

__all__ = ["Transport", "mask_url"]

_RETRIES = 4
_BACKOFF = 0.25


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class Transport:
    """Requests to one server. Thread-safe (httpx's client is), reused across calls.

    Args:
        base_url: the server's URL (``http://host:5000``); ``/api/v1`` is added.
        token: an API token, sent as ``Authorization: Bearer <token>``.
        timeout: seconds to wait for the server (connect and each read).
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(
                f"server URL {mask_url(base_url)!r} is not an http(s) URL with a host; "
                "write it as http://host:5000"
            )
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "loopml-rest-store", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._lock = threading.Lock()
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | Iterator[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request and return the response; a non-2xx answer raises the loopml error
        the server named (``RUN_NOT_FOUND`` raises :class:`~loopml.errors.RunNotFound`).
        ``json_body`` is JSON-ready already (:func:`loopml.store.rest.codec.to_json`)."""
        body = orjson.dumps(json_body) if json_body is not None else content
        all_headers = dict(headers or {})
        if json_body is not None:
            all_headers["Content-Type"] = "application/json"
        for attempt in range(_RETRIES):
            try:
                response = self._client.request(
                    method, path, params=params, content=body, headers=all_headers
                )
            except httpx.ConnectError as exc:
                # Nothing reached the server: safe to send again, whatever the method.
                if attempt + 1 < _RETRIES and not isinstance(body, Iterator):
                    time.sleep(_BACKOFF * 2**attempt)
                    continue
                raise StoreError(
                    f"cannot reach loopml server {mask_url(self.base_url)}: {exc}; check it is "
                    "running (loopml server) and the URL, host and port are right"
                ) from exc
            except httpx.HTTPError as exc:
                raise StoreError(
                    f"request {method} {path} to {mask_url(self.base_url)} failed: {exc}"
                ) from exc
            if response.status_code < 400:
                return response
            raise error_of(response)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def stream(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """A streamed response (a download); errors as in :meth:`request`."""
        try:
            with self._client.stream(method, path, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response)
                yield response
        except httpx.HTTPError as exc:
            raise StoreError(
                f"request {method} {path} to {mask_url(self.base_url)} failed: {exc}"
            ) from exc


def error_of(response: httpx.Response) -> LoopError:
    """The loopml error an error response carries (a plain :class:`StoreError` when the body is
    not one of ours, such as a proxy's error page)."""
    try:
        body = response.json()
        code, message = body["error_code"], body["message"]
        details = body.get("details")
    except (ValueError, KeyError, TypeError):
        text = response.text[:300]
        return StoreError(
            f"loopml server answered {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: {text!r}"
        )
    return from_code(str(code), str(message), details if isinstance(details, dict) else None)
