"""The search language: parsing filters and orders to an AST, errors, and reference evaluation.

The stores' behaviour on these ASTs is the conformance suite's job (``test_conformance.py``);
here the parser alone: every operator and form of identifier, number and string, the errors for
malformed and hostile input, and fuzzing that any text parses or raises InvalidFilter only.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.entities import Run, RunStatus
from loopml.errors import InvalidFilter
from loopml.store.search import (
    And,
    Comparison,
    Or,
    OrderBy,
    like_to_regex,
    matches,
    parse_filter,
    parse_order_by,
    sort_runs,
)

FUZZ = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def cmp(kind: str, key: str, op: str, value: Any = None) -> Comparison:
    return Comparison(kind, key, op, value)  # type: ignore[arg-type]


def quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


# --- what parses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t "])
def test_an_empty_filter_is_none(text: str | None) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.auc = 0.9", cmp("metric", "auc", "=", 0.9)),
        ("metrics.auc == 0.9", cmp("metric", "auc", "=", 0.9)),
        ("metrics.auc != 0.9", cmp("metric", "auc", "!=", 0.9)),
        ("metrics.auc <> 0.9", cmp("metric", "auc", "!=", 0.9)),
        ("metrics.auc < 1", cmp("metric", "auc", "<", 1.0)),
        ("metrics.auc <= 1", cmp("metric", "auc", "<=", 1.0)),
        ("metrics.auc > 1", cmp("metric", "auc", ">", 1.0)),
        ("metrics.auc >= 1", cmp("metric", "auc", ">=", 1.0)),
        ("metrics.auc>=1", cmp("metric", "auc", ">=", 1.0)),
        ("metrics.auc in (1, 2.5)", cmp("metric", "auc", "in", (1.0, 2.5))),
        ("metrics.auc not in (1)", cmp("metric", "auc", "not in", (1.0,))),
        ("metrics.auc is null", cmp("metric", "auc", "is null")),
        ("metrics.auc is not null", cmp("metric", "auc", "is not null")),
        ("params.model = 'rf'", cmp("param", "model", "=", "rf")),
        ("params.model != 'rf'", cmp("param", "model", "!=", "rf")),
        ("params.model like 'r%'", cmp("param", "model", "like", "r%")),
        ("params.model ilike 'R_'", cmp("param", "model", "ilike", "R_")),
        ("params.model in ('rf', 'xgb')", cmp("param", "model", "in", ("rf", "xgb"))),
        ("params.model not in ('rf')", cmp("param", "model", "not in", ("rf",))),
        ("tags.team is not null", cmp("tag", "team", "is not null")),
        ("name < 'm'", cmp("attribute", "name", "<", "m")),
        ("user >= 'b'", cmp("attribute", "user", ">=", "b")),
        ("start_time > 1700000000000", cmp("attribute", "start_time", ">", 1.7e12)),
        ("end_time is null", cmp("attribute", "end_time", "is null")),
        ("parent_run_id = 'ab'", cmp("attribute", "parent_run_id", "=", "ab")),
        ("run_id in ('a', 'b')", cmp("attribute", "run_id", "in", ("a", "b"))),
        ("project_id = 'p'", cmp("attribute", "project_id", "=", "p")),
    ],
)
def test_every_operator(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("metrics.x = 1", "metric"),
        ("metric.x = 1", "metric"),
        ("m.x = 1", "metric"),
        ("METRICS.x = 1", "metric"),
        ("`metrics`.x = 1", "metric"),
        ("params.x = '1'", "param"),
        ("param.x = '1'", "param"),
        ("p.x = '1'", "param"),
        ("tags.x = '1'", "tag"),
        ("tag.x = '1'", "tag"),
        ("t.x = '1'", "tag"),
        ("Tags.x = '1'", "tag"),
    ],
)
def test_prefixes(text: str, kind: str) -> None:
    parsed = parse_filter(text)
    assert isinstance(parsed, Comparison) and (parsed.kind, parsed.key) == (kind, "x")


@pytest.mark.parametrize("prefix", ["attributes.", "attribute.", "attr.", "a.", ""])
def test_attribute_prefixes(prefix: str) -> None:
    assert parse_filter(f"{prefix}name = 'x'") == cmp("attribute", "name", "=", "x")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("metrics.`val loss` < 1", "val loss"),
        ('metrics."val loss" < 1', "val loss"),
        ("metrics.`a.b` < 1", "a.b"),
        ("metrics.a.b < 1", "a.b"),
        ("metrics.val/loss < 1", "val/loss"),
        ("metrics.x-y:z < 1", "x-y:z"),
        ("metrics.`ñandú` < 1", "ñandú"),
        ("metrics.ñandú < 1", "ñandú"),
        ("metrics.`1st` < 1", "1st"),
        ("metrics.1st < 1", "1st"),
        ("metrics.`weird = 'key'` < 1", "weird = 'key'"),
    ],
)
def test_quoted_and_dotted_keys(text: str, key: str) -> None:
    parsed = parse_filter(text)
    assert isinstance(parsed, Comparison) and parsed.key == key


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("status = 'running'", "running"),
        ("status = 'FINISHED'", "finished"),
        ("status != 'Failed'", "failed"),
        ("status in ('KILLED', 'running')", ("killed", "running")),
        ("status not in ('Running')", ("running",)),
        ('status = "Killed"', "killed"),
    ],
)
def test_status_values_are_case_insensitive(text: str, value: Any) -> None:
    parsed = parse_filter(text)
    assert isinstance(parsed, Comparison) and parsed.value == value


def test_status_like_keeps_the_pattern() -> None:
    assert parse_filter("status like 'fin%'") == cmp("attribute", "status", "like", "fin%")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("1", 1.0),
        ("-2", -2.0),
        ("+3", 3.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("-.5", -0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("-1.5e+2", -150.0),
        ("2.e2", 200.0),
        ("0", 0.0),
        ("007", 7.0),
        ("9007199254740993", 9007199254740992.0),
        ("1e400", math.inf),
        ("inf", math.inf),
        ("INF", math.inf),
        ("+inf", math.inf),
        ("-inf", -math.inf),
        ("-Inf", -math.inf),
    ],
)
def test_numbers(literal: str, value: float) -> None:
    parsed = parse_filter(f"metrics.x = {literal}")
    assert isinstance(parsed, Comparison) and parsed.value == value
    assert isinstance(parsed.value, float)


@pytest.mark.parametrize("literal", ["nan", "NaN", "-nan", "+NAN"])
def test_nan_literal(literal: str) -> None:
    parsed = parse_filter(f"metrics.x < {literal}")
    assert isinstance(parsed, Comparison) and isinstance(parsed.value, float)
    assert math.isnan(parsed.value)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it''s'", "it's"),
        ("'it\\'s'", "it's"),
        ("'a\\\\b'", "a\\b"),
        ("'a\\b'", "ab"),
        ("''", ""),
        ("''''", "'"),
        ("'say \"hi\"'", 'say "hi"'),
        ('"say ""hi"""', 'say "hi"'),
        ('"it\'s"', "it's"),
        ("'%_'", "%_"),
        ("'Ünïcödé ✓'", "Ünïcödé ✓"),
        ("'and or ( ) ; --'", "and or ( ) ; --"),
    ],
)
def test_string_escapes(literal: str, value: str) -> None:
    assert parse_filter(f"params.x = {literal}") == cmp("param", "x", "=", value)


