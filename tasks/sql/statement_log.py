"""The seed-format log line of every statement, several statements to one log record.

In a flow run a log record costs about 0.25 ms (Prefect's API handler about 0.07 ms, its rich console
handler about 0.17 ms): more than a small statement takes on the server. Lines are therefore gathered
and sent as one record of at most ``max_lines`` statements, at the latest ``max_seconds`` after the
first of them or before a statement that may run long; a failure is sent at once, as its own ERROR
record. A 10,000-statement data script becomes about 100 records instead of 10,000.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from tasks.core.statuses import StatementStatus

STATUS_ZH = {StatementStatus.SUCCESS: "成功", StatementStatus.FAILED: "失败", StatementStatus.SKIPPED: "跳过",
             StatementStatus.RUNNING: "执行中"}
LINE = "[%s] 文件: %s, 行号: %d\nSQL: %s\n数据库: %s\n执行状态: %s\n耗时: %.3f秒\n影响行数: %d%s%s"
SQL_LIMIT = 2000  # characters of SQL in a log line (the ClickHouse event keeps it whole)


def statement_line(moment: datetime, file: str, line: int, sql: str, database: str, status: str, ms: int,
                   affected: int | None, *, message: str = "", note: str = "") -> str:
    """One statement in the requirements' format: time, file, line, SQL, database, status, duration, rows."""
    shown = sql if len(sql) <= SQL_LIMIT else sql[:SQL_LIMIT] + f"… ({len(sql)} characters)"
    return LINE % (f"{moment:%Y-%m-%d %H:%M:%S}", file, line, shown, database, STATUS_ZH.get(status, status),
                   ms / 1000, affected if affected is not None else 0, f"\n错误: {message}" if message else "",
                   f"\n说明: {note}" if note else "")


class StatementLog:
    """Buffers statement lines and logs them in groups; thread-safe (parallel lanes share it)."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[Any], *, max_lines: int = 100,
                 max_seconds: float = 0.5) -> None:
        self.logger = logger
        self.max_lines = max_lines
        self.max_seconds = max_seconds
        self.enabled = logger.isEnabledFor(logging.INFO)
        self._lines: list[str] = []
        self._first = 0.0
        self._lock = threading.Lock()

    def success(self, moment: datetime, file: str, line: int, sql: str, database: str, status: str, ms: int,
                affected: int | None, *, note: str = "") -> None:
        if not self.enabled:
            return
        text = statement_line(moment, file, line, sql, database, status, ms, affected, note=note)
        with self._lock:
            if not self._lines:
                self._first = time.monotonic()
            self._lines.append(text)
            due = len(self._lines) >= self.max_lines or time.monotonic() - self._first >= self.max_seconds
        if due:
            self.flush()

    def failure(self, moment: datetime, file: str, line: int, sql: str, database: str, ms: int, *,
                message: str, note: str = "") -> None:
        """What succeeded before, then the failure as an ERROR record of its own."""
        self.flush()
        self.logger.error("%s", statement_line(moment, file, line, sql, database, StatementStatus.FAILED, ms, None,
                                               message=message, note=note))

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            self.logger.info("%s", "\n\n".join(lines))
