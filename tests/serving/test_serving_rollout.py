"""Rollouts: canary and shadow routes, sticky routing, switching versions under load, and the
deployment operations (set traffic, promote the canary, roll back) picked up live."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

import loopml
from loopml.models import PythonModel
from loopml.serving import deployments


def _row(X: Any, i: int = 0) -> dict[str, float]:
    return {k: float(v) for k, v in X.iloc[i].items()}


def _metric(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_a_broken_canary_falls_back_to_the_primary(
    serve: Any, bc_data: Any, broken_version: int
) -> None:
    X, _ = bc_data
    version = broken_version
    routes = [
        {"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"},
        {"name": "canary", "model_uri": f"models:/bc/{version}", "role": "canary", "weight": 1.0},
    ]
    with serve(routes, settings={"trusted": True}) as (url, _), httpx.Client(base_url=url) as http:
        for i in range(20):
            r = http.post("/predict", json={"rows": [_row(X, i)]})
            assert r.status_code == 200, r.text
            assert r.json()["route"] == "primary"
        text = http.get("/metrics").text
        prefix = (
            'loopml_route_errors_total{deployment="bc",kind="fallback",'
            f'model_version="bc/{version}",route="canary"}}'
        )
        assert _metric(text, prefix) == 20


def test_canary_share_and_sticky_keys(serve: Any, bc_data: Any) -> None:
    X, _ = bc_data
    routes = [
        {"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"},
        {"name": "canary", "model_uri": "models:/bc@challenger", "role": "canary", "weight": 0.3},
    ]
    with serve(routes, sticky_key="customer") as (url, _), httpx.Client(base_url=url) as http:
        seen = Counter()
        for i in range(300):
            r = http.post("/predict", json={"rows": [_row(X, i % 50)], "key": f"user-{i}"})
            seen[r.json()["route"]] += 1
        assert 50 < seen["canary"] < 130, seen  # about 30 % of 300
        sticky = {
            http.post("/predict", json={"rows": [_row(X)]}, headers={"customer": "u-7"}).json()[
                "route"
            ]
            for _ in range(10)
        }
        assert len(sticky) == 1


def test_shadow_gets_a_copy_and_is_compared(serve: Any, bc_data: Any) -> None:
    X, _ = bc_data
    routes = [
        {"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"},
        {"name": "shadow", "model_uri": "models:/bc@challenger", "role": "shadow"},
    ]
    with serve(routes) as (url, _), httpx.Client(base_url=url) as http:
        for i in range(40):
            r = http.post("/predict", json={"rows": [_row(X, i)]})
            assert r.json()["route"] == "primary" and r.json()["version"] == 1
        time.sleep(0.2)
        text = http.get("/metrics").text
        agree = _metric(
            text,
            'loopml_shadow_comparisons_total{deployment="bc",model_version="bc/2",result="agree"',
        )
        disagree = _metric(
            text,
            'loopml_shadow_comparisons_total{deployment="bc",model_version="bc/2",result="disagree"',
        )
        assert agree + disagree == 40


def test_moving_the_alias_switches_versions_under_load_without_a_failure(
    serve: Any, bc_store: Any, bc_data: Any
) -> None:
    X, _ = bc_data
    body = {"rows": [_row(X, 3)]}
    results: list[tuple[int, int | None]] = []
    stop = threading.Event()

    def hammer(url: str) -> None:
        with httpx.Client(base_url=url) as http:
            while not stop.is_set():
                r = http.post("/predict", json=body)
                results.append((r.status_code, r.json().get("version")))

    with serve() as (url, _app):
        threads = [threading.Thread(target=hammer, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.7)
        bc_store.set_model_alias("bc", "champion", 2, "test: promote under load")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (results and results[-1][1] == 2):
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        metrics = httpx.get(url + "/metrics").text
    statuses = Counter(s for s, _ in results)
    versions = [v for _, v in results]
    assert statuses == {200: len(results)}, statuses
    assert 1 in versions and versions[-1] == 2
    first_two = versions.index(2)
    assert set(versions[first_two + 8 :]) <= {2}  # a few in flight on the old one, then only 2
    assert (
        'loopml_model_switches_total{deployment="bc",model_version="bc/2",route="primary"} 1.0'
        in metrics
    )


def test_deployment_operations_are_picked_up_live(serve: Any, bc_store: Any, bc_data: Any) -> None:
    X, _ = bc_data
    bc_store.create_deployment(
        "bc", [{"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"}]
    )
    body = {"rows": [_row(X, 5)]}

    def wait_for(http: httpx.Client, check: Any) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if check(http.get("/").json()):
                return
            time.sleep(0.05)
        raise AssertionError(http.get("/").json())

    with serve(None, name="bc") as (url, _), httpx.Client(base_url=url) as http:
        assert http.post("/predict", json=body).json()["version"] == 1
        dep = deployments.set_traffic(
            bc_store, "bc", {"canary": 1.0}, models={"canary": "models:/bc/2"}, reason="try v2"
        )
        assert dep.revision == 2
        wait_for(http, lambda s: len(s["routes"]) == 2)
        assert http.post("/predict", json=body).json()["route"] == "canary"
        dep, what = deployments.promote_canary(bc_store, "bc")
        assert "bc@champion -> version 2" in what
        assert bc_store.get_model_version_by_alias("bc", "champion").version == 2
        wait_for(
            http,
            lambda s: len(s["routes"]) == 1 and s["routes"][0]["model_version"] == "bc/2",
        )
        r = http.post("/predict", json=body).json()
        assert (r["route"], r["version"]) == ("primary", 2)
        dep, what = deployments.rollback(bc_store, "bc", reason="v2 is worse")
        assert "version 1" in what
        wait_for(http, lambda s: s["routes"][0]["model_version"] == "bc/1")
    events = bc_store.search_audit_events(object_type="deployment")
    assert [e.action for e in events][:3] == ["deployment.update"] * 2 + ["deployment.create"]


def test_set_traffic_refuses_bad_input(bc_store: Any) -> None:
    bc_store.create_deployment(
        "bc", [{"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"}]
    )
    from loopml.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="no route 'canary'"):
        deployments.set_traffic(bc_store, "bc", {"canary": 0.1})
    with pytest.raises(InvalidArgument, match="primary"):
        deployments.set_traffic(bc_store, "bc", {"primary": 0.5})
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        deployments.set_traffic(bc_store, "bc", {"c": 1.5}, models={"c": "models:/bc/2"})
    with pytest.raises(InvalidArgument, match="no canary"):
        deployments.promote_canary(bc_store, "bc")


class Slow(PythonModel):
    """Answers 1 after half a second."""

    def predict(self, context: Any, data: Any) -> Any:
        time.sleep(0.5)
        return [1] * len(data)


def test_shutdown_finishes_requests_in_flight(bc_store: Any, bc_data: Any) -> None:
    X, _ = bc_data
    info = loopml.log_model(
        Slow(),
        "model",
        signature=loopml.infer_signature(X.head(3)),
        registered_model_name="slow",
        client=bc_store,
    )
    server = loopml.serving.Server(
        f"models:/slow/{info.registered_version.version}",  # type: ignore[union-attr]
        client=bc_store,
        settings={"trusted": True, "access_log": False, "prediction_log": {"enabled": False}},
    ).start()
    answers: list[int] = []
    thread = threading.Thread(
        target=lambda: answers.append(
            httpx.post(server.url + "/predict", json={"rows": [_row(X)]}, timeout=30).status_code
        )
    )
    thread.start()
    time.sleep(0.2)
    server.stop()  # while the request is being answered
    thread.join(30)
    assert answers == [200]
