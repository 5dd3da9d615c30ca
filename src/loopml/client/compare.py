"""Side-by-side comparison of runs: params and latest metrics in one table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.entities import Run

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunComparison"]


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Runs side by side: one row per param or metric key, one column per run.

    Attributes:
        runs: the runs, in the order asked for.
        params: ``{key: (value of run 1 or None, value of run 2 or None, ...)}``.
        metrics: the same for latest metric values.
    """

    runs: tuple[Run, ...]
    params: dict[str, tuple[str | None, ...]]
    metrics: dict[str, tuple[float | None, ...]]

    @classmethod
    def of(cls, runs: Sequence[Run]) -> RunComparison:
        """Build the comparison of ``runs``."""
        pkeys = sorted({k for r in runs for k in r.params})
        mkeys = sorted({k for r in runs for k in r.metrics})
        return cls(
            tuple(runs),
            {k: tuple(r.params.get(k) for r in runs) for k in pkeys},
            {k: tuple(r.metrics.get(k) for r in runs) for k in mkeys},
        )

    @property
    def differing_params(self) -> list[str]:
        """Param keys whose value is not the same in every run."""
        return [k for k, vals in self.params.items() if len(set(vals)) > 1]

    def rows(self) -> list[tuple[str, str, tuple[Any, ...]]]:
        """``(section, key, values)`` rows: params first, then metrics."""
        return [("param", k, v) for k, v in self.params.items()] + [
            ("metric", k, v) for k, v in self.metrics.items()
        ]

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame indexed by ``params.KEY`` / ``metrics.KEY`` with one column per run."""
        from loopml._lazy import require

        pandas = require("pandas", "pandas", "RunComparison.to_pandas()")
        columns = [f"{r.name} ({r.run_id[:8]})" for r in self.runs]
        index = [f"{section}s.{key}" for section, key, _ in self.rows()]
        frame: pd.DataFrame = pandas.DataFrame(
            [list(v) for _, _, v in self.rows()], index=index, columns=columns
        )
        return frame
