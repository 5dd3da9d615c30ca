"""Log and load dataset versions: hash, store as Parquet, profile, record, resolve.

``loopml.log_dataset(data, "churn")`` streams ``data`` (a DataFrame, a file, a URL, a SQL query;
see :mod:`loopml.data.sources`) once: each batch goes into the layout-independent content hash
(:mod:`loopml.data.digest`) and, unless the source already is a local Parquet file, into a
Parquet file. If the dataset already has a version with that digest it is reused, and nothing is
written. Otherwise the Parquet file and the version's profile go to the artifact store (blobs are
content-addressed, so a file is stored once), and only then is the version recorded in the
metadata store: a crash at any point leaves no half-written version behind, at worst an
unreferenced blob.

When a run is active (``with loopml.start_run():``) the version records the run that logged it,
and ``role=`` records the version as one of the run's inputs (``train``, ``test``...).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._progress import progress
from loopml.client import Client, context
from loopml.data import contract
from loopml.data.digest import ContentHasher
from loopml.data.sources import Source, open_source
from loopml.entities import DatasetVersion
from loopml.errors import DatasetNotFound, InvalidArgument, InvalidData
from loopml.store.validation import check_dataset_name, check_role

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loopml.schema import Schema
    from loopml.stats import DatasetProfile

__all__ = [
    "dataset_profile",
    "dataset_schema",
    "get_dataset",
    "load_dataset",
    "log_dataset",
]


def _client(client: Client | None) -> Client:
    return client if client is not None else context.get_client()


def _version(
    c: Client, dataset: str | DatasetVersion, version: int | str | None, project: str | None
) -> DatasetVersion:
    """Resolve a dataset version in ``project``, else the current project (``set_project``)."""
    return c.get_dataset_version(dataset, version, project=project or context.get_project())


def log_dataset(
    data: Any,
    name: str,
    *,
    role: str | None = None,
    project: str | None = None,
    schema: Schema | str | os.PathLike[str] | None = "infer",
    target: str | None = None,
    profile: bool = True,
    description: str = "",
    metadata: Mapping[str, Any] | None = None,
    format: str | None = None,
    storage_options: dict[str, Any] | None = None,
    client: Client | None = None,
) -> DatasetVersion:
    """Version a dataset: the same content always gives the same version.

    Args:
        data: a pandas or polars DataFrame, a pyarrow Table, the path or fsspec URL of a CSV,
            Parquet or JSON-lines file, or a :class:`~loopml.data.SqlQuery`.
        name: the dataset's name in the project (``churn``, ``churn-train``).
        role: also record the version as an input of the active run in this role (``train``,
            ``validation``, ``test``, ``evaluation``, ``reference`` or your own).
        project: the project (default: the current one, ``LOOPML_PROJECT``).
        schema: ``"infer"`` (default) infers the data contract; a :class:`~loopml.schema.Schema`
            or the path of a schema YAML file is stored as given (the data is validated against
            it, strictly); None stores no schema.
        target: the target column, recorded in the inferred schema and profile.
        profile: compute and store the profile (default True).
        description: the dataset's description.
        metadata: JSON-ready facts about how the data was made, stored with the version.
        format: the file format when the name does not say (``csv``, ``tsv``, ``parquet``,
            ``jsonl``).
        storage_options: fsspec options for a remote URL (credentials, endpoint).
        client: the client to use (default: the fluent API's).

    Returns:
        The :class:`~loopml.entities.DatasetVersion`: a new one, or the existing version with the
        same content.

    Raises:
        InvalidArgument: a bad name, role or argument.
        InvalidData: the data cannot be read, is empty, or breaks the given schema.
    """
    c = _client(client)
    check_dataset_name(name)
    if role is not None:
        check_role(role)
    project_id = c.project_id(project or context.get_project())
    run_id = context.active_run_id()
    source = open_source(data, format=format, storage_options=storage_options)
    given_schema = _given_schema(schema)
    # The first pass only hashes (and writes Parquet): when the content is already a version,
    # as when a pipeline runs again, nothing else is read. A large new file is then profiled
    # in two more passes (contract.profile_parquet).
    with _workdir(c) as work:
        parquet, hasher = _first_pass(source, work, name)
        digest = hasher.hexdigest()
        existing = _existing(c, project_id, name, digest)
        if existing is not None:
            if given_schema is not None:  # the contract asked for holds for reused data too
                frame = source.frame if source.frame is not None else contract.in_memory(parquet)
                contract.validate_parquet(
                    parquet, given_schema, frame=frame, where=source.description
                )
            version = existing
        else:
            version = _store_version(
                c,
                project_id,
                name,
                digest=digest,
                parquet=parquet,
                source=source,
                schema=given_schema,
                infer=schema == "infer",
                target=target,
                with_profile=profile,
                edges=None,
                description=description,
                metadata=metadata,
                run_id=run_id,
            )
    if role is not None and run_id is not None:
        c.log_inputs(run_id, [(version, role)])
    return version


def _given_schema(schema: Any) -> Schema | None:
    if schema is None or (isinstance(schema, str) and schema == "infer"):
        return None
    from loopml.schema import Schema

    if isinstance(schema, Schema):
        return schema
    if isinstance(schema, (str, os.PathLike)):
        return Schema.load(schema)
    raise InvalidArgument(
        f"schema must be 'infer', a loopml.schema.Schema, the path of a schema YAML file, or "
        f"None; got {type(schema).__name__}"
    )


@contextmanager
def _workdir(client: Client) -> Iterator[Path]:
    """A scratch folder for the Parquet file being written (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="loopml-dataset-") as tmp:
        yield Path(tmp)


def _first_pass(source: Source, work: Path, name: str) -> tuple[Path, ContentHasher]:
    """Stream the source once: hash every batch and, unless it is a local Parquet file already,
    write it to Parquet. Returns the Parquet file and the hasher."""

    hasher: ContentHasher | None = None
    schema: pa.Schema | None = source.schema
    writer: pq.ParquetWriter | None = None
    out = work / "data.parquet"
    with progress(f"reading {name}", unit="rows") as bar:
        try:
            for raw in source.batches():
                if schema is None:
                    schema = raw.schema
                if hasher is None:
                    hasher = ContentHasher(schema)
                batch = (
                    raw if raw.schema.equals(schema) else _conform(raw, schema, source.description)
                )
                hasher.update(batch)
                if source.parquet_path is None:
                    if writer is None:
                        writer = _writer(out, schema)
                    writer.write_batch(batch)
                bar.advance(batch.num_rows)
        finally:
            if writer is not None:
                writer.close()
    if hasher is None or hasher.num_rows == 0:
        raise InvalidData(f"{source.description} has no rows; nothing to version")
    if source.parquet_path is not None:
        return Path(source.parquet_path), hasher
    return out, hasher


def _writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """A Parquet writer tuned for speed: snappy, dictionaries only where values repeat (not on
    floats, where they cost time and rarely pay)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dictionary = [f.name for f in schema if not pa.types.is_floating(f.type)]
    return pq.ParquetWriter(path, schema, compression="snappy", use_dictionary=dictionary)


def _conform(batch: pa.RecordBatch, schema: pa.Schema, where: str) -> pa.RecordBatch:
    """A later batch with other types than the first (a SQL chunk whose column is all null,
    say), cast to the first batch's types."""
    import pyarrow as pa

    if batch.schema.names != schema.names:
        raise InvalidData(
            f"{where}: the columns changed while reading ({batch.schema.names} after "
            f"{schema.names})"
        )
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        bad = [
            f.name for f, g in zip(schema, batch.schema, strict=True) if not f.type.equals(g.type)
        ]
        raise InvalidData(
            f"{where}: column(s) {', '.join(map(repr, bad))} changed type while reading "
            f"({exc}); give each column one type"
        ) from exc


def _existing(client: Client, project_id: str, name: str, digest: str) -> DatasetVersion | None:
    try:
        return client.store.get_dataset_version(project_id, name, digest)
    except DatasetNotFound:
        return None


def _store_version(
    client: Client,
    project_id: str,
    name: str,
    *,
    digest: str,
    parquet: Path,
    source: Source,
    schema: Schema | None,
    infer: bool,
    target: str | None,
    with_profile: bool,
    edges: dict[str, tuple[float, ...]] | None,
    description: str,
    metadata: Mapping[str, Any] | None,
    run_id: str | None,
) -> DatasetVersion:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(parquet).metadata
    frame = source.frame if source.frame is not None else contract.in_memory(parquet)
    prof = None
    if with_profile:
        prof = contract.profile_parquet(parquet, frame=frame, target=target, edges=edges)
    if schema is not None:
        contract.validate_parquet(parquet, schema, frame=frame, where=source.description)
    elif infer:
        # A large file's schema is widened by the whole file's profile; without one (profile=
        # False) it keeps only what a sample can promise: names, types, the target.
        schema = contract.infer_parquet(parquet, frame=frame, target=target, profile=prof)
    profile_blob = None
    if prof is not None:
        profile_blob, _ = client.artifacts.put(prof.to_json().encode())
    blob, size = client.artifacts.put(str(parquet))
    version, _ = client.store.create_dataset_version(
        project_id,
        name,
        digest=digest,
        blob=blob,
        size_bytes=size,
        num_rows=meta.num_rows,
        num_columns=meta.num_columns,
        schema=None if schema is None else schema.to_dict(),
        profile_blob=profile_blob,
        source=source.description[:4000],
        run_id=run_id,
        metadata=dict(metadata or {}),
        description=description,
    )
    return version


def get_dataset(
    dataset: str | DatasetVersion,
    version: int | str | None = None,
    *,
    project: str | None = None,
    client: Client | None = None,
) -> DatasetVersion:
    """The metadata of a dataset version (``datasets:/churn/3``, ``datasets:/churn@latest``, or
    a name and a version)."""
    return _version(_client(client), dataset, version, project)


def cache_dir() -> Path:
    """Where verified copies of dataset files are kept: ``$XDG_CACHE_HOME/loopml/datasets``
    (``~/.cache/loopml/datasets``). Files are named by their sha256, so stores can share it and
    it is always safe to delete."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "loopml" / "datasets"


def local_parquet(version: DatasetVersion, client: Client | None = None) -> Path:
    """A local, verified copy of the version's Parquet file (cached by its sha256)."""
    c = _client(client)
    cache = cache_dir()
    path = cache / f"{version.blob}.parquet"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        c.artifacts.get(version.blob, path)  # verified, then moved into place
    return path


def load_dataset(
    dataset: str | DatasetVersion,
    version: int | str | None = None,
    *,
    role: str | None = None,
    columns: list[str] | None = None,
    as_: str = "pandas",
    project: str | None = None,
    client: Client | None = None,
) -> Any:
    """Load a dataset version as a DataFrame.

    Args:
        dataset: a ``datasets:/`` URI, a name (with ``version``), or a version.
        version: with a name: a number, ``"latest"`` (default) or a digest prefix.
        role: also record the version as an input of the active run in this role.
        columns: read only these columns.
        as_: ``"pandas"`` (default), ``"polars"`` or ``"arrow"`` (a pyarrow Table).
        project: the project (default: the current one).
        client: the client to use (default: the fluent API's).

    Raises:
        DatasetNotFound: no such dataset or version.
        InvalidArgument: a bad role, column or ``as_``.
    """
    import pyarrow.parquet as pq

    if as_ not in ("pandas", "polars", "arrow"):
        raise InvalidArgument(f"as_ must be 'pandas', 'polars' or 'arrow', not {as_!r}")
    if role is not None:
        check_role(role)
    c = _client(client)
    v = _version(c, dataset, version, project)
    path = local_parquet(v, c)
    if columns is not None:
        names = pq.ParquetFile(path).schema_arrow.names
        missing = [col for col in columns if col not in names]
        if missing:
            raise InvalidArgument(
                f"{v.uri} has no column(s) {', '.join(map(repr, missing))}; its columns are "
                f"{', '.join(names)}"
            )
    table = pq.read_table(path, columns=columns)
    run_id = context.active_run_id()
    if role is not None and run_id is not None:
        c.log_inputs(run_id, [(v, role)])
    if as_ == "arrow":
        return table
    if as_ == "polars":
        from loopml._lazy import require

        return require("polars", "polars", "loading a dataset as polars").from_arrow(table)
    frame: pd.DataFrame = table.to_pandas()
    return frame


def dataset_profile(
    dataset: str | DatasetVersion, *, project: str | None = None, client: Client | None = None
) -> DatasetProfile:
    """The stored profile of a dataset version."""
    from loopml.stats import DatasetProfile

    c = _client(client)
    v = _version(c, dataset, None, project)
    if v.profile_blob is None:
        raise DatasetNotFound(
            v.name,
            v.version,
            message=f"{v.uri} was logged without a profile; compute one with "
            f"`loopml data profile {v.uri}`",
        )
    return DatasetProfile.from_json(c.artifacts.read(v.profile_blob).decode())


def dataset_schema(
    dataset: str | DatasetVersion, *, project: str | None = None, client: Client | None = None
) -> Schema:
    """The stored data contract (schema) of a dataset version."""
    from loopml.schema import Schema

    c = _client(client)
    v = _version(c, dataset, None, project)
    if v.schema is None:
        raise DatasetNotFound(
            v.name,
            v.version,
            message=f"{v.uri} was logged without a schema; infer one with "
            f"`loopml data validate {v.uri} --infer`",
        )
    return Schema.from_dict(v.schema)
