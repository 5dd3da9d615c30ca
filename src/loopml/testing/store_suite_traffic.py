"""The serving part of the store conformance suite: traffic windows.

:class:`TrafficSuite` checks that traffic windows (the request and error counts of a route in
a time window, one fragment per server process) are stored as given and only when valid, found
by window start with ``[start, end)`` boundaries, by route (``""``: refused before routing)
and with ``limit`` keeping the latest, written idempotently by id (a retry is a no-op, other
content a Conflict), kept apart by project and deployment, and not audited.
:class:`~loopml.testing.store_suite_deployments.DeploymentSuite` inherits it.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from loopml.entities import TrafficWindow, now_ms
from loopml.errors import Conflict, InvalidArgument, ProjectNotFound
from loopml.store.base import Store, new_id
from loopml.testing.store_suite_registry import audit_events, in_threads, make_project

__all__ = ["TrafficSuite", "traffic"]

MINUTE = 60_000


def traffic(project_id: str, start: int = 0, **kwargs: Any) -> TrafficWindow:
    """A one-minute traffic window of route ``primary`` of ``churn-api`` (a new id unless
    given): 100 requests, 3 client and 2 server errors."""
    args: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "deployment": "churn-api",
        "route": "primary",
        "model_version": "churn/3",
        "window_start": start,
        "window_seconds": 60,
        "requests": 100,
        "client_errors": 3,
        "server_errors": 2,
    }
    args.update(kwargs)
    return TrafficWindow(**args)


class TrafficSuite:
    """Conformance tests for the traffic windows of a deployment."""

    def test_add_and_list_a_traffic_window(self, store: Store) -> None:
        p = make_project(store)
        w = traffic(p.project_id, 1_700_000_040_000, created_at=7)
        store.add_traffic_window(w)
        [got] = store.list_traffic_windows(p.project_id, "churn-api")
        assert isinstance(got, TrafficWindow)
        assert got == w
        with pytest.raises(FrozenInstanceError):
            got.requests = 1  # type: ignore[misc]
        before = now_ms()
        refused = traffic(p.project_id, 0, route="", model_version="", requests=4, client_errors=4)
        refused = replace(refused, server_errors=0)
        store.add_traffic_window(refused)
        first = store.list_traffic_windows(p.project_id, "churn-api")[0]  # by window start
        assert first.route == "" and first.model_version == "" and first.client_errors == 4
        assert first.created_at >= before
        quiet = traffic(p.project_id, 2 * MINUTE, requests=0, client_errors=0, server_errors=0)
        store.add_traffic_window(quiet)
        assert store.list_traffic_windows(p.project_id, "churn-api")[1] == replace(
            quiet, created_at=store.list_traffic_windows(p.project_id, "churn-api")[1].created_at
        )

    def test_traffic_filters_order_and_limit(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        m = MINUTE
        w = {
            "a": traffic(pid, 0, route="primary", id="a" * 32),
            "b": traffic(pid, 0, route="canary", model_version="churn/4", id="b" * 32),
            "c": traffic(pid, 0, route="primary", id="0" * 32),  # a second process's fragment
            "d": traffic(pid, m, route="primary", id="d" * 32),
            "e": traffic(pid, 2 * m, route="Primary", id="e" * 32),
            "f": traffic(pid, 2 * m, route="", model_version="", id="f" * 32),
            "g": traffic(pid, 2 * m, route="canary", model_version="churn/4", id="9" * 32),
        }
        for key in "gfedcba":
            store.add_traffic_window(w[key])

        def found(**kwargs: Any) -> str:
            got = store.list_traffic_windows(pid, "churn-api", **kwargs)
            by_id = {v.id: k for k, v in w.items()}
            return "".join(by_id[x.id] for x in got)

        assert found() == "bcadfeg"  # window_start, then route by code point, then id
        assert found(start=0, end=m) == "bca"  # [start, end): the end is left out
        assert found(start=m) == "dfeg"
        assert found(start=m, end=m + 1) == "d"
        assert found(end=0) == "" and found(start=m, end=m) == ""
        assert found(route="primary") == "cad"
        assert found(route="canary", start=m) == "g"
        assert found(route="") == "f"
        assert found(route="shadow") == ""
        assert found(limit=1) == "g"  # the latest
        assert found(limit=3) == "feg"
        assert found(limit=4) == "dfeg"
        assert found(limit=100) == "bcadfeg"
        assert found(route="primary", limit=2) == "ad"
        assert found(end=2 * m, limit=2) == "ad"
        assert store.list_traffic_windows(pid, "other") == []

    def test_adding_a_traffic_window_again(self, store: Store) -> None:
        p = make_project(store)
        w = traffic(p.project_id)
        store.add_traffic_window(w)
        stored = store.list_traffic_windows(p.project_id, "churn-api")
        store.add_traffic_window(replace(w, created_at=99))  # a retry
        assert store.list_traffic_windows(p.project_id, "churn-api") == stored
        for change in ({"requests": 101}, {"server_errors": 0}, {"route": "canary"}):
            with pytest.raises(Conflict, match=f"traffic window '{w.id}' is already stored"):
                store.add_traffic_window(replace(w, **change))
        assert store.list_traffic_windows(p.project_id, "churn-api") == stored

    def test_concurrent_retries_of_a_traffic_window_store_it_once(self, store: Store) -> None:
        p = make_project(store)
        w = traffic(p.project_id)
        results = in_threads(4, lambda i: store.add_traffic_window(w))
        assert results == [None] * 4
        assert [x.id for x in store.list_traffic_windows(p.project_id, "churn-api")] == [w.id]

    def test_traffic_windows_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        bad: list[dict[str, Any]] = [
            {"id": "x"},
            {"window_start": 1_000},  # not a multiple of 60 s
            {"window_start": -60_000},
            {"window_seconds": 0},
            {"window_seconds": 400 * 86_400},
            {"window_seconds": 1.5},
            {"requests": -1},
            {"requests": True},
            {"client_errors": -1},
            {"server_errors": 2.5},
            {"requests": 4},  # 3 + 2 errors among 4 requests
            {"route": "a b"},
            {"route": ""},  # a model version without a route
            {"model_version": ""},  # a route without a model version
            {"model_version": "churn"},
            {"deployment": "a@b"},
            {"project_id": ""},
            {"created_at": -1},
        ]
        for change in bad:
            with pytest.raises(InvalidArgument):
                store.add_traffic_window(replace(traffic(pid), **change))
        with pytest.raises(InvalidArgument, match="at most requests"):
            store.add_traffic_window(traffic(pid, requests=1))
        with pytest.raises(InvalidArgument, match=r"not aligned .* \(60000 here\)"):
            store.add_traffic_window(traffic(pid, 61_000))
        with pytest.raises(InvalidArgument, match="expected a TrafficWindow"):
            store.add_traffic_window({"id": new_id()})  # type: ignore[arg-type]
        with pytest.raises(ProjectNotFound):
            store.add_traffic_window(traffic(new_id()))
        assert store.list_traffic_windows(pid, "churn-api") == []
        for query in (
            {"start": -1},
            {"start": 2, "end": 1},
            {"route": "a b"},
            {"limit": 0},
            {"limit": 50_001},
        ):
            with pytest.raises(InvalidArgument):
                store.list_traffic_windows(pid, "churn-api", **query)
        with pytest.raises(InvalidArgument):
            store.list_traffic_windows(pid, "a@b")
        with pytest.raises(ProjectNotFound):
            store.list_traffic_windows(new_id(), "churn-api")

    def test_traffic_windows_are_kept_apart_and_not_audited(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        mine, theirs = traffic(p.project_id), traffic(q.project_id)
        other = traffic(p.project_id, deployment="batch-api")
        for w in (mine, theirs, other):
            store.add_traffic_window(w)  # no deployment of these names exists
        assert [w.id for w in store.list_traffic_windows(p.project_id, "churn-api")] == [mine.id]
        assert [w.id for w in store.list_traffic_windows(q.project_id, "churn-api")] == [theirs.id]
        assert [w.id for w in store.list_traffic_windows(p.project_id, "batch-api")] == [other.id]
        assert store.list_traffic_windows(p.project_id, "Churn-API") == []
        assert audit_events(store, p) == [] and audit_events(store, q) == []
