"""Batch scoring (``loopml.serving.batch.predict_batch``) against a real store holding a registered
scikit-learn model: every input kind, chunking, the output's shape, errors, memory, and Ray."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loopml
from loopml.errors import (
    DatasetNotFound,
    InvalidArgument,
    InvalidData,
    MissingExtra,
    SignatureMismatch,
)
from loopml.models.loading import load_model
from loopml.models.package import log_model, save_model
from loopml.models.predictor import Predictor
from loopml.serving.batch import BatchResult, predict_batch

FEATURES = ["a", "b"]


@dataclass
class Store:
    """A store with model ``churn`` (v1, alias ``champion``: a logistic regression on a and b),
    a regression model folder, and the client."""

    client: loopml.Client
    folder: Path
    regressor: Path


def customers(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": np.arange(n, dtype="int64"),
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "plan": rng.choice(["basic", "plus", "pro"], n),
        }
    )
    return frame.assign(churned=(frame.a + frame.b > 0).astype("int64"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    folder = tmp_path_factory.mktemp("batch-store")
    train = customers(300, seed=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LOOPML_CAPTURE_PACKAGES", "false")
        mp.setenv("LOOPML_PROJECT", "default")
        mp.delenv("LOOPML_TRACKING_URI", raising=False)
        client = loopml.Client(f"sqlite:///{folder / 'loopml.db'}")
        model = LogisticRegression().fit(train[FEATURES], train.churned)
        log_model(
            model,
            input_example=train[FEATURES].head(5),
            registered_model_name="churn",
            client=client,
        )
        client.set_model_alias("churn", "champion", 1)
        regressor = folder / "regressor"
        save_model(
            LinearRegression().fit(train[FEATURES], train.a * 2),
            regressor,
            input_example=train[FEATURES].head(5),
        )
        try:
            yield Store(client, folder, regressor)
        finally:
            client.close()


@pytest.fixture
def champion(store: Store) -> Predictor:
    return load_model("models:/churn@champion", client=store.client)


def score(store: Store, input: str | Path, output: Path, **kwargs: object) -> BatchResult:
    return predict_batch(
        "models:/churn@champion", input, output, client=store.client, progress=False, **kwargs
    )


def expected(model: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    """What batch scoring must write: the input, then the model's predictions on all of it."""
    return frame.assign(prediction=model.predict(frame[FEATURES]))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


# --- inputs and outputs ----------------------------------------------------------------------


def test_parquet_in_parquet_out(store: Store, champion: Predictor, tmp_path: Path) -> None:
    frame = customers(1_000)
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    result = score(store, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=300)
    assert (result.rows, result.chunks) == (1_000, 4)
    assert result.model_uri == "models:/churn/1"  # the alias, resolved
    assert result.output == str(tmp_path / "out.parquet") and result.seconds > 0
    assert result.rows_per_second > 0 and "scored 1,000 rows in 4 chunks" in result.summary()
    written = pd.read_parquet(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(written, expected(champion, frame))
    assert leftovers(tmp_path) == []


def test_csv_in_csv_out(store: Store, champion: Predictor, tmp_path: Path) -> None:
    frame = customers(500)
    frame.to_csv(tmp_path / "in.csv", index=False)
    result = score(store, tmp_path / "in.csv", tmp_path / "out.csv", chunk_rows=128)
    assert (result.rows, result.chunks) == (500, 4)
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written.columns) == [*frame.columns, "prediction"]
    np.testing.assert_array_equal(written.prediction, champion.predict(frame[FEATURES]))
    pd.testing.assert_frame_equal(written[frame.columns], frame, check_exact=False)


