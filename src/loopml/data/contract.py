"""Profile, infer a schema for, and validate a stored Parquet file, in memory or chunk by chunk.

A file whose data fits comfortably in memory (:data:`IN_MEMORY_BYTES` uncompressed) is read once
and handled whole: exact quantile edges, exact schema inference. A bigger one streams in batches:
the profile takes two passes (quantile edges from KLL sketches, then exact counts on them), the
schema is inferred from the first batch and widened with the whole file's profile (ranges,
nulls, categories), and validation merges per-batch counts (:class:`loopml.schema.Validator`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._progress import progress
from loopml.errors import DataValidationFailed

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from loopml.schema import Schema, ValidationReport
    from loopml.stats import DatasetProfile

__all__ = [
    "IN_MEMORY_BYTES",
    "in_memory",
    "infer_parquet",
    "profile_parquet",
    "validate_parquet",
]

IN_MEMORY_BYTES = 512 * 1024 * 1024
"""Uncompressed size up to which a Parquet file is profiled and checked in one piece."""
BATCH_ROWS = 262_144


def _uncompressed(path: Path) -> int:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))


def fits_in_memory(path: Path) -> bool:
    """Whether the file is handled whole rather than in batches."""
    return _uncompressed(path) <= IN_MEMORY_BYTES


def read_whole(path: Path) -> pa.Table:
    """The whole file as an Arrow table."""
    import pyarrow.parquet as pq

    return pq.read_table(path)


def batches(path: Path, rows: int | None = None) -> Iterator[pa.RecordBatch]:
    """The file's record batches (:data:`BATCH_ROWS` rows each unless ``rows`` says)."""
    import pyarrow.parquet as pq

    yield from pq.ParquetFile(path).iter_batches(batch_size=rows or BATCH_ROWS)


def in_memory(path: Path) -> pd.DataFrame | None:
    """The file as a DataFrame when it fits in memory (read once, shared by the steps below),
    else None."""
    if not fits_in_memory(path):
        return None
    frame: pd.DataFrame = read_whole(path).to_pandas()
    return frame


def profile_parquet(
    path: Path,
    *,
    frame: Any = None,
    target: str | None = None,
    edges: dict[str, tuple[float, ...]] | None = None,
) -> DatasetProfile:
    """The profile of a Parquet file, or of ``frame`` (the same data, already in memory);
    over a large file without a frame: two streaming passes, or one given the ``edges`` (found
    while the file was hashed)."""
    from loopml.stats import profile, profile_chunks

    with progress(f"profiling {path.name}"):
        if frame is not None:
            return profile(frame, target=target)
        return profile_chunks(lambda: batches(path), target=target, edges=edges or None)


def infer_parquet(
    path: Path,
    *,
    frame: Any = None,
    target: str | None = None,
    profile: DatasetProfile | None = None,
) -> Schema:
    """Infer the data contract of a Parquet file.

    Data in memory (``frame``) is inferred exactly. For a large file the schema is inferred
    from the first batch, then widened with ``profile`` (the whole file's): each column's
    range, nullability and categories cover every row; uniqueness and the unique key, which a
    profile cannot prove, are dropped. Without a profile only names and types are kept.
    """
    from loopml.schema import infer_schema

    if frame is not None:
        return infer_schema(frame, target=target)
    first = next(batches(path), None)
    assert first is not None  # the version has rows
    schema = infer_schema(first, target=target, unique_key=None)
    return _widen(schema, profile) if profile is not None else _loosen(schema)


def _loosen(schema: Schema) -> Schema:
    """What a schema inferred from a sample can promise about the whole file: the columns and
    their types (and the target); no ranges, categories, uniqueness or required values."""
    columns = tuple(
        col.replace(nullable=True, min=None, max=None, categories=None, unique=False)
        for col in schema.columns
    )
    return schema.replace(columns=columns, unique_key=())


def _widen(schema: Schema, profile: DatasetProfile) -> Schema:
    """Relax a schema inferred from a sample so that the profiled data satisfies it."""
    import datetime as dt

    from loopml.schema import ColumnType
    from loopml.stats import CategoricalProfile, NumericProfile

    columns = []
    for col in schema.columns:
        prof = profile[col.name] if col.name in profile else None
        changes: dict[str, Any] = {"unique": False}
        if prof is not None:
            changes["nullable"] = col.nullable or prof.nulls > 0
            if isinstance(prof, NumericProfile) and prof.min is not None and prof.max is not None:
                if col.type is ColumnType.DATETIME:
                    tz = dt.UTC if getattr(col.min, "tzinfo", None) else None
                    lo = dt.datetime.fromtimestamp(prof.min, dt.UTC)
                    hi = dt.datetime.fromtimestamp(prof.max, dt.UTC)
                    if tz is None:
                        lo, hi = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
                    changes.update(min=lo, max=hi)
                elif col.type is ColumnType.INTEGER:
                    changes.update(min=int(prof.min), max=int(prof.max))
                elif col.type is ColumnType.FLOAT:
                    changes.update(min=float(prof.min), max=float(prof.max))
            if (
                isinstance(prof, CategoricalProfile)
                and col.type is ColumnType.CATEGORICAL
                and col.categories is not None
            ):
                if prof.other:
                    changes["categories"] = None
                else:
                    changes["categories"] = tuple(sorted(v for v, _ in prof.categories))
        columns.append(col.replace(**changes))
    return schema.replace(columns=tuple(columns), unique_key=())


def validate_parquet(
    path: Path, schema: Schema, *, frame: Any = None, where: str, strict: bool = True
) -> ValidationReport:
    """Validate a Parquet file against a schema (batch by batch when it is large).

    Raises:
        DataValidationFailed: with ``strict``, when the data breaks an error-level rule.
    """
    from loopml.schema import Validator, validate

    with progress(f"validating {path.name}"):
        if frame is not None:
            report = validate(frame, schema)
        else:
            validator = Validator(schema)
            for batch in batches(path):
                validator.update(batch)
            report = validator.report()
    if strict and not report.ok:
        raise DataValidationFailed(f"{where} breaks its schema:\n{report}", report=report)
    return report
