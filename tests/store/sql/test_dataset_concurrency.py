"""Acceptance: four processes log versions of one dataset at once, on SQLite and PostgreSQL.

Every process logs the same shared contents (in its own order) and contents of its own. Whatever
the interleaving, each content must end up as exactly one version, created by exactly one
process, and the version numbers must be 1..N with no gap and no duplicate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from loopml.store import open_store

PROCS, SHARED, OWN = 4, 12, 6
TIMEOUT = 120.0

WORKER = r"""
import hashlib, json, os, random, sys, time
from loopml.store import open_store

uri, project, proc, shared, own, go = sys.argv[1:7]
proc, shared, own = int(proc), int(shared), int(own)
store = open_store(uri)
pid = store.get_or_create_project(project).project_id
contents = [f"shared-{i}" for i in range(shared)] + [f"p{proc}-{i}" for i in range(own)]
random.Random(proc).shuffle(contents)
open(f"{go}.ready-{proc}", "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
out = []
for text in contents:
    digest = hashlib.sha256(text.encode()).hexdigest()
    v, created = store.create_dataset_version(
        pid, "shared", digest=digest, blob=digest, size_bytes=1, num_rows=1, num_columns=1,
        metadata={"text": text, "proc": proc},
    )
    out.append([text, v.version, created, v.id])
store.close()
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _check(uri: str, tmp_path: Path) -> None:
    project = f"ds-{uuid.uuid4().hex[:8]}"
    with open_store(uri) as store:
        pid = store.get_or_create_project(project).project_id  # and the schema, once
    go = tmp_path / f"go-{project}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, uri, project, str(p), str(SHARED), str(OWN), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
            cwd=tmp_path,
        )
        for p in range(PROCS)
    ]
    try:
        deadline = time.monotonic() + TIMEOUT
        while not all(Path(f"{go}.ready-{p}").exists() for p in range(PROCS)):
            for proc in procs:
                if proc.poll() is not None:
                    pytest.fail(f"worker exited early: {proc.communicate()[1].decode()}")
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.01)
        go.touch()  # every process has its store open: they write at once
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, err.decode()
            assert b"database is locked" not in err
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    n = SHARED + PROCS * OWN
    rows = [row for result in results for row in result]
    version_of: dict[str, int] = {}
    id_of: dict[str, str] = {}
    for text, version, _, vid in rows:
        assert version_of.setdefault(text, version) == version, f"{text} got two numbers"
        assert id_of.setdefault(text, vid) == vid
    assert sorted(version_of.values()) == list(range(1, n + 1))  # no gap, no duplicate
    created = Counter(text for text, _, was_created, _ in rows if was_created)
    assert set(created) == set(version_of) and set(created.values()) == {1}

    with open_store(uri) as store:
        listed = store.list_dataset_versions(pid, "shared")
        assert [v.version for v in listed] == list(range(n, 0, -1))
        assert {v.metadata["text"]: v.version for v in listed} == version_of
        assert len({v.digest for v in listed}) == n
        dataset = store.get_dataset(pid, "shared")
        assert (dataset.latest_version, dataset.num_versions) == (n, n)


@pytest.mark.slow
def test_four_processes_version_one_dataset_on_sqlite(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path}/shared.db", tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_four_processes_version_one_dataset_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    _check(pg_url, tmp_path)
