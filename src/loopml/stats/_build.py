"""Accumulators that turn pandas columns into column profiles, chunk by chunk.

Private: :mod:`loopml.stats.dataset` drives them. Each numeric chunk is sorted once; its
quantiles, histogram counts (``searchsorted`` of the edges in the sorted values), min and max come
from the sorted array, and the KLL sketch is updated with it (sorted input is also the sketch's
fastest path). Categories come from ``value_counts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from loopml.errors import InvalidArgument
from loopml.stats.columns import (
    CategoricalProfile,
    Category,
    ColumnProfile,
    Moments,
    NumericProfile,
    fold,
)
from loopml.stats.sketch import QuantileSketch, new_kll

if TYPE_CHECKING:
    import pandas as pd

Kind = Literal["numeric", "datetime", "categorical", "boolean"]
FloatArray = npt.NDArray[np.float64]


def column_kind(series: pd.Series[Any], forced_categorical: bool) -> Kind:
    """Which profile a column gets, from its dtype (or the caller's word for categorical)."""
    import pandas as pd

    dtype = series.dtype
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


def numeric_values(series: pd.Series[Any], kind: Kind) -> tuple[FloatArray, str | None]:
    """The column as float64 (NaN for nulls); datetimes as seconds since the epoch, UTC."""
    import pandas as pd

    tz = None
    if kind == "datetime":
        s = series
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            tz = str(s.dtype.tz)
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        arr = s.to_numpy()
        unit, _ = np.datetime_data(arr.dtype)
        per_second = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
        out = arr.view("i8").astype(np.float64) / per_second
        out[np.isnat(arr)] = np.nan
        return out, tz
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
    ) -> None:
        self.name = name
        self.kind = kind
        self.edges = edges
        self.bins = bins
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
        if self.edges is None:
            self.edges = edges_from_sorted(xs, self.bins)
            self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        assert self.counts is not None
        below = np.searchsorted(xs, np.asarray(self.edges[1:-1]), side="left")
        self.counts += np.diff(np.concatenate(([0], below, [xs.size])))

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

    def update(self, series: pd.Series[Any]) -> None:
        nulls = int(series.isna().sum())
        self.nulls += nulls
        self.count += len(series) - nulls
        if nulls == len(series):
            return
        try:
            vc = series.value_counts(dropna=True, sort=False)
        except TypeError:  # unhashable values (lists, dicts): count their text
            vc = series[series.notna()].astype(str).value_counts(sort=False)
        counts = self.counts
        for value, c in zip(vc.index.tolist(), vc.to_numpy().tolist(), strict=True):
            if c:
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
