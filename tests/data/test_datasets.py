"""log_dataset / load_dataset: versions by content, URIs, loading, runs, contracts, profiles,
large files, and nothing half-written when a step fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import loopml
from loopml.client import context
from loopml.data import contract
from loopml.data.datasets import (
    dataset_profile,
    dataset_schema,
    get_dataset,
    load_dataset,
    local_parquet,
    log_dataset,
)
from loopml.entities import RunStatus
from loopml.errors import (
    DatasetNotFound,
    DataValidationFailed,
    InvalidArgument,
    InvalidData,
    InvalidSchema,
    ProjectNotFound,
)
from loopml.schema import ColumnType, Schema, infer_schema, validate
from loopml.stats import CategoricalProfile, NumericProfile, profile
from loopml.tracking import fluent


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))  # the local Parquet cache
    c = loopml.Client(f"sqlite:///{tmp_path}/t.db", artifact_uri=str(tmp_path / "art"))
    yield c
    c.close()


def _blobs(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "art").rglob("*") if p.is_file() and "objects" in p.parts]


@pytest.fixture
def churn() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    return pd.DataFrame(
        {
            "customer": np.arange(n),
            "age": rng.integers(18, 80, n),
            "spend": rng.gamma(2.0, 30.0, n).round(2),
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "churned": rng.random(n) < 0.25,
        }
    )


# -- versions --------------------------------------------------------------------------------


def test_versions_are_numbered_and_reused_by_content(
    churn: pd.DataFrame, client: loopml.Client, tmp_path: Path
) -> None:
    v1 = log_dataset(churn, "churn", client=client, description="customers", metadata={"q": 1})
    assert (v1.version, v1.num_rows, v1.num_columns) == (1, 400, 5)
    assert v1.uri == "datasets:/churn/1" and len(v1.digest) == 64
    assert v1.metadata == {"q": 1} and v1.run_id is None
    assert v1.source.startswith("pandas DataFrame (400 rows x 5 columns)")
    blobs = _blobs(tmp_path)
    # the same content in another layout is the same version, and nothing more is written
    churn.to_csv(tmp_path / "churn.csv", index=False)
    again = log_dataset(tmp_path / "churn.csv", "churn", client=client)
    assert again == v1
    assert (
        log_dataset(churn.astype({"age": "int32", "plan": "category"}), "churn", client=client)
        == v1
    )
    assert _blobs(tmp_path) == blobs
    # new content is a new version; a version is per dataset
    v2 = log_dataset(churn.iloc[:-1], "churn", client=client)
    assert (v2.version, v2.num_rows) == (2, 399)
    other = log_dataset(churn, "churn-copy", client=client)
    assert (other.version, other.digest) == (1, v1.digest)
    assert client.get_dataset("churn").latest_version == 2
    assert [v.version for v in client.list_dataset_versions("churn")] == [2, 1]
    assert [d.name for d in client.list_datasets()] == ["churn", "churn-copy"]


def test_versions_resolve_by_uri_number_latest_and_digest_prefix(
    churn: pd.DataFrame, client: loopml.Client
) -> None:
    v1 = log_dataset(churn, "churn", client=client)
    v2 = log_dataset(churn.iloc[:100], "churn", client=client)
    assert get_dataset("datasets:/churn/1", client=client) == v1
    assert get_dataset("datasets:/churn@latest", client=client) == v2
    assert get_dataset("datasets:/churn", client=client) == v2
    assert get_dataset("churn", client=client) == v2
    assert get_dataset("churn", 1, client=client) == v1
    assert get_dataset("churn", "latest", client=client) == v2
    assert get_dataset("churn", v1.digest[:12], client=client) == v1
    assert get_dataset(f"datasets:/churn/{v1.digest[:8]}", client=client) == v1
    assert get_dataset(v1, client=client) is v1
    with pytest.raises(DatasetNotFound):
        get_dataset("datasets:/churn/3", client=client)
    with pytest.raises(DatasetNotFound):
        get_dataset("nope", client=client)
    with pytest.raises(ProjectNotFound):
        get_dataset("churn", project="nope", client=client)


def test_load_as_pandas_polars_and_arrow_with_columns(
    churn: pd.DataFrame, client: loopml.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v = log_dataset(churn, "churn", client=client)
    got = load_dataset("datasets:/churn/1", client=client)
    pd.testing.assert_frame_equal(got, churn)
    table = load_dataset("churn", as_="arrow", columns=["plan", "age"], client=client)
    assert isinstance(table, pa.Table) and table.column_names == ["plan", "age"]
    assert table["age"].to_pylist() == churn["age"].tolist()
    pl = pytest.importorskip("polars")
    frame = load_dataset(v, as_="polars", client=client)
    assert isinstance(frame, pl.DataFrame) and frame.shape == (400, 5)
    assert frame["spend"].to_list() == churn["spend"].tolist()
    with pytest.raises(InvalidArgument, match=r"datasets:/churn/1 has no column\(s\) 'x'"):
        load_dataset(v, columns=["age", "x"], client=client)
    with pytest.raises(InvalidArgument, match="as_ must be"):
        load_dataset(v, as_="numpy", client=client)
    # the local copy is cached by the blob's hash, in the user's cache folder
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = local_parquet(v, client)
    assert path == tmp_path / "cache" / "loopml" / "datasets" / f"{v.blob}.parquet"
    assert path.exists() and not (tmp_path / "home").exists()
    pd.testing.assert_frame_equal(load_dataset(v, client=client), churn)  # from the new cache


def test_bad_names_roles_and_schema_arguments(churn: pd.DataFrame, client: loopml.Client) -> None:
    with pytest.raises(InvalidArgument):
        log_dataset(churn, "bad name/x", client=client)
    with pytest.raises(InvalidArgument, match="role 'Train!' is not valid"):
        log_dataset(churn, "churn", role="Train!", client=client)
    with pytest.raises(InvalidArgument, match="schema must be"):
        log_dataset(churn, "churn", schema=42, client=client)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="role"):
        load_dataset("churn", role="", client=client)
    assert client.list_datasets() == []


# -- runs: roles and lineage ------------------------------------------------------------------


@pytest.fixture
def fluent_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[loopml.Client]:
    """The fluent API's default client on a fresh store (as tests/tracking/test_fluent.py)."""
    monkeypatch.setenv("LOOPML_ARTIFACT_URI", str(tmp_path / "art"))
    monkeypatch.setenv("LOOPML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOOPML_FLUSH_INTERVAL", "3600")
    monkeypatch.setenv("LOOPML_HEARTBEAT_INTERVAL", "3600")
    monkeypatch.delenv("LOOPML_PROJECT", raising=False)
    monkeypatch.setattr(context, "_project", None)
    loopml.set_tracking_uri(f"sqlite:///{tmp_path}/t.db")
    yield loopml.get_client()
    while (run := loopml.active_run()) is not None:
        run.end(RunStatus.KILLED)
    for run in list(fluent._open_runs.values()):
        run.end(RunStatus.KILLED)
    client = context.peek_client()
    loopml.set_tracking_uri(None)
    if client is not None:
        client.close()


