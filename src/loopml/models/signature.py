"""A model's signature: the inputs it takes and the outputs it gives, enforced on every call.

Inputs are either a table (a :class:`~loopml.schema.Schema`, the same data contract datasets use)
or tensors (:class:`TensorSpec`, one or several by name). Build a signature from a schema
(:meth:`ModelSignature.from_schema`, e.g. one loaded from YAML), or infer it from an input
example and the model's output on it (:func:`infer_signature`). :meth:`ModelSignature.prepare`
makes data fit the inputs before a model sees it, or raises
:class:`~loopml.errors.SignatureMismatch` listing every problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from loopml.errors import InvalidArgument
from loopml.schema import ColumnSchema, Schema

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Extra", "ModelSignature", "TensorSpec", "infer_signature"]

Extra = Literal["error", "drop"]
"""What :meth:`ModelSignature.prepare` does with columns the signature does not list."""


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: its dtype, its shape (``-1`` for a dimension of any size) and its name.

    Args:
        dtype: a NumPy dtype name (``float32``, ``int64``, ``bool``, ``str``).
        shape: the dimensions; ``-1`` is any size (the batch dimension, usually the first).
        name: the tensor's name (needed when a model takes several tensors).

    Raises:
        InvalidArgument: an unknown dtype or a malformed shape.
    """

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __post_init__(self) -> None:
        import numpy as np

        try:
            dtype = np.dtype(self.dtype)
        except TypeError as exc:
            raise InvalidArgument(f"tensor dtype {self.dtype!r} is not a NumPy dtype") from exc
        if dtype.kind in "OV":
            raise InvalidArgument(
                f"tensor dtype {self.dtype!r} is not a number, boolean or string type"
            )
        shape = tuple(self.shape)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape):
            raise InvalidArgument(f"tensor shape {self.shape!r} must be integers, -1 for any")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise InvalidArgument("a tensor name must be a non-empty string")
        object.__setattr__(self, "dtype", "str" if dtype.kind == "U" else dtype.name)
        object.__setattr__(self, "shape", shape)

    @property
    def np_dtype(self) -> np.dtype[Any]:
        """The dtype as a NumPy dtype."""
        import numpy as np

        return np.dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        """Build a spec from :meth:`to_dict`'s form.

        Raises:
            InvalidArgument: a missing or malformed field.
        """
        if not isinstance(data, Mapping) or "dtype" not in data or "shape" not in data:
            raise InvalidArgument("a tensor spec needs 'dtype' and 'shape'")
        shape = data["shape"]
        if not isinstance(shape, list):
            raise InvalidArgument("a tensor spec's shape must be a list")
        return cls(dtype=str(data["dtype"]), shape=tuple(shape), name=data.get("name"))

    def __str__(self) -> str:
        dims = ", ".join("?" if d == -1 else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


@dataclass(frozen=True)
class ModelSignature:
    """What a model takes and gives.

    Args:
        inputs: a :class:`~loopml.schema.Schema` for tabular input, a :class:`TensorSpec`, or a
            tuple of named tensor specs for a model with several inputs.
        outputs: the same kinds, or None when unknown. Outputs are documentation: they are not
            enforced.

    Raises:
        InvalidArgument: inputs or outputs of another type, or several tensors without names.
    """

    inputs: Schema | TensorSpec | tuple[TensorSpec, ...]
    outputs: Schema | TensorSpec | tuple[TensorSpec, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", _check_spec(self.inputs, "inputs"))
        if self.outputs is not None:
            object.__setattr__(self, "outputs", _check_spec(self.outputs, "outputs"))

    @classmethod
    def from_schema(cls, schema: Schema) -> ModelSignature:
        """The signature of a model trained on data with this contract.

        The schema's target column (if any) becomes the output; the other columns the inputs.
        """
        if schema.target is None:
            return cls(inputs=schema)
        target = schema.column(schema.target)
        inputs = schema.without_column(schema.target)
        return cls(inputs=inputs, outputs=Schema(columns=(target,)))

    @property
    def is_tabular(self) -> bool:
        """Whether the inputs are a table (a schema) rather than tensors."""
        return isinstance(self.inputs, Schema)

    @property
    def input_names(self) -> list[str]:
        """The input column names (tabular) or tensor names (unnamed tensors are skipped)."""
        if isinstance(self.inputs, Schema):
            return self.inputs.names
        specs = self.inputs if isinstance(self.inputs, tuple) else (self.inputs,)
        return [s.name for s in specs if s.name]

    def prepare(self, data: Any, *, extra: Extra = "error") -> Any:
        """Make ``data`` fit the inputs, or refuse with every problem listed.

        Tabular inputs accept a pandas or polars DataFrame, a pyarrow Table, records (a list of
        dicts), a dict of columns, one row as a dict of scalars, or a 2-D NumPy array whose
        columns are the signature's in order. Columns are put in the signature's order; numbers
        widen (int to float), integral floats become integers, ISO strings become datetimes,
        text is fine for a categorical column. Nothing lossy happens silently: fractional floats
        for an integer column, strings of digits for a number, numbers for text, nulls in a
        non-nullable column are all refused.

        Tensor inputs accept arrays (or anything NumPy reads) of the right rank and fixed
        dimensions; a dtype converts when NumPy calls it the same kind (float64 to float32) or
        safe (int to float), and integral floats become integers. Several tensors come as a
        dict of name to array.

        Args:
            data: the input.
            extra: ``"error"`` (default) refuses columns the signature does not list;
                ``"drop"`` drops them. A schema with ``allow_extra_columns`` always drops them.

        Returns:
            A pandas DataFrame (tabular), a NumPy array (one tensor) or a dict of arrays.

        Raises:
            SignatureMismatch: with ``problems``, one dict per problem: ``column``,
                ``expected``, ``got``.
            InvalidArgument: ``extra`` is not ``"error"`` or ``"drop"``.
        """
        from loopml.models import _inputs

        if extra not in ("error", "drop"):
            raise InvalidArgument(f"extra must be 'error' or 'drop', not {extra!r}")
        if isinstance(self.inputs, Schema):
            return _inputs.prepare_table(data, self.inputs, extra=extra)
        if isinstance(self.inputs, TensorSpec):
            return _inputs.prepare_tensor(data, self.inputs)
        return _inputs.prepare_tensors(data, self.inputs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (what the manifest and the registry store)."""
        return {
            "inputs": _spec_to_dict(self.inputs),
            "outputs": None if self.outputs is None else _spec_to_dict(self.outputs),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        """Build a signature from :meth:`to_dict`'s form.

        Raises:
            InvalidArgument: a missing or malformed part (InvalidSchema for a bad schema).
        """
        if not isinstance(data, Mapping) or "inputs" not in data:
            raise InvalidArgument("a signature needs 'inputs'")
        outputs = data.get("outputs")
        return cls(
            inputs=_spec_from_dict(data["inputs"], "inputs"),
            outputs=None if outputs is None else _spec_from_dict(outputs, "outputs"),
        )

    def __str__(self) -> str:
        return f"inputs: {_describe(self.inputs)}; outputs: {_describe(self.outputs)}"


def _check_spec(spec: object, what: str) -> Schema | TensorSpec | tuple[TensorSpec, ...]:
    if isinstance(spec, Schema | TensorSpec):
        return spec
    if isinstance(spec, Sequence) and spec and all(isinstance(s, TensorSpec) for s in spec):
        specs: tuple[TensorSpec, ...] = tuple(spec)
        names = [s.name for s in specs]
        if len(specs) > 1 and (None in names or len(set(names)) != len(names)):
            raise InvalidArgument(f"signature {what}: several tensors need distinct names")
        return specs[0] if len(specs) == 1 else specs
    raise InvalidArgument(
        f"signature {what} must be a Schema, a TensorSpec or a list of TensorSpecs, "
        f"not {type(spec).__name__}"
    )


def _spec_to_dict(spec: Schema | TensorSpec | tuple[TensorSpec, ...]) -> dict[str, Any]:
    if isinstance(spec, Schema):
        return {"type": "table", "schema": spec.to_dict()}
    specs = spec if isinstance(spec, tuple) else (spec,)
    return {"type": "tensor", "tensors": [s.to_dict() for s in specs]}


def _spec_from_dict(data: object, what: str) -> Schema | TensorSpec | tuple[TensorSpec, ...]:
    if not isinstance(data, Mapping):
        raise InvalidArgument(f"signature {what} must be a mapping")
    kind = data.get("type")
    if kind == "table":
        return Schema.from_dict(data.get("schema") or {}, source=f"signature {what}")
    if kind == "tensor":
        tensors = data.get("tensors")
        if not isinstance(tensors, list) or not tensors:
            raise InvalidArgument(f"signature {what}: 'tensors' must be a non-empty list")
        return _check_spec([TensorSpec.from_dict(t) for t in tensors], what)
    raise InvalidArgument(f"signature {what}: type must be 'table' or 'tensor', not {kind!r}")


def _describe(spec: Schema | TensorSpec | tuple[TensorSpec, ...] | None) -> str:
    if spec is None:
        return "unknown"
    if isinstance(spec, Schema):
        return ", ".join(f"{c.name} ({c.type})" for c in spec.columns) or "(no columns)"
    specs = spec if isinstance(spec, tuple) else (spec,)
    return ", ".join(f"{s.name}: {s}" if s.name else str(s) for s in specs)


def infer_signature(model_input: Any, model_output: Any = None) -> ModelSignature:
    """Infer a signature from an input example and (optionally) the model's output on it.

    A table (pandas or polars DataFrame, pyarrow Table, dict of columns, records) gives a
    tabular signature with each column's type and nullability (ranges, categories and
    uniqueness are left out: an example is too small to bound what a model may see). A 2-D
    NumPy array of numbers gives columns ``"0"``, ``"1"``... in order; other arrays (and
    tensors) give a :class:`TensorSpec` whose first dimension is any size; a dict of 2-D or
    higher arrays gives one named tensor each.

    Args:
        model_input: the input example.
        model_output: what the model returned for it (None: outputs unknown).

    Raises:
        InvalidArgument: the example is empty or of a type loopml cannot describe.
    """
    return ModelSignature(
        inputs=_infer_spec(model_input, "input"),
        outputs=None if model_output is None else _infer_spec(model_output, "output"),
    )


def _infer_spec(data: Any, what: str) -> Schema | TensorSpec | tuple[TensorSpec, ...]:
    import numpy as np

    from loopml.models import _inputs

    if _inputs.is_tensor_dict(data):
        return tuple(_tensor_spec(np.asarray(v), name=str(k)) for k, v in data.items())
    array = _inputs.as_array(data)
    if array is not None:
        if array.ndim == 2 and array.dtype.kind in "biuf":
            return _table_schema(_inputs.array_frame(array))
        return _tensor_spec(array)
    if _module_root(data) == "pandas" and type(data).__name__ == "Series":
        name = str(data.name) if data.name is not None else "prediction"
        return _table_schema(data.to_frame(name=name))
    frame = _inputs.as_frame(data)
    if frame is None:
        raise InvalidArgument(
            f"cannot infer a signature from an {what} of type {type(data).__name__}; give a "
            "DataFrame, a dict of columns, records, or a NumPy array (or pass signature=)"
        )
    return _table_schema(frame)


def _module_root(obj: object) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _tensor_spec(array: np.ndarray[Any, Any], name: str | None = None) -> TensorSpec:
    if array.ndim == 0:
        raise InvalidArgument("cannot infer a tensor signature from a scalar; give a batch")
    dtype = "str" if array.dtype.kind == "U" else array.dtype.name
    if array.dtype.kind == "O":
        raise InvalidArgument(
            "cannot infer a tensor signature from an array of Python objects; give a typed "
            "array, or a DataFrame for mixed columns"
        )
    return TensorSpec(dtype=dtype, shape=(-1, *array.shape[1:]), name=name)


def _table_schema(frame: Any) -> Schema:
    from loopml.schema import infer_schema

    if len(frame.columns) == 0:
        raise InvalidArgument("cannot infer a signature from a table with no columns")
    frame = frame.rename(columns=str)
    schema = infer_schema(frame, unique_key=None, ranges=False)
    columns = tuple(_loosen(c) for c in schema.columns)
    return Schema(columns=columns)


def _loosen(column: ColumnSchema) -> ColumnSchema:
    """Drop what a small example cannot know: categories and uniqueness."""
    return column.replace(categories=None, unique=False)
