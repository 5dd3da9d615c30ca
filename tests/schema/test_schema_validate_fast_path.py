"""The fast path for clean columns finds exactly what the general path finds."""

from __future__ import annotations

import sys

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from loopml.schema import ColumnSchema, ColumnType, Schema, ValidationReport, validate

validate_module = sys.modules["loopml.schema.validate"]
C = ColumnType


def general_only(data: pd.DataFrame, schema: Schema, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as m:
        m.setattr(validate_module, "_clean", lambda *a: False)
        return validate(data, schema).to_dict()


floats = st.lists(
    st.one_of(st.floats(-5, 5), st.just(float("nan")), st.just(float("inf"))), max_size=30
)
words = st.lists(st.one_of(st.sampled_from(["a", "b", "c", "zz"]), st.none()), max_size=30)


@settings(max_examples=150, deadline=None)
@given(
    xs=floats,
    ws=words,
    nullable=st.booleans(),
    lo=st.one_of(st.none(), st.floats(-5, 0)),
    hi=st.one_of(st.none(), st.floats(0, 5)),
    as_text=st.booleans(),
)
def test_fast_path_agrees_with_the_general_path(
    xs: list[float],
    ws: list[str | None],
    nullable: bool,
    lo: float | None,
    hi: float | None,
    as_text: bool,
) -> None:
    n = min(len(xs), len(ws))
    data = pd.DataFrame(
        {
            "x": np.array(xs[:n], dtype="float64"),
            "w": pd.array(ws[:n], dtype="string[pyarrow]"),
        }
    )
    word_type = C.TEXT if as_text else C.CATEGORICAL
    schema = Schema(
        (
            ColumnSchema("x", C.FLOAT, nullable=nullable, min=lo, max=hi),
            ColumnSchema(
                "w",
                word_type,
                nullable=nullable,
                categories=None if as_text else ("a", "b"),
            ),
        )
    )
    mp = pytest.MonkeyPatch()
    try:
        assert validate(data, schema).to_dict() == general_only(data, schema, mp)
    finally:
        mp.undo()


def test_a_clean_frame_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = validate_module.Validator._check_column

    def spy(self: object, col: ColumnSchema, *args: object, **kwargs: object) -> object:
        calls.append(col.name)
        return real(self, col, *args, **kwargs)

    monkeypatch.setattr(validate_module.Validator, "_check_column", spy)
    data = pd.DataFrame(
        {
            "x": [0.5, float("nan"), 2.0],
            "w": pd.array(["a", None, "b"], dtype="string[pyarrow]"),
            "bad": pd.array(["a", "q", "b"], dtype="string[pyarrow]"),
        }
    )
    schema = Schema(
        (
            ColumnSchema("x", C.FLOAT, nullable=True, min=0, max=2),
            ColumnSchema("w", C.CATEGORICAL, nullable=True, categories=("a", "b")),
            ColumnSchema("bad", C.CATEGORICAL, categories=("a", "b")),
        )
    )
    report: ValidationReport = validate(data, schema)
    assert calls == ["bad"]  # only the column with a violation runs the general rules
    assert [(v.column, v.rule, v.count, v.examples) for v in report.violations] == [
        ("bad", "categories", 1, ("q",))
    ]
