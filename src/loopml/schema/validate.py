"""Check data against a schema: :func:`validate` for a table, :class:`Validator` for chunks.

Every rule is a vectorised pass over a column. Counts from chunks add up: validating a file chunk
by chunk gives the same counts as validating it whole. Uniqueness across chunks is checked on
64-bit hashes of the values (a sorted array of every hash seen), so two different values could in
principle collide; the chance is about n²/2⁶⁵ (below 10⁻⁷ for a billion values).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loopml._frames import as_pandas
from loopml.errors import InvalidArgument, InvalidData
from loopml.schema._dtypes import (
    Coerced,
    bound_value,
    coerce,
    describe_dtype,
    hash_values,
    json_safe,
    kind_of,
    mix,
    normalize,
)
from loopml.schema.model import COLUMN_RULES, ColumnSchema, ColumnType, Schema
from loopml.schema.report import ValidationReport, Violation

__all__ = ["Validator", "validate"]

_SCAN = 1000  # offending values scanned for distinct examples
_MIX = np.uint64(0x100000001B3)


@dataclass
class _Tally:
    """The running count and examples of one rule on one column."""

    count: int = 0
    examples: list[Any] = field(default_factory=list)
    below: int = 0
    above: int = 0
    lowest: Any = None
    highest: Any = None
    dtypes: list[str] = field(default_factory=list)

    def add_examples(self, values: list[Any], limit: int) -> None:
        for value in values:
            if len(self.examples) >= limit:
                return
            if value not in self.examples:
                self.examples.append(value)


def _examples(series: pd.Series, mask: np.ndarray[Any, Any], limit: int) -> list[Any]:
    if limit <= 0:
        return []
    index = np.flatnonzero(mask)[:_SCAN]
    values = pd.unique(series.iloc[index].to_numpy(dtype=object))
    return [json_safe(v) for v in values[:limit]]


_PARALLEL_ROWS = 100_000
_SLOW_TYPES = frozenset({ColumnType.CATEGORICAL, ColumnType.TEXT})
_WORKERS = min(4, os.cpu_count() or 1)
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The threads that check the columns of large chunks (created on first use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_WORKERS, thread_name_prefix="loopml-validate")
        return _POOL


class Validator:
    """Validates data against a schema chunk by chunk, then reports.

    Example::

        validator = Validator(schema)
        for chunk in pd.read_csv("big.csv", chunksize=100_000):
            validator.update(chunk)
        report = validator.report()

    Args:
        schema: the contract.
        max_examples: how many distinct offending values each violation keeps.
    """

    def __init__(self, schema: Schema, *, max_examples: int = 5) -> None:
        if not isinstance(schema, Schema):
            raise InvalidArgument(
                f"schema must be a loopml Schema, not {type(schema).__name__}; "
                "build one with infer_schema(data) or Schema.load(path)"
            )
        if max_examples < 0:
            raise InvalidArgument(f"max_examples must be 0 or more, not {max_examples}")
        self.schema = schema
        self.max_examples = max_examples
        self.num_rows = 0
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._extra: list[str] = []
        self._seen: dict[str, np.ndarray[Any, np.dtype[np.uint64]]] = {}
        self._value_sets: dict[str, Any] = {}  # allowed categories as Arrow arrays, by column
        self._key = self._key_to_check(schema)

    @staticmethod
    def _key_to_check(schema: Schema) -> tuple[str, ...]:
        key = schema.unique_key
        # A one-column key on a column already marked unique would report every duplicate twice.
        if len(key) == 1 and schema.column(key[0]).unique:
            return ()
        return key

    def _tally(self, column: str, rule: str) -> _Tally:
        return self._tallies.setdefault((column, rule), _Tally())

    def update(self, data: Any) -> Validator:
        """Check one chunk (a pandas or polars DataFrame, a pyarrow Table, a dict of columns).

        Returns:
            This validator, so that calls chain.

        Raises:
            InvalidData: ``data`` is not a table, or repeats a column name.
        """
        frame = as_pandas(data)
        labels: dict[str, Any] = {}
        for label in frame.columns:
            name = str(label)
            if name in labels:
                raise InvalidData(f"the data has two columns named {name!r}; rename one")
            labels[name] = label
        rows = len(frame)
        self.num_rows += rows
        present = [col for col in self.schema.columns if col.name in labels]
        for col in self.schema.columns:
            if col.name not in labels:
                self._tally(col.name, "missing_column").count += rows

        def check(col: ColumnSchema) -> Coerced | None:
            series = normalize(frame[labels[col.name]])
            if col.name not in self._key and _clean(col, series, self._value_sets):
                return None
            return self._check_column(col, series, coerced_of=coerce(series, col.type))

        # Columns are independent and NumPy, pandas and Arrow release the GIL in their kernels:
        # on a large chunk, check them on every core. Each column writes only its own tallies.
        if rows >= _PARALLEL_ROWS and len(present) > 1 and _WORKERS > 1:
            # Longest first (string columns hash every value), so the cores finish together.
            order = sorted(present, key=lambda col: col.type not in _SLOW_TYPES)
            results = list(_pool().map(check, order))
        else:
            order = present
            results = [check(col) for col in present]
        coerced = {col.name: c for col, c in zip(order, results, strict=True) if c is not None}
        if not self.schema.allow_extra_columns:
            for name in labels:
                if name not in self.schema:
                    if name not in self._extra:
                        self._extra.append(name)
                    self._tally(name, "extra_column").count += rows
        if self._key and all(name in coerced for name in self._key):
            self._check_key(frame, labels, coerced)
        return self

    def _check_column(self, col: ColumnSchema, series: pd.Series, coerced_of: Coerced) -> Coerced:
        c = coerced_of
        limit = self.max_examples
        if c.bad.any():
            tally = self._tally(col.name, "type")
            tally.count += int(c.bad.sum())
            tally.add_examples(_examples(series, c.bad, limit), limit)
            dtype = describe_dtype(series)
            if dtype not in tally.dtypes:
                tally.dtypes.append(dtype)
        if not col.nullable and c.null.any():
            self._tally(col.name, "nullable").count += int(c.null.sum())
        if col.min is not None or col.max is not None:
            self._check_range(col, series, c)
        if (col.type == ColumnType.CATEGORICAL and col.categories is not None) or col.unique:
            valid = c.valid
        if col.type == ColumnType.CATEGORICAL and col.categories is not None:
            unseen = valid & ~_isin(series, col.categories)
            if unseen.any():
                tally = self._tally(col.name, "categories")
                tally.count += int(unseen.sum())
                tally.add_examples(_examples(series, unseen, limit), limit)
        if col.unique:
            hashes = hash_values(c, col.type, valid)
            dup = self._duplicates(col.name, hashes)
            if dup.any():
                tally = self._tally(col.name, "unique")
                tally.count += int(dup.sum())
                tally.add_examples(_examples(series[valid], dup, limit), limit)
        return c

    def _check_range(self, col: ColumnSchema, series: pd.Series, c: Coerced) -> None:
        values = np.asarray(c.values)
        if values.dtype.kind == "f" and len(values) and not c.bad.any():
            # Two reductions first: in-range data (the usual case) needs no masks at all.
            # fmin/fmax skip NaN, which is where a float column's nulls are.
            lo, hi = np.fmin.reduce(values), np.fmax.reduce(values)
            if (col.min is None or not lo < bound_value(col.min, col.type)) and (
                col.max is None or not hi > bound_value(col.max, col.type)
            ):
                return
        valid = c.valid
        below = np.zeros(len(values), dtype=bool)
        above = np.zeros(len(values), dtype=bool)
        if col.min is not None:
            below = valid & (values < bound_value(col.min, col.type))
        if col.max is not None:
            above = valid & (values > bound_value(col.max, col.type))
        if not (below.any() or above.any()):
            return
        tally = self._tally(col.name, "range")
        nb, na = int(below.sum()), int(above.sum())
        tally.count += nb + na
        tally.below += nb
        tally.above += na
        if nb:
            low = values[below].min()
            tally.lowest = low if tally.lowest is None else min(tally.lowest, low)
        if na:
            high = values[above].max()
            tally.highest = high if tally.highest is None else max(tally.highest, high)
        limit = self.max_examples
        tally.add_examples(_examples(series, below | above, limit), limit)

    def _duplicates(
        self, name: str, keys: np.ndarray[Any, Any]
    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Mark values whose key was seen before (earlier in this chunk or in another)."""
        seen = self._seen.get(name, np.empty(0, dtype=np.uint64))
        unique, first = _first_occurrences(keys)
        new = ~_in_sorted(unique, seen)
        dup = np.ones(len(keys), dtype=bool)
        dup[first[new]] = False
        self._seen[name] = _merge_sorted(seen, unique)
        return dup

    def _check_key(
        self, frame: pd.DataFrame, labels: dict[str, Any], coerced: dict[str, Coerced]
    ) -> None:
        key = self._key
        valid = np.logical_and.reduce([coerced[name].valid for name in key])
        combined = np.zeros(int(valid.sum()), dtype=np.uint64)
        for name in key:
            col = self.schema.column(name)
            combined = mix(combined * _MIX + mix(hash_values(coerced[name], col.type, valid)))
        dup = self._duplicates("\0key", combined)
        if dup.any():
            tally = self._tally(", ".join(key), "unique_key")
            tally.count += int(dup.sum())
            if self.max_examples:
                rows = frame[[labels[n] for n in key]][valid][dup].head(_SCAN)
                rows = rows.drop_duplicates().head(self.max_examples)
                examples = [[json_safe(v) for v in row] for row in rows.itertuples(index=False)]
                tally.add_examples(examples, self.max_examples)

    def report(self) -> ValidationReport:
        """The violations so far: in schema column order, then extra columns, then the key."""
        out: list[Violation] = []
        for col in self.schema.columns:
            for rule in COLUMN_RULES:
                tally = self._tallies.get((col.name, rule))
                if tally is not None:
                    out.append(self._violation(col.name, rule, tally))
        for name in self._extra:
            out.append(
                self._violation(name, "extra_column", self._tallies[(name, "extra_column")])
            )
        if self._key:
            tally = self._tallies.get((", ".join(self._key), "unique_key"))
            if tally is not None:
                out.append(self._violation(", ".join(self._key), "unique_key", tally))
        return ValidationReport(tuple(out), self.num_rows)

    def _violation(self, column: str, rule: str, tally: _Tally) -> Violation:
        table_rule = rule in {"extra_column", "unique_key"}
        severity = self.schema.severity_of(rule, None if table_rule else column)
        return Violation(
            column=column,
            rule=rule,
            count=tally.count,
            examples=tuple(tally.examples),
            severity=severity,
            message=self._message(column, rule, tally),
        )

    def _message(self, column: str, rule: str, t: _Tally) -> str:
        if rule == "missing_column":
            return f"column is missing (the schema expects {self.schema.column(column).type})"
        if rule == "extra_column":
            return (
                "column is not in the schema; drop it, add it to the schema, "
                "or set allow_extra_columns"
            )
        if rule == "unique_key":
            return f"{_n(t.count, 'row')} repeat the key of an earlier row"
        col = self.schema.column(column)
        if rule == "type":
            return f"{_n(t.count, 'value')} not {col.type} (dtype {', '.join(t.dtypes)})"
        if rule == "nullable":
            return f"{_n(t.count, 'null')} in a column that is not nullable"
        if rule == "categories":
            cats = col.categories or ()
            return f"{_n(t.count, 'value')} not among the {len(cats)} allowed categories"
        if rule == "unique":
            return f"{_n(t.count, 'value')} repeating an earlier value in a unique column"
        parts = []
        if t.below:
            parts.append(
                f"{t.below:,} below min {_show(col.min)} (lowest {_show_raw(t.lowest, col)})"
            )
        if t.above:
            parts.append(
                f"{t.above:,} above max {_show(col.max)} (highest {_show_raw(t.highest, col)})"
            )
        return f"{_n(t.count, 'value')} out of range: " + ", ".join(parts)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'s' * (count != 1)}"