@given(st.text(max_size=50))
@FUZZ
def test_any_string_round_trips_through_quoting(text: str) -> None:
    assert parse_filter(f"params.x = {quote(text)}") == cmp("param", "x", "=", text)


@pytest.mark.parametrize(
    "text",
    [
        "metrics.x > 1 AND params.y = 'a'",
        "metrics.x > 1 And params.y = 'a'",
        "metrics.x IN (1) aNd params.y ILIKE 'a' OR tags.z IS NOT NULL",
        "metrics.x NOT IN (1) or params.y LIKE 'a' or tags.z Is Null",
    ],
)
def test_keywords_are_case_insensitive(text: str) -> None:
    assert isinstance(parse_filter(text), And | Or)


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (cmp("metric", k, ">", 1.0) for k in "abc")
    assert parse_filter("m.a > 1 and m.b > 1 or m.c > 1") == Or((And((a, b)), c))
    assert parse_filter("m.a > 1 or m.b > 1 and m.c > 1") == Or((a, And((b, c))))
    assert parse_filter("m.a > 1 and (m.b > 1 or m.c > 1)") == And((a, Or((b, c))))
    assert parse_filter("m.a > 1 and m.b > 1 and m.c > 1") == And((a, b, c))
    assert parse_filter("((m.a > 1))") == a
    assert parse_filter("(m.a > 1) or ((m.b > 1) and m.c > 1)") == Or((a, And((b, c))))


