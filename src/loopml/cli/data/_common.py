"""What every ``loopml data`` command shares: the Typer group, common options, and where data
comes from (:class:`Session` opens a ``datasets:/`` URI through the store, or a local file, as
a local Parquet file)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    import pandas as pd

    from loopml.client import Client
    from loopml.entities import DatasetVersion
    from loopml.schema import Schema
    from loopml.stats import DatasetProfile

__all__ = [
    "DataArgument",
    "HtmlOption",
    "JsonOption",
    "ProjectOption",
    "Data",
    "Session",
    "app",
    "is_uri",
    "severity_markup",
    "version_dict",
    "write_html",
]

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


# --- where the data comes from ---------------------------------------------------------------


def is_uri(text: str) -> bool:
    return text.startswith("datasets:")


class Data:
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


class Session:
    """Opens data for one command: the store only when a ``datasets:/`` URI needs it, and
    scratch files removed at the end."""

    def __init__(self, ctx: typer.Context, project: str | None) -> None:
        self._ctx, self.project = ctx, project
        self._stack = ExitStack()
        self._client: Client | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> Session:
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

    def open(self, text: str) -> Data:
        if is_uri(text):
            v = self.version(text)
            return Data(v.uri, self.parquet(v), v, self.client)
        return Data(text, self._local(text), None, None)

    def parquet(self, v: DatasetVersion) -> Path:
        """A local, verified copy of the version's Parquet file (the user's dataset cache)."""
        from loopml.data.datasets import local_parquet

        return local_parquet(v, self.client)

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


def write_html(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")
    typer.echo(f"Wrote the report to {path}", err=True)


def version_dict(v: DatasetVersion) -> dict[str, Any]:
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


def severity_markup(text: str) -> str:
    style = _SEVERITY_STYLES.get(text, "white")
    label = {"error": "ERROR", "warning": "WARN"}.get(text, text)
    return f"[{style}]{label}[/{style}]"
