"""Self-contained HTML reports: a dataset profile, a validation, a diff of two versions, checks.

Each function returns one HTML document as a string, with inline CSS and inline SVG charts: no
script, no font or stylesheet to fetch, so a report opens offline, in a CI artifact or attached
to an email. Every string that comes from the data (column names, category values, examples,
messages) is escaped. Charts carry native ``<title>`` tooltips, and per-column sections are
anchors the overview table links to, so a report of hundreds of columns stays navigable without
JavaScript.

Numeric histograms are drawn on the profile's own bin edges: each bar spans its bin and its
height is the bin's density (count / width), so quantile bins of unequal width read correctly.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from loopml.data.checks import CheckReport
    from loopml.schema import Schema, SchemaDiff, ValidationReport
    from loopml.stats import (
        CategoricalProfile,
        ColumnDrift,
        ColumnProfile,
        DatasetProfile,
        NumericProfile,
        ProfileComparison,
    )

__all__ = ["checks_html", "diff_html", "drift_score", "profile_html", "validation_html"]

TOP_CATEGORIES = 10
"""Categories drawn per categorical column; the rest are one "other" bar."""
_W, _H = 320, 110  # histogram size in px
_MAX_SCORE = 3.0  # drift bars are drawn up to 3x the threshold

_CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d8dee4;--soft:#f6f8fa;--accent:#3b6fd4;
--ref:#9aa7b8;--bad:#cf222e;--warn:#b7791f;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:#fff}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 24px}
header{padding-top:28px}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:16px;margin:32px 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:14px;margin:0;overflow-wrap:anywhere}
.sub{color:var(--muted);margin:0;overflow-wrap:anywhere}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:20px 0 4px}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:120px}
.tile b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.tile span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:5px 10px 5px 0;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:anywhere}
th{font-size:12px;color:var(--muted);font-weight:600}
td.n,th.n{text-align:right}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;
background:var(--soft);color:var(--muted);white-space:nowrap}
.badge.error,.badge.drift{background:#ffebe9;color:var(--bad)}
.badge.warning{background:#fff8c5;color:var(--warn)}
.badge.ok{background:#dafbe1;color:var(--ok)}
tr.hot td{background:#fff5f5}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(350px,1fr));gap:16px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card .head{display:flex;justify-content:space-between;gap:8px;align-items:baseline}
dl{display:grid;grid-template-columns:auto 1fr auto 1fr;gap:2px 10px;margin:10px 0;
font-size:12px}
dt{color:var(--muted)}
dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:var(--muted)}
.bar{fill:var(--accent)}
.bar.ref{fill:var(--ref)}
.bar.bad{fill:var(--bad)}
.bar.other{fill:#c9d1d9}
.meter{display:inline-block;height:8px;border-radius:4px;background:var(--bad);
vertical-align:middle;margin-right:6px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--soft);
padding:0 4px;border-radius:4px}
details pre{white-space:pre-wrap;font:12px ui-monospace,monospace;margin:4px 0}
.legend{font-size:12px;color:var(--muted)}
.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;border-radius:2px}
footer{color:var(--muted);font-size:12px;padding:32px 24px}
"""


# --- building blocks ------------------------------------------------------------------------


def _e(value: object) -> str:
    """``value`` as text, escaped for HTML content and attributes."""
    return html.escape(str(value), quote=True)


