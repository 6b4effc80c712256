"""A small FT-like schema with awkward values, filled fast with server-side INSERT … SELECT."""

from __future__ import annotations

from sqlalchemy import Engine, text

ORDERS = """CREATE TABLE orders (
  id BIGINT PRIMARY KEY AUTO_INCREMENT, customer VARCHAR(64) NOT NULL, note TEXT NULL,
  amount DECIMAL(12,2) NOT NULL, created DATETIME(3) NOT NULL, payload VARBINARY(32) NULL, status TINYINT NOT NULL
) ENGINE=InnoDB"""
USERS = """CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, zero_id INT NULL) ENGINE=InnoDB"""


def fill(engine: Engine, rows: int) -> None:
    """``rows`` orders (quotes, newlines, unicode, NULL, binary) and 100 users."""
    with engine.begin() as conn:
        conn.execute(text(ORDERS))
        conn.execute(text(USERS))
        conn.execute(text("INSERT INTO users VALUES (0, 'zero \\' quote', NULL)"))
        conn.execute(text("INSERT INTO users SELECT seq, CONCAT('用户-', seq, '\\n\\\\'), seq FROM seq_1_to_99"))
        done = 0
        while done < rows:
            n = min(200_000, rows - done)
            conn.execute(text(
                "INSERT INTO orders (customer, note, amount, created, payload, status) "
                "SELECT CONCAT('c', seq % 997), IF(seq % 7 = 0, NULL, CONCAT('it''s \"x\"\\n', seq, ' ✓')), "
                "(seq % 100000) / 100, '2024-01-01' + INTERVAL seq SECOND, "
                "IF(seq % 5 = 0, UNHEX(MD5(seq)), NULL), seq % 4 "
                f"FROM seq_{done + 1}_to_{done + n}"))
            done += n


def checksums(engine: Engine, tables: tuple[str, ...] = ("orders", "users")) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"CHECKSUM TABLE {t}")).one()[1] for t in tables}


RELATED = [
    """CREATE TABLE accounts (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL, balance BIGINT NOT NULL DEFAULT 0)
       ENGINE=InnoDB""",
    """CREATE TABLE payments (id INT PRIMARY KEY AUTO_INCREMENT, account_id INT NOT NULL, amount INT NOT NULL,
       CONSTRAINT fk_payments_account FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE)
       ENGINE=InnoDB""",
    """CREATE TRIGGER payments_add_to_balance AFTER INSERT ON payments FOR EACH ROW
       UPDATE accounts SET balance = balance + NEW.amount WHERE id = NEW.account_id""",
    """CREATE VIEW account_totals AS SELECT a.id, a.name, COUNT(p.id) AS payments
       FROM accounts a LEFT JOIN payments p ON p.account_id = a.id GROUP BY a.id, a.name""",
]


def fill_related(engine: Engine, payments: int) -> None:
    """A parent, a child with a named foreign key, a trigger on the child and a view over both."""
    with engine.begin() as conn:
        for statement in RELATED:
            conn.execute(text(statement))
        conn.execute(text("INSERT INTO accounts (id, name) SELECT seq, CONCAT('a', seq) FROM seq_1_to_500"))
        conn.execute(text("INSERT INTO payments (account_id, amount) SELECT 1 + seq % 500, seq % 97 "
                          f"FROM seq_1_to_{payments}"))