def test_roles_are_recorded_on_the_active_run_and_lineage_goes_both_ways(
    churn: pd.DataFrame, fluent_client: loopml.Client
) -> None:
    train, test = churn.iloc[:300], churn.iloc[300:]
    with loopml.start_run() as run:
        vt = log_dataset(train, "churn-train", role="train")
        vs = log_dataset(test, "churn-test")
        got = load_dataset("datasets:/churn-test/1", role="test")
        assert len(got) == 100
    assert vt.run_id == run.run_id and vs.run_id == run.run_id
    c = fluent_client
    inputs = {(i.dataset_version.uri, i.role) for i in c.get_run_inputs(run.run_id)}
    assert inputs == {("datasets:/churn-train/1", "train"), ("datasets:/churn-test/1", "test")}
    users = c.get_dataset_version_runs("datasets:/churn-test/1")
    assert [(u.run_id, u.role) for u in users] == [(run.run_id, "test")]
    # a second run reuses the version and adds its own lineage
    with loopml.start_run() as second:
        assert log_dataset(train, "churn-train", role="reference") == vt
    runs = {(u.run_id, u.role) for u in c.get_dataset_version_runs(vt)}
    assert runs == {(run.run_id, "train"), (second.run_id, "reference")}
    assert c.get_dataset_version(vt).run_id == run.run_id  # made by the first run
    # outside a run nothing is recorded, and the role is not an error
    assert log_dataset(test, "churn-test", role="test") == vs
    assert len(c.get_dataset_version_runs(vs)) == 1


