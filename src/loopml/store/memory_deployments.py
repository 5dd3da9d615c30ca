"""Deployments, prediction-log segments, window profiles and traffic windows in the in-memory
store: the :class:`~loopml.store.deployments.DeploymentStore` half of
:class:`~loopml.store.memory.InMemoryStore`, as a mixin.

Everything lives in dicts behind the store's one lock, like the rest of the in-memory store.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from loopml.entities import (
    AuditEvent,
    Deployment,
    PredictionSegment,
    Project,
    TrafficWindow,
    WindowProfile,
    now_ms,
)
from loopml.errors import AlreadyExists, DeploymentNotFound, ProjectNotFound
from loopml.store import deployments as dep

__all__ = ["InMemoryDeploymentStore"]


class InMemoryDeploymentStore:
    """The deployment methods of :class:`~loopml.store.memory.InMemoryStore` (mixed into it;
    it calls :meth:`_init_deployments` from its constructor)."""

    if TYPE_CHECKING:
        _lock: threading.RLock
        _projects: dict[str, Project]
        _audit: list[AuditEvent]

    def _init_deployments(self) -> None:
        self._deployments: dict[tuple[str, str], Deployment] = {}  # by (project id, name)
        self._segments: dict[str, PredictionSegment] = {}  # by id
        self._window_profiles: dict[str, WindowProfile] = {}  # by id
        self._traffic: dict[str, TrafficWindow] = {}  # by id

    # --- helpers -------------------------------------------------------------------------------

    def _need_project(self, project_id: str) -> None:
        if project_id not in self._projects:
            raise ProjectNotFound(project_id)

    def _stored_deployment(self, project_id: str, name: str) -> Deployment:
        found = self._deployments.get((project_id, name))
        if found is None:
            self._need_project(project_id)
            raise DeploymentNotFound(name)
        return found

    @staticmethod
    def _deployment_copy(d: Deployment) -> Deployment:
        """A copy whose config the caller may change without changing the store."""
        return replace(d, config=copy.deepcopy(dict(d.config)))

    @staticmethod
    def _profile_copy(p: WindowProfile) -> WindowProfile:
        return replace(p, profile=copy.deepcopy(dict(p.profile)))

    # --- deployments ---------------------------------------------------------------------------

    def _create_deployment(self, draft: Deployment) -> Deployment:
        with self._lock:
            self._need_project(draft.project_id)
            key = (draft.project_id, draft.name)
            if key in self._deployments:
                raise AlreadyExists(
                    f"deployment {draft.name!r} already exists in this project; update it, or "
                    "pick another name"
                )
            now = now_ms()
            created = replace(draft, revision=1, created_at=now, updated_at=now)
            self._deployments[key] = created
            self._audit.append(dep.deployment_created(created))
            return self._deployment_copy(created)

    def _get_deployment(self, project_id: str, name: str) -> Deployment:
        with self._lock:
            return self._deployment_copy(self._stored_deployment(project_id, name))

    def _list_deployments(self, project_id: str) -> list[Deployment]:
        with self._lock:
            self._need_project(project_id)
            found = [
                self._deployment_copy(d)
                for (pid, _), d in self._deployments.items()
                if pid == project_id
            ]
        return sorted(found, key=lambda d: d.name)

    def _update_deployment(
        self,
        project_id: str,
        name: str,
        changes: dict[str, Any],
        actor: str,
        reason: str,
        expected_revision: int | None,
    ) -> Deployment:
        with self._lock:
            current = self._stored_deployment(project_id, name)
            if expected_revision is not None and current.revision != expected_revision:
                raise dep.revision_moved(name, current.revision, expected_revision)
            new, event = dep.apply_update(current, changes, actor, reason)
            if event is not None:
                self._deployments[project_id, name] = new
                self._audit.append(event)
            return self._deployment_copy(new)

    def _delete_deployment(self, project_id: str, name: str, actor: str, reason: str) -> None:
        with self._lock:
            current = self._stored_deployment(project_id, name)
            del self._deployments[project_id, name]
            self._audit.append(dep.deployment_deleted(current, actor, reason))

    # --- segments and window profiles ----------------------------------------------------------

    def _add_once(self, kept: dict[str, Any], record: Any) -> None:
        """Keep a write-once record (a segment, window profile or traffic window) by id, or
        check it against the one kept with that id."""
        with self._lock:
            self._need_project(record.project_id)
            stored = kept.setdefault(record.id, record)
            if stored is not record:
                dep.check_same(stored, record)

    def _add_prediction_segment(self, segment: PredictionSegment) -> None:
        self._add_once(self._segments, segment)

    def _list_prediction_segments(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        limit: int | None,
    ) -> list[PredictionSegment]:
        with self._lock:
            self._need_project(project_id)
            found = [
                s
                for s in self._segments.values()
                if s.project_id == project_id
                and s.deployment == deployment
                and (start is None or s.end_time >= start)
                and (end is None or s.start_time <= end)
            ]
        found.sort(key=lambda s: (s.start_time, s.id))
        return found if limit is None else found[:limit]

    def _add_window_profile(self, profile: WindowProfile) -> None:
        self._add_once(self._window_profiles, profile)

    def _list_window_profiles(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        route: str | None,
        model_version: str | None,
        window_seconds: int | None = None,
    ) -> list[WindowProfile]:
        with self._lock:
            self._need_project(project_id)
            found = [
                self._profile_copy(p)
                for p in self._window_profiles.values()
                if _in_windows(p, project_id, deployment, start, end, route)
                and (model_version is None or p.model_version == model_version)
                and (window_seconds is None or p.window_seconds == window_seconds)
            ]
        return sorted(found, key=lambda p: (p.window_start, p.route, p.id))

    # --- traffic windows -----------------------------------------------------------------------

    def _add_traffic_window(self, window: TrafficWindow) -> None:
        self._add_once(self._traffic, window)

    def _list_traffic_windows(
        self,
        project_id: str,
        deployment: str,
        start: int | None,
        end: int | None,
        route: str | None,
        limit: int | None,
    ) -> list[TrafficWindow]:
        with self._lock:
            self._need_project(project_id)
            found = [
                w
                for w in self._traffic.values()
                if _in_windows(w, project_id, deployment, start, end, route)
            ]
        found.sort(key=lambda w: (w.window_start, w.route, w.id))
        return found if limit is None else found[-limit:]


def _in_windows(
    w: WindowProfile | TrafficWindow,
    project_id: str,
    deployment: str,
    start: int | None,
    end: int | None,
    route: str | None,
) -> bool:
    """Whether a window of a deployment starts in ``[start, end)`` and is of ``route``
    (None: any)."""
    return (
        w.project_id == project_id
        and w.deployment == deployment
        and (start is None or w.window_start >= start)
        and (end is None or w.window_start < end)
        and (route is None or w.route == route)
    )
