"""Serving: deployments, the index of prediction-log segments, and window profiles.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("routes", sa.Text, nullable=False),
        sa.Column("sticky_key", sa.String(250), nullable=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name="fk_deployments_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_deployments_project_id_name"),
    )
    # Segments and window profiles name their deployment without a foreign key: monitoring
    # history outlives the deployment.
    op.create_table(
        "prediction_segments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("start_time", sa.BigInteger, nullable=False),
        sa.Column("end_time", sa.BigInteger, nullable=False),
        sa.Column("num_rows", sa.BigInteger, nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("routes", sa.Text, nullable=False),
        sa.Column("model_versions", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_segments"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name="fk_prediction_segments_project_id_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_prediction_segments_project_id_deployment_start_time",
        "prediction_segments",
        ["project_id", "deployment", "start_time"],
    )
    op.create_table(
        "window_profiles",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("route", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(320), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_seconds", sa.Integer, nullable=False),
        sa.Column("num_rows", sa.BigInteger, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_window_profiles"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name="fk_window_profiles_project_id_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_window_profiles_project_id_deployment_window_start",
        "window_profiles",
        ["project_id", "deployment", "window_start"],
    )


def downgrade() -> None:
    op.drop_index("ix_window_profiles_project_id_deployment_window_start", "window_profiles")
    op.drop_table("window_profiles")
    op.drop_index("ix_prediction_segments_project_id_deployment_start_time", "prediction_segments")
    op.drop_table("prediction_segments")
    op.drop_table("deployments")
