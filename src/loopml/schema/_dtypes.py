"""How a pandas column maps onto a :class:`ColumnType`: dtype kinds, vectorised coercion, hashing.

Inference, validation and :func:`conform` share these so that they agree on what a column is.
Every function here works on whole arrays; none loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from loopml.schema.model import ColumnType

__all__ = [
    "Coerced",
    "bound_value",
    "coerce",
    "describe_dtype",
    "hash_values",
    "json_safe",
    "kind_of",
    "mix",
    "normalize",
    "parse_datetimes",
]

# Dtype kinds: bool, int, float, datetime, category, string, object, other.


def kind_of(dtype: Any) -> str:
    """The kind of a pandas dtype (numpy, nullable extension, or pyarrow-backed)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if ptypes.is_bool_dtype(dtype):
        return "bool"
    if ptypes.is_integer_dtype(dtype):
        return "int"
    if ptypes.is_float_dtype(dtype):
        return "float"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        arrow = dtype.pyarrow_dtype
        if pa.types.is_string(arrow) or pa.types.is_large_string(arrow):
            return "string"
        return "other"
    if ptypes.is_object_dtype(dtype):
        return "object"
    return "other"


def normalize(series: pd.Series) -> pd.Series:
    """A pyarrow-backed (``ArrowDtype``) column as the numpy-backed column pandas would build.

    Integers and booleans keep their nulls as pandas' nullable ``Int64`` and ``boolean``; an
    Arrow dictionary becomes a pandas category. Other columns are returned as they are.
    """
    dtype = series.dtype
    if not isinstance(dtype, pd.ArrowDtype):
        return series
    import pyarrow as pa

    arrow = dtype.pyarrow_dtype
    if pa.types.is_integer(arrow):
        return series.astype("UInt64" if arrow == pa.uint64() else "Int64")
    if pa.types.is_boolean(arrow):
        return series.astype("boolean")
    values = series.array.__arrow_array__().to_pandas()
    return pd.Series(values.array, index=series.index, name=series.name)


def describe_dtype(series: pd.Series) -> str:
    """A short name for a column's dtype in messages (``int64``, ``str``, ``object``)."""
    return str(series.dtype)


