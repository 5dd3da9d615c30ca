"""The JSON the pages' scripts fetch (metric series, downsampled) and the static files."""

from __future__ import annotations

import importlib.resources
import math
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse, Response

from loopml.errors import InvalidArgument, LoopError, NotFound
from loopml.server.api import error_response
from loopml.server.ui.downsample import minmax_downsample
from loopml.server.ui.render import Ctx

__all__ = ["MAX_POINTS", "build_data_router"]

MAX_POINTS = 5000
_STATIC = Path(__file__).parent / "static"
_STATIC_FILES = {"ui.css": "text/css", "ui.js": "text/javascript"}
_LONG_CACHE = {"Cache-Control": "public, max-age=31536000, immutable"}
_SHORT_CACHE = {"Cache-Control": "public, max-age=300"}


def _plotly_path() -> Path:
    return Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))


def _json(value: object) -> Response:
    return Response(
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def build_data_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/ui/api/runs/{run_id}/metric")
    def metric(
        request: Request,
        run_id: str,
        key: Annotated[str, Query(max_length=500)],
        points: int = 2000,
    ) -> Response:
        """One metric's history, at most ``points`` points (min and max per bucket)."""
        try:
            if not 2 <= points <= MAX_POINTS:
                raise InvalidArgument(f"points must be 2..{MAX_POINTS}, got {points}")
            ctx = Ctx(request)
            project_id = request.app.state.resolver.run(run_id)
            ctx.check("read", project_id)
            history = ctx.store.get_metric_history(run_id, key)
        except LoopError as exc:
            return error_response(exc)
        steps, values = minmax_downsample(history.steps, history.values.astype(float), points)
        finite = [v if math.isfinite(v) else None for v in values.tolist()]
        return _json(
            {"key": key, "total": len(history.values), "steps": steps.tolist(), "values": finite}
        )

    @router.get("/static/plotly.min.js")
    def plotly_js() -> Response:
        return FileResponse(_plotly_path(), media_type="text/javascript", headers=_LONG_CACHE)

    @router.get("/static/ui/{name}")
    def static(name: str) -> Response:
        media_type = _STATIC_FILES.get(name)
        if media_type is None:  # a fixed list: no path from the URL reaches the file system
            return error_response(NotFound(f"no static file {name!r}"))
        return FileResponse(_STATIC / name, media_type=media_type, headers=_SHORT_CACHE)

    return router
