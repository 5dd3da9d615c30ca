"""``loopml data validate|profile|diff|check``: check data against its contract, profile it,
compare two datasets, and run quality checks; each can also write an HTML report."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.data._common import (
    DataArgument,
    HtmlOption,
    JsonOption,
    ProjectOption,
    Session,
    app,
    severity_markup,
    write_html,
)

if TYPE_CHECKING:
    from loopml.stats import CategoricalProfile, DatasetProfile, NumericProfile

__all__ = ["check_cmd", "diff_cmd", "profile_cmd", "validate_cmd"]

_HIST = " ▁▂▃▄▅▆▇█"  # a zero-height bucket is blank
_HIST_WIDTH = 20


# --- validate, profile, diff, check -----------------------------------------------------------


@app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    data: DataArgument,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema",
            metavar="FILE.yaml",
            help="The contract to check [default: the version's stored schema].",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit status 1) on warnings too.")
    ] = False,
    infer: Annotated[
        Path | None,
        typer.Option(
            "--infer", metavar="OUT.yaml", help="Write a schema inferred from the data, to edit."
        ),
    ] = None,
    html: HtmlOption = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check data against its contract (schema).

    A logged version is checked against its stored schema unless --schema is given; a file
    needs --schema. Exits with status 1 when an error-level rule fails (with --strict, when any
    rule fails).

    --infer OUT.yaml writes a schema inferred from the data: edit it, then validate with
    --schema OUT.yaml (or log the data with it: loopml data add FILE --schema OUT.yaml).

    \b
    Examples:
      loopml data validate datasets:/churn/3
      loopml data validate new.csv --schema churn.yaml --html report.html
      loopml data validate train.csv --infer churn.yaml
    """
    from loopml.data.contract import validate_parquet
    from loopml.errors import InvalidArgument
    from loopml.schema import Schema

    contract = Schema.load(schema) if schema is not None else None
    with Session(ctx, project) as session:
        target = session.open(data)
        if infer is not None:
            inferred = target.schema()
            inferred.save(infer)
            typer.echo(
                f"Wrote the schema inferred from {target.label} to {infer} "
                f"({len(inferred.columns)} columns); edit it, then validate with --schema {infer}",
                err=True,
            )
        against = str(schema) if schema is not None else f"the schema stored with {target.label}"
        if contract is None:
            contract = target.stored_schema()
        if contract is None:
            if infer is not None:
                return
            what = (
                f"{target.label} was logged without a schema"
                if target.version is not None
                else f"{target.label} is a file"
            )
            raise InvalidArgument(
                f"{what}: give the contract with --schema FILE.yaml (write a first one with "
                "--infer FILE.yaml)"
            )
        report = validate_parquet(
            target.path, contract, frame=target.frame_if_small(), where=target.label, strict=False
        )
    if html is not None:
        from loopml.data.report import validation_html

        page = validation_html(
            report,
            title=f"Validation of {target.label}",
            subtitle=f"against {against}",
            schema=contract,
        )
        write_html(html, page)
    failed = not report.ok or (strict and bool(report.violations))
    if as_json:
        output.print_json({"data": target.label, "schema": against, **report.to_dict()})
    else:
        if report.violations:
            t = output.table(
                "severity",
                "column",
                "rule",
                "rows",
                "examples",
                "message",
                no_wrap=["severity", "rows"],
            )
            for v in report.violations:
                share = v.count / report.num_rows if report.num_rows else 0.0
                examples = ", ".join(
                    repr(x) if isinstance(x, str) else output.format_value(x)
                    for x in v.examples[:3]
                )
                t.add_row(
                    severity_markup(str(v.severity)),
                    output.escape(v.column),
                    v.rule,
                    f"{v.count:,} ({share:.1%})",
                    output.escape(examples),
                    output.escape(v.message),
                )
            output.console().print(t)
        typer.echo(f"{target.label}: {report.summary()}")
    if failed:
        raise typer.Exit(1)


def _histogram_line(col: NumericProfile, width: int = _HIST_WIDTH) -> str:
    """The column's distribution as ``width`` blocks over equal-width buckets from min to max.

    The profile's bins are quantile bins of unequal width; counts are spread evenly within each
    bin and summed per bucket, so the line shows density, not the (nearly equal) bin counts.
    """
    import numpy as np

    edges = np.asarray(col.edges, dtype=np.float64)
    if len(edges) < 2 or not col.finite:
        return ""
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(col.counts, dtype=np.float64))])
    grid = np.linspace(edges[0], edges[-1], width + 1)
    per = np.diff(np.interp(grid, edges, cum))
    top = per.max()
    if top <= 0:
        return ""
    levels = np.ceil(per / top * (len(_HIST) - 1)).astype(int)
    return "".join(_HIST[i] for i in levels)


