"""Where step attempts run: in this process, in local child processes, or on a Ray cluster.

An executor starts attempts and reports the ones that are over; the driver (``runner``) decides
what runs when. Each enforces the step's timeout its own way: a child process is killed, a Ray
task cancelled; in this process the driver stops waiting for the attempt's thread (Python cannot
kill a thread) and fails the step.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from loopml.errors import InvalidArgument, MissingExtra
from loopml.pipelines.execute import Attempt, StepTask, execute, execute_remote

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["EXECUTORS", "Executor", "make_executor"]

ExecutorName = Literal["local", "processes", "ray"]
EXECUTORS: tuple[str, ...] = ("local", "processes", "ray")


@dataclass(slots=True)
class _Handle:
    task: StepTask
    timeout: float | None
    deadline: float | None
    started: float = field(default_factory=time.perf_counter)
    result: Attempt | None = None
    thread: threading.Thread | None = None
    process: Any = None
    conn: Any = None
    ref: Any = None


def _timed_out(h: _Handle) -> Attempt:
    return Attempt(
        h.task.node,
        False,
        error=f"the step timed out after {h.timeout:g} s",
        seconds=time.perf_counter() - h.started,
        timed_out=True,
    )


class Executor:
    """Starts step attempts; :meth:`wait` returns the ones that are over."""

    name: str = "local"
    max_workers: int = 1

    def __init__(self, client: Client, max_workers: int | None = None) -> None:
        self.client = client
        if max_workers is not None and max_workers < 1:
            raise InvalidArgument(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers or self.max_workers

    def start(self, task: StepTask, fn: Callable[..., Any], timeout: float | None) -> _Handle:
        deadline = None if timeout is None else time.perf_counter() + timeout
        h = _Handle(task, timeout, deadline)
        self._start(h, fn)
        return h

    def _start(self, h: _Handle, fn: Callable[..., Any]) -> None:
        if h.deadline is None:  # no timeout: run here, now (the main thread, as users expect)
            h.result = execute(h.task, self.client, fn)
            return

        def attempt() -> None:
            h.result = execute(h.task, self.client, fn)

        h.thread = threading.Thread(target=attempt, name=f"loopml-step-{h.task.node}", daemon=True)
        h.thread.start()

    def _poll(self, h: _Handle) -> Attempt | None:
        return h.result

    def _block(self, handles: list[_Handle], seconds: float) -> None:
        for h in handles:
            if h.thread is not None:
                h.thread.join(seconds / max(len(handles), 1))
                return
        time.sleep(min(seconds, 0.01))

    def _kill(self, h: _Handle) -> None:
        """Stop an attempt that ran out of time (here: let its thread finish on its own)."""

    def wait(self, handles: list[_Handle], seconds: float) -> list[tuple[_Handle, Attempt]]:
        """The attempts among ``handles`` that are over, waiting up to ``seconds`` for one."""
        done = self._collect(handles)
        if done or not handles:
            return done
        self._block(handles, seconds)
        return self._collect(handles)

    def _collect(self, handles: list[_Handle]) -> list[tuple[_Handle, Attempt]]:
        out = []
        now = time.perf_counter()
        for h in handles:
            attempt = self._poll(h)
            if attempt is None and h.deadline is not None and now >= h.deadline:
                self._kill(h)
                attempt = _timed_out(h)
            if attempt is not None:
                out.append((h, attempt))
        return out

    def shutdown(self) -> None:
        """Release the executor's resources."""


def _child(conn: Any, task: StepTask) -> None:
    try:
        attempt = execute_remote(task)
    except BaseException as exc:
        attempt = Attempt(task.node, False, error=f"the worker process failed: {exc!r}")
    conn.send(attempt)
    conn.close()


_PRELOAD = ["loopml.pipelines.execute", "loopml.tracking", "pandas", "pyarrow.parquet"]


