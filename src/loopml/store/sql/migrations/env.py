"""Alembic environment for loopml's SQL store.

loopml runs migrations itself (``loopml db upgrade``, or on first use of a new database) and hands
Alembic an open connection through ``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from loopml.store.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - loopml always passes a connection
    raise RuntimeError("run loopml migrations with `loopml db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
