"""The driver side of running trials: in this thread, in threads, in worker processes, on Ray.

Every executor is the same loop, "ask the :class:`~loopml.tuning.driver.Driver` for a trial, run
it, tell the driver" in some number of slots:

* ``local``: the objective runs here (``n_jobs`` threads when > 1, each in a copy of the caller's
  context, so the study's run is the parent of every trial).
* ``processes``: ``n_jobs`` worker processes (``python -m loopml.tuning.worker``), each tied to a
  thread here by a socket pair. Workers are new interpreters, not forks: nothing of this process
  (open connections, threads, locks) is inherited, and scripts need no ``__main__`` guard.
* ``ray``: ``n_jobs`` Ray tasks that connect back to a listener here (authenticated with a random
  key) and then behave like worker processes.

Workers write the objective's own metrics to the store themselves (SQLite's WAL and busy timeout
make concurrent writers safe); the driver writes each trial's params, final value and state.
"""

from __future__ import annotations

import contextvars
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument, LoopError
from loopml.tuning.trial import Outcome, Style, run_trial
from loopml.tuning.worker import dump_error, load_error

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from loopml.tuning.driver import Driver

__all__ = ["Executor", "check_picklable", "run_local", "run_processes", "run_ray"]

log = logging.getLogger("loopml")
_POLL = 0.1  # seconds between checks of the slots while waiting (keeps Ctrl+C responsive)
_GRACE = 10.0  # seconds a worker gets to exit after "stop" before it is killed

Executor = Callable[..., None]


class _LocalChannel:
    """A :class:`~loopml.tuning.trial.Channel` straight to the driver."""

    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    def call(self, number: int, method: str, args: tuple[Any, ...]) -> Any:
        return self._driver.call(number, method, args)


def _local_loop(
    driver: Driver,
    objective: Callable[..., Any],
    style: Style,
    catch: tuple[type[BaseException], ...],
) -> None:
    channel = _LocalChannel(driver)
    while (ticket := driver.ask()) is not None:
        outcome, exc = run_trial(
            objective, style, ticket, channel, driver.client, driver.metric, catch
        )
        driver.tell(ticket.number, outcome, exc if outcome.state == "fail" else None)
        if outcome.interrupted and exc is not None:
            raise exc


def run_local(
    driver: Driver,
    objective: Callable[..., Any],
    style: Style,
    catch: tuple[type[BaseException], ...],
    n_jobs: int,
) -> None:
    """Run trials in this thread, or in ``n_jobs`` threads."""
    if n_jobs == 1:
        _local_loop(driver, objective, style, catch)
        return
    failures: list[BaseException] = []

    def slot() -> None:
        try:
            _local_loop(driver, objective, style, catch)
        except BaseException as exc:
            driver.stop()
            failures.append(exc)

    threads = [
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(slot,),
            name=f"loopml-tune-{i}",
            daemon=True,
        )
        for i in range(n_jobs)
    ]
    for t in threads:
        t.start()
    _join(threads, driver)
    if failures:
        raise failures[0]


def _join(threads: list[threading.Thread], driver: Driver) -> None:
    """Wait for the slots; Ctrl+C stops the driver (running trials finish or are abandoned)."""
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(_POLL)
    except KeyboardInterrupt:
        driver.stop()
        raise


def check_picklable(objective: object, what: str = "objective") -> bytes:
    """The objective, cloudpickled for a worker.

    Raises:
        InvalidArgument: it cannot be pickled, with the reason and what to do.
    """
    import cloudpickle  # type: ignore[import-untyped]

    try:
        return bytes(cloudpickle.dumps(objective))
    except Exception as exc:
        raise InvalidArgument(
            f"the {what} cannot be sent to worker processes: it is not picklable "
            f"({type(exc).__name__}: {exc}). Make everything it uses picklable (define it at "
            "module level or in your script, and create clients, connections, locks and open "
            "files inside it rather than closing over them), or use executor='local'"
        ) from exc


