"""The model folder's manifest, ``loopml-model.json``: what the folder holds and how to load it.

A model folder is a flat set of files plus this manifest. The manifest names the flavor (looked
up in loopml's fixed registry, never imported by name), the flavor's options, the signature, the
input example, the pinned requirements, where the model came from (run, datasets) and the
sha256 and size of **every** other file. The sha256 of the manifest's own bytes is the model's
``manifest_digest``: the registry stores it, so one digest pins the whole folder.

:func:`verify_folder` is the gate every load passes before anything is deserialised: the folder
holds exactly the files the manifest lists (no more, no symlinks, hard links or devices), and
each one hashes to the recorded value.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopml.errors import InvalidArgument, ModelCorrupted, UnsafePath
from loopml.models.signature import ModelSignature
from loopml.store.paths import normalize_artifact_path
from loopml.store.validation import check_sha256

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MAX_MANIFEST_BYTES",
    "FileEntry",
    "Manifest",
    "hash_folder",
    "read_manifest",
    "sha256_file",
    "verify_folder",
]

MANIFEST_FILE = "loopml-model.json"
"""The manifest's file name inside a model folder."""
FORMAT_VERSION = 1
"""The manifest layout this loopml writes (and the newest it reads)."""
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_FIELDS = {
    "format_version",
    "flavor",
    "model_class",
    "signature",
    "input_example",
    "requirements",
    "files",
    "created_at",
    "loopml_version",
    "run_id",
    "artifact_path",
    "datasets",
    "metadata",
}


