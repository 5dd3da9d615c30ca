"""Container images for served models: ``loopml build-image`` writes a build context, then podman,
buildah or Docker builds it.

A build context needs nothing else to build, and no network (the image installs with
``pip install --no-index``; containers often cannot reach a package index at all)::

    context/
      Containerfile      a virtual environment in /opt/loopml installed from wheels/, the model
                         in /models/NAME (read-only, owned by root), a non-root user (uid
                         10001), EXPOSE 8080, a HEALTHCHECK on /ping, the entrypoint below
      model/             the model folder, verified against its manifest (and, for models:/
                         URIs, the registry's digest of that manifest)
      wheels/            loopml's own wheel, the model's pinned requirements and every
                         dependency; requirements.lock names each wheel with its sha256
      requirements.txt   what was asked for: the model's pins and any extra requirements
      constraints.txt    the build host's version of everything else

The image runs ``python -m loopml.serving.image /models/NAME --name NAME``, which starts
``loopml serve /models/NAME --host 0.0.0.0 --port $PORT --name NAME`` (arguments given to
``podman run IMAGE ...`` are appended; :func:`serve_command`). Predictions are logged only
when the container gets a store (``LOOPML_TRACKING_URI``, and ``LOOPML_ARTIFACT_URI`` for the
segments); without one the container writes nothing, so it runs on a read-only root
filesystem.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument
from loopml.serving._builders import TOOLS as TOOLS
from loopml.serving._builders import build_command as build_command
from loopml.serving._builders import find_tool as find_tool
from loopml.serving._containerfile import PORT, endpoint_name
from loopml.serving._containerfile import check_tag as check_tag

if TYPE_CHECKING:
    from loopml.client import Client

__all__ = [
    "BuildContext",
    "DEFAULT_BASE_IMAGE",
    "TOOLS",
    "build_command",
    "build_image",
    "check_tag",
    "find_tool",
    "main",
    "serve_command",
    "write_build_context",
]

DEFAULT_BASE_IMAGE = f"docker.io/library/python:{sys.version_info[0]}.{sys.version_info[1]}-slim"
"""The base image when none is given: the official slim Python image of this interpreter's
version, so that the wheels built here install in it."""


@dataclass(frozen=True)
class BuildContext:
    """A build context written by :func:`write_build_context`.

    Attributes:
        path: the folder (pass it to :func:`build_image`, or to ``podman build``).
        model_uri: the model served: a ``models:/`` alias is resolved to its version
            (``models:/churn/3``), so the image always holds that one.
        endpoint: the name the image serves the model under (the registered name).
        model_version: the registered version, if the model came from the registry.
        manifest_digest: the sha256 of the model's manifest, which pins every model file.
        base_image: the image it builds on.
        requirements: the lines of ``requirements.txt``.
        lock: every wheel of the wheelhouse (``name==version --hash=sha256:...``).
    """

    path: Path
    model_uri: str
    endpoint: str
    model_version: int | None
    manifest_digest: str
    base_image: str
    requirements: tuple[str, ...]
    lock: tuple[str, ...]

    @property
    def containerfile(self) -> Path:
        """The Containerfile's path."""
        return self.path / "Containerfile"


