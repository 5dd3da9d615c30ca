"""The wheelhouse of an image's build context: every wheel the image installs, fetched on the host.

The image installs with ``pip install --no-index``, so the build needs no network and gives the
same result every time (containers here cannot reach a package index at all). On the host:

1. loopml's own wheel is built from its source tree (``pip wheel --no-deps``), or taken from a
   given wheel file; a loopml installed from an index is fetched like any other requirement;
2. ``requirements.txt`` lists the model's pinned requirements (and any extra ones);
   ``constraints.txt`` pins everything else to the version installed on the host, so the image
   runs the libraries the model was saved and tested with;
3. ``pip wheel`` fills ``wheels/`` with those and all their dependencies (wheels from the
   index, or built here from an sdist);
4. ``wheels/requirements.lock`` names every wheel with its sha256, and the image installs
   exactly that with ``--require-hashes``.

pip runs as ``python -m pip`` of this interpreter, with the user's pip configuration (index,
``find-links``, certificates), so a private mirror works as it does for ``pip install``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from loopml._version import __version__
from loopml.errors import InvalidArgument, LoopError
from loopml.models.manifest import sha256_file

__all__ = [
    "LOCK_FILE",
    "canonical",
    "check_requirement",
    "fill_wheelhouse",
    "host_constraints",
    "lock_lines",
    "loopml_source",
    "loopml_wheel",
    "model_requirements",
    "run_command",
]

LOCK_FILE = "requirements.lock"
_REQUIREMENT = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,-]+\])?"
    r"(?:\s*(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*"
    r"(?:\s*,\s*(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*"
)
_NOT_PACKAGES = {"python", "loopml"}


def run_command(
    cmd: Sequence[str], what: str, *, hint: str = "", env: Mapping[str, str] | None = None
) -> None:
    """Run ``cmd`` (a list, never through a shell), its output going straight to ours.

    Raises:
        LoopError: it exited non-zero (the message names ``what``, the command and ``hint``).
    """
    try:
        code = subprocess.run(  # noqa: S603 - a list of arguments, no shell
            list(cmd), check=False, env=None if env is None else dict(env)
        ).returncode
    except OSError as exc:
        raise LoopError(f"{what} could not start ({cmd[0]}): {exc}") from exc
    if code != 0:
        shown = " ".join(cmd)
        raise LoopError(
            f"{what} failed (exit {code}); its output is above. The command was: {shown}"
            + (f". {hint}" if hint else "")
        )


def canonical(name: str) -> str:
    """A distribution name in PEP 503 form: ``Scikit_Learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirement(text: str) -> str:
    """An extra requirement (``lightgbm==4.3.0``), refused when it is not a plain specifier:
    a line starting with ``-`` would be a pip option inside ``requirements.txt``."""
    value = text.strip() if isinstance(text, str) else ""
    if not _REQUIREMENT.fullmatch(value):
        raise InvalidArgument(
            f"{text!r:.200} is not a requirement loopml puts in an image; write a distribution "
            "name with an optional version, such as 'lightgbm==4.3.0' or 'holidays>=0.40'"
        )
    return value


def model_requirements(pins: Mapping[str, str], extra: Iterable[str]) -> list[str]:
    """The lines of ``requirements.txt``: the model's pins (not ``python`` or ``loopml``, which
    the base image and loopml's own wheel provide) and the extra requirements."""
    lines = [f"{n}=={v}" for n, v in sorted(pins.items()) if canonical(n) not in _NOT_PACKAGES]
    return [*lines, *(check_requirement(r) for r in extra)]


def host_constraints(requirements: Sequence[str]) -> list[str]:
    """``name==version`` for every distribution installed here, except loopml and the names
    ``requirements`` pins itself (their pins win). pip applies a constraint only to a package
    that is needed, so pinning everything installed is harmless."""
    asked = {canonical(re.split(r"[\[<>=!~\s,]", r, maxsplit=1)[0]) for r in requirements}
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        key = canonical(name)
        if not key or key in asked or key in _NOT_PACKAGES or _is_local(dist):
            continue
        found.setdefault(key, dist.version)
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def _is_local(dist: importlib.metadata.Distribution) -> bool:
    """Whether a distribution was installed from a folder (editable or not): no index has it."""
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    try:
        return "dir_info" in json.loads(text)
    except ValueError:
        return False


