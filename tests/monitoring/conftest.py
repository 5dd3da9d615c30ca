"""Fixtures for the monitoring tests: a store with a model trained on a profiled dataset, and a
helper that logs predictions the way a server does (through the prediction-log writer), at
chosen times."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mon_helpers import LogFn, make_frame, truth

import loopml
from loopml.data import log_dataset


@pytest.fixture(scope="session")
def _mon_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with model ``churn`` version 1, trained on dataset ``churn-train`` (profiled,
    target ``churned``), and a deployment ``churn`` serving it."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    root = tmp_path_factory.mktemp("mon-store")
    client = loopml.Client(str(root))
    train = make_frame(4000, seed=1)
    y = truth(train)
    X = train.assign(plan=train["plan"].astype("category"))
    model = HistGradientBoostingClassifier(max_iter=50, categorical_features="from_dtype")
    model.fit(X, y)
    run = client.create_run("default")
    dv = log_dataset(train.assign(churned=y), "churn-train", target="churned", client=client)
    client.log_inputs(run.run_id, [(dv, "train")])
    loopml.log_model(
        model,
        "model",
        input_example=X.head(3),
        registered_model_name="churn",
        run_id=run.run_id,
        client=client,
    )
    client.end_run(run.run_id)
    client.create_deployment(
        "churn", [{"name": "primary", "model_uri": "models:/churn/1", "role": "primary"}]
    )
    return root


@pytest.fixture
def mon_client(_mon_template: Path, tmp_path: Path) -> loopml.Client:
    """A private copy of the monitoring store."""
    root = tmp_path / "store"
    shutil.copytree(_mon_template, root)
    return loopml.Client(str(root))


@pytest.fixture
def log_predictions(mon_client: loopml.Client) -> LogFn:
    """``log(frame, at_ms, predictions=None, route="primary")``: log one request per row of
    ``frame`` at time ``at_ms`` (spread over a minute) as the server's log writer would; returns
    the prediction ids."""
    from loopml.serving.inputs import Decoded
    from loopml.serving.prediction_log import Buffer
    from loopml.serving.server import ServeSpec, _writer_for

    writer = _writer_for(mon_client, ServeSpec(name="churn"), 300, True)
    counter = iter(range(10**9))

    def log(
        frame: pd.DataFrame,
        at_ms: int,
        predictions: Any = None,
        route: str = "primary",
        version: str = "churn/1",
    ) -> list[str]:
        preds = truth(frame) if predictions is None else np.asarray(predictions)
        buf = Buffer()
        ids = []
        names = tuple(frame.columns)
        for i in range(len(frame)):
            rid = f"r{next(counter):08x}"
            ids.append(rid)
            columns = {n: frame[n].to_numpy()[i : i + 1] for n in names}
            buf.append(
                rid,
                at_ms + i * 60_000 // max(len(frame), 1),
                route,
                version,
                Decoded(rows=1, columns=columns),
                preds[i : i + 1],
                1.0 + (i % 10),
            )
        logged, dropped = writer.write(buf.to_batch(next(counter)))
        assert dropped == 0 and logged == len(frame)
        writer.close_windows(True)
        return ids

    return log
