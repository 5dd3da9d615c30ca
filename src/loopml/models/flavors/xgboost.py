"""XGBoost models in XGBoost's own JSON or UBJSON format (data, not code).

The class to re-create comes from a fixed table (:data:`CLASSES`); a class name in the manifest
that is not in it is refused, never imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml._lazy import require
from loopml.errors import InvalidArgument, ModelCorrupted
from loopml.models.flavors.base import (
    LoadedModel,
    defined_in,
    installed_version,
    option_file,
    option_str,
    table_input,
)

__all__ = ["CLASSES", "XGBoostFlavor"]

CLASSES = (
    "Booster",
    "XGBClassifier",
    "XGBRegressor",
    "XGBRanker",
    "XGBRFClassifier",
    "XGBRFRegressor",
)
"""The XGBoost classes this flavor saves and re-creates (attributes of the ``xgboost`` module)."""
_FORMATS = ("json", "ubj")


class XGBoostFlavor:
    """XGBoost boosters and scikit-learn wrappers, saved with ``save_model``."""

    name: str = "xgboost"
    packages: tuple[str, ...] = ("xgboost", "numpy")
    needs_trust: bool = False

    def can_save(self, model: object) -> bool:
        """Instances of the classes in :data:`CLASSES`."""
        return defined_in(model, "xgboost") and type(model).__name__ in CLASSES

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``model.save_model`` to ``model.json`` (or ``model.ubj`` with ``format="ubj"``)."""
        xgb = require("xgboost", "xgboost", "saving an XGBoost model")
        fmt = options.get("format", "json")
        if fmt not in _FORMATS:
            raise InvalidArgument(f"xgboost format must be 'json' or 'ubj', not {fmt!r}")
        cls = _class_name(model, xgb)
        file = f"model.{fmt}"
        model.save_model(str(folder / file))
        return {
            "file": file,
            "format": fmt,
            "class": cls,
            "xgboost_version": installed_version("xgboost"),
        }

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Re-create the class named in the manifest (from :data:`CLASSES`) and load the file."""
        xgb = require("xgboost", "xgboost", "loading an XGBoost model")
        name = option_str(options, "class", self.name)
        if name not in CLASSES:
            raise ModelCorrupted(
                f"the xgboost model's manifest names class {name!r}, which is not one loopml "
                f"re-creates ({', '.join(CLASSES)}); refused"
            )
        path = option_file(folder, options, self.name)
        model = getattr(xgb, name)()
        try:
            model.load_model(str(path))
        except xgb.core.XGBoostError as exc:
            raise ModelCorrupted(f"XGBoost could not read {path.name}: {exc}") from exc
        return self.wrap(model, folder, options)

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """Boosters predict through a ``DMatrix``; wrappers through their own methods."""
        xgb = require("xgboost", "xgboost", "using an XGBoost model")
        if isinstance(model, xgb.Booster):

            def predict(data: Any) -> Any:
                if model.feature_names is None and hasattr(data, "to_numpy"):
                    data = data.to_numpy()
                return model.predict(xgb.DMatrix(data))

            return LoadedModel(native=model, predict=predict)

        def wrapper_predict(data: Any) -> Any:
            return model.predict(_input(data, model))

        def wrapper_proba(data: Any) -> Any:
            return model.predict_proba(_input(data, model))

        has_proba = hasattr(model, "predict_proba")
        return LoadedModel(model, wrapper_predict, wrapper_proba if has_proba else None)


def _input(data: Any, model: Any) -> Any:
    names = model.get_booster().feature_names
    return table_input(data, model) if names is None else data


def _class_name(model: Any, xgb: Any) -> str:
    for name in CLASSES:
        if type(model) is getattr(xgb, name):
            return name
    raise InvalidArgument(
        f"cannot save {type(model).__name__} with the xgboost flavor: loopml re-creates only "
        f"{', '.join(CLASSES)} (a subclass could not be re-created without its code)"
    )