def _show(value: Any) -> str:
    return str(json_safe(value))


def _show_raw(value: Any, col: ColumnSchema) -> str:
    if col.type == ColumnType.DATETIME:
        return pd.Timestamp(int(value), unit="us").isoformat()
    return _show(value)


def _clean(col: ColumnSchema, series: pd.Series, value_sets: dict[str, Any]) -> bool:
    """Whether the column surely breaks no rule, found without building a mask per rule.

    The fast path for the usual columns of clean data: float64 columns (two reductions) and
    Arrow-backed strings (the null count is known; category membership is counted in Arrow).
    ``False`` means "not sure": the caller then runs every rule the general way, which also
    finds the examples. A unique column always takes the general way.
    """
    if col.unique or not len(series):
        return False
    if col.type == ColumnType.FLOAT and series.dtype == np.dtype("float64"):
        return _clean_floats(col, series.to_numpy())
    if col.type not in _SLOW_TYPES or not hasattr(series.array, "__arrow_array__"):
        return False
    if kind_of(series.dtype) != "string":
        return False
    import pyarrow as pa
    import pyarrow.compute as pc

    chunks = series.array.__arrow_array__()
    nulls = chunks.null_count
    if nulls and not col.nullable:
        return False
    if col.type == ColumnType.TEXT or col.categories is None:
        return True
    allowed = value_sets.get(col.name)
    if allowed is None or allowed.type != chunks.type:
        allowed = value_sets[col.name] = pa.array(list(col.categories), type=chunks.type)
    # skip_nulls: a null is not "in" the set, so the matches are the valid allowed values.
    matches = pc.sum(pc.is_in(chunks, value_set=allowed, skip_nulls=True)).as_py() or 0
    return bool(matches == len(chunks) - nulls)


