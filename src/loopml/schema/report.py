"""What validation found: :class:`Violation` and :class:`ValidationReport`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import DataValidationFailed
from loopml.schema.model import Severity

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ValidationReport", "Violation"]


@dataclass(frozen=True)
class Violation:
    """One broken rule on one column (or on the table, for ``unique_key``).

    Attributes:
        column: the column name; for ``unique_key``, the key columns joined by ``", "``.
        rule: ``missing_column``, ``extra_column``, ``type``, ``nullable``, ``range``,
            ``categories``, ``unique`` or ``unique_key``.
        count: how many rows break the rule (for a missing or extra column: every row).
        examples: a few distinct offending values, JSON-ready (lists for a multi-column key).
        severity: ``error`` or ``warning``.
        message: a sentence for people: what is wrong and what the contract says.
    """

    column: str
    rule: str
    count: int
    examples: tuple[Any, ...]
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "column": self.column,
            "rule": self.rule,
            "count": self.count,
            "examples": list(self.examples),
            "severity": str(self.severity),
            "message": self.message,
        }


def _fmt_example(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class ValidationReport:
    """Every violation found in a table, with the number of rows checked.

    Attributes:
        violations: the violations, in schema column order, then extra columns, then the key.
        num_rows: how many rows were checked.
    """

    violations: tuple[Violation, ...]
    num_rows: int

    @property
    def ok(self) -> bool:
        """True when no violation has ``error`` severity (warnings are allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Violation]:
        """The violations with ``error`` severity."""
        return [v for v in self.violations if v.severity == Severity.ERROR]

    @property
    def warnings(self) -> list[Violation]:
        """The violations with ``warning`` severity."""
        return [v for v in self.violations if v.severity == Severity.WARNING]

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "ok": self.ok,
            "num_rows": self.num_rows,
            "num_errors": len(self.errors),
            "num_warnings": len(self.warnings),
            "violations": [v.to_dict() for v in self.violations],
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row per violation: column, rule, severity, count, fraction, examples, message."""
        import pandas as pd

        rows = [
            {
                "column": v.column,
                "rule": v.rule,
                "severity": str(v.severity),
                "count": v.count,
                "fraction": v.count / self.num_rows if self.num_rows else 0.0,
                "examples": list(v.examples),
                "message": v.message,
            }
            for v in self.violations
        ]
        columns = ["column", "rule", "severity", "count", "fraction", "examples", "message"]
        return pd.DataFrame(rows, columns=columns)

    def summary(self) -> str:
        """One line: rows checked, errors and warnings."""
        errors, warnings = len(self.errors), len(self.warnings)
        verdict = "passed" if self.ok else "failed"
        return (
            f"validation {verdict}: {self.num_rows:,} rows, "
            f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
        )

    def __str__(self) -> str:
        lines = [self.summary()]
        for v in self.violations:
            line = f"  {v.severity:<7} {v.column} [{v.rule}]: {v.message}"
            if v.examples:
                line += f" (e.g. {', '.join(_fmt_example(x) for x in v.examples)})"
            lines.append(line)
        return "\n".join(lines)

    def raise_for_errors(self, *, limit: int = 5) -> None:
        """Raise if any violation is an error.

        Args:
            limit: how many violations the message lists.

        Raises:
            DataValidationFailed: with this report as ``.report``.
        """
        errors = self.errors
        if not errors:
            return
        shown = "; ".join(f"{v.column} [{v.rule}]: {v.message}" for v in errors[:limit])
        more = f"; and {len(errors) - limit} more" if len(errors) > limit else ""
        raise DataValidationFailed(
            f"the data breaks its contract: {len(errors)} error"
            f"{'s' * (len(errors) != 1)} in {self.num_rows:,} rows: {shown}{more}. "
            "Fix the data, or edit the schema if the contract is wrong "
            "(the full report is the exception's .report)",
            report=self,
        )
