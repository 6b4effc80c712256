"""Statement log lines: the requirements' format, several statements per record, failures at once."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from tasks.sql.statement_log import StatementLog, statement_line

MOMENT = datetime(2026, 11, 28, 9, 30, 15, tzinfo=UTC)
BLOCK = re.compile(r"\[2026-11-28 09:30:15\] 文件: a\.sql, 行号: (\d+)\nSQL: (.*)\n数据库: ft_db\n执行状态: (\S+)\n"
                   r"耗时: (\d+\.\d{3})秒\n影响行数: (\d+)")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def capture(level: int = logging.INFO) -> tuple[logging.Logger, Records]:
    logger = logging.getLogger(f"test.statement_log.{id(object())}")
    logger.setLevel(level)
    logger.propagate = False
    handler = Records()
    logger.addHandler(handler)
    return logger, handler


def test_a_line_has_time_file_line_sql_database_status_duration_and_rows() -> None:
    text = statement_line(MOMENT, "a.sql", 7, "INSERT INTO t VALUES (1)", "ft_db", "SUCCESS", 1234, 1)
    assert text == ("[2026-11-28 09:30:15] 文件: a.sql, 行号: 7\nSQL: INSERT INTO t VALUES (1)\n数据库: ft_db\n"
                    "执行状态: 成功\n耗时: 1.234秒\n影响行数: 1")
    long_sql = "INSERT INTO t VALUES " + ",".join(["(1)"] * 1000)
    assert statement_line(MOMENT, "a.sql", 7, long_sql, "ft_db", "SUCCESS", 0, None).count("(1)") < 700


def test_lines_are_grouped_into_records_and_each_statement_keeps_its_block() -> None:
    logger, handler = capture()
    log = StatementLog(logger, max_lines=3, max_seconds=3600)
    for n in range(1, 8):
        log.success(MOMENT, "a.sql", n, f"INSERT INTO t VALUES ({n})", "ft_db", "SUCCESS", n, 1)
    assert len(handler.records) == 2, "two full groups of three so far"
    log.flush()
    assert [r.getMessage().count("文件:") for r in handler.records] == [3, 3, 1]
    blocks = [m.groups() for r in handler.records for m in BLOCK.finditer(r.getMessage())]
    assert [(int(b[0]), b[1], b[2], b[3]) for b in blocks] == [
        (n, f"INSERT INTO t VALUES ({n})", "成功", f"{n / 1000:.3f}") for n in range(1, 8)]


def test_a_failure_sends_what_ran_before_it_then_an_error_record_of_its_own() -> None:
    logger, handler = capture()
    log = StatementLog(logger, max_lines=100, max_seconds=3600)
    log.success(MOMENT, "a.sql", 1, "CREATE TABLE t (id INT)", "ft_db", "SUCCESS", 5, 0)
    log.failure(MOMENT, "a.sql", 2, "INSERT INTO t VALUES (1), (1)", "ft_db", 3, message="Duplicate entry '1'")
    assert [r.levelno for r in handler.records] == [logging.INFO, logging.ERROR]
    assert "执行状态: 失败" in handler.records[1].getMessage()
    assert handler.records[1].getMessage().endswith("错误: Duplicate entry '1'")


def test_lines_wait_at_most_max_seconds_and_nothing_is_built_when_info_is_off() -> None:
    logger, handler = capture()
    log = StatementLog(logger, max_lines=100, max_seconds=0.0)
    log.success(MOMENT, "a.sql", 1, "SELECT 1", "ft_db", "SUCCESS", 0, None)
    assert len(handler.records) == 1, "due at once"
    quiet, quiet_handler = capture(logging.WARNING)
    log = StatementLog(quiet, max_lines=1)
    log.success(MOMENT, "a.sql", 1, "SELECT 1", "ft_db", "SUCCESS", 0, None)
    log.flush()
    assert quiet_handler.records == []
