"""The data contract: :class:`Schema`, :class:`ColumnSchema` and their dict, JSON and YAML forms.

A schema is a frozen value. It is built in Python, inferred from data (:func:`infer_schema`), or
loaded from a YAML file that people edit by hand, so every field is checked when a schema is
built and a mistake in a file is reported with its line (see :mod:`loopml.schema._yaml`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from loopml.errors import InvalidArgument, InvalidSchema
from loopml.schema._fields import (
    COLUMN_RULES,
    FORMAT_VERSION,
    RANGED,
    RULES,
    Bound,
    Category,
    ColumnType,
    FieldError,
    Severity,
    before,
    bound_to_json,
    check_bound,
    one_of,
    severities,
    suggest,
    unknown_fields,
)

__all__ = [
    "COLUMN_RULES",
    "FORMAT_VERSION",
    "RULES",
    "Bound",
    "ColumnSchema",
    "ColumnType",
    "Schema",
    "Severity",
]


@dataclass(frozen=True)
class ColumnSchema:
    """The contract for one column.

    Args:
        name: the column name.
        type: the logical type (a :class:`ColumnType` or its name).
        nullable: whether nulls (None, NaN, NaT) are allowed.
        min: the smallest allowed value (integer, float and datetime columns).
        max: the largest allowed value (integer, float and datetime columns).
        categories: the allowed values of a categorical column; ``None`` allows any value.
        unique: whether non-null values must be distinct.
        description: free text for people.
        severity: per-rule severity overrides, e.g. ``{"range": "warning"}``; rules are
            ``missing_column``, ``type``, ``nullable``, ``range``, ``categories``, ``unique``.

    Raises:
        InvalidSchema: a field is malformed (a bound on a text column, ``min`` above ``max``...).
    """

    name: str
    type: ColumnType
    nullable: bool = False
    min: Bound | None = None
    max: Bound | None = None
    categories: tuple[Category, ...] | None = None
    unique: bool = False
    description: str | None = None
    severity: Mapping[str, Severity] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )

    def __post_init__(self) -> None:
        try:
            _check_column(self)
        except FieldError as exc:
            raise InvalidSchema(f"column {self.name!r}: {exc.message}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSchema:
        """Build a column from its dict form (see :meth:`to_dict`).

        Raises:
            InvalidSchema: an unknown or malformed field.
        """
        try:
            return _column_from_dict(data, ())
        except FieldError as exc:
            name = data.get("name") if isinstance(data, Mapping) else None
            label = f"column {name!r}" if isinstance(name, str) and name else "column"
            raise InvalidSchema(f"{label}: {exc.message}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form, keys in a fixed order, unset fields left out."""
        out: dict[str, Any] = {"name": self.name, "type": str(self.type)}
        out["nullable"] = self.nullable
        if self.min is not None:
            out["min"] = bound_to_json(self.min)
        if self.max is not None:
            out["max"] = bound_to_json(self.max)
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.unique:
            out["unique"] = True
        if self.description:
            out["description"] = self.description
        if self.severity:
            out["severity"] = {rule: str(level) for rule, level in self.severity.items()}
        return out

    def replace(self, **changes: Any) -> ColumnSchema:
        """A copy with some fields changed: ``col.replace(nullable=True)``."""
        return dataclasses.replace(self, **changes)

    def severity_of(self, rule: str, default: Severity = Severity.ERROR) -> Severity:
        """The severity of ``rule`` for this column (its override, else ``default``)."""
        return self.severity.get(rule, default)


