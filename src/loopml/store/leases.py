"""The leases half of the metadata store contract: named leases for leader election.

:class:`LeaseStore` is an abstract mixin that :class:`~loopml.store.Store` inherits. Replicas of
``loopml server`` on one store use a lease to agree on which of them runs the scheduled work
(monitors, pipeline schedules, the training loop). Public methods validate their arguments and
call protected ``_methods`` that each backend implements.
"""

from __future__ import annotations

import abc
import math

from loopml.entities import Lease
from loopml.errors import InvalidArgument
from loopml.store import validation

__all__ = ["MAX_LEASE_SECONDS", "LeaseStore", "check_ttl"]

#: The longest lease, in seconds (a day): a holder that dies frees its lease within this.
MAX_LEASE_SECONDS = 86_400.0


def check_ttl(value: object) -> int:
    """A lease's time to live in seconds (a positive number up to a day), in milliseconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(
            f"ttl_seconds must be a number, got {type(value).__name__} {value!r:.80}"
        )
    if not math.isfinite(value) or value <= 0 or value > MAX_LEASE_SECONDS:
        raise InvalidArgument(
            f"ttl_seconds must be more than 0 and at most {MAX_LEASE_SECONDS:g}, got {value!r}"
        )
    return max(1, round(value * 1000))


class LeaseStore(abc.ABC):
    """Named leases (mixed into :class:`~loopml.store.Store`).

    Contract, on top of the store-wide one (thread and process safety, immutable entities, one
    transaction per write, validation before storage):

    * **One holder at a time.** A lease is held by at most one holder until it expires. Of many
      concurrent :meth:`acquire_lease` calls on a free lease, by any number of threads, processes
      or replicas, exactly one succeeds; the others get None.
    * **The store's clock.** Expiry is judged by one clock: the database server's on PostgreSQL,
      the process's on SQLite (one machine) and in memory. Holders whose clocks are skewed
      therefore still agree on who holds a lease. ``Lease`` times are milliseconds on that clock.
    * **Renewal.** The holder acquiring its own unexpired lease again renews it: ``expires_at``
      moves to now plus the new time to live, ``acquired_at`` stays. A holder should renew well
      before expiry (a third of the time to live is usual).
    * Leases are server-internal coordination: they belong to no project and are not audited.
    """

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float) -> Lease | None:
        """Take or renew the lease ``name`` for ``holder`` for ``ttl_seconds``.

        The lease is granted when it is free, expired or already held by ``holder`` (which
        renews it).

        Returns:
            The lease as granted, or None when another holder has an unexpired lease.

        Raises:
            InvalidArgument: an empty name or holder, or a time to live that is not a positive
                number of seconds up to a day.
        """
        name = validation.check_name(name, "lease name")
        holder = validation.check_name(holder, "lease holder")
        return self._acquire_lease(name, holder, check_ttl(ttl_seconds))

    def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease ``name`` if ``holder`` holds it (else do nothing), so that another
        holder may take it at once.

        Raises:
            InvalidArgument: an empty name or holder.
        """
        name = validation.check_name(name, "lease name")
        holder = validation.check_name(holder, "lease holder")
        self._release_lease(name, holder)

    def get_lease(self, name: str) -> Lease | None:
        """The unexpired lease ``name``, or None when nobody holds it.

        Raises:
            InvalidArgument: an empty name.
        """
        return self._get_lease(validation.check_name(name, "lease name"))

    @abc.abstractmethod
    def _acquire_lease(self, name: str, holder: str, ttl_ms: int) -> Lease | None: ...

    @abc.abstractmethod
    def _release_lease(self, name: str, holder: str) -> None: ...

    @abc.abstractmethod
    def _get_lease(self, name: str) -> Lease | None: ...
