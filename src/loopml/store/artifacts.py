"""The content-addressed artifact store: blobs named by their sha256, on any fsspec filesystem.

Layout under the store's root (a local folder, ``s3://bucket/prefix``, ``memory://x``, ...)::

    objects/ab/cdef...   one blob per distinct content, named by its sha256 (2 + 62 hex chars)
    tmp/<uuid4>          writes in progress, moved to ``objects/`` once complete and hashed

A blob appears under ``objects/`` only when its content is complete and its hash is known (a local
``os.replace`` after ``fsync``, or an fsspec ``mv`` after the upload closed), so a reader never
sees a partial blob. A write that fails removes its temporary object; a process killed mid-write
may leave one in ``tmp/``, which is never read and is safe to delete. Reads are verified: content
that does not hash to its address raises :class:`~loopml.errors.ArtifactCorrupted`.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeAlias, runtime_checkable

from loopml._lazy import require
from loopml.config import get_settings
from loopml.errors import (
    ArtifactCorrupted,
    ArtifactNotFound,
    InvalidArgument,
    MissingExtra,
    StoreError,
)
from loopml.store.paths import confined_join

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = ["CHUNK_SIZE", "ArtifactStore", "FsspecArtifactStore", "Source", "blob_key"]

CHUNK_SIZE = 1024 * 1024
"""Bytes read, hashed and written at a time: memory use stays flat whatever the blob's size."""

Source: TypeAlias = str | os.PathLike[str] | bytes | BinaryIO
"""What :meth:`ArtifactStore.put` takes: a local file path, the bytes, or a binary stream."""
_SHA256 = re.compile(r"[0-9a-f]{64}")


