"""Model archives: a verified model folder as one ``.tar.gz``, and back, safely.

:func:`export_model` writes only the files a verified manifest lists. :func:`import_model`
treats an archive as hostile: before anything is written it refuses absolute paths, ``..``,
backslashes and control characters in names, symlinks, hard links, devices and FIFOs, repeated
names, and archives over a member count or a size (so a gzip bomb stops at the limit); it then
extracts with ``tarfile``'s ``data`` filter as a second line, and verifies the extracted folder
against its manifest.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument, UnsafePath
from loopml.models.manifest import MANIFEST_FILE, read_manifest, verify_folder
from loopml.store.paths import normalize_artifact_path

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["MAX_ARCHIVE_BYTES", "MAX_ARCHIVE_MEMBERS", "export_model", "import_model"]

MAX_ARCHIVE_BYTES = 8 * 1024**3
"""The default limit on the total size of an archive's files (8 GiB)."""
MAX_ARCHIVE_MEMBERS = 10_000
"""The default limit on the number of entries in an archive."""


def export_model(
    uri: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    client: Client | None = None,
) -> Path:
    """Write a model (verified first) to a ``.tar.gz`` archive.

    Args:
        uri: anything :func:`~loopml.models.load_model` takes.
        path: the archive to create (it must not exist).
        client: the client to download with (default: the fluent API's).

    Returns:
        The archive's path.

    Raises:
        InvalidArgument: ``path`` exists.
        ModelCorrupted, UnsafePath: the model does not verify (see ``load_model``).
    """
    from loopml.models.loading import resolve_model

    dest = Path(path)
    if dest.exists():
        raise InvalidArgument(f"cannot export to {str(dest)!r}: it exists")
    folder, expected, temporary = resolve_model(uri, client=client)
    try:
        manifest, _ = read_manifest(folder, expected_digest=expected)
        verify_folder(folder, manifest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for rel in [MANIFEST_FILE, *sorted(manifest.files)]:
                    _add(tar, folder / rel, rel)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return dest


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = path.stat().st_size
    info.mode = 0o644
    info.mtime = 0  # the same model gives the same archive
    with open(path, "rb") as fh:
        tar.addfile(info, fh)


def import_model(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str] | None = None,
    *,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    max_members: int = MAX_ARCHIVE_MEMBERS,
) -> Path:
    """Extract a model archive into a new folder and verify it.

    Args:
        archive: a ``.tar.gz`` written by :func:`export_model` (or any tar of a model folder).
        dest: the folder to create (it must not exist, or be empty); a new private temporary
            folder when None.
        max_bytes: refuse archives whose files add up to more than this.
        max_members: refuse archives with more entries than this.

    Returns:
        The model folder (load it with ``load_model``).

    Raises:
        UnsafePath: a member is absolute, has ``..``, is a link, device or FIFO, or repeats a
            name; nothing is written.
        InvalidArgument: the archive is unreadable or over a limit, or ``dest`` is not empty.
        ModelCorrupted: the extracted folder does not match its manifest (it is removed).
    """
    src = Path(archive)
    if not src.is_file():
        raise InvalidArgument(f"{str(src)!r} is not a file")
    target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="loopml-model-"))
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgument(f"cannot import into {str(target)!r}: it exists and is not empty")
    try:
        with tarfile.open(src, mode="r:*") as tar:
            members = _checked_members(tar, src, max_bytes=max_bytes, max_members=max_members)
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
            tar.extractall(target, members=members, filter="data")
        folder = _model_root(target)
        manifest, _ = read_manifest(folder)
        verify_folder(folder, manifest)
    except tarfile.TarError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise InvalidArgument(f"{str(src)!r} is not a readable tar archive: {exc}") from exc
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return folder


def _model_root(target: Path) -> Path:
    """The extracted folder, or its one subfolder when the archive wrapped the model in one."""
    entries = list(target.iterdir())
    if (target / MANIFEST_FILE).exists() or len(entries) != 1 or not entries[0].is_dir():
        return target
    return entries[0]


def _checked_members(
    tar: tarfile.TarFile, src: Path, *, max_bytes: int, max_members: int
) -> list[tarfile.TarInfo]:
    """Every member, checked; raises on the first unsafe one before anything is extracted."""
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    total = 0
    for member in tar:
        if len(members) >= max_members:
            raise InvalidArgument(f"{str(src)!r} has more than {max_members} entries; refused")
        try:
            name = normalize_artifact_path(member.name)
        except UnsafePath as exc:
            raise UnsafePath(f"archive {str(src)!r} member {member.name!r:.200}: {exc}") from exc
        if not (member.isreg() or member.isdir()):
            kind = (
                "a symlink"
                if member.issym()
                else "a hard link"
                if member.islnk()
                else "a device"
                if member.isdev()
                else "a special file"
            )
            raise UnsafePath(
                f"archive {str(src)!r} member {member.name!r:.200} is {kind}; a model archive "
                "holds only files and folders"
            )
        if name in seen:
            raise UnsafePath(f"archive {str(src)!r} repeats the member {name!r}")
        seen.add(name)
        total += member.size
        if total > max_bytes:
            raise InvalidArgument(
                f"{str(src)!r} holds more than {max_bytes} bytes of files; refused (raise "
                "max_bytes if it is a real model)"
            )
        member.name = name
        members.append(member)
    return members
