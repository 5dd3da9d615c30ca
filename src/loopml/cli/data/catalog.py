"""``loopml data add|list|show|get``: log dataset versions, list and inspect them, export them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.data._common import (
    JsonOption,
    ProjectOption,
    Session,
    app,
    is_uri,
    version_dict,
)
from loopml.cli.state import open_client, resolve_run

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.schema import Schema

__all__ = ["add", "get", "list_datasets", "show"]


# --- add, list, show, get ---------------------------------------------------------------------


@app.command("add")
def add(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="PATH_OR_URL",
            help="A CSV, TSV, Parquet or JSON-lines file, or an fsspec URL (s3://...).",
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", metavar="NAME", help="Dataset name.")],
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            metavar="ROLE",
            help="Record it as an input of --run in this role (train...).",
        ),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option("--run", metavar="RUN_ID", help="The run that used it (id or prefix)."),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", metavar="F", help="csv, tsv, parquet or jsonl, when the name does not say."
        ),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(
            "--schema", metavar="FILE.yaml", help="Data contract to store (the data must meet it)."
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="COL", help="The target (label) column.")
    ] = None,
    no_profile: Annotated[
        bool, typer.Option("--no-profile", help="Do not compute and store a profile.")
    ] = False,
    description: Annotated[
        str, typer.Option("--description", "-d", metavar="TEXT", help="What the dataset is.")
    ] = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Log a version of a dataset.

    The version is addressed by its content: logging the same rows and columns again reuses
    the existing version and writes nothing. The data is stored as Parquet with its schema
    (inferred, or --schema) and its profile.

    Like the Python API, this creates the store on first use when there is none.

    \b
    Examples:
      loopml data add train.csv --name churn --target churned
      loopml data add s3://bucket/eu.parquet --name churn-eu --schema churn.yaml
      loopml data add test.csv --name churn-test --run 3f2a9c41 --role test
    """
    from loopml.data.datasets import log_dataset
    from loopml.errors import DatasetNotFound, InvalidArgument, InvalidData, ProjectNotFound
    from loopml.schema import Schema

    if (role is None) != (run is None):
        raise InvalidArgument(
            "--run and --role go together: --run RUN_ID --role train records the version as "
            "an input of that run"
        )
    if "://" not in source and not Path(source).exists():
        raise InvalidData(f"{source}: no such file; give a CSV, TSV, Parquet or JSON-lines file")
    contract = Schema.load(schema) if schema is not None else None
    with open_client(ctx, create=True) as client:
        used_by = resolve_run(client, run) if run is not None else None
        try:
            before = client.get_dataset(name, project=project).latest_version
        except (DatasetNotFound, ProjectNotFound):
            before = 0
        version = log_dataset(
            source,
            name,
            project=project or client.settings.project,
            schema=contract if contract is not None else "infer",
            target=target,
            profile=not no_profile,
            description=description,
            format=format,
            client=client,
        )
        if used_by is not None and role is not None:
            client.log_inputs(used_by.run_id, [(version, role)])
    new = version.version > before
    if as_json:
        extra = {"new": new, "input_of": used_by.run_id if used_by else None, "role": role}
        output.print_json({**version_dict(version), **extra})
        return
    verb = "Logged" if new else "Reused"
    why = "new version" if new else "same content as an existing version; nothing written"
    typer.echo(f"{verb} {version.uri} ({why})")
    typer.echo(f"  {version.num_rows:,} rows x {version.num_columns} columns")
    typer.echo(f"  digest {version.digest[:12]}, {output.format_size(version.size_bytes)}")
    if used_by is not None:
        typer.echo(f"  recorded as the {role} input of run {used_by.run_id[:8]} ({used_by.name})")


@app.command("list")
def list_datasets(
    ctx: typer.Context, project: ProjectOption = None, as_json: JsonOption = False
) -> None:
    """List the datasets of a project, by name.

    The table shows each dataset's latest version, how many versions it has, the rows of the
    latest one and when it was logged.

    \b
    Examples:
      loopml data list
      loopml data list -p churn --json
    """
    from loopml.entities import now_ms
    from loopml.errors import ProjectNotFound

    with open_client(ctx) as client:
        name = project or client.settings.project
        try:
            datasets = client.list_datasets(project=name)
        except ProjectNotFound:
            if project is not None:
                raise
            datasets = []  # the default project appears with its first run or dataset
        latest = {
            d.name: client.get_dataset_version(d.name, "latest", project=name)
            for d in datasets
            if d.num_versions
        }
    if as_json:
        rows = []
        for d in datasets:
            v = latest.get(d.name)
            rows.append(
                {
                    "name": d.name,
                    "description": d.description,
                    "latest_version": d.latest_version,
                    "num_versions": d.num_versions,
                    "latest": version_dict(v) if v is not None else None,
                }
            )
        output.print_json({"project": name, "datasets": rows})
        return
    if not datasets:
        typer.echo(
            f"No datasets in project {name!r}; log one with 'loopml data add FILE --name NAME'."
        )
        return
    t = output.table("name", "latest", "versions", "rows", "columns", "updated", "description")
    now = now_ms()
    for d in datasets:
        v = latest.get(d.name)
        t.add_row(
            output.escape(d.name),
            str(d.latest_version),
            str(d.num_versions),
            f"{v.num_rows:,}" if v else "-",
            str(v.num_columns) if v else "-",
            output.format_started(v.created_at, now) if v else "-",
            output.escape(d.description),
        )
    output.console().print(t)


