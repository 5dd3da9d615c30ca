"""Helpers the built-in quality checks share: column kinds, samples, factorised columns, row
hashes and message formatting. Expensive results are memoised on the :class:`CheckContext`, so a
suite computes each of them once per table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from loopml.data.checks import CheckContext, CheckResult
from loopml.errors import InvalidArgument

Kind = Literal["numeric", "bool", "datetime", "categorical", "other"]

SEED = 0
_PRIME = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime: mixes the per-column hashes


def kind(series: pd.Series) -> Kind:
    """What a column holds, for deciding which checks apply to it."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_complex_dtype(dtype):
        return "other"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
        return "datetime"
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    ):
        return "categorical"
    return "other"


def select(
    data: pd.DataFrame,
    columns: Sequence[str] | None,
    context: CheckContext,
    *,
    kinds: Iterable[Kind] | None = None,
    exclude_target: bool = False,
) -> list[str]:
    """The columns a check looks at: ``columns`` (all by default), of the given kinds."""
    if columns is None:
        names = list(data.columns)
    else:
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise InvalidArgument(
                f"column(s) {missing} are not in {context.name!r}; check the columns= argument"
            )
        names = list(columns)
    if exclude_target and context.target is not None:
        names = [c for c in names if c != context.target]
    if kinds is not None:
        wanted = set(kinds)
        names = [c for c in names if kind(data[c]) in wanted]
    return names


def sample_positions(context: CheckContext, data: pd.DataFrame, size: int) -> np.ndarray | None:
    """Sorted random row positions (seeded), or ``None`` when ``data`` has at most ``size``."""
    if len(data) <= size:
        return None
    return context.memo(
        data,
        f"sample:{size}",
        lambda: np.sort(np.random.default_rng(SEED).choice(len(data), size, replace=False)),
    )


def as_float(series: pd.Series) -> np.ndarray:
    """A numeric, boolean or datetime column as float64, missing values as NaN."""
    if kind(series) == "datetime":
        values = series.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT"))
        out = values.view("int64").astype("float64")
        out[np.isnat(values)] = np.nan
        return out
    return series.to_numpy(dtype="float64", na_value=np.nan)


def factorized(
    context: CheckContext, data: pd.DataFrame, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """The column's codes (missing values as -1) and the values they stand for, memoised."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        series = data[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            codes = np.asarray(series.cat.codes.to_numpy(), dtype=np.int64)
            return codes, np.asarray(series.cat.categories.to_numpy(), dtype=object)
        codes, uniques = factorize(series)
        return codes, np.asarray(uniques, dtype=object)

    return context.memo(data, f"codes:{column}", compute)


def factorize(series: pd.Series, *, na_code: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize``, also for unhashable values (lists, dicts: compared by their repr).

    Args:
        series: the column.
        na_code: missing values get code -1 (else a code of their own).
    """
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=na_code)
    except TypeError:
        codes, uniques = pd.factorize(_as_text(series), use_na_sentinel=na_code)
    return np.asarray(codes, dtype=np.int64), np.asarray(uniques)


def _as_text(series: pd.Series) -> pd.Series:
    """Values as their repr, missing values kept missing."""
    return series.map(repr).where(series.notna())


