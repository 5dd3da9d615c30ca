"""Where a dataset comes from: a table in memory, a file (local or any fsspec URL), or a SQL query.

:func:`open_source` turns any of them into a :class:`Source`: an Arrow schema and a stream of
record batches, read in constant memory, so that a file bigger than memory can be hashed,
stored and profiled chunk by chunk. Files are CSV (``.csv``, ``.tsv``, optionally compressed),
Parquet (``.parquet``, ``.pq``) or JSON lines (``.jsonl``, ``.ndjson``, ``.json``); a
:class:`SqlQuery` runs on any SQLAlchemy URL. Every failure to read becomes
:class:`~loopml.errors.InvalidData` naming the file (or query) and, where the reader says, the
column or line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._frames import TABLE_TYPES, as_pandas, is_table
from loopml.errors import InvalidArgument, InvalidData

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BATCH_ROWS", "FORMATS", "Source", "SqlQuery", "open_source"]

BATCH_ROWS = 262_144
"""Rows per batch when streaming a file: a few tens of MB for a typical table."""
CSV_BLOCK_BYTES = 16 << 20
"""Bytes of CSV or JSON read at a time; column types are inferred from the first block."""
SQL_SETTLE_ROWS = 1_000_000
"""Rows of a SQL result held back, at most, while a column is still all null (so of unknown
type): the first chunk with a value gives the column its type."""

FORMATS = ("csv", "tsv", "parquet", "jsonl")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".xz")


@dataclass(frozen=True)
class SqlQuery:
    """A SQL query to run on a database, as a dataset source.

    Args:
        query: the SELECT to run (it runs read-only as given: never built from strings by loopml).
        url: a SQLAlchemy URL (``postgresql://user@host/db``, ``sqlite:///file.db``).
        chunk_rows: rows fetched at a time.
    """

    query: str
    url: str
    chunk_rows: int = 100_000

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise InvalidArgument("SqlQuery needs a non-empty query string")
        if not isinstance(self.url, str) or ":" not in self.url:
            raise InvalidArgument(
                f"SqlQuery needs a SQLAlchemy URL such as 'postgresql://user@host/db', "
                f"got {self.url!r}"
            )


@dataclass
class Source:
    """A readable source: its schema and a way to stream its batches.

    Attributes:
        description: where the data came from, for the version's record and for messages.
        schema: the Arrow schema of the batches, or None when it is known only once the first
            batch arrives (a SQL query).
        batches: returns a fresh iterator over the record batches. Read a :class:`SqlQuery`
            source once: each call runs the query again.
        parquet_path: a local Parquet file holding exactly this data, which can be stored as is
            (None when the data must be written to Parquet first).
        size_bytes: the size of the source file, when known.
        frame: the table itself, for a source already in memory (None for files and queries).
    """

    description: str
    schema: pa.Schema | None
    batches: Callable[[], Iterator[pa.RecordBatch]]
    parquet_path: str | None = None
    size_bytes: int | None = None
    frame: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def open_source(
    data: Any,
    *,
    format: str | None = None,
    batch_rows: int = BATCH_ROWS,
    storage_options: dict[str, Any] | None = None,
) -> Source:
    """Open ``data`` for streaming.

    Args:
        data: a pandas or polars DataFrame or a pyarrow Table, a path or fsspec URL of a CSV,
            Parquet or JSON-lines file, or a :class:`SqlQuery`.
        format: the file format when the name does not say (``csv``, ``tsv``, ``parquet``,
            ``jsonl``).
        batch_rows: rows per batch when streaming.
        storage_options: passed to fsspec for remote URLs (credentials, endpoint).

    Raises:
        InvalidArgument: ``data`` is none of the above, or the format is unknown.
        InvalidData: the file does not exist, is empty, or cannot be read.
    """
    if isinstance(data, SqlQuery):
        return _sql_source(data)
    if isinstance(data, (str, os.PathLike)):
        return _file_source(os.fspath(data), format, batch_rows, storage_options or {})
    if is_table(data):
        return _table_source(data, batch_rows)
    raise InvalidArgument(
        f"cannot make a dataset from a {type(data).__name__}; pass {TABLE_TYPES}, the path or "
        "URL of a CSV, Parquet or JSON-lines file, or loopml.data.SqlQuery(query, url)"
    )


def _table_source(data: Any, batch_rows: int) -> Source:
    import pyarrow as pa

    module = type(data).__module__.split(".", 1)[0]
    if isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif isinstance(data, pa.Table):
        table = data
    elif module == "polars":
        table = (data.collect() if type(data).__name__ == "LazyFrame" else data).to_arrow()
    else:
        frame = as_pandas(data)
        _check_names([str(c) for c in frame.columns], "the DataFrame")
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidData(
                f"the DataFrame cannot be stored as a table: {exc}; give each column a single "
                "type (e.g. df[col] = df[col].astype(str) for a column of mixed values)"
            ) from exc
    _check_names(table.schema.names, "the DataFrame")
    kind = "polars DataFrame" if module == "polars" else f"{module} {type(data).__name__}"
    return Source(
        description=f"{kind} ({table.num_rows} rows x {table.num_columns} columns)",
        schema=table.schema,
        batches=lambda: iter(table.to_batches(max_chunksize=batch_rows)),
        frame=data if module == "pandas" else table,
    )


def _check_names(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidData(f"{what} has a column with no name; name every column")
        if name in seen:
            raise InvalidData(f"{what} has two columns named {name!r}; rename one")
        seen.add(name)


def _format_of(path: str, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise InvalidArgument(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        return format
    name = path.lower().rsplit("/", 1)[-1]
    for compression in _COMPRESSIONS:
        name = name.removesuffix(compression)
    suffix = Path(name).suffix
    if suffix not in _SUFFIXES:
        raise InvalidArgument(
            f"cannot tell the format of {path!r} from its name; pass format= one of "
            f"{', '.join(FORMATS)}"
        )
    return _SUFFIXES[suffix]


def _file_source(
    path: str, format: str | None, batch_rows: int, storage_options: dict[str, Any]
) -> Source:
    import fsspec

    fmt = _format_of(path, format)
    local = "://" not in path or path.startswith("file://")
    location = os.path.expanduser(path.removeprefix("file://")) if local else path
    try:
        fs, fs_path = fsspec.core.url_to_fs(location, **storage_options)
        info = fs.info(fs_path)
    except FileNotFoundError as exc:
        raise InvalidData(f"file {path!r} does not exist; check the path") from exc
    except (OSError, ValueError, ImportError) as exc:
        raise InvalidData(f"cannot open {path!r}: {exc}") from exc
    if info.get("type") == "directory":
        raise InvalidData(f"{path!r} is a folder; pass one file")
    size = info.get("size")
    if size == 0:
        raise InvalidData(f"file {path!r} is empty (0 bytes); nothing to version")

    def opened() -> Any:
        return fs.open(fs_path, "rb", compression="infer")

    readers = {"parquet": _parquet_batches, "csv": _csv_batches, "tsv": _csv_batches}
    reader = readers.get(fmt, _jsonl_batches)

    def batches() -> Iterator[pa.RecordBatch]:
        return reader(opened, path, fmt, batch_rows)

    first = batches()
    try:
        head = next(first, None)
    finally:
        close = getattr(first, "close", None)
        if close is not None:
            close()
    if head is None:
        schema = _parquet_schema(opened, path) if fmt == "parquet" else None
        if schema is None:
            raise InvalidData(f"file {path!r} has no rows; nothing to version")
    else:
        schema = head.schema
    _check_names(schema.names, f"file {path!r}")
    as_is = fmt == "parquet" and not _compressed(path) and not _index_columns(opened)
    parquet_path = location if local and as_is else None
    return Source(
        description=os.path.abspath(location) if local else path,
        schema=schema,
        batches=batches,
        parquet_path=parquet_path,
        size_bytes=size,
        options={"format": fmt},
    )


def _compressed(path: str) -> bool:
    return path.lower().endswith(_COMPRESSIONS)


def _reading(path: str, exc: BaseException, names: Sequence[str] = ()) -> InvalidData:
    import re

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def column(match: re.Match[str]) -> str:
        i = int(match.group(1))
        return f"In column {names[i]!r}" if i < len(names) else match.group(0)

    text = re.sub(r"In CSV column #(\d+)", column, text)
    return InvalidData(
        f"cannot read {path!r}: {text}; check the file's format and that every value of a "
        "column has the same type"
    )


def _parquet_schema(opened: Callable[[], Any], path: str) -> pa.Schema | None:
    import pyarrow.parquet as pq

    with opened() as f:
        try:
            schema = pq.ParquetFile(f).schema_arrow
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise _reading(path, exc) from exc
    for name in _pandas_index(schema):
        schema = schema.remove(schema.get_field_index(name))
    return schema


def _pandas_index(schema: pa.Schema) -> list[str]:
    """The columns in which pandas stored an unnamed index (``__index_level_0__``): layout, not
    data, so they are left out, as :func:`open_source` leaves out a DataFrame's index."""
    meta = schema.pandas_metadata or {}
    return [
        name
        for name in meta.get("index_columns", [])
        if isinstance(name, str) and name.startswith("__index_level_") and name in schema.names
    ]


def _index_columns(opened: Callable[[], Any]) -> list[str]:
    import pyarrow.parquet as pq

    with opened() as f:
        return _pandas_index(pq.ParquetFile(f).schema_arrow)


def _parquet_batches(
    opened: Callable[[], Any], path: str, fmt: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    with opened() as f:
        try:
            reader = pq.ParquetFile(f)
            hidden = _pandas_index(reader.schema_arrow)
            keep = [n for n in reader.schema_arrow.names if n not in hidden] if hidden else None
            yield from reader.iter_batches(batch_size=batch_rows, columns=keep)
        except (OSError, ValueError) as exc:
            raise _reading(path, exc) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("pyarrow"):
                raise _reading(path, exc) from exc
            raise


def _csv_batches(
    opened: Callable[[], Any], path: str, fmt: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
    # an empty field is missing in a string column too, as pandas reads and writes it
    convert = pacsv.ConvertOptions(strings_can_be_null=True)
    names: list[str] = []
    with opened() as f:
        try:
            reader = pacsv.open_csv(
                f, read_options=read, parse_options=parse, convert_options=convert
            )
            names = reader.schema.names
            for batch in reader:
                yield from _rebatch(batch, batch_rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise _reading(path, exc, names) from exc


def _jsonl_batches(
    opened: Callable[[], Any], path: str, fmt: str, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.json as pajson

    with opened() as f:
        try:
            reader = pajson.open_json(
                f, read_options=pajson.ReadOptions(block_size=CSV_BLOCK_BYTES)
            )
            for batch in reader:
                yield from _rebatch(batch, batch_rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise _reading(path, exc) from exc


def _rebatch(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    if batch.num_rows <= rows:
        yield batch
        return
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _sql_source(q: SqlQuery) -> Source:
    url = q.url
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    shown = _mask(q.url)

    def batches() -> Iterator[pa.RecordBatch]:
        import pandas as pd
        import pyarrow as pa

        try:
            chunks = pd.read_sql(q.query, url, chunksize=q.chunk_rows, dtype_backend="pyarrow")
            tables = (pa.Table.from_pandas(chunk, preserve_index=False) for chunk in chunks)
            for table in _settle_types(tables):
                # pandas metadata would bring pandas' guesses back on load (a string dtype
                # for a column whose first chunk was null): plain Arrow types load as pandas'
                yield from table.replace_schema_metadata(None).to_batches()
        except Exception as exc:
            if isinstance(exc, InvalidData):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            query = " ".join(q.query.split())
            named = "" if query in " ".join(first.split()) else f" {query[:500]!r}"
            raise InvalidData(
                f"SQL query{named} on {shown} failed: {first}; check the query and that the "
                "database is reachable"
            ) from exc

    return Source(
        description=f"sql: {q.query.strip()[:2000]} @ {shown}", schema=None, batches=batches
    )


def _settle_types(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The chunks of a query result with one type per column.

    pandas types a chunk's all-null column as it can (``string``), so a column whose first rows
    are null would take the wrong type, and the result would depend on the chunk size. Chunks
    are held back (up to :data:`SQL_SETTLE_ROWS` rows) until every column has had a value; then
    each column's type is that of its first value, and the all-null parts take it too.
    """
    import pyarrow as pa

    held: list[pa.Table] = []
    known: dict[str, pa.DataType] = {}
    schema: pa.Schema | None = None
    for table in tables:
        if schema is not None:
            yield _retype_nulls(table, schema)
            continue
        held.append(table)
        for name, col in zip(table.column_names, table.columns, strict=True):
            if name not in known and col.null_count < len(col):
                known[name] = col.type
        if len(known) < table.num_columns and sum(t.num_rows for t in held) < SQL_SETTLE_ROWS:
            continue
        schema = pa.schema([pa.field(n, known.get(n, f.type)) for n, f in _fields(held[0])])
        yield from (_retype_nulls(t, schema) for t in held)
        held = []
    if held:  # the result ended while some column was still all null
        schema = pa.schema([pa.field(n, known.get(n, f.type)) for n, f in _fields(held[0])])
        yield from (_retype_nulls(t, schema) for t in held)


def _fields(table: pa.Table) -> list[tuple[str, pa.Field]]:
    return [(f.name, f) for f in table.schema]


def _retype_nulls(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with each all-null column given the type ``schema`` says (others as they are)."""
    import pyarrow as pa

    if table.schema.names != schema.names:
        return table  # the caller reports changed columns
    for i, (col, f) in enumerate(zip(table.columns, schema, strict=True)):
        if not col.type.equals(f.type) and col.null_count == len(col):
            table = table.set_column(i, f.name, pa.nulls(len(col), f.type))
    return table


def _mask(url: str) -> str:
    """The URL with its password hidden."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
