"""The state the fluent API and the data layer share: the process's default client, the current
project, the active runs of this thread or task, and who is acting (for the audit trail).

The active runs live in a :class:`contextvars.ContextVar`, so every thread (and every asyncio task)
has its own stack; :mod:`loopml.tracking.fluent` pushes and pops the runs it starts, and the data
layer (``loopml.log_dataset``) reads the innermost one to record which run used which data.
"""

from __future__ import annotations

import contextvars
import getpass
import os
import threading
from typing import Any

from loopml.client.client import Client

__all__ = [
    "active_run_id",
    "active_runs",
    "client_override",
    "current_actor",
    "get_client",
    "get_project",
    "peek_client",
    "replace_client",
    "set_project",
]

active_runs: contextvars.ContextVar[tuple[Any, ...]] = contextvars.ContextVar(
    "loopml_active_runs", default=()
)
"""This context's stack of active runs (objects with a ``run_id``), innermost last."""

client_override: contextvars.ContextVar[Client | None] = contextvars.ContextVar(
    "loopml_client_override", default=None
)
"""A client that :func:`get_client` answers with in this context only, before the process's
default (set while a pipeline step runs, so that the fluent API writes where the step's run is)."""

_lock = threading.RLock()
_client: Client | None = None
_project: str | None = None


def get_client() -> Client:
    """This context's client: the override if set, else the process's default (from ``LOOPML_*``
    settings unless replaced), created on first use."""
    global _client
    override = client_override.get()
    if override is not None:
        return override
    if _client is None:
        with _lock:
            if _client is None:
                _client = Client()
    return _client


def peek_client() -> Client | None:
    """This context's client if one exists: the override, else the default (never creates one)."""
    override = client_override.get()
    return override if override is not None else _client


def replace_client(client: Client | None) -> Client | None:
    """Make ``client`` the default (None: back to the settings); returns the previous one."""
    global _client
    with _lock:
        old, _client = _client, client
    return old


def get_project() -> str | None:
    """The project set with :func:`set_project`, or None for the settings' default."""
    return _project


def set_project(name: str | None) -> None:
    """Set the project new runs and datasets go to (validated by the caller)."""
    global _project
    _project = name


def active_run_id() -> str | None:
    """The id of the innermost active run of this context, or None."""
    stack = active_runs.get()
    return str(stack[-1].run_id) if stack else None


def current_actor() -> str:
    """Who changes are attributed to in the audit trail: ``LOOPML_USER`` when set, else the
    login name (``"unknown"`` when there is none, as in some containers)."""
    user = os.environ.get("LOOPML_USER", "").strip()
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
