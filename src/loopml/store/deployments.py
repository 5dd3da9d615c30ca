"""The serving half of the metadata store contract: deployments, the index of prediction-log
segments, window profiles and traffic windows.

:class:`DeploymentStore` is an abstract mixin that :class:`~loopml.store.Store` inherits. It
follows the template of the rest of the contract: public methods validate their arguments
(with :mod:`loopml.store.deployment_checks`) and call protected ``_methods`` that each backend
implements and that may assume valid input. The helpers at the bottom
(:func:`deployment_created`, :func:`apply_update`, :func:`deployment_deleted`,
:func:`check_same`) build the audit events and decide what an update or a repeated write
means, so that every backend records the same facts in the same shape.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any, Final

from loopml.entities import (
    AuditEvent,
    Deployment,
    PredictionSegment,
    Route,
    TrafficWindow,
    WindowProfile,
    now_ms,
)
from loopml.errors import Conflict, InvalidArgument
from loopml.store import validation
from loopml.store.deployment_checks import (
    MAX_SEGMENT_SPAN_MS,
    check_config,
    check_deployment_name,
    check_model_version,
    check_profile,
    check_range,
    check_route_name,
    check_routes,
    check_segment,
    check_sticky_key,
    check_traffic,
)
from loopml.store.registry import MAX_DESCRIPTION_LENGTH, MAX_REASON_LENGTH, _check_text, new_event

__all__ = [
    "MAX_SEGMENT_SPAN_MS",
    "UNSET",
    "DeploymentStore",
    "apply_update",
    "check_same",
    "deployment_created",
    "deployment_deleted",
    "revision_moved",
]

_UPDATABLE = ("routes", "sticky_key", "description", "config")


class _Unset:
    """The type of :data:`UNSET`: "not given", where None is a value (``sticky_key=None``)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: "Leave as it is": the default of ``update_deployment(sticky_key=...)``, where None means
#: "no sticky routing".
UNSET: Final = _Unset()


