"""Inline SVG charts over a monitor's windows, for :mod:`loopml.monitoring.report`: lines with
gaps where a window has no value, a heat strip of drift scores (a row per feature, a cell per
window) and a sparkline per feature. Styled by the CSS of :mod:`loopml.data.report`; every
label is escaped; each point and cell carries a native ``<title>`` tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from loopml.data.report import _e, _num

COLOURS = ("#3b6fd4", "#cf222e", "#b7791f", "#1a7f37", "#8250df", "#656d76")
"""Line colours, in the order series are drawn."""
HEAT = (
    (0.25, "#eef1f4"),
    (0.5, "#dde3ea"),
    (0.75, "#c8d1dc"),
    (1.0, "#aebbcb"),
    (1.5, "#f5b3ab"),
    (2.0, "#ec7f73"),
    (3.0, "#dc4b3f"),
    (math.inf, "#a40e26"),
)
"""Drift-score buckets ``(upper bound, colour)``: greys below the threshold (1), reds from it."""
_W, _H = 640, 160  # time-chart size in px
_LEFT, _TOP, _BOTTOM = 46, 8, 18


def when(ms: Any) -> str:
    """A time in ms since the epoch as ``YYYY-MM-DD HH:MM`` (UTC); ``-`` for none."""
    if not isinstance(ms, int | float) or isinstance(ms, bool) or ms <= 0:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _short(name: str, n: int) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _axis(times: Sequence[int], left: float, width: float, y: float) -> str:
    """The first and the last window's start under a chart."""
    out = f'<text x="{left}" y="{y}">{_e(when(times[0])[5:])}</text>'
    if len(times) > 1:
        end = f"{left + width:.0f}"
        out += f'<text x="{end}" y="{y}" text-anchor="end">{_e(when(times[-1])[5:])}</text>'
    return out


def heat_legend() -> str:
    """Swatches of the heat strip's buckets, for a ``legend`` paragraph."""
    return "".join(
        f'<i style="background:{colour}"></i>'
        + (f"&lt;{top:g}" if math.isfinite(top) else f"≥{HEAT[-2][0]:g}")
        for top, colour in HEAT
    )


def heat_svg(
    times: Sequence[int], rows: Sequence[tuple[str, Sequence[float]]], selected: int | None
) -> str:
    """A row per feature, a cell per window coloured by drift score (no cell: not tested)."""
    label_w, row_h = 150, 13
    cw = (_W - label_w) / len(times)
    body = []
    for j, (name, scores) in enumerate(rows):
        tip = _e(_short(name, 32))
        cells = [f'<rect x="{label_w}" width="{_W - label_w}" height="11" fill="#fafbfc"/>']
        for i, s in enumerate(scores):
            if math.isnan(s):
                continue
            colour = next(c for top, c in HEAT if s < top)
            shown = "≫" if math.isinf(s) else f"{s:.2f}"
            cells.append(
                f'<rect x="{label_w + i * cw:.1f}" width="{max(cw - 1, 0.6):.1f}" height="11" '
                f'fill="{colour}"><title>{tip} · {when(times[i])}: {shown}</title></rect>'
            )
        body.append(
            f'<g transform="translate(0,{j * row_h})"><text y="10"><title>{_e(name)}</title>'
            f"{_e(_short(name, 24))}</text>{''.join(cells)}</g>"
        )
    grid_h = len(rows) * row_h
    mark = ""
    if selected is not None:
        mark = (
            f'<rect x="{label_w + selected * cw - 0.5:.1f}" y="-1" width="{cw:.1f}" '
            f'height="{grid_h}" fill="none" stroke="#1f2328"/>'
        )
    height = grid_h + 16
    return (
        f'<svg class="chart heat" viewBox="0 -2 {_W} {height + 2}" width="{_W}" '
        f'height="{height + 2}" role="img" aria-label="drift score per feature and window">'
        f"{''.join(body)}{mark}{_axis(times, label_w, _W - label_w, height - 2)}</svg>"
    )


