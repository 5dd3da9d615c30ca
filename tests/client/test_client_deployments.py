"""Client deployment methods: routes as entities or dicts, the acting user in the audit trail,
project resolution, compare-and-set updates from two clients, and the serving data (segments and
window profiles, with a real dataset profile merged back from the store)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import loopml
from loopml.client import registry as client_registry
from loopml.entities import Deployment, PredictionSegment, Route, RouteRole, WindowProfile
from loopml.errors import (
    AlreadyExists,
    Conflict,
    DeploymentNotFound,
    InvalidArgument,
    ProjectNotFound,
)
from loopml.stats.dataset import DatasetProfile, merge_all, profile
from loopml.store import uris

ROUTES = [
    {"name": "primary", "model_uri": "models:/churn@champion", "role": "primary"},
    {"name": "canary", "model_uri": "models:/churn/4", "role": "canary", "weight": 0.1},
    Route("shadow", "models:/churn-v2/latest", RouteRole.SHADOW),
]


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPML_USER", "alice")
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


# --- entities ------------------------------------------------------------------------------------


def test_route_defaults_and_helpers() -> None:
    assert Route("s", "models:/m/1", RouteRole.SHADOW).weight == 1.0  # a shadow mirrors all
    assert Route("c", "models:/m/1", RouteRole.CANARY).weight == 0.0
    assert Route("p", "models:/m/1", RouteRole.PRIMARY).weight == 0.0
    assert Route("s", "models:/m/1", RouteRole.SHADOW, 0.0).weight == 0.0  # given: kept
    text = Route("c", "models:/m/1", "canary", 0.5)  # type: ignore[arg-type]
    assert text.role is RouteRole.CANARY and text == Route(
        "c", "models:/m/1", RouteRole.CANARY, 0.5
    )
    assert text.to_dict() == {
        "name": "c",
        "model_uri": "models:/m/1",
        "role": "canary",
        "weight": 0.5,
    }
    assert math.isnan(
        Route("p", "models:/m/1", RouteRole.PRIMARY, math.nan).weight
    )  # for the store to refuse
    d = Deployment("pid", "api", tuple(Route(**r) if isinstance(r, dict) else r for r in ROUTES))
    assert d.primary.name == "primary"
    assert [r.name for r in d.canaries] == ["canary"] and [r.name for r in d.shadows] == ["shadow"]
    assert d.route("canary").weight == 0.1
    with pytest.raises(KeyError, match="no route 'blue'; its routes are 'primary', 'canary'"):
        d.route("blue")


def test_parse_model_uri_lives_in_the_store_and_the_client_reexports_it() -> None:
    assert client_registry.parse_model_uri is uris.parse_model_uri
    assert uris.parse_model_uri("models:/churn@champion") == ("churn", None, "champion", False)
    assert uris.parse_model_uri(" models:/churn/latest ") == ("churn", None, None, True)


# --- deployments ---------------------------------------------------------------------------------


def test_create_get_list_and_the_actor(client: loopml.Client) -> None:
    d = client.create_deployment(
        "churn-api", ROUTES, sticky_key="user_id", config={"max_batch": 32}, project="shop"
    )
    assert (d.created_by, d.revision, d.sticky_key, dict(d.config)) == (
        "alice",
        1,
        "user_id",
        {"max_batch": 32},
    )
    assert [(r.name, r.role, r.weight) for r in d.routes] == [
        ("primary", RouteRole.PRIMARY, 0.0),
        ("canary", RouteRole.CANARY, 0.1),
        ("shadow", RouteRole.SHADOW, 1.0),
    ]
    assert client.get_deployment("churn-api", project="shop") == d
    assert client.list_deployments(project="shop") == [d]
    client.project_id()  # the default project, which has none
    assert client.list_deployments() == []
    with pytest.raises(AlreadyExists):
        client.create_deployment("churn-api", ROUTES, project="shop")
    [event] = client.search_audit_events(object_type="deployment", project="shop")
    assert (event.action, event.actor, event.object_name) == (
        "deployment.create",
        "alice",
        "churn-api",
    )


def test_reads_in_an_unknown_project_raise(client: loopml.Client) -> None:
    with pytest.raises(ProjectNotFound):
        client.get_deployment("api", project="nowhere")
    with pytest.raises(ProjectNotFound):
        client.list_deployments(project="nowhere")
    with pytest.raises(ProjectNotFound):
        client.list_prediction_segments("api", project="nowhere")
    client.project_id()  # the default project, now existing
    with pytest.raises(DeploymentNotFound, match="loopml deployments list"):
        client.get_deployment("api")


def test_the_default_project_comes_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_PROJECT", "fraud")
    monkeypatch.setenv("LOOPML_USER", "bob")
    with loopml.Client(f"sqlite:///{tmp_path}/p.db", artifact_uri=str(tmp_path / "a")) as c:
        d = c.create_deployment("api", ROUTES[:1])
        assert d.project_id == c.get_project("fraud").project_id
        assert c.get_deployment("api", project="fraud") == d


def test_update_and_delete(client: loopml.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.create_deployment("api", ROUTES, sticky_key="user_id", description="v1")
    monkeypatch.setenv("LOOPML_USER", "bob")
    up = client.update_deployment("api", description="v2", reason="clearer")
    assert (up.description, up.sticky_key, up.revision, up.updated_by) == (
        "v2",
        "user_id",
        2,
        "bob",
    )
    up = client.update_deployment("api", sticky_key=None, expected_revision=2)
    assert (up.sticky_key, up.revision) == (None, 3)
    with pytest.raises(Conflict, match="revision 3, not 2"):
        client.update_deployment("api", routes=ROUTES[:1], expected_revision=2)
    up = client.update_deployment("api", routes=ROUTES[:1], expected_revision=3)
    assert [r.name for r in up.routes] == ["primary"]
    with pytest.raises(InvalidArgument, match=r"canary weights add up to 1\.5"):
        client.update_deployment(
            "api",
            routes=[
                *ROUTES[:1],
                {"name": "a", "model_uri": "models:/churn/2", "role": "canary", "weight": 0.9},
                {"name": "b", "model_uri": "models:/churn/3", "role": "canary", "weight": 0.6},
            ],
        )
    client.delete_deployment("api", "replaced by api-v2")
    with pytest.raises(DeploymentNotFound):
        client.get_deployment("api")
    history = client.search_audit_events(object_type="deployment", object_name="api")
    assert [(e.action, e.actor, e.reason) for e in history] == [
        ("deployment.delete", "bob", "replaced by api-v2"),
        ("deployment.update", "bob", ""),
        ("deployment.update", "bob", ""),
        ("deployment.update", "bob", "clearer"),
        ("deployment.create", "alice", ""),
    ]


def test_two_clients_racing_with_expected_revision(tmp_path: Path) -> None:
    """Two processes' worth of clients on one file: of two compare-and-set updates from the
    same revision, exactly one lands."""
    uri = f"sqlite:///{tmp_path}/race.db"
    clients = [loopml.Client(uri, artifact_uri=str(tmp_path / "a")) for _ in range(2)]
    try:
        clients[0].create_deployment("api", ROUTES)
        barrier = threading.Barrier(2)
        results: list[object] = [None, None]

        def work(i: int) -> None:
            barrier.wait()
            try:
                results[i] = clients[i].update_deployment(
                    "api", description=f"client {i}", expected_revision=1
                )
            except Exception as exc:
                results[i] = exc

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        winners = [r for r in results if isinstance(r, Deployment)]
        assert len(winners) == 1 and any(isinstance(r, Conflict) for r in results), results
        assert clients[1].get_deployment("api") == winners[0]
    finally:
        for c in clients:
            c.close()


# --- segments and window profiles ----------------------------------------------------------------


def test_log_and_list_prediction_segments(client: loopml.Client) -> None:
    first = client.log_prediction_segment(
        "api",
        start_time=1_000,
        end_time=61_000,
        rows=500,
        uri="memory://logs/api/0.parquet",
        digest="c" * 64,
        size_bytes=4096,
        routes=["shadow", "primary", "primary"],
        model_versions={"churn/3"},
    )
    assert isinstance(first, PredictionSegment) and len(first.id) == 32
    assert (first.routes, first.model_versions) == (("primary", "shadow"), ("churn/3",))
    second = client.log_prediction_segment(
        "api", start_time=61_001, end_time=120_000, rows=3, uri="memory://logs/api/1.parquet"
    )
    assert client.list_prediction_segments("api") == [first, second]
    assert client.list_prediction_segments("api", start=61_000, end=61_000) == [first]
    assert client.list_prediction_segments("api", start=61_001) == [second]
    assert client.list_prediction_segments("api", limit=1) == [first]
    # A writer retrying after a failure passes its first id: nothing new is stored.
    again = client.log_prediction_segment(
        "api",
        start_time=61_001,
        end_time=120_000,
        rows=3,
        uri="memory://logs/api/1.parquet",
        segment_id=second.id,
    )
    assert again.id == second.id and len(client.list_prediction_segments("api")) == 2
    with pytest.raises(Conflict, match="rows"):
        client.log_prediction_segment(
            "api", start_time=61_001, end_time=120_000, rows=4, uri="x", segment_id=second.id
        )
    with pytest.raises(InvalidArgument, match="24 hours"):
        client.log_prediction_segment(
            "api", start_time=0, end_time=2 * 86_400_000, rows=1, uri="memory://logs/x"
        )
    assert client.search_audit_events() == []  # data, not changes


def test_window_profiles_from_real_dataset_profiles(client: loopml.Client) -> None:
    minute = 60_000
    reference = profile({"age": [18.0, 30.0, 45.0, 70.0], "plan": ["basic", "pro", "pro", None]})
    fragments = [  # binned on the reference's edges, as serving does, so that they merge
        profile({"age": [20.0, 30.0, 40.0], "plan": ["basic", "pro", "pro"]}, edges=reference),
        profile({"age": [25.0, None], "plan": ["basic", None]}, edges=reference),
    ]
    for i, fragment in enumerate(fragments):  # one fragment per server, the same window
        stored = client.add_window_profile(
            "api",
            route="primary",
            model_version="churn/3",
            window_start=10 * minute,
            window_seconds=60,
            rows=fragment.num_rows,
            profile=fragment
            if i == 0
            else fragment.to_dict(),  # an object with to_dict, or a dict
        )
        assert isinstance(stored, WindowProfile) and stored.profile == fragment.to_dict()
    client.add_window_profile(
        "api",
        route="canary",
        model_version="churn/4",
        window_start=11 * minute,
        window_seconds=60,
        rows=1,
        profile={"num_rows": 1},
    )
    window = client.list_window_profiles("api", start=10 * minute, end=11 * minute)
    # fragments of one window come in id order (not insertion order)
    assert sorted((w.route, w.rows) for w in window) == [("primary", 2), ("primary", 3)]
    merged = merge_all(DatasetProfile.from_dict(w.profile) for w in window)
    same_order = [next(f for f in fragments if f.num_rows == w.rows) for w in window]
    assert merged.to_dict() == merge_all(same_order).to_dict()  # exact through the store
    assert [w.route for w in client.list_window_profiles("api", model_version="churn/4")] == [
        "canary"
    ]
    assert client.list_window_profiles("api", route="shadow") == []
    with pytest.raises(InvalidArgument, match="not aligned"):
        client.add_window_profile(
            "api",
            route="primary",
            model_version="churn/3",
            window_start=10 * minute + 1,
            window_seconds=60,
            rows=1,
            profile={},
        )
