"""The built-in quality checks on one table: size, missing values, duplicate rows, constant and
near-constant columns, high cardinality, mixed types, outliers and class imbalance.

Each check is a small frozen dataclass whose fields are its thresholds; change one with
``MissingValues(max_share=0.2)`` or make it fail the step with ``required=True``. The defaults
follow what profilers and validation suites use (ydata-profiling's alerts, Deepchecks' data
integrity suite). Leakage checks live in :mod:`loopml.data.leakage_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from loopml.data import _check_utils as u
from loopml.data.checks import CheckContext, CheckResult

__all__ = [
    "ClassImbalance",
    "ConstantColumns",
    "DuplicateRows",
    "HighCardinality",
    "MinRows",
    "MissingValues",
    "MixedTypes",
    "NearConstantColumns",
    "Outliers",
]


@dataclass(frozen=True, kw_only=True)
class MinRows:
    """The table has at least ``min_rows`` rows (required: an empty table fails the step)."""

    min_rows: int = 1
    name: str = "min_rows"
    required: bool = True

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        n = len(data)
        details = {"rows": n, "threshold": self.min_rows}
        if n >= self.min_rows:
            return CheckResult(self.name, True, message=f"{n:,} rows", details=details)
        return CheckResult(
            self.name,
            False,
            message=f"{context.name!r} has {n:,} rows, fewer than the {self.min_rows:,} needed",
            details=details,
        )


@dataclass(frozen=True, kw_only=True)
class MissingValues:
    """No column has more than ``max_share`` missing values (nulls, NaN, NaT).

    A warning by default: some missing values are normal and imputation handles them; a column
    missing most of its values usually is not worth keeping.
    """

    max_share: float = 0.05
    columns: tuple[str, ...] | None = None
    name: str = "missing_values"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        cols = u.select(data, self.columns, context)
        n = len(data)
        nulls = u.null_counts(context, data)
        shares = {c: u.share(int(nulls[c]), n) for c in cols if nulls[c] > 0}
        bad = sorted(
            (c for c, s in shares.items() if s > self.max_share), key=lambda c: -shares[c]
        )
        details: dict[str, Any] = {
            "threshold": self.max_share,
            "missing_share": shares,
            "columns": {c: {"missing": int(nulls[c]), "share": shares[c]} for c in bad},
        }
        limit = f"more than {u.pct(self.max_share)} missing values"
        if not bad:
            some = (
                f" ({len(shares)} have some; most: {max(shares, key=shares.__getitem__)!r} "
                f"{u.pct(max(shares.values()))})"
                if shares
                else ""
            )
            return CheckResult(
                self.name, True, message=f"no column has {limit}{some}", details=details
            )
        items = [f"{c!r} {u.pct(shares[c])}" for c in bad]
        return CheckResult(
            self.name,
            False,
            message=f"{len(bad)} of {u.plural(len(cols), 'column')} have {limit}: "
            f"{u.listing(items)}",
            details=details,
            columns=tuple(bad),
        )


@dataclass(frozen=True, kw_only=True)
class DuplicateRows:
    """At most ``max_share`` of the rows repeat an earlier row (over ``columns``, all by default).

    Rows are compared by a 64-bit hash of their values (the chance that two different rows of a
    billion-row table collide is about 3%; at a million rows, 3 in 100 million).
    """

    max_share: float = 0.01
    columns: tuple[str, ...] | None = None
    name: str = "duplicate_rows"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        cols = u.select(data, self.columns, context)
        n = len(data)
        repeats = u.duplicated_rows(data, cols) if n and cols else np.array([], dtype=np.int64)
        count = len(repeats)
        frac = u.share(count, n)
        examples = [u.show(i) for i in data.index[repeats[:5]]]
        details = {
            "duplicates": count,
            "share": frac,
            "threshold": self.max_share,
            "examples": [str(e) for e in examples],
            "method": "64-bit row hash",
        }
        what = f"{count:,} rows ({u.pct(frac)}) repeat an earlier row"
        if frac <= self.max_share:
            return CheckResult(
                self.name, True, message=what if count else "no duplicate rows", details=details
            )
        return CheckResult(
            self.name,
            False,
            message=f"{what}, more than {u.pct(self.max_share)}; e.g. rows {', '.join(examples)}",
            details=details,
        )


@dataclass(frozen=True, kw_only=True)
class ConstantColumns:
    """No column holds a single value (or nothing but missing values): it cannot help a model."""

    columns: tuple[str, ...] | None = None
    name: str = "constant_columns"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        cols = u.select(data, self.columns, context)
        constant: dict[str, Any] = {}
        for c in cols:
            single = _single_value(context, data, c)
            if single is not _MANY:
                constant[c] = single
        details = {
            "columns": {c: u.show(v) if v is not None else None for c, v in constant.items()}
        }
        if not constant:
            return CheckResult(self.name, True, message="no constant column", details=details)
        items = [
            f"{c!r} ({'all missing' if v is None else 'always ' + u.show(v)})"
            for c, v in constant.items()
        ]
        return CheckResult(
            self.name,
            False,
            message=f"{u.plural(len(constant), 'column holds', 'columns hold')} a single value: "
            f"{u.listing(items)}",
            details=details,
            columns=tuple(constant),
        )


_MANY = object()
_MANY_HAVE = "text/categorical columns have"


def _single_value(context: CheckContext, data: pd.DataFrame, column: str) -> Any:
    """The column's only non-missing value, ``None`` if all are missing, else ``_MANY``."""
    series = data[column]
    if u.kind(series) in ("numeric", "bool", "datetime"):
        x = u.as_float(series)
        x = x[~np.isnan(x)]
        if not len(x):
            return None
        if x.min() != x.max():
            return _MANY
        return series.dropna().iloc[0]
    if u.kind(series) != "categorical":
        return _MANY
    values, _ = u.value_counts(context, data, column)
    if len(values) > 1:
        return _MANY
    return values[0] if len(values) else None