def test_tsv_output_and_csv_to_parquet(store: Store, tmp_path: Path) -> None:
    customers(50).to_csv(tmp_path / "in.csv", index=False)
    score(store, tmp_path / "in.csv", tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_text().splitlines()[0].split("\t")[-1] == '"prediction"'
    score(store, tmp_path / "in.csv", tmp_path / "sub" / "out.parquet")  # the folder is made
    assert pq.read_metadata(tmp_path / "sub" / "out.parquet").num_rows == 50


def test_a_dataset_version_as_input(store: Store, champion: Predictor, tmp_path: Path) -> None:
    frame = customers(700, seed=4)
    version = loopml.log_dataset(frame, "customers", client=store.client, profile=False)
    result = score(store, version.uri, tmp_path / "out.parquet", chunk_rows=200)
    assert result.input == version.uri and (result.rows, result.chunks) == (700, 4)
    written = pd.read_parquet(tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(written, expected(champion, frame))
    with pytest.raises(DatasetNotFound):
        score(store, "datasets:/customers/9", tmp_path / "nope.parquet")
    assert not (tmp_path / "nope.parquet").exists()


def test_a_folder_of_parquet_files_in_path_order(
    store: Store, champion: Predictor, tmp_path: Path
) -> None:
    frame = customers(1_000)
    parts = tmp_path / "parts"
    (parts / "day=2").mkdir(parents=True)
    frame.iloc[:130].to_parquet(parts / "day=1.parquet", index=False)
    frame.iloc[130:610].to_parquet(parts / "day=2" / "part-0.parquet", index=False)
    frame.iloc[610:].to_parquet(parts / "day=2" / "part-1.parquet", index=False)
    (parts / "_SUCCESS").write_text("")
    (parts / "_tmp").mkdir()
    frame.iloc[:5].to_parquet(parts / "_tmp" / "ignored.parquet", index=False)
    result = score(store, parts, tmp_path / "out.parquet", chunk_rows=400)
    # chunks span file boundaries: 1,000 rows in chunks of 400
    assert (result.rows, result.chunks) == (1_000, 3)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "out.parquet"), expected(champion, frame)
    )


def test_probabilities(store: Store, champion: Predictor, tmp_path: Path) -> None:
    frame = customers(400)
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    score(store, tmp_path / "in.parquet", tmp_path / "out.parquet", proba=True, chunk_rows=150)
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert list(written.columns) == [*frame.columns, "prediction", "proba_0", "proba_1"]
    proba = champion.predict_proba(frame[FEATURES])
    np.testing.assert_allclose(written[["proba_0", "proba_1"]].to_numpy(), proba)


def test_text_features_and_text_labels(tmp_path: Path) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = customers(600)
    features = frame[["a", "plan"]]
    labels = np.where(frame.a + (frame.plan == "pro") > 0.5, "yes", "no")
    pipeline = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), ("passthrough", ["a"])),
        LogisticRegression(),
    ).fit(features, labels)
    save_model(pipeline, tmp_path / "model", input_example=features.head(5))
    frame.to_csv(tmp_path / "in.csv", index=False)
    predict_batch(tmp_path / "model", tmp_path / "in.csv", tmp_path / "out.parquet",
                  chunk_rows=250, proba=True, keep_columns=[])  # fmt: skip
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert list(written.columns) == ["prediction", "proba_no", "proba_yes"]
    np.testing.assert_array_equal(written.prediction, pipeline.predict(features))
    np.testing.assert_allclose(
        written[["proba_no", "proba_yes"]], pipeline.predict_proba(features)
    )


def test_only_predictions_or_some_columns(store: Store, tmp_path: Path) -> None:
    customers(100).to_parquet(tmp_path / "in.parquet", index=False)
    score(store, tmp_path / "in.parquet", tmp_path / "only.parquet", keep_columns=[], proba=True)
    assert pq.read_schema(tmp_path / "only.parquet").names == ["prediction", "proba_0", "proba_1"]
    score(store, tmp_path / "in.parquet", tmp_path / "ids.csv", keep_columns=["id", "plan"])
    assert pd.read_csv(tmp_path / "ids.csv").columns.tolist() == ["id", "plan", "prediction"]
    with pytest.raises(InvalidArgument, match=r"no column\(s\) 'customer_id' to keep"):
        score(store, tmp_path / "in.parquet", tmp_path / "x.parquet", keep_columns=["customer_id"])


def test_many_chunks_give_what_one_predict_gives(
    store: Store, champion: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = customers(10_007, seed=7)
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "in.parquet", 3_000
    )
    seen: list[int] = []
    predict = Predictor.predict

    def spy(self: Predictor, data: pd.DataFrame, **kwargs: object) -> object:
        seen.append(len(data))
        return predict(self, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Predictor, "predict", spy)
    result = score(store, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=1_000)
    assert seen == [1_000] * 10 + [7]  # exact chunks, across the file's row groups
    assert result.chunks == 11
    whole = predict(champion, frame[FEATURES])
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "out.parquet").prediction, whole)
    assert pq.ParquetFile(tmp_path / "out.parquet").num_row_groups == 11  # written as it went


