"""Streaming validation: chunk by chunk gives the same report as the whole table."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.schema import ColumnSchema, ColumnType, Schema, Validator, validate

C = ColumnType
SCHEMA = Schema(
    (
        ColumnSchema("id", C.INTEGER, unique=True, min=0, max=40),
        ColumnSchema("x", C.FLOAT, min=-1.0, max=1.0),
        ColumnSchema("cat", C.CATEGORICAL, nullable=True, categories=("a", "b")),
        ColumnSchema("name", C.TEXT, unique=True),
        ColumnSchema("k", C.INTEGER, nullable=True),
    ),
    unique_key=("cat", "k"),
)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 60))
    ints = st.integers(-5, 45)
    cats = st.sampled_from(["a", "b", "c", None])
    return pd.DataFrame(
        {
            "id": draw(st.lists(ints, min_size=n, max_size=n)),
            "x": draw(
                st.lists(
                    st.sampled_from([-2.0, -0.5, 0.0, 0.5, 1.5, np.nan]), min_size=n, max_size=n
                )
            ),
            "cat": draw(st.lists(cats, min_size=n, max_size=n)),
            "name": draw(
                st.lists(
                    st.sampled_from(["ann", "bob", "cy", "dee", None]), min_size=n, max_size=n
                )
            ),
            "k": pd.array(
                draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n, max_size=n)),
                dtype="Int64",
            ),
        }
    )


@settings(max_examples=30, deadline=None)
@given(tables(), st.lists(st.integers(0, 60), max_size=5))
def test_chunked_equals_whole(df: pd.DataFrame, cuts: list[int]) -> None:
    bounds = sorted({0, len(df), *(c for c in cuts if c <= len(df))})
    validator = Validator(SCHEMA)
    for start, stop in itertools.pairwise(bounds):
        validator.update(df.iloc[start:stop])
    chunked = validator.report()
    whole = validate(df, SCHEMA)
    assert chunked.to_dict() == whole.to_dict()
    # And the counts are right: check the duplicate counts against pandas.
    expect_dups = int(df["id"].duplicated().sum())
    got = {v.rule: v.count for v in whole.violations if v.column == "id"}
    assert got.get("unique", 0) == expect_dups
    keyed = df.dropna(subset=["cat", "k"])
    got_key = [v.count for v in whole.violations if v.rule == "unique_key"]
    assert (got_key or [0])[0] == int(keyed.duplicated(subset=["cat", "k"]).sum())


def test_csv_in_chunks_with_changing_dtypes(tmp_path: Path) -> None:
    # The bad value sits in the last chunk only: earlier chunks read as int64, that one as str.
    rows = [f"{i},{i / 100}" for i in range(300)] + ["oops,0.5", "5,0.5"]
    path = tmp_path / "data.csv"
    path.write_text("id,x\n" + "\n".join(rows) + "\n")
    schema = Schema(
        (ColumnSchema("id", C.INTEGER, unique=True), ColumnSchema("x", C.FLOAT, max=2.5))
    )
    validator = Validator(schema)
    for chunk in pd.read_csv(path, chunksize=100):
        validator.update(chunk)
    chunked = validator.report()
    whole = validate(pd.read_csv(path), schema)
    assert [(v.rule, v.count, v.examples) for v in chunked.violations] == [
        (v.rule, v.count, v.examples) for v in whole.violations
    ]
    assert [(v.rule, v.count) for v in whole.violations] == [
        ("type", 1),
        ("unique", 1),
        ("range", 49),
    ]
    assert chunked.num_rows == 302


def test_examples_are_capped_across_chunks() -> None:
    schema = Schema((ColumnSchema("a", C.INTEGER, max=0),))
    validator = Validator(schema, max_examples=3)
    for start in range(0, 10, 2):
        validator.update(pd.DataFrame({"a": [start + 1, start + 2]}))
    (violation,) = validator.report().violations
    assert violation.count == 10 and violation.examples == (1, 2, 3)
    none = validate(pd.DataFrame({"a": [5]}), schema, max_examples=0)
    assert none.violations[0].examples == ()
