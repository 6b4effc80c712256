"""The seed's main config example, copied verbatim, validates and runs through all five cutpoints.

Every step of the seed's ``317500`` is written without details, so each runs by its convention
(README "Steps written without details") against the sample FT system at 3.17.0: two MariaDB
databases, a site profile naming the three FT services (a local HTTP server, stopped while the
service is down for startup_pre_process), a config folder with a template, logs and a staging folder.
Site JP: one of the seed's overseas sites, so its site-specific step runs too.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prefect.settings import PREFECT_API_URL
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from blocks.site_profile import SiteProfile
from flows.cli import app
from tasks.sql.splitter import split_statements
from tests.conftest import MARIADB_ROOT, PROJECT
from tests.helpers import AnsweringService, answering_service
from tests.support.files import aged

pytestmark = pytest.mark.usefixtures("prefect_api")

SEED = PROJECT / "tests" / "data" / "seed" / "317500.json"
SITE = "JP"
CUTPOINTS = ["pre_business_check", "pre_upgrade_process", "startup_pre_process", "startup_post_process",
             "post_upgrade"]


def test_the_test_copy_is_the_seeds_example_verbatim() -> None:
    beside = [folder / "shared" / "seed" / "ft-auto-upgrade-requirements.md"
              for folder in (PROJECT.parent, PROJECT.parent.parent)]
    seed = next((path for path in beside if path.is_file()), None)
    if seed is None:
        pytest.skip("the requirements are not beside this checkout")
    block = seed.read_text(encoding="utf-8").split("#### 基线版本配置文件示例\n\n```json\n", 1)[1].split("```", 1)[0]
    assert SEED.read_text(encoding="utf-8") == block


@pytest.fixture
def services() -> Iterator[AnsweringService]:
    """The three FT services on one local port: up, down (connection refused), up again."""
    with answering_service() as running:
        yield running


def service_urls(services: AnsweringService) -> dict[str, str]:
    return {name: services.url(f"/{name}/actuator/health") for name in ("ft-manager", "ft-report", "ft-openapi")}


@pytest.fixture
def sample_databases() -> Iterator[dict[str, str]]:
    """ft_db and middle_db of the sample FT system at 3.17.0 (the repository's 3.17.0 scripts)."""
    names = {"ft_db": f"ft_seed_{uuid.uuid4().hex[:8]}", "middle_db": f"ft_seed_mid_{uuid.uuid4().hex[:8]}"}
    urls = {db: f"{MARIADB_ROOT}/{name}?charset=utf8mb4" for db, name in names.items()}
    admin = create_engine(MARIADB_ROOT + "/test")
    with admin.begin() as conn:
        for name in names.values():
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    for script in sorted((PROJECT / "sql" / "baseline" / "317000").glob("*.sql")):
        for statement in split_statements(script.read_text(encoding="utf-8"), source=script.name):
            engine = create_engine(urls[statement.database])
            with engine.begin() as conn:
                conn.exec_driver_sql(statement.text)
            engine.dispose()
    try:
        yield urls
    finally:
        with admin.begin() as conn:
            for name in names.values():
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql))]
    engine.dispose()
    return rows


