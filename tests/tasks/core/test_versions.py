"""The version codec: every six-digit code round-trips; ambiguous strings are input errors."""

from __future__ import annotations

import re
from typing import get_args

import pytest

from tasks.core.errors import InputError, VersionError
from tasks.core.parameters import VERSION_PATTERN, Waivable
from tasks.core.versions import Version


def test_every_code_round_trips_through_its_dotted_form() -> None:
    for code in range(100000, 1000000):
        version = Version.from_code(code)
        assert version.code == code
        assert Version.parse(str(version)) == version


@pytest.mark.parametrize(
    ("text", "code"),
    [("3.17.5", 317500), ("3.17.5-P1", 317501), ("3.17.5-P99", 317599), ("3.0.0", 300000), ("9.99.9-P99", 999999),
     ("317501", 317501), (317500, 317500)],
)
def test_known_versions_encode(text: str | int, code: int) -> None:
    assert Version.parse(text).code == code


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("3.17.10", "patch must be 0..9"),
        ("3.17.5-P0", "patch level must be P1..P99"),
        ("3.17.5-P100", "patch level must be P1..P99"),
        ("v3.17", "expected MAJOR.MINOR.PATCH"),
        ("", "empty version"),
        ("3.100.0", "minor must be 0..99"),
        ("10.1.0", "major must be 1..9"),
        ("0.1.0", "major must be 1..9"),
        ("3.17.05", "leading zero"),
        ("3.17.5-P01", "leading zero"),
        ("12345", "six digits"),
        ("3.17.5-p1", "expected MAJOR.MINOR.PATCH"),
    ],
)
def test_versions_that_do_not_encode_uniquely_are_input_errors_naming_the_value(text: str, reason: str) -> None:
    with pytest.raises(VersionError) as info:
        Version.parse(text)
    assert repr(text) in str(info.value)
    assert reason in str(info.value)
    assert isinstance(info.value, InputError)


def test_patches_sort_after_their_baseline_and_before_the_next() -> None:
    assert Version.parse("3.17.5") < Version.parse("3.17.5-P1") < Version.parse("3.17.5-P12") < Version.parse("3.17.6")
    assert Version.parse("3.17.5-P3").baseline == Version.parse("3.17.5")


@pytest.mark.parametrize("text", ["3.17.0", "3.17.5-P1", "3.0.9-P99", "9.99.9", "317501", "100000", "3.17.10",
                                  "3.17.5-P0", "3.17.5-P01", "03.17.5", "3.017.5", "3.100.0", "0.1.0", "31750",
                                  "3175010", "3.17", "3.17.5-p1", "v3.17.5", "", " 3.17.5", "3.17.5-P100"])
def test_the_run_forms_version_pattern_accepts_exactly_what_the_tool_parses(text: str) -> None:
    """Where the UI's Run form and the API check a version, they agree with Version.parse (canonical forms)."""
    try:
        Version.parse(text)
        parsed = text == text.strip()
    except VersionError:
        parsed = False
    assert bool(re.fullmatch(VERSION_PATTERN, text)) == parsed, text
    for code in range(100000, 1000000, 997):
        assert re.fullmatch(VERSION_PATTERN, str(code)) and re.fullmatch(VERSION_PATTERN, str(Version.from_code(code)))


def test_the_waivable_preconditions_are_the_admissions() -> None:
    from tasks.execution.admission import PRECONDITIONS

    assert set(get_args(Waivable)) == {p for names in PRECONDITIONS.values() for p in names}
