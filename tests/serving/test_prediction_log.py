"""The prediction log: every prediction stored as Parquet segments and window profiles, off the
request path; when the sink fails or falls behind, requests go on and drops are counted."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq

from loopml.serving.inputs import Decoded
from loopml.serving.log_writer import LogWriter, build_table
from loopml.serving.prediction_log import Buffer, PredictionLogger
from loopml.serving.runtime import Outputs
from loopml.stats import DatasetProfile

LOG = {"prediction_log": {"enabled": True, "flush_seconds": 0.1, "window_seconds": 60}}
IN_THREAD = {"prediction_log": {**LOG["prediction_log"], "process": False}}


def _row(X: Any, i: int = 0) -> dict[str, float]:
    return {k: float(v) for k, v in X.iloc[i].items()}


def test_every_prediction_is_logged_with_its_id(serve: Any, bc_store: Any, bc_data: Any) -> None:
    X, _ = bc_data
    ids: list[str] = []
    with serve(settings=LOG) as (url, app), httpx.Client(base_url=url) as http:
        for i in range(30):
            rows = [_row(X, i), _row(X, i + 1)] if i % 3 == 0 else [_row(X, i)]
            body = http.post("/predict", json={"rows": rows}).json()
            ids.extend(body["prediction_ids"])
        logger = app.logger
    counts = logger.counts  # the server flushed and closed the log on shutdown
    assert counts.served == counts.logged == len(ids) == 40
    assert counts.dropped == 0 and counts.pending == 0
    segments = bc_store.list_prediction_segments("bc")
    assert sum(s.rows for s in segments) == 40
    tables = [pq.read_table(io.BytesIO(bc_store.artifacts.read(s.digest))) for s in segments]
    logged = sorted(id_ for t in tables for id_ in t.column("prediction_id").to_pylist())
    assert logged == sorted(ids)
    table = tables[0]
    assert {"time", "route", "model_version", "latency_ms", "prediction"} <= set(
        table.column_names
    )
    assert "input.mean radius" in table.column_names
    assert set(table.column("model_version").to_pylist()) == {"bc/1"}
    windows = bc_store.list_window_profiles("bc")
    assert sum(w.rows for w in windows) == 40
    profile = DatasetProfile.from_dict(windows[0].profile)
    assert "prediction" in profile and "mean radius" in profile
    # binned on the training data's edges (the reference), so drift is a comparison of counts
    reference_edges = profile["mean radius"].edges  # type: ignore[union-attr]
    assert len(reference_edges) > 3


def test_a_dead_sink_drops_and_counts_but_requests_go_on(
    serve: Any, bc_store: Any, bc_data: Any, monkeypatch: Any
) -> None:
    X, _ = bc_data

    def dead(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the metadata store is gone")

    monkeypatch.setattr(bc_store, "log_prediction_segment", dead)
    with serve(settings=IN_THREAD) as (url, app), httpx.Client(base_url=url) as http:
        for i in range(25):
            assert http.post("/predict", json={"rows": [_row(X, i)]}).status_code == 200
        deadline = time.monotonic() + 10
        text = ""
        served = 'loopml_prediction_log_rows_total{deployment="bc",state="dropped"} 25.0'
        while served not in text and time.monotonic() < deadline:
            time.sleep(0.1)
            text = http.get("/metrics").text
        logger = app.logger
    counts = logger.counts
    assert counts.served == 25 and counts.logged == 0 and counts.dropped == 25
    assert served in text


class SlowSink:
    def __init__(self) -> None:
        self.rows = 0
        self.release = threading.Event()

    def write(self, table: Any, *, start: int, end: int) -> None:
        self.release.wait(5)
        self.rows += table.num_rows


def _decoded(n: int) -> tuple[Decoded, Outputs]:
    cols = {"x": np.arange(n, dtype=float), "y": np.ones(n)}
    return Decoded(rows=n, columns=cols), Outputs(np.arange(n) % 2)


def test_a_full_buffer_drops_new_predictions_and_keeps_the_books_exact() -> None:
    sink = SlowSink()
    logger = PredictionLogger(
        lambda: LogWriter(sink),
        process=False,
        flush_seconds=0.05,
        flush_rows=10,
        max_pending_rows=30,
    )
    start = time.perf_counter()
    for i in range(100):
        decoded, outputs = _decoded(2)
        logger.record(
            f"r{i}", decoded, outputs, route="primary", model_version="m/1", latency_ms=1.0
        )
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5  # never waits for the sink
    mid = logger.counts
    assert mid.served == 200 and mid.dropped > 0
    assert mid.served == mid.logged + mid.dropped + mid.pending
    sink.release.set()
    counts = logger.close()
    assert counts.served == counts.logged + counts.dropped == 200
    assert counts.logged == sink.rows


def test_a_killed_writer_process_is_counted_and_replaced(
    serve: Any, bc_store: Any, bc_data: Any
) -> None:
    X, _ = bc_data
    with serve(settings=LOG) as (url, app), httpx.Client(base_url=url) as http:
        for i in range(10):
            assert http.post("/predict", json={"rows": [_row(X, i)]}).status_code == 200
        writer = app.logger._writer
        deadline = time.monotonic() + 30
        while app.logger.counts.logged < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = writer._proc
        first.kill()
        first.join(10)
        for i in range(20):
            assert http.post("/predict", json={"rows": [_row(X, i)]}).status_code == 200
        deadline = time.monotonic() + 30
        while app.logger.counts.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while not writer._proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)  # the replacement may still be starting
        assert writer._proc is not first and writer._proc.is_alive()
        for i in range(5):
            assert http.post("/predict", json={"rows": [_row(X, i)]}).status_code == 200
        logger = app.logger
    counts = logger.counts
    assert counts.served == 35 == counts.logged + counts.dropped
    assert counts.logged >= 15  # the first ten and the last five at least


def test_build_table_unifies_routes_with_different_inputs() -> None:
    buffer = Buffer()
    matrix = Decoded(rows=2, matrix=np.array([[1.0], [2.0]]), names=("x",))
    buffer.append("a", 1000, "primary", "m/1", matrix, np.array([0, 1]), 1.0)
    text = Decoded(rows=1, columns={"z": np.array(["u"], dtype=object)})
    buffer.append("b", 2000, "shadow", "m/2", text, np.array([1]), 2.0)
    table = build_table(buffer.to_batch(1).parts)
    assert table.num_rows == 3
    assert table.column("prediction_id").to_pylist() == ["a-0", "a-1", "b"]
    assert table.column("input.x").to_pylist() == [1.0, 2.0, None]
    assert table.column("input.z").to_pylist() == [None, None, "u"]


def test_a_model_served_from_a_folder_is_logged_as_local(
    bc_store: Any, bc_data: Any, tmp_path: Any
) -> None:
    import loopml

    X, _ = bc_data
    folder = tmp_path / "bc-model"
    model = loopml.load_model("models:/bc/1", client=bc_store, dst_path=tmp_path / "dl")
    loopml.save_model(model.native, folder, input_example=X.head(3))
    settings = {"access_log": False, **IN_THREAD}
    with loopml.serving.Server(str(folder), client=bc_store, settings=settings) as server:
        for i in range(3):
            r = httpx.post(server.url + "/predict", json={"rows": [_row(X, i)]})
            assert r.json()["version"] is None
            assert r.headers["x-model-version"] == "bc-model/local"
        logger = server.app.logger  # type: ignore[union-attr]
    assert logger.counts.logged == 3
    segments = bc_store.list_prediction_segments("bc-model")
    assert segments[0].model_versions == ("bc-model/local",)
    assert bc_store.list_window_profiles("bc-model")[0].model_version == "bc-model/local"


def test_an_ended_window_is_stored_without_more_traffic(
    serve: Any, bc_store: Any, bc_data: Any
) -> None:
    X, _ = bc_data
    settings = {"prediction_log": {**LOG["prediction_log"], "window_seconds": 1}}
    with serve(settings=settings) as (url, _app), httpx.Client(base_url=url) as http:
        for i in range(5):
            assert http.post("/predict", json={"rows": [_row(X, i)]}).status_code == 200
        # then silence: the writer stores the ended window on its own, while the server runs
        deadline = time.monotonic() + 15
        while not bc_store.list_window_profiles("bc") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sum(w.rows for w in bc_store.list_window_profiles("bc")) == 5
