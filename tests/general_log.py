"""MariaDB's general log as a witness: which statements reached the server, and how often."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pymysql

from tests.conftest import MARIADB_ROOT


class GeneralLog:
    """Queries logged by the server since a moment (``mark()``)."""

    def __init__(self, conn: pymysql.Connection) -> None:
        self.conn = conn
        self.since = self.now()

    def now(self) -> datetime:
        with self.conn.cursor() as cur:
            cur.execute("SELECT NOW(6)")
            return cur.fetchone()[0]

    def mark(self) -> None:
        """Count from now on."""
        self.since = self.now()

    def queries(self, starting: str) -> list[str]:
        """Statements (Query and Execute commands) sent since the mark that begin with ``starting``."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE event_time >= %s "
                        "AND command_type IN ('Query', 'Execute') AND TRIM(argument) LIKE %s",
                        (self.since, starting + "%"))
            return [row[0] for row in cur.fetchall()]


@contextmanager
def general_log() -> Iterator[GeneralLog]:
    """The general log on (to its table) for the block; the server's previous settings restored after."""
    from sqlalchemy.engine import make_url

    url = make_url(MARIADB_ROOT)
    conn = pymysql.connect(host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username or "root",
                           password=url.password or "", autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT @@global.general_log, @@global.log_output")
        was_on, was_output = cur.fetchone()
        output = was_output if "TABLE" in was_output else ("FILE,TABLE" if "FILE" in was_output else "TABLE")
        cur.execute("SET GLOBAL log_output = %s, general_log = 1", (output,))
    try:
        yield GeneralLog(conn)
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL general_log = %s, log_output = %s", (was_on, was_output))
        conn.close()
