"""Traffic windows: request and error counts of a deployment's routes per time window.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traffic_windows",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(320), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("client_errors", sa.BigInteger, nullable=False),
        sa.Column("server_errors", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name="fk_traffic_windows_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_traffic_windows"),
    )
    op.create_index(
        "ix_traffic_windows_project_id_deployment_window_start",
        "traffic_windows",
        ["project_id", "deployment", "window_start"],
    )


def downgrade() -> None:
    op.drop_table("traffic_windows")