def _context() -> Any:
    """Child processes forked from a fork server that imported loopml, pandas and pyarrow once:
    a fresh process per attempt (nothing inherited from the driver's threads or state by
    accident) that starts in milliseconds, not in the seconds that spawning and importing take.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - macOS
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


class ProcessExecutor(Executor):
    """Each attempt in a fresh child process, up to ``max_workers`` at once (default: the CPU
    count); a timeout kills the process."""

    name = "processes"
    max_workers = max(os.cpu_count() or 1, 1)

    def _start(self, h: _Handle, fn: Callable[..., Any]) -> None:
        ctx = _context()
        parent, child = ctx.Pipe(duplex=False)
        h.process = ctx.Process(
            target=_child, args=(child, h.task), name=f"loopml-step-{h.task.node}", daemon=True
        )
        h.process.start()
        child.close()
        h.conn = parent

    def _poll(self, h: _Handle) -> Attempt | None:
        if h.result is not None:
            return h.result
        if h.conn.poll():
            try:
                h.result = h.conn.recv()
            except EOFError:
                h.result = None
            h.process.join(5)
            if h.result is None:
                h.result = self._died(h)
            return h.result
        if not h.process.is_alive():
            h.process.join()
            if h.conn.poll():
                return self._poll(h)
            h.result = self._died(h)
            return h.result
        return None

    def _died(self, h: _Handle) -> Attempt:
        code = h.process.exitcode
        return Attempt(
            h.task.node,
            False,
            error=f"the step's process died (exit code {code}) before reporting a result; "
            "out of memory, or a crash in native code",
            seconds=time.perf_counter() - h.started,
        )

    def _block(self, handles: list[_Handle], seconds: float) -> None:
        from multiprocessing.connection import wait

        conns = [h.conn for h in handles if h.result is None]
        sentinels = [h.process.sentinel for h in handles if h.result is None]
        if conns:
            wait([*conns, *sentinels], timeout=seconds)

    def _kill(self, h: _Handle) -> None:
        h.process.kill()
        h.process.join(5)


class RayExecutor(Executor):
    """Each attempt as a Ray task on the cluster at ``address`` (a local one when None); a
    timeout cancels the task."""

    name = "ray"
    max_workers = 64

    def __init__(
        self, client: Client, max_workers: int | None = None, address: str | None = None
    ) -> None:
        super().__init__(client, max_workers)
        try:
            import ray
        except ImportError as exc:
            raise MissingExtra("the ray executor needs Ray: pip install 'loopml[ray]'") from exc
        self._ray = ray
        if not ray.is_initialized():
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
        self._remote = ray.remote(num_cpus=1, max_retries=0)(execute_remote)

    def _start(self, h: _Handle, fn: Callable[..., Any]) -> None:
        h.ref = self._remote.remote(h.task)

    def _poll(self, h: _Handle) -> Attempt | None:
        if h.result is not None:
            return h.result
        ready, _ = self._ray.wait([h.ref], timeout=0)
        if not ready:
            return None
        try:
            h.result = self._ray.get(h.ref)
        except Exception as exc:
            h.result = Attempt(h.task.node, False, error=f"the Ray task failed: {exc}")
        return h.result

    def _block(self, handles: list[_Handle], seconds: float) -> None:
        refs = [h.ref for h in handles if h.result is None]
        if refs:
            self._ray.wait(refs, num_returns=1, timeout=seconds)

    def _kill(self, h: _Handle) -> None:
        self._ray.cancel(h.ref, force=True)


def make_executor(
    name: str, client: Client, *, max_workers: int | None = None, address: str | None = None
) -> Executor:
    """The executor called ``name`` (``local``, ``processes`` or ``ray``).

    Raises:
        InvalidArgument: an unknown name, an address for anything but Ray, or an out-of-process
            executor with a store other processes cannot reach (``memory://``).
    """
    if name not in EXECUTORS:
        raise InvalidArgument(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
    if address is not None and name != "ray":
        raise InvalidArgument("address is the Ray cluster's; pass it with executor='ray'")
    if name != "local" and client.tracking_uri.startswith("memory"):
        raise InvalidArgument(
            f"the {name} executor runs steps in other processes, which cannot see an in-memory "
            "store; use a SQLite file or PostgreSQL (LOOPML_TRACKING_URI), or executor='local'"
        )
    if name == "processes":
        return ProcessExecutor(client, max_workers)
    if name == "ray":
        return RayExecutor(client, max_workers, address)
    return Executor(client, max_workers)
