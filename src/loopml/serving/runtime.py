"""One loaded model version, ready to serve: decoding, the fast model input, predictions.

A :class:`ModelRuntime` belongs to one route of an endpoint. When the alias the route follows
moves, the server loads a new runtime beside the old one and switches; requests already queued
on the old one finish there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.serving.inputs import Decoded, InputPlan, column_stack

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.models.predictor import Predictor

__all__ = ["ModelRuntime", "Outputs", "load_runtime"]

Method = Literal["predict", "predict_proba"]

# A model fitted on a DataFrame and given the same columns, in the same order, as an array
# (the fast path, chosen only after checking it predicts the same) warns on every call.
_FEATURE_NAMES_WARNING = "X does not have valid feature names"
_ARRAY_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm"})
_quiet: tuple[Any, ...] | None = None


def _silence_feature_name_warning() -> None:
    """Ignore that warning, process-wide; put the filter back when something (a
    ``warnings.catch_warnings()`` block that ended, a test framework) removed it."""
    global _quiet
    filters = warnings.filters
    if not filters or filters[0] is not _quiet:  # ours must come first to win
        warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING, category=UserWarning)
        _quiet = warnings.filters[0]


@dataclass(slots=True)
class Outputs:
    """A model's answer for some rows: ``predictions`` (an array, one entry or row per input
    row) and, when asked, ``proba`` (rows x classes) with ``classes``."""

    predictions: Any
    proba: Any = None
    classes: list[Any] | None = None

    def rows(self, start: int, stop: int) -> Outputs:
        """The answer for rows ``start:stop`` (one request of a batch)."""
        return Outputs(
            self.predictions[start:stop],
            None if self.proba is None else self.proba[start:stop],
            self.classes,
        )


class ModelRuntime:
    """A model version loaded for serving.

    Args:
        predictor: the loaded model.
        name: the registered model's name (or the folder's name for an unregistered model).
        version: the version number, or None for an unregistered model.
        extra: how to treat columns the signature does not list (``"error"`` or ``"drop"``).
    """

    def __init__(
        self,
        predictor: Predictor,
        *,
        name: str,
        version: int | None,
        extra: Literal["error", "drop"] = "error",
    ) -> None:
        self.predictor = predictor
        self.name = name
        self.version = version
        self.plan = InputPlan(predictor, extra=extra)
        self.lenient = InputPlan(predictor, extra="drop")
        self.has_proba = predictor.has_predict_proba
        try:
            self.classes: list[Any] | None = [_plain(c) for c in predictor.classes_]
        except AttributeError:
            self.classes = None
        self.array_input = self._array_input_works()
        self._sklearn_array = self.array_input and predictor.flavor == "sklearn"

    @property
    def label(self) -> str:
        """``name/version`` (what metrics and the prediction log record)."""
        return f"{self.name}/{self.version if self.version is not None else 'local'}"

    def _array_input_works(self) -> bool:
        """Whether the model can take a plain 2-D float array (much faster than a DataFrame):
        every input is a non-null number and, on the saved example (or zeros), the array gives
        exactly the DataFrame's predictions."""
        plan = self.plan
        if not plan.all_numeric or self.predictor.flavor not in _ARRAY_FLAVORS:
            return False
        import pandas as pd

        example = None
        try:
            example = self.predictor.input_example
        except Exception:  # a missing or unreadable example: use zeros
            example = None
        if not isinstance(example, pd.DataFrame) or example.empty:
            example = pd.DataFrame({n: [0.0, 1.0] for n in plan.names})
        try:
            frame = self.predictor.prepare(example, extra="drop")
            expected = np.asarray(self.predictor.predict_unchecked(frame))
            _silence_feature_name_warning()
            got = np.asarray(self.predictor.predict_unchecked(column_stack(frame, plan.names)))
        except Exception:  # the array form is refused: use DataFrames
            return False
        return expected.shape == got.shape and bool(
            np.array_equal(expected, got)
            or (expected.dtype.kind == "f" and np.allclose(expected, got, equal_nan=True))
        )

    def model_input(self, parts: Sequence[Decoded]) -> Any:
        """The input of one batch: the parts' rows, one after another."""
        first = parts[0]
        if first.tensors is not None:
            if len(parts) == 1:
                return first.tensors
            if isinstance(first.tensors, dict):
                return {k: np.concatenate([p.tensors[k] for p in parts]) for k in first.tensors}
            return np.concatenate([p.tensors for p in parts])
        if self.array_input:
            blocks = [
                p.matrix
                if p.matrix is not None
                else column_stack(p.columns or {}, self.plan.names)
                for p in parts
            ]
            return blocks[0] if len(blocks) == 1 else np.vstack(blocks)
        import pandas as pd

        frames = [pd.DataFrame(p.column_map()) for p in parts]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)

    def run(self, parts: Sequence[Decoded], method: Method) -> Outputs:
        """Predict on a batch of decoded requests (the caller splits the answer by rows)."""
        data = self.model_input(parts)
        if self.array_input:
            _silence_feature_name_warning()
        if self._sklearn_array and bool(np.isfinite(data).all()):
            # checked finite here, so scikit-learn need not check again (a third of its time
            # on one row)
            import sklearn

            with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
                return self._predict(data, method)
        return self._predict(data, method)

    def _predict(self, data: Any, method: Method) -> Outputs:
        predictions = np.asarray(self.predictor.predict_unchecked(data))
        proba = None
        if method == "predict_proba":
            proba = np.asarray(self.predictor.predict_proba_unchecked(data))
        return Outputs(predictions, proba, self.classes if proba is not None else None)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def load_runtime(
    model_uri: str,
    *,
    client: Client,
    project: str | None = None,
    trusted: bool = False,
    extra: Literal["error", "drop"] = "error",
) -> ModelRuntime:
    """Load the model a URI names (``models:/name/3``, ``models:/name@alias``, a folder...)
    for serving; an alias is resolved once, here, so the runtime knows its version.

    Raises:
        ModelNotFound, ModelCorrupted, UntrustedModel: as :func:`loopml.load_model`.
    """
    from pathlib import Path

    from loopml.models import load_model

    if model_uri.startswith("models:/"):
        version = client.resolve_model_uri(model_uri, project=project)
        exact = f"models:/{version.name}/{version.version}"
        predictor = load_model(exact, client=client, project=project, trusted=trusted)
        return ModelRuntime(predictor, name=version.name, version=version.version, extra=extra)
    predictor = load_model(model_uri, client=client, project=project, trusted=trusted)
    name = Path(model_uri.rstrip("/")).name or "model"
    return ModelRuntime(predictor, name=name, version=None, extra=extra)
