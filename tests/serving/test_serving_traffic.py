"""Traffic windows: the request and error counts a serving process keeps per route and window
(:mod:`loopml.serving.traffic`), and what a real server stores of them when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

import loopml
from loopml.entities import TrafficWindow
from loopml.serving import traffic as traffic_module
from loopml.serving.traffic import TrafficCounter, TrafficRecorder, merge_windows

T0 = 1_699_999_980.0  # a multiple of 60 s (28_333_333 minutes)
assert T0 % 60 == 0
MS0 = int(T0) * 1000


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _row(X: Any, i: int = 0) -> dict[str, float]:
    return {k: float(v) for k, v in X.iloc[i].items()}


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that carry all ``labels`` (any label order)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        series, value = line.rsplit(" ", 1)
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


def _per_route(windows: list[TrafficWindow]) -> dict[str, tuple[int, int, int]]:
    """(requests, client errors, server errors) per route, all windows together (a test may
    straddle a window boundary)."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in merge_windows(windows):
        counts = out[t.route]
        counts[0] += t.requests
        counts[1] += t.client_errors
        counts[2] += t.server_errors
    return {route: (c[0], c[1], c[2]) for route, c in out.items()}


def _check_windows(windows: list[TrafficWindow], seconds: int = 60) -> None:
    for w in windows:
        assert w.deployment == "bc"
        assert w.window_seconds == seconds
        assert w.window_start % (seconds * 1000) == 0
        assert (w.route == "") == (w.model_version == "")
        assert w.client_errors + w.server_errors <= w.requests
    assert len({w.id for w in windows}) == len(windows)


# --- TrafficCounter ------------------------------------------------------------------------------


def test_the_counter_splits_by_window_route_and_status() -> None:
    clock = Clock(T0 + 5)
    counter = TrafficCounter(60, clock)
    for status in (200, 201, 299, 400, 404, 422, 499, 500, 503):
        counter.count("primary", "bc/1", status)
    counter.count("canary", "bc/2", 200)
    counter.count("canary", "bc/2", 500)
    counter.count("", "", 400)
    counter.count("", "", 413)
    clock.now = T0 + 59.999  # still the first window
    counter.count("primary", "bc/1", 200)
    clock.now = T0 + 60  # the second window starts exactly here
    counter.count("primary", "bc/1", 500)
    counter.count("primary", "bc/1", 200)

    got = {(w.route, w.model_version, w.window_start): w for w in counter.take(final=True)}
    assert set(got) == {
        ("primary", "bc/1", MS0),
        ("canary", "bc/2", MS0),
        ("", "", MS0),
        ("primary", "bc/1", MS0 + 60_000),
    }
    first = got["primary", "bc/1", MS0]
    assert (first.requests, first.client_errors, first.server_errors) == (10, 4, 2)
    canary = got["canary", "bc/2", MS0]
    assert (canary.requests, canary.client_errors, canary.server_errors) == (2, 0, 1)
    refused = got["", "", MS0]
    assert (refused.requests, refused.client_errors, refused.server_errors) == (2, 2, 0)
    second = got["primary", "bc/1", MS0 + 60_000]
    assert (second.requests, second.client_errors, second.server_errors) == (2, 0, 1)


def test_take_returns_only_the_windows_that_have_ended() -> None:
    clock = Clock(T0 + 1)
    counter = TrafficCounter(10, clock)
    counter.count("primary", "bc/1", 200)  # window T0
    clock.now = T0 + 12
    counter.count("primary", "bc/1", 200)  # window T0 + 10
    counter.count("canary", "bc/2", 500)
    clock.now = T0 + 25
    counter.count("primary", "bc/1", 200)  # window T0 + 20: the current one

    ended = counter.take()
    assert sorted((w.window_start, w.route) for w in ended) == [
        (MS0, "primary"),
        (MS0 + 10_000, "canary"),
        (MS0 + 10_000, "primary"),
    ]
    assert counter.take() == []  # taken means removed
    clock.now = T0 + 29.9
    counter.count("primary", "bc/1", 404)
    assert counter.take() == []  # the current window stays until it ends

    last = counter.take(final=True)
    assert [(w.window_start, w.requests, w.client_errors) for w in last] == [(MS0 + 20_000, 2, 1)]
    assert counter.take(final=True) == []
    ids = [w.id for w in ended + last]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_each_take_gives_new_ids() -> None:
    clock = Clock(T0)
    counter = TrafficCounter(60, clock)
    ids = []
    for _ in range(5):
        counter.count("primary", "bc/1", 200)
        ids += [w.id for w in counter.take(final=True)]
    assert len(ids) == 5 and len(set(ids)) == 5


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_window_must_last_a_second(seconds: int) -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        TrafficCounter(seconds)
    with pytest.raises(ValueError, match="window_seconds"):
        TrafficRecorder(loopml.Client.__new__(loopml.Client), "bc", None, seconds)


