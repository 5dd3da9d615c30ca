"""The monitoring part of the store conformance suite: monitors and their results.

:class:`MonitorSuite` checks the :class:`~loopml.store.monitors.MonitorStore` contract for
monitors: create, read, list, partial updates with compare-and-set on ``revision``, delete
(which takes the results along and leaves alerts and deliveries), the audit events of each
change, validation, the immutability of what is returned and concurrent writers; and for
results: one per window (a second replaces the first), NaN metrics that read back as NaN,
range queries and limits. It inherits :class:`~loopml.testing.store_suite_alerts.AlertSuite`
(alerts, deliveries, label segments), so one base class runs the whole monitoring contract::

    class TestMyStore(StoreSuite, DeploymentSuite, MonitorSuite):
        @pytest.fixture
        def store(self): ...
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from loopml.entities import Monitor, MonitorResult, now_ms
from loopml.errors import (
    AlreadyExists,
    Conflict,
    InvalidArgument,
    MonitorNotFound,
    NotFound,
    ProjectNotFound,
)
from loopml.store.base import Store, new_id
from loopml.store.deployments import UNSET
from loopml.testing.store_suite_alerts import AlertSuite, alert, delivery
from loopml.testing.store_suite_registry import audit_events, in_threads, make_project

__all__ = ["SPEC", "MonitorSuite", "make_monitor", "result"]

MINUTE = 60_000
SPEC: dict[str, Any] = {
    "deployment": "churn-api",
    "window": {"seconds": 3600},
    "checks": [{"type": "drift", "test": "psi", "threshold": 0.2}],
    "rules": [{"name": "drift", "metric": "drift_share", "op": ">", "value": 0.5}],
    "unicode": "Ünïcødé",
}


def make_monitor(
    store: Store, project_id: str, name: str = "churn-drift", **kwargs: Any
) -> Monitor:
    """Create a monitor with :data:`SPEC` (unless ``spec`` is given)."""
    spec = kwargs.pop("spec", SPEC)
    kwargs.setdefault("actor", "alice")
    return store.create_monitor(project_id, name, spec, **kwargs)


def result(project_id: str, start: int = 0, end: int = MINUTE, **kwargs: Any) -> MonitorResult:
    """A result of ``churn-drift`` for the window ``[start, end)`` (a new id unless given)."""
    args: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "monitor": "churn-drift",
        "window_start": start,
        "window_end": end,
        "metrics": {"rows": 120.0, "drift_share": 0.25},
        "details": {"columns": {"age": {"psi": 0.1, "drifted": False}}},
    }
    args.update(kwargs)
    return MonitorResult(**args)


def _windows(found: list[MonitorResult]) -> list[int]:
    return [r.window_start // MINUTE for r in found]


class MonitorSuite(AlertSuite):
    """Tests of monitors and their results (and, inherited, of alerts, deliveries and label
    segments); needs a ``store`` fixture."""

    # --- monitors ------------------------------------------------------------------------------

    def test_create_get_and_list_monitors(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        before = now_ms()
        m = make_monitor(store, p.project_id, description="drift\nof churn", enabled=False)
        assert isinstance(m, Monitor)
        assert (m.project_id, m.name, m.spec, m.description, m.enabled) == (
            p.project_id,
            "churn-drift",
            SPEC,
            "drift\nof churn",
            False,
        )
        assert (m.revision, m.created_by, m.updated_by) == (1, "alice", "alice")
        assert before <= m.created_at == m.updated_at <= now_ms()
        assert store.get_monitor(p.project_id, "churn-drift") == m
        [event] = audit_events(store, p)
        assert (event.action, event.object_type, event.object_name, event.actor) == (
            "monitor.create",
            "monitor",
            "churn-drift",
            "alice",
        )
        assert event.details == {
            "spec": SPEC,
            "description": "drift\nof churn",
            "enabled": False,
            "revision": 1,
        }
        assert event.timestamp == m.created_at
        for name in ("b", "B", "é", "a b"):
            make_monitor(store, p.project_id, name, spec={})
        make_monitor(store, q.project_id, "other")
        assert [x.name for x in store.list_monitors(p.project_id)] == [
            "B",
            "a b",
            "b",
            "churn-drift",
            "é",
        ]
        assert [x.name for x in store.list_monitors(q.project_id)] == ["other"]
        assert store.get_monitor(p.project_id, "b").enabled is True  # the default

    def test_duplicate_and_unknown_monitors(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        first = make_monitor(store, p.project_id)
        with pytest.raises(AlreadyExists, match="monitor 'churn-drift' already exists"):
            make_monitor(store, p.project_id, spec={"x": 1}, actor="bob")
        assert store.get_monitor(p.project_id, "churn-drift") == first
        assert len(audit_events(store, p)) == 1
        make_monitor(store, q.project_id)  # the same name in another project
        with pytest.raises(MonitorNotFound, match="monitor 'ghost' does not exist") as info:
            store.get_monitor(p.project_id, "ghost")
        assert isinstance(info.value, NotFound) and info.value.name == "ghost"
        assert (info.value.code, info.value.http_status) == ("MONITOR_NOT_FOUND", 404)
        for call in (
            lambda: store.update_monitor(p.project_id, "ghost", enabled=False, actor="a"),
            lambda: store.delete_monitor(p.project_id, "ghost", actor="a"),
            lambda: store.add_monitor_result(result(p.project_id, monitor="ghost")),
            lambda: store.list_monitor_results(p.project_id, "ghost"),
        ):
            with pytest.raises(MonitorNotFound):
                call()
        nowhere = new_id()
        for lookup in (
            lambda: make_monitor(store, nowhere),
            lambda: store.get_monitor(nowhere, "churn-drift"),
            lambda: store.list_monitors(nowhere),
            lambda: store.update_monitor(nowhere, "churn-drift", enabled=False, actor="a"),
            lambda: store.delete_monitor(nowhere, "churn-drift", actor="a"),
            lambda: store.add_monitor_result(result(nowhere)),
            lambda: store.list_monitor_results(nowhere, "churn-drift"),
        ):
            with pytest.raises(ProjectNotFound):
                lookup()

    def test_update_a_monitor(self, store: Store) -> None:
        p = make_project(store)
        m = make_monitor(store, p.project_id, description="v1")
        up = store.update_monitor(p.project_id, "churn-drift", enabled=False, actor="bob")
        assert (up.enabled, up.revision, up.updated_by, up.created_by) == (
            False,
            2,
            "bob",
            "alice",
        )
        assert (up.spec, up.description, up.created_at) == (SPEC, "v1", m.created_at)
        event = audit_events(store, p)[0]
        assert (event.action, event.actor, event.details) == (
            "monitor.update",
            "bob",
            {"before": {"enabled": True}, "after": {"enabled": False}, "revision": 2},
        )
        assert event.timestamp == up.updated_at >= m.updated_at
        spec = {"deployment": "churn-api", "checks": []}
        up = store.update_monitor(
            p.project_id, "churn-drift", spec=spec, description="v2", actor="carol"
        )
        assert (up.spec, up.description, up.enabled, up.revision) == (spec, "v2", False, 3)
        assert audit_events(store, p)[0].details == {
            "before": {"spec": SPEC, "description": "v1"},
            "after": {"spec": spec, "description": "v2"},
            "revision": 3,
        }
        assert store.get_monitor(p.project_id, "churn-drift") == up
        # Nothing new: no revision, no event.
        same = store.update_monitor(
            p.project_id, "churn-drift", spec=spec, enabled=False, description=UNSET, actor="x"
        )
        assert same == up and store.update_monitor(p.project_id, "churn-drift", actor="x") == up
        assert len(audit_events(store, p)) == 3

    def test_update_with_expected_revision(self, store: Store) -> None:
        p = make_project(store)
        make_monitor(store, p.project_id)
        up = store.update_monitor(
            p.project_id, "churn-drift", enabled=False, actor="a", expected_revision=1
        )
        with pytest.raises(Conflict, match="is at revision 2, not 1 as expected") as info:
            store.update_monitor(
                p.project_id, "churn-drift", enabled=True, actor="b", expected_revision=1
            )
        assert info.value.http_status == 409
        with pytest.raises(Conflict):  # also when the update would change nothing
            store.update_monitor(p.project_id, "churn-drift", actor="b", expected_revision=3)
        assert store.get_monitor(p.project_id, "churn-drift") == up

    def test_concurrent_updates_with_expected_revision_have_one_winner(self, store: Store) -> None:
        p = make_project(store)
        make_monitor(store, p.project_id)
        results = in_threads(
            8,
            lambda i: store.update_monitor(
                p.project_id,
                "churn-drift",
                description=f"by {i}",
                actor=f"u{i}",
                expected_revision=1,
            ),
        )
        winners = [r for r in results if isinstance(r, Monitor)]
        assert len(winners) == 1, results
        assert all(isinstance(r, Conflict) for r in results if r not in winners), results
        assert store.get_monitor(p.project_id, "churn-drift") == winners[0]
        assert len(audit_events(store, p, action="monitor.update")) == 1

    def test_delete_a_monitor_takes_its_results_and_keeps_its_alerts(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        make_monitor(store, pid, description="d")
        store.add_monitor_result(result(pid))
        a = store.add_alert(alert(pid))
        d = store.add_alert_delivery(delivery(pid, a.id))
        store.delete_monitor(pid, "churn-drift", actor="carol", reason="retired")
        with pytest.raises(MonitorNotFound):
            store.get_monitor(pid, "churn-drift")
        with pytest.raises(MonitorNotFound):
            store.list_monitor_results(pid, "churn-drift")
        assert store.list_monitors(pid) == []
        event = audit_events(store, p)[0]
        assert (event.action, event.object_name, event.actor, event.reason) == (
            "monitor.delete",
            "churn-drift",
            "carol",
            "retired",
        )
        assert event.details == {"spec": SPEC, "description": "d", "enabled": True, "revision": 1}
        assert store.get_alert(pid, a.id) == a  # history stays
        assert store.list_alert_deliveries(pid, alert_id=a.id) == [d]
        reborn = make_monitor(store, pid)  # the name is free again, without old results
        assert reborn.revision == 1
        assert store.list_monitor_results(pid, "churn-drift") == []

    def test_monitors_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        bad_creates: list[dict[str, Any]] = [
            {"name": "a/b"},
            {"name": "a@b"},
            {"name": ""},
            {"name": "api "},
            {"name": 7},
            {"spec": ["a"]},
            {"spec": None},
            {"spec": {"x": math.nan}},
            {"spec": {"x": {1, 2}}},
            {"spec": {1: "a"}},
            {"description": 5},
            {"description": "x" * 16_385},
            {"enabled": "yes"},
            {"enabled": 1},
            {"actor": ""},
        ]
        for bad in bad_creates:
            args: dict[str, Any] = {"name": "m", **bad}
            with pytest.raises(InvalidArgument):
                make_monitor(store, pid, **args)
        assert store.list_monitors(pid) == []
        make_monitor(store, pid, "m")
        bad_updates: list[dict[str, Any]] = [
            {"expected_revision": 0},
            {"spec": {"x": math.inf}},
            {"spec": "x"},
            {"enabled": None},
            {"description": None},
            {"actor": ""},
        ]
        for bad in bad_updates:
            with pytest.raises(InvalidArgument):
                store.update_monitor(pid, "m", **{"actor": "a", **bad})
        with pytest.raises(InvalidArgument):
            store.delete_monitor(pid, "m", actor="a", reason="x" * 4_097)
        assert store.get_monitor(pid, "m").revision == 1

    def test_returned_monitors_are_immutable_copies(self, store: Store) -> None:
        p = make_project(store)
        spec: dict[str, Any] = {"checks": [{"type": "drift"}], "window": {"seconds": 60}}
        m = make_monitor(store, p.project_id, spec=spec)
        spec["checks"].append({"type": "quality"})  # the store took a copy
        with pytest.raises(FrozenInstanceError):
            m.revision = 2  # type: ignore[misc]
        got = store.get_monitor(p.project_id, "churn-drift")
        assert got.spec == {"checks": [{"type": "drift"}], "window": {"seconds": 60}}
        got.spec["window"]["seconds"] = 1  # and gives out copies
        m.spec["checks"].clear()
        store.list_monitors(p.project_id)[0].spec["new"] = 1  # type: ignore[index]
        assert store.get_monitor(p.project_id, "churn-drift").spec == {
            "checks": [{"type": "drift"}],
            "window": {"seconds": 60},
        }

    # --- results -------------------------------------------------------------------------------

    def test_add_and_list_results_with_nan(self, store: Store) -> None:
        p = make_project(store)
        make_monitor(store, p.project_id)
        metrics: dict[str, Any] = {"rows": 3, "accuracy": math.nan, "drift.age": -0.0, "x y": 1.5}
        details: dict[str, Any] = {"notes": ["few rows"], "tests": {"age": None}}
        before = now_ms()
        stored = store.add_monitor_result(
            result(p.project_id, metrics=metrics, details=details, status="no_data")
        )
        metrics["rows"] = 99  # the store took copies
        details["notes"].append("x")
        assert isinstance(stored, MonitorResult) and stored.created_at >= before
        [got] = store.list_monitor_results(p.project_id, "churn-drift")
        assert got.id == stored.id and got.created_at == stored.created_at
        assert (got.window_start, got.window_end, got.status) == (0, MINUTE, "no_data")
        assert got.details == {"notes": ["few rows"], "tests": {"age": None}}
        assert set(got.metrics) == {"rows", "accuracy", "drift.age", "x y"}
        assert math.isnan(got.metrics["accuracy"]) and math.isnan(stored.metrics["accuracy"])
        assert got.metrics["rows"] == 3.0 and isinstance(got.metrics["rows"], float)
        assert got.metrics["x y"] == 1.5 and got.metrics["drift.age"] == 0.0
        with pytest.raises(FrozenInstanceError):
            got.status = "ok"  # type: ignore[misc]
        got.details["notes"].clear()  # a copy out
        assert store.list_monitor_results(p.project_id, "churn-drift")[0].details["notes"]
        assert [e.action for e in audit_events(store, p)] == ["monitor.create"]  # not audited

    def test_a_second_result_of_a_window_replaces_the_first(self, store: Store) -> None:
        p = make_project(store)
        make_monitor(store, p.project_id)
        store.add_monitor_result(result(p.project_id, 0, MINUTE, created_at=5))
        store.add_monitor_result(result(p.project_id, MINUTE, 2 * MINUTE))
        late = store.add_monitor_result(
            result(p.project_id, 0, MINUTE, metrics={"accuracy": 0.9}, status="late", created_at=9)
        )
        found = store.list_monitor_results(p.project_id, "churn-drift")
        assert _windows(found) == [0, 1]
        assert found[0] == late and found[0].metrics == {"accuracy": 0.9}
        wider = store.add_monitor_result(result(p.project_id, 0, 2 * MINUTE))  # another window
        assert store.list_monitor_results(p.project_id, "churn-drift")[:2] == [late, wider]

    def test_result_ranges_and_limits(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        make_monitor(store, pid)
        make_monitor(store, pid, "other")
        for i in (3, 0, 4, 1, 2):
            store.add_monitor_result(result(pid, i * MINUTE, (i + 1) * MINUTE))
        store.add_monitor_result(result(pid, 0, MINUTE, monitor="other"))

        def found(**kwargs: Any) -> list[int]:
            return _windows(store.list_monitor_results(pid, "churn-drift", **kwargs))

        assert found() == [0, 1, 2, 3, 4]
        assert found(start=2 * MINUTE) == [2, 3, 4]  # window_start >= start
        assert found(start=2 * MINUTE - 1) == [2, 3, 4]
        assert found(end=2 * MINUTE) == [0, 1]  # window_end <= end
        assert found(end=2 * MINUTE - 1) == [0]
        assert found(start=MINUTE, end=4 * MINUTE) == [1, 2, 3]
        assert found(limit=2) == [3, 4]  # the latest, oldest first
        assert found(start=MINUTE, end=4 * MINUTE, limit=2) == [2, 3]
        assert found(limit=50) == [0, 1, 2, 3, 4]
        assert found(start=10 * MINUTE) == []
        assert _windows(store.list_monitor_results(pid, "other")) == [0]
        for query in ({"start": -1}, {"start": 5, "end": 4}, {"limit": 0}, {"end": "x"}):
            with pytest.raises(InvalidArgument):
                store.list_monitor_results(pid, "churn-drift", **query)

    def test_results_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        make_monitor(store, pid)
        bad: list[dict[str, Any]] = [
            {"id": "x"},
            {"monitor": "a/b"},
            {"window_start": -1},
            {"window_end": 0},  # not after window_start
            {"window_start": MINUTE},  # == window_end
            {"window_end": 1.5},
            {"metrics": {"a": math.inf}},
            {"metrics": {"a": -math.inf}},
            {"metrics": {"a": True}},
            {"metrics": {"a": "0.5"}},
            {"metrics": {"": 1.0}},
            {"metrics": {3: 1.0}},
            {"metrics": [1.0]},
            {"details": {"x": math.nan}},
            {"details": "x"},
            {"status": ""},
            {"status": "Not OK"},
            {"created_at": -1},
        ]
        for change in bad:
            with pytest.raises(InvalidArgument):
                store.add_monitor_result(result(pid, **change))
        with pytest.raises(InvalidArgument, match="expected a MonitorResult"):
            store.add_monitor_result({"id": new_id()})  # type: ignore[arg-type]
        assert store.list_monitor_results(pid, "churn-drift") == []
        ok = store.add_monitor_result(result(pid, metrics={}, details={}))
        assert ok.metrics == {} and replace(ok, created_at=0) == result(
            pid, id=ok.id, metrics={}, details={}
        )
