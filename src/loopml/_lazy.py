"""Lazy imports for optional, heavy dependencies, with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from loopml.errors import MissingExtra

__all__ = ["require"]


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` saying ``pip install 'loopml[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{purpose} needs the {module.split('.')[0]!r} package, which is not installed; "
            f"install it with: pip install 'loopml[{extra}]'"
        ) from exc
