"""Reading and writing for batch scoring, in chunks of a fixed number of rows.

:func:`open_input` streams a CSV, TSV, JSON-lines or Parquet file (local or any fsspec URL), a
folder of Parquet files, or a dataset version (``datasets:/churn/3``) as record batches of exactly
``chunk_rows`` rows (the last one shorter), so that memory holds a chunk or two whatever the
input's size or layout. :class:`Output` writes chunks as they come to a temporary file and moves
it under its name only once every chunk is written: a failed or interrupted run never leaves a
partial file where the output should be.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, InvalidData

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.client import Client

__all__ = [
    "OUTPUT_FORMATS",
    "BatchInput",
    "Output",
    "check_kept",
    "conform",
    "fs_options",
    "open_input",
    "output_format",
    "rechunk",
]

OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}
"""Output file extensions and the format each one writes."""
_PARQUET = (".parquet", ".pq")
_READ_BUFFER = 1 << 20
"""Bytes read at a time from a Parquet column chunk."""


@dataclass(frozen=True)
class BatchInput:
    """An input opened for scoring.

    Attributes:
        description: what it is, for messages (a path, a URL or a ``datasets:/`` URI).
        schema: the Arrow schema of every chunk.
        total_rows: how many rows it has, when known without reading it (Parquet, datasets).
        chunks: returns a fresh iterator over chunks of ``chunk_rows`` rows.
    """

    description: str
    schema: pa.Schema
    total_rows: int | None
    chunks: Callable[[], Iterator[pa.RecordBatch]]


def open_input(
    data: str | os.PathLike[str],
    *,
    chunk_rows: int,
    client: Client | None = None,
    project: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> BatchInput:
    """Open a file, a folder of Parquet files or a ``datasets:/`` URI for chunked reading.

    A URL (``s3://bucket/in.parquet``) may name a file or a folder; ``storage_options`` go to
    its fsspec filesystem.

    Raises:
        InvalidData: the input does not exist, is empty, or cannot be read.
        InvalidArgument: its format cannot be told from its name.
        DatasetNotFound: a ``datasets:/`` URI names no version.
    """
    text = os.fspath(data)
    if not isinstance(text, str):
        raise InvalidArgument(f"the input must be a path or a URI, not {type(data).__name__}")
    if text.startswith("datasets:"):
        return _dataset_input(text, chunk_rows, client, project)
    options = fs_options(text, storage_options)
    if "://" not in text or text.startswith("file://"):
        local = Path(os.path.expanduser(text.removeprefix("file://")))
        if local.is_dir():
            return _folder_input(local, chunk_rows)
        if not local.exists():
            raise InvalidData(
                f"input {text!r} does not exist; give a CSV or Parquet file, a folder of "
                "Parquet files, or a dataset version such as datasets:/NAME/VERSION"
            )
    elif text.endswith("/") or not Path(text.rsplit("/", 1)[-1]).suffix:
        return _remote_folder_input(text, chunk_rows, options)
    return _file_input(text, chunk_rows, options)


def _file_input(path: str, chunk_rows: int, options: dict[str, Any]) -> BatchInput:
    name = path.lower().rsplit("/", 1)[-1]
    if name.endswith(_PARQUET):
        return _parquet_input([path], path, chunk_rows, options)
    from loopml.data.sources import open_source

    # CSV, TSV, JSON lines
    source = open_source(path, batch_rows=chunk_rows, storage_options=options)
    assert source.schema is not None  # files always know their schema
    return BatchInput(
        description=path,
        schema=source.schema,
        total_rows=None,
        chunks=lambda: rechunk(source.batches(), chunk_rows),
    )


def _dataset_input(
    uri: str, chunk_rows: int, client: Client | None, project: str | None
) -> BatchInput:
    from loopml.data.datasets import get_dataset, local_parquet

    version = get_dataset(uri, project=project, client=client)
    path = local_parquet(version, client)
    return _parquet_input([str(path)], version.uri, chunk_rows, {})


def _folder_input(folder: Path, chunk_rows: int) -> BatchInput:
    """The Parquet files under ``folder`` (recursively, in path order) as one input; files and
    folders whose names start with ``.`` or ``_`` (``_SUCCESS``, ``.crc``) are skipped."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    parts = _parquet_parts(str(folder), [str(p.relative_to(folder)) for p in files])
    return _parquet_input([str(folder / p) for p in parts], str(folder), chunk_rows, {})


def _remote_folder_input(url: str, chunk_rows: int, options: dict[str, Any]) -> BatchInput:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
        found = fs.find(root) if fs.isdir(root) else []
    except (OSError, ValueError) as exc:
        raise InvalidData(f"cannot list {url!r}: {exc}") from exc
    if not found and not url.endswith("/"):  # a file without an extension
        return _file_input(url, chunk_rows, options)
    base = str(root).rstrip("/") + "/"
    parts = _parquet_parts(url, [str(f).removeprefix(base) for f in found])
    return _parquet_input([url.rstrip("/") + "/" + p for p in parts], url, chunk_rows, options)


def _parquet_parts(folder: str, names: list[str]) -> list[str]:
    """The Parquet files among a folder's files (paths relative to it), in path order, leaving
    out any under a name that starts with ``.`` or ``_`` (``_SUCCESS``, ``_temporary/``)."""
    parts = sorted(
        name
        for name in names
        if name.lower().endswith(_PARQUET)
        and not any(part.startswith((".", "_")) for part in name.split("/"))
    )
    if not parts:
        raise InvalidData(
            f"folder {folder!r} holds no Parquet files (*.parquet, *.pq); give a folder of "
            "Parquet files, or a CSV or Parquet file"
        )
    return parts


def _parquet_input(
    paths: list[str], description: str, chunk_rows: int, options: dict[str, Any]
) -> BatchInput:
    """Parquet files read one after the other, each conformed to the first one's columns."""
    with _parquet_file(paths[0], options) as (reader, _):
        schema = _visible_schema(reader.schema_arrow)
    total = 0
    for path in paths:
        with _parquet_file(path, options) as (reader, _):
            total += reader.metadata.num_rows

    def batches() -> Iterator[pa.RecordBatch]:
        for path in paths:
            with _parquet_file(path, options) as (reader, where):
                names = _visible_schema(reader.schema_arrow).names
                try:
                    for batch in reader.iter_batches(batch_size=chunk_rows, columns=names):
                        yield conform(batch, schema, where, repr(paths[0]))
                except (OSError, ValueError) as exc:  # pyarrow's read errors are ValueErrors
                    if isinstance(exc, InvalidData):
                        raise
                    raise InvalidData(f"cannot read {where}: {exc}") from exc

    return BatchInput(description, schema, total, lambda: rechunk(batches(), chunk_rows))


@contextmanager
def _parquet_file(path: str, options: dict[str, Any]) -> Iterator[tuple[pq.ParquetFile, str]]:
    """A Parquet file opened to read in bounded memory, and how to name it in messages.

    Arrow's defaults pre-buffer every row group asked for (``iter_batches`` asks for all): the
    whole file, in memory. Without it, and with reads buffered, a reader holds about one
    column chunk's pages and one batch at a time.
    """
    import fsspec
    import pyarrow.parquet as pq

    where = f"file {path!r}"
    local = "://" not in path or path.startswith("file://")
    try:
        if local:
            location = os.path.expanduser(path.removeprefix("file://"))
            reader = pq.ParquetFile(location, pre_buffer=False, buffer_size=_READ_BUFFER)
            handle = None
        else:
            fs, fs_path = fsspec.core.url_to_fs(path, **options)
            handle = fs.open(fs_path, "rb")
            reader = pq.ParquetFile(handle, pre_buffer=False, buffer_size=_READ_BUFFER)
    except FileNotFoundError as exc:
        raise InvalidData(f"{where} does not exist; check the path") from exc
    except (OSError, ValueError) as exc:
        raise InvalidData(f"cannot read {where} as Parquet: {exc}") from exc
    try:
        yield reader, where
    finally:
        reader.close()
        if handle is not None:
            handle.close()


def _visible_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` without the columns in which pandas stored an unnamed index
    (``__index_level_0__``): layout, not data, as :func:`loopml.data.sources.open_source` too
    leaves them out."""
    meta = schema.pandas_metadata or {}
    hidden = {
        name
        for name in meta.get("index_columns", [])
        if isinstance(name, str) and name.startswith("__index_level_")
    }
    for name in hidden & set(schema.names):
        schema = schema.remove(schema.get_field_index(name))
    return schema


def conform(batch: pa.RecordBatch, schema: pa.Schema, where: str, like: str) -> pa.RecordBatch:
    """``batch`` with ``schema``'s columns, in its order and with its types.

    Raises:
        InvalidData: the columns differ, or a column's values do not convert.
    """
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    if set(batch.schema.names) != set(schema.names):
        missing = [n for n in schema.names if n not in batch.schema.names]
        extra = [n for n in batch.schema.names if n not in schema.names]
        raise InvalidData(
            f"{where} does not have the columns of {like}: missing {missing or 'none'}, extra "
            f"{extra or 'none'}; every part of the input needs the same columns"
        )
    columns = []
    for f in schema:
        column = batch.column(f.name)
        try:
            columns.append(column if column.type.equals(f.type) else column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidData(
                f"{where}: column {f.name!r} is {column.type}, which does not convert to "
                f"{f.type} (its type in {like}): {exc}"
            ) from exc
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def rechunk(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches`` again, as batches of exactly ``rows`` rows (the last one
    shorter). Slices are views; only a chunk made of several pieces is copied."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        rest = batch
        while rest.num_rows:
            take = min(rows - held, rest.num_rows)
            pending.append(rest.slice(0, take))
            held += take
            rest = rest.slice(take)
            if held == rows:
                yield _concat(pending)
                pending, held = [], 0
    if held:
        yield _concat(pending)


def _concat(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    import pyarrow as pa

    if len(parts) == 1:
        return parts[0]
    batch: pa.RecordBatch = pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
    return batch


# --- output ----------------------------------------------------------------------------------


def output_format(path: str | os.PathLike[str]) -> str:
    """The format an output path's extension asks for (``parquet``, ``csv`` or ``tsv``).

    Raises:
        InvalidArgument: another extension.
    """
    text = os.fspath(path)
    suffix = Path(text.rsplit("/", 1)[-1]).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise InvalidArgument(
            f"cannot tell the output format of {text!r} from its name; end it with "
            f"{', '.join(OUTPUT_FORMATS)}"
        )
    return OUTPUT_FORMATS[suffix]


class Output:
    """An output file written chunk by chunk, under its own name only once it is complete.

    A local output is written to a hidden temporary file in the same folder (created if missing)
    and renamed over the target at the end, atomically; a URL (``s3://...``) is written to a
    local temporary file and uploaded at the end. Not thread-safe: one writer per output.
    """

    def __init__(
        self, path: str | os.PathLike[str], storage_options: Mapping[str, Any] | None = None
    ) -> None:
        self.path = os.fspath(path)
        self._options = fs_options(self.path, storage_options)
        self.format = output_format(self.path)
        self._remote = "://" in self.path and not self.path.startswith("file://")
        if self._remote:
            fd, tmp = tempfile.mkstemp(prefix="loopml-predict-", suffix=".partial")
            os.close(fd)
            self._tmp = Path(tmp)
        else:
            target = Path(os.path.expanduser(self.path.removeprefix("file://")))
            if target.is_dir():
                raise InvalidArgument(f"output {self.path!r} is a folder; give a file name")
            target.parent.mkdir(parents=True, exist_ok=True)
            self._target = target
            self._tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def write(self, batch: pa.RecordBatch, where: str) -> None:
        """Append a chunk; the first one fixes the columns and types of the file.

        Raises:
            InvalidData: the chunk's columns do not convert to the first chunk's.
        """
        if self._writer is None:
            self._open(batch.schema)
        assert self._schema is not None
        self._writer.write_batch(conform(batch, self._schema, where, "the first chunk"))

    def _open(self, schema: pa.Schema) -> None:
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self._schema = schema
        if self.format == "parquet":
            self._writer = pq.ParquetWriter(self._tmp, schema)
        else:
            delimiter = "\t" if self.format == "tsv" else ","
            options = pacsv.WriteOptions(delimiter=delimiter)
            self._writer = pacsv.CSVWriter(self._tmp, schema, write_options=options)

    def commit(self, empty_schema: pa.Schema) -> None:
        """Close the file and put it in place (``empty_schema`` gives the columns of an output
        with no rows)."""
        if self._writer is None:
            self._open(empty_schema)
        self._writer.close()
        self._writer = None
        if not self._remote:
            os.replace(self._tmp, self._target)
            return
        import fsspec

        fs, fs_path = fsspec.core.url_to_fs(self.path, **self._options)
        try:
            fs.put_file(str(self._tmp), fs_path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the temporary file (after a failure); the target is left as it was."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: S110 - the file is removed next; the first error matters
                pass
            self._writer = None
        self._tmp.unlink(missing_ok=True)


def fs_options(url: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """fsspec options for ``url``: ``given``, and for ``s3://`` the endpoint of
    ``LOOPML_S3_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL``), as the artifact store does."""
    options = dict(given or {})
    if url.split("://", 1)[0].lower() in ("s3", "s3a") and "://" in url:
        from loopml.config import get_settings

        endpoint = get_settings().s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and "endpoint_url" not in options:
            client_kwargs = dict(options.get("client_kwargs") or {})
            client_kwargs.setdefault("endpoint_url", endpoint)
            options["client_kwargs"] = client_kwargs
    return options


def check_kept(schema: pa.Schema, keep: Sequence[str] | None, description: str) -> list[str]:
    """The input columns copied to the output: all of them (None), or those named.

    Raises:
        InvalidArgument: a named column is not in the input.
    """
    if keep is None:
        return list(schema.names)
    if isinstance(keep, str):
        raise InvalidArgument(f"keep_columns must be a list of names, not the string {keep!r}")
    missing = [c for c in keep if c not in schema.names]
    if missing:
        raise InvalidArgument(
            f"{description} has no column(s) {', '.join(map(repr, missing))} to keep; its "
            f"columns are {', '.join(schema.names)}"
        )
    return list(dict.fromkeys(keep))