def _num(value: Any, digits: int = 4) -> str:
    """A number for people: thousands separators for integers, 4 significant digits else."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return (
            f"{value:,.0f}" if value.is_integer() and abs(value) < 1e15 else f"{value:.{digits}g}"
        )
    return str(value)


def _pct(part: int | float, whole: int | float) -> str:
    if not whole:
        return "0%"
    share = 100 * part / whole
    return f"{share:.0f}%" if share >= 10 or share == 0 else f"{share:.1f}%"


def _table(head: Sequence[str], rows: Iterable[str], numeric: Iterable[int] = ()) -> str:
    """A table; ``rows`` are ready ``<tr>`` strings; ``numeric`` columns align right."""
    right = set(numeric)
    cells = "".join(
        f"<th{' class=n' if i in right else ''}>{_e(h)}</th>" for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _tr(cells: Sequence[str], numeric: Iterable[int] = (), hot: bool = False) -> str:
    """A row of ready (escaped) cells."""
    right = set(numeric)
    tds = "".join(f"<td{' class=n' if i in right else ''}>{c}</td>" for i, c in enumerate(cells))
    return f"<tr{' class=hot' if hot else ''}>{tds}</tr>"


def _tiles(items: Sequence[tuple[str, str]]) -> str:
    return (
        "<div class=tiles>"
        + "".join(f"<div class=tile><b>{v}</b><span>{_e(k)}</span></div>" for k, v in items)
        + "</div>"
    )


def _badge(text: str, kind: str = "") -> str:
    return f'<span class="badge {_e(kind)}">{_e(text)}</span>'


def _page(title: str, subtitle: str | None, body: str) -> str:
    from loopml._version import __version__

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sub = f"<p class=sub>{_e(subtitle)}</p>" if subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1>{sub}</header><main>{body}</main>"
        f"<footer>Made by loopml {_e(__version__)} on {stamp}.</footer></body></html>\n"
    )


# --- charts -----------------------------------------------------------------------------------


def _edge_label(col: NumericProfile, value: float) -> str:
    shown = col.display(value)
    if isinstance(shown, str):  # a datetime: the date, or the time when the range is short
        span = (col.edges[-1] - col.edges[0]) if col.edges else 0.0
        return shown[:10] if span >= 2 * 86400 else shown[:19].replace("T", " ")
    return _num(shown)


def _histogram_svg(col: NumericProfile, *, css: str = "bar") -> str:
    """The column's histogram on its own edges (bar height: density), as an inline SVG."""
    edges = np.asarray(col.edges, dtype=np.float64)
    counts = np.asarray(col.counts, dtype=np.float64)
    if len(edges) < 2 or counts.sum() == 0:
        return "<p class=sub>No finite values to draw.</p>"
    lo, hi = float(edges[0]), float(edges[-1])
    span = hi - lo or 1.0
    widths = np.maximum(np.diff(edges), span * 1e-9)
    density = counts / widths
    top = float(density.max()) or 1.0
    plot_h = _H - 18
    xs = (edges - lo) / span * _W
    rects = []
    for i in range(len(counts)):
        x0, x1 = float(xs[i]), float(xs[i + 1])
        h = float(density[i]) / top * plot_h
        tip = (
            f"{_edge_label(col, float(edges[i]))} to {_edge_label(col, float(edges[i + 1]))}: "
            f"{int(counts[i]):,} values"
        )
        rects.append(
            f'<rect class="{css}" x="{x0:.1f}" y="{plot_h - h:.1f}" '
            f'width="{max(x1 - x0 - 0.5, 0.8):.1f}" height="{max(h, 0.5):.1f}">'
            f"<title>{_e(tip)}</title></rect>"
        )
    labels = (
        f'<text x="0" y="{_H - 3}">{_e(_edge_label(col, lo))}</text>'
        f'<text x="{_W}" y="{_H - 3}" text-anchor="end">{_e(_edge_label(col, hi))}</text>'
    )
    return (
        f'<svg class="chart hist" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
        f'role="img" aria-label="{_e(f"histogram of {col.name}")}">'
        f'<line x1="0" x2="{_W}" y1="{plot_h}" y2="{plot_h}" stroke="#d8dee4"/>'
        f"{''.join(rects)}{labels}</svg>"
    )


def _bars_svg(
    items: Sequence[tuple[str, float, str, str]], *, label: str, max_value: float | None = None
) -> str:
    """Horizontal bars: ``(label, value, shown text, css class)`` per row."""
    row_h, text_w, value_w = 18, 120, 64
    bar_w = _W - text_w - value_w
    top = max_value if max_value is not None else max([v for _, v, _, _ in items] + [1e-12])
    parts = []
    for i, (name, value, shown, css) in enumerate(items):
        y = i * row_h
        w = max(min(value / top, 1.0) * bar_w, 0.5) if top > 0 else 0.5
        short = name if len(name) <= 18 else name[:17] + "…"
        parts.append(
            f"<g><title>{_e(name)}: {_e(shown)}</title>"
            f'<text x="0" y="{y + 13}">{_e(short)}</text>'
            f'<rect class="{css}" x="{text_w}" y="{y + 3}" width="{w:.1f}" height="12" rx="2"/>'
            f'<text x="{_W}" y="{y + 13}" text-anchor="end">{_e(shown)}</text></g>'
        )
    height = max(len(items), 1) * row_h
    return (
        f'<svg class="chart bars" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
        f'role="img" aria-label="{_e(label)}">{"".join(parts)}</svg>'
    )


