"""Make a table fit a schema's shape: column order and safe dtype conversions, nothing lossy.

This is what a model server does with a request before it predicts: unlike :func:`validate`,
which reports on data as it is, :func:`conform` returns data the model can take, or refuses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from loopml._frames import as_pandas
from loopml.errors import InvalidData
from loopml.schema._dtypes import json_safe, kind_of, normalize, parse_datetimes
from loopml.schema.model import ColumnSchema, ColumnType, Schema

__all__ = ["conform"]


def conform(data: Any, schema: Schema, *, require_target: bool = False) -> pd.DataFrame:
    """Reorder ``data``'s columns to ``schema`` and convert dtypes where nothing is lost.

    Integers become floats for a float column, integral floats become integers (``Int64`` when
    there are nulls), ISO strings become datetimes; anything else that does not fit (fractional
    floats for an integer column, strings of numbers for a number column, numbers for a text
    column) is refused. Values are not checked against ranges or categories: use
    :func:`validate` for that.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or a dict of columns.
        schema: the contract.
        require_target: whether the target column must be present (a model's inputs do not
            have it; when present it is kept and conformed like any column).

    Returns:
        A new DataFrame with the schema's columns in the schema's order (extra columns dropped
        when the schema allows them).

    Raises:
        InvalidData: missing or (when not allowed) extra columns, or columns of the wrong type;
            the message names every one, with the expected and the actual type.
    """
    frame = as_pandas(data)
    labels = {str(c): c for c in frame.columns}
    problems: list[str] = []
    wanted = [
        c for c in schema.columns if c.name in labels or c.name != schema.target or require_target
    ]
    missing = [c.name for c in wanted if c.name not in labels]
    if missing:
        problems.append(f"missing columns {', '.join(map(repr, missing))}")
    extra = [name for name in labels if name not in schema]
    if extra and not schema.allow_extra_columns:
        problems.append(
            f"extra columns {', '.join(map(repr, extra))} (drop them, or set "
            "allow_extra_columns in the schema)"
        )
    out: dict[str, pd.Series] = {}
    for col in wanted:
        if col.name not in labels:
            continue
        series = normalize(frame[labels[col.name]])
        converted = _convert(series, col)
        if isinstance(converted, str):
            problems.append(f"column {col.name!r}: expected {col.type}, got {converted}")
        else:
            out[col.name] = converted
    if problems:
        raise InvalidData("the data does not fit the schema: " + "; ".join(problems))
    return pd.DataFrame(out, index=frame.index)


def _example(series: pd.Series, mask: Any) -> str:
    values = series[mask].head(1).tolist()
    return f" (e.g. {json_safe(values[0])!r})" if values else ""


def _convert(series: pd.Series, col: ColumnSchema) -> pd.Series | str:
    """The converted column, or a description of what it is instead (for the message)."""
    kind = kind_of(series.dtype)
    got = f"{series.dtype}"
    ctype = col.type
    if ctype == ColumnType.INTEGER:
        if kind == "int":
            return series
        if kind == "float":
            values = series.to_numpy(dtype="float64", na_value=np.nan)
            null = np.isnan(values)
            with np.errstate(invalid="ignore"):
                bad = ~null & ((values != np.floor(values)) | ~np.isfinite(values))
            if bad.any():
                return f"{got} with fractional values{_example(series, bad)}"
            if null.any():
                return series.astype("Int64")
            return pd.Series(values.astype(np.int64), index=series.index, name=series.name)
        if kind == "object" and series.isna().all():
            return series.astype("Int64")
        return got
    if ctype == ColumnType.FLOAT:
        if kind == "float":
            return series
        if kind == "int":
            return (
                series.astype("float64") if series.dtype.kind in "iu" else series.astype("Float64")
            )
        if kind == "object" and series.isna().all():
            return series.astype("float64")
        return got
    if ctype == ColumnType.BOOLEAN:
        return series if kind == "bool" else got
    if ctype == ColumnType.DATETIME:
        if kind == "datetime":
            return series
        if kind in {"string", "object"}:
            parsed = parse_datetimes(series)
            bad = parsed.isna().to_numpy() & series.notna().to_numpy()
            if bad.any():
                return f"{got} with values that are not ISO datetimes{_example(series, bad)}"
            return parsed
        return got
    if ctype == ColumnType.TEXT:
        if kind in {"string", "category"}:
            return series
        if kind == "object":
            lengths = series.str.len() if len(series) else series
            bad = lengths.isna().to_numpy() & series.notna().to_numpy()
            return (
                f"{got} with values that are not text{_example(series, bad)}"
                if bad.any()
                else series
            )
        return got
    if kind in {"string", "category", "object", "int", "bool"}:  # categorical
        return series
    return got
