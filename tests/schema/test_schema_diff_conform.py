"""Schema diffs (type drift between versions) and conform (model inputs fit the schema)."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from loopml.errors import InvalidData
from loopml.schema import ColumnSchema, ColumnType, Schema, conform, diff_schemas

C = ColumnType
OLD = Schema(
    (
        ColumnSchema("id", C.INTEGER, unique=True),
        ColumnSchema("age", C.INTEGER, nullable=True, min=18, max=99),
        ColumnSchema("plan", C.CATEGORICAL, categories=("basic", "pro")),
        ColumnSchema("zip", C.INTEGER),
        ColumnSchema("churned", C.BOOLEAN),
    ),
    target="churned",
)


def test_same_schema_has_no_changes() -> None:
    diff = diff_schemas(OLD, OLD)
    assert not diff.changed and str(diff) == "schemas are the same"
    assert diff.to_dict() == {"changed": False, "added": [], "removed": [], "changes": []}


def test_changes() -> None:
    new = (
        OLD.update_column("zip", type=C.TEXT)
        .update_column("age", nullable=False, min=21, max=120)
        .update_column("plan", categories=("pro", "team"))
        .without_column("id")
        .with_column(ColumnSchema("city", C.TEXT))
        .replace(allow_extra_columns=True)
    )
    diff = diff_schemas(OLD, new)
    assert diff.changed and diff.tightened
    assert [c.name for c in diff.added] == ["city"] and [c.name for c in diff.removed] == ["id"]
    got = [(c.column, c.field, c.old, c.new, c.tightens) for c in diff.changes]
    assert got == [
        ("age", "nullable", True, False, True),
        ("age", "min", 18, 21, True),
        ("age", "max", 99, 120, False),
        ("plan", "categories", ["basic", "pro"], ["pro", "team"], True),
        ("zip", "type", "integer", "text", True),
        (None, "allow_extra_columns", False, True, False),
    ]
    assert [(c.column, c.old, c.new) for c in diff.type_changes] == [("zip", "integer", "text")]
    json.dumps(diff.to_dict())
    text = str(diff)
    assert "+ column 'city' (text)" in text and "- column 'id' (integer)" in text
    assert "~ column 'zip': type integer -> text [tightens]" in text
    assert (
        "~ column 'plan': categories [basic, pro] -> [pro, team] (added [team], removed [basic])"
        in text
    )


def test_loosening_only() -> None:
    new = OLD.update_column("age", min=None).update_column("plan", categories=None)
    diff = diff_schemas(OLD, new)
    assert diff.changed and not diff.tightened
    assert diff_schemas(new, OLD).tightened


def test_category_order_is_not_a_change() -> None:
    assert not diff_schemas(OLD, OLD.update_column("plan", categories=("pro", "basic"))).changed


def test_datetime_bounds() -> None:
    a = Schema((ColumnSchema("t", C.DATETIME, min=datetime(2024, 1, 1)),))
    b = a.update_column("t", min=datetime(2024, 6, 1))
    (change,) = diff_schemas(a, b).changes
    assert change.old == "2024-01-01T00:00:00" and change.tightens


INPUT_SCHEMA = Schema(
    (
        ColumnSchema("n", C.INTEGER),
        ColumnSchema("x", C.FLOAT, nullable=True),
        ColumnSchema("t", C.DATETIME),
        ColumnSchema("c", C.CATEGORICAL),
        ColumnSchema("s", C.TEXT),
        ColumnSchema("b", C.BOOLEAN),
        ColumnSchema("y", C.BOOLEAN),
    ),
    target="y",
)


def good_input() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "b": [True, False],
            "s": ["hi", "there"],
            "c": ["a", "b"],
            "t": ["2024-01-01T10:00:00", "2024-02-01"],
            "x": [1, 2],
            "n": [1.0, 2.0],
        }
    )


def test_conform_reorders_and_converts() -> None:
    out = conform(good_input(), INPUT_SCHEMA)
    assert list(out.columns) == ["n", "x", "t", "c", "s", "b"]  # the target is optional
    assert out["n"].dtype == np.int64 and out["x"].dtype == np.float64
    assert str(out["t"].dtype).startswith("datetime64")
    assert out["t"].iloc[1] == pd.Timestamp("2024-02-01")
    with_nulls = good_input().assign(n=[1.0, np.nan])
    assert str(conform(with_nulls, INPUT_SCHEMA)["n"].dtype) == "Int64"
    with_target = good_input().assign(y=[True, True])
    assert conform(with_target, INPUT_SCHEMA, require_target=True).columns[-1] == "y"


def test_conform_refuses_with_every_problem_named() -> None:
    bad = (
        good_input()
        .assign(n=[1.5, 2.0], x=["1", "2"], s=[1, 2], z=[0, 0], t=["2024-01-01", "later"])
        .drop(columns=["c"])
    )
    with pytest.raises(InvalidData) as info:
        conform(bad, INPUT_SCHEMA)
    message = str(info.value)
    for part in (
        "missing columns 'c'",
        "extra columns 'z'",
        "column 'n': expected integer, got float64 with fractional values (e.g. 1.5)",
        "column 'x': expected float, got str",
        "column 't': expected datetime, got str with values that are not ISO datetimes "
        "(e.g. 'later')",
        "column 's': expected text, got int64",
    ):
        assert part in message, message
    with pytest.raises(InvalidData, match="missing columns 'y'"):
        conform(good_input(), INPUT_SCHEMA, require_target=True)


def test_conform_drops_extras_when_allowed() -> None:
    out = conform(good_input().assign(z=1), INPUT_SCHEMA.replace(allow_extra_columns=True))
    assert "z" not in out.columns


def test_conform_refuses_bools_as_numbers() -> None:
    with pytest.raises(InvalidData, match="column 'n': expected integer, got bool"):
        conform(good_input().assign(n=[True, False]), INPUT_SCHEMA)
