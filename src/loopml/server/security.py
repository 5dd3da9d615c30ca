"""HTTP hardening of ``loopml server`` (a placeholder the security work replaces)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from loopml.server.settings import ServerSettings

__all__ = ["install"]


def install(app: FastAPI, settings: ServerSettings) -> None:
    """Add the security middleware to ``app``."""
    return None
