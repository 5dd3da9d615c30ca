"""Infer a schema from data: types from dtypes, nullability, ranges, categories, keys."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml._frames import as_pandas
from loopml.errors import InvalidArgument, InvalidData
from loopml.schema._dtypes import kind_of, normalize
from loopml.schema.model import ColumnSchema, ColumnType, Schema

__all__ = ["infer_schema"]

_ID_NAME = re.compile(r"(^|_)(id|uuid|key)$|Id$|ID$", re.IGNORECASE)
# What pandas.api.types.infer_dtype says about an object column, as a type.
_OBJECT_TYPES = {
    "integer": ColumnType.INTEGER,
    "floating": ColumnType.FLOAT,
    "mixed-integer-float": ColumnType.FLOAT,
    "decimal": ColumnType.FLOAT,
    "boolean": ColumnType.BOOLEAN,
    "datetime": ColumnType.DATETIME,
    "datetime64": ColumnType.DATETIME,
    "date": ColumnType.DATETIME,
}


def infer_schema(
    data: Any,
    *,
    target: str | None = None,
    unique_key: Sequence[str] | Literal["auto"] | None = "auto",
    max_categories: int = 50,
    categorical_ratio: float = 0.5,
    ranges: bool = True,
    allow_extra_columns: bool = False,
    description: str | None = None,
) -> Schema:
    """Infer a schema (a data contract) from a table.

    Types come from dtypes: booleans, integers (nullable ``Int64`` included), floats, datetimes
    (with or without a time zone), pandas categoricals; string columns are ``categorical`` when
    they have at most ``max_categories`` distinct values and values repeat (distinct values are
    at most ``categorical_ratio`` of the non-null values), else ``text``. A column is nullable
    when it has nulls; integer, float and datetime columns get the observed min and max
    (except integer ids);
    categorical ones their sorted categories; text and categorical columns whose non-null
    values are all distinct are ``unique``, and so are integer columns with an id-like name
    (``id``, ``*_id``, ``*_key``, ``uuid``).

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or a dict of columns.
        target: the target (label) column, if any.
        unique_key: the key columns; ``"auto"`` picks one unique, null-free column, preferring
            an id-like name (``id``, ``*_id``, ``*_key``, ``uuid``), then a text column;
            ``None`` or ``[]`` for no key.
        max_categories: the most distinct values a categorical column may have.
        categorical_ratio: the largest share of distinct values among non-null values for a
            string column to be categorical.
        ranges: record min and max (turn off for a contract that should not bound values).
        allow_extra_columns: the new schema's ``allow_extra_columns``.
        description: the new schema's description.

    Returns:
        The inferred schema.

    Raises:
        InvalidArgument: ``target`` or a key column is not a column, or a bad parameter.
        InvalidData: ``data`` is not a table or repeats a column name.
    """
    frame = as_pandas(data)
    if max_categories < 0:
        raise InvalidArgument(f"max_categories must be 0 or more, not {max_categories}")
    if not 0 <= categorical_ratio <= 1:
        raise InvalidArgument(
            f"categorical_ratio must be between 0 and 1, not {categorical_ratio}"
        )
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InvalidData(f"the data repeats column names {', '.join(dupes)}; rename them")
    for name in [target] if target is not None else []:
        if name not in names:
            raise InvalidArgument(
                f"target {name!r} is not a column of the data; its columns are {', '.join(names)}"
            )
    columns = [
        _infer_column(name, frame[label], max_categories, categorical_ratio, ranges)
        for name, label in zip(names, frame.columns, strict=True)
    ]
    key = _pick_key(columns, frame, target) if unique_key == "auto" else tuple(unique_key or ())
    for name in key:
        if name not in names:
            raise InvalidArgument(f"unique_key column {name!r} is not a column of the data")
    return Schema(
        columns=tuple(columns),
        target=target,
        unique_key=key,
        allow_extra_columns=allow_extra_columns,
        description=description,
    )


def _type_of(series: pd.Series, max_categories: int, ratio: float) -> tuple[ColumnType, int]:
    """The column type, and the number of distinct non-null values (-1 when not counted)."""
    kind = kind_of(series.dtype)
    simple = {
        "bool": ColumnType.BOOLEAN,
        "int": ColumnType.INTEGER,
        "float": ColumnType.FLOAT,
        "datetime": ColumnType.DATETIME,
        "category": ColumnType.CATEGORICAL,
    }
    if kind in simple:
        return simple[kind], -1
    if kind == "object":
        found = pd.api.types.infer_dtype(series, skipna=True)
        if found in _OBJECT_TYPES:
            return _OBJECT_TYPES[found], -1
    distinct = int(series.nunique(dropna=True))
    non_null = int(series.notna().sum())
    if 0 < distinct <= max_categories and distinct <= ratio * non_null:
        return ColumnType.CATEGORICAL, distinct
    return ColumnType.TEXT, distinct


def _infer_column(
    name: str, series: pd.Series, max_categories: int, ratio: float, ranges: bool
) -> ColumnSchema:
    series = normalize(series)
    ctype, distinct = _type_of(series, max_categories, ratio)
    kind = kind_of(series.dtype)
    if kind == "object" and ctype in {ColumnType.INTEGER, ColumnType.FLOAT}:
        series = pd.to_numeric(series, errors="coerce")
    elif kind == "object" and ctype == ColumnType.DATETIME:
        series = pd.to_datetime(series, errors="coerce", utc=True)
    non_null = series.dropna()
    fields: dict[str, Any] = {"nullable": len(non_null) < len(series)}
    if ranges and len(non_null) and ctype in {ColumnType.INTEGER, ColumnType.FLOAT}:
        low, high = non_null.min(), non_null.max()
        for which, value in (("min", low), ("max", high)):
            number = value.item() if isinstance(value, np.generic) else value
            if isinstance(number, float) and not math.isfinite(number):
                continue
            fields[which] = int(number) if ctype == ColumnType.INTEGER else float(number)
    if ranges and len(non_null) and ctype == ColumnType.DATETIME:
        fields["min"] = _to_datetime(pd.Timestamp(non_null.min()).floor("us"))
        fields["max"] = _to_datetime(pd.Timestamp(non_null.max()).ceil("us"))
    if ctype == ColumnType.CATEGORICAL:
        fields["categories"] = _categories(series, max_categories)
    # Integers are often distinct by chance (ages in a small sample): only ids count as unique.
    id_like = ctype != ColumnType.INTEGER or bool(_ID_NAME.search(name))
    if id_like and ctype in {ColumnType.INTEGER, ColumnType.TEXT, ColumnType.CATEGORICAL}:
        fields["unique"] = len(non_null) > 1 and _all_distinct(non_null, distinct, ctype)
        if fields["unique"] and ctype == ColumnType.INTEGER:
            # New rows get new ids: the ids seen so far are no range for future ones.
            fields.pop("min", None)
            fields.pop("max", None)
    return ColumnSchema(name=name, type=ctype, **fields)


def _to_datetime(stamp: pd.Timestamp) -> datetime:
    return datetime.fromisoformat(stamp.isoformat())


def _categories(series: pd.Series, max_categories: int) -> tuple[Any, ...] | None:
    if kind_of(series.dtype) == "category":
        values = list(series.cat.categories)
    else:
        values = list(series.dropna().unique())
    if len(values) > max_categories:
        return None
    plain = [v.item() if isinstance(v, np.generic) else v for v in values]
    if not all(isinstance(v, str | int | float | bool) for v in plain):
        plain = [str(v) for v in plain]
    try:
        return tuple(sorted(plain))
    except TypeError:  # mixed strings and numbers
        return tuple(sorted(plain, key=str))


def _all_distinct(non_null: pd.Series, distinct: int, ctype: ColumnType) -> bool:
    n = len(non_null)
    if ctype == ColumnType.INTEGER:
        # Cheap early exit: n integers in a span narrower than n cannot all differ.
        span = int(non_null.max()) - int(non_null.min()) + 1
        if span < n:
            return False
    if distinct < 0:
        distinct = int(non_null.nunique())
    return distinct == n


def _pick_key(
    columns: list[ColumnSchema], frame: pd.DataFrame, target: str | None
) -> tuple[str, ...]:
    candidates = [
        c
        for c in columns
        if c.unique
        and not c.nullable
        and c.name != target
        and c.type in {ColumnType.INTEGER, ColumnType.TEXT}
    ]
    for col in candidates:
        if _ID_NAME.search(col.name):
            return (col.name,)
    for col in candidates:
        if col.type == ColumnType.TEXT:
            return (col.name,)
    return ()
