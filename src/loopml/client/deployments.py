"""Deployments through the client: create and change them (every change audited, with
compare-and-set on ``revision``), and index what serving logs: prediction-log segments and
window profiles.

Every change is attributed to :func:`~loopml.client.context.current_actor` (``LOOPML_USER``,
else the login name) in the audit trail. Every method takes ``project`` (default: the client's
project, ``LOOPML_PROJECT``); the methods that write create it when it is missing, the others
raise :class:`~loopml.errors.ProjectNotFound`.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from loopml.entities import (
    Deployment,
    PredictionSegment,
    Project,
    Route,
    TrafficWindow,
    WindowProfile,
    now_ms,
)
from loopml.store.deployments import UNSET

if TYPE_CHECKING:
    from loopml.config import Settings
    from loopml.store.base import Store
    from loopml.store.deployments import _Unset

__all__ = ["DeploymentMethods"]


def _actor() -> str:
    # Imported here: loopml.client.context imports the Client, which imports this module.
    from loopml.client.context import current_actor

    return current_actor()


def _as_set(values: Iterable[str] | str) -> Any:
    """Names as the store keeps them (sorted, without repeats); anything else as given, for
    the store to refuse with its message."""
    if isinstance(values, (list, tuple, set, frozenset)) and all(
        isinstance(v, str) for v in values
    ):
        return tuple(sorted(set(values)))
    return values


class DeploymentMethods:
    """The deployment methods of :class:`~loopml.Client` (a mixin: it needs ``store``,
    ``settings`` and the client's project-id cache)."""

    @property
    def store(self) -> Store:  # pragma: no cover - Client provides it
        raise NotImplementedError

    settings: Settings

    if TYPE_CHECKING:

        def _cached_project_id(self, name: str, lookup: Callable[[str], Project]) -> str: ...

    def _deployment_project_id(self, project: str | None, *, create: bool = False) -> str:
        """The project's id (``create``: creating the project when it does not exist)."""
        lookup = self.store.get_or_create_project if create else self.store.get_project
        return self._cached_project_id(project or self.settings.project, lookup)

    # --- deployments ---------------------------------------------------------------------------

    def create_deployment(
        self,
        name: str,
        routes: Sequence[Route | Mapping[str, Any]],
        *,
        sticky_key: str | None = None,
        description: str = "",
        config: Mapping[str, Any] | None = None,
        project: str | None = None,
    ) -> Deployment:
        """Create a deployment (the project is created when missing).

        Args:
            name: the deployment's name, e.g. ``churn-api``.
            routes: :class:`~loopml.Route` s, or dicts ``{"name", "model_uri", "role",
                "weight"}`` (``weight`` optional): exactly one ``primary``, plus ``canary``
                routes (a share of live traffic each, at most 1 in all) and ``shadow`` routes
                (a share of traffic mirrored, default all).
            sticky_key: the request field or header that pins a caller to one route.
            description: free text.
            config: the server's settings (batching, limits), a JSON-ready dict.
            project: the project (default: the client's).

        Returns:
            The deployment, at revision 1.

        Raises:
            AlreadyExists: the project has a deployment with this name.
            InvalidArgument: a bad name or route (the message says which and why).

        Example:
            >>> routes = [loopml.Route("primary", "models:/churn@champion", "primary")]
            >>> routes.append(loopml.Route("canary", "models:/churn/4", "canary", 0.1))
            >>> client.create_deployment("churn-api", routes).revision
            1
        """
        return self.store.create_deployment(
            self._deployment_project_id(project, create=True),
            name,
            routes,
            sticky_key=sticky_key,
            description=description,
            config=config,
            actor=_actor(),
        )

    def get_deployment(self, name: str, *, project: str | None = None) -> Deployment:
        """A deployment.

        Raises:
            DeploymentNotFound: no such deployment.
        """
        return self.store.get_deployment(self._deployment_project_id(project), name)

    def list_deployments(self, *, project: str | None = None) -> list[Deployment]:
        """The deployments of a project, by name."""
        return self.store.list_deployments(self._deployment_project_id(project))

    def update_deployment(
        self,
        name: str,
        *,
        routes: Sequence[Route | Mapping[str, Any]] | None = None,
        sticky_key: str | _Unset | None = UNSET,
        description: str | None = None,
        config: Mapping[str, Any] | None = None,
        reason: str = "",
        expected_revision: int | None = None,
        project: str | None = None,
    ) -> Deployment:
        """Change the fields given (the others stay; ``sticky_key=None`` turns sticky routing
        off); audited as ``deployment.update`` with the fields before and after.

        Args:
            name: the deployment.
            routes: the new routes, replacing all of them (see :meth:`create_deployment`).
            sticky_key: the new sticky key, or None for none.
            description: the new description. config: the new server settings (replaced).
            reason: why (kept in the audit event).
            expected_revision: change it only if it is still at this revision (read it with
                :meth:`get_deployment`); otherwise nothing changes and Conflict is raised.
            project: the project (default: the client's).

        Returns:
            The deployment as stored; its revision is one higher when anything changed.

        Raises:
            DeploymentNotFound: no such deployment.
            Conflict: it is not at ``expected_revision`` (read it again and retry).
            InvalidArgument: a bad field.
        """
        return self.store.update_deployment(
            self._deployment_project_id(project),
            name,
            routes=routes,
            sticky_key=sticky_key,
            description=description,
            config=config,
            actor=_actor(),
            reason=reason,
            expected_revision=expected_revision,
        )

    def delete_deployment(
        self, name: str, reason: str = "", *, project: str | None = None
    ) -> None:
        """Delete a deployment (audited as ``deployment.delete``); its prediction-log segments,
        window profiles and audit trail stay.

        Raises:
            DeploymentNotFound: no such deployment.
        """
        self.store.delete_deployment(
            self._deployment_project_id(project), name, actor=_actor(), reason=reason
        )

    # --- prediction-log segments ---------------------------------------------------------------

    def log_prediction_segment(
        self,
        deployment: str,
        *,
        start_time: int,
        end_time: int,
        rows: int,
        uri: str,
        digest: str = "",
        size_bytes: int = 0,
        routes: Iterable[str] = (),
        model_versions: Iterable[str] = (),
        segment_id: str | None = None,
        project: str | None = None,
    ) -> PredictionSegment:
        """Index a file of logged predictions (written to the artifact store by the caller).

        Writing the same ``segment_id`` again with the same content is a no-op, so a writer
        that retries after a failure passes the id of its first attempt.

        Args:
            deployment: the deployment's name (it need not exist).
            start_time, end_time: the earliest and latest prediction in the file (ms since
                the epoch); at most 24 hours apart.
            rows: how many predictions the file holds.
            uri: where the file is.
            digest: its sha256 (hex). size_bytes: its size.
            routes: the routes present. model_versions: the versions present (``"churn/3"``).
            segment_id: the id (32 hex characters); a new one when None.
            project: the project (default: the client's; created when missing).

        Returns:
            The segment written.

        Raises:
            Conflict: ``segment_id`` is stored with other content.
            InvalidArgument: a bad field.
        """
        segment = PredictionSegment(
            id=uuid.uuid4().hex if segment_id is None else segment_id,
            project_id=self._deployment_project_id(project, create=True),
            deployment=deployment,
            start_time=start_time,
            end_time=end_time,
            rows=rows,
            uri=uri,
            digest=digest,
            size_bytes=size_bytes,
            routes=_as_set(routes),
            model_versions=_as_set(model_versions),
            created_at=now_ms(),
        )
        self.store.add_prediction_segment(segment)
        return segment

    def list_prediction_segments(
        self,
        deployment: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
        project: str | None = None,
    ) -> list[PredictionSegment]:
        """The segments of a deployment that overlap ``[start, end]`` (ms, both included;
        None leaves a side open), by start time; at most ``limit``, the earliest."""
        return self.store.list_prediction_segments(
            self._deployment_project_id(project), deployment, start=start, end=end, limit=limit
        )

    # --- window profiles -----------------------------------------------------------------------

    def add_window_profile(
        self,
        deployment: str,
        *,
        route: str,
        model_version: str,
        window_start: int,
        window_seconds: int,
        rows: int,
        profile: Mapping[str, Any] | Any,
        profile_id: str | None = None,
        project: str | None = None,
    ) -> WindowProfile:
        """Store a profile fragment of the inputs and outputs one route saw in one window.

        Args:
            deployment: the deployment's name (it need not exist).
            route: the route's name. model_version: the version it served (``"churn/3"``).
            window_start: the window's start (ms), a multiple of ``window_seconds`` * 1000.
            window_seconds: the window's length.
            rows: how many predictions the profile covers.
            profile: the profile: a JSON-ready dict, or an object with ``to_dict()`` (such
                as a dataset profile).
            profile_id: the id (32 hex characters); a new one when None. Writing an id again
                with the same content is a no-op.
            project: the project (default: the client's; created when missing).

        Returns:
            The window profile written (with a copy of ``profile``).

        Raises:
            Conflict: ``profile_id`` is stored with other content.
            InvalidArgument: a bad field, or a window start that is not aligned.
        """
        if not isinstance(profile, Mapping) and callable(getattr(profile, "to_dict", None)):
            profile = profile.to_dict()
        window = WindowProfile(
            id=uuid.uuid4().hex if profile_id is None else profile_id,
            project_id=self._deployment_project_id(project, create=True),
            deployment=deployment,
            route=route,
            model_version=model_version,
            window_start=window_start,
            window_seconds=window_seconds,
            rows=rows,
            profile=profile,
            created_at=now_ms(),
        )
        self.store.add_window_profile(window)
        return replace(window, profile=copy.deepcopy(dict(window.profile)))

    def list_window_profiles(
        self,
        deployment: str,
        *,
        start: int | None = None,
        end: int | None = None,
        route: str | None = None,
        model_version: str | None = None,
        window_seconds: int | None = None,
        project: str | None = None,
    ) -> list[WindowProfile]:
        """The window profiles of a deployment with ``window_start`` in ``[start, end)`` (ms;
        None leaves a side open), optionally of one route, model version or window length
        (``window_seconds``); by window start, then route."""
        return self.store.list_window_profiles(
            self._deployment_project_id(project),
            deployment,
            start=start,
            end=end,
            route=route,
            model_version=model_version,
            window_seconds=window_seconds,
        )

    # --- traffic windows -----------------------------------------------------------------------

    def log_traffic_window(
        self,
        deployment: str,
        *,
        route: str,
        model_version: str,
        window_start: int,
        window_seconds: int,
        requests: int,
        client_errors: int = 0,
        server_errors: int = 0,
        window_id: str | None = None,
        project: str | None = None,
    ) -> TrafficWindow:
        """Store how many requests one server process answered for one route in one window,
        and how many failed (serving does this for every window; see
        :class:`~loopml.entities.TrafficWindow`).

        Args:
            deployment: the deployment's name (it need not exist).
            route, model_version: the route and the version it served (``"churn/3"``); both
                ``""`` for requests refused before a route was chosen.
            window_start: the window's start (ms), a multiple of ``window_seconds`` * 1000.
            window_seconds: the window's length.
            requests: the requests answered; ``client_errors`` (4xx) and ``server_errors``
                (5xx) are among them.
            window_id: the id (32 hex characters); a new one when None. Writing an id again
                with the same content is a no-op.
            project: the project (default: the client's; created when missing).

        Raises:
            Conflict: ``window_id`` is stored with other content.
            InvalidArgument: a bad field, a window start that is not aligned, or more errors
                than requests.
        """
        window = TrafficWindow(
            id=uuid.uuid4().hex if window_id is None else window_id,
            project_id=self._deployment_project_id(project, create=True),
            deployment=deployment,
            route=route,
            model_version=model_version,
            window_start=window_start,
            window_seconds=window_seconds,
            requests=requests,
            client_errors=client_errors,
            server_errors=server_errors,
            created_at=now_ms(),
        )
        self.store.add_traffic_window(window)
        return window

    def list_traffic_windows(
        self,
        deployment: str,
        *,
        start: int | None = None,
        end: int | None = None,
        route: str | None = None,
        limit: int | None = None,
        project: str | None = None,
    ) -> list[TrafficWindow]:
        """The traffic windows of a deployment with ``window_start`` in ``[start, end)`` (ms;
        None leaves a side open), optionally of one route; by window start, then route; at
        most ``limit``, the latest. One window of a route may come in several fragments (one
        per server process): :func:`loopml.serving.traffic.merge_windows` adds them up."""
        return self.store.list_traffic_windows(
            self._deployment_project_id(project),
            deployment,
            start=start,
            end=end,
            route=route,
            limit=limit,
        )
