"""Runs last (by name): after the suite, no business schema holds a table of the tool's.

The DML markers live in the tool's own schema; only the test that denies an account the right to create
it sees them fall back to its (dropped) business schema. The demo's schemas are its own business.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tasks.core.settings import get_settings
from tests.conftest import MARIADB_ROOT

pytestmark = pytest.mark.mariadb


def test_no_business_schema_holds_a_table_of_the_tools_after_the_suite() -> None:
    engine = create_engine(MARIADB_ROOT + "/test")
    with engine.connect() as conn:
        found = conn.execute(text(
            "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_NAME LIKE 'ft\\_upgrade%' "
            "AND TABLE_SCHEMA <> :own AND TABLE_SCHEMA NOT LIKE 'ft\\_demo\\_%'"),
            {"own": get_settings().marker_schema}).all()
    engine.dispose()
    assert found == [], f"tables of the tool left in business schemas: {found}"