def _check_column(col: ColumnSchema, path: tuple[str | int, ...] = ()) -> None:
    """Check and normalise a column's fields in place (frozen, hence ``object.__setattr__``)."""
    put = object.__setattr__
    if not isinstance(col.name, str) or not col.name:
        raise FieldError((*path, "name"), "name must be a non-empty string")
    if col.type not in list(ColumnType):
        raise FieldError((*path, "type"), one_of("type", col.type, list(ColumnType)))
    put(col, "type", ColumnType(col.type))
    for flag in ("nullable", "unique"):
        if not isinstance(getattr(col, flag), bool):
            raise FieldError((*path, flag), f"{flag} must be true or false")
    for which in ("min", "max"):
        value = getattr(col, which)
        if value is not None and col.type not in RANGED:
            raise FieldError(
                (*path, which),
                f"{which} is set, but only integer, float and datetime columns have a range "
                f"(this one is {col.type}); remove it",
            )
        put(col, which, check_bound(value, col.type, (*path, which)))
    if col.min is not None and col.max is not None and not before(col.min, col.max):
        raise FieldError(
            (*path, "min"),
            f"min {bound_to_json(col.min)} is above max {bound_to_json(col.max)}",
        )
    if col.categories is not None:
        if col.type != ColumnType.CATEGORICAL:
            raise FieldError(
                (*path, "categories"),
                f"categories are set, but this column is {col.type}, not categorical; "
                "remove them or set type: categorical",
            )
        raw: object = col.categories  # from a file, anything
        if isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
            raise FieldError((*path, "categories"), "categories must be a list of values")
        cats = tuple(raw)
        for i, cat in enumerate(cats):
            if not isinstance(cat, str | int | float | bool):
                raise FieldError(
                    (*path, "categories", i), f"category {cat!r} is not a string or a number"
                )
        dupes = sorted({str(c) for c in cats if cats.count(c) > 1})
        if dupes:
            raise FieldError((*path, "categories"), f"categories repeat: {', '.join(dupes)}")
        put(col, "categories", cats)
    if col.description is not None and not isinstance(col.description, str):
        raise FieldError((*path, "description"), "description must be text")
    put(col, "description", col.description or None)
    put(col, "severity", severities(col.severity, (*path, "severity"), COLUMN_RULES))


_COLUMN_FIELDS = [f.name for f in dataclasses.fields(ColumnSchema)]
_SCHEMA_FIELDS = [
    "format",
    "description",
    "target",
    "unique_key",
    "allow_extra_columns",
    "severity",
    "columns",
]


def _column_from_dict(data: object, path: tuple[str | int, ...]) -> ColumnSchema:
    if not isinstance(data, Mapping):
        raise FieldError(path, "a column must be a mapping with at least name and type")
    unknown_fields(data, _COLUMN_FIELDS, path)
    for required in ("name", "type"):
        if required not in data:
            raise FieldError(path, f"{required} is missing; every column needs a name and a type")
    col = ColumnSchema.__new__(ColumnSchema)
    for name in _COLUMN_FIELDS:
        default = next(f for f in dataclasses.fields(ColumnSchema) if f.name == name).default
        value = data.get(name, None if default is dataclasses.MISSING else default)
        object.__setattr__(col, name, value)
    _check_column(col, path)
    return col


