"""Request data in, model input out: the signature checked on every request, fast.

Every protocol parses its body into one of three shapes (:class:`Columns`, rows of a table or
tensors) and calls :meth:`InputPlan.decode`, which returns a :class:`Decoded` (a dict of column
arrays in the signature's order, or tensors) or raises
:class:`~loopml.errors.SignatureMismatch` naming every problem (column, expected, got).

The common case, numeric columns with plain JSON numbers, is decoded without pandas: a type
check over each column's values and one NumPy conversion. Anything else (text, nulls, dates,
a wrong type) goes through :meth:`ModelSignature.prepare
<loopml.models.signature.ModelSignature.prepare>`, so both paths accept and refuse exactly the
same input and report the same problems.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.models._inputs import mismatch
from loopml.schema import ColumnType, Schema

if TYPE_CHECKING:
    from loopml.models.predictor import Predictor

__all__ = ["Decoded", "InputPlan", "columns_from_records", "columns_from_rows"]

Columns = dict[str, Any]
"""Column name to its values (a list from JSON, or an array)."""

_INT64_MAX = 2**63 - 1
_NUMBER_TYPES = frozenset({int, float})
_WHOLE = "(input)"


@dataclass(slots=True)
class Decoded:
    """Checked input of one request, and its number of ``rows``: ``matrix`` (a 2-D float array
    whose columns are ``names``, the fast path for numeric tables), ``columns`` (tabular; arrays
    or Series in the signature's order) or ``tensors`` (one array, or a dict of arrays)."""

    rows: int
    columns: dict[str, Any] | None = None
    tensors: Any = None
    matrix: np.ndarray[Any, Any] | None = None
    names: Sequence[str] = ()

    def column_map(self) -> dict[str, Any] | None:
        """The input as columns (views of the matrix, when that is the form), or None for
        tensors."""
        if self.columns is not None:
            return self.columns
        if self.matrix is not None:
            return {n: self.matrix[:, i] for i, n in enumerate(self.names)}
        return None


def columns_from_records(records: Sequence[Any]) -> Columns | None:
    """Records (a list of dicts with the same keys in the same order) as columns, or None when
    they are not that regular (the caller then takes the general path)."""
    if not records or not isinstance(records[0], dict):
        return None
    keys = list(records[0])
    for record in records:
        if not isinstance(record, dict) or list(record) != keys:
            return None
    return {k: [r[k] for r in records] for k in keys}


def columns_from_rows(rows: Sequence[Any], names: Sequence[str]) -> Columns | None:
    """Positional rows (a list of lists, columns in ``names``' order) as columns, or None when
    they are not all lists of that length."""
    width = len(names)
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            return None
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


class InputPlan:
    """How one model's requests are checked and turned into model input.

    Args:
        predictor: the loaded model.
        extra: ``"error"`` refuses columns the signature does not list, ``"drop"`` drops them.
    """

    def __init__(self, predictor: Predictor, *, extra: Literal["error", "drop"] = "error") -> None:
        self.predictor = predictor
        self.extra = extra
        signature = predictor.signature
        self.schema: Schema | None = None
        self.tensor = signature is not None and not signature.is_tabular
        self.names: list[str] = []
        self._numeric: dict[str, bool] = {}  # column -> integer column?
        if signature is not None and isinstance(signature.inputs, Schema):
            self.schema = signature.inputs
            self.names = signature.inputs.names
            for col in signature.inputs.columns:
                if col.type in (ColumnType.FLOAT, ColumnType.INTEGER) and not col.nullable:
                    self._numeric[col.name] = col.type == ColumnType.INTEGER
        self._text_labels = _text_label_columns(predictor, self.schema)
        self.all_numeric = bool(self.names) and len(self._numeric) == len(self.names)
        self.all_float = self.all_numeric and not any(self._numeric.values())
        self._name_set = frozenset(self.names)
        self.drops_extra = extra == "drop" or (
            self.schema is not None and self.schema.allow_extra_columns
        )

    # --- tabular -----------------------------------------------------------------------------

    def decode_columns(self, columns: Columns) -> Decoded:
        """Check a dict of columns against the signature.

        Raises:
            SignatureMismatch: every problem, one dict each (``column``, ``expected``, ``got``).
        """
        if not isinstance(columns, Mapping) or not columns:
            raise mismatch(
                [{"column": _WHOLE, "expected": "a table with columns", "got": "no columns"}]
            )
        if self.schema is None:
            return self._general(columns)
        lengths = {len(v) if isinstance(v, list | np.ndarray) else -1 for v in columns.values()}
        if len(lengths) != 1 or -1 in lengths:
            if -1 in lengths:  # one row given as scalars
                return self._general({k: [v] for k, v in columns.items()})
            raise mismatch(
                [
                    {
                        "column": _WHOLE,
                        "expected": "columns of equal length",
                        "got": f"lengths {sorted(lengths)}",
                    }
                ]
            )
        if not next(iter(lengths)):
            raise mismatch([{"column": _WHOLE, "expected": "at least one row", "got": "none"}])
        if self.extra == "error" and not self.drops_extra and len(columns) != len(self.names):
            return self._general(columns)
        out: dict[str, Any] = {}
        for name in self.names:
            values = columns.get(name)
            integer = self._numeric.get(name)
            if values is None or integer is None:
                return self._general(columns)
            array = _numbers(values, integer)
            if array is None:
                return self._general(columns)
            out[name] = array
        return Decoded(rows=lengths.pop(), columns=out)

    def decode_matrix(self, rows: Sequence[Any]) -> Decoded | None:
        """The fast path for a table of float columns: positional rows (lists in the
        signature's order) of plain JSON numbers become one float array; None when the rows
        are anything else (the caller takes the general path, which reports problems)."""
        if not self.all_float or not rows:
            return None
        width = len(self.names)
        for row in rows:
            if type(row) is not list or len(row) != width:
                return None
        if not set(map(type, itertools.chain.from_iterable(rows))) <= _NUMBER_TYPES:
            return None
        try:
            matrix = np.array(rows, dtype=np.float64)
        except OverflowError:
            return None
        return Decoded(rows=len(rows), matrix=matrix, names=self.names)

    def decode_records(self, records: Sequence[Any]) -> Decoded | None:
        """The fast path for records (dicts) of a float table, or None (see
        :meth:`decode_matrix`). Extra keys are refused unless the plan drops them."""
        if not self.all_float or not records:
            return None
        names, name_set = self.names, self._name_set
        exact = not self.drops_extra
        rows = []
        for record in records:
            if type(record) is not dict:
                return None
            keys = record.keys()
            if (keys != name_set) if exact else not name_set <= keys:
                return None
            rows.append([record[n] for n in names])
        return self.decode_matrix(rows)

    def decode_split(self, columns: Sequence[Any], rows: Sequence[Any]) -> Decoded | None:
        """The fast path for a table given as column names and positional rows (MLflow's
        ``dataframe_split``), or None."""
        if not self.all_float:
            return None
        if list(columns) == self.names:
            return self.decode_matrix(rows)
        if len(set(columns)) != len(columns) or not self._name_set <= set(columns):
            return None
        if not self.drops_extra and len(columns) != len(self.names):
            return None
        index = [list(columns).index(n) for n in self.names]
        try:
            return self.decode_matrix([[row[i] for i in index] for row in rows])
        except (IndexError, TypeError):
            return None

    def _general(self, columns: Mapping[str, Any]) -> Decoded:
        """The exact path: through the signature's own ``prepare`` (pandas)."""
        import pandas as pd

        try:
            frame = pd.DataFrame({k: _as_list(v) for k, v in columns.items()})
        except (ValueError, TypeError) as exc:
            raise mismatch(
                [{"column": _WHOLE, "expected": "a table", "got": str(exc)[:200]}]
            ) from None
        if frame.empty:
            raise mismatch([{"column": _WHOLE, "expected": "at least one row", "got": "none"}])
        prepared = self.predictor.prepare(frame, extra="drop" if self.drops_extra else "error")
        if not hasattr(prepared, "columns"):  # no signature: a table as given
            prepared = frame
        problems: list[dict[str, object]] = []
        for name in self._text_labels:
            if name in prepared.columns:
                kinds = {type(v).__name__ for v in prepared[name].dropna().tolist()}
                if kinds - {"str"}:
                    got = ", ".join(sorted(kinds - {"str"}))
                    problems.append(
                        {"column": name, "expected": "categorical (text labels)", "got": got}
                    )
        if problems:
            raise mismatch(problems)
        return Decoded(
            rows=len(prepared),
            columns={str(c): prepared[c].reset_index(drop=True) for c in prepared.columns},
        )

    # --- tensors -----------------------------------------------------------------------------

    def decode_tensors(self, data: Any) -> Decoded:
        """Check tensor input (an array, nested lists, or a dict of them) against the
        signature.

        Raises:
            SignatureMismatch: the tensors break the signature.
        """
        prepared = self.predictor.prepare(data)
        if isinstance(prepared, Mapping):
            first = next(iter(prepared.values()), None)
            rows = len(first) if first is not None else 0
        else:
            prepared = np.asarray(prepared)
            rows = len(prepared) if prepared.ndim else 1
        return Decoded(rows=rows, tensors=prepared)

    def decode_rows(self, rows: Sequence[Any]) -> Decoded:
        """Positional rows (lists in the signature's column order) or a tensor batch."""
        if self.tensor:
            return self.decode_tensors(rows)
        if not self.names:
            array = np.asarray(rows)
            if array.ndim != 2:
                raise mismatch(
                    [
                        {
                            "column": _WHOLE,
                            "expected": "rows of equal length",
                            "got": f"an array of shape {array.shape}",
                        }
                    ]
                )
            return self._general({str(i): array[:, i] for i in range(array.shape[1])})
        fast = self.decode_matrix(rows)
        if fast is not None:
            return fast
        columns = columns_from_rows(rows, self.names)
        if columns is None:
            widths = sorted({len(r) if isinstance(r, list) else -1 for r in rows})
            got = "rows that are not lists" if -1 in widths else f"rows of {widths} values"
            raise mismatch(
                [
                    {
                        "column": _WHOLE,
                        "expected": f"rows of {len(self.names)} values ({', '.join(self.names)})",
                        "got": got,
                    }
                ]
            )
        return self.decode_columns(columns)


def _text_label_columns(predictor: Predictor, schema: Schema | None) -> frozenset[str]:
    """Categorical columns whose labels are text in the model's input example: a number sent
    for one is refused (the signature alone allows integer labels too)."""
    if schema is None:
        return frozenset()
    categorical = [c.name for c in schema.columns if c.type == ColumnType.CATEGORICAL]
    if not categorical:
        return frozenset()
    try:
        example = predictor.input_example
    except Exception:  # no readable example: nothing to learn from
        return frozenset()
    if example is None or not hasattr(example, "columns"):
        return frozenset()
    out = set()
    for name in categorical:
        if name in example.columns:
            values = example[name].dropna().tolist()
            if values and all(isinstance(v, str) for v in values):
                out.add(name)
    return frozenset(out)


def _as_list(values: Any) -> Any:
    return values if isinstance(values, list | np.ndarray) else [values]


def _numbers(values: Any, integer: bool) -> np.ndarray[Any, Any] | None:
    """A list of plain JSON numbers as an array, or None when anything else is in it (a bool,
    null, text, a fractional value for an integer column: the general path reports those)."""
    if isinstance(values, np.ndarray):
        kind = values.dtype.kind
        if integer:
            if kind == "u" and values.size and values.max() > _INT64_MAX:
                return None  # the general path names the values beyond int64
            return values.astype(np.int64, copy=False) if kind in "iu" else None
        if kind not in "iuf":
            return None
        floats = values.astype(np.float64, copy=False)
        return floats if np.isfinite(floats).all() else None  # NaN: a null, reported there
    types = set(map(type, values))
    if integer:
        if types != {int}:
            return None
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            return None
    if not types <= _NUMBER_TYPES:
        return None
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:  # an integer beyond float range
        return None


def column_stack(columns: Mapping[str, Any], names: Sequence[str]) -> np.ndarray[Any, Any]:
    """Numeric columns as one 2-D float array, in ``names``' order."""
    return np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in names])