def value_counts(
    context: CheckContext, data: pd.DataFrame, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """The column's distinct non-missing values and their counts, most common first."""

    def compute() -> tuple[np.ndarray, np.ndarray]:
        codes, uniques = factorized(context, data, column)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        used = np.flatnonzero(counts)
        order = used[np.argsort(-counts[used], kind="stable")]
        return uniques[order], counts[order]

    return context.memo(data, f"counts:{column}", compute)


def looks_categorical(
    context: CheckContext, data: pd.DataFrame, column: str, max_classes: int
) -> bool:
    """Whether a target column holds classes (rather than a continuous quantity): booleans,
    strings and categories do; so do numbers with at most ``max_classes`` whole values."""
    k = kind(data[column])
    if k in ("bool", "categorical"):
        return True
    if k != "numeric":
        return False
    values, _ = value_counts(context, data, column)
    if len(values) > max_classes:
        return False
    as_num = values.astype("float64")
    return bool(np.all(as_num == np.round(as_num)))


def null_counts(context: CheckContext, data: pd.DataFrame) -> pd.Series:
    """Missing values per column."""
    return context.memo(data, "nulls", lambda: data.isna().sum())


def sorted_sample(
    context: CheckContext, data: pd.DataFrame, column: str, size: int
) -> tuple[np.ndarray, bool]:
    """A numeric column's non-missing values, sorted, from a sample of at most ``size`` rows.

    Returns:
        The sorted values and whether they come from a sample (rather than every row).
    """

    def compute() -> tuple[np.ndarray, bool]:
        positions = sample_positions(context, data, size)
        values = as_float(data[column] if positions is None else data[column].iloc[positions])
        values = values[~np.isnan(values)]
        values.sort()
        return values, positions is not None

    return context.memo(data, f"sorted:{column}:{size}", compute)


def quantile(sorted_values: np.ndarray, q: float) -> float:
    """The ``q`` quantile (linear interpolation, as numpy's default) of sorted values."""
    n = len(sorted_values)
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def column_hash(series: pd.Series) -> np.ndarray:
    """A 64-bit hash per value (the same value gives the same hash in any table)."""
    try:
        hashed = pd.util.hash_pandas_object(series, index=False)
    except TypeError:  # unhashable values (lists, dicts): hash their repr
        hashed = pd.util.hash_pandas_object(_as_text(series), index=False)
    return np.asarray(hashed.to_numpy(), np.uint64)


def _mix(key: np.ndarray, h: np.ndarray) -> np.ndarray:
    mixed: np.ndarray = np.bitwise_xor(np.multiply(key, _PRIME), h)
    return mixed


def hash_order(data: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Columns ordered so that the likely most distinct (floats) are hashed first, which lets
    row matching drop most rows after a column or two."""
    rank = {"numeric": 1, "datetime": 2, "categorical": 3, "other": 3, "bool": 4}

    def key(c: str) -> int:
        s = data[c]
        return 0 if s.dtype.kind == "f" else rank[kind(s)]

    return sorted(columns, key=key)


def duplicated_rows(data: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Positions of rows that repeat an earlier row over ``columns`` (by 64-bit row hash).

    Rows are hashed column by column, and after each column only the rows whose partial hash is
    shared with another row stay candidates: with a continuous column in the table, one or two
    columns settle almost every row.
    """
    n = len(data)
    candidates = np.arange(n)
    key = np.zeros(n, dtype=np.uint64)
    for c in hash_order(data, columns):
        key = _mix(key, column_hash(data[c].iloc[candidates]))
        shared = pd.Series(key).duplicated(keep=False).to_numpy()
        candidates, key = candidates[shared], key[shared]
        if not len(candidates):
            break
    repeat = pd.Series(key).duplicated(keep="first").to_numpy()
    return candidates[repeat]


def matching_rows(
    data: pd.DataFrame, reference: pd.DataFrame, columns: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of ``data`` rows whose values over ``columns`` also form a ``reference`` row,
    and the matched row hashes (by 64-bit row hash, narrowing column by column)."""
    cand_d, cand_r = np.arange(len(data)), np.arange(len(reference))
    key_d = np.zeros(len(data), dtype=np.uint64)
    key_r = np.zeros(len(reference), dtype=np.uint64)
    for c in hash_order(data, columns):
        key_d = _mix(key_d, column_hash(data[c].iloc[cand_d]))
        key_r = _mix(key_r, column_hash(reference[c].iloc[cand_r]))
        in_r = pd.Series(key_d).isin(key_r).to_numpy()
        in_d = pd.Series(key_r).isin(key_d).to_numpy()
        cand_d, key_d = cand_d[in_r], key_d[in_r]
        cand_r, key_r = cand_r[in_d], key_r[in_d]
        if not len(cand_d):
            break
    return cand_d, key_d


def skipped(name: str, why: str) -> CheckResult:
    """A passing result for a check that does not apply (no target, no reference, ...)."""
    return CheckResult(name, passed=True, message=f"skipped: {why}", details={"skipped": True})


def show(value: object) -> str:
    """A value as it appears in messages: repr for strings, compact for numbers."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 column``, ``3 columns``."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {words or word + 's'}"


def share(count: float, total: float) -> float:
    """``count / total``, 0 when ``total`` is 0."""
    return float(count) / float(total) if total else 0.0


def pct(x: float) -> str:
    """A share as a short percentage: ``12.5%``, ``<0.1%``, ``100%``."""
    if x == 0:
        return "0%"
    if x < 0.001:
        return "<0.1%"
    if x >= 1:
        return "100%"
    if x > 0.999:
        return ">99.9%"
    return f"{x * 100:.1f}%"


def listing(items: Sequence[str], limit: int = 5) -> str:
    """``a, b, c and 4 more``."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
