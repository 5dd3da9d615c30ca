"""The model folder and its manifest, and logging models to runs of a real Client (runs:/ and
models:/ URIs, lineage, registration)."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import loopml
from loopml.client import context
from loopml.data import log_dataset
from loopml.entities import RunStatus
from loopml.errors import InvalidArgument, ModelCorrupted, SignatureMismatch
from loopml.models import (
    MANIFEST_FILE,
    ModelSignature,
    load_model,
    log_model,
    read_manifest,
    save_model,
)
from loopml.models.manifest import Manifest
from loopml.schema import ColumnSchema, ColumnType, Schema


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def fitted(iris: Any) -> LogisticRegression:
    X, y = iris
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = loopml.Client(str(tmp_path / ".loopml"))
    try:
        yield c
    finally:
        c.close()


# --- the folder and its manifest -----------------------------------------------------------------


def test_manifest_records_everything(tmp_path: Path, fitted: Any, iris: Any) -> None:
    X, _ = iris
    folder = tmp_path / "m"
    manifest = save_model(fitted, folder, input_example=X.head(3), metadata={"team": "risk"})
    on_disk = json.loads((folder / MANIFEST_FILE).read_text())
    assert on_disk["format_version"] == 1
    assert on_disk["flavor"]["name"] == "sklearn"
    assert on_disk["flavor"]["options"]["sklearn_version"] == sklearn.__version__
    assert on_disk["model_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert on_disk["requirements"]["python"] == platform.python_version()
    assert on_disk["requirements"]["scikit-learn"] == sklearn.__version__
    assert {"skops", "numpy", "loopml"} <= set(on_disk["requirements"])
    assert on_disk["input_example"] == "input_example.json"
    assert on_disk["metadata"] == {"team": "risk"}
    assert on_disk["created_at"].endswith("+00:00")
    assert set(on_disk["files"]) == {"model.skops", "input_example.json"}
    for rel, entry in on_disk["files"].items():
        data = (folder / rel).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    parsed, digest = read_manifest(folder)
    assert parsed == manifest
    assert digest == hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()
    assert Manifest.from_dict(manifest.to_dict()) == manifest


def test_input_example_round_trips(tmp_path: Path, fitted: Any, iris: Any) -> None:
    X, _ = iris
    save_model(fitted, tmp_path / "m", input_example=X.head(4))
    p = load_model(tmp_path / "m")
    pd.testing.assert_frame_equal(p.input_example, X.head(4).reset_index(drop=True))
    np.testing.assert_array_equal(p.predict(p.input_example), fitted.predict(X.head(4)))
    arr = np.arange(6.0).reshape(3, 2)
    save_model(LogisticRegression().fit(arr, [0, 1, 0]), tmp_path / "a", input_example=arr)
    np.testing.assert_array_equal(load_model(tmp_path / "a").input_example, arr)


def test_signature_from_a_schema_checks_the_example(
    tmp_path: Path, fitted: Any, iris: Any
) -> None:
    X, _ = iris
    columns = tuple(ColumnSchema(c, ColumnType.FLOAT) for c in X.columns)
    schema = Schema(
        columns=(*columns, ColumnSchema("target", ColumnType.INTEGER)), target="target"
    )
    manifest = save_model(fitted, tmp_path / "m", signature=schema, input_example=X.head(2))
    assert manifest.signature == ModelSignature.from_schema(schema)
    with pytest.raises(SignatureMismatch):
        save_model(fitted, tmp_path / "bad", signature=schema, input_example=X.iloc[:2, :3])


def test_predictor_enforces_the_signature(tmp_path: Path, fitted: Any, iris: Any) -> None:
    X, _ = iris
    save_model(fitted, tmp_path / "m", input_example=X.head(2))
    p = load_model(tmp_path / "m")
    shuffled = X[list(reversed(X.columns))]
    np.testing.assert_array_equal(p.predict(shuffled), fitted.predict(X))
    with pytest.raises(SignatureMismatch) as info:
        p.predict(X.drop(columns=X.columns[0]).assign(extra=1))
    assert {q["column"] for q in info.value.problems} == {X.columns[0], "extra"}
    assert len(p.predict(X.assign(extra=1), extra="drop")) == len(X)
    assert p.predict_proba(X.head(3).to_dict("records")).shape == (3, 3)


def test_save_refuses_a_folder_with_files(tmp_path: Path, fitted: Any) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("x")
    with pytest.raises(InvalidArgument, match="not empty"):
        save_model(fitted, tmp_path / "m")


def test_a_model_that_fails_on_its_example_is_refused(tmp_path: Path, fitted: Any) -> None:
    with pytest.raises(InvalidArgument, match="fails on its input example"):
        save_model(fitted, tmp_path / "m", input_example=pd.DataFrame({"a": [1.0]}))


def test_malformed_manifests(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    with pytest.raises(ModelCorrupted, match=r"no loopml-model\.json"):
        load_model(folder)
    nested = '{"format_version": 1, "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}"
    bad_hash = json.dumps(
        {
            "format_version": 1,
            "flavor": {"name": "sklearn", "options": {}},
            "files": {"model.skops": {"sha256": "XYZ", "size": 1}},
        }
    )
    for text in (
        "[]",
        "{",
        '{"format_version": 1}',
        '{"format_version": 1, "x": NaN}',
        nested,
        bad_hash,
    ):
        (folder / MANIFEST_FILE).write_text(text)
        with pytest.raises(ModelCorrupted):
            load_model(folder)


def test_unknown_uris(tmp_path: Path) -> None:
    for uri in ("s3://bucket/model", "runs:no-slash", str(tmp_path / "nothing")):
        with pytest.raises(InvalidArgument):
            load_model(uri)


# --- logging to runs -----------------------------------------------------------------------------


def test_log_model_and_load_by_runs_uri(client: loopml.Client, fitted: Any, iris: Any) -> None:
    X, _ = iris
    run = client.create_run("churn")
    info = log_model(fitted, "clf", input_example=X.head(3), run_id=run.run_id, client=client)
    assert info.model_uri == f"runs:/{run.run_id}/clf" and info.flavor == "sklearn"
    assert info.registered_version is None
    paths = {a.path for a in client.list_artifacts(run.run_id, "clf")}
    assert paths == {"clf/loopml-model.json", "clf/model.skops", "clf/input_example.json"}
    manifest_bytes = client.read_artifact(run.run_id, "clf/loopml-model.json")
    assert info.manifest_digest == hashlib.sha256(manifest_bytes).hexdigest()
    p = load_model(info.model_uri, client=client)
    assert p.manifest.run_id == run.run_id and p.manifest.artifact_path == "clf"
    assert p.manifest_digest == info.manifest_digest
    np.testing.assert_array_equal(p.predict(X), fitted.predict(X))
    folder = p.path
    del p
    assert not folder.exists()  # the private download goes with the predictor
    with pytest.raises(InvalidArgument, match="already has files"):
        log_model(fitted, "clf", run_id=run.run_id, client=client)


def test_log_model_records_the_runs_datasets(
    client: loopml.Client, fitted: Any, iris: Any
) -> None:
    X, y = iris
    run = client.create_run("churn")
    version = log_dataset(X.assign(target=y), "iris", project="churn", client=client)
    client.log_inputs(run.run_id, [(version, "train")])
    info = log_model(fitted, run_id=run.run_id, client=client)
    manifest = load_model(info.model_uri, client=client).manifest
    assert manifest.datasets == (
        {"name": "iris", "version": version.version, "digest": version.digest, "role": "train"},
    )


def test_log_model_without_a_run_makes_and_ends_one(client: loopml.Client, fitted: Any) -> None:
    info = log_model(fitted, client=client)
    assert client.get_run(info.run_id).status == RunStatus.FINISHED
    with pytest.raises(InvalidArgument):
        log_model(object(), client=client)
    failed = [r for r in client.search_runs(project=None) if r.status == RunStatus.FAILED]
    assert len(failed) == 1


def test_log_model_uses_the_active_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fitted: Any, iris: Any
) -> None:
    X, _ = iris
    monkeypatch.setenv("LOOPML_FLUSH_INTERVAL", "3600")
    monkeypatch.setenv("LOOPML_HEARTBEAT_INTERVAL", "3600")
    loopml.set_tracking_uri(str(tmp_path / "fluent"))
    try:
        with loopml.start_run() as run:
            info = log_model(fitted, input_example=X.head(2))
        assert info.run_id == run.run_id
        assert loopml.get_client().get_run(run.run_id).status == RunStatus.FINISHED
        np.testing.assert_array_equal(load_model(info.model_uri).predict(X), fitted.predict(X))
    finally:
        client = context.peek_client()
        loopml.set_tracking_uri(None)
        if client is not None:
            client.close()


# --- models:/ URIs and registration, through the client's registry methods -----------------------


def test_the_registry_pins_the_manifest(client: loopml.Client, fitted: Any, iris: Any) -> None:
    X, _ = iris
    info = log_model(fitted, input_example=X.head(2), registered_model_name="iris", client=client)
    # A second version of the same folder whose recorded digest is not the manifest's.
    client.create_model_version(
        "iris",
        info.model_uri,
        run_id=info.run_id,
        flavor="sklearn",
        manifest_digest="0" * 64,
    )
    np.testing.assert_array_equal(
        load_model("models:/iris/1", client=client).predict(X), fitted.predict(X)
    )
    with pytest.raises(ModelCorrupted, match="registry recorded"):
        load_model("models:/iris/2", client=client)


def test_registering_without_a_registry_says_so(tmp_path: Path, fitted: Any) -> None:
    class NoRegistry(loopml.Client):
        create_model_version = None

    client = NoRegistry(str(tmp_path / ".loopml"))
    try:
        with pytest.raises(InvalidArgument, match="no model registry"):
            log_model(fitted, registered_model_name="iris", client=client)
    finally:
        client.close()


def test_the_registry_round_trip(client: loopml.Client, fitted: Any, iris: Any) -> None:
    X, _ = iris
    info = log_model(fitted, input_example=X.head(2), registered_model_name="iris", client=client)
    version = info.registered_version
    assert version.version == 1 and version.manifest_digest == info.manifest_digest
    assert version.source == info.model_uri and version.flavor == "sklearn"
    assert ModelSignature.from_dict(version.signature) == info.signature
    client.set_model_alias("iris", "champion", 1)
    for uri in ("models:/iris/1", "models:/iris@champion", "models:/iris/latest"):
        predictor = load_model(uri, client=client)
        assert predictor.manifest_digest == version.manifest_digest
        np.testing.assert_array_equal(predictor.predict(X), fitted.predict(X))