def _categories_svg(col: CategoricalProfile, k: int = TOP_CATEGORIES) -> str:
    """The column's top ``k`` categories and an "other" bar, as an inline SVG bar chart."""
    top = col.top(k)
    items = [(str(v), float(c), f"{c:,} ({_pct(c, col.count)})", "bar") for v, c in top.categories]
    if top.other:
        other = f"{top.other:,} ({_pct(top.other, col.count)})"
        items.append(("(other)", float(top.other), other, "bar other"))
    if not items:
        return "<p class=sub>No values.</p>"
    return _bars_svg(items, label=f"categories of {col.name}")


def drift_score(drift: ColumnDrift) -> float:
    """A column's drift on one scale for every test: 1 at the test's threshold, more is worse.

    Distances (PSI, Jensen-Shannon, Wasserstein) give ``statistic / threshold``; hypothesis
    tests (KS, chi-squared) give ``log(p) / log(threshold)``. NaN when the test could not decide.
    """
    r = drift.result
    if r.p_value is not None:
        if math.isnan(r.p_value) or not 0 < r.threshold < 1:
            return math.nan
        return math.inf if r.p_value <= 0 else math.log(r.p_value) / math.log(r.threshold)
    if math.isnan(r.statistic):
        return math.inf if r.drifted else math.nan
    return r.statistic / r.threshold if r.threshold > 0 else math.inf


def _drift_bars_svg(comparison: ProfileComparison) -> str:
    """One bar per column: its :func:`drift_score`, the threshold as a dashed line."""
    row_h, text_w, value_w = 18, 140, 56
    bar_w = _W * 2 - text_w - value_w
    width = _W * 2
    parts = []
    for i, c in enumerate(comparison.columns):
        score = drift_score(c)
        y = i * row_h
        shown = "-" if math.isnan(score) else ("≫" if math.isinf(score) else f"{score:.2f}")
        w = 0.0 if math.isnan(score) else min(score, _MAX_SCORE) / _MAX_SCORE * bar_w
        name = c.column if len(c.column) <= 22 else c.column[:21] + "…"
        tip = f"{c.column}: {c.result.test} drift score {shown} (1 = threshold)"
        parts.append(
            f'<g><title>{_e(tip)}</title><text x="0" y="{y + 13}">{_e(name)}</text>'
            f'<rect class="bar{" bad" if c.drifted else ""}" x="{text_w}" y="{y + 3}" '
            f'width="{max(w, 0.5):.1f}" height="12" rx="2"/>'
            f'<text x="{width}" y="{y + 13}" text-anchor="end">{_e(shown)}</text></g>'
        )
    height = max(len(comparison.columns), 1) * row_h
    x_thr = text_w + bar_w / _MAX_SCORE
    return (
        f'<svg class="chart drift" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="drift score per column">{"".join(parts)}'
        f'<line x1="{x_thr:.1f}" x2="{x_thr:.1f}" y1="0" y2="{height}" stroke="#656d76" '
        'stroke-dasharray="3 3"/></svg>'
    )


def _overlay_svg(ref: ColumnProfile, cur: ColumnProfile) -> str:
    """Reference and current distributions side by side (shares), for a drifted column."""
    from loopml.stats import CategoricalProfile, NumericProfile

    if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
        if len(ref.edges) < 2 or not ref.finite or not cur.finite:
            return ""
        ref_share = np.asarray(ref.counts, dtype=np.float64) / ref.finite
        cur_share = cur.counts_on(ref.edges).astype(np.float64) / cur.finite
        items = []
        for i in range(len(ref_share)):
            name = f"{_edge_label(ref, ref.edges[i])} to {_edge_label(ref, ref.edges[i + 1])}"
            items.append((name, ref_share[i], cur_share[i]))
    elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        if not ref.count or not cur.count:
            return ""
        current = cur.as_dict()
        items = [
            (str(v), c / ref.count, current.get(v, 0) / cur.count)
            for v, c in ref.top(TOP_CATEGORIES).categories
        ]
    else:
        return ""
    top = max([max(a, b) for _, a, b in items] + [1e-12])
    rows: list[tuple[str, float, str, str]] = []
    for name, a, b in items:
        rows.append((name, a, f"{a:.1%}", "bar ref"))
        rows.append(("", b, f"{b:.1%}", "bar bad"))
    return _bars_svg(rows, label=f"reference and current shares of {ref.name}", max_value=top)


# --- profile ----------------------------------------------------------------------------------