@dataclass
class Coerced:
    """A column read as a :class:`ColumnType`.

    Attributes:
        null: where the original value is null (None, NaN, NaT, pd.NA).
        bad: where a non-null value cannot be read as the type.
        values: the values to compare and hash: int64 or float64 for numbers and booleans,
            int64 microseconds (UTC for tz-aware data) for datetimes, the original Series for
            categorical and text columns. Meaningful only where neither null nor bad.
    """

    null: np.ndarray[Any, np.dtype[np.bool_]]
    bad: np.ndarray[Any, np.dtype[np.bool_]]
    values: Any

    @property
    def valid(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Where the value is non-null and of the type."""
        return ~(self.null | self.bad)


def _isna(series: pd.Series) -> np.ndarray[Any, np.dtype[np.bool_]]:
    return np.asarray(series.isna(), dtype=bool)


def _as_float(series: pd.Series, kind: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    if series.dtype == np.dtype("float64"):
        return np.asarray(series.to_numpy())  # no copy
    if kind in {"int", "float", "bool"}:
        return np.asarray(series.to_numpy(dtype="float64", na_value=np.nan))
    numbers = pd.to_numeric(series, errors="coerce")
    return np.asarray(pd.Series(numbers).to_numpy(dtype="float64", na_value=np.nan))


_TRUE_FALSE = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}


def coerce(series: pd.Series, ctype: ColumnType) -> Coerced:
    """Read ``series`` as ``ctype``, vectorised, marking nulls and values that do not fit."""
    if ctype == ColumnType.FLOAT and series.dtype == np.dtype("float64"):
        # The common case, without copies: NaN is the null, and every float is a float.
        floats = series.to_numpy()
        return Coerced(np.isnan(floats), np.zeros(len(floats), dtype=bool), floats)
    kind = kind_of(series.dtype)
    if kind == "category" and ctype not in {ColumnType.CATEGORICAL, ColumnType.TEXT}:
        series = series.astype(object)
        kind = "object"
    null = _isna(series)
    none = np.zeros(len(series), dtype=bool)
    if ctype in {ColumnType.INTEGER, ColumnType.FLOAT}:
        if kind in {"bool", "datetime", "other"}:
            return Coerced(null, ~null, np.zeros(len(series)))
        if ctype == ColumnType.INTEGER and kind == "int":
            if series.dtype == np.dtype("uint64"):
                arr = series.to_numpy()
                return Coerced(null, arr > np.iinfo(np.int64).max, arr.astype(np.int64))
            if series.dtype == np.dtype("int64"):
                return Coerced(null, none, series.to_numpy())  # no copy
            return Coerced(null, none, np.asarray(series.to_numpy(dtype="int64", na_value=0)))
        floats = _as_float(series, kind)
        bad = ~null & np.isnan(floats)
        if ctype == ColumnType.INTEGER:
            with np.errstate(invalid="ignore"):
                fractional = ~np.isfinite(floats) | (floats != np.floor(floats))
                too_big = np.abs(floats) >= 2.0**63
            bad |= ~null & (fractional | too_big)
            ints = np.where(null | bad, 0.0, floats).astype(np.int64)
            return Coerced(null, bad, ints)
        return Coerced(null, bad, floats)
    if ctype == ColumnType.BOOLEAN:
        if kind == "bool":
            return Coerced(null, none, series.to_numpy(dtype="float64", na_value=0.0))
        if kind in {"int", "float"}:
            floats = _as_float(series, kind)
            bad = ~null & ~np.isin(floats, [0.0, 1.0])
            return Coerced(null, bad, np.where(bad, 0.0, floats))
        if kind in {"string", "object"}:
            words = series.astype(object).where(~null, "").astype(str).str.strip().str.lower()
            floats = np.asarray(words.map(_TRUE_FALSE).to_numpy(dtype="float64", na_value=np.nan))
            bad = ~null & np.isnan(floats)
            return Coerced(null, bad, np.where(bad | null, 0.0, floats))
        return Coerced(null, ~null, np.zeros(len(series)))
    if ctype == ColumnType.DATETIME:
        if kind == "datetime":
            parsed = series
        elif kind in {"string", "object"}:
            parsed = parse_datetimes(series)
        else:
            return Coerced(null, ~null, np.zeros(len(series), dtype=np.int64))
        bad = ~null & np.asarray(parsed.isna(), dtype=bool)
        return Coerced(null, bad, _micros(parsed))
    if ctype == ColumnType.TEXT:
        if kind in {"string", "category"}:
            return Coerced(null, none, series)
        if kind == "object":
            lengths = series.str.len() if len(series) else series
            return Coerced(null, ~null & np.asarray(lengths.isna(), dtype=bool), series)
        return Coerced(null, ~null, series)
    return Coerced(null, none, series)  # categorical: any value is of the type


def parse_datetimes(series: pd.Series) -> pd.Series:
    """ISO datetime strings as datetimes (NaT where a value does not parse)."""
    try:
        return pd.to_datetime(series, errors="coerce", format="ISO8601")
    except (ValueError, TypeError):  # mixed time zones: read them all as UTC
        return pd.to_datetime(series, errors="coerce", format="ISO8601", utc=True)


def _micros(parsed: pd.Series) -> np.ndarray[Any, np.dtype[np.int64]]:
    """int64 microseconds since the epoch; tz-aware values in UTC, naive ones as written."""
    if not ptypes.is_datetime64_any_dtype(parsed.dtype):
        parsed = pd.to_datetime(parsed, errors="coerce", utc=True)
    parsed = normalize(parsed)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    parsed = parsed.dt.as_unit("us")
    return np.asarray(parsed.to_numpy(dtype="datetime64[us]").view(np.int64))


def bound_value(bound: Any, ctype: ColumnType) -> float | int:
    """A schema bound in the units of :attr:`Coerced.values` (UTC microseconds for datetimes)."""
    if ctype == ColumnType.DATETIME:
        stamp = pd.Timestamp(bound)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return int(stamp.to_datetime64().astype("datetime64[us]").astype(np.int64))
    return bound  # type: ignore[no-any-return]


def hash_values(coerced: Coerced, ctype: ColumnType, mask: Any) -> np.ndarray[Any, Any]:
    """uint64 keys of the values at ``mask``: equal values get equal keys, whatever the dtype.

    Numbers and datetimes are their own keys (their 64 bits, so no collisions); other values
    use Python's 64-bit ``hash``, the same within one process, which is all a validator needs.
    """
    values = coerced.values
    if isinstance(values, pd.Series):
        objects = values[mask].to_numpy(dtype=object)
        # map() runs hash in C, several times faster than pandas' hash_array on strings.
        return np.fromiter(map(hash, objects), dtype=np.int64, count=len(objects)).view(np.uint64)
    picked = np.asarray(values)[mask]
    if picked.dtype.kind == "f":
        picked = picked + 0.0  # -0.0 and 0.0 are equal values: give them one key
    return np.ascontiguousarray(picked).view(np.uint64)


def mix(keys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Scramble uint64 keys (splitmix64's finaliser), to combine several columns' keys."""
    x = keys ^ (keys >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return np.asarray(x ^ (x >> np.uint64(31)))


def json_safe(value: Any) -> Any:
    """A JSON-ready version of one cell: numpy scalars to Python, datetimes to ISO strings."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return str(value)
    if isinstance(value, float):
        return value if np.isfinite(value) else str(value)
    if isinstance(value, str):
        return str(value)  # a plain str, also for a StrEnum
    if isinstance(value, bool | int):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
