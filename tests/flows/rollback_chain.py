"""A generated chain of patch versions for the rollback tests, and what "exactly as before" compares.

The site's database starts with tables joined by a foreign key, a trigger, a view and a procedure (small
data). Each version of the chain creates a table with a foreign key, a trigger and a procedure (DELIMITER
blocks), a view, changes existing tables (a column, rows) and calls its procedure. The catalog (tables,
columns, indexes, foreign keys, triggers, views, routines) and every table's CHECKSUM TABLE are the state.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SOURCE = "3.17.5"
BEFORE = """CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL, balance BIGINT NOT NULL DEFAULT 0)
  ENGINE=InnoDB;
CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, account_id INT NOT NULL, status VARCHAR(16) NOT NULL,
  amount DECIMAL(10,2) NOT NULL, KEY idx_orders_status (status),
  CONSTRAINT fk_orders_account FOREIGN KEY (account_id) REFERENCES accounts (id)) ENGINE=InnoDB;
INSERT INTO accounts VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30), (4, 'd', 40);
INSERT INTO orders (account_id, status, amount) VALUES (1, 'NEW', 1.50), (2, 'PAID', 2.50), (3, 'NEW', 3.50),
  (4, 'PAID', 4.50), (1, 'NEW', 5.50), (2, 'NEW', 6.50);
CREATE TRIGGER orders_to_balance AFTER INSERT ON orders FOR EACH ROW
  UPDATE accounts SET balance = balance + 1 WHERE id = NEW.account_id;
CREATE VIEW account_orders AS SELECT a.id, a.name, COUNT(o.id) AS n FROM accounts a LEFT JOIN orders o
  ON o.account_id = a.id GROUP BY a.id, a.name;
CREATE PROCEDURE touch_accounts() UPDATE accounts SET balance = balance + 0;
"""


def version(i: int) -> str:
    return f"{SOURCE}-P{i}"


def version_script(i: int, *, fail: bool = False) -> str:
    """Version ``i``'s script; ``fail``: a statement midway violates a foreign key (the operator fixes it)."""
    bad = f"INSERT INTO up_{i} (id, order_id, note) VALUES (900, 999999, 'no such order');\n" if fail else ""
    return f"""CREATE TABLE up_{i} (id INT PRIMARY KEY, order_id INT NOT NULL, note VARCHAR(40),
  KEY idx_up_{i}_order (order_id),
  CONSTRAINT fk_up_{i}_order FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB;
INSERT INTO up_{i} (id, order_id, note) SELECT id, id, CONCAT('v{i}-', status) FROM orders;
{bad}ALTER TABLE orders ADD COLUMN c_{i} INT NOT NULL DEFAULT {i};
UPDATE orders SET amount = amount + {i} WHERE id % 2 = {i % 2};
DELIMITER $$
CREATE PROCEDURE proc_{i}()
BEGIN
  UPDATE accounts SET balance = balance + {i} WHERE id % 3 = {i % 3};
  INSERT INTO up_{i} (id, order_id, note) VALUES (100 + {i}, 1, 'from proc');
END$$
CREATE TRIGGER trg_up_{i} BEFORE INSERT ON up_{i} FOR EACH ROW
BEGIN
  SET NEW.note = UPPER(NEW.note);
END$$
DELIMITER ;
CALL proc_{i}();
CREATE OR REPLACE VIEW v_up_{i} AS SELECT o.id, u.note FROM orders o JOIN up_{i} u ON u.order_id = o.id;
CREATE OR REPLACE VIEW account_orders AS SELECT a.id, a.name, {i} AS version FROM accounts a;
"""


