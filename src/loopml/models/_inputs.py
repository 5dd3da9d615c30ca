"""Model input in, the shape a signature promises out: tables, tensors, and every problem found.

:meth:`ModelSignature.prepare <loopml.models.signature.ModelSignature.prepare>` calls these.
Each check collects problems instead of stopping at the first, so one
:class:`~loopml.errors.SignatureMismatch` names every missing, extra and mistyped column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from loopml.errors import InvalidData, SignatureMismatch
from loopml.schema import ColumnSchema, ColumnType, Schema

if TYPE_CHECKING:
    import pandas as pd

    from loopml.models.signature import Extra, TensorSpec

__all__ = [
    "array_frame",
    "as_array",
    "as_frame",
    "is_tensor_dict",
    "mismatch",
    "prepare_table",
    "prepare_tensor",
    "prepare_tensors",
]

Problem = dict[str, object]
_MAX_LISTED = 50  # problems spelled out in the message (all of them stay in .problems)


def _root(obj: object) -> str:
    return type(obj).__module__.split(".", 1)[0]


def as_array(data: Any) -> np.ndarray[Any, Any] | None:
    """``data`` as a NumPy array when it is one (or a torch tensor, or a flat list), else None."""
    if isinstance(data, np.ndarray):
        return data
    if _root(data) == "torch" and hasattr(data, "detach"):
        return np.asarray(data.detach().cpu().numpy())
    if isinstance(data, list | tuple) and data and not isinstance(data[0], Mapping):
        try:
            return np.asarray(data)
        except ValueError:  # ragged nested lists: not an array
            return None
    return None


def is_tensor_dict(data: Any) -> bool:
    """Whether ``data`` is a dict of name to arrays of rank 2 or more (several tensors)."""
    if not isinstance(data, Mapping) or not data:
        return False
    arrays = [as_array(v) for v in data.values()]
    return all(a is not None and a.ndim >= 2 for a in arrays)


def array_frame(array: np.ndarray[Any, Any], names: Sequence[str] | None = None) -> pd.DataFrame:
    """A 2-D array as a DataFrame with columns ``"0"``, ``"1"``... (or ``names``)."""
    import pandas as pd

    columns = list(names) if names is not None else [str(i) for i in range(array.shape[1])]
    return pd.DataFrame(array, columns=columns)


def as_frame(data: Any) -> pd.DataFrame | None:
    """A table in any accepted form as a DataFrame, or None when ``data`` is not a table."""
    import pandas as pd

    from loopml._frames import as_pandas, is_table

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        if data and all(_is_scalar(v) for v in data.values()):
            return pd.DataFrame([dict(data)])  # one row
        try:
            return as_pandas(data)
        except (InvalidData, ValueError, TypeError):  # ragged columns: "not a table"
            return None
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and all(isinstance(r, Mapping) for r in data):
            return pd.DataFrame.from_records(list(data))
        if not data:
            return pd.DataFrame()
        return None
    if is_table(data):
        return as_pandas(data)
    return None


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | bytes | int | float | bool | np.generic)


_WHOLE = "(input)"  # the "column" of a problem with the input as a whole


def _label(column: object) -> str:
    return _WHOLE if column == _WHOLE else f"column {str(column)!r}"


def _raise(problems: list[Problem]) -> NoReturn:
    raise mismatch(problems)


def mismatch(problems: list[Problem]) -> SignatureMismatch:
    """The error for these problems (a message listing them, and ``problems``)."""
    listed = "; ".join(
        f"{_label(p['column'])}: expected {p['expected']}, got {p['got']}"
        for p in problems[:_MAX_LISTED]
    )
    more = f"; and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return SignatureMismatch(
        f"the input does not match the model's signature ({count}): {listed}{more}", problems
    )


# --- tables ----------------------------------------------------------------------------------


def prepare_table(data: Any, schema: Schema, *, extra: Extra) -> pd.DataFrame:
    """Make ``data`` fit a tabular signature; see ``ModelSignature.prepare``."""
    import pandas as pd

    array = as_array(data)
    if array is not None:
        if array.ndim == 1 and len(schema) == 1:
            array = array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != len(schema):
            shape = "x".join(map(str, array.shape))
            _raise(
                [
                    {
                        "column": _WHOLE,
                        "expected": f"a table of {len(schema)} columns",
                        "got": f"an array of shape {shape}",
                    }
                ]
            )
        frame = array_frame(array, schema.names)
    else:
        maybe = as_frame(data)
        if maybe is None:
            _raise(
                [
                    {
                        "column": _WHOLE,
                        "expected": "a table (DataFrame, records, dict of columns or 2-D array)",
                        "got": type(data).__name__,
                    }
                ]
            )
        frame = maybe
    problems: list[Problem] = []
    labels: dict[str, Any] = {}
    for label in frame.columns:
        name = str(label)
        if name in labels:
            problems.append({"column": name, "expected": "one column", "got": "a repeated name"})
        labels[name] = label
    for col in schema.columns:
        if col.name not in labels:
            problems.append({"column": col.name, "expected": _expected(col), "got": "missing"})
    if extra == "error" and not schema.allow_extra_columns:
        for name, label in labels.items():
            if name not in schema:
                problems.append(
                    {
                        "column": name,
                        "expected": "no such column (pass extra='drop' to drop it)",
                        "got": str(frame[label].dtype),
                    }
                )
    out: dict[str, pd.Series] = {}
    for col in schema.columns:
        if col.name not in labels or isinstance(frame[labels[col.name]], pd.DataFrame):
            continue
        converted = _convert(frame[labels[col.name]], col)
        if isinstance(converted, str):
            problems.append({"column": col.name, "expected": _expected(col), "got": converted})
            continue
        nulls = int(converted.isna().sum())
        if nulls and not col.nullable:
            problems.append(
                {
                    "column": col.name,
                    "expected": f"{col.type} without nulls",
                    "got": f"{nulls} null value{'s' if nulls != 1 else ''}",
                }
            )
            continue
        out[col.name] = converted
    if problems:
        _raise(problems)
    return pd.DataFrame(out, index=frame.index)


def _expected(col: ColumnSchema) -> str:
    return f"{col.type}{' (nullable)' if col.nullable else ''}"


def _example(series: pd.Series, mask: Any) -> str:
    values = series[mask].head(1).tolist()
    return f" (e.g. {values[0]!r:.40})" if values else ""


def _kind(series: pd.Series) -> str:
    from loopml.schema._dtypes import kind_of, normalize

    return kind_of(normalize(series).dtype)


def _object_kind(series: pd.Series) -> str:
    """What the non-null values of an object column are: int, float, bool, str, mixed, none."""
    kinds = set()
    for value in series.dropna().head(10_000):
        if isinstance(value, bool | np.bool_):
            kinds.add("bool")
        elif isinstance(value, int | np.integer):
            kinds.add("int")
        elif isinstance(value, float | np.floating):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("str")
        else:
            kinds.add("other")
    if not kinds:
        return "none"
    if kinds <= {"int", "float"}:
        return "float" if "float" in kinds else "int"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _convert(series: pd.Series, col: ColumnSchema) -> pd.Series | str:
    """The column converted to ``col``'s type, or what it is instead (for the problem)."""
    import pandas as pd

    from loopml.schema._dtypes import normalize

    series = normalize(series)
    kind = _kind(series)
    got = str(series.dtype)
    if kind == "object":  # Python values: what they are decides
        held = _object_kind(series)
        got = f"object ({held} values)"
        kind = {"int": "int", "float": "float", "bool": "bool", "str": "string"}.get(
            held, "empty" if held == "none" else "object"
        )
    ctype = col.type
    if kind == "empty":  # every value null (or no rows): any type fits
        numeric = ctype in (ColumnType.FLOAT, ColumnType.INTEGER)
        return series.astype("float64") if numeric else series
    if ctype == ColumnType.INTEGER:
        if kind == "int":
            if series.dtype.kind == "O":  # Python ints: any size
                big = series.map(lambda v: isinstance(v, int) and not -(2**63) <= v < 2**63)
                if big.any():
                    return f"{got} beyond the int64 range{_example(series, big.to_numpy())}"
            if series.dtype.kind == "u" and len(series) and series.max() >= 2**63:
                big_u = (series >= 2**63).to_numpy()
                return f"{got} beyond the int64 range{_example(series, big_u)}"
            if series.isna().any():
                return series.astype("float64")  # NaN, not pd.NA: what models handle
            return series.astype("int64") if series.dtype.kind == "O" else series
        if kind == "float":
            values = pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan)
            null = np.isnan(values)
            with np.errstate(invalid="ignore"):
                bad = ~null & ((values != np.floor(values)) | ~np.isfinite(values))
                big = ~null & ~bad & ((values < -(2.0**63)) | (values >= 2.0**63))
            if bad.any():
                return f"{got} with fractional values{_example(series, bad)}"
            if big.any():
                return f"{got} beyond the int64 range{_example(series, big)}"
            inexact = ~null & (np.abs(values) > 2.0**53)
            if inexact.any():  # a float this large may not be the integer that was meant
                return (
                    f"{got} beyond 2**53, where a float is not an exact int64 (send integers)"
                    f"{_example(series, inexact)}"
                )
            if null.any():
                return pd.Series(values, index=series.index, name=series.name)
            return pd.Series(values.astype(np.int64), index=series.index, name=series.name)
        return got
    if ctype == ColumnType.FLOAT:
        if kind in ("float", "int"):
            return pd.Series(
                pd.to_numeric(series).to_numpy(dtype="float64", na_value=np.nan),
                index=series.index,
                name=series.name,
            )
        return got
    if ctype == ColumnType.BOOLEAN:
        if kind == "bool":
            return series.astype("boolean") if series.isna().any() else series.astype(bool)
        return got
    if ctype == ColumnType.DATETIME:
        if kind == "datetime":
            return series
        if kind == "string":
            from loopml.schema._dtypes import parse_datetimes

            parsed = parse_datetimes(series)
            bad = parsed.isna().to_numpy() & series.notna().to_numpy()
            if bad.any():
                return f"{got} with values that are not ISO datetimes{_example(series, bad)}"
            return parsed
        return got
    if ctype == ColumnType.TEXT:
        return series if kind in ("string", "category") else got
    # categorical: labels may be text, integers or booleans, but of the kind its categories are
    if col.categories and kind in ("int", "bool", "string"):
        text = all(isinstance(c, str) for c in col.categories)
        if text != (kind == "string"):
            return got
    return series if kind in ("string", "category", "int", "bool") else got


