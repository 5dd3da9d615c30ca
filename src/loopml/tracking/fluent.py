"""The fluent API: ``with loopml.start_run(): loopml.log_metric("acc", 0.9)``.

A thin layer over :class:`~loopml.client.Client`. The active run lives in a
:class:`contextvars.ContextVar`, so every thread (and every asyncio task) has its own; a new thread
starts with no active run (share one with ``contextvars.copy_context().run(fn)``). How a run ends:

* the ``with`` block exits normally: ``finished``; with an exception: ``failed`` (the error is kept
  in the ``loopml.error`` tag); with ``KeyboardInterrupt`` (SIGINT) or SIGTERM: ``killed``;
* a run started without ``with`` and never ended is ended at interpreter exit: ``finished``, or
  ``failed`` if the program died of an uncaught exception;
* SIGKILL gives no chance to say anything: the heartbeat stops, and a later reader marks the run
  ``failed`` (``loopml runs list`` does it).
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, NoReturn

from loopml.client import Client, context
from loopml.entities import ArtifactInfo, Page, Run, RunStatus
from loopml.errors import InvalidArgument, NoActiveRun

__all__ = [
    "ActiveRun",
    "active_run",
    "activated",
    "end_run",
    "flush",
    "get_client",
    "get_tracking_uri",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "search_runs",
    "set_project",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]

ERROR_TAG = "loopml.error"
_active: contextvars.ContextVar[tuple[ActiveRun, ...]] = context.active_runs
_lock = threading.RLock()
_open_runs: dict[str, ActiveRun] = {}  # every run started here and not ended, for exit
_hooks_installed = False
_uncaught: list[BaseException] = []
_exit_codes: list[object] = []  # codes passed to sys.exit after the hooks were installed
_terminated = False


class _Terminated(SystemExit):
    """Raised in the main thread by loopml's SIGTERM handler so ``with`` blocks can clean up."""


def get_client() -> Client:
    """The client behind the fluent API (from ``LOOPML_*`` settings unless set)."""
    return context.get_client()


def set_tracking_uri(uri: str | None) -> None:
    """Point the fluent API at another store (None: back to the default)."""
    old = context.replace_client(Client(uri) if uri else None)
    if old is not None:
        old.flush()


def get_tracking_uri() -> str:
    """The store URI the fluent API writes to."""
    return get_client().tracking_uri


def set_project(name: str) -> None:
    """The project new runs go to (default ``LOOPML_PROJECT``, else ``default``)."""
    from loopml.store.validation import check_name

    context.set_project(check_name(name, "project name"))