def _names_version(text: str) -> bool:
    """Whether ``text`` names one version (a URI with a version or @latest), not a dataset."""
    if not is_uri(text):
        return False
    rest = text.split(":", 1)[1].strip("/")
    return "/" in rest or "@" in rest


def _schema_rows(schema: Schema) -> list[list[str]]:
    rows = []
    for col in schema.columns:
        if col.categories is not None:
            shown = ", ".join(str(c) for c in col.categories[:8])
            allowed = shown + (f" (+{len(col.categories) - 8})" if len(col.categories) > 8 else "")
        elif col.min is not None or col.max is not None:
            allowed = f"{output.format_value(col.min)} .. {output.format_value(col.max)}"
        else:
            allowed = ""
        flags = [w for w, on in (("nullable", col.nullable), ("unique", col.unique)) if on]
        if col.name == schema.target:
            flags.append("target")
        rows.append([col.name, str(col.type), ", ".join(flags), allowed])
    return rows


@app.command("show")
def show(
    ctx: typer.Context,
    dataset: Annotated[
        str,
        typer.Argument(
            metavar="NAME_OR_URI",
            help="A dataset name (its versions) or a version URI (datasets:/NAME/VERSION).",
        ),
    ],
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a dataset's versions, or one version in detail.

    For a version: URI, digest, size, source, the run that logged it, the schema, and lineage
    (the runs that used it, with their roles).

    \b
    Examples:
      loopml data show churn
      loopml data show datasets:/churn/3
      loopml data show datasets:/churn@latest --json
    """
    if not _names_version(dataset):
        name = dataset.split(":", 1)[1].strip("/") if is_uri(dataset) else dataset
        _show_dataset(ctx, name, project, as_json)
        return
    with open_client(ctx) as client:
        v = client.get_dataset_version(dataset, project=project)
        producer = _run_name(client, v.run_id)
        lineage = [(i, _run_name(client, i.run_id)) for i in client.get_dataset_version_runs(v)]
    schema = None
    if v.schema is not None:
        from loopml.schema import Schema

        schema = Schema.from_dict(v.schema, source=f"the schema of {v.uri}")
    if as_json:
        data = version_dict(v)
        data["schema"] = v.schema
        data["used_by"] = [
            {"run_id": i.run_id, "run_name": n, "role": i.role, "at": output.iso(i.created_at)}
            for i, n in lineage
        ]
        output.print_json(data)
        return
    con = output.console()
    run = f"{v.run_id[:8]} ({output.escape(producer)})" if v.run_id else "-"
    attrs = [
        ("uri", output.escape(v.uri)),
        ("digest", v.digest),
        ("rows", f"{v.num_rows:,}"),
        ("columns", str(v.num_columns)),
        ("size", output.format_size(v.size_bytes)),
        ("source", output.escape(v.source)),
        ("logged by run", run),
        ("created", output.iso(v.created_at) or "-"),
        ("profile", "yes" if v.profile_blob else "no"),
    ]
    output.print_section(con, f"Dataset {output.escape(v.name)} version {v.version}", attrs)
    meta = [(k, output.escape(output.json_value(val))) for k, val in sorted(v.metadata.items())]
    output.print_section(con, "Metadata", meta)
    if schema is not None:
        t = output.table("column", "type", "flags", "allowed")
        for row in _schema_rows(schema):
            t.add_row(*(output.escape(c) for c in row))
        key = f", unique key ({', '.join(schema.unique_key)})" if schema.unique_key else ""
        con.print(f"[bold]Schema[/bold] ({len(schema.columns)} columns{output.escape(key)})")
        con.print(t)
        con.print()
    else:
        con.print("[bold]Schema[/bold]: none stored\n")
    if lineage:
        t = output.table("run", "name", "role", "at", no_wrap=["run"])
        for i, n in lineage:
            t.add_row(
                i.run_id[:8],
                output.escape(n),
                output.escape(i.role),
                output.iso(i.created_at) or "",
            )
        con.print("[bold]Used by[/bold]")
        con.print(t)
    else:
        con.print("[bold]Used by[/bold]: no run yet")


def _run_name(client: Client, run_id: str | None) -> str:
    from loopml.errors import RunNotFound

    if run_id is None:
        return ""
    try:
        return client.get_run(run_id).name
    except RunNotFound:
        return "(deleted)"


def _show_dataset(ctx: typer.Context, name: str, project: str | None, as_json: bool) -> None:
    with open_client(ctx) as client:
        d = client.get_dataset(name, project=project)
        versions = client.list_dataset_versions(name, project=project)
    if as_json:
        output.print_json(
            {
                "name": d.name,
                "description": d.description,
                "latest_version": d.latest_version,
                "num_versions": d.num_versions,
                "created": output.iso(d.created_at),
                "versions": [version_dict(v) for v in versions],
            }
        )
        return
    con = output.console()
    title = f"Dataset {output.escape(d.name)}" + (
        f": {output.escape(d.description)}" if d.description else ""
    )
    t = output.table(
        "version",
        "rows",
        "columns",
        "size",
        "digest",
        "run",
        "created",
        "source",
        title=title,
        no_wrap=["digest", "run"],
    )
    for v in versions:
        t.add_row(
            str(v.version),
            f"{v.num_rows:,}",
            str(v.num_columns),
            output.format_size(v.size_bytes),
            v.digest[:12],
            v.run_id[:8] if v.run_id else "-",
            (output.iso(v.created_at) or "")[:16].replace("T", " "),
            output.escape(v.source),
        )
    con.print(t)


_WRITERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}
_WRITERS |= {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def _write_table(path: Path, out: Path, head: int | None) -> int:
    """Write the Parquet file ``path`` (its first ``head`` rows) to ``out``, in the format its
    extension names; a temporary name first, so a failure leaves no half-written file."""
    import os
    import shutil

    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from loopml.errors import InvalidArgument, InvalidData

    fmt = _WRITERS.get(out.suffix.lower())
    if fmt is None:
        raise InvalidArgument(
            f"-o {out}: cannot tell the format from {out.suffix or 'no extension'!r}; end the "
            "name with .parquet, .csv, .tsv or .jsonl"
        )
    tmp = out.with_name(f".{out.name}.part")
    rows = 0
    try:
        source = pq.ParquetFile(path)
        if fmt == "parquet" and head is None:
            shutil.copyfile(path, tmp)
            rows = source.metadata.num_rows
        else:
            batches = source.iter_batches(batch_size=min(head or 65_536, 65_536))
            with open(tmp, "wb") as sink:
                writer: Any = None
                for whole in batches:
                    batch = whole if head is None else whole.slice(0, head - rows)
                    if fmt == "jsonl":
                        text = batch.to_pandas().to_json(
                            orient="records", lines=True, date_format="iso"
                        )
                        sink.write(text.encode() + (b"" if text.endswith("\n") else b"\n"))
                    else:
                        if writer is None:
                            writer = (
                                pq.ParquetWriter(sink, batch.schema)
                                if fmt == "parquet"
                                else pacsv.CSVWriter(
                                    sink,
                                    batch.schema,
                                    write_options=pacsv.WriteOptions(
                                        delimiter="\t" if fmt == "tsv" else ","
                                    ),
                                )
                            )
                        writer.write_batch(batch)
                    rows += batch.num_rows
                    if head is not None and rows >= head:
                        break
                if writer is not None:
                    writer.close()
        os.replace(tmp, out)
    except (pa.ArrowException, ValueError) as exc:
        raise InvalidData(f"cannot write {out} as {fmt}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return rows


@app.command("get")
def get(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Argument(metavar="URI", help="A version (datasets:/NAME/VERSION) or a name.")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the data here (.parquet, .csv, .tsv, .jsonl).",
        ),
    ] = None,
    head: Annotated[
        int | None,
        typer.Option("--head", metavar="N", help="Only the first N rows [default: print 10]."),
    ] = None,
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a version's data to a file, or print its first rows.

    \b
    Examples:
      loopml data get datasets:/churn/3 -o churn.csv
      loopml data get datasets:/churn@latest --head 5
      loopml data get churn --head 100 --json
    """
    import pyarrow.parquet as pq

    from loopml.errors import InvalidArgument

    if head is not None and head < 1:
        raise InvalidArgument(f"--head must be 1 or more, got {head}")
    with Session(ctx, project) as session:
        v = session.version(dataset)
        path = session.parquet(v)
        if out is not None:
            rows = _write_table(path, out, head)
            if as_json:
                output.print_json({"uri": v.uri, "path": str(out), "rows": rows})
            else:
                typer.echo(f"Wrote {rows:,} rows of {v.uri} to {out}")
            return
        n = head or 10
        batch = next(pq.ParquetFile(path).iter_batches(batch_size=n), None)
        frame = batch.to_pandas() if batch is not None else None
    if frame is None:
        raise InvalidArgument(f"{v.uri} has no rows")  # pragma: no cover - versions have rows
    if as_json:
        import json

        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        output.print_json(
            {
                "uri": v.uri,
                "num_rows": v.num_rows,
                "columns": list(map(str, frame.columns)),
                "rows": records,
            }
        )
        return
    t = output.table(*(output.escape(c) for c in frame.columns))
    for row in frame.itertuples(index=False):  # at most --head rows
        t.add_row(*(output.escape(output.format_value(x)) for x in row))
    con = output.console()
    con.print(t)
    con.print(f"[dim]{len(frame):,} of {v.num_rows:,} rows of {output.escape(v.uri)}[/dim]")
