"""Plots of a study, as plotly figures: the optimisation history, parameter importances,
parallel coordinates and intermediate values (Optuna's own plots, on loopml's data).

plotly is the optional extra ``loopml[plots]``; without it each function raises
:class:`~loopml.errors.MissingExtra` naming it.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidArgument

if TYPE_CHECKING:
    import optuna
    from optuna.importance import BaseImportanceEvaluator

__all__ = ["KINDS", "figure", "html_page"]

#: The plots there are, by name.
KINDS = ("history", "importance", "parallel", "intermediate")


def _require() -> Any:
    from loopml._lazy import require

    require("plotly", "plots", "Tuning plots")
    import optuna.visualization as vis

    return vis


def figure(
    study: optuna.Study,
    kind: str,
    *,
    metric: str = "value",
    evaluator: str | BaseImportanceEvaluator | None = None,
    params: list[str] | None = None,
) -> Any:
    """One plotly figure of ``study``.

    Args:
        kind: ``history`` (value per trial and best so far), ``importance``, ``parallel``
            (parallel coordinates of params and value) or ``intermediate`` (reported values
            per step, per trial).
        metric: the name the value axis gets.
        evaluator: the importance evaluator (see :func:`loopml.tuning.importance.evaluator`).
        params: only these params (importance and parallel coordinates).

    Raises:
        MissingExtra: plotly is not installed.
        InvalidArgument: an unknown kind, or too few completed trials for importances.
    """
    if kind not in KINDS:
        raise InvalidArgument(f"unknown plot {kind!r}; use one of {', '.join(KINDS)}")
    vis = _require()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna warns about experimental plot options
        if kind == "history":
            fig = vis.plot_optimization_history(study, target_name=metric)
        elif kind == "importance":
            from loopml.tuning.importance import evaluator as make_evaluator
            from loopml.tuning.importance import require_completed

            require_completed(study)
            fig = vis.plot_param_importances(
                study, evaluator=make_evaluator(evaluator), params=params, target_name=metric
            )
        elif kind == "parallel":
            fig = vis.plot_parallel_coordinate(study, params=params, target_name=metric)
        else:
            fig = vis.plot_intermediate_values(study)
    fig.update_layout(title=f"{study.study_name}: {fig.layout.title.text or kind}")
    return fig


def html_page(figures: Sequence[Any], title: str, *, inline_js: bool = True) -> str:
    """One HTML page with the figures, plotly.js included once (inline, so the page works
    offline, or from the CDN with ``inline_js=False``)."""
    parts = []
    for i, fig in enumerate(figures):
        include: bool | str = (inline_js if i == 0 else False) or ("cdn" if i == 0 else False)
        parts.append(fig.to_html(full_html=False, include_plotlyjs=include))
    body = "\n".join(f"<section>{p}</section>" for p in parts)
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
