"""The metric buffer: background flushes, backpressure, failures, heartbeats, thread safety."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loopml
from loopml.client.buffer import MetricBuffer
from loopml.config import Settings
from loopml.entities import Metric
from loopml.errors import RunNotFound, StoreError
from loopml.store import open_store
from loopml.store.base import Store


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"flush_interval": 3600.0, "heartbeat_interval": 3600.0}
    values.update(overrides)
    return Settings(**values)


def _client(tmp_path: Path, store: Any = None, **settings: Any) -> loopml.Client:
    return loopml.Client(
        f"sqlite:///{tmp_path}/t.db",
        artifact_uri=str(tmp_path / "art"),
        store=store,
        settings=_settings(**settings),
    )


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll until ``condition()`` holds; return the seconds it took (fail after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - start


class FlakyStore:
    """Wraps a store; ``log_batch`` raises StoreError the next ``failures`` times."""

    def __init__(self, inner: Store, failures: int = 1) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def log_batch(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise StoreError(f"write to store {self.inner.uri!r} failed: disk I/O error")
        self.inner.log_batch(run_id, *args, **kwargs)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[loopml.Client]:
    c = _client(tmp_path)
    try:
        yield c
    finally:
        c.close()


def test_background_flush_writes_within_the_flush_interval(tmp_path: Path) -> None:
    with _client(tmp_path, flush_interval=0.05) as client:
        run_id = client.create_run("p").run_id
        client.log_metric(run_id, "m", 1.0)
        client.log_metric(run_id, "m", 2.0)
        took = _wait_for(lambda: len(client.store.get_metric_history(run_id, "m")) == 2)
        assert took < 2.0  # a few intervals at most, even on a busy machine
        assert client.buffer.pending == 0


def test_no_background_flush_before_the_interval(client: loopml.Client) -> None:
    run_id = client.create_run("p").run_id
    client.log_metric(run_id, "m", 1.0)
    time.sleep(0.2)
    assert len(client.store.get_metric_history(run_id, "m")) == 0
    assert client.buffer.pending == 1


def test_max_points_makes_the_producer_flush(tmp_path: Path) -> None:
    with _client(tmp_path, buffer_max_points=10) as client:
        run_id = client.create_run("p").run_id
        for i in range(9):
            client.log_metric(run_id, "m", float(i))
        assert client.buffer.pending == 9
        assert len(client.store.get_metric_history(run_id, "m")) == 0
        client.log_metric(run_id, "m", 9.0)  # the tenth point: a synchronous flush
        assert client.buffer.pending == 0
        assert list(client.store.get_metric_history(run_id, "m").values) == [
            float(i) for i in range(10)
        ]


def test_points_of_a_deleted_run_are_dropped_with_not_found(client: loopml.Client) -> None:
    gone = client.create_run("p").run_id
    kept = client.create_run("p").run_id
    client.log_metric(gone, "m", 1.0)
    client.log_metric(kept, "m", 2.0)
    client.store.delete_run(gone)  # behind the client's back: its buffer still holds points
    with pytest.raises(RunNotFound, match=gone):
        client.flush()
    assert client.buffer.pending == 0
    assert list(client.store.get_metric_history(kept, "m").values) == [2.0]
    client.flush()  # nothing left over to fail again


def test_client_delete_run_discards_its_buffered_points(client: loopml.Client) -> None:
    run_id = client.create_run("p").run_id
    client.log_metric(run_id, "m", 1.0)
    client.delete_run(run_id)
    assert client.buffer.pending == 0
    client.flush()


def test_a_transient_store_failure_keeps_the_points_for_the_next_flush(tmp_path: Path) -> None:
    inner = open_store(f"sqlite:///{tmp_path}/t.db")
    flaky = FlakyStore(inner, failures=1)
    with _client(tmp_path, store=flaky) as client:
        run_id = client.create_run("p").run_id
        for i in range(5):
            client.log_metric(run_id, "m", float(i))
        with pytest.raises(StoreError, match="disk I/O error"):
            client.flush()
        assert client.buffer.pending == 5
        assert len(inner.get_metric_history(run_id, "m")) == 0
        client.log_metric(run_id, "m", 5.0)  # added while the failed points wait
        client.flush()
        assert client.buffer.pending == 0
        history = inner.get_metric_history(run_id, "m")
        assert list(history.steps) == [0, 1, 2, 3, 4, 5]
        assert list(history.values) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        assert flaky.calls == 2


def _background_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum("background metric flush failed" in r.getMessage() for r in caplog.records)


def test_a_transient_failure_in_the_background_is_retried_and_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inner = open_store(f"sqlite:///{tmp_path}/t.db")
    client = _client(tmp_path, store=FlakyStore(inner, failures=1), flush_interval=0.02)
    try:
        run_id = client.create_run("p").run_id
        with caplog.at_level(logging.WARNING, logger="loopml"):
            for i in range(3):
                client.log_metric(run_id, "m", float(i))
            _wait_for(lambda: len(inner.get_metric_history(run_id, "m")) == 3)
            assert client.buffer.pending == 0
            assert list(inner.get_metric_history(run_id, "m").steps) == [0, 1, 2]
            time.sleep(0.3)  # ~15 background cycles: nothing is left to retry
            logged = _background_failures(caplog)
            assert logged >= 1
            time.sleep(0.3)
            assert _background_failures(caplog) == logged  # the warnings stopped
        # the caller hears of the background failure at its next flush, and only then
        with pytest.raises(StoreError, match="disk I/O error"):
            client.flush()
        client.flush()
        assert list(inner.get_metric_history(run_id, "m").steps) == [0, 1, 2]
    finally:
        client.close()


def test_a_run_deleted_under_the_background_flush_is_reported_at_the_next_flush(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _client(tmp_path, flush_interval=0.02) as client:
        gone = client.create_run("p").run_id
        kept = client.create_run("p").run_id
        client.store.delete_run(gone)
        with caplog.at_level(logging.WARNING, logger="loopml"):
            client.log_metric(gone, "m", 1.0)
            client.log_metric(kept, "m", 2.0)
            _wait_for(lambda: client.buffer.pending == 0)
            time.sleep(0.1)
        assert any("metric points dropped" in r.getMessage() for r in caplog.records)
        client.flush(kept)  # another run's flush does not raise this run's error
        with pytest.raises(RunNotFound, match=gone):
            client.flush()
        client.flush()
        assert list(client.store.get_metric_history(kept, "m").values) == [2.0]


def test_heartbeats_are_sent_while_a_run_is_tracked(tmp_path: Path) -> None:
    with _client(tmp_path, flush_interval=0.02, heartbeat_interval=0.05) as client:
        run = client.create_run("p")
        first = run.heartbeat_at
        assert first is not None

        def beat() -> int:
            return client.store.get_run(run.run_id).heartbeat_at or 0

        _wait_for(lambda: beat() > first)
        second = beat()
        _wait_for(lambda: beat() > second)  # and keeps beating

        client.end_run(run.run_id)  # untracked: the beats stop
        time.sleep(0.2)
        stopped = beat()
        time.sleep(0.3)
        assert beat() == stopped


def test_create_run_without_heartbeat_is_not_tracked(tmp_path: Path) -> None:
    with _client(tmp_path, flush_interval=0.02, heartbeat_interval=0.02) as client:
        quiet = client.create_run("p", heartbeat=False)
        loud = client.create_run("p")
        _wait_for(lambda: (client.store.get_run(loud.run_id).heartbeat_at or 0) > loud.start_time)
        time.sleep(0.1)
        assert client.store.get_run(quiet.run_id).heartbeat_at == quiet.start_time


def test_close_flushes_and_stops_the_thread(tmp_path: Path) -> None:
    client = _client(tmp_path)
    run_id = client.create_run("p").run_id
    client.log_metric(run_id, "m", 1.0)
    thread = client.buffer._thread
    assert thread is not None and thread.is_alive()
    client.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
    with _client(tmp_path) as again:
        assert list(again.get_metric_history(run_id, "m").values) == [1.0]


def test_many_threads_adding_at_once_lose_nothing() -> None:
    store = open_store("memory://")
    pid = store.get_or_create_project("p").project_id
    runs = [store.create_run(pid).run_id for _ in range(4)]
    buffer = MetricBuffer(store, flush_interval=0.01, max_points=500)
    errors: list[BaseException] = []
    per_thread = 2_000

    def produce(t: int) -> None:
        try:
            run_id = runs[t % len(runs)]
            for i in range(per_thread):
                buffer.add(run_id, [Metric(f"t{t}", float(i), i, 1)])
                if i % 700 == 0:
                    buffer.flush(run_id)
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    buffer.close()
    assert errors == []
    assert buffer.pending == 0
    for t in range(8):
        history = store.get_metric_history(runs[t % len(runs)], f"t{t}")
        assert list(history.steps) == list(range(per_thread))
        assert list(history.values) == [float(i) for i in range(per_thread)]