def _shown(col: NumericProfile, value: float | None) -> str:
    shown = col.display(value)
    if isinstance(shown, str):  # a datetime, to the minute
        return shown[:16].replace("T", " ")
    return "-" if shown is None else f"{shown:.6g}"


def _top_line(col: CategoricalProfile, k: int = 3) -> str:
    top = col.top(k)
    parts = [f"{v} ({c / col.count:.0%})" for v, c in top.categories] if col.count else []
    if top.other:
        parts.append(f"+{top.other:,} other")
    return ", ".join(parts)


def _profile_dict(label: str, prof: DatasetProfile) -> dict[str, Any]:
    from loopml.stats import NumericProfile

    cols = []
    for c in prof.columns:
        item: dict[str, Any] = {"name": c.name, "kind": c.kind, "count": c.count, "nulls": c.nulls}
        if isinstance(c, NumericProfile):
            item.update(
                mean=c.display(c.mean),
                std=c.std if c.kind == "numeric" else None,
                min=c.min_display,
                median=c.display(c.quantile(0.5)) if c.finite else None,
                max=c.max_display,
                histogram={"edges": list(c.edges), "counts": list(c.counts)},
            )
        else:
            item.update(
                distinct=c.n_categories,
                categories=[[v, n] for v, n in c.categories],
                other=c.other,
            )
        cols.append(item)
    return {"data": label, "num_rows": prof.num_rows, "target": prof.target, "columns": cols}


