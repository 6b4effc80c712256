"""Failure and completion notifications reach a local webhook receiver with what an operator needs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.helpers import smtp_receiver, write_configs

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A local receiver that keeps (path, JSON body) and answers as DingTalk's robot API does."""
    received: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's API
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()


def test_failure_and_then_completion_are_posted_to_the_configured_webhook(
        isolated_env: Path, mariadb_database: str, receiver: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    base, posted = receiver
    url = f"{base}/hooks/upgrade"
    configs = write_configs(isolated_env / "configs", {"pre_business_check": [
        {"id": "ping", "class_name": "ServiceHealthCheckStep", "databases": ["ft_db"]}]}, notifications={
        "on_success": ["ops@example.com"], "on_failure": ["ops@example.com", "dev@example.com"], "webhook_url": url})
    args = ["run", "pre_business_check", "--from", "3.17.0", "--to", "3.17.5", "--site", "US", "--json",
            "--configs", str(configs)]
    failed = CliRunner().invoke(app, [*args, "--db", "ft_db=mysql+pymysql://root:pw@127.0.0.1:1/x"])
    assert failed.exit_code == 1
    ok = CliRunner().invoke(app, [*args, "--db", f"ft_db={mariadb_database}"])
    assert ok.exit_code == 0, ok.output
    received = [body for _, body in posted]
    assert [m["event"] for m in received] == ["ft-upgrade.failed", "ft-upgrade.succeeded"]
    failure = received[0]
    assert (failure["site_id"], failure["cutpoint"], failure["source_version"], failure["target_version"]) == (
        "US", "pre_business_check", "3.17.0", "3.17.5")
    assert failure["failed_step"] == "ping" and failure["failure"] == "0/1 正常：异常 数据库 ft_db"
    assert any(f"ft-upgrade resume {failure['execution_id']}" in line for line in failure["resume"])
    assert failure["recipients"] == ["ops@example.com", "dev@example.com"]
    assert "pw@" not in json.dumps(received)
    assert received[1]["recipients"] == ["ops@example.com"] and received[1]["resume"] == []
    report = json.loads([line for line in ok.output.splitlines() if line.startswith("{")][-1])
    assert report["notification"]["delivered"] is True


def test_a_failed_run_tells_the_sites_notification_blocks_where_and_how_to_go_on_in_chinese(
        isolated_env: Path, mariadb_database: str, receiver: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    from blocks.notifications import DingTalkWebhook
    from blocks.site_profile import SiteProfile

    base, received = receiver
    DingTalkWebhook(token="0123abcdnt", endpoint=f"{base}/robot/send").save("nt-dingtalk", overwrite=True)
    SiteProfile(site_id="NT", notify_blocks=["nt-dingtalk"]).save(SiteProfile.block_name("NT"), overwrite=True)
    (isolated_env / "sql").mkdir()
    script = "CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\n"
    (isolated_env / "sql" / "f.sql").write_text(script, encoding="utf-8")
    (isolated_env / "configs").mkdir()
    (isolated_env / "configs" / "317500.json").write_text(json.dumps({"version": "317500", "upgrade_steps": {
        "startup_pre_process": [{"id": "sql_001", "class_name": "StartupPreProcessStep", "sql_scripts": ["f.sql"]}]}}),
        encoding="utf-8")
    result = CliRunner().invoke(app, [
        "run", "startup_pre_process", "--from", "3.17.0", "--to", "3.17.5", "--site", "NT", "--json",
        "--configs", str(isolated_env / "configs"), "--sql-root", str(isolated_env / "sql"),
        "--db", f"ft_db={mariadb_database}", "--waive", "pre_upgrade_process", "--reason", "test"])
    assert result.exit_code == 1, result.output
    [(path, message)] = received
    assert path.startswith("/robot/send?access_token=0123abcdnt") and message["msgtype"] == "markdown"
    assert message["markdown"]["title"] == "【FT 升级】站点 NT startup_pre_process 3.17.0→3.17.5：失败"
    text = message["markdown"]["text"]
    assert "`f.sql:3`" in text and "Duplicate entry" in text and "点击 **Retry**" in text, text
    assert "ft-upgrade resume EXEC" in text, text


def test_each_notification_block_type_renders_what_its_receiver_expects(
        receiver: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    """DingTalk (signed markdown), WeCom, Feishu to a local receiver; e-mail to a local SMTP server."""
    from blocks.notifications import DingTalkWebhook, FeishuWebhook, SmtpEmail, WeComWebhook

    base, received = receiver
    blocks = [DingTalkWebhook(token="0123abcd", secret="SEC0123abcd", endpoint=f"{base}/robot/send"),
              WeComWebhook(key="k0123", endpoint=f"{base}/cgi-bin/webhook/send"),
              FeishuWebhook(token="t0123", endpoint=f"{base}/open-apis/bot/v2/hook/")]
    for block in blocks:
        with block.raise_on_failure():
            block.notify("**失败** `a.sql:3`", "【FT 升级】站点 CN：失败")
    (ding_path, ding), (wecom_path, wecom), (feishu_path, feishu) = received
    assert ding_path.startswith("/robot/send?access_token=0123abcd&timestamp=") and "&sign=" in ding_path
    title = "【FT 升级】站点 CN：失败"
    assert ding == {"msgtype": "markdown", "at": {"atMobiles": [], "isAtAll": False},
                    "markdown": {"title": title, "text": f"# {title}\n**失败** `a.sql:3`"}}
    assert wecom_path == "/cgi-bin/webhook/send?key=k0123" and "`a.sql:3`" in json.dumps(wecom, ensure_ascii=False)
    assert feishu_path == "/open-apis/bot/v2/hook/t0123/" and feishu["msg_type"] == "text"

    with smtp_receiver() as (port, mails):
        mail = SmtpEmail(host="127.0.0.1", port=port, security="none", from_addr="ft-upgrade@example.com",
                         to=["ops@example.com"])
        with mail.raise_on_failure():
            mail.notify("正文", "【FT 升级】站点 CN：失败")
    [envelope] = mails
    assert (envelope.mail_from, envelope.rcpt_tos) == ("ft-upgrade@example.com", ["ops@example.com"])
    assert b"Subject: =?utf-8?" in envelope.original_content
