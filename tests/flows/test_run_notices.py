"""Every failure of a cutpoint run is told: before its plan exists (a broken config), a refused trigger, an
unknown site (the worker's fallback blocks), and the configs' recipients mailed through the site's SMTP block.
Local receivers (a DingTalk-like webhook, aiosmtpd) and a real Prefect API (the blocks), through the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.deployments.test_alerts import Receiver, receiving
from tests.helpers import smtp_receiver, write_configs

pytestmark = pytest.mark.usefixtures("prefect_api")
PING = {"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}


@pytest.fixture
def webhook() -> Iterator[str]:
    with receiving() as url:
        yield url


def site(site_id: str, webhook: str, **profile: Any) -> None:
    """A site whose notification block posts to the local receiver."""
    from blocks.notifications import DingTalkWebhook
    from blocks.site_profile import SiteProfile

    name = f"{site_id.lower()}-ding"
    DingTalkWebhook(token=f"tok{site_id.lower()}0", endpoint=f"{webhook}/robot/send").save(name, overwrite=True)
    SiteProfile(site_id=site_id, notify_blocks=[name], **profile).save(SiteProfile.block_name(site_id),
                                                                       overwrite=True)


def run(site_id: str, configs: Path, *extra: str, cutpoint: str = "pre_business_check") -> int:
    result = CliRunner().invoke(app, ["run", cutpoint, "--from", "3.17.0", "--to", "3.17.5", "--site", site_id,
                                      "--configs", str(configs), *extra])
    return result.exit_code


def texts() -> list[str]:
    return [body["markdown"]["text"] for _, body in Receiver.received]


def test_a_run_that_fails_before_its_plan_exists_tells_the_sites_blocks(isolated_env: Path, webhook: str) -> None:
    site("BC", webhook)
    configs = isolated_env / "configs"
    configs.mkdir()
    (configs / "317500.json").write_text('{"version": "317500",\n  "upgrade_steps": {,}}', encoding="utf-8")
    # the flow itself, as a deployment runs it (the CLI refuses a broken config before any run exists)
    from flows.registry import CUTPOINT_FLOWS
    from tasks.core.cutpoints import Cutpoint

    state = CUTPOINT_FLOWS[Cutpoint.PRE_BUSINESS_CHECK](source_version="3.17.0", target_version="3.17.5",
                                                         site_id="BC", configs_dir=str(configs), return_state=True)
    assert state.is_failed()
    [(path, message)] = Receiver.received
    assert path.startswith("/robot/send?access_token=tokbc0")
    assert message["markdown"]["title"] == "【FT 升级】站点 BC pre_business_check 3.17.0→3.17.5：失败"
    body = message["markdown"]["text"]
    assert "317500.json:2:" in body and "以相同参数再次触发该切点" in body and "执行" not in body.split("错误")[0], body


def test_a_refused_trigger_is_told_as_refused(isolated_env: Path, webhook: str) -> None:
    site("RF", webhook)
    configs = write_configs(isolated_env / "configs", {"startup_pre_process": [PING]})
    assert run("RF", configs, cutpoint="startup_pre_process") == 2
    [(_, message)] = Receiver.received
    title = message["markdown"]["title"]
    assert title == "【FT 升级】站点 RF startup_pre_process 3.17.0→3.17.5：已拒绝（未执行任何操作）", title
    assert "pre_upgrade_process has not completed" in message["markdown"]["text"]


def test_a_site_without_blocks_of_its_own_tells_the_workers_fallback_blocks(
        isolated_env: Path, webhook: str) -> None:
    from blocks.notifications import DingTalkWebhook

    DingTalkWebhook(token="fallback0", endpoint=f"{webhook}/robot/send").save("ops-fallback", overwrite=True)
    configs = write_configs(isolated_env / "configs", {"pre_business_check": [PING]})
    os.environ["FT_UPGRADE_NOTIFY_BLOCKS"] = "ops-fallback"  # undone by isolated_env
    assert run("NOSUCHSITE", configs) == 1  # no profile, no ft_db: the step fails
    [(path, message)] = Receiver.received
    assert path.startswith("/robot/send?access_token=fallback0")
    assert "站点 NOSUCHSITE pre_business_check" in message["markdown"]["title"]
    assert "ft-upgrade resume EXEC" in message["markdown"]["text"]


def test_the_configs_recipients_are_mailed_through_the_sites_smtp_block(isolated_env: Path, webhook: str,
                                                                       mariadb_database: str) -> None:
    from blocks.notifications import SmtpEmail

    configs = write_configs(isolated_env / "configs", {"pre_business_check": [PING]}, notifications={
        "on_success": ["ops@example.com"], "on_failure": ["ops@example.com", "dev@example.com"]})
    with smtp_receiver() as (port, mails):
        SmtpEmail(host="127.0.0.1", port=port, security="none", from_addr="ft-upgrade@example.com",
                  to=["alerts@example.com"]).save("ml-mail", overwrite=True)
        site("ML", webhook, smtp_block="ml-mail")
        assert run("ML", configs, "--db", "ft_db=mysql+pymysql://root:pw9x@127.0.0.1:1/x") == 1
        assert run("ML", configs, "--db", f"ft_db={mariadb_database}") == 0
    # one mail per recipient (apprise's way): on_failure's two, then on_success's one; not the block's own `to`
    assert [(m.mail_from, m.rcpt_tos) for m in mails] == [
        ("ft-upgrade@example.com", ["ops@example.com"]), ("ft-upgrade@example.com", ["dev@example.com"]),
        ("ft-upgrade@example.com", ["ops@example.com"])]
    failure = mails[0]
    mail = message_from_bytes(failure.original_content)
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject == "【FT 升级】站点 ML pre_business_check 3.17.0→3.17.5：失败", subject
    body = mail.get_payload(decode=True) if not mail.is_multipart() else mail.get_payload(0).get_payload(decode=True)
    assert b"ping" in body and b"pw9x" not in failure.original_content
    assert len(texts()) == 2  # the site's own block heard both as well
