"""Data for the monitoring tests (imported by their conftest and test modules)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

HOUR = 3_600_000
T0 = 1_780_000_000_000 // HOUR * HOUR  # a whole hour in 2026


def make_frame(n: int, *, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Features of a churn-like table; ``shift`` moves the numeric features (drift)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * shift, 10, n),
            "income": rng.lognormal(10 + 0.5 * shift, 0.5, n),
            "visits": rng.poisson(5 + 3 * shift, n).astype(float),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def truth(frame: pd.DataFrame) -> np.ndarray:
    """The label a perfect model predicts (churns when old with few visits)."""
    return ((frame["age"] > 45) & (frame["visits"] < 6)).astype(int).to_numpy()


LogFn = Callable[..., list[str]]
"""The ``log_predictions`` fixture: ``log(frame, at_ms, predictions=None, route=..., version=...)``
-> prediction ids."""
