"""Drift reports on batches of data: a reference and a current dataset in, per-column drift
tests and the dataset-level verdict out.

:func:`drift_report` profiles the reference, profiles the current data on the reference's bin
edges (so both histograms count on the same bins) and compares the two profiles with
:func:`~loopml.stats.compare_profiles`. Either side may be a table in memory (pandas, polars,
pyarrow, a dict of columns), a Parquet or CSV file (read in chunks of ``chunk_rows`` rows, so
memory stays bounded whatever the file's size), a ``datasets:/name/version`` URI (its stored
profile when it has one) or a :class:`~loopml.stats.DatasetProfile` already built.

Files are read as Arrow and profiled without pandas (whose import alone costs 140 MB), one
column at a time (Parquet stores columns apart), ``chunk_rows`` rows at a time, the next batch
decoded on a reader thread while this one is profiled; text columns stay dictionary-encoded as
Parquet stores them. A reference file longer than one chunk is read twice: once for the
statistics and the quantile edges (from KLL sketches), once more, numeric columns only, to count
each value exactly on those edges. With ``exact=True`` the KS and Wasserstein tests run on the
raw values with scipy, one column at a time, wherever both sides' values are at hand.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml._frames import TABLE_TYPES, is_table
from loopml.errors import InvalidArgument
from loopml.stats import (
    CategoricalProfile,
    ColumnDrift,
    DatasetProfile,
    DriftResult,
    DriftTest,
    NumericProfile,
    ProfileBuilder,
    ProfileComparison,
    compare_profiles,
    default_test,
    get_drift_test,
    profile,
)
from loopml.stats._build import numeric_values, table_columns
from loopml.stats.columns import DEFAULT_CATEGORY_CAP
from loopml.stats.stream import profile_chunks

if TYPE_CHECKING:
    from loopml.client.client import Client

__all__ = ["DEFAULT_CHUNK_ROWS", "DriftReport", "drift_report"]

DEFAULT_CHUNK_ROWS = 131_072
"""Rows read from a file at a time (1 MiB per numeric column)."""

GROUP_COLUMNS = 1
"""Columns of a Parquet file profiled together (see :func:`_groups`): one, as the peak memory
grows by about 7 MB per column read together (100k rows) and reading them apart is no slower."""

Side = Literal["reference", "current"]
_PARQUET = (".parquet", ".pq", ".parq")
_CSV = (".csv", ".tsv", ".csv.gz", ".csv.bz2", ".tsv.gz")


@dataclass(frozen=True, slots=True)
class DriftReport:
    """A drift report: the comparison, the two profiles it came from, and how long it took.

    Attributes:
        comparison: per-column drift results and the dataset verdict.
        reference: the reference profile; ``current`` the current one (on the reference's edges
            when the report built it).
        exact: whether exact tests were asked for.
        exact_columns: the columns whose KS or Wasserstein test ran on the raw values.
        timings: seconds spent per step (``reference``, ``current``, ``compare``, ``exact``,
            ``total``).
        notes: what the reader should know (a side compared through its sketch, an exact test
            that could not run on raw values).
    """

    comparison: ProfileComparison
    reference: DatasetProfile
    current: DatasetProfile
    exact: bool = False
    exact_columns: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[ColumnDrift, ...]:
        """One result per compared column, in reference order."""
        return self.comparison.columns

    @property
    def drifted_columns(self) -> tuple[str, ...]:
        """Names of the columns that drifted."""
        return self.comparison.drifted_columns

    @property
    def drifted_share(self) -> float:
        """Share of compared columns that drifted."""
        return self.comparison.drifted_share

    @property
    def dataset_drift(self) -> bool:
        """Whether at least ``drift_share`` of the columns drifted."""
        return self.comparison.dataset_drift

    def __getitem__(self, column: str) -> ColumnDrift:
        return self.comparison[column]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: the comparison's, plus ``exact``, ``timings`` and ``notes``."""
        return {
            **self.comparison.to_dict(),
            "exact": self.exact,
            "exact_columns": list(self.exact_columns),
            "timings": dict(self.timings),
            "notes": list(self.notes),
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (keyword arguments go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def __str__(self) -> str:
        lines = [str(self.comparison)]
        lines.extend(f"note: {n}" for n in self.notes)
        if self.timings:
            lines.append(
                "time: "
                + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in self.timings.items())
                + (f"; exact tests on {len(self.exact_columns)} columns" if self.exact else "")
            )
        return "\n".join(lines)


@dataclass
class _Source:
    """One side of the report, resolved: a profile, a table in memory, or a file."""

    side: Side
    kind: Literal["profile", "table", "parquet", "csv"]
    names: list[str]
    profile: DatasetProfile | None = None
    table: Any = None
    path: Path | None = None
    rows: int | None = None
    raw: Path | None = None  # a dataset version's data, for exact tests
    fetch: Any = None  # downloads ``raw`` on first use

    def describe(self) -> str:
        if self.path is not None:
            return f"the {self.side} file {str(self.path)!r}"
        return f"the {self.side} {self.kind}"


def drift_report(
    reference: Any,
    current: Any,
    *,
    tests: Mapping[str, str | DriftTest] | None = None,
    drift_share: float = 0.5,
    columns: Sequence[str] | None = None,
    exact: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    bins: int = 20,
    categorical: Collection[str] | None = None,
    category_cap: int = DEFAULT_CATEGORY_CAP,
    client: Client | None = None,
    project: str | None = None,
) -> DriftReport:
    """Compare a current dataset with a reference: which columns drifted, and the dataset.

    Args:
        reference: the reference data (e.g. the training set): a pandas, polars or pyarrow
            table or a dict of columns; the path of a Parquet or CSV file; a
            ``datasets:/name/version`` URI; or a :class:`~loopml.stats.DatasetProfile`.
        current: the data to check, in any of the same forms.
        tests: per-column drift test, column -> name (``"psi"``, ``"jensenshannon"``,
            ``"chisquare"``, ``"wasserstein"``, ``"ks"`` or a registered name) or a
            :class:`~loopml.stats.DriftTest`; other columns get
            :func:`~loopml.stats.default_test` (Evidently's choice: normed Wasserstein and
            Jensen-Shannon above 1,000 reference values, KS and chi-squared below).
        drift_share: the dataset drifted when at least this share of columns drifted.
        columns: compare only these columns (default: every column both sides have).
        exact: run KS and Wasserstein on the raw values (scipy) where both sides' values are at
            hand (tables, files, dataset versions; not profiles). Other tests are computed on
            bins or categories either way.
        chunk_rows: rows read from a file at a time.
        bins: histogram bins per numeric column of the reference (quantile edges).
        categorical: columns to treat as categories whatever their type (integer codes).
        category_cap: categories counted exactly per column.
        client: the client that resolves ``datasets:/`` URIs (default: the fluent API's).
        project: the project of ``datasets:/`` URIs (default: the client's).

    Returns:
        The report: ``report.drifted_columns``, ``report.dataset_drift``, ``report["col"]``,
        ``print(report)``, ``report.to_dict()``.

    Raises:
        InvalidArgument: a file that does not exist or is neither Parquet nor CSV, no column
            in common, a column in ``columns`` or ``tests`` that a side lacks, an unknown test,
            or a bad ``drift_share``, ``bins`` or ``chunk_rows``.
        NotFound: a ``datasets:/`` URI names no stored version (``DatasetNotFound``) or its
            project does not exist (``ProjectNotFound``).
    """
    t_start = time.perf_counter()
    if not 0 < drift_share <= 1:
        raise InvalidArgument(f"drift_share must be in (0, 1], not {drift_share}")
    if chunk_rows < 1:
        raise InvalidArgument(f"chunk_rows must be at least 1, not {chunk_rows}")
    if bins < 1:
        raise InvalidArgument(f"bins must be at least 1, not {bins}")
    if isinstance(categorical, str):
        categorical = [categorical]
    forced = frozenset(categorical or ())
    overrides = {str(name): get_drift_test(t) for name, t in (tests or {}).items()}
    notes: list[str] = []
    timings: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        ref = _resolve(reference, "reference", client, project, stack)
        cur = _resolve(current, "current", client, project, stack)
        selected = _columns(ref, cur, columns, overrides)
        t0 = time.perf_counter()
        ref_profile = _profile_reference(ref, selected, bins, forced, category_cap, chunk_rows)
        timings["reference"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cur_profile = _profile_current(
            cur, ref_profile, selected, forced, category_cap, chunk_rows
        )
        timings["current"] = time.perf_counter() - t0
        if cur.kind == "profile" and _rebinned(ref_profile, cur_profile):
            notes.append(
                "the current profile was binned on other edges than the reference: its counts "
                "on the reference's bins are estimated from its quantile sketch"
            )
        t0 = time.perf_counter()
        comparison = compare_profiles(
            ref_profile, cur_profile, tests=overrides, drift_share=drift_share
        )
        if columns is None:
            comparison = replace(
                comparison,
                only_in_reference=tuple(n for n in ref.names if n not in cur.names),
                only_in_current=tuple(n for n in cur.names if n not in ref.names),
            )
        timings["compare"] = time.perf_counter() - t0
        exact_columns: tuple[str, ...] = ()
        if exact:
            t0 = time.perf_counter()
            comparison, exact_columns = _exact(comparison, ref_profile, ref, cur, overrides, notes)
            timings["exact"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    return DriftReport(
        comparison, ref_profile, cur_profile, exact, exact_columns, timings, tuple(notes)
    )


# --- resolving the inputs ------------------------------------------------------------------------


def _resolve(
    data: Any, side: Side, client: Client | None, project: str | None, stack: contextlib.ExitStack
) -> _Source:
    if isinstance(data, DatasetProfile):
        return _Source(side, "profile", list(data.column_names), profile=data)
    if isinstance(data, str) and data.startswith("datasets:"):
        return _dataset(data, side, client, project, stack)
    if isinstance(data, (str, os.PathLike)):
        return _file(Path(os.fspath(data)).expanduser(), side)
    if is_table(data):
        return _Source(side, "table", _table_names(data, side), table=data)
    raise InvalidArgument(
        f"the {side} must be {TABLE_TYPES}, the path of a Parquet or CSV file, a datasets:/ "
        f"URI or a DatasetProfile, not {type(data).__name__}"
    )


def _table_names(data: Any, side: Side) -> list[str]:
    """A table's column names, without converting it."""
    if isinstance(data, Mapping):
        names = [str(k) for k in data]
    else:
        module = type(data).__module__.split(".", 1)[0]
        if module == "pyarrow":
            names = [str(n) for n in data.schema.names]
        elif module == "polars" and type(data).__name__ == "LazyFrame":
            names = [str(n) for n in data.collect_schema().names()]
        else:  # pandas, polars
            names = [str(c) for c in data.columns]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InvalidArgument(f"the {side} data has duplicate columns {dup}; rename them")
    return names


def _file(path: Path, side: Side) -> _Source:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise InvalidArgument(f"the {side} file {str(path)!r} {what}")
    name = path.name.lower()
    kind: Literal["parquet", "csv"] | None = None
    if name.endswith(_PARQUET):
        kind = "parquet"
    elif name.endswith(_CSV):
        kind = "csv"
    else:
        with open(path, "rb") as f:
            kind = "parquet" if f.read(4) == b"PAR1" else None
    if kind is None:
        raise InvalidArgument(
            f"the {side} file {str(path)!r} is neither Parquet nor CSV (by its name or its "
            "content); convert it, or pass the data as a table"
        )
    if kind == "parquet":
        import pyarrow as pa

        try:
            meta = _parquet_reader(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidArgument(
                f"the {side} file {str(path)!r} is not a readable Parquet file: {exc}"
            ) from exc
        with contextlib.closing(meta):
            return _Source(
                side,
                "parquet",
                [str(n) for n in meta.schema_arrow.names],
                path=path,
                rows=meta.metadata.num_rows,
            )
    return _Source(side, "csv", _csv_names(path, side), path=path)


def _csv_options(path: Path) -> dict[str, Any]:
    import pyarrow.csv as pcsv

    name = path.name.lower()
    delimiter = "\t" if name.endswith((".tsv", ".tsv.gz")) else ","
    return {"parse_options": pcsv.ParseOptions(delimiter=delimiter)}


def _csv_names(path: Path, side: Side) -> list[str]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        reader = pcsv.open_csv(path, **_csv_options(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidArgument(f"the {side} file {str(path)!r} is not readable CSV: {exc}") from exc
    with contextlib.closing(reader):
        return [str(n) for n in reader.schema.names]


def _dataset(
    uri: str, side: Side, client: Client | None, project: str | None, stack: contextlib.ExitStack
) -> _Source:
    from loopml.client import context

    c = client if client is not None else context.get_client()
    version = c.get_dataset_version(uri, project=project or context.get_project())

    def fetch() -> Path:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loopml-drift-")))
        path = folder / f"{version.blob}.parquet"
        c.artifacts.get(version.blob, path)  # verified, then moved into place
        return path

    if version.profile_blob is not None:
        stored = DatasetProfile.from_json(c.artifacts.read(version.profile_blob).decode())
        return _Source(side, "profile", list(stored.column_names), profile=stored, fetch=fetch)
    source = _file(fetch(), side)
    source.raw = source.path
    return source


def _columns(
    ref: _Source,
    cur: _Source,
    columns: Sequence[str] | None,
    overrides: Mapping[str, DriftTest],
) -> list[str]:
    """The columns to compare, in reference order."""
    if isinstance(columns, str):
        columns = [columns]
    if columns is not None:
        for source in (ref, cur):
            missing = [c for c in columns if c not in source.names]
            if missing:
                raise InvalidArgument(
                    f"columns {missing} are not in {source.describe()}; its columns: "
                    f"{source.names}"
                )
        wanted = set(columns)
        selected = [n for n in ref.names if n in wanted]
    else:
        current = set(cur.names)
        selected = [n for n in ref.names if n in current]
    if not selected:
        raise InvalidArgument(
            f"the reference and the current data share no column; reference: {ref.names}, "
            f"current: {cur.names}"
        )
    stray = sorted(set(overrides) - set(selected))
    if stray:
        raise InvalidArgument(
            f"tests= names columns {stray} that are not compared; compared: {selected}"
        )
    return selected


# --- profiling ---------------------------------------------------------------------------------


def _select_profile(p: DatasetProfile, names: list[str]) -> DatasetProfile:
    if list(p.column_names) == names:
        return p
    wanted = set(names)
    cols = tuple(c for c in p.columns if c.name in wanted)
    return DatasetProfile(p.num_rows, cols, p.target if p.target in wanted else None)


def _select_table(data: Any, names: list[str]) -> Any:
    module = type(data).__module__.split(".", 1)[0]
    if isinstance(data, Mapping):
        wanted = set(names)
        return {k: v for k, v in data.items() if str(k) in wanted}
    if module == "pyarrow" or module == "polars":
        return data.select(names)
    return data[names]  # pandas


def _batches(source: _Source, names: list[str], chunk_rows: int) -> Iterator[Any]:
    """The file's record batches, ``chunk_rows`` rows at a time, only the named columns; the
    next batch is decoded on a reader thread while the caller profiles this one."""
    return _prefetch(_read_batches(source, names, chunk_rows))


def _prefetch(batches: Iterator[Any]) -> Iterator[Any]:
    """Iterate ``batches`` on a thread, one item ahead (Arrow decodes without the GIL).

    Both threads hand the memory of the batches they are done with back to the system at once
    (``release_unused``): Arrow's allocator otherwise keeps freed pages for a while, which
    doubled the report's memory.
    """
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        import pyarrow as pa

        pool = pa.default_memory_pool()
        try:
            for item in batches:
                pool.release_unused()
                while not stop.is_set():
                    try:
                        ahead.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            ahead.put(("error", exc))

    import pyarrow as pa

    pool = pa.default_memory_pool()
    thread = threading.Thread(target=produce, name="loopml-drift-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
            pool.release_unused()
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                ahead.get(timeout=0.1)


def _release() -> None:
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _read_batches(source: _Source, names: list[str], chunk_rows: int) -> Iterator[Any]:
    assert source.path is not None
    if source.kind == "parquet":
        # No pre-buffering: a row group's column chunks are read as the batches need them, so
        # a file written as one big row group does not land in memory whole. Text columns stay
        # dictionary-encoded, as Parquet stores them: categories are counted on their codes.
        reader = _parquet_reader(source.path, names, pre_buffer=False, buffer_size=1 << 20)
        with contextlib.closing(reader):
            # One decoding thread (this reader's): the profiler works on the other core.
            yield from reader.iter_batches(
                chunk_rows,
                range(reader.num_row_groups),
                column_indices=[reader.column_name_idx(n) for n in names],
                use_threads=False,
            )
        return
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        source.path,
        read_options=pcsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 64)),
        convert_options=pcsv.ConvertOptions(include_columns=names),
        **_csv_options(source.path),
    )
    with contextlib.closing(reader):
        yield from reader


def _parquet_reader(path: Path, text_of: Sequence[str] = (), **options: Any) -> Any:
    """An open Parquet reader of ``path`` (close it); the columns of ``text_of`` that hold text
    are read dictionary-encoded, as Parquet stores them.

    The reader under :class:`pyarrow.parquet.ParquetFile`: ``pyarrow.parquet`` itself imports
    pyarrow's file systems and datasets (and their libraries, 15 MB resident) for nothing here.
    """
    import pyarrow as pa
    from pyarrow._parquet import ParquetReader

    reader = ParquetReader()
    reader.open(str(path), **options)
    wanted = set(text_of)
    text = [
        i
        for i, f in enumerate(reader.schema_arrow)
        if f.name in wanted and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    if text:  # reopened with the footer already parsed
        metadata = reader.metadata
        reader.close()
        reader = ParquetReader()
        reader.open(str(path), metadata=metadata, read_dictionary=text, **options)
    return reader


def _read_whole(source: _Source, names: list[str]) -> Any:
    assert source.path is not None
    # Not pyarrow.parquet.read_table: it goes through pyarrow.dataset, which imports pandas
    # (140 MB here) for nothing.
    reader = _parquet_reader(source.path, names)
    with contextlib.closing(reader):
        return reader.read_all(
            column_indices=[reader.column_name_idx(n) for n in names], use_threads=False
        )


def _groups(source: _Source, names: list[str]) -> list[list[str]]:
    """Column groups read one after the other from a Parquet file: a batch then holds
    ``chunk_rows`` rows of one column (1 MiB by default), not of the whole table. Parquet
    stores columns apart, so reading them group by group costs no more decoding. A CSV file is
    parsed whole, once per pass."""
    if source.kind != "parquet":
        return [names]
    return [names[i : i + GROUP_COLUMNS] for i in range(0, len(names), GROUP_COLUMNS)]


def _concat(parts: list[DatasetProfile]) -> DatasetProfile:
    """One profile of the columns of group profiles of the same rows."""
    if len(parts) == 1:
        return parts[0]
    columns = tuple(c for p in parts for c in p.columns)
    return DatasetProfile(max(p.num_rows for p in parts), columns)


def _profile_reference(
    source: _Source,
    names: list[str],
    bins: int,
    categorical: frozenset[str],
    cap: int,
    chunk_rows: int,
) -> DatasetProfile:
    forced = [c for c in categorical if c in names]
    if source.kind == "profile":
        assert source.profile is not None
        return _select_profile(source.profile, names)
    if source.kind == "table":
        return profile(
            _select_table(source.table, names), bins=bins, categorical=forced, category_cap=cap
        )
    parts = []
    for group in _groups(source, names):
        if source.kind == "parquet" and source.rows is not None and source.rows <= chunk_rows:
            # one chunk: read it whole and take exact quantile edges from it
            table = _read_whole(source, group)
            parts.append(profile(table, bins=bins, categorical=forced, category_cap=cap))
            del table
            _release()
            continue
        parts.append(
            profile_chunks(
                lambda group=group: _batches(source, group, chunk_rows),  # type: ignore[misc]
                bins=bins,
                categorical=[c for c in forced if c in group],
                category_cap=cap,
                recount=lambda numeric: _batches(source, numeric, chunk_rows),
            )
        )
    return _concat(parts)


def _profile_current(
    source: _Source,
    reference: DatasetProfile,
    names: list[str],
    categorical: frozenset[str],
    cap: int,
    chunk_rows: int,
) -> DatasetProfile:
    if source.kind == "profile":
        assert source.profile is not None
        return _select_profile(source.profile, names)
    edges = reference.edges()
    if source.kind == "table":
        builder = ProfileBuilder(
            edges={k: v for k, v in edges.items() if k in set(names)},
            categorical=[c for c in categorical if c in names],
            category_cap=cap,
        )
        return builder.update(_select_table(source.table, names)).result()
    parts = []
    for group in _groups(source, names):
        builder = ProfileBuilder(
            edges={k: v for k, v in edges.items() if k in set(group)},
            categorical=[c for c in categorical if c in group],
            category_cap=cap,
        )
        if source.rows == 0:  # no batches to read: the schema's columns, empty
            builder.update(_read_whole(source, group))
        for batch in _batches(source, group, chunk_rows):
            builder.update(batch)
        parts.append(builder.result())
    return _concat(parts)


def _rebinned(reference: DatasetProfile, current: DatasetProfile) -> bool:
    for col in reference.columns:
        if isinstance(col, NumericProfile) and col.name in current:
            other = current[col.name]
            if isinstance(other, NumericProfile) and other.edges and other.edges != col.edges:
                return True
    return False


# --- exact tests --------------------------------------------------------------------------------


def _raw_values(
    source: _Source, name: str, kind: Any
) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    """One numeric column's finite values, or None when the raw data are not at hand."""
    if source.kind == "table":
        _, cols, _ = table_columns(_select_table(source.table, [name]), what=source.describe())
        column = cols[0]
    else:
        path = source.raw or source.path
        if path is None and source.fetch is not None:
            path = source.raw = source.fetch()
        if path is None:
            return None
        column = _read_column(path, name, "csv" if source.kind == "csv" else "parquet")
    values, _ = numeric_values(column, kind)
    return values[np.isfinite(values)]


def _read_column(path: Path, name: str, kind: str) -> Any:
    if kind == "csv":
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(include_columns=[name]),
            **_csv_options(path),
        )
    else:
        reader = _parquet_reader(path)
        with contextlib.closing(reader):
            table = reader.read_all(column_indices=[reader.column_name_idx(name)])
    return table.column(0)


def _exact(
    comparison: ProfileComparison,
    reference: DatasetProfile,
    ref: _Source,
    cur: _Source,
    overrides: Mapping[str, DriftTest],
    notes: list[str],
) -> tuple[ProfileComparison, tuple[str, ...]]:
    """The comparison with KS and Wasserstein recomputed on raw values, and which columns."""
    from loopml.stats import drift
    from loopml.stats.stattests import KS, Wasserstein

    out: list[ColumnDrift] = []
    skipped: list[str] = []
    done: list[str] = []
    for col in comparison.columns:
        ref_col = reference[col.column]
        test = overrides.get(col.column) or default_test(ref_col)
        if (
            col.result.test == "type"
            or isinstance(ref_col, CategoricalProfile)
            or not isinstance(test, (KS, Wasserstein))
        ):
            out.append(col)
            continue
        a = _raw_values(ref, col.column, ref_col.kind)
        b = _raw_values(cur, col.column, ref_col.kind) if a is not None else None
        if a is None or b is None:
            skipped.append(col.column)
            out.append(col)
            continue
        if isinstance(test, KS):
            stat, p = drift.ks_exact(a, b)
            drifted = not math.isnan(p) and p < test.threshold
            result = DriftResult(test.name, stat, p, test.threshold, drifted)
        else:
            stat = drift.wasserstein_exact(a, b)
            if test.normed and not math.isnan(stat):
                stat /= max(float(np.std(a)), drift.WASSERSTEIN_STD_FLOOR)
            drifted = not math.isnan(stat) and stat >= test.threshold
            result = DriftResult(test.name, stat, None, test.threshold, drifted)
        out.append(replace(col, result=result))
        done.append(col.column)
    if skipped:
        notes.append(
            f"exact tests need both sides' raw values; columns {skipped} were tested on bins "
            "(a side was given as a profile)"
        )
    return replace(comparison, columns=tuple(out)), tuple(done)
