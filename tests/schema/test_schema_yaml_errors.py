"""Schema files with mistakes: each error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml.errors import InvalidSchema
from loopml.schema import Schema

GOOD = """\
format: 1
description: customers
target: churned
unique_key: [id]
allow_extra_columns: false
columns:
  - name: id
    type: integer
    unique: true

  - name: age
    type: integer
    nullable: true
    min: 18
    max: 99

  - name: plan
    type: categorical
    categories: [basic, pro]

  - name: churned
    type: boolean
"""


def load_edited(tmp_path: Path, old: str, new: str) -> Schema:
    assert old in GOOD
    path = tmp_path / "schema.yaml"
    path.write_text(GOOD.replace(old, new, 1))
    return Schema.load(path)


def test_good_file_loads(tmp_path: Path) -> None:
    schema = load_edited(tmp_path, "", "")
    assert schema.names == ["id", "age", "plan", "churned"]
    assert not schema.column("id").nullable  # nullable defaults to false


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    type: integer\n    nullable: true",
            "    type: integr\n    nullable: true",
            "line 12: column 'age': type 'integr' is not one of integer, float, boolean, "
            "categorical, datetime, text (did you mean 'integer'?)",
        ),
        (
            "    unique: true",
            "    uniqe: true",
            "line 9: column 'id': unknown field 'uniqe' (did you mean 'unique'?)",
        ),
        ("    max: 99", "    max: 9", "line 14: column 'age': min 18 is above max 9"),
        ("    max: 99", "    max: lots", "line 15: column 'age': 'lots' is not a number"),
        ("target: churned", "target: churn", "line 3: target 'churn' is not a column"),
        ("unique_key: [id]", "unique_key: [idd]", "line 4: unique_key column 'idd'"),
        ("format: 1", "fromat: 1", "line 1: unknown field 'fromat' (did you mean 'format'?)"),
        (
            "allow_extra_columns: false",
            "allow_extra_columns: maybe",
            "line 5: allow_extra_columns must be true or false",
        ),
        (
            "  - name: churned\n",
            "  - name: age\n",
            "line 21: column 'age': an earlier column has this name too",
        ),
        (
            "  - name: plan\n    type: categorical\n",
            "  - name: plan\n",
            "line 17: column 'plan': type is missing",
        ),
        (
            "    categories: [basic, pro]",
            "    categories: [basic, pro]\n    min: 1",
            "line 20: column 'plan': min is set, but only integer, float and datetime",
        ),
        (
            "    nullable: true\n",
            "    nullable: true\n    nullable: false\n",
            "line 14: field 'nullable' is given twice",
        ),
        ("    categories: [basic, pro]", "    categories: [basic, pro", "line 21: not valid YAML"),
        ("    min: 18", "   min: 18", "line 14: not valid YAML"),
        (
            "  - name: plan",
            "  - name: plan\n    severity: {range: fatal}",
            "line 18: column 'plan': severity 'fatal' is not one of error, warning",
        ),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    with pytest.raises(InvalidSchema) as info:
        load_edited(tmp_path, old, new)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "schema.yaml")), message
    assert expected in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "a schema must be a mapping"),
        ("description: x\n", "columns is missing"),
        ("columns: {a: integer}\n", "line 1: columns must be a list"),
        ("columns:\n  - just-a-name\n", "line 2: column #1: a column must be a mapping"),
        (
            "columns:\n  - name: a\n    type: !!python/object:os.system x\n",
            "line 3: not valid YAML",
        ),
        ("format: 99\ncolumns: []\n", "line 1: format 99 is not one this loopml reads"),
    ],
)
def test_malformed_documents(text: str, expected: str) -> None:
    with pytest.raises(InvalidSchema) as info:
        Schema.from_yaml(text, source="contract.yaml")
    assert str(info.value).startswith("contract.yaml"), str(info.value)
    assert expected in str(info.value), str(info.value)


def test_from_dict_names_the_column() -> None:
    with pytest.raises(InvalidSchema, match=r"^schema: column 'a': unknown field 'kind'"):
        Schema.from_dict({"columns": [{"name": "a", "type": "text", "kind": "x"}]})


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidSchema, match=r"s\.yaml"):
        Schema.load(path)
