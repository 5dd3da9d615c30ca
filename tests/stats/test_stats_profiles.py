"""Profiles: building, exact merging, serialisation, kinds, edge cases and other frame types."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidArgument, InvalidData
from loopml.stats import (
    CategoricalProfile,
    DatasetProfile,
    EdgeFinder,
    NumericProfile,
    ProfileBuilder,
    QuantileSketch,
    merge_all,
    profile,
    profile_chunks,
)
from loopml.stats.columns import Moments


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, n)
    x[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 4, n),
            "c": rng.choice(["a", "b", "c", None], n),
            "flag": rng.random(n) < 0.3,
            "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
        }
    )


def _counts(p: DatasetProfile) -> dict[str, object]:
    out: dict[str, object] = {"rows": p.num_rows}
    for c in p.columns:
        if isinstance(c, NumericProfile):
            out[c.name] = (c.count, c.nulls, c.pos_inf, c.neg_inf, c.min, c.max, c.edges, c.counts)
        else:
            out[c.name] = (c.count, c.nulls, c.categories, c.other)
    return out


def test_kinds_and_basic_statistics() -> None:
    df = _frame(2000)
    p = profile(df, target="flag")
    assert [c.kind for c in p] == ["numeric", "numeric", "categorical", "boolean", "datetime"]
    assert p.target == "flag" and p.num_rows == 2000
    x = p["x"]
    assert isinstance(x, NumericProfile)
    s = df["x"]
    assert x.count == s.count() and x.nulls == s.isna().sum()
    assert x.mean == pytest.approx(s.mean()) and x.std == pytest.approx(s.std())
    assert x.skew == pytest.approx(s.skew()) and x.kurtosis == pytest.approx(s.kurt())
    assert x.min == s.min() and x.max == s.max()
    assert sum(x.counts) == x.finite == s.count()
    assert len(x.counts) == 20  # default bins, equal-frequency
    assert max(x.counts) - min(x.counts) <= 2
    assert x.quantile(0.5) == pytest.approx(s.median(), abs=0.2)
    # few distinct integers stay numeric with one bin per value
    k = p["k"]
    assert isinstance(k, NumericProfile) and k.edges == (-0.5, 0.5, 1.5, 2.5, 3.5)
    assert list(k.counts) == df["k"].value_counts().sort_index().tolist()
    c = p["c"]
    assert isinstance(c, CategoricalProfile)
    assert c.as_dict() == df["c"].value_counts().to_dict() and c.nulls == df["c"].isna().sum()
    assert c.top(1).categories[0][1] == df["c"].value_counts().max()
    assert c.top(1).other == c.count - c.top(1).categories[0][1]
    t = p["t"]
    assert isinstance(t, NumericProfile)
    assert t.min_display == str(df["t"].min()).replace(" ", "T")


def test_categorical_override_and_datetime_tz() -> None:
    df = pd.DataFrame(
        {"code": [1, 2, 2, 3], "ts": pd.date_range("2024-01-01", periods=4, tz="Europe/Paris")}
    )
    p = profile(df, categorical=["code"])
    assert isinstance(p["code"], CategoricalProfile)
    assert p["code"].as_dict() == {2: 2, 1: 1, 3: 1}
    ts = p["ts"]
    assert isinstance(ts, NumericProfile) and ts.tz == "Europe/Paris"
    assert ts.min == pd.Timestamp("2023-12-31T23:00:00Z").timestamp()
    assert ts.min_display == "2023-12-31T23:00:00+00:00"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 400),
    cuts=st.lists(st.integers(0, 400), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_merge_of_chunks_equals_whole(n: int, cuts: list[int], seed: int) -> None:
    df = _frame(n, seed)
    whole = profile(df)
    bounds = sorted({0, n, *(min(c, n) for c in cuts)})
    chunks = [df.iloc[a:b] for a, b in itertools.pairwise(bounds)] or [df]
    parts = [profile(ch, edges=whole) for ch in chunks]
    merged = merge_all(parts)
    assert _counts(merged) == _counts(whole)
    assert sum(parts) == merged or _counts(sum(parts)) == _counts(whole)  # type: ignore[operator]
    streamed = ProfileBuilder(edges=whole)
    for ch in chunks:
        streamed.update(ch)
    assert _counts(streamed.result()) == _counts(whole)
    for name in ("x", "k", "t"):
        a, b = merged[name], whole[name]
        assert isinstance(a, NumericProfile) and isinstance(b, NumericProfile)
        assert a.moments.n == b.moments.n and a.sketch.n == b.sketch.n
        if b.moments.n:
            scale = max(1.0, abs(b.moments.mean))
            assert a.moments.mean == pytest.approx(b.moments.mean, rel=1e-9, abs=1e-9 * scale)
            for m in ("m2", "m3", "m4"):
                assert getattr(a.moments, m) == pytest.approx(
                    getattr(b.moments, m), rel=1e-6, abs=1e-6 * scale ** int(m[1])
                )


@given(
    a=st.lists(st.floats(-1e6, 1e6), max_size=50),
    b=st.lists(st.floats(-1e6, 1e6), max_size=50),
)
def test_moments_merge_matches_direct(a: list[float], b: list[float]) -> None:
    merged = Moments.of(np.array(a)).merge(Moments.of(np.array(b)))
    direct = Moments.of(np.array(a + b))
    assert merged.n == direct.n
    assert merged.mean == pytest.approx(direct.mean, abs=1e-6)
    assert merged.m2 == pytest.approx(direct.m2, rel=1e-6, abs=1e-3)
    assert merged.m4 == pytest.approx(direct.m4, rel=1e-5, abs=1e3)


def test_merge_refuses_different_edges_and_columns() -> None:
    a = profile(_frame(300, 1))
    b = profile(_frame(300, 2))
    with pytest.raises(InvalidArgument, match="different edges"):
        a.merge(b)
    with pytest.raises(InvalidArgument, match="different columns"):
        a.merge(profile(_frame(300, 2)[["x"]]))


def test_serialisation_round_trip_is_stable_and_versioned() -> None:
    p = profile(_frame(500), target="flag")
    d = p.to_dict()
    assert d["format"] == 1
    text = p.to_json()
    json.loads(text)  # plain JSON: no NaN, bytes as base64
    q = DatasetProfile.from_json(text)
    assert q == p and q.to_json() == text
    assert q["x"].sketch == p["x"].sketch  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument, match="format 2"):
        DatasetProfile.from_dict({**d, "format": 2})
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        DatasetProfile.from_json("{")


def test_profiles_are_immutable() -> None:
    p = profile(_frame(50))
    with pytest.raises(AttributeError):
        p.num_rows = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p["x"].count = 3  # type: ignore[misc]


def test_empty_and_all_null_columns() -> None:
    empty = profile(pd.DataFrame({"x": pd.Series([], dtype=float), "c": pd.Series([], dtype=str)}))
    assert empty.num_rows == 0 and empty["x"].count == 0 and empty["x"].edges == ()  # type: ignore[union-attr]
    nulls = profile(pd.DataFrame({"x": [np.nan] * 5, "c": [None] * 5}))
    x, c = nulls["x"], nulls["c"]
    assert isinstance(x, NumericProfile) and x.nulls == 5 and x.mean is None and x.std is None
    assert math.isnan(x.quantile(0.5))
    assert isinstance(c, CategoricalProfile) and c.nulls == 5 and c.categories == ()
    # an all-null first chunk does not fix the column's kind
    b = ProfileBuilder().update(pd.DataFrame({"x": [None, None]})).update({"x": [1.0, 2.0]})
    x2 = b.result()["x"]
    assert isinstance(x2, NumericProfile) and (x2.count, x2.nulls) == (2, 2)
    # merging an empty profile keeps the other's edges
    full = profile(pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "b"]}))
    assert _counts(nulls.merge(full))["x"][-1] == full["x"].counts  # type: ignore[index,union-attr]


def test_infinities_are_counted_apart() -> None:
    p = profile({"x": [1.0, np.inf, -np.inf, np.inf, np.nan, 2.0]})
    x = p["x"]
    assert isinstance(x, NumericProfile)
    assert (x.count, x.nulls, x.pos_inf, x.neg_inf, x.finite) == (5, 1, 2, 1, 2)
    assert (x.min, x.max, x.mean) == (1.0, 2.0, 1.5)


def test_category_cap_folds_tail_into_other() -> None:
    values = [f"v{i}" for i in range(20) for _ in range(i + 1)]
    p = profile({"c": values}, category_cap=5)
    c = p["c"]
    assert isinstance(c, CategoricalProfile)
    assert [v for v, _ in c.categories] == ["v19", "v18", "v17", "v16", "v15"]
    assert c.other == len(values) - sum(n for _, n in c.categories)
    merged = c.merge(c)
    assert merged.count == 2 * c.count and merged.other == 2 * c.other


def test_polars_and_pyarrow_input_match_pandas() -> None:
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    df = _frame(300).drop(columns=["t"])
    expected = _counts(profile(df))
    assert _counts(profile(pl.from_pandas(df))) == expected
    assert _counts(profile(pa.Table.from_pandas(df, preserve_index=False))) == expected


def test_two_pass_streaming_is_exact_on_its_edges() -> None:
    df = _frame(3000).sort_values("x")  # a sorted file: the first chunk is unrepresentative
    chunks = [df.iloc[i : i + 500] for i in range(0, 3000, 500)]
    streamed = profile_chunks(lambda: iter(chunks))
    edges = EdgeFinder().update(df).result()  # KLL is randomised: edges vary a little by run
    assert streamed["k"].edges == (-0.5, 0.5, 1.5, 2.5, 3.5)  # type: ignore[union-attr]
    x = streamed["x"]
    assert isinstance(x, NumericProfile) and len(x.edges) == len(edges["x"]) == 21
    assert (x.edges[0], x.edges[-1]) == (edges["x"][0], edges["x"][-1]) == (x.min, x.max)
    assert _counts(streamed) == _counts(profile(df, edges=streamed))
    # near equal-frequency bins despite the sorted order
    assert max(x.counts) < 3 * min(x.counts)


def test_builder_errors_name_the_column() -> None:
    with pytest.raises(InvalidArgument, match="'nope'"):
        profile({"x": [1.0]}, target="nope")
    with pytest.raises(InvalidArgument, match="'x'"):
        profile({"x": [1.0]}, edges={"x": [2.0, 1.0]})
    b = ProfileBuilder().update({"x": [1.0]})
    with pytest.raises(InvalidData, match="differ"):
        b.update({"y": [1.0]})
    with pytest.raises(InvalidData, match="'x'"):
        b.update({"x": ["text"]})
    with pytest.raises(InvalidData):
        profile([1, 2, 3])


def test_sketch_counts_on_other_edges() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(size=50_000)
    sk = QuantileSketch.of(values)
    cuts = np.array([-1.0, 0.0, 0.5, 2.0])
    exact = np.bincount(np.searchsorted(cuts, values, side="right"), minlength=5)
    est = sk.bin_counts(cuts, total=values.size)
    assert est.sum() == values.size
    assert np.max(np.abs(est - exact)) <= 2 * sk.rank_error * values.size
    small = QuantileSketch.of([1.0, 2.0, 2.0, 3.0])
    assert small.is_exact and small.bin_counts([2.0]).tolist() == [1, 3]
    assert QuantileSketch.from_base64(sk.to_base64()) == sk
    with pytest.raises(InvalidArgument):
        QuantileSketch.from_bytes(b"junk")


def test_overflowing_moments_and_timedeltas_serialise() -> None:
    p = profile({"big": [1e100, -1e100, 3e100], "dt": pd.to_timedelta([1, 2, 3], "s")})
    assert math.isinf(p["big"].moments.m4)  # type: ignore[union-attr]
    again = DatasetProfile.from_json(p.to_json())
    assert math.isinf(again["big"].moments.m4)  # type: ignore[union-attr]
    assert again["dt"].mean == 2.0  # type: ignore[union-attr]
