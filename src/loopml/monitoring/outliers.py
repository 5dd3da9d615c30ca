"""Per-prediction outlier flags: a row is an outlier when a numeric input lies outside the range
the reference (training) data covered, or a categorical input takes a value the reference never
had; optionally also when an isolation forest fitted on a reference sample scores it anomalous.

The prediction log stores the flags with every prediction (``outlier``, ``outlier_reasons``,
and ``outlier_score`` with the forest), so that a monitor or a person can find the requests a
model was asked about data it had never seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from loopml.stats import DatasetProfile

__all__ = ["OutlierFlags", "OutlierRules"]


@dataclass
class OutlierFlags:
    """Flags for a batch of rows: ``flags`` (bool per row), ``reasons`` (per row, "" when
    none: ``"age > 97.0"``, ``"plan unseen"``, ``"isolation forest"``), and ``scores`` (the
    forest's anomaly score, higher is stranger; None without a forest)."""

    flags: npt.NDArray[np.bool_]
    reasons: list[str]
    scores: npt.NDArray[np.float64] | None = None


@dataclass
class OutlierRules:
    """What counts as an outlier, from a reference profile.

    Attributes:
        ranges: numeric column -> (min, max) seen in the reference.
        categories: categorical column -> the values seen (columns whose reference folded a
            tail of rare values are left out: an unseen value could be one of those).
        forest: an optional fitted ``sklearn.ensemble.IsolationForest`` and the numeric
            columns it was fitted on.
    """

    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    categories: dict[str, frozenset[Any]] = field(default_factory=dict)
    forest: Any = None
    forest_columns: tuple[str, ...] = ()

    @classmethod
    def from_profile(cls, profile: DatasetProfile, *, skip: tuple[str, ...] = ()) -> OutlierRules:
        """Rules from a reference profile (``skip``: the target and other non-inputs)."""
        from loopml.stats import CategoricalProfile, NumericProfile

        rules = cls()
        ignored = {*skip, profile.target}
        for col in profile.columns:
            if col.name in ignored:
                continue
            if isinstance(col, NumericProfile) and col.min is not None and col.max is not None:
                if col.kind == "numeric":
                    rules.ranges[col.name] = (float(col.min), float(col.max))
            elif isinstance(col, CategoricalProfile) and not col.other:
                rules.categories[col.name] = frozenset(v for v, _ in col.categories)
        return rules

    def fit_forest(self, sample: Any, *, seed: int = 0) -> OutlierRules:
        """Fit an isolation forest on the numeric columns of a reference ``sample`` (a
        DataFrame); returns self."""
        from sklearn.ensemble import IsolationForest

        columns = tuple(c for c in self.ranges if c in sample)
        if not columns:
            return self
        values = np.asarray(sample[list(columns)], dtype=np.float64)
        values = values[~np.isnan(values).any(axis=1)]
        if len(values) < 16:
            return self
        self.forest = IsolationForest(n_estimators=100, random_state=seed).fit(values)
        self.forest_columns = columns
        return self

    def flag(self, columns: Mapping[str, Any], rows: int) -> OutlierFlags:
        """Flag ``rows`` rows given as columns (arrays; missing columns are not checked)."""
        flags = np.zeros(rows, dtype=bool)
        why: dict[int, list[str]] = {}
        for name, (lo, hi) in self.ranges.items():
            if name not in columns:
                continue
            try:
                x = np.asarray(columns[name], dtype=np.float64)
            except (TypeError, ValueError):
                continue
            with np.errstate(invalid="ignore"):
                low, high = x < lo, x > hi
            for i in np.flatnonzero(low).tolist():
                why.setdefault(i, []).append(f"{name} < {lo:.6g}")
            for i in np.flatnonzero(high).tolist():
                why.setdefault(i, []).append(f"{name} > {hi:.6g}")
            flags |= low | high
        for name, known in self.categories.items():
            if name not in columns:
                continue
            values = np.asarray(columns[name], dtype=object)
            unseen = np.fromiter(
                (v is not None and v == v and v not in known for v in values.tolist()),
                dtype=bool,
                count=len(values),
            )
            for i in np.flatnonzero(unseen).tolist():
                why.setdefault(i, []).append(f"{name} unseen")
            flags |= unseen
        scores = None
        if self.forest is not None and all(c in columns for c in self.forest_columns):
            matrix = np.column_stack(
                [np.asarray(columns[c], dtype=np.float64) for c in self.forest_columns]
            )
            ok = ~np.isnan(matrix).any(axis=1)
            scores = np.full(rows, np.nan)
            if ok.any():
                scores[ok] = -self.forest.score_samples(matrix[ok])
                odd = np.zeros(rows, dtype=bool)
                odd[ok] = self.forest.predict(matrix[ok]) == -1
                for i in np.flatnonzero(odd).tolist():
                    why.setdefault(i, []).append("isolation forest")
                flags |= odd
        reasons = [""] * rows
        for i, items in why.items():
            reasons[i] = "; ".join(items)
        return OutlierFlags(flags, reasons, scores)
