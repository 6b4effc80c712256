"""A step's report section and summary are in the site's language: Chinese by default, English for en.

Two representative steps on real services: the backup (备份完成状态) and the health check (健康检查报告);
then summaries rendered from literals (pure).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from tasks.backup.step import BackupParams, BackupStep
from tasks.checks.outcome import CheckOutcome, CheckStatus
from tasks.checks.report import summary_line
from tasks.cleanup.release_step import release_result
from tasks.composite.parts import combine
from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.execution.report_text import report_text
from tasks.health.step import HealthParams, ServiceHealthCheckStep
from tests.helpers import step_context
from tests.tasks.backup.data import fill

CJK = re.compile(r"[\u4e00-\u9fff]")
#: What a Chinese section may still spell in Latin letters: identifiers, SQL, units, the OS's own error text.
KEPT = ("CHECKSUM TABLE", "SELECT", "sha256", "MB", "HTTP", "Connection refused", "ft_db.orders", "ft_db.users",
        "ft_db", "ft.properties", "open port", "closed port")


def _prose(markdown: str, *also: str) -> str:
    """The section's own words: without code spans, paths, identifiers and numbers."""
    text = re.sub(r"`[^`]*`", "", markdown)
    for kept in (*also, *KEPT):
        text = text.replace(kept, "")
    return text


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    """A port something listens on, and one nothing does."""
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))
        yield listening.getsockname()[1], closed.getsockname()[1]


def backup(tmp_path: Path, url: str, language: str | None) -> StepResult:
    (tmp_path / "home" / "config_dir").mkdir(parents=True, exist_ok=True)
    (tmp_path / "home" / "config_dir" / "ft.properties").write_text("a=1\n")
    params = BackupParams(databases=[{"database": "ft_db", "tables": ["orders", "users"]}],
                          config_files=["ft.properties"])
    with step_context(tmp_path, databases={"ft_db": url}, cutpoint="pre_upgrade_process",
                      language=language) as ctx:
        return BackupStep(params, ctx).run()


def health(tmp_path: Path, url: str, ports: tuple[int, int], language: str | None) -> StepResult:
    params = HealthParams(ports=[{"name": "open port", "port": ports[0]}, {"name": "closed port", "port": ports[1]}],
                          databases=["ft_db"])
    with step_context(tmp_path, databases={"ft_db": url}, language=language) as ctx, \
            pytest.raises(StepFailed) as failed:
        ServiceHealthCheckStep(params, ctx).run()
    assert isinstance(failed.value.result, StepResult)
    return failed.value.result


def test_backup_and_health_sections_are_chinese_by_default_with_no_english_prose(
        tmp_path: Path, mariadb_database: str, ports: tuple[int, int]) -> None:
    engine = create_engine(mariadb_database)
    fill(engine, 10)
    engine.dispose()
    done = backup(tmp_path, mariadb_database, None)
    made = done.markdown
    assert made.startswith("**备份完成** `") and "| 表 | 行数 | CHECKSUM TABLE | 字节数 |" in made
    assert re.fullmatch(r"备份 \S+：2 张表，110 行，1 个文件，\d+\.\d\d MB", done.summary), done.summary
    assert "| 配置文件 | sha256 |" in made
    checked = health(tmp_path, mariadb_database, ports, None)
    assert checked.markdown.startswith("| 检查对象 | 结果 | 版本 | 详情 | 毫秒 |")
    for row in ("| open port | ✅ 正常 | - | 端口可连接 |", "| closed port | ❌ 异常 | - | 端口无法连接：",
                "| 数据库 ft_db | ✅ 正常 | - | SELECT 1 成功 |"):
        assert row in checked.markdown, row
    assert checked.details["checks"][0]["detail"] == "port open", "the JSON stays English"
    assert checked.summary == "2/3 正常：异常 closed port"
    for markdown in (made, checked.markdown):
        prose = _prose(markdown, str(tmp_path / "home" / "config_dir"))
        assert not re.search(r"[A-Za-z]{3,}", prose), prose


def test_a_site_with_language_en_gets_english_sections_with_no_chinese(
        tmp_path: Path, mariadb_database: str, ports: tuple[int, int]) -> None:
    engine = create_engine(mariadb_database)
    fill(engine, 10)
    engine.dispose()
    done = backup(tmp_path, mariadb_database, "en")
    made = done.markdown
    assert made.startswith("**Backup** `") and "| table | rows | CHECKSUM TABLE | bytes |" in made
    assert re.fullmatch(r"backup \S+: 2 tables, 110 rows, 1 files, \d+\.\d\d MB", done.summary), done.summary
    result = health(tmp_path, mariadb_database, ports, "en")
    assert result.summary == "2/3 healthy: unhealthy closed port"
    checked = result.markdown
    for row in ("| open port | ✅ healthy | - | port open |", "| closed port | ❌ unhealthy | - | port closed: ",
                "| database ft_db | ✅ healthy | - | SELECT 1 ok |"):
        assert row in checked, row
    assert not CJK.search(made + checked), made + checked


def test_summaries_and_the_runners_own_lines_follow_the_language_from_literals() -> None:
    failed = CheckOutcome(id="mw", title="mw", type="custom_sql", target="ft_db", status=CheckStatus.FAIL,
                          result="r", suggestion="-", severity="fail")
    assert summary_line([failed]) == "共 1 项检查：失败 1，警告 0，通过 0，跳过 0（失败项：mw）"
    assert summary_line([failed], "en") == "1 checks: 1 failed, 0 warnings, 0 passed, 0 skipped (failed: mw)"
    assert release_result([], []).summary == "释放 0 个文件，0 字节，0 个 Redis 键"
    assert release_result([], [], "en").summary == "freed 0 file(s), 0 bytes, 0 Redis key(s)"
    parts = [("log_cleanup", "日志清理", StepResult(StepStatus.SUCCESS, "已归档或删除 1 个文件"))]
    assert combine(parts).summary == "日志清理：已归档或删除 1 个文件"
    assert report_text(None)["step_blocked"].format(blocker="a") == "已跳过：依赖的步骤 a 未成功"
    assert report_text("en")["step_reused"] == "already done in this execution"
