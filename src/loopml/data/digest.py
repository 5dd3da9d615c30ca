"""The content hash of a table: the same rows and columns give one digest, whatever the layout.

A dataset version is addressed by this digest, so it must not depend on how the data happened to
be stored: CSV or Parquet, one row group or many, a pandas ``int32`` or an Arrow ``int64``
column, a categorical or a plain string column. It depends only on

* the column names, in order, and each column's *logical* type (integer, unsigned, float, boolean,
  string, binary, date, timestamp with its time zone, decimal, ...), and
* the values, row by row, with nulls distinguished from every value (a null is not NaN, 0 or "";
  every NaN is the same NaN, whatever its bits).

How: every batch is converted to a canonical Arrow form (ints widened to int64, floats to
float64, strings decoded from dictionaries, timestamps to nanoseconds) and each column streams, in
row order, into three SHA-256s: its validity (one byte per row), its values (the fixed-width
values with nulls zeroed; for strings and binaries, the length of each value) and, for strings
and binaries, the bytes of the values. The digest is the SHA-256 of a header (names, logical
types, row count) and the column digests. Batch boundaries never show, so streaming batch by
batch gives the same digest as hashing the whole table at once, and a file bigger than memory is
hashed in constant memory at the speed of SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ContentHasher", "canonical_schema", "canonicalize", "logical_type"]

FORMAT = 1


def logical_type(t: pa.DataType) -> str:
    """The layout-independent name of an Arrow type (``int32`` and ``int64`` are both integer)."""
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return logical_type(t.value_type)
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_unsigned_integer(t):
        return "integer" if t.bit_width < 64 else "unsigned"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.tz}]" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_null(t):
        return "null"
    return str(t)


def _canonical_type(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _canonical_type(t.value_type)
    kind = logical_type(t)
    return {
        "integer": pa.int64(),
        "float": pa.float64(),
        "string": pa.large_string(),
        "binary": pa.large_binary(),
        "date": pa.date32(),
    }.get(kind) or (pa.timestamp("ns", t.tz) if pa.types.is_timestamp(t) else t)


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """The schema every batch is cast to before hashing."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, _canonical_type(f.type)) for f in schema])


def canonicalize(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    """``batch`` cast to :func:`canonical_schema`, as a table (zero-copy where types match)."""
    import pyarrow as pa

    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    target = canonical_schema(table.schema)
    if table.schema.equals(target):
        return table
    return table.cast(target)


def _feed(column: pa.ChunkedArray, validity: Any, values: Any, data: Any) -> None:
    """Stream one column of a batch into its three hashers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = column.type
    n = len(column)
    if n == 0:
        return
    if column.null_count:
        validity.update(column.is_valid().combine_chunks().to_numpy(zero_copy_only=False))
    else:
        validity.update(np.ones(n, dtype=np.bool_))
    if pa.types.is_null(t):
        return
    if not (pa.types.is_large_string(t) or pa.types.is_large_binary(t)):
        if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t):
            fill: Any = False if pa.types.is_boolean(t) else 0
            array = column.fill_null(fill).combine_chunks().to_numpy(zero_copy_only=False)
            if pa.types.is_floating(t):
                nan = np.isnan(array)
                if nan.any():  # one NaN: its sign and payload bits depend on how it was made
                    array = np.where(nan, np.nan, array)
            values.update(np.ascontiguousarray(array))
            return
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            ints = column.cast(pa.int64() if pa.types.is_timestamp(t) else pa.int32())
            values.update(np.ascontiguousarray(ints.fill_null(0).to_numpy()))
            return
        # decimals, lists, structs...: the canonical JSON text of each value
        texts = [
            None if v is None else json.dumps(v, sort_keys=True, default=str)
            for v in column.to_pylist()
        ]
        column = pa.chunked_array([pa.array(texts, pa.large_string())])
    array = pc.fill_null(
        column, pa.scalar(b"" if pa.types.is_large_binary(column.type) else "", column.type)
    ).combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + n + 1
    ]
    values.update(np.ascontiguousarray(np.diff(offsets)))
    data.update(memoryview(array.buffers()[2])[offsets[0] : offsets[-1]])


class ContentHasher:
    """Streams batches of one table into its layout-independent digest.

    Args:
        schema: the table's Arrow schema (its canonical form is what is hashed).
    """

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = canonical_schema(schema)
        self.num_rows = 0
        self._columns = [
            (hashlib.sha256(), hashlib.sha256(), hashlib.sha256()) for _ in self.schema
        ]

    def update(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Hash the next rows (their columns must match the schema, in order)."""
        table = canonicalize(batch)
        if table.schema.names != self.schema.names:
            raise ValueError(f"batch columns {table.schema.names} differ from {self.schema.names}")
        for hashers, column in zip(self._columns, table.columns, strict=True):
            _feed(column, *hashers)
        self.num_rows += table.num_rows

    def hexdigest(self) -> str:
        """The digest of every row so far: 64 hex characters."""
        header = json.dumps(
            {
                "format": FORMAT,
                "columns": [[f.name, logical_type(f.type)] for f in self.schema],
                "rows": self.num_rows,
            },
            separators=(",", ":"),
        )
        out = hashlib.sha256(header.encode())
        for hashers in self._columns:
            for hasher in hashers:
                out.update(hasher.digest())
        return out.hexdigest()