def _clean_floats(col: ColumnSchema, values: np.ndarray[Any, Any]) -> bool:
    # min and max propagate NaN (the nulls): one NaN-free pass answers nulls and range at once.
    lo, hi = values.min(), values.max()
    if np.isnan(lo) or np.isnan(hi):
        if not col.nullable:
            return False
        if col.min is None and col.max is None:
            return True
        lo, hi = np.fmin.reduce(values), np.fmax.reduce(values)
        if np.isnan(lo):
            return True  # every value is null
    if col.min is not None and lo < col.min:
        return False
    return col.max is None or not hi > col.max


def _first_occurrences(
    keys: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """The sorted distinct keys and the index of each one's first occurrence.

    (A stable argsort, several times faster than ``np.unique(..., return_index=True)`` here.)
    """
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first], order[first]


def _merge_sorted(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The sorted union of two sorted arrays of distinct keys."""
    if not len(a):
        return b
    both = np.sort(np.concatenate([a, b]))
    keep = np.ones(len(both), dtype=bool)
    np.not_equal(both[1:], both[:-1], out=keep[1:])
    return both[keep]


def _in_sorted(
    values: np.ndarray[Any, Any], sorted_: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    if not len(sorted_):
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_, values)
    pos[pos == len(sorted_)] = 0
    return np.asarray(sorted_[pos] == values)


def _isin(series: pd.Series, categories: tuple[Any, ...]) -> np.ndarray[Any, np.dtype[np.bool_]]:
    allowed = list(categories)
    if kind_of(series.dtype) == "category":
        # Check each category once, then look the answer up by code.
        ok = np.asarray(series.cat.categories.isin(allowed), dtype=bool)
        codes = np.asarray(series.cat.codes)
        return np.where(codes >= 0, ok[codes], True)
    return np.asarray(series.isin(allowed), dtype=bool)


def validate(
    data: Any, schema: Schema, *, strict: bool = False, max_examples: int = 5
) -> ValidationReport:
    """Check ``data`` against ``schema`` and report every violation.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, or a dict of columns.
        schema: the contract.
        strict: raise when there is any error-severity violation.
        max_examples: how many distinct offending values each violation keeps.

    Returns:
        The report: ``report.ok``, ``report.violations``, ``print(report)``.

    Raises:
        DataValidationFailed: ``strict`` and the data breaks the contract (``.report`` holds it).
        InvalidData: ``data`` is not a table.
    """
    report = Validator(schema, max_examples=max_examples).update(data).report()
    if strict:
        report.raise_for_errors()
    return report