def test_the_seeds_main_config_validates_and_runs_all_five_cutpoints_by_its_conventions(
        isolated_env: Path, sample_databases: dict[str, str], services: AnsweringService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    configs, sql = isolated_env / "configs", isolated_env / "sql"
    configs.mkdir()
    shutil.copy(SEED, configs / "317500.json")
    shutil.copytree(PROJECT / "sql" / "baseline" / "317500", sql / "baseline" / "317500")
    site = isolated_env / "site"
    (site / "conf").mkdir(parents=True)
    (site / "conf" / "application.properties.tpl").write_text("region=${REGION}\nsite=${SITE_ID}\n", encoding="utf-8")
    (site / "conf" / "logback.xml").write_text("<configuration/>\n", encoding="utf-8")
    aged(site / "logs" / "ft-manager.2024-01-01.log", 20)
    aged(site / "logs" / "ft-manager.log", 1)
    (site / "staging").mkdir()
    (site / "staging" / "ft-3.17.5.unpacked").write_bytes(b"x" * 1000)
    SiteProfile(site_id=SITE, services=service_urls(services), environment={"REGION": "ap-northeast"},
                paths={"config_dir": str(site / "conf"), "log_dir": str(site / "logs"),
                       "staging_dir": str(site / "staging")}).save(SiteProfile.block_name(SITE), overwrite=True)
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    monkeypatch.delenv("FT_UPGRADE_SERVICES")  # the profile lists the site's services: stopped, then started
    monkeypatch.setenv("FT_UPGRADE_REDIS_URL", os.environ.get("FT_TEST_REDIS", "redis://127.0.0.1:6379/9"))
    where = ["--configs", str(configs), "--sql-root", str(sql), "--db", f"ft_db={sample_databases['ft_db']}",
             "--db", f"middle_db={sample_databases['middle_db']}"]
    try:
        validated = CliRunner().invoke(app, ["validate", *where[:4]])
        assert validated.exit_code == 0, validated.output
        reports = {}
        for cutpoint in CUTPOINTS:
            if cutpoint == "startup_pre_process":
                services.stop()  # 停服: the services are down while the schema changes
            if cutpoint == "startup_post_process":
                services.start()
            result = CliRunner().invoke(app, ["run", cutpoint, "--from", "3.17.0", "--to", "3.17.5", "--site", SITE,
                                              "--json", *where])
            report = json.JSONDecoder().raw_decode(result.output[result.output.index('{"'):])[0]
            assert result.exit_code == 0 and report["status"] == "SUCCESS", (cutpoint, result.output)
            reports[cutpoint] = {s["step_id"]: s for s in report["step_results"]}
    finally:
        SiteProfile.delete(SiteProfile.block_name(SITE))

    check = reports["pre_business_check"]
    assert list(check) == ["dependencies_check", "pre_business_check_001"]
    assert check["dependencies_check"]["status"] == "SUCCESS"
    assert "共 2 项检查：失败 0，警告 0，通过 2" in check["dependencies_check"]["summary"]  # source range, components
    assert "共 3 项检查：失败 0，警告 0，通过 3" in check["pre_business_check_001"]["summary"]

    prepared = reports["pre_upgrade_process"]["pre_upgrade_process_001"]["summary"]
    assert "非阻塞备份：备份" in prepared and "配置文件预处理：已修改 1 个配置文件" in prepared
    assert "服务状态检查：5/5 正常" in prepared
    assert (site / "conf" / "application.properties").read_text(encoding="utf-8") == "region=ap-northeast\nsite=JP\n"
    manifests = list((isolated_env / "home" / "backup_dir").rglob("manifest.json"))
    assert len(manifests) == 1
    backed_up = json.loads(manifests[0].read_text(encoding="utf-8"))
    assert sorted(Path(f["source"]).name for f in backed_up["files"]) == ["application.properties.tpl", "logback.xml"]

    assert list(reports["startup_pre_process"]) == ["dependencies_recheck", "startup_pre_process_001"]
    orders = _rows(sample_databases["ft_db"], "SELECT id, customer, amount, status, status_code FROM orders "
                                              "ORDER BY id")
    assert orders == [(1, "张三", Decimal("120.50"), "NEW", 1), (2, "李四", Decimal("88.00"), "PAID", 2),
                      (3, "Acme; Inc.", Decimal("42.00"), "PAID", 2), (4, "O'Brien", Decimal("10.00"), "NEW", 1)]
    assert _rows(sample_databases["middle_db"], "SELECT order_id, status_code FROM order_sync ORDER BY order_id") \
        == [(1, 0), (2, 0), (3, 0), (4, 0)]

    assert reports["startup_post_process"]["startup_post_process_001"]["summary"] == "服务健康检查：4/4 正常"

    assert list(reports["post_upgrade"]) == ["post_upgrade_process_001", "overseas_specific_process_001"]
    assert _rows(sample_databases["ft_db"], "SELECT name, value FROM site_settings ORDER BY name") == [
        ("display_zone", "site"), ("time_zone", "UTC")]
    assert sorted(p.name for p in (site / "logs").rglob("*") if p.is_file()) == [
        "ft-manager.2024-01-01.log.gz", "ft-manager.log"]
    archived = next((site / "logs").rglob("*.gz"))
    assert gzip.decompress(archived.read_bytes()).startswith(b"2024-01-01 INFO")
    assert list((site / "staging").iterdir()) == []

    info = CliRunner().invoke(app, ["info", "--site", SITE, "--configs", str(configs)])
    assert f"site {SITE}: version 3.17.5 (upgrade), schema 3.17.5" in " ".join(info.output.split())


def test_the_seeds_second_format_validates_with_a_warning_saying_what_to_change(tmp_path: Path) -> None:
    """Chapter 2 §15.2: dotted version, pre_upgrade, step-level rollback_supported and site_specific, resources."""
    (tmp_path / "configs").mkdir()
    shutil.copy(PROJECT / "tests" / "data" / "seed" / "chapter2_15.2_config.json", tmp_path / "configs" / "317500.json")
    result = CliRunner().invoke(app, ["validate", "--configs", str(tmp_path / "configs"), "--sql-root",
                                      str(tmp_path)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert ("317500.json:22:5: cutpoint key 'pre_upgrade' is deprecated; read as 'pre_upgrade_process'; its business "
            "check 'pre_business_check' then runs in pre_upgrade_process: to run it as cutpoint 1, move it under "
            "'pre_business_check'") in output
    plan = CliRunner().invoke(app, ["plan", "--from", "3.17.0", "--to", "3.17.5", "--site", "CN", "--json",
                                    "--configs", str(tmp_path / "configs"), "--sql-root", str(tmp_path)])
    steps = json.loads(plan.output[plan.output.index("{"):])["steps"]
    assert [(s["cutpoint"], s["step_id"]) for s in steps] == [
        ("pre_business_check", "dependencies_check"), ("pre_upgrade_process", "pre_business_check"),
        ("startup_pre_process", "dependencies_recheck")]
    assert steps[0]["params"]["resources"] == {"memory": "2GB", "disk": "10GB", "cpu": "2cores"}


def test_the_seeds_elided_example_keeps_its_line_and_column(tmp_path: Path) -> None:
    """Chapter 2 §3.1 writes ``"pre_upgrade": [...]``: not JSON, refused where the elision is."""
    (tmp_path / "configs").mkdir()
    shutil.copy(PROJECT / "tests" / "data" / "seed" / "chapter2_3.1_config.json.txt",
                tmp_path / "configs" / "317500.json")
    result = CliRunner().invoke(app, ["validate", "--configs", str(tmp_path / "configs")])
    assert result.exit_code == 2
    assert ("317500.json:16:21: Expecting value: '...' (an example's elision) is not JSON; write the steps out"
            in " ".join(result.output.split()))


def test_every_class_name_the_seeds_examples_use_resolves() -> None:
    import re

    from tasks.steps.registry import resolve_step_class

    names = {name for path in (PROJECT / "tests" / "data" / "seed").iterdir()
             for name in re.findall(r'"class_name": "([^"]+)"', path.read_text(encoding="utf-8"))}
    assert len(names) == 9
    assert {name: resolve_step_class(name).reason for name in sorted(names)
            if resolve_step_class(name).step_class is None} == {}
