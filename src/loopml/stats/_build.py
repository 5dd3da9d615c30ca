"""Accumulators that turn columns into column profiles, chunk by chunk.

Private: :mod:`loopml.stats.dataset` drives them. A chunk's columns are pyarrow arrays when the
chunk is Arrow (a pyarrow Table or RecordBatch, or a polars frame, which converts zero-copy) and
pandas Series otherwise; :func:`table_columns` makes that split, so Arrow data (Parquet batches)
is profiled without pandas. Each numeric chunk is sorted once; its quantiles, histogram counts
(``searchsorted`` of the edges in the sorted values), min and max come from the sorted array, and
the KLL sketch is updated with it (sorted input is also the sketch's fastest path). Categories
come from ``value_counts`` (Arrow's on Arrow columns, which makes no Python string per value) or,
for dictionary-encoded columns, from a ``bincount`` of their codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loopml._frames import as_pandas
from loopml.errors import InvalidArgument, InvalidData
from loopml.stats.columns import (
    CategoricalProfile,
    Category,
    ColumnProfile,
    Moments,
    NumericProfile,
    fold,
)
from loopml.stats.sketch import QuantileSketch, new_kll

Kind = Literal["numeric", "datetime", "categorical", "boolean"]
FloatArray = npt.NDArray[np.float64]
Column = Any
"""One column of a chunk: a pyarrow Array or ChunkedArray, or a pandas Series."""

_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def is_arrow(column: Column) -> bool:
    """Whether a column is a pyarrow array (else it is a pandas Series)."""
    return type(column).__module__.startswith("pyarrow")


def _arrow_native(column: Any, forced_categorical: bool) -> Column:
    """The column as the profiler takes it: Arrow for the types it reads natively, else pandas
    (dates, times, decimals, nested types...: what pandas makes of them decides their kind, as
    it always did)."""
    import pyarrow as pa

    t = column.type
    types = pa.types
    is_view = getattr(types, "is_string_view", None)  # pyarrow >= 16
    if is_view is not None and is_view(t):
        return column.cast(pa.large_string())
    if forced_categorical:
        native = (
            types.is_boolean(t)
            or types.is_integer(t)
            or types.is_string(t)
            or types.is_large_string(t)
            or types.is_null(t)
            or (types.is_dictionary(t) and not types.is_floating(t.value_type))
        )
    else:
        native = (
            types.is_boolean(t)
            or types.is_integer(t)
            or types.is_floating(t)
            or types.is_duration(t)
            or types.is_string(t)
            or types.is_large_string(t)
            or types.is_null(t)
            or (types.is_timestamp(t) and (t.tz is None or t.tz[:1] not in "+-"))
            or (
                types.is_dictionary(t)
                and (
                    types.is_string(t.value_type)
                    or types.is_large_string(t.value_type)
                    or types.is_integer(t.value_type)
                )
            )
        )
    return column if native else column.to_pandas()


def table_columns(
    chunk: Any, *, what: str, categorical: frozenset[str] = frozenset()
) -> tuple[list[str], list[Column], int]:
    """A chunk's column names, its columns (pyarrow arrays, or pandas Series for pandas frames
    and mappings) and its row count.

    Raises:
        InvalidData: the chunk is not a table, or has duplicate column names.
    """
    module = type(chunk).__module__.split(".", 1)[0]
    name = type(chunk).__name__
    if module == "polars" and name in {"DataFrame", "LazyFrame"}:
        chunk = (chunk.collect() if name == "LazyFrame" else chunk).to_arrow()
        module, name = "pyarrow", "Table"
    if module == "pyarrow" and name in {"Table", "RecordBatch"}:
        names = [str(n) for n in chunk.schema.names]
        _no_duplicates(what, names)
        columns = [
            _arrow_native(col, n in categorical)
            for n, col in zip(names, chunk.columns, strict=True)
        ]
        return names, columns, int(chunk.num_rows)
    frame = as_pandas(chunk, what=what)
    names = [str(c) for c in frame.columns]
    _no_duplicates(what, names)
    return names, [frame.iloc[:, i] for i in range(len(names))], len(frame)


def _no_duplicates(what: str, names: list[str]) -> None:
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InvalidData(f"{what} has duplicate columns {dup}; rename them")


def column_kind(column: Column, forced_categorical: bool) -> Kind:
    """Which profile a column gets, from its type (or the caller's word for categorical)."""
    if is_arrow(column):
        import pyarrow as pa

        t = column.type
        if pa.types.is_boolean(t):
            # as pandas: a bool column with nulls becomes objects there, profiled as categories
            return "boolean" if column.null_count == 0 else "categorical"
        if forced_categorical:
            return "categorical"
        if pa.types.is_timestamp(t):
            return "datetime"
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_duration(t):
            return "numeric"
        return "categorical"
    import pandas as pd

    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if forced_categorical:
        return "categorical"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    return "categorical"


def _chunks(column: Column) -> list[Any]:
    import pyarrow as pa

    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _numpy_dtype(t: Any) -> np.dtype[Any]:
    import pyarrow as pa

    if pa.types.is_floating(t):
        return np.dtype(f"float{t.bit_width}")
    if pa.types.is_signed_integer(t):
        return np.dtype(f"int{t.bit_width}")
    if pa.types.is_unsigned_integer(t):
        return np.dtype(f"uint{t.bit_width}")
    return np.dtype(np.int64)  # timestamps and durations


def _chunk_values(chunk: Any) -> npt.NDArray[Any]:
    """A primitive Arrow array's values as a read-only numpy view (whatever sits in null slots).

    Not ``to_numpy()``: its C++ converter imports pandas (140 MB) on first use.
    """
    dtype = _numpy_dtype(chunk.type)
    data = chunk.buffers()[1]
    if data is None or len(chunk) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize)


