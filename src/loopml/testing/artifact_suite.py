"""The conformance suite for :class:`~loopml.store.artifacts.ArtifactStore` implementations.

Subclass :class:`ArtifactStoreSuite` in a test module, give it an ``artifact_store`` fixture that
yields a fresh, empty store, and implement :meth:`ArtifactStoreSuite.corrupt`::

    class TestMyStore(ArtifactStoreSuite):
        @pytest.fixture
        def artifact_store(self, tmp_path):
            return MyStore(tmp_path)

        def corrupt(
            self, artifact_store, sha256
        ): ...  # overwrite the stored blob behind the store's back

Stores that expose an fsspec filesystem as ``fs`` and their root path as ``root`` (as
:class:`~loopml.store.artifacts.FsspecArtifactStore` does) are also checked object by object:
one blob per distinct content, and no temporary object left behind by a failed or concurrent write.
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from loopml.errors import ArtifactCorrupted, ArtifactNotFound, InvalidArgument, StoreError
from loopml.store.artifacts import ArtifactStore

__all__ = ["ArtifactStoreSuite", "FailingStream", "SourceFailed", "TrickleStream"]

MiB = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

BAD_SHAS: list[Any] = [
    "",
    "abc",
    "0" * 63,
    "0" * 65,
    "A" * 64,
    "g" * 64,
    "0" * 64 + "\n",
    " " + "0" * 63,
    "0" * 62 + "/x",
    "../" * 21 + "a",
    "..%2f" * 12 + "0000",
    "0" * 32 + "\x00" + "0" * 31,
    "objects/00/" + "0" * 53,
    None,
    123,
    b"0" * 64,
]


def _content(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - test data, not a secret


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SourceFailed(Exception):
    """What :class:`FailingStream` raises: a source that dies in the middle of an upload."""


class FailingStream(io.RawIOBase):
    """A binary stream of ``fail_after`` bytes that then raises :class:`SourceFailed`."""

    def __init__(self, fail_after: int, seed: int = 0) -> None:
        self._data = _content(fail_after, seed)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._pos >= len(self._data):
            raise SourceFailed(f"the source died after {self._pos} bytes")
        n = len(self._data) - self._pos if size < 0 else size
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


class TrickleStream(io.RawIOBase):
    """A binary stream that returns short reads of random sizes, as sockets and pipes do."""

    def __init__(self, data: bytes, seed: int = 0) -> None:
        self._data = data
        self._pos = 0
        self._random = random.Random(seed)  # noqa: S311 - test data, not a secret

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._random.randint(1, 70_000)
        if size >= 0:
            n = min(n, size)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


def _files_under(store: ArtifactStore, folder: str) -> list[str] | None:
    """The files under ``<root>/<folder>`` if the store exposes ``fs`` and ``root``, else None."""
    fs = getattr(store, "fs", None)
    root = getattr(store, "root", None)
    if fs is None or not isinstance(root, str):
        return None
    fs.invalidate_cache()
    return sorted(str(p) for p in fs.find(f"{root}/{folder}"))


class ArtifactStoreSuite:
    """Tests every :class:`ArtifactStore` must pass; needs an ``artifact_store`` fixture."""

    def corrupt(self, artifact_store: ArtifactStore, sha256: str) -> None:
        """Replace the stored content of blob ``sha256`` with other bytes, behind the store's back.

        Subclasses must implement this; the corruption tests use it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement corrupt(artifact_store, sha256) to run the "
            "corruption tests"
        )

    def assert_one_blob_no_temps(self, store: ArtifactStore, blobs: int = 1) -> None:
        """Check the object layout when the store exposes it (see the module docstring)."""
        found = _files_under(store, "objects")
        if found is not None:
            assert len(found) == blobs, found
        assert not _files_under(store, "tmp")

    # -- round trips ------------------------------------------------------------------------

    def test_is_an_artifact_store(self, artifact_store: ArtifactStore) -> None:
        assert isinstance(artifact_store, ArtifactStore)
        assert isinstance(artifact_store.uri, str) and artifact_store.uri

    def test_put_bytes_round_trip(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        data = b"hello, loopml\n"
        sha, size = artifact_store.put(data)
        assert (sha, size) == (_sha(data), len(data))
        assert artifact_store.exists(sha)
        assert artifact_store.read(sha) == data
        artifact_store.get(sha, tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_bytes() == data
        self.assert_one_blob_no_temps(artifact_store)

    def test_put_bytearray_and_memoryview(self, artifact_store: ArtifactStore) -> None:
        data = _content(3000)
        for source in (bytearray(data), memoryview(data)):
            assert artifact_store.put(source) == (_sha(data), len(data))  # type: ignore[arg-type]
        assert artifact_store.read(_sha(data)) == data

    def test_put_file_path(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        data = _content(100_000)
        src = tmp_path / "model.bin"
        src.write_bytes(data)
        assert artifact_store.put(src) == (_sha(data), len(data))
        assert artifact_store.put(str(src)) == (_sha(data), len(data))
        assert artifact_store.read(_sha(data)) == data
        self.assert_one_blob_no_temps(artifact_store)

    def test_put_streams(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        data = _content(300_000, seed=1)
        assert artifact_store.put(io.BytesIO(data)) == (_sha(data), len(data))
        other = _content(300_000, seed=2)
        trickle = cast("BinaryIO", TrickleStream(other))
        assert artifact_store.put(trickle) == (_sha(other), len(other))
        src = tmp_path / "f.bin"
        src.write_bytes(data)
        with open(src, "rb") as f:
            assert artifact_store.put(f) == (_sha(data), len(data))
        assert artifact_store.read(_sha(other)) == other
        self.assert_one_blob_no_temps(artifact_store, blobs=2)

    def test_empty_content(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        empty = tmp_path / "empty"
        empty.write_bytes(b"")
        for source in (b"", io.BytesIO(b""), empty):
            assert artifact_store.put(source) == (EMPTY_SHA256, 0)
        assert artifact_store.exists(EMPTY_SHA256)
        assert artifact_store.read(EMPTY_SHA256) == b""
        artifact_store.get(EMPTY_SHA256, tmp_path / "out")
        assert (tmp_path / "out").read_bytes() == b""
        self.assert_one_blob_no_temps(artifact_store)

    def test_five_mib_file(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        data = _content(5 * MiB + 17, seed=5)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        sha, size = artifact_store.put(src)
        assert (sha, size) == (_sha(data), len(data))
        artifact_store.get(sha, tmp_path / "copy.bin")
        assert (tmp_path / "copy.bin").read_bytes() == data
        assert artifact_store.read(sha) == data

    def test_get_replaces_dest_and_creates_parents(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        sha, _ = artifact_store.put(b"new")
        dest = tmp_path / "a" / "b" / "out.txt"
        artifact_store.get(sha, dest)
        assert dest.read_bytes() == b"new"
        dest.write_bytes(b"old content, longer than the new one")
        artifact_store.get(sha, str(dest))
        assert dest.read_bytes() == b"new"
        assert sorted(p.name for p in dest.parent.iterdir()) == ["out.txt"]

    # -- deduplication ----------------------------------------------------------------------

    def test_same_content_is_stored_once(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        data = _content(200_000, seed=3)
        src = tmp_path / "x.bin"
        src.write_bytes(data)
        results = {
            artifact_store.put(data),
            artifact_store.put(data),
            artifact_store.put(src),
            artifact_store.put(io.BytesIO(data)),
        }
        assert results == {(_sha(data), len(data))}
        self.assert_one_blob_no_temps(artifact_store)

    def test_put_of_stored_content_writes_nothing(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        # Corrupt the blob, then put the same content again: if put rewrote the blob it would
        # be healthy again, so a corrupted read proves nothing was written.
        data = _content(50_000, seed=4)
        src = tmp_path / "x.bin"
        src.write_bytes(data)
        sha, _ = artifact_store.put(data)
        self.corrupt(artifact_store, sha)
        for source in (data, src, io.BytesIO(data)):
            assert artifact_store.put(source) == (sha, len(data))
            with pytest.raises(ArtifactCorrupted):
                artifact_store.read(sha)
        self.assert_one_blob_no_temps(artifact_store)

    # -- verification and errors ------------------------------------------------------------

    def test_read_detects_corruption(self, artifact_store: ArtifactStore) -> None:
        sha, _ = artifact_store.put(b"precious model weights")
        self.corrupt(artifact_store, sha)
        with pytest.raises(ArtifactCorrupted) as info:
            artifact_store.read(sha)
        assert sha in str(info.value) and artifact_store.uri in str(info.value)
        assert isinstance(info.value, StoreError)

    def test_get_detects_corruption_and_keeps_dest(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        sha, _ = artifact_store.put(_content(3 * MiB, seed=6))
        self.corrupt(artifact_store, sha)
        dest = tmp_path / "model.bin"
        with pytest.raises(ArtifactCorrupted, match=sha):
            artifact_store.get(sha, dest)
        assert not dest.exists()
        dest.write_bytes(b"the previous download")
        with pytest.raises(ArtifactCorrupted):
            artifact_store.get(sha, dest)
        assert dest.read_bytes() == b"the previous download"
        assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]

    @pytest.mark.parametrize("bad", BAD_SHAS, ids=repr)
    def test_invalid_sha_is_refused(
        self, artifact_store: ArtifactStore, tmp_path: Path, bad: Any
    ) -> None:
        with pytest.raises(InvalidArgument):
            artifact_store.exists(bad)
        with pytest.raises(InvalidArgument):
            artifact_store.read(bad)
        with pytest.raises(InvalidArgument):
            artifact_store.get(bad, tmp_path / "out")
        assert list(tmp_path.iterdir()) == []

    def test_missing_blob(self, artifact_store: ArtifactStore, tmp_path: Path) -> None:
        sha = _sha(b"never stored")
        assert not artifact_store.exists(sha)
        with pytest.raises(ArtifactNotFound, match=sha):
            artifact_store.read(sha)
        with pytest.raises(ArtifactNotFound):
            artifact_store.get(sha, tmp_path / "out")
        assert list(tmp_path.iterdir()) == []

    def test_put_refuses_what_is_not_content(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        bad: list[Any] = [123, None, io.StringIO("text"), tmp_path / "missing", tmp_path]
        for source in bad:
            with pytest.raises(InvalidArgument):
                artifact_store.put(source)
        self.assert_one_blob_no_temps(artifact_store, blobs=0)

    # -- reliability ------------------------------------------------------------------------

    def test_failed_upload_leaves_no_blob(self, artifact_store: ArtifactStore) -> None:
        stream = FailingStream(fail_after=2 * MiB + 5)
        with pytest.raises((SourceFailed, StoreError)):
            artifact_store.put(cast("BinaryIO", stream))
        assert not artifact_store.exists(_sha(_content(2 * MiB + 5)))
        self.assert_one_blob_no_temps(artifact_store, blobs=0)
        # The store still works afterwards.
        assert artifact_store.put(b"after") == (_sha(b"after"), 5)

    def test_concurrent_puts_of_same_content(self, artifact_store: ArtifactStore) -> None:
        data = _content(2 * MiB, seed=7)
        barrier = threading.Barrier(8)
        results: list[tuple[str, int]] = []
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                barrier.wait(timeout=30)
                source = data if i % 2 else io.BytesIO(data)
                results.append(artifact_store.put(source))
            except BaseException as exc:  # collected and re-checked in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert results == [(_sha(data), len(data))] * 8
        assert artifact_store.read(_sha(data)) == data
        self.assert_one_blob_no_temps(artifact_store)
