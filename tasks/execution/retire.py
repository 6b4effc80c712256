"""What a rolled-back upgrade left on the site's own servers, retired so that a new attempt does everything again.

Package loads (``ft_upgrade_package_load``, keyed so that a load happens once per package version) and async
migration checkpoints (``ft_upgrade_migration_checkpoint``, one row per task) live beside the business data,
in the tool's schema or the migration's target schema, where the backup does not reach. Left in place after a
restore, they would tell a new attempt that the rows are loaded and the copies done. Retiring moves each row
into a ``…_retired`` twin of its table (kept, with when and by which rollback) and deletes it: idempotent, so a
rollback killed midway retires the rest the next time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

from tasks.backup.dump import quote_ident

PACKAGE_LOADS = "ft_upgrade_package_load"
CHECKPOINTS = "ft_upgrade_migration_checkpoint"


@dataclass
class Retired:
    """Rows retired per ``schema.table``."""

    rows: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, int]:
        return dict(self.rows)


def retire_records(engine: Engine, *, rollback_id: str, executions: Sequence[str],
                   schemas: Sequence[str], since: str, into: Retired | None = None) -> Retired:
    """Retire on one server: migration checkpoints written by ``executions``; package loads into the restored
    ``schemas`` recorded at or after ``since`` (the backup's time, UTC)."""
    retired = into or Retired()
    with engine.begin() as conn:
        found = conn.execute(text("SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_NAME IN "
                                  f"('{PACKAGE_LOADS}', '{CHECKPOINTS}')")).all()
    for schema, table in found:
        where, params = _which_rows(table, executions, schemas, since)
        if where is None:
            continue
        moved = _move(engine, schema, table, where, {**params, "rollback_id": rollback_id})
        if moved:
            retired.rows[f"{schema}.{table}"] = retired.rows.get(f"{schema}.{table}", 0) + moved
    return retired


def _which_rows(table: str, executions: Sequence[str], schemas: Sequence[str],
                since: str) -> tuple[str | None, dict[str, object]]:
    if table == CHECKPOINTS:
        if not executions:
            return None, {}
        names = {f"e{i}": e for i, e in enumerate(executions)}
        return f"execution_id IN ({', '.join(':' + n for n in names)})", names
    if not schemas:
        return None, {}
    names = {f"s{i}": s for i, s in enumerate(schemas)}
    return (f"table_schema IN ({', '.join(':' + n for n in names)}) AND loaded_time >= :since",
            {**names, "since": since.replace("T", " ").split("+")[0].rstrip("Z")[:26]})


def _move(engine: Engine, schema: str, table: str, where: str, params: dict[str, object]) -> int:
    """Copy the rows into ``<table>_retired`` (created like the table, plus who retired them and when), delete."""
    source = f"{quote_ident(schema)}.{quote_ident(table)}"
    twin = f"{quote_ident(schema)}.{quote_ident(table + '_retired')}"
    with engine.connect() as conn:
        if not conn.execute(text(f"SELECT COUNT(*) FROM {source} WHERE {where}"), params).scalar():
            return 0  # nothing of this upgrade here: no twin table either
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS {twin} AS SELECT *, CAST('' AS CHAR(64)) AS retired_by, "
                          f"NOW(6) AS retired_time FROM {source} WHERE 1 = 0"))
        conn.execute(text(f"INSERT INTO {twin} SELECT *, :rollback_id, NOW(6) FROM {source} WHERE {where}"), params)
        return int(conn.execute(text(f"DELETE FROM {source} WHERE {where}"), params).rowcount or 0)
