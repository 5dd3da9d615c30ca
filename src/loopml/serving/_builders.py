"""The image builders :func:`loopml.serving.image.build_image` drives: podman, buildah, Docker."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from loopml.errors import InvalidArgument, MissingExtra
from loopml.serving._containerfile import check_tag

__all__ = ["TOOLS", "build_command", "find_tool"]

TOOLS = ("podman", "buildah", "docker")
"""The builders, in the order ``tool="auto"`` tries them."""


def find_tool(tool: str = "auto") -> tuple[str, str]:
    """The builder to use: ``(kind, executable)``, kind one of :data:`TOOLS`.

    ``auto`` takes podman, else buildah, else Docker when its daemon answers.

    Raises:
        InvalidArgument: ``tool`` is not auto, podman, buildah or docker.
        MissingExtra: the tool (or, for auto, every tool) is not installed.
    """
    install = (
        "install podman and buildah (Debian and Ubuntu: apt-get install -y podman buildah "
        "runc) or Docker, or write the context only (loopml build-image --no-build) and build "
        "it on a machine that has one"
    )
    if tool not in ("auto", *TOOLS):
        raise InvalidArgument(f"tool must be auto, podman, buildah or docker, not {tool!r}")
    if tool != "auto":
        found = shutil.which(tool)
        if found is None:
            raise MissingExtra(f"{tool} is not installed (not on PATH); {install}")
        return tool, found
    for kind in ("podman", "buildah"):
        found = shutil.which(kind)
        if found is not None:
            return kind, found
    docker = shutil.which("docker")
    if docker is not None:
        if _docker_answers(docker):
            return "docker", docker
        raise MissingExtra(
            "no container builder works here: podman and buildah are not installed, and "
            f"docker's daemon does not answer (docker info failed); start Docker, or {install}"
        )
    raise MissingExtra(f"no container builder found (podman, buildah or docker); {install}")


def _docker_answers(docker: str) -> bool:
    import subprocess

    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def build_command(
    kind: str,
    executable: str,
    context: str | os.PathLike[str],
    tag: str,
    *,
    storage_driver: str | None = None,
    iidfile: str | None = None,
) -> list[str]:
    """The command that builds ``context`` as ``tag`` with ``kind`` (:data:`TOOLS`).

    The build runs with ``--network none``: everything it installs is in the context. podman
    and buildah write the Docker image format, which keeps the HEALTHCHECK (OCI drops it).

    Args:
        storage_driver: podman's and buildah's ``--storage-driver`` (``vfs`` where overlay
            mounts are not allowed, such as inside another container); None: their default.
            With ``vfs`` the build commits one layer (``--layers=false``): vfs copies the
            whole file system for every cached step, which makes a build minutes slower.
        iidfile: write the image id to this file.
    """
    path = Path(context)
    cmd = [executable]
    if storage_driver is not None and kind != "docker":
        cmd += ["--storage-driver", storage_driver]
    cmd += ["bud" if kind == "buildah" else "build"]
    if kind != "docker":
        cmd += ["--format", "docker"]
    if storage_driver == "vfs" and kind != "docker":
        cmd += ["--layers=false"]
    cmd += ["--network", "none", "-f", str(path / "Containerfile"), "-t", check_tag(tag)]
    if iidfile is not None:
        cmd += ["--iidfile", iidfile]
    return [*cmd, str(path)]
