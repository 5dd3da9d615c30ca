"""Validation: every rule, severities, the report, strict mode, polars and pyarrow input."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from loopml.errors import DataValidationFailed, InvalidArgument, InvalidData
from loopml.schema import ColumnSchema, ColumnType, Schema, Severity, ValidationReport, validate

C = ColumnType


def schema(*cols: ColumnSchema, **kwargs: object) -> Schema:
    return Schema(tuple(cols), **kwargs)  # type: ignore[arg-type]


def only(report: ValidationReport, rule: str) -> tuple[int, list[object]]:
    found = [v for v in report.violations if v.rule == rule]
    assert len(found) == 1, report
    return found[0].count, list(found[0].examples)


def test_clean_data_passes() -> None:
    s = schema(
        ColumnSchema("a", C.INTEGER, min=0, max=10),
        ColumnSchema("b", C.CATEGORICAL, categories=("x", "y")),
    )
    report = validate(pd.DataFrame({"a": [0, 5, 10], "b": ["x", "y", "x"]}), s)
    assert report.ok and bool(report) and report.violations == () and report.num_rows == 3
    assert str(report) == "validation passed: 3 rows, 0 errors, 0 warnings"


def test_missing_and_extra_columns() -> None:
    s = schema(ColumnSchema("a", C.INTEGER), ColumnSchema("b", C.TEXT))
    report = validate(pd.DataFrame({"a": [1, 2], "z": [1, 2], "y": [3, 4]}), s)
    assert [(v.column, v.rule, v.count) for v in report.violations] == [
        ("b", "missing_column", 2),
        ("z", "extra_column", 2),
        ("y", "extra_column", 2),
    ]
    assert validate(
        pd.DataFrame({"a": [1], "b": ["x"], "z": [0]}), s.replace(allow_extra_columns=True)
    ).ok


def test_missing_column_in_empty_data_is_reported() -> None:
    report = validate(pd.DataFrame({"a": []}), schema(ColumnSchema("b", C.TEXT)))
    assert [(v.rule, v.count) for v in report.violations] == [
        ("missing_column", 0),
        ("extra_column", 0),
    ]


@pytest.mark.parametrize(
    ("ctype", "values", "bad", "examples"),
    [
        (C.INTEGER, pd.Series(["1", "2", "x", None, "2.5", "x"], dtype=object), 3, ["x", "2.5"]),
        (C.INTEGER, [1.0, 2.0, 2.5, np.nan, np.inf], 2, [2.5, "inf"]),
        (C.INTEGER, [True, False], 2, [True, False]),
        (C.INTEGER, pd.array([1, None], dtype="Int64"), 0, []),
        (C.FLOAT, pd.Series(["1.5", "nan?", 3], dtype=object), 1, ["nan?"]),
        (C.FLOAT, [1, 2, 3], 0, []),
        (C.BOOLEAN, [0, 1, 2], 1, [2]),
        (C.BOOLEAN, pd.Series(["true", "False", "yes", None], dtype=object), 1, ["yes"]),
        (C.BOOLEAN, pd.array([True, None], dtype="boolean"), 0, []),
        (C.DATETIME, ["2024-01-01", "2024-13-01", "soon", None], 2, ["2024-13-01", "soon"]),
        (C.DATETIME, [1, 2], 2, [1, 2]),
        (C.TEXT, pd.Series(["a", 1, None, 2.5], dtype=object), 2, [1, 2.5]),
        (C.TEXT, [1, 2], 2, [1, 2]),
        (C.CATEGORICAL, [1, "a"], 0, []),
    ],
)
def test_type_rule(ctype: ColumnType, values: object, bad: int, examples: list[object]) -> None:
    s = schema(ColumnSchema("a", ctype, nullable=True))
    report = validate(pd.DataFrame({"a": values}), s)
    if bad == 0:
        assert report.ok, report
    else:
        count, found = only(report, "type")
        assert count == bad and found == examples
    json.dumps(report.to_dict(), allow_nan=False)


def test_nullable_rule() -> None:
    s = schema(ColumnSchema("a", C.FLOAT), ColumnSchema("b", C.TEXT, nullable=True))
    df = pd.DataFrame({"a": [1.0, None, np.nan, 2.0], "b": [None, None, "x", "y"]})
    count, examples = only(validate(df, s), "nullable")
    assert count == 2 and examples == []


def test_range_rule() -> None:
    s = schema(ColumnSchema("a", C.FLOAT, min=0, max=1))
    report = validate(
        pd.DataFrame({"a": [-2.0, -1.0, 0.0, 0.5, 1.0, 3.0, np.nan]}),
        s.replace(columns=(s.columns[0].replace(nullable=True),)),
    )
    count, examples = only(report, "range")
    assert count == 3 and examples == [-2.0, -1.0, 3.0]
    assert (
        "2 below min 0 (lowest -2.0), 1 above max 1 (highest 3.0)" in report.violations[0].message
    )
    only_min = schema(ColumnSchema("a", C.INTEGER, min=10))
    assert only(validate(pd.DataFrame({"a": [1, 10, 100]}), only_min), "range")[0] == 1


def test_range_of_strings_is_checked_after_coercion() -> None:
    s = schema(ColumnSchema("a", C.INTEGER, min=0))
    report = validate(pd.DataFrame({"a": pd.Series(["-5", "3", "oops"], dtype=object)}), s)
    assert [(v.rule, v.count) for v in report.violations] == [("type", 1), ("range", 1)]


def test_datetime_range_with_time_zones() -> None:
    s = schema(
        ColumnSchema("t", C.DATETIME, min=datetime(2024, 1, 1), max="2024-12-31T23:00:00+00:00")
    )
    paris = pd.Series(pd.to_datetime(["2024-01-01 00:30", "2024-12-31 23:30"])).dt.tz_localize(
        "Europe/Paris"
    )
    # 00:30 in Paris is 23:30 UTC the day before: below a naive (UTC) min, and within the max.
    count, examples = only(validate(pd.DataFrame({"t": paris}), s), "range")
    assert count == 1 and examples == ["2024-01-01T00:30:00+01:00"]
    naive = pd.DataFrame({"t": pd.to_datetime(["2023-12-31", "2024-06-01", "2025-02-01"])})
    report = validate(naive, s)
    assert only(report, "range")[0] == 2
    assert "lowest 2023-12-31T00:00:00" in report.violations[0].message
    strings = pd.DataFrame({"t": ["2024-06-01T10:00:00", "2026-01-01"]})
    assert only(validate(strings, s), "range")[0] == 1


def test_categories_rule() -> None:
    s = schema(ColumnSchema("a", C.CATEGORICAL, nullable=True, categories=("x", "y")))
    values = ["x", "z", None, "w", "z", "y"]
    for column in (
        pd.Series(values),
        pd.Series(values, dtype="category"),
        pd.Series(values, dtype=object),
    ):
        count, examples = only(validate(pd.DataFrame({"a": column}), s), "categories")
        assert count == 3 and examples == ["z", "w"]
    assert validate(pd.DataFrame({"a": ["anything"]}), s.update_column("a", categories=None)).ok


def test_unique_rule() -> None:
    s = schema(ColumnSchema("a", C.INTEGER, nullable=True, unique=True))
    df = pd.DataFrame({"a": pd.array([1, 2, 1, None, None, 3, 1, 2], dtype="Int64")})
    count, examples = only(validate(df, s), "unique")
    assert count == 3 and examples == [1, 2]  # nulls are not duplicates
    floats = schema(ColumnSchema("f", C.FLOAT, unique=True))
    assert only(validate(pd.DataFrame({"f": [0.0, -0.0, 1.0]}), floats), "unique")[0] == 1
    text = schema(ColumnSchema("t", C.TEXT, unique=True))
    assert only(validate(pd.DataFrame({"t": ["a", "b", "a"]}), text), "unique") == (1, ["a"])


def test_unique_key_rule() -> None:
    s = schema(
        ColumnSchema("k1", C.INTEGER),
        ColumnSchema("k2", C.TEXT, nullable=True),
        unique_key=("k1", "k2"),
    )
    df = pd.DataFrame({"k1": [1, 1, 2, 1, 2, 2], "k2": ["a", "b", "a", "a", None, None]})
    report = validate(df, s)
    count, examples = only(report, "unique_key")
    assert count == 1 and examples == [[1, "a"]]
    assert report.violations[0].column == "k1, k2"
    # A one-column key on a unique column is reported once, as `unique`.
    single = schema(ColumnSchema("k", C.INTEGER, unique=True), unique_key=("k",))
    assert [v.rule for v in validate(pd.DataFrame({"k": [1, 1]}), single).violations] == ["unique"]
    no_flag = schema(ColumnSchema("k", C.INTEGER), unique_key=("k",))
    assert [v.rule for v in validate(pd.DataFrame({"k": [1, 1]}), no_flag).violations] == [
        "unique_key"
    ]


def test_severities_and_report_api() -> None:
    s = schema(
        ColumnSchema("a", C.INTEGER, max=5, severity={"range": "warning"}),
        ColumnSchema("b", C.TEXT),
        severity={"extra_column": "warning"},
    )
    report = validate(
        pd.DataFrame({"a": [1, 9], "b": [None, "x"], "z": [0, 0]}), s, max_examples=1
    )
    assert [(v.rule, v.severity) for v in report.violations] == [
        ("range", Severity.WARNING),
        ("nullable", Severity.ERROR),
        ("extra_column", Severity.WARNING),
    ]
    assert not report.ok and len(report.errors) == 1 and len(report.warnings) == 2
    data = report.to_dict()
    assert data["num_errors"] == 1 and data["violations"][0]["examples"] == [9]
    json.dumps(data, allow_nan=False)
    table = report.to_pandas()
    assert list(table.columns) == [
        "column",
        "rule",
        "severity",
        "count",
        "fraction",
        "examples",
        "message",
    ]
    assert table["fraction"].tolist() == [0.5, 0.5, 1.0]
    text = str(report)
    assert text.splitlines()[0] == "validation failed: 2 rows, 1 error, 2 warnings"
    assert "  error   b [nullable]: 1 null in a column that is not nullable" in text
    with pytest.raises(DataValidationFailed) as info:
        report.raise_for_errors()
    assert info.value.report is report


def test_warnings_only_are_ok() -> None:
    s = schema(ColumnSchema("a", C.INTEGER, max=5), severity={"range": "warning"})
    report = validate(pd.DataFrame({"a": [9]}), s, strict=True)
    assert report.ok and report.warnings


def test_strict_raises_with_report() -> None:
    s = schema(*(ColumnSchema(f"c{i}", C.INTEGER, max=0) for i in range(8)))
    df = pd.DataFrame({f"c{i}": [1, 2] for i in range(8)})
    with pytest.raises(DataValidationFailed) as info:
        validate(df, s, strict=True)
    message = str(info.value)
    assert "8 errors in 2 rows: c0 [range]: 2 values out of range" in message
    assert "c4 [range]" in message and "c5 [range]" not in message and "and 3 more" in message
    assert isinstance(info.value.report, ValidationReport) and len(info.value.report.errors) == 8
    assert info.value.code == "DATA_VALIDATION" and info.value.http_status == 422


def test_polars_and_pyarrow_input() -> None:
    s = schema(
        ColumnSchema("a", C.INTEGER, nullable=True, max=2),
        ColumnSchema("c", C.CATEGORICAL, categories=("x",)),
        ColumnSchema("t", C.DATETIME),
    )
    ts = [datetime(2024, 1, 1), datetime(2024, 1, 2), datetime(2024, 1, 3)]
    expected = [("range", 1), ("categories", 1)]
    pl_df = pl.DataFrame(
        {"a": [1, None, 3], "c": pl.Series(["x", "y", "x"], dtype=pl.Categorical), "t": ts}
    )
    table = pa.table({"a": [1, None, 3], "c": ["x", "y", "x"], "t": ts})
    for data in (
        pl_df,
        table,
        table.to_batches()[0],
        {"a": [1, None, 3], "c": ["x", "y", "x"], "t": ts},
    ):
        report = validate(data, s)
        assert [(v.rule, v.count) for v in report.violations] == expected, type(data)


def test_bad_input() -> None:
    s = schema(ColumnSchema("a", C.INTEGER))
    with pytest.raises(InvalidData):
        validate("not a table", s)
    with pytest.raises(InvalidData, match="two columns named 'a'"):
        validate(pd.DataFrame([[1, 2]], columns=["a", "a"]), s)
    with pytest.raises(InvalidArgument, match="schema must be a loopml Schema"):
        validate(pd.DataFrame({"a": [1]}), {"columns": []})  # type: ignore[arg-type]


def test_pyarrow_backed_pandas_columns() -> None:
    table = pa.table(
        {
            "i": pa.array([1, None, 3]),
            "t": pa.array([1, 2, None], pa.timestamp("ms", tz="UTC")),
            "d": pa.array(["x", "y", None]).dictionary_encode(),
            "b": pa.array([True, None, False]),
        }
    )
    df = table.to_pandas(types_mapper=pd.ArrowDtype)
    from loopml.schema import conform, infer_schema

    inferred = infer_schema(df)
    assert [c.type for c in inferred] == [C.INTEGER, C.DATETIME, C.CATEGORICAL, C.BOOLEAN]
    assert validate(df, inferred).ok
    tighter = inferred.update_column("i", max=2).update_column("d", categories=("x",))
    tighter = tighter.update_column("t", min=None, max=datetime(1970, 1, 1))
    report = validate(df, tighter)
    assert [(v.column, v.rule, v.count) for v in report.violations] == [
        ("i", "range", 1),
        ("t", "range", 2),
        ("d", "categories", 1),
    ]
    assert list(conform(df, inferred).columns) == ["i", "t", "d", "b"]
