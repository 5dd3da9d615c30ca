"""The web UI of ``loopml server``: server-rendered pages over the store, plain JavaScript.

Pages are Jinja2 templates (autoescaped) rendered from the server's store, with the same gate
as the REST API deciding what a caller may read and change; charts are plotly.js, served from
the installed ``plotly`` package, fed by small JSON routes under ``/ui/api`` that downsample on
the server. There is no build step: the scripts are static files, and the pages run no inline
script, so the server's Content-Security-Policy forbids every other script.
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["build_ui_router"]


def build_ui_router() -> APIRouter:
    """The web UI's routes: the pages, their JSON and their static files."""
    from loopml.server.ui.data import build_data_router
    from loopml.server.ui.pages_ops import build_ops_router
    from loopml.server.ui.pages_registry import build_registry_router
    from loopml.server.ui.pages_runs import build_runs_router

    router = APIRouter(include_in_schema=False)
    router.include_router(build_runs_router())
    router.include_router(build_registry_router())
    router.include_router(build_ops_router())
    router.include_router(build_data_router())
    return router
