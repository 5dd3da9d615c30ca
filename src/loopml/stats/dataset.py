"""Dataset profiles: build them from a frame or a stream of chunks, merge, save and load.

A :class:`DatasetProfile` is the row count, the ordered column profiles and the target column.
Build one with :func:`profile` (one frame) or :class:`ProfileBuilder` (chunks). Profiles built on
the same histogram edges merge exactly (``a.merge(b)``, ``a + b``, ``sum(profiles)``,
:func:`merge_all`). For a file too big for memory, either give fixed edges up front (a reference
profile's) or make two passes: :class:`EdgeFinder` over the chunks for quantile edges, then a
:class:`ProfileBuilder` with those edges (:func:`profile_chunks` does both).
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, InvalidData
from loopml.stats._build import (
    Acc,
    CategoricalAcc,
    Column,
    Kind,
    NumericAcc,
    PreparedNumeric,
    all_null,
    check_edges,
    column_kind,
    dtype_name,
    numeric_values,
    prepare_numeric,
    table_columns,
)
from loopml.stats.columns import (
    DEFAULT_CATEGORY_CAP,
    ColumnProfile,
    NumericProfile,
    column_from_dict,
    merge_columns,
)
from loopml.stats.sketch import DEFAULT_K

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FORMAT",
    "DatasetProfile",
    "ProfileBuilder",
    "merge_all",
    "profile",
]

PARALLEL_ROWS = 100_000
"""Chunks at least this long overlap one column's sorting with another's sketch update."""

FORMAT = 1
"""Version of the :meth:`DatasetProfile.to_dict` layout."""


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    """The profile of a table: row count, one profile per column (in order), the target.

    Attributes:
        num_rows: rows profiled.
        columns: column profiles, in the table's column order.
        target: name of the target column, if one was named.
    """

    num_rows: int
    columns: tuple[ColumnProfile, ...]
    target: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InvalidArgument(f"a profile cannot hold two columns named {dup}")
        if self.target is not None and self.target not in names:
            raise InvalidArgument(f"target column {self.target!r} is not among columns {names}")

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names, in order."""
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(
            f"column {name!r} is not in this profile; columns: {list(self.column_names)}"
        )

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def __iter__(self) -> Iterator[ColumnProfile]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def edges(self) -> dict[str, tuple[float, ...]]:
        """Histogram edges of every numeric column that has them (pass as ``edges=``)."""
        return {c.name: c.edges for c in self.columns if isinstance(c, NumericProfile) and c.edges}

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        """The profile of both tables' rows together.

        Raises:
            InvalidArgument: the profiles have different columns, kinds or edges, or targets.
        """
        if self.column_names != other.column_names:
            raise InvalidArgument(
                f"cannot merge profiles of different columns: {list(self.column_names)} and "
                f"{list(other.column_names)}"
            )
        if self.target != other.target and None not in (self.target, other.target):
            raise InvalidArgument(
                f"cannot merge profiles with different targets {self.target!r} and "
                f"{other.target!r}"
            )
        cols = tuple(a.merge(b) for a, b in zip(self.columns, other.columns, strict=True))
        return DatasetProfile(self.num_rows + other.num_rows, cols, self.target or other.target)

    def __add__(self, other: DatasetProfile) -> DatasetProfile:
        if not isinstance(other, DatasetProfile):
            return NotImplemented
        return self.merge(other)

    def __radd__(self, other: object) -> DatasetProfile:
        if other == 0:  # sum() starts from 0
            return self
        return NotImplemented

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe, versioned dict (``format: 1``); sketches as base64."""
        return {
            "format": FORMAT,
            "num_rows": self.num_rows,
            "target": self.target,
            "columns": [c.to_dict() for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetProfile:
        """Rebuild a profile from :meth:`to_dict` output.

        Raises:
            InvalidArgument: the dict is not a profile or has a format this version cannot read.
        """
        if not isinstance(data, Mapping) or "columns" not in data:
            raise InvalidArgument("not a dataset profile: expected a dict with 'columns'")
        fmt = data.get("format")
        if fmt != FORMAT:
            raise InvalidArgument(
                f"dataset profile has format {fmt!r}; this loopml reads format {FORMAT}: "
                "upgrade loopml to read it"
            )
        try:
            cols = tuple(column_from_dict(c) for c in data["columns"])
            return cls(int(data["num_rows"]), cols, data.get("target"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"dataset profile is malformed: {exc!r}") from exc

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as JSON text (keyword arguments go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> DatasetProfile:
        """Rebuild a profile from :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"dataset profile is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def to_pandas(self) -> pd.DataFrame:
        """One row per column: kind, counts, nulls, moments, min/max, median, top category."""
        import pandas as pd

        rows = []
        for c in self.columns:
            row: dict[str, Any] = {
                "column": c.name,
                "kind": c.kind,
                "count": c.count,
                "nulls": c.nulls,
            }
            if isinstance(c, NumericProfile):
                row.update(
                    mean=c.display(c.mean),
                    std=c.std,
                    min=c.min_display,
                    median=c.display(c.quantile(0.5)) if c.finite else None,
                    max=c.max_display,
                )
            else:
                top = c.top(1).categories
                row.update(distinct=c.n_categories, top=top[0][0] if top else None)
            rows.append(row)
        return pd.DataFrame(rows).set_index("column")

    def __str__(self) -> str:
        return (
            f"DatasetProfile({self.num_rows} rows, {len(self.columns)} columns"
            + (f", target {self.target!r}" if self.target else "")
            + ")"
        )


