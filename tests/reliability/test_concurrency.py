"""Acceptance: many processes and threads write one store at once; nothing is lost, nothing fails.

Research F1 (``database is locked`` under concurrent writers): the SQLite store runs in WAL mode
with a busy timeout and ``BEGIN IMMEDIATE`` writes, so concurrent writers wait for the lock
instead of failing. These tests write through the public Client from separate processes and
compare every stored point with what was logged.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

import loopml
from loopml.config import Settings
from loopml.entities import RunStatus

WORKERS = Path(__file__).parent / "workers"
TIMEOUT = 120.0

PROCS, THREADS, POINTS = 2, 4, 2_000
BATCHES = len(range(0, POINTS, 250))  # log_batch/log_param calls per thread


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(script: str, *args: str, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    err = tmp_path / f"{script}-{uuid.uuid4().hex[:8]}.stderr"
    with open(err, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, str(WORKERS / script), *args],
            stdout=subprocess.PIPE,
            stderr=f,
            env=_env(),
            cwd=tmp_path,
        )
    return proc, err


def _kill(procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for proc, _ in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None and not proc.stdout.closed:
            proc.stdout.close()


def _finish(procs: list[tuple[subprocess.Popen[bytes], Path]]) -> list[str]:
    """Wait for every process; fail with its stderr if one fails; return their stdouts."""
    outs = []
    try:
        for proc, err in procs:
            out, _ = proc.communicate(timeout=TIMEOUT)
            stderr = err.read_text(errors="replace")
            assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{out!r}\n{stderr}"
            assert "database is locked" not in stderr
            assert stderr == "", stderr  # no warning either (a failed background flush logs one)
            outs.append(out.decode())
    finally:
        _kill(procs)
    return outs


def _wait_for_files(paths: list[Path], procs: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not all(p.exists() for p in paths):
        for proc, err in procs:
            if proc.poll() is not None:
                pytest.fail(f"worker exited early ({proc.returncode}):\n{err.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"workers did not create {[p.name for p in paths if not p.exists()]}")
        time.sleep(0.01)


def _settings() -> Settings:
    return Settings(flush_interval=3600, heartbeat_interval=3600, capture_packages=False)


def _check_concurrent_writes(uri: str, tmp_path: Path) -> None:
    project = f"conc-{uuid.uuid4().hex[:8]}"
    with loopml.Client(uri, artifact_uri=str(tmp_path / "art"), settings=_settings()) as client:
        shared = client.create_run(
            project, name="shared", heartbeat=False, capture_environment=False
        ).run_id
    go = tmp_path / "go"
    procs = [
        _start(
            "writer.py",
            uri,
            project,
            str(p),
            str(THREADS),
            str(POINTS),
            shared,
            str(go),
            tmp_path=tmp_path,
        )
        for p in range(PROCS)
    ]
    try:
        _wait_for_files([tmp_path / f"go.ready-{p}" for p in range(PROCS)], procs)
        go.touch()  # every process has its store open and waits for this: they write at once
    except BaseException:
        _kill(procs)
        raise
    outs = _finish(procs)
    results = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    assert [r["errors"] for r in results] == [[]] * PROCS
    # the writing phases overlapped: the processes really did contend for the database
    assert max(r["started"] for r in results) < min(r["ended"] for r in results)

    with loopml.Client(uri, artifact_uri=str(tmp_path / "art"), settings=_settings()) as client:
        expected_all: Counter[tuple[int, float]] = Counter()
        for p, result in enumerate(results):
            assert sorted(result["runs"]) == [str(t) for t in range(THREADS)]
            for t_s, run_id in result["runs"].items():
                t = int(t_s)
                run = client.get_run(run_id)
                assert run.status is RunStatus.FINISHED
                assert run.name == f"p{p}t{t}"
                history = client.get_metric_history(run_id, "m")
                assert list(history.steps) == list(range(POINTS))
                values = [float(p * 1_000_000 + t * 10_000 + i) for i in range(POINTS)]
                assert list(history.values) == values
                assert run.metrics["m"] == values[-1]
                batch = client.get_metric_history(run_id, "batch")
                assert list(batch.steps) == list(range(BATCHES))
                expected_params = {"proc": str(p), "thread": str(t)}
                expected_params.update({f"b{j}": str(j) for j in range(BATCHES)})
                expected_params.update({f"param{j}": str(j) for j in range(BATCHES)})
                assert dict(run.params) == expected_params
                assert run.tags["last_batch"] == str(BATCHES - 1)
                expected_all.update((i, v) for i, v in enumerate(values))

        shared_run = client.get_run(shared)
        all_points = client.get_metric_history(shared, "all")
        assert len(all_points) == PROCS * THREADS * POINTS
        assert Counter(
            zip(all_points.steps.tolist(), all_points.values.tolist(), strict=True)
        ) == (expected_all)
        for p in range(PROCS):
            for t in range(THREADS):
                me = f"p{p}t{t}"
                own = client.get_metric_history(shared, me)
                assert list(own.steps) == list(range(POINTS))
                assert list(own.values) == [float(i) for i in range(POINTS)]
                assert shared_run.tags[me] == str(BATCHES - 1)
                for j in range(BATCHES):
                    assert shared_run.params[f"{me}-{j}"] == str(j)
        assert shared_run.params["common"] == "same"
        assert len(shared_run.params) == PROCS * THREADS * BATCHES + 1
        assert len(list(client.iter_runs(project))) == PROCS * THREADS + 1


@pytest.mark.slow
def test_two_processes_with_four_threads_each_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    uri = f"sqlite:///{db}"
    _check_concurrent_writes(uri, tmp_path)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_with_four_threads_each_lose_nothing_on_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    _check_concurrent_writes(pg_url, tmp_path)


@pytest.mark.slow
def test_eight_processes_open_a_new_database_at_once(tmp_path: Path) -> None:
    n_procs, rounds = 8, 5  # a race needs more than one chance to show
    names = [f"w{i}" for i in range(n_procs)]
    procs = [
        _start("first_open.py", name, str(tmp_path), str(rounds), tmp_path=tmp_path)
        for name in names
    ]
    try:
        _wait_for_files([tmp_path / f"ready-{n}" for n in names], procs)
        for r in range(rounds):
            db = tmp_path / f"fresh-{r}.db"
            assert not db.exists()  # nobody has opened it yet
            (tmp_path / f"go-{r}").touch()  # every process is waiting for this
            done = [tmp_path / f"done-{r}-{n}" for n in names]
            _wait_for_files(done, procs)
            run_ids = {p.read_text() for p in done}
            assert len(run_ids) == n_procs

            conn = sqlite3.connect(db)
            try:
                assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
                assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            finally:
                conn.close()
            uri = f"sqlite:///{db}"
            with loopml.Client(uri, artifact_uri=str(tmp_path / "art"), settings=_settings()) as c:
                assert len(c.list_projects()) == 1  # one project, though eight created it
                runs = list(c.iter_runs("first-open"))
                assert {r.run_id for r in runs} == run_ids
                for run in runs:
                    assert run.status is RunStatus.FINISHED
                    assert list(c.get_metric_history(run.run_id, "m").steps) == list(range(10))
    except BaseException:
        _kill(procs)
        raise
    _finish(procs)


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_opening_a_new_store_waits_for_another_writer(tmp_path: Path, journal: str) -> None:
    db = tmp_path / "new.db"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    other.execute(f"PRAGMA journal_mode = {journal}")
    other.execute("BEGIN IMMEDIATE")  # another process is writing the new file
    errors: list[BaseException] = []

    def release() -> None:
        try:
            time.sleep(0.5)
            other.execute("ROLLBACK")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=release)
    thread.start()
    settings = Settings(
        flush_interval=3600,
        heartbeat_interval=3600,
        capture_packages=False,
        sqlite_busy_timeout=30,
    )
    try:
        with loopml.Client(
            f"sqlite:///{db}", artifact_uri=str(tmp_path / "a"), settings=settings
        ) as client:
            started = time.monotonic()
            run = client.create_run("p", capture_environment=False)  # opens the store
            assert time.monotonic() - started >= 0.4  # it waited for the other writer
            assert client.get_run(run.run_id).status is RunStatus.RUNNING
    finally:
        thread.join()
        other.close()
    assert errors == []
