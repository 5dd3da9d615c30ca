"""Drift statistics agree with scipy; drift tests, defaults, rebinning and comparisons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from scipy.spatial import distance

from loopml.errors import InvalidArgument
from loopml.stats import (
    DriftResult,
    DriftTest,
    NumericProfile,
    compare_profiles,
    default_test,
    drift,
    drift_test_names,
    get_drift_test,
    profile,
    register_drift_test,
)
from loopml.stats.stattests import aligned_counts

counts = (
    st.integers(2, 12)
    .flatmap(
        lambda k: st.tuples(
            arrays(np.int64, k, elements=st.integers(0, 1000)),
            arrays(np.int64, k, elements=st.integers(0, 1000)),
        )
    )
    .filter(lambda pq: pq[0].sum() > 0 and pq[1].sum() > 0)
)


@settings(max_examples=40, deadline=None)
@given(counts)
def test_jensenshannon_matches_scipy(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    assert drift.jensenshannon(p, q) == pytest.approx(distance.jensenshannon(p, q), abs=1e-9)
    assert drift.jensenshannon(p, q, base=2) == pytest.approx(
        distance.jensenshannon(p, q, base=2), abs=1e-9
    )


@settings(max_examples=40, deadline=None)
@given(counts)
def test_chisquare_matches_chi2_contingency(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    keep = (p + q) > 0
    stat, pvalue = drift.chisquare(p, q)
    if keep.sum() < 2:
        assert (stat, pvalue) == (0.0, 1.0)
        return
    res = stats.chi2_contingency(np.vstack([p[keep], q[keep]]), correction=False)
    assert stat == pytest.approx(res.statistic, rel=1e-9, abs=1e-9)
    assert pvalue == pytest.approx(res.pvalue, rel=1e-6, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(counts, st.integers(0, 2**16))
def test_wasserstein_matches_scipy_on_binned_data(
    pq: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    p, q = pq
    edges = np.cumsum(np.random.default_rng(seed).uniform(0.1, 3, p.size + 1))
    mid = (edges[:-1] + edges[1:]) / 2
    expected = stats.wasserstein_distance(mid, mid, p, q)
    assert drift.wasserstein(edges, p, q) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert drift.wasserstein_normed(edges, p, q, 2.0) == pytest.approx(expected / 2)
    assert drift.wasserstein_normed(edges, p, q, 0.0) == pytest.approx(expected / 0.001)


@settings(max_examples=60, deadline=None)
@given(counts, st.integers(0, 2**16), st.booleans())
def test_wasserstein_points_matches_scipy(
    pq: tuple[np.ndarray, np.ndarray], seed: int, shared: bool
) -> None:
    p, q = pq
    rng = np.random.default_rng(seed)
    u = np.sort(rng.normal(0, 3, p.size))
    # ties within and across the sides, as the bins' medians of two profiles have
    v = u.copy() if shared else np.round(rng.normal(1, 2, q.size), 1)
    expected = stats.wasserstein_distance(u, v, p, q)
    assert drift.wasserstein_points(u, p, v, q) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_wasserstein_points_checks_its_input() -> None:
    with pytest.raises(InvalidArgument, match="one point per count"):
        drift.wasserstein_points([0.0, 1.0], [1, 1], [0.0], [1, 1])
    assert math.isnan(drift.wasserstein_points([0.0], [0], [1.0], [3]))


@settings(max_examples=50)
@given(
    st.integers(1, 8).flatmap(
        lambda k: st.tuples(
            st.lists(st.integers(0, k), min_size=2, max_size=300),
            st.lists(st.integers(0, k), min_size=2, max_size=300),
            st.just(k),
        )
    )
)
def test_binned_ks_matches_ks_2samp_on_data_at_the_edges(
    t: tuple[list[int], list[int], int],
) -> None:
    a, b, k = t
    p = np.bincount(a, minlength=k + 1)
    q = np.bincount(b, minlength=k + 1)
    d, pvalue = drift.ks_binned(p, q)
    res = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(res.statistic, abs=1e-12)
    assert pvalue == pytest.approx(res.pvalue, rel=1e-6, abs=1e-12)


def test_psi_by_hand_and_epsilon() -> None:
    p, q = np.array([50, 30, 20]), np.array([20, 30, 50])
    expected = sum((b - a) * math.log(b / a) for a, b in ((0.5, 0.2), (0.3, 0.3), (0.2, 0.5)))
    assert drift.psi(p, q) == pytest.approx(expected)
    assert drift.psi(p, p) == 0.0
    empty_bin = drift.psi([10, 0], [5, 5])
    assert empty_bin == pytest.approx(
        (0.5 - 1) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    )
    assert math.isnan(drift.psi([0, 0], [1, 1]))
    with pytest.raises(InvalidArgument):
        drift.psi([1, 2], [1, 2, 3])


def test_exact_tests_are_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(0.3, size=150)
    assert drift.ks_exact(a, b) == pytest.approx(tuple(stats.ks_2samp(a, b))[:2])
    assert drift.wasserstein_exact(a, b) == pytest.approx(stats.wasserstein_distance(a, b))


def test_binned_statistics_close_to_exact_on_continuous_data() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(size=20_000), rng.normal(0.2, 1.1, size=20_000)
    r, c = profile({"x": ref}), profile({"x": cur})
    wass = get_drift_test("wasserstein")(r["x"], c["x"])
    exact = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert wass.statistic == pytest.approx(exact, rel=0.1)  # stated tolerance: 10 % at 20 bins
    ks = get_drift_test("ks")(r["x"], c["x"])
    assert ks.statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=0.02)


def test_rebinning_through_the_sketch() -> None:
    rng = np.random.default_rng(2)
    ref = profile({"x": rng.normal(size=30_000)})
    cur = profile({"x": rng.normal(size=30_000)})  # its own quantile edges
    refx, curx = ref["x"], cur["x"]
    assert isinstance(refx, NumericProfile) and isinstance(curx, NumericProfile)
    assert refx.edges != curx.edges
    edges, r, c = aligned_counts(refx, curx)
    assert edges is not None and r.tolist() == list(refx.counts) and c.sum() == curx.finite
    same = profile({"x": rng.normal(size=30_000)}, edges=ref)
    exact = same["x"].counts_on(refx.edges)  # type: ignore[union-attr]
    assert exact.tolist() == list(same["x"].counts)  # type: ignore[union-attr]
    assert np.abs(c - exact).max() < 0.03 * 30_000  # same distribution, within sketch error
    assert not compare_profiles(ref, cur).dataset_drift


def test_unseen_categories_use_the_union() -> None:
    ref = profile({"c": ["a"] * 60 + ["b"] * 40})
    cur = profile({"c": ["a"] * 50 + ["b"] * 30 + ["new"] * 20})
    _, r, c = aligned_counts(ref["c"], cur["c"])
    assert r.tolist() == [60, 40, 0] and c.tolist() == [50, 30, 20]
    res = get_drift_test("jensenshannon")(ref["c"], cur["c"])
    assert res.statistic == pytest.approx(distance.jensenshannon([60, 40, 0], [50, 30, 20]))
    assert get_drift_test("psi")(ref["c"], cur["c"]).drifted


def test_defaults_follow_evidently() -> None:
    rng = np.random.default_rng(3)
    small = profile({"x": rng.normal(size=500), "c": rng.choice(list("abc"), 500)})
    large = profile(
        {
            "x": rng.normal(size=5000),
            "c": rng.choice(list("abc"), 5000),
            "k": rng.integers(0, 3, 5000),
        }
    )
    assert default_test(small["x"]).name == "ks"
    assert default_test(small["c"]).name == "chisquare"
    assert default_test(large["x"]).name == "wasserstein"
    assert default_test(large["c"]).name == "jensenshannon"
    assert default_test(large["k"]).name == "jensenshannon"  # few values: as a category


def test_registry_and_protocol() -> None:
    assert drift_test_names() == ["chisquare", "jensenshannon", "ks", "psi", "wasserstein"]
    with pytest.raises(InvalidArgument, match="unknown drift test"):
        get_drift_test("nope")
    with pytest.raises(InvalidArgument, match="already registered"):
        register_drift_test(get_drift_test("psi"))
    c = profile({"c": ["a", "b"]})["c"]
    with pytest.raises(InvalidArgument, match="numeric"):
        get_drift_test("ks")(c, c)

    class MeanShift:
        name = "meanshift_test"
        threshold = 1.0

        def __call__(self, reference: object, current: object) -> DriftResult:
            assert isinstance(reference, NumericProfile) and isinstance(current, NumericProfile)
            stat = abs((current.mean or 0) - (reference.mean or 0))
            return DriftResult(self.name, stat, None, self.threshold, stat >= self.threshold)

    test = MeanShift()
    assert isinstance(test, DriftTest)
    register_drift_test(test)
    ref = profile({"x": [0.0, 1.0, 2.0]})
    cur = profile({"x": [5.0, 6.0, 7.0]})
    out = compare_profiles(ref, cur, tests={"x": "meanshift_test"})
    assert out["x"].result.test == "meanshift_test" and out["x"].drifted


def test_compare_profiles_table() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    ref = profile(
        pd.DataFrame(
            {
                "a": rng.normal(size=n),
                "b": rng.normal(size=n),
                "c": rng.choice(list("xyz"), n),
                "gone": 1.0,
            }
        )
    )
    cur = profile(
        pd.DataFrame(
            {
                "a": rng.normal(1.0, size=n),
                "b": rng.normal(size=n),
                "c": rng.choice(list("xyz"), n),
                "new": 1,
            }
        )
    )
    cmp = compare_profiles(ref, cur)
    assert cmp.only_in_reference == ("gone",) and cmp.only_in_current == ("new",)
    assert cmp.drifted_columns == ("a",)
    assert cmp.drifted_share == pytest.approx(1 / 3) and not cmp.dataset_drift
    assert compare_profiles(ref, cur, drift_share=0.3).dataset_drift
    table = cmp.to_pandas()
    assert list(table.index) == ["a", "b", "c"] and table.loc["a", "test"] == "wasserstein"
    d = cmp.to_dict()
    assert d["columns"][0]["drifted"] is True and d["dataset_drift"] is False
    text = str(cmp)
    assert "1 of 3 columns drifted" in text and "only in reference: gone" in text
    psi = compare_profiles(ref, cur, tests={"b": "psi"})
    assert psi["b"].result.test == "psi"
    with pytest.raises(InvalidArgument, match="neither"):
        compare_profiles(ref, cur, tests={"zzz": "psi"})
    with pytest.raises(InvalidArgument, match="drift_share"):
        compare_profiles(ref, cur, drift_share=0)


def test_type_change_and_empty_sides() -> None:
    ref = profile({"x": [1.0, 2.0, 3.0], "e": [1.0, 2.0, 3.0]})
    cur = profile({"x": ["a", "b", "c"], "e": [np.nan, np.nan, np.nan]})
    cmp = compare_profiles(ref, cur)
    assert cmp["x"].result.test == "type" and cmp["x"].drifted
    assert not cmp["e"].drifted and cmp["e"].result.note is not None
    assert cmp["e"].current_null_share == 1.0
    assert cmp.to_dict()["columns"][1]["statistic"] is None
