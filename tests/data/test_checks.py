"""Quality checks: the protocol, custom checks, the runner and report, and the table checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.data.builtin_checks import (
    ClassImbalance,
    ConstantColumns,
    DuplicateRows,
    HighCardinality,
    MinRows,
    MissingValues,
    MixedTypes,
    NearConstantColumns,
    Outliers,
)
from loopml.data.checks import (
    Check,
    CheckContext,
    CheckResult,
    FunctionCheck,
    check,
    default_checks,
    run_checks,
)
from loopml.errors import DataValidationFailed, InvalidArgument, InvalidData


@pytest.fixture
def clean() -> pd.DataFrame:
    """A table every default check passes."""
    rng = np.random.default_rng(0)
    n = 1000
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.normal(50_000, 8_000, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "y": rng.integers(0, 2, n),
        }
    )


def one(chk: Check, data: pd.DataFrame, **context: object) -> CheckResult:
    report = run_checks(data, [chk], **context)  # type: ignore[arg-type]
    assert len(report) == 1
    return report.results[0]


# --- the runner and the report ---------------------------------------------------------------


def test_default_suite_passes_clean_data(clean: pd.DataFrame) -> None:
    report = run_checks(clean, target="y", name="train")
    assert report.ok
    assert not report.warnings, str(report)
    assert report.names() == [c.name for c in default_checks()]
    assert report.n_rows == 1000 and report.n_columns == 4
    assert all(isinstance(c, Check) for c in default_checks())


def test_checks_needing_target_or_reference_are_skipped(clean: pd.DataFrame) -> None:
    report = run_checks(clean.drop(columns="y"))
    for name in ("class_imbalance", "target_leakage", "train_test_leakage"):
        assert report[name].passed
        assert report[name].details["skipped"] is True
        assert report[name].message.startswith("skipped")


def test_report_shapes(clean: pd.DataFrame) -> None:
    data = clean.assign(empty=np.nan)
    report = run_checks(data, name="train")
    as_dict = report.to_dict()
    assert json.loads(json.dumps(as_dict, allow_nan=False)) == as_dict
    assert as_dict["ok"] is True and as_dict["warnings"] == 2
    frame = report.to_pandas()
    assert list(frame.columns) == ["check", "severity", "passed", "message", "columns", "seconds"]
    assert frame.set_index("check").loc["missing_values", "severity"] == "warning"
    text = str(report)
    assert text.splitlines()[0].startswith("quality checks on 'train' (1,000 rows x 5 columns)")
    assert "WARN   missing_values" in text and "'empty' 100%" in text
    assert [r.name for r in report.warnings] == ["missing_values", "constant_columns"]
    with pytest.raises(KeyError, match="no check named 'nope'"):
        report["nope"]


def test_raise_for_failures_lists_failed_required_checks(clean: pd.DataFrame) -> None:
    checks = [MissingValues(required=True), ConstantColumns(required=True), DuplicateRows()]
    data = clean.assign(empty=np.nan, one=1)
    report = run_checks(data, checks, name="train")
    assert not report.ok
    assert [r.name for r in report.failures] == ["missing_values", "constant_columns"]
    assert all(r.severity == "error" for r in report.failures)
    with pytest.raises(DataValidationFailed) as info:
        report.raise_for_failures()
    message = str(info.value)
    assert message.startswith("2 required quality checks failed on 'train': missing_values:")
    assert "constant_columns:" in message and "duplicate_rows" not in message
    assert info.value.report is report
    with pytest.raises(DataValidationFailed):
        run_checks(data, checks, raise_on_failure=True)
    assert run_checks(clean, checks, raise_on_failure=True).raise_for_failures().ok


def test_a_failed_optional_check_only_warns(clean: pd.DataFrame) -> None:
    report = run_checks(clean.assign(one=1), [ConstantColumns()])
    assert report.ok
    assert report.results[0].severity == "warning" and report.results[0].failed


def test_a_crashing_check_is_an_error_result_and_others_still_run(clean: pd.DataFrame) -> None:
    @check(name="boom")
    def boom(data: pd.DataFrame, context: CheckContext) -> bool:
        raise ZeroDivisionError("division by zero")

    report = run_checks(clean, [boom, MinRows()])
    crashed = report["boom"]
    assert crashed.severity == "error" and not report.ok
    assert crashed.message == "check 'boom' crashed: ZeroDivisionError: division by zero"
    assert crashed.details == {
        "crashed": True,
        "exception": "ZeroDivisionError",
        "error": "division by zero",
    }
    assert report["min_rows"].passed


def test_a_check_returning_something_else_is_reported_as_crashed(clean: pd.DataFrame) -> None:
    class Bad:
        name = "bad"
        required = False

        def run(self, data: pd.DataFrame, context: CheckContext) -> object:
            return 42

    result = run_checks(clean, [Bad()]).results[0]  # type: ignore[list-item]
    assert result.severity == "error"
    assert "returned int, not a CheckResult" in result.message


def test_runner_refuses_bad_arguments(clean: pd.DataFrame) -> None:
    with pytest.raises(InvalidArgument, match="target column 'label' is not in 'train'"):
        run_checks(clean, target="label", name="train")
    with pytest.raises(InvalidArgument, match="is not a check"):
        run_checks(clean, [lambda d, c: True])  # type: ignore[list-item]
    with pytest.raises(InvalidData, match="must be"):
        run_checks([1, 2, 3])


def test_polars_and_arrow_input(clean: pd.DataFrame) -> None:
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    data = clean.assign(one=1, city=clean["city"].where(clean.index % 4 != 0))
    expected = run_checks(data, target="y")
    for converted in (pl.from_pandas(data), pa.Table.from_pandas(data)):
        report = run_checks(converted, target="y", reference=pl.from_pandas(data.iloc[:100]))
        assert [(r.name, r.severity) for r in report] == [
            (r.name, "error" if r.name == "train_test_leakage" else r.severity) for r in expected
        ]
        assert report["missing_values"].columns == ("city",)
        assert report["constant_columns"].columns == ("one",)


# --- results and custom checks ---------------------------------------------------------------


def test_result_severity_defaults_and_validation() -> None:
    assert CheckResult("x", passed=True).severity == "ok"
    assert CheckResult("x", passed=False).severity == "error"
    with pytest.raises(InvalidArgument, match="contradicts passed=True"):
        CheckResult("x", passed=True, severity="warning")
    with pytest.raises(InvalidArgument, match="severity must be one of"):
        CheckResult("x", passed=False, severity="fatal")  # type: ignore[arg-type]


def test_result_details_become_json_safe() -> None:
    result = CheckResult(
        "x",
        passed=True,
        details={"n": np.int64(3), "share": np.float64(0.5), "nan": float("nan"), 1: (1, 2)},
    )
    assert result.details == {"n": 3, "share": 0.5, "nan": None, "1": [1, 2]}
    assert type(result.details["n"]) is int
    json.dumps(result.to_dict(), allow_nan=False)


def test_custom_check_class(clean: pd.DataFrame) -> None:
    class PositiveIncome:
        name = "positive_income"
        required = True

        def run(self, data: pd.DataFrame, context: CheckContext) -> CheckResult:
            bad = int((data["income"] <= 0).sum())
            return CheckResult(
                self.name,
                passed=bad == 0,
                message=f"{bad} rows of {context.name!r} have income <= 0",
                columns=("income",),
            )

    assert isinstance(PositiveIncome(), Check)
    assert run_checks(clean, [PositiveIncome()]).ok
    report = run_checks(clean.assign(income=-1.0), [PositiveIncome()], name="train")
    assert report.failures[0].message == "1000 rows of 'train' have income <= 0"


def test_check_decorator_return_values(clean: pd.DataFrame) -> None:
    @check
    def adults(data: pd.DataFrame, context: CheckContext) -> bool:
        """Everyone is 18 or older."""
        return bool((data["age"] >= 18).all())

    @check(name="few_rows", required=True)
    def few(data: pd.DataFrame, context: CheckContext) -> str | None:
        return f"{len(data)} rows is too many" if len(data) > 10 else None

    @check(name="numpy_bool")
    def numpy_bool(data: pd.DataFrame, context: CheckContext) -> object:
        return (data["age"] > -1000).all()

    @check(name="full")
    def full(data: pd.DataFrame, context: CheckContext) -> CheckResult:
        return CheckResult("other name", passed=False, message="custom", columns=["age"])

    assert isinstance(adults, FunctionCheck) and isinstance(adults, Check)
    assert (adults.name, adults.required, few.required) == ("adults", False, True)
    report = run_checks(clean.assign(age=10.0), [adults, few, numpy_bool, full])
    assert report["adults"].message == "failed: Everyone is 18 or older."
    assert report["adults"].severity == "warning"
    assert report["few_rows"].message == "1000 rows is too many"
    assert report["few_rows"].severity == "error"
    assert report["numpy_bool"].passed
    assert report["full"].message == "custom" and report["full"].columns == ("age",)
    # a FunctionCheck is callable on its own
    assert adults(clean.assign(age=30.0)).passed
    assert adults(clean.assign(age=3.0)).severity == "warning"
    assert few(clean.iloc[:5]).passed


def test_memo_is_per_table() -> None:
    context = CheckContext()
    a, b = pd.DataFrame({"x": [1]}), pd.DataFrame({"x": [2]})
    assert context.memo(a, "k", lambda: 1) == 1
    assert context.memo(a, "k", lambda: 2) == 1
    assert context.memo(b, "k", lambda: 3) == 3
    chk = ConstantColumns()
    assert not chk.run(pd.DataFrame({"s": ["a", "a"]}), context).passed
    assert chk.run(pd.DataFrame({"s": ["a", "b"]}), context).passed


# --- the table checks ------------------------------------------------------------------------


def test_min_rows(clean: pd.DataFrame) -> None:
    assert one(MinRows(), clean).passed
    empty = one(MinRows(), clean.iloc[:0], name="train")
    assert empty.severity == "error"
    assert empty.message == "'train' has 0 rows, fewer than the 1 needed"
    assert not one(MinRows(min_rows=5000), clean).passed


def test_default_suite_survives_an_empty_table(clean: pd.DataFrame) -> None:
    report = run_checks(clean.iloc[:0], target="y", reference=clean)
    assert [r.name for r in report.failures] == ["min_rows"]


def test_missing_values(clean: pd.DataFrame) -> None:
    data = clean.copy()
    data.loc[:29, "age"] = np.nan  # 3%
    data.loc[:99, "city"] = None  # 10%
    result = one(MissingValues(), data)
    assert result.columns == ("city",)
    assert result.message == "1 of 4 columns have more than 5.0% missing values: 'city' 10.0%"
    assert result.details["missing_share"] == {"age": 0.03, "city": 0.1}
    assert result.details["columns"] == {"city": {"missing": 100, "share": 0.1}}
    assert one(MissingValues(max_share=0.2), data).passed
    assert one(MissingValues(max_share=0.01), data).columns == ("city", "age")
    assert one(MissingValues(columns=("age",)), data).passed


def test_duplicate_rows(clean: pd.DataFrame) -> None:
    assert one(DuplicateRows(), clean).message == "no duplicate rows"
    data = pd.concat([clean, clean.iloc[:20]], ignore_index=True)
    result = one(DuplicateRows(), data)
    assert not result.passed
    assert result.details["duplicates"] == 20
    assert result.details["examples"] == ["1000", "1001", "1002", "1003", "1004"]
    assert result.message.startswith("20 rows (2.0%) repeat an earlier row, more than 1.0%")
    assert one(DuplicateRows(max_share=0.05), data).passed
    # over a subset of columns, many rows repeat
    assert one(DuplicateRows(columns=("city",)), clean).details["duplicates"] == 997


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.sampled_from(["a", "b", None]),
            st.sampled_from([0.5, 1.5, float("nan")]),
        ),
        max_size=40,
    )
)
def test_duplicate_count_matches_pandas(rows: list[tuple[int, str | None, float]]) -> None:
    data = pd.DataFrame(rows, columns=["i", "s", "f"])
    result = DuplicateRows().run(data, CheckContext())
    assert result.details["duplicates"] == int(data.duplicated().sum())


def test_constant_columns(clean: pd.DataFrame) -> None:
    assert one(ConstantColumns(), clean).passed
    data = clean.assign(
        one=1, nothing=np.nan, word="x", when=pd.Timestamp("2024-01-01"), flag=True
    )
    data.loc[::2, "one"] = np.nan  # missing values do not count as a second value
    result = one(ConstantColumns(), data)
    assert result.columns == ("one", "nothing", "word", "when", "flag")
    assert result.details["columns"]["nothing"] is None
    assert result.details["columns"]["word"] == "'x'"
    assert "'nothing' (all missing)" in result.message
    assert "'word' (always 'x')" in result.message


def test_near_constant_columns(clean: pd.DataFrame) -> None:
    data = clean.assign(
        rare=np.where(np.arange(1000) < 5, 1, 0),  # 99.5% zeros
        common=np.where(np.arange(1000) < 50, 1, 0),  # 95% zeros
        label=np.where(np.arange(1000) < 3, "b", "a"),
        one=7,  # constant: the other check's business
    )
    result = one(NearConstantColumns(), data)
    assert result.columns == ("rare", "label")
    assert result.details["columns"]["rare"] == {"value": "0", "share": 0.995}
    assert result.details["columns"]["label"] == {"value": "'a'", "share": 0.997}
    assert one(NearConstantColumns(min_dominant_share=0.999), data).passed
    assert one(NearConstantColumns(min_dominant_share=0.95), data).columns == (
        "rare",
        "common",
        "label",
    )
    # the target is left to ClassImbalance
    assert one(NearConstantColumns(), data, target="rare").columns == ("label",)


def test_near_constant_screens_a_sample_and_counts_exactly() -> None:
    n = 50_000
    x = np.zeros(n)
    x[: int(n * 0.0095)] = np.arange(int(n * 0.0095)) + 1.0  # 99.05% zeros
    data = pd.DataFrame({"x": np.random.default_rng(1).permutation(x)})
    result = one(NearConstantColumns(sample_size=2_000), data)
    assert result.details["columns"]["x"]["share"] == pytest.approx(0.9905)


def test_high_cardinality(clean: pd.DataFrame) -> None:
    assert one(HighCardinality(), clean).passed
    n = 1000
    data = clean.assign(
        email=[f"user{i}@example.com" for i in range(n)],
        zip=[f"{i % 300:05d}" for i in range(n)],  # 300 distinct in 1000 rows: fine
        big=pd.Categorical([f"c{i % 600}" for i in range(n)]),  # 60%
        numbers=np.arange(n),  # numeric columns are not categorical
    )
    result = one(HighCardinality(), data)
    assert result.columns == ("email", "big")
    assert result.details["columns"]["email"] == {"distinct": 1000, "share": 1.0}
    assert "'email' 1,000 distinct (100%)" in result.message
    assert one(HighCardinality(max_distinct=200), data).columns == ("email", "zip", "big")
    assert one(HighCardinality(), data, target="email").columns == ("big",)


def test_mixed_types(clean: pd.DataFrame) -> None:
    assert one(MixedTypes(), clean.assign(s=clean["city"].astype(object))).passed
    data = clean.assign(
        zip=pd.Series(["75001", 69000, "06000", None] * 250, dtype=object),
        nums=pd.Series([1, 2.5] * 500, dtype=object),  # numbers only: not mixed
    )
    result = one(MixedTypes(), data)
    assert result.columns == ("zip",)
    assert result.details["columns"]["zip"] == {"str": pytest.approx(2 / 3), "int": 1 / 3}
    assert result.message == "1 column mixes value types: 'zip' (str 66.7%, int 33.3%)"


def test_outliers(clean: pd.DataFrame) -> None:
    assert one(Outliers(), clean).passed
    data = clean.copy()
    data.loc[:19, "income"] = 1e9  # 2%
    data.loc[:4, "age"] = -1e6  # 0.5%
    result = one(Outliers(), data)
    assert result.columns == ("income",)
    assert result.details["columns"]["income"]["outliers"] == 20
    assert result.details["columns"]["age"]["share"] == 0.005
    assert "'income' 2.0%" in result.message
    assert one(Outliers(max_share=0.001), data).columns == ("income", "age")
    assert one(Outliers(method="zscore"), data).columns == ("income",)
    # a column whose IQR is 0 is skipped rather than called all outliers
    skipped = one(Outliers(), clean.assign(mostly=np.where(np.arange(1000) < 100, 5.0, 0.0)))
    assert skipped.passed and skipped.details["skipped"] == ["mostly"]


def test_outlier_fences_from_a_sample_count_every_row() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=200_000)
    x[:3000] = 100.0  # 1.5%
    result = one(Outliers(sample_size=10_000), pd.DataFrame({"x": x}))
    assert result.details["sampled_quantiles"] is True
    assert result.details["columns"]["x"]["outliers"] == 3000


def test_class_imbalance(clean: pd.DataFrame) -> None:
    assert one(ClassImbalance(), clean, target="y").passed
    y = np.where(np.arange(1000) < 40, "fraud", "ok")
    result = one(ClassImbalance(), clean.assign(y=y), target="y")
    assert not result.passed
    assert result.details["ratio"] == 24.0 and result.details["minority"] == "'fraud'"
    assert result.message == (
        "target 'y': smallest class 'fraud' is 4.0% of rows, 24:1 against 'ok' (more than 10:1)"
    )
    assert one(ClassImbalance(max_ratio=30), clean.assign(y=y), target="y").passed
    single = one(ClassImbalance(), clean.assign(y=1), target="y")
    assert single.message == "target 'y' has a single class, 1"
    regression = one(ClassImbalance(), clean, target="income")
    assert regression.passed and "looks continuous" in regression.message


def test_integer_column_names_and_repeated_names() -> None:
    data = pd.DataFrame({0: [1.0, 1.0, np.nan, 1.0], 1: ["a", "b", "a", "b"]})
    report = run_checks(data, target=1)  # type: ignore[arg-type]
    assert report.ok, str(report)
    assert report["constant_columns"].columns == ("0",)
    assert report["missing_values"].details["missing_share"] == {"0": 0.25}
    with pytest.raises(InvalidArgument, match="several columns named 'a'"):
        run_checks(pd.DataFrame([[1, 2]], columns=["a", "a"]))


def test_default_suite_handles_unusual_column_types() -> None:
    n = 200
    rng = np.random.default_rng(0)
    data = pd.DataFrame(
        {
            "tz": pd.date_range("2024-01-01", periods=n, freq="h", tz="Europe/Paris"),
            "span": pd.to_timedelta(np.arange(n), unit="s"),
            "month": pd.period_range("2024-01", periods=n, freq="M"),
            "lists": [[i % 7, 1] for i in range(n)],
            "nullable": pd.array([*range(n - 1), None], dtype="Int64"),
            "small": pd.array(rng.normal(size=n), dtype="Float32"),
            "maybe": pd.array([True, False, None, True] * (n // 4), dtype="boolean"),
            "complex": np.arange(n) * 1j,
            "y": rng.integers(0, 2, n),
        }
    )
    report = run_checks(data, target="y", reference=data.iloc[:5])
    assert not [r.message for r in report if r.details.get("crashed")]
    assert report["missing_values"].columns == ("maybe",)
    assert report["mixed_types"].passed  # lists only: one type, not a mix
    assert report["train_test_leakage"].details["shared_rows"] == 5
    leaky = data.assign(lists=[[int(v)] for v in data["y"]])
    assert run_checks(leaky, [], target="y").ok
    assert "lists" in run_checks(leaky, target="y").failures[0].columns
