"""The :class:`Flavor` capability and the helpers every flavor shares."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from loopml.errors import ModelCorrupted, UnsafePath
from loopml.store.paths import confined_join

__all__ = [
    "Flavor",
    "LoadedModel",
    "defined_in",
    "installed_version",
    "option_file",
    "option_str",
    "table_input",
]


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to call.

    Attributes:
        native: the framework's own object (an estimator, a booster, an inference session).
        predict: takes input already prepared by the signature; returns predictions.
        predict_proba: likewise for class probabilities, or None when the model has none.
        classes: a classifier's class labels in the order of ``predict_proba``'s columns, when
            known (None: the native model's own ``classes_``, if any).
    """

    native: Any
    predict: Callable[[Any], Any]
    predict_proba: Callable[[Any], Any] | None = None
    classes: Sequence[Any] | None = None


@runtime_checkable
class Flavor(Protocol):
    """How one kind of model is saved into a folder and loaded back.

    Flavors live in loopml's fixed registry (:data:`loopml.models.flavors.FLAVORS`); a model's
    manifest names one, and loopml never imports a module because a model file names it.

    Contract:
        * ``save`` writes only regular files into ``folder`` and returns JSON-ready options
          (file names relative to the folder, framework versions) that ``load`` needs.
        * ``load`` runs only after every file of the folder has been verified against the
          manifest, and only after the trust gate when ``needs_trust``. It must treat
          ``options`` as untrusted data: file names are confined to the folder, class names
          are looked up in fixed tables.
        * ``wrap`` makes a :class:`LoadedModel` from an in-memory model (a freshly loaded one,
          or the original at save time to infer the signature's outputs).

    Attributes:
        name: the flavor's name in manifests.
        packages: the distributions whose installed versions the manifest pins.
        needs_trust: whether loading can run code stored in the model (pickle and the like):
            such models load only with ``trusted=True``.
    """

    name: str
    packages: tuple[str, ...]
    needs_trust: bool

    def can_save(self, model: object) -> bool:
        """Whether this flavor saves ``model`` (used to pick a flavor automatically)."""
        ...

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Write ``model`` into the existing, empty ``folder``; return the load options.

        Args:
            model: the model.
            folder: where to write.
            example: the input example, if one was given (some flavors need one to trace).
            options: flavor-specific choices from the user (``flavor_options=``).
        """
        ...

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Read the model back from a verified ``folder``."""
        ...

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """A :class:`LoadedModel` around an in-memory model saved in ``folder``."""
        ...


def defined_in(model: object, package: str) -> bool:
    """Whether ``model``'s class (or a base class) comes from ``package``, without importing
    it (so detecting flavors never loads a framework the model does not use)."""
    return any(c.__module__.split(".", 1)[0] == package for c in type(model).__mro__)


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution (``scikit-learn``), or None.

    A module shipped under another distribution name counts too (``xgboost-cpu`` installs the
    ``xgboost`` module).
    """
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    module = distribution.replace("-", "_")
    for other in importlib.metadata.packages_distributions().get(module, ()):
        try:
            return importlib.metadata.version(other)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def option_str(options: Mapping[str, Any], key: str, flavor: str) -> str:
    """A required text option of a manifest, checked.

    Raises:
        ModelCorrupted: it is missing or not text.
    """
    value = options.get(key)
    if not isinstance(value, str) or not value:
        raise ModelCorrupted(f"the {flavor} model's manifest has no valid {key!r} option")
    return value


def option_file(folder: Path, options: Mapping[str, Any], flavor: str, key: str = "file") -> Path:
    """The file an option names, confined to ``folder``.

    Raises:
        ModelCorrupted: the option is missing, unsafe or names no regular file of the folder.
    """
    name = option_str(options, key, flavor)
    try:
        path = confined_join(folder, name)
    except UnsafePath as exc:
        raise ModelCorrupted(f"the {flavor} model's manifest names an unsafe file: {exc}") from exc
    if not path.is_file():
        raise ModelCorrupted(f"the {flavor} model's file {name!r} is missing from its folder")
    return path


def table_input(data: Any, model: Any) -> Any:
    """Give a DataFrame to a model fitted with feature names, a NumPy array otherwise (so a
    model fitted on arrays is not handed column names it never saw)."""
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        try:
            named = getattr(model, "feature_names_in_", None) is not None
        except Exception:  # some wrappers raise from the property when unfitted or unnamed
            named = False
        if not named:
            return data.to_numpy()
    return data
