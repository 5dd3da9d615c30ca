"""Acceptance: several processes register versions of one model at once, on one SQLite file and
on PostgreSQL.

Whatever the interleaving, the versions must be numbered 1..N with no gap and no duplicate, each
version must be the one its process registered, every version must have its audit event, and no
process may see "database is locked". One round goes through the store with the model
registered up front; the other through ``Client.create_model_version`` with no model yet, so the
processes also race to register the model itself.
"""

from __future__ import annotations

import multiprocessing
import traceback
import uuid
from pathlib import Path
from typing import Any

import pytest

from loopml.store import open_store

PROCS, EACH = 4, 10
TIMEOUT = 120.0
DIGEST = "d" * 64


def _worker(
    uri: str, project: str, proc: int, via_client: bool, tmp: str, barrier: Any, out: Any
) -> None:
    """Register EACH versions of the model ``shared``; put ``(proc, [(version, tag)])`` or
    ``(proc, traceback)`` on ``out``."""
    try:
        if via_client:
            import loopml

            client = loopml.Client(uri, artifact_uri=tmp)

            def register(i: int) -> Any:
                return client.create_model_version(
                    "shared",
                    f"runs:/p{proc}/{i}",
                    flavor="sklearn",
                    manifest_digest=DIGEST,
                    description=f"p{proc}-{i}",
                    project=project,
                )

            client.project_id(project)  # open the store before the start signal
        else:
            store = open_store(uri)
            pid = store.get_project(project).project_id

            def register(i: int) -> Any:
                return store.create_model_version(
                    pid,
                    "shared",
                    source=f"runs:/p{proc}/{i}",
                    flavor="sklearn",
                    manifest_digest=DIGEST,
                    description=f"p{proc}-{i}",
                    actor=f"p{proc}",
                )

        barrier.wait(timeout=TIMEOUT)
        done = [(v.version, v.description) for v in (register(i) for i in range(EACH))]
        out.put((proc, done))
    except BaseException:
        out.put((proc, traceback.format_exc()))


def _check(uri: str, tmp_path: Path, *, via_client: bool) -> None:
    project = f"reg-{uuid.uuid4().hex[:8]}"
    with open_store(uri) as store:
        pid = store.get_or_create_project(project).project_id  # and the schema, once
        if not via_client:
            store.create_registered_model(pid, "shared", actor="setup")
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(PROCS), ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker, args=(uri, project, p, via_client, str(tmp_path), barrier, out)
        )
        for p in range(PROCS)
    ]
    for proc in procs:
        proc.start()
    try:
        results = dict(out.get(timeout=TIMEOUT * 2) for _ in procs)
        for proc in procs:
            proc.join(timeout=TIMEOUT)
            assert proc.exitcode == 0
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join()
    errors = {p: r for p, r in results.items() if isinstance(r, str)}
    assert not errors, "\n".join(errors.values())
    assert not any("database is locked" in str(r) for r in results.values())

    n = PROCS * EACH
    rows = [row for done in results.values() for row in done]
    assert sorted(version for version, _ in rows) == list(range(1, n + 1))  # no gap, no twin
    registered = {tag: version for version, tag in rows}
    with open_store(uri) as store:
        listed = store.list_model_versions(pid, "shared")
        assert [v.version for v in listed] == list(range(1, n + 1))
        assert {v.description: v.version for v in listed} == registered
        assert store.get_registered_model(pid, "shared").latest_version == n
        events = store.search_audit_events(pid, action="model_version.create", max_results=1000)
        assert sorted(e.object_name for e in events) == sorted(
            f"shared/{i}" for i in range(1, n + 1)
        )
        assert len(store.search_audit_events(pid, action="model.create")) == 1
        if not via_client:
            assert {e.actor for e in events} == {f"p{i}" for i in range(PROCS)}


@pytest.mark.slow
@pytest.mark.parametrize("via_client", [False, True], ids=["store", "client"])
def test_processes_register_versions_of_one_model_on_sqlite(
    tmp_path: Path, via_client: bool
) -> None:
    _check(f"sqlite:///{tmp_path}/shared.db", tmp_path, via_client=via_client)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("via_client", [False, True], ids=["store", "client"])
def test_processes_register_versions_of_one_model_on_postgresql(
    tmp_path: Path, pg_url: str, via_client: bool
) -> None:
    _check(pg_url, tmp_path, via_client=via_client)
