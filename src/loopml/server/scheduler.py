"""The server's scheduled work: monitors, pipeline schedules and the training loop, run by one
replica at a time.

Every ``loopml server`` process (every worker of every replica on one store) runs a
:class:`ServerScheduler` when ``settings.scheduler`` is on. Each one tries, every
``interval`` seconds, to take or renew the store lease :data:`LEASE_NAME` for three intervals
(:meth:`~loopml.store.Store.acquire_lease`, on the database's clock); the one that holds it
leads, and only the leader runs the work that is due:

* every enabled monitor of every project, on its spec's ``schedule``
  (:func:`loopml.monitoring.runner.run_monitor`);
* the pipelines of ``settings.schedules``, on their cron schedules
  (:func:`loopml.pipelines.schedule.run_due`, which reads their last runs from the store, so a
  new leader neither repeats nor skips a tick);
* the loop policies of ``settings.policies`` (:meth:`loopml.loop.runner.LoopRunner.run_once`).

The lease is kept by its own thread, so that a long job does not let it lapse. Each kind of
work has a thread of its own (monitors; pipelines; the loop), never the event loop, so that a
long training run of the loop or a long pipeline does not hold the monitors back; within a
kind, jobs run one after the other. A failing job is logged
and recorded (``GET /api/v1/server/scheduler``) and tried again on its next turn; it never
stops the scheduler. Stopping releases the lease, so that another replica takes over at its
next attempt rather than after the lease expires.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from loopml.entities import Lease, now_ms
from loopml.server.api import principal_of
from loopml.store.rest.operations import API_PREFIX

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.loop.runner import LoopRunner
    from loopml.pipelines.schedule import Scheduled
    from loopml.store.artifacts import ArtifactStore
    from loopml.store.base import Store

__all__ = ["LEASE_NAME", "JobStatus", "ServerScheduler", "build_scheduler_router"]

_log = logging.getLogger("loopml.server.scheduler")

#: The store lease whose holder runs the scheduled work.
LEASE_NAME = "loopml.server.scheduler"
_MAX_ERRORS = 20
_RETRY_SECONDS = 60.0  # a monitor whose spec does not parse is tried again after this


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class JobStatus:
    """What this process knows of one job: how often it ran here, when, and its last error."""

    runs: int = 0
    last_run_at: int | None = None
    last_error: str | None = None
    last_error_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "last_run_at": self.last_run_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


class ServerScheduler:
    """Leader election on a store lease, and the scheduled work of the leader.

    Args:
        store: the metadata store (shared by every replica).
        artifacts: the artifact store (monitors and pipelines read and write artifacts).
        schedules: pipelines to run on their cron schedules (``file.py:attr`` or
            ``module:attr``).
        policies: loop policy files (YAML).
        interval: seconds between lease attempts and between passes over the work.
        ttl: the lease's time to live in seconds (default: three intervals).
        holder: this process's name on the lease (default: host, pid and a random suffix).
        executor: the executor pipelines run on (``local``, ``processes`` or ``ray``).
    """

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore | None = None,
        *,
        schedules: Sequence[str] = (),
        policies: Sequence[str] = (),
        interval: float = 10.0,
        ttl: float | None = None,
        holder: str | None = None,
        executor: str = "local",
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.schedules = tuple(schedules)
        self.policies = tuple(policies)
        self.interval = float(interval)
        self.ttl = float(ttl) if ttl is not None else 3 * self.interval
        self.holder = holder or _holder()
        self.executor = executor
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lease: Lease | None = None
        self._lease_deadline = 0.0  # monotonic time until which this process may act on it
        self._started = dt.datetime.now(dt.UTC)
        self._client: Client | None = None
        self._scheduled: dict[str, Scheduled] = {}
        self._runner: LoopRunner | None = None
        self._monitor_due: dict[tuple[str, str], float] = {}  # (project id, name) -> monotonic
        self.jobs: dict[str, JobStatus] = {}
        self.errors: collections.deque[dict[str, Any]] = collections.deque(maxlen=_MAX_ERRORS)
        self.passes = 0
        self.last_lease_check: int | None = None
        self.last_pass: int | None = None

    # --- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the lease thread and a work thread per kind of work (daemons: they never keep
        a process alive)."""
        if self._threads:
            return
        self._stop.clear()
        self._started = dt.datetime.now(dt.UTC)
        loops: list[tuple[Callable[[], None], str]] = [
            (self._lease_loop, "lease"),
            (functools.partial(self._work_loop, self._monitor_pass), "monitors"),
        ]
        if self.schedules:
            loops.append((functools.partial(self._work_loop, self._run_schedules), "pipelines"))
        if self.policies:
            loops.append((functools.partial(self._work_loop, self._run_policies), "loop"))
        for target, name in loops:
            thread = threading.Thread(target=target, name=f"loopml-scheduler-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads (after the jobs at hand) and release the lease if held."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        with self._lock:
            held, self._lease = self._lease, None
            self._lease_deadline = 0.0
        if held is not None:
            try:
                self.store.release_lease(LEASE_NAME, self.holder)
            except Exception:
                _log.exception("could not release the scheduler lease; it expires by itself")

    @property
    def leading(self) -> bool:
        """Whether this process holds the lease (and it has not lapsed by our clock)."""
        with self._lock:
            return self._lease is not None and time.monotonic() < self._lease_deadline

    # --- the lease -----------------------------------------------------------------------------

    def renew(self) -> bool:
        """One attempt to take or renew the lease; returns whether this process leads."""
        asked = time.monotonic()
        try:
            lease = self.store.acquire_lease(LEASE_NAME, self.holder, self.ttl)
        except Exception as exc:
            lease = None
            self._failed("lease", exc)
        with self._lock:
            was = self._lease is not None
            self._lease = lease
            # Counted from before the request: the store's expiry is at least this late.
            self._lease_deadline = asked + self.ttl if lease is not None else 0.0
            self.last_lease_check = now_ms()
        if lease is not None and not was:
            _log.info("scheduler: %s leads", self.holder)
        elif lease is None and was:
            _log.warning("scheduler: %s lost the lease", self.holder)
        return lease is not None

    def _lease_loop(self) -> None:
        while not self._stop.is_set():
            self.renew()
            self._stop.wait(self.interval)

    # --- the work ------------------------------------------------------------------------------

    def _work_loop(self, work: Callable[[], None]) -> None:
        # The first pass comes one interval after the start: the lease is settled by then.
        while not self._stop.wait(self.interval):
            if self.leading:
                try:
                    work()
                except Exception as exc:  # the jobs record their own failures; this is a bug
                    self._failed("scheduler", exc)

    def run_pending(self) -> None:
        """One pass over all the work that is due (monitors, pipelines, loop policies), one
        kind after the other; the caller checks it leads. Failures are recorded, never
        raised."""
        self._run_schedules()
        self._run_policies()
        self._monitor_pass()

    def _monitor_pass(self) -> None:
        """The monitors that are due; ``passes`` counts these passes."""
        self._run_monitors()
        with self._lock:
            self.passes += 1
            self.last_pass = now_ms()

    def _client_of(self) -> Client:
        with self._lock:  # the work threads share one client
            if self._client is None:
                from loopml.client import Client

                self._client = Client(store=self.store, artifacts=self.artifacts)
            return self._client

    def _job(self, name: str, work: Callable[[], object]) -> bool:
        """Run one job if this process still leads; record its outcome."""
        if self._stop.is_set() or not self.leading:
            return False
        try:
            work()
        except Exception as exc:
            self._failed(name, exc)
            return False
        with self._lock:
            status = self.jobs.setdefault(name, JobStatus())
            status.runs += 1
            status.last_run_at = now_ms()
        return True

    def _failed(self, name: str, exc: BaseException) -> None:
        _log.error("scheduler: %s failed: %s", name, exc, exc_info=exc)
        at = now_ms()
        message = f"{type(exc).__name__}: {exc}"[:2000]
        with self._lock:
            status = self.jobs.setdefault(name, JobStatus())
            status.last_error, status.last_error_at = message, at
            self.errors.append({"job": name, "at": at, "error": message})

    def _run_monitors(self) -> None:
        from loopml.monitoring.runner import run_monitor
        from loopml.monitoring.spec import MonitorSpec

        try:
            projects = self.store.list_projects()
            found = [(p, m) for p in projects for m in self.store.list_monitors(p.project_id)]
        except Exception as exc:
            self._failed("monitors", exc)
            return
        for project, monitor in found:
            key = (project.project_id, monitor.name)
            if not monitor.enabled or time.monotonic() < self._monitor_due.get(key, 0.0):
                continue
            name = f"monitor:{project.name}/{monitor.name}"
            try:
                every = MonitorSpec.parse(monitor.spec).schedule
            except Exception as exc:
                self._failed(name, exc)
                self._monitor_due[key] = time.monotonic() + _RETRY_SECONDS
                continue
            client = self._client_of()
            self._monitor_due[key] = time.monotonic() + every
            self._job(
                name, functools.partial(run_monitor, client, monitor.name, project=project.name)
            )

    def _run_schedules(self) -> None:
        for ref in self.schedules:
            name = f"pipeline:{ref}"
            scheduled = self._scheduled.get(ref)
            if scheduled is None:
                try:
                    scheduled = self._scheduled[ref] = _load_schedule(ref)
                except Exception as exc:
                    self._failed(name, exc)
                    continue
            self._job(name, functools.partial(self._run_schedule, scheduled))

    def _run_schedule(self, scheduled: Scheduled) -> None:
        from loopml.pipelines.schedule import run_due

        client = self._client_of()
        for result in run_due(
            client, [scheduled], executor=self.executor, started=self._started, quiet=True
        ):
            if result.status != "finished":
                raise RuntimeError(f"pipeline {result.name} {result.status} (run {result.run_id})")

    def _run_policies(self) -> None:
        if not self.policies:
            return
        if self._runner is None:
            from pathlib import Path

            from loopml.loop.runner import LoopRunner

            try:
                self._runner = LoopRunner(
                    [Path(p) for p in self.policies], client=self._client_of(), holder=self.holder
                )
            except Exception as exc:
                self._failed("loop", exc)
                return
        self._job("loop", self._runner.run_once)

    # --- status --------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The leader (from the store) and this process's view: its lease, passes, jobs, errors."""
        try:
            lease = self.store.get_lease(LEASE_NAME)
            leader: dict[str, Any] | None = (
                None
                if lease is None
                else {
                    "holder": lease.holder,
                    "acquired_at": lease.acquired_at,
                    "expires_at": lease.expires_at,
                }
            )
        except Exception as exc:
            leader = {"error": f"{type(exc).__name__}: {exc}"}
        with self._lock:
            return {
                "enabled": True,
                "lease": LEASE_NAME,
                "leader": leader,
                "holder": self.holder,
                "leading": self._lease is not None and time.monotonic() < self._lease_deadline,
                "interval_seconds": self.interval,
                "ttl_seconds": self.ttl,
                "last_lease_check": self.last_lease_check,
                "last_pass": self.last_pass,
                "passes": self.passes,
                "schedules": list(self.schedules),
                "policies": list(self.policies),
                "jobs": {k: v.to_dict() for k, v in sorted(self.jobs.items())},
                "errors": list(self.errors),
            }


def _load_schedule(ref: str) -> Scheduled:
    from loopml.errors import InvalidArgument
    from loopml.pipelines import load_pipeline
    from loopml.pipelines.schedule import Scheduled, check_cron

    pipe = load_pipeline(ref)
    if pipe.schedule is None:
        raise InvalidArgument(
            f"pipeline {ref!r} has no schedule: give it one with @loopml.pipeline(schedule='...')"
        )
    return Scheduled(pipe, check_cron(pipe.schedule), dict(pipe.params))


def build_scheduler_router() -> APIRouter:
    """``GET /api/v1/server/scheduler``: who leads and what this replica's scheduler did.

    Server admins only: the answer names hosts and processes and carries the jobs' errors.
    """
    router = APIRouter()

    @router.get(
        API_PREFIX + "/server/scheduler",
        tags=["server"],
        openapi_extra={"x-loopml-permission": "server-admin"},
    )
    def scheduler_status(request: Request) -> dict[str, Any]:
        """The scheduler's leader and this replica's passes, jobs and last errors."""
        principal = principal_of(request)
        request.app.state.gate.check(principal, "read", [])  # no project: server admins only
        scheduler: ServerScheduler | None = getattr(request.app.state, "scheduler", None)
        if scheduler is None:
            return {"enabled": False}
        return scheduler.status()

    return router
