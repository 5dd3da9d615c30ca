"""``loopml models register``: a model logged to a run, or a model folder, becomes a new version
of a registered model, once its manifest and every file's hash check out."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.models._common import (
    JsonOption,
    ProjectOption,
    app,
    open_registry,
    version_dict,
)
from loopml.cli.state import resolve_run

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import ModelVersion

__all__ = ["register"]


def _run_name(client: Client, run_id: str | None) -> str:
    from loopml.errors import RunNotFound

    if run_id is None:
        return ""
    try:
        return client.get_run(run_id).name
    except RunNotFound:
        return "(deleted)"


# --- register ------------------------------------------------------------------------------------


@app.command("register")
def register(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="A logged model (runs:/RUN_ID/PATH) or a local model folder (or .tar.gz).",
        ),
    ],
    name: Annotated[str, typer.Argument(metavar="NAME", help="The registered model's name.")],
    description: Annotated[
        str, typer.Option("--description", "-d", metavar="TEXT", help="What this version is.")
    ] = "",
    project: ProjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a model as a new version of NAME.

    SOURCE is a model logged to a run (runs:/RUN_ID/PATH; a unique run-id prefix works) or a
    model folder written by save_model (or an archive from export_model). The manifest and
    every file's hash are checked first; nothing is loaded. A folder is logged as the files of a
    new run, which becomes the version's run. The model NAME is created when it does not exist.

    \b
    Examples:
      loopml models register runs:/3f2a9c41/model churn
      loopml models register ./churn-model churn -d "retrained on March data"
    """
    from loopml.errors import InvalidArgument

    text = source.strip()
    if text.startswith("models:"):
        raise InvalidArgument(
            f"{text} is already registered; register a logged model (runs:/RUN_ID/PATH) or a "
            "model folder"
        )
    if text.startswith("runs:"):
        with open_registry(ctx, project) as client:
            mv = _register_logged(client, text, name, description, project)
            run_name = _run_name(client, mv.run_id)
    else:
        if "://" in text or not Path(text).exists():
            raise InvalidArgument(
                f"{text}: no such model folder; give a folder written by save_model, an "
                "archive from export_model, or a logged model as runs:/RUN_ID/PATH"
            )
        with open_registry(ctx, project, create=True) as client:
            mv = _register_folder(client, Path(text), name, description, project)
            run_name = _run_name(client, mv.run_id)
    if as_json:
        output.print_json(version_dict(mv))
        return
    typer.echo(f"Registered {mv.uri} ({mv.flavor})")
    if mv.run_id:
        typer.echo(f"  run              {mv.run_id[:8]} ({run_name})")
    typer.echo(f"  source           {mv.source}")
    typer.echo(f"  manifest digest  {mv.manifest_digest[:12]}")
    typer.echo(f"Promote it with: loopml models promote {mv.name} {mv.version} --gate gate.yaml")


def _verified(folder: Path) -> tuple[Any, str]:
    """The manifest of a local model folder and its digest, after checking every file."""
    from loopml.models.loading import verify_model
    from loopml.models.manifest import read_manifest

    manifest = verify_model(folder)  # flavor known, every file listed and hashing right
    _, digest = read_manifest(folder)
    return manifest, digest


def _register_logged(
    client: Client, text: str, name: str, description: str, project: str | None
) -> ModelVersion:
    import shutil

    from loopml.errors import ArtifactNotFound, InvalidArgument
    from loopml.models.loading import resolve_model

    run_text, _, path = text.split(":", 1)[1].strip("/").partition("/")
    if not run_text or not path:
        raise InvalidArgument(
            f"{text!r} is not a logged model; write runs:/RUN_ID/PATH (runs:/3f2a9c41/model)"
        )
    run = resolve_run(client, run_text)
    uri = f"runs:/{run.run_id}/{path.strip('/')}"
    try:
        folder, _, temporary = resolve_model(uri, client=client)
    except ArtifactNotFound as exc:
        raise ArtifactNotFound(
            f"{exc.message}; see the run's files with `loopml runs show {run.run_id[:8]}` "
            "(log_model(model, 'model') logs to runs:/RUN_ID/model)"
        ) from exc
    try:
        manifest, digest = _verified(folder)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return client.create_model_version(
        name,
        uri,
        run_id=run.run_id,
        flavor=manifest.flavor,
        signature=None if manifest.signature is None else manifest.signature.to_dict(),
        manifest_digest=digest,
        description=description,
        project=project,
    )


def _register_folder(
    client: Client, path: Path, name: str, description: str, project: str | None
) -> ModelVersion:
    import shutil

    from loopml.entities import RunStatus
    from loopml.models.loading import resolve_model

    folder, _, temporary = resolve_model(path)  # an archive is unpacked into a private folder
    try:
        manifest, digest = _verified(folder)
        run = client.create_run(
            project or client.settings.project,
            name=f"register-{name}",
            tags={"loopml.source": str(path.resolve())},
            heartbeat=False,
        )
        try:
            client.log_artifacts(run.run_id, folder, artifact_path="model")
            mv = client.create_model_version(
                name,
                f"runs:/{run.run_id}/model",
                run_id=run.run_id,
                flavor=manifest.flavor,
                signature=None if manifest.signature is None else manifest.signature.to_dict(),
                manifest_digest=digest,
                description=description,
                project=project,
            )
        except BaseException:
            client.end_run(run.run_id, RunStatus.FAILED)
            raise
        client.end_run(run.run_id)
        return mv
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
