"""CacheRebuildStep on the real MariaDB and the real Redis (db 9, a namespace per test)."""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from tasks.cache.rebuild import CacheLayout, read
from tasks.cache.step import CacheRebuildParams, CacheRebuildStep
from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.steps.context import StepContext
from tests.helpers import step_context
from tests.support.builders import run_sql
from tests.support.fixtures import REDIS_URL

USERS = 50_000


@pytest.fixture
def ft_db(mariadb_database: str) -> str:
    run_sql(mariadb_database,
            "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(40), region VARCHAR(10) NULL, "
            "balance DECIMAL(10,2), created DATETIME)",
            f"INSERT INTO users SELECT seq, CONCAT('user', seq), IF(seq % 7 = 0, NULL, 'CN'), seq / 100, "
            f"'2024-01-01 10:00:00' FROM seq_1_to_{USERS}")
    return mariadb_database


@contextmanager
def cache_context(tmp_path: Path, db_url: str) -> Iterator[StepContext]:
    with step_context(tmp_path, databases={"ft_db": db_url}, cutpoint="startup_post_process") as ctx:
        os.environ["FT_UPGRADE_REDIS_URL"] = REDIS_URL  # restored when the context exits
        yield ctx


def rebuild(ctx: StepContext, namespace: str, datasets: list[dict[str, Any]], **params: Any) -> StepResult:
    model = CacheRebuildParams.model_validate({"namespace": namespace, "datasets": datasets, "drain_seconds": 0.2,
                                               **params})
    return CacheRebuildStep(model, ctx).run()


USER_STRINGS = {"name": "users", "database": "ft_db", "query": "SELECT id, name, region, balance, created FROM users",
                "key": "user:{id}"}


