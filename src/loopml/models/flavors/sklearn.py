"""scikit-learn estimators and pipelines, saved with skops (no pickle, no code on load).

skops stores an object tree and refuses, on load, any type that is neither on its built-in
trusted list nor passed as ``trusted``. At save time the file's remaining ("untrusted") types
are recorded in the manifest as the approved list; at load time, after every hash verifies,
the file's types must all be on that list, and the file is loaded with exactly that list. A
type from outside scikit-learn, NumPy and SciPy (your own transformer class, for example)
means importing and running that code, so it also needs ``trusted=True``.

Importing ``skops.io`` costs seconds: at import it lists every scikit-learn estimator by
importing every scikit-learn module (and PyTorch, through scikit-learn's array API shims), to
build its default trusted list. loopml imports it with that scan switched off
(:func:`skops_io`) and recognises scikit-learn's estimator classes itself, for only the types
in the file being loaded (:func:`sklearn_estimators`): the same types are trusted, at a
fraction of the cost.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from loopml._lazy import require
from loopml.errors import ModelCorrupted, UntrustedModel
from loopml.models.flavors.base import LoadedModel, defined_in, installed_version, option_file
from loopml.models.flavors.base import table_input as _table

__all__ = [
    "SAFE_TYPES",
    "SAFE_TYPE_PACKAGES",
    "SklearnFlavor",
    "sklearn_estimators",
    "skops_io",
]

SAFE_TYPE_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
"""Packages whose types, once approved at save time, load without ``trusted=True``."""

SAFE_TYPES = frozenset({"functools.partial"})
"""Types from elsewhere that are as safe: a ``partial`` only binds arguments to a function,
and skops lists that function's own type, which must pass on its own (scikit-learn 1.9 keeps
``partial(check_array, ...)`` in histogram gradient boosting models with categories)."""
_FILE = "model.skops"


class SklearnFlavor:
    """scikit-learn estimators and pipelines in the skops format."""

    name: str = "sklearn"
    packages: tuple[str, ...] = ("scikit-learn", "skops", "numpy", "scipy")
    needs_trust: bool = False

    def can_save(self, model: object) -> bool:
        """scikit-learn estimators (and subclasses, such as your own estimators)."""
        return defined_in(model, "sklearn")

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Dump with ``skops.io.dump`` and record the file's untrusted types as approved."""
        sio = skops_io("saving a scikit-learn model")
        path = folder / _FILE
        sio.dump(model, path)
        untrusted = set(sio.get_untrusted_types(file=path))
        # What skops' default list trusts is not recorded, however skops was imported.
        approved = sorted(untrusted - sklearn_estimators(untrusted))
        return {
            "file": _FILE,
            "sklearn_version": installed_version("scikit-learn"),
            "skops_version": installed_version("skops"),
            "trusted_types": approved,
        }

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Load with skops, refusing types the manifest did not approve.

        Raises:
            UntrustedModel: the file holds types not approved at save time, or approved types
                from outside scikit-learn, NumPy and SciPy, and ``trusted`` is False.
            ModelCorrupted: the options are malformed or skops cannot read the file.
        """
        sio = skops_io("loading a scikit-learn model")
        path = option_file(folder, options, self.name)
        approved = options.get("trusted_types", [])
        if not isinstance(approved, list) or not all(isinstance(t, str) for t in approved):
            raise ModelCorrupted("the sklearn model's manifest has a malformed 'trusted_types'")
        try:
            found = set(sio.get_untrusted_types(file=path))
        except Exception as exc:  # a damaged or foreign file: skops' own errors vary
            raise ModelCorrupted(f"{path.name} is not a readable skops file: {exc}") from exc
        # Estimator classes of scikit-learn are on skops' default list (which skops_io leaves
        # empty): trust them as skops would.
        approved = [*approved, *sorted(sklearn_estimators(found - set(approved)))]
        if not trusted:
            unapproved = sorted(found - set(approved))
            if unapproved:
                raise UntrustedModel(
                    f"the scikit-learn model in {str(folder)!r} holds types that were not "
                    f"approved when it was saved: {', '.join(unapproved)}; refused (the file "
                    "was replaced, or written by other means). Load it only if you trust its "
                    "source: load_model(uri, trusted=True)"
                )
            foreign = sorted(
                t
                for t in found
                if t.split(".", 1)[0] not in SAFE_TYPE_PACKAGES and t not in SAFE_TYPES
            )
            if foreign:
                raise UntrustedModel(
                    f"the scikit-learn model in {str(folder)!r} holds types from outside "
                    f"scikit-learn, NumPy and SciPy: {', '.join(foreign)}; loading them imports "
                    "and runs their code. Load it only if you trust its source: "
                    "load_model(uri, trusted=True)"
                )
        allowed = sorted(found) if trusted else sorted(approved)
        try:
            model = sio.load(path, trusted=allowed)
        except Exception as exc:  # skops raises UntrustedTypesFoundException and others
            raise ModelCorrupted(f"skops could not load {path.name}: {exc}") from exc
        return self.wrap(model, folder, options)

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """``predict`` and, where the estimator has it, ``predict_proba``."""

        def predict(data: Any) -> Any:
            return model.predict(_table(data, model))

        def predict_proba(data: Any) -> Any:
            return model.predict_proba(_table(data, model))

        has_proba = hasattr(model, "predict_proba")  # False for regressors and some pipelines
        return LoadedModel(model, predict, predict_proba if has_proba else None)


def skops_io(purpose: str) -> ModuleType:
    """``skops.io``, imported without its scan of every scikit-learn module.

    The scan builds skops' default list of trusted estimator types; with it switched off that
    list is empty and :func:`sklearn_estimators` supplies the estimator types a file holds. If
    ``skops.io`` was already imported, it is used as it is.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    utils = require("sklearn.utils", "sklearn", purpose)
    scan = utils.all_estimators
    utils.all_estimators = lambda *args, **kwargs: []  # type: ignore[attr-defined]
    try:
        return require("skops.io", "sklearn", purpose)
    finally:
        utils.all_estimators = scan  # type: ignore[attr-defined]


def sklearn_estimators(names: Iterable[str]) -> set[str]:
    """The type names among ``names`` that are scikit-learn estimator classes.

    What skops trusts by default (its list comes from ``sklearn.utils.all_estimators``): a class
    deriving from ``BaseEstimator``, defined in a scikit-learn module outside its tests and
    vendored packages. Only modules under ``sklearn.`` are imported to check a name.
    """
    from sklearn.base import BaseEstimator

    found = set()
    for name in names:
        module, _, attr = name.rpartition(".")
        parts = module.split(".")
        if parts[0] != "sklearn" or {"tests", "externals"} & set(parts) or not attr:
            continue
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        if isinstance(obj, type) and issubclass(obj, BaseEstimator) and obj.__module__ == module:
            found.add(name)
    return found