def _column_card(index: int, col: ColumnProfile, target: str | None) -> str:
    from loopml.stats import NumericProfile

    facts: list[tuple[str, str]] = [
        ("values", _num(col.count)),
        ("nulls", f"{_num(col.nulls)} ({_pct(col.nulls, col.rows)})"),
    ]
    if isinstance(col, NumericProfile):
        median = col.display(col.quantile(0.5)) if col.finite else None
        facts += [
            ("mean", _e(_num(col.display(col.mean)))),
            ("std", _num(col.std) if col.kind == "numeric" else "-"),
            ("min", _e(_num(col.min_display))),
            ("median", _e(_num(median))),
            ("max", _e(_num(col.max_display))),
        ]
        if col.pos_inf or col.neg_inf:
            facts.append(("±inf", f"{col.pos_inf:,} / {col.neg_inf:,}"))
        chart = _histogram_svg(col)
    else:
        more = "+" if col.other else ""
        facts.append(("distinct", f"{col.n_categories:,}{more}"))
        chart = _categories_svg(col)
    kind = col.kind + (" · target" if col.name == target else "")
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f'<section class=card id="col-{index}"><div class=head><h3>{_e(col.name)}</h3>'
        f"{_badge(kind)}</div><dl>{dl}</dl>{chart}</section>"
    )


def _overview_row(index: int, col: ColumnProfile) -> str:
    from loopml.stats import NumericProfile

    if isinstance(col, NumericProfile):
        summary = (
            f"mean {_e(_num(col.display(col.mean)))}, "
            f"range {_e(_num(col.min_display))} to {_e(_num(col.max_display))}"
        )
    else:
        top = col.top(3).categories
        summary = ", ".join(f"{_e(v)} ({_pct(c, col.count)})" for v, c in top)
    return _tr(
        [
            f'<a href="#col-{index}">{_e(col.name)}</a>',
            _e(col.kind),
            _num(col.count),
            _pct(col.nulls, col.rows),
            summary,
        ],
        numeric=(2, 3),
        hot=col.rows > 0 and col.nulls / col.rows > 0.2,
    )


def profile_html(
    profile: DatasetProfile, *, title: str = "Dataset profile", subtitle: str | None = None
) -> str:
    """An HTML report of a dataset profile.

    Args:
        profile: the profile (:func:`loopml.stats.profile`, or a version's stored profile).
        title: the page title, e.g. the dataset's URI.
        subtitle: a line under the title (where the data came from).

    Returns:
        One self-contained HTML document: summary tiles, an overview table linking to one card
        per column, with a histogram (numeric and datetime columns) or a bar chart of the top
        categories (categorical and boolean columns).
    """
    from loopml.stats import NumericProfile

    cols = profile.columns
    numeric = sum(isinstance(c, NumericProfile) for c in cols)
    nulls = sum(c.nulls for c in cols)
    cells = profile.num_rows * len(cols)
    tiles = [
        ("rows", _num(profile.num_rows)),
        ("columns", _num(len(cols))),
        ("numeric / datetime", _num(numeric)),
        ("categorical / boolean", _num(len(cols) - numeric)),
        ("missing cells", _pct(nulls, cells)),
    ]
    if profile.target:
        tiles.append(("target", _e(profile.target)))
    rows = [_overview_row(i, c) for i, c in enumerate(cols)]
    overview = _table(["column", "type", "values", "nulls", "summary"], rows, numeric=(2, 3))
    cards = "".join(_column_card(i, c, profile.target) for i, c in enumerate(cols))
    body = (
        f"{_tiles(tiles)}<h2>Columns</h2>{overview}"
        f"<h2>Distributions</h2><div class=grid>{cards}</div>"
    )
    return _page(title, subtitle, body)


# --- validation -------------------------------------------------------------------------------


def _examples(values: Sequence[Any]) -> str:
    return ", ".join(f"<code>{_e(json.dumps(v, default=str))}</code>" for v in values)


def _contract_rows(schema: Schema, failing: set[str]) -> list[str]:
    rows = []
    for col in schema.columns:
        if col.categories is not None:
            shown = ", ".join(str(c) for c in col.categories[:12])
            rule = f"one of {shown}" + (" …" if len(col.categories) > 12 else "")
        elif col.min is not None or col.max is not None:
            rule = f"{_num(col.min)} to {_num(col.max)}"
        else:
            rule = ""
        flags = ", ".join(
            w for w, on in (("nullable", col.nullable), ("unique", col.unique)) if on
        )
        rows.append(
            _tr(
                [_e(col.name), _e(col.type), _e(flags), _e(rule)],
                hot=col.name in failing,
            )
        )
    return rows


