"""JSON on the wire: entities to JSON values and back, floats faithful.

Entities are frozen dataclasses; :func:`to_json` turns them (and mappings, tuples, enums and NumPy
arrays) into plain JSON values, and :func:`from_json` rebuilds the annotated type. JSON has no NaN
or infinity, and a metric may be either, so a non-finite float travels as the string ``"NaN"``,
``"Infinity"`` or ``"-Infinity"`` (the protobuf JSON convention), read back as a float wherever
a float is declared. A :class:`~loopml.entities.MetricHistory` travels as three arrays.
Rebuilding is structural and lenient: what does not fit is left as it came, for the store to
refuse with its own message.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson

from loopml.entities import MetricHistory

__all__ = [
    "decoder",
    "dumps",
    "from_json",
    "history_from_json",
    "history_to_json",
    "loads",
    "plain_json",
    "to_json",
]

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else _NON_FINITE[value]


def plain_json(value: Any) -> bool:
    """Whether ``value`` is a JSON document as it is: string keys, finite floats, no sets, bytes
    or objects (what a free-form field such as a spec or details must be)."""
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and plain_json(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(plain_json(v) for v in value)
    return False


def to_json(value: Any) -> Any:
    """A JSON value for ``value``: dataclasses become objects, tuples lists, enums their
    values, non-finite floats strings."""
    if value is None or isinstance(value, (str, bool, int)):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, MetricHistory):
        return history_to_json(value)
    if isinstance(value, Mapping):
        return {
            str(k): v if type(v) is str or type(v) is int else to_json(v) for k, v in value.items()
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_json(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def history_to_json(history: MetricHistory) -> dict[str, Any]:
    values = history.values
    finite = bool(np.isfinite(values).all())
    return {
        "key": history.key,
        "steps": history.steps.tolist(),
        "timestamps": history.timestamps.tolist(),
        "values": values.tolist() if finite else [_float(v) for v in values.tolist()],
    }


def history_from_json(data: Mapping[str, Any]) -> MetricHistory:
    return MetricHistory(
        str(data["key"]),
        np.asarray(data["steps"], dtype=np.int64),
        np.asarray(data["timestamps"], dtype=np.int64),
        np.asarray([float(v) for v in data["values"]], dtype=np.float64),
    )


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes (see :func:`to_json`)."""
    return orjson.dumps(to_json(value))


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


_NON_FINITE_TEXT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
Decoder = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def from_json(annotation: Any, value: Any) -> Any:
    """Rebuild a value of type ``annotation`` from its JSON value, structurally.

    Entities (dataclasses) are rebuilt field by field, lists become the tuples, read-only
    mappings and enums their annotations name, and ``"NaN"``-style strings floats. Anything
    that does not fit its annotation is returned as it came, so that the store's own checks
    judge it and raise the error they would raise for a local call. The decoder of each
    annotation is built once and cached.
    """
    return decoder(annotation)(value)


@functools.cache
def decoder(annotation: Any) -> Decoder:
    """The function that rebuilds JSON values of type ``annotation`` (see :func:`from_json`)."""
    if annotation is MetricHistory:
        return lambda v: history_from_json(v) if isinstance(v, Mapping) else v
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _union([a for a in args if a is not type(None)])
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _dataclass(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum(annotation)
    if annotation is float:
        return lambda v: _NON_FINITE_TEXT.get(v, v) if isinstance(v, str) else v
    if origin is tuple:
        return _tuple(args)
    if origin in (list, Sequence, Iterable, collections.abc.Collection) and args:
        item = decoder(args[0])
        if item is _same:
            return _same
        return lambda v: [item(x) for x in v] if isinstance(v, list) else v
    if origin in (Mapping, dict) and args:
        return _mapping(origin is Mapping and args[1] is not Any, decoder(args[1]))
    return _same


def _union(arms: list[Any]) -> Decoder:
    decoders = [(decoder(a), a) for a in arms]
    if len(decoders) == 1:
        only = decoders[0][0]
        return lambda v: None if v is None else only(v)

    def decode(value: Any) -> Any:
        if value is None:
            return None
        for decode_arm, arm in decoders:
            rebuilt = decode_arm(value)
            if rebuilt is not value or _fits(arm, value):
                return rebuilt
        return value

    return decode


def _enum(cls: type[enum.Enum]) -> Decoder:
    def decode(value: Any) -> Any:
        try:
            return cls(value)
        except ValueError:
            return value

    return decode


def _tuple(args: tuple[Any, ...]) -> Decoder:
    if len(args) == 2 and args[1] is Ellipsis:
        item = decoder(args[0])
        return lambda v: tuple(item(x) for x in v) if isinstance(v, list) else v
    items = [decoder(a) for a in args]

    def decode(value: Any) -> Any:
        if not isinstance(value, list):
            return value
        if items and len(items) == len(value):
            return tuple(d(x) for d, x in zip(items, value, strict=True))
        return tuple(value)

    return decode


def _mapping(read_only: bool, item: Decoder) -> Decoder:
    # As the local stores do: typed mappings (params, tags, aliases) are read-only, free-form
    # JSON (a spec, a config, details) is the caller's own copy.
    def decode(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = value if item is _same else {k: item(v) for k, v in value.items()}
        return MappingProxyType(out) if read_only else out

    return decode


def _fits(annotation: Any, value: Any) -> bool:
    """Whether a value that came through unchanged is of the annotated type."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation) or annotation
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        return isinstance(value, origin)
    except TypeError:
        return False


def _dataclass(cls: type) -> Decoder:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    names = frozenset(fields)
    required = frozenset(
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    field_decoders: dict[str, Decoder] = {}

    def decode(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        keys = value.keys()
        if not (keys <= names and required <= keys):
            return value
        if not field_decoders:  # built on first use: entities may refer to each other
            field_decoders.update({n: decoder(hints.get(n, Any)) for n in fields})
        try:
            return cls(**{n: field_decoders[n](v) for n, v in value.items()})
        except (TypeError, ValueError):
            return value

    return decode
