"""The REST store: the :class:`~loopml.store.Store` contract over HTTP, to ``loopml server``.

Every public store method is one request, built from the operation table
(:mod:`loopml.store.rest.operations`) that the server builds its routes from. The arguments are
checked by the server (which calls the SQL store's public methods), so a bad argument raises the
same error here as against a local store, and every error the server names comes back as its
loopml class.
"""

from __future__ import annotations

import abc
import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from loopml.entities import Project
from loopml.errors import AlreadyExists, ProjectNotFound
from loopml.store.base import Store
from loopml.store.deployments import UNSET
from loopml.store.rest import codec
from loopml.store.rest.operations import API_PREFIX, OPERATIONS, Operation
from loopml.store.rest.transport import Transport, mask_url

__all__ = ["RestStore", "query_value"]


def query_value(value: Any) -> str:
    """A parameter as it travels in a query string or a path segment."""
    value = codec.to_json(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RestStore(Store):
    """A store that is a ``loopml server``: ``RestStore("http://host:5000", token=...)``.

    Thread-safe: one pooled HTTP client serves every thread. Entities come back as new objects,
    so the contract's immutability holds by construction.

    Args:
        url: the server's URL.
        token: an API token (``loopml server`` with ``--auth``); ``LOOPML_TRACKING_TOKEN`` by
            default.
        timeout: seconds to wait for the server.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        if token is None:
            from loopml.config import get_settings

            token = get_settings().tracking_token
        self._transport = Transport(url, token=token, timeout=timeout)
        self.uri = mask_url(self._transport.base_url)

    @property
    def transport(self) -> Transport:
        """The HTTP connection (the artifact store over the same server shares it)."""
        return self._transport

    def __repr__(self) -> str:
        return f"RestStore({self.uri!r})"

    def close(self) -> None:
        self._transport.close()

    def get_or_create_project(self, name: str) -> Project:
        try:
            return self.get_project(name)
        except ProjectNotFound:
            pass
        try:
            return self.create_project(name)
        except AlreadyExists:  # created by another client in between
            return self.get_project(name)

    def _call(self, op: Operation, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = op.signature().bind(*args, **kwargs)
        path = API_PREFIX + op.path
        params: dict[str, str] = {}
        body: dict[str, Any] = {}
        path_params = op.path_params
        for name, value in bound.arguments.items():
            if value is UNSET:
                continue
            if name in path_params:
                path = path.replace("{" + name + "}", _segment(value))
            elif op.has_body:
                body[name] = _materialize(value)
            elif value is not None:
                params[name] = query_value(value)
        response = self._transport.request(
            op.method, path, params=params or None, json_body=body if op.has_body else None
        )
        returns = op.hints().get("return")
        if returns is None or returns is type(None):
            return None
        return codec.from_json(returns, codec.loads(response.content))


def _segment(value: Any) -> str:
    from urllib.parse import quote

    return quote(query_value(value), safe="")


def _materialize(value: Any) -> Any:
    """Generators and other one-pass iterables become lists before they are sent."""
    if isinstance(value, Iterator):
        return list(value)
    return value


def _method(op: Operation) -> Callable[..., Any]:
    def call(self: RestStore, *args: Any, **kwargs: Any) -> Any:
        return self._call(op, args, kwargs)

    original = getattr(Store, op.name)
    functools.update_wrapper(call, original)
    call.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    return call


def _unreachable(name: str) -> Callable[..., Any]:
    def never(self: RestStore, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"RestStore.{name} is never called: every public method is a request to the server"
        )

    never.__name__ = name
    return never


for _op in OPERATIONS:
    setattr(RestStore, _op.name, _method(_op))
# The protected methods are the SQL and memory stores' side of the contract; the REST store
# overrides the public ones instead, so the server sees (and checks) what the caller passed.
for _name in list(RestStore.__abstractmethods__):
    setattr(RestStore, _name, _unreachable(_name))
abc.update_abstractmethods(RestStore)