def _serve(conn: Connection, driver: Driver, where: str) -> None:
    """Feed one worker trials until the driver stops, answering its trial calls."""
    kind, payload = conn.recv()
    if kind == "fatal":
        driver.stop()
        last = payload.strip().splitlines()[-1] if payload.strip() else "unknown error"
        raise InvalidArgument(
            f"a tuning worker ({where}) could not load the objective: {last}. The module "
            "that defines it must be importable there (same Python, same sys.path; functions "
            "of your script or notebook are sent by value)"
        )
    while True:
        ticket = driver.ask()
        if ticket is None:
            conn.send(("stop",))
            return
        conn.send(("trial", ticket))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                if driver.stopped:  # we are tearing down (Ctrl+C, another trial's error)
                    text = f"interrupted: {where} was stopped during trial {ticket.number}"
                    driver.tell(ticket.number, Outcome("fail", error=text, interrupted=True))
                    return
                text = f"the tuning worker ({where}) died while running trial {ticket.number}"
                driver.tell(ticket.number, Outcome("fail", error=text), LoopError(text))
                return
            if message[0] == "call":
                _, number, method, args = message
                try:
                    reply: tuple[str, Any] = ("ok", driver.call(number, method, args))
                except Exception as exc:
                    reply = ("error", dump_error(exc))
                conn.send(reply)
                continue
            _, number, outcome = message
            error = None
            if outcome.state == "fail" and not outcome.caught:
                error = load_error((outcome.exception, outcome.error or ""), f"in {where}")
            driver.tell(number, outcome, error)
            break


def _slot(conn: Connection, driver: Driver, where: str, failures: list[BaseException]) -> None:
    try:
        with conn:
            _serve(conn, driver, where)
    except BaseException as exc:
        driver.stop()
        failures.append(exc)


def _hello(config: dict[str, Any]) -> dict[str, Any]:
    return {**config, "sys_path": [p or os.getcwd() for p in sys.path]}


def run_processes(driver: Driver, config: dict[str, Any], n_jobs: int) -> None:
    """Run trials in ``n_jobs`` new worker processes."""
    from multiprocessing.connection import Connection

    procs: list[subprocess.Popen[bytes]] = []
    threads: list[threading.Thread] = []
    failures: list[BaseException] = []
    hello = _hello(config)
    try:
        for i in range(n_jobs):
            ours, theirs = socket.socketpair()
            with theirs:
                proc = subprocess.Popen(  # noqa: S603 - our own module, this interpreter
                    [sys.executable, "-m", "loopml.tuning.worker", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),),
                    start_new_session=True,  # Ctrl+C reaches the driver, which stops workers
                )
            procs.append(proc)
            conn = Connection(ours.detach())
            conn.send(("hello", hello))
            where = f"worker process {proc.pid}"
            thread = threading.Thread(
                target=_slot, args=(conn, driver, where, failures), name=f"loopml-tune-{i}"
            )
            thread.daemon = True
            thread.start()
            threads.append(thread)
        _join(threads, driver)
    except BaseException:
        driver.stop()
        _stop_processes(procs, grace=0.0)
        for t in threads:
            t.join(_GRACE)
        raise
    finally:
        _stop_processes(procs, grace=_GRACE)
    if failures:
        raise failures[0]


def _stop_processes(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_ray(driver: Driver, config: dict[str, Any], n_jobs: int, address: str | None) -> None:
    """Run trials in ``n_jobs`` Ray tasks (one CPU each) that connect back to this process."""
    from multiprocessing.connection import Client as Connect
    from multiprocessing.connection import Listener

    from loopml._lazy import require
    from loopml.tuning.worker import ray_main

    ray = require("ray", "ray", "executor='ray'")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=True)
    key = secrets.token_bytes(32)
    host = ray.util.get_node_ip_address()
    listener = Listener((host, 0), authkey=key)
    failures: list[BaseException] = []
    threads: list[threading.Thread] = []
    hello = _hello(config)
    refs = [
        ray.remote(num_cpus=1, max_retries=0)(ray_main).remote(listener.address, key)
        for _ in range(n_jobs)
    ]

    closing = threading.Event()

    def accept() -> None:
        for i in range(n_jobs):
            try:
                conn = listener.accept()
            except (OSError, EOFError):
                return
            if closing.is_set():
                conn.close()
                return
            conn.send(("hello", hello))
            thread = threading.Thread(
                target=_slot,
                args=(conn, driver, f"Ray task {i}", failures),
                name=f"loopml-tune-ray-{i}",
                daemon=True,
            )
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, name="loopml-tune-accept", daemon=True)
    acceptor.start()
    try:
        pending = list(refs)
        while pending or any(t.is_alive() for t in threads):
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL)
            for ref in done:
                try:
                    ray.get(ref)
                except Exception as exc:  # the task failed before or outside serving
                    driver.stop()
                    failures.append(LoopError(f"a Ray tuning task failed: {exc}"))
            if not pending and len(threads) < n_jobs and acceptor.is_alive():
                break  # every task ended; some never connected
            for t in threads:
                t.join(0 if pending else _POLL)
    except BaseException:
        driver.stop()
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        closing.set()
        if acceptor.is_alive():  # unblock accept() with a connection of our own
            try:
                Connect(listener.address, authkey=key).close()
            except OSError:
                pass
        listener.close()
        if started_here:
            ray.shutdown()
    if failures:
        raise failures[0]