# --- tensors ---------------------------------------------------------------------------------


def prepare_tensor(data: Any, spec: TensorSpec) -> np.ndarray[Any, Any]:
    """Make ``data`` fit one tensor spec; see ``ModelSignature.prepare``."""
    problems: list[Problem] = []
    out = _tensor(data, spec, problems)
    if problems:
        _raise(problems)
    assert out is not None
    return out


def prepare_tensors(
    data: Any, specs: tuple[TensorSpec, ...], *, extra: Extra
) -> dict[str, np.ndarray[Any, Any]]:
    """Make a dict of arrays fit several named tensor specs."""
    names = [str(s.name) for s in specs]
    if not isinstance(data, Mapping):
        _raise(
            [
                {
                    "column": _WHOLE,
                    "expected": f"a dict of tensors {', '.join(names)}",
                    "got": type(data).__name__,
                }
            ]
        )
    problems: list[Problem] = []
    out: dict[str, np.ndarray[Any, Any]] = {}
    for spec in specs:
        if spec.name not in data:
            problems.append({"column": spec.name, "expected": str(spec), "got": "missing"})
            continue
        value = _tensor(data[spec.name], spec, problems)
        if value is not None:
            out[str(spec.name)] = value
    if extra == "error":
        for key in data:
            if key not in names:
                problems.append(
                    {"column": str(key), "expected": "no such tensor", "got": "a tensor"}
                )
    if problems:
        _raise(problems)
    return out


