"""The artifact store: the conformance suite on a local folder, fsspec memory and S3 (moto), plus
crash, interruption and configuration tests."""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

import loopml.store.artifacts as artifacts_module
from loopml.errors import InvalidArgument, MissingExtra, StoreError
from loopml.store import open_artifact_store
from loopml.store.artifacts import ArtifactStore, FsspecArtifactStore, blob_key
from loopml.testing.artifact_suite import ArtifactStoreSuite, FailingStream, SourceFailed

MiB = 1024 * 1024
SRC = Path(artifacts_module.__file__).resolve().parents[2]


def _s3_store(bucket: str, endpoint: str, **options: Any) -> FsspecArtifactStore:
    return FsspecArtifactStore(
        f"s3://{bucket}/artifacts", {"client_kwargs": {"endpoint_url": endpoint}, **options}
    )


def _s3_keys(s3_client: Any, bucket: str) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=bucket)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


# -- the conformance suite on every backend ---------------------------------------------------


class TestLocalFolder(ArtifactStoreSuite):
    @pytest.fixture
    def artifact_store(self, tmp_path_factory: pytest.TempPathFactory) -> FsspecArtifactStore:
        return FsspecArtifactStore(str(tmp_path_factory.mktemp("store") / "artifacts"))

    def corrupt(self, artifact_store: ArtifactStore, sha256: str) -> None:
        assert isinstance(artifact_store, FsspecArtifactStore)
        (Path(artifact_store.root) / blob_key(sha256)).write_bytes(b"tampered")


class TestMemory(ArtifactStoreSuite):
    @pytest.fixture
    def artifact_store(self) -> Iterator[FsspecArtifactStore]:
        store = FsspecArtifactStore(f"memory://loopml-{uuid.uuid4().hex}/artifacts")
        yield store
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)

    def corrupt(self, artifact_store: ArtifactStore, sha256: str) -> None:
        assert isinstance(artifact_store, FsspecArtifactStore)
        artifact_store.fs.pipe_file(f"{artifact_store.root}/{blob_key(sha256)}", b"tampered")


@pytest.mark.s3
class TestS3(ArtifactStoreSuite):
    @pytest.fixture
    def artifact_store(
        self, s3_bucket: str, s3_endpoint: str, s3_client: Any
    ) -> FsspecArtifactStore:
        self.s3_client = s3_client
        return _s3_store(s3_bucket, s3_endpoint)

    def corrupt(self, artifact_store: ArtifactStore, sha256: str) -> None:
        # Straight through boto3, as another tool or a bit flip on the server would.
        assert isinstance(artifact_store, FsspecArtifactStore)
        bucket, prefix = artifact_store.root.split("/", 1)
        self.s3_client.put_object(
            Bucket=bucket, Key=f"{prefix}/{blob_key(sha256)}", Body=b"tampered"
        )
        artifact_store.fs.invalidate_cache()


# -- interrupted and killed writes ------------------------------------------------------------


def test_local_upload_interrupted_mid_file_leaves_nothing(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "store"))
    with pytest.raises(SourceFailed):
        store.put(cast("BinaryIO", FailingStream(fail_after=2 * MiB + 1)))
    assert not (tmp_path / "store" / "objects").exists()
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