@dataclass(frozen=True, kw_only=True)
class NearConstantColumns:
    """No column has one value making up ``min_dominant_share`` (99%) or more of its non-missing
    values. Constant columns are left to :class:`ConstantColumns`, the target to
    :class:`ClassImbalance`.

    Numeric columns are screened on a sample of ``sample_size`` rows (with a 1-point margin,
    about 30 standard errors at 100,000 rows); the dominant value of a column that passes the
    screen is counted exactly on every row.
    """

    min_dominant_share: float = 0.99
    columns: tuple[str, ...] | None = None
    sample_size: int = 100_000
    name: str = "near_constant_columns"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        cols = u.select(data, self.columns, context, exclude_target=True)
        found: dict[str, dict[str, Any]] = {}
        for c in cols:
            top = self._dominant(context, data, c)
            if top is not None and top[1] >= self.min_dominant_share and top[1] < 1.0:
                found[c] = {"value": u.show(top[0]), "share": top[1]}
        details = {"threshold": self.min_dominant_share, "columns": found}
        limit = u.pct(self.min_dominant_share)
        if not found:
            return CheckResult(
                self.name, True, message=f"no column is {limit} one value", details=details
            )
        items = [f"{c!r} {u.pct(f['share'])} {f['value']}" for c, f in found.items()]
        return CheckResult(
            self.name,
            False,
            message=f"{u.plural(len(found), 'column is', 'columns are')} at least {limit} one "
            f"value: {u.listing(items)}",
            details=details,
            columns=tuple(found),
        )

    def _dominant(
        self, context: CheckContext, data: pd.DataFrame, column: str
    ) -> tuple[Any, float] | None:
        series = data[column]
        k = u.kind(series)
        if k == "categorical":
            values, counts = u.value_counts(context, data, column)
            return (values[0], u.share(counts[0], counts.sum())) if len(values) else None
        if k not in ("numeric", "bool", "datetime"):
            return None
        values, _ = u.sorted_sample(context, data, column, self.sample_size)
        if not len(values):
            return None
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        runs = np.diff(np.r_[starts, len(values)])
        best = int(np.argmax(runs))
        if runs[best] / len(values) < self.min_dominant_share - 0.01:
            return None
        value = values[starts[best]]
        x = u.as_float(series)
        present = ~np.isnan(x)
        exact = u.share(int(np.count_nonzero(x[present] == value)), int(present.sum()))
        shown = series.dropna().iloc[int(np.argmax(x[present] == value))]
        return shown, exact


