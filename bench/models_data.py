"""Data and models of the models benchmark, the same in every venv (loopml's and MLflow's).

Needs scikit-learn, pandas and NumPy only; the workers put ``bench/`` on ``sys.path``.

* :func:`breast_cancer`: sklearn's bundled breast_cancer with plain column names and the two
  anchor models of ``shared/bench/train_model.py``: ``lr`` = StandardScaler +
  LogisticRegression(max_iter=1000), ``rf`` = RandomForestClassifier(50, random_state=0).
* :func:`eval_data`: ``make_classification`` (20 features, 10 informative, seed 0): the first
  ``min(TRAIN_ROWS, rows // 2)`` rows train, the next ``rows`` rows are the evaluation table
  (``f00``..``f19`` and the 0/1 target ``y``); the digest lets the report check that both
  venvs saw the same numbers.
* :func:`train_eval_models`: HistGradientBoostingClassifier and RandomForestClassifier(50) (fit
  on both cores, then ``n_jobs=None`` as a user's default model would predict).
* :func:`bare`: the model's own ``predict`` + ``predict_proba`` on a frame, timed.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

TRAIN_ROWS = 50_000


def breast_cancer() -> tuple[Any, dict[str, Any]]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    X.columns = [c.replace(" ", "_") for c in X.columns]
    models = {
        "lr": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y),
        "rf": RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y),
    }
    return X, models


def eval_data(rows: int) -> tuple[Any, Any, str]:
    """(train frame, evaluation frame, sha256 of the evaluation frame's values)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    n_train = min(TRAIN_ROWS, rows // 2)
    X, y = make_classification(
        n_samples=n_train + rows,
        n_features=20,
        n_informative=10,
        n_redundant=5,
        random_state=0,
    )
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(20)])
    frame["y"] = y.astype(np.int64)
    train = frame.iloc[:n_train].reset_index(drop=True)
    test = frame.iloc[n_train:].reset_index(drop=True)
    digest = hashlib.sha256(np.ascontiguousarray(test.to_numpy()).tobytes()).hexdigest()[:16]
    return train, test, digest


def train_eval_models(train: Any) -> dict[str, Any]:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    X, y = train.drop(columns="y"), train["y"]
    hgb = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    rf = RandomForestClassifier(n_estimators=50, random_state=0, n_jobs=-1).fit(X, y)
    rf.set_params(n_jobs=None)
    return {"hgb": hgb, "rf": rf}


def bare(model: Any, features: Any) -> dict[str, float]:
    """The model's own calls, as evaluate makes them: ``predict`` then ``predict_proba``."""
    t0 = time.perf_counter()
    model.predict(features)
    t1 = time.perf_counter()
    model.predict_proba(features)
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "predict_s": t1 - t0, "proba_s": t2 - t1}
