"""Users, API tokens and roles (a placeholder the authentication work replaces)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["build_auth_router"]


def build_auth_router() -> APIRouter:
    """Sign-in and the user, token and role routes."""
    return APIRouter()
