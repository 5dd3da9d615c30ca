"""Serving: deployments and their routes, the index of prediction-log segments, window
profiles and traffic windows."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loopml.entities._common import _EMPTY


class RouteRole(enum.StrEnum):
    """What a route of a deployment does with requests: ``primary`` answers what the canaries
    leave, ``canary`` answers a share of live traffic, ``shadow`` gets a copy of a share of the
    traffic and its answers are logged, never returned."""

    PRIMARY = "primary"
    CANARY = "canary"
    SHADOW = "shadow"


# The default of Route.weight: a private NaN object, told apart from a NaN the caller passes by
# identity, so that a shadow route without a weight mirrors everything (1.0) while an explicit
# NaN still reaches the store's validation and is refused there.
_ROLE_DEFAULT_WEIGHT = float("nan")


@dataclass(frozen=True, slots=True)
class Route:
    """One route of a :class:`Deployment`: a model (by ``models:/`` URI) in a role.

    ``weight`` depends on the role: a ``primary`` route ignores it (it gets the traffic the
    canaries leave; stored as 0.0), a ``canary`` answers that share of live traffic (in [0, 1],
    default 0.0), a ``shadow`` is sent a copy of that share (default 1.0, all of it). ``role``
    may be given as its string (``"canary"``). Stores validate routes (names, URI, weights).
    """

    name: str
    model_uri: str
    role: RouteRole
    weight: float = _ROLE_DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        role: object = self.role  # a string is accepted for convenience; stores check the rest
        if isinstance(role, str) and not isinstance(role, RouteRole):
            if role in RouteRole._value2member_map_:
                object.__setattr__(self, "role", RouteRole(role))
        if self.weight is _ROLE_DEFAULT_WEIGHT:
            object.__setattr__(self, "weight", 1.0 if self.role == RouteRole.SHADOW else 0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``name``, ``model_uri``, ``role`` (its string), ``weight``."""
        return {
            "name": self.name,
            "model_uri": self.model_uri,
            "role": str(self.role),
            "weight": self.weight,
        }


@dataclass(frozen=True, slots=True)
class Deployment:
    """A named endpoint of a project serving models through its :class:`Route` s: exactly one
    ``primary``, any number of ``canary`` and ``shadow`` routes (at most 16 in all).

    ``sticky_key`` names the request field or header whose value pins a caller to one route
    (None: each request is routed on its own). ``config`` holds the server's settings
    (batching, limits), a JSON-ready dict, fresh on every read: treat it as read-only.
    ``revision`` is 1 when created and grows by one with every update; pass it back as
    ``expected_revision`` to update only if nobody changed the deployment meanwhile.
    """

    project_id: str
    name: str
    routes: tuple[Route, ...]
    sticky_key: str | None = None
    description: str = ""
    config: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    revision: int = 1
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""
    updated_by: str = ""

    @property
    def primary(self) -> Route:
        """The ``primary`` route (stores guarantee there is exactly one)."""
        for route in self.routes:
            if route.role == RouteRole.PRIMARY:
                return route
        raise LookupError(f"deployment {self.name!r} has no primary route")

    @property
    def canaries(self) -> tuple[Route, ...]:
        """The ``canary`` routes, in the order given."""
        return tuple(r for r in self.routes if r.role == RouteRole.CANARY)

    @property
    def shadows(self) -> tuple[Route, ...]:
        """The ``shadow`` routes, in the order given."""
        return tuple(r for r in self.routes if r.role == RouteRole.SHADOW)

    def route(self, name: str) -> Route:
        """The route called ``name``.

        Raises:
            KeyError: the deployment has no such route (the message lists those it has).
        """
        for route in self.routes:
            if route.name == name:
                return route
        known = ", ".join(repr(r.name) for r in self.routes)
        raise KeyError(f"deployment {self.name!r} has no route {name!r}; its routes are {known}")


@dataclass(frozen=True, slots=True)
class PredictionSegment:
    """One Parquet file of logged predictions of a deployment, kept in the artifact store.

    The store indexes segments by time so that a monitor finds the files of a window without
    listing the artifact store: ``start_time`` and ``end_time`` (ms) are the earliest and latest
    prediction in the file, ``uri`` where it is (as the writer gave it), ``digest`` the sha256
    of the file, ``routes`` and ``model_versions`` (``"churn/3"``) which of them it holds.
    Segments are immutable and outlive their deployment.
    """

    id: str
    project_id: str
    deployment: str
    start_time: int
    end_time: int
    rows: int
    uri: str
    digest: str = ""
    size_bytes: int = 0
    routes: tuple[str, ...] = ()
    model_versions: tuple[str, ...] = ()
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class WindowProfile:
    """A mergeable profile of the inputs and outputs one route of a deployment saw in one time
    window: the sketches drift and data-quality monitors compare with a reference.

    ``window_start`` (ms) is aligned to ``window_seconds``; ``model_version`` is like
    ``"churn/3"``; ``profile`` is the profile's JSON form (the store does not look inside it),
    fresh on every read: treat it as read-only. Profiles are append-only and outlive their
    deployment; several fragments of one window (from several servers) merge on read.
    """

    id: str
    project_id: str
    deployment: str
    route: str
    model_version: str
    window_start: int
    window_seconds: int
    rows: int
    profile: Mapping[str, Any]
    created_at: int = 0


@dataclass(frozen=True, slots=True)
class TrafficWindow:
    """How many requests one server process answered for one route of a deployment in one
    time window, and how many of them failed: what the deployment page charts as traffic and
    error rate.

    ``window_start`` (ms) is aligned to ``window_seconds``; ``route`` and ``model_version``
    (``"churn/3"``) are empty for requests refused before a route was chosen (a body that is
    not JSON, too large...). ``requests`` counts every answer, ``client_errors`` those with a
    4xx status and ``server_errors`` those with a 5xx status (a model that raised, an
    overloaded queue). Windows are append-only and outlive their deployment; the fragments of
    one window and route (one per server process) add up on read.
    """

    id: str
    project_id: str
    deployment: str
    route: str
    model_version: str
    window_start: int
    window_seconds: int
    requests: int
    client_errors: int = 0
    server_errors: int = 0
    created_at: int = 0