@app.command("profile")
def profile_cmd(
    ctx: typer.Context,
    data: DataArgument,
    target: Annotated[
        str | None, typer.Option("--target", metavar="COL", help="The target (label) column.")
    ] = None,
    html: HtmlOption = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a dataset's profile: per-column statistics and distributions.

    Numeric and datetime columns: count, nulls, mean, std, min, max and a histogram line (equal-
    width buckets from min to max). Categorical and boolean columns: count, nulls, distinct
    values and the top categories. A logged version's stored profile is shown as is.

    \b
    Examples:
      loopml data profile datasets:/churn/3
      loopml data profile new.csv --html profile.html
    """
    from loopml.stats import NumericProfile

    with Session(ctx, project) as session:
        source = session.open(data)
        prof = source.profile(target)
    if html is not None:
        from loopml.data.report import profile_html

        write_html(html, profile_html(prof, title=f"Profile of {source.label}"))
    if as_json:
        output.print_json(_profile_dict(source.label, prof))
        return
    con = output.console()
    numeric = [c for c in prof.columns if isinstance(c, NumericProfile)]
    others = [c for c in prof.columns if not isinstance(c, NumericProfile)]
    con.print(
        f"[bold]{output.escape(source.label)}[/bold]: "
        f"{prof.num_rows:,} rows x {len(prof.columns)} columns"
    )
    if numeric:
        t = output.table(
            "column",
            "type",
            "count",
            "nulls",
            "mean",
            "std",
            "min",
            "max",
            "histogram",
            no_wrap=["histogram"],
        )
        for c in numeric:
            t.add_row(
                output.escape(c.name),
                c.kind,
                f"{c.count:,}",
                f"{c.nulls:,}",
                _shown(c, c.mean),
                output.format_value(c.std) if c.kind == "numeric" else "-",
                _shown(c, c.min),
                _shown(c, c.max),
                _histogram_line(c),
            )
        con.print(t)
    if others:
        t = output.table("column", "type", "count", "nulls", "distinct", "top categories")
        for cat in others:
            more = "+" if cat.other else ""
            t.add_row(
                output.escape(cat.name),
                cat.kind,
                f"{cat.count:,}",
                f"{cat.nulls:,}",
                f"{cat.n_categories:,}{more}",
                output.escape(_top_line(cat)),
            )
        con.print(t)


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    reference: Annotated[
        str, typer.Argument(metavar="A", help="The reference: a version URI or a data file.")
    ],
    current: Annotated[
        str, typer.Argument(metavar="B", help="The data to compare with A: a URI or a file.")
    ],
    html: HtmlOption = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two datasets: schema changes, row counts and per-column drift.

    Drift tests compare B's distribution of each column with A's (PSI for numbers, chi-squared
    or Jensen-Shannon for categories: the tests monitoring uses). The exit status is 0 whatever
    the drift.

    \b
    Examples:
      loopml data diff datasets:/churn/2 datasets:/churn/3
      loopml data diff datasets:/churn@latest new.csv --html drift.html
    """
    from loopml.schema import diff_schemas
    from loopml.stats import compare_profiles

    with Session(ctx, project) as session:
        a, b = session.open(reference), session.open(current)
        prof_a, prof_b = a.profile(), b.profile()
        schema_diff = diff_schemas(a.schema(), b.schema())
    comparison = compare_profiles(prof_a, prof_b)
    if html is not None:
        from loopml.data.report import diff_html

        page = diff_html(
            comparison,
            schema_diff,
            title=f"{a.label} → {b.label}",
            subtitle="Schema changes and per-column drift",
            reference=prof_a,
            current=prof_b,
        )
        write_html(html, page)
    if as_json:
        output.print_json(
            {
                "reference": a.label,
                "current": b.label,
                "rows": {"reference": prof_a.num_rows, "current": prof_b.num_rows},
                "schema": schema_diff.to_dict(),
                "drift": comparison.to_dict(),
            }
        )
        return
    _print_diff(a.label, b.label, comparison, schema_diff)


def _print_diff(a: str, b: str, comparison: Any, schema_diff: Any) -> None:
    con = output.console()
    ra, rb = comparison.reference_rows, comparison.current_rows
    change = f" ({(rb - ra) / ra:+.1%})" if ra else ""
    con.print(
        f"[bold]{output.escape(a)} -> {output.escape(b)}[/bold]: rows {ra:,} -> {rb:,}{change}"
    )
    con.print()
    if schema_diff.changed:
        t = output.table("", "column", "change")
        for col in schema_diff.added:
            t.add_row("[green]+[/green]", output.escape(col.name), f"new {col.type} column")
        for col in schema_diff.removed:
            t.add_row("[red]-[/red]", output.escape(col.name), f"{col.type} column removed")
        for ch in schema_diff.changes:
            mark = " [yellow](tightens)[/yellow]" if ch.tightens else ""
            text = f"{ch.field}: {output.format_value(ch.old)} -> {output.format_value(ch.new)}"
            t.add_row("~", output.escape(ch.column or "(schema)"), output.escape(text) + mark)
        con.print("[bold]Schema changes[/bold]")
        con.print(t)
    else:
        con.print("[bold]Schema[/bold]: the same")
    con.print()
    if comparison.columns:
        t = output.table("column", "kind", "test", "statistic", "p-value", "drifted", "nulls")
        for c in comparison.columns:
            r = c.result
            p = "-" if r.p_value is None or math.isnan(r.p_value) else f"{r.p_value:.3g}"
            stat = "-" if math.isnan(r.statistic) else f"{r.statistic:.4g}"
            t.add_row(
                output.escape(c.column),
                c.kind,
                r.test,
                stat,
                p,
                "[bold red]yes[/bold red]" if c.drifted else "no",
                f"{c.reference_null_share:.1%} -> {c.current_null_share:.1%}",
                style="bold" if c.drifted else None,
            )
        con.print("[bold]Drift[/bold]")
        con.print(t)
    for names, where in ((comparison.only_in_reference, "A"), (comparison.only_in_current, "B")):
        if names:
            con.print(f"only in {where}: {output.escape(', '.join(names))}")
    drifted = len(comparison.drifted_columns)
    verdict = "yes" if comparison.dataset_drift else "no"
    con.print(
        f"{drifted} of {len(comparison.columns)} columns drifted "
        f"({comparison.drifted_share:.0%}); dataset drift: {verdict}"
    )


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    data: DataArgument,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", metavar="COL", help="The target column [default: the stored schema's]."
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            metavar="URI_OR_PATH",
            help="Data to check for shared rows (the training set when checking a test set).",
        ),
    ] = None,
    html: HtmlOption = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run the default data quality checks.

    Missing values, duplicate rows, constant and near-constant columns, high cardinality, mixed
    types, outliers, and with --target class imbalance and target leakage, with --reference
    rows shared with the reference (train/test leakage). Exits with status 1 when a required
    check fails; the others only warn.

    \b
    Examples:
      loopml data check datasets:/churn/3
      loopml data check test.csv --target churned --reference datasets:/churn-train/2
    """
    from loopml._progress import progress
    from loopml.data.checks import run_checks

    with Session(ctx, project) as session:
        source = session.open(data)
        ref = session.open(reference) if reference is not None else None
        if target is None:
            stored = source.stored_schema()
            target = stored.target if stored is not None else None
        frame = source.frame()
        ref_frame = ref.frame() if ref is not None else None
        with progress(f"checking {source.label}"):
            report = run_checks(frame, target=target, reference=ref_frame, name=source.label)
    if html is not None:
        from loopml.data.report import checks_html

        write_html(html, checks_html(report))
    if as_json:
        output.print_json(report.to_dict())
    else:
        order = {"error": 0, "warning": 1, "ok": 2}
        t = output.table("result", "check", "message", no_wrap=["result", "check"])
        for r in sorted(report.results, key=lambda r: order.get(r.severity or "ok", 2)):
            t.add_row(severity_markup(r.severity or "ok"), r.name, output.escape(r.message))
        output.console().print(t)
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)