RICH = [
    "CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(32) NOT NULL, "
    "region CHAR(2) NOT NULL DEFAULT 'CN', KEY idx_region (region)) ENGINE=InnoDB",
    "CREATE TABLE orders2 (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT NOT NULL, total INT NOT NULL, "
    "CONSTRAINT fk_orders2_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE, "
    "CONSTRAINT chk_total CHECK (total >= 0)) ENGINE=InnoDB",
    "CREATE TABLE lines2 (order_id INT NOT NULL, n INT NOT NULL, sku VARCHAR(16) NOT NULL, PRIMARY KEY (order_id, n), "
    "CONSTRAINT fk_lines2_order FOREIGN KEY (order_id) REFERENCES orders2 (id)) ENGINE=InnoDB",
    "CREATE TABLE audit2 (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(64) NOT NULL) ENGINE=InnoDB",
    "CREATE TRIGGER orders2_audit AFTER INSERT ON orders2 FOR EACH ROW "
    "INSERT INTO audit2 (what) VALUES (CONCAT('order ', NEW.id))",
    "CREATE TRIGGER orders2_audit_second AFTER INSERT ON orders2 FOR EACH ROW "
    "INSERT INTO audit2 (what) VALUES (CONCAT('second ', NEW.id))",
    "CREATE VIEW customer_totals AS SELECT c.id, c.name, SUM(o.total) AS total "
    "FROM customers c LEFT JOIN orders2 o ON o.customer_id = c.id GROUP BY c.id, c.name",
    "CREATE VIEW big_customers AS SELECT id, name FROM customer_totals WHERE total > 100",
    "CREATE VIEW region_counts AS SELECT region, COUNT(*) AS n FROM customers GROUP BY region",
    "CREATE PROCEDURE add_order(IN who INT, IN amount INT) BEGIN\n"
    "  INSERT INTO orders2 (customer_id, total) VALUES (who, amount);\n  SELECT LAST_INSERT_ID();\nEND",
    "CREATE FUNCTION with_tax(amount INT) RETURNS INT DETERMINISTIC RETURN amount * 113 DIV 100",
    "CREATE EVENT purge_audit2 ON SCHEDULE EVERY 1 DAY STARTS '2031-01-01 00:00:00' DISABLE "
    "DO DELETE FROM audit2 WHERE id < 0",
]


def fill_rich(engine: Engine, orders: int = 2000) -> None:
    """Tables with foreign keys (a chain of three) and a check, two ordered triggers, a view over a view,
    a procedure, a function and an event: what an FT schema holds besides rows."""
    with engine.begin() as conn:
        for statement in RICH:
            conn.execute(text(statement))
        conn.execute(text("INSERT INTO customers (name, region) SELECT CONCAT('客户', seq), "
                          "IF(seq % 3 = 0, 'HK', 'CN') FROM seq_1_to_200"))
        conn.execute(text(f"INSERT INTO orders2 (customer_id, total) SELECT 1 + seq % 200, seq % 500 "
                          f"FROM seq_1_to_{orders}"))
        conn.execute(text(f"INSERT INTO lines2 SELECT 1 + seq DIV 3, seq % 3, CONCAT('sku-', seq) "
                          f"FROM seq_0_to_{orders * 3 - 1}"))
        conn.execute(text("DELETE FROM audit2 WHERE id > 10"))  # a counter above the highest id


