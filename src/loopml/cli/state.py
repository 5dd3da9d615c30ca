"""What the global options chose (``--store``, ``--artifacts``) and how commands open the store.

Read-only commands must not create a store as a side effect (a typo in a path would otherwise
leave an empty database behind), so :func:`resolve_store_uri` checks that a local store exists
before a :class:`~loopml.client.Client` touches it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from loopml.client import Client
    from loopml.entities import Run

__all__ = [
    "MIN_PREFIX",
    "CliState",
    "get_state",
    "open_client",
    "resolve_run",
    "resolve_store_uri",
]

MIN_PREFIX = 6  # shortest run-id prefix accepted in place of a full id
_SQLITE = "sqlite:///"
_FULL_ID = re.compile(r"[0-9a-f]{32}")
_PREFIX = re.compile(rf"[0-9a-f]{{{MIN_PREFIX},31}}")


@dataclass(frozen=True, slots=True)
class CliState:
    """The global options: the metadata store URI and the artifact store URI (None: default)."""

    store: str | None = None
    artifacts: str | None = None


def get_state(ctx: typer.Context) -> CliState:
    """The global options of this invocation."""
    state = ctx.find_object(CliState)
    return state if state is not None else CliState()


def resolve_store_uri(explicit: str | None) -> str:
    """The canonical URI of an existing store: ``explicit``, else ``LOOPML_TRACKING_URI``, else
    ``LOOPML_HOME``, else the ``.loopml`` folder found upward from the working directory.

    Raises:
        StoreError: no store is configured and no ``.loopml`` folder exists upward, or a local
            (SQLite) store it names does not exist.
        InvalidArgument: the URI has an unknown scheme.
    """
    from loopml.config import find_home, get_settings
    from loopml.errors import StoreError
    from loopml.store import normalize_store_uri

    settings = get_settings()
    uri = explicit or settings.tracking_uri
    if uri:
        canonical = normalize_store_uri(uri)
        if canonical.startswith(_SQLITE):
            path = Path(canonical[len(_SQLITE) :])
            if not path.is_file():
                raise StoreError(
                    f"no loopml store at {path}; run 'loopml init' to create one, "
                    "or check --store / LOOPML_TRACKING_URI"
                )
        return canonical
    if settings.home is not None:
        home = settings.home.expanduser().resolve()
        where = f"LOOPML_HOME={home}"
    else:
        found = find_home()
        if found is None:
            raise StoreError(
                f"no loopml home found in {Path.cwd()} or above; run 'loopml init' "
                "or set LOOPML_TRACKING_URI"
            )
        home, where = found, str(found)
    db = home / "loopml.db"
    if not db.is_file():
        hint = "loopml init" if settings.home is not None else f"loopml init {home.parent}"
        raise StoreError(f"no loopml store in {where} (no loopml.db); run '{hint}' to create it")
    return f"{_SQLITE}{db}"


def open_client(ctx: typer.Context, *, create: bool = False) -> Client:
    """A :class:`Client` for the global options.

    Args:
        create: allow the store to be created on first write (like the Python API); read-only
            commands leave it False so that a missing store is an error.
    """
    from loopml.client import Client
    from loopml.store import normalize_store_uri

    state = get_state(ctx)
    if not create:
        uri: str | None = resolve_store_uri(state.store)
    else:
        # Canonical form, so that the Client puts artifacts beside a store given as a plain path.
        uri = None if state.store is None else normalize_store_uri(state.store)
    return Client(tracking_uri=uri, artifact_uri=state.artifacts)


def resolve_run(client: Client, text: str) -> Run:
    """The run named by a full id or by a unique prefix of at least six characters.

    Raises:
        RunNotFound: no run has this id or prefix.
        InvalidArgument: the prefix is too short, malformed, or matches several runs.
    """
    from loopml.errors import InvalidArgument, RunNotFound

    wanted = text.strip().lower()
    if _FULL_ID.fullmatch(wanted):
        return client.get_run(wanted)
    if not _PREFIX.fullmatch(wanted):
        raise InvalidArgument(
            f"{text!r} is not a run id: give the 32-character id or a unique prefix of at least "
            f"{MIN_PREFIX} hex characters (see `loopml runs list`)"
        )
    matches = list(
        itertools.islice(client.iter_runs(filter=f"run_id like '{wanted}%'", page_size=5), 5)
    )
    if not matches:
        raise RunNotFound(
            wanted,
            f"no run id starts with {wanted!r}; list runs with `loopml runs list --all-projects` "
            "(was it deleted, or is --store another store?)",
        )
    if len(matches) > 1:
        shown = ", ".join(r.run_id for r in matches[:4])
        more = " and more" if len(matches) > 4 else ""
        raise InvalidArgument(
            f"run id prefix {wanted!r} is ambiguous: it matches {shown}{more}; "
            "give more characters"
        )
    return client.get_run(matches[0].run_id)
