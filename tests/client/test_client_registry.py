"""Client registry methods: models:/ URIs, registering versions, aliases and their rollback, the
audit trail with the acting user, and lineage from a model to its data and back."""

from __future__ import annotations

import getpass
import hashlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import loopml
from loopml.client.context import current_actor
from loopml.client.registry import parse_model_uri
from loopml.entities import DatasetVersion, ModelVersion, ModelVersionStatus
from loopml.errors import (
    AlreadyExists,
    Conflict,
    DatasetNotFound,
    InvalidArgument,
    ModelNotFound,
    ProjectNotFound,
)

DIGEST = hashlib.sha256(b"manifest").hexdigest()


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPML_USER", "alice")
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


def _register(client: loopml.Client, name: str = "churn", **kwargs: Any) -> ModelVersion:
    args: dict[str, Any] = {"flavor": "sklearn", "manifest_digest": DIGEST}
    args.update(kwargs)
    source = args.pop("source", f"runs:/{args.get('run_id') or 'none'}/model")
    return client.create_model_version(name, source, **args)


def _in_threads(n: int, work: Callable[[int], object]) -> list[object]:
    """``work(i)`` on n threads released together; each result or exception."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def target(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _dataset(client: loopml.Client, name: str, content: str) -> DatasetVersion:
    digest = hashlib.sha256(content.encode()).hexdigest()
    v, _ = client.store.create_dataset_version(
        client.project_id(),
        name,
        digest=digest,
        blob=digest,
        size_bytes=1,
        num_rows=1,
        num_columns=1,
    )
    return v


# --- URIs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/churn/3", ("churn", 3, None, False)),
        ("models:/churn/03", ("churn", 3, None, False)),
        ("models:/churn@champion", ("churn", None, "champion", False)),
        ("models:/churn@Prod-EU_2", ("churn", None, "Prod-EU_2", False)),
        ("models:/churn/latest", ("churn", None, None, True)),
        ("models:/churn/LATEST", ("churn", None, None, True)),
        ("models:/churn@latest", ("churn", None, None, True)),
        ("models:///churn/12/", ("churn", 12, None, False)),
        ("  models:/Churn model v2/1 ", ("Churn model v2", 1, None, False)),
    ],
)
def test_parse_model_uri(uri: str, expected: tuple[str, int | None, str | None, bool]) -> None:
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "churn",
        "models:",
        "models:/",
        "models:/churn",
        "models:/churn/",
        "models:/churn/1/2",
        "models:/churn@a@b",
        "models:/churn/1@champion",
        "datasets:/churn/1",
        "runs:/abc/model",
        "",
        3,
        None,
    ],
)
def test_malformed_model_uris(uri: Any) -> None:
    with pytest.raises(InvalidArgument, match="is not a model URI"):
        parse_model_uri(uri)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("models:/churn/0", "a version is a number from 1"),
        ("models:/churn/-1", "a version is a number from 1"),
        ("models:/churn/v1", "a version is a number from 1"),
        ("models:/churn/champion", "an alias follows '@'"),
        ("models:/churn/1.5", "a version is a number from 1"),
        ("models:/churn@12", "alias '12' is not valid"),
        ("models:/churn@a.b", "alias 'a.b' is not valid"),
        ("models:/ churn/1", "model name"),
    ],
)
def test_bad_parts_of_model_uris(uri: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        parse_model_uri(uri)


@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9_ -]{0,20}[a-z]", fullmatch=True),
    st.integers(1, 10**9),
    st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True).filter(lambda a: a != "latest"),
)
def test_model_uris_round_trip(name: str, version: int, alias: str) -> None:
    mv = ModelVersion(project_id="p", name=name, version=version, source="s")
    assert parse_model_uri(mv.uri) == (name, version, None, False)
    assert parse_model_uri(f"models:/{name}@{alias}") == (name, None, alias, False)


def test_resolve_model_uri(client: loopml.Client) -> None:
    v1, v2, v3 = (_register(client) for _ in range(3))
    client.set_model_alias("churn", "champion", 2)
    assert client.resolve_model_uri("models:/churn/1") == v1
    assert client.resolve_model_uri("models:/churn@champion").version == 2
    assert client.resolve_model_uri("models:/churn/latest") == v3
    client.update_model_version("churn", 3, status="archived")
    assert client.resolve_model_uri("models:/churn/latest") == client.get_model_version(
        "churn", 2
    )  # archived versions are skipped
    assert v2.uri == "models:/churn/2"
    with pytest.raises(ModelNotFound, match="version 9 of model 'churn'"):
        client.resolve_model_uri("models:/churn/9")
    with pytest.raises(ModelNotFound, match="alias 'challenger' of model 'churn'"):
        client.resolve_model_uri("models:/churn@challenger")
    with pytest.raises(ModelNotFound, match="model 'nope'"):
        client.resolve_model_uri("models:/nope/latest")
    with pytest.raises(InvalidArgument, match="is not a model URI"):
        client.resolve_model_uri("models:/churn")
    client.create_registered_model("empty")
    with pytest.raises(ModelNotFound, match="'empty' has no ready version"):
        client.resolve_model_uri("models:/empty/latest")


# --- models and versions ------------------------------------------------------------------------


def test_create_model_version_registers_the_model_first(client: loopml.Client) -> None:
    run = client.create_run()
    v = _register(
        client,
        run_id=run.run_id,
        signature={"inputs": [{"name": "x", "type": "float"}]},
        description="first",
        tags={"stage": "dev"},
    )
    assert (v.name, v.version, v.run_id, v.created_by) == ("churn", 1, run.run_id, "alice")
    assert v.source == f"runs:/{run.run_id}/model"
    assert (v.description, dict(v.tags)) == ("first", {"stage": "dev"})
    model = client.get_registered_model("churn")
    assert model.latest_version == 1
    assert _register(client).version == 2
    events = client.search_audit_events(max_results=10)
    assert [(e.action, e.actor) for e in events] == [
        ("model_version.create", "alice"),
        ("model_version.create", "alice"),
        ("model.create", "alice"),
    ]
    with pytest.raises(AlreadyExists):
        client.create_registered_model("churn")


def test_concurrent_first_versions_share_one_model(client: loopml.Client) -> None:
    results = _in_threads(8, lambda i: _register(client, "race", description=str(i)))
    assert all(isinstance(r, ModelVersion) for r in results), results
    assert sorted(r.version for r in results if isinstance(r, ModelVersion)) == list(range(1, 9))
    assert len(client.search_audit_events(action="model.create")) == 1


def test_models_live_in_their_project(client: loopml.Client) -> None:
    _register(client)
    other = _register(client, project="other")  # the project is created on first use
    assert other.version == 1 and other.project_id == client.get_project("other").project_id
    assert [m.name for m in client.list_registered_models(project="other")] == ["churn"]
    assert client.list_model_versions("churn", project="other") == [other]
    assert len(client.list_model_versions()) == 1
    with pytest.raises(ProjectNotFound, match="ghost"):
        client.get_registered_model("churn", project="ghost")
    with pytest.raises(ProjectNotFound, match="ghost"):
        client.list_model_versions(project="ghost")


def test_update_gate_and_delete(client: loopml.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    client.create_registered_model("churn", description="d", tags={"team": "a"})
    _register(client)
    monkeypatch.setenv("LOOPML_USER", "bob")
    model = client.update_registered_model("churn", description="new", tags={"team": "b"})
    assert (model.description, dict(model.tags)) == ("new", {"team": "b"})
    v = client.update_model_version("churn", 1, status=ModelVersionStatus.ARCHIVED)
    assert v.status is ModelVersionStatus.ARCHIVED
    gated = client.set_model_version_gate_result("churn", 1, {"passed": True, "checks": []})
    assert gated.gate_result == {"passed": True, "checks": []}
    client.delete_registered_model("churn")
    with pytest.raises(ModelNotFound):
        client.get_registered_model("churn")
    events = client.search_audit_events(max_results=10)
    assert [(e.action, e.actor) for e in events[:4]] == [
        ("model.delete", "bob"),
        ("model_version.gate", "bob"),
        ("model_version.update", "bob"),
        ("model.update", "bob"),
    ]
    assert client.search_audit_events(object_type="model_version", object_name="churn/1")[
        0
    ].details == {"version": 1, "result": {"passed": True, "checks": []}}


def test_current_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_USER", " carol ")
    assert current_actor() == "carol"
    monkeypatch.delenv("LOOPML_USER")
    monkeypatch.setattr(getpass, "getuser", lambda: "login-name")
    assert current_actor() == "login-name"

    def no_user() -> str:
        raise OSError("no passwd entry")

    monkeypatch.setattr(getpass, "getuser", no_user)
    assert current_actor() == "unknown"


# --- aliases -------------------------------------------------------------------------------------


def test_set_move_delete_and_history(client: loopml.Client) -> None:
    for _ in range(3):
        _register(client)
    first = client.set_model_alias("churn", "champion", 1, "first release")
    assert (first.actor, first.reason, first.object_name) == (
        "alice",
        "first release",
        "churn@champion",
    )
    client.set_model_alias("churn", "champion", 3)
    assert client.get_model_version_by_alias("churn", "champion").version == 3
    assert client.get_model_version("churn", 3).aliases == ("champion",)
    gone = client.delete_model_alias("churn", "champion", reason="incident")
    assert gone.details == {"alias": "champion", "previous": 3}
    history = client.alias_history("churn", "champion")
    assert [(e.action, e.details.get("version"), e.details["previous"]) for e in history] == [
        ("alias.delete", None, 3),
        ("alias.set", 3, 1),
        ("alias.set", 1, None),
    ]
    assert client.alias_history("churn", "other") == []
    with pytest.raises(ModelNotFound, match="alias 'champion'"):
        client.delete_model_alias("churn", "champion")
    with pytest.raises(InvalidArgument, match="alias"):
        client.alias_history("churn", "latest")


def test_rollback_to_the_version_before_the_latest_move(client: loopml.Client) -> None:
    for _ in range(3):
        _register(client)
    for version in (1, 2, 3):
        client.set_model_alias("churn", "champion", version)
    event = client.rollback_alias("churn", "champion")
    assert event.details == {"alias": "champion", "version": 2, "previous": 3}
    assert event.reason == "rollback from version 3 to 2" and event.actor == "alice"
    assert client.get_model_version_by_alias("churn", "champion").version == 2
    # The rollback is the latest move now: rolling back again undoes it.
    again = client.rollback_alias("churn", "champion", reason="the fix was fine")
    assert (again.details["version"], again.reason) == (3, "the fix was fine")
    explicit = client.rollback_alias("churn", "champion", to_version=1)
    assert explicit.details == {"alias": "champion", "version": 1, "previous": 3}


def test_rollback_skips_sets_that_did_not_move(client: loopml.Client) -> None:
    _register(client)
    _register(client)
    client.set_model_alias("churn", "champion", 1)
    client.set_model_alias("churn", "champion", 2)
    client.set_model_alias("churn", "champion", 2, "confirmed")  # not a move
    assert client.rollback_alias("churn", "champion").details["version"] == 1


def test_rollback_needs_an_earlier_version(client: loopml.Client) -> None:
    _register(client)
    _register(client)
    with pytest.raises(ModelNotFound, match="alias 'champion'"):
        client.rollback_alias("churn", "champion")
    client.set_model_alias("churn", "champion", 1)
    with pytest.raises(InvalidArgument, match="nothing to roll back to"):
        client.rollback_alias("churn", "champion")
    client.set_model_alias("churn", "champion", 2)
    client.delete_model_alias("churn", "champion")
    client.set_model_alias("churn", "champion", 2)  # re-created: its past does not count
    with pytest.raises(InvalidArgument, match="nothing to roll back to"):
        client.rollback_alias("churn", "champion")
    with pytest.raises(ModelNotFound, match="version 7"):
        client.rollback_alias("churn", "champion", to_version=7)
    with pytest.raises(InvalidArgument, match="model version"):
        client.rollback_alias("churn", "champion", to_version=0)
    assert client.get_model_version_by_alias("churn", "champion").version == 2


def test_rollback_that_races_another_move_changes_nothing(
    client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        _register(client)
    client.set_model_alias("churn", "champion", 1)
    client.set_model_alias("churn", "champion", 2)
    history = client.alias_history

    def history_then_a_move(name: str, alias: str, **kwargs: Any) -> list[Any]:
        events = history(name, alias, **kwargs)
        client.store.set_model_alias(
            client.project_id(), name, alias, 3, actor="someone-else"
        )  # lands between reading the history and moving the alias
        return events

    monkeypatch.setattr(client, "alias_history", history_then_a_move)
    with pytest.raises(Conflict, match="points at version 3, not version 2"):
        client.rollback_alias("churn", "champion")
    assert client.get_model_version_by_alias("churn", "champion").version == 3


# --- lineage -------------------------------------------------------------------------------------


def test_lineage_from_a_model_to_its_data_and_back(client: loopml.Client) -> None:
    train = _dataset(client, "customers", "train-1")
    test = _dataset(client, "holdout", "test-1")
    newer = _dataset(client, "customers", "train-2")
    r1, r2, r3 = client.create_run(), client.create_run(), client.create_run()
    client.log_inputs(r1.run_id, [(train, "train"), ("datasets:/holdout/1", "test")])
    client.log_inputs(r2.run_id, [("datasets:/customers/1", "validation")])
    client.log_inputs(r3.run_id, [(newer, "train")])
    a1 = _register(client, "a", run_id=r1.run_id)
    b1 = _register(client, "b", run_id=r2.run_id)
    a2 = _register(client, "a", run_id=r1.run_id)  # one run, two versions
    _register(client, "a", run_id=r3.run_id)
    _register(client, "c")  # no run at all

    lineage = client.model_lineage("a", 1)
    assert lineage["model_version"] == a1
    assert lineage["run"].run_id == r1.run_id
    assert [(i.dataset_version, i.role) for i in lineage["inputs"]] == [
        (train, "train"),
        (test, "test"),
    ]
    assert client.model_lineage("c", 1) == {
        "model_version": client.get_model_version("c", 1),
        "run": None,
        "inputs": [],
    }

    assert client.model_versions_for_dataset("customers", 1) == [a1, a2, b1]
    assert client.model_versions_for_dataset("customers", "latest") == [
        client.get_model_version("a", 3)
    ]
    assert client.model_versions_for_dataset("holdout", test.digest[:8]) == [a1, a2]
    with pytest.raises(DatasetNotFound):
        client.model_versions_for_dataset("customers", 9)

    client.delete_run(r1.run_id)  # the versions stay, without their run
    assert client.model_lineage("a", 1)["run"] is None
    assert client.get_model_version("a", 1).run_id is None
    assert client.model_versions_for_dataset("holdout", 1) == []