def write_build_context(
    model_uri: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    client: Client | None = None,
    project: str | None = None,
    extra_requirements: Sequence[str] = (),
    loopml_source: str | os.PathLike[str] | None = None,
    pin_host: bool = True,
    trusted: bool = False,
) -> BuildContext:
    """Write the build context of an image serving a model (see the module docstring).

    Args:
        model_uri: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH``, or a
            model folder or archive. An alias is resolved once: the image holds that version.
        dest: the folder to write; it must not exist or be empty.
        base_image: the image to build on; its Python must be this interpreter's major.minor
            version (the wheels are built for it), and the Containerfile checks that first.
        client: the store of ``models:/`` and ``runs:/`` URIs (default: the fluent API's).
        project: the project of a ``models:/`` URI (default: the client's).
        extra_requirements: more distributions to install (``holidays==0.40``).
        loopml_source: loopml's source tree or wheel (default: the tree this loopml is
            installed from; for a loopml installed from an index, that release).
        pin_host: pin every other dependency to the version installed here.
        trusted: the model's flavor runs stored code on load (pickle...) and you trust it: the
            image then serves it with ``--trusted``.

    Returns:
        The written context.

    Raises:
        InvalidArgument: a bad base image or requirement, or ``dest`` is not empty.
        UntrustedModel: the flavor needs trust and ``trusted`` is False.
        ModelNotFound, ModelCorrupted, UnsafePath: as for :func:`loopml.load_model`.
        LoopError: building loopml's wheel or filling the wheelhouse failed.
    """
    from loopml.serving import _wheelhouse as wh

    check_tag(base_image, what="base image")
    wh.model_requirements({}, extra_requirements)  # bad extras fail before any work
    root = Path(dest).expanduser()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InvalidArgument(
            f"the build context folder {str(root)!r} exists and is not empty; remove it or "
            "choose another folder"
        )
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _write(
            root,
            os.fspath(model_uri),
            base_image=base_image,
            client=client,
            project=project,
            extra_requirements=extra_requirements,
            loopml_source=loopml_source,
            pin_host=pin_host,
            trusted=trusted,
        )
    except BaseException:
        if created:  # no half-written context is left behind
            shutil.rmtree(root, ignore_errors=True)
        else:
            for child in root.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def _write(
    root: Path,
    model_uri: str,
    *,
    base_image: str,
    client: Client | None,
    project: str | None,
    extra_requirements: Sequence[str],
    loopml_source: str | os.PathLike[str] | None,
    pin_host: bool,
    trusted: bool,
) -> BuildContext:
    from loopml.models.manifest import sha256_file
    from loopml.serving import _wheelhouse as wh
    from loopml.serving._containerfile import render
    from loopml.serving._wheelhouse import LOCK_FILE

    uri, endpoint, version = _pin_version(model_uri, client, project)
    manifest_digest, pins, needs_trust = _copy_model(uri, root / "model", client, project)
    if needs_trust and not trusted:
        from loopml.errors import UntrustedModel

        raise UntrustedModel(
            f"the model {uri!r} loads by running code stored in it (pickle or the like); an "
            "image would serve it with --trusted. If you trust where it came from, build with "
            "trusted=True (loopml build-image --trusted)"
        )
    requirements = wh.model_requirements(pins, extra_requirements)
    (root / "requirements.txt").write_text(
        "# What the image installs besides loopml: the model's pinned requirements and extras.\n"
        + "".join(f"{r}\n" for r in requirements)
    )
    constraints = wh.host_constraints(requirements) if pin_host else []
    (root / "constraints.txt").write_text(
        "# The build host's versions of everything else the image needs.\n"
        + "".join(f"{c}\n" for c in constraints)
    )
    wheels = root / "wheels"
    wheels.mkdir()
    with tempfile.TemporaryDirectory(prefix="loopml-wheel-") as tmp:
        own = wh.loopml_wheel(Path(tmp), loopml_source)  # pip wheel copies it into wheels/
        lock = wh.fill_wheelhouse(
            wheels, root / "requirements.txt", root / "constraints.txt", own_wheel=own
        )
    context = BuildContext(
        path=root.resolve(),
        model_uri=uri,
        endpoint=endpoint,
        model_version=version,
        manifest_digest=manifest_digest,
        base_image=base_image,
        requirements=tuple(requirements),
        lock=tuple(lock),
    )
    context.containerfile.write_text(
        render(
            base_image=base_image,
            model_uri=uri,
            endpoint=endpoint,
            manifest_digest=manifest_digest,
            wheelhouse_digest=sha256_file(wheels / LOCK_FILE),
            trusted=needs_trust,
        )
    )
    return context


def _pin_version(
    uri: str, client: Client | None, project: str | None
) -> tuple[str, str, int | None]:
    """``(uri, endpoint name, version)``: a ``models:/`` alias becomes ``models:/NAME/N``."""
    if uri.startswith("models:/"):
        from loopml.client import context

        client = client or context.get_client()
        found = client.resolve_model_uri(uri, project=project or context.get_project())
        return f"models:/{found.name}/{found.version}", endpoint_name(found.name), found.version
    tail = uri.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz"):
        tail = tail.removesuffix(suffix)
    return uri, endpoint_name(tail), None