def test_a_loaded_predictor_and_a_model_folder(store: Store, tmp_path: Path) -> None:
    frame = customers(60)
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    loaded = load_model(store.regressor)
    result = predict_batch(loaded, tmp_path / "in.parquet", tmp_path / "a.parquet", progress=False)
    assert result.model_uri == str(store.regressor)
    predict_batch(store.regressor, tmp_path / "in.parquet", tmp_path / "b.parquet")
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)
    np.testing.assert_allclose(a.prediction, loaded.predict(frame[FEATURES]))


def test_an_empty_input_gives_an_empty_output(store: Store, tmp_path: Path) -> None:
    customers(0).to_parquet(tmp_path / "in.parquet", index=False)
    result = score(store, tmp_path / "in.parquet", tmp_path / "out.parquet", proba=True)
    assert (result.rows, result.chunks) == (0, 0)
    written = pq.read_table(tmp_path / "out.parquet")
    assert written.num_rows == 0
    assert written.column_names == [*customers(0).columns, "prediction", "proba_0", "proba_1"]


def test_the_progress_bar_runs(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml import _progress

    monkeypatch.setattr(_progress, "enabled", lambda: True)
    customers(300).to_csv(tmp_path / "in.csv", index=False)
    customers(300).to_parquet(tmp_path / "in.parquet", index=False)
    for name in ("in.csv", "in.parquet"):  # unknown and known totals
        result = predict_batch(
            "models:/churn@champion", tmp_path / name, tmp_path / "out.parquet",
            client=store.client, chunk_rows=100,
        )  # fmt: skip
        assert result.rows == 300


# --- errors ----------------------------------------------------------------------------------


def test_a_signature_mismatch_names_the_chunk_and_leaves_no_file(
    store: Store, tmp_path: Path
) -> None:
    frame = customers(5_000)
    frame["a"] = frame["a"].astype("float64")
    frame.loc[2_345, "a"] = np.nan  # the signature says a has no nulls
    frame.loc[2_400, "b"] = np.nan
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    (tmp_path / "out.parquet").write_text("the previous output")
    with pytest.raises(SignatureMismatch) as caught:
        score(store, tmp_path / "in.parquet", tmp_path / "out.parquet", chunk_rows=1_000)
    message = str(caught.value)
    assert "chunk 3 (rows 2,000 to 2,999, counted from 0)" in message
    assert "in.parquet" in message
    assert "column 'a': expected float without nulls, got 1 null value" in message
    assert {p["column"] for p in caught.value.problems} == {"a", "b"}
    assert (tmp_path / "out.parquet").read_text() == "the previous output"  # untouched
    assert leftovers(tmp_path) == []
    # a new output is never created at all
    with pytest.raises(SignatureMismatch):
        score(store, tmp_path / "in.parquet", tmp_path / "new.csv", chunk_rows=1_000)
    assert not (tmp_path / "new.csv").exists() and leftovers(tmp_path) == []


def test_missing_columns_are_named(store: Store, tmp_path: Path) -> None:
    customers(10).drop(columns="b").to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(SignatureMismatch, match="column 'b': expected float, got missing"):
        score(store, tmp_path / "in.csv", tmp_path / "out.parquet")


def test_a_model_failure_names_the_rows(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    train = customers(100)
    nullable = train[FEATURES].astype("float64")
    nullable.loc[0, "a"] = np.nan  # a signature that lets nulls through to the model
    save_model(
        LogisticRegression().fit(train[FEATURES], train.churned),
        tmp_path / "model",
        signature=loopml.infer_signature(nullable),
    )
    frame = customers(300)
    frame.loc[150, "a"] = np.nan
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    with pytest.raises(InvalidData, match=r"the model failed on chunk 2 \(rows 100 to 199") as e:
        predict_batch(tmp_path / "model", tmp_path / "in.parquet", tmp_path / "out.parquet",
                      chunk_rows=100)  # fmt: skip
    assert "ValueError" in str(e.value) and "NaN" in str(e.value)
    assert not (tmp_path / "out.parquet").exists()


def test_a_missing_input(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidData, match=r"input '.*nothere.parquet' does not exist"):
        score(store, tmp_path / "nothere.parquet", tmp_path / "out.parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidData, match="holds no Parquet files"):
        score(store, tmp_path / "empty", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_rows": 0}, "chunk_rows must be a positive integer"),
        ({"executor": "dask"}, "executor must be 'local' or 'ray'"),
        ({"output": "out.json"}, r"end it with \.parquet, \.pq, \.csv, \.tsv"),
    ],
)
def test_bad_arguments(
    store: Store, tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    customers(10).to_parquet(tmp_path / "in.parquet", index=False)
    out = tmp_path / str(kwargs.pop("output", "out.parquet"))
    with pytest.raises(InvalidArgument, match=message):
        score(store, tmp_path / "in.parquet", out, **kwargs)


def test_probabilities_of_a_regressor_are_refused(store: Store, tmp_path: Path) -> None:
    customers(10).to_parquet(tmp_path / "in.parquet", index=False)
    with pytest.raises(InvalidArgument, match="has no predict_proba"):
        predict_batch(store.regressor, tmp_path / "in.parquet", tmp_path / "o.parquet", proba=True)


def test_an_input_column_named_prediction(store: Store, tmp_path: Path) -> None:
    customers(10).assign(prediction=1).to_parquet(tmp_path / "in.parquet", index=False)
    with pytest.raises(InvalidArgument, match="column\\(s\\) 'prediction', which the predictions"):
        score(store, tmp_path / "in.parquet", tmp_path / "out.parquet")
    assert leftovers(tmp_path) == [] and not (tmp_path / "out.parquet").exists()
    score(store, tmp_path / "in.parquet", tmp_path / "out.parquet", keep_columns=["id"])


def test_ray_missing_names_the_extra(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    customers(10).to_parquet(tmp_path / "in.parquet", index=False)
    with pytest.raises(MissingExtra, match=r"pip install 'loopml\[ray\]'"):
        score(store, tmp_path / "in.parquet", tmp_path / "out.parquet", executor="ray")
    assert not (tmp_path / "out.parquet").exists() and leftovers(tmp_path) == []


# --- S3 --------------------------------------------------------------------------------------


def _put_parquet(s3_client: Any, bucket: str, key: str, frame: pd.DataFrame) -> None:
    body = io.BytesIO()
    frame.to_parquet(body, index=False)
    s3_client.put_object(Bucket=bucket, Key=key, Body=body.getvalue())


def _get(s3_client: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


@pytest.mark.s3
@pytest.mark.slow  # a moto server and s3fs: a few seconds
def test_s3_files_and_folders_in_and_out(
    store: Store,
    champion: Predictor,
    s3_endpoint: str,
    s3_client: Any,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOOPML_S3_ENDPOINT_URL", s3_endpoint)  # as for the artifact store
    frame = customers(900)
    _put_parquet(s3_client, s3_bucket, "in/all.parquet", frame)
    _put_parquet(s3_client, s3_bucket, "in/parts/day=1/a.parquet", frame.iloc[:350])
    _put_parquet(s3_client, s3_bucket, "in/parts/day=2/b.parquet", frame.iloc[350:])
    s3_client.put_object(Bucket=s3_bucket, Key="in/parts/_SUCCESS", Body=b"")
    s3_client.put_object(
        Bucket=s3_bucket, Key="in/all.csv", Body=frame.to_csv(index=False).encode()
    )
    url = f"s3://{s3_bucket}"
    want = expected(champion, frame)
    result = score(store, f"{url}/in/all.parquet", f"{url}/out/a.parquet", chunk_rows=400)
    assert (result.rows, result.chunks, result.output) == (900, 3, f"{url}/out/a.parquet")
    got = pd.read_parquet(io.BytesIO(_get(s3_client, s3_bucket, "out/a.parquet")))
    pd.testing.assert_frame_equal(got, want)
    result = score(store, f"{url}/in/parts/", f"{url}/out/b.parquet", chunk_rows=400)
    assert (result.rows, result.chunks) == (900, 3)
    got = pd.read_parquet(io.BytesIO(_get(s3_client, s3_bucket, "out/b.parquet")))
    pd.testing.assert_frame_equal(got, want)
    score(store, f"{url}/in/all.csv", f"{url}/out/c.csv", keep_columns=["id"])
    got = pd.read_csv(io.BytesIO(_get(s3_client, s3_bucket, "out/c.csv")))
    pd.testing.assert_frame_equal(got, want[["id", "prediction"]])
    with pytest.raises(InvalidData, match="holds no Parquet files"):
        score(store, f"{url}/nothing/", f"{url}/out/d.parquet")


# --- memory ----------------------------------------------------------------------------------

_MEMORY_PROBE = """
import json, sys, tracemalloc
import pyarrow as pa
from loopml.models.loading import load_model
from loopml.serving.batch import predict_batch

model, data, out, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
predictor = load_model(model)
pool = pa.default_memory_pool()
base = pool.bytes_allocated()
tracemalloc.start()
result = predict_batch(predictor, data, out, chunk_rows=chunk, progress=False)
_, python_peak = tracemalloc.get_traced_memory()
print(json.dumps({"rows": result.rows, "python": python_peak, "arrow": pool.max_memory() - base}))
"""


def _peaks(store: Store, folder: Path, rows: int, chunk_rows: int) -> tuple[int, dict[str, int]]:
    """The in-memory size of a generated table of ``rows`` rows, and the peak memory (Arrow's
    pool, Python's allocations) of a fresh process scoring it from Parquet."""
    rng = np.random.default_rng(5)
    table = pa.table(
        {
            "id": np.arange(rows),
            "a": rng.normal(size=rows),
            "b": rng.normal(size=rows),
            "plan": pa.array(rng.choice(["basic", "plus", "pro"], rows)),
        }
    )
    data, out = folder / f"in-{rows}.parquet", folder / f"out-{rows}.parquet"
    pq.write_table(table, data, row_group_size=100_000)
    probe = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEMORY_PROBE), str(store.regressor), str(data),
         str(out), str(chunk_rows)],
        capture_output=True, text=True, check=True, timeout=240,
    )  # fmt: skip
    found: dict[str, int] = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["rows"] == rows == pq.read_metadata(out).num_rows
    return table.nbytes, found


@pytest.mark.slow
def test_memory_stays_bounded_on_a_large_file(store: Store, tmp_path: Path) -> None:
    """2,000,000 rows (~64 MB in memory) scored in chunks of 20,000 take no more memory than
    400,000 rows do, and a small fraction of the table's size."""
    _, small = _peaks(store, tmp_path, 400_000, 20_000)
    size, large = _peaks(store, tmp_path, 2_000_000, 20_000)
    assert size > 60_000_000
    for kind in ("arrow", "python"):
        assert large[kind] < size / 4, (kind, large, size)
        assert large[kind] < 1.25 * small[kind] + 1_000_000, (kind, large, small)


# --- Ray -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_the_ray_executor_gives_the_local_result(
    store: Store, tmp_path: Path, ray_cluster: None
) -> None:
    frame = customers(2_500, seed=9)
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    local = score(store, tmp_path / "in.parquet", tmp_path / "local.parquet", chunk_rows=200,
                  proba=True)  # fmt: skip
    on_ray = score(store, tmp_path / "in.parquet", tmp_path / "ray.parquet", chunk_rows=200,
                   proba=True, executor="ray")  # fmt: skip
    assert (on_ray.rows, on_ray.chunks) == (local.rows, local.chunks) == (2_500, 13)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "ray.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    )
    # errors come back from the workers with the chunk's rows and every problem
    frame.loc[1_234, "b"] = np.nan
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(SignatureMismatch, match=r"chunk 7 \(rows 1,200 to 1,399") as caught:
        score(store, tmp_path / "bad.parquet", tmp_path / "bad-out.parquet", chunk_rows=200,
              executor="ray", ray_workers=2)  # fmt: skip
    assert caught.value.problems[0]["column"] == "b"
    assert not (tmp_path / "bad-out.parquet").exists() and leftovers(tmp_path) == []
    with pytest.raises(InvalidArgument, match="more than the cluster's 2 CPUs"):
        score(store, tmp_path / "in.parquet", tmp_path / "x.parquet", executor="ray",
              ray_workers=3)  # fmt: skip