def _fmt(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else _num(value, 3)


def line_svg(
    times: Sequence[int],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    label: str,
    percent: bool = False,
    floor: float | None = 0.0,
    ceiling: float | None = None,
    marks: Sequence[tuple[str, float]] = (),
    selected: int | None = None,
) -> str:
    """A legend and lines over the windows, broken where a value is NaN.

    Args:
        times: each window's start (ms).
        series: ``(name, one value per window)``.
        label: what the chart shows.
        percent: values are shares, shown as percentages.
        floor: the lowest value the y axis shows (None: the data's lowest).
        ceiling: the highest value it shows at least (None: the data's highest).
        marks: ``(name, value)`` drawn as dashed lines (thresholds).
        selected: the index of the window to highlight.

    Returns:
        The HTML, or "" when no value is finite.
    """
    values = [v for _, vs in series for v in vs if math.isfinite(v)]
    values += [m for _, m in marks if math.isfinite(m)]
    if not values:
        return ""
    lo = min(values) if floor is None else min(floor, *values)
    hi = max(values) if ceiling is None else max(ceiling, *values)
    if hi - lo < 1e-12:
        hi = lo + (abs(lo) or 1.0)
    n, w, h = len(times), _W - _LEFT - 8, _H - _TOP - _BOTTOM

    def x(i: int) -> float:
        return _LEFT + w * (i + 0.5) / n

    def y(v: float) -> float:
        return _TOP + h * (1 - (v - lo) / (hi - lo))

    parts = []
    if selected is not None:
        parts.append(
            f'<rect x="{_LEFT + w * selected / n:.1f}" y="{_TOP}" width="{w / n:.1f}" '
            f'height="{h}" fill="#eef1f4"/>'
        )
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(
            f'<line x1="{_LEFT}" x2="{_LEFT + w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#eaeef2"/><text x="{_LEFT - 4}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{_e(_fmt(tick, percent))}</text>'
        )
    for name, m in marks:
        if math.isfinite(m):
            parts.append(
                f'<line x1="{_LEFT}" x2="{_LEFT + w}" y1="{y(m):.1f}" y2="{y(m):.1f}" '
                f'stroke="#656d76" stroke-dasharray="3 3"><title>{_e(name)}: '
                f"{_e(_fmt(m, percent))}</title></line>"
            )
    for k, (name, vs) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        path, pen, dots = [], "M", []
        for i, v in enumerate(vs):
            if not math.isfinite(v):
                pen = "M"
                continue
            path.append(f"{pen}{x(i):.1f} {y(v):.1f}")
            pen = "L"
            dots.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"><title>'
                f"{_e(name)} · {when(times[i])}: {_e(_fmt(v, percent))}</title></circle>"
            )
        if path:
            parts.append(
                f'<path d="{"".join(path)}" fill="none" stroke="{colour}" stroke-width="1.5"/>'
            )
        parts += dots
    legend = "".join(
        f'<i style="background:{COLOURS[k % len(COLOURS)]}"></i>{_e(name)}'
        for k, (name, _) in enumerate(series)
    )
    return (
        f'<p class=legend>{_e(label)}:{legend}</p><svg class="chart line" '
        f'viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{_e(label)}">{"".join(parts)}{_axis(times, _LEFT, w, _H - 4)}</svg>'
    )


def spark_svg(scores: Sequence[float], selected: int | None) -> str:
    """A feature's drift score over the windows (at least two), capped at 3, the threshold (1)
    dashed."""
    if len(scores) < 2 or all(math.isnan(s) for s in scores):
        return ""
    w, h, n = 240, 32, len(scores)

    def y(s: float) -> float:
        return h - 2 - min(s, 3.0) / 3 * (h - 4)

    points, pen = [], "M"
    for i, s in enumerate(scores):
        if math.isnan(s):
            pen = "M"
            continue
        points.append(f"{pen}{w * (i + 0.5) / n:.1f} {y(s):.1f}")
        pen = "L"
    dot = ""
    if selected is not None and selected < n and not math.isnan(scores[selected]):
        cx, cy = w * (selected + 0.5) / n, y(scores[selected])
        dot = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" fill="#1f2328"/>'
    return (
        f'<svg class="chart spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="drift score over the windows"><line x1="0" x2="{w}" y1="{y(1):.1f}" '
        f'y2="{y(1):.1f}" stroke="#656d76" stroke-dasharray="3 3"/><path '
        f'd="{"".join(points)}" fill="none" stroke="#3b6fd4" stroke-width="1.5"/>{dot}</svg>'
    )
