"""Where an evaluation is recorded: which run, what is logged to it, which model version it
links to.

``run=True`` logs to the active run of this context (``with loopml.start_run():``), or to a new
run named ``evaluation`` that ends with the evaluation (failed if it raises); a run id logs to
that run and leaves it open; ``False`` logs nothing.

On the run: metrics ``eval/<metric>``, ``eval/slice/<column>:<value>/<metric>`` (and
``.../num_rows``) and ``eval/performance/<measure>``; the plots under ``evaluation/plots/``;
the whole result as ``evaluation/result.json``; the data set as an input in the role
``evaluation``; and, for a ``models:/`` version, the tags ``loopml.model_name`` and
``loopml.model_version`` (and the run id on the version, when the registry supports version
tags).

Metric names use ``:`` between a slice column and its value because the store's keys allow
letters, digits, ``_ - . / :`` and spaces only; values are made safe the same way.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.client import context
from loopml.entities import RunStatus
from loopml.errors import InvalidArgument, LoopError
from loopml.models.evaluation.slices import safe_key
from loopml.store.validation import check_run_id

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loopml.client import Client
    from loopml.entities import DatasetVersion
    from loopml.models.evaluation.result import EvaluationResult
    from loopml.models.evaluation.slices import Slice

__all__ = [
    "ERROR_TAG",
    "MODEL_NAME_TAG",
    "MODEL_VERSION_TAG",
    "PLOTS_PATH",
    "RESULT_PATH",
    "RUN_TYPE_TAG",
    "ModelVersionRef",
    "evaluation_run",
    "link_model_version",
    "log_figures",
    "log_result",
    "parse_model_version",
]

log = logging.getLogger("loopml")

RESULT_PATH = "evaluation/result.json"
PLOTS_PATH = "evaluation/plots"
RUN_NAME = "evaluation"
RUN_TYPE_TAG = "loopml.run_type"
ERROR_TAG = "loopml.error"
MODEL_NAME_TAG = "loopml.model_name"
MODEL_VERSION_TAG = "loopml.model_version"
VERSION_RUN_TAG = "loopml.evaluation_run_id"
_MODEL_URI = re.compile(
    r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+|latest)|@(?P<alias>[\w\-.]+))$"
)


@dataclass(frozen=True)
class ModelVersionRef:
    """A ``models:/name/3``, ``models:/name@alias`` or ``models:/name/latest`` reference
    (``version`` is None for the last two until the registry resolves them)."""

    uri: str
    name: str
    version: int | None
    alias: str | None


def parse_model_version(uri: str) -> ModelVersionRef:
    """Parse a model version URI.

    Raises:
        InvalidArgument: not ``models:/<name>/<version>``, ``models:/<name>@<alias>`` or
            ``models:/<name>/latest``.
    """
    match = _MODEL_URI.match(uri) if isinstance(uri, str) else None
    if match is None:
        raise InvalidArgument(
            "model_version must look like 'models:/churn/3', 'models:/churn@champion' or "
            f"'models:/churn/latest', not {uri!r}"
        )
    version = match["version"]
    number = int(version) if version is not None and version.isdigit() else None
    return ModelVersionRef(uri, match["name"], number, match["alias"])


@contextmanager
def evaluation_run(
    run: bool | str,
    *,
    client: Client | None,
    project: str | None,
    tags: Mapping[str, str],
) -> Iterator[tuple[Client | None, str | None]]:
    """The client and run to log to (``(None, None)`` for ``run=False``).

    A run created here ends when the block does: finished, or failed with the error as the
    ``loopml.error`` tag. The active run is used only with the default client (or the one the
    fluent API uses), as it lives in that client's store.

    Raises:
        InvalidArgument: ``run`` is neither a bool nor a run id.
        RunNotFound: ``run`` is the id of no run.
    """
    if run is False:
        yield None, None
        return
    if isinstance(run, str):
        check_run_id(run)
        c = client or context.get_client()
        c.store.get_run(run)
        yield c, run
        return
    if run is not True:
        raise InvalidArgument(
            f"run must be True (the active run, or a new one), False (no logging) or a run id, "
            f"not {run!r}"
        )
    active = context.active_run_id()
    if active is not None and (client is None or client is context.peek_client()):
        yield client or context.get_client(), active
        return
    c = client or context.get_client()
    created = c.create_run(
        project or context.get_project(),
        name=RUN_NAME,
        tags={RUN_TYPE_TAG: "evaluation", **tags},
    )
    try:
        yield c, created.run_id
    except BaseException as exc:
        try:
            text = "".join(traceback.format_exception_only(exc)).strip()
            c.set_tag(created.run_id, ERROR_TAG, text[:8000])
        finally:
            c.end_run(created.run_id, RunStatus.FAILED)
        raise
    c.end_run(created.run_id, RunStatus.FINISHED)


def metric_points(result: EvaluationResult, slices: list[Slice]) -> dict[str, float]:
    """Every number of the result, by the metric name it is logged under."""
    points = {f"eval/{k}": float(v) for k, v in result.metrics.items()}
    points["eval/num_rows"] = float(result.num_rows)
    keys = {(s.column, s.label): s.key for s in slices}
    for column, groups in result.slices.items():
        for label, s in groups.items():
            prefix = f"eval/slice/{safe_key(column)}:{keys[(column, label)]}"
            points[f"{prefix}/num_rows"] = float(s["num_rows"])
            points.update({f"{prefix}/{k}": float(v) for k, v in s["metrics"].items()})
    for key, value in result.performance.items():
        if isinstance(value, (int, float)):
            points[f"eval/performance/{key}"] = float(value)
    return points


def log_figures(client: Client, run_id: str, figures: Mapping[str, Figure]) -> dict[str, str]:
    """Save figures as PNG artifacts; returns plot name -> artifact path."""
    paths = {}
    for file_name, figure in figures.items():
        path = f"{PLOTS_PATH}/{file_name}"
        client.log_figure(run_id, figure, path)
        paths[file_name.rsplit(".", 1)[0]] = path
    return paths


def log_result(
    client: Client,
    run_id: str,
    result: EvaluationResult,
    slices: list[Slice],
    dataset: DatasetVersion | None,
) -> None:
    """Log the metrics, the data set as an input, and ``evaluation/result.json``."""
    client.log_metrics(run_id, metric_points(result, slices))
    if dataset is not None:
        client.log_inputs(run_id, [(dataset, "evaluation")])
    client.log_dict(run_id, result.to_dict(), RESULT_PATH)
    client.flush(run_id)


def link_model_version(
    client: Client, run_id: str, ref: ModelVersionRef, project: str | None = None
) -> None:
    """Tag the run with the model version and, where the registry can, the version with the run.

    An alias is resolved to its version with ``client.resolve_model_uri`` when the client has
    it; otherwise the tag records ``@alias``. Noting the run on the version (a version tag,
    through ``set_model_version_tag`` or ``update_model_version``) is a courtesy: when the
    registry refuses, a warning says why and the run's tags still hold the link.
    """
    version: int | None = ref.version
    where = {} if project is None else {"project": project}
    if version is None and hasattr(client, "resolve_model_uri"):
        try:
            version = _version_of(client.resolve_model_uri(ref.uri, **where))
        except LoopError as exc:
            log.warning("loopml: could not resolve %s: %s", ref.uri, exc)
    shown = str(version) if version is not None else f"@{ref.alias}" if ref.alias else "latest"
    client.set_tags(run_id, {MODEL_NAME_TAG: ref.name, MODEL_VERSION_TAG: shown})
    if version is None:
        return
    try:
        if hasattr(client, "set_model_version_tag"):
            client.set_model_version_tag(ref.name, version, VERSION_RUN_TAG, run_id, **where)
        elif hasattr(client, "update_model_version"):
            client.update_model_version(ref.name, version, tags={VERSION_RUN_TAG: run_id}, **where)
    except LoopError as exc:
        log.warning("loopml: could not note evaluation run %s on %s: %s", run_id, ref.uri, exc)


def _version_of(resolved: Any) -> int | None:
    """The version number in what ``resolve_model_uri`` returned (a URI or a version)."""
    if isinstance(resolved, str):
        try:
            return parse_model_version(resolved).version
        except InvalidArgument:
            return None
    number = getattr(resolved, "version", None)
    return int(number) if isinstance(number, (int, str)) and str(number).isdigit() else None
