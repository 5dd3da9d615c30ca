"""Action hooks: what an alert rule does besides notifying, when it fires (``actions:
[retrain]``).

An action is a function of the alert and the result of the window that fired it::

    from loopml.monitoring.actions import alert_action


    @alert_action("page-the-owner")
    def page(alert, result):
        ...
        return "paged"  # optional: a short status, recorded with the alert

Packages register actions under the ``loopml.alert_actions`` entry-point group (the name is the
action's name, the object the function), found the first time an unknown name is asked for.
Every run is recorded as a delivery of kind ``action``; a failing or unknown action is logged
and recorded, never raised.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from loopml.entities import Alert, AlertDelivery, MonitorResult
from loopml.errors import InvalidArgument
from loopml.monitoring.notifiers import DeliveryLog, record_delivery

__all__ = [
    "ENTRY_POINT_GROUP",
    "AlertAction",
    "action_names",
    "alert_action",
    "get_action",
    "register_action",
    "run_actions",
    "unregister_action",
]

logger = logging.getLogger("loopml.alerts")

ENTRY_POINT_GROUP = "loopml.alert_actions"

AlertAction = Callable[[Alert, MonitorResult | None], Any]
"""An action: called with the alert and the window's result; may return a short status."""

_F = TypeVar("_F", bound=AlertAction)
_ACTIONS: dict[str, AlertAction] = {}
_LOCK = threading.Lock()
_discovered = False


def register_action(name: str, fn: AlertAction, *, replace: bool = False) -> AlertAction:
    """Make ``fn`` the action called ``name``; returns it.

    Raises:
        InvalidArgument: ``fn`` is not callable, the name is empty, or it is taken and
            ``replace`` is False.
    """
    if not callable(fn):
        raise InvalidArgument(f"action {name!r} must be a function of (alert, result)")
    if not name or name != name.strip():
        raise InvalidArgument(f"{name!r} is not a valid action name")
    with _LOCK:
        if name in _ACTIONS and not replace and _ACTIONS[name] is not fn:
            raise InvalidArgument(
                f"an alert action named {name!r} is already registered; pass replace=True "
                "to replace it"
            )
        _ACTIONS[name] = fn
    return fn


def alert_action(name: str, *, replace: bool = False) -> Callable[[_F], _F]:
    """Decorator form of :func:`register_action`: ``@alert_action("retrain")``."""

    def decorate(fn: _F) -> _F:
        register_action(name, fn, replace=replace)
        return fn

    return decorate


def unregister_action(name: str) -> None:
    """Forget the action called ``name`` (no error when there is none)."""
    with _LOCK:
        _ACTIONS.pop(name, None)


def _discover() -> None:
    """Register the entry points of ``loopml.alert_actions`` once (names already registered in
    code win)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _ACTIONS:
            continue
        try:
            fn = ep.load()
            register_action(ep.name, fn)
        except Exception:
            logger.exception("cannot load the alert action %r from %s", ep.name, ep.value)


def get_action(name: str) -> AlertAction:
    """The action called ``name`` (from code or an entry point).

    Raises:
        InvalidArgument: no action has that name.
    """
    if name not in _ACTIONS:
        _discover()
    try:
        return _ACTIONS[name]
    except KeyError:
        raise InvalidArgument(
            f"unknown alert action {name!r}; known actions: {action_names()}. Register it "
            f"with @alert_action({name!r}) or the {ENTRY_POINT_GROUP!r} entry-point group"
        ) from None


def action_names() -> list[str]:
    """Names of the registered actions, sorted."""
    _discover()
    return sorted(_ACTIONS)


def run_actions(
    store: DeliveryLog,
    alert: Alert,
    result: MonitorResult | None,
    names: Sequence[str],
    *,
    project: str | None = None,
) -> list[AlertDelivery]:
    """Run the actions called ``names`` for ``alert``, each once, in order.

    Never raises: each run is recorded as a delivery of kind ``action`` (``ok`` and the
    action's returned status, or the error), and failures are logged.
    """
    return [
        record_delivery(
            store,
            alert,
            notifier=name,
            kind="action",
            event="firing",
            attempt=1,
            ok=ok,
            status=status,
            project=project,
        )
        for name in names
        for ok, status in [_run(name, alert, result)]
    ]


def _run(name: str, alert: Alert, result: MonitorResult | None) -> tuple[bool, str]:
    try:
        action = get_action(name)
    except InvalidArgument as exc:
        logger.error("alert %s of rule %r: %s", alert.id, alert.rule, exc)
        return False, str(exc)
    try:
        returned = action(alert, result)
    except Exception as exc:  # an action's failure must not stop the others
        logger.exception("alert action %r failed for alert %s", name, alert.id)
        return False, f"{type(exc).__name__}: {exc}"
    return True, "ok" if returned is None else str(returned)