def test_the_fluent_default_client_and_project(
    churn: pd.DataFrame, fluent_client: loopml.Client
) -> None:
    loopml.set_project("team")  # the fixture puts the project back
    v = log_dataset(churn, "churn")
    assert fluent_client.get_dataset_version("churn", project="team") == v
    assert load_dataset("churn").shape == churn.shape
    assert get_dataset("datasets:/churn/1", project="team") == v
    with pytest.raises(ProjectNotFound):
        fluent_client.get_dataset_version("churn", project="default")


# -- contracts and profiles -------------------------------------------------------------------


def test_the_inferred_schema_and_the_profile_round_trip(
    churn: pd.DataFrame, client: loopml.Client
) -> None:
    v = log_dataset(churn, "churn", target="churned", client=client)
    schema = dataset_schema("datasets:/churn/1", client=client)
    assert schema == infer_schema(churn, target="churned")
    assert schema.target == "churned" and v.schema == schema.to_dict()
    assert schema.column("plan").type is ColumnType.CATEGORICAL
    prof = dataset_profile(v, client=client)
    assert prof == profile(churn, target="churned")
    assert prof.num_rows == 400 and prof.target == "churned"


def test_a_given_schema_is_stored_and_checked_strictly(
    churn: pd.DataFrame, client: loopml.Client, tmp_path: Path
) -> None:
    schema = infer_schema(churn)
    path = tmp_path / "churn.yaml"
    schema.save(path)
    v = log_dataset(churn, "churn", schema=path, client=client)
    assert dataset_schema(v, client=client) == Schema.load(path)
    assert log_dataset(churn, "churn", schema=schema, client=client) == v
    blobs = _blobs(tmp_path)
    broken = churn.copy()
    broken.loc[3, "plan"] = "gold"
    broken.loc[5, "age"] = 200
    for given in (schema, path, str(path)):
        with pytest.raises(DataValidationFailed, match="breaks its schema") as info:
            log_dataset(broken, "churn", schema=given, client=client)
        rules = {(x.column, x.rule) for x in info.value.report.violations}
        assert {("plan", "categories"), ("age", "range")} <= rules
    with pytest.raises(DataValidationFailed):
        log_dataset(broken, "churn-new", schema=schema, client=client)
    assert client.get_dataset("churn").num_versions == 1
    assert [d.name for d in client.list_datasets()] == ["churn"]
    assert _blobs(tmp_path) == blobs  # nothing stored
    # data already versioned is checked too before the version is reused
    loose = log_dataset(broken, "churn-loose", schema=None, client=client)
    with pytest.raises(DataValidationFailed, match="breaks its schema"):
        log_dataset(broken, "churn-loose", schema=schema, client=client)
    assert client.get_dataset_version("churn-loose") == loose


