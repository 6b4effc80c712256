"""Heavy work in the site's off-peak window: the windows (pure), which steps are heavy, and the off_peak
precondition refused with the next window named, or waived with a reason."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from tasks.core.cutpoints import Cutpoint
from tasks.core.off_peak import OffPeak, Window, outside_window
from tasks.core.statuses import CutpointState
from tasks.execution.admission import Request, ServiceSeen, SiteView, admit
from tasks.store.site_state import CutpointRecord

# 14:30 in Shanghai (UTC+8)
NOW = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)
NIGHT = OffPeak.parse(["22:00-06:00"], "Asia/Shanghai")


def test_windows_parse_and_cross_midnight() -> None:
    assert (Window.parse("22:00-06:00"), Window.parse("00:00-24:00")) == (Window(1320, 360), Window(0, 1440))
    night = Window.parse("22:00-06:00")
    assert [night.contains(m) for m in (1319, 1320, 0, 359, 360)] == [False, True, True, True, False]
    assert str(night) == "22:00-06:00"
    for bad, says in (("22-06", "HH:MM-HH:MM"), ("25:00-01:00", "HH:MM-HH:MM"), ("06:00-06:00", "empty")):
        with pytest.raises(ValueError, match=says):
            Window.parse(bad)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        OffPeak.parse(["22:00-06:00"], "Mars/Base")


def test_inside_and_the_next_opening_in_the_sites_time() -> None:
    assert not NIGHT.contains(NOW)
    assert NIGHT.contains(datetime(2026, 12, 1, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    opening = NIGHT.next_opening(NOW)
    assert (opening.isoformat(), opening.astimezone(UTC).hour) == ("2026-12-01T22:00:00+08:00", 14)
    after_midnight = NIGHT.next_opening(datetime(2026, 12, 1, 17, 0, tzinfo=UTC))  # 01:00 the next day
    assert after_midnight.isoformat() == "2026-12-02T22:00:00+08:00"
    two = OffPeak.parse(["12:00-13:00", "22:00-06:00"], "Asia/Shanghai")
    assert two.next_opening(datetime(2026, 12, 1, 1, 0, tzinfo=UTC)).isoformat() == "2026-12-01T12:00:00+08:00"


def test_outside_window_names_the_heavy_steps_and_the_next_window() -> None:
    missing = outside_window(NIGHT, ["idx (IndexOptimizationStep)"], NOW, "CN")
    assert missing == ("heavy work (idx (IndexOptimizationStep)) runs only in site CN's off-peak window "
                       "22:00-06:00 (Asia/Shanghai); it is 14:30 there now; the next window opens 2026-12-01 22:00 "
                       "Asia/Shanghai (14:00 UTC): trigger it then")
    assert outside_window(NIGHT, [], NOW, "CN") == ""  # nothing heavy planned
    assert outside_window(None, ["idx"], NOW, "CN") == ""  # the site declares no window
    assert outside_window(NIGHT, ["idx"], datetime(2026, 12, 1, 15, 0, tzinfo=UTC), "CN") == ""


def test_heavy_steps_are_index_optimization_and_database_backups_also_inside_composites() -> None:
    from tasks.backup.step import BackupStep
    from tasks.composite.post_process import StartupPostProcessStep
    from tasks.composite.pre_upgrade import PreUpgradeProcessStep
    from tasks.health.step import ServiceHealthCheckStep
    from tasks.indexes.step import IndexOptimizationStep

    tables = {"database": "ft_db", "tables": [{"table": "t"}]}
    assert IndexOptimizationStep.needs_off_peak(tables)
    assert BackupStep.needs_off_peak({"databases": [{"database": "ft_db"}]})
    assert not BackupStep.needs_off_peak({"config_files": ["a.properties"]})  # config files only: light
    assert not ServiceHealthCheckStep.needs_off_peak({"databases": ["ft_db"]})
    assert StartupPostProcessStep.needs_off_peak({"indexes": tables, "health": None})
    assert not StartupPostProcessStep.needs_off_peak({"health": {"databases": ["ft_db"]}})
    assert PreUpgradeProcessStep.needs_off_peak({"backup": {"databases": [{"database": "ft_db"}]}})
    assert not PreUpgradeProcessStep.needs_off_peak({"backup": {"config_files": ["a"]}, "config_files": None})


def _request(**terms: object) -> Request:
    return Request(cutpoint=Cutpoint.STARTUP_POST_PROCESS, source_version="3.17.0", target_version="3.17.5",
                   site_id="CN", by="ops", **terms)  # type: ignore[arg-type]


def _view() -> SiteView:
    done = CutpointRecord("startup_pre_process", CutpointState.COMPLETED, "EXEC_1", NOW, NOW)
    up = ServiceSeen("ft-manager", "http://10.0.0.1:8080/health", "running", "HTTP 200", healthy=True)
    return SiteView(site=None, cutpoints={"startup_pre_process": done}, services=(up,),
                    outside_window=outside_window(NIGHT, ["idx (IndexOptimizationStep)"], NOW, "CN"))


def test_outside_the_window_the_cutpoint_is_refused_naming_the_next_window_or_runs_with_a_waiver() -> None:
    refused = admit(_request(), _view(), now=NOW.replace(tzinfo=None), check_max_age=NOW - NOW)
    assert refused.action == "refuse"
    assert refused.message == (
        "precondition off_peak: heavy work (idx (IndexOptimizationStep)) runs only in site CN's off-peak window "
        "22:00-06:00 (Asia/Shanghai); it is 14:30 there now; the next window opens 2026-12-01 22:00 Asia/Shanghai "
        "(14:00 UTC): trigger it then; or waive it: --waive off_peak --reason TEXT")
    waived = admit(_request(waive=("off_peak",), reason="customer approved a daytime window"), _view(),
                   now=NOW.replace(tzinfo=None), check_max_age=NOW - NOW)
    assert waived.action == "new"
    [waiver] = waived.waivers
    assert (waiver.precondition, waiver.by, waiver.reason) == ("off_peak", "ops", "customer approved a daytime window")
    assert "next window opens 2026-12-01 22:00" in waiver.missing
    inside = dataclasses.replace(_view(), outside_window="")
    assert admit(_request(), inside, now=NOW.replace(tzinfo=None), check_max_age=NOW - NOW).action == "new"


def test_a_site_file_gives_its_windows_and_zone_and_names_its_mail_block() -> None:
    from blocks.apply import SiteSpec
    from tasks.core.errors import ConfigError

    mail = {"type": "email", "host": "smtp.example.cn", "from_addr": "ft@example.cn", "to": ["ops@example.cn"]}
    spec = SiteSpec.from_data({"site_id": "CN", "off_peak": ["22:00-06:00"], "timezone": "Asia/Shanghai",
                               "notifications": {"cn-mail": mail}}, source="cn.json")
    assert (spec.off_peak, spec.timezone, spec.mail_block()) == (["22:00-06:00"], "Asia/Shanghai", "cn-mail")
    named = SiteSpec.from_data({"site_id": "CN", "smtp_block": "ops-mail", "notifications": {"cn-mail": mail}},
                               source="cn.json")
    assert named.mail_block() == "ops-mail"
    for data, says in (({"off_peak": ["25:00-01:00"]}, "off-peak window '25:00-01:00'"),
                       ({"timezone": "Beijing"}, "unknown time zone 'Beijing'")):
        with pytest.raises(ConfigError, match=says) as refused:
            SiteSpec.from_data({"site_id": "CN", **data}, source="cn.json")
        assert "cn.json" in str(refused.value)
