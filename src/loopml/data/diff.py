"""What changed between two dataset versions: schema, row counts, and per-column drift.

``diff_datasets("datasets:/churn/1", "datasets:/churn/2")`` reads both versions' stored schemas
and profiles (no pass over the data) and returns a :class:`DatasetDiff`: the schema diff
(:func:`loopml.schema.diff_schemas`), the row counts, and the drift of every shared column from
:func:`loopml.stats.compare_profiles`, the same statistics monitoring uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.client import context
from loopml.data.datasets import dataset_profile, dataset_schema, get_dataset

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion
    from loopml.schema import SchemaDiff
    from loopml.stats import DriftTest, ProfileComparison

__all__ = ["DatasetDiff", "diff_datasets"]


@dataclass(frozen=True)
class DatasetDiff:
    """The difference between two dataset versions.

    Attributes:
        old, new: the two versions.
        schema: the schema diff (None when either version has no stored schema).
        drift: the per-column drift of ``new`` against ``old`` (None without both profiles).
    """

    old: DatasetVersion
    new: DatasetVersion
    schema: SchemaDiff | None
    drift: ProfileComparison | None

    @property
    def rows_change(self) -> int:
        """``new`` rows minus ``old`` rows."""
        return self.new.num_rows - self.old.num_rows

    @property
    def changed(self) -> bool:
        """Whether the content differs at all."""
        return self.old.digest != self.new.digest

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "old": self.old.uri,
            "new": self.new.uri,
            "changed": self.changed,
            "rows": {"old": self.old.num_rows, "new": self.new.num_rows},
            "schema": None if self.schema is None else self.schema.to_dict(),
            "drift": None if self.drift is None else self.drift.to_dict(),
        }

    def to_pandas(self) -> pd.DataFrame:
        """The per-column drift table (empty without profiles)."""
        import pandas as pd

        if self.drift is None:
            return pd.DataFrame()
        frame: pd.DataFrame = self.drift.to_pandas()
        return frame

    def __str__(self) -> str:
        lines = [
            f"{self.old.uri} -> {self.new.uri}: "
            + ("identical content" if not self.changed else "content changed"),
            f"rows: {self.old.num_rows:,} -> {self.new.num_rows:,} ({self.rows_change:+,})",
        ]
        if self.schema is not None:
            lines.append(str(self.schema) if self.schema.changed else "schema: unchanged")
        if self.drift is not None:
            lines.append(str(self.drift))
        return "\n".join(lines)


def diff_datasets(
    old: str | DatasetVersion,
    new: str | DatasetVersion,
    *,
    tests: Mapping[str, str | DriftTest] | None = None,
    drift_share: float = 0.5,
    project: str | None = None,
    client: Client | None = None,
) -> DatasetDiff:
    """Compare two dataset versions from their stored schemas and profiles.

    Args:
        old, new: ``datasets:/`` URIs or versions (``new`` is compared against ``old``).
        tests: per-column drift test overrides (see :func:`loopml.stats.compare_profiles`).
        drift_share: share of drifted columns at which the dataset counts as drifted.
        project: the project of URIs (default: the current one).
        client: the client (default: the fluent API's).
    """
    from loopml.schema import diff_schemas
    from loopml.stats import compare_profiles

    c = client if client is not None else context.get_client()
    a = get_dataset(old, project=project, client=c)
    b = get_dataset(new, project=project, client=c)
    schema = None
    if a.schema is not None and b.schema is not None:
        schema = diff_schemas(dataset_schema(a, client=c), dataset_schema(b, client=c))
    drift = None
    if a.profile_blob is not None and b.profile_blob is not None:
        drift = compare_profiles(
            dataset_profile(a, client=c),
            dataset_profile(b, client=c),
            tests=tests,
            drift_share=drift_share,
        )
    return DatasetDiff(old=a, new=b, schema=schema, drift=drift)
