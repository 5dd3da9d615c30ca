"""Batch scoring: a model over a file, a folder of Parquet files or a dataset version, in chunks.

``predict_batch("models:/churn@champion", "customers.parquet", "scored.parquet")`` loads the
model once (resolved, hash-checked and trust-checked by :func:`~loopml.models.load_model`),
streams the input in chunks of ``chunk_rows`` rows, predicts each chunk through the model's
signature, and appends the chunk, with a ``prediction`` column (and ``proba_<class>`` columns),
to the output. Memory holds a few chunks whatever the input's size. The output is written under
a temporary name and renamed at the end, so a failure never leaves a partial file under the
output's name. With ``executor="ray"`` the chunks are scored by a pool of Ray actors (one model
load per actor) and written in order by this process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.errors import InvalidArgument
from loopml.models.loading import load_model
from loopml.models.predictor import Predictor
from loopml.serving._batch_io import Output, check_kept, open_input, output_format
from loopml.serving._batch_score import (
    PREDICTION,
    Failure,
    check_model,
    model_inputs,
    proba_names,
    score,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.client import Client
    from loopml.serving._batch_io import BatchInput

__all__ = ["DEFAULT_CHUNK_ROWS", "BatchResult", "Executor", "predict_batch"]

DEFAULT_CHUNK_ROWS = 100_000
"""Rows scored at a time: tens of MB for a typical table, and few enough calls that the
per-call cost of the model and the signature check does not matter."""

Executor = Literal["local", "ray"]
"""Where chunks are scored: in this process, or on a Ray cluster."""


@dataclass(frozen=True)
class BatchResult:
    """What a batch scoring run did.

    Attributes:
        output: the file written.
        rows: rows scored (and written).
        chunks: chunks scored.
        seconds: wall time, from the first chunk read to the output in place.
        model_uri: the model scored with; a ``models:/NAME@ALIAS`` is resolved to the
            ``models:/NAME/VERSION`` it pointed at.
        input: the input (a path, a URL or a ``datasets:/`` URI).
    """

    output: str
    rows: int
    chunks: int
    seconds: float
    model_uri: str
    input: str

    @property
    def rows_per_second(self) -> float:
        """Throughput over the whole run."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: ``scored 1,000,000 rows in 10 chunks in 4.2 s (238,095 rows/s) with
        models:/churn/3 -> scored.parquet``."""
        return (
            f"scored {self.rows:,} rows in {self.chunks:,} chunk{'s' if self.chunks != 1 else ''}"
            f" in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s) with "
            f"{self.model_uri} -> {self.output}"
        )


def predict_batch(
    model: str | os.PathLike[str] | Predictor,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    proba: bool = False,
    keep_columns: Sequence[str] | None = None,
    trusted: bool = False,
    executor: Executor = "local",
    ray_address: str | None = None,
    ray_workers: int | None = None,
    progress: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    client: Client | None = None,
    project: str | None = None,
) -> BatchResult:
    """Score every row of ``input`` with ``model`` and write the rows with their predictions.

    The output has the input's columns (or those in ``keep_columns``), then ``prediction``
    (``prediction_<name>`` when the model gives several values per row), then, with ``proba``,
    one ``proba_<class>`` column per class. Rows keep their input order. The model sees only
    its signature's columns, so ids, targets and other columns pass through; a model saved
    without a signature sees every input column.

    Args:
        model: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH``, a model
            folder or archive, or a :class:`~loopml.models.Predictor` already loaded.
        input: a CSV, TSV, JSON-lines or Parquet file (a path or an fsspec URL such as
            ``s3://bucket/in.parquet``), a folder of Parquet files (read recursively, in path
            order), or a dataset version (``datasets:/NAME/VERSION``, ``datasets:/NAME``).
        output: the file to write: ``.parquet`` (or ``.pq``), ``.csv`` or ``.tsv``, a local
            path (its folder is created) or an fsspec URL. An existing file is replaced, once
            every row is scored.
        chunk_rows: rows read and scored at a time; memory holds a few chunks.
        proba: add the class probabilities (classifiers with ``predict_proba`` only).
        keep_columns: the input columns to copy to the output: None (default) copies all,
            ``[]`` none (only the predictions), or a list such as ``["customer_id"]``.
        trusted: allow models whose loading runs code stored in them (pickle, torch, python
            models); see :func:`~loopml.models.load_model`.
        executor: ``"local"`` (default) scores in this process; ``"ray"`` on a Ray cluster
            (``pip install 'loopml[ray]'``), one actor per worker.
        ray_address: the Ray cluster to join (``ray://host:10001``, ``auto``); default: Ray's
            instance in this process if there is one, ``RAY_ADDRESS``, else a new local instance
            (without its dashboard), stopped at the end.
        ray_workers: Ray actors to start (default: one per CPU of the cluster).
        progress: show a progress bar with rows/s on stderr (when it is a terminal).
        storage_options: fsspec options for an input or output URL (credentials,
            ``client_kwargs``); for ``s3://``, ``LOOPML_S3_ENDPOINT_URL`` sets the endpoint.
        client: the client for ``models:/``, ``runs:/`` and ``datasets:/`` URIs (default: the
            fluent API's).
        project: the project of those URIs (default: the client's current one).

    Returns:
        A :class:`BatchResult`: rows, chunks, seconds, the resolved model URI and the output.

    Raises:
        SignatureMismatch: a chunk breaks the model's signature; the message names its rows
            (counted from 0) and every problem, and ``problems`` lists them.
        InvalidData: the input cannot be read, or the model failed on a chunk (its rows named).
        InvalidArgument: a bad argument, an output extension other than those above, a kept
            column the input lacks, a model that takes tensors, ``proba`` for a model without
            probabilities, or an input column named like a prediction column.
        UntrustedModel, ModelCorrupted, ModelNotFound, DatasetNotFound: from loading.
        MissingExtra: ``executor="ray"`` without Ray installed.
    """
    _check_args(chunk_rows, executor)
    output_format(output)  # refuse a bad extension before loading anything
    predictor, model_uri = _load(model, trusted=trusted, client=client, project=project)
    check_model(predictor, proba=proba)
    source = open_input(
        input,
        chunk_rows=chunk_rows,
        client=client,
        project=project,
        storage_options=storage_options,
    )
    kept = check_kept(source.schema, keep_columns, source.description)
    started = time.perf_counter()
    out = Output(output, storage_options)
    try:
        rows, chunks = _run(
            predictor,
            source,
            out,
            kept,
            proba=proba,
            progress=progress,
            # A Predictor given loaded was trusted by its caller: Ray's workers load the same
            # (digest-checked) model with the same trust.
            results=_executor(
                executor,
                predictor,
                source,
                proba,
                trusted or isinstance(model, Predictor),
                ray_address,
                ray_workers,
            ),
        )
        out.commit(_empty_schema(predictor, source.schema, kept, proba))
    except BaseException:
        out.discard()
        raise
    return BatchResult(
        output=out.path,
        rows=rows,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        model_uri=model_uri,
        input=source.description,
    )


def _check_args(chunk_rows: int, executor: str) -> None:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise InvalidArgument(f"chunk_rows must be a positive integer, not {chunk_rows!r}")
    if executor not in ("local", "ray"):
        raise InvalidArgument(f"executor must be 'local' or 'ray', not {executor!r}")


def _load(
    model: str | os.PathLike[str] | Predictor,
    *,
    trusted: bool,
    client: Client | None,
    project: str | None,
) -> tuple[Predictor, str]:
    """The predictor and the URI to report: an alias is resolved first, so the whole run uses
    (and the result names) one version even if the alias moves meanwhile."""
    if isinstance(model, Predictor):
        return model, model.uri
    text = os.fspath(model)
    if isinstance(text, str) and text.startswith("models:/"):
        from loopml.client import context

        client = client or context.get_client()
        text = client.resolve_model_uri(text, project=project or context.get_project()).uri
    return load_model(text, trusted=trusted, client=client, project=project), str(text)


Scored = Generator[tuple["pa.RecordBatch", "pa.RecordBatch | Failure"], None, None]
"""Each chunk with its predictions (or why it failed), in input order."""


def _executor(
    executor: Executor,
    predictor: Predictor,
    source: BatchInput,
    proba: bool,
    trusted: bool,
    address: str | None,
    workers: int | None,
) -> Scored:
    chunks = source.chunks()
    if executor == "ray":
        from loopml.serving._batch_ray import ray_results

        return ray_results(
            predictor, chunks, proba=proba, trusted=trusted, address=address, workers=workers
        )
    return ((c, score(predictor, model_inputs(predictor, c), proba=proba)) for c in chunks)


def _run(
    predictor: Predictor,
    source: BatchInput,
    out: Output,
    kept: list[str],
    *,
    proba: bool,
    progress: bool,
    results: Scored,
) -> tuple[int, int]:
    """Write each scored chunk in order; returns (rows, chunks)."""
    rows = chunks = 0
    name = Path(source.description.rstrip("/")).name or source.description
    with _bar(f"scoring {name}", source.total_rows, enabled=progress) as advance:
        with closing(results) as scored:  # stops Ray's actors on an error
            for chunk, outcome in scored:
                chunks += 1
                where = (
                    f"chunk {chunks} (rows {rows:,} to {rows + chunk.num_rows - 1:,}, counted "
                    f"from 0) of {source.description}"
                )
                if isinstance(outcome, Failure):
                    raise outcome.error(where) from outcome.cause
                if chunks == 1:
                    _check_clash(kept, outcome.schema.names, source.description)
                out.write(_join(chunk, kept, outcome), where)
                rows += chunk.num_rows
                advance(chunk.num_rows)
    return rows, chunks


def _check_clash(kept: list[str], predicted: list[str], description: str) -> None:
    clash = [n for n in predicted if n in kept]
    if clash:
        raise InvalidArgument(
            f"{description} has column(s) {', '.join(map(repr, clash))}, which the predictions "
            "would overwrite; leave them out with keep_columns (--keep / --only-predictions) "
            "or rename them"
        )


def _join(chunk: pa.RecordBatch, kept: list[str], predictions: pa.RecordBatch) -> pa.RecordBatch:
    import pyarrow as pa

    arrays = [chunk.column(n) for n in kept] + list(predictions.columns)
    return pa.RecordBatch.from_arrays(arrays, names=[*kept, *predictions.schema.names])


def _empty_schema(
    predictor: Predictor, schema: pa.Schema, kept: list[str], proba: bool
) -> pa.Schema:
    """The columns of an output with no rows: the kept ones, ``prediction`` (of unknown type,
    as no row was scored) and the probability columns."""
    import pyarrow as pa

    fields = [schema.field(n) for n in kept] + [pa.field(PREDICTION, pa.null())]
    if proba:
        try:
            width = len(predictor.classes_)
        except AttributeError:
            width = 0
        fields += [pa.field(n, pa.float64()) for n in proba_names(predictor, width)]
    return pa.schema(fields)


@contextmanager
def _bar(description: str, total: int | None, *, enabled: bool) -> Iterator[Any]:
    """A transient progress bar on stderr with rows, rows/s and elapsed time; yields the
    function that advances it (a no-op when no bar is shown)."""
    from loopml import _progress

    if not enabled or not _progress.enabled():
        yield lambda rows: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} rows/s")

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total:
        columns += [BarColumn(), MofNCompleteColumn(), TextColumn("rows")]
    else:
        columns += [TextColumn("{task.completed:,.0f} rows")]
    columns += [RateColumn(), TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total or None)
        yield lambda rows: bar.advance(task, rows)
