"""Ground-truth files: the checked Arrow table of one :meth:`~loopml.Client.log_ground_truth`
call, its Parquet bytes, and the latest label per prediction id across many files.

Labels are Arrow columns end to end: past turning a Python list into an array, no step loops
over rows in Python, so logging or reading a million labels takes a fraction of a second.
pyarrow is imported when a function runs, not with the module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, InvalidData

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["COLUMNS", "label_table", "latest_labels", "to_parquet"]

#: The columns of a ground-truth file, in order.
COLUMNS = ("prediction_id", "label", "time")


def _column(values: Any, what: str) -> pa.Array:
    """A list, tuple, NumPy array, pandas Series or Arrow array as one Arrow array."""
    import pyarrow as pa

    if isinstance(values, (str, bytes, Mapping, set, frozenset)) or values is None:
        raise InvalidArgument(
            f"{what} must be a list, array or Series, got {type(values).__name__}"
        )
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    try:
        return pa.array(values if hasattr(values, "__array__") else list(values), from_pandas=True)
    except TypeError as exc:
        raise InvalidArgument(
            f"{what} must be a list, array or Series, got {type(values).__name__}"
        ) from exc
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidArgument(
            f"{what} must hold values of one kind (numbers, strings or bools): {exc}"
        ) from exc


def _first_null(array: pa.Array) -> int:
    import pyarrow.compute as pc

    return int(pc.index(array.is_null(), True).as_py())


def label_table(prediction_ids: Any, labels: Any, at: int) -> pa.Table:
    """The checked table of one ground-truth file."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids, values = _column(prediction_ids, "prediction_ids"), _column(labels, "labels")
    if len(ids) != len(values):
        raise InvalidArgument(
            f"got {len(ids)} prediction ids and {len(values)} labels; give one label per id"
        )
    if len(ids) == 0:
        raise InvalidArgument("no labels given; pass at least one prediction id and its label")
    if ids.null_count:
        raise InvalidArgument(f"prediction id {_first_null(ids)} is missing (None); drop it")
    if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
        raise InvalidArgument(
            f"prediction ids must be strings (the ids the server returned), got {ids.type}"
        )
    ids = ids.cast(pa.string())
    empty = pc.equal(pc.utf8_length(ids), 0)
    if pc.any(empty).as_py():
        raise InvalidArgument(f"prediction id {int(pc.index(empty, True).as_py())} is empty")
    if values.null_count:
        raise InvalidArgument(
            f"label {_first_null(values)} is missing (None); log only the labels you know"
        )
    kind = values.type
    if pa.types.is_large_string(kind) or str(kind) == "string_view":
        values = values.cast(pa.string())
    elif not (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
    ):
        raise InvalidArgument(f"labels must be numbers, strings or bools, got values of {kind}")
    times = pa.array(np.full(len(ids), at, dtype="datetime64[ms]"))
    return pa.table({"prediction_id": ids, "label": values, "time": times})


def to_parquet(table: pa.Table) -> bytes:
    """The table as one Parquet file (zstd), in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data: bytes = sink.getvalue().to_pybytes()
    return data


def latest_labels(tables: list[pa.Table]) -> pa.Table:
    """One row per prediction id from ground-truth files in the order written: the latest
    ``time``, then the last written, wins."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not tables:
        return pa.table(
            {
                "prediction_id": pa.array([], pa.string()),
                "label": pa.array([], pa.null()),
                "time": pa.array([], pa.timestamp("ms")),
            }
        )
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        kinds = sorted({str(t.schema.field("label").type) for t in tables})
        raise InvalidData(
            f"ground truth was logged with labels of different types ({', '.join(kinds)}) that "
            f"do not combine; read it per deployment or since a time: {exc}"
        ) from exc
    table = table.append_column("_order", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    table = table.sort_by([("time", "ascending"), ("_order", "ascending")])
    table = table.append_column("_rank", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    last = table.group_by("prediction_id").aggregate([("_rank", "max")])
    ranks = last.column("_rank_max")
    keep = ranks.take(pc.sort_indices(ranks))  # the rows kept, in (time, order) order
    return table.take(keep).select(list(COLUMNS))
