"""Datasets: datasets, their immutable versions, and the dataset versions runs used.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.project_id"],
            name="fk_datasets_project_id_projects",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_id_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("dataset_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("blob", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("num_rows", sa.BigInteger, nullable=False),
        sa.Column("num_columns", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.Text, nullable=True),
        sa.Column("profile_blob", sa.String(64), nullable=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_versions_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        # A version outlives the run that logged it.
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name="fk_dataset_versions_run_id_runs",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint(
            "dataset_id", "version", name="uq_dataset_versions_dataset_id_version"
        ),
        sa.UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_dataset_id_digest"),
    )
    op.create_index("ix_dataset_versions_run_id", "dataset_versions", ["run_id"])
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("version_id", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "version_id", "role", name="pk_run_inputs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name="fk_run_inputs_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["dataset_versions.id"],
            name="fk_run_inputs_version_id_dataset_versions",
            ondelete="CASCADE",
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_run_inputs_version_id", "run_inputs", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_run_inputs_version_id", "run_inputs")
    op.drop_table("run_inputs")
    op.drop_index("ix_dataset_versions_run_id", "dataset_versions")
    op.drop_table("dataset_versions")
    op.drop_table("datasets")
