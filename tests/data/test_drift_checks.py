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


def test_diff_datasets_reads_schemas_and_profiles(tmp_path: object) -> None:
    import numpy as np

    import loopml
    from loopml.data import diff_datasets, log_dataset

    client = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=f"{tmp_path}/art")
    rng = np.random.default_rng(0)
    old = pd.DataFrame({"x": rng.normal(size=3000), "c": rng.choice(["a", "b"], 3000)})
    new = pd.DataFrame(
        {"x": rng.normal(2, size=4000), "c": rng.choice(["a", "b", "z"], 4000), "n": 1}
    )
    log_dataset(old, "d", client=client)
    log_dataset(new, "d", client=client)
    diff = diff_datasets("datasets:/d/1", "datasets:/d/2", client=client)
    assert diff.changed and diff.rows_change == 1000
    assert diff.schema is not None and [c.name for c in diff.schema.added] == ["n"]
    assert diff.drift is not None and set(diff.drift.drifted_columns) == {"x", "c"}
    assert diff.to_dict()["rows"] == {"old": 3000, "new": 4000}
    assert "content changed" in str(diff)
    same = diff_datasets("datasets:/d/1", "datasets:/d/1", client=client)
    assert not same.changed and same.drift is not None and not same.drift.drifted_columns