def write_chain(root: Path, versions: int, *, fail_at: int | None = None,
                unsupported: Iterable[int] = (), undo_at: Iterable[int] = ()) -> dict[str, str]:
    """Configs and scripts of ``versions`` patches on SOURCE under ``root``; returns the FT_UPGRADE_* variables.

    P1 also checks (pre_business_check), backs up (pre_upgrade_process) and restores (its rollback_steps);
    ``undo_at`` versions have a rollback step of their own (a ping), ``unsupported`` say rollback_supported:
    false on their SQL step.
    """
    configs, sql = root / "configs", root / "sql"
    configs.mkdir(parents=True, exist_ok=True)
    for i in range(1, versions + 1):
        code = 317500 + i
        folder = sql / "patch" / str(code)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "001_up.sql").write_text(version_script(i, fail=i == fail_at), encoding="utf-8")
        step: dict[str, Any] = {"id": f"sql_{i}", "class_name": "PatchSqlExecutorStep",
                                "sql_scripts": [f"patch/{code}/001_up.sql"]}
        if i in set(unsupported):
            step["rollback_supported"] = False
        config: dict[str, Any] = {"version": str(code), "version_type": "patch", "base_version": "317500",
                                  "upgrade_steps": {"startup_pre_process": [step]}, "rollback_steps": {}}
        if i == 1:
            config["upgrade_steps"]["pre_business_check"] = [
                {"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]
            config["upgrade_steps"]["pre_upgrade_process"] = [
                {"id": "backup", "class_name": "BackupStep", "databases": [{"database": "ft_db"}]}]
            config["rollback_steps"]["pre_upgrade_process"] = [{"id": "restore", "class_name": "RestoreBackupStep"}]
        if i in set(undo_at):
            config["rollback_steps"]["startup_pre_process"] = [
                {"id": f"undo_{i}", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]
        (configs / f"{code}.json").write_text(json.dumps(config), encoding="utf-8")
    return {"FT_UPGRADE_CONFIGS": str(configs), "FT_UPGRADE_SQL_ROOT": str(sql)}


def fix_script(root: Path, i: int) -> None:
    """The operator corrects version ``i``'s script."""
    (root / "sql" / "patch" / str(317500 + i) / "001_up.sql").write_text(version_script(i), encoding="utf-8")


def run_sql(url: str, script: str) -> None:
    """``script`` through the plain ``mariadb`` client (DELIMITER and all)."""
    u = make_url(url)
    subprocess.run(["mariadb", f"--host={u.host or '127.0.0.1'}", f"--port={u.port or 3306}",
                    f"--user={u.username or 'root'}", *([f"--password={u.password}"] if u.password else []),
                    u.database or ""], input=script, text=True, check=True, capture_output=True, timeout=120)


def plain_client(url: str, versions: int) -> None:
    """The chain as the plain client runs it: every version's (correct) script in order."""
    run_sql(url, "".join(version_script(i) for i in range(1, versions + 1)))


def state(url: str) -> dict[str, Any]:
    """The catalog (tables, columns, indexes, foreign keys, triggers, views, routines) and every table's
    CHECKSUM TABLE of the database behind ``url``."""
    engine = create_engine(url)
    q = {
        "tables": "SELECT TABLE_NAME, TABLE_TYPE, ENGINE FROM information_schema.TABLES "
                  "WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1",
        "columns": "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA "
                   "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 3",
        "indexes": "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE FROM "
                   "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 2, 3",
        "foreign_keys": "SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, UPDATE_RULE, DELETE_RULE FROM "
                        "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY 1",
        "triggers": "SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT "
                    "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1",
        "views": "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() "
                 "ORDER BY 1",
        "routines": "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE "
                    "ROUTINE_SCHEMA = DATABASE() ORDER BY 1",
    }
    with engine.connect() as conn:
        found: dict[str, Any] = {k: [tuple(r) for r in conn.execute(text(v))] for k, v in q.items()}
        database = conn.execute(text("SELECT DATABASE()")).scalar_one()
        found["views"] = [(n, d.replace(f"`{database}`.", "")) for n, d in found["views"]]
        base = [t for t, kind, _ in found["tables"] if kind == "BASE TABLE"]
        found["checksums"] = {t: conn.execute(text(f"CHECKSUM TABLE `{t}`")).one()[1] for t in base}
        found["auto_increment"] = {t: conn.execute(text(
            "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"),
            {"t": t}).scalar() for t in base}
    engine.dispose()
    return found


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What differs between two states, part by part (for a readable assertion)."""
    return {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
