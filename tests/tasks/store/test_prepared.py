"""Ledger writes compiled once and written in the background, on real SQLite files and the real MariaDB."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, create_engine, select, text, update

from tasks.store.metadata_store import create_store_engine
from tasks.store.prepared import BufferedWriter, PreparedWrite, WriteConnection
from tasks.store.schema import UtcDateTime

metadata = MetaData()
items = Table("items", metadata, Column("id", String(32), primary_key=True), Column("n", Integer),
              Column("status", String(16)), Column("at", UtcDateTime))  # DATETIME(6) on MariaDB, text on SQLite
INSERT = items.insert().values(id=bindparam("id"), n=bindparam("n"), status=bindparam("status"), at=bindparam("at"))
DONE = update(items).where(items.c.id == bindparam("b_id")).values(status=bindparam("status"))
MOMENT = datetime(2026, 11, 28, 9, 30, 15, 123456)


def rows(engine: object) -> list[tuple[object, ...]]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return [tuple(r) for r in conn.execute(select(items).order_by(items.c.n))]


@pytest.fixture
def sqlite_engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.mark.mariadb
def test_prepared_write_stores_what_sqlalchemy_would_on_both_dialects(sqlite_engine, mariadb_database: str) -> None:
    maria = create_engine(mariadb_database)
    metadata.create_all(maria)
    try:
        for engine in (sqlite_engine, maria):
            insert, done = PreparedWrite(INSERT, engine), PreparedWrite(DONE, engine)
            connection = WriteConnection(engine)
            connection.run([(insert, [{"id": "a", "n": 1, "status": "PENDING", "at": MOMENT},
                                      {"id": "b", "n": 2, "status": "PENDING", "at": None}]),
                            (done, [{"b_id": "a", "status": "SUCCESS"}])])
            connection.close()
            assert rows(engine) == [("a", 1, "SUCCESS", MOMENT), ("b", 2, "PENDING", None)], engine.dialect.name
        with sqlite_engine.connect() as conn:  # the text SQLAlchemy itself writes for a SQLite DATETIME
            assert conn.execute(text("SELECT at FROM items WHERE id = 'a'")).scalar() == "2026-11-28 09:30:15.123456"
    finally:
        maria.dispose()


def test_buffered_rows_reach_the_store_without_a_flush_and_in_order(sqlite_engine) -> None:
    insert, done = PreparedWrite(INSERT, sqlite_engine), PreparedWrite(DONE, sqlite_engine)
    writer = BufferedWriter(sqlite_engine, [insert, done], flush_seconds=0.05)
    writer.buffer(done, {"b_id": "x", "status": "SUCCESS"})  # its row is buffered after it: inserts go first
    writer.buffer(insert, {"id": "x", "n": 1, "status": "PENDING", "at": MOMENT})
    deadline = time.monotonic() + 5
    while rows(sqlite_engine) != [("x", 1, "SUCCESS", MOMENT)]:
        assert time.monotonic() < deadline, f"background flush did not write: {rows(sqlite_engine)}"
        time.sleep(0.01)
    writer.close()


def test_a_durable_write_takes_the_buffer_along_and_a_failed_flush_keeps_the_rows(sqlite_engine) -> None:
    insert, done = PreparedWrite(INSERT, sqlite_engine), PreparedWrite(DONE, sqlite_engine)
    writer = BufferedWriter(sqlite_engine, [insert], flush_seconds=3600, flush_rows=10**6)
    writer.buffer(insert, {"id": "a", "n": 1, "status": "PENDING", "at": None})
    writer.write_now((done, [{"b_id": "a", "status": "RUNNING"}]))
    assert rows(sqlite_engine) == [("a", 1, "RUNNING", None)], "the buffered insert went first, same commit"

    with sqlite_engine.begin() as conn:
        conn.execute(text("ALTER TABLE items RENAME TO items_away"))  # the store breaks
    writer.buffer(insert, {"id": "b", "n": 2, "status": "PENDING", "at": None})
    with pytest.raises(Exception, match="no such table"):
        writer.write_now()
    with sqlite_engine.begin() as conn:
        conn.execute(text("ALTER TABLE items_away RENAME TO items"))  # repaired
    writer.close()
    assert [r[0] for r in rows(sqlite_engine)] == ["a", "b"], "the row of the failed write was kept and written"
