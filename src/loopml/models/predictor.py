"""The :class:`Predictor`: one interface over every flavor, with the signature enforced."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgument
from loopml.models.flavors.base import LoadedModel
from loopml.models.manifest import Manifest
from loopml.models.signature import Extra, ModelSignature

__all__ = ["Predictor", "read_example", "write_example"]

MAX_EXAMPLE_ROWS = 100
"""Rows of an input example kept in the model folder."""


class Predictor:
    """A loaded model: ``predict`` (and ``predict_proba``) with its signature checked on every
    call.

    Returned by :func:`loopml.models.load_model`; not built directly.

    Attributes:
        flavor: the flavor's name (``sklearn``, ``xgboost``...).
        signature: the model's signature, or None when it was saved without one.
        manifest: the parsed ``loopml-model.json``.
        manifest_digest: the sha256 of the manifest (what the registry pins).
        native: the framework's own model object.
        metadata: the free-form metadata saved with the model.
        path: the local folder the model was loaded from.
        uri: what was passed to ``load_model``.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        manifest: Manifest,
        *,
        manifest_digest: str,
        path: Path,
        uri: str,
    ) -> None:
        self._loaded = loaded
        self.manifest = manifest
        self.manifest_digest = manifest_digest
        self.flavor = manifest.flavor
        self.signature: ModelSignature | None = manifest.signature
        self.native: Any = loaded.native
        self.metadata: Mapping[str, Any] = manifest.metadata
        self.path = path
        self.uri = uri

    @property
    def classes_(self) -> Any:
        """A classifier's class labels, in the order of ``predict_proba``'s columns (the
        scikit-learn name, so code written for estimators reads it too).

        Raises:
            AttributeError: the model is not a classifier, or its flavor does not say.
        """
        classes = self._loaded.classes
        if classes is None:
            classes = getattr(self.native, "classes_", None)
        if classes is None:
            raise AttributeError(f"this {self.flavor} model does not name its classes")
        import numpy as np

        return np.asarray(classes)

    @property
    def has_predict_proba(self) -> bool:
        """Whether the model gives class probabilities."""
        return self._loaded.predict_proba is not None

    def prepare(self, data: Any, *, extra: Extra = "error") -> Any:
        """``data`` as the model will see it: checked and converted by the signature (see
        :meth:`ModelSignature.prepare`), or as given when there is no signature."""
        if self.signature is None:
            from loopml.models import _inputs

            if _inputs.as_array(data) is None and not _inputs.is_tensor_dict(data):
                frame = _inputs.as_frame(data)
                return data if frame is None else frame
            return data
        return self.signature.prepare(data, extra=extra)

    def predict(self, data: Any, *, extra: Extra = "error") -> Any:
        """Predict on ``data`` (a DataFrame, records, a dict of columns, an array...).

        Args:
            data: the input; see :meth:`ModelSignature.prepare` for every accepted form.
            extra: ``"drop"`` to drop columns the signature does not list instead of refusing.

        Raises:
            SignatureMismatch: the input breaks the signature; ``problems`` lists every issue.
        """
        return self._loaded.predict(self.prepare(data, extra=extra))

    def predict_proba(self, data: Any, *, extra: Extra = "error") -> Any:
        """Class probabilities, one column per class.

        Raises:
            InvalidArgument: the model has no ``predict_proba`` (a regressor, say).
            SignatureMismatch: the input breaks the signature.
        """
        proba = self._loaded.predict_proba
        if proba is None:
            raise InvalidArgument(
                f"this {self.flavor} model ({self.manifest.model_class or 'unknown class'}) has "
                "no predict_proba; use predict"
            )
        return proba(self.prepare(data, extra=extra))

    def predict_unchecked(self, prepared: Any) -> Any:
        """Predict on input already checked (by :meth:`prepare`, or a server's own decoder that
        accepts exactly the same input); skips the signature check."""
        return self._loaded.predict(prepared)

    def predict_proba_unchecked(self, prepared: Any) -> Any:
        """Class probabilities for input already checked; see :meth:`predict_unchecked`.

        Raises:
            InvalidArgument: the model has no ``predict_proba``.
        """
        proba = self._loaded.predict_proba
        if proba is None:
            raise InvalidArgument(f"this {self.flavor} model has no predict_proba; use predict")
        return proba(prepared)

    @property
    def input_example(self) -> Any:
        """The input example saved with the model (a DataFrame, an array or a dict of arrays),
        or None."""
        if self.manifest.input_example is None:
            return None
        return read_example(self.path / self.manifest.input_example)

    def __repr__(self) -> str:
        return (
            f"Predictor(flavor={self.flavor!r}, model_class={self.manifest.model_class!r}, "
            f"uri={self.uri!r})"
        )


def write_example(example: Any, path: Path) -> None:
    """Write an input example as JSON (its first :data:`MAX_EXAMPLE_ROWS` rows)."""
    import numpy as np

    from loopml.models import _inputs

    if _inputs.is_tensor_dict(example):
        data: dict[str, Any] = {
            "type": "tensors",
            "tensors": {
                str(k): _array_json(np.asarray(v)[:MAX_EXAMPLE_ROWS]) for k, v in example.items()
            },
        }
    elif (array := _inputs.as_array(example)) is not None:
        data = {"type": "tensor", **_array_json(array[:MAX_EXAMPLE_ROWS])}
    else:
        frame = _inputs.as_frame(example)
        if frame is None:
            raise InvalidArgument(
                f"cannot save an input example of type {type(example).__name__}; give a "
                "DataFrame, records, a dict of columns or an array"
            )
        split = json.loads(
            frame.head(MAX_EXAMPLE_ROWS).to_json(orient="split", date_format="iso", index=False)
        )
        data = {"type": "table", "columns": [str(c) for c in frame.columns], "data": split["data"]}
    path.write_text(json.dumps(data), encoding="utf-8")


def _array_json(array: Any) -> dict[str, Any]:
    if array.dtype.kind == "O":
        raise InvalidArgument("cannot save an input example array of Python objects")
    return {
        "dtype": "str" if array.dtype.kind == "U" else array.dtype.name,
        "data": array.tolist(),
    }


def read_example(path: Path) -> Any:
    """Read an input example written by :func:`write_example`."""
    import numpy as np
    import pandas as pd

    data = json.loads(path.read_text(encoding="utf-8"))
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "table":
        return pd.DataFrame(data["data"], columns=data["columns"])
    if kind == "tensor":
        return np.asarray(data["data"], dtype=data["dtype"])
    if kind == "tensors":
        return {k: np.asarray(v["data"], dtype=v["dtype"]) for k, v in data["tensors"].items()}
    raise InvalidArgument(f"{path.name} is not a loopml input example")