@dataclass(frozen=True)
class Schema:
    """A data contract: ordered columns, the target, a unique key and how strict to be.

    Args:
        columns: the columns, in order.
        target: the name of the target (label) column, if any.
        unique_key: columns whose combined values identify a row (empty for none).
        allow_extra_columns: whether data may have columns the schema does not list.
        description: free text for people.
        severity: severity overrides for every column (``{"range": "warning"}``) and for the
            table rules ``extra_column`` and ``unique_key``; a column's own overrides win.
        format: the layout version of the dict/YAML form (:data:`FORMAT_VERSION`).

    Raises:
        InvalidSchema: repeated column names, a target or key column that is not a column...
    """

    columns: tuple[ColumnSchema, ...]
    target: str | None = None
    unique_key: tuple[str, ...] = ()
    allow_extra_columns: bool = False
    description: str | None = None
    severity: Mapping[str, Severity] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    format: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        try:
            _check_schema(self)
        except FieldError as exc:
            raise InvalidSchema(f"schema: {_where(exc.path, self)}{exc.message}") from None

    # --- reading ------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The column names, in order."""
        return [c.name for c in self.columns]

    @property
    def feature_names(self) -> list[str]:
        """The column names without the target."""
        return [c.name for c in self.columns if c.name != self.target]

    def column(self, name: str) -> ColumnSchema:
        """The column called ``name``.

        Raises:
            InvalidArgument: there is no such column.
        """
        for col in self.columns:
            if col.name == name:
                return col
        raise InvalidArgument(
            f"the schema has no column {name!r}{suggest(name, self.names)}; "
            f"its columns are {', '.join(self.names) or '(none)'}"
        )

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def __iter__(self) -> Iterator[ColumnSchema]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def severity_of(self, rule: str, column: str | None = None) -> Severity:
        """The severity of ``rule`` (for ``column``): column override, schema override, error."""
        default = self.severity.get(rule, Severity.ERROR)
        if column is not None and column in self:
            return self.column(column).severity_of(rule, default)
        return default

    # --- editing ------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Schema:
        """A copy with some fields changed: ``schema.replace(target="churned")``."""
        return dataclasses.replace(self, **changes)

    def with_column(self, column: ColumnSchema, *, after: str | None = None) -> Schema:
        """A copy with ``column`` added, or replacing the column of the same name in place.

        Args:
            column: the new column.
            after: for a new column, the column to insert it after (default: at the end).
        """
        if column.name in self:
            cols = [column if c.name == column.name else c for c in self.columns]
            return self.replace(columns=tuple(cols))
        cols = list(self.columns)
        index = len(cols) if after is None else self.names.index(self.column(after).name) + 1
        cols.insert(index, column)
        return self.replace(columns=tuple(cols))

    def update_column(self, name: str, **changes: Any) -> Schema:
        """A copy with fields of column ``name`` changed: ``update_column("age", max=120)``."""
        return self.with_column(self.column(name).replace(**changes))

    def without_column(self, name: str) -> Schema:
        """A copy without column ``name`` (also dropped from the target and the unique key)."""
        self.column(name)
        return self.replace(
            columns=tuple(c for c in self.columns if c.name != name),
            target=None if self.target == name else self.target,
            unique_key=() if name in self.unique_key else self.unique_key,
        )

    def select(self, names: Iterable[str]) -> Schema:
        """A copy with only ``names``, in that order (the target and key kept if selected)."""
        cols = tuple(self.column(n) for n in names)
        kept = {c.name for c in cols}
        return self.replace(
            columns=cols,
            target=self.target if self.target in kept else None,
            unique_key=self.unique_key if set(self.unique_key) <= kept else (),
        )

    # --- dict, YAML, files --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form, keys in a fixed order, unset optional fields left out."""
        out: dict[str, Any] = {"format": self.format}
        if self.description:
            out["description"] = self.description
        out["target"] = self.target
        out["unique_key"] = list(self.unique_key)
        out["allow_extra_columns"] = self.allow_extra_columns
        if self.severity:
            out["severity"] = {rule: str(level) for rule, level in self.severity.items()}
        out["columns"] = [c.to_dict() for c in self.columns]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "schema") -> Schema:
        """Build a schema from its dict form (see :meth:`to_dict`).

        Args:
            data: the dict.
            source: how to name it in an error message.

        Raises:
            InvalidSchema: an unknown or malformed field, naming the column and the field.
        """
        try:
            return _schema_from_dict(data)
        except FieldError as exc:
            raise InvalidSchema(f"{source}: {_locate(exc, data)}") from None

    def to_yaml(self) -> str:
        """The YAML form: one block per column, no Python tags, for people to read and edit."""
        from loopml.schema._yaml import dump

        return dump(self.to_dict())

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "schema YAML") -> Schema:
        """Parse the YAML (or JSON) form.

        Args:
            text: the document.
            source: how to name it in an error message (usually the file name).

        Raises:
            InvalidSchema: malformed YAML or fields, naming ``source``, the line and the field.
        """
        from loopml.schema._yaml import load_with_lines

        data, lines = load_with_lines(text, source)
        if not isinstance(data, Mapping):
            raise InvalidSchema(
                f"{source}: a schema must be a mapping with at least 'columns', "
                f"not {type(data).__name__}"
            )
        try:
            return _schema_from_dict(data)
        except FieldError as exc:
            line = lines.get((exc.path, exc.on_key)) or _nearest_line(lines, exc.path)
            where = f"{source} line {line}" if line else source
            raise InvalidSchema(f"{where}: {_locate(exc, data)}") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the schema to ``path`` (YAML, or JSON for a ``.json`` name), atomically.

        Returns:
            The path written.
        """
        import json

        target = Path(path)
        if target.suffix.lower() == ".json":
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        else:
            text = self.to_yaml()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema file written by :meth:`save` or by hand (YAML or JSON).

        Raises:
            InvalidSchema: the file cannot be read or has errors (with the line and field).
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidSchema(f"cannot read schema file {str(path)!r}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise InvalidSchema(f"schema file {str(path)!r} is not UTF-8 text") from exc
        return cls.from_yaml(text, source=str(path))


def _check_schema(schema: Schema) -> None:
    put = object.__setattr__
    if isinstance(schema.columns, Mapping) or not isinstance(schema.columns, Iterable):
        raise FieldError(("columns",), "columns must be a list of columns")
    cols = tuple(schema.columns)
    for i, col in enumerate(cols):
        if not isinstance(col, ColumnSchema):
            raise FieldError(("columns", i), "columns must be ColumnSchema objects")
    put(schema, "columns", cols)
    seen: set[str] = set()
    for i, col in enumerate(cols):
        if col.name in seen:
            raise FieldError(
                ("columns", i, "name"), "an earlier column has this name too; rename or remove one"
            )
        seen.add(col.name)
    if not isinstance(schema.format, int) or isinstance(schema.format, bool):
        raise FieldError(("format",), f"format must be an integer ({FORMAT_VERSION})")
    if schema.format > FORMAT_VERSION or schema.format < 1:
        raise FieldError(
            ("format",),
            f"format {schema.format} is not one this loopml reads (1 to {FORMAT_VERSION}); "
            "a newer loopml wrote it: upgrade loopml",
        )
    names = [c.name for c in cols]
    if schema.target is not None and schema.target not in seen:
        raise FieldError(
            ("target",),
            f"target {schema.target!r} is not a column{suggest(schema.target, names)}; "
            "add the column or fix the name",
        )
    raw: object = schema.unique_key  # from a file, anything
    if isinstance(raw, str):
        raw = (raw,)
    if not isinstance(raw, Iterable) or isinstance(raw, Mapping):
        raise FieldError(("unique_key",), "unique_key must be a list of column names")
    key = tuple(raw)
    for i, name in enumerate(key):
        if name not in seen:
            raise FieldError(
                ("unique_key", i),
                f"unique_key column {name!r} is not a column{suggest(name, names)}",
            )
    if len(set(key)) != len(key):
        raise FieldError(("unique_key",), "unique_key lists a column twice")
    put(schema, "unique_key", key)
    if not isinstance(schema.allow_extra_columns, bool):
        raise FieldError(("allow_extra_columns",), "allow_extra_columns must be true or false")
    if schema.description is not None and not isinstance(schema.description, str):
        raise FieldError(("description",), "description must be text")
    put(schema, "description", schema.description or None)
    put(schema, "severity", severities(schema.severity, ("severity",), RULES))


def _schema_from_dict(data: Mapping[str, Any]) -> Schema:
    if not isinstance(data, Mapping):
        raise FieldError((), "a schema must be a mapping with at least 'columns'")
    unknown_fields(data, _SCHEMA_FIELDS, ())
    if "columns" not in data:
        raise FieldError((), "columns is missing; list the columns under 'columns:'")
    raw = data["columns"]
    if not isinstance(raw, list):
        raise FieldError(("columns",), "columns must be a list, one '- name: ...' per column")
    cols = tuple(_column_from_dict(c, ("columns", i)) for i, c in enumerate(raw))
    schema = Schema.__new__(Schema)
    values = {
        "columns": cols,
        "target": data.get("target"),
        "unique_key": data.get("unique_key") or (),
        "allow_extra_columns": data.get("allow_extra_columns", False),
        "description": data.get("description"),
        "severity": data.get("severity"),
        "format": data.get("format", FORMAT_VERSION),
    }
    for name, value in values.items():
        object.__setattr__(schema, name, value)
    _check_schema(schema)
    return schema


def _column_label(path: tuple[str | int, ...], columns: object) -> str:
    index = path[1]
    if isinstance(columns, Sequence) and isinstance(index, int) and index < len(columns):
        col = columns[index]
        name = col.get("name") if isinstance(col, Mapping) else getattr(col, "name", None)
        if isinstance(name, str) and name:
            return f"column {name!r}"
    return f"column #{index + 1 if isinstance(index, int) else index}"


def _where(path: tuple[str | int, ...], schema: Schema | None = None) -> str:
    if len(path) >= 2 and path[0] == "columns" and schema is not None:
        return f"{_column_label(path, schema.columns)}: "
    return ""


def _locate(exc: FieldError, data: Mapping[str, Any]) -> str:
    """``column 'age': <message>`` for an error at ``exc.path`` of document ``data``."""
    path = exc.path
    if len(path) >= 2 and path[0] == "columns":
        return f"{_column_label(path, data.get('columns'))}: {exc.message}"
    return exc.message


def _nearest_line(
    lines: Mapping[tuple[tuple[str | int, ...], bool], int], path: tuple[str | int, ...]
) -> int:
    for cut in range(len(path), -1, -1):
        for on_key in (False, True):
            line = lines.get((path[:cut], on_key))
            if line:
                return line
    return 0
