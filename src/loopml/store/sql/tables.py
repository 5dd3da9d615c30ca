"""The SQL schema as SQLAlchemy Core tables. Rows never leave ``loopml.store.sql``.

The Alembic migrations in ``migrations/versions`` create exactly these tables; a test checks that
the two agree. On SQLite the tables keyed by run id are ``WITHOUT ROWID``: a lookup by
``(run_id, key)`` is one B-tree descent instead of an index search plus a row fetch, which is what
search over 10^5 runs spends its time on.

Metric history is stored in columnar chunks: one row per (run, key, logged batch) holding packed
little-endian int64 steps and timestamps and float64 values. Writing 1,000 points is one row and
reading a 100,000-point history is a few dozen rows, and NaN and +/-inf keep their exact IEEE bits.
``latest_metrics`` keeps the latest point per key for search; there NaN is stored as NULL (SQLite
cannot store NaN, and NULL gives NaN the same "never matches a comparison" meaning everywhere).

Datasets (revision 0002): ``datasets`` names them per project, ``dataset_versions`` holds the
immutable versions (unique per dataset by number and by content digest, which is what keeps
concurrent writers from numbering twice or storing one content twice; ``schema`` and
``metadata`` are JSON text), and ``run_inputs`` records which runs used which versions in which
role. A version keeps no hard tie to its run: deleting the run sets ``run_id`` to NULL.

The model registry (revision 0003): ``registered_models`` names models per project and keeps
``latest_version``, the counter new versions are numbered from (a writer locks the model's row,
then bumps it); ``model_versions`` holds the versions (unique per model by number, which stands
behind that lock); ``model_aliases`` points each alias at a version (unique per model by alias
name); ``audit_events`` is the audit trail, ordered by ``timestamp`` and then by ``seq``, the
order the events were written. Audit events keep no tie to the objects they name: they outlive
them. Tags, signatures, gate results and event details are JSON text.

Serving (revision 0004): ``deployments`` names deployments per project, with their routes and
config as JSON text and the ``revision`` an update's compare-and-set checks (a writer locks the
row). ``prediction_segments`` indexes the prediction-log files and ``window_profiles`` the
profile fragments of time windows; both are keyed by the writer's id (a retried write finds its
row), name their deployment without a foreign key (they outlive it) and go with their project.
The index on ``(project_id, deployment, start_time)`` answers a time-range query in one bounded
range: a segment spans at most 24 hours, so one that overlaps ``[start, end]`` starts between
``start - 24 h`` and ``end``.

Monitoring (revision 0005): ``monitors`` names monitors per project, with their spec as JSON
text and the ``revision`` an update's compare-and-set checks (a writer locks the row).
``monitor_results`` holds one row per monitor and window, keyed by them (a second result of a
window replaces the first in one upsert), and goes with its monitor; its metrics are JSON text
in which NaN is ``null``. ``alerts`` name their monitor without a foreign key (they outlive it);
the partial unique index ``ix_alerts_one_firing`` on ``(project_id, monitor, rule) WHERE state =
'firing'`` is what keeps a rule to one firing alert under concurrent writers, on SQLite and
PostgreSQL alike. ``alert_deliveries`` go with their alert and keep the order they were written
in ``seq``; ``label_segments`` index the ground-truth files, keyed by the writer's id.

Traffic (revision 0008): ``traffic_windows`` holds the request and error counts of a route in a
time window, one row per serving process and window, keyed by the writer's id like the window
profiles, naming its deployment without a foreign key and going with its project.

Sign-in attempts (revision 0009): ``sign_in_attempts`` counts the attempts per key (a user name
or a client address) and time window, one row each, incremented by an upsert so that every
server process counts into one total; old windows are deleted as new ones start.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

__all__ = [
    "accounts",
    "alert_deliveries",
    "alerts",
    "api_tokens",
    "artifacts",
    "audit_events",
    "auth_bootstrap",
    "dataset_versions",
    "datasets",
    "deployments",
    "environments",
    "label_segments",
    "latest_metrics",
    "leases",
    "metadata",
    "metric_chunks",
    "model_aliases",
    "model_versions",
    "monitor_results",
    "monitors",
    "params",
    "prediction_segments",
    "project_roles",
    "projects",
    "registered_models",
    "run_inputs",
    "runs",
    "server_audit",
    "sign_in_attempts",
    "tags",
    "traffic_windows",
    "window_profiles",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# An auto-incrementing 64-bit key; on SQLite it must be spelled INTEGER to alias the rowid.
_ROWID = BigInteger().with_variant(Integer(), "sqlite")

projects = Table(
    "projects",
    metadata,
    Column("project_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

environments = Table(
    "environments",
    metadata,
    Column("environment_id", String(64), primary_key=True),
    Column("data", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("parent_run_id", String(32), nullable=True),
    Column("user", String(256), nullable=False, default=""),
    Column("heartbeat_at", BigInteger, nullable=True),
    Column(
        "environment_id",
        String(64),
        ForeignKey("environments.environment_id"),
        nullable=True,
    ),
    Index(None, "project_id", "start_time"),
    Index(None, "status", "heartbeat_at"),
    Index(None, "parent_run_id"),
    sqlite_with_rowid=False,
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

# Search by param or tag value. On SQLite an index on (key, value). PostgreSQL limits B-tree
# entries to about 2.7 kB and values may be longer, so there the migration indexes
# (key, md5(value)) instead (ix_params_key_value_md5, ix_tags_key_value_md5), and the search
# compiler adds the matching md5 condition to equality tests (query.py). PostgreSQL also gets
# ix_latest_metrics_run_id_key_cover, (run_id, key) INCLUDE (value), for index-only lookups of
# a run's metric (on SQLite the WITHOUT ROWID table is that index already).
Index("ix_params_key_value", params.c.key, params.c.value).ddl_if(dialect="sqlite")
Index("ix_tags_key_value", tags.c.key, tags.c.value).ddl_if(dialect="sqlite")

metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("id", _ROWID, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("key", String(250), nullable=False),
    Column("count", Integer, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("timestamps", LargeBinary, nullable=False),
    Column("values", LargeBinary, nullable=False),
    Index(None, "run_id", "key", "id"),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float(precision=53), nullable=True),
    Index(None, "key", "value"),
    sqlite_with_rowid=False,
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "dataset_id",
        String(32),
        ForeignKey("datasets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("blob", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("num_rows", BigInteger, nullable=False),
    Column("num_columns", BigInteger, nullable=False),
    Column("schema", Text, nullable=True),
    Column("profile_blob", String(64), nullable=True),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="SET NULL"), nullable=True),
    Column("metadata", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("dataset_id", "version"),
    UniqueConstraint("dataset_id", "digest"),
    Index(None, "run_id"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column(
        "version_id",
        String(32),
        ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("role", String(32), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "version_id"),
    sqlite_with_rowid=False,
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "model_id",
        String(32),
        ForeignKey("registered_models.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="SET NULL"), nullable=True),
    Column("flavor", String(250), nullable=False),
    Column("signature", Text, nullable=True),
    Column("manifest_digest", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("gate_result", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("model_id", "version"),
    Index(None, "run_id"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", String(32), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # An alias points at a version that exists, and goes with its model.
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", _ROWID, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("timestamp", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_name", String(512), nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("origin", String(256), nullable=False),
    Index(None, "project_id", "timestamp"),
    Index(None, "project_id", "object_type", "object_name"),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("routes", Text, nullable=False),
    Column("sticky_key", String(250), nullable=True),
    Column("description", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("updated_by", String(256), nullable=False),
    UniqueConstraint("project_id", "name"),
)

prediction_segments = Table(
    "prediction_segments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("deployment", String(256), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("num_rows", BigInteger, nullable=False),
    Column("uri", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("routes", Text, nullable=False),
    Column("model_versions", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "project_id", "deployment", "start_time"),
)

window_profiles = Table(
    "window_profiles",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("deployment", String(256), nullable=False),
    Column("route", String(64), nullable=False),
    Column("model_version", String(320), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_seconds", Integer, nullable=False),
    Column("num_rows", BigInteger, nullable=False),
    Column("profile", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "project_id", "deployment", "window_start"),
)

traffic_windows = Table(
    "traffic_windows",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("deployment", String(256), nullable=False),
    Column("route", String(64), nullable=False),
    Column("model_version", String(320), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_seconds", Integer, nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("client_errors", BigInteger, nullable=False),
    Column("server_errors", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "project_id", "deployment", "window_start"),
)

monitors = Table(
    "monitors",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(256), nullable=False),
    Column("spec", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("updated_by", String(256), nullable=False),
    UniqueConstraint("project_id", "name"),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column(
        "monitor_id",
        String(32),
        ForeignKey("monitors.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("window_start", BigInteger, primary_key=True),
    Column("window_end", BigInteger, primary_key=True),
    Column("id", String(32), nullable=False),
    Column("metrics", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

_FIRING = text("state = 'firing'")

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("monitor", String(256), nullable=False),
    Column("rule", String(256), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("value", Float(precision=53), nullable=True),
    Column("threshold", Float(precision=53), nullable=True),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("notified_at", BigInteger, nullable=True),
    Column("occurrences", BigInteger, nullable=False),
    Column("details", Text, nullable=False),
    Index(None, "project_id", "started_at"),
    Index(None, "project_id", "monitor", "rule", "started_at"),
    Index(
        "ix_alerts_one_firing",
        "project_id",
        "monitor",
        "rule",
        unique=True,
        sqlite_where=_FIRING,
        postgresql_where=_FIRING,
    ),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("seq", _ROWID, primary_key=True, autoincrement=True),
    Column("id", String(32), nullable=False, unique=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alert_id", String(32), ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("notifier", String(256), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("event", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "project_id", "created_at"),
    Index(None, "alert_id", "created_at"),
)

label_segments = Table(
    "label_segments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("deployment", String(256), nullable=False),
    Column("num_rows", BigInteger, nullable=False),
    Column("uri", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "project_id", "created_at"),
    Index(None, "project_id", "deployment", "created_at"),
)

# --- accounts, tokens and roles (revision 0006; loopml.store.sql.auth) --------------------------
# ``accounts`` are users and service accounts by name; ``api_tokens`` keeps only each token's
# SHA-256 (unique: a lookup is by hash) and goes with its owner; ``project_roles`` holds one role
# per (project, account) and goes with either. ``auth_bootstrap`` has at most one row (``id`` 1):
# inserting it is how one of many starting servers wins the bootstrap token. ``server_audit``
# is the audit trail of changes that belong to no project (accounts and tokens).

accounts = Table(
    "accounts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("server_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("owner", String(64), ForeignKey("accounts.name", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index(None, "owner", "created_at"),
)

project_roles = Table(
    "project_roles",
    metadata,
    Column(
        "project_id",
        String(32),
        ForeignKey("projects.project_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "account", String(64), ForeignKey("accounts.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("role", String(16), nullable=False),
    Index(None, "account"),
)

auth_bootstrap = Table(
    "auth_bootstrap",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("consumed_at", BigInteger, nullable=True),
)

sign_in_attempts = Table(
    "sign_in_attempts",
    metadata,
    Column("key", String(320), primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("attempts", Integer, nullable=False),
    Index(None, "window_start"),
)

server_audit = Table(
    "server_audit",
    metadata,
    Column("seq", _ROWID, primary_key=True, autoincrement=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_name", String(512), nullable=False),
    Column("details", Text, nullable=False),
    Column("origin", String(256), nullable=False),
    Index(None, "timestamp"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
