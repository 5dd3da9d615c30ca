"""The monitor report: one self-contained HTML page per monitor and window, and its JSON form.

A monitor's results are a time series, one :class:`~loopml.entities.MonitorResult` per window.
The report shows one window (the latest by default) among the others: tiles, drift over time
(the share of drifted features and a heat strip of every feature's drift score, a row per
feature and a cell per window, which stays readable at a hundred features), performance and
latency over time, the window's features sorted by drift linking to a card per feature (with
the reference and current distributions when both profiles are given), data-quality findings
and the alert history.

The page follows :mod:`loopml.data.report`: inline CSS and SVG, no script, nothing fetched, and
every string that comes from the data (column names, category values, messages) escaped.
:func:`monitor_report_json` gives the same content for machines; the page is drawn from it.
Both functions are pure: the caller reads the monitor, its results and alerts from the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.data.report import _badge, _e, _num, _overlay_svg, _page, _pct, _table, _tiles, _tr
from loopml.monitoring._report_charts import heat_legend, heat_svg, line_svg, spark_svg, when
from loopml.monitoring._report_content import (
    BOUNDED,
    ERRORS,
    MAIN,
    as_float,
    as_list,
    as_map,
    content,
    jsonable,
)
from loopml.monitoring._report_content import MAX_WINDOWS as MAX_WINDOWS

if TYPE_CHECKING:
    from loopml.entities import Alert, Monitor, MonitorResult
    from loopml.stats import DatasetProfile

__all__ = ["monitor_report_html", "monitor_report_json"]

MAX_CARDS = 200
"""Per-feature cards: the most drifted features first."""
MAX_OVERLAYS = 20
"""Cards that draw the reference and current distributions: the most drifted features."""
MAX_HEAT_ROWS = 150
"""Rows of the drift heat strip: the prediction, then the most drifted features."""


def monitor_report_json(
    monitor: Monitor,
    results: Sequence[MonitorResult],
    *,
    window: MonitorResult | None = None,
    alerts: Sequence[Alert] = (),
) -> dict[str, Any]:
    """The monitor report's content for machines (what :func:`monitor_report_html` shows).

    Args:
        monitor: the monitor.
        results: its results, one per window, in any order.
        window: the window to detail (default: the latest of ``results``).
        alerts: the monitor's alerts, firing and resolved.

    Returns:
        A JSON-ready dict (NaN and infinities as null; times in ms since the epoch):
        ``monitor`` (name, what it watches, the alert rules), ``window``, ``windows`` (the
        latest :data:`MAX_WINDOWS` of ``windows_total``, oldest first, with their metrics),
        ``summary`` (the tiles), ``features`` (the window's drift tests, most drifted first,
        each with ``score``, 1 at its test's threshold, and ``history``: its score per window
        of ``windows``), ``drift_history`` (features tested in other windows only),
        ``prediction_drift``, ``quality``, ``performance``, ``latency``, ``reference``,
        ``notes`` and ``alerts`` (firing first, then latest first).
    """
    out: dict[str, Any] = jsonable(content(monitor, results, window, alerts))
    return out


# --- page -------------------------------------------------------------------------------------


def _n(value: Any, digits: int = 4) -> str:
    """A number for people (``-`` for none or NaN), escaped: details are JSON from anywhere."""
    return _e(_num(value, digits))


def _share(value: float, whole: float = 1.0) -> str:
    return "-" if math.isnan(value) else _pct(value, whole)


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or seconds <= 0:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:g}s"


def _subtitle(c: Mapping[str, Any]) -> str:
    m, win = c["monitor"], c["window"]
    if m["deployment"]:
        watches = f"deployment {m['deployment']}" + (
            f" (route {m['route']})" if m["route"] else ""
        )
    elif m["dataset"]:
        watches = f"new versions of dataset {m['dataset']}"
    else:
        watches = "its windows"
    ref = c["reference"] or {}
    against = ref.get("uri") or (
        "the training data"
        if (ref.get("kind") or m["reference"]) == "training"
        else m["reference"]
    )
    parts = [f"Watches {watches}" + (f" against {against}" if against else "")]
    if every := _duration(m["window_seconds"]):
        parts.append(f"{every} windows")
    if win is not None:
        parts.append(f"window {when(win['start'])} to {when(win['end'])} UTC")
    return " · ".join(parts)


def _summary_tiles(c: Mapping[str, Any]) -> str:
    s = c["summary"]
    tiles = [("rows", _n(s["rows"]))]
    if c["window"] is not None and c["window"]["status"] not in ("ok", ""):
        tiles.insert(0, ("status", _badge(c["window"]["status"], "warning")))
    if not math.isnan(s["drift_share"]):
        verdict = _badge("dataset drift", "drift") if s["dataset_drift"] else ""
        tiles.append(("drift share", f"{s['drift_share']:.0%} {verdict}"))
    if s["features"]:
        tiles.append(("drifted features", f"{_n(s['drifted_features'])} / {s['features']}"))
    if p := s["prediction_drift"]:
        verdict = _badge("drift", "drift") if p["drifted"] else _badge("ok", "ok")
        tiles.append((f"prediction drift ({p['test']})", f"{_n(p['statistic'], 3)} {verdict}"))
    if perf := s["performance"]:
        tiles.append((f"{perf['metric']} ({_n(perf['labelled'])} labelled)", _n(perf["value"], 3)))
    if not math.isnan(s["latency_p99_ms"]):
        tiles.append(("p99 latency", f"{_n(s['latency_p99_ms'], 3)} ms"))
    n = s["open_alerts"]
    tiles.append(("open alerts", _badge(f"{n} firing", "error") if n else "0"))
    return _tiles(tiles)


def _series(c: Mapping[str, Any], name: str) -> list[float]:
    return [as_float(w["metrics"].get(name)) for w in c["windows"]]


def _rule_marks(c: Mapping[str, Any], metrics: Sequence[str]) -> list[tuple[str, float]]:
    return [
        (f"alert rule {r['name']}", as_float(r["threshold"]))
        for r in c["monitor"]["alert_rules"]
        if r.get("metric") in metrics
    ]


def _drift_section(c: Mapping[str, Any], times: list[int], selected: int | None) -> str:
    marks = _rule_marks(c, ["drift_share"])
    if c["dataset_drift_share"] is not None:
        marks.append(("dataset drift at", as_float(c["dataset_drift_share"])))
    out = line_svg(
        times,
        [("share of drifted features", _series(c, "drift_share"))],
        label="Share of features that drifted, per window",
        percent=True,
        ceiling=1.0,
        marks=marks,
        selected=selected,
    )
    rows = [(f["column"], f["history"]) for f in c["features"]]
    rows += list(c["drift_history"].items())
    if (pred := c["prediction_drift"]) is not None:
        name = pred["column"]
        rows.insert(
            0, ("prediction" if name == "prediction" else f"prediction ({name})", pred["history"])
        )
    if rows:
        which = "most drifted first"
        if len(rows) > MAX_HEAT_ROWS:
            which = f"the {MAX_HEAT_ROWS} most drifted of {len(rows):,}"
        out += (
            "<p class=legend>Drift score per feature and window (1 is the test's threshold; "
            f"{which}; the window shown is outlined):{heat_legend()}</p>"
            + heat_svg(times, rows[:MAX_HEAT_ROWS], selected)
        )
    return out or "<p>No drift results in these windows.</p>"


def _nulls(ref: float, cur: float) -> str:
    if math.isnan(ref) and math.isnan(cur):
        return "-"
    return f"{_share(ref)} → {_share(cur)}"


def _verdict(f: Mapping[str, Any]) -> str:
    return _badge("drift", "drift") if f["drifted"] else _badge("ok", "ok")


def _shown_score(f: Mapping[str, Any]) -> str:
    s = f["score"]
    return "-" if math.isnan(s) else ("≫" if math.isinf(s) else f"{s:.2f}")


def _feature_row(anchor: str | None, f: Mapping[str, Any]) -> str:
    name = _e(f["column"])
    link = name if anchor is None else f'<a href="#{anchor}">{name}</a>'
    cells = [
        link,
        _e(f["kind"]),
        _e(f["test"]),
        _n(f["statistic"]),
        _n(f["p_value"]),
        _n(f["threshold"]),
        _shown_score(f),
        _verdict(f),
        _nulls(f["reference_null_share"], f["current_null_share"]),
    ]
    return _tr(cells, numeric=(3, 4, 5, 6), hot=f["drifted"])


def _card(
    anchor: str, f: Mapping[str, Any], chart: str, selected: int | None, extra: str = ""
) -> str:
    facts = [
        ("test", _e(f["test"])),
        ("statistic", _n(f["statistic"])),
        ("p-value", _n(f["p_value"])),
        ("threshold", _n(f["threshold"])),
        ("score", _shown_score(f)),
        ("values", f"{_n(f['reference_count'])} → {_n(f['current_count'])}"),
        ("nulls", _nulls(f["reference_null_share"], f["current_null_share"])),
    ]
    if extra:
        facts.append(("against", _e(extra)))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    note = f"<p class=sub>{_e(f['note'])}</p>" if f["note"] else ""
    return (
        f'<section class=card id="{anchor}"><div class=head><h3>{_e(f["column"])}</h3>'
        f"{_verdict(f)}</div><dl>{dl}</dl>{note}{spark_svg(f['history'], selected)}{chart}"
        "</section>"
    )


def _overlay(name: str, reference: DatasetProfile | None, current: DatasetProfile | None) -> str:
    if reference is None or current is None or name not in reference or name not in current:
        return ""
    return _overlay_svg(reference[name], current[name])


def _features_section(
    c: Mapping[str, Any],
    reference: DatasetProfile | None,
    current: DatasetProfile | None,
    selected: int | None,
) -> tuple[str, str]:
    """The window's drift table and the per-feature cards."""
    features = c["features"]
    pred = c["prediction_drift"]
    if not features and pred is None:
        return "<p>No drift test ran in this window.</p>", ""
    out, cards = "", []
    if pred is not None:
        head = ["prediction", "kind", "test", "statistic", "p-value", "threshold", "score", "", ""]
        out += _table(head, [_feature_row("prediction", pred)], numeric=(3, 4, 5, 6))
        chart = _overlay(pred["column"], reference, current)
        cards.append(_card("prediction", pred, chart, selected, pred["against"] or ""))
    if features:
        out += (
            "<p class=legend>Features, most drifted first; the score is the statistic on one "
            "scale for every test (1 is the test's threshold).</p>"
        )
        rows = [
            _feature_row(f"f-{i}" if i < MAX_CARDS else None, f) for i, f in enumerate(features)
        ]
        head = [
            "feature",
            "kind",
            "test",
            "statistic",
            "p-value",
            "threshold",
            "score",
            "",
            "nulls",
        ]
        out += _table(head, rows, numeric=(3, 4, 5, 6))
    only = [(n, "only in the reference") for n in c["only_in_reference"]]
    only += [(n, "only in the window") for n in c["only_in_current"]]
    if only:
        out += "<p class=sub>" + "; ".join(f"{_e(n)}: {w}" for n, w in only) + "</p>"
    for i, f in enumerate(features[:MAX_CARDS]):
        chart = _overlay(f["column"], reference, current) if i < MAX_OVERLAYS else ""
        cards.append(_card(f"f-{i}", f, chart, selected))
    legend = ""
    if reference is not None and current is not None:
        legend = (
            "<p class=legend>Share of values per bin in the reference and the window, for the "
            f"most drifted features (up to {MAX_OVERLAYS}):"
            '<i style="background:#9aa7b8"></i>reference<i style="background:#cf222e"></i>'
            "window</p>"
        )
    return out, f"{legend}<div class=grid>{''.join(cards)}</div>"


