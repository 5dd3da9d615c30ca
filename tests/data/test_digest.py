"""The content digest: one digest per rows-and-columns, whatever the layout; any change shows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.data.digest import ContentHasher, canonical_schema, logical_type
from loopml.data.sources import open_source


def digest(data: Any, **kwargs: Any) -> str:
    """The digest of a table or file, streamed batch by batch as log_dataset does."""
    source = open_source(data, **kwargs)
    hasher: ContentHasher | None = None
    for batch in source.batches():
        if hasher is None:
            hasher = ContentHasher(source.schema or batch.schema)
        hasher.update(batch)
    assert hasher is not None
    return hasher.hexdigest()


def table_digest(table: pa.Table, cuts: list[int] | None = None) -> str:
    """The digest of ``table`` fed in slices that end at ``cuts``."""
    hasher = ContentHasher(table.schema)
    start = 0
    for end in [*(cuts or []), table.num_rows]:
        hasher.update(table.slice(start, end - start))
        start = end
    return hasher.hexdigest()


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "city": ["Paris", "Lyon", None, "Paris"],
            "score": [0.5, np.nan, 2.25, -1.0],
            "ok": [True, False, True, True],
        }
    )


def test_the_same_rows_give_one_digest_across_files_and_frames(
    frame: pd.DataFrame, tmp_path: Path
) -> None:
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    frame.to_parquet(tmp_path / "d.parquet", row_group_size=1)
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    expected = digest(frame)
    assert len(expected) == 64
    assert digest(tmp_path / "d.csv") == expected
    assert digest(tmp_path / "d.tsv") == expected
    assert digest(tmp_path / "d.parquet") == expected
    assert digest(tmp_path / "d.jsonl") == expected
    assert digest(pa.Table.from_pandas(frame, preserve_index=False)) == expected
    assert digest(frame.to_dict(orient="list")) == expected


def test_polars_gives_the_digest_of_pandas(frame: pd.DataFrame) -> None:
    pl = pytest.importorskip("polars")
    assert digest(pl.from_pandas(frame)) == digest(frame)
    assert digest(pl.from_pandas(frame).lazy()) == digest(frame)


def test_physical_types_do_not_show(frame: pd.DataFrame) -> None:
    expected = digest(frame)
    assert digest(frame.astype({"id": "int32"})) == expected
    assert digest(frame.astype({"id": "uint16"})) == expected
    assert digest(frame.astype({"id": "Int64"})) == expected
    assert digest(frame.astype({"score": "float32"})) == expected  # values exact in float32
    assert digest(frame.astype({"city": "category"})) == expected
    assert digest(frame.astype({"city": "string"})) == expected
    table = pa.Table.from_pandas(frame, preserve_index=False)
    large = table.cast(pa.schema([pa.field(f.name, _large(f.type)) for f in table.schema]))
    assert digest(large) == expected
    assert digest(table.combine_chunks().to_batches(max_chunksize=1)[0]) != expected  # 1 row


def _large(t: pa.DataType) -> pa.DataType:
    return pa.large_string() if pa.types.is_string(t) else t


def test_timestamp_units_do_not_show_but_the_time_zone_does() -> None:
    naive = pd.DataFrame({"t": pd.date_range("2024-03-01", periods=3, freq="h")})
    utc = naive.assign(t=naive["t"].dt.tz_localize("UTC"))
    paris = utc.assign(t=utc["t"].dt.tz_convert("Europe/Paris"))
    as_ms = pa.table({"t": pa.array(naive["t"]).cast(pa.timestamp("ms"))})
    assert digest(as_ms) == digest(naive)
    assert digest(utc) != digest(naive)
    assert digest(paris) != digest(utc)  # the same instants, shown in another zone
    assert logical_type(pa.timestamp("us", "UTC")) == "timestamp[UTC]"
    assert logical_type(pa.timestamp("s")) == "timestamp"
    assert canonical_schema(as_ms.schema).field("t").type == pa.timestamp("ns")


def test_dates_and_all_null_columns() -> None:
    days = pd.DataFrame({"d": [dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)]})
    assert digest(days) == digest(pa.table({"d": pa.array(days["d"], pa.date64())}))
    nulls = pd.DataFrame({"n": [None, None], "x": [1, 2]})
    same = pa.table({"n": pa.nulls(2), "x": pa.array([1, 2], pa.int8())})
    assert digest(nulls) == digest(same)
    assert logical_type(same.schema.field("n").type) == "null"
    typed = pa.table({"n": pa.nulls(2, pa.float64()), "x": [1, 2]})
    assert digest(typed) != digest(nulls)  # a typed column of nulls is another column type
    assert digest(pa.table({"n": pa.nulls(3), "x": [1, 2, 3]})) != digest(nulls)


def _one_change(frame: pd.DataFrame) -> dict[str, pd.DataFrame | pa.Table]:
    changed = frame.copy()
    changed.loc[1, "city"] = "Lille"
    return {
        "one value": changed,
        "one float": frame.assign(score=frame["score"].replace(0.5, 0.5000001)),
        "column order": frame[["city", "id", "score", "ok"]],
        "column name": frame.rename(columns={"score": "Score"}),
        "extra row": pd.concat([frame, frame.iloc[[0]]], ignore_index=True),
        "one row fewer": frame.iloc[:3],
        "row order": frame.iloc[[1, 0, 2, 3]].reset_index(drop=True),
        "type": frame.astype({"id": "float64"}),
        "extra column": frame.assign(extra=0),
    }


def test_any_change_of_data_changes_the_digest(frame: pd.DataFrame) -> None:
    seen = {digest(frame): "original"}
    for what, changed in _one_change(frame).items():
        d = digest(changed)
        assert d not in seen, f"{what} gives the digest of {seen.get(d)}"
        seen[d] = what


def test_null_nan_zero_and_empty_are_four_values() -> None:
    floats = [pa.table({"x": pa.array([1.0, v], pa.float64())}) for v in (None, np.nan, 0.0)]
    assert len({digest(t) for t in floats}) == 3
    texts = [pa.table({"s": pa.array(["a", v])}) for v in (None, "", "0")]
    assert len({digest(t) for t in texts}) == 3
    bools = [pa.table({"b": pa.array([True, v])}) for v in (None, False)]
    assert len({digest(t) for t in bools}) == 2
    ints = [pa.table({"i": pa.array([1, v], pa.int64())}) for v in (None, 0)]
    assert len({digest(t) for t in ints}) == 2


def test_every_nan_is_the_same_nan() -> None:
    quiet = np.array([1.0, np.nan])
    signed = np.array([1.0, -np.nan])  # what inf - inf gives on x86: another bit pattern
    assert quiet.view(np.uint64)[1] != signed.view(np.uint64)[1]
    tables = [pa.table({"x": pa.array(v, from_pandas=False)}) for v in (quiet, signed)]
    assert digest(tables[0]) == digest(tables[1])
    assert digest(pa.table({"x": pa.array(quiet.astype(np.float32), from_pandas=False)})) == (
        digest(tables[0])
    )


def test_string_boundaries_show() -> None:
    # the same bytes cut into other values: ["ab", "c"] vs ["a", "bc"]
    assert digest(pa.table({"s": ["ab", "c"]})) != digest(pa.table({"s": ["a", "bc"]}))
    assert digest(pa.table({"b": [b"ab", b"c"]})) != digest(pa.table({"b": [b"a", b"bc"]}))


def test_nested_and_decimal_values_hash_by_value() -> None:
    import decimal

    lists = pa.table({"l": pa.array([[1, 2], None, []])})
    assert table_digest(lists) == table_digest(lists, [1, 2])
    assert table_digest(lists) != table_digest(pa.table({"l": pa.array([[1, 2], [], None])}))
    dec = pa.table({"d": pa.array([decimal.Decimal("1.50"), None], pa.decimal128(5, 2))})
    other = pa.table({"d": pa.array([decimal.Decimal("1.51"), None], pa.decimal128(5, 2))})
    assert table_digest(dec) != table_digest(other)


def test_a_batch_with_other_columns_is_refused() -> None:
    hasher = ContentHasher(pa.schema([("a", pa.int64())]))
    with pytest.raises(ValueError, match="differ"):
        hasher.update(pa.table({"b": [1]}))


def test_the_digest_of_no_rows_is_stable() -> None:
    empty = ContentHasher(pa.schema([("a", pa.int64())]))
    assert empty.num_rows == 0
    assert empty.hexdigest() == ContentHasher(pa.schema([("a", pa.int32())])).hexdigest()


_values = st.one_of(st.none(), st.integers(-(2**40), 2**40))
_texts = st.one_of(st.none(), st.text(max_size=6))
_floats = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def tables_and_cuts(draw: st.DrawFn) -> tuple[pa.Table, list[int]]:
    n = draw(st.integers(1, 40))
    table = pa.table(
        {
            "i": pa.array(draw(st.lists(_values, min_size=n, max_size=n)), pa.int64()),
            "s": pa.array(draw(st.lists(_texts, min_size=n, max_size=n)), pa.string()),
            "f": pa.array(draw(st.lists(_floats, min_size=n, max_size=n)), pa.float64()),
            "b": pa.array(draw(st.lists(st.booleans() | st.none(), min_size=n, max_size=n))),
        }
    )
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=6))))
    return table, cuts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables_and_cuts())
def test_any_batch_split_gives_the_same_digest(case: tuple[pa.Table, list[int]]) -> None:
    table, cuts = case
    whole = table_digest(table)
    assert table_digest(table, cuts) == whole
    # a dictionary-encoded string column and narrower ints are the same data
    narrow = pa.table(
        {
            "i": table["i"],
            "s": pa.compute.dictionary_encode(table["s"]),
            "f": table["f"],
            "b": table["b"],
        }
    )
    assert table_digest(narrow, cuts[::-1][:1]) == whole


@settings(max_examples=25, deadline=None)
@given(tables_and_cuts(), st.data())
def test_changing_one_value_changes_the_digest(
    case: tuple[pa.Table, list[int]], data: st.DataObject
) -> None:
    table, cuts = case
    row = data.draw(st.integers(0, table.num_rows - 1))
    values = table["i"].to_pylist()
    values[row] = None if values[row] is not None else 7
    changed = table.set_column(0, "i", pa.array(values, pa.int64()))
    assert table_digest(changed, cuts) != table_digest(table)


def test_parquet_row_groups_do_not_show(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    table = pa.table({"x": rng.normal(size=1000), "k": rng.choice(["a", "b"], 1000)})
    pq.write_table(table, tmp_path / "one.parquet")
    pq.write_table(table, tmp_path / "many.parquet", row_group_size=37)
    assert digest(tmp_path / "one.parquet") == digest(tmp_path / "many.parquet")
    assert digest(tmp_path / "many.parquet", batch_rows=10) == digest(table)
