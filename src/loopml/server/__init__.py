"""``loopml server``: the team server. One REST API (``/api/v1``, with an OpenAPI document) over
the metadata and artifact stores, sign-in with users, API tokens and per-project roles, an
audit trail, and the web UI. :func:`create_app` builds the ASGI application."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.server.app import create_app as create_app
    from loopml.server.settings import ServerSettings as ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from loopml.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from loopml.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'loopml.server' has no attribute {name!r}")
