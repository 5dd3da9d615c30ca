"""Path confinement: the one function every artifact path goes through.

An artifact path is a relative, ``/``-separated path inside a run (``plots/roc.png``). Every path
that comes from a user, a file or a request is normalised here before it is stored, joined or
opened, and refused when it could leave its root: ``..`` segments, absolute paths, drive letters,
backslashes, NUL and control characters, and percent-encoded traversal (decoded until stable, so
``%2e%2e`` and ``%252e%252e`` are caught). :func:`confined_join` adds the filesystem side: the
resolved target, symlinks followed, must stay inside the root directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from loopml.errors import UnsafePath

__all__ = ["MAX_PATH_LENGTH", "confined_join", "normalize_artifact_path"]

MAX_PATH_LENGTH = 1024
# C0 and C1 control characters, and the Unicode line separators str.splitlines() breaks on.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _refuse(path: str, why: str) -> UnsafePath:
    return UnsafePath(
        f"artifact path {path!r:.200} is refused: {why}; use a relative path inside the run "
        "such as 'plots/roc.png'"
    )


def normalize_artifact_path(path: object) -> str:
    """Check and normalise an artifact path; returns the canonical form (``a/b.txt``).

    Raises:
        UnsafePath: the path is empty, absolute, has ``..`` or would otherwise escape.
    """
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str):
        raise UnsafePath(f"artifact path must be a string, got {type(path).__name__}")
    original = path
    if len(path) > MAX_PATH_LENGTH:
        raise _refuse(original, f"it is longer than {MAX_PATH_LENGTH} characters")
    # Decode until stable so that no encoding of '..' or '/' survives to a later decoder.
    for _ in range(8):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        raise _refuse(original, "it is percent-encoded too many times")
    if _CONTROL.search(path):
        raise _refuse(original, "it contains NUL or control characters")
    if "\\" in path:
        raise _refuse(original, "it contains a backslash")
    if path.startswith("/"):
        raise _refuse(original, "it is absolute")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _refuse(original, "it contains '..'")
    if not parts:
        raise _refuse(original, "it is empty")
    # Checked on the first kept segment, not the raw text: './~' and './C:' must not normalise
    # to a home-relative or drive path.
    if parts[0].startswith("~") or _DRIVE.match(parts[0]):
        raise _refuse(original, "it is absolute")
    return "/".join(parts)


def confined_join(root: str | os.PathLike[str], path: str) -> Path:
    """Join ``path`` onto a local ``root`` and check the resolved result stays inside it.

    Symlinks are followed on both sides, so a symlink inside the root that points out of it is
    refused.

    Raises:
        UnsafePath: the path is unsafe or resolves outside the root.
    """
    rel = normalize_artifact_path(path)
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise _refuse(path, f"it resolves outside {str(base)!r} (a symlink out of the root?)")
    return target
