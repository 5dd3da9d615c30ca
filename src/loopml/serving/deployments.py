"""Rollouts without Kubernetes: change a stored deployment's traffic, promote its canary, roll
it back. Every change is a compare-and-set update of the :class:`~loopml.entities.Deployment`
(audited with its reason); running servers pick it up at their next poll.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from loopml.client.registry import parse_model_uri
from loopml.entities import Deployment, Route, RouteRole
from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.serving.config import DeploymentFile

__all__ = ["apply_file", "promote_canary", "rollback", "set_traffic"]


def apply_file(
    client: Client, spec: DeploymentFile, *, reason: str = "", project: str | None = None
) -> tuple[Deployment, str]:
    """Create the deployment a file describes, or update the stored one to match it.

    Returns:
        ``(deployment, what)``: what is ``created``, ``updated`` or ``unchanged``.
    """
    from loopml.errors import DeploymentNotFound

    project = project or spec.project
    routes = spec.routes_()
    try:
        current = client.get_deployment(spec.name, project=project)
    except DeploymentNotFound:
        dep = client.create_deployment(
            spec.name,
            routes,
            sticky_key=spec.sticky_key,
            description=spec.description,
            config=spec.server,
            project=project,
        )
        return dep, "created"
    same = (
        tuple(r.to_dict() for r in current.routes) == tuple(r.to_dict() for r in routes)
        and current.sticky_key == spec.sticky_key
        and dict(current.config) == spec.server
        and current.description == spec.description
    )
    if same:
        return current, "unchanged"
    dep = client.update_deployment(
        spec.name,
        routes=routes,
        sticky_key=spec.sticky_key,
        description=spec.description,
        config=spec.server,
        reason=reason or "applied a deployment file",
        expected_revision=current.revision,
        project=project,
    )
    return dep, "updated"


def set_traffic(
    client: Client,
    name: str,
    weights: Mapping[str, float],
    *,
    models: Mapping[str, str] | None = None,
    role: RouteRole = RouteRole.CANARY,
    reason: str = "",
    project: str | None = None,
) -> Deployment:
    """Set the traffic share of canary and shadow routes (``{"canary": 0.1}``); a route named
    in ``models`` that does not exist yet is added with that model URI and ``role``; a weight of
    0 keeps the route (idle), :func:`rollback` removes canaries.

    Raises:
        DeploymentNotFound: no such deployment.
        InvalidArgument: an unknown route without a model, the primary, or a bad weight.
        Conflict: the deployment changed meanwhile (read it again and retry).
    """
    dep = client.get_deployment(name, project=project)
    models = dict(models or {})
    routes = {r.name: r for r in dep.routes}
    for route_name, weight in weights.items():
        if (
            not isinstance(weight, int | float)
            or not math.isfinite(weight)
            or not 0 <= weight <= 1
        ):
            raise InvalidArgument(
                f"the weight of {route_name!r} must be in [0, 1], not {weight!r}"
            )
        current = routes.get(route_name)
        if current is None:
            uri = models.pop(route_name, None)
            if uri is None:
                raise InvalidArgument(
                    f"deployment {name!r} has no route {route_name!r} (routes: "
                    f"{sorted(routes)}); add it with its model: --model {route_name}=models:/..."
                )
            parse_model_uri(uri)
            routes[route_name] = Route(route_name, uri, role, float(weight))
            continue
        if current.role == RouteRole.PRIMARY:
            raise InvalidArgument(
                f"{route_name!r} is the primary: it gets the traffic the canaries leave; set the "
                "canaries' weights instead"
            )
        uri = models.pop(route_name, current.model_uri)
        routes[route_name] = Route(route_name, uri, current.role, float(weight))
    if models:
        raise InvalidArgument(f"--model names routes without a weight: {sorted(models)}")
    canary_total = sum(r.weight for r in routes.values() if r.role == RouteRole.CANARY)
    if canary_total > 1 + 1e-9:
        raise InvalidArgument(
            f"canary weights add up to {canary_total:g}, over 1; lower some of them"
        )
    changes = ", ".join(f"{k}={v:g}" for k, v in weights.items())
    return client.update_deployment(
        name,
        routes=tuple(routes.values()),
        reason=reason or f"traffic set: {changes}",
        expected_revision=dep.revision,
        project=project,
    )


def promote_canary(
    client: Client,
    name: str,
    *,
    route: str | None = None,
    reason: str = "",
    project: str | None = None,
) -> tuple[Deployment, str]:
    """Make the canary's model version the primary's, then remove the canary route.

    When the primary follows an alias of the same model (``models:/churn@champion``), the alias
    moves to the canary's version (an audited ``alias.set``), so everything following that
    alias switches; otherwise the primary is pinned to the canary's version.

    Returns:
        ``(deployment, what)``: the updated deployment and a sentence saying what moved.

    Raises:
        InvalidArgument: no canary (or several and ``route`` not given).
        Conflict: the deployment or the alias moved meanwhile.
    """
    dep = client.get_deployment(name, project=project)
    canaries = [r for r in dep.routes if r.role == RouteRole.CANARY]
    if route is not None:
        canaries = [r for r in canaries if r.name == route]
    if len(canaries) != 1:
        names = [r.name for r in dep.routes if r.role == RouteRole.CANARY]
        raise InvalidArgument(
            f"deployment {name!r} has canaries {names}; name the one to promote with --route"
            if names
            else f"deployment {name!r} has no canary route to promote"
        )
    canary = canaries[0]
    target = client.resolve_model_uri(canary.model_uri, project=project)
    primary = dep.primary
    why = reason or f"promoted canary {canary.name} ({target.name}/{target.version}) of {name}"
    p_name, _, p_alias, _ = parse_model_uri(primary.model_uri)
    new_primary = primary
    if p_alias is not None and p_name == target.name:
        client.set_model_alias(p_name, p_alias, target.version, why, project=project)
        what = f"alias {p_name}@{p_alias} -> version {target.version}"
    else:
        new_primary = Route(primary.name, target.uri, RouteRole.PRIMARY)
        what = f"primary pinned to {target.uri}"
    routes = tuple(
        new_primary if r.role == RouteRole.PRIMARY else r for r in dep.routes if r is not canary
    )
    updated = client.update_deployment(
        name, routes=routes, reason=why, expected_revision=dep.revision, project=project
    )
    return updated, what


def rollback(
    client: Client, name: str, *, reason: str = "", project: str | None = None
) -> tuple[Deployment, str]:
    """Undo a rollout: remove the canary routes when there are any (all traffic back to the
    primary); otherwise move the primary's alias back to its previous version.

    Returns:
        ``(deployment, what)``.

    Raises:
        InvalidArgument: no canary, and the primary pins a version (nothing to roll back).
        Conflict: the deployment or the alias moved meanwhile.
    """
    dep = client.get_deployment(name, project=project)
    canaries = [r for r in dep.routes if r.role == RouteRole.CANARY]
    if canaries:
        why = reason or f"rolled back: canaries {[r.name for r in canaries]} removed"
        routes = tuple(r for r in dep.routes if r.role != RouteRole.CANARY)
        updated = client.update_deployment(
            name, routes=routes, reason=why, expected_revision=dep.revision, project=project
        )
        return updated, f"removed canaries {', '.join(r.name for r in canaries)}"
    p_name, _, p_alias, _ = parse_model_uri(dep.primary.model_uri)
    if p_alias is None:
        raise InvalidArgument(
            f"deployment {name!r} has no canary, and its primary pins {dep.primary.model_uri}; "
            "point it at another version with `loopml deployments apply`"
        )
    event = client.rollback_alias(
        p_name, p_alias, reason=reason or f"rolled back {name}", project=project
    )
    return dep, f"alias {p_name}@{p_alias} -> version {event.details.get('version')}"
