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
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson

from loopml.entities import MetricHistory

__all__ = [
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
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    raise TypeError(f"cannot send a {type(value).__name__} as JSON")


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


@functools.cache
def _field_types(cls: type) -> Mapping[str, Any]:
    return typing.get_type_hints(cls)


_NON_FINITE_TEXT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def from_json(annotation: Any, value: Any) -> Any:
    """Rebuild a value of type ``annotation`` from its JSON value, structurally.

    Entities (dataclasses) are rebuilt field by field, lists become the tuples, read-only
    mappings and enums their annotations name, and ``"NaN"``-style strings floats. Anything
    that does not fit its annotation is returned as it came, so that the store's own checks
    judge it and raise the error they would raise for a local call.
    """
    if value is None:
        return None
    if annotation is MetricHistory and isinstance(value, Mapping):
        return history_from_json(value)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            if arm is type(None):
                continue
            rebuilt = from_json(arm, value)
            if rebuilt is not value or _fits(arm, value):
                return rebuilt
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return _dataclass(annotation, value)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            return value
    if annotation is float and isinstance(value, str) and value in _NON_FINITE_TEXT:
        return _NON_FINITE_TEXT[value]
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_json(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(from_json(a, v) for a, v in zip(args, value, strict=True))
        return tuple(value)
    if origin in (list, Sequence, Iterable, collections.abc.Collection) and isinstance(
        value, list
    ):
        return [from_json(args[0], v) for v in value] if args else value
    if origin in (Mapping, dict) and isinstance(value, dict):
        out = {k: from_json(args[1], v) for k, v in value.items()} if args else value
        # As the local stores do: typed mappings (params, tags, aliases) are read-only, free-form
        # JSON (a spec, a config, details) is the caller's own copy.
        return MappingProxyType(out) if origin is Mapping and args[1] is not Any else out
    return value


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


def _dataclass(cls: type, value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    hints = _field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not set(value) <= set(fields):
        return value
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    if not required <= set(value):
        return value
    kwargs = {name: from_json(hints.get(name, Any), v) for name, v in value.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError):
        return value
