"""Helpers shared by the real-client, fuzz and malformed-input tests of the model server
(imported explicitly by ``test_serving_real_clients.py``, ``test_serving_fuzz.py`` and
``test_serving_malformed.py``; their fixtures live there).

Two registered models in a fresh store:

* ``bc``: a scikit-learn pipeline (scaler + logistic regression) on breast_cancer, 30 float
  columns, the model every protocol is checked with;
* ``mixed``: a logistic regression over an integer, a float, a text and a boolean column, for
  the type checks (ints beyond int64, booleans and text in numeric columns, nulls).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import loopml
from loopml.serving.server import ServeSpec, build_app

__all__ = [
    "FEATURE_NAMES_WARNING",
    "PROTOCOLS",
    "SMALL_LIMIT",
    "SMALL_LIMIT_MB",
    "Models",
    "Servers",
    "assert_error",
    "error_message",
    "known_server_error",
    "make_models",
    "post_to",
    "running",
    "serve_app",
    "serving",
    "shared_models",
    "signature_problems",
    "v2_tensor",
]

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


# --- three servers, and the shape of their errors ------------------------------------------------

SMALL_LIMIT_MB = 0.25
SMALL_LIMIT = int(SMALL_LIMIT_MB * 2**20)
_MODELS: dict[Path, Models] = {}


def shared_models(factory: pytest.TempPathFactory) -> Models:
    """The models, trained once per test session (these tests only read the store)."""
    base = factory.getbasetemp()
    if base not in _MODELS:
        _MODELS[base] = make_models(factory.mktemp("serving-clients-store"))
    return _MODELS[base]


@dataclass
class Servers:
    """Three running servers: ``bc`` and ``mixed`` with the default body limit, and ``small``
    (the bc model with a 0.25 MB limit)."""

    models: Models
    bc: tuple[str, int]
    mixed: tuple[str, int]
    small: tuple[str, int]

    def url(self, name: str) -> str:
        host, port = getattr(self, name)
        return f"http://{host}:{port}"


@contextmanager
def serving(models: Models) -> Iterator[Servers]:
    """Run the three servers of :class:`Servers`."""
    client = models.client
    with (
        running(serve_app(client, "bc")) as bc,
        running(serve_app(client, "mixed")) as mixed,
        running(serve_app(client, "bc", max_body_mb=SMALL_LIMIT_MB)) as small,
    ):
        yield Servers(models, bc, mixed, small)


def known_server_error(response: Any) -> str | None:
    """The reported bug a 5xx is, or None (the test that pins it). The fuzz passes step over
    these instead of failing, so that they keep looking for new ones."""
    del response  # none open: the ones found were fixed (their tests now pass)
    return None


def error_message(response: Any) -> str:
    """The message of a JSON error body, in any of the three protocols' shapes."""
    ctype = response.headers.get("content-type")
    ctype = ctype[0] if isinstance(ctype, list) else ctype  # schemathesis: lists of values
    assert ctype.startswith("application/json"), (ctype, response.content[:300])
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    if isinstance(body.get("error"), dict):  # loopml's /predict
        message = body["error"]["message"]
    elif "error" in body:  # v2 and the plain routes
        message = body["error"]
    else:  # MLflow's /invocations
        message = body["message"]
        assert body["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE"), body
    assert isinstance(message, str) and message, body
    return message


def signature_problems(response: Any) -> list[dict[str, Any]]:
    """The ``problems`` of a signature error (each with column, expected and got)."""
    body = response.json()
    found = body["error"].get("problems") if isinstance(body.get("error"), dict) else None
    found = found or body.get("problems")
    assert found, body
    for p in found:
        assert set(p) >= {"column", "expected", "got"}, p
    return list(found)


def assert_error(response: Any, status: int, *needles: str) -> str:
    """The response is ``status`` with a JSON error whose message holds every needle."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    message = error_message(response)
    for needle in needles:
        assert needle.lower() in message.lower(), (needle, message[:500])
    return message


PROTOCOLS = {
    "native": ("/predict", "application/json"),
    "mlflow": ("/invocations", "application/json"),
    "v2": ("/v2/models/bc/infer", "application/json"),
}


def post_to(http: dict[str, Any], protocol: str, body: bytes, model: str = "bc") -> Any:
    """POST ``body`` to one protocol's route of the ``model`` server (``http``: its clients)."""
    path, ctype = PROTOCOLS[protocol]
    path = path.replace("/bc/", f"/{model}/")
    return http[model].post(path, content=body, headers={"content-type": ctype})


def v2_tensor(**changes: Any) -> dict[str, Any]:
    """A v2 input tensor of one bc row (all ones), with ``changes``."""
    return {"name": "x", "shape": [1, 30], "datatype": "FP64", "data": [1.0] * 30, **changes}