def _chunk_valid(chunk: Any) -> npt.NDArray[np.bool_] | None:
    """Which slots hold a value (None: all of them)."""
    if chunk.null_count == 0:
        return None
    if chunk.null_count == len(chunk) or chunk.buffers()[0] is None:
        return np.zeros(len(chunk), dtype=bool)
    bits = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[chunk.offset : chunk.offset + len(chunk)].astype(bool)


def _arrow_floats(column: Column) -> FloatArray:
    """A numeric Arrow column as float64 with NaN for nulls (a view when it can be one)."""
    parts = []
    for chunk in _chunks(column):
        values = _chunk_values(chunk)
        valid = _chunk_valid(chunk)
        if values.dtype != np.float64 or valid is not None:
            values = values.astype(np.float64)
        if valid is not None:
            values[~valid] = np.nan
        parts.append(values)
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0)


def all_null(column: Column) -> bool:
    """Whether every value is null (NaN counts as null, as in pandas)."""
    if is_arrow(column):
        import pyarrow as pa

        n = len(column)
        if column.null_count == n:
            return True
        if pa.types.is_floating(column.type):
            return bool(np.isnan(_arrow_floats(column)).all())
        return False
    return bool(column.isna().all())


def dtype_name(column: Column) -> str:
    """The column's type, as a message shows it."""
    return str(column.type if is_arrow(column) else column.dtype)


def _seconds(values: Any) -> FloatArray:
    """datetime64 / timedelta64 values as float seconds, NaN for NaT."""
    unit, _ = np.datetime_data(values.dtype)
    out: FloatArray = values.view("i8").astype(np.float64) / _PER_SECOND[unit]
    out[np.isnat(values)] = np.nan
    return out


def numeric_values(column: Column, kind: Kind) -> tuple[FloatArray, str | None]:
    """The column as float64 (NaN for nulls); datetimes as seconds since the epoch, UTC."""
    if is_arrow(column):
        import pyarrow as pa

        t = column.type
        if pa.types.is_timestamp(t) or pa.types.is_duration(t):
            tz = getattr(t, "tz", None) or None
            return _arrow_floats(column) / _PER_SECOND[t.unit], tz
        return _arrow_floats(column), None
    import pandas as pd

    series = column
    tz = None
    if kind == "datetime":
        s = series
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            tz = str(s.dtype.tz)
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return _seconds(s.to_numpy()), tz
    if pd.api.types.is_timedelta64_dtype(series.dtype):
        return series.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan), None
    return series.to_numpy(dtype=np.float64, na_value=np.nan), None


def check_edges(name: str, edges: Sequence[float]) -> tuple[float, ...]:
    """Validate user-given edges: at least two, finite, strictly increasing."""
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise InvalidArgument(
            f"column {name!r}: edges must be at least two finite, strictly increasing numbers, "
            f"got {list(edges)[:8]}"
        )
    return tuple(float(x) for x in e)


def _sorted_quantiles(xs: FloatArray, probs: FloatArray) -> FloatArray:
    """Linear-interpolation quantiles of an already sorted array (numpy's default method)."""
    pos = probs * (xs.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, xs.size - 1)
    frac = pos - lo
    return xs[lo] + (xs[hi] - xs[lo]) * frac


def discrete_edges(values: FloatArray) -> tuple[float, ...]:
    """Edges that give each of a few distinct values a bin centred on it.

    Cuts sit halfway between neighbours and the outer edges mirror the nearest cut, so the bin
    midpoints are the values themselves when they are evenly spaced (0/1 flags, small counts).
    """
    v = np.unique(values)
    if v.size == 1:
        return (float(v[0]) - 0.5, float(v[0]) + 0.5)
    cuts = (v[:-1] + v[1:]) / 2.0
    lo = v[0] - (cuts[0] - v[0])
    hi = v[-1] + (v[-1] - cuts[-1])
    return tuple(float(x) for x in (lo, *cuts, hi))


