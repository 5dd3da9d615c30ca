"""The leases part of the store conformance suite.

:class:`LeaseSuite` checks the :class:`~loopml.store.leases.LeaseStore` contract: a free lease is
granted, a held one refused to other holders and renewed for its own, release frees it at once,
expiry lets another holder take over, many concurrent takers leave exactly one holder, and
arguments are validated::

    class TestMyStore(StoreSuite, DeploymentSuite, MonitorSuite, LeaseSuite):
        @pytest.fixture
        def store(self): ...
"""

from __future__ import annotations

import functools
import time
from dataclasses import FrozenInstanceError

import pytest

from loopml.entities import Lease, now_ms
from loopml.errors import InvalidArgument
from loopml.store.base import Store
from loopml.testing.store_suite_registry import in_threads

__all__ = ["LeaseSuite"]

LEASE = "loopml.test.leader"
#: A time to live short enough to wait out, long enough for a slow store to renew within.
SHORT_TTL = 0.3


def _wait_past(lease: Lease) -> None:
    """Sleep until ``lease`` has expired on the process clock (plus a margin for the store's)."""
    time.sleep(max(0.0, (lease.expires_at - now_ms()) / 1000) + 0.05)


def _take(store: Store, holders: list[str], i: int) -> Lease | None:
    return store.acquire_lease(LEASE, holders[i], 1.0)


class LeaseSuite:
    """Tests of leases; needs a ``store`` fixture."""

    def test_a_free_lease_is_granted(self, store: Store) -> None:
        assert store.get_lease(LEASE) is None
        before = now_ms()
        lease = store.acquire_lease(LEASE, "a", 30)
        assert lease is not None
        assert (lease.name, lease.holder) == (LEASE, "a")
        assert lease.expires_at - lease.acquired_at == 30_000
        assert abs(lease.acquired_at - before) < 10_000  # the store's clock, near ours
        assert store.get_lease(LEASE) == lease
        with pytest.raises(FrozenInstanceError):
            lease.holder = "b"  # type: ignore[misc]

    def test_a_held_lease_is_refused_to_another_holder(self, store: Store) -> None:
        held = store.acquire_lease(LEASE, "a", 30)
        assert store.acquire_lease(LEASE, "b", 30) is None
        assert store.get_lease(LEASE) == held

    def test_leases_are_independent_by_name(self, store: Store) -> None:
        assert store.acquire_lease(LEASE, "a", 30) is not None
        other = store.acquire_lease(LEASE + ".other", "b", 30)
        assert other is not None and other.holder == "b"

    def test_the_holder_renews_its_lease(self, store: Store) -> None:
        first = store.acquire_lease(LEASE, "a", SHORT_TTL)
        assert first is not None
        time.sleep(0.05)
        renewed = store.acquire_lease(LEASE, "a", 30)
        assert renewed is not None
        assert renewed.acquired_at == first.acquired_at
        assert renewed.expires_at > first.expires_at
        _wait_past(first)  # the first term is over; the renewal keeps the lease
        assert store.acquire_lease(LEASE, "b", 30) is None
        assert store.get_lease(LEASE) == renewed

    def test_expiry_lets_another_holder_take_over(self, store: Store) -> None:
        first = store.acquire_lease(LEASE, "a", SHORT_TTL)
        assert first is not None
        _wait_past(first)
        assert store.get_lease(LEASE) is None
        taken = store.acquire_lease(LEASE, "b", 30)
        assert taken is not None and taken.holder == "b"
        assert taken.acquired_at >= first.expires_at
        assert store.acquire_lease(LEASE, "a", 30) is None

    def test_an_expired_holder_starts_a_new_term(self, store: Store) -> None:
        first = store.acquire_lease(LEASE, "a", SHORT_TTL)
        assert first is not None
        _wait_past(first)
        again = store.acquire_lease(LEASE, "a", 30)
        assert again is not None and again.acquired_at > first.acquired_at

    def test_release_frees_the_lease_at_once(self, store: Store) -> None:
        assert store.acquire_lease(LEASE, "a", 30) is not None
        store.release_lease(LEASE, "a")
        assert store.get_lease(LEASE) is None
        taken = store.acquire_lease(LEASE, "b", 30)
        assert taken is not None and taken.holder == "b"

    def test_release_by_another_holder_or_of_a_free_lease_does_nothing(self, store: Store) -> None:
        store.release_lease(LEASE, "a")  # free: nothing to do
        held = store.acquire_lease(LEASE, "a", 30)
        store.release_lease(LEASE, "b")
        assert store.get_lease(LEASE) == held

    def test_exactly_one_of_many_concurrent_takers_wins(self, store: Store) -> None:
        for round_ in range(2):  # a free lease, then an expired one
            holders = [f"h{round_}-{i}" for i in range(8)]
            results = in_threads(8, functools.partial(_take, store, holders))
            assert not [r for r in results if isinstance(r, BaseException)]
            winners = [r for r in results if isinstance(r, Lease)]
            assert len(winners) == 1, results
            assert store.get_lease(LEASE) == winners[0]
            _wait_past(winners[0])

    def test_concurrent_renewals_and_takers_keep_one_holder(self, store: Store) -> None:
        held = store.acquire_lease(LEASE, "leader", 30)
        assert held is not None

        def work(i: int) -> Lease | None:
            return store.acquire_lease(LEASE, "leader" if i % 2 else f"other-{i}", 30)

        results = in_threads(8, work)
        assert not [r for r in results if isinstance(r, BaseException)]
        granted = [r for r in results if isinstance(r, Lease)]
        assert len(granted) == 4
        assert {g.holder for g in granted} == {"leader"}
        assert {g.acquired_at for g in granted} == {held.acquired_at}

    @pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), 86_401, "30", True])
    def test_bad_ttls_are_refused(self, store: Store, ttl: object) -> None:
        with pytest.raises(InvalidArgument, match="ttl_seconds"):
            store.acquire_lease(LEASE, "a", ttl)  # type: ignore[arg-type]
        assert store.get_lease(LEASE) is None

    def test_names_and_holders_are_validated(self, store: Store) -> None:
        with pytest.raises(InvalidArgument, match="lease name"):
            store.acquire_lease("", "a", 30)
        with pytest.raises(InvalidArgument, match="lease holder"):
            store.acquire_lease(LEASE, " ", 30)
        with pytest.raises(InvalidArgument, match="lease name"):
            store.get_lease("x" * 300)
        with pytest.raises(InvalidArgument, match="lease holder"):
            store.acquire_lease(LEASE, 7, 30)  # type: ignore[arg-type]
