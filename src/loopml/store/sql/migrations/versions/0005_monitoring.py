"""Monitoring: monitors and their results, alerts and their deliveries, and the index of
ground-truth label segments.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FIRING = sa.text("state = 'firing'")


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"],
        ["projects.project_id"],
        name=f"fk_{table}_project_id_projects",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitors"),
        _project_fk("monitors"),
        sa.UniqueConstraint("project_id", "name", name="uq_monitors_project_id_name"),
    )
    # One row per monitor and window: a second result of a window replaces the first.
    op.create_table(
        "monitor_results",
        sa.Column("monitor_id", sa.String(32), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "monitor_id", "window_start", "window_end", name="pk_monitor_results"
        ),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name="fk_monitor_results_monitor_id_monitors",
            ondelete="CASCADE",
        ),
        sqlite_with_rowid=False,
    )
    # Alerts name their monitor without a foreign key: alert history outlives the monitor.
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("rule", sa.String(256), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("threshold", sa.Float(precision=53), nullable=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
        sa.Column("notified_at", sa.BigInteger, nullable=True),
        sa.Column("occurrences", sa.BigInteger, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        _project_fk("alerts"),
    )
    op.create_index("ix_alerts_project_id_started_at", "alerts", ["project_id", "started_at"])
    op.create_index(
        "ix_alerts_project_id_monitor_rule_started_at",
        "alerts",
        ["project_id", "monitor", "rule", "started_at"],
    )
    # At most one firing alert per rule, enforced by the database (concurrent writers too).
    op.create_index(
        "ix_alerts_one_firing",
        "alerts",
        ["project_id", "monitor", "rule"],
        unique=True,
        sqlite_where=_FIRING,
        postgresql_where=_FIRING,
    )
    op.create_table(
        "alert_deliveries",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("notifier", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_alert_deliveries"),
        _project_fk("alert_deliveries"),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name="fk_alert_deliveries_alert_id_alerts",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("id", name="uq_alert_deliveries_id"),
    )
    op.create_index(
        "ix_alert_deliveries_project_id_created_at",
        "alert_deliveries",
        ["project_id", "created_at"],
    )
    op.create_index(
        "ix_alert_deliveries_alert_id_created_at", "alert_deliveries", ["alert_id", "created_at"]
    )
    op.create_table(
        "label_segments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(32), nullable=False),
        sa.Column("deployment", sa.String(256), nullable=False),
        sa.Column("num_rows", sa.BigInteger, nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_label_segments"),
        _project_fk("label_segments"),
    )
    op.create_index(
        "ix_label_segments_project_id_created_at", "label_segments", ["project_id", "created_at"]
    )
    op.create_index(
        "ix_label_segments_project_id_deployment_created_at",
        "label_segments",
        ["project_id", "deployment", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_label_segments_project_id_deployment_created_at", "label_segments")
    op.drop_index("ix_label_segments_project_id_created_at", "label_segments")
    op.drop_table("label_segments")
    op.drop_index("ix_alert_deliveries_alert_id_created_at", "alert_deliveries")
    op.drop_index("ix_alert_deliveries_project_id_created_at", "alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alerts_one_firing", "alerts")
    op.drop_index("ix_alerts_project_id_monitor_rule_started_at", "alerts")
    op.drop_index("ix_alerts_project_id_started_at", "alerts")
    op.drop_table("alerts")
    op.drop_table("monitor_results")
    op.drop_table("monitors")
