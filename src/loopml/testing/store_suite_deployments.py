"""The serving part of the store conformance suite: deployments.

:class:`DeploymentSuite` checks the :class:`~loopml.store.deployments.DeploymentStore` contract
for deployments: create, read, list, partial updates with compare-and-set on ``revision``,
delete, the audit events of each change, the validation of routes and the other arguments, the
immutability of what is returned, project isolation and concurrent writers. It inherits
:class:`~loopml.testing.store_suite_segments.PredictionLogSuite` (segments and window profiles)
and :class:`~loopml.testing.store_suite_traffic.TrafficSuite` (traffic windows), so one base
class runs the whole serving contract::

    class TestMyStore(StoreSuite, DeploymentSuite):
        @pytest.fixture
        def store(self): ...
"""

from __future__ import annotations

import itertools
import math
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from loopml.entities import Deployment, Route, RouteRole, now_ms
from loopml.errors import (
    AlreadyExists,
    Conflict,
    DeploymentNotFound,
    InvalidArgument,
    NotFound,
    ProjectNotFound,
)
from loopml.store.base import Store, new_id
from loopml.store.deployments import UNSET
from loopml.testing.store_suite_registry import audit_events, in_threads, make_project
from loopml.testing.store_suite_segments import PredictionLogSuite, segment
from loopml.testing.store_suite_traffic import TrafficSuite

__all__ = ["ROUTES", "DeploymentSuite", "deploy"]

ROUTES = (
    Route("primary", "models:/churn@champion", RouteRole.PRIMARY),
    Route("canary", "models:/churn/4", RouteRole.CANARY, 0.1),
    Route("shadow", "models:/churn-v2/latest", RouteRole.SHADOW, 0.5),
)
ROUTE_DICTS = [r.to_dict() for r in ROUTES]
_TEXT: Any = "0.5"  # wrong types, as a caller without type checks may pass them
_BOSS: Any = "boss"


def deploy(store: Store, project_id: str, name: str = "churn-api", **kwargs: Any) -> Deployment:
    """Create a deployment with :data:`ROUTES` (unless ``routes`` is given)."""
    routes = kwargs.pop("routes", ROUTES)
    kwargs.setdefault("actor", "alice")
    return store.create_deployment(project_id, name, routes, **kwargs)


def _primary(uri: str = "models:/churn/1", name: str = "primary") -> Route:
    return Route(name, uri, RouteRole.PRIMARY)