@dataclass(frozen=True)
class FileEntry:
    """One file of a model folder: its sha256 (hex) and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The parsed ``loopml-model.json``.

    Attributes:
        flavor: the flavor's name (``sklearn``, ``xgboost``, ``onnx``...).
        flavor_options: what the flavor needs to load the model: the file name, the framework
            version, and for scikit-learn the skops types approved at save time.
        files: every file of the folder except the manifest, by relative path.
        requirements: ``python`` and each package the flavor needs, with the version that
            saved the model.
        model_class: the saved object's class (``sklearn.pipeline.Pipeline``), for people.
        signature: the inputs and outputs, when known.
        input_example: the file holding the input example, if one was saved.
        created_at: when the folder was written (ISO 8601, UTC).
        loopml_version: the loopml that wrote it.
        run_id: the run the model was logged to, if any.
        artifact_path: its path in that run.
        datasets: the run's dataset inputs when the model was logged
            (``name``, ``version``, ``digest``, ``role``).
        metadata: free-form JSON from the user.
        format_version: the manifest layout version.
    """

    flavor: str
    flavor_options: Mapping[str, Any]
    files: Mapping[str, FileEntry]
    requirements: Mapping[str, str]
    model_class: str = ""
    signature: ModelSignature | None = None
    input_example: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    loopml_version: str = ""
    run_id: str | None = None
    artifact_path: str | None = None
    datasets: tuple[Mapping[str, Any], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, keys in a fixed order."""
        return {
            "format_version": self.format_version,
            "flavor": {"name": self.flavor, "options": dict(self.flavor_options)},
            "model_class": self.model_class,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "requirements": dict(self.requirements),
            "files": {
                path: {"sha256": e.sha256, "size": e.size}
                for path, e in sorted(self.files.items())
            },
            "created_at": self.created_at,
            "loopml_version": self.loopml_version,
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "datasets": [dict(d) for d in self.datasets],
            "metadata": dict(self.metadata),
        }

    def to_json(self) -> bytes:
        """The bytes written to ``loopml-model.json`` (their sha256 is the manifest digest)."""
        return (json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n").encode()

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "manifest") -> Manifest:
        """Parse and check the dict form; every field is checked, nothing is imported.

        Raises:
            ModelCorrupted: a missing or malformed field, or a newer format version.
        """
        if not isinstance(data, Mapping):
            raise _bad(source, "it is not a JSON object")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _bad(source, "format_version is missing or not a positive integer")
        if version > FORMAT_VERSION:
            raise _bad(
                source,
                f"format_version {version} is newer than this loopml reads ({FORMAT_VERSION}); "
                "upgrade loopml",
            )
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise _bad(source, f"unknown fields {', '.join(map(repr, unknown))}")
        flavor = data.get("flavor")
        if (
            not isinstance(flavor, Mapping)
            or not isinstance(flavor.get("name"), str)
            or not isinstance(flavor.get("options", {}), Mapping)
        ):
            raise _bad(source, "'flavor' must be an object with a 'name' and 'options'")
        files = data.get("files")
        if not isinstance(files, Mapping):
            raise _bad(source, "'files' must be an object of path -> {sha256, size}")
        entries = {_file_path(p, source): _file_entry(p, e, source) for p, e in files.items()}
        requirements = data.get("requirements") or {}
        if not isinstance(requirements, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in requirements.items()
        ):
            raise _bad(source, "'requirements' must map package names to version strings")
        signature = data.get("signature")
        try:
            sig = None if signature is None else ModelSignature.from_dict(signature)
        except InvalidArgument as exc:
            raise _bad(source, f"its signature is malformed: {exc}") from exc
        example = data.get("input_example")
        if example is not None:
            example = _file_path(example, source)
            if example not in entries:
                raise _bad(source, f"the input example {example!r} is not one of its files")
        datasets = data.get("datasets") or []
        if not isinstance(datasets, list) or not all(isinstance(d, Mapping) for d in datasets):
            raise _bad(source, "'datasets' must be a list of objects")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise _bad(source, "'metadata' must be an object")
        texts = {k: data.get(k) for k in ("model_class", "created_at", "loopml_version")}
        optional = {k: data.get(k) for k in ("run_id", "artifact_path")}
        if not all(isinstance(v, str) for v in texts.values() if v is not None) or not all(
            v is None or isinstance(v, str) for v in optional.values()
        ):
            raise _bad(source, "model_class, created_at, run_id and artifact_path must be text")
        return cls(
            flavor=flavor["name"],
            flavor_options=dict(flavor.get("options", {})),
            files=entries,
            requirements=dict(requirements),
            model_class=texts["model_class"] or "",
            signature=sig,
            input_example=example,
            created_at=texts["created_at"] or "",
            loopml_version=texts["loopml_version"] or "",
            run_id=optional["run_id"],
            artifact_path=optional["artifact_path"],
            datasets=tuple(dict(d) for d in datasets),
            metadata=dict(metadata),
            format_version=version,
        )

    def write(self, folder: str | os.PathLike[str]) -> str:
        """Write ``loopml-model.json`` into ``folder``; returns the manifest digest (sha256)."""
        data = self.to_json()
        (Path(folder) / MANIFEST_FILE).write_bytes(data)
        return hashlib.sha256(data).hexdigest()


def _bad(source: str, why: str) -> ModelCorrupted:
    return ModelCorrupted(f"{source} is not a valid loopml model manifest: {why}")


def _file_path(path: object, source: str) -> str:
    try:
        rel = normalize_artifact_path(path)
    except UnsafePath as exc:
        raise _bad(source, f"it lists an unsafe file path: {exc}") from exc
    if rel != path or rel == MANIFEST_FILE:
        raise _bad(source, f"it lists the file path {path!r}, which is not canonical")
    return rel


def _file_entry(path: str, entry: object, source: str) -> FileEntry:
    if not isinstance(entry, Mapping):
        raise _bad(source, f"file {path!r} needs a sha256 and a size")
    sha, size = entry.get("sha256"), entry.get("size")
    try:
        check_sha256(sha, f"the sha256 of file {path!r}")
    except InvalidArgument as exc:
        raise _bad(source, str(exc)) from exc
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(source, f"file {path!r} has no valid size")
    return FileEntry(str(sha), size)


def read_manifest(
    folder: str | os.PathLike[str], *, expected_digest: str | None = None
) -> tuple[Manifest, str]:
    """Read and check a folder's manifest; returns it and its digest.

    Args:
        folder: the model folder.
        expected_digest: the manifest digest the registry recorded; a different one is refused.

    Raises:
        ModelCorrupted: no manifest, a malformed one, or a digest other than ``expected_digest``.
        UnsafePath: the manifest is a symlink or not a regular file.
    """
    path = Path(folder) / MANIFEST_FILE
    try:
        info = path.lstat()
    except FileNotFoundError as exc:
        raise ModelCorrupted(
            f"{str(folder)!r} is not a loopml model folder: it has no {MANIFEST_FILE} "
            "(save one with loopml.models.save_model or log_model)"
        ) from exc
    _check_regular(path, info)
    if info.st_size > MAX_MANIFEST_BYTES:
        raise ModelCorrupted(f"{str(path)!r} is {info.st_size} bytes: too large for a manifest")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if expected_digest is not None and digest != expected_digest:
        raise ModelCorrupted(
            f"the manifest of the model at {str(folder)!r} has sha256 {digest}, but the registry "
            f"recorded {expected_digest}: the model was changed after it was registered; refused"
        )
    try:
        parsed = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ModelCorrupted(f"{str(path)!r} is not valid JSON: {exc}") from exc
    return Manifest.from_dict(parsed, source=str(path)), digest


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _check_regular(path: Path, info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{str(path)!r} is a symlink; a model folder holds only regular files")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"{str(path)!r} is not a regular file (a device, socket or pipe?)")
    if info.st_nlink > 1:
        raise UnsafePath(
            f"{str(path)!r} has {info.st_nlink} hard links; a model file must not be shared "
            "with a path outside its folder"
        )


def _walk(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` by relative path, refusing anything but files and folders."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames:
            info = Path(dirpath, name).lstat()
            if not stat.S_ISDIR(info.st_mode):
                raise UnsafePath(
                    f"{str(Path(dirpath, name))!r} is a symlink to a folder; a model folder "
                    "holds only regular files"
                )
        for name in filenames:
            path = Path(dirpath, name)
            _check_regular(path, path.lstat())
            found[path.relative_to(folder).as_posix()] = path
    return found


def sha256_file(path: Path) -> str:
    """The sha256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_folder(folder: str | os.PathLike[str]) -> dict[str, FileEntry]:
    """The sha256 and size of every file in ``folder`` except the manifest.

    Raises:
        UnsafePath: the folder holds a symlink, a hard link, a device or another special file.
    """
    files = _walk(Path(folder))
    files.pop(MANIFEST_FILE, None)
    return {rel: FileEntry(sha256_file(p), p.stat().st_size) for rel, p in sorted(files.items())}


def verify_folder(folder: str | os.PathLike[str], manifest: Manifest) -> None:
    """Check that ``folder`` holds exactly the files ``manifest`` lists, each with its hash.

    Call it before any file of the folder is deserialised.

    Raises:
        ModelCorrupted: a listed file is missing or hashes differently (named), or the folder
            holds a file the manifest does not list.
        UnsafePath: a symlink, hard link, device or other special file.
    """
    root = Path(folder)
    found = _walk(root)
    found.pop(MANIFEST_FILE, None)
    unlisted = sorted(set(found) - set(manifest.files))
    if unlisted:
        raise ModelCorrupted(
            f"the model folder {str(root)!r} holds files its manifest does not list: "
            f"{', '.join(map(repr, unlisted[:10]))}; refused (an unlisted file is unverified)"
        )
    for rel, entry in sorted(manifest.files.items()):
        path = found.get(rel)
        if path is None:
            raise ModelCorrupted(
                f"model file {rel!r} is listed in the manifest but missing from {str(root)!r}"
            )
        size = path.stat().st_size
        if size != entry.size or sha256_file(path) != entry.sha256:
            raise ModelCorrupted(
                f"model file {rel!r} in {str(root)!r} does not match its manifest (sha256 "
                f"{entry.sha256[:12]}..., {entry.size} bytes): it was changed after the model "
                "was saved; refused"
            )
