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