@pytest.mark.s3
def test_s3_multipart_upload_interrupted_mid_file_is_aborted(
    s3_bucket: str, s3_endpoint: str, s3_client: Any
) -> None:
    # 5 MiB parts, so two parts are uploaded before the source fails: discard() must abort the
    # multipart upload instead of completing it into a truncated object.
    store = _s3_store(s3_bucket, s3_endpoint, default_block_size=5 * MiB)
    with pytest.raises(SourceFailed):
        store.put(cast("BinaryIO", FailingStream(fail_after=12 * MiB)))
    assert _s3_keys(s3_client, s3_bucket) == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    sha, _ = store.put(b"still works")
    assert _s3_keys(s3_client, s3_bucket) == [f"artifacts/{blob_key(sha)}"]


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from loopml.store.artifacts import FsspecArtifactStore

    class Stalls:
        sent = 0
        def read(self, n):
            if self.sent >= 3 * 1024 * 1024:
                print("stalled", flush=True)
                time.sleep(600)
            self.sent += n
            return b"x" * n

    FsspecArtifactStore(sys.argv[1]).put(Stalls())
    """
)


def test_writer_killed_mid_upload_leaves_no_blob(tmp_path: Path) -> None:
    root = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), *sys.path])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "stalled", proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # The partial write stays in tmp/, never under objects/.
    partial = list((root / "tmp").iterdir())
    assert len(partial) == 1 and partial[0].stat().st_size >= 3 * MiB
    assert not (root / "objects").exists() or list((root / "objects").rglob("*")) == []
    store = FsspecArtifactStore(str(root))
    assert not store.exists(hashlib.sha256(b"x" * 3 * MiB).hexdigest())
    sha, _ = store.put(b"x" * 3 * MiB)
    assert store.read(sha) == b"x" * 3 * MiB


def test_source_changing_during_upload_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"version 1")
    store = FsspecArtifactStore(str(tmp_path / "store"))
    real_exists = FsspecArtifactStore.exists

    def exists_then_change(self: FsspecArtifactStore, sha256: str) -> bool:
        src.write_bytes(b"version 2, written between the hash and the upload")
        return real_exists(self, sha256)

    monkeypatch.setattr(FsspecArtifactStore, "exists", exists_then_change)
    with pytest.raises(StoreError, match="changed while it was being stored"):
        store.put(src)
    assert list((tmp_path / "store").rglob("*/*/*")) == []
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_local_commit_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    FsspecArtifactStore(str(tmp_path)).put(b"durable")
    assert len(synced) >= 2  # the temp file, then the folder that received the rename


@pytest.mark.s3
def test_blob_added_by_another_writer_is_seen_after_a_listing(
    s3_bucket: str, s3_endpoint: str, s3_client: Any
) -> None:
    store = _s3_store(s3_bucket, s3_endpoint)
    sha = hashlib.sha256(b"from elsewhere").hexdigest()
    neighbour = next(
        str(i).encode()
        for i in itertools.count()
        if hashlib.sha256(str(i).encode()).hexdigest()[:2] == sha[:2]
    )
    store.put(neighbour)
    store.fs.ls(f"{store.root}/objects/{sha[:2]}")  # a listing of the blob's own folder
    s3_client.put_object(
        Bucket=s3_bucket, Key=f"artifacts/{blob_key(sha)}", Body=b"from elsewhere"
    )
    assert store.exists(sha)
    assert store.read(sha) == b"from elsewhere"


# -- opening stores ---------------------------------------------------------------------------


def test_local_root_is_created_on_first_write(tmp_path: Path) -> None:
    root = tmp_path / "not" / "yet"
    store = FsspecArtifactStore(f"file://{root}")
    assert store.root == str(root)
    assert not store.exists(hashlib.sha256(b"a").hexdigest())
    assert not root.exists()
    sha, size = store.put(b"a")
    assert (root / blob_key(sha)).read_bytes() == b"a" and size == 1


@pytest.mark.s3
def test_open_artifact_store_reads_the_s3_endpoint_from_the_environment(
    s3_bucket: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", s3_endpoint)
    store = open_artifact_store(f"s3://{s3_bucket}/artifacts")
    assert isinstance(store, FsspecArtifactStore)
    sha, _ = store.put(b"via env")
    assert store.read(sha) == b"via env"


@pytest.mark.s3
def test_missing_bucket_is_a_store_error(s3_endpoint: str) -> None:
    store = _s3_store(f"no-such-bucket-{uuid.uuid4().hex[:8]}", s3_endpoint)
    with pytest.raises(StoreError, match="no-such-bucket"):
        store.put(b"x")


def test_unwritable_local_root_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    store = FsspecArtifactStore(str(tmp_path / "a-file"))
    with pytest.raises(StoreError, match="a-file") as info:
        store.put(b"x")
    assert isinstance(info.value.__cause__, OSError)


def test_missing_s3fs_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingExtra, match=r"pip install 'loopml\[s3\]'"):
        FsspecArtifactStore("s3://bucket/artifacts")


@pytest.mark.parametrize("uri", ["", "   ", "nosuchproto://x/y"])
def test_bad_uri_is_refused(uri: str) -> None:
    with pytest.raises(InvalidArgument):
        FsspecArtifactStore(uri)
