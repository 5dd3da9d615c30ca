"""Datasets: versioned by content, checked against their data contract and for quality, profiled.

The data layer sits beside tracking: it logs dataset versions to the metadata and artifact stores
through :class:`loopml.Client`, and builds on :mod:`loopml.schema` (data contracts) and
:mod:`loopml.stats` (mergeable profiles and drift statistics).
"""

from __future__ import annotations

__all__: list[str] = []