def test_a_first_rebuild_writes_a_generation_and_points_readers_at_it(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    datasets = [USER_STRINGS,
                {"name": "names", "database": "ft_db", "key": "name:{id:06d}", "value": "{name}|{tag}",
                 "query": "SELECT id, name, 'a:b%' AS tag FROM users WHERE id <= 100", "ttl_seconds": 3600},
                {"name": "profile", "database": "ft_db", "type": "hash", "fields": ["name", "region"],
                 "query": "SELECT id, name, region FROM users WHERE id <= 100", "key": "profile:{id}"}]
    with cache_context(tmp_path, ft_db) as ctx:
        result = rebuild(ctx, namespace, datasets, full_count=True)
    assert result.status is StepStatus.SUCCESS, result.summary
    assert "SCAN 统计 50,200 个键，无淘汰" in result.markdown
    assert result.details["keys"] == USERS + 200
    assert result.details["previous_generation"] is None
    assert json.loads(read(redis_client, namespace, "user:7") or b"") == {
        "id": 7, "name": "user7", "region": None, "balance": "0.07", "created": "2024-01-01T10:00:00"}
    assert read(redis_client, namespace, "name:000042") == b"user42|a:b%", "':' and '%' are not parameters"
    generation = result.details["generation"]
    prefix = CacheLayout(namespace).prefix(generation)
    assert 3500 < redis_client.ttl(prefix + "name:000042") <= 3600
    assert redis_client.hgetall(prefix + "profile:14") == {b"name": b"user14", b"region": b""}
    assert redis_client.smembers(CacheLayout(namespace).building) == set()
    assert "| users | 50000 | 50000 | 50000 | 0 |" in result.markdown


def test_a_concurrent_reader_never_misses_a_key_while_the_cache_is_rebuilt(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    """The default-suite version (50,000 keys); tests/bench/bench_cache.py proves it for 1,000,000."""
    with cache_context(tmp_path, ft_db) as ctx:
        first = rebuild(ctx, namespace, [USER_STRINGS])
    run_sql(ft_db, "UPDATE users SET name = CONCAT('new', id)")
    stop, problems = threading.Event(), []
    seen: dict[str, int] = {}
    layout = CacheLayout(namespace)

    def reader() -> None:
        """Reads as a service does: the pointer, then the key under it."""
        client = redis.Redis.from_url(REDIS_URL)
        rng = random.Random(7)
        while not stop.is_set():
            key = rng.randint(1, USERS)
            generation = client.get(layout.pointer).decode()
            value = client.get(layout.prefix(generation) + f"user:{key}")
            seen[generation] = seen.get(generation, 0) + 1
            if value is None or json.loads(value)["name"] not in (f"user{key}", f"new{key}"):
                problems.append((key, value))
        client.close()

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    with cache_context(tmp_path, ft_db) as ctx:
        second = rebuild(ctx, namespace, [USER_STRINGS])
    stop.set()
    for thread in threads:
        thread.join()
    assert problems == [], f"{len(problems)} bad reads of {sum(seen.values())}"
    assert seen.get(first.details["generation"], 0) > 0 and seen.get(second.details["generation"], 0) > 0, \
        f"the readers read through the switch: {seen}"
    assert second.details["previous_generation"] == first.details["generation"]
    assert json.loads(read(redis_client, namespace, "user:3") or b"")["name"] == "new3"
    old_prefix = CacheLayout(namespace).prefix(first.details["generation"])
    assert list(redis_client.scan_iter(match=old_prefix + "*", count=10_000)) == [], "old generation dropped"


def test_a_failure_mid_build_removes_the_half_built_generation_and_readers_keep_the_old_one(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    with cache_context(tmp_path, ft_db) as ctx:
        first = rebuild(ctx, namespace, [USER_STRINGS])
        clash = {"name": "clash", "database": "ft_db", "type": "hash", "query": "SELECT id, name FROM users",
                 "key": "user:{id}"}  # HSET on the string keys just written: WRONGTYPE mid-build
        with pytest.raises(StepFailed) as failed:
            rebuild(ctx, namespace, [USER_STRINGS, clash])
    assert "WRONGTYPE" in str(failed.value)
    assert "readers still use " + first.details["generation"] in str(failed.value)
    layout = CacheLayout(namespace)
    assert redis_client.get(layout.pointer).decode() == first.details["generation"]
    keys = {k.decode().split(":")[2] for k in redis_client.scan_iter(match=namespace + ":g*", count=10_000)}
    assert keys == {first.details["generation"]}, "only the old generation is left"
    assert redis_client.smembers(layout.building) == set()
    assert read(redis_client, namespace, "user:1") is not None


def test_a_big_dataset_is_built_by_shard_processes_into_one_generation(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    with cache_context(tmp_path, ft_db) as ctx:
        result = rebuild(ctx, namespace, [USER_STRINGS], workers=3, parallel_min_rows=1000, full_count=True)
    assert result.status is StepStatus.SUCCESS, result.summary
    assert f"dataset users: {USERS:,} rows built by 3 processes in parallel" in result.details["notes"]
    assert f"SCAN 统计 {USERS:,} 个键" in result.markdown
    assert result.details["datasets"][0]["keys"] == USERS
    assert json.loads(read(redis_client, namespace, f"user:{USERS}") or b"")["name"] == f"user{USERS}"


def test_a_failing_shard_stops_the_others_and_the_generation_is_dropped(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    bad = {**USER_STRINGS, "key": "user:{nope}"}  # the shard filter hashes a column the query lacks
    with cache_context(tmp_path, ft_db) as ctx, pytest.raises(StepFailed, match=r"shard \d/2: .*nope"):
        rebuild(ctx, namespace, [bad], workers=2, parallel_min_rows=1)
    assert list(redis_client.scan_iter(match=namespace + ":*")) == []


def test_duplicate_keys_fail_verification_and_nothing_switches(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    regions = {"name": "regions", "database": "ft_db", "query": "SELECT id, region FROM users WHERE id < 100",
               "key": "region:{region}"}
    with cache_context(tmp_path, ft_db) as ctx, pytest.raises(StepFailed, match="key template is not unique"):
        rebuild(ctx, namespace, [regions])
    assert redis_client.get(CacheLayout(namespace).pointer) is None
    assert list(redis_client.scan_iter(match=namespace + ":*")) == []


def test_a_key_template_naming_a_missing_column_fails_clearly(
        tmp_path: Path, ft_db: str, namespace: str) -> None:
    bad = {**USER_STRINGS, "key": "user:{user_id}"}
    with cache_context(tmp_path, ft_db) as ctx, \
            pytest.raises(StepFailed, match="column 'user_id' is not returned by its query"):
        rebuild(ctx, namespace, [bad])


def test_generations_left_by_a_crashed_run_are_removed_by_the_next_rebuild(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    layout = CacheLayout(namespace)
    redis_client.sadd(layout.building, "g317500-crashed")
    redis_client.set(layout.prefix("g317500-crashed") + "user:1", "stale")
    with cache_context(tmp_path, ft_db) as ctx:
        result = rebuild(ctx, namespace, [{**USER_STRINGS, "query": "SELECT id, name FROM users WHERE id <= 10"}])
    assert "已删除遗留的代 `g317500-crashed` 的 1 个键" in result.markdown
    assert redis_client.exists(layout.prefix("g317500-crashed") + "user:1") == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"query": "DELETE FROM users"}, "must be a SELECT"),
    ({"query": "SELECT 1; DROP TABLE users"}, "single statement"),
    ({"key": "user"}, "uses no column"),
    ({"key": "user:{0}"}, "must name a column"),
    ({"key": "user:{id.__class__}"}, "must name a column"),
    ({"fields": ["name"]}, "'fields' applies to type 'hash' only"),
])
def test_bad_dataset_configs_are_refused_at_plan_time(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CacheRebuildParams.model_validate({"namespace": "ft", "datasets": [{**USER_STRINGS, **change}]})


# ---------------------------------------------------------------- in place: the keys the services read

USERS_IN_PLACE = {**USER_STRINGS, "pattern": "user:*"}
PROFILES_IN_PLACE = {"name": "profile", "database": "ft_db", "type": "hash", "fields": ["name", "region"],
                     "query": "SELECT id, name, region FROM users", "key": "profile:{id}", "pattern": "profile:*"}
STALE = range(USERS + 1, USERS + 301)  # users deleted since the old version cached them


def old_cache(client: redis.Redis, prefix: str) -> None:
    """The services' cache as the old version left it: every user, some deleted since, a field dropped since."""
    pipe = client.pipeline(transaction=False)
    for i in [*range(1, USERS + 1), *STALE]:
        pipe.set(f"{prefix}user:{i}", json.dumps({"id": i, "name": f"old{i}"}))
        pipe.hset(f"{prefix}profile:{i}", mapping={"name": f"old{i}", "legacy": "x"})
    pipe.set(f"{prefix}session:1", "not the cache's: another pattern")
    pipe.execute()


def test_an_in_place_rebuild_under_readers_hammering_the_services_keys_misses_none_and_deletes_the_stale_ones(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    prefix = namespace + ":"
    old_cache(redis_client, prefix)
    stop, reading = threading.Event(), threading.Barrier(3)
    counts = {"old": 0, "new": 0}
    misses: list[tuple[str, int]] = []
    wrong: list[tuple[str, int, object]] = []

    def reader(kind: str) -> None:
        """Reads the keys as the services do, the string and the hash of random users, all the time."""
        client = redis.Redis.from_url(REDIS_URL)
        rng = random.Random(kind)
        reading.wait()
        while not stop.is_set():
            i = rng.randint(1, USERS)
            if kind == "string":
                value = client.get(f"{prefix}user:{i}")
                name = json.loads(value)["name"] if value else None
            else:
                fields = client.hgetall(f"{prefix}profile:{i}")
                name = fields[b"name"].decode() if fields else None
                if name == f"user{i}" and b"legacy" in fields:
                    wrong.append((kind, i, fields))  # a hash is replaced whole, never merged
            if name is None:
                misses.append((kind, i))
            elif name in (f"old{i}", f"user{i}"):
                counts["old" if name.startswith("old") else "new"] += 1
            else:
                wrong.append((kind, i, name))
        client.close()

    threads = [threading.Thread(target=reader, args=(kind,)) for kind in ("string", "hash")]
    for thread in threads:
        thread.start()
    reading.wait()
    before = dict(counts)
    with cache_context(tmp_path, ft_db) as ctx:
        result = rebuild(ctx, namespace, [USERS_IN_PLACE, PROFILES_IN_PLACE])
    during = sum(counts.values()) - sum(before.values())
    stop.set()
    for thread in threads:
        thread.join()
    assert misses == [] and wrong == [], f"{len(misses)} misses, {len(wrong)} wrong of {counts}"
    assert counts["old"] > 0 and counts["new"] > 0 and during > 0, f"readers read throughout: {counts}, {during}"
    assert result.status is StepStatus.SUCCESS, result.summary
    assert result.details["mode"] == "in_place" and result.details["keys"] == 2 * USERS
    assert result.details["stale_keys_deleted"] == 2 * len(STALE)
    assert not any(redis_client.exists(f"{prefix}user:{i}", f"{prefix}profile:{i}") for i in STALE)
    assert redis_client.get(f"{prefix}session:1") == b"not the cache's: another pattern"
    assert json.loads(redis_client.get(f"{prefix}user:7") or b"") == {
        "id": 7, "name": "user7", "region": None, "balance": "0.07", "created": "2024-01-01T10:00:00"}
    assert redis_client.hgetall(f"{prefix}profile:14") == {b"name": b"user14", b"region": b""}
    assert f"删除 600 个新数据已没有的键（`{prefix}user:*`, `{prefix}profile:*`）；校验：100,000 个键均存在" \
        in result.markdown
    assert redis_client.get(CacheLayout(namespace).pointer) is None, "no generation, no pointer"


def test_an_in_place_rebuild_by_shard_processes_deletes_only_what_no_shard_wrote(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    prefix = namespace + ":"
    old_cache(redis_client, prefix)
    with cache_context(tmp_path, ft_db) as ctx:
        result = rebuild(ctx, namespace, [USERS_IN_PLACE], workers=3, parallel_min_rows=1000)
    assert f"dataset users: {USERS:,} rows built by 3 processes in parallel" in result.details["notes"]
    assert result.details["keys"] == USERS and result.details["stale_keys_deleted"] == len(STALE)
    assert json.loads(redis_client.get(f"{prefix}user:{USERS}") or b"")["name"] == f"user{USERS}"
    assert redis_client.exists(f"{prefix}user:{STALE[0]}") == 0


def test_an_in_place_rebuild_with_duplicate_keys_fails_and_deletes_nothing(
        tmp_path: Path, ft_db: str, namespace: str, redis_client: redis.Redis) -> None:
    redis_client.set(f"{namespace}:region:XX", "stale")
    regions = {"name": "regions", "database": "ft_db", "query": "SELECT id, region FROM users WHERE id < 100",
               "key": "region:{region}", "pattern": "region:*"}
    with cache_context(tmp_path, ft_db) as ctx, pytest.raises(StepFailed) as failed:
        rebuild(ctx, namespace, [regions])
    assert "key template is not unique" in str(failed.value) and "no key was deleted" in str(failed.value)
    assert redis_client.get(f"{namespace}:region:XX") == b"stale"


@pytest.mark.parametrize(("datasets", "mode", "message"), [
    ([USERS_IN_PLACE, PROFILES_IN_PLACE | {"pattern": None}], None, "give every dataset its key 'pattern'"),
    ([USER_STRINGS], "in_place", "give every dataset its key 'pattern'"),
    ([USERS_IN_PLACE], "generation", "'pattern' is for mode in_place"),
    ([{**USERS_IN_PLACE, "pattern": "users:*"}], None, "pattern 'users:\\*' does not match the keys of template"),
])
def test_in_place_configs_that_could_delete_the_wrong_keys_are_refused_at_plan_time(
        datasets: list[dict[str, Any]], mode: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CacheRebuildParams.model_validate({"namespace": "ft", "datasets": datasets, "mode": mode})
