"""Version strings of real servers compare correctly against minimums and maximums."""

from __future__ import annotations

import pytest

from tasks.checks.middleware_versions import (
    meets_minimum,
    parse_requirement,
    parse_server_version,
    version_problem,
    within_maximum,
    zookeeper_data_dir_from_conf,
    zookeeper_version_from_srvr,
)


@pytest.mark.parametrize(("raw", "parts"), [
    ("10.11.19-MariaDB-0+deb12u1", (10, 11, 19)),
    ("5.7.44-log", (5, 7, 44)),
    ("7.0.15", (7, 0, 15)),
    ("3.8.0", (3, 8, 0)),
    ("3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC", (3, 8, 0)),
    ("26.9.2.1", (26, 9, 2, 1)),
    ("8.0.36-0ubuntu0.22.04.1", (8, 0, 36)),
])
def test_the_leading_numbers_of_a_vendor_version_string_are_its_version(raw: str, parts: tuple[int, ...]) -> None:
    assert parse_server_version(raw).parts == parts


def test_a_version_string_without_numbers_is_an_error() -> None:
    with pytest.raises(ValueError, match="no version number"):
        parse_server_version("MariaDB")


@pytest.mark.parametrize(("actual", "minimum", "ok"), [
    ("5.6.35", "5.7.0", False),
    ("5.7.44-log", "5.7.0", True),
    ("5.7", "5.7.0", True),
    ("10.11.19-MariaDB-0+deb12u1", "5.7.0", True),
    ("7.0.15", "7.2", False),
    ("3.8.0", "3.8.0", True),
    ("3.10.0", "3.9.9", True),  # numeric, not text, comparison
])
def test_minimums_compare_numerically_with_missing_parts_as_zero(actual: str, minimum: str, ok: bool) -> None:
    assert meets_minimum(parse_server_version(actual).parts, parse_requirement(minimum)) is ok


@pytest.mark.parametrize(("actual", "maximum", "ok"), [
    ("7.2.4", "7.2", True),
    ("7.3.0", "7.2", False),
    ("7.2.4", "7.2.4", True),
    ("7.2.5", "7.2.4", False),
    ("8.0.36", "8", True),
    ("9.0.1", "8", False),
])
def test_a_maximum_is_compared_at_its_own_precision(actual: str, maximum: str, ok: bool) -> None:
    assert within_maximum(parse_server_version(actual).parts, parse_requirement(maximum)) is ok


def test_the_refusal_reads_like_the_seed_report() -> None:
    mysql = parse_server_version("5.6.35")
    assert version_problem(mysql, "MySQL", "5.7.0", None) == "MySQL版本5.6.35不满足最低要求5.7.0"
    assert version_problem(parse_server_version("7.4.1"), "Redis", "6.0", "7.2") == "Redis版本7.4.1高于最高支持版本7.2"
    assert version_problem(parse_server_version("7.0.15"), "Redis", "6.0", "7.2") is None


@pytest.mark.parametrize("bad", ["5.7.x", "", "v5", "5..7", "1.2.3.4.5"])
def test_a_requirement_must_be_dotted_numbers(bad: str) -> None:
    with pytest.raises(ValueError, match="must be dotted numbers"):
        parse_requirement(bad)


def test_zookeeper_answers_are_read_for_version_and_data_dir() -> None:
    srvr = "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nMode: standalone\n"
    assert zookeeper_version_from_srvr(srvr).startswith("3.8.0")
    conf = "clientPort=2181\ndataDir=/var/lib/zookeeper/version-2\ndataLogDir=/var/lib/zookeeper/version-2\n"
    assert zookeeper_data_dir_from_conf(conf) == "/var/lib/zookeeper"
    with pytest.raises(ValueError, match="no 'Zookeeper version:'"):
        zookeeper_version_from_srvr("conf is not executed because it is not in the whitelist.")
