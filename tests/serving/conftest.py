"""Fixtures for the serving tests: a store with registered breast-cancer classifiers, and a real
uvicorn server on a free port, run in a thread."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import loopml
from loopml.data import log_dataset
from loopml.models import PythonModel
from loopml.serving.server import ServeSpec, build_app


@pytest.fixture(scope="session")
def bc_data() -> Any:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True, as_frame=True)


@pytest.fixture(scope="session")
def _bc_store_template(tmp_path_factory: pytest.TempPathFactory, bc_data: Any) -> Path:
    """A store with model ``bc``: version 1 (the champion) and version 2 (a weaker model whose
    predictions differ on some rows), and a training dataset profile for version 1."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = bc_data
    root = tmp_path_factory.mktemp("bc-store")
    client = loopml.Client(str(root))
    for c in (1.0, 0.0005):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500)).fit(X, y)
        run = client.create_run("default")
        dv = log_dataset(X.assign(target=y), "bc-train", target="target", client=client)
        client.log_inputs(run.run_id, [(dv, "train")])
        loopml.log_model(
            model,
            "model",
            input_example=X.head(3),
            registered_model_name="bc",
            run_id=run.run_id,
            client=client,
        )
        client.end_run(run.run_id)
    client.set_model_alias("bc", "champion", 1)
    client.set_model_alias("bc", "challenger", 2)
    return root


@pytest.fixture
def bc_store(_bc_store_template: Path, tmp_path: Path) -> loopml.Client:
    """A private copy of the store (tests move aliases and write prediction logs)."""
    root = tmp_path / "store"
    shutil.copytree(_bc_store_template, root)
    return loopml.Client(str(root))


class Broken(PythonModel):
    """A model that raises on every request."""

    def predict(self, context: Any, data: Any) -> Any:
        raise RuntimeError("this model is broken")


@pytest.fixture
def broken_version(bc_store: loopml.Client, bc_data: Any) -> int:
    """A new version of ``bc`` (same signature) whose model raises on every request; serve it
    with ``trusted: True``."""
    X, _ = bc_data
    info = loopml.log_model(
        Broken(),
        "model",
        signature=loopml.infer_signature(X.head(3)),
        registered_model_name="bc",
        client=bc_store,
    )
    return int(info.registered_version.version)  # type: ignore[union-attr]


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve a built app with uvicorn on a free port in a thread; yields the base URL."""
    from loopml.serving.background import Server

    server = Server.from_app(app).serve_app()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def serve(bc_store: loopml.Client) -> Callable[..., Any]:
    """``serve(routes=..., settings=...)``: a context manager running an app on ``bc_store``;
    yields ``(base_url, app)``. Routes are dicts (name, model_uri, role, weight) or a
    deployment name stored beforehand (``routes=None, name=...``)."""

    @contextmanager
    def _serve(
        routes: list[dict[str, Any]] | None = None,
        *,
        name: str = "bc",
        settings: dict[str, Any] | None = None,
        sticky_key: str | None = None,
    ) -> Iterator[tuple[str, Any]]:
        if routes is None and name == "bc" and not _has_deployment(bc_store, name):
            routes = [{"name": "primary", "model_uri": "models:/bc@champion", "role": "primary"}]
        base = {"access_log": False, "prediction_log": {"enabled": False}, "poll_seconds": 0.1}
        spec = ServeSpec(
            name=name,
            routes=routes,
            sticky_key=sticky_key,
            settings=_merge(base, settings or {}),
            tracking_uri=bc_store.tracking_uri,
            artifact_uri=bc_store.artifact_uri,
        )
        app = build_app(spec, client=bc_store)
        with running(app) as url:
            yield url, app

    return _serve


def _has_deployment(client: loopml.Client, name: str) -> bool:
    from loopml.errors import DeploymentNotFound

    try:
        client.get_deployment(name)
    except DeploymentNotFound:
        return False
    return True


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
