"""Compile the search AST (:mod:`loopml.store.search`) to SQL, once per shape of query.

No SQL is ever built from strings: the statement is built with SQLAlchemy Core and every value
(compared values, project ids, limit and offset) is a named bound parameter. Building and
compiling a statement costs more than running it on a thousand runs, so :func:`prepared_search`
caches the compiled statement by the *shape* of the search (its structure, keys, operators and
the kind of each value) and only binds the values on each call. Text comparisons and orderings
use the binary ("C") collation on PostgreSQL so that every store sorts text the same way (by code
point, like Python and SQLite).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from loopml.store import search
from loopml.store.sql.statements import Prepared
from loopml.store.sql.tables import latest_metrics, params, runs, tags

__all__ = ["prepared_search", "search_statement"]

_KIND_TABLE = {"metric": latest_metrics, "param": params, "tag": tags}


def _text(col: Any, dialect: str) -> Any:
    return sa.collate(col, "C") if dialect == "postgresql" else col


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _md5_hint(cmp: search.Comparison, dialect: str) -> bool:
    """Whether the condition carries PostgreSQL's md5 index hint for param and tag equality."""
    return dialect == "postgresql" and cmp.kind in ("param", "tag") and cmp.op in ("=", "in")


def _apply(col: Any, cmp: search.Comparison, name: str, dialect: str) -> ColumnElement[bool]:
    """``col <op> :value``; ``name`` names the bound parameter(s) (``v3``, or ``v3_0``, ``v3_1``
    for the items of an ``in`` list)."""
    op, value = cmp.op, cmp.value
    if op == "is not null":
        return col.is_not(None)  # type: ignore[no-any-return]
    if op in ("in", "not in"):
        assert isinstance(value, tuple)
        vals: list[Any] = [
            sa.bindparam(f"{name}_{j}") for j, v in enumerate(value) if not _is_nan(v)
        ]
        if not vals:
            return sa.false() if op == "in" else col.is_not(None)
        expr = col.in_(vals) if op == "in" else col.not_in(vals)
        return expr  # type: ignore[no-any-return]
    if _is_nan(value):
        return sa.false()
    bound: Any = sa.bindparam(name)
    # PostgreSQL treats a backslash in a LIKE pattern as an escape unless told otherwise;
    # SQLite and the reference store take it literally, so turn escaping off there.
    escape = "" if dialect == "postgresql" else None
    if op == "like":
        return col.like(bound, escape=escape)  # type: ignore[no-any-return]
    if op == "ilike":
        # SQLite's lower() folds ASCII only; engine.py registers a Unicode-aware one.
        lower = sa.func.loopml_lower if dialect == "sqlite" else sa.func.lower
        return lower(col).like(lower(bound), escape=escape)
    if isinstance(value, str):
        col = _text(col, dialect)
    return {  # type: ignore[no-any-return]
        "=": lambda: col == bound,
        "!=": lambda: col != bound,
        "<": lambda: col < bound,
        "<=": lambda: col <= bound,
        ">": lambda: col > bound,
        ">=": lambda: col >= bound,
    }[op]()


@functools.lru_cache(maxsize=256)
def _alias(kind: str, n: int) -> Any:
    """The n-th alias of a key table; aliases are reused across statements (building one is
    the slowest part of compiling a search)."""
    return _KIND_TABLE[kind].alias(f"{kind}_{n}")


def _value_condition(
    table: Any, cmp: search.Comparison, name: str, dialect: str
) -> ColumnElement[bool]:
    """The condition on a key table's value column, with PostgreSQL's md5 index hint for
    param and tag equality (see tables.py)."""
    cond = _apply(table.c.value, cmp, name, dialect)
    if _md5_hint(cmp, dialect):
        if isinstance(cmp.value, tuple):
            digests: list[Any] = [sa.bindparam(f"d{name}_{j}") for j in range(len(cmp.value))]
        else:
            digests = [sa.bindparam(f"d{name}")]
        return sa.and_(sa.func.md5(table.c.value).in_(digests), cond)
    return cond


class _Leaves:
    """Numbers the comparisons of a filter in pre-order: comparison ``i`` binds ``v<i>``."""

    def __init__(self, expr: search.Expr | None) -> None:
        self.index = {id(c): i for i, c in enumerate(_leaves(expr))}

    def name(self, cmp: search.Comparison) -> str:
        return f"v{self.index[id(cmp)]}"


def _leaves(expr: search.Expr | None) -> list[search.Comparison]:
    if expr is None:
        return []
    if isinstance(expr, search.Comparison):
        return [expr]
    return [c for item in expr.items for c in _leaves(item)]


