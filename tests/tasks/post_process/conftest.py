"""Fixtures of the startup_post_process tests: an isolated Redis namespace on db 9."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from tasks.cache.rebuild import unlink_matching

REDIS_URL = os.environ.get("FT_TEST_REDIS", "redis://127.0.0.1:6379/9")


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    """A cache namespace no other test uses; every key below it is removed afterwards."""
    name = f"fttest:{uuid.uuid4().hex[:10]}"
    yield name
    unlink_matching(redis_client, name + ":*")