def quantile_edges(quantiles: FloatArray) -> tuple[float, ...]:
    """Edges from ``bins + 1`` quantiles (min first, max last), ties removed."""
    lo, hi = float(quantiles[0]), float(quantiles[-1])
    inner = np.unique(quantiles[1:-1])
    inner = inner[(inner > lo) & (inner < hi)]
    if lo == hi:
        return (lo - 0.5, hi + 0.5)
    if inner.size == 0:
        return (lo, hi)
    return (lo, *(float(x) for x in inner), hi)


def edges_from_sorted(xs: FloatArray, bins: int) -> tuple[float, ...]:
    """Quantile edges for ``bins`` bins from sorted finite values; per-value bins when few."""
    if xs.size == 0:
        return ()
    changes = np.flatnonzero(xs[1:] != xs[:-1])
    if changes.size + 1 <= bins:
        return discrete_edges(np.concatenate((xs[:1], xs[changes + 1])))
    return quantile_edges(_sorted_quantiles(xs, np.linspace(0.0, 1.0, bins + 1)))


def count_on_edges(x: FloatArray, edges: Sequence[float]) -> npt.NDArray[np.int64]:
    """Finite values of ``x`` per bin of ``edges`` (open-ended outer bins, left-closed)."""
    xs = np.sort(x[np.isfinite(x)])
    below = np.searchsorted(xs, np.asarray(edges[1:-1], dtype=np.float64), side="left")
    return np.diff(np.concatenate(([0], below, [xs.size]))).astype(np.int64)


@dataclass(frozen=True, slots=True)
class PreparedNumeric:
    """One chunk of a numeric column, counted, sorted and summed (no profile state needed)."""

    count: int
    nulls: int
    pos_inf: int
    neg_inf: int
    sorted_values: FloatArray
    moments: Moments
    tz: str | None


def prepare_numeric(x: FloatArray, tz: str | None) -> PreparedNumeric:
    """The state-free part of a numeric update: numpy releases the GIL for all of it, so
    :class:`~loopml.stats.dataset.ProfileBuilder` runs it on a worker thread for the next column
    while the current column's KLL update (which holds the GIL) runs."""
    n = x.size
    finite = np.isfinite(x)
    n_finite = int(np.count_nonzero(finite))
    nulls = pos = neg = 0
    if n_finite == n:
        xf = x
    else:
        nulls = int(np.count_nonzero(np.isnan(x)))
        pos = int(np.count_nonzero(x == np.inf))
        neg = n - n_finite - nulls - pos
        xf = x[finite]
    xs = np.sort(xf)
    return PreparedNumeric(n - nulls, nulls, pos, neg, xs, Moments.of(xs), tz)


class NumericAcc:
    """Mutable numeric column state: counts, moments, histogram and a KLL sketch."""

    def __init__(
        self,
        name: str,
        kind: Literal["numeric", "datetime"],
        edges: tuple[float, ...] | None,
        bins: int,
        k: int,
        *,
        defer_edges: bool = False,
    ) -> None:
        self.name = name
        self.kind = kind
        self.edges = edges
        self.bins = bins
        # Deferred: no histogram yet; edges come from the whole column's sketch (or its few
        # distinct values) at the end, and a second pass counts on them (see stream.py).
        self.defer_edges = defer_edges and edges is None
        self.distinct: FloatArray | None = np.empty(0) if self.defer_edges else None
        self.count = self.nulls = self.pos_inf = self.neg_inf = 0
        self.min: float | None = None
        self.max: float | None = None
        self.moments = Moments()
        self.counts: npt.NDArray[np.int64] | None = (
            np.zeros(len(edges) - 1, dtype=np.int64) if edges else None
        )
        self.kll = new_kll(k)
        self.tz: str | None = None

    def update(self, x: FloatArray, tz: str | None) -> None:
        self.apply(prepare_numeric(x, tz))

    def apply(self, chunk: PreparedNumeric) -> None:
        """Fold a prepared chunk in (the KLL update holds the GIL; the rest is cheap)."""
        if chunk.tz:
            self.tz = chunk.tz
        self.nulls += chunk.nulls
        self.count += chunk.count
        self.pos_inf += chunk.pos_inf
        self.neg_inf += chunk.neg_inf
        xs = chunk.sorted_values
        if xs.size == 0:
            return
        lo, hi = float(xs[0]), float(xs[-1])
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.moments = self.moments.merge(chunk.moments)
        self.kll.update(xs)
        if self.defer_edges:
            if self.distinct is not None:
                values = np.union1d(self.distinct, xs[np.r_[True, xs[1:] != xs[:-1]]])
                self.distinct = values if values.size <= self.bins else None
            return
        if self.edges is None:
            self.edges = edges_from_sorted(xs, self.bins)
            self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        assert self.counts is not None
        below = np.searchsorted(xs, np.asarray(self.edges[1:-1]), side="left")
        self.counts += np.diff(np.concatenate(([0], below, [xs.size])))

    def sketch_edges(self) -> tuple[float, ...]:
        """Edges for a deferred column: one bin per value when it has at most ``bins``
        distinct values, else quantile edges from the sketch (min and max exact)."""
        if self.kll.n == 0:
            return ()
        if self.distinct is not None:
            return discrete_edges(self.distinct)
        probs = np.linspace(0.0, 1.0, self.bins + 1)
        qs = np.asarray(self.kll.get_quantiles(probs.tolist(), True), dtype=np.float64)
        qs[0], qs[-1] = self.kll.get_min_value(), self.kll.get_max_value()
        return quantile_edges(np.maximum.accumulate(qs))

    def result(self) -> NumericProfile:
        return NumericProfile(
            name=self.name,
            kind=self.kind,
            count=self.count,
            nulls=self.nulls,
            pos_inf=self.pos_inf,
            neg_inf=self.neg_inf,
            min=self.min,
            max=self.max,
            moments=self.moments,
            edges=self.edges or (),
            counts=tuple(int(c) for c in self.counts) if self.counts is not None else (),
            # A copy: the builder may go on updating its own sketch.
            sketch=QuantileSketch.from_bytes(bytes(self.kll.serialize())),
            tz=self.tz,
        )


