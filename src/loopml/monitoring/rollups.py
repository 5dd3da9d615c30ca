"""Daily roll-ups of a deployment's window profiles, so that a check over a month merges 30
profiles rather than the 8,640 five-minute fragments serving wrote.

Once a day has ended (and an hour more, for stragglers), the monitor runner merges that day's
fragments into one profile per route and model version and stores it as a window profile one
day long (``window_seconds = 86400``; serving's own windows are at most an hour, so a day-long
window is always a roll-up). Roll-up ids are derived from what they cover, so writing one again
changes nothing and two runners cannot store two. :func:`window_fragments` reads a window back
from roll-ups for its whole days and from serving's fragments for the rest.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import TYPE_CHECKING

from loopml.errors import Conflict

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import WindowProfile

__all__ = ["DAY_SECONDS", "LAG_MS", "roll_up_days", "window_fragments"]

DAY_SECONDS = 86_400
DAY = DAY_SECONDS * 1000
LAG_MS = 3_600_000
"""How long after a day ends its roll-up waits (fragments still being flushed)."""


def _rollup_id(deployment: str, route: str, version: str, day: int) -> str:
    key = f"{deployment}\x00{route}\x00{version}\x00{day}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


def roll_up_days(
    client: Client,
    deployment: str,
    days: set[int],
    *,
    now: int,
    project: str | None = None,
) -> int:
    """Store the roll-ups of the given days (starts, ms) that have ended; returns how many
    profiles were written (days already rolled up are skipped)."""
    from loopml.monitoring.evaluate import _merge
    from loopml.stats import DatasetProfile

    written = 0
    for day in sorted(d for d in days if d + DAY + LAG_MS <= now):
        existing = client.list_window_profiles(
            deployment, start=day, end=day + 1, window_seconds=DAY_SECONDS, project=project
        )
        if existing:
            continue
        groups: dict[tuple[str, str], list[WindowProfile]] = defaultdict(list)
        for f in client.list_window_profiles(
            deployment, start=day, end=day + DAY, project=project
        ):
            if f.window_seconds < DAY_SECONDS:
                groups[(f.route, f.model_version)].append(f)
        for (route, version), fragments in groups.items():
            merged = _merge([DatasetProfile.from_dict(f.profile) for f in fragments])
            try:
                client.add_window_profile(
                    deployment,
                    route=route,
                    model_version=version,
                    window_start=day,
                    window_seconds=DAY_SECONDS,
                    rows=sum(f.rows for f in fragments),
                    profile=merged,
                    profile_id=_rollup_id(deployment, route, version, day),
                    project=project,
                )
                written += 1
            except Conflict:  # another runner stored it first (from other fragments)
                pass
    return written


def window_fragments(
    client: Client,
    deployment: str,
    start: int,
    end: int,
    *,
    route: str | None = None,
    project: str | None = None,
) -> list[WindowProfile]:
    """The profiles that make up ``[start, end)``: a day's roll-up for every whole day that has
    one, serving's fragments for the rest."""
    rolled = client.list_window_profiles(
        deployment,
        start=start,
        end=end,
        route=route,
        window_seconds=DAY_SECONDS,
        project=project,
    )
    rolled = [r for r in rolled if r.window_start + DAY <= end]
    covered = sorted({r.window_start for r in rolled})
    gaps: list[tuple[int, int]] = []
    at = start
    for day in covered:
        if day > at:
            gaps.append((at, day))
        at = day + DAY
    if at < end:
        gaps.append((at, end))
    out = list(rolled)
    for lo, hi in gaps:
        out.extend(
            f
            for f in client.list_window_profiles(
                deployment, start=lo, end=hi, route=route, project=project
            )
            if f.window_seconds < DAY_SECONDS
        )
    return out
