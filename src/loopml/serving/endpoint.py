"""An endpoint's routes at run time: which model answers a request, and switching versions
without failing a request.

Each route holds a :class:`RouteState` (its model runtime and batcher), an immutable pair: a
request keeps the state it picked until it is answered. A switch (an alias moved, the
deployment changed) loads the new version off the event loop, swaps in a new state in one
assignment, and lets the old one drain its queue before it is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loopml.entities import Deployment, Route, RouteRole
from loopml.serving.batcher import Batcher, BatchPolicy
from loopml.serving.runtime import ModelRuntime

if TYPE_CHECKING:
    from loopml.serving.metrics import ServingMetrics

__all__ = ["Endpoint", "RouteState"]

_log = logging.getLogger("loopml.serving")


@dataclass(frozen=True, slots=True)
class RouteState:
    """A route with its loaded model: what a request uses from start to answer."""

    route: Route
    runtime: ModelRuntime
    batcher: Batcher

    @property
    def name(self) -> str:
        """The route's name."""
        return self.route.name

    @property
    def role(self) -> RouteRole:
        """The route's role."""
        return self.route.role


def _fraction(key: str, salt: str = "") -> float:
    """A stable number in [0, 1) for a sticky key."""
    return zlib.crc32(f"{salt}\x00{key}".encode()) / 2**32


class Endpoint:
    """The routes of one endpoint.

    Args:
        name: the endpoint (deployment) name.
        states: the loaded routes (exactly one primary).
        sticky_key: the request field whose value pins a caller to a route, or None.
        revision: the deployment revision these routes come from (0: not stored).
    """

    def __init__(
        self,
        name: str,
        states: Sequence[RouteState],
        *,
        sticky_key: str | None = None,
        revision: int = 0,
    ) -> None:
        self.name = name
        self.sticky_key = sticky_key
        self.revision = revision
        self._set(states)

    def _set(self, states: Sequence[RouteState]) -> None:
        primaries = [s for s in states if s.role == RouteRole.PRIMARY]
        if len(primaries) != 1:
            raise ValueError("an endpoint needs exactly one primary route")
        self.states = tuple(states)
        self.primary = primaries[0]
        self.canaries = tuple(s for s in states if s.role == RouteRole.CANARY)
        self.shadows = tuple(s for s in states if s.role == RouteRole.SHADOW)

    def pick(self, key: str | None) -> RouteState:
        """The route that answers a request: a canary for its share of traffic (the same
        route every time for one sticky key), else the primary."""
        if not self.canaries:
            return self.primary
        u = _fraction(key) if key is not None else random.random()  # noqa: S311 - not crypto
        total = 0.0
        for state in self.canaries:
            total += state.route.weight
            if u < total:
                return state
        return self.primary

    def shadow_targets(self, key: str | None) -> list[RouteState]:
        """The shadows that get a copy of this request."""
        out = []
        for state in self.shadows:
            w = state.route.weight
            u = _fraction(key, state.name) if key is not None else random.random()  # noqa: S311
            if w >= 1.0 or u < w:
                out.append(state)
        return out

    def find(self, model: str, version: str | None) -> RouteState | None:
        """The answering route (primary or canary) serving a model name (or the endpoint's
        name) at a version (None: whichever the routing picks, so None here)."""
        for state in (self.primary, *self.canaries):
            rt = state.runtime
            if model not in (rt.name, self.name):
                continue
            if version is None or version == (
                str(rt.version) if rt.version is not None else "local"
            ):
                return state
        return None

    def names(self) -> set[str]:
        """Model names this endpoint answers to (the endpoint's and each route's model)."""
        return {self.name, *(s.runtime.name for s in self.states)}

    def versions(self, model: str) -> list[str]:
        """Versions of a model loaded on answering routes, as strings."""
        out = []
        for s in (self.primary, *self.canaries):
            if model in (s.runtime.name, self.name):
                out.append(str(s.runtime.version) if s.runtime.version is not None else "local")
        return sorted(set(out))

    def replace(self, old: RouteState, new: RouteState) -> None:
        """Swap one route's state (one assignment: a request sees the old or the new)."""
        self._set([new if s is old else s for s in self.states])

    def reset(
        self, states: Sequence[RouteState], *, sticky_key: str | None, revision: int
    ) -> None:
        """Take a new set of routes (a changed deployment)."""
        self.sticky_key = sticky_key
        self.revision = revision
        self._set(states)


def make_state(
    route: Route,
    runtime: ModelRuntime,
    policy: BatchPolicy,
    metrics: ServingMetrics | None,
) -> RouteState:
    """A route state with its own batcher."""
    observe: Callable[[int], None] | None = None
    if metrics is not None:
        label = runtime.label

        def observe(rows: int) -> None:
            metrics.batch(route.name, label, rows)

    return RouteState(route, runtime, Batcher(runtime, policy, observe))


async def drain(state: RouteState, seconds: float) -> None:
    """Wait (up to ``seconds``) until a switched-out route has answered what it queued."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while state.batcher.pending and loop.time() < deadline:
        await asyncio.sleep(0.01)
    if state.batcher.pending:
        _log.warning(
            "route %s (%s) still had %d requests after %g s of draining",
            state.name,
            state.runtime.label,
            state.batcher.pending,
            seconds,
        )


def routes_of(deployment: Deployment) -> tuple[Route, ...]:
    """A deployment's routes, primary first."""
    return tuple(sorted(deployment.routes, key=lambda r: r.role != RouteRole.PRIMARY))