EdgesArg = Mapping[str, Sequence[float]] | DatasetProfile | None
"""Fixed histogram edges: column -> edges, or a profile whose edges to reuse."""


def merge_all(profiles: Iterable[DatasetProfile]) -> DatasetProfile:
    """Merge profiles of the same columns built on the same edges (e.g. chunks or windows).

    Raises:
        InvalidArgument: no profiles, or they cannot be merged.
    """
    parts = list(profiles)
    if not parts:
        raise InvalidArgument("merge_all needs at least one profile")
    first = parts[0]
    targets = {p.target for p in parts} - {None}
    if (
        len(parts) <= 2
        or len(targets) > 1
        or any(p.column_names != first.column_names for p in parts)
    ):
        out = first
        for p in parts[1:]:
            out = out.merge(p)  # raises what is wrong
        return out
    # Many profiles (e.g. a month of window profiles): column by column, in one step each.
    columns = tuple(
        merge_columns([p.columns[i] for p in parts]) for i in range(len(first.columns))
    )
    return DatasetProfile(
        sum(p.num_rows for p in parts), columns, next(iter(targets)) if targets else None
    )


def edges_by_column(edges: EdgesArg) -> dict[str, tuple[float, ...]]:
    if edges is None:
        return {}
    if isinstance(edges, DatasetProfile):
        return edges.edges()
    if not isinstance(edges, Mapping):
        raise InvalidArgument(
            f"edges must be a mapping of column -> edges or a DatasetProfile, not "
            f"{type(edges).__name__}"
        )
    return {str(k): check_edges(str(k), v) for k, v in edges.items()}


