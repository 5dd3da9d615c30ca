"""JSON on the wire: entities to JSON values and back, floats faithful.

Entities are frozen dataclasses; :func:`to_json` turns them (and mappings, tuples, enums and NumPy
arrays) into plain JSON values, and :func:`from_json` rebuilds the annotated type with a cached
pydantic ``TypeAdapter``. JSON has no NaN or infinity, and a metric may be either, so a
non-finite float travels as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (the
protobuf JSON convention); pydantic reads those strings back as floats wherever a float is
declared. A :class:`~loopml.entities.MetricHistory` travels as three arrays.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from loopml.entities import MetricHistory

__all__ = ["dumps", "from_json", "history_from_json", "history_to_json", "loads", "to_json"]

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else _NON_FINITE[value]


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
def _adapter(annotation: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(annotation)


def from_json(annotation: Any, value: Any) -> Any:
    """Rebuild a value of type ``annotation`` from its JSON value."""
    if annotation is MetricHistory:
        return history_from_json(value)
    if annotation is None or annotation is type(None):
        return None
    return _adapter(annotation).validate_python(value)
