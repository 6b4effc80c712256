"""LogCleanupStep on real files with real ages (os.utime), and the ClickHouse event log on the embedded engine."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from blocks.clickhouse import ClickHouseLogStore
from tasks.cleanup.logs import LogFile, Rule, floor_days, plan_rule
from tasks.cleanup.logs_step import LogCleanupParams, LogCleanupStep
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.events.logstore import ClickHouseEventLog, LogEvent
from tests.helpers import step_context
from tests.support.files import DAY, aged, immovable


def clean(tmp_path: Path, rules: list[dict[str, Any]], **params: Any) -> StepResult:
    config = {"rules": rules, "clean_event_log": False, **params}
    with step_context(tmp_path, cutpoint="post_upgrade") as context:
        return LogCleanupStep(LogCleanupParams.model_validate(config), context).run()


def names(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_old_logs_are_gzipped_into_the_archive_keeping_their_date_and_young_ones_stay(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    old = aged(logs / "ft-manager.log", 10)
    older = aged(logs / "ft-report.2024-01-01.log", 30)
    aged(logs / "today.log", 0)
    aged(logs / "notes.txt", 30)
    original = old.read_bytes()
    old_mtime = old.stat().st_mtime

    result = clean(tmp_path, [{"folder": str(logs), "after_days": 7}])

    assert names(logs) == ["archive/ft-manager.log.gz", "archive/ft-report.2024-01-01.log.gz", "notes.txt",
                           "today.log"]
    archive = logs / "archive" / "ft-manager.log.gz"
    assert gzip.decompress(archive.read_bytes()) == original
    assert archive.stat().st_mtime == pytest.approx(old_mtime, abs=1e-3)
    rule = result.details["rules"][0]
    assert rule["archived"] == 2 and rule["skipped"] == []
    assert rule["bytes_freed"] == len(original) * 2 - rule["bytes_archived"] > 0
    assert result.status == StepStatus.SUCCESS
    assert not older.exists()


def test_core_logs_younger_than_7_days_are_kept_even_when_a_rule_asks_for_1_day(tmp_path: Path) -> None:
    core, debug = tmp_path / "core", tmp_path / "debug"
    for days in (1.5, 3, 6.9, 7.1, 10):
        aged(core / f"orders-{days}d.log", days)
        aged(debug / f"trace-{days}d.log", days)

    result = clean(tmp_path, [{"folder": str(core), "after_days": 1, "action": "delete"},
                              {"folder": str(debug), "after_days": 1, "action": "delete", "core": False}])

    assert names(core) == ["orders-1.5d.log", "orders-3d.log", "orders-6.9d.log"]
    assert names(debug) == []
    assert result.details["notes"] == [f"{core}: after_days 1 raised to 7 (core business logs)"]
    assert f"ℹ️ {core}：after_days 1 已提高到 7（核心业务日志）" in result.markdown


def test_archives_past_their_retention_are_deleted_but_core_archives_are_kept_7_days(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    archive = logs / "archive"
    for name, days in (("a.log.gz", 40), ("b.log.gz", 8), ("c.log.gz", 5), ("d.log.gz", 2)):
        aged(archive / name, days)
    aged(archive / "README", 90)  # not an archive: never touched

    result = clean(tmp_path, [{"folder": str(logs), "archive_retention_days": 3}])

    assert names(archive) == ["README", "c.log.gz", "d.log.gz"]
    assert result.details["rules"][0]["archives_deleted"] == 2
    assert "archive_retention_days 3 raised to 7" in result.details["notes"][0]


def test_rotated_logs_already_compressed_are_moved_into_the_archive_as_they_are(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    rotated = aged(logs / "ft-openapi.log.3.gz", 12, gzip.compress(b"rotated\n"))
    aged(logs / "archive" / "ft-openapi.log.3.gz", 50, b"an older archive of the same name")
    result = clean(tmp_path, [{"folder": str(logs), "patterns": ["*.log", "*.log.*"]}])
    assert not rotated.exists()
    assert gzip.decompress((logs / "archive" / "ft-openapi.log.3.1.gz").read_bytes()) == b"rotated\n"
    assert result.details["rules"][0]["moved"] == 1


def test_recursive_rules_keep_the_folder_layout_and_never_follow_links(tmp_path: Path) -> None:
    logs, outside = tmp_path / "logs", tmp_path / "outside"
    aged(logs / "manager" / "app.log", 9)
    target = aged(outside / "precious.log", 30)
    (logs / "link.log").symlink_to(target)
    (logs / "linked-dir").symlink_to(outside, target_is_directory=True)

    clean(tmp_path, [{"folder": str(logs), "recursive": True, "archive_folder": str(tmp_path / "vault")}])

    assert names(tmp_path / "vault") == ["manager/app.log.gz"]
    assert target.exists() and (logs / "link.log").is_symlink()


def test_a_file_that_cannot_be_removed_is_skipped_reported_and_the_rest_is_cleaned(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    stuck = aged(logs / "a-stuck.log", 20)
    aged(logs / "b-fine.log", 20)
    aged(logs / "archive" / "old.log.gz", 60)
    with immovable(stuck):
        result = clean(tmp_path, [{"folder": str(logs), "archive_retention_days": 30}])
        assert stuck.exists()
    assert result.status == StepStatus.WARNING
    assert result.details["rules"][0]["skipped"] == [{"path": str(stuck), "reason": "Operation not permitted"}]
    assert names(logs) == ["a-stuck.log", "archive/b-fine.log.gz"], "no half archive of the stuck file is left"
    assert "已跳过（请手工处理）" in result.markdown and "跳过 1 个" in result.summary


def test_rules_may_name_a_site_profile_folder(tmp_path: Path) -> None:
    aged(tmp_path / "home" / "log_dir" / "x.log", 8)
    result = clean(tmp_path, [{"named_path": "log_dir", "action": "delete"}])
    assert result.details["rules"][0]["deleted"] == 1


def test_old_event_log_partitions_are_dropped_per_the_retention_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = f"chdb://{tmp_path / 'ch'}"
    now = datetime.now(UTC)
    with ClickHouseLogStore(dsn=SecretStr(dsn)) as store:
        log = ClickHouseEventLog(store)
        assert log.write([LogEvent(execution_id="e", event_time=now - timedelta(days=d), message=f"{d} days")
                          for d in (45, 40, 10, 0)]) == 4
    monkeypatch.setenv("FT_UPGRADE_CLICKHOUSE_DSN", dsn)
    result = clean(tmp_path, [], clean_event_log=True, event_log_retention_days=30)
    assert result.details["event_log_partitions_dropped"] == sorted(
        (now - timedelta(days=d)).strftime("%Y%m%d") for d in (45, 40))
    assert "已删除 2 个早于 30 天的日分区" in result.markdown
    with ClickHouseLogStore(dsn=SecretStr(dsn)) as store:
        assert sorted(e.message for e in ClickHouseEventLog(store).events("e")) == ["0 days", "10 days"]


@pytest.mark.parametrize(("rule", "message"), [
    ({"folder": "logs"}, "folder must be an absolute path below the root"),
    ({"folder": "/"}, "folder must be an absolute path below the root"),
    ({"folder": "/var/log/ft", "named_path": "log_dir"}, "give exactly one of 'folder' or 'named_path'"),
    ({"folder": "/var/log/ft", "patterns": ["../*.log"]}, "must be a non-empty file name glob"),
    ({"folder": "/var/log/ft", "after_days": -1}, "greater than or equal to 0"),
])
def test_bad_rules_are_refused_at_plan_time(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LogCleanupParams.model_validate({"rules": [rule]})
    with pytest.raises(ValidationError, match="at least one rule or clean_event_log"):
        LogCleanupParams.model_validate({"rules": [], "clean_event_log": False})


def test_planning_is_pure_and_the_floor_applies_to_archives_too() -> None:
    rule = Rule(folder=Path("/l"), patterns=("*.log",), action="archive", after_days=0,
                archive_folder=Path("/l/archive"), archive_retention_days=0)
    now = 100 * DAY
    logs = [LogFile(Path("/l/a.log"), now - 6 * DAY, 1), LogFile(Path("/l/b.log"), now - 8 * DAY, 1)]
    archives = [LogFile(Path("/l/archive/a.log.gz"), now - 6.5 * DAY, 1),
                LogFile(Path("/l/archive/b.log.gz"), now - 7.5 * DAY, 1)]
    assert [(a.kind, a.file.path.name) for a in plan_rule(rule, logs, archives, now)] == [
        ("archive", "b.log"), ("delete_archive", "b.log.gz")]
    assert floor_days(0, core=True) == 7 and floor_days(0, core=False) == 0 and floor_days(30, core=True) == 30


def test_a_missing_folder_is_noted_not_failed(tmp_path: Path) -> None:
    result = clean(tmp_path, [{"folder": str(tmp_path / "gone")}])
    assert result.status == StepStatus.SUCCESS
    assert result.details["notes"] == [f"{tmp_path / 'gone'}: no such folder, nothing to clean"]
