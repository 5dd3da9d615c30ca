"""The REST store: the :class:`~loopml.store.Store` contract over HTTP, to ``loopml server``.

Every public store method is one request, built from the operation table
(:mod:`loopml.store.rest.operations`) that the server builds its routes from. The arguments are
checked by the server (which calls the SQL store's public methods), so a bad argument raises the
same error here as against a local store, and every error the server names comes back as its
loopml class.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import functools
import inspect
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from loopml.entities import Project
from loopml.errors import AlreadyExists, InvalidArgument, LoopError, ProjectNotFound
from loopml.store.base import Store
from loopml.store.deployments import UNSET
from loopml.store.rest import codec
from loopml.store.rest.operations import API_PREFIX, OPERATIONS, Operation, by_name
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
        hints = op.hints()
        for name, value in bound.arguments.items():
            required = bound.signature.parameters[name].default is inspect.Parameter.empty
            if (value is None and required) or not _travels_faithfully(
                value, hints.get(name, Any), name in path_params or not op.has_body
            ):
                _check_locally(op, args, kwargs)
                break
        for name in path_params:
            value = bound.arguments.get(name, bound.signature.parameters[name].default)
            segment = query_value(_whole(value)) if value is not None else ""
            if segment.strip() in ("", ".", "..") or "/" in segment or "\\" in segment:
                # Not a URL segment, so not a valid name or id either.
                _check_locally(op, args, kwargs)
                raise InvalidArgument(f"{op.name}: {name} {value!r:.100} is not a valid {name}")
            path = path.replace("{" + name + "}", quote(segment, safe=""))
        for name, value in bound.arguments.items():
            if value is UNSET or name in path_params:
                continue
            if op.has_body:
                body[name] = _materialize(value)
            elif value is not None:
                params[name] = query_value(_whole(value))
        try:
            encoded = orjson.dumps(codec.to_json(body)) if op.has_body else None
        except TypeError as exc:
            _check_locally(op, args, kwargs)
            raise InvalidArgument(
                f"{op.name}: {exc}; pass plain values and loopml entities"
            ) from exc
        response = self._transport.request(
            op.method,
            path,
            params=params or None,
            content=encoded,
            headers=_JSON_HEADERS if encoded is not None else None,
        )
        returns = op.hints().get("return")
        if returns is None or returns is type(None):
            return None
        return codec.from_json(returns, codec.loads(response.content))


_JSON_HEADERS = {"Content-Type": "application/json"}


def _whole(value: Any) -> Any:
    """A float that is a whole number as an int (``version=2.0`` is version 2, locally too)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _travels_faithfully(value: Any, annotation: Any, as_text: bool) -> bool:
    """Whether ``value`` reaches the server as what it is. Text parameters (path and query)
    carry strings, and numbers and flags where the parameter takes them; JSON bodies carry
    everything but what a free-form document (a spec, details) cannot hold: NaN, sets, bytes,
    keys that are not strings."""
    if as_text:
        if value is None or isinstance(value, enum.Enum):
            return True
        if isinstance(value, bool):
            return "bool" in str(annotation)
        if isinstance(value, int):
            return "int" in str(annotation)
        return isinstance(value, str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _field_hints(type(value))
        return all(
            _travels_faithfully(getattr(value, f.name), hints.get(f.name, Any), False)
            for f in dataclasses.fields(value)
        )
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return False  # a dict or a tuple where an entity goes: the store says what it wants
    origin = typing.get_origin(annotation)
    if isinstance(value, Mapping) and not all(isinstance(k, str) for k in value):
        return False
    if isinstance(value, (list, tuple)) and origin in (list, tuple, Sequence, Iterable):
        item = (typing.get_args(annotation) or (Any,))[0]
        return all(_travels_faithfully(v, item, False) for v in value)
    if "Any" in str(annotation):
        return codec.plain_json(value)
    return True


@functools.cache
def _field_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_locally(op: Operation, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Raise the :class:`InvalidArgument` a local store raises for these arguments, if any.

    Some arguments cannot travel as themselves (a float where a name goes, a NaN in a JSON
    document): an in-memory store checks them the way every store does, so the error and its
    message are the ones a local call gives. Arguments it accepts go on to the server.
    """
    from loopml.store.memory import InMemoryStore

    try:
        getattr(InMemoryStore(), op.name)(*args, **kwargs)
    except InvalidArgument:
        raise
    except LoopError:
        pass  # valid arguments (the empty store has no such object)


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
    call.__isabstractmethod__ = False  # type: ignore[attr-defined]  # copied from the original
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
    if _name not in by_name():
        setattr(RestStore, _name, _unreachable(_name))
abc.update_abstractmethods(typing.cast("type", RestStore))
