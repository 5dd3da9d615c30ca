"""The artifact store over HTTP: blobs through ``loopml server``, large files in resumable parts.

:class:`HttpArtifactStore` implements :class:`~loopml.store.artifacts.ArtifactStore`. A blob up to
one part (8 MiB by default) is one ``PUT /api/v1/blobs/{sha256}``; a larger one is an upload:
parts at increasing offsets, then a commit that the server verifies against the sha256. When a
part fails on the way, the store asks the server how far it got and goes on from there. A
download streams to a temporary file, resumes with ``Range`` after a broken connection, and is
verified before it is renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from loopml.errors import ArtifactCorrupted, ArtifactNotFound, InvalidArgument, StoreError
from loopml.store.artifacts import Source, blob_key
from loopml.store.rest.operations import API_PREFIX
from loopml.store.rest.transport import Transport

__all__ = ["HttpArtifactStore"]

PART_SIZE = 8 * 1024 * 1024
_ATTEMPTS = 5
_CHUNK = 1 << 20


class HttpArtifactStore:
    """Blobs stored by a ``loopml server``. Thread-safe.

    Args:
        url: the server's URL, or a :class:`Transport` to share (the REST store's).
        token: an API token (``LOOPML_TRACKING_TOKEN`` by default).
        part_size: the size of the parts of a large upload.
    """

    def __init__(
        self, url: str | Transport, *, token: str | None = None, part_size: int = PART_SIZE
    ) -> None:
        if isinstance(url, Transport):
            self._transport = url
        else:
            if token is None:
                from loopml.config import get_settings

                token = get_settings().tracking_token
            self._transport = Transport(url, token=token)
        if part_size < 1:
            raise InvalidArgument(f"part_size must be at least 1 byte, got {part_size}")
        self.part_size = part_size
        self.uri = self._transport.base_url

    def __repr__(self) -> str:
        return f"HttpArtifactStore({self.uri!r})"

    # -- the ArtifactStore protocol -------------------------------------------------------------

    def put(self, source: Source) -> tuple[str, int]:
        """Store content and return ``(sha256_hex, size_in_bytes)``."""
        if isinstance(source, bytes | bytearray | memoryview):
            data = bytes(source)
            sha = hashlib.sha256(data).hexdigest()
            if not self.exists(sha):
                if len(data) <= self.part_size:
                    self._transport.request("PUT", f"{API_PREFIX}/blobs/{sha}", content=data)
                else:
                    self._upload(sha, len(data), lambda offset, n: data[offset : offset + n])
            return sha, len(data)
        if isinstance(source, str | os.PathLike):
            return self._put_file(Path(os.fspath(source)))
        if callable(getattr(source, "read", None)):
            return self._put_stream(source)
        raise InvalidArgument(
            f"put() takes a file path, bytes or a binary stream, not {type(source).__name__}"
        )

    def get(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        """Download a verified blob to ``dest``."""
        blob_key(sha256)
        dest_path = Path(os.fspath(dest))
        if dest_path.is_dir():
            raise InvalidArgument(f"cannot download blob {sha256} to {str(dest_path)!r}: a folder")
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        part = dest_path.with_name(f".{dest_path.name}.{uuid.uuid4().hex}.part")
        try:
            with open(part, "w+b") as out:
                self._download(sha256, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, dest_path)
        finally:
            with suppress(OSError):
                part.unlink(missing_ok=True)

    def read(self, sha256: str) -> bytes:
        """A verified blob's content."""
        blob_key(sha256)
        with tempfile.TemporaryFile() as out:
            self._download(sha256, out)
            out.seek(0)
            return out.read()

    def exists(self, sha256: str) -> bool:
        """Whether the server has the blob."""
        blob_key(sha256)
        try:
            self._transport.request("HEAD", f"{API_PREFIX}/blobs/{sha256}")
        except ArtifactNotFound:
            return False
        except StoreError as exc:
            if "404" in str(exc):  # a HEAD answer has no body to carry the error code
                return False
            raise
        return True

    # -- uploads -----------------------------------------------------------------------------

    def _put_file(self, path: Path) -> tuple[str, int]:
        if not path.is_file():
            raise InvalidArgument(f"cannot store {str(path)!r}: it is not a file (or is missing)")
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        if self.exists(sha):
            return sha, size
        with open(path, "rb") as f:

            def part(offset: int, n: int) -> bytes:
                f.seek(offset)
                return f.read(n)

            if size <= self.part_size:
                self._transport.request("PUT", f"{API_PREFIX}/blobs/{sha}", content=part(0, size))
            else:
                self._upload(sha, size, part)
        return sha, size

    def _put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """A stream is spooled to a temporary file (hashed on the way), then sent as a file."""
        with tempfile.NamedTemporaryFile(prefix="loopml-upload-", delete=False) as spool:
            try:
                shutil.copyfileobj(stream, spool, _CHUNK)
            except TypeError as exc:
                raise InvalidArgument(
                    "put() needs a binary stream; open the file with 'rb'"
                ) from exc
        try:
            return self._put_file(Path(spool.name))
        finally:
            with suppress(OSError):
                os.unlink(spool.name)

    def _upload(self, sha: str, size: int, part: object) -> None:
        read = part  # (offset, n) -> bytes
        started = self._transport.request("POST", f"{API_PREFIX}/uploads").json()
        upload_id = str(started["upload_id"])
        offset = 0
        failures = 0
        while offset < size:
            data = read(offset, min(self.part_size, size - offset))  # type: ignore[operator]
            try:
                answer = self._transport.request(
                    "PUT",
                    f"{API_PREFIX}/uploads/{upload_id}",
                    params={"offset": str(offset)},
                    content=data,
                )
                offset = int(answer.json()["offset"])
                failures = 0
            except StoreError:
                failures += 1
                if failures >= _ATTEMPTS:
                    raise
                # Resume where the server got to (the part may have landed before the failure).
                status = self._transport.request("GET", f"{API_PREFIX}/uploads/{upload_id}")
                offset = int(status.json()["offset"])
        self._transport.request(
            "POST", f"{API_PREFIX}/uploads/{upload_id}/commit", params={"sha256": sha}
        )

    # -- downloads ---------------------------------------------------------------------------

    def _download(self, sha256: str, out: BinaryIO) -> None:
        digest = hashlib.sha256()
        received = 0
        failures = 0
        while True:
            headers = {"Range": f"bytes={received}-"} if received else {}
            try:
                with self._transport.stream(
                    "GET", f"{API_PREFIX}/blobs/{sha256}", headers=headers
                ) as response:
                    for chunk in _chunks(response.iter_bytes(_CHUNK)):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                break
            except StoreError:
                failures += 1
                if failures >= _ATTEMPTS:
                    raise
        actual = digest.hexdigest()
        if actual != sha256:
            raise ArtifactCorrupted(
                f"blob {sha256} from {self.uri} hashes to {actual}: it was damaged on the way "
                "or in the server's store; fetch it again, and if it persists log it again"
            )


def _chunks(it: Iterator[bytes]) -> Iterator[bytes]:
    yield from it
