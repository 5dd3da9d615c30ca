"""Compile the search AST (:mod:`loopml.store.search`) to bound SQLAlchemy expressions.

No SQL is ever built from strings: keys and values become bound parameters. Text comparisons and
orderings use the binary ("C") collation on PostgreSQL so that every store sorts text the same way
(by code point, like Python and SQLite).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from loopml.store import search
from loopml.store.sql.tables import latest_metrics, params, runs, tags

__all__ = ["search_statement"]

_KIND_TABLE = {"metric": latest_metrics, "param": params, "tag": tags}


def _text(col: Any, dialect: str) -> Any:
    return sa.collate(col, "C") if dialect == "postgresql" else col


def _apply(col: Any, cmp: search.Comparison, dialect: str) -> ColumnElement[bool]:
    op, value = cmp.op, cmp.value
    if op == "is not null":
        return col.is_not(None)  # type: ignore[no-any-return]
    if op in ("in", "not in"):
        assert isinstance(value, tuple)
        vals = [v for v in value if not (isinstance(v, float) and math.isnan(v))]
        if not vals:
            return sa.false() if op == "in" else col.is_not(None)
        expr = col.in_(vals) if op == "in" else col.not_in(vals)
        return expr  # type: ignore[no-any-return]
    if isinstance(value, float) and math.isnan(value):
        return sa.false()
    # PostgreSQL treats a backslash in a LIKE pattern as an escape unless told otherwise;
    # SQLite and the reference store take it literally, so turn escaping off there.
    escape = "" if dialect == "postgresql" else None
    if op == "like":
        return col.like(value, escape=escape)  # type: ignore[no-any-return]
    if op == "ilike":
        # SQLite's lower() folds ASCII only; engine.py registers a Unicode-aware one.
        lower = sa.func.loopml_lower if dialect == "sqlite" else sa.func.lower
        return lower(col).like(lower(sa.literal(value)), escape=escape)
    if isinstance(value, str):
        col = _text(col, dialect)
    return {  # type: ignore[no-any-return]
        "=": lambda: col == value,
        "!=": lambda: col != value,
        "<": lambda: col < value,
        "<=": lambda: col <= value,
        ">": lambda: col > value,
        ">=": lambda: col >= value,
    }[op]()


@functools.lru_cache(maxsize=256)
def _alias(kind: str, n: int) -> Any:
    """The n-th alias of a key table; aliases are reused across statements (building one is
    the slowest part of compiling a search)."""
    return _KIND_TABLE[kind].alias(f"{kind}_{n}")


def _value_condition(table: Any, cmp: search.Comparison, dialect: str) -> ColumnElement[bool]:
    """The condition on a key table's value column, with PostgreSQL's md5 index hint for
    param and tag equality (see tables.py)."""
    cond = _apply(table.c.value, cmp, dialect)
    if dialect == "postgresql" and cmp.kind in ("param", "tag") and cmp.op in ("=", "in"):
        values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        digests = [sa.func.md5(sa.literal(str(v))) for v in values]
        return sa.and_(sa.func.md5(table.c.value).in_(digests), cond)
    return cond


def _condition(
    expr: search.Expr, dialect: str, counter: Iterator[int] | None = None
) -> ColumnElement[bool]:
    counter = itertools.count(1000) if counter is None else counter
    if isinstance(expr, search.And):
        return sa.and_(*(_condition(e, dialect, counter) for e in expr.items))
    if isinstance(expr, search.Or):
        return sa.or_(*(_condition(e, dialect, counter) for e in expr.items))
    if expr.kind == "attribute":
        col = runs.c[expr.key]
        if expr.op == "is null":
            return col.is_(None)
        return _apply(col, expr, dialect)
    table = _alias(expr.kind, next(counter))
    present = sa.exists().where(
        table.c.run_id == runs.c.run_id,
        table.c.key == expr.key,
        table.c.value.is_not(None),
    )
    if expr.op == "is null":
        return ~present
    if expr.op == "is not null":
        return present
    return sa.exists().where(
        table.c.run_id == runs.c.run_id,
        table.c.key == expr.key,
        _value_condition(table, expr, dialect),
    )


def _conjuncts(expr: search.Expr | None) -> list[search.Expr]:
    if expr is None:
        return []
    if isinstance(expr, search.And):
        return [c for item in expr.items for c in _conjuncts(item)]
    return [expr]


def _joinable(expr: search.Expr) -> bool:
    """A comparison a run satisfies through exactly one row of a key table (so an inner join
    neither drops nor duplicates runs)."""
    return (
        isinstance(expr, search.Comparison) and expr.kind != "attribute" and expr.op != "is null"
    )


def search_statement(
    project_ids: tuple[str, ...] | None,
    expr: search.Expr | None,
    order: tuple[search.OrderBy, ...],
    limit: int,
    offset: int,
    dialect: str,
) -> sa.Select[Any]:
    """SELECT the run rows that match, in the contract's order, one page.

    Top-level ``and`` comparisons on metrics, params and tags become inner joins on
    ``(run_id, key)`` with the condition in the join, which lets the planner start from the most
    selective index (``latest_metrics(key, value)``, ``params(key, value)``) instead of testing
    every run of the project; everything else is an ``EXISTS`` in the WHERE clause.
    """
    stmt = sa.select(runs)
    source: Any = runs
    where: list[ColumnElement[bool]] = []
    counter = itertools.count()
    for cmp in _conjuncts(expr):
        if _joinable(cmp):
            assert isinstance(cmp, search.Comparison)
            table = _alias(cmp.kind, next(counter))
            cond = (
                table.c.value.is_not(None)
                if cmp.op == "is not null"
                else _value_condition(table, cmp, dialect)
            )
            source = source.join(
                table, sa.and_(table.c.run_id == runs.c.run_id, table.c.key == cmp.key, cond)
            )
        else:
            where.append(_condition(cmp, dialect, counter))
    order_cols: list[Any] = []
    for ob in order:
        if ob.kind == "attribute":
            col = runs.c[ob.key]
            if ATTRIBUTE_IS_TEXT[ob.key]:
                col = _text(col, dialect)
        else:
            table = _alias(ob.kind, next(counter))
            source = source.outerjoin(
                table, sa.and_(table.c.run_id == runs.c.run_id, table.c.key == ob.key)
            )
            col = table.c.value if ob.kind == "metric" else _text(table.c.value, dialect)
        order_cols.append((col.desc() if ob.descending else col.asc()).nulls_last())
    stmt = stmt.select_from(source)
    if project_ids is not None:
        stmt = stmt.where(runs.c.project_id.in_(project_ids))
    if where:
        stmt = stmt.where(*where)
    order_cols += [runs.c.start_time.desc(), runs.c.run_id.asc()]
    return stmt.order_by(*order_cols).limit(limit).offset(offset)


ATTRIBUTE_IS_TEXT = {key: kind == "text" for key, kind in search.ATTRIBUTES.items()}
