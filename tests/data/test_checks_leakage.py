"""Leakage checks: rows shared with the reference (train/test) and target leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from loopml.data import leakage_checks as lk
from loopml.data.checks import CheckContext, CheckResult, run_checks
from loopml.data.leakage_checks import TargetLeakage, TrainTestLeakage


def one(chk: object, data: pd.DataFrame, **context: object) -> CheckResult:
    return run_checks(data, [chk], **context).results[0]  # type: ignore[list-item,arg-type]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": rng.integers(0, 1000, n),
            "c": rng.choice(["a", "b", "c"], n),
            "y": rng.integers(0, 2, n),
        }
    )


# --- train/test leakage ----------------------------------------------------------------------


def test_train_test_leakage_counts_rows_shared_with_the_reference() -> None:
    train, test = frame(1000, 0), frame(200, 1)
    assert one(TrainTestLeakage(), test, reference=train).message == (
        "no row also appears in the reference"
    )
    leaky = pd.concat([test, train.iloc[:30]], ignore_index=True)
    leaky.loc[len(leaky) - 1, "y"] = 1 - leaky.loc[len(leaky) - 1, "y"]  # target left out
    result = one(TrainTestLeakage(), leaky, reference=train, target="y", name="test")
    assert result.severity == "error"  # required by default
    assert result.details["shared_rows"] == 30
    assert result.details["share"] == pytest.approx(30 / 230)
    assert result.details["examples"] == ["200", "201", "202", "203", "204"]
    assert result.message.startswith("30 rows of 'test' (13.0%) also appear in the reference")
    # without a target every column counts: the last row no longer matches
    assert one(TrainTestLeakage(), leaky, reference=train).details["shared_rows"] == 29
    assert one(TrainTestLeakage(max_share=0.2), leaky, reference=train).passed
    strict = one(TrainTestLeakage(max_share=0.0), test.iloc[:5], reference=test)
    assert not strict.passed


def test_train_test_leakage_aligns_column_types_and_ignores_extra_columns() -> None:
    train, test = frame(500, 0), frame(100, 1)
    test = pd.concat([test, train.iloc[:10]], ignore_index=True)
    ref = train.assign(k=train["k"].astype("float64"), c=train["c"].astype("category"), z=1)
    result = one(TrainTestLeakage(), test, reference=ref)
    assert result.details["shared_rows"] == 10
    assert result.details["cast_columns"] == ["k", "c"]
    assert result.details["compared_columns"] == 4


def test_train_test_leakage_skips_without_reference_or_shared_columns() -> None:
    assert one(TrainTestLeakage(), frame(10, 0)).details["skipped"]
    other = pd.DataFrame({"q": [1, 2]})
    result = one(TrainTestLeakage(), frame(10, 0), reference=other)
    assert result.passed and "share no column" in result.message


@settings(max_examples=30, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["a", "b"])), max_size=25),
    ref=st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["a", "b"])), max_size=25),
)
def test_shared_rows_match_a_merge(
    data: list[tuple[int, str]], ref: list[tuple[int, str]]
) -> None:
    d = pd.DataFrame(data, columns=["i", "s"]).astype({"i": "int64", "s": object})
    r = pd.DataFrame(ref, columns=["i", "s"]).astype({"i": "int64", "s": object})
    expected = int(d.merge(r.drop_duplicates(), how="inner", on=["i", "s"]).shape[0])
    result = TrainTestLeakage().run(d, CheckContext(reference=r))
    assert result.details.get("shared_rows", 0) == expected


# --- target leakage --------------------------------------------------------------------------


def leaky_classification(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "noise": rng.normal(size=n),
            "useful": y + rng.normal(0, 1.0, n),
            "refund_amount": np.where(y == 1, rng.uniform(10, 100, n), 0.0),
            "status": np.where(y == 1, "closed", "open"),
            "customer_id": np.arange(n) + 10_000,
            "y": y,
        }
    )


def test_target_leakage_flags_features_that_give_the_target_away() -> None:
    data = leaky_classification()
    result = one(TargetLeakage(), data, target="y")
    assert result.severity == "error"
    assert set(result.columns) == {"refund_amount", "status"}
    top = result.details["top"]
    assert top["refund_amount"]["metric"] == "auc" and top["refund_amount"]["score"] == 1.0
    assert top["status"]["metric"] == "skill" and top["status"]["score"] == 1.0
    assert top["useful"]["score"] < 0.9
    assert result.details["excluded_id_like"] == ["customer_id"]
    assert result.details["task"] == "classification"
    assert "'refund_amount' (auc 1.000 > 0.99)" in result.message
    clean = data.drop(columns=["refund_amount", "status"])
    passed = one(TargetLeakage(), clean, target="y")
    assert passed.passed and "best single feature 'useful'" in passed.message


def test_target_leakage_through_missingness() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 1000)
    churn_date = np.where(y == 1, np.nan, rng.normal(size=1000))
    result = one(TargetLeakage(), pd.DataFrame({"churn_date": churn_date, "y": y}), target="y")
    assert result.columns == ("churn_date",)


def test_target_leakage_multiclass_and_regression() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    y = rng.choice(["a", "b", "c"], n)
    code = pd.Series(y).map({"a": 0.0, "b": 5.0, "c": 10.0}).to_numpy()
    multi = pd.DataFrame({"enc": code + rng.uniform(0, 1, n), "x": rng.normal(size=n), "y": y})
    result = one(TargetLeakage(), multi, target="y")
    assert result.columns == ("enc",)
    assert result.details["top"]["enc"]["metric"] == "skill"

    price = rng.lognormal(3, 1, n)
    reg = pd.DataFrame(
        {
            "price_eur": price * 0.92,
            "bucket": pd.cut(price, [0, 10, 20, 40, np.inf]).astype(str),
            "x": rng.normal(size=n),
            "price": price,
        }
    )
    result = one(TargetLeakage(), reg, target="price")
    assert result.details["task"] == "regression"
    assert result.columns == ("price_eur",)
    assert result.details["top"]["price_eur"] == {
        "metric": "spearman",
        "score": pytest.approx(1.0),
        "threshold": 0.99,
    }
    assert result.details["top"]["bucket"]["metric"] == "r2"
    assert one(TargetLeakage(max_r2=0.1), reg, target="price").columns == ("price_eur", "bucket")


def test_target_leakage_samples_large_tables() -> None:
    data = leaky_classification(n=5000)
    result = one(TargetLeakage(sample_size=1000), data, target="y")
    assert result.details["sampled"] is True and result.details["rows_used"] == 1000
    assert set(result.columns) == {"refund_amount", "status"}


def test_target_leakage_skips_without_a_target() -> None:
    assert one(TargetLeakage(), leaky_classification()).details["skipped"]


def test_id_like_columns() -> None:
    n = 100
    data = pd.DataFrame(
        {
            "order_id": np.random.default_rng(0).permutation(n) * 7,  # named like an id
            "row": np.arange(n) + 5,  # a consecutive range
            "amount": np.random.default_rng(1).permutation(n) * 3,  # unique, but a quantity
            "uuid_text": [f"u{i}" for i in range(n)],
            "y": np.arange(n) % 2,
        }
    )
    found = [c for c in data.columns if c != "y" and lk._id_like(data, data, c)]
    assert found == ["order_id", "row", "uuid_text"]


@settings(max_examples=30, deadline=None)
@given(
    x=st.lists(st.sampled_from([0.0, 1.0, 2.5, 3.0, -1.0]), min_size=4, max_size=40),
    seed=st.integers(0, 1000),
)
def test_auc_and_spearman_agree_with_scipy(x: list[float], seed: int) -> None:
    values = np.array(x)
    labels = np.random.default_rng(seed).integers(0, 2, len(values)).astype(bool)
    if 0 < labels.sum() < len(labels):
        u = stats.mannwhitneyu(values[labels], values[~labels]).statistic
        auc = u / (labels.sum() * (~labels).sum())
        assert lk._auc(values, labels) == pytest.approx(max(auc, 1 - auc))
    other = np.random.default_rng(seed + 1).normal(size=len(values))
    if len(set(x)) > 1:
        rho = stats.spearmanr(values, other).statistic
        assert lk._spearman(values, other) == pytest.approx(rho)
