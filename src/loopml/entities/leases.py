"""Named leases, for leader election among server replicas."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    """A named lease: at most one ``holder`` at a time, until ``expires_at`` (for leader
    election among server replicas). Times are milliseconds since the epoch on the store's
    clock (the database server's on PostgreSQL), so that holders with skewed clocks agree.
    ``acquired_at`` is when the holder took the lease; renewing it moves only ``expires_at``."""

    name: str
    holder: str
    acquired_at: int
    expires_at: int
