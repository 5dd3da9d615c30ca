"""What changed between two schemas: added and removed columns, type drift, tightened rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopml.schema._dtypes import json_safe
from loopml.schema.model import ColumnSchema, Schema

__all__ = ["ColumnChange", "SchemaDiff", "diff_schemas"]

_COMPARED = ("type", "nullable", "min", "max", "categories", "unique")


@dataclass(frozen=True)
class ColumnChange:
    """One field of one column that differs between the old and the new schema.

    Attributes:
        column: the column name, or ``None`` for a schema-level field.
        field: ``type``, ``nullable``, ``min``, ``max``, ``categories``, ``unique``, or for the
            schema ``target``, ``unique_key``, ``allow_extra_columns``.
        old: the old value (JSON-ready).
        new: the new value (JSON-ready).
        tightens: whether data valid under the old schema may be invalid under the new one.
    """

    column: str | None
    field: str
    old: Any
    new: Any
    tightens: bool

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "column": self.column,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "tightens": self.tightens,
        }

    def __str__(self) -> str:
        where = f"column {self.column!r}" if self.column is not None else "schema"
        extra = ""
        if self.field == "categories" and self.old is not None and self.new is not None:
            added = [c for c in self.new if c not in self.old]
            removed = [c for c in self.old if c not in self.new]
            extra = f" (added {_show(added or None)}, removed {_show(removed or None)})"
        mark = " [tightens]" if self.tightens else ""
        return f"{where}: {self.field} {_show(self.old)} -> {_show(self.new)}{extra}{mark}"


@dataclass(frozen=True)
class SchemaDiff:
    """The differences between two schemas (see :func:`diff_schemas`).

    Attributes:
        added: columns only in the new schema.
        removed: columns only in the old schema.
        changes: per-field changes of columns in both, then schema-level changes.
    """

    added: tuple[ColumnSchema, ...]
    removed: tuple[ColumnSchema, ...]
    changes: tuple[ColumnChange, ...]

    @property
    def changed(self) -> bool:
        """Whether the schemas differ in anything that validation checks."""
        return bool(self.added or self.removed or self.changes)

    @property
    def type_changes(self) -> list[ColumnChange]:
        """Columns whose type changed: type drift between two versions of a dataset."""
        return [c for c in self.changes if c.field == "type"]

    @property
    def tightened(self) -> bool:
        """Whether data valid under the old schema may fail the new one."""
        return bool(self.added) or any(c.tightens for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form."""
        return {
            "changed": self.changed,
            "added": [c.to_dict() for c in self.added],
            "removed": [c.to_dict() for c in self.removed],
            "changes": [c.to_dict() for c in self.changes],
        }

    def __str__(self) -> str:
        if not self.changed:
            return "schemas are the same"
        lines = []
        lines += [f"+ column {c.name!r} ({c.type})" for c in self.added]
        lines += [f"- column {c.name!r} ({c.type})" for c in self.removed]
        lines += [f"~ {c}" for c in self.changes]
        return "\n".join(lines)


def _tightens(field: str, old: Any, new: Any) -> bool:
    """Whether changing ``field`` from ``old`` to ``new`` can fail data that passed before."""
    if field == "type":
        return True
    if field == "target":
        return False
    if field == "unique_key":
        return bool(new) and not set(old) <= set(new)
    if field in {"nullable", "allow_extra_columns"}:
        return bool(old) and not new
    if field == "unique":
        return not old and bool(new)
    if field == "categories":
        return new is not None and (old is None or any(c not in new for c in old))
    if new is None:
        return False
    if old is None:
        return True
    try:
        return bool(new > old) if field == "min" else bool(new < old)
    except TypeError:  # a number and a datetime, or naive and aware datetimes
        return True


def diff_schemas(old: Schema, new: Schema) -> SchemaDiff:
    """Compare two schemas, e.g. the contracts of two versions of a dataset.

    Args:
        old: the earlier schema.
        new: the later schema.

    Returns:
        The added and removed columns and every changed field, each marked when it tightens the
        contract (a type change, nulls no longer allowed, a narrower range, fewer categories).
    """
    old_names, new_names = set(old.names), set(new.names)
    added = tuple(c for c in new.columns if c.name not in old_names)
    removed = tuple(c for c in old.columns if c.name not in new_names)
    changes: list[ColumnChange] = []
    for col in old.columns:
        if col.name not in new_names:
            continue
        other = new.column(col.name)
        for field in _COMPARED:
            a, b = getattr(col, field), getattr(other, field)
            if field == "categories":
                same = (a is None and b is None) or (
                    a is not None and b is not None and set(a) == set(b)
                )
            else:
                same = a == b
            if not same:
                changes.append(
                    ColumnChange(col.name, field, _json(a), _json(b), _tightens(field, a, b))
                )
    for field in ("target", "unique_key", "allow_extra_columns"):
        a, b = getattr(old, field), getattr(new, field)
        if a != b:
            changes.append(
                ColumnChange(None, field, _json(a), _json(b), tightens=_tightens(field, a, b))
            )
    return SchemaDiff(added, removed, tuple(changes))


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [json_safe(v) for v in value]
    return json_safe(value)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
