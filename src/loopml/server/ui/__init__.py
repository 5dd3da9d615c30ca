"""The web UI of ``loopml server`` (a placeholder the UI work replaces)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["build_ui_router"]


def build_ui_router() -> APIRouter:
    """The web UI's routes."""
    return APIRouter()
