"""Sign-in attempts, counted in the database so that every server process shares one limit.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("key", sa.String(320), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name="pk_sign_in_attempts"),
    )
    op.create_index("ix_sign_in_attempts_window_start", "sign_in_attempts", ["window_start"])


def downgrade() -> None:
    op.drop_table("sign_in_attempts")
