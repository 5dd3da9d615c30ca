"""Outlier flags per prediction: out of the training range, unseen categories, and an isolation
forest, computed by the prediction-log writer and stored in the segments."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from mon_helpers import T0, LogFn, make_frame

import loopml
from loopml.monitoring.outliers import OutlierRules
from loopml.stats import profile


def _segments(client: loopml.Client) -> list[dict[str, list[object]]]:
    out = []
    for seg in client.list_prediction_segments("churn"):
        data = client.artifacts.read(seg.uri.removeprefix("sha256:"))
        out.append(pq.read_table(io.BytesIO(data)).to_pydict())
    return out


def test_the_log_flags_rows_outside_the_training_data(
    mon_client: loopml.Client, log_predictions: LogFn
) -> None:
    train = make_frame(4000, seed=1)  # the training data's range (see conftest)
    frame = make_frame(100, seed=30)
    for c in ("age", "income", "visits"):
        frame[c] = frame[c].clip(train[c].min(), train[c].max())
    frame.loc[3, "age"] = 500.0
    frame.loc[7, "plan"] = "enterprise"
    frame.loc[9, "age"] = np.nan  # missing is not an outlier
    log_predictions(frame, T0)
    (seg,) = _segments(mon_client)
    flagged = [i for i, f in enumerate(seg["outlier"]) if f]
    assert flagged == [3, 7]
    assert seg["outlier_reasons"][3].startswith("age > ")
    assert seg["outlier_reasons"][7] == "plan unseen"
    assert seg["outlier_reasons"][0] == ""


def test_rules_from_a_profile_and_an_isolation_forest() -> None:
    ref = make_frame(2000, seed=31)
    rules = OutlierRules.from_profile(profile(ref))
    assert set(rules.ranges) == {"age", "income", "visits"}
    assert rules.categories["plan"] == {"basic", "pro", "team"}
    rules.fit_forest(ref)
    odd = make_frame(50, seed=32)
    odd.loc[0, ["age", "income", "visits"]] = [150.0, 1e7, 60.0]
    found = rules.flag({c: odd[c].to_numpy() for c in odd}, len(odd))
    assert found.scores is not None and found.scores.shape == (50,)
    assert found.scores[0] == pytest.approx(found.scores.max())
    assert "isolation forest" in found.reasons[0]
    # columns the rows lack are not checked; text in a numeric column is skipped, not fatal
    partial = rules.flag({"age": np.array(["x", "y"], dtype=object)}, 2)
    assert not partial.flags.any()