#: What an upgrade does to that schema; every statement can run again (a killed restore's next trial).
UPGRADE = [
    "CREATE TABLE IF NOT EXISTS invoices (id INT PRIMARY KEY AUTO_INCREMENT, order_id INT NOT NULL, "
    "CONSTRAINT fk_invoices_order FOREIGN KEY (order_id) REFERENCES orders2 (id)) ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS invoice_items (invoice_id INT NOT NULL, customer_id INT NOT NULL, "
    "CONSTRAINT fk_items_invoice FOREIGN KEY (invoice_id) REFERENCES invoices (id), "
    "CONSTRAINT fk_items_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB",
    "INSERT INTO invoices (order_id) SELECT id FROM orders2 WHERE id % 10 = 0",
    "CREATE OR REPLACE VIEW invoice_count AS SELECT COUNT(*) AS n FROM invoices",
    "DROP VIEW IF EXISTS big_customers, customer_totals",  # a view over a view: put back in two passes
    "CREATE OR REPLACE VIEW region_counts AS SELECT region, 0 AS n FROM customers",
    "CREATE OR REPLACE TRIGGER orders2_new BEFORE INSERT ON orders2 FOR EACH ROW SET NEW.total = NEW.total + 1",
    "DROP TRIGGER IF EXISTS orders2_audit",
    "CREATE OR REPLACE PROCEDURE add_order(IN who INT) BEGIN\n  INSERT INTO orders2 (customer_id, total) "
    "VALUES (who, 0);\nEND",
    "CREATE OR REPLACE PROCEDURE new_proc() BEGIN\n  SELECT 1;\n  SELECT 2;\nEND",
    "CREATE OR REPLACE FUNCTION new_fn(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
    "CREATE OR REPLACE EVENT new_event ON SCHEDULE EVERY 1 HOUR STARTS '2031-01-01 00:00:00' DISABLE DO SELECT 1",
    "ALTER EVENT purge_audit2 ON SCHEDULE EVERY 2 DAY STARTS '2031-01-01 00:00:00'",
    "CREATE SEQUENCE IF NOT EXISTS invoice_seq",
    "ALTER TABLE customers MODIFY name VARCHAR(64) NOT NULL, ADD COLUMN IF NOT EXISTS vip TINYINT NOT NULL DEFAULT 0",
    "ALTER TABLE orders2 ADD INDEX IF NOT EXISTS idx_total (total)",
    "UPDATE customers SET name = CONCAT(name, '!') WHERE id % 7 = 0",
    "DELETE FROM orders2 WHERE id % 13 = 0",
    "ALTER TABLE lines2 ADD CONSTRAINT fk_lines2_invoice FOREIGN KEY IF NOT EXISTS (order_id) REFERENCES invoices (id)",
    "INSERT INTO orders2 (customer_id, total) VALUES (1, 5), (2, 6)",
    "DROP TABLE IF EXISTS audit2",
    "ALTER DATABASE COLLATE utf8mb4_unicode_ci",
]


def upgrade_like(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SET SESSION FOREIGN_KEY_CHECKS=0"))
        for statement in UPGRADE:
            conn.execute(text(statement))


def database_state(engine: Engine) -> dict[str, object]:
    """Everything comparable about a database, read straight from information_schema (not through the code
    under test): tables, columns, indexes, foreign keys, checks, triggers in order, views, routines with their
    parameters, events, counters, default collation, and every table's CHECKSUM TABLE."""
    queries = {
        "schema": "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                  "WHERE SCHEMA_NAME = DATABASE()",
        "tables": "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, AUTO_INCREMENT, CREATE_OPTIONS "
                  "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1",
        "columns": "SELECT TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
                   "EXTRA, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                   "ORDER BY 1, 2",
        "indexes": "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, INDEX_TYPE "
                   "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1, 2, 4",
        "foreign_keys": "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, "
                        "k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
                        "FROM information_schema.KEY_COLUMN_USAGE k "
                        "JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.TABLE_SCHEMA "
                        "AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME "
                        "WHERE k.TABLE_SCHEMA = DATABASE() ORDER BY 1, 2, k.ORDINAL_POSITION",
        "checks": "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                  "WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY 1, 2",
        "triggers": "SELECT EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, TRIGGER_NAME, "
                    "ACTION_STATEMENT, SQL_MODE, DEFINER FROM information_schema.TRIGGERS "
                    "WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1, 2, 3, 4",
        "views": "SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, DEFINER, CHARACTER_SET_CLIENT "
                 "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1",
        "routines": "SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION, DTD_IDENTIFIER, IS_DETERMINISTIC, "
                    "SQL_MODE, DEFINER, SECURITY_TYPE FROM information_schema.ROUTINES "
                    "WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1, 2",
        "parameters": "SELECT SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER "
                      "FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = DATABASE() ORDER BY 1, 2",
        "events": "SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STARTS, STATUS, "
                  "ON_COMPLETION, SQL_MODE, TIME_ZONE FROM information_schema.EVENTS "
                  "WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1",
    }
    with engine.connect() as conn:
        state: dict[str, object] = {k: [tuple(r) for r in conn.execute(text(q)).all()] for k, q in queries.items()}
        tables = [name for name, kind, *_ in state["tables"] if kind == "BASE TABLE"]  # type: ignore[union-attr]
        state["checksums"] = {t: conn.execute(text(f"CHECKSUM TABLE `{t}`")).one()[1] for t in tables}
    return state
