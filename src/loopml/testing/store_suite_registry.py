"""The model-registry part of the store conformance suite: models and versions.

:class:`RegistrySuite` checks the :class:`~loopml.store.registry.RegistryStore` contract for
registered models and their auto-numbered immutable versions, gate results, the errors, the
validation and the immutability of what is returned. Aliases, the audit trail and concurrent
writers are in :mod:`loopml.testing.store_suite_aliases`. :class:`~loopml.testing.StoreSuite`
inherits both.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from loopml.entities import (
    AuditEvent,
    ModelVersion,
    ModelVersionStatus,
    Project,
    RegisteredModel,
    now_ms,
)
from loopml.errors import (
    AlreadyExists,
    InvalidArgument,
    ModelNotFound,
    ProjectNotFound,
    RunNotFound,
)
from loopml.store.base import Store, new_id

__all__ = ["DIGEST", "RegistrySuite", "audit_events", "in_threads", "make_project", "register"]

DIGEST = hashlib.sha256(b"manifest").hexdigest()
SIGNATURE = {
    "inputs": [{"name": "age", "type": "integer"}, {"name": "plan", "type": "string"}],
    "outputs": [{"name": "churned", "type": "float", "shape": [-1, 1]}],
    "unicode": "Ünïcødé",
}


def make_project(store: Store, name: str = "proj") -> Project:
    return store.get_or_create_project(name)


def register(store: Store, project: Project, name: str = "churn", **kwargs: Any) -> ModelVersion:
    """Register a new version of ``name`` in ``project``, registering the model when needed."""
    try:
        store.create_registered_model(project.project_id, name, actor="setup")
    except AlreadyExists:
        pass
    args: dict[str, Any] = {
        "source": "runs:/0123/model",
        "flavor": "sklearn",
        "manifest_digest": DIGEST,
        "actor": "alice",
    }
    args.update(kwargs)
    return store.create_model_version(project.project_id, name, **args)


def audit_events(store: Store, project: Project, **filters: Any) -> list[AuditEvent]:
    return store.search_audit_events(project.project_id, max_results=1000, **filters)


def in_threads(n: int, work: Callable[[int], object]) -> list[object]:
    """``work(i)`` on n threads released together; each result or exception."""
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


class RegistrySuite:
    """Tests of the model registry and the audit trail; mixed into
    :class:`~loopml.testing.StoreSuite`."""

    # --- registered models -----------------------------------------------------------------------

    def test_create_registered_model(self, store: Store) -> None:
        p = make_project(store)
        before = now_ms()
        m = store.create_registered_model(
            p.project_id,
            "churn",
            description="who leaves\nand why",
            tags={"team": "growth", "task": "binary"},
            actor="alice",
        )
        assert isinstance(m, RegisteredModel)
        assert (m.project_id, m.name, m.description) == (
            p.project_id,
            "churn",
            "who leaves\nand why",
        )
        assert dict(m.tags) == {"team": "growth", "task": "binary"}
        assert (dict(m.aliases), m.latest_version) == ({}, 0)
        assert before <= m.created_at == m.updated_at <= now_ms()
        assert store.get_registered_model(p.project_id, "churn") == m
        [event] = audit_events(store, p)
        assert isinstance(event, AuditEvent) and len(event.id) == 32
        assert (event.action, event.object_type, event.object_name) == (
            "model.create",
            "model",
            "churn",
        )
        assert (event.actor, event.project_id, event.origin, event.reason) == (
            "alice",
            p.project_id,
            "local",
            "",
        )
        assert event.timestamp == m.created_at
        assert event.details == {
            "description": "who leaves\nand why",
            "tags": {"team": "growth", "task": "binary"},
        }

    def test_duplicate_model_name_raises_already_exists(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        store.create_registered_model(p.project_id, "churn", actor="a")
        with pytest.raises(AlreadyExists, match="'churn'"):
            store.create_registered_model(p.project_id, "churn", description="x", actor="b")
        store.create_registered_model(p.project_id, "Churn", actor="a")  # case-sensitive
        store.create_registered_model(q.project_id, "churn", actor="a")  # another project
        assert store.get_registered_model(p.project_id, "churn").description == ""
        assert len(audit_events(store, p, action="model.create")) == 2

    def test_list_registered_models_by_name(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        assert store.list_registered_models(p.project_id) == []
        for name in ("b", "Alpha", "a-z", "_x", "a", "a b"):
            store.create_registered_model(p.project_id, name, actor="a")
        store.create_registered_model(q.project_id, "other", actor="a")
        register(store, p, "b")
        register(store, p, "b")
        store.set_model_alias(p.project_id, "b", "champion", 1, actor="a")
        listed = store.list_registered_models(p.project_id)
        assert [m.name for m in listed] == ["Alpha", "_x", "a", "a b", "a-z", "b"]
        assert [m.latest_version for m in listed] == [0, 0, 0, 0, 0, 2]
        assert dict(listed[-1].aliases) == {"champion": 1}
        assert listed[-1] == store.get_registered_model(p.project_id, "b")
        assert [m.name for m in store.list_registered_models(q.project_id)] == ["other"]

    def test_update_registered_model(self, store: Store) -> None:
        p = make_project(store)
        m = store.create_registered_model(
            p.project_id, "churn", description="old", tags={"a": "1", "b": "2"}, actor="alice"
        )
        updated = store.update_registered_model(
            p.project_id, "churn", description="new", tags={"b": "3", "c": "4"}, actor="bob"
        )
        assert updated.description == "new"
        assert dict(updated.tags) == {"a": "1", "b": "3", "c": "4"}
        assert updated.created_at == m.created_at <= updated.updated_at
        assert store.get_registered_model(p.project_id, "churn") == updated
        event = audit_events(store, p)[0]
        assert (event.action, event.actor, event.object_name) == ("model.update", "bob", "churn")
        assert event.details == {
            "description": "new",
            "tags": {"b": "3", "c": "4"},
            "previous": {"description": "old", "tags": {"b": "2", "c": None}},
        }
        only_tags = store.update_registered_model(
            p.project_id, "churn", tags={"a": "x"}, actor="bob"
        )
        assert (only_tags.description, only_tags.tags["a"]) == ("new", "x")
        assert audit_events(store, p)[0].details == {
            "tags": {"a": "x"},
            "previous": {"tags": {"a": "1"}},
        }
        cleared = store.update_registered_model(p.project_id, "churn", description="", actor="c")
        assert cleared.description == ""
        count = len(audit_events(store, p))
        same = store.update_registered_model(p.project_id, "churn", actor="c")  # nothing given
        assert same == cleared and len(audit_events(store, p)) == count  # and nothing audited
        with pytest.raises(ModelNotFound, match="'nope'"):
            store.update_registered_model(p.project_id, "nope", description="x", actor="c")

    def test_delete_registered_model(self, store: Store) -> None:
        p = make_project(store)
        register(store, p, "churn")
        register(store, p, "churn")
        register(store, p, "other")
        store.set_model_alias(p.project_id, "churn", "champion", 2, actor="a")
        store.set_model_alias(p.project_id, "churn", "old", 1, actor="a")
        before = len(audit_events(store, p))
        store.delete_registered_model(p.project_id, "churn", actor="carol")
        for call in (
            lambda: store.get_registered_model(p.project_id, "churn"),
            lambda: store.get_model_version(p.project_id, "churn", 1),
            lambda: store.get_model_version_by_alias(p.project_id, "churn", "champion"),
            lambda: store.list_model_versions(p.project_id, "churn"),
        ):
            with pytest.raises(ModelNotFound, match="'churn'"):
                call()
        assert [v.name for v in store.list_model_versions(p.project_id)] == ["other"]
        events = audit_events(store, p)
        assert len(events) == before + 1  # the earlier events of the model stay
        assert (events[0].action, events[0].actor, events[0].object_name) == (
            "model.delete",
            "carol",
            "churn",
        )
        assert events[0].details == {"versions": 2, "aliases": {"champion": 2, "old": 1}}
        again = register(store, p, "churn")  # the name is free again, numbered from 1
        assert again.version == 1 and again.aliases == ()
        with pytest.raises(ModelNotFound, match="'ghost'"):
            store.delete_registered_model(p.project_id, "ghost", actor="a")

    # --- versions ------------------------------------------------------------------------------

    def test_create_model_version_stores_every_field(self, store: Store) -> None:
        p = make_project(store)
        run = store.create_run(p.project_id)
        m = store.create_registered_model(p.project_id, "churn", actor="setup")
        before = now_ms()
        v = store.create_model_version(
            p.project_id,
            "churn",
            source=f"runs:/{run.run_id}/model",
            run_id=run.run_id,
            flavor="sklearn",
            signature=SIGNATURE,
            manifest_digest=DIGEST,
            description="first try",
            tags={"stage": "dev"},
            actor="alice",
        )
        assert isinstance(v, ModelVersion)
        expected = {
            "project_id": p.project_id,
            "name": "churn",
            "version": 1,
            "source": f"runs:/{run.run_id}/model",
            "run_id": run.run_id,
            "flavor": "sklearn",
            "signature": SIGNATURE,
            "manifest_digest": DIGEST,
            "description": "first try",
            "tags": {"stage": "dev"},
            "status": ModelVersionStatus.READY,
            "aliases": (),
            "gate_result": None,
            "created_by": "alice",
        }
        read = [
            store.get_model_version(p.project_id, "churn", 1),
            store.list_model_versions(p.project_id, "churn")[0],
            store.list_model_versions(p.project_id)[0],
        ]
        for got in [v, *read]:
            assert {k: getattr(got, k) for k in expected} == expected
            assert before <= got.created_at <= now_ms()
            assert got == v
        assert v.uri == "models:/churn/1"
        assert list(v.signature or {}) == list(SIGNATURE)  # key order is kept
        model = store.get_registered_model(p.project_id, "churn")
        assert model.latest_version == 1
        assert m.updated_at <= model.updated_at == v.created_at
        event = audit_events(store, p)[0]
        assert (event.action, event.object_type, event.object_name, event.actor) == (
            "model_version.create",
            "model_version",
            "churn/1",
            "alice",
        )
        assert event.timestamp == v.created_at
        assert event.details == {
            "version": 1,
            "source": f"runs:/{run.run_id}/model",
            "run_id": run.run_id,
            "flavor": "sklearn",
            "manifest_digest": DIGEST,
        }

    def test_defaults_of_a_version(self, store: Store) -> None:
        p = make_project(store)
        v = register(store, p)
        assert (v.run_id, v.signature, v.description, dict(v.tags), v.gate_result) == (
            None,
            None,
            "",
            {},
            None,
        )

    def test_versions_are_numbered_per_model(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        a = [register(store, p, "a").version for _ in range(3)]
        b = [register(store, p, "b").version for _ in range(2)]
        c = [register(store, q, "a").version for _ in range(2)]
        assert (a, b, c) == ([1, 2, 3], [1, 2], [1, 2])
        assert [v.version for v in store.list_model_versions(p.project_id, "a")] == [1, 2, 3]
        assert store.get_registered_model(p.project_id, "a").latest_version == 3

    def test_a_version_needs_a_registered_model(self, store: Store) -> None:
        p = make_project(store)
        with pytest.raises(ModelNotFound, match="'ghost'") as info:
            store.create_model_version(
                p.project_id,
                "ghost",
                source="runs:/x/model",
                flavor="sklearn",
                manifest_digest=DIGEST,
                actor="a",
            )
        assert (info.value.name, info.value.version) == ("ghost", None)
        assert store.list_registered_models(p.project_id) == []
        assert audit_events(store, p) == []

    def test_a_version_with_an_unknown_run_writes_nothing(self, store: Store) -> None:
        p = make_project(store)
        store.create_registered_model(p.project_id, "churn", actor="a")
        missing = new_id()
        with pytest.raises(RunNotFound, match=missing):
            register(store, p, run_id=missing)
        assert store.list_model_versions(p.project_id, "churn") == []
        assert store.get_registered_model(p.project_id, "churn").latest_version == 0
        assert [e.action for e in audit_events(store, p)] == ["model.create"]

    def test_unknown_versions_raise_model_not_found(self, store: Store) -> None:
        p = make_project(store)
        register(store, p)
        for number in (2, 99):
            with pytest.raises(ModelNotFound, match=f"version {number} of model 'churn'") as info:
                store.get_model_version(p.project_id, "churn", number)
            assert info.value.version == number
        with pytest.raises(ModelNotFound):
            store.get_model_version(p.project_id, "Churn", 1)  # names are case-sensitive

    def test_list_model_versions(self, store: Store) -> None:
        p = make_project(store)
        r1, r2 = store.create_run(p.project_id), store.create_run(p.project_id)
        register(store, p, "b", run_id=r1.run_id)
        register(store, p, "a", run_id=r2.run_id)
        register(store, p, "b", run_id=r2.run_id)
        register(store, p, "a")
        store.create_registered_model(p.project_id, "empty", actor="x")
        every = store.list_model_versions(p.project_id)
        assert [(v.name, v.version) for v in every] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
        assert [v.version for v in store.list_model_versions(p.project_id, "b")] == [1, 2]
        assert store.list_model_versions(p.project_id, "empty") == []
        by_run = store.list_model_versions(p.project_id, run_id=r2.run_id)
        assert [(v.name, v.version) for v in by_run] == [("a", 1), ("b", 2)]
        assert [
            (v.name, v.version)
            for v in store.list_model_versions(p.project_id, "b", run_id=r1.run_id)
        ] == [("b", 1)]
        assert store.list_model_versions(p.project_id, run_id=new_id()) == []
        with pytest.raises(ModelNotFound, match="'nope'"):
            store.list_model_versions(p.project_id, "nope")

    def test_update_model_version(self, store: Store) -> None:
        p = make_project(store)
        v = register(store, p, description="old", tags={"a": "1"})
        updated = store.update_model_version(
            p.project_id,
            "churn",
            1,
            description="new",
            tags={"a": "2", "b": "3"},
            status="archived",
            actor="bob",
        )
        assert (updated.description, dict(updated.tags), updated.status) == (
            "new",
            {"a": "2", "b": "3"},
            ModelVersionStatus.ARCHIVED,
        )
        immutable = ("source", "run_id", "flavor", "signature", "manifest_digest", "created_at")
        assert all(getattr(updated, k) == getattr(v, k) for k in immutable)
        assert store.get_model_version(p.project_id, "churn", 1) == updated
        event = audit_events(store, p)[0]
        assert (event.action, event.object_name, event.actor) == (
            "model_version.update",
            "churn/1",
            "bob",
        )
        assert event.details == {
            "description": "new",
            "tags": {"a": "2", "b": "3"},
            "status": "archived",
            "previous": {"description": "old", "tags": {"a": "1", "b": None}, "status": "ready"},
        }
        back = store.update_model_version(
            p.project_id, "churn", 1, status=ModelVersionStatus.READY, actor="bob"
        )
        assert back.status is ModelVersionStatus.READY and back.description == "new"
        count = len(audit_events(store, p))
        assert store.update_model_version(p.project_id, "churn", 1, actor="bob") == back
        assert len(audit_events(store, p)) == count  # nothing given: nothing audited
        with pytest.raises(ModelNotFound, match="version 2"):
            store.update_model_version(p.project_id, "churn", 2, description="x", actor="b")
        with pytest.raises(InvalidArgument, match="status"):
            store.update_model_version(p.project_id, "churn", 1, status="deleted", actor="b")

    def test_gate_result(self, store: Store) -> None:
        p = make_project(store)
        register(store, p)
        result = {"passed": False, "checks": [{"name": "auc", "value": 0.81, "ok": False}]}
        v = store.set_model_version_gate_result(p.project_id, "churn", 1, result, actor="ci")
        assert v.gate_result == result
        assert store.get_model_version(p.project_id, "churn", 1).gate_result == result
        event = audit_events(store, p)[0]
        assert (event.action, event.object_type, event.object_name, event.actor) == (
            "model_version.gate",
            "model_version",
            "churn/1",
            "ci",
        )
        assert event.details == {"version": 1, "result": result}
        second = {"passed": True, "checks": []}
        store.set_model_version_gate_result(p.project_id, "churn", 1, second, actor="ci")
        assert store.get_model_version(p.project_id, "churn", 1).gate_result == second
        assert len(audit_events(store, p, action="model_version.gate")) == 2
        with pytest.raises(ModelNotFound, match="version 3"):
            store.set_model_version_gate_result(p.project_id, "churn", 3, second, actor="ci")
        for bad in ({"x": float("nan")}, {"x": object()}, [1]):
            with pytest.raises(InvalidArgument, match="gate result"):
                store.set_model_version_gate_result(
                    p.project_id,
                    "churn",
                    1,
                    bad,  # type: ignore[arg-type]
                    actor="ci",
                )
        assert len(audit_events(store, p, action="model_version.gate")) == 2

    # --- errors, validation, immutability --------------------------------------------------------

    def test_unknown_project(self, store: Store) -> None:
        missing = new_id()
        calls: tuple[Callable[[], object], ...] = (
            lambda: store.create_registered_model(missing, "m", actor="a"),
            lambda: store.get_registered_model(missing, "m"),
            lambda: store.list_registered_models(missing),
            lambda: store.update_registered_model(missing, "m", description="d", actor="a"),
            lambda: store.delete_registered_model(missing, "m", actor="a"),
            lambda: register(store, Project(missing, "ghost")),
            lambda: store.get_model_version(missing, "m", 1),
            lambda: store.list_model_versions(missing),
            lambda: store.list_model_versions(missing, "m"),
            lambda: store.update_model_version(missing, "m", 1, description="d", actor="a"),
            lambda: store.set_model_version_gate_result(missing, "m", 1, {}, actor="a"),
            lambda: store.set_model_alias(missing, "m", "c", 1, actor="a"),
            lambda: store.delete_model_alias(missing, "m", "c", actor="a"),
            lambda: store.get_model_version_by_alias(missing, "m", "c"),
            lambda: store.search_audit_events(missing),
        )
        for call in calls:
            with pytest.raises(ProjectNotFound, match=missing):
                call()

    def test_arguments_are_validated(self, store: Store) -> None:
        p = make_project(store)
        good = register(store, p)
        count = len(audit_events(store, p))

        def bad(match: str, **kwargs: Any) -> None:
            name = kwargs.pop("name", "churn")
            with pytest.raises(InvalidArgument, match=match):
                register(store, p, name, **kwargs)

        for name in ("", "a/b", "a@b", " a", "a ", "x" * 257, "a\nb", 5, None):
            with pytest.raises(InvalidArgument, match="model name"):
                store.create_registered_model(p.project_id, name, actor="a")  # type: ignore[arg-type]
        bad("source", source="")
        bad("source", source=7)
        bad("source", source="x" * 20_000)
        bad("run id", run_id="nope")
        bad("flavor", flavor="")
        bad("flavor", flavor="a\tb")
        bad("signature", signature=[1])
        bad("signature", signature={"a": float("inf")})
        bad("signature", signature={"a": {1, 2}})
        bad("signature.*key", signature={1: "x"})
        for digest in ("", "A" * 64, "a" * 63, None):
            bad("manifest_digest", manifest_digest=digest)
        bad("description", description=3)
        bad("description", description="d\x00")
        bad("tag", tags={"k": 1})
        bad("tag key", tags={"": "v"})
        bad("tags", tags=["k"])
        bad("actor", actor="")
        bad("actor", actor=None)
        for version in (0, -1, "1", 1.5, True, None):
            with pytest.raises(InvalidArgument, match="model version"):
                store.get_model_version(p.project_id, "churn", version)  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument, match="model version"):
                store.set_model_alias(p.project_id, "churn", "c", version, actor="a")  # type: ignore[arg-type]
        for alias in ("", "12", "latest", "LATEST", "a b", "a/b", "a@b", "a.b", "x" * 65, 3):
            with pytest.raises(InvalidArgument, match="alias"):
                store.set_model_alias(p.project_id, "churn", alias, 1, actor="a")  # type: ignore[arg-type]
            with pytest.raises(InvalidArgument, match="alias"):
                store.get_model_version_by_alias(p.project_id, "churn", alias)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="reason"):
            store.set_model_alias(p.project_id, "churn", "c", 1, actor="a", reason="r" * 5000)
        with pytest.raises(InvalidArgument, match="actor"):
            store.delete_registered_model(p.project_id, "churn", actor="")
        with pytest.raises(InvalidArgument, match="details"):
            store.log_audit_event(
                p.project_id,
                actor="a",
                action="x",
                object_type="y",
                object_name="z",
                details={"t": object()},
            )
        for field, value in (
            ("action", "a b!"),
            ("action", "a" * 65),
            ("object_type", ""),
            ("object_name", ""),
            ("object_name", "a\nb"),
            ("object_name", "n" * 513),
            ("origin", ""),
        ):
            fields: dict[str, Any] = {
                "actor": "a",
                "action": "x",
                "object_type": "y",
                "object_name": "z",
            }
            fields[field] = value
            with pytest.raises(InvalidArgument):
                store.log_audit_event(p.project_id, **fields)
        assert store.list_model_versions(p.project_id) == [good]
        assert len(audit_events(store, p)) == count

    def test_names_may_hold_spaces_and_unicode(self, store: Store) -> None:
        p = make_project(store)
        v = register(store, p, "Modèle de churn v2")
        assert v.uri == "models:/Modèle de churn v2/1"
        store.set_model_alias(p.project_id, "Modèle de churn v2", "prod-EU_1", 1, actor="Zoë")
        got = store.get_model_version_by_alias(p.project_id, "Modèle de churn v2", "prod-EU_1")
        assert got.aliases == ("prod-EU_1",)
        assert audit_events(store, p)[0].object_name == "Modèle de churn v2@prod-EU_1"

    def test_returned_entities_are_immutable_copies(self, store: Store) -> None:
        p = make_project(store)
        tags = {"a": "1"}
        signature: dict[str, Any] = {"inputs": [{"name": "x"}]}
        v = register(store, p, tags=tags, signature=signature)
        tags["a"] = "changed"  # the caller's dicts were copied
        signature["inputs"].append({"name": "y"})
        store.set_model_version_gate_result(p.project_id, "churn", 1, {"checks": [1]}, actor="a")
        model = store.get_registered_model(p.project_id, "churn")
        got = store.get_model_version(p.project_id, "churn", 1)
        event = store.set_model_alias(p.project_id, "churn", "c", 1, actor="a")
        for entity, field in ((model, "name"), (got, "version"), (v, "tags"), (event, "actor")):
            with pytest.raises(FrozenInstanceError):
                setattr(entity, field, "x")
        with pytest.raises(TypeError):
            got.tags["a"] = "x"  # type: ignore[index]
        with pytest.raises(TypeError):
            model.tags["a"] = "x"  # type: ignore[index]
        with pytest.raises(TypeError):
            model.aliases["c"] = 2  # type: ignore[index]
        assert got.signature is not None and got.gate_result is not None
        got.signature["inputs"].append({"name": "z"})  # and so are the returned ones
        got.gate_result["checks"].append(2)
        event.details["version"] = 99  # type: ignore[index]
        for listed in audit_events(store, p):
            listed.details["x"] = 1  # type: ignore[index]
        again = store.get_model_version(p.project_id, "churn", 1)
        assert dict(again.tags) == {"a": "1"}
        assert again.signature == {"inputs": [{"name": "x"}]}
        assert again.gate_result == {"checks": [1]}
        assert audit_events(store, p)[0].details == {"alias": "c", "version": 1, "previous": None}
        assert "x" not in audit_events(store, p)[-1].details

    def test_deleting_a_run_keeps_its_model_versions(self, store: Store) -> None:
        p = make_project(store)
        run = store.create_run(p.project_id)
        v = register(store, p, run_id=run.run_id)
        store.delete_run(run.run_id)
        kept = store.get_model_version(p.project_id, "churn", 1)
        assert kept.run_id is None and kept.source == v.source
        assert store.list_model_versions(p.project_id, run_id=run.run_id) == []
