"""``loopml models evaluate|compare``: score a model on labelled data (overall, per slice, with
its latency and size), and compare two models on the same rows, with bootstrap intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.models._common import (
    JsonOption,
    ProjectOption,
    TrustedOption,
    app,
    open_registry,
)

if TYPE_CHECKING:
    import pandas as pd

    from loopml.models.evaluation.result import EvaluationResult
    from loopml.models.promotion import Comparison

__all__ = ["compare", "evaluate_cmd"]

_STORE_SCHEMES = ("models:", "runs:", "datasets:")

DataOption = Annotated[
    str,
    typer.Option(
        "--data",
        metavar="URI_OR_PATH",
        help="Labelled data: a logged version (datasets:/NAME/VERSION) or a CSV, TSV, Parquet "
        "or JSON-lines file.",
    ),
]
TargetOption = Annotated[
    str, typer.Option("--target", metavar="COL", help="The column holding the true labels.")
]
TaskOption = Annotated[
    str | None,
    typer.Option(
        "--task",
        metavar="TASK",
        help="classification or regression [default: inferred from the model and the target].",
    ),
]


def _model(text: str) -> str:
    """A model reference as given, checked: a models:/ or runs:/ URI, or a local folder or
    archive that exists."""
    from loopml.errors import InvalidArgument

    ref = text.strip()
    if ref.startswith(("models:", "runs:")) or Path(ref).exists():
        return ref
    raise InvalidArgument(
        f"{text!r} is not a model URI or a model folder; write models:/NAME/VERSION, "
        "models:/NAME@ALIAS, models:/NAME/latest, runs:/RUN_ID/PATH or the path of a folder "
        "written by save_model"
    )


def _read(text: str) -> str | pd.DataFrame:
    """The data: a ``datasets:/`` URI as is (evaluation records the version), a file read into
    a DataFrame."""
    import pyarrow as pa

    from loopml._progress import progress
    from loopml.data.sources import open_source
    from loopml.errors import InvalidData

    if text.startswith("datasets:"):
        return text
    if "://" not in text and not Path(text).is_file():
        raise InvalidData(
            f"--data {text}: no such file; give a CSV, TSV, Parquet or JSON-lines file, or a "
            "logged version such as datasets:/NAME/VERSION (see `loopml data list`)"
        )
    source = open_source(text)
    batches = []
    with progress(f"reading {Path(text).name}", unit="rows") as bar:
        for batch in source.batches():
            batches.append(batch)
            bar.advance(batch.num_rows)
    if not batches or not sum(b.num_rows for b in batches):
        raise InvalidData(f"--data {text} has no rows")
    frame: pd.DataFrame = pa.Table.from_batches(batches, schema=batches[0].schema).to_pandas()
    return frame


def _needs_store(*refs: str) -> bool:
    return any(r.strip().startswith(_STORE_SCHEMES) for r in refs)


# --- evaluate ------------------------------------------------------------------------------------


@app.command("evaluate")
def evaluate_cmd(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/PATH or a model folder.",
        ),
    ],
    data: DataOption,
    target: TargetOption,
    task: TaskOption = None,
    slices: Annotated[
        list[str] | None,
        typer.Option(
            "--slice",
            metavar="COL",
            help="Also score each group of this column (repeat for several columns).",
        ),
    ] = None,
    no_plots: Annotated[
        bool, typer.Option("--no-plots", help="Do not draw and save plots on the run.")
    ] = False,
    no_latency: Annotated[
        bool,
        typer.Option(
            "--no-latency", help="Skip timing single-row and batch calls and sizing the model."
        ),
    ] = False,
    no_run: Annotated[
        bool,
        typer.Option("--no-run", help="Record nothing: no evaluation run, no plots."),
    ] = False,
    trusted: TrustedOption = False,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a model on labelled data.

    The model predicts every row once; the metrics (accuracy, F1, ROC AUC, log loss... or
    RMSE, MAE, R²), per-slice metrics, confusion matrix and plots all come from those
    predictions. Latency (single row and batch) and the model's size are measured too. The
    result is recorded as a run named 'evaluation' (linked to the version for models:/ URIs)
    with its plots, unless --no-run.

    \b
    Examples:
      loopml models evaluate models:/churn/3 --data datasets:/churn-test/1 --target churned
      loopml models evaluate models:/churn@champion --data test.csv --target churned --slice plan
      loopml models evaluate ./churn-model --data test.parquet --target churned --no-run --json
    """
    from dataclasses import replace

    from loopml._progress import progress
    from loopml.models.evaluation.evaluate import evaluate

    ref = _model(model)
    with open_registry(ctx, project, create=not _needs_store(ref, data)) as client:
        frame = _read(data)
        loaded: Any = ref
        if trusted:
            from loopml.models.loading import load_model

            loaded = load_model(ref, trusted=True, client=client)
        with progress(f"evaluating {ref}"):
            result = evaluate(
                loaded,
                frame,
                target=target,
                task=task,
                slices=slices or None,
                run=not no_run,
                model_version=ref if trusted and ref.startswith("models:") else None,
                plots=not (no_plots or no_run),
                latency=not no_latency,
                project=project,
                client=client,
            )
    if result.model is None:
        result = replace(result, model=ref)
    if as_json:
        output.print_json(result.to_dict())
        return
    _print_result(result, ref, result.dataset or data)