def test_nesting_up_to_the_limit_parses() -> None:
    assert parse_filter("(" * 100 + "m.a > 1" + ")" * 100) == cmp("metric", "a", ">", 1.0)


# --- what does not parse -------------------------------------------------------------------------

MALFORMED = [
    # structure
    ("metrics.auc >", "at the end"),
    ("metrics.auc", "expected an operator"),
    ("(metrics.auc > 1", "expected ')'"),
    ("metrics.auc > 1)", "position 15"),
    ("((metrics.auc > 1)", "expected ')'"),
    ("()", "position 1"),
    ("metrics.auc > 1 and", "at the end"),
    ("metrics.auc > 1 or or metrics.b < 2", "position 19"),
    ("and metrics.auc > 1", "position 0"),
    ("metrics.auc > 1 metrics.b < 2", "position 16"),
    ("metrics.auc 1", "expected an operator"),
    ("metrics.auc = = 1", "position 14"),
    ("metrics.auc = 1 = 2", "position 16"),
    ("not metrics.auc > 1", "position 0"),
    ("metrics.auc not like 'a'", "not supported"),
    ("params.x not 'a'", "expected 'in'"),
    ("params.x is 'a'", "expected 'null'"),
    ("params.x is not 'a'", "expected 'null'"),
    ("params.x in 'a'", "'('"),
    ("params.x in ()", "position 13"),
    ("params.x in ('a',)", "position 17"),
    ("params.x in ('a' 'b')", "')'"),
    ("params.x in ('a'", "')'"),
    ("params.x = 'unterminated", "position 11"),
    ('params.x = "unterminated', "position 11"),
    ("metrics.x > 1e", "position 12"),
    ("metrics.x > 0x10", "position 12"),
    ("metrics.x > 1.2.3", "position 12"),
    ("metrics.x > 1abc", "position 12"),
    ("metrics. > 1", "position 7"),
    ("metrics.`` > 1", "position 7"),
    ("metrics.x > params.y", "expected a quoted string or a number"),
    # identifiers
    ("nonsense = 'x'", "unknown attribute 'nonsense'"),
    ("Name = 'x'", "unknown attribute 'Name'"),
    ("attributes.metric = 1", "unknown attribute 'metric'"),
    ("bogus.x = 1", "unknown prefix 'bogus'"),
    ("status = 'done'", "unknown status 'done'"),
    ("status in ('running', 'paused')", "unknown status 'paused'"),
    # types
    ("metrics.x = 'a'", "compares with a number"),
    ("metrics.x in (1, 'a')", "compares with a number"),
    ("metrics.x like 'a%'", "operator 'like'"),
    ("params.x = 1", "compares with a quoted string"),
    ("params.x > '1'", "operator '>'"),
    ("params.x > 1", "operator '>'"),
    ("tags.x <= 'a'", "operator '<='"),
    ("start_time = 'yesterday'", "compares with a number"),
    ("start_time like '1%'", "operator 'like'"),
    ("name = 5", "compares with a quoted string"),
    ("status = 1", "compares with a quoted string"),
    # hostile input
    ("1=1; DROP TABLE runs; --", "position"),
    ("' or 1=1 --", "position 0"),
    ("name = 'x' or 1=1", "position 14"),
    ("name = 'x'; DROP TABLE runs", "position 10"),
    ("name = 'x' -- comment", "position 11"),
    ("name = 'x' /* c */", "position 11"),
    ("params.x = 'a' union select * from runs", "position 28"),  # the '*'
    ("params.x = 'a' union select 1", "position 15"),
    ("metrics.x > 1 OR '1'='1'", "position 17"),
    ("name = $$x$$", "position 7"),
    ("name = x", "position 7"),
    ("name = 'x'\x00", "position 10"),
    ("name = :value", "position 7"),
    ("name = ?", "position 7"),
    ("run_id = 'a' or run_id = (select run_id from runs)", "position 25"),
]


