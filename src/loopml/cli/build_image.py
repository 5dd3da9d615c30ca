"""``loopml build-image``: a container image that serves a model
(:mod:`loopml.serving.image`)."""

from __future__ import annotations

import re
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from loopml.cli.state import open_client

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = ["app", "build_image"]

_STORE_SCHEMES = ("models:", "runs:")

app = typer.Typer(rich_markup_mode=None, add_completion=False)

_HELP = """Build a container image that serves a model with `loopml serve`.

Writes a build context (a Containerfile, the verified model folder, and a wheelhouse of
loopml and the model's pinned requirements), then builds it with podman, buildah or Docker.
The image installs everything from its wheelhouse with no network, runs as a non-root user,
listens on port 8080 (or $PORT), and logs predictions only when given a store
(LOOPML_TRACKING_URI). An alias is resolved once: the image holds that version.

The wheels are built for this Python, so the base image must have the same major.minor
Python (the default, docker.io/library/python:X.Y-slim, does).

\b
Examples:
  loopml build-image models:/churn@champion -t churn:3
  loopml build-image models:/churn/3 -t churn:3 --base-image localhost/python-base:bookworm
  loopml build-image ./model -t churn:dev --no-build --context-dir churn-image
  podman run --rm -p 8080:8080 churn:3
"""


@app.command("build-image", help=_HELP, no_args_is_help=True)
def build_image(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="models:/NAME@ALIAS, models:/NAME/VERSION, runs:/RUN_ID/PATH, or a model "
            "folder or archive.",
        ),
    ],
    tag: Annotated[
        str,
        typer.Option(
            "--tag", "-t", metavar="IMAGE", help="The image's name and tag, such as churn:3."
        ),
    ],
    context_dir: Annotated[
        Path | None,
        typer.Option(
            "--context-dir",
            metavar="DIR",
            help="Write the build context here and keep it (an empty or new folder) "
            "[default: a temporary folder, removed after the build; with --no-build, "
            "./NAME-image].",
            show_default=False,
        ),
    ] = None,
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            metavar="IMAGE",
            help="The image to build on; its Python must be this one's major.minor "
            "[default: docker.io/library/python:X.Y-slim].",
            show_default=False,
        ),
    ] = None,
    tool: Annotated[
        str,
        typer.Option("--tool", metavar="auto|podman|buildah|docker", help="The builder."),
    ] = "auto",
    storage_driver: Annotated[
        str | None,
        typer.Option(
            "--storage-driver",
            metavar="DRIVER",
            help="podman's and buildah's storage driver (vfs inside a container, where "
            "overlay mounts are not allowed) [default: theirs].",
            show_default=False,
        ),
    ] = None,
    no_build: Annotated[
        bool,
        typer.Option("--no-build", help="Only write the context and print how to build it."),
    ] = False,
    requirement: Annotated[
        list[str] | None,
        typer.Option(
            "--requirement",
            "-r",
            metavar="REQ",
            help="Another distribution to install, such as holidays==0.40 (repeat for more).",
        ),
    ] = None,
    loopml_source: Annotated[
        Path | None,
        typer.Option(
            "--loopml-source",
            metavar="PATH",
            help="loopml's source tree or wheel to install [default: the source this loopml "
            "is installed from, else this version from the package index].",
            show_default=False,
        ),
    ] = None,
    pin_host: Annotated[
        bool,
        typer.Option(
            "--pin-host/--no-pin-host",
            help="Pin every dependency to the version installed here.",
        ),
    ] = True,
    trusted: Annotated[
        bool,
        typer.Option(
            "--trusted",
            help="The model runs stored code on load (pickle...) and you trust it: serve it "
            "with --trusted.",
        ),
    ] = False,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            "-p",
            metavar="NAME",
            help="Project of a models:/ URI [default: LOOPML_PROJECT, else default].",
        ),
    ] = None,
) -> None:
    from loopml.serving import image

    image.check_tag(tag)  # a bad tag fails before minutes of work
    kind, executable = _builder(tool, no_build)
    client = _client(ctx, project) if model.strip().startswith(_STORE_SCHEMES) else None
    temporary = context_dir is None and not no_build
    if context_dir is None:
        context_dir = (
            Path(tempfile.mkdtemp(prefix="loopml-image-")) if temporary else _default_dir(model)
        )
    try:
        context = image.write_build_context(
            model.strip(),
            context_dir,
            base_image=base_image or image.DEFAULT_BASE_IMAGE,
            client=client,
            project=project,
            extra_requirements=tuple(requirement or ()),
            loopml_source=loopml_source,
            pin_host=pin_host,
            trusted=trusted,
        )
        if client is not None:
            client.close()
            client = None
        command = image.build_command(
            kind, executable if not no_build else kind, context.path, tag,
            storage_driver=storage_driver,
        )  # fmt: skip
        # Plain echo, not Rich: commands must not be wrapped, so that they can be copied.
        typer.echo(
            f"wrote the build context of {context.model_uri} to {context.path} "
            f"({len(context.lock)} wheels, base {context.base_image})"
        )
        if no_build:
            typer.echo(f"build it with:\n  {shlex.join(command)}")
            return
        image_id = image.build_image(context, tag, tool=kind, storage_driver=storage_driver)
        runner = ["docker"] if kind == "docker" else ["podman"]
        if storage_driver is not None and kind != "docker":
            runner += ["--storage-driver", storage_driver]
        typer.echo(
            f"built {tag} (image {image_id.removeprefix('sha256:')[:12]}) serving "
            f"{context.model_uri}; run it with:\n  "
            f"{shlex.join([*runner, 'run', '--rm', '-p', '8080:8080', tag])}"
        )
    finally:
        if client is not None:
            client.close()
        if temporary:
            shutil.rmtree(context_dir, ignore_errors=True)


def _builder(tool: str, no_build: bool) -> tuple[str, str]:
    """The builder, found before any work (with --no-build: the one to print, podman by
    default when none is installed)."""
    from loopml.errors import MissingExtra
    from loopml.serving.image import find_tool

    try:
        return find_tool(tool)
    except MissingExtra:
        if not no_build:
            raise
        return ("podman", "podman") if tool == "auto" else (tool, tool)


def _default_dir(model: str) -> Path:
    """``./NAME-image`` for a model named NAME (the registered name, or the folder's)."""
    text = model.strip()
    if text.startswith("models:/"):
        from loopml.store.uris import parse_model_uri

        name = parse_model_uri(text)[0]
    else:
        name = text.rstrip("/").rsplit("/", 1)[-1].removesuffix(".tar.gz").removesuffix(".tgz")
    return Path(f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).lstrip('.-_') or 'model'}-image")


def _client(ctx: typer.Context, project: str | None) -> Client:
    """A client on an existing store, whose current project is ``project`` when given."""
    client = open_client(ctx)
    if project is not None:
        client.settings = client.settings.model_copy(update={"project": project})
    return client
