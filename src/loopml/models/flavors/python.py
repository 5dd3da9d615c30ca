"""Code-carrying models: your own :class:`PythonModel`, and any other object by pickle.

Both are serialised with cloudpickle (when installed, so classes defined in a script or a
notebook travel by value) or pickle. Unpickling runs whatever code the file names, so these
models load only with ``trusted=True``; the trust gate runs before any of their bytes are read.
"""

from __future__ import annotations

import abc
import importlib
import logging
import pickle
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgument, ModelCorrupted, UnsafePath
from loopml.models.flavors.base import LoadedModel, installed_version, option_file
from loopml.store.paths import confined_join, normalize_artifact_path

__all__ = ["PickleFlavor", "PythonFlavor", "PythonModel", "PythonModelContext"]

log = logging.getLogger("loopml")
_ARTIFACTS = "artifacts"


@dataclass(frozen=True)
class PythonModelContext:
    """What a :class:`PythonModel` gets when it loads and predicts.

    Attributes:
        artifacts: each artifact's name (as given to ``save_model(artifacts=...)``) and its
            local path (a file or a folder) inside the loaded model.
    """

    artifacts: Mapping[str, str] = field(default_factory=dict)


class PythonModel(abc.ABC):
    """Your own model: subclass it, implement :meth:`predict`, log it like any model.

    Example:
        >>> class Doubler(loopml.models.PythonModel):
        ...     def predict(self, context, data):
        ...         return data["x"] * 2
        >>> loopml.models.log_model(Doubler(), input_example={"x": [1.0, 2.0]})

    The instance is pickled with its class, so loading it runs code: ``load_model(uri,
    trusted=True)``.
    """

    def load_context(self, context: PythonModelContext) -> None:  # noqa: B027 (optional hook)
        """Called once after loading (and before inferring a signature at save time): open
        files from ``context.artifacts`` here. Does nothing by default."""

    @abc.abstractmethod
    def predict(self, context: PythonModelContext, data: Any) -> Any:
        """Predict on ``data`` (already checked against the signature, when there is one)."""


def _serializer() -> tuple[str, Any]:
    try:
        return "cloudpickle", importlib.import_module("cloudpickle")
    except ImportError:
        return "pickle", pickle


def _dump(model: Any, path: Path) -> str:
    name, module = _serializer()
    with open(path, "wb") as fh:
        module.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return name


def _undump(path: Path) -> Any:
    # Reached only with trusted=True (the gate in load_model runs first): this runs code.
    with open(path, "rb") as fh:
        return pickle.load(fh)  # noqa: S301


class PythonFlavor:
    """:class:`PythonModel` subclasses, with optional artifact files."""

    name: str = "python"
    packages: tuple[str, ...] = ("cloudpickle",)
    needs_trust: bool = True

    def can_save(self, model: object) -> bool:
        """Instances of :class:`PythonModel`."""
        return isinstance(model, PythonModel)

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Pickle the instance; copy ``options["artifacts"]`` (name -> local path) along."""
        if not isinstance(model, PythonModel):
            raise InvalidArgument(
                f"the python flavor saves loopml.models.PythonModel instances, not "
                f"{type(model).__name__}"
            )
        artifacts = options.get("artifacts") or {}
        if not isinstance(artifacts, Mapping):
            raise InvalidArgument("artifacts must be a dict of name -> local file or folder")
        saved: dict[str, str] = {}
        for key, source in artifacts.items():
            name = normalize_artifact_path(key)
            if "/" in name:
                raise InvalidArgument(f"artifact name {key!r} must not contain '/'")
            src = Path(source)
            dest = folder / _ARTIFACTS / name / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=False)
            elif src.is_file():
                shutil.copyfile(src, dest)
            else:
                raise InvalidArgument(f"artifact {key!r}: {str(src)!r} is not a file or folder")
            saved[name] = dest.relative_to(folder).as_posix()
        serializer = _dump(model, folder / "python_model.pkl")
        return {"file": "python_model.pkl", "serializer": serializer, "artifacts": saved}

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Unpickle the instance (trusted only) and call its ``load_context``."""
        path = option_file(folder, options, self.name)
        model = _undump(path)
        if not isinstance(model, PythonModel):
            raise ModelCorrupted(
                f"{path.name} holds a {type(model).__name__}, not a loopml.models.PythonModel"
            )
        return self.wrap(model, folder, options)

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """Give the model its context, then predict through it."""
        context = PythonModelContext(artifacts=_artifact_paths(folder, options))
        model.load_context(context)

        def predict(data: Any) -> Any:
            return model.predict(context, data)

        proba: Callable[[Any], Any] | None = None
        if callable(getattr(model, "predict_proba", None)):

            def model_proba(data: Any) -> Any:
                return model.predict_proba(context, data)

            proba = model_proba
        return LoadedModel(native=model, predict=predict, predict_proba=proba)


def _artifact_paths(folder: Path, options: Mapping[str, Any]) -> dict[str, str]:
    artifacts = options.get("artifacts") or {}
    if not isinstance(artifacts, Mapping):
        raise ModelCorrupted("the python model's manifest has malformed 'artifacts'")
    out = {}
    for name, rel in artifacts.items():
        try:
            out[str(name)] = str(confined_join(folder, str(rel)))
        except UnsafePath as exc:
            raise ModelCorrupted(f"the python model names an unsafe artifact: {exc}") from exc
    return out


class PickleFlavor:
    """Any other object with a ``predict`` method, pickled. Never picked silently: saving one
    logs a warning, and loading needs ``trusted=True``."""

    name: str = "pickle"
    packages: tuple[str, ...] = ("cloudpickle",)
    needs_trust: bool = True

    def can_save(self, model: object) -> bool:
        """Anything with a ``predict`` method (the last resort of flavor detection)."""
        return callable(getattr(model, "predict", None))

    def save(
        self, model: Any, folder: Path, *, example: Any, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Pickle the object (cloudpickle when installed)."""
        if not self.can_save(model):
            raise InvalidArgument(
                f"cannot save a {type(model).__name__}: it has no predict method"
            )
        log.warning(
            "loopml: saving a %s with pickle; loading it will need trusted=True (a scikit-learn, "
            "XGBoost, LightGBM or ONNX model loads without it)",
            type(model).__name__,
        )
        serializer = _dump(model, folder / "model.pkl")
        return {
            "file": "model.pkl",
            "serializer": serializer,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "serializer_version": installed_version(serializer),
        }

    def load(self, folder: Path, options: Mapping[str, Any], *, trusted: bool) -> LoadedModel:
        """Unpickle (trusted only)."""
        return self.wrap(_undump(option_file(folder, options, self.name)), folder, options)

    def wrap(self, model: Any, folder: Path, options: Mapping[str, Any]) -> LoadedModel:
        """``predict`` and ``predict_proba`` when the object has them."""
        proba = getattr(model, "predict_proba", None)
        return LoadedModel(model, model.predict, proba if callable(proba) else None)
