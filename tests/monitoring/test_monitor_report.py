"""The monitor report: content, escaping, missing sections, NaN, size at 100 features x 30
windows, and a page that parses with no script."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from html import escape
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from loopml.entities import Alert, AlertState, Monitor, MonitorResult
from loopml.monitoring.report import monitor_report_html, monitor_report_json
from loopml.stats import DatasetProfile, ProfileComparison, compare_profiles, profile

HOUR = 3_600_000
T0 = 1_780_000_000_000 // HOUR * HOUR
EVIL = "<script>alert(1)</script>"
QUOTED = ['he said "hi"', "it's", "<b>bold</b>", "a&b"]
_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}


class Page(HTMLParser):
    """A parsed report: every element closed in order, the tags, ids, links and text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs += attrs
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs += attrs

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def ids(self) -> set[str]:
        return {v for k, v in self.attrs if k == "id" and v}

    @property
    def links(self) -> set[str]:
        return {v for k, v in self.attrs if k == "href" and v}

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def check_page(html: str) -> Page:
    """Well-formed, self-contained, no script, every link an anchor on the page."""
    assert html.startswith("<!DOCTYPE html>")
    page = Page(html)
    assert page.problems == []
    assert page.tags["script"] == 0 and "<script" not in html.lower()
    assert page.tags["style"] == 1
    for name, value in page.attrs:
        assert not name.startswith("on"), name
        if name in ("src", "href"):
            assert value is not None and value.startswith("#"), value
    assert {link[1:] for link in page.links} <= page.ids
    assert "url(" not in html and "@import" not in html
    return page


# --- building results the way the monitor runner does --------------------------------------


