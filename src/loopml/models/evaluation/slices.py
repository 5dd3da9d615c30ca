"""Slices: the same metrics for each group of rows that share a value of a column.

A model that is good on average can be bad for one region, plan or age group. A *slice column* is
a column of the evaluated data (or any array with one value per row); its rows are grouped:

* by value, when the column is text, boolean, categorical, or numeric with at most
  ``MAX_DISTINCT_NUMBERS`` distinct values;
* by quantile bin otherwise (``bins`` bins of about equal size, labelled by their interval, such
  as ``[18, 33]`` and ``(33, 51]``, and keyed ``q1``, ``q2``... in metric names);
* rows with a missing value form a slice of their own, ``(missing)``.

At most ``MAX_VALUES`` groups are kept per column, the most frequent; the other rows form the
slice ``(other)``. Slices with fewer than ``min_rows`` rows are flagged ``small``: their metrics
are noisy.

Grouping is one stable sort of the column's codes, and each slice is scored on the predictions
computed once for the whole data set.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidArgument
from loopml.models.evaluation.predictions import Predictions, json_label

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_DISTINCT_NUMBERS",
    "MAX_VALUES",
    "Slice",
    "SliceColumn",
    "group_slices",
    "safe_key",
    "score_slices",
    "slice_columns",
]

MAX_DISTINCT_NUMBERS = 10
MAX_VALUES = 50
MISSING = "(missing)"
OTHER = "(other)"
_UNSAFE = re.compile(r"[^\w\-. ]+")


@dataclass(frozen=True)
class SliceColumn:
    """A named column to slice by, one value per row."""

    name: str
    values: pd.Series[Any]


@dataclass(frozen=True)
class Slice:
    """One group of rows of a slice column.

    Attributes:
        column: the slice column's name.
        label: the value (or the interval of a bin) the rows share, as text.
        key: ``label`` made safe for a metric name (``q1`` for a bin).
        rows: the positions of the rows.
    """

    column: str
    label: str
    key: str
    rows: np.ndarray


def slice_columns(
    frame: pd.DataFrame, slices: str | Sequence[str] | Mapping[str, Any] | None
) -> list[SliceColumn]:
    """The columns to slice by.

    Args:
        frame: the evaluated data, target included.
        slices: a column name, several, or a mapping of slice name to a column name or to an
            array-like with one value per row.

    Raises:
        InvalidArgument: a column that does not exist, or an array of the wrong length.
    """
    import pandas as pd

    if slices is None:
        return []
    if isinstance(slices, str):
        slices = [slices]
    pairs = list(slices.items()) if isinstance(slices, Mapping) else [(s, s) for s in slices]
    out = []
    for name, column in pairs:
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"a slice name must be a non-empty string, not {name!r}")
        if isinstance(column, str):
            if column not in frame.columns:
                raise InvalidArgument(
                    f"slice column {column!r} is not in the data; its columns are "
                    f"{_names(frame.columns)}"
                )
            values = frame[column]
        else:
            try:
                values = pd.Series(np.asarray(column), index=frame.index)
            except (ValueError, TypeError) as exc:
                raise InvalidArgument(
                    f"slice {name!r} must be a column name or one value per row ({len(frame)} "
                    f"rows): {exc}"
                ) from exc
        out.append(SliceColumn(name, values))
    return out


def group_slices(column: SliceColumn, *, bins: int = 4) -> list[Slice]:
    """The slices of one column: by value, or by quantile bin for a many-valued number."""
    import pandas as pd

    values = column.values
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > MAX_DISTINCT_NUMBERS:
        binned, edges = pd.qcut(values, q=bins, duplicates="drop", retbins=True)
        codes = np.asarray(binned.cat.codes, dtype=np.int64)
        edges[0] = values.min()  # qcut widens the first edge a little to include the minimum
        labels = _bin_labels(edges)
        keys = [f"q{i + 1}" for i in range(len(labels))]
    else:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        labels = [str(json_label(u)) for u in uniques]
        keys = _unique([safe_key(label) for label in labels])
    return _groups(column.name, codes, labels, keys)


def _bin_labels(edges: np.ndarray) -> list[str]:
    """``[a, b]`` for the first bin, ``(a, b]`` for the others, with as few digits as keep the
    labels distinct."""
    for digits in (4, 6, 10, 17):
        shown = [f"{float(e):.{digits}g}" for e in edges]
        if len(set(shown)) == len(shown):
            break
    return [
        f"{'[' if i == 0 else '('}{a}, {b}]" for i, (a, b) in enumerate(itertools.pairwise(shown))
    ]


def _groups(name: str, codes: np.ndarray, labels: list[str], keys: list[str]) -> list[Slice]:
    """Rows per code (-1: missing), keeping the ``MAX_VALUES`` largest groups."""
    shifted = codes + 1  # missing first
    counts = np.bincount(shifted, minlength=len(labels) + 1)
    order = np.argsort(shifted, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    groups = [
        (labels[i - 1] if i else MISSING, keys[i - 1] if i else "missing", order[a:b])
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
        if b > a
    ]
    named = [g for g in groups if g[0] != MISSING]
    if len(named) > MAX_VALUES:
        named.sort(key=lambda g: -len(g[2]))
        rest = np.sort(np.concatenate([g[2] for g in named[MAX_VALUES:]]))
        named = [*named[:MAX_VALUES], (OTHER, "other", rest)]
    missing = [g for g in groups if g[0] == MISSING]
    return [Slice(name, label, key, rows) for label, key, rows in named + missing]


def score_slices(
    predictions: Predictions,
    columns: Sequence[SliceColumn],
    score: Callable[[Predictions], dict[str, float]],
    *,
    bins: int = 4,
    min_rows: int = 30,
) -> tuple[dict[str, dict[str, dict[str, Any]]], list[Slice]]:
    """Score every slice of every column.

    Args:
        predictions: the predictions of all rows.
        columns: the slice columns.
        score: the metrics of a set of predictions.
        bins: quantile bins for a many-valued numeric column.
        min_rows: slices with fewer rows are flagged ``small``.

    Returns:
        ``(result, slices)``: ``result[column][label]`` is ``{"num_rows": n, "small": bool,
        "metrics": {...}}``, and ``slices`` lists the slices in the same order.
    """
    result: dict[str, dict[str, dict[str, Any]]] = {}
    every: list[Slice] = []
    for column in columns:
        groups = group_slices(column, bins=bins)
        result[column.name] = {
            s.label: {
                "num_rows": len(s.rows),
                "small": len(s.rows) < min_rows,
                "metrics": score(predictions.take(s.rows)),
            }
            for s in groups
        }
        every.extend(groups)
    return result, every


def safe_key(label: str) -> str:
    """Text as a piece of a metric name: characters the store's keys do not allow (anything
    but letters, digits, ``_ - .`` and spaces) become ``_``."""
    safe = _UNSAFE.sub("_", label).strip(" ")[:60].strip(" ")
    return safe if safe.strip(".") else "_"


def _unique(keys: list[str]) -> list[str]:
    """Keys made distinct (``a?b`` and ``a!b`` both become ``a_b``: the second is ``a_b-2``)."""
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(key if seen[key] == 1 else f"{key}-{seen[key]}")
    return out


def _names(columns: Any, limit: int = 12) -> str:
    names = [str(c) for c in columns]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
