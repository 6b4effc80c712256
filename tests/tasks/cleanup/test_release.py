"""ResourceReleaseStep on real files, folders and the real Redis."""

from __future__ import annotations

import glob
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from tasks.cleanup.release import Entry, beyond_retention, expand, path_problem, redis_escape, redis_pattern_problem
from tasks.cleanup.release_step import ResourceReleaseParams, ResourceReleaseStep
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tests.helpers import step_context
from tests.support.files import aged, immovable, set_age

REDIS_URL = "redis://127.0.0.1:6379/0"


def release(tmp_path: Path, site_id: str = "CN", **params: Any) -> StepResult:
    with step_context(tmp_path, cutpoint="post_upgrade", site_id=site_id, execution_id="EXEC42",
                      source_version="3.17.0", target_version="3.17.5") as context:
        return ResourceReleaseStep(ResourceReleaseParams.model_validate(params), context).run()


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Redis key prefix of this test only (the server is shared); its keys are removed after."""
    monkeypatch.setenv("FT_UPGRADE_REDIS_URL", REDIS_URL)
    name = f"ft-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{name}:*"):
        client.delete(key)
    client.close()


def test_temporary_paths_of_this_upgrade_are_removed_and_counted(tmp_path: Path) -> None:
    work = tmp_path / "work"
    aged(work / "ft-upgrade-EXEC42-unpack" / "lib" / "a.jar", 0, b"x" * 1000)
    aged(work / "ft-upgrade-EXEC42-unpack" / "b.txt", 0, b"y" * 24)
    aged(work / "ft-upgrade-EXEC42.lock", 0, b"1")
    other = aged(work / "ft-upgrade-EXEC7-unpack" / "keep.txt", 0)
    result = release(tmp_path, paths=[f"{work}/ft-upgrade-{{execution_id}}*"])
    assert sorted(p.name for p in work.iterdir()) == ["ft-upgrade-EXEC7-unpack"]
    assert other.exists()
    section = result.details["sections"][0]
    assert section["label"] == f"{work}/ft-upgrade-EXEC42*"
    assert (section["files"], section["dirs"], section["bytes"]) == (3, 2, 1025)
    assert result.summary == "释放 3 个文件，1,025 字节，0 个 Redis 键"
    assert list(result.details["disk_free_bytes"]) == [str(work)]


def test_staging_folders_are_emptied_but_kept(tmp_path: Path) -> None:
    staging = tmp_path / "home" / "staging_dir"
    aged(staging / "pkg" / "ft-manager.tar.gz", 0, b"z" * 10)
    aged(staging / "notes", 0, b"n")
    result = release(tmp_path, named_paths=["staging_dir"])
    assert staging.is_dir() and list(staging.iterdir()) == []
    assert result.details["files"] == 2


def test_backups_beyond_the_keep_count_are_removed_newest_kept(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    for i, days in enumerate((1, 9, 3, 30, 5)):
        folder = backups / f"ft_db-{i}"
        aged(folder / "dump.sql", days, b"-- dump\n" * 10)
        set_age(folder, days)
    aged(backups / "README.txt", 100)
    result = release(tmp_path, backups=[{"folder": str(backups), "pattern": "ft_db-*", "keep": 2}])
    assert sorted(p.name for p in backups.iterdir()) == ["README.txt", "ft_db-0", "ft_db-2"]
    section = result.details["sections"][0]
    assert section["removed"] == ["ft_db-4", "ft_db-1", "ft_db-3"]
    assert (section["files"], section["dirs"]) == (3, 3)


def test_stale_redis_namespaces_are_unlinked_and_current_ones_stay(tmp_path: Path, prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    pipe = client.pipeline()
    for i in range(1_200):
        pipe.set(f"{prefix}:cache:3.17.0:order:{i}", "x" * 50)
    pipe.hset(f"{prefix}:cache:3.17.0:meta", mapping={"a": "1", "b": "2"})
    pipe.set(f"{prefix}:cache:3.17.5:order:1", "new")
    pipe.execute()
    result = release(tmp_path, redis_patterns=[f"{prefix}:cache:{{source_version}}:*"])
    assert result.details["redis"][0]["pattern"] == f"{prefix}:cache:3.17.0:*"
    assert result.details["redis_keys"] == 1_201
    assert result.details["redis_bytes"] > 1_201 * 50
    assert set(client.scan_iter(match=f"{prefix}:*")) == {f"{prefix}:cache:3.17.5:order:1".encode()}  # SCAN repeats
    client.close()


def test_what_cannot_be_removed_is_skipped_and_reported(tmp_path: Path) -> None:
    work = tmp_path / "work"
    stuck = aged(work / "tmp-area" / "stuck.bin", 0)
    aged(work / "tmp-area" / "fine.bin", 0)
    with immovable(stuck):
        result = release(tmp_path, paths=[f"{work}/tmp-area"])
        assert stuck.exists()
    assert result.status == StepStatus.WARNING
    assert result.details["sections"][0]["skipped"] == [{"path": str(stuck), "reason": "Operation not permitted"}]
    assert result.details["files"] == 1
    assert not (work / "tmp-area" / "fine.bin").exists()


def test_a_pattern_made_unsafe_by_the_runs_values_is_not_used(tmp_path: Path) -> None:
    aged(tmp_path / "x" / "keep.txt", 0)
    result = release(tmp_path, site_id="*", paths=["/tmp/{site_id}/x"])
    assert result.status == StepStatus.WARNING
    assert "not removed: expanded path needs at least 2 fixed levels" in result.details["sections"][0]["skipped"][0][
        "reason"]


@pytest.mark.parametrize(("template", "problem"), [
    ("/tmp/*", "needs at least 2 fixed levels"),
    ("/*", "needs at least 2 fixed levels"),
    ("/tmp", "needs at least 2 fixed levels"),
    ("tmp/ft", "must be an absolute path"),
    ("/opt/ft/../../etc", "must not contain '..'"),
    ("/opt/ft/{release}", "unknown placeholder {release}"),
    ("/opt/ft/{site_id!r}", "takes no format spec or conversion"),
])
def test_unsafe_paths_are_refused(template: str, problem: str) -> None:
    assert problem in (path_problem(template) or "")
    with pytest.raises(ValidationError, match=problem.replace("{", r"\{").replace("}", r"\}")):
        ResourceReleaseParams.model_validate({"paths": [template]})


def test_the_runs_values_match_literally_in_globs_and_redis_patterns() -> None:
    values = {"execution_id": "E1", "site_id": "*", "source_version": "3.17.0", "target_version": "3.17.5"}
    assert expand("ft:cache:{site_id}:*", values, redis_escape) == "ft:cache:\\*:*"
    assert expand("/opt/ft/{site_id}-tmp", values, glob.escape) == "/opt/ft/[*]-tmp"


def test_safe_paths_and_patterns_pass() -> None:
    assert path_problem("/tmp/ft-upgrade-{execution_id}-*") is None
    assert path_problem("/opt/ft/staging") is None
    assert redis_pattern_problem("ft:cache:{source_version}:*") is None


@pytest.mark.parametrize("pattern", ["*", "ft*", "[a]*", "\\*abc"])
def test_redis_patterns_without_a_literal_prefix_are_refused(pattern: str) -> None:
    assert "literal prefix of at least 3 characters" in (redis_pattern_problem(pattern) or "")


def test_an_empty_release_and_a_backup_without_keep_are_refused() -> None:
    with pytest.raises(ValidationError, match="at least one of paths, named_paths, redis_patterns, backups"):
        ResourceReleaseParams.model_validate({})
    with pytest.raises(ValidationError, match="keep"):
        ResourceReleaseParams.model_validate({"backups": [{"folder": "/var/backups/ft"}]})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ResourceReleaseParams.model_validate({"backups": [{"folder": "/var/backups/ft", "keep": 0}]})


def test_retention_keeps_the_newest_by_time_then_name() -> None:
    entries = [Entry(Path(n), t) for n, t in (("a", 3.0), ("b", 1.0), ("c", 3.0), ("d", 2.0))]
    assert [e.path.name for e in beyond_retention(entries, 2)] == ["d", "b"]
    assert beyond_retention(entries, 10) == []
