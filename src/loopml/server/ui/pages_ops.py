"""Deployments (routes, requests and errors, rows served, latency), monitoring (results,
alerts), pipelines (the step graph of a pipeline run) and the audit log."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from loopml.entities import Run
from loopml.errors import InvalidArgument, NotFound
from loopml.pipelines.runner import TAG
from loopml.server.ui.render import Ctx, page, render

__all__ = ["build_ops_router", "layers"]

MAX_SEGMENTS = 2000
#: The traffic windows a deployment page reads (the latest; a day of minutes on 3 processes).
MAX_TRAFFIC = 5000
MAX_RESULTS = 500
MAX_STEPS = 500
AUDIT_PAGE = 200


def layers(steps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Step names by depth: a step sits one layer right of its deepest upstream step."""
    depth: dict[str, int] = {}

    def visit(name: str, seen: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        if name in seen:  # a cycle cannot come from the runner; draw it flat rather than loop
            return 0
        ups = [u for u in steps.get(name, ()) if u in steps]
        level = 1 + max((visit(u, seen | {name}) for u in ups), default=-1)
        depth[name] = level
        return level

    for name in steps:
        visit(name, frozenset())
    out: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for name in sorted(steps):
        out[depth[name]].append(name)
    return [layer for layer in out if layer]


def _since(text: str) -> int | None:
    if not text:
        return None
    try:
        day = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgument(f"since must be a date like 2026-01-31, got {text!r}") from exc
    if day.tzinfo is None:
        day = day.replace(tzinfo=dt.UTC)
    return int(day.timestamp() * 1000)


_log = logging.getLogger("loopml.server")

#: Latency percentiles are read from the prediction log itself: its latest segments only.
LATENCY_SEGMENTS = 30


def _latency_chart(artifacts: Any, segments: Sequence[Any]) -> dict[str, Any] | None:
    """p50, p95 and p99 latency per prediction-log segment and route (from the segments'
    ``latency_ms`` column), or None when no segment can be read."""
    import io

    import numpy as np
    import pyarrow.parquet as pq

    series: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"x": [], "y": []})
    for seg in segments:
        try:
            data = artifacts.read(seg.uri.removeprefix("sha256:"))
            table = pq.ParquetFile(io.BytesIO(data)).read(columns=["route", "latency_ms"])
        except Exception as exc:  # a missing or unreadable segment leaves a gap in the chart
            _log.warning("segment %s has no readable latency: %s", seg.id, exc)
            continue
        routes = table.column("route").combine_chunks().dictionary_encode()
        codes = routes.indices.to_numpy(zero_copy_only=False)
        latency = table.column("latency_ms").to_numpy(zero_copy_only=False)
        for code, route in sorted(enumerate(routes.dictionary.to_pylist()), key=lambda x: x[1]):
            values = latency[codes == code]
            if not len(values):
                continue
            for q, value in zip((50, 95, 99), np.percentile(values, (50, 95, 99)), strict=True):
                key = f"{route} p{q}"
                series[key]["x"].append(seg.start_time)
                series[key]["y"].append(round(float(value), 3))
    if not series:
        return None
    return {
        "title": "latency per segment, ms (p50, p95, p99 by route)",
        "kind": "line",
        "time": True,
        "series": [{"name": k, **xy} for k, xy in sorted(series.items())],
    }


def _route_label(route: str) -> str:
    return route or "(refused)"


def traffic_view(windows: Sequence[Any]) -> dict[str, Any] | None:
    """The requests and errors of a deployment from its traffic windows: a stacked bar chart
    of requests per window by route, a chart of the error rates (5xx, and 4xx where there
    were any) per window and route, in %, and the totals per route; None without windows."""
    from loopml.serving.traffic import merge_windows

    totals = merge_windows(windows)
    if not totals:
        return None
    requests: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"x": [], "y": []})
    rates: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"x": [], "y": []})
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for t in totals:
        label = _route_label(t.route)
        requests[label]["x"].append(t.window_start)
        requests[label]["y"].append(t.requests)
        s = sums[label]
        s[0], s[1], s[2] = s[0] + t.requests, s[1] + t.client_errors, s[2] + t.server_errors
    with_4xx = {label for label, s in sums.items() if s[1]}
    for t in totals:
        if not t.requests:
            continue
        label = _route_label(t.route)
        rates[f"{label} 5xx"]["x"].append(t.window_start)
        rates[f"{label} 5xx"]["y"].append(round(100 * t.server_errors / t.requests, 3))
        if label in with_4xx:
            rates[f"{label} 4xx"]["x"].append(t.window_start)
            rates[f"{label} 4xx"]["y"].append(round(100 * t.client_errors / t.requests, 3))
    seconds = sorted({t.window_seconds for t in totals})
    per = " or ".join(f"{s} s" for s in seconds)
    return {
        "requests": {
            "title": f"requests per window ({per}), by route",
            "kind": "bar",
            "time": True,
            "series": [{"name": k, **xy} for k, xy in sorted(requests.items())],
        },
        "errors": {
            "title": "errors, % of requests (5xx server, 4xx client) by route",
            "kind": "line",
            "time": True,
            "series": [{"name": k, **xy} for k, xy in sorted(rates.items())],
        },
        "totals": [
            {
                "route": label,
                "requests": s[0],
                "client_errors": s[1],
                "server_errors": s[2],
                "error_rate": s[2] / s[0] if s[0] else 0.0,
            }
            for label, s in sorted(sums.items())
        ],
        "since": totals[0].window_start,
    }


