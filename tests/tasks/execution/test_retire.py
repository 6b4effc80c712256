"""A rolled-back upgrade's package-load records and migration checkpoints are retired (kept in a twin table)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tasks.execution.retire import retire_records
from tasks.migration.sql import checkpoint_ddl
from tasks.packages.static_data import CREATE_LOAD_TABLE

pytestmark = pytest.mark.mariadb


def test_the_upgrades_loads_and_checkpoints_are_retired_and_kept(mariadb_database: str) -> None:
    engine = create_engine(mariadb_database)
    schema = engine.url.database
    with engine.begin() as conn:
        conn.execute(text(CREATE_LOAD_TABLE.format(schema=f"`{schema}`")))
        conn.execute(text(checkpoint_ddl(schema)))
        for key, when in (("old", "2020-01-01 00:00:00"), ("new", "2030-01-01 00:00:00")):
            conn.execute(text("INSERT INTO ft_upgrade_package_load VALUES (:k, 'pkg', '1', :s, 't', 'f.csv', 'append', "
                              "'i', 'sha', 1, :w)"), {"k": key, "s": schema, "w": when})
        for name, execution in (("mine", "EXEC_A"), ("other", "EXEC_B")):
            conn.execute(text("INSERT INTO ft_upgrade_migration_checkpoint (name, spec_hash, source, target, status, "
                              "execution_id, started_at, updated_at) VALUES (:n, 'h', 's', 't', 'DONE', :e, NOW(), "
                              "NOW())"), {"n": name, "e": execution})
    retired = retire_records(engine, rollback_id="EXEC_R", executions=["EXEC_A"], schemas=[schema],
                             since="2026-12-07T10:00:00.000000+00:00")
    assert retired.to_json() == {f"{schema}.ft_upgrade_package_load": 1,
                                 f"{schema}.ft_upgrade_migration_checkpoint": 1}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT load_key FROM ft_upgrade_package_load")).scalars().all() == ["old"]
        assert conn.execute(text("SELECT name FROM ft_upgrade_migration_checkpoint")).scalars().all() == ["other"]
        assert conn.execute(text("SELECT load_key, retired_by FROM ft_upgrade_package_load_retired")).all() == [
            ("new", "EXEC_R")]
    again = retire_records(engine, rollback_id="EXEC_R", executions=["EXEC_A"], schemas=[schema], since="2026-12-07")
    assert again.to_json() == {}, "idempotent: a rollback finished later retires nothing twice"
    engine.dispose()
