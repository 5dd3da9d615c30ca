"""Column profiles: what one column of a dataset looks like, in a form that merges exactly.

Two kinds, both frozen dataclasses with no I/O and no dataframe library:

* :class:`NumericProfile` (numbers, and datetimes as seconds since the epoch): counts of values,
  nulls and infinities, min and max, mergeable central moments, a histogram on fixed edges with
  open-ended outer bins, and a KLL quantile sketch.
* :class:`CategoricalProfile` (strings, categories, booleans): exact counts per category up to a
  cap, beyond which the rarest are folded into an ``other`` count.

``a.merge(b)`` adds two profiles of the same column: every count adds up exactly; moments combine
with the pairwise formulas of Chan et al. and Pébay (exact up to float rounding).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from loopml.errors import InvalidArgument
from loopml.stats.sketch import DEFAULT_K, QuantileSketch

__all__ = [
    "DEFAULT_CATEGORY_CAP",
    "Category",
    "CategoricalProfile",
    "ColumnProfile",
    "Moments",
    "NumericProfile",
    "Top",
    "column_from_dict",
]

DEFAULT_CATEGORY_CAP = 10_000

_MOMENT_BLOCK = 32_768
"""Values per block when summing central moments (two 256 KiB buffers: they stay in cache)."""

Category = str | int | float | bool
"""A category value as it appears in JSON."""


@dataclass(frozen=True, slots=True)
class Moments:
    """Count, mean and the 2nd to 4th central moment sums (``M_p = sum((x - mean) ** p)``)."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0

    @classmethod
    def of(cls, values: npt.NDArray[np.float64]) -> Moments:
        """The moments of finite ``values``: one pass for the mean, then the central sums block
        by block, in two cache-sized buffers.

        No BLAS: a dot product of two long vectors wakes the BLAS thread pool, which took 10x
        longer than numpy's own sums here (and spins against the other threads).
        """
        n = int(values.size)
        if n == 0:
            return cls()
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: sums become inf
            mean = float(values.mean())
            size = min(n, _MOMENT_BLOCK)
            d, p = np.empty(size), np.empty(size)
            m2 = m3 = m4 = 0.0
            for start in range(0, n, size):
                block = values[start : start + size]
                k = block.size
                dk = np.subtract(block, mean, out=d[:k])
                pk = np.multiply(dk, dk, out=p[:k])
                m2 += float(pk.sum())
                m3 += float(np.multiply(pk, dk, out=dk).sum())
                m4 += float(np.multiply(pk, pk, out=pk).sum())
            return cls(n, mean, m2, m3, m4)

    @classmethod
    def combine(cls, parts: Sequence[Moments]) -> Moments:
        """The moments of many samples together, about the overall mean in one step:
        ``M_p = sum(M_p,i + sum_k C(p,k) d_i^k M_(p-k),i)`` with ``d_i`` the part's mean minus
        the overall mean (``M_1 = 0``, ``M_0 = n``)."""
        full = [m for m in parts if m.n]
        if len(full) <= 2:
            out = cls()
            for m in full:
                out = out.merge(m)
            return out
        with np.errstate(over="ignore", invalid="ignore"):
            n = np.array([m.n for m in full], dtype=np.float64)
            mean_i = np.array([m.mean for m in full])
            m2 = np.array([m.m2 for m in full])
            m3 = np.array([m.m3 for m in full])
            m4 = np.array([m.m4 for m in full])
            total = float(n.sum())
            mean = float((n * mean_i).sum() / total)
            d = mean_i - mean
            d2 = d * d
            return cls(
                int(total),
                mean,
                float((m2 + n * d2).sum()),
                float((m3 + 3.0 * d * m2 + n * d2 * d).sum()),
                float((m4 + 4.0 * d * m3 + 6.0 * d2 * m2 + n * d2 * d2).sum()),
            )

    def merge(self, other: Moments) -> Moments:
        """The moments of both samples together (Pébay 2008, eqs. 3.1 and 3.2)."""
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        na, nb = float(self.n), float(other.n)
        n = na + nb
        delta = other.mean - self.mean
        dn = delta / n
        mean = self.mean + dn * nb
        m2 = self.m2 + other.m2 + delta * dn * na * nb
        m3 = (
            self.m3
            + other.m3
            + delta * dn * dn * na * nb * (na - nb)
            + 3.0 * dn * (na * other.m2 - nb * self.m2)
        )
        m4 = (
            self.m4
            + other.m4
            + delta * dn * dn * dn * na * nb * (na * na - na * nb + nb * nb)
            + 6.0 * dn * dn * (na * na * other.m2 + nb * nb * self.m2)
            + 4.0 * dn * (na * other.m3 - nb * self.m3)
        )
        return Moments(self.n + other.n, mean, m2, m3, m4)

    @property
    def variance(self) -> float | None:
        """Sample variance (``ddof=1``, as pandas), or None below two values."""
        return self.m2 / (self.n - 1) if self.n > 1 else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (``ddof=1``, as pandas)."""
        v = self.variance
        return math.sqrt(v) if v is not None else None

    @property
    def population_std(self) -> float | None:
        """Population standard deviation (``ddof=0``, as ``numpy.std``)."""
        return math.sqrt(self.m2 / self.n) if self.n > 0 else None

    @property
    def skew(self) -> float | None:
        """Bias-corrected skewness, as ``pandas.Series.skew`` (None below three values)."""
        n = self.n
        if n < 3:
            return None
        if self.m2 <= 0:
            return 0.0
        g1 = math.sqrt(n) * self.m3 / (self.m2 * math.sqrt(self.m2))
        return g1 * math.sqrt(n * (n - 1)) / (n - 2)

    @property
    def kurtosis(self) -> float | None:
        """Bias-corrected excess kurtosis, as ``pandas.Series.kurt`` (None below four values)."""
        n = self.n
        if n < 4:
            return None
        if self.m2 <= 0:
            return 0.0
        num = n * (n + 1) * (n - 1) * self.m4
        den = (n - 2) * (n - 3) * self.m2 * self.m2
        return num / den - 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3))


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _json_float(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def _epoch_to_iso(seconds: float | None, tz: str | None) -> str | None:
    if seconds is None:
        return None
    micros = round(seconds * 1e6)
    stamp = np.datetime64(micros // 1_000_000, "s") if micros % 1_000_000 == 0 else None
    text = str(stamp if stamp is not None else np.datetime64(micros, "us"))
    return f"{text}+00:00" if tz else text


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """The profile of a numeric (or datetime) column.

    Attributes:
        name: column name.
        kind: ``"numeric"``, or ``"datetime"`` (values are seconds since the Unix epoch, UTC
            when ``tz`` is set).
        count: non-null values, infinities included.
        nulls: null values (None, NaN, NA, NaT).
        pos_inf: ``+inf`` values; ``neg_inf``: ``-inf`` values. Infinities are counted but kept
            out of min/max, moments, histogram and sketch.
        min: smallest finite value (None without one); ``max`` likewise.
        moments: count, mean and central moment sums of the finite values.
        edges: histogram edges ``e0 < e1 < ... < eB`` (B bins; empty before any finite value).
            The outer bins are open-ended: bin 0 holds everything below ``e1`` and the last bin
            everything at or above ``e(B-1)``, so later data always fits. Bins are left-closed.
        counts: finite values per bin (``len(edges) - 1`` integers).
        sketch: KLL sketch of the finite values, for quantiles and for counts on other edges.
        tz: time zone the datetimes were given in (display only), for ``kind="datetime"``.
    """

    name: str
    kind: Literal["numeric", "datetime"]
    count: int
    nulls: int
    pos_inf: int
    neg_inf: int
    min: float | None
    max: float | None
    moments: Moments
    edges: tuple[float, ...]
    counts: tuple[int, ...]
    sketch: QuantileSketch = field(compare=False)
    tz: str | None = None

    type: ClassVar[str] = "numeric"

    @property
    def rows(self) -> int:
        """Rows seen: values plus nulls."""
        return self.count + self.nulls

    @property
    def finite(self) -> int:
        """Finite values (those in the histogram, moments and sketch)."""
        return self.moments.n

    @property
    def mean(self) -> float | None:
        """Mean of the finite values."""
        return self.moments.mean if self.moments.n else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (``ddof=1``)."""
        return self.moments.std

    @property
    def skew(self) -> float | None:
        """Bias-corrected skewness (as pandas)."""
        return self.moments.skew

    @property
    def kurtosis(self) -> float | None:
        """Bias-corrected excess kurtosis (as pandas)."""
        return self.moments.kurtosis

    @property
    def inner_edges(self) -> npt.NDArray[np.float64]:
        """The cut points between bins: ``edges[1:-1]``."""
        return np.asarray(self.edges[1:-1], dtype=np.float64)

    def quantile(self, q: float | Iterable[float]) -> Any:
        """Quantile(s) at ``q`` in [0, 1] from the sketch (rank error: ``sketch.rank_error``).

        ``q=0`` and ``q=1`` give the exact min and max.
        """
        scalar = isinstance(q, (int, float))
        qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
        out = self.sketch.quantiles(qs)
        if self.min is not None and self.max is not None:
            out = np.where(qs == 0.0, self.min, np.where(qs == 1.0, self.max, out))
        return float(out[0]) if scalar else out

    def counts_on(self, edges: Iterable[float]) -> npt.NDArray[np.int64]:
        """Finite-value counts on another histogram's ``edges`` (same open-ended bins).

        Exact when ``edges`` equal this profile's edges or the sketch still holds every value;
        otherwise estimated from the sketch (rank error ``sketch.rank_error`` per cut point) and
        rounded to integers that add up to :attr:`finite` exactly.
        """
        e = tuple(float(x) for x in edges)
        if len(e) < 2:
            raise InvalidArgument(f"column {self.name!r}: edges need at least two values, got {e}")
        if e == self.edges:
            return np.asarray(self.counts, dtype=np.int64)
        return self.sketch.bin_counts(np.asarray(e[1:-1]), total=self.finite)

    def display(self, value: float | None) -> str | float | None:
        """A value of this column as shown to people: an ISO timestamp for datetimes."""
        return _epoch_to_iso(value, self.tz) if self.kind == "datetime" else value

    @property
    def min_display(self) -> str | float | None:
        """``min`` as an ISO timestamp for datetimes, else the number."""
        return _epoch_to_iso(self.min, self.tz) if self.kind == "datetime" else self.min

    @property
    def max_display(self) -> str | float | None:
        """``max`` as an ISO timestamp for datetimes, else the number."""
        return _epoch_to_iso(self.max, self.tz) if self.kind == "datetime" else self.max

    def merge(self, other: ColumnProfile) -> NumericProfile:
        """This profile plus ``other`` (same column and kind, same edges or one side empty).

        Raises:
            InvalidArgument: the other profile is of another kind or was binned on other edges
                (build both with the same ``edges``, e.g. a reference profile's).
        """
        if not isinstance(other, NumericProfile) or other.kind != self.kind:
            raise InvalidArgument(
                f"column {self.name!r}: cannot merge a {self.kind} profile with a "
                f"{getattr(other, 'kind', type(other).__name__)} profile"
            )
        if not other.edges:
            edges, counts = self.edges, self.counts
        elif not self.edges:
            edges, counts = other.edges, other.counts
        elif self.edges == other.edges:
            edges = self.edges
            counts = tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
        else:
            raise InvalidArgument(
                f"column {self.name!r}: the two profiles were binned on different edges; build "
                "them with the same edges (profile(data, edges=reference.edges())) to merge them"
            )
        mins = [x for x in (self.min, other.min) if x is not None]
        maxs = [x for x in (self.max, other.max) if x is not None]
        return replace(
            self,
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            pos_inf=self.pos_inf + other.pos_inf,
            neg_inf=self.neg_inf + other.neg_inf,
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            moments=self.moments.merge(other.moments),
            edges=edges,
            counts=counts,
            sketch=self.sketch.merge(other.sketch),
            tz=self.tz or other.tz,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (the sketch as base64)."""
        m = self.moments
        return {
            "type": "numeric",
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "pos_inf": self.pos_inf,
            "neg_inf": self.neg_inf,
            "min": self.min,
            "max": self.max,
            # Moment sums of huge values can overflow to inf: JSON has no inf, so they go as text.
            "moments": {
                "n": m.n,
                **{
                    k: _json_float(v)
                    for k, v in (("mean", m.mean), ("m2", m.m2), ("m3", m.m3), ("m4", m.m4))
                },
            },
            "edges": list(self.edges),
            "counts": list(self.counts),
            "sketch": self.sketch.to_base64(),
            "tz": self.tz,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        """Rebuild from :meth:`to_dict` output."""
        m = data["moments"]
        edges = tuple(map(float, data["edges"]))
        counts = tuple(map(int, data["counts"]))
        if edges and len(counts) != len(edges) - 1:
            raise InvalidArgument(
                f"column {data['name']!r}: {len(edges)} edges need {len(edges) - 1} counts, "
                f"got {len(counts)}"
            )
        return cls(
            name=str(data["name"]),
            kind=data["kind"],
            count=int(data["count"]),
            nulls=int(data["nulls"]),
            pos_inf=int(data["pos_inf"]),
            neg_inf=int(data["neg_inf"]),
            min=_opt_float(data["min"]),
            max=_opt_float(data["max"]),
            moments=Moments(
                int(m["n"]), float(m["mean"]), float(m["m2"]), float(m["m3"]), float(m["m4"])
            ),
            edges=edges,
            counts=counts,
            sketch=QuantileSketch.from_base64(data["sketch"]),
            tz=data.get("tz"),
        )


class Top(NamedTuple):
    """The most frequent categories and the count of all the others."""

    categories: tuple[tuple[Category, int], ...]
    other: int


def _category_key(item: tuple[Category, int]) -> tuple[int, str, str]:
    value, count = item
    return (-count, type(value).__name__, str(value))


def fold(counts: Mapping[Category, int], cap: int) -> tuple[tuple[tuple[Category, int], ...], int]:
    """Categories by count (ties by value); the tail beyond ``cap`` summed into one count."""
    items = sorted(((k, int(v)) for k, v in counts.items() if v), key=_category_key)
    if len(items) <= cap:
        return tuple(items), 0
    return tuple(items[:cap]), sum(c for _, c in items[cap:])


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """The profile of a categorical (string, category or boolean) column.

    Attributes:
        name: column name.
        kind: ``"categorical"`` or ``"boolean"``.
        count: non-null values.
        nulls: null values.
        categories: ``(value, count)`` pairs, most frequent first (ties ordered by value).
        other: values of the categories folded away beyond ``cap`` (0 below the cap).
        cap: how many categories are counted exactly.
    """

    name: str
    kind: Literal["categorical", "boolean"]
    count: int
    nulls: int
    categories: tuple[tuple[Category, int], ...]
    other: int = 0
    cap: int = DEFAULT_CATEGORY_CAP

    type: ClassVar[str] = "categorical"

    @property
    def rows(self) -> int:
        """Rows seen: values plus nulls."""
        return self.count + self.nulls

    @property
    def n_categories(self) -> int:
        """Distinct categories counted exactly (a lower bound when ``other`` > 0)."""
        return len(self.categories)

    def as_dict(self) -> dict[Category, int]:
        """Category -> count (without ``other``)."""
        return dict(self.categories)

    def top(self, k: int = 10) -> Top:
        """The ``k`` most frequent categories and the count of all the rest (``other``)."""
        if k < 0:
            raise InvalidArgument(f"top(k) needs k >= 0, not {k}")
        rest = sum(c for _, c in self.categories[k:])
        return Top(self.categories[:k], rest + self.other)

    def merge(self, other: ColumnProfile) -> CategoricalProfile:
        """This profile plus ``other``: counts add up; the tail beyond the cap folds into other."""
        if not isinstance(other, CategoricalProfile):
            raise InvalidArgument(
                f"column {self.name!r}: cannot merge a {self.kind} profile with a "
                f"{other.kind} profile"
            )
        counts = dict(self.categories)
        for value, c in other.categories:
            counts[value] = counts.get(value, 0) + c
        cap = min(self.cap, other.cap)
        categories, folded = fold(counts, cap)
        kind = self.kind if self.kind == other.kind else "categorical"
        return CategoricalProfile(
            name=self.name,
            kind=kind,
            count=self.count + other.count,
            nulls=self.nulls + other.nulls,
            categories=categories,
            other=self.other + other.other + folded,
            cap=cap,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (categories as ``[value, count]`` pairs, in order)."""
        return {
            "type": "categorical",
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "categories": [[v, c] for v, c in self.categories],
            "other": self.other,
            "cap": self.cap,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            name=str(data["name"]),
            kind=data["kind"],
            count=int(data["count"]),
            nulls=int(data["nulls"]),
            categories=_pairs(data["categories"]),
            other=int(data["other"]),
            cap=int(data["cap"]),
        )


def _pairs(items: Iterable[Any]) -> tuple[tuple[Category, int], ...]:
    """``[value, count]`` pairs from JSON as tuples (fast path: the counts are already ints)."""
    pairs = tuple(map(tuple, items))
    if all(type(c) is int for _, c in pairs):
        return pairs
    return tuple((v, int(c)) for v, c in pairs)


ColumnProfile = NumericProfile | CategoricalProfile
"""Either kind of column profile."""


def column_from_dict(data: Mapping[str, Any]) -> ColumnProfile:
    """Rebuild a column profile of either kind from its ``to_dict`` output."""
    kind = data.get("type")
    if kind == "numeric":
        return NumericProfile.from_dict(data)
    if kind == "categorical":
        return CategoricalProfile.from_dict(data)
    raise InvalidArgument(
        f"column {data.get('name')!r}: unknown profile type {kind!r}; expected numeric or "
        "categorical"
    )


def merge_columns(parts: Sequence[ColumnProfile]) -> ColumnProfile:
    """Profiles of one column from many tables (windows, chunks) merged at once.

    The same as merging them pairwise in order, in one step per statistic: counts summed as
    arrays, moments combined about the overall mean, one sketch merged into, categories folded
    at the cap once at the end (so a category that is rare in some parts and frequent in others
    keeps its exact count). Parts that cannot be merged raise the pairwise merge's error.
    """
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, CategoricalProfile):
        if not all(isinstance(p, CategoricalProfile) for p in parts):
            return _merge_pairwise(parts)
        cats = [p for p in parts if isinstance(p, CategoricalProfile)]
        counts: dict[Category, int] = {}
        for p in cats:
            for value, c in p.categories:
                counts[value] = counts.get(value, 0) + c
        cap = min(p.cap for p in cats)
        categories, folded = fold(counts, cap)
        same = all(p.kind == first.kind for p in cats)
        return CategoricalProfile(
            name=first.name,
            kind=first.kind if same else "categorical",
            count=sum(p.count for p in cats),
            nulls=sum(p.nulls for p in cats),
            categories=categories,
            other=sum(p.other for p in cats) + folded,
            cap=cap,
        )
    nums = [p for p in parts if isinstance(p, NumericProfile) and p.kind == first.kind]
    binned = [p for p in nums if p.edges]
    if len(nums) != len(parts) or any(p.edges != binned[0].edges for p in binned[1:]):
        return _merge_pairwise(parts)  # raises: another kind, or other edges
    edges = binned[0].edges if binned else first.edges
    counts_sum = (
        tuple(int(c) for c in np.asarray([p.counts for p in binned], dtype=np.int64).sum(axis=0))
        if binned
        else first.counts
    )
    mins = [p.min for p in nums if p.min is not None]
    maxs = [p.max for p in nums if p.max is not None]
    return replace(
        first,
        count=sum(p.count for p in nums),
        nulls=sum(p.nulls for p in nums),
        pos_inf=sum(p.pos_inf for p in nums),
        neg_inf=sum(p.neg_inf for p in nums),
        min=min(mins) if mins else None,
        max=max(maxs) if maxs else None,
        moments=Moments.combine([p.moments for p in nums]),
        edges=edges,
        counts=counts_sum,
        sketch=QuantileSketch.merge_all(p.sketch for p in nums),
        tz=next((p.tz for p in nums if p.tz), None),
    )


def _merge_pairwise(parts: Sequence[ColumnProfile]) -> ColumnProfile:
    out = parts[0]
    for p in parts[1:]:
        out = out.merge(p)
    return out


def empty_numeric(
    name: str, kind: Literal["numeric", "datetime"] = "numeric", k: int = DEFAULT_K
) -> NumericProfile:
    """The profile of a numeric column with no rows."""
    return NumericProfile(
        name, kind, 0, 0, 0, 0, None, None, Moments(), (), (), QuantileSketch.empty(k)
    )
