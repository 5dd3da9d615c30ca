"""The metadata store conformance suite: the tests every :class:`~loopml.store.Store` passes.

Subclass :class:`StoreSuite` in a test module and give it a ``store`` fixture that returns a
fresh, empty store; pytest then runs the whole contract against that backend::

    import pytest
    from loopml.store.memory import InMemoryStore
    from loopml.testing import StoreSuite


    class TestMemoryStore(StoreSuite):
        @pytest.fixture
        def store(self):
            return InMemoryStore()

Each test checks one clause of the contract in :class:`~loopml.store.Store`'s docstring or in a
method's ``Raises:``. Where the contract leaves a detail open (how text sorts, what an empty
project list means), the suite pins what the in-memory reference store does, and
:func:`~loopml.testing.store_suite_model.check_against_reference` compares a random workload
with the reference store end to end.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from loopml.entities import (
    ArtifactInfo,
    Environment,
    Metric,
    Param,
    Project,
    Run,
    RunStatus,
    Tag,
    now_ms,
)
from loopml.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    ParamConflict,
    ProjectNotFound,
    RunNotFound,
)
from loopml.store.base import FAILURE_REASON_TAG, Store, environment_id, new_id
from loopml.testing.store_suite_aliases import AliasSuite
from loopml.testing.store_suite_artifacts import SHA_A, ArtifactIndexSuite
from loopml.testing.store_suite_datasets import DatasetSuite
from loopml.testing.store_suite_model import check_against_reference, names
from loopml.testing.store_suite_registry import RegistrySuite
from loopml.testing.store_suite_search import SearchSuite, new_project

__all__ = ["StoreSuite", "check_against_reference"]

BAD_RUN_IDS: tuple[Any, ...] = (123, None, "", "abc", "A" * 32, "g" * 32, "0" * 33, " " + "0" * 31)


def _run(store: Store, project: Project | None = None, **kwargs: Any) -> Run:
    project = project or store.get_or_create_project("proj")
    return store.create_run(project.project_id, **kwargs)


def _in_threads(n: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` for i in 0..n-1 on n threads released together; results or exceptions."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # the caller checks what each thread raised
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung (a deadlock in the store?)"
    return results


def _values(history: Iterable[Metric]) -> list[str]:
    return [repr(m.value) for m in history]


class StoreSuite(ArtifactIndexSuite, AliasSuite, DatasetSuite, RegistrySuite, SearchSuite):
    """The :class:`~loopml.store.Store` contract as pytest tests; needs a ``store`` fixture."""

    # --- projects ------------------------------------------------------------------------------

    def test_create_project(self, store: Store) -> None:
        before = now_ms()
        p = store.create_project("churn", description="Who leaves, and why")
        assert isinstance(p, Project) and p.project_id and isinstance(p.project_id, str)
        assert (p.name, p.description) == ("churn", "Who leaves, and why")
        assert before <= p.created_at <= now_ms()

    def test_create_duplicate_project_raises_already_exists(self, store: Store) -> None:
        store.create_project("churn")
        with pytest.raises(AlreadyExists, match="churn"):
            store.create_project("churn")
        assert [p.name for p in store.list_projects()] == ["churn"]

    def test_get_project_by_name_and_by_id(self, store: Store) -> None:
        p = store.create_project("churn", description="d")
        store.create_project("other")
        assert store.get_project("churn") == p
        assert store.get_project(p.project_id) == p

    def test_get_unknown_project_raises_project_not_found_naming_it(self, store: Store) -> None:
        store.create_project("churn")
        with pytest.raises(ProjectNotFound, match="'fraud'"):
            store.get_project("fraud")
        with pytest.raises(ProjectNotFound):
            store.get_project("Churn")  # names are case-sensitive

    def test_list_projects_orders_by_name_code_point(self, store: Store) -> None:
        assert store.list_projects() == []
        for name in ("b-proj", "alpha", "Alpha", "_x", "Zeta", "a b"):
            store.create_project(name)
        listed = [p.name for p in store.list_projects()]
        assert listed == ["Alpha", "Zeta", "_x", "a b", "alpha", "b-proj"]

    def test_get_or_create_project(self, store: Store) -> None:
        created = store.get_or_create_project("churn")
        assert store.get_or_create_project("churn") == created
        assert store.get_project("churn") == created

    def test_get_or_create_project_is_race_safe(self, store: Store) -> None:
        results = _in_threads(8, lambda _: store.get_or_create_project("shared"))
        assert all(isinstance(r, Project) for r in results), results
        assert len({r.project_id for r in results if isinstance(r, Project)}) == 1
        assert [p.name for p in store.list_projects()] == ["shared"]

    def test_project_names_are_validated(self, store: Store) -> None:
        for bad in ("", "   ", "x" * 257, 5, None, "a\x00b", "tab\there"):
            with pytest.raises(InvalidArgument, match="project name"):
                store.create_project(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="description"):
            store.create_project("ok", description="d" * 300)
        for bad in ("", None, 7):
            with pytest.raises(InvalidArgument, match="project"):
                store.get_project(bad)  # type: ignore[arg-type]
        assert store.list_projects() == []

    # --- runs ----------------------------------------------------------------------------------

    def test_create_run_stores_every_field(self, store: Store) -> None:
        p = new_project(store)
        run = store.create_run(
            p.project_id,
            name="xgb-depth-8",
            user="ada",
            start_time=1_700_000_000_123,
            tags={"team": "risk", "loopml.source": "train.py"},
            params={"lr": "0.1", "depth": "8"},
        )
        assert len(run.run_id) == 32 and int(run.run_id, 16) >= 0
        expected = {
            "project_id": p.project_id,
            "name": "xgb-depth-8",
            "status": RunStatus.RUNNING,
            "start_time": 1_700_000_000_123,
            "end_time": None,
            "parent_run_id": None,
            "user": "ada",
            "params": {"lr": "0.1", "depth": "8"},
            "tags": {"team": "risk", "loopml.source": "train.py"},
            "metrics": {},
            "environment_id": None,
        }
        for got in (run, store.get_run(run.run_id)):
            assert {k: getattr(got, k) for k in expected} == expected
            assert got.status is RunStatus.RUNNING

    def test_create_run_defaults(self, store: Store) -> None:
        p = new_project(store)
        before = now_ms()
        a, b = store.create_run(p.project_id), store.create_run(p.project_id)
        assert before <= a.start_time <= now_ms()
        for run in (a, b):
            assert isinstance(run.name, str) and run.name.strip()
            assert run.user == "" and run.params == {} and run.tags == {} and run.metrics == {}
        assert a.run_id != b.run_id
        assert store.get_run(a.run_id).name == a.name

    def test_create_nested_run(self, store: Store) -> None:
        parent = _run(store, name="sweep")
        child = _run(store, name="trial-1", parent_run_id=parent.run_id)
        assert store.get_run(child.run_id).parent_run_id == parent.run_id
        assert store.get_run(parent.run_id).parent_run_id is None

    def test_create_run_in_unknown_project_raises(self, store: Store) -> None:
        with pytest.raises(ProjectNotFound):
            store.create_run(new_id(), name="orphan")
        new_project(store)
        assert len(store.search_runs()) == 0

    def test_create_run_with_unknown_parent_raises_run_not_found(self, store: Store) -> None:
        p = new_project(store)
        missing = new_id()
        with pytest.raises(RunNotFound, match=missing):
            store.create_run(p.project_id, parent_run_id=missing, params={"a": "1"})
        assert len(store.search_runs()) == 0

    def test_get_unknown_run_raises_run_not_found_naming_it(self, store: Store) -> None:
        _run(store)
        missing = new_id()
        with pytest.raises(RunNotFound, match=missing):
            store.get_run(missing)

    def test_terminal_status_sets_end_time(self, store: Store) -> None:
        for status in ("finished", RunStatus.FAILED, RunStatus.KILLED):
            run = _run(store, start_time=5)
            before = now_ms()
            store.update_run(run.run_id, status=status)
            updated = store.get_run(run.run_id)
            assert updated.status is RunStatus(status)
            assert updated.end_time is not None and before <= updated.end_time <= now_ms()

    def test_update_run_explicit_end_time_and_name(self, store: Store) -> None:
        run = _run(store, name="before", start_time=100)
        store.update_run(run.run_id, status="killed", end_time=250)
        updated = store.get_run(run.run_id)
        assert (updated.status, updated.end_time, updated.name) == (
            RunStatus.KILLED,
            250,
            "before",
        )
        assert updated.duration_ms == 150
        store.update_run(run.run_id, name="after")
        renamed = store.get_run(run.run_id)
        assert (renamed.name, renamed.status, renamed.end_time) == ("after", RunStatus.KILLED, 250)
        store.update_run(run.run_id)
        assert store.get_run(run.run_id) == renamed

    def test_resumed_run_clears_end_time(self, store: Store) -> None:
        run = _run(store)
        store.update_run(run.run_id, status="failed", end_time=10_000)
        store.update_run(run.run_id, status="running")
        resumed = store.get_run(run.run_id)
        assert resumed.status is RunStatus.RUNNING and resumed.end_time is None
        assert len(store.search_runs(filter="end_time is null and status = 'running'")) == 1

    def test_update_run_rejects_bad_input(self, store: Store) -> None:
        run = _run(store)
        for status in ("done", "Finished", 3, ""):
            with pytest.raises(InvalidArgument, match="status"):
                store.update_run(run.run_id, status=status)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="end_time"):
            store.update_run(run.run_id, end_time=-1)
        with pytest.raises(InvalidArgument, match="run name"):
            store.update_run(run.run_id, name="")
        with pytest.raises(RunNotFound):
            store.update_run(new_id(), status="finished")
        assert store.get_run(run.run_id) == run

    def test_delete_run(self, store: Store) -> None:
        keep = _run(store, name="keep", params={"a": "1"})
        gone = _run(store, name="gone", params={"a": "1"}, tags={"t": "x"})
        store.log_batch(gone.run_id, [Metric("m", 1.0)])
        store.log_artifacts(gone.run_id, [ArtifactInfo("f.txt", SHA_A, 1)])
        store.delete_run(gone.run_id)
        rid = gone.run_id
        for call in (
            lambda: store.get_run(rid),
            lambda: store.delete_run(rid),
            lambda: store.update_run(rid, status="finished"),
            lambda: store.log_batch(rid, [Metric("m", 2.0)]),
            lambda: store.delete_tag(rid, "t"),
            lambda: store.get_metric_history(rid, "m"),
            lambda: store.list_artifacts(rid),
            lambda: store.get_artifact(rid, "f.txt"),
            lambda: store.log_artifacts(rid, [ArtifactInfo("g", SHA_A, 1)]),
        ):
            with pytest.raises(RunNotFound):
                call()
        assert names(store.search_runs()) == ["keep"]
        assert store.get_run(keep.run_id) == keep

    def test_deleting_a_parent_keeps_its_children(self, store: Store) -> None:
        parent = _run(store, name="parent")
        child = _run(store, name="child", parent_run_id=parent.run_id)
        store.log_batch(child.run_id, [Metric("m", 1.0)])
        store.delete_run(parent.run_id)
        assert store.get_run(child.run_id).metrics == {"m": 1.0}
        assert names(store.search_runs()) == ["child"]

    def test_delete_tag(self, store: Store) -> None:
        run = _run(store, tags={"a": "1", "b": "2"})
        store.delete_tag(run.run_id, "a")
        store.delete_tag(run.run_id, "never-set")
        assert store.get_run(run.run_id).tags == {"b": "2"}
        with pytest.raises(RunNotFound):
            store.delete_tag(new_id(), "b")
        with pytest.raises(InvalidArgument, match="tag key"):
            store.delete_tag(run.run_id, "")

    # --- log_batch -----------------------------------------------------------------------------

    def test_log_batch_round_trip(self, store: Store) -> None:
        run = _run(store)
        store.log_batch(
            run.run_id,
            metrics=[Metric("acc", 0.5, 0, 10), Metric("loss", 3, 0, 10)],
            params=[Param("lr", "0.01"), Param("model", "")],
            tags=[Tag("team", "risk"), Tag("empty", "")],
        )
        got = store.get_run(run.run_id)
        assert got.metrics == {"acc": 0.5, "loss": 3.0}
        assert all(type(v) is float for v in got.metrics.values())
        assert got.params == {"lr": "0.01", "model": ""}
        assert got.tags == {"team": "risk", "empty": ""}
        store.log_batch(run.run_id)  # an empty batch is a no-op
        assert store.get_run(run.run_id) == got

    def test_logging_a_param_again_with_the_same_value_is_a_noop(self, store: Store) -> None:
        run = _run(store, params={"lr": "0.1"})
        store.log_batch(run.run_id, params=[Param("lr", "0.1"), Param("lr", "0.1")])
        store.log_batch(run.run_id, params=[Param("lr", "0.1"), Param("depth", "3")])
        assert store.get_run(run.run_id).params == {"lr": "0.1", "depth": "3"}

    def test_param_conflict_writes_nothing_of_the_batch(self, store: Store) -> None:
        run = _run(store, params={"lr": "0.1"}, tags={"t": "old"})
        with pytest.raises(ParamConflict, match="lr"):
            store.log_batch(
                run.run_id,
                metrics=[Metric("acc", 0.9, 0, 1)],
                params=[Param("new", "x"), Param("lr", "0.2")],
                tags=[Tag("t", "new"), Tag("u", "1")],
            )
        after = store.get_run(run.run_id)
        assert (after.params, after.tags, after.metrics) == ({"lr": "0.1"}, {"t": "old"}, {})
        assert store.get_metric_history(run.run_id, "acc") == []

    def test_param_conflict_inside_one_batch_writes_nothing(self, store: Store) -> None:
        run = _run(store)
        with pytest.raises(ParamConflict, match="depth"):
            store.log_batch(
                run.run_id, [Metric("m", 1.0)], [Param("depth", "3"), Param("depth", "4")]
            )
        assert store.get_run(run.run_id) == run

    def test_an_invalid_item_writes_nothing_of_the_batch(self, store: Store) -> None:
        run = _run(store)
        with pytest.raises(InvalidArgument):
            store.log_batch(
                run.run_id,
                [Metric("good", 1.0), Metric("bad", "x")],  # type: ignore[arg-type]
                [Param("p", "1")],
                [Tag("t", "1")],
            )
        with pytest.raises(InvalidArgument):
            store.log_batch(run.run_id, [Metric("good", 1.0)], tags=[Tag("bad key!", "1")])
        assert store.get_run(run.run_id) == run

    def test_tags_are_last_write_wins(self, store: Store) -> None:
        run = _run(store, tags={"stage": "dev"})
        store.log_batch(run.run_id, tags=[Tag("stage", "staging"), Tag("stage", "prod")])
        assert store.get_run(run.run_id).tags == {"stage": "prod"}
        store.log_batch(run.run_id, tags=[Tag("stage", "dev")])
        assert store.get_run(run.run_id).tags == {"stage": "dev"}

    def test_nan_and_infinities_are_stored_faithfully(self, store: Store) -> None:
        run = _run(store)
        points = [("nan", math.nan), ("pinf", math.inf), ("minf", -math.inf), ("big", 1e308)]
        store.log_batch(run.run_id, [Metric(k, v, 1, 1) for k, v in points])
        store.log_batch(run.run_id, [Metric("mixed", v, i, 0) for i, (_, v) in enumerate(points)])
        latest = store.get_run(run.run_id).metrics
        assert math.isnan(latest["nan"])
        assert (latest["pinf"], latest["minf"], latest["big"]) == (math.inf, -math.inf, 1e308)
        assert latest["mixed"] == 1e308
        assert _values(store.get_metric_history(run.run_id, "mixed")) == [
            "nan",
            "inf",
            "-inf",
            "1e+308",
        ]
        assert _values(store.get_metric_history(run.run_id, "nan")) == ["nan"]
        store.log_batch(run.run_id, [Metric("mixed", math.nan, 99, 0)])
        assert math.isnan(store.get_run(run.run_id).metrics["mixed"])

    def test_latest_metric_is_the_highest_step(self, store: Store) -> None:
        run = _run(store)
        store.log_batch(run.run_id, [Metric("m", 1.0, 5, 100), Metric("m", 2.0, 3, 999)])
        store.log_batch(run.run_id, [Metric("m", 3.0, 4, 5000), Metric("m", 4.0, -1, 9999)])
        assert store.get_run(run.run_id).metrics["m"] == 1.0
        store.log_batch(run.run_id, [Metric("m", 5.0, 6, 0)])
        assert store.get_run(run.run_id).metrics["m"] == 5.0

    def test_latest_metric_ties_break_by_timestamp_then_logging_order(self, store: Store) -> None:
        run = _run(store)
        store.log_batch(run.run_id, [Metric("m", 1.0, 2, 200), Metric("m", 2.0, 2, 100)])
        assert store.get_run(run.run_id).metrics["m"] == 1.0  # the later timestamp
        store.log_batch(run.run_id, [Metric("m", 3.0, 2, 200)])
        assert store.get_run(run.run_id).metrics["m"] == 3.0  # the last logged
        store.log_batch(run.run_id, [Metric("m", 4.0, 2, 200), Metric("m", 5.0, 2, 200)])
        assert store.get_run(run.run_id).metrics["m"] == 5.0  # last in the batch

    def test_metric_history_order_and_duplicates(self, store: Store) -> None:
        run = _run(store)
        store.log_batch(
            run.run_id,
            [Metric("m", 1.0, 2, 5), Metric("m", 2.0, 1, 9), Metric("m", 3.0, 1, 7)],
        )
        store.log_batch(run.run_id, [Metric("m", 4.0, 1, 7), Metric("m", 4.0, 1, 7)])
        store.log_batch(run.run_id, [Metric("m", 5.0, 0, 50), Metric("other", 6.0, 1, 7)])
        history = store.get_metric_history(run.run_id, "m")
        assert history == [
            Metric("m", 5.0, 0, 50),
            Metric("m", 3.0, 1, 7),
            Metric("m", 4.0, 1, 7),
            Metric("m", 4.0, 1, 7),
            Metric("m", 2.0, 1, 9),
            Metric("m", 1.0, 2, 5),
        ]

    def test_metric_history_of_unknown_key_or_run(self, store: Store) -> None:
        run = _run(store)
        store.log_batch(run.run_id, [Metric("m", 1.0)])
        assert store.get_metric_history(run.run_id, "nope") == []
        with pytest.raises(RunNotFound):
            store.get_metric_history(new_id(), "m")

    def test_metrics_of_runs_do_not_mix(self, store: Store) -> None:
        a, b = _run(store), _run(store)
        store.log_batch(a.run_id, [Metric("m", 1.0, 0, 0)])
        store.log_batch(b.run_id, [Metric("m", 2.0, 0, 0), Metric("m", 3.0, 1, 0)])
        assert store.get_metric_history(a.run_id, "m") == [Metric("m", 1.0, 0, 0)]
        assert store.get_run(a.run_id).metrics == {"m": 1.0}
        assert store.get_run(b.run_id).metrics == {"m": 3.0}

    def test_a_large_batch_round_trips(self, store: Store) -> None:
        run = _run(store)
        points = [Metric("loss", 1.0 / (i + 1), i, 1_000 + i) for i in range(10_000)]
        points += [Metric(f"m{i}", float(i), 0, 0) for i in range(200)]
        store.log_batch(run.run_id, points, [Param(f"p{i}", str(i)) for i in range(100)])
        assert store.get_metric_history(run.run_id, "loss") == points[:10_000]
        got = store.get_run(run.run_id)
        assert got.metrics["loss"] == 1.0 / 10_000 and got.metrics["m199"] == 199.0
        assert len(got.metrics) == 201 and len(got.params) == 100

    # --- validation ----------------------------------------------------------------------------

    def test_malformed_run_ids_raise_invalid_argument(self, store: Store) -> None:
        pid = new_project(store).project_id
        calls: list[Callable[[Any], object]] = [
            store.get_run,
            store.delete_run,
            lambda r: store.update_run(r, status="finished"),
            lambda r: store.log_batch(r, [Metric("m", 1.0)]),
            lambda r: store.delete_tag(r, "t"),
            lambda r: store.get_metric_history(r, "m"),
            store.list_artifacts,
            lambda r: store.heartbeat([r]),
            lambda r: store.create_run(pid, parent_run_id=r or "-"),  # None means no parent
        ]
        for call in calls:
            for bad in BAD_RUN_IDS:
                with pytest.raises(InvalidArgument, match="run id"):
                    call(bad)
        assert len(store.search_runs()) == 0

    def test_bad_metrics_raise_invalid_argument_naming_them(self, store: Store) -> None:
        run = _run(store)
        cases: list[tuple[Any, str]] = [
            (Metric("acc", "abc"), "'abc'"),  # type: ignore[arg-type]
            (Metric("acc", "0.5"), "number"),  # type: ignore[arg-type]
            (Metric("acc", True), "number"),
            (Metric("acc", None), "number"),  # type: ignore[arg-type]
            (Metric("acc", 10**400), "number"),
            (Metric("acc", 1.0, step=True), "step"),
            (Metric("acc", 1.0, step=1.5), "step"),  # type: ignore[arg-type]
            (Metric("acc", 1.0, step=2**63), "step"),
            (Metric("acc", 1.0, step="1"), "step"),  # type: ignore[arg-type]
            (Metric("acc", 1.0, timestamp=-1), "timestamp"),
            (Metric("acc", 1.0, timestamp=None), "timestamp"),  # type: ignore[arg-type]
            (("acc", 1.0), "Metric"),
            ({"key": "acc", "value": 1.0}, "Metric"),
        ]
        for metric, words in cases:
            with pytest.raises(InvalidArgument, match=words):
                store.log_batch(run.run_id, [metric])
        assert store.get_run(run.run_id) == run

    def test_bad_keys_raise_invalid_argument(self, store: Store) -> None:
        run = _run(store)
        bad_keys: tuple[Any, ...] = ("", "x" * 251, "a\nb", "a!b", " lead", "trail ", "a/../b", 5)
        for key in bad_keys:
            with pytest.raises(InvalidArgument, match="metric key"):
                store.log_batch(run.run_id, metrics=[Metric(key, 1.0)])
            with pytest.raises(InvalidArgument, match="param key"):
                store.log_batch(run.run_id, params=[Param(key, "v")])
            with pytest.raises(InvalidArgument, match="tag key"):
                store.log_batch(run.run_id, tags=[Tag(key, "v")])
        assert store.get_run(run.run_id) == run

    def test_bad_param_and_tag_values_raise_invalid_argument(self, store: Store) -> None:
        run = _run(store)
        with pytest.raises(InvalidArgument, match="'huge'"):
            store.log_batch(run.run_id, params=[Param("huge", "x" * 6_001)])
        with pytest.raises(InvalidArgument, match="'num'"):
            store.log_batch(run.run_id, params=[Param("num", 5)])  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="'huge'"):
            store.log_batch(run.run_id, tags=[Tag("huge", "x" * 8_001)])
        with pytest.raises(InvalidArgument, match="'none'"):
            store.log_batch(run.run_id, tags=[Tag("none", None)])  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="Param"):
            store.log_batch(run.run_id, params=[("k", "v")])  # type: ignore[list-item]
        assert store.get_run(run.run_id) == run

    def test_create_run_validates_its_arguments(self, store: Store) -> None:
        pid = new_project(store).project_id
        cases: list[tuple[dict[str, Any], str]] = [
            ({"name": ""}, "run name"),
            ({"name": "x" * 257}, "run name"),
            ({"user": 5}, "user"),
            ({"start_time": "now"}, "start_time"),
            ({"start_time": True}, "start_time"),
            ({"tags": ["a"]}, "tags"),
            ({"tags": {"t": 1}}, "'t'"),
            ({"params": {"p": 0.1}}, "'p'"),
            ({"params": {"bad key!": "1"}}, "param key"),
            ({"environment": "linux"}, "environment"),
        ]
        for kwargs, words in cases:
            with pytest.raises(InvalidArgument, match=words):
                store.create_run(pid, **kwargs)
        with pytest.raises(InvalidArgument, match="project id"):
            store.create_run("")
        assert len(store.search_runs()) == 0

    def test_values_at_the_limits_round_trip(self, store: Store) -> None:
        p = store.create_project("p" * 256, description="d" * 256)
        key = "k" * 250
        run = store.create_run(p.project_id, name="n" * 256, user="u" * 256)
        store.log_batch(
            run.run_id,
            [Metric(key, 1.0, -(2**63), 2**63 - 1), Metric(key, 2.0, 2**63 - 1, 0)],
            [Param(key, "v" * 6_000)],
            [Tag(key, "t" * 8_000)],
        )
        got = store.get_run(run.run_id)
        assert (got.name, got.user) == ("n" * 256, "u" * 256)
        assert (got.params[key], got.tags[key], got.metrics[key]) == (
            "v" * 6_000,
            "t" * 8_000,
            2.0,
        )
        steps = [m.step for m in store.get_metric_history(run.run_id, key)]
        assert steps == [-(2**63), 2**63 - 1]
        assert store.get_project(p.name).description == "d" * 256

    def test_keys_with_punctuation_unicode_and_spaces(self, store: Store) -> None:
        run = _run(store, name="Ünïcödé ✓ run", user="josé")
        keys = ("val/loss", "a.b", "x-y:z", "with space", "ñandú", "UPPER_lower")
        store.log_batch(
            run.run_id,
            [Metric(k, float(i), 0, 0) for i, k in enumerate(keys)],
            [Param(k, f"é{i}") for i, k in enumerate(keys)],
            [Tag(k, "☃") for k in keys],
        )
        got = store.get_run(run.run_id)
        assert got.metrics == {k: float(i) for i, k in enumerate(keys)}
        assert got.params == {k: f"é{i}" for i, k in enumerate(keys)}
        assert (got.name, got.user) == ("Ünïcödé ✓ run", "josé")
        found = store.search_runs(filter="metrics.`with space` = 3 and params.`ñandú` = 'é4'")
        assert names(found) == [got.name]
        assert names(store.search_runs(filter="tags.`val/loss` = '☃'")) == [got.name]

    # --- immutability --------------------------------------------------------------------------

    def test_a_returned_run_never_changes(self, store: Store) -> None:
        run = _run(store, tags={"t": "1"}, params={"p": "1"})
        store.log_batch(run.run_id, [Metric("m", 1.0)])
        snapshot = store.get_run(run.run_id)
        page = store.search_runs()
        store.log_batch(run.run_id, [Metric("m", 2.0, 1)], [Param("q", "2")], [Tag("t", "2")])
        store.delete_tag(run.run_id, "t")
        store.update_run(run.run_id, status="finished", name="renamed")
        for old in (snapshot, page.items[0]):
            assert (old.metrics, old.params, old.tags) == ({"m": 1.0}, {"p": "1"}, {"t": "1"})
            assert (old.status, old.end_time, old.name) == (RunStatus.RUNNING, None, run.name)
        assert (run.metrics, run.tags) == ({}, {"t": "1"})

    def test_returned_runs_and_their_mappings_are_read_only(self, store: Store) -> None:
        run = _run(store, tags={"t": "1"}, params={"p": "1"})
        store.log_batch(run.run_id, [Metric("m", 1.0)])
        for got in (store.get_run(run.run_id), store.search_runs().items[0]):
            for mapping in (got.params, got.tags, got.metrics):
                assert not isinstance(mapping, MutableMapping)
                with pytest.raises((TypeError, AttributeError)):
                    mapping["x"] = "y"  # type: ignore[index]
            with pytest.raises(FrozenInstanceError):
                got.name = "x"  # type: ignore[misc]
        assert isinstance(store.search_runs().items, tuple)

    def test_the_store_copies_what_the_caller_passes(self, store: Store) -> None:
        tags, params = {"t": "1"}, {"p": "1"}
        run = _run(store, tags=tags, params=params)
        tags["t"], params["p"], tags["new"] = "changed", "changed", "x"
        assert (store.get_run(run.run_id).tags, store.get_run(run.run_id).params) == (
            {"t": "1"},
            {"p": "1"},
        )
        assert (run.tags, run.params) == ({"t": "1"}, {"p": "1"})

    def test_environments_are_copied_and_read_only(self, store: Store) -> None:
        packages = {"numpy": "1.26.4"}
        run = _run(store, environment=Environment(python_version="3.11", packages=packages))
        assert run.environment_id is not None
        packages["numpy"] = "2.0.0"
        stored = store.get_environment(run.environment_id)
        assert dict(stored.packages) == {"numpy": "1.26.4"}
        assert not isinstance(stored.packages, MutableMapping)

    # --- heartbeats ----------------------------------------------------------------------------

    def test_heartbeat_records_the_time(self, store: Store) -> None:
        a, b = _run(store, start_time=10), _run(store, start_time=10)
        store.heartbeat([a.run_id, new_id()], at=500)  # unknown ids are ignored
        store.heartbeat([])
        assert store.get_run(a.run_id).heartbeat_at == 500
        assert store.get_run(b.run_id).heartbeat_at in (None, 10)
        before = now_ms()
        store.heartbeat([b.run_id])
        heartbeat = store.get_run(b.run_id).heartbeat_at
        assert heartbeat is not None and before <= heartbeat <= now_ms()
        with pytest.raises(InvalidArgument, match="at"):
            store.heartbeat([a.run_id], at="soon")  # type: ignore[arg-type]

    def test_fail_stale_runs_marks_only_old_running_runs(self, store: Store) -> None:
        stale = _run(store, name="stale", start_time=10)
        silent = _run(store, name="silent", start_time=50)  # no heartbeat: its start counts
        alive = _run(store, name="alive", start_time=10)
        done = _run(store, name="done", start_time=10)
        store.heartbeat([stale.run_id], at=100)
        store.heartbeat([alive.run_id], at=300)
        store.update_run(done.run_id, status="finished", end_time=20)
        failed = store.fail_stale_runs(older_than=200)
        assert sorted(failed) == sorted([stale.run_id, silent.run_id])
        for run_id in failed:
            got = store.get_run(run_id)
            assert got.status is RunStatus.FAILED and got.end_time is not None
            assert got.tags.get(FAILURE_REASON_TAG)
        assert store.get_run(alive.run_id).status is RunStatus.RUNNING
        assert FAILURE_REASON_TAG not in store.get_run(alive.run_id).tags
        assert (store.get_run(done.run_id).status, store.get_run(done.run_id).end_time) == (
            RunStatus.FINISHED,
            20,
        )
        assert store.fail_stale_runs(older_than=200) == []
        assert store.fail_stale_runs(older_than=300) == []  # strictly older than

    # --- environments --------------------------------------------------------------------------

    def test_equal_environments_share_one_id(self, store: Store) -> None:
        def env(seed: int | None = 7) -> Environment:
            return Environment("3.11.4", "linux", "abc123", True, ("train.py",), {"np": "1"}, seed)

        a, b = _run(store, environment=env()), _run(store, environment=env())
        c, d = _run(store, environment=env(seed=8)), _run(store)
        assert a.environment_id == b.environment_id == environment_id(env())
        assert c.environment_id == environment_id(env(8)) != a.environment_id
        assert d.environment_id is None
        assert store.get_run(b.run_id).environment_id == a.environment_id

    def test_get_environment_round_trip(self, store: Store) -> None:
        full = Environment(
            python_version="3.11.4",
            platform="Linux-6.1-x86_64",
            git_commit="0123abcd" * 5,
            git_dirty=False,
            command=("python", "train.py", "--lr", "0.1"),
            packages={f"pkg{i}": f"{i}.0" for i in range(300)},
            seed=0,
        )
        for env in (full, Environment()):
            run = _run(store, environment=env)
            assert run.environment_id is not None
            got = store.get_environment(run.environment_id)
            assert isinstance(got, Environment)
            assert got.to_dict() == env.to_dict()
            assert dict(got.packages) == dict(env.packages) and got.command == env.command

    def test_get_unknown_environment_raises_not_found(self, store: Store) -> None:
        missing = "f" * 64
        with pytest.raises(NotFound, match=missing):
            store.get_environment(missing)
        with pytest.raises(InvalidArgument):
            store.get_environment("")

    # --- threads -------------------------------------------------------------------------------

    @pytest.mark.slow
    def test_concurrent_log_batch_keeps_every_point(self, store: Store) -> None:
        run = _run(store)
        n_threads, n_calls = 8, 500

        def work(t: int) -> None:
            for i in range(n_calls):
                store.log_batch(
                    run.run_id,
                    [Metric("shared", float(t * n_calls + i), i, t), Metric(f"t{t}", 1.0, i, 0)],
                    tags=[Tag("last", str(t))],
                )

        assert _in_threads(n_threads, work) == [None] * n_threads
        history = store.get_metric_history(run.run_id, "shared")
        assert sorted(m.value for m in history) == [float(v) for v in range(n_threads * n_calls)]
        assert [(m.step, m.timestamp) for m in history] == sorted(
            (m.step, m.timestamp) for m in history
        )
        got = store.get_run(run.run_id)
        assert got.metrics["shared"] == float((n_threads - 1) * n_calls + n_calls - 1)
        assert all(len(store.get_metric_history(run.run_id, f"t{t}")) == n_calls for t in range(8))
        assert got.tags["last"] in {str(t) for t in range(n_threads)}

    def test_concurrent_params_from_threads(self, store: Store) -> None:
        run = _run(store)

        def work(t: int) -> None:
            for i in range(25):
                store.log_batch(
                    run.run_id, params=[Param("shared", "same"), Param(f"p{t}.{i}", "v")]
                )

        assert _in_threads(8, work) == [None] * 8
        params = store.get_run(run.run_id).params
        assert len(params) == 1 + 8 * 25 and params["shared"] == "same"

    def test_concurrent_conflicting_params_one_value_wins(self, store: Store) -> None:
        run = _run(store)
        results = _in_threads(
            8,
            lambda t: store.log_batch(
                run.run_id, [Metric("m", float(t))], [Param("seed", str(t))]
            ),
        )
        winners = [t for t, r in enumerate(results) if r is None]
        assert len(winners) == 1, results
        assert all(isinstance(r, ParamConflict) for r in results if r is not None), results
        got = store.get_run(run.run_id)
        assert got.params == {"seed": str(winners[0])}
        assert got.metrics == {"m": float(winners[0])}  # losers wrote nothing

    def test_concurrent_run_creation(self, store: Store) -> None:
        p = new_project(store)
        results = _in_threads(
            8,
            lambda t: [store.create_run(p.project_id, name=f"r{t}-{i}").run_id for i in range(20)],
        )
        created = [rid for r in results if isinstance(r, list) for rid in r]
        assert len(set(created)) == 160
        assert len(store.search_runs(max_results=1000)) == 160