class DeploymentStore(abc.ABC):
    """Deployments, prediction-log segments, window profiles and traffic windows (mixed into
    :class:`~loopml.store.Store`).

    Contract, on top of the store-wide one (thread and process safety, immutable entities, one
    transaction per write, validation before storage):

    * **Deployments** are named within their project like models (:func:`check_deployment_name`)
      and hold 1 to 16 routes (:func:`check_routes`): exactly one ``primary``, canary weights
      adding up to at most 1, each ``model_uri`` a ``models:/`` URI (its form is checked; the
      model need not exist yet). ``revision`` starts at 1 and grows by one with every update
      that changes something; an update with ``expected_revision`` is a compare-and-set: of
      concurrent updates that expect one revision, exactly one succeeds.
    * **Audit.** Creating, changing and deleting a deployment writes an
      :class:`~loopml.entities.AuditEvent` (``deployment.create``, ``deployment.update``,
      ``deployment.delete``; object type ``deployment``) in the same transaction as the change.
      Its timestamp is never earlier than the deployment's last change.
    * **Segments, window profiles and traffic windows** are data, not changes: they are not
      audited, are immutable and append-only, and are keyed by the caller's id, so a retried
      write is safe: adding an id again with the same content is a no-op (``created_at``
      aside), with other content :class:`~loopml.errors.Conflict`. They name their deployment
      but do not need it to exist, and deleting a deployment keeps them (monitoring history
      outlives it). They go with their project.
    * **Errors.** An unknown deployment raises :class:`~loopml.errors.DeploymentNotFound`; an
      unknown project :class:`~loopml.errors.ProjectNotFound`; a duplicate name
      :class:`~loopml.errors.AlreadyExists`; a stale ``expected_revision`` or a conflicting
      repeated id :class:`~loopml.errors.Conflict`; a bad argument
      :class:`~loopml.errors.InvalidArgument`.
    """

    # --- deployments ---------------------------------------------------------------------------

    def create_deployment(
        self,
        project_id: str,
        name: str,
        routes: Sequence[Route | Mapping[str, Any]],
        *,
        sticky_key: str | None = None,
        description: str = "",
        config: Mapping[str, Any] | None = None,
        actor: str,
    ) -> Deployment:
        """Create a deployment at revision 1 (audited as ``deployment.create``, details: the
        routes, ``sticky_key``, ``description`` and ``config``).

        Args:
            project_id: the project's id.
            name: the deployment's name, e.g. ``churn-api``.
            routes: :class:`~loopml.entities.Route` s, or dicts with their fields.
            sticky_key: the request field or header that pins a caller to a route.
            description: free text.
            config: the server's settings (batching, limits), a JSON-ready dict.
            actor: who creates it (``created_by``).

        Raises:
            AlreadyExists: the project has a deployment with this name.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name, route, sticky key, description, config or actor.
        """
        validation.check_name(project_id, "project id")
        draft = Deployment(
            project_id=project_id,
            name=check_deployment_name(name),
            routes=check_routes(routes),
            sticky_key=check_sticky_key(sticky_key),
            description=_check_text(description, "deployment description", MAX_DESCRIPTION_LENGTH),
            config=check_config(config),
            created_by=validation.check_name(actor, "actor"),
            updated_by=actor,
        )
        return self._create_deployment(draft)

    def get_deployment(self, project_id: str, name: str) -> Deployment:
        """A deployment.

        Raises:
            DeploymentNotFound: the project has no deployment with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        return self._get_deployment(project_id, check_deployment_name(name))

    def list_deployments(self, project_id: str) -> list[Deployment]:
        """The deployments of a project, by name.

        Raises:
            ProjectNotFound: the project does not exist.
        """
        return self._list_deployments(validation.check_name(project_id, "project id"))

    def update_deployment(
        self,
        project_id: str,
        name: str,
        *,
        routes: Sequence[Route | Mapping[str, Any]] | None = None,
        sticky_key: str | _Unset | None = UNSET,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        actor: str,
        reason: str = "",
        expected_revision: int | None = None,
    ) -> Deployment:
        """Change the fields given (``routes`` and ``config`` are replaced whole); the others
        stay. When anything changes the revision grows by one and a ``deployment.update``
        event records it (details: ``before`` and ``after`` of the fields that changed, and the
        new ``revision``); giving only values it already has changes nothing.

        Args:
            project_id: the project's id.
            name: the deployment.
            routes: the new routes (see :meth:`create_deployment`).
            sticky_key: the new sticky key; None turns sticky routing off.
            description: the new description. config: the new server settings.
            actor: who changes it (``updated_by``). reason: why (kept in the audit event).
            expected_revision: when given, change the deployment only if it is still at this
                revision (compare-and-set).

        Returns:
            The deployment as stored.

        Raises:
            DeploymentNotFound: the project has no deployment with this name.
            ProjectNotFound: the project does not exist.
            Conflict: the deployment is not at ``expected_revision``.
            InvalidArgument: a bad field, actor or reason.
        """
        validation.check_name(project_id, "project id")
        check_deployment_name(name)
        changes: dict[str, Any] = {}
        if routes is not None:
            changes["routes"] = check_routes(routes)
        if not isinstance(sticky_key, _Unset):
            changes["sticky_key"] = check_sticky_key(sticky_key)
        if description is not None:
            changes["description"] = _check_text(
                description, "deployment description", MAX_DESCRIPTION_LENGTH
            )
        if config is not None:
            changes["config"] = check_config(config)
        expected = (
            None
            if expected_revision is None
            else validation.check_int(expected_revision, "expected_revision", minimum=1)
        )
        return self._update_deployment(
            project_id,
            name,
            changes,
            validation.check_name(actor, "actor"),
            _check_text(reason, "reason", MAX_REASON_LENGTH),
            expected,
        )

    def delete_deployment(
        self, project_id: str, name: str, *, actor: str, reason: str = ""
    ) -> None:
        """Delete a deployment (audited as ``deployment.delete``, details: its last state);
        its segments, window profiles and audit events stay. The name may then be used again,
        from revision 1.

        Raises:
            DeploymentNotFound: the project has no deployment with this name.
            ProjectNotFound: the project does not exist.
        """
        validation.check_name(project_id, "project id")
        self._delete_deployment(
            project_id,
            check_deployment_name(name),
            validation.check_name(actor, "actor"),
            _check_text(reason, "reason", MAX_REASON_LENGTH),
        )

    # --- prediction-log segments ---------------------------------------------------------------

    def add_prediction_segment(self, segment: PredictionSegment) -> None:
        """Index a prediction-log file (idempotent by ``segment.id``). ``created_at`` 0 means
        now; ``routes`` and ``model_versions`` are stored sorted, without repeats.

        Raises:
            Conflict: a segment with this id exists with other content.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field; a segment longer than 24 hours
                (:data:`MAX_SEGMENT_SPAN_MS`).
        """
        self._add_prediction_segment(check_segment(segment))

    def list_prediction_segments(
        self,
        project_id: str,
        deployment: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
    ) -> list[PredictionSegment]:
        """The segments of a deployment that overlap ``[start, end]`` (ms, both ends included:
        ``start_time <= end`` and ``end_time >= start``), by ``start_time`` then id.

        Args:
            project_id: the project's id.
            deployment: the deployment's name (it need not exist any more).
            start, end: the time range; None leaves that side open.
            limit: at most this many (1..50,000), the earliest.

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name, time or limit, or ``start`` after ``end``.
        """
        validation.check_name(project_id, "project id")
        lo, hi = check_range(start, end)
        most = None if limit is None else validation.check_max_results(limit)
        return self._list_prediction_segments(
            project_id, check_deployment_name(deployment), lo, hi, most
        )

    # --- window profiles -----------------------------------------------------------------------

    def add_window_profile(self, profile: WindowProfile) -> None:
        """Store a profile fragment of one window (idempotent by ``profile.id``; ``created_at``
        0 means now). Several fragments of one window and route may exist (one per server):
        readers merge them.

        Raises:
            Conflict: a profile with this id exists with other content.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field, or a ``window_start`` that is not a multiple of
                ``window_seconds`` (in ms).
        """
        self._add_window_profile(check_profile(profile))

    def list_window_profiles(
        self,
        project_id: str,
        deployment: str,
        *,
        start: int | None = None,
        end: int | None = None,
        route: str | None = None,
        model_version: str | None = None,
        window_seconds: int | None = None,
    ) -> list[WindowProfile]:
        """The window profiles of a deployment whose ``window_start`` is in ``[start, end)``
        (ms; None leaves that side open), optionally of one route, model version
        (``"churn/3"``) or window length (``window_seconds``: serving's windows, or a
        monitor's daily roll-ups); by ``window_start``, then route, then id.

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name, time or filter, or ``start`` after ``end``.
        """
        validation.check_name(project_id, "project id")
        lo, hi = check_range(start, end)
        return self._list_window_profiles(
            project_id,
            check_deployment_name(deployment),
            lo,
            hi,
            None if route is None else check_route_name(route),
            None if model_version is None else check_model_version(model_version),
            None if window_seconds is None else _check_seconds(window_seconds),
        )

    # --- traffic windows -----------------------------------------------------------------------

    def add_traffic_window(self, window: TrafficWindow) -> None:
        """Store the request counts of one route in one window, from one server process
        (idempotent by ``window.id``; ``created_at`` 0 means now). Several fragments of one
        window and route may exist (one per process): readers add them up.

        Raises:
            Conflict: a traffic window with this id exists with other content.
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad field, a ``window_start`` that is not a multiple of
                ``window_seconds`` (in ms), or more errors than requests.
        """
        self._add_traffic_window(check_traffic(window))

    def list_traffic_windows(
        self,
        project_id: str,
        deployment: str,
        *,
        start: int | None = None,
        end: int | None = None,
        route: str | None = None,
        limit: int | None = None,
    ) -> list[TrafficWindow]:
        """The traffic windows of a deployment whose ``window_start`` is in ``[start, end)``
        (ms; None leaves that side open), optionally of one route (``""``: the requests
        refused before routing); by ``window_start``, then route, then id; at most ``limit``
        (1..50,000), the latest (still in that order).

        Raises:
            ProjectNotFound: the project does not exist.
            InvalidArgument: a bad name, time, route or limit, or ``start`` after ``end``.
        """
        validation.check_name(project_id, "project id")
        lo, hi = check_range(start, end)
        return self._list_traffic_windows(
            project_id,
            check_deployment_name(deployment),
            lo,
            hi,
            None if route is None else "" if route == "" else check_route_name(route),
            None if limit is None else validation.check_max_results(limit),
        )

    # --- what implementations provide ----------------------------------------------------------

    @abc.abstractmethod
    def _create_deployment(self, draft: Deployment) -> Deployment:
        """Store ``draft`` at revision 1, created and updated now, with its
        :func:`deployment_created` event."""

    @abc.abstractmethod
    def _get_deployment(self, project_id: str, name: str) -> Deployment: ...

    @abc.abstractmethod
    def _list_deployments(self, project_id: str) -> list[Deployment]: ...

    @abc.abstractmethod
    def _update_deployment(
        self,
        project_id: str,
        name: str,
        changes: dict[str, Any],
        actor: str,
        reason: str,
        expected_revision: int | None,
    ) -> Deployment:
        """Under the deployment's lock: :func:`revision_moved` when ``expected_revision``
        differs, then :func:`apply_update` and store its result (with its event, if any)."""

    @abc.abstractmethod
    def _delete_deployment(self, project_id: str, name: str, actor: str, reason: str) -> None:
        """Delete it with its :func:`deployment_deleted` event."""

    @abc.abstractmethod
    def _add_prediction_segment(self, segment: PredictionSegment) -> None:
        """Store it, or :func:`check_same` against the stored segment with its id."""

    @abc.abstractmethod
    def _list_prediction_segments(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        limit: int | None,
    ) -> list[PredictionSegment]: ...

    @abc.abstractmethod
    def _add_window_profile(self, profile: WindowProfile) -> None:
        """Store it, or :func:`check_same` against the stored profile with its id."""

    @abc.abstractmethod
    def _list_window_profiles(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        route: str | None,
        model_version: str | None,
        window_seconds: int | None = None,
    ) -> list[WindowProfile]: ...

    @abc.abstractmethod
    def _add_traffic_window(self, window: TrafficWindow) -> None:
        """Store it, or :func:`check_same` against the stored window with its id."""

    @abc.abstractmethod
    def _list_traffic_windows(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        route: str | None,
        limit: int | None,
    ) -> list[TrafficWindow]:
        """The matching windows by ``(window_start, route, id)``: the last ``limit`` of
        them when ``limit`` is given."""


# --- one behaviour for every backend -------------------------------------------------------------


def _check_seconds(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"window_seconds must be a positive integer, not {value!r}")
    return value


def _state(d: Deployment) -> dict[str, Any]:
    """The changeable fields of a deployment as JSON-ready values (for audit details)."""
    return {
        "routes": [r.to_dict() for r in d.routes],
        "sticky_key": d.sticky_key,
        "description": d.description,
        "config": dict(d.config),
    }


def _event(
    d: Deployment, action: str, actor: str, details: dict[str, Any], at: int, reason: str = ""
) -> AuditEvent:
    return new_event(
        d.project_id, actor, action, "deployment", d.name, details, timestamp=at, reason=reason
    )


def deployment_created(d: Deployment) -> AuditEvent:
    """The ``deployment.create`` event of a new deployment (details: its fields, revision 1)."""
    return _event(
        d, "deployment.create", d.created_by, {**_state(d), "revision": d.revision}, d.created_at
    )


def apply_update(
    current: Deployment, changes: Mapping[str, Any], actor: str, reason: str
) -> tuple[Deployment, AuditEvent | None]:
    """The deployment after ``changes`` and its ``deployment.update`` event, or ``(current,
    None)`` when no field would change. The event's time is now, but never before the
    deployment's last change (clocks may step back), so its events sort in order."""
    before, after = _state(current), _state(replace(current, **changes))
    changed = [k for k in _UPDATABLE if k in changes and before[k] != after[k]]
    if not changed:
        return current, None
    at = max(now_ms(), current.updated_at)
    new = replace(
        current, **changes, revision=current.revision + 1, updated_at=at, updated_by=actor
    )
    details = {
        "before": {k: before[k] for k in changed},
        "after": {k: after[k] for k in changed},
        "revision": new.revision,
    }
    return new, _event(new, "deployment.update", actor, details, at, reason)


def deployment_deleted(current: Deployment, actor: str, reason: str) -> AuditEvent:
    """The ``deployment.delete`` event (details: its last fields and revision, enough to
    create it again)."""
    at = max(now_ms(), current.updated_at)
    details = {**_state(current), "revision": current.revision}
    return _event(current, "deployment.delete", actor, details, at, reason)


def revision_moved(name: str, current: int, expected: int) -> Conflict:
    """The error for a compare-and-set of a deployment that changed meanwhile."""
    return Conflict(
        f"deployment {name!r} is at revision {current}, not {expected} as expected: it changed "
        "meanwhile; read it again (get_deployment) and retry"
    )


_Record = PredictionSegment | WindowProfile | TrafficWindow


def check_same(stored: _Record, new: _Record) -> None:
    """A repeated write of an id: nothing to do when the content (``created_at`` aside) is the
    same, Conflict when it is not."""
    differ = [
        f.name
        for f in fields(stored)
        if f.name != "created_at" and getattr(stored, f.name) != getattr(new, f.name)
    ]
    if differ:
        what = {
            PredictionSegment: "segment",
            WindowProfile: "window profile",
            TrafficWindow: "traffic window",
        }[type(stored)]
        raise Conflict(
            f"{what} {stored.id!r} is already stored with another {', '.join(differ)}; ids are "
            f"write-once: give new content a new id"
        )
