"""Client dataset methods: datasets:/ URIs, resolving versions, listing, and lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import loopml
from loopml.client.datasets import parse_dataset_uri
from loopml.data.datasets import log_dataset
from loopml.entities import DatasetVersion
from loopml.errors import DatasetNotFound, InvalidArgument, ProjectNotFound


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


@pytest.fixture
def versions(client: loopml.Client) -> list[DatasetVersion]:
    """Two versions of ``iris`` in the default project."""
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "a"]})
    return [
        log_dataset(frame, "iris", client=client, profile=False),
        log_dataset(frame.iloc[:2], "iris", client=client, profile=False),
    ]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("datasets:/churn/3", ("churn", "3")),
        ("datasets:/churn@latest", ("churn", "latest")),
        ("datasets:/churn", ("churn", "latest")),
        ("datasets:/churn/", ("churn", "latest")),
        ("datasets:///churn/12", ("churn", "12")),
        ("datasets:/churn/ab12cd34ef", ("churn", "ab12cd34ef")),
        ("  datasets:/churn-train_v2/1 ", ("churn-train_v2", "1")),
    ],
)
def test_parse_dataset_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_dataset_uri(uri) == expected


@pytest.mark.parametrize(
    "uri", ["churn", "datasets:", "datasets:/", "models:/churn/1", "datasets:/a/b/c", "", 3]
)
def test_malformed_dataset_uris(uri: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a dataset URI"):
        parse_dataset_uri(uri)


def test_only_the_latest_alias_exists() -> None:
    with pytest.raises(InvalidArgument, match=r"alias 'champion'.*only @latest"):
        parse_dataset_uri("datasets:/churn@champion")


@given(st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True), st.integers(1, 10**6))
def test_uris_round_trip(name: str, version: int) -> None:
    assert parse_dataset_uri(f"datasets:/{name}/{version}") == (name, str(version))
    assert parse_dataset_uri(f"datasets:/{name}@latest") == (name, "latest")


def test_get_dataset_version_by_uri_name_and_version(
    client: loopml.Client, versions: list[DatasetVersion]
) -> None:
    v1, v2 = versions
    assert client.get_dataset_version("datasets:/iris/1") == v1
    assert client.get_dataset_version("datasets:/iris@latest") == v2
    assert client.get_dataset_version("datasets:/iris") == v2
    assert client.get_dataset_version("iris") == v2
    assert client.get_dataset_version("iris", 1) == v1
    assert client.get_dataset_version("iris", "2") == v2
    assert client.get_dataset_version("iris", v1.digest[:8]) == v1
    assert client.get_dataset_version("iris", v1.digest) == v1
    assert client.get_dataset_version(v1.uri, project="default") == v1
    assert client.get_dataset_version(v2) is v2


def test_lookup_errors(client: loopml.Client, versions: list[DatasetVersion]) -> None:
    with pytest.raises(InvalidArgument, match="already names a version"):
        client.get_dataset_version("datasets:/iris/1", 2)
    with pytest.raises(InvalidArgument, match="not int"):
        client.get_dataset_version(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="is not a dataset URI"):
        client.get_dataset_version("datasets:/iris/1/2")
    with pytest.raises(DatasetNotFound, match="iris"):
        client.get_dataset_version("iris", 7)
    with pytest.raises(DatasetNotFound, match="nope"):
        client.get_dataset_version("datasets:/nope/1")
    with pytest.raises(DatasetNotFound):
        client.get_dataset_version("iris", "ffffffffffff")  # no such digest prefix
    with pytest.raises(DatasetNotFound):
        client.get_dataset("nope")
    with pytest.raises(DatasetNotFound):
        client.list_dataset_versions("nope")
    with pytest.raises(ProjectNotFound, match="ghost"):
        client.get_dataset_version("iris", project="ghost")
    with pytest.raises(ProjectNotFound, match="ghost"):
        client.list_datasets(project="ghost")


def test_list_and_get(client: loopml.Client, versions: list[DatasetVersion]) -> None:
    dataset = client.get_dataset("iris")
    assert (dataset.name, dataset.latest_version, dataset.num_versions) == ("iris", 2, 2)
    assert [d.name for d in client.list_datasets()] == ["iris"]
    assert client.list_dataset_versions("iris") == versions[::-1]


def test_projects_keep_their_own_datasets(
    client: loopml.Client, versions: list[DatasetVersion]
) -> None:
    client.create_project("other")
    other = log_dataset(pd.DataFrame({"x": [1]}), "iris", project="other", client=client)
    assert other.version == 1 and other.project_id != versions[0].project_id
    assert client.get_dataset_version("iris", project="other") == other
    assert client.get_dataset_version("iris") == versions[1]


def test_inputs_and_lineage_by_uri_and_version(
    client: loopml.Client, versions: list[DatasetVersion]
) -> None:
    v1, v2 = versions
    run = client.create_run()
    client.log_inputs(run.run_id, [("datasets:/iris/1", "train"), (v2, "test")])
    got = {(i.dataset_version.uri, i.role) for i in client.get_run_inputs(run.run_id)}
    assert got == {("datasets:/iris/1", "train"), ("datasets:/iris/2", "test")}
    other = client.create_run()
    client.log_inputs(other.run_id, [(v1, "evaluation")])
    users = {(u.run_id, u.role) for u in client.get_dataset_version_runs("datasets:/iris/1")}
    assert users == {(run.run_id, "train"), (other.run_id, "evaluation")}
    assert [u.role for u in client.get_dataset_version_runs(v2)] == ["test"]
    with pytest.raises(DatasetNotFound):
        client.log_inputs(run.run_id, [("datasets:/iris/9", "train")])
