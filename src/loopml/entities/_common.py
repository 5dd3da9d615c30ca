"""What every entity module shares: the empty mapping default and the clock."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["now_ms"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
"""The default of the mapping fields: read-only, shared."""


def now_ms() -> int:
    """The current time in integer milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