def validation_html(
    report: ValidationReport,
    *,
    title: str = "Validation report",
    subtitle: str | None = None,
    schema: Schema | None = None,
) -> str:
    """An HTML report of a validation (:func:`loopml.schema.validate`).

    Args:
        report: the validation report.
        title: the page title, e.g. the dataset's URI.
        subtitle: a line under the title (the schema file, say).
        schema: the contract checked, to list under the violations (columns that broke it
            highlighted).

    Returns:
        One self-contained HTML document: the verdict, a table of every violation with the
        share of rows it affects and example values, and the contract.
    """
    verdict = _badge("passed", "ok") if report.ok else _badge("failed", "error")
    tiles = [
        ("verdict", verdict),
        ("rows checked", _num(report.num_rows)),
        ("errors", _num(len(report.errors))),
        ("warnings", _num(len(report.warnings))),
    ]
    body = _tiles(tiles) + "<h2>Violations</h2>"
    if not report.violations:
        body += "<p>The data meets every rule of the contract.</p>"
    else:
        rows = []
        for v in report.violations:
            share = v.count / report.num_rows if report.num_rows else 0.0
            meter = f'<span class=meter style="width:{max(share * 60, 2):.0f}px"></span>'
            rows.append(
                _tr(
                    [
                        _badge(str(v.severity), str(v.severity)),
                        _e(v.column),
                        _e(v.rule),
                        _num(v.count),
                        f"{meter}{_pct(v.count, report.num_rows)}",
                        _examples(v.examples),
                        _e(v.message),
                    ],
                    numeric=(3,),
                )
            )
        head = ["severity", "column", "rule", "rows", "share", "examples", "message"]
        body += _table(head, rows, numeric=(3,))
    if schema is not None:
        failing = {v.column for v in report.violations}
        body += "<h2>Contract</h2>" + _table(
            ["column", "type", "flags", "allowed values"], _contract_rows(schema, failing)
        )
        extra = [f"target: {schema.target}"] if schema.target else []
        extra += [f"unique key: {', '.join(schema.unique_key)}"] if schema.unique_key else []
        if extra:
            body += f"<p class=sub>{_e('; '.join(extra))}</p>"
    return _page(title, subtitle, body)


# --- diff -------------------------------------------------------------------------------------


def _schema_section(diff: SchemaDiff) -> str:
    if not diff.changed:
        return "<p>The schemas are the same.</p>"
    rows = [
        _tr([_badge("added", "ok"), _e(c.name), _e(f"new {c.type} column"), ""])
        for c in diff.added
    ]
    rows += [
        _tr([_badge("removed", "error"), _e(c.name), _e(f"{c.type} column removed"), ""])
        for c in diff.removed
    ]
    for ch in diff.changes:
        change = (
            f"{ch.field}: {json.dumps(ch.old, default=str)} → {json.dumps(ch.new, default=str)}"
        )
        mark = _badge("tightens", "warning") if ch.tightens else ""
        rows.append(_tr([_badge("changed"), _e(ch.column or "(schema)"), _e(change), mark]))
    return _table(["", "column", "change", ""], rows)


