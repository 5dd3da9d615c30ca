"""The run search language: a safe parser to an AST, and its reference evaluation in Python.

A filter is comparisons joined with ``and`` / ``or`` and grouped with parentheses::

    metrics.auc > 0.9 and params.model = 'rf' and tags.team = 'risk'
    (status = 'finished' or status = 'killed') and name like 'xgb-%'
    metrics.`val loss` <= 0.3 and params.depth in ('4', '8') and tags.owner is not null

Identifiers are ``metrics.KEY``, ``params.KEY``, ``tags.KEY`` or a run attribute (``run_id``,
``name``, ``status``, ``user``, ``start_time``, ``end_time``, ``parent_run_id``), optionally
written ``attributes.name``. Keys with spaces or dots go in backticks or double quotes. Metrics
compare with numbers; params, tags and text attributes with strings (``=``, ``!=``, ``like``,
``ilike``, ``in``, ``not in``); ``is null`` / ``is not null`` test presence. A run that lacks the
key never matches a comparison, and neither does a NaN metric value (SQL NULL semantics, the same
in every store).

The parser produces :class:`Comparison`, :class:`And` and :class:`Or` nodes. Stores never build SQL
from strings: the SQL store compiles these nodes to bound SQLAlchemy expressions; the in-memory
store evaluates them with :func:`matches`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from loopml.entities import Run, RunStatus
from loopml.errors import InvalidFilter

__all__ = [
    "And",
    "Comparison",
    "Expr",
    "Or",
    "OrderBy",
    "matches",
    "parse_filter",
    "parse_order_by",
    "sort_runs",
]

Kind = Literal["metric", "param", "tag", "attribute"]
Value = str | float | int | tuple[str | float, ...] | None

#: Attributes that can be filtered and ordered, with their value type.
ATTRIBUTES: Mapping[str, str] = {
    "run_id": "text",
    "name": "text",
    "status": "text",
    "user": "text",
    "parent_run_id": "text",
    "project_id": "text",
    "start_time": "number",
    "end_time": "number",
}
_PREFIXES: Mapping[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "m": "metric",
    "params": "param",
    "param": "param",
    "p": "param",
    "tags": "tag",
    "tag": "tag",
    "t": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "a": "attribute",
}
_NUMBER_OPS = frozenset(
    {"=", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null"}
)
_TEXT_OPS = frozenset({"=", "!=", "like", "ilike", "in", "not in", "is null", "is not null"})
_TEXT_ORDER_OPS = _TEXT_OPS | {"<", "<=", ">", ">="}
MAX_FILTER_LENGTH = 10_000
MAX_NESTING = 100


@dataclass(frozen=True, slots=True)
class Comparison:
    """``<kind>.<key> <op> <value>``; ``value`` is None for ``is null`` / ``is not null``."""

    kind: Kind
    key: str
    op: str
    value: Value


@dataclass(frozen=True, slots=True)
class And:
    """All of ``items`` hold."""

    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[Expr, ...]


Expr = Comparison | And | Or


@dataclass(frozen=True, slots=True)
class OrderBy:
    """One sort key: ``kind`` and ``key`` as in :class:`Comparison`; ascending by default."""

    kind: Kind
    key: str
    descending: bool = False


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<number>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf|nan)(?![\w.]))
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<ident>(?:[A-Za-z_][\w\-]*|`[^`]+`)(?:\.(?:\w[\w\-:/]*|`[^`]+`|"[^"]+"))*)
    """,
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InvalidFilter(
                f"filter {text!r}: unexpected character {text[pos]!r} at position {pos}; "
                "quote string values ('rf') and put odd keys in backticks (metrics.`val loss`)"
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return toks


def _unquote(text: str) -> str:
    quote = text[0]
    body = text[1:-1]
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def error(self, what: str) -> InvalidFilter:
        if self.i < len(self.toks):
            tok = self.toks[self.i]
            where = f"at position {tok.pos} ({tok.text!r})"
        else:
            where = "at the end"
        return InvalidFilter(
            f"filter {self.text!r}: {what} {where}; "
            "example: metrics.auc > 0.9 and params.model = 'rf'"
        )

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def word(self, *words: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "ident" and tok.text.lower() in words:
            self.i += 1
            return True
        return False

    def expect(self, kind: str, what: str) -> _Tok:
        tok = self.peek()
        if tok is None or tok.kind != kind:
            raise self.error(f"expected {what}")
        self.i += 1
        return tok

    def parse(self) -> Expr:
        expr = self.or_expr()
        if self.peek() is not None:
            raise self.error("expected 'and', 'or' or the end of the filter")
        return expr

    def or_expr(self) -> Expr:
        items = [self.and_expr()]
        while self.word("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Expr:
        items = [self.atom()]
        while self.word("and"):
            items.append(self.atom())
        return items[0] if len(items) == 1 else And(tuple(items))

    def atom(self) -> Expr:
        tok = self.peek()
        if tok is not None and tok.kind == "lparen":
            if self.depth >= MAX_NESTING:
                raise self.error(f"parentheses nest deeper than {MAX_NESTING} levels")
            self.i += 1
            self.depth += 1
            expr = self.or_expr()
            self.expect("rparen", "')'")
            self.depth -= 1
            return expr
        return self.comparison()

    def comparison(self) -> Comparison:
        tok = self.peek()
        if tok is None or tok.kind != "ident" or tok.text.lower() in {"and", "or", "not", "in"}:
            raise self.error("expected an identifier such as metrics.auc, params.lr or status")
        self.i += 1
        kind, key = _identifier(tok.text, self.text)
        op = self._operator()
        value: Value
        if op in ("is null", "is not null"):
            value = None
        elif op in ("in", "not in"):
            value = self._value_list()
        else:
            value = self._value()
        return _check(Comparison(kind, key, op, value), self.text)

    def _operator(self) -> str:
        tok = self.peek()
        if tok is not None and tok.kind == "op":
            self.i += 1
            return {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        if self.word("is"):
            if self.word("not"):
                if not self.word("null"):
                    raise self.error("expected 'null'")
                return "is not null"
            if not self.word("null"):
                raise self.error("expected 'null' or 'not null'")
            return "is null"
        if self.word("not"):
            if self.word("in"):
                return "not in"
            if self.word("like"):
                raise self.error("'not like' is not supported; use != or a narrower pattern")
            raise self.error("expected 'in' after 'not'")
        for word in ("in", "like", "ilike"):
            if self.word(word):
                return word
        raise self.error("expected an operator (=, !=, <, <=, >, >=, like, ilike, in, is null)")

    def _value(self) -> str | float:
        tok = self.peek()
        if tok is None or tok.kind not in ("string", "number"):
            raise self.error("expected a quoted string or a number")
        self.i += 1
        return _unquote(tok.text) if tok.kind == "string" else float(tok.text)

    def _value_list(self) -> tuple[str | float, ...]:
        self.expect("lparen", "'(' to open a list")
        values = [self._value()]
        while self.peek() is not None and self.peek().kind == "comma":  # type: ignore[union-attr]
            self.i += 1
            values.append(self._value())
        self.expect("rparen", "')' to close the list")
        return tuple(values)


def _strip(part: str) -> str:
    if len(part) >= 2 and part[0] == part[-1] and part[0] in '`"':
        return part[1:-1]
    return part


def _identifier(text: str, source: str) -> tuple[Kind, str]:
    head, dot, rest = text.partition(".")
    head_clean = _strip(head)
    if dot and head_clean.lower() in _PREFIXES:
        kind = _PREFIXES[head_clean.lower()]
        key = _strip(rest)
    elif not dot:
        kind, key = "attribute", head_clean
    else:
        raise InvalidFilter(
            f"filter {source!r}: unknown prefix {head_clean!r} in {text!r}; "
            "use metrics.KEY, params.KEY, tags.KEY or an attribute such as status"
        )
    if not key:
        raise InvalidFilter(f"filter {source!r}: empty key in {text!r}")
    if kind == "attribute" and key not in ATTRIBUTES:
        known = ", ".join(sorted(ATTRIBUTES))
        raise InvalidFilter(
            f"filter {source!r}: unknown attribute {key!r}; attributes are {known} "
            "(for a metric, param or tag write metrics.KEY, params.KEY or tags.KEY)"
        )
    return kind, key


def _value_type(kind: Kind, key: str) -> str:
    if kind == "metric":
        return "number"
    if kind == "attribute":
        return ATTRIBUTES[key]
    return "text"


def _check(cmp: Comparison, source: str) -> Comparison:
    vtype = _value_type(cmp.kind, cmp.key)
    ops = _NUMBER_OPS if vtype == "number" else _TEXT_ORDER_OPS
    if cmp.kind in ("param", "tag"):
        ops = _TEXT_OPS
    if cmp.op not in ops:
        raise InvalidFilter(
            f"filter {source!r}: operator {cmp.op!r} does not apply to {cmp.kind} {cmp.key!r}; "
            f"use one of {', '.join(sorted(ops))}"
        )
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    for v in values:
        if v is None:
            continue
        if vtype == "number" and not isinstance(v, float):
            raise InvalidFilter(
                f"filter {source!r}: {cmp.kind} {cmp.key!r} compares with a number, got {v!r}"
            )
        if vtype == "text" and not isinstance(v, str):
            raise InvalidFilter(
                f"filter {source!r}: {cmp.kind} {cmp.key!r} compares with a quoted string, "
                f"got {v!r} (write '{v:g}')"
            )
    if cmp.kind == "attribute" and cmp.key == "status" and cmp.op in ("=", "!=", "in", "not in"):
        allowed = {s.value for s in RunStatus}
        for v in values:
            if isinstance(v, str) and v.lower() not in allowed:
                raise InvalidFilter(
                    f"filter {source!r}: unknown status {v!r}; "
                    f"use one of {', '.join(sorted(allowed))}"
                )
        lowered: Value = (
            tuple(str(v).lower() for v in values)
            if isinstance(cmp.value, tuple)
            else str(cmp.value).lower()
        )
        return Comparison(cmp.kind, cmp.key, cmp.op, lowered)
    return cmp


def parse_filter(text: str | None) -> Expr | None:
    """Parse a filter string into an AST, or None for an empty filter.

    Raises:
        InvalidFilter: the string does not parse; the message says where and why.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidFilter(f"a filter must be a string, got {type(text).__name__}")
    if not text.strip():
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"filter is {len(text)} characters; the limit is {MAX_FILTER_LENGTH}")
    return _Parser(text).parse()


def parse_order_by(clauses: str | Sequence[str] | None) -> tuple[OrderBy, ...]:
    """Parse order-by clauses such as ``["metrics.auc desc", "start_time"]``.

    Raises:
        InvalidFilter: a clause does not parse.
    """
    if clauses is None:
        return ()
    if isinstance(clauses, str):
        clauses = [clauses]
    if not isinstance(clauses, Sequence):
        raise InvalidFilter(
            f"order_by must be a string or a list of strings, got {type(clauses).__name__}"
        )
    out: list[OrderBy] = []
    for clause in clauses:
        if not isinstance(clause, str) or not clause.strip():
            raise InvalidFilter(f"order-by clause {clause!r} must be a non-empty string")
        toks = _tokenize(clause)
        if not toks or toks[0].kind != "ident" or len(toks) > 2:
            raise InvalidFilter(
                f"order-by clause {clause!r}: expected 'KEY [asc|desc]', e.g. 'metrics.auc desc'"
            )
        kind, key = _identifier(toks[0].text, clause)
        descending = False
        if len(toks) == 2:
            direction = toks[1].text.lower()
            if direction not in ("asc", "desc"):
                raise InvalidFilter(
                    f"order-by clause {clause!r}: direction must be asc or desc, "
                    f"got {toks[1].text!r}"
                )
            descending = direction == "desc"
        out.append(OrderBy(kind, key, descending))
    return tuple(out)


# --- reference evaluation (the in-memory store; also documents the semantics) -----------------


def run_value(run: Run, kind: Kind, key: str) -> Any:
    """The value a comparison sees for a run; None when the run lacks it (or it is NaN)."""
    if kind == "metric":
        v = run.metrics.get(key)
        return None if v is None or math.isnan(v) else v
    if kind == "param":
        return run.params.get(key)
    if kind == "tag":
        return run.tags.get(key)
    v = getattr(run, key)
    return v.value if isinstance(v, RunStatus) else v


def like_to_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """SQL LIKE (``%`` any run, ``_`` one character) as a compiled, anchored regex."""
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _compare(cmp: Comparison, actual: Any) -> bool:
    if cmp.op == "is null":
        return actual is None
    if cmp.op == "is not null":
        return actual is not None
    if actual is None:
        return False
    if cmp.op in ("in", "not in"):
        assert isinstance(cmp.value, tuple)
        return (actual in cmp.value) == (cmp.op == "in")
    if cmp.op in ("like", "ilike"):
        rx = like_to_regex(str(cmp.value), ignore_case=cmp.op == "ilike")
        return rx.fullmatch(str(actual)) is not None
    value = cmp.value
    if isinstance(value, float) and math.isnan(value):
        return False
    return _COMPARE[cmp.op](actual, value)


def matches(run: Run, expr: Expr | None) -> bool:
    """Whether ``run`` satisfies ``expr`` (None matches every run)."""
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(matches(run, e) for e in expr.items)
    if isinstance(expr, Or):
        return any(matches(run, e) for e in expr.items)
    return _compare(expr, run_value(run, expr.kind, expr.key))


def sort_runs(runs: list[Run], order: tuple[OrderBy, ...]) -> list[Run]:
    """Sort by ``order`` (missing values last in either direction), then start time descending,
    then run id: the order every store returns."""
    out = sorted(runs, key=lambda r: r.run_id)
    out.sort(key=lambda r: r.start_time, reverse=True)
    for ob in reversed(order):
        present = [r for r in out if run_value(r, ob.kind, ob.key) is not None]
        missing = [r for r in out if run_value(r, ob.kind, ob.key) is None]
        present.sort(key=lambda r: run_value(r, ob.kind, ob.key), reverse=ob.descending)
        out = present + missing
    return out