@pytest.mark.parametrize(("text", "where"), MALFORMED)
def test_malformed_filters_raise_invalid_filter_saying_where(text: str, where: str) -> None:
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text)
    assert where in str(info.value), str(info.value)
    assert repr(text) in str(info.value), "the message quotes the filter"


@pytest.mark.parametrize("value", [5, 1.5, b"name = 'x'", ["name = 'x'"], object()])
def test_a_filter_that_is_not_a_string_raises_invalid_filter(value: Any) -> None:
    with pytest.raises(InvalidFilter, match="must be a string"):
        parse_filter(value)


def test_limits_raise_invalid_filter() -> None:
    with pytest.raises(InvalidFilter, match="limit is 10000"):
        parse_filter("m.x > 1 and " * 1000 + "m.x > 1")
    with pytest.raises(InvalidFilter, match="nest deeper than 100"):
        parse_filter("(" * 101 + "m.x > 1" + ")" * 101)
    with pytest.raises(InvalidFilter, match="nest deeper"):
        parse_filter("(" * 4_000 + "m.x > 1" + ")" * 4_000)


@pytest.mark.parametrize(
    "text",
    [
        "metrics.x = " + "1" * 9_000 + "x",
        "metrics.x = " + "1" * 9_000 + ".x",
        "metrics.x = ." + "1" * 9_000 + "x",
        "metrics.x = 1e" + "1" * 9_000 + "x",
        "name = '" + "''" * 4_900,
        "name = '" + "\\'" * 4_900,
        'tags."' + "a" * 9_000,
        "tags." + "a." * 4_900 + "`",
        "m.x in (" + "1," * 4_900 + ")",
        "m.x > 1 and " * 830 + "(",
    ],
)
def test_hostile_long_filters_fail_fast(text: str) -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidFilter):
        parse_filter(text)
    # a bound, not a benchmark: backtracking would take minutes; a busy 2-core box takes ~1 s
    assert time.perf_counter() - start < 10.0


@given(st.text(max_size=200))
@FUZZ
def test_any_text_parses_or_raises_invalid_filter(text: str) -> None:
    try:
        result = parse_filter(text)
    except InvalidFilter:
        return
    assert result is None or isinstance(result, Comparison | And | Or)


TOKENS = [
    "metrics.auc", "m.`val loss`", "params.model", "tags.team", "status", "name", "start_time",
    "run_id", "bogus", "=", "!=", "<>", "<", ">=", "like", "ilike", "in", "not", "is", "null",
    "and", "or", "AND", "(", ")", ",", "'rf'", "'it''s'", '"x"', "1", "-2.5e3", "inf", "nan",
    "'RUNNING'", "'done'", ";", "--", "`", "'",
]  # fmt: skip


@given(st.lists(st.sampled_from(TOKENS), max_size=14).map(" ".join))
@FUZZ
def test_token_soup_parses_or_raises_invalid_filter(text: str) -> None:
    try:
        result = parse_filter(text)
    except InvalidFilter:
        return
    assert result is None or isinstance(result, Comparison | And | Or)


# --- order by ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clauses", "expected"),
    [
        (None, ()),
        ([], ()),
        ("metrics.auc", (OrderBy("metric", "auc"),)),
        ("metrics.auc desc", (OrderBy("metric", "auc", True),)),
        ("metrics.auc DESC", (OrderBy("metric", "auc", True),)),
        ("m.auc asc", (OrderBy("metric", "auc", False),)),
        ("metrics.`val loss` Desc", (OrderBy("metric", "val loss", True),)),
        ("params.model", (OrderBy("param", "model"),)),
        ("tags.team desc", (OrderBy("tag", "team", True),)),
        ("name", (OrderBy("attribute", "name"),)),
        ("attributes.start_time desc", (OrderBy("attribute", "start_time", True),)),
        (
            ["status", "metrics.auc desc", "end_time"],
            (
                OrderBy("attribute", "status"),
                OrderBy("metric", "auc", True),
                OrderBy("attribute", "end_time"),
            ),
        ),
        (("name desc",), (OrderBy("attribute", "name", True),)),
    ],
)
def test_order_by(clauses: Any, expected: tuple[OrderBy, ...]) -> None:
    assert parse_order_by(clauses) == expected


