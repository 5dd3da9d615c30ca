"""The deployment side of a cycle: add the challenger's route, promote it, or remove it.

Every change is a compare-and-set update of the stored deployment (retried when someone else
changed it meanwhile) and is idempotent: a loop restarted half-way through repeats it safely.
Running ``loopml serve --deployment`` servers pick the change up at their next poll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml.client.registry import parse_model_uri
from loopml.entities import Deployment, Route, RouteRole
from loopml.errors import Conflict, ModelNotFound

if TYPE_CHECKING:
    from collections.abc import Callable

    from loopml.client import Client
    from loopml.loop.policy import Policy

__all__ = ["add_route", "promote_route", "remove_route", "route_of"]

_TRIES = 5


def _update(
    client: Client,
    policy: Policy,
    change: Callable[[Deployment], tuple[Route, ...] | None],
    reason: str,
) -> Deployment:
    """Apply ``change`` (the new routes, or None: nothing to do) with compare-and-set."""
    for attempt in range(_TRIES):
        dep = client.get_deployment(policy.deployment, project=policy.project)
        routes = change(dep)
        if routes is None:
            return dep
        try:
            return client.update_deployment(
                policy.deployment,
                routes=routes,
                reason=reason,
                expected_revision=dep.revision,
                project=policy.project,
            )
        except Conflict:
            if attempt == _TRIES - 1:
                raise
    raise AssertionError("unreachable")


def route_of(dep: Deployment, name: str) -> Route | None:
    """The deployment's route called ``name``, or None."""
    return next((r for r in dep.routes if r.name == name), None)


def add_route(client: Client, policy: Policy, version: int, reason: str) -> Deployment:
    """Put ``version`` on the policy's rollout route (a canary at its weight, or a shadow),
    replacing what that route served."""
    r = policy.rollout
    role = RouteRole.CANARY if r.strategy == "canary" else RouteRole.SHADOW
    wanted = Route(r.route, f"models:/{policy.model}/{version}", role, r.share)

    def change(dep: Deployment) -> tuple[Route, ...] | None:
        current = route_of(dep, r.route)
        if current == wanted:
            return None
        others = [x for x in dep.routes if x.name != r.route]
        if role == RouteRole.CANARY:  # the canaries' weights must leave room for ours
            total = sum(x.weight for x in others if x.role == RouteRole.CANARY)
            if total + wanted.weight > 1 + 1e-9:
                others = [x for x in others if x.role != RouteRole.CANARY]
        return (*others, wanted)

    return _update(client, policy, change, reason)


def remove_route(client: Client, policy: Policy, reason: str) -> Deployment:
    """Remove the policy's rollout route (no change when it is gone already)."""
    name = policy.rollout.route

    def change(dep: Deployment) -> tuple[Route, ...] | None:
        if route_of(dep, name) is None:
            return None
        return tuple(x for x in dep.routes if x.name != name)

    return _update(client, policy, change, reason)


def promote_route(client: Client, policy: Policy, version: int, reason: str) -> str:
    """Make ``version`` the champion: move the champion alias to it, make the deployment's
    primary serve it (when the primary follows the champion alias, moving the alias does it;
    otherwise the primary is pinned to the version), and remove the rollout route.

    Returns:
        What moved, in one sentence.
    """
    name, alias = policy.model, policy.champion_alias
    try:
        current = client.get_model_version_by_alias(name, alias, project=policy.project)
    except ModelNotFound:  # no champion yet
        current = None
    moved = []
    if current is None or current.version != version:
        client.set_model_alias(name, alias, version, reason, project=policy.project)
        moved.append(f"{name}@{alias} -> version {version}")
    follows = f"models:/{name}@{alias}"

    def change(dep: Deployment) -> tuple[Route, ...] | None:
        primary = dep.primary
        p_name, p_version, p_alias, _ = parse_model_uri(primary.model_uri)
        routes = [x for x in dep.routes if x.name != policy.rollout.route]
        if not (p_name == name and p_alias == alias) and not (
            p_name == name and p_version == version
        ):
            pinned = Route(primary.name, f"models:/{name}/{version}", RouteRole.PRIMARY)
            routes = [pinned if x.role == RouteRole.PRIMARY else x for x in routes]
            moved.append(f"primary of {policy.deployment} pinned to models:/{name}/{version}")
        if len(routes) == len(dep.routes) and routes == list(dep.routes):
            return None
        return tuple(routes)

    dep = _update(client, policy, change, reason)
    if dep.primary.model_uri == follows and not any("primary" in m for m in moved):
        moved.append(f"the primary of {policy.deployment} follows {follows}")
    return "; ".join(moved) or f"version {version} was already the champion"
