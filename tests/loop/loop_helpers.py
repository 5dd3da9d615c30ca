"""A small world for the loop tests: model ``clf`` (version 1 the champion) on two features,
its evaluation dataset, deployment ``clf`` (primary follows the champion), training entries
that register a good, a worse, or an incompatible version, and a real server to send live
traffic to. Training entries take ``store`` (the store's folder) so they work from any process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

import loopml
from loopml.data import log_dataset

MODEL = "clf"


def make_data(n: int, *, seed: int = 0, extra: bool = False) -> pd.DataFrame:
    """Features ``x1``, ``x2`` (and ``x3`` with ``extra``) and the label ``y``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(0, 1, n), "x2": rng.normal(0, 1, n)})
    if extra:
        frame["x3"] = rng.normal(0, 1, n)
    frame["y"] = (frame["x1"] + frame["x2"] > 0).astype(int)
    return frame


def _register(client: loopml.Client, model: Any, data: pd.DataFrame) -> Any:
    features = data.drop(columns=["y"])
    run = client.create_run("default")
    dv = log_dataset(data, "clf-train", target="y", client=client)
    client.log_inputs(run.run_id, [(dv, "train")])
    info = loopml.log_model(
        model,
        "model",
        input_example=features.head(3),
        registered_model_name=MODEL,
        run_id=run.run_id,
        client=client,
    )
    client.end_run(run.run_id)
    return info.registered_version


def build_world(root: Path) -> loopml.Client:
    """The store described above, at ``root``."""
    from sklearn.linear_model import LogisticRegression

    client = loopml.Client(str(root))
    data = make_data(400, seed=1)
    v1 = LogisticRegression().fit(data[["x1", "x2"]], data["y"])
    _register(client, v1, data)
    client.set_model_alias(MODEL, "champion", 1)
    log_dataset(make_data(300, seed=2, extra=True), "clf-eval", target="y", client=client)
    client.create_deployment(
        MODEL, [{"name": "primary", "model_uri": f"models:/{MODEL}@champion", "role": "primary"}]
    )
    return client


def train(store: str, quality: str = "good", seed: int = 0) -> Any:
    """A training entry: register a new version of ``clf`` and return it.

    ``good``: as accurate as the champion; ``worse``: fitted on a wrong boundary;
    ``constant``: predicts one class (the gate rejects it); ``extra``: needs a third column
    live requests do not send (a canary that refuses every request); ``broken``: raises.
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression

    client = loopml.Client(store)
    data = make_data(400, seed=10 + seed, extra=quality == "extra")
    features = data.drop(columns=["y"])
    y = data["y"].to_numpy()
    if quality == "broken":
        raise RuntimeError("the training data is not there")
    if quality == "worse":  # learns a wrong boundary: about 75 % accurate
        y = (data["x1"] > 0).astype(int).to_numpy()
        model: Any = LogisticRegression().fit(features, y)
    elif quality == "constant":
        model = DummyClassifier(strategy="most_frequent").fit(features, y)
    else:
        model = LogisticRegression(C=0.5).fit(features, y)
    return _register(client, model, data.assign(y=y))


def gate_spec(*, min_accuracy: float = 0.6) -> dict[str, Any]:
    """A gate on the evaluation dataset."""
    return {
        "data": "datasets:/clf-eval@latest",
        "target": "y",
        "checks": [{"metric": {"name": "accuracy", "min": min_accuracy}}],
    }


def policy_dict(store: Path, quality: str = "good", **rollout: Any) -> dict[str, Any]:
    """A canary policy triggered by alerts of monitor ``clf-live``."""
    settings: dict[str, Any] = {
        "strategy": "canary",
        "weight": 0.5,
        "duration": "1s",
        "min_predictions": 20,
        "max_duration": "1h",
        "criteria": {"max_error_rate": 0.05},
    }
    settings.update(rollout)
    return {
        "name": "clf-loop",
        "model": MODEL,
        "deployment": MODEL,
        "triggers": [{"alert": "clf-live", "rule": "accuracy"}],
        "train": {
            "entry": "loop_helpers:train",
            "params": {"store": str(store), "quality": quality},
        },
        "gate": gate_spec(),
        "rollout": settings,
    }


def fire_alert(client: loopml.Client) -> None:
    """An accuracy alert of monitor ``clf-live``, as a monitor run opens it."""
    client.open_alert(
        "clf-live", "accuracy", severity="critical", message="accuracy 0.61 < 0.8", value=0.61
    )


@contextmanager
def serving(client: loopml.Client) -> Iterator[str]:
    """Serve deployment ``clf`` from a thread (fast polls and log flushes); yields its URL."""
    settings = {
        "poll_seconds": 0.1,
        "access_log": False,
        "prediction_log": {"flush_seconds": 0.2, "process": False, "window_seconds": 60},
    }
    server = loopml.serving.Server(deployment=MODEL, settings=settings, client=client).start()
    try:
        yield server.url
    finally:
        server.stop()


def send_traffic(
    url: str, client: loopml.Client, n: int, *, seed: int = 5, labels: bool = True
) -> dict[str, int]:
    """``n`` one-row requests (features x1, x2); logs the true label of each when ``labels``.
    Returns the count of answers per route."""
    data = make_data(n, seed=seed)
    routes: dict[str, int] = {}
    ids, truth = [], []
    with httpx.Client(base_url=url, timeout=10) as http:
        for row in data.itertuples():
            body = {"rows": [{"x1": row.x1, "x2": row.x2}]}
            answer = http.post("/predict", json=body)
            answer.raise_for_status()
            out = answer.json()
            routes[out["route"]] = routes.get(out["route"], 0) + 1
            ids.append(out["prediction_ids"][0])
            truth.append(int(row.y))
    time.sleep(0.6)  # the prediction log flushes every 0.2 s
    if labels:
        client.log_ground_truth(ids, truth, deployment=MODEL)
    return routes


def wait_for_route(url: str, route: str, present: bool = True, timeout: float = 5.0) -> None:
    """Wait until the server's ``GET /`` shows (or no longer shows) ``route``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = [r["name"] for r in httpx.get(url + "/").json()["routes"]]
        if (route in names) == present:
            return
        time.sleep(0.05)
    raise AssertionError(f"route {route!r} {'never appeared' if present else 'stayed'}")