class ActiveRun:
    """A run started by :func:`start_run`; a context manager that ends it.

    Attributes:
        run_id: the run's id.
        run: the run as it was when started (call :attr:`info` for its current state).
    """

    def __init__(self, run: Run, client: Client) -> None:
        self.run = run
        self.run_id = run.run_id
        self._client = client
        self._ended = False

    @property
    def info(self) -> Run:
        """The run now, with everything logged so far."""
        return self._client.get_run(self.run_id)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run (flushes its metrics first) and make its parent active again."""
        if self._ended:
            return
        self._ended = True
        _active.set(tuple(r for r in _active.get() if r is not self))
        with _lock:
            _open_runs.pop(self.run_id, None)
        self._client.end_run(self.run_id, status)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or (
            isinstance(exc, SystemExit)
            and not isinstance(exc, _Terminated)
            and exc.code in (0, None)
        ):
            self.end(RunStatus.FINISHED)
        elif isinstance(exc, (KeyboardInterrupt, _Terminated)):
            self.end(RunStatus.KILLED)
        else:
            try:
                text = "".join(traceback.format_exception_only(exc)).strip()
                self._client.set_tag(self.run_id, ERROR_TAG, text[:8000])
            finally:
                self.end(RunStatus.FAILED)

    def __repr__(self) -> str:
        return f"ActiveRun(run_id={self.run_id!r}, name={self.run.name!r})"


def start_run(
    name: str | None = None,
    *,
    project: str | None = None,
    run_id: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
) -> ActiveRun:
    """Start a run (or resume one by ``run_id``) and make it the active run of this context.

    Args:
        name: a display name (a readable one is generated when None).
        project: project name (default: :func:`set_project`, ``LOOPML_PROJECT``, ``default``).
        run_id: resume this existing run instead of creating one.
        nested: start a child of the active run. Without it, starting a run while another is
            active is an error, which catches a forgotten ``end_run()``.
        tags, params: logged with the run's creation.

    Returns:
        An :class:`ActiveRun`; use it as a context manager (``with loopml.start_run():``).
    """
    client = get_client()
    stack = _active.get()
    if stack and not nested:
        raise InvalidArgument(
            f"run {stack[-1].run_id!r} ({stack[-1].run.name}) is already active here; end it "
            "with loopml.end_run(), or pass nested=True to start a child run"
        )
    _install_hooks()
    if run_id is not None:
        client.store.update_run(run_id, status=RunStatus.RUNNING)
        if params or tags:
            client.log_batch(run_id, params=params or {}, tags=tags or {})
        run = client.get_run(run_id)
        client.buffer.track(run_id)
    else:
        parent = stack[-1] if stack else None
        if parent is not None and project is None:
            project_name: str | None = client.store.get_project(parent.run.project_id).name
        else:
            project_name = project or context.get_project()
        run = client.create_run(
            project_name,
            name=name,
            parent_run_id=None if parent is None else parent.run_id,
            tags=tags,
            params=params,
        )
    active = ActiveRun(run, client)
    _active.set((*stack, active))
    with _lock:
        _open_runs[run.run_id] = active
    return active


@contextlib.contextmanager
def activated(run: Run, client: Client) -> Iterator[ActiveRun]:
    """Make ``run``, started elsewhere through ``client``, the active run of this context for
    the block, without ending it on exit: the caller decides its status (pipeline steps run
    this way, so that ``loopml.log_metric`` in a step lands in the step's run).

    ``client`` is also the fluent API's client in this context for the block
    (``loopml.log_dataset`` and the like write where the run is).
    """
    active = ActiveRun(run, client)
    token = _active.set((*_active.get(), active))
    client_token = context.client_override.set(client)
    try:
        yield active
    finally:
        context.client_override.reset(client_token)
        _active.reset(token)


def active_run() -> ActiveRun | None:
    """The active run of this thread or task, or None."""
    stack = _active.get()
    return stack[-1] if stack else None


def _current() -> ActiveRun:
    stack = _active.get()
    if not stack:
        raise NoActiveRun()
    return stack[-1]


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run (no error when there is none)."""
    run = active_run()
    if run is not None:
        run.end(status)


def flush() -> None:
    """Write every buffered metric point now; returns once they are committed."""
    client = context.peek_client()
    if client is not None:
        client.flush()


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Log a metric point to the active run (buffered; steps count up from 0 when omitted)."""
    run = _current()
    run._client.log_metrics(run.run_id, {key: value}, step=step, timestamp=timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    """Log several metric points at one step to the active run."""
    run = _current()
    run._client.log_metrics(run.run_id, metrics, step=step, timestamp=timestamp)


def log_param(key: str, value: Any) -> None:
    """Log a param of the active run (written now; it cannot change afterwards)."""
    run = _current()
    run._client.log_param(run.run_id, key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log several params of the active run in one write."""
    run = _current()
    run._client.log_params(run.run_id, params)


def set_tag(key: str, value: Any) -> None:
    """Set a tag of the active run."""
    run = _current()
    run._client.set_tag(run.run_id, key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set several tags of the active run."""
    run = _current()
    run._client.set_tags(run.run_id, tags)


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None
) -> ArtifactInfo:
    """Store a local file with the active run."""
    run = _current()
    return run._client.log_artifact(run.run_id, local_path, artifact_path)


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None
) -> list[ArtifactInfo]:
    """Store every file under a local folder with the active run."""
    run = _current()
    return run._client.log_artifacts(run.run_id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactInfo:
    """Store text as a file of the active run."""
    run = _current()
    return run._client.log_text(run.run_id, text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> ArtifactInfo:
    """Store a dict as JSON (or YAML by extension) with the active run."""
    run = _current()
    return run._client.log_dict(run.run_id, dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> ArtifactInfo:
    """Store a matplotlib or plotly figure with the active run."""
    run = _current()
    return run._client.log_figure(run.run_id, figure, artifact_file)


def search_runs(
    filter: str | None = None,
    order_by: str | list[str] | None = None,
    *,
    project: str | list[str] | None = None,
    max_results: int = 1000,
) -> Page:
    """Runs of the current project (or ``project``) matching ``filter``; ``.to_pandas()`` on the
    result gives a DataFrame."""
    client = get_client()
    name = project or context.get_project() or client.settings.project
    return client.search_runs(name, filter, order_by, max_results)


# --- process-level hooks: SIGTERM, uncaught exceptions, exit ------------------------------------


def _install_hooks() -> None:
    global _hooks_installed
    with _lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        previous_hook = sys.excepthook

        def excepthook(
            tp: type[BaseException], value: BaseException, tb: TracebackType | None
        ) -> None:
            _uncaught.append(value)
            previous_hook(tp, value, tb)

        sys.excepthook = excepthook
        # SystemExit never reaches the excepthook, and atexit cannot see the exit code: note
        # the code of sys.exit() so a run left open by sys.exit(1) ends as failed.
        previous_exit = sys.exit

        def exit(status: str | int | None = None) -> NoReturn:
            _exit_codes.append(status)
            previous_exit(status)

        sys.exit = exit
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                signal.signal(signal.SIGTERM, _on_sigterm)
        atexit.register(_end_open_runs)


def _on_sigterm(signum: int, frame: Any) -> None:
    global _terminated
    _terminated = True
    raise _Terminated(128 + signum)


def _end_open_runs() -> None:
    """At exit: end runs nobody ended (killed after SIGTERM, failed after an uncaught error)."""
    with _lock:
        runs = list(_open_runs.values())
    if _terminated or (_uncaught and isinstance(_uncaught[-1], KeyboardInterrupt)):
        status = RunStatus.KILLED
    elif (_uncaught and not isinstance(_uncaught[-1], SystemExit)) or (
        _exit_codes and _exit_codes[-1] not in (0, None)
    ):
        status = RunStatus.FAILED
    else:
        status = RunStatus.FINISHED
    for run in reversed(runs):
        try:
            run.end(status)
        except Exception as exc:
            print(f"loopml: could not end run {run.run_id}: {exc}", file=sys.stderr)  # noqa: T201
