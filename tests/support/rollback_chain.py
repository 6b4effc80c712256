"""A generated chain of patch versions for the rollback tests, and what "exactly as before" compares.

The site's database starts with tables joined by a foreign key, a trigger, a view and a procedure (small
data). Each version of the chain creates a table with a foreign key, a trigger and a procedure (DELIMITER
blocks), a view, changes existing tables (a column, rows) and calls its procedure. The catalog (tables,
columns, indexes, foreign keys, triggers, views, routines, events) and every table's CHECKSUM TABLE and rows
are the state (:mod:`tests.client_compare`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.client_compare import Snapshot, create_database, run_client, snapshot

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
    """``script`` through the plain ``mariadb`` client (DELIMITER and all), as :func:`client_result` runs it."""
    u = make_url(url)
    subprocess.run(["mariadb", f"--host={u.host or '127.0.0.1'}", f"--port={u.port or 3306}",
                    f"--user={u.username or 'root'}", *([f"--password={u.password}"] if u.password else []),
                    "--default-character-set=utf8mb4", u.database or ""],
                   input=script, text=True, check=True, capture_output=True, timeout=120)


def plain_client(folder: Path, database: str, versions: int) -> Snapshot:
    """The site's database (as :func:`run_sql` makes it) and the chain as the plain client runs it — every
    version's correct script in order, with the client's default character set (utf8mb3, the tool's default
    for a site that names none) — into a new database ``database``; its snapshot."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "000_before.sql").write_text(BEFORE, encoding="utf-8")
    chain = []
    for i in range(1, versions + 1):
        chain.append(folder / f"{i:03d}_up.sql")
        chain[-1].write_text(version_script(i), encoding="utf-8")
    create_database(database)
    assert run_client([folder / "000_before.sql"], database, "utf8mb4") == [0]
    assert run_client(chain, database, "utf8mb3") == [0] * versions
    return snapshot(database)


__all__ = ["BEFORE", "SOURCE", "fix_script", "plain_client", "run_sql", "snapshot", "version",
           "version_script", "write_chain"]