def diff_html(
    comparison: ProfileComparison,
    schema_diff: SchemaDiff | None = None,
    *,
    title: str = "Dataset diff",
    subtitle: str | None = None,
    reference: DatasetProfile | None = None,
    current: DatasetProfile | None = None,
) -> str:
    """An HTML report comparing two datasets (two versions, or training data and new data).

    Args:
        comparison: :func:`loopml.stats.compare_profiles` of the reference and current profiles.
        schema_diff: :func:`loopml.schema.diff_schemas` of their schemas, if known.
        title: the page title, e.g. ``datasets:/churn/1 → datasets:/churn/2``.
        subtitle: a line under the title.
        reference: the reference profile, to draw drifted columns' distributions.
        current: the current profile, likewise.

    Returns:
        One self-contained HTML document: row counts, schema changes, a drift bar per column
        (1 = its test's threshold; drifted columns in red), the per-column test table and, with
        both profiles, the reference and current distributions of every drifted column.
    """
    ref_rows, cur_rows = comparison.reference_rows, comparison.current_rows
    change = f"{(cur_rows - ref_rows) / ref_rows:+.1%}" if ref_rows else "-"
    tiles = [
        ("reference rows", _num(ref_rows)),
        ("current rows", f"{_num(cur_rows)} <span>({change})</span>"),
        ("drifted columns", f"{len(comparison.drifted_columns)} / {len(comparison.columns)}"),
        (
            "dataset drift",
            _badge("yes", "drift") if comparison.dataset_drift else _badge("no", "ok"),
        ),
    ]
    if schema_diff is not None:
        n = len(schema_diff.added) + len(schema_diff.removed) + len(schema_diff.changes)
        tiles.append(("schema changes", _num(n)))
    body = _tiles(tiles)
    if schema_diff is not None:
        body += "<h2>Schema</h2>" + _schema_section(schema_diff)
    only = [(n, "only in reference") for n in comparison.only_in_reference]
    only += [(n, "only in current") for n in comparison.only_in_current]
    if only:
        body += "<p class=sub>" + "; ".join(f"{_e(n)}: {w}" for n, w in only) + "</p>"
    body += "<h2>Drift</h2>"
    if comparison.columns:
        body += (
            "<p class=legend>Drift score per column: 1 is the test's threshold (dashed line); "
            "drifted columns in red.</p>" + _drift_bars_svg(comparison)
        )
        rows = []
        for c in comparison.columns:
            r = c.result
            rows.append(
                _tr(
                    [
                        _e(c.column),
                        _e(c.kind),
                        _e(r.test),
                        _num(r.statistic),
                        _num(r.p_value),
                        _num(r.threshold),
                        _badge("drift", "drift") if c.drifted else _badge("ok", "ok"),
                        f"{c.reference_null_share:.1%} → {c.current_null_share:.1%}",
                        _e(r.note or ""),
                    ],
                    numeric=(3, 4, 5),
                    hot=c.drifted,
                )
            )
        head = ["column", "kind", "test", "statistic", "p-value", "threshold", "", "nulls", ""]
        body += _table(head, rows, numeric=(3, 4, 5))
    else:
        body += "<p>No column is in both datasets.</p>"
    if reference is not None and current is not None and comparison.drifted_columns:
        cards = []
        for name in comparison.drifted_columns:
            if name in reference and name in current:
                chart = _overlay_svg(reference[name], current[name])
                if chart:
                    cards.append(f"<section class=card><h3>{_e(name)}</h3>{chart}</section>")
        if cards:
            body += (
                "<h2>Drifted columns</h2><p class=legend>Share of values per bin:"
                '<i style="background:#9aa7b8"></i>reference<i style="background:#cf222e"></i>'
                f"current</p><div class=grid>{''.join(cards)}</div>"
            )
    return _page(title, subtitle, body)


# --- checks -----------------------------------------------------------------------------------


def checks_html(
    report: CheckReport, *, title: str | None = None, subtitle: str | None = None
) -> str:
    """An HTML report of data quality checks (:func:`loopml.data.checks.run_checks`).

    Args:
        report: the checks' report.
        title: the page title (default: ``Quality checks: <dataset name>``).
        subtitle: a line under the title.

    Returns:
        One self-contained HTML document: the verdict and one row per check (errors first),
        with its message, the columns it names and its details.
    """
    order = {"error": 0, "warning": 1, "ok": 2}
    verdict = _badge("passed", "ok") if report.ok else _badge("failed", "error")
    tiles = [
        ("verdict", verdict),
        ("rows x columns", f"{_num(report.n_rows)} x {_num(report.n_columns)}"),
        ("errors", _num(len(report.failures))),
        ("warnings", _num(len(report.warnings))),
        ("passed", _num(sum(r.passed for r in report.results))),
    ]
    rows = []
    for r in sorted(report.results, key=lambda r: order.get(r.severity or "ok", 2)):
        severity = r.severity or "ok"
        details = ""
        if r.details:
            text = json.dumps(dict(r.details), indent=2, default=str)
            details = f"<details><summary>details</summary><pre>{_e(text)}</pre></details>"
        rows.append(
            _tr(
                [
                    _badge(severity, severity),
                    f"<code>{_e(r.name)}</code>",
                    _e(r.message) + details,
                    _e(", ".join(r.columns[:20]) + (" …" if len(r.columns) > 20 else "")),
                    f"{r.seconds:.2f}s",
                ],
                numeric=(4,),
            )
        )
    table = _table(["", "check", "result", "columns", "time"], rows, numeric=(4,))
    return _page(title or f"Quality checks: {report.name}", subtitle, _tiles(tiles) + table)
