"""Steps and pipelines the pipeline tests run (a module, so that child processes and Ray
workers import the same functions by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import loopml


@loopml.step
def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n)})
    df["label"] = (df.x + df.y > 0).astype(int)
    return df


@loopml.step(outputs=("train", "test"))
def split(df: pd.DataFrame, frac: float = 0.75) -> tuple[pd.DataFrame, pd.DataFrame]:
    k = int(len(df) * frac)
    return df.iloc[:k], df.iloc[k:]


@loopml.step
def fit(df: pd.DataFrame, C: float = 1.0):
    from sklearn.linear_model import LogisticRegression

    loopml.log_metric("train_rows", len(df))
    return LogisticRegression(C=C).fit(df[["x", "y"]], df.label)


@loopml.step
def score(model, df: pd.DataFrame) -> dict:
    acc = float((model.predict(df[["x", "y"]]) == df.label).mean())
    loopml.log_metric("accuracy", acc)
    return {"accuracy": acc, "rows": len(df)}


@loopml.pipeline
def training(n: int = 400, C: float = 1.0):
    train, test = split(make_frame(n))
    return score(fit(train, C=C), test)


# --- failure, retries, timeouts ------------------------------------------------------------------


@loopml.step
def fails_until_file(marker: str) -> str:
    """Fails while the file ``marker`` does not exist (the test creates it to 'fix' the step)."""
    if not Path(marker).exists():
        raise RuntimeError(f"marker {marker} is missing")
    return "fixed"


@loopml.step
def one(value: int) -> int:
    return value


@loopml.step
def add(a: int, b: int) -> int:
    return a + b


@loopml.pipeline
def fragile(marker: str = "", value: int = 1):
    ok = one(value)
    broken = fails_until_file(marker)
    return {"sum": add(ok, ok), "broken": broken, "after": add(one(2), ok)}


@loopml.step(retries=2, retry_delay=0.01)
def flaky(counter: str) -> int:
    """Fails on its first two calls (counted in the file ``counter``)."""
    path = Path(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls < 3:
        raise ConnectionError(f"call {calls} failed")
    return calls


@loopml.pipeline
def flaky_pipeline(counter: str = ""):
    return flaky(counter)


@loopml.step(timeout=0.5)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@loopml.pipeline
def slow_pipeline(seconds: float = 30.0):
    return sleepy(seconds)


# --- parallel steps ----------------------------------------------------------------------------


@loopml.step(cache=False)
def window(seconds: float, tag: str) -> dict:
    start = time.time()
    time.sleep(seconds)
    return {"start": start, "end": time.time(), "pid": os.getpid(), "tag": tag}


@loopml.pipeline
def two_branches(seconds: float = 1.0):
    return window(seconds, "a"), window(seconds, "b")