class ProfileBuilder:
    """Builds a :class:`DatasetProfile` from chunks of one table.

    Every chunk must have the same columns. A numeric column is binned on the edges given for
    it, else on quantile edges taken from the first chunk in which it has finite values (good
    when chunks are shuffled; for a sorted file, find the edges in a first pass with
    :class:`EdgeFinder`, or use :func:`profile_chunks`). Counts are exact on those edges.

    Args:
        edges: fixed histogram edges per numeric column (column -> edges), or a profile whose
            edges to reuse (e.g. the reference a window is compared with).
        bins: bins per numeric column when the edges come from the data (quantile edges).
            A column with at most ``bins`` distinct values gets one bin per value.
        target: name of the target column.
        categorical: columns to profile as categories whatever their dtype (e.g. integer codes).
            Otherwise object, string and category columns are categorical, bool columns are
            boolean, datetimes are datetime and other numbers are numeric.
        category_cap: categories counted exactly per column; rarer ones fold into ``other``.
        sketch_k: KLL sketch accuracy (rank error about 1.65/k).
    """

    def __init__(
        self,
        *,
        edges: EdgesArg = None,
        bins: int = 20,
        target: str | None = None,
        categorical: Collection[str] | None = None,
        category_cap: int = DEFAULT_CATEGORY_CAP,
        sketch_k: int = DEFAULT_K,
    ) -> None:
        if bins < 1:
            raise InvalidArgument(f"bins must be at least 1, not {bins}")
        if category_cap < 1:
            raise InvalidArgument(f"category_cap must be at least 1, not {category_cap}")
        if isinstance(categorical, str):
            categorical = [categorical]
        self._edges = edges_by_column(edges)
        self._bins = bins
        self._target = target
        self._categorical = frozenset(categorical or ())
        self._cap = category_cap
        self._k = sketch_k
        self._accs: dict[str, Acc] | None = None
        self._rows = 0

    def _new_acc(self, name: str, kind: Kind) -> Acc:
        if kind == "categorical" or kind == "boolean":
            return CategoricalAcc(name, kind, self._cap)
        return NumericAcc(name, kind, self._edges.get(name), self._bins, self._k)

    def _start(self, names: list[str], columns: list[Column]) -> dict[str, Acc]:
        unknown = sorted(self._categorical - set(names))
        if unknown:
            raise InvalidArgument(
                f"columns {unknown} named in categorical= are not in the data; columns: {names}"
            )
        if self._target is not None and self._target not in names:
            raise InvalidArgument(
                f"target column {self._target!r} is not in the data; columns: {names}"
            )
        accs: dict[str, Acc] = {}
        for name, column in zip(names, columns, strict=True):
            kind = column_kind(column, name in self._categorical)
            accs[name] = self._new_acc(name, kind)
        return accs

    def update(self, chunk: Any) -> ProfileBuilder:
        """Add a chunk (pandas, polars, pyarrow, or a dict of columns); returns the builder.

        Arrow data (a pyarrow Table or RecordBatch, a polars frame) is read as Arrow, without
        converting it to pandas.

        Raises:
            InvalidData: the chunk is not a table, or its columns differ from the first chunk's,
                or a column changed from numbers to text.
        """
        names, columns, rows = table_columns(
            chunk, what="the chunk to profile", categorical=self._categorical
        )
        if self._accs is None:
            self._accs = self._start(names, columns)
        if names != list(self._accs):
            raise InvalidData(
                f"chunk columns {names} differ from the first chunk's {list(self._accs)}; "
                "every chunk of a table must have the same columns in the same order"
            )
        numeric: list[tuple[NumericAcc, Column]] = []
        for name, column in zip(names, columns, strict=True):
            acc = self._column_acc(name, column)
            if isinstance(acc, NumericAcc):
                numeric.append((acc, column))
            elif acc is not None:
                acc.update(column)
        self._update_numeric(numeric, rows)
        self._rows += rows
        return self

    def _update_numeric(self, columns: list[tuple[NumericAcc, Column]], rows: int) -> None:
        def prepare(item: tuple[NumericAcc, Column]) -> PreparedNumeric:
            acc, column = item
            return prepare_numeric(*numeric_values(column, acc.kind))

        if rows < PARALLEL_ROWS or len(columns) < 2:
            for item in columns:
                item[0].apply(prepare(item))
            return
        # Sorting and moments (numpy, GIL released) for the next columns run on a worker thread
        # while this thread feeds the current column to its KLL sketch (which holds the GIL).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="loopml-profile") as pool:
            ahead: deque[Future[PreparedNumeric]] = deque()
            queue = iter(columns)
            for item in itertools.islice(queue, 2):
                ahead.append(pool.submit(prepare, item))
            for acc, _ in columns:
                prepared = ahead.popleft().result()
                for item in itertools.islice(queue, 1):
                    ahead.append(pool.submit(prepare, item))
                acc.apply(prepared)

    def _column_acc(self, name: str, column: Column) -> Acc | None:
        """The column's accumulator, swapped for a new kind if it only saw nulls so far."""
        assert self._accs is not None
        acc = self._accs[name]
        kind = column_kind(column, name in self._categorical)
        if kind != acc.kind and not (
            {kind, acc.kind} <= {"categorical", "boolean"} and isinstance(acc, CategoricalAcc)
        ):
            if all_null(column):
                acc.nulls += len(column)
                return None
            if acc.count == 0:
                nulls = acc.nulls
                acc = self._accs[name] = self._new_acc(name, kind)
                acc.nulls = nulls
            else:
                raise InvalidData(
                    f"column {name!r} held {acc.kind} values in earlier chunks but "
                    f"{dtype_name(column)} ({kind}) values in this one; cast it to one type"
                )
        return acc

    def result(self) -> DatasetProfile:
        """The profile of every chunk so far (the builder can go on taking chunks)."""
        if self._accs is None:
            return DatasetProfile(0, (), None)
        cols = tuple(acc.result() for acc in self._accs.values())
        return DatasetProfile(self._rows, cols, self._target)


def profile(
    data: Any,
    *,
    edges: EdgesArg = None,
    bins: int = 20,
    target: str | None = None,
    categorical: Collection[str] | None = None,
    category_cap: int = DEFAULT_CATEGORY_CAP,
    sketch_k: int = DEFAULT_K,
) -> DatasetProfile:
    """Profile one table (pandas, polars, pyarrow, or a dict of columns).

    Args:
        data: the table.
        edges: fixed histogram edges per numeric column, or a profile whose edges to reuse;
            other numeric columns get ``bins`` quantile bins from this data.
        bins: bins per numeric column when its edges come from the data.
        target: name of the target column.
        categorical: columns to treat as categories whatever their dtype.
        category_cap: categories counted exactly per column.
        sketch_k: KLL sketch accuracy.

    Returns:
        The dataset profile.

    Raises:
        InvalidData: ``data`` is not a table.
        InvalidArgument: bad edges, or a named column is not in the data.
    """
    builder = ProfileBuilder(
        edges=edges,
        bins=bins,
        target=target,
        categorical=categorical,
        category_cap=category_cap,
        sketch_k=sketch_k,
    )
    return builder.update(data).result()
