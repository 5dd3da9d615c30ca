"""Schema inference from pandas, polars and pyarrow tables."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from loopml.errors import InvalidArgument, InvalidData
from loopml.schema import ColumnType, infer_schema, validate


def frame(n: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "age": pd.array(rng.integers(18, 90, n), dtype="Int64"),
            "income": rng.normal(50_000, 1_000, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "level": pd.Categorical(rng.choice(["a", "b"], n), categories=["b", "a", "c"]),
            "signup": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Paris"),
            "email": [f"u{i}@x.org" for i in range(n)],
            "vip": rng.random(n) > 0.5,
        }
    )


def test_types_and_fields() -> None:
    df = frame()
    df.loc[3, "age"] = pd.NA
    schema = infer_schema(df, target="vip")
    types = {c.name: c.type for c in schema}
    assert types == {
        "customer_id": ColumnType.INTEGER,
        "age": ColumnType.INTEGER,
        "income": ColumnType.FLOAT,
        "plan": ColumnType.CATEGORICAL,
        "level": ColumnType.CATEGORICAL,
        "signup": ColumnType.DATETIME,
        "email": ColumnType.TEXT,
        "vip": ColumnType.BOOLEAN,
    }
    assert schema.target == "vip" and schema.feature_names[-1] == "email"
    assert schema.column("age").nullable and not schema.column("income").nullable
    assert schema.column("age").min == int(df["age"].min())
    assert schema.column("income").max == df["income"].max()
    assert schema.column("plan").categories == ("basic", "pro", "team")
    assert schema.column("level").categories == ("a", "b", "c")  # declared, sorted
    start = schema.column("signup").min
    assert isinstance(start, datetime) and start.tzinfo is not None
    assert start == datetime(2023, 12, 31, 23, tzinfo=UTC)
    assert schema.column("customer_id").unique and schema.column("email").unique
    assert not schema.column("age").unique  # not an id, even when all values differ
    assert schema.unique_key == ("customer_id",)
    assert validate(df, schema).ok


def test_text_key_when_no_id() -> None:
    df = frame().drop(columns=["customer_id"])
    assert infer_schema(df).unique_key == ("email",)
    assert infer_schema(df, unique_key=None).unique_key == ()
    assert infer_schema(df, unique_key=["email", "plan"]).unique_key == ("email", "plan")


def test_categorical_thresholds() -> None:
    df = pd.DataFrame({"s": [f"v{i % 10}" for i in range(100)]})
    assert infer_schema(df).column("s").type == ColumnType.CATEGORICAL
    assert infer_schema(df, max_categories=9).column("s").type == ColumnType.TEXT
    assert infer_schema(df, categorical_ratio=0.05).column("s").type == ColumnType.TEXT
    distinct = pd.DataFrame({"s": ["a", "b", "c"]})
    assert infer_schema(distinct).column("s").type == ColumnType.TEXT


def test_object_columns() -> None:
    df = pd.DataFrame(
        {
            "ints": pd.Series([1, 2, None], dtype=object),
            "floats": pd.Series([1.5, 2, None], dtype=object),
            "bools": pd.Series([True, False, None], dtype=object),
            "dates": pd.Series([datetime(2024, 1, 1), datetime(2024, 2, 1), None], dtype=object),
            "mixed": pd.Series(["a", 1, None], dtype=object),
        }
    )
    schema = infer_schema(df)
    assert [c.type for c in schema] == [
        ColumnType.INTEGER,
        ColumnType.FLOAT,
        ColumnType.BOOLEAN,
        ColumnType.DATETIME,
        ColumnType.TEXT,
    ]
    assert all(c.nullable for c in schema)
    assert schema.column("ints").max == 2


def test_edge_cases() -> None:
    df = pd.DataFrame(
        {
            "empty": pd.Series([], dtype="float64"),
            "allnull": pd.Series([], dtype="str"),
        }
    )
    schema = infer_schema(df)
    assert schema.column("empty").min is None
    inf = infer_schema(pd.DataFrame({"x": [1.0, np.inf, -np.inf]}))
    assert inf.column("x").min is None and inf.column("x").max is None
    assert infer_schema(pd.DataFrame({"x": [1, 2]}), ranges=False).column("x").min is None


def test_polars_and_pyarrow() -> None:
    pl_df = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "cat": pl.Series(["a", "b", "a"], dtype=pl.Categorical),
            "x": [0.5, None, 1.5],
        }
    )
    schema = infer_schema(pl_df)
    assert [c.type for c in schema] == [
        ColumnType.INTEGER,
        ColumnType.CATEGORICAL,
        ColumnType.FLOAT,
    ]
    assert schema.column("cat").categories == ("a", "b")
    table = pa.table({"id": [1, 2, 3], "ts": pa.array([1, 2, 3], pa.timestamp("us"))})
    assert infer_schema(table).column("ts").type == ColumnType.DATETIME


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgument, match="target 'nope' is not a column"):
        infer_schema(frame(), target="nope")
    with pytest.raises(InvalidArgument, match="unique_key column 'x'"):
        infer_schema(frame(), unique_key=["x"])
    with pytest.raises(InvalidData, match="must be"):
        infer_schema([1, 2, 3])
    with pytest.raises(InvalidArgument, match="categorical_ratio"):
        infer_schema(frame(), categorical_ratio=2)