def frame(n: int, *, shift: float = 0.0, seed: int = 0, features: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cats = ["basic", "pro", *QUOTED]
    if shift:
        cats = [*cats, 'new "quoted" plan']
    data: dict[str, Any] = {
        "age": rng.normal(40 + 10 * shift, 10, n),
        "income": rng.lognormal(10, 0.5, n),
        EVIL: rng.choice(cats, n),
        "visits": rng.poisson(5, n).astype(float),
    }
    for i in range(features):
        data[f"f{i:03d}"] = rng.normal(shift * (i % 3) / 2, 1, n)
    out = pd.DataFrame(data)
    if shift:
        out.loc[: n // 5, "visits"] = None
    return out


def details(comparison: ProfileComparison | None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "reference": {"kind": "training", "uri": "datasets:/churn-train/1", "rows": 1500},
        "rows": comparison.current_rows if comparison else 0,
        "drift": comparison.to_dict() if comparison else None,
        "notes": [],
    }
    if comparison is not None:
        d["quality"] = {
            "columns": [
                {
                    "column": c.column,
                    "null_share": c.current_null_share,
                    "reference_null_share": c.reference_null_share,
                    "null_increase": c.current_null_share - c.reference_null_share > 0.1,
                    **({"out_of_range": 7} if c.column == "age" else {}),
                    **(
                        {"unseen": ['new "quoted" plan', EVIL], "unseen_share": 0.12}
                        if c.column == EVIL
                        else {}
                    ),
                }
                for c in comparison.columns
            ],
            "missing_columns": [],
            "extra_columns": ["<i>extra</i>"],
        }
    return d | extra


def metrics(comparison: ProfileComparison | None, **extra: float) -> dict[str, float]:
    m: dict[str, float] = {"rows": float(comparison.current_rows) if comparison else 0.0}
    if comparison is not None:
        m["drift_share"] = comparison.drifted_share
        m["drifted_features"] = float(len(comparison.drifted_columns))
        m["dataset_drift"] = float(comparison.dataset_drift)
        m.update({f"drift.{c.column}": c.result.statistic for c in comparison.columns})
    return m | extra


def result(
    i: int, m: Mapping[str, float], d: Mapping[str, Any], status: str = "ok"
) -> MonitorResult:
    return MonitorResult(
        id=f"r{i}",
        project_id="p",
        monitor="churn-live",
        window_start=T0 + i * HOUR,
        window_end=T0 + (i + 1) * HOUR,
        metrics=dict(m),
        details=dict(d),
        status=status,
    )


MONITOR = Monitor(
    project_id="p",
    name="churn-live",
    description=f"Watches churn {EVIL}",
    spec={
        "deployment": "churn",
        "reference": "training",
        "window": 3600.0,
        "alerts": [{"name": "drift", "metric": "drift_share", "op": ">", "threshold": 0.3}],
    },
)


def alerts() -> list[Alert]:
    return [
        Alert(
            id="a1",
            project_id="p",
            monitor="churn-live",
            rule="drift",
            severity="critical",
            state=AlertState.FIRING,
            message=f"drift_share 0.5 > 0.3 on {EVIL}",
            value=0.5,
            threshold=0.3,
            started_at=T0 + 4 * HOUR,
            occurrences=2,
        ),
        Alert(
            id="a0",
            project_id="p",
            monitor="churn-live",
            rule="latency",
            severity="warning",
            state=AlertState.RESOLVED,
            message="p99 above 200 ms",
            value=250.0,
            threshold=200.0,
            started_at=T0 + HOUR,
            resolved_at=T0 + 2 * HOUR,
        ),
    ]


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    """Six hourly windows, drifting from the fourth on, with performance and latency."""
    ref = profile(frame(1500, seed=1))
    tests = {"visits": "ks"}
    calm_p = profile(frame(1200, seed=2), edges=ref)
    drift_p = profile(frame(1200, shift=1.0, seed=3), edges=ref)
    calm, drift = (
        compare_profiles(ref, calm_p, tests=tests),
        compare_profiles(ref, drift_p, tests=tests),
    )
    pred = {
        "column": "prediction",
        "kind": "categorical",
        "test": "jensenshannon",
        "statistic": 0.2,
        "p_value": None,
        "threshold": 0.1,
        "drifted": True,
        "against": "target",
    }
    results = []
    for i in range(6):
        comp = drift if i >= 3 else calm
        perf = {"labelled": 300, "task": "classification", "metrics": {"accuracy": 0.9 - i / 50}}
        lat = {"requests": 1200, "p50_ms": 4.0, "p90_ms": 9.0, "p99_ms": 20.0 + i}
        d = details(comp, performance=perf, latency=lat)
        m = metrics(comp, accuracy=0.9 - i / 50, latency_p50_ms=4.0, latency_p99_ms=20.0 + i)
        if i >= 3:
            d["prediction_drift"] = pred
            m["prediction_drift"] = 0.2
        results.append(result(i, m, d, "drifted" if comp.dataset_drift else "ok"))
    return {"reference": ref, "current": drift_p, "results": results, "drift": drift}


def test_report_shows_the_window_its_features_and_alerts(case: dict[str, Any]) -> None:
    html = monitor_report_html(
        MONITOR,
        case["results"][::-1],  # any order
        reference=case["reference"],
        current=case["current"],
        alerts=alerts(),
    )
    page = check_page(html)
    text = page.all_text
    assert "Monitor churn-live" in text and "deployment churn" in text
    assert "datasets:/churn-train/1" in text  # the reference
    for section in ("drift", "performance", "latency", "features", "quality", "alerts", "cards"):
        assert section in page.ids
    # The latest window is shown; every feature has a row linking to a card.
    drift: ProfileComparison = case["drift"]
    assert "age" in drift.drifted_columns
    for c in drift.columns:
        assert c.column in text
    assert {f"f-{i}" for i in range(len(drift.columns))} | {"prediction"} <= page.ids
    # The table is sorted by drift: the first row is a drifted feature.
    report = monitor_report_json(MONITOR, case["results"], alerts=alerts())
    assert report["features"][0]["drifted"]
    scores = [f["score"] for f in report["features"] if f["score"] is not None]
    assert scores == sorted(scores, reverse=True)
    first = report["features"][0]["column"]
    assert f'href="#f-0">{escape(first)}</a>' in html
    # Overlays drawn from the profiles (one chart per card with a distribution).
    assert html.count('class="chart bars"') >= len(drift.drifted_columns)
    assert html.count('class="chart heat"') == 1 and html.count('class="chart line"') >= 3
    # Alerts: firing first, with rule, severity, state and message.
    assert text.index("drift_share 0.5 > 0.3") < text.index("p99 above 200 ms")
    assert "1 firing" in text and "resolved" in text and "critical" in text
    # Quality findings: out of range, unseen categories, a new column.
    assert json.dumps('new "quoted" plan') in text and "<i>extra</i>" in text


def test_everything_from_the_data_is_escaped(case: dict[str, Any]) -> None:
    evil_monitor = Monitor(
        project_id="p", name=EVIL, description=EVIL, spec={"deployment": EVIL, "route": EVIL}
    )
    html = monitor_report_html(
        evil_monitor,
        case["results"],
        reference=case["reference"],
        current=case["current"],
        alerts=alerts(),
    )
    page = check_page(html)
    assert "alert(1)" in page.all_text  # shown, as text
    assert "<script" not in html and "<b>bold" not in html and "<i>extra" not in html
    for value in [*QUOTED, 'new "quoted" plan']:
        if any(ch in value for ch in '<>&"'):
            assert value not in html, value


def test_json_is_the_same_content_json_ready(case: dict[str, Any]) -> None:
    report = monitor_report_json(MONITOR, case["results"], alerts=alerts())
    text = json.dumps(report, allow_nan=False)  # no NaN, no infinity, no odd types
    assert json.loads(text) == report
    assert report["monitor"]["name"] == "churn-live"
    assert report["monitor"]["deployment"] == "churn"
    assert report["window"]["id"] == "r5"
    assert len(report["windows"]) == report["windows_total"] == 6
    summary = report["summary"]
    assert summary["open_alerts"] == 1
    assert summary["performance"]["metric"] == "accuracy"
    assert summary["latency_p99_ms"] == 25.0
    assert summary["prediction_drift"]["drifted"] is True
    assert summary["drifted_features"] == len(case["drift"].drifted_columns)
    assert [a["id"] for a in report["alerts"]] == ["a1", "a0"]
    for f in report["features"]:
        assert len(f["history"]) == 6
    age = next(f for f in report["features"] if f["column"] == "age")
    assert age["history"][0] < 1 <= age["history"][-1]  # calm, then drifted
    assert report["prediction_drift"]["history"][:3] == [None, None, None]


def test_an_older_window_can_be_shown(case: dict[str, Any]) -> None:
    older = case["results"][1]
    report = monitor_report_json(MONITOR, case["results"], window=older)
    assert report["window"]["id"] == "r1" and report["prediction_drift"] is None
    assert report["summary"]["dataset_drift"] is False
    assert report["summary"]["performance"]["value"] == pytest.approx(0.88)
    html = monitor_report_html(MONITOR, case["results"], window=older)
    check_page(html)
    assert "(shown)" in html


def test_missing_sections_are_left_out() -> None:
    bare = result(0, {"rows": 0.0}, {"rows": 0, "notes": ["no predictions were logged"]})
    html = monitor_report_html(MONITOR, [bare])
    page = check_page(html)
    assert "no predictions were logged" in page.all_text
    assert "No drift test ran in this window." in page.all_text
    assert not {"performance", "latency", "quality", "cards"} & page.ids
    report = monitor_report_json(MONITOR, [bare])
    assert report["performance"] is None and report["latency"] is None
    assert report["quality"] is None and report["features"] == []
    assert report["summary"]["performance"] is None
    # No results at all.
    empty = monitor_report_html(MONITOR, [])
    assert "No results yet." in check_page(empty).all_text
    assert monitor_report_json(MONITOR, [])["window"] is None


def test_labels_and_latency_only_in_some_windows(case: dict[str, Any]) -> None:
    drift: ProfileComparison = case["drift"]
    early = result(
        0,
        metrics(drift, accuracy=0.8),
        details(
            drift,
            performance={"labelled": 10, "task": "classification", "metrics": {"accuracy": 0.8}},
        ),
    )
    late = result(1, metrics(drift), details(drift))  # labels not in yet, no latency
    html = monitor_report_html(MONITOR, [early, late])
    page = check_page(html)
    assert "performance" in page.ids and "latency" not in page.ids
    assert "No labelled predictions in this window yet." in page.all_text
    assert monitor_report_json(MONITOR, [early, late])["summary"]["performance"] is None


def test_nan_metrics_render_as_blanks_and_null(case: dict[str, Any]) -> None:
    nan = math.nan
    m = {"rows": 100.0, "drift_share": nan, "accuracy": nan, "latency_p99_ms": nan}
    d = details(case["drift"])
    d["drift"]["columns"][0]["statistic"] = None  # a test that could not decide
    d["drift"]["columns"][0]["p_value"] = None
    d["drift"]["columns"][0]["drifted"] = False
    r = result(0, m | {f"drift.{c.column}": nan for c in case["drift"].columns}, d)
    html = monitor_report_html(MONITOR, [r])
    check_page(html)
    assert "NaN" not in html and ">nan" not in html.lower()
    report = monitor_report_json(MONITOR, [r])
    json.dumps(report, allow_nan=False)
    assert report["windows"][0]["metrics"]["accuracy"] is None
    assert report["summary"]["latency_p99_ms"] is None
    assert report["features"][-1]["score"] is None  # untested sorts last


def test_scores_of_windows_without_details_come_from_the_statistic(case: dict[str, Any]) -> None:
    drift: ProfileComparison = case["drift"]
    full = result(1, metrics(drift), details(drift))
    slim = result(0, metrics(drift), {"rows": 1200})  # details dropped, metrics kept
    report = monitor_report_json(MONITOR, [slim, full])
    by_name = {f["column"]: f for f in report["features"]}
    age = drift["age"].result
    assert age.p_value is None  # a distance
    assert by_name["age"]["history"][0] == pytest.approx(age.statistic / age.threshold)
    assert by_name["visits"]["history"][0] is None  # ks: no score without its p-value


def test_report_size_at_100_features_and_30_windows() -> None:
    ref = profile(frame(1500, seed=1, features=100))
    currents: list[DatasetProfile] = [
        profile(frame(1000, shift=s, seed=10 + k, features=100), edges=ref)
        for k, s in enumerate((0.0, 0.5, 1.0))
    ]
    comps = [compare_profiles(ref, cur) for cur in currents]
    results = [
        result(
            i,
            metrics(comps[i % 3], accuracy=0.9, latency_p50_ms=4.0, latency_p99_ms=30.0),
            details(comps[i % 3], latency={"requests": 10, "p50_ms": 4.0, "p99_ms": 30.0}),
        )
        for i in range(30)
    ]
    html = monitor_report_html(
        MONITOR, results, reference=ref, current=currents[-1], alerts=alerts() * 10
    )
    page = check_page(html)
    size = len(html.encode())
    assert size < 1_000_000, size  # the budget is 5 MB; we hold it under 1 MB
    assert len(comps[-1].columns) >= 100
    assert page.all_text.count("f099") >= 2  # its table row and its card
    report = monitor_report_json(MONITOR, results, alerts=alerts())
    assert len(json.dumps(report, allow_nan=False)) < 5_000_000


def test_many_features_and_windows_stay_within_bounds() -> None:
    """400 features x 120 windows: the latest 90 windows, 150 heat rows, 200 cards, < 5 MB."""
    names = [f"feature-{i:03d}" for i in range(400)]

    def drift_dict(i: int) -> dict[str, Any]:
        cols = [
            {
                "column": n,
                "kind": "numeric",
                "test": "psi",
                "statistic": (k % 50) / 100 + i / 1000,
                "p_value": None,
                "threshold": 0.2,
                "drifted": (k % 50) / 100 + i / 1000 > 0.2,
                "reference_null_share": 0.0,
                "current_null_share": 0.0,
            }
            for k, n in enumerate(names)
        ]
        return {"drift_share": 0.5, "columns": cols}

    results = []
    for i in range(120):
        d = drift_dict(i)
        m = {"rows": 1000.0} | {f"drift.{c['column']}": c["statistic"] for c in d["columns"]}
        results.append(result(i, m, {"rows": 1000, "drift": d}))
    html = monitor_report_html(MONITOR, results)
    page = check_page(html)
    assert len(html.encode()) < 5_000_000
    assert "The latest 90 of 120." in page.all_text
    assert "the 150 most drifted of 400" in page.all_text
    assert html.count("<section class=card") == 200
    report = monitor_report_json(MONITOR, results)
    assert len(report["windows"]) == 90 and report["windows_total"] == 120
    assert all(len(f["history"]) == 90 for f in report["features"])
