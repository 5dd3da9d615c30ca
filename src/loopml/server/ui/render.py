"""What every page shares: the Jinja environment, the caller, access checks and error pages.

Templates autoescape everything: run names, params, tags, artifact paths and descriptions are
written by anyone who can log, so no page ever marks a stored string safe. Page handlers are
plain functions wrapped by :func:`page`, which turns the store's errors into a 404 or 400 page
and an unauthenticated caller into a redirect to the sign-in page.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from loopml.entities import Project
from loopml.errors import LoopError, PermissionDenied, Unauthenticated
from loopml.server.api import principal_of
from loopml.server.principal import Permission, Principal

__all__ = ["Ctx", "error_page", "page", "render", "url"]

_TEMPLATES = Path(__file__).parent / "templates"
P = ParamSpec("P")


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def url(base: str, /, **query: object) -> str:
    """A path with its query, dropping empty values (values are percent-encoded)."""
    kept = {k: str(v) for k, v in query.items() if v not in (None, "")}
    return base + ("?" + urlencode(kept) if kept else "")


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=True,  # every template, whatever its suffix
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["when"] = _when
_ENV.filters["num"] = _num
_ENV.filters["q"] = lambda s: quote(str(s), safe="")
_ENV.globals["url"] = url


class Ctx:
    """One page request: the store, the caller and the access checks."""

    def __init__(self, request: Request) -> None:
        self.request = request
        state = request.app.state
        self.store = state.store
        self.artifacts = state.artifacts
        self.gate = state.gate
        self.principal: Principal = principal_of(request)

    def check(self, permission: Permission, project_id: str) -> None:
        """Raise PermissionDenied unless the caller may ``permission`` on the project."""
        self.gate.check(self.principal, permission, [project_id])

    def may(self, permission: Permission, project_id: str) -> bool:
        try:
            self.check(permission, project_id)
        except PermissionDenied:
            return False
        return True

    def project(self, name_or_id: str, permission: Permission = "read") -> Project:
        """The project named in the URL, after checking the caller may read it."""
        project: Project = self.store.get_project(name_or_id)
        self.check(permission, project.project_id)
        return project


def render(ctx: Ctx | None, template: str, code: int = 200, **values: Any) -> HTMLResponse:
    """A page from ``template``; the caller and the page's own values are in its context."""
    text = _ENV.get_template(template).render(
        principal=None if ctx is None else ctx.principal, **values
    )
    return HTMLResponse(text, status_code=code, headers={"Cache-Control": "no-store"})


def error_page(status: int, title: str, message: str) -> HTMLResponse:
    return render(None, "error.html", status, title=title, message=message, status=status)


_TITLES: Mapping[int, str] = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
}


def page(handler: Callable[P, Response]) -> Callable[P, Response]:
    """Wrap a page handler: store errors become error pages, a missing sign-in a redirect."""

    @functools.wraps(handler)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return handler(*args, **kwargs)
        except Unauthenticated:
            request = kwargs.get("request")
            target = "/"
            if isinstance(request, Request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(url("/login", next=target), status_code=303)
        except LoopError as exc:
            status = exc.http_status if exc.http_status < 500 else 500
            return error_page(status, _TITLES.get(status, "Error"), str(exc))

    return wrapped
