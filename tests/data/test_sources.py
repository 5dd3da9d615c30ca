"""Sources: tables, files in every format on any fsspec URL, SQL queries; and clear errors."""

from __future__ import annotations

import bz2
import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import loopml
from loopml.data import sources
from loopml.data.datasets import load_dataset, log_dataset
from loopml.data.digest import canonicalize
from loopml.data.sources import Source, SqlQuery, open_source
from loopml.errors import InvalidArgument, InvalidData


def read(source: Source) -> pa.Table:
    """All rows of a source, in canonical types (large strings, int64...) to compare them."""
    batches = list(source.batches())
    return canonicalize(pa.Table.from_batches(batches)).replace_schema_metadata(None)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [1, 2, 3], "city": ["Paris", None, "Lyon"], "score": [0.5, 1.5, np.nan]}
    )


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


# -- tables ----------------------------------------------------------------------------------


def test_tables_of_every_kind(frame: pd.DataFrame) -> None:
    expected = canonicalize(pa.Table.from_pandas(frame, preserve_index=False))
    expected = expected.replace_schema_metadata(None)
    for data in (
        frame,
        pa.Table.from_pandas(frame, preserve_index=False),
        pa.RecordBatch.from_pandas(frame, preserve_index=False),
        frame.to_dict(orient="list"),
    ):
        source = open_source(data)
        assert source.parquet_path is None
        assert read(source).equals(expected), type(data)
    assert "3 rows x 3 columns" in open_source(frame).description


def test_a_table_streams_in_batches(frame: pd.DataFrame) -> None:
    batches = list(open_source(frame, batch_rows=2).batches())
    assert [b.num_rows for b in batches] == [2, 1]


def test_unsupported_objects_are_refused() -> None:
    for thing in (42, [1, 2, 3], b"a,b\n1,2", object()):
        with pytest.raises(InvalidArgument, match="cannot make a dataset from a"):
            open_source(thing)


