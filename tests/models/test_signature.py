"""Model signatures: built from a schema or inferred from an example, JSON round trips, and
enforcement (column order, safe coercion, every problem listed, every accepted input form)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidArgument, SignatureMismatch
from loopml.models import ModelSignature, TensorSpec, infer_signature
from loopml.schema import ColumnSchema, ColumnType, Schema

SCHEMA = Schema(
    columns=(
        ColumnSchema("age", ColumnType.INTEGER),
        ColumnSchema("income", ColumnType.FLOAT, nullable=True),
        ColumnSchema("plan", ColumnType.CATEGORICAL, categories=("basic", "pro")),
        ColumnSchema("active", ColumnType.BOOLEAN),
        ColumnSchema("signup", ColumnType.DATETIME),
        ColumnSchema("note", ColumnType.TEXT, nullable=True),
        ColumnSchema("churned", ColumnType.BOOLEAN),
    ),
    target="churned",
)
SIG = ModelSignature.from_schema(SCHEMA)


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 45],
            "income": [1200.5, 3000.0],
            "plan": ["basic", "pro"],
            "active": [True, False],
            "signup": pd.to_datetime(["2024-01-02", "2024-03-04"]),
            "note": ["a", None],
        }
    )


# --- building ----------------------------------------------------------------------------------


def test_from_schema_splits_target_into_outputs() -> None:
    assert SIG.inputs.names == ["age", "income", "plan", "active", "signup", "note"]  # type: ignore[union-attr]
    assert isinstance(SIG.outputs, Schema) and SIG.outputs.names == ["churned"]
    assert SIG.is_tabular and SIG.input_names[0] == "age"


def test_from_a_yaml_data_contract(tmp_path: Path) -> None:
    path = SCHEMA.save(tmp_path / "contract.yaml")
    sig = ModelSignature.from_schema(Schema.load(path))
    assert sig == SIG


def test_dict_round_trip_through_json() -> None:
    for sig in (
        SIG,
        ModelSignature(TensorSpec("float32", (-1, 3, 4)), TensorSpec("int64", (-1,))),
        ModelSignature((TensorSpec("float32", (-1, 2), "a"), TensorSpec("int64", (-1, 1), "b"))),
    ):
        assert ModelSignature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig


@pytest.mark.parametrize(
    "data",
    [
        {"inputs": {"type": "graph"}},
        {"outputs": None},
        {"inputs": {"type": "tensor", "tensors": []}},
        {"inputs": {"type": "tensor", "tensors": [{"dtype": "object", "shape": [-1]}]}},
        {"inputs": {"type": "tensor", "tensors": [{"dtype": "float32", "shape": [-2]}]}},
    ],
)
def test_from_dict_refuses_malformed(data: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        ModelSignature.from_dict(data)


def test_several_tensors_need_distinct_names() -> None:
    with pytest.raises(InvalidArgument, match="distinct names"):
        ModelSignature((TensorSpec("float32", (-1,)), TensorSpec("float32", (-1,))))


def test_infer_from_dataframe_and_output() -> None:
    sig = infer_signature(_rows(), np.array([0, 1]))
    assert isinstance(sig.inputs, Schema)
    types = {c.name: c.type for c in sig.inputs}
    assert types["age"] == ColumnType.INTEGER and types["income"] == ColumnType.FLOAT
    assert types["active"] == ColumnType.BOOLEAN and types["signup"] == ColumnType.DATETIME
    assert sig.inputs.column("note").nullable and not sig.inputs.column("age").nullable
    assert all(c.categories is None and not c.unique for c in sig.inputs)  # an example is small
    assert sig.outputs == TensorSpec("int64", (-1,))


def test_infer_from_numpy_records_dicts_and_tensors() -> None:
    sig = infer_signature(np.zeros((3, 2)))
    assert isinstance(sig.inputs, Schema) and sig.inputs.names == ["0", "1"]
    assert infer_signature([{"a": 1, "b": "x"}]).input_names == ["a", "b"]
    assert infer_signature({"a": [1.0, 2.0], "b": [1, 2]}).input_names == ["a", "b"]
    assert infer_signature(np.zeros((2, 3, 4), dtype=np.float32)).inputs == TensorSpec(
        "float32", (-1, 3, 4)
    )
    multi = infer_signature({"img": np.zeros((2, 3, 3)), "meta": np.zeros((2, 1))})
    assert multi.input_names == ["img", "meta"]
    out = infer_signature(_rows(), pd.Series([0.1, 0.2], name="score")).outputs
    assert isinstance(out, Schema) and out.names == ["score"]


def test_infer_refuses_what_it_cannot_describe() -> None:
    with pytest.raises(InvalidArgument):
        infer_signature(object())
    with pytest.raises(InvalidArgument):
        infer_signature(np.array([object(), object()]))


# --- tables: order, coercion, problems -----------------------------------------------------------


def test_prepare_reorders_columns_to_the_signature() -> None:
    rows = _rows()
    shuffled = rows[list(reversed(rows.columns))]
    out = SIG.prepare(shuffled)
    assert list(out.columns) == SIG.input_names
    assert out["age"].tolist() == [31, 45]


def test_prepare_coerces_safely() -> None:
    rows = _rows().assign(
        age=[31.0, 45.0],  # integral floats -> integers
        income=[1200, 3000],  # integers -> floats
        signup=["2024-01-02T00:00:00", "2024-03-04"],  # ISO text -> datetimes
        plan=pd.Categorical(["basic", "pro"]),
    )
    out = SIG.prepare(rows)
    assert out["age"].dtype == np.int64 and out["age"].tolist() == [31, 45]
    assert out["income"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(out["signup"])


def test_prepare_lists_every_problem() -> None:
    bad = _rows().drop(columns=["plan", "signup"])
    bad["age"] = [31.5, 40.0]  # fractional
    bad["active"] = ["yes", "no"]  # text for a boolean
    bad["extra1"] = 1
    bad["extra2"] = "x"
    with pytest.raises(SignatureMismatch) as info:
        SIG.prepare(bad)
    problems = {p["column"]: p for p in info.value.problems}
    assert set(problems) == {"plan", "signup", "age", "active", "extra1", "extra2"}
    assert problems["plan"]["got"] == "missing" and problems["plan"]["expected"] == "categorical"
    assert "fractional" in str(problems["age"]["got"]) and "31.5" in str(problems["age"]["got"])
    assert problems["age"]["expected"] == "integer"
    assert problems["extra1"]["got"] == "int64"
    assert all(set(p) == {"column", "expected", "got"} for p in info.value.problems)
    message = str(info.value)
    assert "6 problems" in message and "column 'plan'" in message and "column 'extra2'" in message
    assert info.value.code == "SIGNATURE_MISMATCH"


@pytest.mark.parametrize(
    ("column", "values", "got"),
    [
        ("age", ["3", "4"], "str"),  # digits as text are not silently numbers
        ("age", [True, False], "bool"),
        ("income", ["1.5", "2"], "str"),
        ("note", [1, 2], "int64"),
        ("signup", ["yesterday", "2024-01-01"], "not ISO datetimes"),
        ("plan", [1.5, 2.5], "float64"),
    ],
)
def test_prepare_refuses_lossy_conversions(column: str, values: list[object], got: str) -> None:
    rows = _rows().assign(**{column: values})
    with pytest.raises(SignatureMismatch) as info:
        SIG.prepare(rows)
    assert [p["column"] for p in info.value.problems] == [column]
    assert got in str(info.value.problems[0]["got"])


def test_nulls_only_where_the_contract_allows_them() -> None:
    ok = SIG.prepare(_rows().assign(income=[None, 1.0], note=[None, None]))
    assert np.isnan(ok["income"].iloc[0])
    with pytest.raises(SignatureMismatch) as info:
        SIG.prepare(_rows().assign(age=[1, None]))
    assert info.value.problems == [
        {"column": "age", "expected": "integer without nulls", "got": "1 null value"}
    ]


def test_extra_columns_dropped_on_request_or_by_the_schema() -> None:
    rows = _rows().assign(unused=1)
    assert list(SIG.prepare(rows, extra="drop").columns) == SIG.input_names
    loose = ModelSignature(SIG.inputs.replace(allow_extra_columns=True))  # type: ignore[union-attr]
    assert "unused" not in loose.prepare(rows).columns
    with pytest.raises(InvalidArgument):
        SIG.prepare(rows, extra="keep")  # type: ignore[arg-type]


def test_records_dict_of_columns_one_row_and_numpy() -> None:
    sig = ModelSignature(
        Schema(
            columns=(
                ColumnSchema("x", ColumnType.FLOAT, nullable=True),
                ColumnSchema("n", ColumnType.INTEGER),
            )
        )
    )
    records = [{"n": 1, "x": 0.5}, {"x": None, "n": 2}]  # keys in any order, JSON nulls
    out = sig.prepare(records)
    assert list(out.columns) == ["x", "n"] and out["n"].tolist() == [1, 2]
    assert np.isnan(out["x"].iloc[1])
    assert sig.prepare({"x": [1, 2], "n": [3, 4]})["x"].tolist() == [1.0, 2.0]
    one = sig.prepare({"x": 1.5, "n": 7})
    assert len(one) == 1 and one["n"].iloc[0] == 7
    arr = sig.prepare(np.array([[0.5, 1.0], [1.5, 2.0]]))  # columns in the signature's order
    assert arr["n"].tolist() == [1, 2]
    with pytest.raises(SignatureMismatch, match="a table of 2 columns"):
        sig.prepare(np.zeros((2, 3)))
    with pytest.raises(SignatureMismatch, match="a table"):
        sig.prepare("x=1")


def test_repeated_column_names_are_a_problem() -> None:
    sig = ModelSignature(Schema(columns=(ColumnSchema("a", ColumnType.INTEGER),)))
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(SignatureMismatch, match="repeated"):
        sig.prepare(frame)


def test_nullable_integers_become_floats_with_nan() -> None:
    sig = ModelSignature(Schema(columns=(ColumnSchema("a", ColumnType.INTEGER, nullable=True),)))
    out = sig.prepare(pd.DataFrame({"a": pd.array([1, None], dtype="Int64")}))
    assert out["a"].dtype == np.float64 and np.isnan(out["a"].iloc[1])


# --- tensors -----------------------------------------------------------------------------------


def test_tensor_shape_and_dtype() -> None:
    sig = ModelSignature(TensorSpec("float32", (-1, 3)))
    out = sig.prepare(np.ones((5, 3)))  # float64 -> float32: same kind
    assert out.dtype == np.float32 and out.shape == (5, 3)
    assert sig.prepare([[1, 2, 3]]).dtype == np.float32  # ints widen
    with pytest.raises(SignatureMismatch) as info:
        sig.prepare(np.ones((5, 4)))
    assert info.value.problems[0]["expected"] == "float32[?, 3]"
    assert info.value.problems[0]["got"] == "float64[5, 4]"
    with pytest.raises(SignatureMismatch):
        sig.prepare(np.array([["a", "b", "c"]]))
    with pytest.raises(SignatureMismatch):
        sig.prepare(np.ones(3))  # wrong rank


def test_tensor_float_to_int_only_when_integral() -> None:
    sig = ModelSignature(TensorSpec("int64", (-1,)))
    assert sig.prepare(np.array([1.0, 2.0])).dtype == np.int64
    with pytest.raises(SignatureMismatch, match="fractional"):
        sig.prepare(np.array([1.5]))


def test_several_tensors_by_name() -> None:
    sig = ModelSignature((TensorSpec("float32", (-1, 2), "a"), TensorSpec("int64", (-1, 1), "b")))
    out = sig.prepare({"a": np.ones((2, 2)), "b": np.ones((2, 1), dtype=np.int32)})
    assert out["a"].dtype == np.float32 and out["b"].dtype == np.int64
    with pytest.raises(SignatureMismatch) as info:
        sig.prepare({"a": np.ones((2, 3)), "c": np.ones((2, 1))})
    assert {p["column"] for p in info.value.problems} == {"a", "b", "c"}
    assert list(sig.prepare({"a": np.ones((1, 2)), "b": [[1]], "c": 0}, extra="drop")) == [
        "a",
        "b",
    ]


def test_ragged_input_is_a_mismatch_not_a_crash() -> None:
    table = ModelSignature(Schema(columns=(ColumnSchema("a", ColumnType.FLOAT),)))
    for data in ([[1, 2], [3]], {"a": [1, 2], "b": [1]}, None, 3):
        with pytest.raises(SignatureMismatch):
            table.prepare(data)
    with pytest.raises(SignatureMismatch, match="unreadable"):
        ModelSignature(TensorSpec("float32", (-1, 2))).prepare([[1, 2], [3]])


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["age", "income", "plan", "signup", "zz"]), _JSON),
        max_size=4,
    )
    | st.dictionaries(st.sampled_from(["age", "income", "active", "note"]), _JSON)
    | _JSON
)
def test_any_json_input_fits_or_is_a_mismatch(data: object) -> None:
    """What a server receives: whatever it is, the answer is data or SignatureMismatch (a 400),
    never another exception (a 500)."""
    try:
        out = SIG.prepare(data)
    except SignatureMismatch as exc:
        assert exc.problems
    else:
        assert list(out.columns) == SIG.input_names


@settings(max_examples=300, deadline=None)
@given(_JSON, st.sampled_from(["float32", "int64", "int8", "bool", "str"]))
def test_any_json_tensor_fits_or_is_a_mismatch(data: object, dtype: str) -> None:
    sig = ModelSignature(TensorSpec(dtype, (-1, 2)))
    try:
        out = sig.prepare(data)
    except SignatureMismatch as exc:
        assert exc.problems
    else:
        assert out.shape[1:] == (2,)
