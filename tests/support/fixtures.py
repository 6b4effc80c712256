"""Fixtures shared by capability folders (loaded by tests/conftest.py as a plugin): an isolated Redis
namespace on db 9, fresh MariaDB databases, an engine on a fresh database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from tasks.cache.rebuild import unlink_matching
from tasks.core.settings import get_settings
from tasks.packages.static_data import LOAD_TABLE
from tests.conftest import MARIADB_ROOT

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


@pytest.fixture
def new_database() -> Iterator[Callable[..., str]]:
    """Makes fresh MariaDB databases (``new_database(*statements)`` → URL); drops them and their load records."""
    admin = create_engine(MARIADB_ROOT + "/test")
    names: list[str] = []

    def make(*statements: str) -> str:
        name = f"ft_test_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            conn.execute(text(f"USE `{name}`"))
            for statement in statements:
                conn.execute(text(statement))
        names.append(name)
        return f"{MARIADB_ROOT}/{name}?charset=utf8mb4"

    yield make
    records = f"`{get_settings().marker_schema}`.`{LOAD_TABLE}`"
    with admin.begin() as conn:
        for name in names:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        if conn.execute(text("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s AND "
                             "TABLE_NAME = :t"), {"s": get_settings().marker_schema, "t": LOAD_TABLE}).scalar():
            for name in names:
                conn.execute(text(f"DELETE FROM {records} WHERE table_schema = :name"), {"name": name})
    admin.dispose()


@pytest.fixture
def engine(mariadb_database: str) -> Iterator[Engine]:
    engine = create_engine(mariadb_database)
    try:
        yield engine
    finally:
        engine.dispose()
