"""The building blocks of a schema: column types, severities, rules, and field checks."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "COLUMN_RULES",
    "FORMAT_VERSION",
    "RANGED",
    "RULES",
    "Bound",
    "Category",
    "ColumnType",
    "FieldError",
    "Severity",
    "before",
    "bound_to_json",
    "check_bound",
    "one_of",
    "severities",
    "suggest",
    "unknown_fields",
]

#: The version of the dict/YAML layout this loopml writes (and the newest it reads).
FORMAT_VERSION = 1

#: A range bound: a number for integer and float columns, a datetime for datetime columns.
Bound = int | float | datetime
#: A category value as it appears in JSON and YAML.
Category = str | int | float | bool


class ColumnType(StrEnum):
    """The logical type of a column, independent of how a DataFrame stores it."""

    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    DATETIME = "datetime"
    TEXT = "text"


class Severity(StrEnum):
    """How much a violation matters: an ``error`` fails the data, a ``warning`` is reported."""

    ERROR = "error"
    WARNING = "warning"


#: Rules checked for each column, in the order a report lists them.
COLUMN_RULES = ("missing_column", "type", "nullable", "range", "categories", "unique")
#: Every rule a severity can be set for (the last two are checked on the whole table).
RULES = (*COLUMN_RULES, "extra_column", "unique_key")

RANGED = {ColumnType.INTEGER, ColumnType.FLOAT, ColumnType.DATETIME}


class FieldError(Exception):
    """A bad field at ``path`` (keys and list indexes from the document root)."""

    def __init__(self, path: tuple[str | int, ...], message: str, *, on_key: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.on_key = on_key


def suggest(word: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def one_of(what: str, value: object, choices: Sequence[str]) -> str:
    choices = [str(c) for c in choices]
    return f"{what} {value!r} is not one of {', '.join(choices)}{suggest(value, choices)}"


def severities(
    value: object, path: tuple[str | int, ...], rules: Sequence[str]
) -> Mapping[str, Severity]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise FieldError(path, "severity must be a mapping of rule to 'error' or 'warning'")
    out: dict[str, Severity] = {}
    for rule, level in value.items():
        if rule not in rules:
            raise FieldError((*path, str(rule)), one_of("rule", rule, rules), on_key=True)
        if level not in list(Severity):
            raise FieldError((*path, rule), one_of("severity", level, list(Severity)))
        out[rule] = Severity(level)
    return MappingProxyType(dict(sorted(out.items(), key=lambda kv: rules.index(kv[0]))))


def check_bound(value: object, ctype: ColumnType, path: tuple[str | int, ...]) -> Bound | None:
    if value is None:
        return None
    if ctype == ColumnType.DATETIME:
        if isinstance(value, datetime):
            return value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        raise FieldError(
            path, f"{value!r} is not an ISO datetime; write it like 2024-01-31 or 2024-01-31T08:00"
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(path, f"{value!r} is not a number; a {ctype} column needs a number")
    if isinstance(value, float) and math.isnan(value):
        raise FieldError(path, "NaN is not a bound; leave the field out for no bound")
    if ctype == ColumnType.INTEGER and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def before(a: Bound, b: Bound) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        if (a.tzinfo is None) != (b.tzinfo is None):
            a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
        return a <= b
    return a <= b  # type: ignore[operator]


def bound_to_json(value: Bound) -> int | float | str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isinf(value):
        return value
    return value


def unknown_fields(
    data: Mapping[Any, Any], allowed: Sequence[str], path: tuple[str | int, ...]
) -> None:
    for key in data:
        if key not in allowed:
            raise FieldError(
                (*path, key),
                f"unknown field {key!r}{suggest(key, allowed)}; fields are {', '.join(allowed)}",
                on_key=True,
            )
