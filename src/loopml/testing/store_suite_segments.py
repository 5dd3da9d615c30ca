"""The serving part of the store conformance suite: prediction-log segments and window profiles.

:class:`PredictionLogSuite` checks that segments and window profiles are stored as given (and
only validated ones), found by time range with both boundaries right, written idempotently by
id (a retry is a no-op, other content a Conflict), kept apart by project and deployment,
outlive their deployment, are not audited, and come back as copies.
:class:`~loopml.testing.store_suite_deployments.DeploymentSuite` inherits it.
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, replace
from typing import Any

import pytest

from loopml.entities import PredictionSegment, WindowProfile, now_ms
from loopml.errors import Conflict, InvalidArgument, ProjectNotFound
from loopml.store.base import Store, new_id
from loopml.store.deployments import MAX_SEGMENT_SPAN_MS
from loopml.testing.store_suite_registry import audit_events, make_project

__all__ = ["PredictionLogSuite", "segment", "window"]

HOUR = 3_600_000
DIGEST = "ab" * 32
PROFILE: dict[str, Any] = {
    "rows": 10,
    "columns": {
        "age": {"type": "numeric", "bins": [0.0, 18.5, 99.0], "counts": [3, 7], "nulls": 0},
        "plan": {"type": "categorical", "counts": {"basic": 4, "pro": 6}},
    },
    "unicode": "Ünïcødé",
}


def segment(
    project_id: str, start: int = 1_000, end: int = 2_000, **kwargs: Any
) -> PredictionSegment:
    """A segment of ``churn-api`` from ``start`` to ``end`` (a new id unless given)."""
    args: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "deployment": "churn-api",
        "start_time": start,
        "end_time": end,
        "rows": 100,
        "uri": f"s3://bucket/predictions/churn-api/{start}.parquet",
    }
    args.update(kwargs)
    return PredictionSegment(**args)


def window(project_id: str, start: int = 0, **kwargs: Any) -> WindowProfile:
    """A one-minute window profile of route ``primary`` of ``churn-api``."""
    args: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "deployment": "churn-api",
        "route": "primary",
        "model_version": "churn/3",
        "window_start": start,
        "window_seconds": 60,
        "rows": 10,
        "profile": PROFILE,
    }
    args.update(kwargs)
    return WindowProfile(**args)


def _ids(found: list[Any]) -> list[str]:
    return [x.id for x in found]


class PredictionLogSuite:
    """Tests of prediction-log segments and window profiles; needs a ``store`` fixture."""

    # --- segments ------------------------------------------------------------------------------

    def test_add_and_list_a_segment(self, store: Store) -> None:
        p = make_project(store)
        seg = segment(
            p.project_id,
            1_700_000_000_000,
            1_700_000_060_000,
            rows=12_345,
            digest=DIGEST,
            size_bytes=987_654,
            routes=("shadow", "primary", "primary"),
            model_versions=["churn/4", "churn/3"],
            created_at=5,
        )
        store.add_prediction_segment(seg)
        [got] = store.list_prediction_segments(p.project_id, "churn-api")
        assert isinstance(got, PredictionSegment)
        assert got == replace(
            seg, routes=("primary", "shadow"), model_versions=("churn/3", "churn/4")
        )
        with pytest.raises(FrozenInstanceError):
            got.rows = 1  # type: ignore[misc]
        before = now_ms()
        store.add_prediction_segment(segment(p.project_id, 5_000, 5_000, rows=0))  # one instant
        latest = store.list_prediction_segments(p.project_id, "churn-api")[0]  # by start time
        assert latest.created_at >= before  # 0 means now
        assert (latest.digest, latest.size_bytes, latest.routes, latest.model_versions) == (
            "",
            0,
            (),
            (),
        )

    def test_segments_overlapping_a_time_range(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        a = segment(pid, 0, 99, id="a" * 32)
        b = segment(pid, 100, 199, id="b" * 32)
        c = segment(pid, 200, 299, id="c" * 32)
        long = segment(pid, 150, 400, id="d" * 32)
        tie = segment(pid, 100, 120, id="0" * 32)  # starts with b: ordered by id after time
        for s in (c, long, a, tie, b):
            store.add_prediction_segment(s)

        def found(**kwargs: Any) -> list[str]:
            return _ids(store.list_prediction_segments(pid, "churn-api", **kwargs))

        assert found() == [a.id, tie.id, b.id, long.id, c.id]
        assert found(start=199) == [b.id, long.id, c.id]  # end_time == start overlaps
        assert found(start=200) == [long.id, c.id]
        assert found(end=100) == [a.id, tie.id, b.id]  # start_time == end overlaps
        assert found(end=99) == [a.id]
        assert found(start=150, end=150) == [b.id, long.id]  # one instant
        assert found(start=121, end=149) == [b.id]
        assert found(start=300) == [long.id]
        assert found(start=401) == []
        assert found(start=0, end=0) == [a.id]
        assert found(start=100, end=200, limit=2) == [tie.id, b.id]
        assert found(limit=1) == [a.id]
        assert found(start=10**15) == []

    def test_segment_range_queries_reach_segments_of_the_longest_span(self, store: Store) -> None:
        p = make_project(store)
        day = segment(p.project_id, 10 * HOUR, 10 * HOUR + MAX_SEGMENT_SPAN_MS, id="e" * 32)
        store.add_prediction_segment(day)
        end = day.end_time
        for start in (end, end - 1, 10 * HOUR):
            assert _ids(
                store.list_prediction_segments(p.project_id, "churn-api", start=start)
            ) == [day.id]
        assert store.list_prediction_segments(p.project_id, "churn-api", start=end + 1) == []
        assert store.list_prediction_segments(p.project_id, "churn-api", end=10 * HOUR - 1) == []

    def test_adding_a_segment_again_is_a_no_op(self, store: Store) -> None:
        p = make_project(store)
        seg = segment(p.project_id, routes=("b", "a"))
        store.add_prediction_segment(seg)
        stored = store.list_prediction_segments(p.project_id, "churn-api")
        store.add_prediction_segment(seg)  # a retry
        store.add_prediction_segment(replace(seg, routes=("a", "b", "a"), created_at=123))
        assert store.list_prediction_segments(p.project_id, "churn-api") == stored

    def test_adding_another_segment_with_an_id_raises_conflict(self, store: Store) -> None:
        p = make_project(store)
        seg = segment(p.project_id)
        store.add_prediction_segment(seg)
        stored = store.list_prediction_segments(p.project_id, "churn-api")
        for change in (
            {"rows": 101},
            {"end_time": 2_001},
            {"uri": "s3://elsewhere.parquet"},
            {"digest": DIGEST},
            {"routes": ("primary",)},
            {"deployment": "other"},
        ):
            with pytest.raises(Conflict, match=f"segment '{seg.id}' is already stored") as info:
                store.add_prediction_segment(replace(seg, **change))
            assert next(iter(change)) in str(info.value)
        assert store.list_prediction_segments(p.project_id, "churn-api") == stored
        assert store.list_prediction_segments(p.project_id, "other") == []

    def test_segments_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        bad: list[dict[str, Any]] = [
            {"id": "not-hex"},
            {"id": "A" * 32},
            {"start_time": -1},
            {"start_time": 2_001},  # after its end
            {"end_time": 1_000 + MAX_SEGMENT_SPAN_MS + 1},
            {"start_time": 1.5},
            {"rows": -1},
            {"rows": True},
            {"uri": ""},
            {"uri": "a\nb"},
            {"uri": "s" * 4_097},
            {"digest": "xyz"},
            {"size_bytes": -5},
            {"routes": "primary"},
            {"routes": ("no space",)},
            {"model_versions": ("churn",)},
            {"model_versions": ("churn/0",)},
            {"model_versions": ("a@b/1",)},
            {"deployment": "a/b"},
            {"deployment": ""},
            {"project_id": ""},
            {"created_at": -1},
        ]
        for change in bad:
            with pytest.raises(InvalidArgument):
                store.add_prediction_segment(replace(segment(pid), **change))
        with pytest.raises(InvalidArgument, match="spans at most 24 hours"):
            store.add_prediction_segment(segment(pid, 0, MAX_SEGMENT_SPAN_MS + 1))
        with pytest.raises(InvalidArgument, match="expected a PredictionSegment"):
            store.add_prediction_segment({"id": new_id()})  # type: ignore[arg-type]
        with pytest.raises(ProjectNotFound):
            store.add_prediction_segment(segment(new_id()))
        assert store.list_prediction_segments(pid, "churn-api") == []
        for query in ({"start": -1}, {"end": "x"}, {"start": 5, "end": 4}, {"limit": 0}):
            with pytest.raises(InvalidArgument):
                store.list_prediction_segments(pid, "churn-api", **query)
        with pytest.raises(InvalidArgument):
            store.list_prediction_segments(pid, "a@b")
        with pytest.raises(ProjectNotFound):
            store.list_prediction_segments(new_id(), "churn-api")

    def test_segments_are_kept_apart_and_not_audited(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        mine = segment(p.project_id)
        theirs = segment(q.project_id)
        other = segment(p.project_id, deployment="batch-api")
        for s in (mine, theirs, other):
            store.add_prediction_segment(s)  # no deployment of these names exists
        assert _ids(store.list_prediction_segments(p.project_id, "churn-api")) == [mine.id]
        assert _ids(store.list_prediction_segments(q.project_id, "churn-api")) == [theirs.id]
        assert _ids(store.list_prediction_segments(p.project_id, "batch-api")) == [other.id]
        assert store.list_prediction_segments(p.project_id, "Churn-API") == []
        assert audit_events(store, p) == [] and audit_events(store, q) == []

    # --- window profiles -----------------------------------------------------------------------

    def test_add_and_list_a_window_profile(self, store: Store) -> None:
        p = make_project(store)
        profile: dict[str, Any] = {
            **PROFILE,
            "columns": {k: dict(v) for k, v in PROFILE["columns"].items()},
        }
        wp = window(p.project_id, 1_700_000_040_000, created_at=7, rows=55, profile=profile)
        store.add_window_profile(wp)
        profile["columns"]["age"]["nulls"] = 99  # the store took a copy
        [got] = store.list_window_profiles(p.project_id, "churn-api")
        assert isinstance(got, WindowProfile)
        assert got == replace(wp, profile=PROFILE)
        with pytest.raises(FrozenInstanceError):
            got.rows = 1  # type: ignore[misc]
        got.profile["columns"]["age"]["nulls"] = 5  # a copy out too
        assert store.list_window_profiles(p.project_id, "churn-api")[0].profile == PROFILE
        before = now_ms()
        store.add_window_profile(window(p.project_id, 3_600_000, window_seconds=3_600))
        first = store.list_window_profiles(p.project_id, "churn-api")[0]  # by window start
        assert first.window_start == 3_600_000 and first.created_at >= before

    def test_window_profile_filters_and_order(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        m = 60_000
        w = {
            "a": window(pid, 0, route="primary", id="a" * 32),
            "b": window(pid, 0, route="canary", id="b" * 32),
            "c": window(pid, 0, route="primary", id="0" * 32),  # a second fragment of a
            "d": window(pid, m, route="primary", model_version="churn/4", id="d" * 32),
            "e": window(pid, 2 * m, route="Primary", id="e" * 32),
            "f": window(pid, 2 * m, route="canary", model_version="churn/4", id="f" * 32),
        }
        for key in "fedcba":
            store.add_window_profile(w[key])

        def found(**kwargs: Any) -> str:
            got = store.list_window_profiles(pid, "churn-api", **kwargs)
            by_id = {v.id: k for k, v in w.items()}
            return "".join(by_id[x.id] for x in got)

        assert found() == "bcadef"  # window_start, then route by code point, then id
        assert found(start=0, end=m) == "bca"  # [start, end): the end is left out
        assert found(start=m) == "def"
        assert found(start=m, end=m + 1) == "d"
        assert found(end=0) == ""
        assert found(start=m, end=m) == ""
        assert found(route="primary") == "cad"
        assert found(route="canary", start=m) == "f"
        assert found(model_version="churn/4") == "df"
        assert found(model_version="churn/4", route="canary") == "f"
        assert found(route="shadow") == ""
        assert store.list_window_profiles(pid, "other") == []
        day = window(pid, 0, window_seconds=86_400, id="9" * 32)  # a daily roll-up
        store.add_window_profile(day)
        w["g"] = day
        assert found(window_seconds=86_400) == "g"
        assert found(window_seconds=60, end=m) == "bca"
        with pytest.raises(InvalidArgument):
            store.list_window_profiles(pid, "churn-api", window_seconds=0)

    def test_adding_a_window_profile_again(self, store: Store) -> None:
        p = make_project(store)
        wp = window(p.project_id)
        store.add_window_profile(wp)
        stored = store.list_window_profiles(p.project_id, "churn-api")
        store.add_window_profile(replace(wp, created_at=99))  # a retry
        assert store.list_window_profiles(p.project_id, "churn-api") == stored
        for change in ({"rows": 11}, {"profile": {"rows": 11}}, {"route": "canary"}):
            with pytest.raises(Conflict, match=f"window profile '{wp.id}' is already stored"):
                store.add_window_profile(replace(wp, **change))
        assert store.list_window_profiles(p.project_id, "churn-api") == stored

    def test_window_profiles_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        bad: list[dict[str, Any]] = [
            {"id": "x"},
            {"window_start": 1_000},  # not a multiple of 60 s
            {"window_start": -60_000},
            {"window_seconds": 0},
            {"window_seconds": 400 * 86_400},
            {"rows": -1},
            {"route": "a b"},
            {"route": ""},
            {"model_version": "churn"},
            {"model_version": "churn/x"},
            {"profile": {"x": math.nan}},
            {"profile": ["a"]},
            {"deployment": "a@b"},
        ]
        for change in bad:
            with pytest.raises(InvalidArgument):
                store.add_window_profile(replace(window(pid), **change))
        with pytest.raises(InvalidArgument, match=r"not aligned .* \(60000 here\)"):
            store.add_window_profile(window(pid, 61_000))
        with pytest.raises(InvalidArgument, match="expected a WindowProfile"):
            store.add_window_profile(segment(pid))  # type: ignore[arg-type]
        with pytest.raises(ProjectNotFound):
            store.add_window_profile(window(new_id()))
        assert store.list_window_profiles(pid, "churn-api") == []
        for query in (
            {"start": -1},
            {"start": 2, "end": 1},
            {"route": "a b"},
            {"model_version": "3"},
        ):
            with pytest.raises(InvalidArgument):
                store.list_window_profiles(pid, "churn-api", **query)
        with pytest.raises(ProjectNotFound):
            store.list_window_profiles(new_id(), "churn-api")

    def test_window_profiles_are_kept_apart_and_not_audited(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        mine, theirs = window(p.project_id), window(q.project_id)
        store.add_window_profile(mine)
        store.add_window_profile(theirs)
        assert _ids(store.list_window_profiles(p.project_id, "churn-api")) == [mine.id]
        assert _ids(store.list_window_profiles(q.project_id, "churn-api")) == [theirs.id]
        assert audit_events(store, p) == []