def test_a_broken_schema_file_is_invalid_schema(
    churn: pd.DataFrame, client: loopml.Client, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("format: 1\ncolumns:\n  - name: age\n    type: number\n")
    with pytest.raises(InvalidSchema, match=r"bad\.yaml"):
        log_dataset(churn, "churn", schema=path, client=client)
    assert client.list_datasets() == []


def test_no_schema_and_no_profile(churn: pd.DataFrame, client: loopml.Client) -> None:
    v = log_dataset(churn, "churn", schema=None, profile=False, client=client)
    assert v.schema is None and v.profile_blob is None
    with pytest.raises(DatasetNotFound, match="logged without a schema"):
        dataset_schema(v, client=client)
    with pytest.raises(DatasetNotFound, match="logged without a profile"):
        dataset_profile(v, client=client)
    w = log_dataset(churn.iloc[:10], "churn", profile=False, client=client)
    assert w.schema is not None and w.profile_blob is None


# -- large files ------------------------------------------------------------------------------


@pytest.fixture
def wide(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A Parquet file of 4,000 rows whose later rows hold values the first rows do not."""
    rng = np.random.default_rng(11)
    n = 4000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "count": rng.integers(0, 50, n),
            "kind": rng.choice(["a", "b", "c"], n),
            "when": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC"),
            "flag": rng.random(n) < 0.5,
        }
    )
    frame.loc[3500:, "kind"] = "late"  # a category the first batch never sees
    frame.loc[3999, "count"] = 10_000  # far outside the first batch's range
    frame.loc[3900, "x"] = np.nan  # a null only near the end
    path = tmp_path / "wide.parquet"
    frame.to_parquet(path, row_group_size=500)
    return path, frame


def test_a_large_file_is_profiled_and_inferred_in_batches(
    wide: tuple[Path, pd.DataFrame], client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, frame = wide
    whole = log_dataset(path, "whole", client=client)
    assert contract.fits_in_memory(local_parquet(whole, client))
    monkeypatch.setattr(contract, "IN_MEMORY_BYTES", 1024)
    monkeypatch.setattr(contract, "BATCH_ROWS", 500)
    assert not contract.fits_in_memory(path)
    seen: list[int] = []
    real = contract.batches

    def counting(path: Path, rows: int | None = None) -> Iterator[pa.RecordBatch]:
        for batch in real(path, rows):
            seen.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(contract, "batches", counting)
    big = log_dataset(path, "big", client=client)
    assert big.digest == whole.digest and seen and max(seen) <= 500
    chunked, exact = dataset_profile(big, client=client), dataset_profile(whole, client=client)
    assert chunked.num_rows == exact.num_rows == 4000
    for col in exact:
        other = chunked[col.name]
        assert type(other) is type(col)
        assert (other.count, other.nulls) == (col.count, col.nulls), col.name
        if isinstance(col, NumericProfile):
            assert isinstance(other, NumericProfile)
            assert (other.min, other.max) == (col.min, col.max), col.name
            assert sum(other.counts) == sum(col.counts) == col.count  # count: non-null
            assert other.moments.mean == pytest.approx(col.moments.mean, rel=1e-9, abs=1e-12)
        if isinstance(col, CategoricalProfile):
            assert isinstance(other, CategoricalProfile)
            assert other.categories == col.categories and other.other == col.other
    schema = dataset_schema(big, client=client)
    report = validate(frame, schema)
    assert report.ok, str(report)
    assert schema.column("kind").categories == ("a", "b", "c", "late")
    assert schema.column("count").max == 10_000 and schema.column("x").nullable
    assert schema.unique_key == ()  # a profile cannot prove uniqueness
    # without a stored profile the schema is still widened to the whole file
    lean = log_dataset(path, "lean", profile=False, client=client)
    assert lean.profile_blob is None
    assert validate(frame, dataset_schema(lean, client=client)).ok
    # and a given schema is checked batch by batch
    strict = infer_schema(frame.iloc[:500])
    with pytest.raises(DataValidationFailed, match=r"wide\.parquet"):
        log_dataset(path, "checked", schema=strict, client=client)


# -- nothing half-written ---------------------------------------------------------------------


def test_a_failing_profile_records_no_version(
    churn: pd.DataFrame, client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("profile crashed")

    monkeypatch.setattr(contract, "profile_parquet", boom)
    with pytest.raises(RuntimeError, match="profile crashed"):
        log_dataset(churn, "churn", client=client)
    assert client.list_datasets() == []
    monkeypatch.undo()
    v = log_dataset(churn, "churn", client=client)
    assert v.version == 1 and dataset_profile(v, client=client).num_rows == 400


def test_a_failing_artifact_upload_records_no_version(
    churn: pd.DataFrame, client: loopml.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = client.artifacts.put
    calls: list[Any] = []

    def flaky(data: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(data)
        if isinstance(data, str) and data.endswith(".parquet"):
            raise OSError("disk full")
        return real(data, *args, **kwargs)

    monkeypatch.setattr(client.artifacts, "put", flaky)
    with pytest.raises(OSError, match="disk full"):
        log_dataset(churn, "churn", client=client)
    assert len(calls) == 2  # the profile, then the data
    with pytest.raises(DatasetNotFound):
        client.get_dataset_version("churn")
    monkeypatch.undo()
    v = log_dataset(churn, "churn", client=client)
    assert v.version == 1
    pd.testing.assert_frame_equal(load_dataset(v, client=client), churn)


def test_unreadable_data_records_nothing(client: loopml.Client, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InvalidData, match="empty"):
        log_dataset(tmp_path / "empty.csv", "e", client=client)
    with pytest.raises(InvalidData, match="has no rows"):
        log_dataset(pd.DataFrame({"a": []}), "e", client=client)
    assert client.list_datasets() == []