def test_a_frame_with_mixed_values_or_repeated_names_is_invalid() -> None:
    with pytest.raises(InvalidData, match=r"cannot be stored.*astype\(str\)"):
        open_source(pd.DataFrame({"m": [1, "x"]}))
    with pytest.raises(InvalidData, match="two columns named 'a'"):
        open_source(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(InvalidData, match="column with no name"):
        open_source(pa.table({"": [1]}))


# -- files -----------------------------------------------------------------------------------


def test_every_file_format_reads_the_same_rows(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_csv(tmp_path / "d.tsv", index=False, sep="\t")
    frame.to_parquet(tmp_path / "d.parquet")
    frame.to_parquet(tmp_path / "d.pq")
    frame.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    frame.to_json(tmp_path / "d.ndjson", orient="records", lines=True)
    with gzip.open(tmp_path / "d.csv.gz", "wt") as f:
        frame.to_csv(f, index=False)
    (tmp_path / "d.csv.bz2").write_bytes(bz2.compress((tmp_path / "d.csv").read_bytes()))
    (tmp_path / "data.txt").write_bytes((tmp_path / "d.csv").read_bytes())
    expected = read(open_source(frame))
    for name in ("d.csv", "d.tsv", "d.parquet", "d.pq", "d.jsonl", "d.ndjson", "d.csv.gz"):
        assert read(open_source(tmp_path / name)).equals(expected), name
    assert read(open_source(str(tmp_path / "d.csv.bz2"))).equals(expected)
    assert read(open_source(f"file://{tmp_path}/d.csv")).equals(expected)
    assert read(open_source(tmp_path / "data.txt", format="csv")).equals(expected)
    only = open_source(tmp_path / "d.parquet")
    assert only.parquet_path == str(tmp_path / "d.parquet")  # stored as is
    assert only.options == {"format": "parquet"}
    assert only.size_bytes == (tmp_path / "d.parquet").stat().st_size
    assert open_source(tmp_path / "d.csv").parquet_path is None
    assert open_source(tmp_path / "d.csv.gz").parquet_path is None


def test_a_parquet_file_written_with_a_pandas_index_has_the_frame_s_rows(
    frame: pd.DataFrame, tmp_path: Path, client: loopml.Client
) -> None:
    indexed = frame.set_axis([10, 5, 7])  # not a range: pandas stores it as a column
    indexed.to_parquet(tmp_path / "i.parquet")
    source = open_source(tmp_path / "i.parquet")
    assert source.schema is not None and source.schema.names == ["id", "city", "score"]
    assert source.parquet_path is None  # rewritten without the index column
    assert read(source).equals(read(open_source(frame)))
    a = log_dataset(indexed, "d", client=client)
    b = log_dataset(tmp_path / "i.parquet", "d", client=client)
    assert (a.version, b.version, b.num_columns) == (1, 1, 3)
    assert list(load_dataset(b, client=client).columns) == ["id", "city", "score"]


def test_csv_types_and_missing_values(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,c,d\n1,x,2024-01-02,true\n,,,\n3,NA,2024-01-03,false\n")
    table = read(open_source(tmp_path / "t.csv"))
    assert table.to_pydict()["a"] == [1, None, 3]
    assert table.to_pydict()["b"] == ["x", None, None]  # as pandas.read_csv reads them
    assert table.schema.field("c").type == pa.date32()
    assert table.schema.field("d").type == pa.bool_()


def test_a_memory_url(frame: pd.DataFrame) -> None:
    fs = fsspec.filesystem("memory")
    root = f"/loopml-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(f"{root}/d.csv", "wb") as f:
            f.write(frame.to_csv(index=False).encode())
        with fs.open(f"{root}/d.parquet", "wb") as f:
            frame.to_parquet(f)
        expected = read(open_source(frame))
        for url in (f"memory://{root}/d.csv", f"memory://{root}/d.parquet"):
            source = open_source(url)
            assert source.parquet_path is None  # a remote file is copied into the store
            assert source.description == url
            assert read(source).equals(expected)
        with pytest.raises(InvalidData, match="does not exist"):
            open_source(f"memory://{root}/nope.csv")
    finally:
        fs.rm(root, recursive=True)


def test_batches_can_be_read_again(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame.to_csv(tmp_path / "d.csv", index=False)
    source = open_source(tmp_path / "d.csv", batch_rows=1)
    first = [b.num_rows for b in source.batches()]
    assert first == [1, 1, 1]
    assert [b.num_rows for b in source.batches()] == first


# -- file errors -----------------------------------------------------------------------------


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "header.csv").write_text("a,b\n")
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n{"a": \n')
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    cases = {
        "nope.csv": r"file '.*nope\.csv' does not exist; check the path",
        "empty.csv": r"file '.*empty\.csv' is empty \(0 bytes\)",
        "header.csv": r"file '.*header\.csv' has no rows",
        "folder.csv": r"'.*folder\.csv' is a folder; pass one file",
        "bad.parquet": r"cannot read '.*bad\.parquet': .*(magic|Parquet)",
        "dup.csv": r"file '.*dup\.csv' has two columns named 'a'",
        "bad.jsonl": r"cannot read '.*bad\.jsonl': .*JSON",
        "ragged.csv": r"cannot read '.*ragged\.csv': .*columns",
    }
    for name, message in cases.items():
        with pytest.raises(InvalidData, match=message):
            open_source(tmp_path / name)


def test_unknown_formats_are_invalid_arguments(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a\n1\n")
    with pytest.raises(InvalidArgument, match=r"cannot tell the format of .*notes\.txt.*format="):
        open_source(tmp_path / "notes.txt")
    with pytest.raises(InvalidArgument, match="format must be one of"):
        open_source(tmp_path / "notes.txt", format="xlsx")


def test_a_column_that_changes_type_after_the_first_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: loopml.Client
) -> None:
    lines = ["id,amount"] + [f"{i},{i * 2}" for i in range(3000)] + ["3000,lots"]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(sources, "CSV_BLOCK_BYTES", 1024)  # types come from the first block
    source = open_source(tmp_path / "t.csv")  # the first block reads fine
    with pytest.raises(InvalidData, match=r"t\.csv'.*column 'amount'.*'lots'"):
        list(source.batches())
    with pytest.raises(InvalidData, match=r"column 'amount'"):
        log_dataset(tmp_path / "t.csv", "t", client=client)
    rows = "".join(f'{{"id": {i}, "amount": {i}}}\n' for i in range(3000))
    (tmp_path / "t.jsonl").write_text(rows + '{"id": 3000, "amount": "lots"}\n')
    with pytest.raises(InvalidData, match=r"t\.jsonl'.*Column\(/amount\) changed"):
        log_dataset(tmp_path / "t.jsonl", "t", client=client)
    assert client.list_datasets() == []


def test_an_empty_parquet_file_has_a_schema_but_no_version(
    tmp_path: Path, client: loopml.Client
) -> None:
    pd.DataFrame({"a": pd.Series([], dtype="int64")}).to_parquet(tmp_path / "e.parquet")
    source = open_source(tmp_path / "e.parquet")
    assert source.schema is not None and source.schema.names == ["a"]
    with pytest.raises(InvalidData, match="has no rows"):
        log_dataset(tmp_path / "e.parquet", "e", client=client)


# -- S3, against moto's server ---------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.slow  # a moto server and s3fs: about 3 s
def test_an_s3_url(frame: pd.DataFrame, s3_endpoint: str, client: loopml.Client) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"loopml-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="raw/d.csv", Body=frame.to_csv(index=False).encode())
    options: dict[str, Any] = {"endpoint_url": s3_endpoint, "skip_instance_cache": True}
    url = f"s3://{bucket}/raw/d.csv"
    source = open_source(url, storage_options=options)
    assert read(source).equals(read(open_source(frame)))
    version = log_dataset(url, "cities", storage_options=options, client=client)
    assert version.source == url
    assert version.digest == log_dataset(frame, "cities", client=client).digest
    with pytest.raises(InvalidData, match=r"s3://.*/raw/nope\.csv' does not exist"):
        open_source(f"s3://{bucket}/raw/nope.csv", storage_options=options)


# -- SQL -------------------------------------------------------------------------------------


def test_sql_query_arguments() -> None:
    with pytest.raises(InvalidArgument, match="non-empty query"):
        SqlQuery("  ", "sqlite:///x.db")
    with pytest.raises(InvalidArgument, match="SQLAlchemy URL"):
        SqlQuery("select 1", "not a url")


def test_a_sql_query_on_sqlite_with_a_column_null_in_its_first_chunk(
    tmp_path: Path, client: loopml.Client
) -> None:
    import sqlite3

    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "create table t (a int, b text, c real);"
            "insert into t values (1, null, null), (2, 'x', 1.5), (3, 'y', 2.0);"
        )
    conn.close()
    url = f"sqlite:///{db}"
    query = "select a, b, c from t order by a"
    one = log_dataset(SqlQuery(query, url, chunk_rows=1), "q", client=client)
    many = log_dataset(SqlQuery(query, url), "q", client=client)
    assert (one.version, many.version, one.num_rows) == (1, 1, 3)  # chunking does not show
    table = load_dataset(one, as_="arrow", client=client)
    assert table.schema.field("c").type == pa.float64()
    assert table.to_pydict() == {"a": [1, 2, 3], "b": [None, "x", "y"], "c": [None, 1.5, 2.0]}
    assert one.source.startswith("sql: select a, b, c from t")


@pytest.mark.postgres
def test_a_sql_query_on_postgresql(pg_database: str, client: loopml.Client) -> None:
    psycopg = pytest.importorskip("psycopg")
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={pg_database}"
    table = f"customers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            f"create table {table} (id int primary key, plan text, spend double precision, "
            "joined timestamptz)"
        )
        conn.execute(
            f"insert into {table} values (1, 'basic', 10.5, '2024-01-01T00:00:00Z'), "
            "(2, null, null, null), (3, 'pro', 99.0, '2024-02-01T12:00:00Z')"
        )
    try:
        url = f"postgresql://postgres@127.0.0.1:5432/{pg_database}"
        query = f"select id, plan, spend, joined from {table} order by id"
        first = log_dataset(SqlQuery(query, url), "customers", client=client)
        again = log_dataset(SqlQuery(query, url, chunk_rows=2), "customers", client=client)
        assert first.id == again.id and first.version == 1
        assert (first.num_rows, first.num_columns) == (3, 4)
        assert "postgres" in first.source and query in first.source
        got = load_dataset("datasets:/customers/1", client=client)
        assert got["id"].tolist() == [1, 2, 3]
        assert got["plan"].tolist()[::2] == ["basic", "pro"] and pd.isna(got["plan"][1])
        assert str(got["joined"].dt.tz) in ("UTC", "Etc/UTC")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"insert into {table} values (4, 'pro', 1.0, null)")
        assert log_dataset(SqlQuery(query, url), "customers", client=client).version == 2
        bad = f"select nope from {table}"
        with pytest.raises(InvalidData, match=r"SQL query.*failed") as info:
            log_dataset(SqlQuery(bad, url), "customers", client=client)
        assert bad in str(info.value) and 'column "nope" does not exist' in str(info.value)
        assert client.get_dataset("customers").latest_version == 2
    finally:  # the session database is shared with the store tests, which expect only our tables
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"drop table if exists {table}")


def test_a_failing_query_names_the_query_and_hides_the_password(tmp_path: Path) -> None:
    source = open_source(SqlQuery("select * from missing_table", f"sqlite:///{tmp_path}/x.db"))
    with pytest.raises(InvalidData, match=r"select \* from missing_table.*missing_table"):
        list(source.batches())
    url = "postgresql://ana:s3cret@127.0.0.1:1/nodb?connect_timeout=1"
    source = open_source(SqlQuery("select 1", url))
    assert "s3cret" not in source.description and "ana:***@" in source.description
    with pytest.raises(InvalidData, match=r"SQL query 'select 1' on .*ana:\*\*\*@") as info:
        list(source.batches())
    assert "s3cret" not in str(info.value)
