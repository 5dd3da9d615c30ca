"""The server's scheduled work: replicas on one store elect one leader through the store lease,
the leader alone runs what is due, another replica takes over when the leader stops or dies, and
a failing job never stops the scheduler."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from loopml.errors import PermissionDenied
from loopml.server.app import create_app
from loopml.server.principal import Principal
from loopml.server.scheduler import LEASE_NAME, ServerScheduler
from loopml.server.settings import ServerSettings
from loopml.store.artifacts import FsspecArtifactStore
from loopml.store.sql import SqlStore

BASE_URL = "http://localhost"
TICK = 0.05


def _until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def replicas(
    store: SqlStore, artifact_store: FsspecArtifactStore
) -> Iterator[Callable[..., ServerScheduler]]:
    """``make(**kwargs)``: a started scheduler on the shared store (stopped at teardown)."""
    started: list[ServerScheduler] = []

    def make(**kwargs: Any) -> ServerScheduler:
        kwargs.setdefault("interval", TICK)
        scheduler = ServerScheduler(store, artifact_store, **kwargs)
        scheduler.start()
        started.append(scheduler)
        return scheduler

    yield make
    for scheduler in started:
        scheduler.stop()


def _monitor(store: SqlStore, name: str = "churn-live", **spec: Any) -> str:
    """A monitor on a deployment that has logged nothing yet (a run finds no window)."""
    project = store.get_or_create_project("churn")
    with contextlib.suppress(Exception):
        store.create_deployment(
            project.project_id,
            "churn-api",
            [{"name": "primary", "model_uri": "models:/churn/1", "role": "primary"}],
            actor="test",
        )
    store.create_monitor(
        project.project_id,
        name,
        {"deployment": "churn-api", "schedule": "1h", **spec},
        actor="test",
    )
    return f"monitor:churn/{name}"


def test_two_app_replicas_elect_one_leader_and_the_other_takes_over(
    make_app: Callable[..., FastAPI], store: SqlStore
) -> None:
    apps = [make_app(scheduler_interval=TICK) for _ in range(2)]
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(TestClient(a, base_url=BASE_URL)) for a in apps]
        schedulers: list[ServerScheduler] = [a.state.scheduler for a in apps]
        _until(lambda: any(s.leading for s in schedulers))
        time.sleep(4 * TICK)  # several lease rounds: the leader keeps it, the other never gets it
        assert [s.leading for s in schedulers].count(True) == 1
        [leader] = [s for s in schedulers if s.leading]
        lease = store.get_lease(LEASE_NAME)
        assert lease is not None and lease.holder == leader.holder
        for client in clients:
            status = client.get("/api/v1/server/scheduler").json()
            assert status["leader"]["holder"] == leader.holder
            assert status["enabled"] is True
        index = schedulers.index(leader)
        clients[index].__exit__(None, None, None)  # shutdown releases the lease
        clients.pop(index)
        assert apps[index].state.scheduler is None
        [other] = [s for s in schedulers if s is not leader]
        _until(lambda: other.leading, timeout=5)
        lease = store.get_lease(LEASE_NAME)
        assert lease is not None and lease.holder == other.holder


def test_a_dead_leaders_lease_is_taken_over_when_it_expires(
    store: SqlStore, replicas: Callable[..., ServerScheduler]
) -> None:
    dead = store.acquire_lease(LEASE_NAME, "gone:1:dead", 0.5)  # a leader that crashed
    assert dead is not None
    follower = replicas()
    time.sleep(4 * TICK)
    assert not follower.leading
    _until(lambda: follower.leading, timeout=5)
    lease = store.get_lease(LEASE_NAME)
    assert lease is not None and lease.holder == follower.holder
    assert lease.acquired_at >= dead.expires_at


def test_the_leader_alone_runs_a_due_monitor_once_per_interval(
    store: SqlStore, replicas: Callable[..., ServerScheduler]
) -> None:
    job = _monitor(store)
    _monitor(store, "churn-paused")
    store.update_monitor(
        store.get_project("churn").project_id, "churn-paused", enabled=False, actor="test"
    )
    schedulers = [replicas(), replicas()]
    _until(lambda: any(job in s.jobs for s in schedulers))
    [leader] = [s for s in schedulers if s.leading]
    passes = leader.passes
    _until(lambda: leader.passes >= passes + 5)  # many passes within the monitor's hour
    assert [s.jobs.get(job) and s.jobs[job].runs for s in schedulers].count(1) == 1
    assert leader.jobs[job].runs == 1 and leader.jobs[job].last_error is None
    assert all("monitor:churn/churn-paused" not in s.jobs for s in schedulers)
    [follower] = [s for s in schedulers if s is not leader]
    assert follower.passes == 0 and not follower.jobs


def test_a_failing_job_is_recorded_and_the_scheduler_goes_on(
    store: SqlStore, replicas: Callable[..., ServerScheduler]
) -> None:
    good = _monitor(store)
    bad = _monitor(store, "churn-broken", window="not a duration")
    scheduler = replicas(schedules=["no_such_module_xyz:flow"])
    pipeline_job = "pipeline:no_such_module_xyz:flow"
    _until(lambda: scheduler.passes >= 3 and pipeline_job in scheduler.jobs)
    assert scheduler.jobs[good].runs == 1
    assert scheduler.jobs[bad].runs == 0
    assert "InvalidArgument" in (scheduler.jobs[bad].last_error or "")
    pipeline = scheduler.jobs["pipeline:no_such_module_xyz:flow"]
    assert pipeline.runs == 0 and pipeline.last_error
    status = scheduler.status()
    assert {e["job"] for e in status["errors"]} >= {bad, "pipeline:no_such_module_xyz:flow"}
    assert status["leading"] is True and status["passes"] >= 3


def test_a_long_loop_pass_does_not_hold_the_monitors_back(
    store: SqlStore, artifact_store: FsspecArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    job = _monitor(store)
    release, entered = threading.Event(), threading.Event()

    def long_training() -> None:  # a loop pass that trains for a long time
        entered.set()
        release.wait(30)

    monkeypatch.setattr(ServerScheduler, "_run_policies", lambda self: long_training())
    scheduler = ServerScheduler(store, artifact_store, policies=["loop.yaml"], interval=TICK)
    scheduler.start()
    try:
        assert entered.wait(10)
        passes = scheduler.passes
        _until(lambda: scheduler.passes >= passes + 3 and job in scheduler.jobs)
        assert scheduler.jobs[job].runs == 1 and not release.is_set()  # the loop still trains
    finally:
        release.set()
        scheduler.stop()


def test_stopping_releases_the_lease(
    store: SqlStore, replicas: Callable[..., ServerScheduler]
) -> None:
    scheduler = replicas()
    _until(lambda: scheduler.leading)
    scheduler.stop()
    assert store.get_lease(LEASE_NAME) is None
    assert not scheduler.leading


def test_status_route_without_the_scheduler(make_app: Callable[..., FastAPI]) -> None:
    app = make_app(scheduler=False)
    with TestClient(app, base_url=BASE_URL) as client:
        answer = client.get("/api/v1/server/scheduler")
        document = client.get("/api/v1/openapi.json").json()
    assert answer.status_code == 200
    assert answer.json() == {"enabled": False}
    operation = document["paths"]["/api/v1/server/scheduler"]["get"]
    assert operation["x-loopml-permission"] == "server-admin"


class _RoleGate:
    """Signs every request in as ``principal``; server-wide actions need a server admin."""

    enabled = True

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.checked: list[tuple[str, list[str]]] = []

    def authenticate(self, request: Any) -> Principal:
        return self.principal

    def check(self, principal: Principal, permission: str, project_ids: Any) -> None:
        self.checked.append((permission, list(project_ids)))
        if not principal.server_admin:
            raise PermissionDenied(f"{principal.name} is not a server admin")

    def readable_projects(self, principal: Principal) -> frozenset[str] | None:
        return None

    def grant_creator(self, principal: Principal, project_id: str) -> None:
        return None


@pytest.mark.parametrize(("admin", "status"), [(False, 403), (True, 200)])
def test_the_status_route_is_for_server_admins(
    store: SqlStore, artifact_store: FsspecArtifactStore, admin: bool, status: int
) -> None:
    gate = _RoleGate(Principal("bob", server_admin=admin))
    settings = ServerSettings(scheduler=False)
    app = create_app(settings, store=store, artifacts=artifact_store, gate=gate)
    with TestClient(app, base_url=BASE_URL) as client:
        answer = client.get("/api/v1/server/scheduler")
    assert answer.status_code == status
    assert gate.checked == [("read", [])]