@dataclass(frozen=True, kw_only=True)
class HighCardinality:
    """No text or categorical column has too many distinct values to encode as categories.

    A column is flagged when it has more than ``max_distinct`` distinct values, or more than
    ``min_distinct`` that are also more than ``max_distinct_share`` of its non-missing values
    (an identifier or free text). The target is left out.
    """

    max_distinct: int = 1000
    max_distinct_share: float = 0.5
    min_distinct: int = 50
    columns: tuple[str, ...] | None = None
    name: str = "high_cardinality"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        cols = u.select(data, self.columns, context, kinds=["categorical"], exclude_target=True)
        found: dict[str, dict[str, Any]] = {}
        for c in cols:
            _, counts = u.value_counts(context, data, c)
            distinct, present = len(counts), int(counts.sum())
            frac = u.share(distinct, present)
            if distinct > self.max_distinct or (
                distinct > self.min_distinct and frac > self.max_distinct_share
            ):
                found[c] = {"distinct": distinct, "share": frac}
        details = {
            "max_distinct": self.max_distinct,
            "max_distinct_share": self.max_distinct_share,
            "min_distinct": self.min_distinct,
            "columns": found,
        }
        if not found:
            return CheckResult(
                self.name, True, message="no high-cardinality column", details=details
            )
        items = [
            f"{c!r} {f['distinct']:,} distinct ({u.pct(f['share'])})" for c, f in found.items()
        ]
        return CheckResult(
            self.name,
            False,
            message=(
                f"{u.plural(len(found), 'text/categorical column has', _MANY_HAVE)}"
                " many distinct values: "
                f"{u.listing(items)}; an identifier or free text? drop it or encode it"
            ),
            details=details,
            columns=tuple(found),
        )


@dataclass(frozen=True, kw_only=True)
class MixedTypes:
    """No object column mixes strings with numbers (or other types): a sign of a bad parse."""

    columns: tuple[str, ...] | None = None
    sample_size: int = 10_000
    name: str = "mixed_types"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        cols = [c for c in u.select(data, self.columns, context) if data[c].dtype == np.dtype("O")]
        found: dict[str, dict[str, float]] = {}
        for c in cols:
            inferred = pd.api.types.infer_dtype(data[c], skipna=True)
            if inferred not in ("mixed", "mixed-integer"):
                continue
            values = data[c].dropna()
            if len(values) > self.sample_size:
                values = values.sample(self.sample_size, random_state=u.SEED)
            types = values.map(_type_name).value_counts(normalize=True)
            if len(types) < 2:  # the sample missed the rare type, or one unusual type (lists)
                types = data[c].dropna().map(_type_name).value_counts(normalize=True)
                if len(types) < 2:
                    continue
            found[c] = {str(t): float(s) for t, s in types.items()}
        details = {"columns": found, "sample_size": self.sample_size}
        if not found:
            return CheckResult(self.name, True, message="no column mixes types", details=details)
        items = [
            f"{c!r} (" + ", ".join(f"{t} {u.pct(s)}" for t, s in list(f.items())[:3]) + ")"
            for c, f in found.items()
        ]
        return CheckResult(
            self.name,
            False,
            message=f"{u.plural(len(found), 'column mixes', 'columns mix')} value types: "
            f"{u.listing(items)}",
            details=details,
            columns=tuple(found),
        )


def _type_name(value: object) -> str:
    return type(value).__name__