def _print_result(result: EvaluationResult, ref: str, data: str) -> None:
    """The evaluation as the other commands print things: a heading, the metrics, the
    confusion matrix, one table per slice column, speed and size, notes."""
    from loopml.models.evaluation.metrics import greater_is_better

    con = output.console()
    kind = result.task
    if result.classes:
        kind = ("binary " if len(result.classes) == 2 else "multiclass ") + kind
    con.print(
        f"[bold]{output.escape(ref)}[/bold] on {output.escape(data)}: {kind}, "
        f"{result.num_rows:,} rows"
    )
    t = output.table("metric", "value", no_wrap=["metric", "value"])
    for name, value in result.metrics.items():
        arrow = "↑" if greater_is_better(name) else "↓"
        t.add_row(f"{output.escape(name)} {arrow}", _number(value))
    con.print(t)
    if result.confusion_matrix is not None and len(result.classes) <= 12:
        labels = [output.escape(c) for c in result.classes]
        t = output.table("true \\ predicted", *labels, title="Confusion matrix")
        for label, row in zip(labels, result.confusion_matrix, strict=False):
            t.add_row(label, *(f"{n:,}" for n in row))
        con.print(t)
    for column, groups in result.slices.items():
        names = list(next(iter(groups.values()))["metrics"])[:5] if groups else []
        t = output.table(output.escape(column), "rows", *names, title=f"Slices by {column}")
        for label, found in groups.items():
            rows = f"{found['num_rows']:,}" + (
                " [yellow](small)[/yellow]" if found["small"] else ""
            )
            cells = [_number(found["metrics"].get(n)) for n in names]
            t.add_row(output.escape(label), rows, *cells)
        con.print(t)
    for line in _performance_lines(result.performance):
        con.print(line)
    for note in result.notes:
        con.print(f"[dim]note: {output.escape(note)}[/dim]")
    if result.run_id is not None:
        short = result.run_id[:8]
        con.print(f"Recorded as run {short} (loopml runs show {short})")
        if result.plots:
            con.print(f"  plots: {output.escape(', '.join(sorted(result.plots)))}")


def _number(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.4f}"
    return "-"


def _performance_lines(perf: Mapping[str, Any]) -> list[str]:
    number = {k: v for k, v in perf.items() if isinstance(v, (int, float))}
    lines = []
    if "predict_seconds" in number:
        line = f"predict: {number['predict_seconds']:.3f} s"
        if "rows_per_second" in number:
            line += f" ({number['rows_per_second']:,.0f} rows/s)"
        if "peak_memory_bytes" in number:
            line += f", peak memory +{output.format_size(int(number['peak_memory_bytes']))}"
        lines.append(line)
    for part, label in (("latency", "1 row"), ("batch_latency", "batch")):
        if f"{part}_p50_ms" in number:
            lines.append(
                f"latency ({label}): p50 {number[f'{part}_p50_ms']:.2f} ms, "
                f"p95 {number.get(f'{part}_p95_ms', math.nan):.2f} ms, "
                f"p99 {number.get(f'{part}_p99_ms', math.nan):.2f} ms"
            )
    if "model_size_bytes" in number:
        how = perf.get("model_size_method")
        size = output.format_size(int(number["model_size_bytes"]))
        lines.append(f"model size: {size}" + (f" ({how})" if how else ""))
    return lines


