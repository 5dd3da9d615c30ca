"""The monitoring part of the store conformance suite: alerts, alert deliveries and label
segments.

:class:`AlertSuite` checks that alerts are stored as given (and only validated ones), that a
rule has at most one firing alert even when threads race to open one, that updates replace the
changing fields and never make a resolved alert fire again, the order and filters of listing,
that deliveries need their alert and list oldest first, and that label segments are written
idempotently by id and found by deployment and time.
:class:`~loopml.testing.store_suite_monitors.MonitorSuite` inherits it.
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from loopml.entities import Alert, AlertDelivery, AlertState, LabelSegment, now_ms
from loopml.errors import (
    AlertNotFound,
    AlreadyExists,
    Conflict,
    InvalidArgument,
    NotFound,
    ProjectNotFound,
)
from loopml.store.base import Store, new_id
from loopml.testing.store_suite_registry import audit_events, in_threads, make_project

__all__ = ["AlertSuite", "alert", "delivery", "label_segment"]

DIGEST = "cd" * 32
FIRING, RESOLVED = AlertState.FIRING, AlertState.RESOLVED


def alert(project_id: str, **kwargs: Any) -> Alert:
    """A firing alert of rule ``drift`` of monitor ``churn-drift`` (a new id unless given)."""
    args: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "monitor": "churn-drift",
        "rule": "drift",
        "severity": "warning",
        "state": FIRING,
        "message": "drift_share is 0.6, above 0.5",
        "value": 0.6,
        "threshold": 0.5,
        "window_start": 0,
        "window_end": 60_000,
        "started_at": 1_000,
        "last_seen_at": 1_000,
        "details": {"columns": ["age", "plan"]},
    }
    args.update(kwargs)
    return Alert(**args)


def delivery(project_id: str, alert_id: str, **kwargs: Any) -> AlertDelivery:
    """A successful first delivery of a firing alert by webhook ``ops``."""
    args: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "alert_id": alert_id,
        "notifier": "ops",
        "kind": "webhook",
        "event": "firing",
        "attempt": 1,
        "ok": True,
        "status": "HTTP 200",
    }
    args.update(kwargs)
    return AlertDelivery(**args)


def label_segment(project_id: str, **kwargs: Any) -> LabelSegment:
    """A label segment of ``churn-api`` (a new id unless given)."""
    args: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "deployment": "churn-api",
        "rows": 100,
        "uri": f"sha256:{DIGEST}",
        "digest": DIGEST,
        "size_bytes": 2_048,
    }
    args.update(kwargs)
    return LabelSegment(**args)


class AlertSuite:
    """Tests of alerts, their deliveries and label segments; needs a ``store`` fixture."""

    # --- alerts --------------------------------------------------------------------------------

    def test_add_and_get_an_alert(self, store: Store) -> None:
        p = make_project(store)
        details: dict[str, Any] = {"columns": ["age"], "nested": {"x": [1, None]}}
        a = alert(p.project_id, details=details, value=7, notified_at=5, occurrences=3)
        stored = store.add_alert(a)
        details["nested"]["x"].append(2)  # the store took a copy
        assert isinstance(stored, Alert)
        assert stored == replace(
            a, value=7.0, details={"columns": ["age"], "nested": {"x": [1, None]}}
        )
        assert isinstance(stored.value, float)
        got = store.get_alert(p.project_id, a.id)
        assert got == stored and got.state is FIRING
        with pytest.raises(FrozenInstanceError):
            got.state = RESOLVED  # type: ignore[misc]
        got.details["columns"].append("plan")  # a copy out too
        assert store.get_alert(p.project_id, a.id).details["columns"] == ["age"]
        bare = store.add_alert(alert(p.project_id, rule="r2", value=None, threshold=None))
        assert (bare.value, bare.threshold, bare.resolved_at, bare.notified_at) == (None,) * 4
        assert store.get_alert(p.project_id, bare.id) == bare
        assert audit_events(store, p) == []  # alerts are data, not audited changes

    def test_unknown_alerts(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        a = store.add_alert(alert(p.project_id))
        with pytest.raises(AlertNotFound, match="does not exist") as info:
            store.get_alert(p.project_id, new_id())
        assert isinstance(info.value, NotFound)
        assert (info.value.code, info.value.http_status) == ("ALERT_NOT_FOUND", 404)
        with pytest.raises(AlertNotFound):  # it is in another project
            store.get_alert(q.project_id, a.id)
        with pytest.raises(AlertNotFound):
            store.update_alert(replace(a, project_id=q.project_id, state=RESOLVED))
        with pytest.raises(AlertNotFound):
            store.update_alert(alert(p.project_id))
        with pytest.raises(ProjectNotFound):
            store.get_alert(new_id(), a.id)
        with pytest.raises(ProjectNotFound):
            store.add_alert(alert(new_id()))
        with pytest.raises(ProjectNotFound):
            store.list_alerts(new_id())
        with pytest.raises(AlreadyExists, match="already exists"):
            store.add_alert(replace(a, rule="other"))
        assert store.get_alert(p.project_id, a.id) == a

    def test_one_firing_alert_per_rule(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        first = store.add_alert(alert(p.project_id))
        with pytest.raises(Conflict, match="rule 'drift' of monitor 'churn-drift' has a firing"):
            store.add_alert(alert(p.project_id))
        store.add_alert(alert(p.project_id, rule="latency"))  # another rule
        store.add_alert(alert(p.project_id, monitor="other"))  # another monitor
        store.add_alert(alert(q.project_id))  # another project
        store.add_alert(alert(p.project_id, state=RESOLVED, resolved_at=2))  # not firing
        store.add_alert(alert(p.project_id, state=RESOLVED, resolved_at=3))
        store.update_alert(replace(first, state=RESOLVED, resolved_at=2_000))
        second = store.add_alert(alert(p.project_id, started_at=3_000))  # the rule is free
        firing = store.list_alerts(
            p.project_id, monitor="churn-drift", rule="drift", state="firing"
        )
        assert firing == [second]
        with pytest.raises(Conflict):
            store.add_alert(alert(p.project_id))

    def test_concurrent_firing_alerts_have_one_winner(self, store: Store) -> None:
        p = make_project(store)
        results = in_threads(8, lambda i: store.add_alert(alert(p.project_id, started_at=i)))
        winners = [r for r in results if isinstance(r, Alert)]
        assert len(winners) == 1, results
        assert all(isinstance(r, Conflict) for r in results if r not in winners), results
        assert store.list_alerts(p.project_id) == winners

    def test_update_an_alert(self, store: Store) -> None:
        p = make_project(store)
        a = store.add_alert(alert(p.project_id))
        seen = replace(
            a,
            severity="critical",
            message="worse",
            value=0.9,
            threshold=0.8,
            window_start=60_000,
            window_end=120_000,
            last_seen_at=2_000,
            notified_at=2_001,
            occurrences=2,
            details={"columns": ["age"]},
        )
        assert store.update_alert(seen) == seen
        assert store.get_alert(p.project_id, a.id) == seen
        done = store.update_alert(replace(seen, state=RESOLVED, resolved_at=3_000, value=None))
        assert store.get_alert(p.project_id, a.id) == done
        assert (done.state, done.resolved_at, done.value) == (RESOLVED, 3_000, None)
        assert store.update_alert(replace(done, notified_at=3_001)).notified_at == 3_001
        with pytest.raises(InvalidArgument, match="resolved and cannot fire again"):
            store.update_alert(replace(done, state=FIRING))
        for change in ({"monitor": "other"}, {"rule": "other"}, {"started_at": 5}):
            with pytest.raises(InvalidArgument, match="cannot change"):
                store.update_alert(replace(done, **change))
        assert store.get_alert(p.project_id, a.id).notified_at == 3_001

    def test_list_alerts_newest_first_with_filters(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        made = {
            "a": alert(pid, id="a" * 32, started_at=10, rule="r1"),
            "b": alert(pid, id="b" * 32, started_at=30, rule="r2"),
            "c": alert(pid, id="c" * 32, started_at=30, rule="r3", monitor="m2"),
            "d": alert(pid, id="0" * 32, started_at=20, rule="r1", state=RESOLVED),
        }
        for key in "dcba":
            store.add_alert(made[key])

        def found(**kwargs: Any) -> str:
            by_id = {v.id: k for k, v in made.items()}
            return "".join(by_id[a.id] for a in store.list_alerts(pid, **kwargs))

        assert found() == "bcda"  # started_at descending, then by id
        assert found(limit=2) == "bc"
        assert found(monitor="churn-drift") == "bda"
        assert found(monitor="m2") == "c"
        assert found(rule="r1") == "da"
        assert found(state=FIRING) == "bca"
        assert found(state="resolved") == "d"
        assert found(monitor="churn-drift", rule="r1", state="firing") == "a"
        assert found(monitor="none") == ""
        for bad in ({"state": "open"}, {"limit": 0}, {"monitor": "a/b"}, {"rule": ""}):
            with pytest.raises(InvalidArgument):
                store.list_alerts(pid, **bad)

    def test_alerts_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        bad: list[dict[str, Any]] = [
            {"id": "x"},
            {"project_id": ""},
            {"monitor": "a/b"},
            {"rule": ""},
            {"severity": "fatal"},
            {"state": "open"},
            {"message": 3},
            {"value": math.nan},
            {"value": math.inf},
            {"threshold": "high"},
            {"value": True},
            {"window_start": -1},
            {"window_start": 10, "window_end": 5},
            {"started_at": 1.5},
            {"resolved_at": -1},
            {"occurrences": 0},
            {"details": {"x": math.nan}},
            {"details": ["a"]},
        ]
        for change in bad:
            with pytest.raises(InvalidArgument):
                store.add_alert(replace(alert(pid), **change))
        with pytest.raises(InvalidArgument, match="expected an Alert"):
            store.add_alert({"id": new_id()})  # type: ignore[arg-type]
        assert store.list_alerts(pid) == []
        text = store.add_alert(alert(pid, state="firing"))  # a state's value is fine
        assert text.state is FIRING
        with pytest.raises(InvalidArgument):
            store.get_alert(pid, "nope")

    # --- deliveries ----------------------------------------------------------------------------

    def test_deliveries_oldest_first(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        a = store.add_alert(alert(p.project_id))
        b = store.add_alert(alert(p.project_id, rule="other"))
        before = now_ms()
        first = store.add_alert_delivery(delivery(p.project_id, a.id, ok=False, status="timeout"))
        assert isinstance(first, AlertDelivery) and first.created_at >= before
        second = store.add_alert_delivery(
            delivery(p.project_id, a.id, attempt=2, created_at=first.created_at)
        )
        early = store.add_alert_delivery(delivery(p.project_id, b.id, created_at=5, kind="slack"))
        assert store.list_alert_deliveries(p.project_id) == [early, first, second]
        assert store.list_alert_deliveries(p.project_id, alert_id=a.id) == [first, second]
        assert store.list_alert_deliveries(p.project_id, alert_id=a.id, limit=1) == [second]
        assert store.list_alert_deliveries(p.project_id, limit=2) == [first, second]
        assert store.list_alert_deliveries(q.project_id) == []
        assert store.list_alert_deliveries(p.project_id, alert_id=new_id()) == []
        assert (first.ok, first.status, second.attempt) == (False, "timeout", 2)

    def test_deliveries_need_their_alert(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        a = store.add_alert(alert(p.project_id))
        with pytest.raises(AlertNotFound):
            store.add_alert_delivery(delivery(p.project_id, new_id()))
        with pytest.raises(AlertNotFound):  # the alert is in another project
            store.add_alert_delivery(delivery(q.project_id, a.id))
        with pytest.raises(ProjectNotFound):
            store.add_alert_delivery(delivery(new_id(), a.id))
        with pytest.raises(ProjectNotFound):
            store.list_alert_deliveries(new_id())
        d = store.add_alert_delivery(delivery(p.project_id, a.id))
        with pytest.raises(AlreadyExists):
            store.add_alert_delivery(replace(d, attempt=2))
        bad: list[dict[str, Any]] = [
            {"id": "x"},
            {"notifier": ""},
            {"kind": "Web Hook"},
            {"event": ""},
            {"attempt": 0},
            {"ok": 1},
            {"status": 5},
            {"created_at": -1},
        ]
        for change in bad:
            with pytest.raises(InvalidArgument):
                store.add_alert_delivery(delivery(p.project_id, a.id, **change))
        with pytest.raises(InvalidArgument, match="expected an AlertDelivery"):
            store.add_alert_delivery(a)  # type: ignore[arg-type]
        assert store.list_alert_deliveries(p.project_id) == [d]

    # --- label segments ------------------------------------------------------------------------

    def test_add_and_list_label_segments(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        pid = p.project_id
        before = now_ms()
        a = store.add_label_segment(label_segment(pid, id="a" * 32, created_at=100))
        b = store.add_label_segment(label_segment(pid, id="b" * 32, created_at=200))
        tie = store.add_label_segment(label_segment(pid, id="0" * 32, created_at=200))
        any_ = store.add_label_segment(label_segment(pid, deployment="", digest="", size_bytes=0))
        other = store.add_label_segment(label_segment(pid, deployment="batch-api", created_at=150))
        store.add_label_segment(label_segment(q.project_id))
        assert isinstance(a, LabelSegment) and a.created_at == 100
        assert any_.created_at >= before  # 0 means now
        assert store.list_label_segments(pid) == [a, other, tie, b, any_]
        assert store.list_label_segments(pid, deployment="churn-api") == [a, tie, b]
        assert store.list_label_segments(pid, deployment="") == [any_]
        assert store.list_label_segments(pid, since=150) == [other, tie, b, any_]
        assert store.list_label_segments(pid, deployment="churn-api", since=201) == []
        with pytest.raises(FrozenInstanceError):
            a.rows = 1  # type: ignore[misc]
        assert audit_events(store, p) == []

    def test_adding_a_label_segment_again(self, store: Store) -> None:
        p = make_project(store)
        seg = label_segment(p.project_id)
        stored = store.add_label_segment(seg)
        assert store.add_label_segment(seg) == stored  # a retry
        assert store.add_label_segment(replace(seg, created_at=stored.created_at + 9)) == stored
        for change in ({"rows": 101}, {"uri": "s3://x"}, {"deployment": "other"}, {"digest": ""}):
            with pytest.raises(Conflict, match=f"label segment '{seg.id}' is already stored"):
                store.add_label_segment(replace(seg, **change))
        assert store.list_label_segments(p.project_id) == [stored]

    def test_label_segments_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        bad: list[dict[str, Any]] = [
            {"id": "x"},
            {"deployment": "a/b"},
            {"deployment": " api"},
            {"rows": -1},
            {"uri": ""},
            {"uri": "a\nb"},
            {"digest": "xyz"},
            {"size_bytes": -1},
            {"created_at": -1},
        ]
        for change in bad:
            with pytest.raises(InvalidArgument):
                store.add_label_segment(label_segment(pid, **change))
        with pytest.raises(InvalidArgument, match="expected a LabelSegment"):
            store.add_label_segment({"id": new_id()})  # type: ignore[arg-type]
        with pytest.raises(ProjectNotFound):
            store.add_label_segment(label_segment(new_id()))
        with pytest.raises(ProjectNotFound):
            store.list_label_segments(new_id())
        for query in ({"since": -1}, {"deployment": "a@b"}):
            with pytest.raises(InvalidArgument):
                store.list_label_segments(pid, **query)
        assert store.list_label_segments(pid) == []
