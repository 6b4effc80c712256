"""The metadata tables of the requirements (chapter 2, section 4) with their indexes.

SQLAlchemy Core, so the same definitions serve MariaDB/MySQL in production and a SQLite file as
the embedded default. Times are naive UTC (``DATETIME(6)`` on MySQL).

Two deliberate departures from the seed, both because MySQL cannot express the seed's intent:

* ``upgrade_breakpoint.uk_execution_active`` is a partial unique index in the seed. It is emulated
  with ``active_execution_id`` (the execution id while ACTIVE, NULL otherwise) under a unique index.
* ``sql_execution_record.uk_sql_content`` is unique on (execution, step, content hash) in the seed,
  which would forbid the same statement twice in one step (``COMMIT;``, ``SET …``). It is unique on
  (execution, step, file id, sequence) instead; the hash stays indexed for the edit check.

Index names carry a table prefix where the seed reuses one name (``idx_status_time``), since SQLite
index names are global to the database.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

UtcDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def _times() -> list[Column]:
    return [
        Column("created_time", UtcDateTime, nullable=False),
        Column("updated_time", UtcDateTime, nullable=False),
    ]


upgrade_execution = Table(
    "upgrade_execution", metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("source_version", String(32), nullable=False),
    Column("target_version", String(32), nullable=False),
    Column("site_id", String(64), nullable=False),
    Column("step_type", String(32), nullable=False),
    Column("environment", LongText),
    Column("status", String(16), nullable=False),
    Column("start_time", UtcDateTime),
    Column("end_time", UtcDateTime),
    Column("current_step_id", String(128)),
    Column("total_steps", Integer, nullable=False, default=0),
    Column("completed_steps", Integer, nullable=False, default=0),
    Column("error_message", LongText),
    Column("created_by", String(128)),
    Column("flow_run_id", String(64)),
    Column("plan_fingerprint", String(32)),
    Column("resume_count", Integer, nullable=False, default=0),
    # who asked and on what terms (rerun, waived preconditions), and where the run read its files from
    Column("requested_by", String(128)),
    Column("rerun_of", String(64)),
    Column("waivers", LongText),
    Column("configs_dir", String(1024)),
    Column("sql_root", String(1024)),
    Column("db_overrides", String(512)),
    *_times(),
    Index("idx_version_site", "source_version", "target_version", "site_id"),
    Index("idx_exec_status_time", "status", "created_time"),
    Index("idx_step_type", "step_type"),
)

step_execution = Table(
    "step_execution", metadata,
    Column("id", String(64), primary_key=True),
    Column("execution_id", String(64), nullable=False),
    Column("step_id", String(128), nullable=False),
    Column("step_key", String(160), nullable=False),
    Column("step_name", String(256)),
    Column("step_type", String(32)),
    Column("class_name", String(256)),
    Column("status", String(16), nullable=False),
    Column("start_time", UtcDateTime),
    Column("end_time", UtcDateTime),
    Column("duration", BigInteger),
    Column("result", LongText),
    Column("error_message", LongText),
    Column("metadata", LongText),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("execution_order", Integer, nullable=False, default=0),
    *_times(),
    Index("idx_execution_id", "execution_id"),
    Index("idx_step_status", "step_id", "status"),
    Index("idx_execution_order", "execution_id", "execution_order"),
    Index("uk_execution_step_key", "execution_id", "step_key", unique=True),
)

sql_execution_record = Table(
    "sql_execution_record", metadata,
    Column("id", String(64), primary_key=True),
    Column("execution_id", String(64), nullable=False),
    Column("step_id", String(128), nullable=False),
    Column("sql_file_id", String(64), nullable=False),
    Column("sql_file_name", String(512), nullable=False),
    Column("sql_line_number", Integer, nullable=False),
    Column("sql_sequence", Integer, nullable=False),
    Column("sql_content", LongText, nullable=False),
    Column("sql_content_hash", String(64), nullable=False),
    Column("target_database", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", UtcDateTime),
    Column("end_time", UtcDateTime),
    Column("duration", BigInteger),
    Column("affected_rows", BigInteger),
    Column("error_code", String(32)),
    Column("error_message", LongText),
    Column("execution_result", LongText),
    Column("retry_count", Integer, nullable=False, default=0),
    # a session setting whose value came from a query: the SET that restores the value it got
    Column("replay_sql", LongText),
    # the server's clock (epoch seconds) when a statement was marked RUNNING: decides CREATE OR REPLACE
    Column("server_started", BigInteger),
    # the server's connection id that ran a statement marked RUNNING: after a crash, is it still running there?
    Column("server_thread", BigInteger),
    *_times(),
    Index("idx_execution_step", "execution_id", "step_id"),
    Index("idx_sql_file_seq", "sql_file_id", "sql_sequence"),
    Index("idx_sql_status_time", "status", "created_time"),
    Index("idx_content_hash", "sql_content_hash"),
    Index("uk_sql_content", "execution_id", "step_id", "sql_file_id", "sql_sequence", unique=True),
)

upgrade_breakpoint = Table(
    "upgrade_breakpoint", metadata,
    Column("id", String(64), primary_key=True),
    Column("execution_id", String(64), nullable=False),
    Column("step_id", String(128), nullable=False),
    Column("sql_file_id", String(64)),
    Column("sql_file_name", String(512)),
    Column("sql_line_number", Integer),
    Column("sql_sequence", Integer),
    Column("sql_content", LongText),
    Column("breakpoint_type", String(16), nullable=False),
    Column("context_data", LongText),
    Column("failure_reason", LongText),
    Column("error_code", String(32)),
    Column("resume_instructions", LongText),
    Column("status", String(16), nullable=False),
    Column("active_execution_id", String(64)),
    Column("breakpoint_time", UtcDateTime, nullable=False),
    Column("expiry_time", UtcDateTime, nullable=False),
    Column("resolved_by", String(128)),
    Column("resolved_time", UtcDateTime),
    Column("resolve_notes", LongText),
    # the operator's decision for the resume that continues this breakpoint
    Column("decision_inflight", String(16)),
    Column("decision_by", String(128)),
    Column("decision_notes", LongText),
    Column("decision_time", UtcDateTime),
    *_times(),
    Index("uk_execution_active", "active_execution_id", unique=True),
    Index("idx_bp_execution", "execution_id"),
    Index("idx_bp_status_time", "status", "breakpoint_time"),
)

upgrade_report = Table(
    "upgrade_report", metadata,
    Column("id", String(64), primary_key=True),
    Column("execution_id", String(64), nullable=False),
    Column("report_type", String(32), nullable=False),
    Column("source_version", String(32), nullable=False),
    Column("target_version", String(32), nullable=False),
    Column("site_id", String(64), nullable=False),
    Column("step_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("total_steps", Integer, nullable=False, default=0),
    Column("success_steps", Integer, nullable=False, default=0),
    Column("failed_steps", Integer, nullable=False, default=0),
    Column("skipped_steps", Integer, nullable=False, default=0),
    Column("total_sql_count", Integer, nullable=False, default=0),
    Column("success_sql_count", Integer, nullable=False, default=0),
    Column("failed_sql_count", Integer, nullable=False, default=0),
    Column("total_duration", BigInteger, nullable=False, default=0),
    Column("report_content", LongText),
    Column("summary", LongText),
    Column("recommendations", LongText),
    Column("generated_time", UtcDateTime, nullable=False),
    *_times(),
    Index("idx_report_execution", "execution_id"),
    Index("idx_report_status_time", "status", "generated_time"),
)

site_lock = Table(
    "ft_upgrade_site_lock", metadata,
    Column("site_id", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_time", UtcDateTime, nullable=False),
    Column("heartbeat_time", UtcDateTime, nullable=False),
    Column("token", String(32)),  # fencing: ledger writes check that the row still carries their run's token
)

# Where each site stands across executions (Flyway's schema history, per site and cutpoint).

site_state = Table(
    "upgrade_site_state", metadata,
    Column("site_id", String(64), primary_key=True),
    Column("current_version", String(32)),
    Column("schema_version", String(32)),
    Column("version_origin", String(32)),
    Column("upgrade_source", String(32)),
    Column("upgrade_target", String(32)),
    Column("upgrade_status", String(16)),
    Column("upgrade_started_time", UtcDateTime),
    Column("upgrade_finished_time", UtcDateTime),
    *_times(),
)

site_cutpoint = Table(
    "upgrade_site_cutpoint", metadata,
    Column("site_id", String(64), primary_key=True),
    Column("source_version", String(32), primary_key=True),
    Column("target_version", String(32), primary_key=True),
    Column("cutpoint", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("execution_id", String(64)),
    Column("started_time", UtcDateTime),
    Column("finished_time", UtcDateTime),
    *_times(),
)

site_history = Table(
    "upgrade_site_history", metadata,
    Column("id", String(64), primary_key=True),
    Column("site_id", String(64), nullable=False),
    Column("event", String(32), nullable=False),
    Column("cutpoint", String(32)),
    Column("source_version", String(32)),
    Column("target_version", String(32)),
    Column("execution_id", String(64)),
    Column("flow_run_id", String(64)),
    Column("actor", String(128)),
    Column("detail", LongText),
    Column("created_time", UtcDateTime, nullable=False),
    Index("idx_site_history_site_time", "site_id", "created_time"),
)

site_script = Table(
    "upgrade_site_script", metadata,
    Column("site_id", String(64), primary_key=True),
    Column("script_path", String(512), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("execution_id", String(64), nullable=False),
    Column("cutpoint", String(32), nullable=False),
    Column("step_key", String(160), nullable=False),
    Column("version", String(32), nullable=False),
    Column("applied_time", UtcDateTime, nullable=False),
    *_times(),
)

# How fast a site's server does each kind of work (rows per second), learned from the statements run there.

site_throughput = Table(
    "upgrade_site_throughput", metadata,
    Column("site_id", String(64), primary_key=True),
    Column("work", String(16), primary_key=True),  # copy | rebuild | index | dml
    Column("rows_done", BigInteger, nullable=False),  # decayed sums: older runs weigh less
    Column("seconds", Float, nullable=False),
    Column("statements", Integer, nullable=False),
    *_times(),
)

schema_version = Table(
    "ft_upgrade_schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_time", UtcDateTime, nullable=False),
)
