"""Middleware version checks against the real MariaDB, Redis, ClickHouse (chdb) and ZooKeeper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tasks.checks.outcome import CheckStatus
from tests.tasks.checks.conftest import ZooKeeperServer, free_port
from tests.tasks.checks.support import run_check

UNREACHABLE_DB = "mysql+pymysql://root:s3cretpw@127.0.0.1:1/nothing"


def version_rule(component: str, target: str | None, **limits: Any) -> dict[str, Any]:
    rule = {"id": f"mw_{component}", "title": "中间件版本检查", "type": "middleware_version", "component": component,
            **limits}
    return {**rule, "target": target} if target else rule


LEVELS = [
    ({"min_version": "5.7.0"}, "fail", CheckStatus.PASS),
    ({"min_version": "99.0"}, "warn", CheckStatus.WARN),
    ({"min_version": "99.0"}, "fail", CheckStatus.FAIL),
]


@pytest.mark.parametrize(("limits", "severity", "expected"), LEVELS)
def test_mariadb_version_passes_warns_or_fails_by_its_rule(tmp_path: Path, mariadb_database: str,
                                                           limits: dict, severity: str, expected: CheckStatus) -> None:
    o = run_check(tmp_path, {**version_rule("mysql", "ft_db", **limits), "severity": severity},
                  databases={"ft_db": mariadb_database})
    assert o.status == expected
    assert o.facts["actual_raw"][0].startswith(o.facts["actual"])
    if expected == CheckStatus.PASS:
        assert o.result_line == f"通过（MySQL版本{o.facts['actual']}满足要求（≥ 5.7.0））"
        assert o.suggestion == "无"
    else:
        assert o.result == f"MySQL版本{o.facts['actual']}不满足最低要求99.0"
        assert o.suggestion == "升级MySQL至99.0或更高版本"


def test_a_maximum_and_the_mariadb_flavour_are_checked(tmp_path: Path, mariadb_database: str) -> None:
    too_new = run_check(tmp_path, version_rule("mariadb", "ft_db", max_version="10.6"),
                        databases={"ft_db": mariadb_database})
    assert too_new.status == CheckStatus.FAIL
    assert "高于最高支持版本10.6" in too_new.result
    assert too_new.suggestion == "将MariaDB调整至10.6或更低版本"
    ok = run_check(tmp_path, version_rule("mariadb", "ft_db", min_version="10.3", max_version="10.11"),
                   databases={"ft_db": mariadb_database})
    assert ok.status == CheckStatus.PASS


def test_an_unreachable_database_fails_after_retries_naming_it_without_its_password(tmp_path: Path) -> None:
    o = run_check(tmp_path, {**version_rule("mysql", "broken_db", min_version="5.7"), "severity": "warn"},
                  databases={"broken_db": UNREACHABLE_DB})
    assert o.status == CheckStatus.FAIL, "an unreachable middleware is never a pass nor a mere warning"
    assert "MySQL database 'broken_db' (mysql+pymysql://root:***@127.0.0.1:1/nothing) unreachable after 4 " \
           "attempts" in o.result
    assert "s3cretpw" not in str(o.to_json())


@pytest.mark.parametrize(("limits", "severity", "expected"), [
    ({"min_version": "6.0"}, "fail", CheckStatus.PASS),
    ({"max_version": "6.2"}, "warn", CheckStatus.WARN),
    ({"min_version": "99"}, "fail", CheckStatus.FAIL),
])
def test_redis_version_from_info_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limits: dict,
                                        severity: str, expected: CheckStatus) -> None:
    monkeypatch.setenv("FT_UPGRADE_REDIS_URL", "redis://127.0.0.1:6379/0")
    o = run_check(tmp_path, {**version_rule("redis", None, **limits), "severity": severity})
    assert o.status == expected, o.result
    assert o.target == "redis" and o.facts["address"] == "Redis 127.0.0.1:6379"


def test_an_unreachable_redis_fails_naming_its_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FT_UPGRADE_REDIS_URL", "redis://127.0.0.1:1/0")
    o = run_check(tmp_path, version_rule("redis", None, min_version="6.0"))
    assert o.status == CheckStatus.FAIL
    assert o.result.startswith("检查出错：Redis 127.0.0.1:1 unreachable after 4 attempts")


@pytest.mark.parametrize(("limits", "severity", "expected"), [
    ({"min_version": "3.5.0"}, "fail", CheckStatus.PASS),
    ({"min_version": "3.9"}, "warn", CheckStatus.WARN),
    ({"min_version": "3.9"}, "fail", CheckStatus.FAIL),
])
def test_zookeeper_version_from_srvr(tmp_path: Path, zookeeper: ZooKeeperServer, limits: dict, severity: str,
                                     expected: CheckStatus) -> None:
    o = run_check(tmp_path, {**version_rule("zookeeper", "zookeeper", **limits), "severity": severity},
                  environment={"zookeeper": zookeeper.address})
    assert o.status == expected, o.result
    assert o.facts["actual"] == "3.8.0"
    if expected != CheckStatus.PASS:
        assert o.result == "ZooKeeper版本3.8.0不满足最低要求3.9"


def test_zookeeper_address_may_be_written_in_the_rule(tmp_path: Path, zookeeper: ZooKeeperServer) -> None:
    o = run_check(tmp_path, version_rule("zookeeper", f"zk://{zookeeper.address}", min_version="3.4"))
    assert o.status == CheckStatus.PASS


def test_a_closed_zookeeper_port_fails_naming_the_server(tmp_path: Path) -> None:
    port = free_port()
    o = run_check(tmp_path, version_rule("zookeeper", f"127.0.0.1:{port}", min_version="3.4"))
    assert o.status == CheckStatus.FAIL
    assert f"ZooKeeper 127.0.0.1:{port} unreachable after 4 attempts" in o.result


def test_a_zookeeper_without_an_address_is_a_clear_error(tmp_path: Path) -> None:
    o = run_check(tmp_path, version_rule("zookeeper", "zookeeper", min_version="3.4"))
    assert o.status == CheckStatus.FAIL
    assert "no address for 'zookeeper'" in o.result and "--env zookeeper=HOST:PORT" in o.result


@pytest.mark.parametrize(("limits", "severity", "expected"), [
    ({"min_version": "23.8"}, "fail", CheckStatus.PASS),
    ({"min_version": "99.1"}, "warn", CheckStatus.WARN),
    ({"min_version": "99.1"}, "fail", CheckStatus.FAIL),
])
def test_clickhouse_version_on_chdb(tmp_path: Path, limits: dict, severity: str, expected: CheckStatus) -> None:
    o = run_check(tmp_path, {**version_rule("clickhouse", "ft_ch", **limits), "severity": severity},
                  databases={"ft_ch": f"chdb://{tmp_path / 'ch'}"})
    assert o.status == expected, o.result
    assert o.facts["actual"].count(".") >= 2


def test_a_four_letter_word_outside_the_whitelist_says_how_to_allow_it(zookeeper: ZooKeeperServer) -> None:
    from tasks.checks.targets import four_letter_word
    from tasks.core.errors import CheckError

    with pytest.raises(CheckError, match="refuses 'stat': add it to 4lw.commands.whitelist"):
        four_letter_word(zookeeper.host, zookeeper.port, "stat")
