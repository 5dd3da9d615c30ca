"""scikit-learn estimators and pipelines, saved with skops (no pickle, no code on load).

skops stores an object tree and refuses, on load, any type that is neither on its built-in
trusted list nor passed as ``trusted``. At save time the file's remaining ("untrusted") types
are recorded in the manifest as the approved list; at load time, after every hash verifies,
the file's types must all be on that list, and the file is loaded with exactly that list. A
type from outside scikit-learn, NumPy and SciPy (your own transformer class, for example)
means importing and running that code, so it also needs ``trusted=True``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loopml._lazy import require
from loopml.errors import ModelCorrupted, UntrustedModel
from loopml.models.flavors.base import LoadedModel, defined_in, installed_version, option_file
from loopml.models.flavors.base import table_input as _table

__all__ = ["SAFE_TYPE_PACKAGES", "SklearnFlavor"]

SAFE_TYPE_PACKAGES = frozenset({"sklearn", "numpy", "scipy"})
"""Packages whose types, once approved at save time, load without ``trusted=True``."""
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
        sio = require("skops.io", "sklearn", "saving a scikit-learn model")
        path = folder / _FILE
        sio.dump(model, path)
        approved = sorted(sio.get_untrusted_types(file=path))
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
        sio = require("skops.io", "sklearn", "loading a scikit-learn model")
        path = option_file(folder, options, self.name)
        approved = options.get("trusted_types", [])
        if not isinstance(approved, list) or not all(isinstance(t, str) for t in approved):
            raise ModelCorrupted("the sklearn model's manifest has a malformed 'trusted_types'")
        try:
            found = set(sio.get_untrusted_types(file=path))
        except Exception as exc:  # a damaged or foreign file: skops' own errors vary
            raise ModelCorrupted(f"{path.name} is not a readable skops file: {exc}") from exc
        if not trusted:
            unapproved = sorted(found - set(approved))
            if unapproved:
                raise UntrustedModel(
                    f"the scikit-learn model in {str(folder)!r} holds types that were not "
                    f"approved when it was saved: {', '.join(unapproved)}; refused (the file "
                    "was replaced, or written by other means). Load it only if you trust its "
                    "source: load_model(uri, trusted=True)"
                )
            foreign = sorted(t for t in found if t.split(".", 1)[0] not in SAFE_TYPE_PACKAGES)
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