# --- compare -------------------------------------------------------------------------------------


@app.command("compare")
def compare(
    ctx: typer.Context,
    model_a: Annotated[
        str,
        typer.Argument(metavar="A", help="The reference model (the champion): a URI or folder."),
    ],
    model_b: Annotated[
        str,
        typer.Argument(metavar="B", help="The model to compare with A (the challenger)."),
    ],
    data: DataOption,
    target: TargetOption,
    task: TaskOption = None,
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap",
            help="Add a paired bootstrap 95% interval of each delta (no new predictions).",
        ),
    ] = False,
    resamples: Annotated[
        int,
        typer.Option("--resamples", metavar="N", min=10, help="Bootstrap resamples."),
    ] = 1000,
    trusted: TrustedOption = False,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two models on the same rows.

    Each metric is shown for A and B, with B - A.
    A delta is green when B is better (higher accuracy, lower log loss...) and red when it is
    worse. With --bootstrap, each delta gets a paired bootstrap interval, and the share of
    resamples in which B does better; an interval that excludes 0 is marked '*'. Nothing is
    recorded.

    \b
    Examples:
      loopml models compare models:/churn@champion models:/churn/4 \\
          --data datasets:/churn-test/1 --target churned --bootstrap
      loopml models compare ./old-model ./new-model --data test.csv --target churned --json
    """
    from loopml._progress import progress
    from loopml.models.promotion import compare_models

    a, b = _model(model_a), _model(model_b)
    with open_registry(ctx, project, create=not _needs_store(a, b, data)) as client:
        frame = _read(data)
        with progress(f"evaluating {a} and {b}"):
            comparison = compare_models(
                a,
                b,
                frame,
                target=target,
                task=task,
                bootstrap=bootstrap,
                n_resamples=resamples,
                trusted=trusted,
                project=project,
                client=client,
            )
    if as_json:
        output.print_json(
            {
                **comparison.to_dict(),
                "data": comparison.a.dataset or data,
                "num_rows": comparison.a.num_rows,
                "task": comparison.a.task,
            }
        )
        return
    _print_comparison(comparison, a, b, comparison.a.dataset or data)


def _delta_markup(metric: str, delta: float) -> str:
    from loopml.models.evaluation.metrics import greater_is_better

    text = f"{delta:+.4f}"
    if math.isnan(delta) or delta == 0:
        return text
    better = (delta > 0) == greater_is_better(metric)
    return f"[green]{text}[/green]" if better else f"[red]{text}[/red]"


def _print_comparison(comparison: Comparison, a: str, b: str, data: str) -> None:
    from loopml.models.evaluation.metrics import greater_is_better

    con = output.console()
    con.print(f"A: {output.escape(a)}")
    con.print(f"B: {output.escape(b)}")
    con.print(f"on {comparison.a.num_rows:,} rows of {output.escape(data)} ({comparison.a.task})")
    intervals = comparison.intervals
    headers = ["metric", "A", "B", "B - A"]
    if intervals:
        headers += ["95% CI of B - A", "B better in"]
    t = output.table(*headers, no_wrap=["metric"])
    for metric, delta in comparison.deltas.items():
        arrow = "↑" if greater_is_better(metric) else "↓"
        row = [
            f"{output.escape(metric)} {arrow}",
            _number(comparison.a.metrics[metric]),
            _number(comparison.b.metrics[metric]),
            _delta_markup(metric, delta),
        ]
        if intervals:
            ci = intervals.get(metric)
            if ci is None:
                row += ["-", "-"]
            else:
                mark = " *" if ci.significant else ""
                interval = output.escape(f"[{ci.low:+.4f}, {ci.high:+.4f}]{mark}")
                row += [interval, f"{ci.probability_better:.0%}"]
        t.add_row(*row)
    if intervals:
        t.caption, t.caption_justify = "* the interval excludes 0", "left"
    con.print(t)