@pytest.mark.parametrize(
    "clauses",
    [
        "",
        "   ",
        "nonsense",
        "bogus.x",
        "metrics.auc sideways",
        "metrics.auc desc extra",
        "metrics.auc, name",
        "metrics.auc;",
        "desc",
        "'name'",
        "metrics.auc desc; DROP TABLE runs",
        ["name", ""],
        ["name", None],
        ["name", 3],
        5,
        {"name": "desc"},
    ],
)
def test_bad_order_by_raises_invalid_filter(clauses: Any) -> None:
    with pytest.raises(InvalidFilter):
        parse_order_by(clauses)


@given(st.text(max_size=60))
@FUZZ
def test_any_order_by_text_parses_or_raises_invalid_filter(text: str) -> None:
    try:
        result = parse_order_by(text)
    except InvalidFilter:
        return
    assert isinstance(result, tuple) and all(isinstance(o, OrderBy) for o in result)


# --- the reference evaluation --------------------------------------------------------------------


def _run(name: str, start: int, **metrics: float) -> Run:
    return Run(new_hex(start), "p", name, RunStatus.RUNNING, start, metrics=metrics)


def new_hex(n: int) -> str:
    return f"{n:032x}"


@pytest.mark.parametrize(
    ("pattern", "text", "hit"),
    [
        ("a%", "abc", True),
        ("a%", "ABC", False),
        ("a_c", "abc", True),
        ("a_c", "ac", False),
        ("a.c", "abc", False),
        ("a.c", "a.c", True),
        ("(x)+", "(x)+", True),
        ("(x)+", "xx", False),
        ("a\\b", "a\\b", True),
        ("a\\%", "a\\anything", True),
        ("%", "", True),
        ("_", "", False),
        ("line%", "line1\nline2", True),
        ("[ab]", "a", False),
    ],
)
def test_like_to_regex(pattern: str, text: str, hit: bool) -> None:
    assert (like_to_regex(pattern, ignore_case=False).fullmatch(text) is not None) is hit


def test_ilike_folds_case() -> None:
    assert like_to_regex("A%", ignore_case=True).fullmatch("abc")


def test_matches_treats_nan_and_missing_as_absent() -> None:
    nan_run = _run("n", 1, m=math.nan)
    missing = _run("x", 2)
    for text in ("metrics.m = nan", "metrics.m != 1", "metrics.m < inf", "metrics.m not in (1)"):
        expr = parse_filter(text)
        assert not matches(nan_run, expr) and not matches(missing, expr), text
    assert matches(nan_run, parse_filter("metrics.m is null"))
    assert matches(missing, None)


def test_sort_runs_puts_missing_last_in_both_directions() -> None:
    runs = [_run("a", 1, m=2.0), _run("b", 2), _run("c", 3, m=1.0), _run("d", 4, m=math.nan)]
    up = sort_runs(runs, parse_order_by("metrics.m"))
    down = sort_runs(runs, parse_order_by("metrics.m desc"))
    assert [r.name for r in up] == ["c", "a", "d", "b"]
    assert [r.name for r in down] == ["a", "c", "d", "b"]
    assert [r.name for r in sort_runs(runs, ())] == ["d", "c", "b", "a"]


def test_error_positions_point_at_the_bad_token() -> None:
    text = "metrics.auc > 0.9 and params.model = rf"
    with pytest.raises(InvalidFilter) as info:
        parse_filter(text)
    position = int(re.search(r"position (\d+)", str(info.value)).group(1))  # type: ignore[union-attr]
    assert text[position:].startswith("rf")