def build_ops_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/projects/{project}/deployments")
    @page
    def deployments(request: Request, project: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        found = ctx.store.list_deployments(proj.project_id)
        return render(ctx, "deployments.html", project=proj, deployments=found)

    @router.get("/projects/{project}/deployments/{name}")
    @page
    def deployment(
        request: Request,
        project: str,
        name: str,
        refresh: Annotated[int, Query(ge=1, le=3600)] = 15,
    ) -> Response:
        """A deployment; its charts and tables refresh every ``refresh`` seconds."""
        ctx = Ctx(request)
        proj = ctx.project(project)
        found = ctx.store.get_deployment(proj.project_id, name)
        segments = ctx.store.list_prediction_segments(proj.project_id, name)[-MAX_SEGMENTS:]
        by_route: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"x": [], "y": []})
        for seg in segments:
            for route in seg.routes or ("(all)",):
                by_route[route]["x"].append(seg.start_time)
                by_route[route]["y"].append(seg.rows / max(1, len(seg.routes)))
        chart = {
            "title": "rows served per segment, by route",
            "kind": "bar",
            "time": True,
            "series": [{"name": r, **xy} for r, xy in sorted(by_route.items())],
        }
        total = sum(r.weight for r in found.routes) or 1.0
        latency = _latency_chart(ctx.artifacts, segments[-LATENCY_SEGMENTS:])
        windows = ctx.store.list_traffic_windows(proj.project_id, name, limit=MAX_TRAFFIC)
        return render(
            ctx,
            "deployment.html",
            project=proj,
            deployment=found,
            shares={r.name: r.weight / total for r in found.routes},
            segments=segments[-50:][::-1],
            segment_count=len(segments),
            chart=chart if segments else None,
            latency=latency,
            traffic=traffic_view(windows),
            refresh=refresh,
        )

    @router.get("/projects/{project}/monitoring")
    @page
    def monitoring(request: Request, project: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        return render(
            ctx,
            "monitoring.html",
            project=proj,
            monitors=ctx.store.list_monitors(proj.project_id),
            alerts=ctx.store.list_alerts(proj.project_id, limit=100),
        )

    @router.get("/projects/{project}/monitoring/{name}")
    @page
    def monitor(request: Request, project: str, name: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        found = ctx.store.get_monitor(proj.project_id, name)
        results = ctx.store.list_monitor_results(proj.project_id, name, limit=MAX_RESULTS)
        series: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"x": [], "y": []})
        for result in results:
            for key, value in result.metrics.items():
                if value == value:  # NaN breaks JSON
                    series[key]["x"].append(result.window_end)
                    series[key]["y"].append(value)
        charts = [
            {"title": key, "kind": "line", "time": True, "series": [{"name": key, **xy}]}
            for key, xy in sorted(series.items())[:60]
        ]
        return render(
            ctx,
            "monitor.html",
            project=proj,
            monitor=found,
            results=results[::-1][:50],
            charts=charts,
            alerts=ctx.store.list_alerts(proj.project_id, monitor=name, limit=100),
        )

    @router.get("/projects/{project}/pipelines")
    @page
    def pipelines(request: Request, project: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        found = ctx.store.search_runs(
            [proj.project_id], filter=f"tags.`{TAG.KIND}` = 'pipeline'", max_results=100
        )
        return render(ctx, "pipelines.html", project=proj, runs=found.items, TAG=TAG)

    @router.get("/projects/{project}/pipelines/{run_id}")
    @page
    def pipeline(request: Request, project: str, run_id: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        run: Run = ctx.store.get_run(run_id)
        if run.project_id != proj.project_id or run.tags.get(TAG.KIND) != "pipeline":
            raise NotFound(f"run {run_id!r} is not a pipeline run of project {proj.name!r}")
        children = ctx.store.search_runs(
            [proj.project_id],
            filter=f"parent_run_id = '{run.run_id}'",
            order_by=["start_time asc"],
            max_results=MAX_STEPS,
        ).items
        steps: dict[str, Run] = {}
        for child in children:  # a retried or re-run step: the latest attempt wins
            step = child.tags.get(TAG.STEP)
            if step:
                steps[step] = child
        graph = {
            name: [u for u in r.tags.get(TAG.UPSTREAM, "").split(",") if u]
            for name, r in steps.items()
        }
        return render(
            ctx,
            "pipeline.html",
            project=proj,
            run=run,
            layers=layers(graph),
            steps=steps,
            graph=graph,
            TAG=TAG,
        )

    @router.get("/projects/{project}/audit")
    @page
    def audit(
        request: Request,
        project: str,
        object_type: Annotated[str, Query(max_length=64)] = "",
        action: Annotated[str, Query(max_length=64)] = "",
        since: Annotated[str, Query(max_length=40)] = "",
    ) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        events = ctx.store.search_audit_events(
            proj.project_id,
            object_type=object_type or None,
            action=action or None,
            since=_since(since),
            max_results=AUDIT_PAGE,
        )
        return render(
            ctx,
            "audit.html",
            project=proj,
            events=events,
            object_type=object_type,
            action=action,
            since=since,
            limit=AUDIT_PAGE,
        )

    return router