def _values(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(f"<code>{_e(json.dumps(v, default=str))}</code>" for v in values[:limit])
    return shown + (" …" if len(values) > limit else "")


def _quality_section(c: Mapping[str, Any]) -> str:
    q = c["quality"]
    if q is None:
        return ""
    out = ""
    for key, what in (("missing_columns", "Missing from the window"), ("extra_columns", "New")):
        names = as_list(q.get(key))
        if names:
            out += f"<p>{what}: {_values(names, 50)}</p>"
    findings, clean = [], 0
    for item in as_list(q.get("columns")):
        col = as_map(item)
        unseen = as_list(col.get("unseen"))
        outside = as_float(col.get("out_of_range"))
        nulls = as_float(col.get("null_share")) - as_float(col.get("reference_null_share"))
        if not (unseen or outside > 0 or col.get("null_increase") or nulls > 0.01):
            clean += 1
            continue
        unseen_text = (
            f"{_share(as_float(col.get('unseen_share')), 1)}: {_values(unseen)}" if unseen else ""
        )
        if col.get("unseen_note") and unseen:
            unseen_text += f"<br><span class=sub>{_e(col['unseen_note'])}</span>"
        cells = [
            _e(col.get("column", "")),
            _nulls(as_float(col.get("reference_null_share")), as_float(col.get("null_share"))),
            _n(col.get("out_of_range")) if "out_of_range" in col else "",
            unseen_text,
        ]
        hot = bool(col.get("null_increase")) or outside > 0 or bool(unseen)
        findings.append(_tr(cells, numeric=(2,), hot=hot))
    if findings:
        head = ["column", "nulls", "values out of range", "unseen categories"]
        out += _table(head, findings, numeric=(2,))
    if clean:
        out += f"<p class=sub>{clean:,} other columns: no finding.</p>"
    return out or "<p>No data-quality finding.</p>"


def _performance_section(c: Mapping[str, Any], times: list[int], selected: int | None) -> str:
    out = ""
    present = {k for w in c["windows"] for k in w["metrics"]}
    for group, label in ((BOUNDED, "Model quality"), (ERRORS, "Model error")):
        names = [n for n in group if n in present]
        if names:
            series = [(n, _series(c, n)) for n in names]
            out += line_svg(
                times,
                series,
                label=f"{label} per window",
                floor=None,
                marks=_rule_marks(c, names),
                selected=selected,
            )
    perf = c["performance"]
    if perf is not None:
        metrics = as_map(perf.get("metrics"))
        rows = [_tr([_e(k), _n(as_float(v))], numeric=(1,)) for k, v in metrics.items()]
        out += (
            f"<p class=sub>This window: {_n(perf.get('labelled'))} labelled predictions "
            f"({_e(perf.get('task') or 'task unknown')}).</p>"
            + _table(["metric", "value"], rows, numeric=(1,))
        )
        out += "".join(f"<p class=sub>{_e(n)}</p>" for n in as_list(perf.get("notes")))
    elif out:
        out += "<p class=sub>No labelled predictions in this window yet.</p>"
    return out


def _latency_section(c: Mapping[str, Any], times: list[int], selected: int | None) -> str:
    names = [
        n
        for n in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms")
        if any(n in w["metrics"] for w in c["windows"])
    ]
    out = ""
    if names:
        series = [(n.removeprefix("latency_").removesuffix("_ms"), _series(c, n)) for n in names]
        out = line_svg(
            times,
            series,
            label="Latency per window (ms)",
            marks=_rule_marks(c, names),
            selected=selected,
        )
    lat = c["latency"]
    if lat is not None:
        facts = [("requests", _n(lat.get("served_requests", lat.get("requests"))))]
        facts += [(k, f"{_n(as_float(lat.get(k + '_ms')), 3)} ms") for k in ("p50", "p90", "p99")]
        if "error_rate" in lat:
            facts.append(("error rate (5xx)", _share(as_float(lat["error_rate"]), 1)))
            facts.append(("client errors (4xx)", _share(as_float(lat["client_error_rate"]), 1)))
        out += _tiles(facts)
    return out


def _alerts_section(c: Mapping[str, Any]) -> str:
    if not c["alerts"]:
        return "<p>No alerts.</p>"
    kinds = {"critical": "error", "warning": "warning"}
    rows = []
    for a in c["alerts"]:
        firing = a["state"] == "firing"
        bound = f"{_n(a['value'], 3)} vs {_n(a['threshold'], 3)}" if a["value"] is not None else ""
        rows.append(
            _tr(
                [
                    _badge(a["severity"], kinds.get(a["severity"], "")),
                    f"<code>{_e(a['rule'])}</code>",
                    _badge(a["state"], "drift" if firing else "ok"),
                    when(a["started_at"]),
                    when(a["resolved_at"]),
                    _n(a["occurrences"]),
                    bound,
                    _e(a["message"]),
                ],
                numeric=(5,),
                hot=firing,
            )
        )
    head = ["", "rule", "state", "started", "resolved", "windows", "value", "message"]
    return _table(head, rows, numeric=(5,))


def _windows_section(c: Mapping[str, Any], selected: int | None) -> str:
    present = {k for w in c["windows"] for k in w["metrics"]}
    main = next((n for n in (*MAIN["classification"], *MAIN["regression"]) if n in present), "")
    rows = []
    for i, w in reversed(list(enumerate(c["windows"]))):
        m = w["metrics"]
        share = as_float(m.get("drift_share"))
        cells = [
            when(w["start"]) + (" (shown)" if i == selected else ""),
            _e(w["status"]),
            _n(as_float(m.get("rows"))),
            "-" if math.isnan(share) else f"{share:.0%}",
            _n(as_float(m.get("prediction_drift")), 3),
            _n(as_float(m.get(main)), 3),
            _n(as_float(m.get("latency_p99_ms")), 3),
        ]
        rows.append(_tr(cells, numeric=(2, 3, 4, 5, 6), hot=m.get("dataset_drift") == 1))
    head = [
        "window (UTC)",
        "status",
        "rows",
        "drift",
        "prediction drift",
        main or "performance",
        "p99 ms",
    ]
    return _table(head, rows, numeric=(2, 3, 4, 5, 6))


def monitor_report_html(
    monitor: Monitor,
    results: Sequence[MonitorResult],
    *,
    window: MonitorResult | None = None,
    reference: DatasetProfile | None = None,
    current: DatasetProfile | None = None,
    alerts: Sequence[Alert] = (),
) -> str:
    """An HTML report of a monitor: one window in the context of its time series.

    Args:
        monitor: the monitor.
        results: its results, one per window, in any order (the latest :data:`MAX_WINDOWS`
            are drawn).
        window: the window to detail (default: the latest of ``results``).
        reference: the reference profile, to draw the most drifted features' distributions.
        current: the window's profile (on the reference's edges), likewise.
        alerts: the monitor's alerts, firing and resolved.

    Returns:
        One self-contained HTML document: tiles (rows, drift share, drifted features,
        prediction drift, the main performance metric, p99 latency, open alerts), drift over
        time (the share of drifted features and a heat strip of every feature's drift score per
        window), performance and latency over time, the window's features sorted by drift
        linking to a card per feature, data-quality findings, the alert history and the list
        of windows. Sections without data are left out.
    """
    c = content(monitor, results, window, alerts)
    times = [w["start"] for w in c["windows"]]
    start = c["window"]["start"] if c["window"] is not None else None
    selected = next((i for i, t in enumerate(times) if t == start), None)
    sections: list[tuple[str, str, str]] = []
    if c["notes"]:
        notes = "".join(f"<li>{_e(n)}</li>" for n in c["notes"])
        sections.append(("notes", "Notes", f"<ul class=sub>{notes}</ul>"))
    if times:
        sections.append(("drift", "Drift over time", _drift_section(c, times, selected)))
        if perf := _performance_section(c, times, selected):
            sections.append(("performance", "Performance over time", perf))
        if latency := _latency_section(c, times, selected):
            sections.append(("latency", "Latency over time", latency))
    cards = ""
    if c["window"] is not None:
        table, cards = _features_section(c, reference, current, selected)
        sections.append(("features", "Features in this window", table))
    if quality := _quality_section(c):
        sections.append(("quality", "Data quality in this window", quality))
    sections.append(("alerts", "Alerts", _alerts_section(c)))
    if times:
        more = len(times) < c["windows_total"]
        caption = (
            f"<p class=sub>The latest {len(times)} of {c['windows_total']:,}.</p>" if more else ""
        )
        sections.append(("windows", "Windows", caption + _windows_section(c, selected)))
    if cards:
        sections.append(("cards", "Feature cards", cards))
    nav = " · ".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = _summary_tiles(c) if c["window"] is not None else "<p>No results yet.</p>"
    if c["monitor"]["description"]:
        body = f"<p>{_e(c['monitor']['description'])}</p>" + body
    body += f"<p class=sub>{nav}</p>"
    body += "".join(f"<h2 id={key}>{_e(title)}</h2>{html}" for key, title, html in sections)
    return _page(f"Monitor {monitor.name}", _subtitle(c), body)
