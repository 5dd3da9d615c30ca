"""Storage: the metadata :class:`Store` contract and its backends, and the artifact store.

:func:`open_store` picks a backend by URI scheme: ``memory://`` is the in-memory reference store,
``sqlite:///path.db`` (or a plain path) and ``postgresql://...`` are the SQL store. Backends load
lazily, so ``import loopml`` never imports SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loopml.errors import InvalidArgument
from loopml.store.base import DEFAULT_PROJECT as DEFAULT_PROJECT
from loopml.store.base import Store as Store

if TYPE_CHECKING:
    from loopml.store.artifacts import ArtifactStore

__all__ = ["DEFAULT_PROJECT", "Store", "normalize_store_uri", "open_artifact_store", "open_store"]


def normalize_store_uri(uri: str) -> str:
    """The canonical form of a metadata store URI (a plain path becomes ``sqlite:///abs/path``).

    A folder path means ``<folder>/loopml.db``.

    Raises:
        InvalidArgument: the URI has a scheme no store handles.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgument(f"store URI must be a non-empty string, got {uri!r}")
    uri = uri.strip()
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("memory", "mem") or uri in ("memory:", ":memory:"):
        return "memory://"
    if scheme.startswith("sqlite"):
        path = uri.split("://", 1)[1]
        if path in ("", "/", "/:memory:"):
            raise InvalidArgument(
                "an in-memory SQLite store is not supported (each connection would see its own "
                "database); use 'memory://' or a file such as 'sqlite:///runs.db'"
            )
        # sqlite:///x.db is relative to the working directory: pin it down now.
        return f"sqlite:///{Path(path[1:]).expanduser().resolve()}"
    if scheme.startswith(("postgresql", "postgres")):
        return uri
    if scheme in ("http", "https"):
        return uri.rstrip("/")
    if scheme == "file":
        uri = uri.split("://", 1)[1]
    elif scheme:
        raise InvalidArgument(
            f"store URI {uri!r} has an unknown scheme {scheme!r}; use a folder, "
            "'sqlite:///file.db', 'postgresql://user@host/db' or 'memory://'"
        )
    target = Path(uri).expanduser()
    if target.suffix not in (".db", ".sqlite", ".sqlite3"):
        target = target / "loopml.db"
    return f"sqlite:///{target.resolve()}"


def open_store(uri: str, *, busy_timeout: float = 60.0, synchronous: str = "normal") -> Store:
    """Open the metadata store at ``uri`` (see :func:`normalize_store_uri` for the forms).

    A new SQLite file is created with the current schema; an existing database whose schema is
    older or newer than this loopml refuses to open with a message naming the command to run.
    """
    canonical = normalize_store_uri(uri)
    if canonical.startswith(("http://", "https://")):
        from loopml.store.rest import RestStore

        # Its public methods are made from the operation table, which mypy cannot see.
        return RestStore(canonical)  # type: ignore[abstract]
    if canonical == "memory://":
        from loopml.store.memory import InMemoryStore

        return InMemoryStore()
    from loopml.store.sql import SqlStore

    return SqlStore(canonical, busy_timeout=busy_timeout, synchronous=synchronous)


def open_artifact_store(uri: str) -> ArtifactStore:
    """Open the content-addressed artifact store at a folder or fsspec URL (``s3://bucket/x``),
    or a ``loopml server``'s (``http://host:5000``)."""
    if uri.startswith(("http://", "https://")):
        from loopml.store.rest import HttpArtifactStore

        return HttpArtifactStore(uri)
    from loopml.store.artifacts import FsspecArtifactStore

    return FsspecArtifactStore(uri)
