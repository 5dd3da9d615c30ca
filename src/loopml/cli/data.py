"""``loopml data``: version datasets, inspect them, and validate, profile, compare and check data.

Commands that read data take a logged version (``datasets:/churn/3``, ``datasets:/churn@latest``)
or a local file (CSV, TSV, Parquet, JSON lines); a file needs no store. ``validate``, ``profile``,
``diff`` and ``check`` also write a self-contained HTML report with ``--html FILE``.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client, resolve_run

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion
    from loopml.schema import Schema
    from loopml.stats import CategoricalProfile, DatasetProfile, NumericProfile

__all__ = ["app"]

app = typer.Typer(
    help="Version, inspect, validate, profile, compare and check datasets.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProjectOption = Annotated[
    str | None,
    typer.Option(
        "--project",
        "-p",
        metavar="NAME",
        help="Project of the dataset [default: LOOPML_PROJECT, else default].",
    ),
]
HtmlOption = Annotated[
    Path | None,
    typer.Option("--html", metavar="FILE", help="Also write a self-contained HTML report."),
]
DataArgument = Annotated[
    str,
    typer.Argument(
        metavar="URI_OR_PATH",
        help="A logged version (datasets:/NAME/VERSION, datasets:/NAME@latest) or a data file.",
    ),
]
_SEVERITY_STYLES = {"error": "red", "warning": "yellow", "ok": "green"}
_HIST = " ▁▂▃▄▅▆▇█"  # a zero-height bucket is blank
_HIST_WIDTH = 20


# --- where the data comes from ---------------------------------------------------------------


def _is_uri(text: str) -> bool:
    return text.startswith("datasets:")


class _Data:
    """One table to work on: a logged version or a local file, as a local Parquet file."""

    def __init__(
        self, label: str, path: Path, version: DatasetVersion | None, client: Client | None
    ) -> None:
        self.label, self.path, self.version, self.client = label, path, version, client
        self._frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        """The whole table in memory."""
        if self._frame is None:
            from loopml._progress import progress
            from loopml.data.contract import read_whole

            with progress(f"reading {self.label}"):
                self._frame = read_whole(self.path).to_pandas()
        return self._frame

    def frame_if_small(self) -> pd.DataFrame | None:
        """The table in memory when it fits (read once), else None (work goes batch by batch)."""
        from loopml.data.contract import fits_in_memory

        return self.frame() if self._frame is not None or fits_in_memory(self.path) else None

    def stored_schema(self) -> Schema | None:
        from loopml.schema import Schema

        if self.version is None or self.version.schema is None:
            return None
        return Schema.from_dict(self.version.schema, source=f"the schema of {self.label}")

    def schema(self, target: str | None = None) -> Schema:
        """The stored schema, else one inferred from the data."""
        from loopml.data.contract import infer_parquet

        stored = self.stored_schema() if target is None else None
        if stored is not None:
            return stored
        return infer_parquet(self.path, frame=self.frame_if_small(), target=target)

    def profile(self, target: str | None = None) -> DatasetProfile:
        """The stored profile (when it has this target), else one computed from the data."""
        from loopml.data.contract import profile_parquet
        from loopml.data.datasets import dataset_profile

        v = self.version
        if v is not None and v.profile_blob is not None and self.client is not None:
            stored = dataset_profile(v, client=self.client)
            if target is None or stored.target == target:
                return stored
        return profile_parquet(self.path, frame=self.frame_if_small(), target=target)


class _Session:
    """Opens data for one command: the store only when a ``datasets:/`` URI needs it, and
    scratch files removed at the end."""

    def __init__(self, ctx: typer.Context, project: str | None) -> None:
        self._ctx, self.project = ctx, project
        self._stack = ExitStack()
        self._client: Client | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._stack.enter_context(open_client(self._ctx))
        return self._client

    def scratch(self) -> Path:
        if self._tmp is None:
            import tempfile

            self._tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory("-loopml")))
        return self._tmp

    def version(self, text: str) -> DatasetVersion:
        return self.client.get_dataset_version(text, project=self.project)

    def open(self, text: str) -> _Data:
        if _is_uri(text):
            v = self.version(text)
            return _Data(v.uri, self.parquet(v), v, self.client)
        return _Data(text, self._local(text), None, None)

    def parquet(self, v: DatasetVersion) -> Path:
        """A local copy of the version's Parquet file: the home's cache when there is a home
        (never creating one as a side effect), else a scratch file."""
        from loopml.config import find_home, get_settings
        from loopml.data.datasets import local_parquet

        settings = get_settings()
        home = settings.home.expanduser() if settings.home is not None else find_home()
        if home is not None and home.is_dir():
            return local_parquet(v, self.client)
        path = self.scratch() / f"{v.blob}.parquet"
        self.client.artifacts.get(v.blob, path)
        return path

    def _local(self, text: str) -> Path:
        """A data file as Parquet: itself, or a scratch copy written batch by batch."""
        import pyarrow.parquet as pq

        from loopml._progress import progress
        from loopml.data.sources import open_source
        from loopml.errors import InvalidData

        if "://" not in text and not Path(text).is_file():
            raise InvalidData(
                f"{text}: no such file; give a data file (CSV, TSV, Parquet, JSON lines) or a "
                "logged version such as datasets:/NAME/VERSION (see `loopml data list`)"
            )
        source = open_source(text)
        if source.parquet_path is not None:
            return Path(source.parquet_path)
        out = self.scratch() / f"data-{len(list(self.scratch().iterdir()))}.parquet"
        writer: pq.ParquetWriter | None = None
        with progress(f"reading {Path(text).name}", unit="rows") as bar:
            try:
                for batch in source.batches():
                    if writer is None:
                        writer = pq.ParquetWriter(out, batch.schema)
                    writer.write_batch(batch)
                    bar.advance(batch.num_rows)
            finally:
                if writer is not None:
                    writer.close()
        if writer is None or pq.ParquetFile(out).metadata.num_rows == 0:
            raise InvalidData(f"{text} has no rows")
        return out


def _write_html(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")
    typer.echo(f"Wrote the report to {path}", err=True)


def _version_dict(v: DatasetVersion) -> dict[str, Any]:
    return {
        "uri": v.uri,
        "id": v.id,
        "name": v.name,
        "version": v.version,
        "digest": v.digest,
        "blob": v.blob,
        "num_rows": v.num_rows,
        "num_columns": v.num_columns,
        "size_bytes": v.size_bytes,
        "source": v.source,
        "run_id": v.run_id,
        "created_at": v.created_at,
        "created": output.iso(v.created_at),
        "has_schema": v.schema is not None,
        "has_profile": v.profile_blob is not None,
        "metadata": v.metadata,
    }


def _severity(text: str) -> str:
    style = _SEVERITY_STYLES.get(text, "white")
    label = {"error": "ERROR", "warning": "WARN"}.get(text, text)
    return f"[{style}]{label}[/{style}]"


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
        output.print_json({**_version_dict(version), **extra})
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
                    "latest": _version_dict(v) if v is not None else None,
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
    if not _is_uri(text):
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
        name = dataset.split(":", 1)[1].strip("/") if _is_uri(dataset) else dataset
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
        data = _version_dict(v)
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
                "versions": [_version_dict(v) for v in versions],
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
    with _Session(ctx, project) as session:
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
    with _Session(ctx, project) as session:
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
        _write_html(html, page)
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
                examples = ", ".join(repr(x) if isinstance(x, str) else str(x) for x in v.examples)
                t.add_row(
                    _severity(str(v.severity)),
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
    return "-" if shown is None else (shown if isinstance(shown, str) else f"{shown:.6g}")


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

    with _Session(ctx, project) as session:
        source = session.open(data)
        prof = source.profile(target)
    if html is not None:
        from loopml.data.report import profile_html

        _write_html(html, profile_html(prof, title=f"Profile of {source.label}"))
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

    with _Session(ctx, project) as session:
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
        _write_html(html, page)
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

    with _Session(ctx, project) as session:
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

        _write_html(html, checks_html(report))
    if as_json:
        output.print_json(report.to_dict())
    else:
        order = {"error": 0, "warning": 1, "ok": 2}
        t = output.table("result", "check", "message", no_wrap=["result", "check"])
        for r in sorted(report.results, key=lambda r: order.get(r.severity or "ok", 2)):
            t.add_row(_severity(r.severity or "ok"), r.name, output.escape(r.message))
        output.console().print(t)
        typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)
