"""Tabular data in, a pandas DataFrame out: the one conversion every data-facing module shares.

loopml accepts a pandas DataFrame, a polars DataFrame, a pyarrow Table or RecordBatch, or a
mapping of column name to array-like wherever it takes a table. Everything is converted to pandas
(zero-copy where Arrow allows) by :func:`as_pandas`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidData

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABLE_TYPES", "as_pandas", "is_table"]

TABLE_TYPES = "a pandas or polars DataFrame, a pyarrow Table, or a dict of column -> values"


def _module_of(obj: object) -> str:
    return type(obj).__module__.split(".", 1)[0]


def is_table(data: object) -> bool:
    """Whether ``data`` is a table :func:`as_pandas` accepts (without importing pandas)."""
    module = _module_of(data)
    name = type(data).__name__
    if module == "pandas":
        return name == "DataFrame"
    if module == "polars":
        return name in {"DataFrame", "LazyFrame"}
    if module == "pyarrow":
        return name in {"Table", "RecordBatch"}
    return isinstance(data, Mapping)


def as_pandas(data: Any, *, what: str = "data") -> pd.DataFrame:
    """Convert a table to a pandas DataFrame.

    Args:
        data: a pandas or polars DataFrame (or polars LazyFrame, collected), a pyarrow Table or
            RecordBatch, or a mapping of column name to a sequence or array.
        what: how to name ``data`` in an error message (e.g. ``"the train set"``).

    Returns:
        The same data as a pandas DataFrame (``data`` itself when it already is one).

    Raises:
        InvalidData: ``data`` is not a table, or a mapping's columns cannot form one.
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    module = _module_of(data)
    name = type(data).__name__
    if module == "polars" and name in {"DataFrame", "LazyFrame"}:
        frame = data.collect() if name == "LazyFrame" else data
        return frame.to_arrow().to_pandas()  # type: ignore[no-any-return]
    if module == "pyarrow" and name in {"Table", "RecordBatch"}:
        return data.to_pandas()  # type: ignore[no-any-return]
    if isinstance(data, Mapping):
        try:
            return pd.DataFrame(dict(data))
        except (ValueError, TypeError) as exc:
            raise InvalidData(
                f"{what} is a mapping that is not a table ({exc}); give every column the same "
                "number of values"
            ) from exc
    raise InvalidData(f"{what} must be {TABLE_TYPES}, not {type(data).__name__}")