def _copy_model(
    uri: str, target: Path, client: Client | None, project: str | None
) -> tuple[str, dict[str, str], bool]:
    """Copy the model folder to ``target`` and verify the copy (the manifest against the
    registry's digest, every file against the manifest).

    Returns:
        ``(manifest digest, pinned requirements, whether its flavor needs trust)``.
    """
    from loopml.errors import ModelCorrupted
    from loopml.models.flavors import FLAVORS
    from loopml.models.loading import resolve_model
    from loopml.models.manifest import read_manifest, verify_folder

    folder, expected, temporary = resolve_model(uri, client=client, project=project)
    try:
        shutil.copytree(folder, target, symlinks=True)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    _open_modes(target)
    manifest, digest = read_manifest(target, expected_digest=expected)
    verify_folder(target, manifest)
    flavor = FLAVORS.get(manifest.flavor)
    if flavor is None:
        raise ModelCorrupted(
            f"the model {uri!r} names flavor {manifest.flavor!r:.80}, which is not one of "
            f"loopml's ({', '.join(FLAVORS)}); if a newer loopml saved it, upgrade loopml"
        )
    return digest, dict(manifest.requirements), flavor.needs_trust


def _open_modes(folder: Path) -> None:
    """World-readable modes (a downloaded model sits in a 0o700 temporary folder): the image's
    non-root user must read /model, which stays owned by root."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def build_image(
    context: str | os.PathLike[str] | BuildContext,
    tag: str,
    *,
    tool: str = "auto",
    storage_driver: str | None = None,
) -> str:
    """Build the image of a context from :func:`write_build_context`; the builder's output
    goes to this process's stdout and stderr as it runs.

    Args:
        context: the context, or its folder.
        tag: the image reference to give it (``churn:3``).
        tool: ``auto``, ``podman``, ``buildah`` or ``docker`` (see :func:`find_tool`).
        storage_driver: podman's and buildah's storage driver (see :func:`build_command`).

    Returns:
        The image id.

    Raises:
        InvalidArgument: a bad tag, or the folder holds no Containerfile.
        MissingExtra: no builder is installed.
        LoopError: the build failed.
    """
    from loopml.serving._wheelhouse import run_command

    check_tag(tag)
    if storage_driver is not None and not re.fullmatch(r"[a-z0-9]+", storage_driver):
        raise InvalidArgument(f"{storage_driver!r:.80} is not a storage driver (vfs, overlay)")
    folder = context.path if isinstance(context, BuildContext) else Path(context)
    if not (folder / "Containerfile").is_file():
        raise InvalidArgument(
            f"{str(folder)!r} holds no Containerfile; write the context with "
            "write_build_context (loopml build-image --no-build) first"
        )
    kind, executable = find_tool(tool)
    env = {**os.environ, "DOCKER_BUILDKIT": "1"} if kind == "docker" else None
    with tempfile.TemporaryDirectory(prefix="loopml-image-") as tmp:
        iidfile = str(Path(tmp) / "image-id")
        cmd = build_command(
            kind, executable, folder, tag, storage_driver=storage_driver, iidfile=iidfile
        )
        run_command(
            cmd,
            f"{kind} build of {tag}",
            hint="if the base image could not be pulled (no registry reachable), build one "
            "locally and pass it with --base-image (see docs/images.md)",
            env=env,
        )
        return Path(iidfile).read_text().strip()


def serve_command(environ: Mapping[str, str], args: Sequence[str]) -> list[str]:
    """The ``loopml serve`` command an image runs.

    Args:
        environ: the container's environment: ``PORT`` sets the port (8080), and the
            prediction log is off unless ``LOOPML_TRACKING_URI`` names a store for it.
        args: the model folder, then options: the image's (``--name churn``) and those given
            to ``podman run IMAGE ...``, which come last and so add to or override the
            defaults (``--workers 2``, ``--prediction-log``).

    Raises:
        InvalidArgument: no model folder.
    """
    if not args or args[0].startswith("-"):
        raise InvalidArgument("usage: python -m loopml.serving.image MODEL_FOLDER [OPTIONS]")
    cmd = [
        sys.executable, "-m", "loopml.cli", "serve", args[0],
        "--host", "0.0.0.0",  # noqa: S104 - inside a container; the port is published by choice
        "--port", environ.get("PORT") or str(PORT),
    ]  # fmt: skip
    if not environ.get("LOOPML_TRACKING_URI"):
        cmd.append("--no-prediction-log")
    return [*cmd, *args[1:]]


def main() -> None:
    """The image's entrypoint: replace this process with :func:`serve_command` (so that the
    server is PID 1 and gets the container's signals)."""
    cmd = serve_command(os.environ, sys.argv[1:])
    os.execv(cmd[0], cmd)  # noqa: S606 - a fixed program, arguments as a list


if __name__ == "__main__":
    main()
