"""The model-registry part of the store conformance suite: aliases, the audit trail, and
concurrent writers.

:class:`AliasSuite` checks that aliases are set, moved and deleted (with compare-and-set), that
every registry change writes its audit event (and only when it is written), that audit events
are searchable, and that concurrent writers get distinct version numbers, one winner and one
chain of alias moves. :class:`~loopml.testing.StoreSuite` inherits it.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from loopml.entities import AuditEvent, ModelVersion, Project, RegisteredModel, now_ms
from loopml.errors import AlreadyExists, Conflict, InvalidArgument, ModelNotFound, ProjectNotFound
from loopml.store.base import Store, new_id
from loopml.testing.store_suite_registry import (
    DIGEST,
    audit_events,
    in_threads,
    make_project,
    register,
)

__all__ = ["AliasSuite"]


class AliasSuite:
    """Tests of aliases, the audit trail and concurrency; mixed into
    :class:`~loopml.testing.StoreSuite`."""

    # --- aliases -------------------------------------------------------------------------------

    def test_set_move_and_delete_an_alias(self, store: Store) -> None:
        p = make_project(store)
        for _ in range(3):
            register(store, p)
        before = now_ms()
        first = store.set_model_alias(
            p.project_id, "churn", "champion", 1, actor="alice", reason="first release"
        )
        assert isinstance(first, AuditEvent)
        assert (first.action, first.object_type, first.object_name, first.actor, first.reason) == (
            "alias.set",
            "alias",
            "churn@champion",
            "alice",
            "first release",
        )
        assert first.details == {"alias": "champion", "version": 1, "previous": None}
        assert before <= first.timestamp <= now_ms()
        assert audit_events(store, p)[0] == first
        assert store.get_model_version_by_alias(p.project_id, "churn", "champion").version == 1
        assert store.get_model_version(p.project_id, "churn", 1).aliases == ("champion",)

        moved = store.set_model_alias(p.project_id, "churn", "champion", 3, actor="bob")
        assert moved.details == {"alias": "champion", "version": 3, "previous": 1}
        assert moved.reason == "" and moved.timestamp >= first.timestamp
        got = store.get_model_version_by_alias(p.project_id, "churn", "champion")
        assert (got.version, got.aliases) == (3, ("champion",))
        assert store.get_model_version(p.project_id, "churn", 1).aliases == ()
        assert dict(store.get_registered_model(p.project_id, "churn").aliases) == {"champion": 3}

        gone = store.delete_model_alias(
            p.project_id, "churn", "champion", actor="carol", reason="incident 42"
        )
        assert (gone.action, gone.object_name, gone.actor, gone.reason) == (
            "alias.delete",
            "churn@champion",
            "carol",
            "incident 42",
        )
        assert gone.details == {"alias": "champion", "previous": 3}
        with pytest.raises(ModelNotFound, match="alias 'champion' of model 'churn'") as info:
            store.get_model_version_by_alias(p.project_id, "churn", "champion")
        assert info.value.version == "@champion"
        with pytest.raises(ModelNotFound, match="alias 'champion'"):
            store.delete_model_alias(p.project_id, "churn", "champion", actor="carol")
        assert dict(store.get_registered_model(p.project_id, "churn").aliases) == {}
        assert store.get_model_version(p.project_id, "churn", 3).aliases == ()
        history = audit_events(store, p, object_type="alias", object_name="churn@champion")
        assert [e.action for e in history] == ["alias.delete", "alias.set", "alias.set"]
        assert [e.id for e in history] == [gone.id, moved.id, first.id]

    def test_several_aliases_and_models(self, store: Store) -> None:
        p = make_project(store)
        register(store, p, "a")
        register(store, p, "a")
        register(store, p, "b")
        for alias in ("zeta", "champion", "Beta-2", "x_1"):
            store.set_model_alias(p.project_id, "a", alias, 2, actor="a")
        store.set_model_alias(p.project_id, "a", "old", 1, actor="a")
        store.set_model_alias(p.project_id, "b", "champion", 1, actor="a")
        assert store.get_model_version(p.project_id, "a", 2).aliases == (
            "Beta-2",
            "champion",
            "x_1",
            "zeta",
        )
        assert [v.aliases for v in store.list_model_versions(p.project_id, "a")] == [
            ("old",),
            ("Beta-2", "champion", "x_1", "zeta"),
        ]
        assert list(store.get_registered_model(p.project_id, "a").aliases) == [
            "Beta-2",
            "champion",
            "old",
            "x_1",
            "zeta",
        ]
        assert store.get_model_version_by_alias(p.project_id, "b", "champion").name == "b"
        with pytest.raises(ModelNotFound, match="alias 'Champion'"):
            store.get_model_version_by_alias(p.project_id, "a", "Champion")  # case-sensitive

    def test_an_alias_needs_an_existing_version(self, store: Store) -> None:
        p = make_project(store)
        register(store, p)
        count = len(audit_events(store, p))
        with pytest.raises(ModelNotFound, match="version 2 of model 'churn'"):
            store.set_model_alias(p.project_id, "churn", "champion", 2, actor="a")
        with pytest.raises(ModelNotFound, match="model 'ghost'"):
            store.set_model_alias(p.project_id, "ghost", "champion", 1, actor="a")
        assert len(audit_events(store, p)) == count  # nothing was audited
        assert dict(store.get_registered_model(p.project_id, "churn").aliases) == {}

    def test_set_alias_with_expected_version(self, store: Store) -> None:
        p = make_project(store)
        for _ in range(3):
            register(store, p)
        with pytest.raises(Conflict, match="is not set"):
            store.set_model_alias(p.project_id, "churn", "c", 1, actor="a", expected_version=2)
        store.set_model_alias(p.project_id, "churn", "c", 1, actor="a")
        event = store.set_model_alias(p.project_id, "churn", "c", 2, actor="a", expected_version=1)
        assert event.details == {"alias": "c", "version": 2, "previous": 1}
        count = len(audit_events(store, p))
        with pytest.raises(Conflict, match="points at version 2, not version 1"):
            store.set_model_alias(p.project_id, "churn", "c", 3, actor="a", expected_version=1)
        assert store.get_model_version_by_alias(p.project_id, "churn", "c").version == 2
        assert len(audit_events(store, p)) == count

    # --- audit trail ---------------------------------------------------------------------------

    def test_every_change_is_audited_in_order(self, store: Store) -> None:
        p = make_project(store)
        store.create_registered_model(p.project_id, "m", actor="a")
        store.create_model_version(
            p.project_id, "m", source="s", flavor="f", manifest_digest=DIGEST, actor="a"
        )
        store.update_registered_model(p.project_id, "m", description="d", actor="a")
        store.update_model_version(p.project_id, "m", 1, tags={"k": "v"}, actor="a")
        store.set_model_version_gate_result(p.project_id, "m", 1, {"passed": True}, actor="a")
        store.set_model_alias(p.project_id, "m", "champion", 1, actor="a")
        store.delete_model_alias(p.project_id, "m", "champion", actor="a")
        store.delete_registered_model(p.project_id, "m", actor="a")
        events = audit_events(store, p)
        assert [(e.action, e.object_name) for e in events] == [
            ("model.delete", "m"),
            ("alias.delete", "m@champion"),
            ("alias.set", "m@champion"),
            ("model_version.gate", "m/1"),
            ("model_version.update", "m/1"),
            ("model.update", "m"),
            ("model_version.create", "m/1"),
            ("model.create", "m"),
        ]
        stamps = [e.timestamp for e in events]
        assert stamps == sorted(stamps, reverse=True)
        assert len({e.id for e in events}) == len(events)

    def test_log_audit_event(self, store: Store) -> None:
        p = make_project(store)
        details: dict[str, Any] = {"replicas": [1, 2], "config": {"canary": 0.1}}
        before = now_ms()
        event = store.log_audit_event(
            p.project_id,
            actor="dave",
            action="deployment.update",
            object_type="deployment",
            object_name="churn-api",
            reason="scale up",
            details=details,
            origin="10.0.0.7",
        )
        details["replicas"].append(3)  # the store took a copy
        assert before <= event.timestamp <= now_ms()
        assert (event.actor, event.action, event.object_type, event.object_name) == (
            "dave",
            "deployment.update",
            "deployment",
            "churn-api",
        )
        assert (event.reason, event.origin) == ("scale up", "10.0.0.7")
        assert event.details == {"replicas": [1, 2], "config": {"canary": 0.1}}
        assert audit_events(store, p) == [event]
        plain = store.log_audit_event(
            p.project_id,
            actor="a",
            action="project.update",
            object_type="project",
            object_name="p",
        )
        assert (plain.origin, plain.reason, plain.details) == ("local", "", {})
        with pytest.raises(ProjectNotFound):
            store.log_audit_event(
                new_id(), actor="a", action="x", object_type="y", object_name="z"
            )

    def test_search_audit_events(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")

        def log(action: str, otype: str, name: str, project: Project = p) -> AuditEvent:
            return store.log_audit_event(
                project.project_id, actor="a", action=action, object_type=otype, object_name=name
            )

        e1 = log("deployment.create", "deployment", "api")
        e2 = log("deployment.update", "deployment", "api")
        e3 = log("deployment.create", "deployment", "batch")
        e4 = log("project.update", "project", "p")
        log("deployment.create", "deployment", "api", q)
        assert audit_events(store, p) == [e4, e3, e2, e1]  # newest first
        assert audit_events(store, p, object_type="deployment") == [e3, e2, e1]
        assert audit_events(store, p, object_type="deployment", object_name="api") == [e2, e1]
        assert audit_events(store, p, action="deployment.create") == [e3, e1]
        assert audit_events(store, p, object_name="nothing") == []
        assert store.search_audit_events(p.project_id, max_results=2) == [e4, e3]
        assert audit_events(store, p, since=e4.timestamp + 1) == []
        assert e4 in audit_events(store, p, since=e4.timestamp)
        assert audit_events(store, p, since=0) == [e4, e3, e2, e1]
        assert len(audit_events(store, q)) == 1
        with pytest.raises(ProjectNotFound):
            store.search_audit_events(new_id())
        for bad in ({"max_results": 0}, {"max_results": 50_001}, {"since": -1}, {"action": ""}):
            with pytest.raises(InvalidArgument):
                store.search_audit_events(p.project_id, **bad)

    # --- concurrency ---------------------------------------------------------------------------

    def test_concurrent_versions_get_distinct_consecutive_numbers(self, store: Store) -> None:
        p = make_project(store)
        store.create_registered_model(p.project_id, "race", actor="a")
        n = 8
        results = in_threads(n, lambda i: register(store, p, "race", description=str(i)))
        assert not [r for r in results if isinstance(r, Exception)], results
        versions = [r for r in results if isinstance(r, ModelVersion)]
        assert sorted(v.version for v in versions) == list(range(1, n + 1))
        listed = store.list_model_versions(p.project_id, "race")
        assert {v.description: v.version for v in listed} == {
            v.description: v.version for v in versions
        }
        assert store.get_registered_model(p.project_id, "race").latest_version == n
        assert len(audit_events(store, p, action="model_version.create")) == n

    def test_concurrent_model_creation_has_one_winner(self, store: Store) -> None:
        p = make_project(store)
        results = in_threads(
            8, lambda i: store.create_registered_model(p.project_id, "one", actor=f"u{i}")
        )
        winners = [r for r in results if isinstance(r, RegisteredModel)]
        assert len(winners) == 1, results
        assert all(isinstance(r, AlreadyExists) for r in results if r not in winners), results
        assert len(audit_events(store, p, action="model.create")) == 1

    def test_concurrent_alias_moves_form_one_chain(self, store: Store) -> None:
        p = make_project(store)
        for _ in range(4):
            register(store, p)
        n = 8
        results = in_threads(
            n,
            lambda i: store.set_model_alias(
                p.project_id, "churn", "champion", i % 4 + 1, actor=f"u{i}"
            ),
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        chain = audit_events(store, p, action="alias.set")[::-1]  # oldest first
        assert len(chain) == n
        assert chain[0].details["previous"] is None
        for before, after in itertools.pairwise(chain):
            assert after.details["previous"] == before.details["version"]  # each saw the last
        current = store.get_model_version_by_alias(p.project_id, "churn", "champion")
        assert current.version == chain[-1].details["version"]
