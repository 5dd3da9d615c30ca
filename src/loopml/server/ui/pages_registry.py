"""Datasets (versions, schema, profile) and models (versions, aliases, gates, promotion).

Promotion moves an alias with :meth:`Store.set_model_alias` (audited, with the version the page
showed as ``expected_version``, so two people promoting at once cannot silently overwrite each
other). The form is shown only to callers the gate lets ``write`` the project, and the POST
checks again. Besides the security middleware's ``Origin`` check, the form carries a
double-submit token: a random value in a ``loopml_csrf`` cookie (``SameSite=Strict``,
``HttpOnly``) that the hidden ``csrf`` field must repeat.
"""

from __future__ import annotations

import hmac
import itertools
import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from loopml.errors import InvalidArgument, LoopError, PermissionDenied
from loopml.server.ui.render import Ctx, page, render, url

__all__ = ["CSRF_COOKIE", "build_registry_router"]

CSRF_COOKIE = "loopml_csrf"
_MAX_HISTOGRAM_CATEGORIES = 20


def csrf_token(request: Request) -> tuple[str, bool]:
    """The caller's form token, and whether it is new (and must be set as the cookie)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) == 43 and token.replace("-", "").replace("_", "").isalnum():
        return token, False
    return secrets.token_urlsafe(32), True


def with_csrf(request: Request, response: Response, token: str, new: bool) -> Response:
    if new:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


def _profile_charts(profile: Any) -> list[dict[str, Any]]:
    """Chart specs (for ``ui.js``) of each column of a DatasetProfile."""
    from loopml.stats.columns import CategoricalProfile, NumericProfile

    charts: list[dict[str, Any]] = []
    for column in profile.columns:
        if isinstance(column, NumericProfile) and column.counts:
            edges = column.edges
            centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
            if len(centers) != len(column.counts):
                centers = list(range(len(column.counts)))
            series = [{"name": column.name, "x": centers, "y": list(column.counts)}]
            charts.append({"title": column.name, "kind": "bar", "time": False, "series": series})
        elif isinstance(column, CategoricalProfile) and column.categories:
            top = column.categories[:_MAX_HISTOGRAM_CATEGORIES]
            series = [
                {"name": column.name, "x": [str(c) for c, _ in top], "y": [n for _, n in top]}
            ]
            charts.append({"title": column.name, "kind": "bar", "time": False, "series": series})
    return charts


def build_registry_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/projects/{project}/datasets")
    @page
    def datasets(request: Request, project: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        return render(
            ctx, "datasets.html", project=proj, datasets=ctx.store.list_datasets(proj.project_id)
        )

    @router.get("/projects/{project}/datasets/{name}")
    @page
    def dataset(request: Request, project: str, name: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        found = ctx.store.get_dataset(proj.project_id, name)
        versions = ctx.store.list_dataset_versions(proj.project_id, name)
        return render(ctx, "dataset.html", project=proj, dataset=found, versions=versions)

    @router.get("/projects/{project}/datasets/{name}/{version}")
    @page
    def dataset_version(request: Request, project: str, name: str, version: int) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        found = ctx.store.get_dataset_version(proj.project_id, name, version)
        profile, charts, profile_error = None, [], ""
        if found.profile_blob:
            from loopml.stats.dataset import DatasetProfile

            try:
                profile = DatasetProfile.from_json(ctx.artifacts.read(found.profile_blob).decode())
                charts = _profile_charts(profile)
            except (LoopError, OSError, ValueError, UnicodeDecodeError) as exc:
                profile_error = f"the profile could not be read: {type(exc).__name__}: {exc}"
        return render(
            ctx,
            "dataset_version.html",
            project=proj,
            version=found,
            profile=profile,
            charts=charts,
            profile_error=profile_error,
            schema_json=json.dumps(found.schema, indent=2, default=str) if found.schema else "",
            metadata_json=json.dumps(found.metadata, indent=2, default=str),
            runs=ctx.store.get_dataset_version_runs(found.id),
        )

    @router.get("/projects/{project}/models")
    @page
    def models(request: Request, project: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        found = ctx.store.list_registered_models(proj.project_id)
        return render(ctx, "models.html", project=proj, models=found)

    @router.get("/projects/{project}/models/{name}")
    @page
    def model(request: Request, project: str, name: str, moved: str = "") -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        registered = ctx.store.get_registered_model(proj.project_id, name)
        versions = ctx.store.list_model_versions(proj.project_id, name)
        history = list(
            ctx.store.search_audit_events(
                proj.project_id, object_type="model", object_name=name, max_results=50
            )
        )
        previous: dict[str, int] = {}
        for alias in registered.aliases:  # an alias's latest move says where it was before
            moves = ctx.store.search_audit_events(
                proj.project_id,
                object_type="alias",
                object_name=f"{name}@{alias}",
                action="alias.set",
                max_results=20,
            )
            history += moves
            before = moves[0].details.get("previous") if moves else None
            if isinstance(before, int):
                previous[alias] = before
        history.sort(key=lambda e: e.timestamp, reverse=True)
        token, new = csrf_token(request)
        response = render(
            ctx,
            "model.html",
            project=proj,
            model=registered,
            versions=versions,
            history=history,
            previous=previous,
            can_write=ctx.may("write", proj.project_id),
            csrf=token,
            moved=moved,
        )
        return with_csrf(request, response, token, new)

    @router.post("/projects/{project}/models/{name}/aliases")
    @page
    def move_alias(
        request: Request,
        project: str,
        name: str,
        alias: Annotated[str, Form(max_length=200)],
        version: Annotated[int, Form()],
        csrf: Annotated[str, Form(max_length=100)] = "",
        expected: Annotated[str, Form(max_length=20)] = "",
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project, "write")
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
            raise PermissionDenied(
                "the form's token does not match this browser's; reload the model page and "
                "submit it again"
            )
        if expected and not expected.isdigit():
            raise InvalidArgument(f"expected must be a version number, got {expected!r}")
        ctx.store.set_model_alias(
            proj.project_id,
            name,
            alias,
            version,
            actor=ctx.principal.name,
            reason=reason,
            expected_version=int(expected) if expected else None,
        )
        target = url(f"/projects/{_q(proj.name)}/models/{_q(name)}", moved=alias)
        return RedirectResponse(target, status_code=303)

    return router


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
