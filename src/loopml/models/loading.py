"""Loading models safely: :func:`load_model` is the one way a model folder becomes a Predictor.

In order, before any model byte is deserialised:

1. the URI is resolved (a local folder or ``.tar.gz`` archive, ``runs:/<run_id>/<path>``,
   ``models:/<name>/<version>``, ``models:/<name>@<alias>``) and downloaded into a private
   (0o700) temporary folder, every blob verified by the artifact store;
2. the manifest's sha256 is checked against the registry's ``manifest_digest`` (registered
   models), then the manifest is parsed as data: its flavor must be one of loopml's
   (:data:`~loopml.models.flavors.FLAVORS`), never a module to import;
3. the folder must hold exactly the files the manifest lists, each with its sha256, and no
   symlink, hard link or device;
4. a flavor that runs code on load (pickle, torch, :class:`PythonModel`) needs ``trusted=True``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument, ModelCorrupted, UntrustedModel
from loopml.models.flavors import FLAVORS, Flavor
from loopml.models.flavors.base import installed_version
from loopml.models.manifest import Manifest, read_manifest, verify_folder
from loopml.models.predictor import Predictor
from loopml.store.paths import normalize_artifact_path

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["load_model", "resolve_model", "verify_model"]

log = logging.getLogger("loopml")
_RUNS = re.compile(r"^runs:/([^/]+)/(.+)$")


def load_model(
    uri: str | os.PathLike[str],
    *,
    trusted: bool = False,
    client: Client | None = None,
    dst_path: str | os.PathLike[str] | None = None,
    project: str | None = None,
) -> Predictor:
    """Load a model, verified, as a :class:`Predictor`.

    Args:
        uri: a local model folder or ``.tar.gz`` archive (from ``export_model``),
            ``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` or ``models:/<name>@<alias>``.
        trusted: allow flavors whose loading runs code stored in the model (pickle, torch,
            :class:`PythonModel`, scikit-learn types from outside scikit-learn, NumPy and
            SciPy). Pass it only for models from a source you trust.
        client: the client to download with (default: the fluent API's).
        dst_path: download into this folder instead of a private temporary one (removed when
            the predictor is garbage-collected).
        project: the project of a ``models:/`` URI (default: the client's current one).

    Returns:
        A :class:`Predictor` whose ``predict`` checks its input against the signature.

    Raises:
        ModelCorrupted: the manifest does not match the registry's digest, a file does not
            match the manifest (named), the folder holds unlisted files, or the manifest names
            no loopml flavor.
        UnsafePath: the folder holds a symlink, a hard link or a device.
        UntrustedModel: loading would run code from the model and ``trusted`` is False.
        ModelNotFound, RunNotFound, ArtifactNotFound: the URI names nothing.
        MissingExtra: the flavor's framework is not installed.
    """
    folder, expected, temporary = resolve_model(
        uri, client=client, dst_path=dst_path, project=project
    )
    try:
        predictor = _load_folder(folder, str(uri), expected_digest=expected, trusted=trusted)
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    if temporary is not None:
        weakref.finalize(predictor, shutil.rmtree, str(temporary), True)
    return predictor


def resolve_model(
    uri: str | os.PathLike[str],
    *,
    client: Client | None = None,
    dst_path: str | os.PathLike[str] | None = None,
    project: str | None = None,
) -> tuple[Path, str | None, Path | None]:
    """Bring a model's folder to local disk, without reading any of it.

    Returns:
        ``(folder, expected_manifest_digest, temporary_folder_to_remove)``; the digest is the
        registry's for ``models:/`` URIs, else None.

    Raises:
        InvalidArgument: the URI is malformed or names a folder that does not exist.
    """
    text = os.fspath(uri)
    if not isinstance(text, str):
        raise InvalidArgument(f"a model URI must be a string or a path, not {type(uri).__name__}")
    if text.startswith("models:/"):
        from loopml.client import context

        client = client or context.get_client()
        resolve = getattr(client, "resolve_model_uri", None)
        if resolve is None:
            raise InvalidArgument(f"this client has no model registry to resolve {text!r}")
        version = resolve(text, project=project or context.get_project())
        folder, _, temporary = resolve_model(version.source, client=client, dst_path=dst_path)
        return folder, getattr(version, "manifest_digest", None) or None, temporary
    match = _RUNS.match(text)
    if match is not None:
        from loopml.client import context

        client = client or context.get_client()
        run_id, path = match.group(1), normalize_artifact_path(match.group(2))
        temporary = None
        if dst_path is None:
            temporary = Path(tempfile.mkdtemp(prefix="loopml-model-"))  # 0o700
            dst_path = temporary
        try:
            folder = client.download_artifacts(run_id, path, dst_path)
        except BaseException:
            if temporary is not None:
                shutil.rmtree(temporary, ignore_errors=True)
            raise
        return folder, None, temporary
    if "://" in text or text.startswith(("runs:", "models:")):
        raise InvalidArgument(
            f"{text!r} is not a model URI loopml reads: use a local folder, "
            "runs:/<run_id>/<path>, models:/<name>/<version> or models:/<name>@<alias>"
        )
    local = Path(text)
    if local.is_file() and local.name.endswith((".tar.gz", ".tgz")):
        from loopml.models.archive import import_model

        temporary = Path(tempfile.mkdtemp(prefix="loopml-model-"))
        try:
            return import_model(local, temporary / "model"), None, temporary
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    if not local.is_dir():
        raise InvalidArgument(f"{text!r} is not a model folder (it does not exist)")
    return local, None, None


def _flavor(manifest: Manifest, folder: Path) -> Flavor:
    flavor = FLAVORS.get(manifest.flavor)
    if flavor is None:
        raise ModelCorrupted(
            f"the model at {str(folder)!r} names flavor {manifest.flavor!r:.80}, which is not one "
            f"of loopml's ({', '.join(FLAVORS)}); loopml never imports code a model names. "
            "If a newer loopml saved it, upgrade loopml"
        )
    return flavor


def _load_folder(
    folder: Path, uri: str, *, expected_digest: str | None, trusted: bool
) -> Predictor:
    manifest, digest = read_manifest(folder, expected_digest=expected_digest)
    flavor = _flavor(manifest, folder)
    verify_folder(folder, manifest)
    if flavor.needs_trust and not trusted:
        raise UntrustedModel(
            f"the model at {uri!r} is a {flavor.name} model: loading it unpickles or runs code "
            "stored in the model, which could do anything on this machine. If you trust where "
            f"it came from, load it with load_model({uri!r}, trusted=True)"
        )
    _check_versions(manifest, uri)
    loaded = flavor.load(folder, manifest.flavor_options, trusted=trusted)
    return Predictor(loaded, manifest, manifest_digest=digest, path=folder, uri=uri)


def _check_versions(manifest: Manifest, uri: str) -> None:
    """Log (not fail) when a pinned package has another major.minor version here."""
    for name, pinned in manifest.requirements.items():
        if name in ("python", "loopml"):
            continue
        here = installed_version(name)
        if here is not None and _minor(here) != _minor(pinned):
            log.warning(
                "loopml: model %s was saved with %s %s, but %s is installed; predictions may "
                "differ",
                uri,
                name,
                pinned,
                here,
            )


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split("+")[0].split(".")[:2])


def verify_model(uri: str | os.PathLike[str], *, client: Client | None = None) -> Manifest:
    """Check a model without loading it: the manifest (against the registry's digest for
    ``models:/`` URIs), its flavor, and every file's hash. Nothing is deserialised.

    Returns:
        The verified manifest.

    Raises:
        ModelCorrupted, UnsafePath: as for :func:`load_model`.
    """
    folder, expected, temporary = resolve_model(uri, client=client)
    try:
        manifest, _ = read_manifest(folder, expected_digest=expected)
        _flavor(manifest, folder)
        verify_folder(folder, manifest)
        return manifest
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
