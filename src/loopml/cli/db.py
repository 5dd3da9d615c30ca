"""``loopml db``: the schema revision of a SQL store, and upgrading it.

These commands talk to :mod:`loopml.store.sql` directly (not through the Client): a store whose
schema is out of date refuses to open, and these are the commands that fix that.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loopml.cli import output
from loopml.cli.state import get_state, resolve_store_uri

__all__ = ["app"]

app = typer.Typer(
    help="Inspect and upgrade the store's database schema.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URI",
        help="Store to work on [default: the global --store, LOOPML_TRACKING_URI, or the "
        "nearest .loopml folder].",
        show_default=False,
    ),
]


def _sql_uri(ctx: typer.Context, store: str | None) -> str:
    from loopml.errors import InvalidArgument

    uri = resolve_store_uri(store or get_state(ctx).store)
    if uri == "memory://":
        raise InvalidArgument("an in-memory store has no schema to upgrade; use a SQL store")
    return uri


def _read_revision(uri: str) -> str | None:
    from loopml.errors import LoopError, StoreError
    from loopml.store.sql import engine as eng

    masked = eng.mask_password(uri)
    engine = eng.create_engine(uri)
    try:
        with engine.connect() as conn:
            return eng.current_revision(conn)
    except LoopError:
        raise
    except Exception as exc:  # SQLAlchemy's errors: the CLI does not import SQLAlchemy itself
        raise StoreError(f"cannot read the schema revision of {masked!r}: {exc}") from exc
    finally:
        engine.dispose()


@app.command("current")
def current(
    ctx: typer.Context,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the schema revision and whether it is current.

    Current means this loopml can use the store as is.

    \b
    Examples:
      loopml db current
      loopml db current --store postgresql://loopml@db.internal/loopml
    """
    from loopml.store.sql.engine import HEAD_REVISION, REVISIONS, mask_password

    uri = _sql_uri(ctx, store)
    revision = _read_revision(uri)
    if as_json:
        data: dict[str, Any] = {
            "store": mask_password(uri),
            "revision": revision,
            "head": HEAD_REVISION,
            "current": revision == HEAD_REVISION,
        }
        output.print_json(data)
        return
    typer.echo(f"store:    {mask_password(uri)}")
    if revision == HEAD_REVISION:
        typer.echo(f"revision: {revision} (current)")
    elif revision is None:
        typer.echo(
            f"revision: none (empty database); run 'loopml db upgrade' to create {HEAD_REVISION}"
        )
    elif revision in REVISIONS:
        typer.echo(
            f"revision: {revision} (out of date: this loopml uses {HEAD_REVISION}); "
            "back it up, then run 'loopml db upgrade'"
        )
    else:
        typer.echo(
            f"revision: {revision} (unknown to this loopml, which knows {', '.join(REVISIONS)}; "
            "written by a newer loopml? pip install -U loopml)"
        )


@app.command("upgrade")
def upgrade(ctx: typer.Context, store: StoreOption = None) -> None:
    """Upgrade the schema to this loopml's revision.

    Back the database up first. Safe to run twice, and from several processes at once:
    upgrades are serialised.

    \b
    Examples:
      loopml db upgrade
      loopml db upgrade --store sqlite:///team/loopml.db
    """
    from loopml.store.sql import upgrade_store
    from loopml.store.sql.engine import mask_password

    uri = _sql_uri(ctx, store)
    before, after = upgrade_store(uri)
    if before == after:
        typer.echo(f"{mask_password(uri)} is already at revision {after}")
    else:
        typer.echo(f"upgraded {mask_password(uri)}: {before or '(empty)'} -> {after}")