def _json_category(value: Any) -> Category:
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        item = value.item()
        if isinstance(item, (str, bool, int, float)):
            return item
    return str(value)


class CategoricalAcc:
    """Mutable categorical column state: exact counts per category (folded at the cap)."""

    def __init__(self, name: str, kind: Literal["categorical", "boolean"], cap: int) -> None:
        self.name = name
        self.kind = kind
        self.cap = cap
        self.count = self.nulls = self.other = 0
        self.counts: dict[Category, int] = {}

    def update(self, column: Column) -> None:
        if is_arrow(column):
            self._update_arrow(column)
            return
        series = column
        nulls = int(series.isna().sum())
        self.nulls += nulls
        self.count += len(series) - nulls
        if nulls == len(series):
            return
        try:
            vc = series.value_counts(dropna=True, sort=False)
        except TypeError:  # unhashable values (lists, dicts): count their text
            vc = series[series.notna()].astype(str).value_counts(sort=False)
        self._add(vc.index.tolist(), vc.to_numpy().tolist())

    def _update_arrow(self, column: Column) -> None:
        import pyarrow as pa

        nulls = int(column.null_count)
        self.nulls += nulls
        self.count += len(column) - nulls
        if nulls == len(column):
            return
        # Chunk by chunk: the chunks of a dictionary column may each have their own dictionary.
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        for chunk in chunks:
            if chunk.null_count == len(chunk):
                continue
            if pa.types.is_dictionary(chunk.type):
                # counts of the codes (nulls dropped), then the values of the used ones
                indices = chunk.indices
                idx = _chunk_values(indices)
                valid = _chunk_valid(indices)
                if valid is not None:
                    idx = idx[valid]
                n = np.bincount(idx.astype(np.intp, copy=False), minlength=len(chunk.dictionary))
                used = np.flatnonzero(n)
                values = chunk.dictionary.to_pylist()
                self._add([values[i] for i in used.tolist()], n[used].tolist())
                continue
            import pyarrow.compute as pc  # not on the dictionary path: its import costs 13 MB

            vc = pc.value_counts(chunk)
            self._add(vc.field("values").to_pylist(), vc.field("counts").to_pylist())

    def _add(self, values: list[Any], counts_of: list[int]) -> None:
        counts = self.counts
        for value, c in zip(values, counts_of, strict=True):
            if c and value is not None:
                key = _json_category(value)
                counts[key] = counts.get(key, 0) + int(c)
        if len(counts) > 2 * self.cap:  # keep memory bounded on very high cardinality
            self._fold()

    def _fold(self) -> None:
        kept, folded = fold(self.counts, self.cap)
        self.counts = dict(kept)
        self.other += folded

    def result(self) -> CategoricalProfile:
        categories, folded = fold(self.counts, self.cap)
        return CategoricalProfile(
            name=self.name,
            kind=self.kind,
            count=self.count,
            nulls=self.nulls,
            categories=categories,
            other=self.other + folded,
            cap=self.cap,
        )


Acc = NumericAcc | CategoricalAcc


def result_of(acc: Acc) -> ColumnProfile:
    """The immutable profile an accumulator has built so far."""
    return acc.result()
