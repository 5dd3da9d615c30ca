"""Quality checks across versions: a column's type changed since the previous version.

:class:`TypeDrift` compares the data's inferred types (and columns) with a reference: a
:class:`~loopml.schema.Schema` (a version's stored contract), or the ``reference`` table of the
check context (the previous version). A column that changed type breaks whatever was trained on
it, so the check is required by default; added or removed columns are reported with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.data.checks import CheckContext, CheckResult

if TYPE_CHECKING:
    import pandas as pd

    from loopml.schema import Schema

__all__ = ["TypeDrift"]


@dataclass(frozen=True, kw_only=True)
class TypeDrift:
    """No column changed its type (integer, float, boolean, categorical, datetime, text), and
    none was added or removed, compared with ``schema`` or else ``context.reference``.

    ``categorical`` and ``text`` count as one kind (a string column whose number of distinct
    values crossed the categorical limit has not changed type); so do ``integer`` and ``float``
    when ``numeric_widening`` is True (an integer column that gained a null arrives as float).
    Passes, saying so, when there is nothing to compare with.
    """

    schema: Schema | None = None
    numeric_widening: bool = True
    name: str = "type_drift"
    required: bool = True

    def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
        from loopml.schema import diff_schemas, infer_schema

        if self.schema is not None:
            before = self.schema
        elif context.reference is not None:
            before = infer_schema(context.reference, unique_key=None, ranges=False)
        else:
            return CheckResult(self.name, True, message="no reference schema to compare with")
        now = infer_schema(data, unique_key=None, ranges=False)
        diff = diff_schemas(before, now)
        changed = {
            str(c.column): (str(c.old), str(c.new))
            for c in diff.type_changes
            if self._kind(str(c.old)) != self._kind(str(c.new))
        }
        details: dict[str, Any] = {
            "type_changes": {col: {"was": a, "now": b} for col, (a, b) in changed.items()},
            "added": [c.name for c in diff.added],
            "removed": [c.name for c in diff.removed],
        }
        problems = [f"{col!r} {a} -> {b}" for col, (a, b) in changed.items()]
        problems += [f"{name!r} added" for name in details["added"]]
        problems += [f"{name!r} removed" for name in details["removed"]]
        if not problems:
            return CheckResult(
                self.name, True, message="every column kept its type", details=details
            )
        return CheckResult(
            self.name,
            False,
            message=f"columns changed since the reference: {', '.join(problems)}",
            details=details,
            columns=(*changed, *details["added"], *details["removed"]),
        )

    def _kind(self, type_name: str) -> str:
        if type_name in ("categorical", "text"):
            return "string"
        if self.numeric_widening and type_name in ("integer", "float"):
            return "number"
        return type_name
