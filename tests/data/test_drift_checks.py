"""TypeDrift: a column's type changed between two versions of a dataset."""

from __future__ import annotations

import pandas as pd

from loopml.data import TypeDrift, run_checks
from loopml.schema import infer_schema


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"age": [31, 45, 52, 28], "city": ["a", "b", "a", "b"], "score": [0.1, 0.5, 0.2, 0.9]}
    )


def test_same_types_pass() -> None:
    report = run_checks(_frame(), [TypeDrift()], reference=_frame())
    assert report.ok and report["type_drift"].passed


def test_a_changed_type_fails_and_names_the_column() -> None:
    new = _frame().assign(age=["31", "45", "x", "28"])
    report = run_checks(new, [TypeDrift()], reference=_frame())
    result = report["type_drift"]
    assert not result.passed and result.severity == "error"
    assert "'age' integer -> " in result.message
    assert result.details["type_changes"]["age"]["was"] == "integer"


def test_added_and_removed_columns_are_reported() -> None:
    new = _frame().drop(columns=["city"]).assign(extra=[1, 2, 3, 4])
    result = run_checks(new, [TypeDrift()], reference=_frame())["type_drift"]
    assert not result.passed
    assert result.details["added"] == ["extra"] and result.details["removed"] == ["city"]


def test_int_to_float_is_widening_unless_told_otherwise() -> None:
    new = _frame().assign(age=[31.0, None, 52.0, 28.0])
    assert run_checks(new, [TypeDrift()], reference=_frame()).ok
    strict = run_checks(new, [TypeDrift(numeric_widening=False)], reference=_frame())
    assert not strict.ok


def test_against_a_stored_schema_and_without_reference() -> None:
    schema = infer_schema(_frame())
    assert run_checks(_frame(), [TypeDrift(schema=schema)]).ok
    assert not run_checks(_frame().assign(score=["x"] * 4), [TypeDrift(schema=schema)]).ok
    alone = run_checks(_frame(), [TypeDrift()])["type_drift"]
    assert alone.passed and "no reference" in alone.message
