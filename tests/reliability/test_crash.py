"""Acceptance: a writer killed with SIGKILL loses nothing it flushed and leaves no damage behind.

Research F5/F8: ``flush()`` returns only once the points are committed, so a kill after it
returned cannot lose them; the SQLite file opens cleanly afterwards (WAL recovery) and takes new
writes. An artifact upload cut short leaves neither an index entry nor a blob with wrong content.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import loopml
from loopml.config import Settings
from loopml.entities import RunStatus

WORKERS = Path(__file__).parent / "workers"
TIMEOUT = 60.0


def _settings() -> Settings:
    return Settings(flush_interval=3600, heartbeat_interval=3600, capture_packages=False)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Worker:
    def __init__(self, tmp_path: Path, script: str, *args: str) -> None:
        self.stderr_path = tmp_path / f"{script}-{time.monotonic_ns()}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKERS / script), *args],
                stdout=subprocess.PIPE,
                stderr=err,
                env=_env(),
                cwd=tmp_path,
            )
        self.out = b""

    def line_with(self, marker: str) -> list[str]:
        """The words after ``marker`` on the first complete stdout line that holds it."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        token = marker.encode()
        deadline = time.monotonic() + TIMEOUT
        while token not in self.out or b"\n" not in self.out.split(token, 1)[1]:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(remaining, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                self.kill()
                pytest.fail(f"worker did not print {marker!r}:\n{self.stderr_path.read_text()}")
            self.out += chunk
        return self.out.split(token, 1)[1].split(b"\n", 1)[0].decode().split()

    def sigkill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=TIMEOUT) == -signal.SIGKILL
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _integrity(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_right_after_flush_loses_no_flushed_point(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    uri = f"sqlite:///{db}"
    # where the kill lands after FLUSHED: at once, or while later flushes are in flight
    delays = [0.0, 0.002, 0.01, 0.03, 0.1]
    flushed: dict[str, int] = {}
    beyond: list[int] = []  # points of each attempt that made it after its flush
    for attempt, delay in enumerate(delays):
        n = 500 + 1_500 * attempt
        worker = Worker(tmp_path, "flush_then_log.py", uri, f"attempt-{attempt}", str(n))
        try:
            run_id, count = worker.line_with("FLUSHED")
            if delay:
                time.sleep(delay)
            worker.sigkill()
        finally:
            worker.kill()
        assert int(count) == n
        flushed[run_id] = n

        _integrity(db)  # before loopml touches the file: the WAL is replayed by any reader
        with loopml.Client(uri, artifact_uri=str(tmp_path / "art"), settings=_settings()) as c:
            for rid, n_flushed in flushed.items():  # this attempt's and every earlier one's
                history = c.get_metric_history(rid, "m")
                steps = history.steps.tolist()
                assert steps[:n_flushed] == list(range(n_flushed)), f"attempt {attempt}"
                # whatever else made it is whole: consecutive steps, no duplicate, value = step
                assert steps == list(range(len(steps)))
                assert history.values.tolist() == [float(s) for s in steps]
                run = c.get_run(rid)
                assert run.metrics["m"] == float(len(steps) - 1)
                if rid == run_id:
                    assert run.status is RunStatus.RUNNING  # nobody could end it
                    beyond.append(len(steps) - n_flushed)
            # the store takes writes again, to the dead run and to a new one
            c.log_metric(run_id, "after", 1.0)
            c.set_tag(run_id, "recovered", "yes")
            c.end_run(run_id, "killed")
            fresh = c.create_run("crash", name=f"after-{attempt}", capture_environment=False)
            c.log_metric(fresh.run_id, "m", 1.0)
            c.end_run(fresh.run_id)
            assert c.get_run(run_id).status is RunStatus.KILLED
            assert c.get_run(run_id).tags["recovered"] == "yes"
            assert c.get_run(fresh.run_id).metrics == {"m": 1.0}
        _integrity(db)
    # the later kills landed while the worker was still writing, so the test saw that too
    assert max(beyond) > 0, beyond


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _assert_blobs_verify(objects: Path) -> list[Path]:
    """Every blob under ``objects/`` hashes to its own name; returns the blobs."""
    blobs = sorted(p for p in objects.rglob("*") if p.is_file()) if objects.exists() else []
    for blob in blobs:
        name = blob.parent.name + blob.name
        assert len(name) == 64, blob
        assert _hash(blob) == name, f"{blob} does not hash to its name"
    return blobs


@pytest.mark.slow
def test_an_artifact_upload_killed_mid_file_leaves_nothing_visible(tmp_path: Path) -> None:
    size = 200 * 1024 * 1024
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:  # sparse, with some data so its hash is not that of zeros
        f.truncate(size)
        for offset in range(0, size, 16 * 1024 * 1024):
            f.seek(offset)
            f.write(os.urandom(4096))
    expected = _hash(big)
    art = tmp_path / "art"
    uri = f"sqlite:///{tmp_path}/t.db"

    worker = Worker(tmp_path, "big_artifact.py", uri, str(art), str(big))
    try:
        (run_id,) = worker.line_with("RUN")
        deadline = time.monotonic() + TIMEOUT
        partial: list[Path] = []
        while not partial:  # kill once the blob is being written, mid-file
            if worker.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"upload ended before the kill:\n{worker.stderr_path.read_text()}")
            partial = (
                [p for p in (art / "tmp").glob("*") if p.stat().st_size > 0]
                if (art / "tmp").exists()
                else []
            )
            time.sleep(0.001)
        worker.sigkill()
    finally:
        worker.kill()
    assert b"DONE" not in worker.out
    written = max(p.stat().st_size for p in partial) if all(p.exists() for p in partial) else 0
    assert written < size  # the kill did land mid-file

    with loopml.Client(uri, artifact_uri=str(art), settings=_settings()) as client:
        assert client.list_artifacts(run_id) == []
        assert client.list_artifacts(run_id, "big") == []
        assert _assert_blobs_verify(art / "objects") == []
        # the same file logged again is stored whole, and reads back verified
        info = client.log_artifact(run_id, big, artifact_path="big")
        assert info.path == "big/big.bin" and info.sha256 == expected and info.size == size
        blobs = _assert_blobs_verify(art / "objects")
        assert [b.parent.name + b.name for b in blobs] == [expected]
        got = client.download_artifacts(run_id, "big/big.bin", dst_path=tmp_path / "dl")
        assert got.stat().st_size == size
        assert _hash(got) == expected
