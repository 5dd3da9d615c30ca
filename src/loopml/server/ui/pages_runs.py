"""The projects list, a project's home, the runs table, a run, and runs compared."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from loopml.entities import Run
from loopml.errors import InvalidArgument, InvalidFilter, NotFound
from loopml.server.ui.render import Ctx, page, render

__all__ = ["TEXT_SUFFIXES", "build_runs_router", "parse_columns"]

PAGE_SIZES = (25, 50, 100, 200)
MAX_COLUMNS = 20
MAX_COMPARE = 20
#: Files previewed as text (the content route serves these as text/plain with inline=true).
TEXT_SUFFIXES = (".txt", ".log", ".json", ".yaml", ".yml", ".csv", ".tsv", ".md", ".py")
_SORTABLE_ATTRIBUTES = ("name", "status", "user", "start_time", "end_time")


def parse_columns(text: str | None) -> list[tuple[str, str]]:
    """``params.lr,metrics.auc`` as ``[("params", "lr"), ("metrics", "auc")]``.

    Raises:
        InvalidArgument: a column that is not ``params.KEY`` or ``metrics.KEY``, or too many.
    """
    columns: list[tuple[str, str]] = []
    for raw in (text or "").split(","):
        part = raw.strip()
        if not part:
            continue
        kind, _, key = part.partition(".")
        if kind not in ("params", "metrics", "tags") or not key:
            raise InvalidArgument(
                f"column {part!r} is not params.KEY, metrics.KEY or tags.KEY; write e.g. "
                f"columns=params.lr,metrics.auc"
            )
        if (kind, key) not in columns:
            columns.append((kind, key))
    if len(columns) > MAX_COLUMNS:
        raise InvalidArgument(f"at most {MAX_COLUMNS} columns, got {len(columns)}")
    return columns


def _default_columns(runs: Sequence[Run]) -> list[tuple[str, str]]:
    params = sorted({k for r in runs for k in r.params})[:5]
    metrics = sorted({k for r in runs for k in r.metrics})[:5]
    return [("params", k) for k in params] + [("metrics", k) for k in metrics]


def _order_field(kind: str, key: str) -> str:
    if kind == "attr":
        return key
    return f"{kind}.`{key}`" if "`" not in key else f'{kind}."{key}"'


def _cell(run: Run, kind: str, key: str) -> Any:
    if kind == "params":
        return run.params.get(key, "")
    if kind == "metrics":
        return run.metrics.get(key)
    return run.tags.get(key, "")


def _run_ids(values: Sequence[str]) -> list[str]:
    ids: list[str] = []
    for value in values:
        for raw in value.split(","):
            part = raw.strip()
            if part and part not in ids:
                ids.append(part)
    if not ids:
        raise InvalidArgument("choose runs to compare: ?runs=RUN_ID,RUN_ID")
    if len(ids) > MAX_COMPARE:
        raise InvalidArgument(f"compare at most {MAX_COMPARE} runs at once, got {len(ids)}")
    return ids


def build_runs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    @page
    def projects(request: Request) -> Response:
        ctx = Ctx(request)
        readable = ctx.gate.readable_projects(ctx.principal)
        found = [
            p for p in ctx.store.list_projects() if readable is None or p.project_id in readable
        ]
        return render(ctx, "projects.html", projects=found)

    @router.get("/projects/{project}")
    @page
    def project_home(request: Request, project: str) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        recent = ctx.store.search_runs([proj.project_id], max_results=10)
        return render(ctx, "project.html", project=proj, runs=recent.items)

    @router.get("/projects/{project}/runs")
    @page
    def runs(
        request: Request,
        project: str,
        filter: Annotated[str, Query(max_length=4000)] = "",
        order: Annotated[str, Query(max_length=500)] = "",
        columns: Annotated[str | None, Query(max_length=4000)] = None,
        page_token: Annotated[str | None, Query(max_length=500)] = None,
        size: int = 50,
    ) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        if size not in PAGE_SIZES:
            raise InvalidArgument(f"size must be one of {PAGE_SIZES}, got {size}")
        chosen = parse_columns(columns) if columns is not None else None
        error = ""
        try:
            found = ctx.store.search_runs(
                [proj.project_id],
                filter=filter or None,
                order_by=[order] if order else None,
                max_results=size,
                page_token=page_token or None,
            )
            items, next_token = found.items, found.next_page_token
        except (InvalidFilter, InvalidArgument) as exc:
            error, items, next_token = str(exc), (), None
        cols = chosen if chosen is not None else _default_columns(items)
        sort_field, _, sort_dir = order.strip().partition(" ")
        headers = [(k, key, _order_field(k, key)) for k, key in cols]
        return render(
            ctx,
            "runs.html",
            400 if error else 200,
            project=proj,
            runs=items,
            headers=headers,
            attributes=_SORTABLE_ATTRIBUTES,
            cell=_cell,
            filter=filter,
            order=order,
            sort_field=sort_field,
            sort_desc=sort_dir.strip().lower() == "desc",
            columns=",".join(f"{k}.{key}" for k, key in cols),
            columns_given=columns,
            next_token=next_token,
            page_token=page_token,
            size=size,
            sizes=PAGE_SIZES,
            error=error,
        )

    @router.get("/runs/{run_id}")
    @page
    def run_page(request: Request, run_id: str) -> Response:
        ctx = Ctx(request)
        store = ctx.store
        run = store.get_run(run_id)
        ctx.check("read", run.project_id)
        proj = store.get_project(run.project_id)
        environment = None
        if run.environment_id:
            try:
                environment = store.get_environment(run.environment_id)
            except NotFound:
                environment = None
        parent = None
        if run.parent_run_id:
            try:
                parent = store.get_run(run.parent_run_id)
            except NotFound:
                parent = None
        return render(
            ctx,
            "run.html",
            project=proj,
            run=run,
            parent=parent,
            environment=environment,
            artifacts=store.list_artifacts(run.run_id),
            text_suffixes=TEXT_SUFFIXES,
            inputs=store.get_run_inputs(run.run_id),
            models=store.list_model_versions(run.project_id, run_id=run.run_id),
        )

    @router.get("/projects/{project}/compare")
    @page
    def compare(
        request: Request,
        project: str,
        runs: Annotated[list[str], Query()] = [],  # noqa: B006
    ) -> Response:
        ctx = Ctx(request)
        proj = ctx.project(project)
        ids = _run_ids(runs)
        found: list[Run] = []
        for run_id in ids:  # at most MAX_COMPARE
            run = ctx.store.get_run(run_id)
            if run.project_id != proj.project_id:
                raise InvalidArgument(
                    f"run {run_id!r} is not in project {proj.name!r}; compare runs of one project"
                )
            found.append(run)
        param_keys = sorted({k for r in found for k in r.params})
        metric_keys = sorted({k for r in found for k in r.metrics})
        differing = [k for k in param_keys if len({r.params.get(k) for r in found}) > 1]
        same = [k for k in param_keys if k not in differing]
        data: dict[str, Any] = {
            "runs": [
                {
                    "id": r.run_id,
                    "name": r.name,
                    "params": dict(r.params),
                    "metrics": {k: v for k, v in r.metrics.items() if v == v},  # no NaN in JSON
                }
                for r in found
            ],
            "metric_keys": metric_keys,
            "param_keys": param_keys,
        }
        return render(
            ctx,
            "compare.html",
            project=proj,
            runs=found,
            differing=differing,
            same=same,
            metric_keys=metric_keys,
            data=data,
        )

    return router
