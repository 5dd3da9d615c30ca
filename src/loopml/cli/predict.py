"""``loopml predict``: score a file, a folder of Parquet files or a dataset version with a model,
in chunks, locally or on a Ray cluster (:func:`loopml.serving.batch.predict_batch`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli import output
from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["app", "predict"]

_STORE_SCHEMES = ("models:", "runs:", "datasets:")

app = typer.Typer(rich_markup_mode=None, add_completion=False)


@app.command("predict", no_args_is_help=True)
def predict(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH, or a model folder "
            "or archive.",
        ),
    ],
    input_: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            metavar="PATH_OR_URI",
            help="A CSV, TSV, JSON-lines or Parquet file (or fsspec URL), a folder of Parquet "
            "files, or a dataset version (datasets:/NAME/VERSION).",
        ),
    ],
    output_: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="The file to write: .parquet, .csv or .tsv (replaced once every row is scored).",
        ),
    ],
    chunk_rows: Annotated[
        int,
        typer.Option("--chunk-rows", metavar="N", min=1, help="Rows read and scored at a time."),
    ] = 100_000,
    proba: Annotated[
        bool, typer.Option("--proba", help="Add a proba_<class> column per class.")
    ] = False,
    only_predictions: Annotated[
        bool,
        typer.Option(
            "--only-predictions", help="Write only the prediction columns, no input column."
        ),
    ] = False,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            metavar="COL",
            help="Copy only this input column to the output (repeat for several; e.g. an id).",
        ),
    ] = None,
    trusted: Annotated[
        bool,
        typer.Option(
            "--trusted",
            help="Load models whose flavor runs stored code (pickle, torch, python): only for "
            "models from a source you trust.",
        ),
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            metavar="local|ray",
            help="Score in this process, or on a Ray cluster (pip install 'loopml[ray]').",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            metavar="ADDR",
            help="The Ray cluster to join (ray://host:10001, auto) [default: RAY_ADDRESS, else "
            "a local instance for this run].",
            show_default=False,
        ),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option(
            "--ray-workers",
            metavar="N",
            min=1,
            help="Ray actors, each loading the model once [default: one per CPU].",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            metavar="NAME",
            help="Project of models:/ and datasets:/ URIs "
            "[default: LOOPML_PROJECT, else default].",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON instead of a line.")
    ] = False,
) -> None:
    """Score every row of a file or dataset with a model and write it with its predictions.

    The output has the input's columns, then 'prediction' (and with --proba one proba_<class>
    column per class), rows in input order. The model sees only its signature's columns, so ids
    and other columns pass through. The input is read in chunks of --chunk-rows rows, so memory
    stays bounded; the output is written under a temporary name and renamed at the end, so a
    failed run never leaves a partial file. A progress bar shows rows/s on a terminal.

    \b
    Examples:
      loopml predict models:/churn@champion --input customers.parquet --output scored.parquet
      loopml predict models:/churn/3 -i customers.csv -o scored.csv --proba --keep customer_id
      loopml predict models:/churn@champion -i datasets:/customers/4 -o scored.parquet
      loopml predict models:/churn@champion -i parts/ -o scored.parquet --executor ray
    """
    from loopml.errors import InvalidArgument
    from loopml.serving.batch import predict_batch

    if executor not in ("local", "ray"):
        raise InvalidArgument(f"--executor must be local or ray, not {executor!r}")
    if only_predictions and keep:
        raise output.fail("--only-predictions and --keep do not go together", code=2)
    kept: list[str] | None = [] if only_predictions else (list(keep) if keep else None)
    client = _client(ctx, project) if _needs_store(model, input_) else None
    try:
        result = predict_batch(
            model.strip(),
            input_.strip(),
            output_,
            chunk_rows=chunk_rows,
            proba=proba,
            keep_columns=kept,
            trusted=trusted,
            executor="ray" if executor == "ray" else "local",
            ray_address=ray_address,
            ray_workers=ray_workers,
            client=client,
            project=project,
        )
    finally:
        if client is not None:
            client.close()
    if as_json:
        output.print_json(
            {
                "output": result.output,
                "input": result.input,
                "model": result.model_uri,
                "rows": result.rows,
                "chunks": result.chunks,
                "seconds": round(result.seconds, 3),
                "rows_per_second": round(result.rows_per_second, 1),
            }
        )
        return
    typer.echo(result.summary())


def _needs_store(*refs: str) -> bool:
    return any(r.strip().startswith(_STORE_SCHEMES) for r in refs)


def _client(ctx: typer.Context, project: str | None) -> Client:
    """A client on an existing store, whose current project is ``project`` when given."""
    client = open_client(ctx)
    if project is not None:
        client.settings = client.settings.model_copy(update={"project": project})
    return client
