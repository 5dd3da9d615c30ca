"""Saving models: :func:`save_model` writes a model folder, :func:`log_model` logs one to a run.

A model folder holds the flavor's files, an optional ``input_example.json`` and the manifest
``loopml-model.json`` (see :mod:`loopml.models.manifest`).
"""

from __future__ import annotations

import logging
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._version import __version__
from loopml.entities import RunStatus
from loopml.errors import InvalidArgument
from loopml.models.flavors import Flavor, detect_flavor, get_flavor
from loopml.models.flavors.base import installed_version
from loopml.models.manifest import Manifest, hash_folder
from loopml.models.predictor import write_example
from loopml.models.signature import ModelSignature, infer_signature
from loopml.schema import Schema
from loopml.store.paths import normalize_artifact_path

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["ModelInfo", "log_model", "save_model"]

log = logging.getLogger("loopml")
EXAMPLE_FILE = "input_example.json"


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`log_model` logged.

    Attributes:
        run_id: the run the model was logged to.
        artifact_path: the model folder's path in the run (``model``).
        model_uri: ``runs:/<run_id>/<artifact_path>``: pass it to ``load_model``; it is also
            the ``source`` of a registered version.
        manifest_digest: the sha256 of the manifest, which pins every file of the model.
        flavor: the flavor's name.
        signature: the signature, if any.
        model_class: the model's class (``sklearn.pipeline.Pipeline``).
        registered_version: the registered model version when ``registered_model_name`` was
            given, else None.
    """

    run_id: str
    artifact_path: str
    model_uri: str
    manifest_digest: str
    flavor: str
    signature: ModelSignature | None
    model_class: str
    registered_version: Any = None


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    signature: ModelSignature | Schema | None = None,
    input_example: Any = None,
    requirements: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    flavor_options: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
) -> Manifest:
    """Write ``model`` into a new folder: the flavor's files, the input example, the manifest.

    Args:
        model: a scikit-learn estimator or pipeline, an XGBoost or LightGBM model, an ONNX
            ``ModelProto``, a PyTorch module, a :class:`~loopml.models.PythonModel`, or (saved
            with pickle, loaded only when trusted) any object with a ``predict`` method.
        path: the folder to create (it must not exist, or be empty).
        flavor: the flavor's name; detected from the model when None.
        signature: a :class:`ModelSignature`, or a :class:`~loopml.schema.Schema` (the data
            contract; its target becomes the output). When None and ``input_example`` is given,
            it is inferred from the example and the model's output on it.
        input_example: a few rows of model input, saved with the model (first 100 rows) and
            used to infer the signature and to trace torch modules.
        requirements: extra distributions to pin (their installed version is recorded), on top
            of the flavor's own and Python's version.
        metadata: free-form JSON saved in the manifest.
        flavor_options: flavor choices: ``{"format": "ubj"}`` for XGBoost, ``{"format":
            "pickle"}`` for torch.
        artifacts: for a :class:`~loopml.models.PythonModel`: files or folders to copy into
            the model, by name (read them in ``load_context``).

    Returns:
        The manifest written.

    Raises:
        InvalidArgument: the folder is not empty, no flavor saves the model, the example does
            not fit the signature, or the model fails on its own example.
    """
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidArgument(
            f"cannot save a model to {str(folder)!r}: it exists and is not empty"
        )
    folder.mkdir(parents=True, exist_ok=True)
    manifest, _ = _write_folder(
        model,
        folder,
        flavor=flavor,
        signature=signature,
        input_example=input_example,
        requirements=requirements,
        metadata=metadata,
        flavor_options=flavor_options,
        artifacts=artifacts,
    )
    return manifest


def _write_folder(
    model: Any,
    folder: Path,
    *,
    flavor: str | None,
    signature: ModelSignature | Schema | None,
    input_example: Any,
    requirements: Sequence[str],
    metadata: Mapping[str, Any] | None,
    flavor_options: Mapping[str, Any] | None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None,
    run_id: str | None = None,
    artifact_path: str | None = None,
    datasets: Sequence[Mapping[str, Any]] = (),
) -> tuple[Manifest, str]:
    chosen: Flavor = get_flavor(flavor) if flavor is not None else detect_flavor(model)
    options = dict(flavor_options or {})
    if artifacts:
        if chosen.name != "python":
            raise InvalidArgument("artifacts= is for loopml.models.PythonModel models only")
        options["artifacts"] = {k: os.fspath(v) for k, v in artifacts.items()}
    saved = chosen.save(model, folder, example=input_example, options=options)
    sig = _signature(chosen, model, folder, saved, signature, input_example)
    if input_example is not None:
        write_example(input_example, folder / EXAMPLE_FILE)
    manifest = Manifest(
        flavor=chosen.name,
        flavor_options=saved,
        files=hash_folder(folder),
        requirements=_requirements(chosen, requirements),
        model_class=f"{type(model).__module__}.{type(model).__qualname__}",
        signature=sig,
        input_example=EXAMPLE_FILE if input_example is not None else None,
        loopml_version=__version__,
        run_id=run_id,
        artifact_path=artifact_path,
        datasets=tuple(datasets),
        metadata=dict(metadata or {}),
    )
    digest = manifest.write(folder)
    return manifest, digest


def _signature(
    flavor: Flavor,
    model: Any,
    folder: Path,
    options: Mapping[str, Any],
    given: ModelSignature | Schema | None,
    example: Any,
) -> ModelSignature | None:
    if isinstance(given, Schema):
        given = ModelSignature.from_schema(given)
    elif given is not None and not isinstance(given, ModelSignature):
        raise InvalidArgument(
            f"signature must be a ModelSignature or a Schema, not {type(given).__name__}"
        )
    if example is None:
        if given is None and flavor.name == "onnx":  # an ONNX graph declares its tensors
            from loopml.models.flavors.onnx import session_signature

            return session_signature(model)
        return given
    signature = given if given is not None else infer_signature(example)
    prepared = signature.prepare(example)  # a given signature must fit its own example
    try:
        output = flavor.wrap(model, folder, options).predict(prepared)
    except Exception as exc:  # the user's model: any error means the example is wrong
        raise InvalidArgument(
            f"the model fails on its input example: {type(exc).__name__}: {exc}"
        ) from exc
    return given if given is not None else infer_signature(example, output)


def _requirements(flavor: Flavor, extra: Sequence[str]) -> dict[str, str]:
    pins = {"python": platform.python_version(), "loopml": __version__}
    if isinstance(extra, str):
        raise InvalidArgument("requirements must be a list of distribution names")
    for dist in (*flavor.packages, *extra):
        name, _, version = dist.partition("==")
        version = version or installed_version(name) or ""
        if version:
            pins[name] = version
        elif dist in extra:
            raise InvalidArgument(
                f"requirement {dist!r} is not installed; give its version as '{name}==X.Y'"
            )
    return pins


def log_model(
    model: Any,
    name: str = "model",
    *,
    flavor: str | None = None,
    signature: ModelSignature | Schema | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    requirements: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    flavor_options: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    run_id: str | None = None,
    client: Client | None = None,
) -> ModelInfo:
    """Save ``model`` and log the folder as artifacts of a run; optionally register it.

    The run is ``run_id`` if given, else the active run (``with loopml.start_run():``, when
    ``client`` is None or the fluent API's own), else a new run in the current project that is
    ended once the model is logged (failed if logging fails). The manifest records the run and
    the dataset versions the run used.

    Args:
        model: the model (see :func:`save_model`).
        name: the model folder's path in the run.
        flavor, signature, input_example, requirements, metadata, flavor_options, artifacts:
            as for :func:`save_model`.
        registered_model_name: also register the model under this name (a new version, in
            the run's project).
        run_id: log to this run instead of the active one.
        client: the client to use (default: the fluent API's).

    Returns:
        A :class:`ModelInfo` with the ``runs:/`` URI and the manifest digest.

    Raises:
        InvalidArgument: as for :func:`save_model`, or the run already has files at ``name``.
    """
    from loopml.client import context

    path = normalize_artifact_path(name)
    active = context.active_run_id()
    if client is None:
        client = context.get_client()
        run_id = run_id or active
    elif run_id is None and active is not None and client is context.peek_client():
        run_id = active
    owned = run_id is None
    if run_id is None:
        run_id = client.create_run(context.get_project()).run_id
    try:
        info = _log(
            client,
            run_id,
            path,
            model,
            dict(
                flavor=flavor,
                signature=signature,
                input_example=input_example,
                requirements=requirements,
                metadata=metadata,
                flavor_options=flavor_options,
                artifacts=artifacts,
            ),
        )
        if registered_model_name is not None:
            info = _register(client, registered_model_name, info)
    except BaseException:
        if owned:
            client.end_run(run_id, RunStatus.FAILED)
        raise
    if owned:
        client.end_run(run_id)
    return info


def _log(client: Client, run_id: str, path: str, model: Any, kwargs: dict[str, Any]) -> ModelInfo:
    if client.list_artifacts(run_id, path):
        raise InvalidArgument(
            f"run {run_id!r} already has files under {path!r}; log the model under another name"
        )
    datasets = [
        {
            "name": i.dataset_version.name,
            "version": i.dataset_version.version,
            "digest": i.dataset_version.digest,
            "role": i.role,
        }
        for i in client.get_run_inputs(run_id)
    ]
    with tempfile.TemporaryDirectory(prefix="loopml-model-") as tmp:
        folder = Path(tmp) / "model"
        folder.mkdir()
        manifest, digest = _write_folder(
            model, folder, **kwargs, run_id=run_id, artifact_path=path, datasets=datasets
        )
        client.log_artifacts(run_id, folder, artifact_path=path)
    return ModelInfo(
        run_id=run_id,
        artifact_path=path,
        model_uri=f"runs:/{run_id}/{path}",
        manifest_digest=digest,
        flavor=manifest.flavor,
        signature=manifest.signature,
        model_class=manifest.model_class,
    )


def _register(client: Client, name: str, info: ModelInfo) -> ModelInfo:
    create = getattr(client, "create_model_version", None)
    if create is None:
        raise InvalidArgument(
            f"this client has no model registry, so {name!r} was not registered; the model "
            f"is logged at {info.model_uri}"
        )
    run = client.get_run(info.run_id)
    version = create(
        name,
        source=info.model_uri,
        run_id=info.run_id,
        flavor=info.flavor,
        signature=None if info.signature is None else info.signature.to_dict(),
        manifest_digest=info.manifest_digest,
        project=client.store.get_project(run.project_id).name,  # the run's project
    )
    from dataclasses import replace

    return replace(info, registered_version=version)