@runtime_checkable
class ArtifactStore(Protocol):
    """A content-addressed blob store: content in, its sha256 out; the sha256 in, content out.

    Contract:
        * ``put`` is idempotent: the same content always gets the same address, is stored once,
          and a second ``put`` of it writes nothing.
        * A blob is visible (``exists``, ``get``, ``read``) only once it is complete; a failed or
          killed write leaves no blob behind.
        * ``get`` and ``read`` verify the content against its address and never hand out (or leave
          at ``dest``) bytes that do not match.
        * Implementations are safe to share between threads, and several processes may write to
          one store at once (concurrent puts of the same content are fine).

    Errors: a malformed sha256 raises :class:`~loopml.errors.InvalidArgument` (so it can never
    become a path); a missing blob :class:`~loopml.errors.ArtifactNotFound`; content that does not
    match its address :class:`~loopml.errors.ArtifactCorrupted`; a backend failure
    :class:`~loopml.errors.StoreError`.

    Attributes:
        uri: where the store lives, as given (a folder or an fsspec URL); used in messages.
    """

    uri: str

    def put(self, source: Source) -> tuple[str, int]:
        """Store a local file, bytes or a binary stream (read to its end); return
        ``(sha256_hex, size_in_bytes)``.

        Raises:
            InvalidArgument: the path is not a readable file, or the stream is not binary.
            StoreError: the backend failed; nothing was stored.
        """
        ...

    def get(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        """Download a blob to the local file ``dest``, replacing it only if the content verifies.

        Raises:
            InvalidArgument: ``sha256`` is not 64 lowercase hex characters, or dest is a folder.
            ArtifactNotFound: no blob has this address.
            ArtifactCorrupted: the stored content does not hash to ``sha256``; dest is untouched.
            StoreError: the backend failed.
        """
        ...

    def read(self, sha256: str) -> bytes:
        """Return a blob's content, verified against its address.

        Raises:
            InvalidArgument: ``sha256`` is not 64 lowercase hex characters.
            ArtifactNotFound: no blob has this address.
            ArtifactCorrupted: the stored content does not hash to ``sha256``.
            StoreError: the backend failed.
        """
        ...

    def exists(self, sha256: str) -> bool:
        """Whether a complete blob with this address is stored.

        Raises:
            InvalidArgument: ``sha256`` is not 64 lowercase hex characters.
            StoreError: the backend failed.
        """
        ...


def blob_key(sha256: object) -> str:
    """The key of a blob relative to the store root: ``objects/<sha[:2]>/<sha[2:]>``.

    Raises:
        InvalidArgument: ``sha256`` is not 64 lowercase hex characters.
    """
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise InvalidArgument(
            f"{sha256!r:.80} is not a sha256 artifact address: expected 64 lowercase hex "
            "characters, as returned by put()"
        )
    return f"objects/{sha256[:2]}/{sha256[2:]}"


class FsspecArtifactStore:
    """An :class:`ArtifactStore` on any fsspec filesystem; local folders get ``fsync`` and
    ``os.replace``.

    Args:
        uri: a folder (``./artifacts``, ``file:///srv/a``) or an fsspec URL (``s3://bucket/x``,
            ``memory://x``). A local folder is created on the first write.
        storage_options: passed to the fsspec filesystem (credentials, ``client_kwargs``...).
            For ``s3://``, ``LOOPML_S3_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL``) becomes
            ``client_kwargs={"endpoint_url": ...}`` unless given here.

    Attributes:
        uri: the URI as given.
        fs: the fsspec filesystem.
        root: the store's root inside ``fs`` (no protocol, no trailing slash); blobs are at
            ``f"{root}/{blob_key(sha)}"``.

    Raises:
        InvalidArgument: the URI is empty or its protocol is unknown to fsspec.
        MissingExtra: the package for the protocol is not installed (``loopml[s3]`` for S3).
    """

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidArgument(f"artifact store URI must be a non-empty string, got {uri!r}")
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.uri = uri.strip()
        options = dict(storage_options or {})
        protocol = self.uri.split("://", 1)[0].lower() if "://" in self.uri else "file"
        errors: list[type[BaseException]] = [OSError]
        if protocol != "file":
            # Other processes add blobs: a cached listing would hide them from exists() and get().
            options.setdefault("use_listings_cache", False)
        if protocol in ("s3", "s3a"):
            require("s3fs", "s3", "Storing artifacts on S3")
            endpoint = get_settings().s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                client_kwargs = dict(options.get("client_kwargs") or {})
                client_kwargs.setdefault("endpoint_url", endpoint)
                options["client_kwargs"] = client_kwargs
            botocore = importlib.import_module("botocore.exceptions")
            errors += [botocore.BotoCoreError, botocore.ClientError]
        location = os.path.expanduser(self.uri) if "://" not in self.uri else self.uri
        try:
            fs, root = fsspec.core.url_to_fs(location, **options)
        except ImportError as exc:
            raise MissingExtra(
                f"artifact store {self.uri!r} needs a package that is not installed: {exc}"
            ) from exc
        except ValueError as exc:
            raise InvalidArgument(
                f"artifact store URI {self.uri!r} is not usable: {exc}; use a folder or an "
                "fsspec URL such as 's3://bucket/prefix'"
            ) from exc
        self.fs: AbstractFileSystem = fs
        self.root: str = str(root).rstrip("/") or str(root)
        self._local = isinstance(fs, LocalFileSystem)
        self._errors = tuple(errors)

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.uri!r})"

    # -- the ArtifactStore protocol -------------------------------------------------------------

    def put(self, source: Source) -> tuple[str, int]:
        """Store content and return ``(sha256_hex, size_in_bytes)``; see :class:`ArtifactStore`.

        Bytes and files are hashed first and not written at all when the blob exists; a stream is
        written to a temporary object while it is hashed, then committed (or dropped as a
        duplicate).
        """
        if isinstance(source, bytes | bytearray | memoryview):
            data = memoryview(source).cast("B")
            sha = hashlib.sha256(data).hexdigest()
            if not self.exists(sha):
                with self._io("storing bytes"):
                    self._store(_chunks_of_bytes(data), expected=sha)
            return sha, data.nbytes
        if isinstance(source, str | os.PathLike):
            return self._put_file(Path(os.fspath(source)))
        stream: object = source  # typed loosely: callers pass text streams by mistake
        if isinstance(stream, io.TextIOBase):
            raise InvalidArgument("put() needs a binary stream; open the file with mode 'rb'")
        if callable(getattr(source, "read", None)):
            with self._io("storing a stream"):
                return self._store(_chunks_of_stream(source))
        raise InvalidArgument(
            f"put() takes a file path, bytes or a binary stream, not {type(source).__name__}"
        )

    def get(self, sha256: str, dest: str | os.PathLike[str]) -> None:
        """Download a verified blob to ``dest``; see :class:`ArtifactStore`."""
        key = blob_key(sha256)
        dest_path = Path(os.fspath(dest))
        if dest_path.is_dir():
            raise InvalidArgument(f"cannot download blob {sha256} to {str(dest_path)!r}: a folder")
        part = dest_path.with_name(f".{dest_path.name}.{uuid.uuid4().hex}.part")
        with self._io(f"downloading blob {sha256} to {str(dest_path)!r}"):
            dest_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(part, "xb") as out:
                    self._check(sha256, self._stream(sha256, key, out.write))
                    out.flush()
                    # A crash after the rename must not leave an empty "verified" file.
                    os.fsync(out.fileno())
                os.replace(part, dest_path)
            except BaseException:
                with suppress(OSError):
                    part.unlink(missing_ok=True)
                raise

    def read(self, sha256: str) -> bytes:
        """Return a verified blob's content; see :class:`ArtifactStore`."""
        key = blob_key(sha256)
        buffer = io.BytesIO()
        with self._io(f"reading blob {sha256}"):
            self._check(sha256, self._stream(sha256, key, buffer.write))
        return buffer.getvalue()

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored; see :class:`ArtifactStore`."""
        key = blob_key(sha256)
        with self._io(f"checking for blob {sha256}"):
            if self._local:
                return self._local_path(key).is_file()
            return bool(self.fs.isfile(self._remote_path(key)))

    # -- what a server streams -------------------------------------------------------------------

    def open_blob(self, sha256: str) -> BinaryIO:
        """A binary file object on a blob's content, unverified (the reader checks the hash, as
        the REST artifact store does); for streaming a blob through ``loopml server``.

        Raises:
            InvalidArgument: a malformed sha256. ArtifactNotFound: no such blob.
        """
        key = blob_key(sha256)
        with self._io(f"opening blob {sha256}"):
            try:
                if self._local:
                    return open(self._local_path(key), "rb")
                f: BinaryIO = self.fs.open(self._remote_path(key), "rb")
                return f
            except FileNotFoundError as exc:
                raise ArtifactNotFound(
                    f"blob {sha256} does not exist in artifact store {self.uri!r}"
                ) from exc

    def blob_size(self, sha256: str) -> int:
        """A blob's size in bytes.

        Raises:
            InvalidArgument: a malformed sha256. ArtifactNotFound: no such blob.
        """
        key = blob_key(sha256)
        with self._io(f"checking blob {sha256}"):
            try:
                if self._local:
                    return self._local_path(key).stat().st_size
                return int(self.fs.size(self._remote_path(key)))
            except FileNotFoundError as exc:
                raise ArtifactNotFound(
                    f"blob {sha256} does not exist in artifact store {self.uri!r}"
                ) from exc

    def staging(self, name: str) -> str:
        """The fsspec path of ``uploads/<name>`` in this store, where a server keeps the parts of
        uploads in progress (shared by every replica). ``name`` is built by the caller from
        checked hex ids only."""
        return f"{self.root}/uploads/{name}"

    # -- writing --------------------------------------------------------------------------------

    def _put_file(self, path: Path) -> tuple[str, int]:
        if not path.is_file():
            raise InvalidArgument(f"cannot store {str(path)!r}: it is not a file (or is missing)")
        with self._io(f"storing {str(path)!r}"):
            digest = hashlib.sha256()
            size = 0
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_SIZE):
                    digest.update(chunk)
                    size += len(chunk)
            sha = digest.hexdigest()
            if self.exists(sha):
                return sha, size
            with open(path, "rb") as f:
                return self._store(_chunks_of_stream(f), expected=sha)

    def _store(self, chunks: Iterable[bytes], expected: str | None = None) -> tuple[str, int]:
        """Write ``chunks`` to a temporary object while hashing them, then commit it as a blob."""
        tmp = f"tmp/{uuid.uuid4().hex}"
        write = self._write_local if self._local else self._write_remote
        sha, size = write(tmp, chunks)
        try:
            if expected is not None and sha != expected:
                raise StoreError(
                    f"artifact store {self.uri!r}: the source changed while it was being stored "
                    f"(hashed {expected}, then read {sha}); store it again once it is stable"
                )
            self._commit(tmp, blob_key(sha))
        except BaseException:
            self._remove_quietly(tmp)
            raise
        return sha, size

    def _write_local(self, tmp: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        path = self._local_path(tmp)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "xb") as f:
                written = _copy(chunks, f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            with suppress(OSError):
                path.unlink(missing_ok=True)
            raise
        return written

    def _write_remote(self, tmp: str, chunks: Iterable[bytes]) -> tuple[str, int]:
        f = self.fs.open(self._remote_path(tmp), "wb")
        try:
            written = _copy(chunks, f)
        except BaseException:
            with suppress(Exception):
                _abandon(f)
            self._remove_quietly(tmp)
            raise
        try:
            f.close()
        except BaseException:
            self._remove_quietly(tmp)
            raise
        return written

    def _commit(self, tmp: str, key: str) -> None:
        """Move a complete temporary object to its blob key, or drop it if the blob exists."""
        if self._local:
            src, dst = self._local_path(tmp), self._local_path(key)
            if dst.is_file():
                src.unlink()
                return
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            _fsync_dir(dst.parent)
            return
        if self.fs.isfile(self._remote_path(key)):
            self.fs.rm(self._remote_path(tmp))
            return
        self.fs.mv(self._remote_path(tmp), self._remote_path(key))

    def _remove_quietly(self, tmp: str) -> None:
        # Best effort: this runs while another error propagates, which must not be masked.
        with suppress(Exception):
            if self._local:
                self._local_path(tmp).unlink(missing_ok=True)
            elif self.fs.exists(self._remote_path(tmp)):
                self.fs.rm(self._remote_path(tmp))

    # -- reading --------------------------------------------------------------------------------

    def _stream(self, sha256: str, key: str, sink: Callable[[bytes], object]) -> str:
        """Feed the blob to ``sink`` chunk by chunk; return the sha256 of what was read."""
        try:
            f = (
                open(self._local_path(key), "rb")
                if self._local
                else self.fs.open(self._remote_path(key), "rb")
            )
        except FileNotFoundError as exc:
            raise ArtifactNotFound(
                f"blob {sha256} does not exist in artifact store {self.uri!r}; was it logged to "
                "another store (check LOOPML_ARTIFACT_URI) or deleted?"
            ) from exc
        digest = hashlib.sha256()
        with f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
                sink(chunk)
        return digest.hexdigest()

    def _check(self, sha256: str, actual: str) -> None:
        if actual != sha256:
            raise ArtifactCorrupted(
                f"blob {sha256} in artifact store {self.uri!r} is corrupted: its content hashes "
                f"to {actual}. It was changed or damaged after it was stored; delete "
                f"{blob_key(sha256)!r} from the store and log the artifact again"
            )

    # -- helpers --------------------------------------------------------------------------------

    def _local_path(self, key: str) -> Path:
        return confined_join(self.root, key)

    def _remote_path(self, key: str) -> str:
        # Keys are built from a validated sha256 or a uuid4, never from caller text.
        return f"{self.root}/{key}"

    @contextmanager
    def _io(self, what: str) -> Iterator[None]:
        """Turn a backend failure into a :class:`StoreError` naming the store and the action."""
        try:
            yield
        except self._errors as exc:
            raise StoreError(
                f"artifact store {self.uri!r}: {what} failed: {type(exc).__name__}: {exc}; "
                "check that the store is reachable and writable"
            ) from exc


def _copy(chunks: Iterable[bytes], out: Any) -> tuple[str, int]:
    """Write ``chunks`` to ``out``; return their sha256 and total size."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _chunks_of_bytes(data: memoryview) -> Iterator[bytes]:
    for start in range(0, data.nbytes, CHUNK_SIZE):
        yield bytes(data[start : start + CHUNK_SIZE])


def _chunks_of_stream(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not isinstance(chunk, bytes | bytearray | memoryview):
            # None means a non-blocking stream had no data yet: ending here would store a prefix.
            raise InvalidArgument(
                f"put() needs a blocking binary stream; read() returned {type(chunk).__name__}"
            )
        if not chunk:
            return
        yield bytes(chunk)


def _abandon(f: Any) -> None:
    """Drop an fsspec file open for writing without committing what was written to it."""
    # discard(), not close(): closing would complete a partial multipart upload (s3fs).
    discard = getattr(f, "discard", None)
    if callable(discard):
        discard()
        try:
            f.closed = True  # else __del__ calls close() on the discarded buffer
            return
        except AttributeError:  # io-based files: closed is read-only, close() is harmless
            pass
    f.close()


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new entry (POSIX only)."""
    if os.name != "posix":
        return
    # Some filesystems refuse to fsync a folder; the file itself is already synced.
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