class DeploymentSuite(PredictionLogSuite, TrafficSuite):
    """Tests of deployments (and, inherited, of prediction-log segments and window profiles);
    needs a ``store`` fixture."""

    # --- create, read, list --------------------------------------------------------------------

    def test_create_deployment(self, store: Store) -> None:
        p = make_project(store)
        config = {"batching": {"max_batch": 64, "max_wait_ms": 5.5}, "limits": [1, None, "x"]}
        before = now_ms()
        d = store.create_deployment(
            p.project_id,
            "churn-api",
            [ROUTES[0], ROUTE_DICTS[1], ROUTES[2]],  # Routes and dicts mix
            sticky_key="X-User-Id",
            description="churn scores\nfor the CRM",
            config=config,
            actor="alice",
        )
        assert isinstance(d, Deployment)
        assert (d.project_id, d.name, d.routes) == (p.project_id, "churn-api", ROUTES)
        assert (d.sticky_key, d.description, d.config) == (
            "X-User-Id",
            "churn scores\nfor the CRM",
            config,
        )
        assert (d.revision, d.created_by, d.updated_by) == (1, "alice", "alice")
        assert before <= d.created_at == d.updated_at <= now_ms()
        assert d.primary == ROUTES[0] and d.canaries == (ROUTES[1],) and d.shadows == (ROUTES[2],)
        assert d.route("canary").weight == 0.1 and d.primary.role is RouteRole.PRIMARY
        with pytest.raises(KeyError, match="no route 'blue'"):
            d.route("blue")
        assert store.get_deployment(p.project_id, "churn-api") == d
        [event] = audit_events(store, p)
        assert (event.action, event.object_type, event.object_name, event.actor) == (
            "deployment.create",
            "deployment",
            "churn-api",
            "alice",
        )
        assert event.details == {
            "routes": ROUTE_DICTS,
            "sticky_key": "X-User-Id",
            "description": "churn scores\nfor the CRM",
            "config": config,
            "revision": 1,
        }
        assert event.timestamp == d.created_at

    def test_defaults_of_a_deployment(self, store: Store) -> None:
        p = make_project(store)
        d = deploy(
            store,
            p.project_id,
            routes=[{"name": "main", "model_uri": "models:/m/1", "role": "primary"}],
        )
        assert d.routes == (Route("main", "models:/m/1", RouteRole.PRIMARY, 0.0),)
        assert (d.sticky_key, d.description, dict(d.config), d.revision) == (None, "", {}, 1)
        assert (d.canaries, d.shadows) == ((), ())
        shadow = Route("s", "models:/m/2", "shadow")  # type: ignore[arg-type]
        assert (shadow.role, shadow.weight) == (RouteRole.SHADOW, 1.0)  # a shadow mirrors all
        canary = Route("c", "models:/m/2", RouteRole.CANARY)
        assert canary.weight == 0.0
        d2 = deploy(store, p.project_id, "two", routes=[_primary(), shadow, canary])
        assert store.get_deployment(p.project_id, "two").routes == (_primary(), shadow, canary)
        assert d2.shadows[0].weight == 1.0

    def test_duplicate_deployment_name_raises_already_exists(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        first = deploy(store, p.project_id)
        with pytest.raises(AlreadyExists, match="deployment 'churn-api' already exists"):
            deploy(store, p.project_id, routes=[_primary()], actor="bob")
        assert store.get_deployment(p.project_id, "churn-api") == first
        assert len(audit_events(store, p)) == 1  # the refused create wrote nothing
        other = deploy(store, q.project_id)  # the same name in another project
        assert other.project_id == q.project_id
        deploy(store, p.project_id, "Churn-API")  # names are case-sensitive

    def test_unknown_deployments_and_projects(self, store: Store) -> None:
        p = make_project(store)
        with pytest.raises(DeploymentNotFound, match="deployment 'ghost' does not exist") as info:
            store.get_deployment(p.project_id, "ghost")
        assert isinstance(info.value, NotFound) and info.value.name == "ghost"
        assert (info.value.code, info.value.http_status) == ("DEPLOYMENT_NOT_FOUND", 404)
        for call in (
            lambda: store.update_deployment(p.project_id, "ghost", description="x", actor="a"),
            lambda: store.delete_deployment(p.project_id, "ghost", actor="a"),
        ):
            with pytest.raises(DeploymentNotFound):
                call()
        nowhere = new_id()
        for lookup in (
            lambda: deploy(store, nowhere),
            lambda: store.get_deployment(nowhere, "churn-api"),
            lambda: store.list_deployments(nowhere),
            lambda: store.update_deployment(nowhere, "churn-api", description="x", actor="a"),
            lambda: store.delete_deployment(nowhere, "churn-api", actor="a"),
        ):
            with pytest.raises(ProjectNotFound):
                lookup()
        assert audit_events(store, p) == []

    def test_list_deployments_by_name(self, store: Store) -> None:
        p, q = make_project(store, "p"), make_project(store, "q")
        assert store.list_deployments(p.project_id) == []
        for name in ("b", "a", "B", "é", "a b"):
            deploy(store, p.project_id, name)
        deploy(store, q.project_id, "other")
        listed = store.list_deployments(p.project_id)
        assert [d.name for d in listed] == ["B", "a", "a b", "b", "é"]  # by code point
        assert listed[1] == store.get_deployment(p.project_id, "a")
        assert [d.name for d in store.list_deployments(q.project_id)] == ["other"]

    # --- update --------------------------------------------------------------------------------

    def test_update_changes_only_the_fields_given(self, store: Store) -> None:
        p = make_project(store)
        d = deploy(store, p.project_id, sticky_key="user", config={"a": 1}, description="v1")
        up = store.update_deployment(
            p.project_id, "churn-api", description="v2", actor="bob", reason="typo"
        )
        assert (up.description, up.revision, up.updated_by, up.created_by) == (
            "v2",
            2,
            "bob",
            "alice",
        )
        assert (up.routes, up.sticky_key, up.config, up.created_at) == (
            d.routes,
            "user",
            {"a": 1},
            d.created_at,
        )
        assert up.updated_at >= d.updated_at
        assert store.get_deployment(p.project_id, "churn-api") == up
        event = audit_events(store, p)[0]
        assert (event.action, event.object_name, event.actor, event.reason) == (
            "deployment.update",
            "churn-api",
            "bob",
            "typo",
        )
        assert event.details == {
            "before": {"description": "v1"},
            "after": {"description": "v2"},
            "revision": 2,
        }
        assert event.timestamp == up.updated_at

        promoted = [Route("primary", "models:/churn/4", RouteRole.PRIMARY)]
        up = store.update_deployment(
            p.project_id,
            "churn-api",
            routes=promoted,
            sticky_key=None,  # None turns sticky routing off
            config={"b": [2]},
            actor="carol",
        )
        assert (up.routes, up.sticky_key, up.config, up.description, up.revision) == (
            tuple(promoted),
            None,
            {"b": [2]},
            "v2",
            3,
        )
        assert audit_events(store, p)[0].details == {
            "before": {"routes": ROUTE_DICTS, "sticky_key": "user", "config": {"a": 1}},
            "after": {
                "routes": [promoted[0].to_dict()],
                "sticky_key": None,
                "config": {"b": [2]},
            },
            "revision": 3,
        }
        up = store.update_deployment(p.project_id, "churn-api", sticky_key="k", actor="a")
        assert (up.sticky_key, up.revision, up.routes) == ("k", 4, tuple(promoted))
        assert store.update_deployment(
            p.project_id, "churn-api", sticky_key=UNSET, actor="a"
        ) == store.get_deployment(p.project_id, "churn-api")  # UNSET: leave it

    def test_an_update_that_changes_nothing_writes_nothing(self, store: Store) -> None:
        p = make_project(store)
        d = deploy(store, p.project_id, sticky_key="user", config={"a": 1}, description="v1")
        same = store.update_deployment(
            p.project_id,
            "churn-api",
            routes=ROUTE_DICTS,
            sticky_key="user",
            description="v1",
            config={"a": 1},
            actor="bob",
        )
        assert same == d and same.revision == 1
        assert store.update_deployment(p.project_id, "churn-api", actor="bob") == d
        assert [e.action for e in audit_events(store, p)] == ["deployment.create"]
        up = store.update_deployment(
            p.project_id, "churn-api", description="v1", config={"a": 2}, actor="bob"
        )
        assert up.revision == 2  # only what differs is recorded
        assert audit_events(store, p)[0].details == {
            "before": {"config": {"a": 1}},
            "after": {"config": {"a": 2}},
            "revision": 2,
        }

    def test_update_with_expected_revision(self, store: Store) -> None:
        p = make_project(store)
        deploy(store, p.project_id)
        up = store.update_deployment(
            p.project_id, "churn-api", description="x", actor="a", expected_revision=1
        )
        assert up.revision == 2
        count = len(audit_events(store, p))
        with pytest.raises(Conflict, match="is at revision 2, not 1 as expected") as info:
            store.update_deployment(
                p.project_id, "churn-api", description="y", actor="b", expected_revision=1
            )
        assert info.value.http_status == 409
        with pytest.raises(Conflict):  # also when the update would change nothing
            store.update_deployment(p.project_id, "churn-api", actor="b", expected_revision=3)
        assert store.get_deployment(p.project_id, "churn-api") == up
        assert len(audit_events(store, p)) == count
        again = store.update_deployment(
            p.project_id, "churn-api", description="y", actor="b", expected_revision=2
        )
        assert (again.description, again.revision) == ("y", 3)

    # --- delete --------------------------------------------------------------------------------

    def test_delete_deployment(self, store: Store) -> None:
        p = make_project(store)
        deploy(store, p.project_id, config={"a": 1})
        store.update_deployment(p.project_id, "churn-api", description="d", actor="a")
        seg = segment(p.project_id)
        store.add_prediction_segment(seg)
        store.delete_deployment(p.project_id, "churn-api", actor="carol", reason="retired")
        with pytest.raises(DeploymentNotFound):
            store.get_deployment(p.project_id, "churn-api")
        assert store.list_deployments(p.project_id) == []
        event = audit_events(store, p)[0]
        assert (event.action, event.object_name, event.actor, event.reason) == (
            "deployment.delete",
            "churn-api",
            "carol",
            "retired",
        )
        assert event.details == {
            "routes": ROUTE_DICTS,
            "sticky_key": None,
            "description": "d",
            "config": {"a": 1},
            "revision": 2,
        }
        with pytest.raises(DeploymentNotFound):
            store.delete_deployment(p.project_id, "churn-api", actor="carol")
        # Its history stays: the segment, and every audit event.
        assert [s.id for s in store.list_prediction_segments(p.project_id, "churn-api")] == [
            seg.id
        ]
        history = audit_events(store, p, object_type="deployment", object_name="churn-api")
        assert [e.action for e in history] == [
            "deployment.delete",
            "deployment.update",
            "deployment.create",
        ]
        stamps = [e.timestamp for e in history]
        assert stamps == sorted(stamps, reverse=True)
        reborn = deploy(store, p.project_id)  # the name is free again, from revision 1
        assert reborn.revision == 1

    # --- validation ----------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("routes", "message"),
        [
            ([], "1 to 16 routes"),
            ([_primary(name=f"r{i}") for i in range(17)], "1 to 16 routes"),
            ("models:/churn/1", "must be a list of routes"),
            ({"name": "primary"}, "must be a list of routes"),
            ([_primary(), _primary(name="second")], "exactly one primary route, got 'primary'"),
            (
                [Route("c", "models:/m/1", RouteRole.CANARY, 0.5)],
                "exactly one primary route, got none",
            ),
            ([Route("p", "models:/m/1", _BOSS)], "unknown role 'boss'"),
            ([Route("p", "models:/m/1", RouteRole.PRIMARY, 1.5)], "weight of route 'p' is 1.5"),
            ([Route("p", "models:/m/1", RouteRole.PRIMARY, -0.1)], "weight of route 'p'"),
            ([Route("p", "models:/m/1", RouteRole.PRIMARY, math.nan)], "weight of route 'p'"),
            ([Route("p", "models:/m/1", RouteRole.PRIMARY, math.inf)], "weight of route 'p'"),
            ([Route("p", "models:/m/1", RouteRole.PRIMARY, True)], "must be a number"),
            ([Route("p", "models:/m/1", RouteRole.PRIMARY, _TEXT)], "must be a number"),
            (
                [
                    _primary(),
                    Route("c1", "models:/m/2", RouteRole.CANARY, 0.6),
                    Route("c2", "models:/m/3", RouteRole.CANARY, 0.5),
                ],
                "canary weights add up to 1.1",
            ),
            (
                [_primary(), Route("primary", "models:/m/2", RouteRole.SHADOW)],
                "'primary' appears more than once",
            ),
            ([_primary("churn/3")], "is not a model URI"),
            ([_primary("runs:/0123/model")], "is not a model URI"),
            ([_primary("models:/churn/0")], "names version '0'"),
            ([_primary("models:/churn/3/4")], "is not a model URI"),
            ([_primary("models:/churn@latest!")], "alias"),
            ([_primary("models:/" + "m" * 1_100 + "/1")], "the limit is 1024"),
            ([_primary(name="has space")], "route name 'has space' is not valid"),
            ([_primary(name="")], "route name '' is not valid"),
            ([_primary(name="r" * 65)], "is not valid"),
            ([_primary(name="primary\n")], "is not valid"),
            ([{"name": "p", "model_uri": "models:/m/1"}], "route 0 has no role"),
            ([{"name": "p", "model_uri": "models:/m/1", "role": "primary", "w": 1}], "'w'"),
            (["models:/m/1"], "route 0 must be a loopml.Route or a dict"),
        ],
    )
    def test_bad_routes_are_refused(self, store: Store, routes: Any, message: str) -> None:
        p = make_project(store)
        with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
            store.create_deployment(p.project_id, "api", routes, actor="a")
        deploy(store, p.project_id, "api")
        with pytest.raises(InvalidArgument):
            store.update_deployment(p.project_id, "api", routes=routes, actor="a")
        assert store.get_deployment(p.project_id, "api").revision == 1
        assert [e.action for e in audit_events(store, p)] == ["deployment.create"]

    def test_good_routes_at_the_limits(self, store: Store) -> None:
        p = make_project(store)
        full = [
            _primary("models:/churn/latest"),
            Route("c1", "models:/churn/2", RouteRole.CANARY, 0.1),
            Route("c2", "models:/churn@challenger", RouteRole.CANARY, 0.2),
            Route("c3", "models:/churn/3", RouteRole.CANARY, 0.7),  # 0.1 + 0.2 + 0.7: all
            *(Route(f"s{i}", "models:/churn/1", RouteRole.SHADOW, 0.0) for i in range(11)),
            Route("A_b-9" + "x" * 59, "models:/churn/1", RouteRole.SHADOW, 1),
        ]
        d = deploy(store, p.project_id, routes=full)
        assert len(d.routes) == 16 and d.routes[-1].weight == 1.0
        assert isinstance(d.routes[-1].weight, float)
        assert store.get_deployment(p.project_id, "churn-api").routes == tuple(full)

    def test_other_arguments_are_validated(self, store: Store) -> None:
        p = make_project(store)
        pid = p.project_id
        bad_creates: list[dict[str, Any]] = [
            {"name": "a/b"},
            {"name": "a@b"},
            {"name": ""},
            {"name": " api"},
            {"name": "x" * 257},
            {"name": 7},
            {"sticky_key": ""},
            {"sticky_key": "bad\nkey"},
            {"sticky_key": 3},
            {"description": 5},
            {"description": "x" * 16_385},
            {"config": {"rate": math.nan}},
            {"config": {"ids": {1, 2}}},
            {"config": {1: "a"}},
            {"config": ["a"]},
            {"actor": ""},
            {"actor": None},
        ]
        for bad in bad_creates:
            args: dict[str, Any] = {"name": "api", "actor": "a", **bad}
            name = args.pop("name")
            with pytest.raises(InvalidArgument):
                store.create_deployment(pid, name, ROUTES, **args)
        assert store.list_deployments(pid) == []
        deploy(store, pid, "api")
        bad_updates: list[dict[str, Any]] = [
            {"expected_revision": 0},
            {"expected_revision": "1"},
            {"reason": "x" * 4_097},
            {"reason": 3},
            {"actor": ""},
            {"description": 5},
            {"config": {"x": math.inf}},
            {"sticky_key": ""},
        ]
        for bad in bad_updates:
            with pytest.raises(InvalidArgument):
                store.update_deployment(pid, "api", **{"actor": "a", **bad})
        for bad_name in ("", "a/b", 3):
            with pytest.raises(InvalidArgument):
                store.get_deployment(pid, bad_name)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument):
            store.delete_deployment(pid, "api", actor="a", reason="x" * 4_097)
        with pytest.raises(InvalidArgument):
            store.list_deployments("")
        assert store.get_deployment(pid, "api").revision == 1
        assert len(audit_events(store, p)) == 1

    def test_names_may_hold_spaces_and_unicode(self, store: Store) -> None:
        p = make_project(store)
        d = deploy(store, p.project_id, "Churn API — ünïcødé")
        assert store.get_deployment(p.project_id, "Churn API — ünïcødé") == d

    # --- immutability --------------------------------------------------------------------------

    def test_returned_deployments_are_immutable_copies(self, store: Store) -> None:
        p = make_project(store)
        config: dict[str, Any] = {"batching": {"max_batch": 8}, "tags": ["a"]}
        routes = [dict(r) for r in ROUTE_DICTS]
        d = deploy(store, p.project_id, routes=routes, config=config)
        config["batching"]["max_batch"] = 99  # the store took copies of what it was given
        config["tags"].append("b")
        routes[0]["weight"] = 0.9
        for entity, field in ((d, "name"), (d, "revision"), (d.routes[0], "weight")):
            with pytest.raises(FrozenInstanceError):
                setattr(entity, field, 1)
        got = store.get_deployment(p.project_id, "churn-api")
        assert got.config == {"batching": {"max_batch": 8}, "tags": ["a"]}
        assert got.routes == ROUTES
        got.config["batching"]["max_batch"] = 1  # and gives out copies
        d.config["tags"].append("c")
        store.list_deployments(p.project_id)[0].config["new"] = 1  # type: ignore[index]
        again = store.get_deployment(p.project_id, "churn-api")
        assert again.config == {"batching": {"max_batch": 8}, "tags": ["a"]}
        event = audit_events(store, p)[0]
        event.details["config"]["tags"].append("x")
        assert audit_events(store, p)[0].details["config"] == {
            "batching": {"max_batch": 8},
            "tags": ["a"],
        }

    # --- concurrency ---------------------------------------------------------------------------

    def test_concurrent_updates_with_expected_revision_have_one_winner(self, store: Store) -> None:
        p = make_project(store)
        deploy(store, p.project_id)
        n = 8
        results = in_threads(
            n,
            lambda i: store.update_deployment(
                p.project_id,
                "churn-api",
                description=f"by {i}",
                actor=f"u{i}",
                expected_revision=1,
            ),
        )
        winners = [r for r in results if isinstance(r, Deployment)]
        assert len(winners) == 1, results
        assert all(isinstance(r, Conflict) for r in results if r not in winners), results
        final = store.get_deployment(p.project_id, "churn-api")
        assert final == winners[0] and final.revision == 2
        assert len(audit_events(store, p, action="deployment.update")) == 1

    def test_concurrent_updates_form_one_chain(self, store: Store) -> None:
        p = make_project(store)
        deploy(store, p.project_id)
        n = 8
        results = in_threads(
            n,
            lambda i: store.update_deployment(
                p.project_id, "churn-api", description=f"by {i}", actor=f"u{i}"
            ),
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        revisions = sorted(r.revision for r in results if isinstance(r, Deployment))
        assert revisions == list(range(2, n + 2))
        chain = audit_events(store, p, action="deployment.update")[::-1]  # oldest first
        assert [e.details["revision"] for e in chain] == list(range(2, n + 2))
        assert chain[0].details["before"] == {"description": ""}
        for before, after in itertools.pairwise(chain):
            assert after.details["before"] == before.details["after"]  # each saw the last
        final = store.get_deployment(p.project_id, "churn-api")
        assert final.revision == n + 1
        assert final.description == chain[-1].details["after"]["description"]

    def test_concurrent_creation_has_one_winner(self, store: Store) -> None:
        p = make_project(store)
        results = in_threads(8, lambda i: deploy(store, p.project_id, actor=f"u{i}"))
        winners = [r for r in results if isinstance(r, Deployment)]
        assert len(winners) == 1, results
        assert all(isinstance(r, AlreadyExists) for r in results if r not in winners), results
        assert len(audit_events(store, p, action="deployment.create")) == 1
        assert store.get_deployment(p.project_id, "churn-api") == winners[0]
