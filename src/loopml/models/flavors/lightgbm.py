"""LightGBM models in LightGBM's native text format (data, not code).

A scikit-learn wrapper (``LGBMClassifier``, ``LGBMRegressor``) is saved as its booster plus, for
a classifier, its class labels in the manifest. Loading gives back the ``lightgbm.Booster``
(``Predictor.native``) and a predictor that behaves like the wrapper: ``predict`` returns class
labels and ``predict_proba`` one column per class. (Re-building the wrapper itself would mean
setting LightGBM's private attributes, which change between releases.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from loopml._lazy import require
from loopml.errors import InvalidArgument, ModelCorrupted
from loopml.models.flavors.base import (
    LoadedModel,
    defined_in,
    installed_version,
    option_file,
    table_input,
)

__all__ = ["CLASSES", "LightGBMFlavor"]

CLASSES = ("Booster", "LGBMClassifier", "LGBMRegressor", "LGBMRanker")
"""The LightGBM classes this flavor saves."""
_FILE = "model.txt"


class LightGBMFlavor:
    """LightGBM boosters and scikit-learn wrappers, saved as the booster's model text."""

    name: str = "lightgbm"
    packages: tuple[str, ...] = ("lightgbm", "numpy")
    needs_trust: bool = False

    def can_save(self, model: object) -> bool:
        """Instances of the classes in :data:`CLASSES`."""
        return defined_in(model, "lightgbm") and type(model).__name__ in CLASSES

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Write the booster's model text; record the wrapper's class and class labels."""
        lgb = require("lightgbm", "lightgbm", "saving a LightGBM model")
        name = type(model).__name__
        if name not in CLASSES or type(model) is not getattr(lgb, name):
            raise InvalidArgument(
                f"cannot save {name} with the lightgbm flavor: it saves {', '.join(CLASSES)}"
            )
        booster = model if isinstance(model, lgb.Booster) else model.booster_
        booster.save_model(str(folder / _FILE))
        out: dict[str, Any] = {
            "file": _FILE,
            "class": name,
            "lightgbm_version": installed_version("lightgbm"),
        }
        if name == "LGBMClassifier":
            out["classes"] = np.asarray(model.classes_).tolist()
        return out

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Read the booster from its model text."""
        lgb = require("lightgbm", "lightgbm", "loading a LightGBM model")
        path = option_file(folder, options, self.name)
        try:
            booster = lgb.Booster(model_file=str(path))
        except lgb.basic.LightGBMError as exc:
            raise ModelCorrupted(f"LightGBM could not read {path.name}: {exc}") from exc
        return self.wrap(booster, folder, options)

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """Wrappers use their own methods; a booster of a classifier maps back to labels."""
        lgb = require("lightgbm", "lightgbm", "using a LightGBM model")
        if not isinstance(model, lgb.Booster):
            wrapper = model

            def wrapper_proba(data: Any) -> Any:
                return wrapper.predict_proba(table_input(data, wrapper))

            def wrapper_predict(data: Any) -> Any:
                return wrapper.predict(table_input(data, wrapper))

            has_proba = hasattr(wrapper, "predict_proba")
            return LoadedModel(wrapper, wrapper_predict, wrapper_proba if has_proba else None)
        classes = options.get("classes")
        if classes is None:
            return LoadedModel(native=model, predict=model.predict)
        if not isinstance(classes, list) or len(classes) < 2:
            raise ModelCorrupted("the lightgbm model's manifest has malformed 'classes'")
        labels = np.asarray(classes)

        def proba(data: Any) -> Any:
            raw = np.asarray(model.predict(data))
            return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

        def predict(data: Any) -> Any:
            return labels[np.argmax(proba(data), axis=1)]

        return LoadedModel(model, predict, proba, classes=labels.tolist())