@dataclass(frozen=True, kw_only=True)
class Outliers:
    """No numeric column has more than ``max_share`` of outliers.

    ``method="iqr"`` (default): outside Tukey's fences ``Q1 - k*IQR`` and ``Q3 + k*IQR`` with
    ``k = iqr_factor`` (3: Tukey's "far out"). ``method="zscore"``: a robust z-score
    ``0.6745 * (x - median) / MAD`` beyond ``z_threshold`` (3.5, after Iglewicz and Hoaglin).
    Quartiles come from a sample of ``sample_size`` rows; outliers are counted on every row.
    Columns whose IQR (or MAD) is 0 are skipped, as is a categorical-looking target.
    """

    method: Literal["iqr", "zscore"] = "iqr"
    iqr_factor: float = 3.0
    z_threshold: float = 3.5
    max_share: float = 0.01
    columns: tuple[str, ...] | None = None
    sample_size: int = 100_000
    name: str = "outliers"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        cols = u.select(data, self.columns, context, kinds=["numeric"])
        target = context.target
        if target in cols and u.looks_categorical(context, data, target, 20):
            cols.remove(target)
        per_column: dict[str, dict[str, Any]] = {}
        skipped: list[str] = []
        sampled = False
        for c in cols:
            values, was_sampled = u.sorted_sample(context, data, c, self.sample_size)
            sampled = sampled or was_sampled
            fences = self._fences(values)
            if fences is None:
                skipped.append(c)
                continue
            lo, hi = fences
            x = u.as_float(data[c])
            present = int(np.count_nonzero(~np.isnan(x)))
            count = int(np.count_nonzero((x < lo) | (x > hi)))
            if count:
                per_column[c] = {
                    "outliers": count,
                    "share": u.share(count, present),
                    "lower": lo,
                    "upper": hi,
                }
        bad = sorted(
            (c for c, f in per_column.items() if f["share"] > self.max_share),
            key=lambda c: -per_column[c]["share"],
        )
        rule = (
            f"beyond {self.iqr_factor:g}xIQR from the quartiles"
            if self.method == "iqr"
            else f"robust |z| > {self.z_threshold:g}"
        )
        details = {
            "method": self.method,
            "rule": rule,
            "threshold": self.max_share,
            "columns": per_column,
            "skipped": skipped,
            "sampled_quantiles": sampled,
            "sample_size": self.sample_size,
        }
        if not bad:
            return CheckResult(
                self.name,
                True,
                message=f"no column has more than {u.pct(self.max_share)} outliers ({rule})",
                details=details,
            )
        items = [f"{c!r} {u.pct(per_column[c]['share'])}" for c in bad]
        return CheckResult(
            self.name,
            False,
            message=(
                f"{u.plural(len(bad), 'numeric column has', 'numeric columns have')} more than "
                f"{u.pct(self.max_share)} outliers "
                f"({rule}): {u.listing(items)}"
            ),
            details=details,
            columns=tuple(bad),
        )

    def _fences(self, values: np.ndarray) -> tuple[float, float] | None:
        if len(values) < 4:
            return None
        if self.method == "iqr":
            q1, q3 = u.quantile(values, 0.25), u.quantile(values, 0.75)
            iqr = q3 - q1
            if iqr <= 0:
                return None
            return q1 - self.iqr_factor * iqr, q3 + self.iqr_factor * iqr
        median = u.quantile(values, 0.5)
        mad = float(np.median(np.abs(values - median)))
        if mad <= 0:
            return None
        half_width = self.z_threshold * mad / 0.6745
        return median - half_width, median + half_width


@dataclass(frozen=True, kw_only=True)
class ClassImbalance:
    """The target's largest class is at most ``max_ratio`` times its smallest (10:1 by default,
    like evalml's class imbalance check), and it has more than one class.

    Applies only when a target is given and looks categorical (booleans, strings, categories,
    or at most ``max_classes`` whole numbers).
    """

    max_ratio: float = 10.0
    max_classes: int = 20
    name: str = "class_imbalance"
    required: bool = False

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        target = context.target
        if target is None:
            return u.skipped(self.name, "no target given")
        if not u.looks_categorical(context, data, target, self.max_classes):
            return u.skipped(self.name, f"target {target!r} looks continuous (regression)")
        values, counts = u.value_counts(context, data, target)
        total = int(counts.sum())
        if not total:
            return u.skipped(self.name, f"target {target!r} has no values")
        shares = counts / total
        details: dict[str, Any] = {
            "target": target,
            "classes": {u.show(v): int(n) for v, n in zip(values[:50], counts[:50], strict=True)},
            "threshold": self.max_ratio,
        }
        if len(values) == 1:
            return CheckResult(
                self.name,
                False,
                message=f"target {target!r} has a single class, {u.show(values[0])}",
                details=details,
                columns=(target,),
            )
        ratio = float(counts[0] / counts[-1])
        details.update(
            majority=u.show(values[0]),
            minority=u.show(values[-1]),
            minority_share=float(shares[-1]),
            ratio=ratio,
        )
        what = (
            f"target {target!r}: smallest class {u.show(values[-1])} is {u.pct(shares[-1])} of "
            f"rows, {ratio:.3g}:1 against {u.show(values[0])}"
        )
        if ratio <= self.max_ratio:
            return CheckResult(self.name, True, message=what, details=details)
        return CheckResult(
            self.name,
            False,
            message=f"{what} (more than {self.max_ratio:g}:1)",
            details=details,
            columns=(target,),
        )
