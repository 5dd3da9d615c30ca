"""Accounts, API tokens, per-project roles, the bootstrap token and the server audit trail
(``loopml server --auth``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ROWID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("server_admin", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_accounts"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["owner"], ["accounts.name"], name="fk_api_tokens_owner_accounts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_api_tokens_owner_created_at", "api_tokens", ["owner", "created_at"])
    op.create_table(
        "project_roles",
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("account", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "account", name="pk_project_roles"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name="fk_project_roles_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account"],
            ["accounts.name"],
            name="fk_project_roles_account_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_project_roles_account", "project_roles", ["account"])
    op.create_table(
        "auth_bootstrap",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("consumed_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_bootstrap"),
    )
    op.create_table(
        "server_audit",
        sa.Column("seq", _ROWID, nullable=False, autoincrement=True),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_name", sa.String(512), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("origin", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_server_audit"),
    )
    op.create_index("ix_server_audit_timestamp", "server_audit", ["timestamp"])


def downgrade() -> None:
    for table in ("server_audit", "auth_bootstrap", "project_roles", "api_tokens", "accounts"):
        op.drop_table(table)
