"""Schedules: pipelines run on cron expressions by ``loopml scheduler``.

The scheduler keeps no state of its own: a pipeline's last scheduled run is found in the store
(its runs tagged ``loopml.trigger = schedule``), so a restarted scheduler neither repeats a run
nor loses one. Runs missed while no scheduler was up are caught up as one run, not one per
missed tick.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.pipelines.pipeline import Pipeline
    from loopml.pipelines.result import PipelineResult

__all__ = [
    "Scheduled",
    "check_cron",
    "due",
    "load_pipeline",
    "recorded_ref",
    "run_due",
    "scheduler_loop",
]

TICK_TAG = "loopml.schedule_tick"
"""The tick (epoch ms) a scheduled run was for: the next one is computed from it."""


def check_cron(expression: str) -> str:
    """``expression`` if it is a valid cron expression (5 fields, or 6 with seconds).

    Raises:
        InvalidArgument: it is not, with croniter's reason.
    """
    from croniter import croniter  # type: ignore[import-untyped]

    if not isinstance(expression, str) or not croniter.is_valid(expression):
        raise InvalidArgument(
            f"{expression!r} is not a cron expression; write five fields, minute hour "
            "day-of-month month day-of-week, e.g. '0 3 * * *' for 03:00 every day"
        )
    return expression


def load_pipeline(ref: str) -> Pipeline:
    """The pipeline at ``module:attr`` (or ``path/to/file.py:attr``).

    Raises:
        InvalidArgument: the module or attribute is missing, or it is not a pipeline.
    """
    from loopml.pipelines.pipeline import Pipeline

    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidArgument(
            f"{ref!r} does not name a pipeline; write module:attribute (training:pipeline) or "
            "path/to/file.py:attribute"
        )
    try:
        if module_name.endswith(".py"):
            from pathlib import Path

            path = Path(module_name).resolve()
            if not path.is_file():
                raise InvalidArgument(f"pipeline file {module_name!r} does not exist")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules.setdefault(path.stem, module)
            sys.path.insert(0, str(path.parent))
            spec.loader.exec_module(module)
        elif module_name == "__main__":
            module = sys.modules["__main__"]
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(
            f"cannot import {module_name!r} for pipeline {ref!r}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise InvalidArgument(f"{module_name!r} has no attribute {attr!r}")
    if not isinstance(obj, Pipeline):
        raise InvalidArgument(
            f"{ref!r} is a {type(obj).__name__}, not a pipeline; decorate it with @loopml.pipeline"
        )
    return obj


def recorded_ref(record: Mapping[str, Any]) -> str:
    """How to load the pipeline a run's ``pipeline.json`` records: by module when it imports
    here, else by the file it was defined in."""
    ref = str(record.get("ref", ""))
    module, _, attr = ref.partition(":")
    try:
        found = (
            hasattr(sys.modules["__main__"], attr.split(".")[0])
            if module == "__main__"  # a script's or notebook's pipeline, in that same process
            else importlib.util.find_spec(module) is not None
        )
    except (ImportError, ValueError):
        found = False
    path = record.get("file")
    return ref if found or not path else f"{path}:{attr}"


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A pipeline on a schedule, with the parameters its runs get."""

    pipeline: Pipeline
    cron: str
    params: dict[str, Any]


def _last_scheduled(client: Client, s: Scheduled, project: str) -> int | None:
    from loopml.errors import ProjectNotFound
    from loopml.pipelines.runner import TAG

    try:
        page = client.search_runs(
            project,
            f"tags.`{TAG.PIPELINE}` = '{s.pipeline.name}' and tags.`{TAG.TRIGGER}` = 'schedule' "
            f"and tags.`{TAG.KIND}` = 'pipeline'",
            order_by="start_time desc",
            max_results=1,
        )
    except ProjectNotFound:
        return None
    if not page.items:
        return None
    run = page.items[0]
    try:
        return int(run.tags[TICK_TAG])
    except (KeyError, ValueError):
        return run.start_time


def due(client: Client, s: Scheduled, project: str, now: dt.datetime) -> dt.datetime | None:
    """The tick ``s`` is due for at ``now`` (None when it is not due).

    The first time (no scheduled run yet) the schedule starts now: it is due at its next tick.
    """
    from croniter import croniter

    last_ms = _last_scheduled(client, s, project)
    if last_ms is None:
        return None
    base = dt.datetime.fromtimestamp(last_ms / 1000, tz=dt.UTC)
    tick: dt.datetime = croniter(s.cron, base).get_next(dt.datetime)
    if tick > now:
        return None
    # the latest tick that has come: missed ones are caught up by this one run
    latest: dt.datetime = croniter(s.cron, now + dt.timedelta(microseconds=1)).get_prev(
        dt.datetime
    )
    return max(tick, latest)


def run_due(
    client: Client,
    schedules: Sequence[Scheduled],
    *,
    now: dt.datetime | None = None,
    executor: str = "local",
    first_run: bool = False,
    started: dt.datetime | None = None,
    quiet: bool = False,
) -> list[PipelineResult]:
    """Run each scheduled pipeline that is due, once; returns their results (failed ones too).

    A pipeline with no scheduled run yet is due at its first tick after ``started`` (or at
    once with ``first_run``).
    """
    from croniter import croniter

    from loopml.pipelines.pipeline import _current_project
    from loopml.pipelines.runner import TAG

    now = now or dt.datetime.now(dt.UTC)
    started = started or now
    results = []
    for s in schedules:
        project = s.pipeline.project or _current_project(client)
        tick = due(client, s, project, now)
        if tick is None and _last_scheduled(client, s, project) is None:
            first: dt.datetime = croniter(s.cron, started).get_next(dt.datetime)
            tick = now if first_run or first <= now else None
        if tick is None:
            continue
        results.append(
            s.pipeline.run(
                client=client,
                executor=executor,
                tags={
                    TAG.TRIGGER: "schedule",
                    "loopml.schedule": s.cron,
                    TICK_TAG: str(int(tick.timestamp() * 1000)),
                },
                quiet=quiet,
                raise_on_failure=False,
                **s.params,
            )
        )
    return results


def scheduler_loop(
    client: Client,
    schedules: Sequence[Scheduled],
    *,
    interval: float = 10.0,
    executor: str = "local",
    first_run: bool = False,
    stop: Callable[[], bool] = lambda: False,
    on_result: Callable[[PipelineResult], None] | None = None,
) -> None:
    """Check the schedules every ``interval`` seconds and run what is due, until ``stop()``."""
    started = dt.datetime.now(dt.UTC)
    while not stop():
        for result in run_due(
            client, schedules, executor=executor, first_run=first_run, started=started
        ):
            if on_result is not None:
                on_result(result)
        first_run = False
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))