def loopml_source() -> Path | None:
    """The source tree this loopml is installed from (an editable or folder install), if any."""
    try:
        text = importlib.metadata.distribution("loopml").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        text = None
    if text:
        try:
            url = str(json.loads(text).get("url", ""))
        except ValueError:
            url = ""
        if url.startswith("file://"):
            root = Path(url.removeprefix("file://"))
            if (root / "pyproject.toml").is_file():
                return root
    here = Path(__file__).resolve()
    for parent in here.parents:  # a plain checkout on sys.path (src/loopml/serving/...)
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "loopml").is_dir():
            return parent
    return None


def loopml_wheel(dest: Path, source: str | os.PathLike[str] | None) -> Path | None:
    """Put loopml's wheel in ``dest`` (an empty folder): built from ``source`` (a source
    tree), copied (a ``.whl``), or built from the source tree this loopml runs from. None:
    loopml was installed from an index, and ``pip wheel`` fetches ``loopml==<this version>``
    like the rest.

    Raises:
        InvalidArgument: ``source`` is neither a loopml source tree nor a wheel.
        LoopError: building the wheel failed.
    """
    if source is not None:
        given = Path(source).expanduser()
        if given.is_file() and given.name.endswith(".whl") and given.name.startswith("loopml-"):
            return Path(shutil.copy2(given, dest / given.name))
        if not (given / "pyproject.toml").is_file():
            raise InvalidArgument(
                f"--loopml-source {str(source)!r} is neither a loopml wheel (loopml-*.whl) nor a "
                "source tree (a folder with pyproject.toml)"
            )
        root: Path | None = given
    else:
        root = loopml_source()
    if root is None:
        return None
    run_command(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(dest), str(root)],
        "building loopml's wheel",
        hint=f"check that {root} is a loopml source tree that builds",
    )
    built = sorted(dest.glob("loopml-*.whl"))
    if len(built) != 1:
        raise LoopError(f"building loopml's wheel from {root} left no single loopml-*.whl")
    return built[0]


def fill_wheelhouse(
    wheels: Path,
    requirements: Path,
    constraints: Path,
    *,
    own_wheel: Path | None,
) -> list[str]:
    """Run ``pip wheel`` for ``requirements`` (and loopml's ``own_wheel``, or loopml from the
    index) under ``constraints`` into ``wheels``, then write the lock file.

    Returns:
        The lock file's lines (``name==version --hash=sha256:...``).

    Raises:
        LoopError: pip failed (a pin that conflicts, a package the index does not have).
    """
    loopml = str(own_wheel) if own_wheel is not None else f"loopml=={__version__}"
    run_command(
        [
            sys.executable, "-m", "pip", "wheel",
            "--wheel-dir", str(wheels),
            "--prefer-binary",
            "--progress-bar", "off",
            "-r", str(requirements),
            "-c", str(constraints),
            loopml,
        ],
        "filling the wheelhouse (pip wheel)",
        hint="if a pin from the host conflicts with one the model needs, build with "
        "--no-pin-host; if a package is missing, check your pip index",
    )  # fmt: skip
    lock = lock_lines(wheels)
    (wheels / LOCK_FILE).write_text(
        "# Every wheel of this wheelhouse, with its sha256: the image installs exactly these\n"
        "# (pip install --no-index --require-hashes -r requirements.lock).\n"
        + "".join(f"{line}\n" for line in lock)
    )
    return lock


def lock_lines(wheels: Path) -> list[str]:
    """``name==version --hash=sha256:<hex>`` for each wheel in ``wheels``, sorted by name.

    Raises:
        LoopError: two wheels of one distribution (the folder was reused), or a file that
            is not a wheel.
    """
    seen: dict[str, str] = {}
    lines: list[str] = []
    for path in sorted(wheels.iterdir()):
        if path.name == LOCK_FILE:
            continue
        parts = path.name.removesuffix(".whl").split("-")
        if not path.name.endswith(".whl") or len(parts) < 5:
            raise LoopError(f"the wheelhouse {wheels} holds {path.name!r}, which is not a wheel")
        name, version = canonical(parts[0]), parts[1]
        if name in seen:
            raise LoopError(
                f"the wheelhouse {wheels} holds two wheels of {name} ({seen[name]} and "
                f"{version}); write the build context into an empty folder"
            )
        seen[name] = version
        digest = sha256_file(path)
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    return sorted(lines)
