"""The lease methods of :class:`~loopml.store.memory.InMemoryStore`: a dict behind the store's
lock, on the process clock."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from loopml.entities import Lease, now_ms

__all__ = ["InMemoryLeaseStore"]


class InMemoryLeaseStore:
    """Leases in process memory (mixed into :class:`~loopml.store.memory.InMemoryStore`; it
    calls :meth:`_init_leases` from its constructor)."""

    if TYPE_CHECKING:
        _lock: threading.RLock

    def _init_leases(self) -> None:
        self._leases: dict[str, Lease] = {}

    def _acquire_lease(self, name: str, holder: str, ttl_ms: int) -> Lease | None:
        with self._lock:
            now = now_ms()
            held = self._leases.get(name)
            if held is not None and held.expires_at > now:
                if held.holder != holder:
                    return None
                lease = replace(held, expires_at=now + ttl_ms)
            else:
                lease = Lease(name, holder, now, now + ttl_ms)
            self._leases[name] = lease
            return lease

    def _release_lease(self, name: str, holder: str) -> None:
        with self._lock:
            held = self._leases.get(name)
            if held is not None and held.holder == holder:
                del self._leases[name]

    def _get_lease(self, name: str) -> Lease | None:
        with self._lock:
            held = self._leases.get(name)
            return held if held is not None and held.expires_at > now_ms() else None
