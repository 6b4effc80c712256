"""Fixtures of the post_upgrade tests: an engine on a fresh MariaDB database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine


@pytest.fixture
def engine(mariadb_database: str) -> Iterator[Engine]:
    engine = create_engine(mariadb_database)
    try:
        yield engine
    finally:
        engine.dispose()