def _condition(
    expr: search.Expr, names: _Leaves, dialect: str, counter: Iterator[int] | None = None
) -> ColumnElement[bool]:
    counter = itertools.count(1000) if counter is None else counter
    if isinstance(expr, search.And):
        return sa.and_(*(_condition(e, names, dialect, counter) for e in expr.items))
    if isinstance(expr, search.Or):
        return sa.or_(*(_condition(e, names, dialect, counter) for e in expr.items))
    if expr.kind == "attribute":
        col = runs.c[expr.key]
        if expr.op == "is null":
            return col.is_(None)
        return _apply(col, expr, names.name(expr), dialect)
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
        _value_condition(table, expr, names.name(expr), dialect),
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
    num_projects: int | None,
    expr: search.Expr | None,
    order: tuple[search.OrderBy, ...],
    dialect: str,
) -> sa.Select[Any]:
    """SELECT the run rows that match, in the contract's order, one page.

    Every value is a bound parameter named as :func:`bind_values` names it: ``v<i>`` for the
    i-th comparison of the filter (``v<i>_<j>`` for the items of an ``in`` list, ``dv<i>`` for
    the md5 hints), ``p<k>`` for the project ids (``num_projects`` of them; None searches every
    project), ``lim`` and ``off``.

    Top-level ``and`` comparisons on metrics, params and tags become inner joins on
    ``(run_id, key)`` with the condition in the join, which lets the planner start from the most
    selective index (``latest_metrics(key, value)``, ``params(key, value)``) instead of testing
    every run of the project; everything else is an ``EXISTS`` in the WHERE clause.
    """
    names = _Leaves(expr)
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
                else _value_condition(table, cmp, names.name(cmp), dialect)
            )
            source = source.join(
                table, sa.and_(table.c.run_id == runs.c.run_id, table.c.key == cmp.key, cond)
            )
        else:
            where.append(_condition(cmp, names, dialect, counter))
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
    if num_projects == 0:
        stmt = stmt.where(sa.false())
    elif num_projects is not None:
        stmt = stmt.where(
            runs.c.project_id.in_([sa.bindparam(f"p{k}") for k in range(num_projects)])
        )
    if where:
        stmt = stmt.where(*where)
    order_cols += [runs.c.start_time.desc(), runs.c.run_id.asc()]
    return (
        stmt.order_by(*order_cols)
        .limit(sa.bindparam("lim", type_=sa.Integer))
        .offset(sa.bindparam("off", type_=sa.Integer))
    )


def bind_values(
    project_ids: tuple[str, ...] | None,
    expr: search.Expr | None,
    limit: int,
    offset: int,
    dialect: str,
) -> dict[str, Any]:
    """The values of the bound parameters of :func:`search_statement`, by name."""
    values: dict[str, Any] = {"lim": limit, "off": offset}
    for k, project_id in enumerate(project_ids or ()):
        values[f"p{k}"] = project_id
    for i, cmp in enumerate(_leaves(expr)):
        hint = _md5_hint(cmp, dialect)
        items = cmp.value if isinstance(cmp.value, tuple) else None
        if items is not None:
            for j, v in enumerate(items):
                values[f"v{i}_{j}"] = v
                if hint:
                    values[f"dv{i}_{j}"] = _md5(v)
        elif cmp.value is not None:
            values[f"v{i}"] = cmp.value
            if hint:
                values[f"dv{i}"] = _md5(cmp.value)
    return values


def _md5(value: object) -> str:
    """What PostgreSQL's ``md5(text)`` returns for ``value`` (hex digest of its UTF-8 bytes)."""
    return hashlib.md5(str(value).encode(), usedforsecurity=False).hexdigest()


def _value_shape(value: search.Value) -> object:
    if isinstance(value, tuple):
        return tuple(_value_shape(v) for v in value)
    if value is None:
        return None
    if isinstance(value, str):
        return "s"
    return "nan" if _is_nan(value) else "n"


def _shape(expr: search.Expr | None) -> object:
    """What the SQL of a filter depends on: its structure, keys, operators and value kinds."""
    if expr is None:
        return None
    if isinstance(expr, search.Comparison):
        return (expr.kind, expr.key, expr.op, _value_shape(expr.value))
    tag = "and" if isinstance(expr, search.And) else "or"
    return (tag, *(_shape(e) for e in expr.items))


def prepared_search(
    project_ids: tuple[str, ...] | None,
    expr: search.Expr | None,
    order: tuple[search.OrderBy, ...],
    limit: int,
    offset: int,
    dialect: sa.engine.Dialect,
) -> tuple[Prepared, dict[str, Any]]:
    """The compiled search statement (cached by the shape of the search) and its values."""
    num_projects = None if project_ids is None else len(project_ids)
    prepared = _compiled(num_projects, _shape(expr), order, dialect, _Example(expr))
    return prepared, bind_values(project_ids, expr, limit, offset, dialect.name)


class _Example:
    """Carries the filter to the cached compiler without making it part of the cache key (two
    filters of one shape compile to the same SQL)."""

    __slots__ = ("expr",)

    def __init__(self, expr: search.Expr | None) -> None:
        self.expr = expr

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Example)


@functools.lru_cache(maxsize=512)
def _compiled(
    num_projects: int | None,
    shape: object,
    order: tuple[search.OrderBy, ...],
    dialect: sa.engine.Dialect,
    example: _Example,
) -> Prepared:
    del shape  # the cache key; the statement is built from the example of that shape
    stmt = search_statement(num_projects, example.expr, order, dialect.name)
    return Prepared.of(stmt, dialect)


ATTRIBUTE_IS_TEXT = {key: kind == "text" for key, kind in search.ATTRIBUTES.items()}
