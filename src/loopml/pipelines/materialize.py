"""Step outputs as artifacts of the step's run, and back.

Each output is written under ``outputs/<name>`` in the step run's artifacts, in the format that
suits it: tables (pandas, polars, pyarrow) as Parquet, NumPy arrays as ``.npy``, models in the
loopml model format (``log_model``), JSON-ready values as JSON, anything else with cloudpickle.
An :class:`OutputRef` records where an output is and its content hash: the hash is what the
cache keys of the steps downstream are made of.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from loopml._frames import is_table
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["OutputRef", "load_output", "save_output"]

Kind = Literal["json", "parquet", "numpy", "model", "pickle"]


@dataclass(frozen=True, slots=True)
class OutputRef:
    """Where a step output lives: ``runs:/<run_id>/<path>``, its format, its content hash.

    Attributes:
        name: the output's name (``output``, or one of the step's ``outputs``).
        run_id: the step run holding the artifact (an earlier run's when the step was cached).
        path: the artifact path in that run (a folder for models).
        kind: ``json``, ``parquet``, ``numpy``, ``model`` or ``pickle``.
        sha256: the content hash (of the file, or of a model's manifest).
        type: the Python type of the value, for people (``pandas.DataFrame``).
    """

    name: str
    run_id: str
    path: str
    kind: Kind
    sha256: str
    type: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputRef:
        return cls(
            name=str(data["name"]),
            run_id=str(data["run_id"]),
            path=str(data["path"]),
            kind=data["kind"],
            sha256=str(data["sha256"]),
            type=str(data.get("type", "")),
        )

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


def _type_name(value: Any) -> str:
    t = type(value)
    module = t.__module__.split(".")[0]
    return t.__name__ if module == "builtins" else f"{module}.{t.__name__}"


def _json_ready(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_ready(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_ready(v) for k, v in value.items())
    return False


def _is_model(value: Any) -> bool:
    """A model a loopml flavor saves natively (not the pickle fallback)."""
    if not hasattr(value, "predict") or is_table(value):
        return False
    from loopml.models.flavors import detect_flavor

    try:
        return detect_flavor(value).name != "pickle"
    except InvalidArgument:
        return False


def kind_of(value: Any) -> Kind:
    """The format an output is saved in."""
    if _json_ready(value):
        return "json"
    if is_table(value):
        return "parquet"
    if type(value).__module__ == "numpy" and type(value).__name__ == "ndarray":
        return "numpy" if value.dtype.kind != "O" else "pickle"
    if _is_model(value):
        return "model"
    return "pickle"


def _table_bytes(value: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(value, pa.Table):
        table = value
    elif type(value).__module__.startswith("polars"):
        table = value.to_arrow()
    else:
        table = pa.Table.from_pandas(value, preserve_index=True)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def save_output(client: Client, run_id: str, name: str, value: Any) -> OutputRef:
    """Write ``value`` as output ``name`` of step run ``run_id``."""
    kind = kind_of(value)
    base = f"outputs/{name}"
    if kind == "model":
        from loopml.models import log_model

        info = log_model(value, base, run_id=run_id, client=client)
        return OutputRef(name, run_id, base, kind, info.manifest_digest, _type_name(value))
    if kind == "json":
        data, path = json.dumps(value, sort_keys=True).encode(), f"{base}.json"
    elif kind == "parquet":
        data, path = _table_bytes(value), f"{base}.parquet"
    elif kind == "numpy":
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        data, path = buf.getvalue(), f"{base}.npy"
    else:
        import cloudpickle  # type: ignore[import-untyped]

        try:
            data = cloudpickle.dumps(value)
        except Exception as exc:
            raise InvalidArgument(
                f"the output {name!r} (a {_type_name(value)}) cannot be saved: it is not a table, "
                f"an array, a model or JSON, and pickling it failed: {exc}"
            ) from exc
        path = f"{base}.pkl"
    client.log_bytes(run_id, data, path)
    return OutputRef(name, run_id, path, kind, hashlib.sha256(data).hexdigest(), _type_name(value))


def load_output(client: Client, ref: OutputRef) -> Any:
    """The value of a saved output (a pandas DataFrame for tables, the native model object for
    models)."""
    if ref.kind == "model":
        from loopml.models import load_model

        # trusted: the pipeline's own output, written by this store's steps
        return load_model(ref.uri, trusted=True, client=client).native
    data = client.read_artifact(ref.run_id, ref.path)
    if ref.kind == "json":
        return json.loads(data)
    if ref.kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        if ref.type.startswith("pandas"):
            return table.to_pandas()
        if ref.type.startswith("polars"):
            import polars as pl

            return pl.from_arrow(table)
        return table
    if ref.kind == "numpy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    import cloudpickle

    return cloudpickle.loads(data)
