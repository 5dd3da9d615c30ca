"""The one function every path-taking route calls before it touches storage.

A route parameter that names a place in storage (an artifact ``path`` or ``prefix``, a blob's
``sha256``, an ``upload_id``) goes through :func:`confine` and nothing else: artifact paths are
normalised and refused when they could leave the run's root
(:func:`loopml.store.paths.normalize_artifact_path`: ``..``, absolute paths, encoded traversal,
control characters), and blob and upload ids must be exactly their hex form, so they can never
become a path. ``tests/server`` enumerates the app's routes and checks every one with such a
parameter declares it (``x-loopml-confined`` in its OpenAPI entry) and survives a traversal
corpus.
"""

from __future__ import annotations

import re
from typing import Literal

from loopml.errors import UnsafePath
from loopml.store.paths import normalize_artifact_path

__all__ = ["CONFINED_PARAMS", "confine"]

Kind = Literal["path", "prefix", "sha256", "upload_id"]
#: The parameter names that name a place in storage, whatever route they appear in.
CONFINED_PARAMS: frozenset[str] = frozenset(("path", "prefix", "sha256", "upload_id"))
_HEX = {"sha256": re.compile(r"[0-9a-f]{64}"), "upload_id": re.compile(r"[0-9a-f]{32}")}


def confine(kind: Kind, value: object) -> str:
    """``value`` checked and normalised as a ``kind`` of storage name.

    Raises:
        UnsafePath: the value could escape its root, or is not the hex id it must be.
    """
    if kind == "prefix" and value in ("", ".", "/"):
        return ""
    if kind in ("path", "prefix"):
        return normalize_artifact_path(value)
    if not isinstance(value, str) or not _HEX[kind].fullmatch(value):
        raise UnsafePath(
            f"{kind} {value!r:.100} is refused: it must be "
            f"{'64' if kind == 'sha256' else '32'} lowercase hex characters"
        )
    return value
