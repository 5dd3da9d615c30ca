"""The schema model: construction checks, editing helpers, dict/YAML/file round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import loopml.schema
from loopml.errors import InvalidArgument, InvalidSchema
from loopml.schema import ColumnSchema, ColumnType, Schema, Severity


def make_schema() -> Schema:
    return Schema(
        columns=(
            ColumnSchema("id", ColumnType.INTEGER, unique=True, description="customer id"),
            ColumnSchema("age", "integer", nullable=True, min=18, max=99),  # type: ignore[arg-type]
            ColumnSchema("income", ColumnType.FLOAT, min=0.0, severity={"range": "warning"}),
            ColumnSchema("plan", ColumnType.CATEGORICAL, categories=("basic", "pro")),
            ColumnSchema("signup", ColumnType.DATETIME, min=datetime(2020, 1, 1, tzinfo=UTC)),
            ColumnSchema("note", ColumnType.TEXT, nullable=True),
            ColumnSchema("churned", ColumnType.BOOLEAN),
        ),
        target="churned",
        unique_key=("id",),
        description="customers",
        severity={"categories": "warning"},
    )


def test_public_surface_is_pinned() -> None:
    assert loopml.schema.__all__ == sorted(loopml.schema.__all__)
    assert set(loopml.schema.__all__) == {
        "ColumnChange",
        "ColumnSchema",
        "ColumnType",
        "Schema",
        "SchemaDiff",
        "Severity",
        "ValidationReport",
        "Validator",
        "Violation",
        "conform",
        "diff_schemas",
        "infer_schema",
        "validate",
    }


def test_helpers() -> None:
    schema = make_schema()
    assert schema.names == ["id", "age", "income", "plan", "signup", "note", "churned"]
    assert schema.feature_names == schema.names[:-1]
    assert schema.column("age").max == 99
    assert "plan" in schema and "nope" not in schema
    assert len(schema) == 7 and [c.name for c in schema] == schema.names
    with pytest.raises(InvalidArgument, match=r"no column 'agee'.*did you mean 'age'"):
        schema.column("agee")


def test_severity_resolution() -> None:
    schema = make_schema()
    assert schema.severity_of("range", "income") == Severity.WARNING  # column override
    assert schema.severity_of("categories", "plan") == Severity.WARNING  # schema override
    assert schema.severity_of("range", "age") == Severity.ERROR  # default
    assert schema.severity_of("unique_key") == Severity.ERROR


def test_editing() -> None:
    schema = make_schema()
    wider = schema.update_column("age", max=120)
    assert wider.column("age").max == 120 and schema.column("age").max == 99
    added = schema.with_column(ColumnSchema("city", ColumnType.TEXT), after="age")
    assert added.names[:3] == ["id", "age", "city"]
    replaced = schema.with_column(ColumnSchema("age", ColumnType.FLOAT))
    assert replaced.names == schema.names and replaced.column("age").type == ColumnType.FLOAT
    dropped = schema.without_column("churned").without_column("id")
    assert dropped.target is None and dropped.unique_key == ()
    assert schema.select(["plan", "id"]).names == ["plan", "id"]
    assert schema.replace(allow_extra_columns=True).allow_extra_columns


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"type": "integr"}, "type 'integr' is not one of integer, .*did you mean 'integer'"),
        ({"type": "text", "min": 1}, "only integer, float and datetime columns have a range"),
        ({"type": "integer", "min": 5, "max": 1}, "min 5 is above max 1"),
        ({"type": "integer", "min": "x"}, "'x' is not a number"),
        ({"type": "integer", "min": True}, "True is not a number"),
        ({"type": "datetime", "min": "yesterday"}, "not an ISO datetime"),
        ({"type": "text", "categories": ("a",)}, "not categorical"),
        ({"type": "categorical", "categories": ("a", "a")}, "categories repeat: a"),
        ({"type": "categorical", "categories": "ab"}, "must be a list"),
        ({"type": "integer", "nullable": "yes"}, "nullable must be true or false"),
        ({"type": "integer", "severity": {"rnage": "warning"}}, "rule 'rnage'.*did you mean"),
        ({"type": "integer", "severity": {"range": "fatal"}}, "severity 'fatal' is not one of"),
    ],
)
def test_bad_columns(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidSchema, match=match):
        ColumnSchema("x", **kwargs)  # type: ignore[arg-type]


def test_bad_schemas() -> None:
    a = ColumnSchema("a", ColumnType.TEXT)
    with pytest.raises(InvalidSchema, match="column 'a': an earlier column has this name too"):
        Schema((a, a))
    with pytest.raises(InvalidSchema, match="target 'b' is not a column"):
        Schema((a,), target="b")
    with pytest.raises(InvalidSchema, match="unique_key column 'b'"):
        Schema((a,), unique_key=("b",))
    with pytest.raises(InvalidSchema, match="format 2 is not one this loopml reads"):
        Schema((a,), format=2)


def test_schema_is_hashable_and_frozen() -> None:
    schema = make_schema()
    assert hash(schema) == hash(make_schema()) and schema == make_schema()
    with pytest.raises(AttributeError):
        schema.target = "id"  # type: ignore[misc]


def test_dict_round_trip_is_json_and_stable() -> None:
    schema = make_schema()
    data = schema.to_dict()
    text = json.dumps(data)
    assert list(data) == [
        "format",
        "description",
        "target",
        "unique_key",
        "allow_extra_columns",
        "severity",
        "columns",
    ]
    assert data["columns"][4]["min"] == "2020-01-01T00:00:00+00:00"
    assert Schema.from_dict(json.loads(text)) == schema
    assert json.dumps(Schema.from_dict(data).to_dict()) == text


def test_yaml_round_trip_is_readable() -> None:
    schema = make_schema()
    text = schema.to_yaml()
    assert "!!" not in text and "python" not in text
    assert "  - name: age\n    type: integer\n" in text
    assert "categories: [basic, pro]" in text
    assert Schema.from_yaml(text) == schema
    assert yaml.safe_load(text) == json.loads(json.dumps(schema.to_dict()))


def test_yaml_edited_by_hand(tmp_path: Path) -> None:
    path = make_schema().save(tmp_path / "schema.yaml")
    text = path.read_text()
    text = text.replace("max: 99", "max: 120")
    text = text.replace(
        "categories: [basic, pro]", "categories:\n      - basic\n      - pro\n      - team"
    )
    # Unquoted ISO dates are YAML timestamps: they must load as datetimes too.
    text = text.replace("min: '2020-01-01T00:00:00+00:00'", "min: 2021-06-01")
    path.write_text(text)
    schema = Schema.load(path)
    assert schema.column("age").max == 120
    assert schema.column("plan").categories == ("basic", "pro", "team")
    assert schema.column("signup").min == datetime(2021, 6, 1)


def test_save_json_and_load(tmp_path: Path) -> None:
    schema = make_schema()
    path = schema.save(tmp_path / "sub" / "schema.json")
    assert json.loads(path.read_text())["target"] == "churned"
    assert Schema.load(path) == schema
    assert [p.name for p in path.parent.iterdir()] == ["schema.json"]  # no temporary left


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidSchema, match=r"cannot read schema file .*nope\.yaml"):
        Schema.load(tmp_path / "nope.yaml")


_names = st.text(st.characters(categories=("L", "N"), max_codepoint=0x24F), min_size=1, max_size=8)


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    names = draw(st.lists(_names, min_size=1, max_size=6, unique=True))
    cols = []
    for name in names:
        ctype = draw(st.sampled_from(list(ColumnType)))
        kwargs: dict[str, object] = {"nullable": draw(st.booleans())}
        if ctype in (ColumnType.INTEGER, ColumnType.FLOAT):
            lo = draw(st.integers(-1000, 1000))
            kwargs.update(min=lo, max=lo + draw(st.integers(0, 1000)))
            if ctype == ColumnType.FLOAT:
                kwargs.update(min=lo + 0.5, max=lo + 1.5)
        if ctype == ColumnType.CATEGORICAL and draw(st.booleans()):
            kwargs["categories"] = tuple(draw(st.lists(_names, max_size=5, unique=True)))
        if ctype == ColumnType.DATETIME and draw(st.booleans()):
            kwargs["max"] = draw(st.datetimes(timezones=st.sampled_from([None, UTC])))
        if draw(st.booleans()):
            kwargs["severity"] = {draw(st.sampled_from(["range", "type"])): "warning"}
        cols.append(ColumnSchema(name, ctype, **kwargs))  # type: ignore[arg-type]
    return Schema(
        tuple(cols),
        target=draw(st.sampled_from([None, *names])),
        unique_key=tuple(draw(st.lists(st.sampled_from(names), unique=True, max_size=2))),
        allow_extra_columns=draw(st.booleans()),
        description=draw(st.one_of(st.none(), st.text(max_size=20))),
    )


def test_yaml_keeps_unicode_line_breaks() -> None:
    for text in ("\x85", "a\x85b", "\u2028x", "x\u2029", "tab\there"):
        schema = Schema((ColumnSchema("a", "integer"),), description=text)
        assert Schema.from_yaml(schema.to_yaml()).description == text


@given(schemas())
def test_round_trips_property(schema: Schema) -> None:
    assert Schema.from_dict(json.loads(json.dumps(schema.to_dict()))) == schema
    assert Schema.from_yaml(schema.to_yaml()) == schema
