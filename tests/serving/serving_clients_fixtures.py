"""Helpers shared by the real-client and fuzz tests of the model server (imported explicitly by
``test_serving_real_clients.py`` and ``test_serving_fuzz.py``; the fixtures live there).

Two registered models in a fresh store:

* ``bc``: a scikit-learn pipeline (scaler + logistic regression) on breast_cancer, 30 float
  columns, the model every protocol is checked with;
* ``mixed``: a logistic regression over an integer, a float, a text and a boolean column, for
  the type checks (ints beyond int64, booleans and text in numeric columns, nulls).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import loopml
from loopml.serving.server import ServeSpec, build_app

__all__ = ["FEATURE_NAMES_WARNING", "Models", "make_models", "running", "serve_app"]

#: The server silences this scikit-learn warning (an array given to a model fitted on a
#: DataFrame, its fast path) with a process-wide filter added once, at the first model load.
#: pytest restores the filters after each test, so a server that outlives the test that started
#: it loses that filter; test modules with such servers put it back with
#: ``pytest.mark.filterwarnings(FEATURE_NAMES_WARNING)``. (The fragility itself is pinned by
#: ``test_serving_fuzz.py::test_array_fast_path_outlives_a_warnings_context``.)
FEATURE_NAMES_WARNING = "ignore:X does not have valid feature names:UserWarning"


@dataclass
class Models:
    """The store and the data the models were trained on."""

    client: loopml.Client
    X: Any  # breast_cancer features (DataFrame)
    bc: Any  # the fitted bc pipeline
    mixed_X: Any  # the mixed model's training frame
    mixed: Any  # the fitted mixed pipeline


def mixed_frame(rows: int = 60) -> Any:
    """A small table with one column of each JSON-reachable type."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows).astype("int64"),
            "income": rng.normal(50_000, 12_000, rows).round(2),
            "plan": rng.choice(["free", "pro", "team"], rows),
            "active": rng.random(rows) < 0.5,
        }
    )


def make_models(root: Path) -> Models:
    """Train and register ``bc`` (alias ``champion``) and ``mixed`` in a store at ``root``."""
    from sklearn.compose import make_column_transformer
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    client = loopml.Client(str(root))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    bc = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    loopml.log_model(
        bc, "model", input_example=X.head(5), registered_model_name="bc", client=client
    )
    client.set_model_alias("bc", "champion", 1)

    mixed_X = mixed_frame()
    target = (mixed_X["income"] > 50_000).astype(int)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        (StandardScaler(), ["age", "income"]),
        ("passthrough", ["active"]),
    )
    mixed = make_pipeline(encode, LogisticRegression(max_iter=500)).fit(mixed_X, target)
    loopml.log_model(
        mixed, "model", input_example=mixed_X, registered_model_name="mixed", client=client
    )
    return Models(client, X, bc, mixed_X, mixed)


def serve_app(client: loopml.Client, model: str, **settings: Any) -> Any:
    """The serving app of one model (its latest version) with the prediction log and the access
    log off; ``settings`` override the server settings (``max_body_mb=...``)."""
    spec = ServeSpec(
        name=model,
        routes=[{"name": "primary", "model_uri": f"models:/{model}/latest", "role": "primary"}],
        settings={"access_log": False, "prediction_log": {"enabled": False}, **settings},
        tracking_uri=client.tracking_uri,
        artifact_uri=client.artifact_uri,
    )
    return build_app(spec, client=client)


@contextmanager
def running(app: Any) -> Iterator[tuple[str, int]]:
    """Serve ``app`` with uvicorn (httptools, as ``loopml serve`` does) on a free port in a
    daemon thread; yields ``(host, port)`` and stops the server on exit."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        loop="asyncio",
        http="httptools",
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(15)