def _tensor(data: Any, spec: TensorSpec, problems: list[Problem]) -> np.ndarray[Any, Any] | None:
    name = spec.name or _WHOLE
    if _root(data) == "pandas" and hasattr(data, "to_numpy"):
        data = data.to_numpy()
    array = as_array(data)
    if array is None:
        try:
            array = np.asarray(data)
        except (ValueError, TypeError) as exc:
            problems.append({"column": name, "expected": str(spec), "got": f"unreadable: {exc}"})
            return None
    got = f"{array.dtype.name if array.dtype.kind != 'U' else 'str'}" + (
        f"[{', '.join(map(str, array.shape))}]"
    )
    if array.ndim != len(spec.shape) or any(
        want not in (-1, have) for want, have in zip(spec.shape, array.shape, strict=False)
    ):
        problems.append({"column": name, "expected": str(spec), "got": got})
        return None
    want = spec.np_dtype
    if array.dtype == want:
        return array
    if want.kind == "U":
        return array.astype(str) if array.dtype.kind == "U" else _bad(problems, name, spec, got)
    if array.dtype.kind not in "iuf" or want.kind not in "iuf":  # booleans only from booleans
        return _bad(problems, name, spec, got)
    if want.kind == "f":  # numbers widen or narrow to floats, as long as they stay finite
        with np.errstate(over="ignore"):
            out = array.astype(want)
        if (np.isinf(out) & np.isfinite(array)).any():
            return _bad(problems, name, spec, f"{got} beyond the {want.name} range")
        return out
    if array.dtype.kind == "f" and not (np.isfinite(array) & (array == np.floor(array))).all():
        return _bad(problems, name, spec, f"{got} with fractional or non-finite values")
    limits = np.iinfo(want)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        return _bad(problems, name, spec, f"{got} beyond the {want.name} range")
    return array.astype(want)


def _bad(
    problems: list[Problem], name: str, spec: TensorSpec, got: str
) -> np.ndarray[Any, Any] | None:
    problems.append({"column": name, "expected": str(spec), "got": got})
    return None