# --- TrafficRecorder -----------------------------------------------------------------------------


class FlakyClient:
    """A client whose ``log_traffic_window`` fails ``failures`` times (after storing the
    window when ``store_first``: a write whose answer was lost); everything else delegates."""

    def __init__(self, client: loopml.Client, failures: int = 1, store_first: bool = False):
        self.client = client
        self.failures = failures
        self.store_first = store_first
        self.calls: list[dict[str, Any]] = []

    def log_traffic_window(self, deployment: str, **kwargs: Any) -> TrafficWindow:
        self.calls.append(dict(kwargs, deployment=deployment))
        if self.failures > 0:
            self.failures -= 1
            if self.store_first:
                self.client.log_traffic_window(deployment, **kwargs)
            raise ConnectionError("the store is unreachable")
        return self.client.log_traffic_window(deployment, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _store(root: Path) -> loopml.Client:
    """A local store with the client's project (listing windows needs it)."""
    client = loopml.Client(str(root))
    client.create_project(client.settings.project)
    return client


def _recorder(client: Any, clock: Clock, seconds: int = 60) -> TrafficRecorder:
    return TrafficRecorder(client, "bc", None, seconds, clock=clock)


def test_flush_stores_the_ended_windows(tmp_path: Path) -> None:
    client = _store(tmp_path)
    clock = Clock(T0 + 3)
    rec = _recorder(client, clock)
    for _ in range(7):
        rec.counter.count("primary", "bc/1", 200)
    rec.counter.count("primary", "bc/1", 422)
    rec.counter.count("primary", "bc/1", 500)
    rec.counter.count("canary", "bc/2", 503)
    rec.counter.count("", "", 400)
    assert rec.flush() == 0
    assert client.list_traffic_windows("bc") == []  # the window has not ended

    clock.now = T0 + 61
    rec.counter.count("primary", "bc/1", 200)  # the next window
    assert rec.flush() == 0
    stored = client.list_traffic_windows("bc")
    _check_windows(stored)
    got = {(w.route, w.model_version, w.window_start): w for w in stored}
    assert set(got) == {("", "", MS0), ("canary", "bc/2", MS0), ("primary", "bc/1", MS0)}
    p = got["primary", "bc/1", MS0]
    assert (p.requests, p.client_errors, p.server_errors) == (9, 1, 1)
    c = got["canary", "bc/2", MS0]
    assert (c.requests, c.client_errors, c.server_errors) == (1, 0, 1)
    r = got["", "", MS0]
    assert (r.requests, r.client_errors, r.server_errors) == (1, 1, 0)

    assert rec.flush(final=True) == 0  # the current window too
    stored = client.list_traffic_windows("bc")
    assert len(stored) == 4
    later = [w for w in stored if w.window_start == MS0 + 60_000]
    assert [(w.route, w.requests) for w in later] == [("primary", 1)]
    assert rec.flush(final=True) == 0
    assert len(client.list_traffic_windows("bc")) == 4  # nothing stored twice


@pytest.mark.parametrize("store_first", [False, True], ids=["write-failed", "answer-lost"])
def test_a_failed_write_is_retried_with_the_same_id(
    tmp_path: Path, store_first: bool, caplog: pytest.LogCaptureFixture
) -> None:
    client = _store(tmp_path)
    flaky = FlakyClient(client, failures=1, store_first=store_first)
    clock = Clock(T0)
    rec = _recorder(flaky, clock)
    for status in (200, 200, 500):
        rec.counter.count("primary", "bc/1", status)

    with caplog.at_level(logging.WARNING, logger="loopml.serving"):
        assert rec.flush(final=True) == 1  # kept for a retry
    assert "retrying later" in caplog.text
    assert len(client.list_traffic_windows("bc")) == (1 if store_first else 0)

    assert rec.flush() == 0  # the retry: no new window, the pending one is stored
    stored = client.list_traffic_windows("bc")
    assert len(stored) == 1, stored  # one row, not two
    (w,) = stored
    assert (w.route, w.requests, w.client_errors, w.server_errors) == ("primary", 3, 0, 1)
    assert len(flaky.calls) == 2
    assert flaky.calls[0] == flaky.calls[1]  # the same window, id included
    assert flaky.calls[0]["window_id"] == w.id
    assert _per_route(stored) == {"primary": (3, 0, 1)}


def test_a_failure_keeps_the_windows_after_it_in_order(tmp_path: Path) -> None:
    client = _store(tmp_path)
    flaky = FlakyClient(client, failures=1)
    clock = Clock(T0)
    rec = _recorder(flaky, clock)
    rec.counter.count("primary", "bc/1", 200)
    rec.counter.count("canary", "bc/2", 200)
    clock.now = T0 + 60
    rec.counter.count("primary", "bc/1", 200)
    clock.now = T0 + 120
    assert rec.flush() == 3  # the first write failed: all three kept
    assert client.list_traffic_windows("bc") == []
    clock.now = T0 + 150
    rec.counter.count("primary", "bc/1", 500)  # a window still running
    assert rec.flush() == 0
    stored = client.list_traffic_windows("bc")
    assert [(w.window_start, w.route) for w in stored] == [
        (MS0, "canary"),
        (MS0, "primary"),
        (MS0 + 60_000, "primary"),
    ]
    assert len({c["window_id"] for c in flaky.calls}) == 3  # the first one was written twice
    assert len(flaky.calls) == 4


def test_a_window_the_store_refuses_is_dropped_not_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = _store(tmp_path)
    clock = Clock(T0)
    rec = _recorder(client, clock)
    rec.counter.count("primary", "churn@v2/local", 200)  # '@' is not valid in a model name
    rec.counter.count("canary", "bc/2", 200)
    with caplog.at_level(logging.ERROR, logger="loopml.serving"):
        assert rec.flush(final=True) == 0  # nothing left pending behind it
    assert "the store refuses" in caplog.text and "churn@v2/local" in caplog.text
    assert [(w.route, w.requests) for w in client.list_traffic_windows("bc")] == [("canary", 1)]


def test_too_many_pending_windows_drop_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(traffic_module, "MAX_PENDING", 3)
    client = _store(tmp_path)
    down = FlakyClient(client, failures=10**6)
    clock = Clock(T0)
    rec = _recorder(down, clock)
    for minute in range(5):
        clock.now = T0 + 60 * minute
        rec.counter.count("primary", "bc/1", 200)
    clock.now = T0 + 300
    assert rec.flush() == 3
    down.failures = 0  # the store is back
    assert rec.flush() == 0
    starts = [w.window_start for w in client.list_traffic_windows("bc")]
    assert starts == [MS0 + 120_000, MS0 + 180_000, MS0 + 240_000]


def test_stop_stores_the_current_window_too(tmp_path: Path) -> None:
    client = _store(tmp_path)
    clock = Clock(T0 + 10)
    rec = TrafficRecorder(client, "bc", None, 60, flush_seconds=3600, clock=clock)

    async def run() -> None:
        await rec.start()
        rec.counter.count("primary", "bc/1", 200)
        rec.counter.count("primary", "bc/1", 503)
        await rec.stop()

    asyncio.run(run())
    stored = client.list_traffic_windows("bc")
    assert [(w.window_start, w.requests, w.server_errors) for w in stored] == [(MS0, 2, 1)]


def test_merge_windows_adds_the_fragments_of_a_window() -> None:
    def w(route: str, version: str, start: int, requests: int, c: int, s: int) -> TrafficWindow:
        return TrafficWindow(
            id=f"{len(route)}{version}{start}{requests}",
            project_id="p",
            deployment="bc",
            route=route,
            model_version=version,
            window_start=start,
            window_seconds=60,
            requests=requests,
            client_errors=c,
            server_errors=s,
        )

    windows = [
        w("primary", "bc/2", MS0 + 60_000, 4, 0, 0),
        w("primary", "bc/1", MS0, 10, 1, 2),
        w("", "", MS0, 3, 3, 0),
        w("primary", "bc/1", MS0, 6, 0, 2),  # another process
        w("primary", "bc/2", MS0, 4, 1, 0),  # another version of the same route
        w("canary", "bc/3", MS0, 5, 0, 5),
    ]
    totals = merge_windows(windows)
    assert [(t.window_start, t.route) for t in totals] == [
        (MS0, ""),
        (MS0, "canary"),
        (MS0, "primary"),
        (MS0 + 60_000, "primary"),
    ]
    primary = totals[2]
    assert (primary.requests, primary.client_errors, primary.server_errors) == (20, 2, 4)
    assert primary.window_seconds == 60
    assert primary.error_rate == pytest.approx(0.2)
    assert totals[1].error_rate == 1.0
    assert totals[0].error_rate == 0.0  # client errors are not server errors
    assert totals[3].error_rate == 0.0
    assert merge_windows([]) == []
    empty = merge_windows([w("primary", "bc/1", MS0, 0, 0, 0)])
    assert empty[0].error_rate == 0.0


# --- a real server -------------------------------------------------------------------------------


def _bad_bodies(http: httpx.Client, n: int) -> None:
    for _ in range(n):
        r = http.post(
            "/predict", content=b"not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text


def test_a_server_stores_requests_and_errors_per_route(
    serve: Any, bc_store: loopml.Client, bc_data: Any, broken_version: int
) -> None:
    X, _ = bc_data
    broken = broken_version
    routes = [
        {"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"},
        {"name": "canary", "model_uri": f"models:/bc/{broken}", "role": "canary", "weight": 1.0},
    ]
    settings = {"trusted": True, "traffic_seconds": 60}
    good, bad, mismatched = 12, 3, 2
    with serve(routes, settings=settings) as (url, app), httpx.Client(base_url=url) as http:
        assert app.metrics.traffic is not None
        for i in range(good):
            r = http.post("/predict", json={"rows": [_row(X, i)]})
            assert r.status_code == 200, r.text
            assert r.json()["route"] == "primary"
        _bad_bodies(http, bad)
        for _ in range(mismatched):  # neither the canary nor the primary takes these rows
            r = http.post("/predict", json={"rows": [{"no such column": 1.0}]})
            assert 400 <= r.status_code < 500, r.text
        assert bc_store.list_traffic_windows("bc") == []  # nothing stored while the window runs
    stored = bc_store.list_traffic_windows("bc")
    _check_windows(stored)
    assert _per_route(stored) == {
        # the canary failed every routed request (500: its model raised; 4xx: refused rows) ...
        "canary": (good + mismatched, mismatched, good),
        # ... and the primary answered each of them (refusing the rows no model takes)
        "primary": (good + mismatched, mismatched, 0),
        "": (bad, bad, 0),  # refused before routing
    }
    versions = {w.route: w.model_version for w in stored}
    assert versions == {"primary": "bc/1", "canary": f"bc/{broken}", "": ""}


def test_a_broken_primary_counts_its_errors_on_its_route(
    serve: Any, bc_store: loopml.Client, bc_data: Any, broken_version: int
) -> None:
    X, _ = bc_data
    broken = broken_version
    bc_store.create_deployment(
        "bc", [{"name": "primary", "model_uri": f"models:/bc/{broken}", "role": "primary"}]
    )
    n = 5
    with (
        serve(None, settings={"trusted": True, "traffic_seconds": 60}) as (url, _),
        httpx.Client(base_url=url) as http,
    ):
        for i in range(n):
            r = http.post("/predict", json={"rows": [_row(X, i)]})
            assert r.status_code == 500, r.text
        _bad_bodies(http, 1)
        text = http.get("/metrics").text
    label = f"bc/{broken}"
    assert (
        _metric(
            text,
            "loopml_requests_total",
            route="primary",
            model_version=label,
            status="500",
        )
        == n
    )
    assert _metric(text, "loopml_rejected_requests_total", status="500") == 0
    assert _metric(text, "loopml_rejected_requests_total", status="400") == 1
    assert _metric(text, "loopml_route_errors_total", route="primary", kind="model_error") == n

    stored = bc_store.list_traffic_windows("bc")
    _check_windows(stored)
    assert _per_route(stored) == {"primary": (n, 0, n), "": (1, 1, 0)}
    assert {w.model_version for w in stored if w.route == "primary"} == {label}


def test_a_broken_shadow_counts_its_errors_on_its_route(
    serve: Any, bc_store: loopml.Client, bc_data: Any, broken_version: int
) -> None:
    X, _ = bc_data
    broken = broken_version
    routes = [
        {"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"},
        {"name": "shadow", "model_uri": f"models:/bc/{broken}", "role": "shadow"},
    ]
    n = 6
    with (
        serve(routes, settings={"trusted": True}) as (url, _),
        httpx.Client(base_url=url) as http,
    ):
        for i in range(n):
            r = http.post("/predict", json={"rows": [_row(X, i)]})
            assert r.status_code == 200, r.text
    # the server waits for its shadows before the final flush
    stored = bc_store.list_traffic_windows("bc")
    _check_windows(stored)
    assert _per_route(stored) == {"primary": (n, 0, 0), "shadow": (n, 0, n)}


def test_traffic_seconds_0_stores_nothing(
    serve: Any, bc_store: loopml.Client, bc_data: Any, broken_version: int
) -> None:
    X, _ = bc_data
    with (
        serve(settings={"traffic_seconds": 0}) as (url, app),
        httpx.Client(base_url=url) as http,
    ):
        assert app.metrics.traffic is None
        for i in range(3):
            assert http.post("/predict", json={"rows": [_row(X, i)]}).status_code == 200
        _bad_bodies(http, 1)
    assert bc_store.list_traffic_windows("bc") == []
