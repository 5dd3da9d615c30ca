"""Flavors: how each kind of model is saved into a folder and loaded back.

:data:`FLAVORS` is a fixed table from a manifest's flavor name to the flavor. A model folder can
only ever name one of these; no module is imported because a file says so. Frameworks are
imported inside the flavors' methods, when a model of theirs is saved or loaded.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from loopml.errors import InvalidArgument
from loopml.models.flavors.base import Flavor as Flavor
from loopml.models.flavors.base import LoadedModel as LoadedModel
from loopml.models.flavors.lightgbm import LightGBMFlavor
from loopml.models.flavors.onnx import OnnxFlavor
from loopml.models.flavors.python import PickleFlavor, PythonFlavor
from loopml.models.flavors.python import PythonModel as PythonModel
from loopml.models.flavors.python import PythonModelContext as PythonModelContext
from loopml.models.flavors.sklearn import SklearnFlavor
from loopml.models.flavors.torch import TorchFlavor
from loopml.models.flavors.xgboost import XGBoostFlavor

__all__ = [
    "FLAVORS",
    "Flavor",
    "LoadedModel",
    "PythonModel",
    "PythonModelContext",
    "detect_flavor",
    "get_flavor",
]

_ORDER: tuple[Flavor, ...] = (
    # Most specific first: XGBoost and LightGBM wrappers are scikit-learn estimators too.
    XGBoostFlavor(),
    LightGBMFlavor(),
    OnnxFlavor(),
    TorchFlavor(),
    PythonFlavor(),
    SklearnFlavor(),
    PickleFlavor(),
)
FLAVORS: MappingProxyType[str, Flavor] = MappingProxyType({f.name: f for f in _ORDER})
"""Every flavor loopml knows, by name, in the order :func:`detect_flavor` tries them."""


def get_flavor(name: str) -> Flavor:
    """The flavor called ``name``.

    Raises:
        InvalidArgument: no flavor has that name (the message lists them).
    """
    flavor = FLAVORS.get(name) if isinstance(name, str) else None
    if flavor is None:
        raise InvalidArgument(
            f"{name!r} is not a loopml flavor; the flavors are {', '.join(FLAVORS)}"
        )
    return flavor


def detect_flavor(model: Any) -> Flavor:
    """The first flavor that saves ``model`` (pickle, the last resort, for anything else with a
    ``predict`` method).

    Raises:
        InvalidArgument: nothing saves it (it has no ``predict`` method).
    """
    for flavor in _ORDER:
        if flavor.can_save(model):
            return flavor
    raise InvalidArgument(
        f"cannot save a {type(model).__name__} as a model: no flavor knows it and it has no "
        f"predict method (flavors: {', '.join(FLAVORS)})"
    )
