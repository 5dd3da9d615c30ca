"""Compare two dataset profiles: per-column drift tests and the dataset-level drift signal."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument
from loopml.stats.columns import CategoricalProfile, ColumnProfile
from loopml.stats.dataset import DatasetProfile
from loopml.stats.stattests import DriftResult, DriftTest, default_test, get_drift_test

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnDrift", "ProfileComparison", "compare_profiles"]


def _null_share(col: ColumnProfile) -> float:
    return col.nulls / col.rows if col.rows else 0.0


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    """One column's comparison.

    Attributes:
        column: the column name.
        kind: its kind in the reference (``numeric``, ``datetime``, ``categorical``, ``boolean``).
        reference_count: non-null values in the reference; ``current_count`` likewise.
        reference_null_share: share of null rows in the reference; ``current_null_share``
            likewise.
        result: the drift test's result.
    """

    column: str
    kind: str
    reference_count: int
    current_count: int
    reference_null_share: float
    current_null_share: float
    result: DriftResult

    @property
    def drifted(self) -> bool:
        """Whether the column drifted."""
        return self.result.drifted

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "column": self.column,
            "kind": self.kind,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "reference_null_share": self.reference_null_share,
            "current_null_share": self.current_null_share,
            **self.result.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ProfileComparison:
    """The drift between a reference and a current profile.

    Attributes:
        reference_rows: rows in the reference; ``current_rows`` likewise.
        columns: one :class:`ColumnDrift` per column in both profiles, in reference order.
        only_in_reference: columns the current data lacks; ``only_in_current``: new columns.
        drift_share: share of drifted columns at which the dataset counts as drifted.
    """

    reference_rows: int
    current_rows: int
    columns: tuple[ColumnDrift, ...]
    only_in_reference: tuple[str, ...]
    only_in_current: tuple[str, ...]
    drift_share: float

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the columns that drifted."""
        return tuple(c.column for c in self.columns if c.drifted)

    @property
    def drifted_share(self) -> float:
        """Share of compared columns that drifted (0 with no columns)."""
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """Whether the share of drifted columns reached ``drift_share`` (as Evidently)."""
        return bool(self.columns) and self.drifted_share >= self.drift_share

    def __getitem__(self, column: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == column:
                return c
        raise KeyError(
            f"column {column!r} was not compared; compared: {[c.column for c in self.columns]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drift_share": self.drift_share,
            "drifted_share": self.drifted_share,
            "dataset_drift": self.dataset_drift,
            "only_in_reference": list(self.only_in_reference),
            "only_in_current": list(self.only_in_current),
            "columns": [c.to_dict() for c in self.columns],
        }

    def to_pandas(self) -> pd.DataFrame:
        """The per-column table, indexed by column."""
        import pandas as pd

        rows = [c.to_dict() for c in self.columns]
        cols = [
            "column",
            "kind",
            "test",
            "statistic",
            "p_value",
            "threshold",
            "drifted",
            "reference_count",
            "current_count",
            "reference_null_share",
            "current_null_share",
            "note",
        ]
        return pd.DataFrame(rows, columns=cols).set_index("column")

    def __str__(self) -> str:
        head = (
            f"Drift: {len(self.drifted_columns)} of {len(self.columns)} columns drifted "
            f"({self.drifted_share:.0%}, dataset drift {'yes' if self.dataset_drift else 'no'} "
            f"at {self.drift_share:.0%}); rows {self.reference_rows} -> {self.current_rows}"
        )
        lines = [head]
        width = max([len(c.column) for c in self.columns] + [6])
        lines.append(
            f"{'column':<{width}}  {'test':<13}  {'statistic':>10}  {'p-value':>8}  drifted"
        )
        for c in self.columns:
            r = c.result
            stat = "-" if math.isnan(r.statistic) else f"{r.statistic:.4g}"
            p = "-" if r.p_value is None or math.isnan(r.p_value) else f"{r.p_value:.3g}"
            lines.append(
                f"{c.column:<{width}}  {r.test:<13}  {stat:>10}  {p:>8}  "
                + ("yes" if r.drifted else "no")
            )
        if self.only_in_reference:
            lines.append(f"only in reference: {', '.join(self.only_in_reference)}")
        if self.only_in_current:
            lines.append(f"only in current: {', '.join(self.only_in_current)}")
        return "\n".join(lines)


def _kinds_match(a: ColumnProfile, b: ColumnProfile) -> bool:
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        return True
    return a.kind == b.kind


def compare_profiles(
    reference: DatasetProfile,
    current: DatasetProfile,
    *,
    tests: Mapping[str, str | DriftTest] | None = None,
    drift_share: float = 0.5,
) -> ProfileComparison:
    """Test every column both profiles share for drift, and the dataset as a whole.

    Args:
        reference: the reference profile (e.g. the training data's).
        current: the profile to check (new data, a window of predictions).
        tests: per-column override, column -> test name (``"psi"``, ``"jensenshannon"``,
            ``"chisquare"``, ``"wasserstein"``, ``"ks"`` or any registered name) or a
            :class:`~loopml.stats.DriftTest` object; other columns get
            :func:`~loopml.stats.default_test`.
        drift_share: the dataset drifted when at least this share of columns drifted.

    Returns:
        The comparison. A column whose type changed (numbers to text) counts as drifted.

    Raises:
        InvalidArgument: a test name is unknown, a test does not apply to its column, a column in
            ``tests`` is in neither profile, or ``drift_share`` is not in (0, 1].
    """
    if not 0 < drift_share <= 1:
        raise InvalidArgument(f"drift_share must be in (0, 1], not {drift_share}")
    overrides = {name: get_drift_test(t) for name, t in (tests or {}).items()}
    unknown = sorted(set(overrides) - set(reference.column_names) - set(current.column_names))
    if unknown:
        raise InvalidArgument(
            f"tests= names columns {unknown} that are in neither profile; columns: "
            f"{list(reference.column_names)}"
        )
    results = []
    for ref in reference.columns:
        if ref.name not in current:
            continue
        cur = current[ref.name]
        if not _kinds_match(ref, cur):
            result = DriftResult(
                "type",
                math.nan,
                None,
                0.0,
                True,
                f"column {ref.name!r} changed from {ref.kind} to {cur.kind}",
            )
        else:
            test = overrides.get(ref.name) or default_test(ref)
            result = test(ref, cur)
        results.append(
            ColumnDrift(
                ref.name,
                ref.kind,
                ref.count,
                cur.count,
                _null_share(ref),
                _null_share(cur),
                result,
            )
        )
    return ProfileComparison(
        reference_rows=reference.num_rows,
        current_rows=current.num_rows,
        columns=tuple(results),
        only_in_reference=tuple(n for n in reference.column_names if n not in current),
        only_in_current=tuple(n for n in current.column_names if n not in reference),
        drift_share=drift_share,
    )
