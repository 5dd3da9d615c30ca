"""HTML reports: well-formed, self-contained, escaped, one chart per column, fast."""

from __future__ import annotations

import math
import time
from collections import Counter
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopml.data.checks import run_checks
from loopml.data.report import checks_html, diff_html, drift_score, profile_html, validation_html
from loopml.schema import diff_schemas, infer_schema, validate
from loopml.stats import ColumnDrift, DriftResult, compare_profiles, profile

_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}
EVIL = "<script>alert('x')</script>"


class Page(HTMLParser):
    """Parses a report and checks that every element is closed in order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: Counter[str] = Counter()
        self.classes: Counter[str] = Counter()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed: {self.stack}")

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs += attrs
        for name, value in attrs:
            if name == "class" and value:
                self.classes[value] += 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def check_page(html: str) -> Page:
    """A well-formed, self-contained page: no script, nothing fetched from elsewhere."""
    assert html.startswith("<!DOCTYPE html>")
    page = Page(html)
    assert page.problems == []
    assert page.tags["script"] == 0
    assert page.tags["html"] == page.tags["head"] == page.tags["body"] == page.tags["style"] == 1
    for name, value in page.attrs:
        assert not name.startswith("on"), name  # no event handlers
        if name in ("src", "href"):
            assert value is not None and value.startswith("#"), value  # anchors only
    assert "url(" not in html and "@import" not in html
    return page


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    n = 500
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            EVIL: rng.choice(["<b>bold</b>", "a&b", "plain"], n),
            "n": rng.integers(0, 5, n),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "flag": rng.integers(0, 2, n).astype(bool),
        }
    )
    cur = ref.copy()
    cur["x"] = cur["x"] + 2
    cur.loc[:20, "n"] = None
    return ref, cur


def test_profile_report(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, _ = frames
    prof = profile(ref, target="flag")
    html = profile_html(prof, title=f"Profile of {EVIL}", subtitle="from a&b")
    page = check_page(html)
    assert page.classes["chart hist"] == 3  # x, n, when: one histogram per numeric column
    assert page.classes["chart bars"] == 2  # the categorical and boolean columns
    assert page.classes["card"] == len(prof.columns)
    # Escaped everywhere: column name, category values, title; readable once parsed.
    assert "<script>" not in html and "<b>bold" not in html
    assert "&lt;script&gt;" in html
    text = "".join(page.text)
    assert EVIL in text and "<b>bold</b>" in text and "from a&b" in text
    # Every overview link points at a card.
    targets = {v for k, v in page.attrs if k == "href"}
    ids = {f"#{v}" for k, v in page.attrs if k == "id"}
    assert targets and targets <= ids


def test_histogram_bars_follow_the_edges(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    prof = profile(frames[0][["x"]], bins=10)
    col = prof["x"]
    page = Page(profile_html(prof))
    titles = [t for t in page.text if " values" in t and " to " in t]
    assert len(titles) == len(col.counts) == 10
    assert sum(int(t.rsplit(": ", 1)[1].split()[0].replace(",", "")) for t in titles) == 500


def test_profile_of_empty_and_all_null_columns() -> None:
    prof = profile(
        pd.DataFrame({"x": [np.nan, np.nan], "c": pd.Series([None, None], dtype=object)})
    )
    check_page(profile_html(prof))


def test_validation_report(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    schema = infer_schema(ref)
    report = validate(cur, schema)
    assert not report.ok
    html = validation_html(report, title=EVIL, schema=schema)
    page = check_page(html)
    assert "<script>" not in html
    violation_rows = page.classes["badge error"] + page.classes["badge warning"]
    assert violation_rows == len(report.violations) + 1  # + the verdict tile
    assert page.classes["hot"] == len({v.column for v in report.violations} & set(schema.names))
    clean = check_page(validation_html(validate(ref, schema)))
    assert "meets every rule" in "".join(clean.text)


def test_diff_report_highlights_drifted_columns(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    pa_, pb = profile(ref), profile(cur)
    comparison = compare_profiles(pa_, pb)
    assert "x" in comparison.drifted_columns
    sdiff = diff_schemas(infer_schema(ref), infer_schema(cur))
    html = diff_html(comparison, sdiff, title=EVIL, reference=pa_, current=pb)
    page = check_page(html)
    assert "<script>" not in html
    assert page.classes["chart drift"] == 1
    assert page.classes["hot"] == len(comparison.drifted_columns)
    assert page.classes["bar bad"] >= len(comparison.drifted_columns)
    # Distributions of each drifted column, side by side.
    assert page.classes["chart bars"] == len(comparison.drifted_columns)
    check_page(diff_html(comparison))  # without a schema diff or profiles


def test_checks_report(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, _ = frames
    report = run_checks(ref, target="flag", reference=ref, name=EVIL)
    assert not report.ok  # every row is shared with the reference
    html = checks_html(report)
    page = check_page(html)
    assert "<script>" not in html
    assert page.tags["tr"] == len(report.results) + 1
    badges = [c for c in page.classes.elements() if c.startswith("badge ")]
    assert page.classes["badge error"] == len(report.failures) + 1  # + the verdict tile
    first_row = html.index("<tbody>")
    assert html.index("badge error", first_row) < html.index("badge ok", first_row)
    assert len(badges) >= len(report.results)


@given(
    p=st.floats(min_value=1e-300, max_value=1.0, exclude_max=True),
    threshold=st.floats(min_value=1e-6, max_value=0.5),
)
def test_drift_score_is_one_at_the_threshold_of_a_p_value_test(p: float, threshold: float) -> None:
    drift = ColumnDrift(
        "c", "numeric", 1, 1, 0.0, 0.0, DriftResult("ks", 0.1, p, threshold, p < threshold)
    )
    score = drift_score(drift)
    assert (score > 1) == (p < threshold) or math.isclose(p, threshold, rel_tol=1e-9)


@given(
    stat=st.floats(min_value=0, max_value=100), threshold=st.floats(min_value=1e-6, max_value=1)
)
def test_drift_score_of_a_distance(stat: float, threshold: float) -> None:
    result = DriftResult("psi", stat, None, threshold, stat >= threshold)
    score = drift_score(ColumnDrift("c", "numeric", 1, 1, 0.0, 0.0, result))
    assert math.isclose(score, stat / threshold)
    assert (score >= 1) == result.drifted or math.isclose(stat, threshold)


def test_a_wide_profile_renders_fast() -> None:
    rng = np.random.default_rng(2)
    wide = pd.DataFrame({f"f{i}": rng.normal(size=2_000) for i in range(150)})
    wide["cat"] = rng.choice(list("abcdefghijklmnop"), 2_000)
    prof = profile(wide)
    start = time.perf_counter()
    html = profile_html(prof)
    assert time.perf_counter() - start < 2.0
    assert check_page(html).classes["chart hist"] == 150
