"""Data-quality checks on MySQL/MariaDB (SQLAlchemy pool) and ClickHouse (clickhouse-connect).

Every query runs read-only (a ``READ ONLY`` session transaction on MySQL, ``readonly=2`` on
ClickHouse). An SQL error (syntax, missing table) raises :class:`RuleSqlError` with the database's
own message: the runner stops checking there, as the requirements ask.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.exc import DBAPIError

from tasks.checks import sql_builders as sb
from tasks.checks.outcome import Measurement, Problem
from tasks.checks.rules import (
    ColumnFitRule,
    CustomSqlRule,
    DuplicateKeysRule,
    IllegalCharactersRule,
    MissingPrimaryKeyRule,
)
from tasks.checks.targets import CheckEnv
from tasks.core.errors import CheckError, RuleSqlError


class SqlTarget(Protocol):
    dialect: sb.Dialect

    def current_database(self) -> str | None: ...

    def rows(self, query: sb.CheckQuery) -> list[tuple[Any, ...]]: ...

    def raw(self, sql: str) -> list[tuple[Any, ...]]: ...


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0][:500] if str(orig).strip() else type(orig).__name__


class MySqlTarget:
    """One pooled connection in a read-only session; the session is reset before it goes back to the pool."""

    dialect = sb.MYSQL

    def __init__(self, engine: Engine, rule_id: str) -> None:
        self.engine = engine
        self.rule_id = rule_id
        self.conn = engine.connect()
        self.conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        self.conn.commit()

    def close(self) -> None:
        try:
            self.conn.rollback()
            self.conn.exec_driver_sql("SET SESSION TRANSACTION READ WRITE")
            self.conn.commit()
        except DBAPIError:
            self.conn.invalidate()  # never hand a read-only session back to the pool
        finally:
            self.conn.close()

    def _error(self, exc: BaseException, sql: str) -> RuleSqlError:
        return RuleSqlError(f"SQL error in rule {self.rule_id}: {_first_line(exc)}", sql)

    def current_database(self) -> str | None:
        return self.conn.execute(text("SELECT DATABASE()")).scalar()

    def rows(self, query: sb.CheckQuery) -> list[tuple[Any, ...]]:
        statement = text(query.sql)
        if query.expanding:
            statement = statement.bindparams(*(bindparam(name, expanding=True) for name in query.expanding))
        try:
            return [tuple(r) for r in self.conn.execute(statement, query.params).all()]
        except DBAPIError as exc:
            raise self._error(exc, query.sql) from None

    def raw(self, sql: str) -> list[tuple[Any, ...]]:
        """Exactly the reviewed text, through the driver's cursor (no bind-parameter parsing of ``:`` or ``%``)."""
        cursor = self.conn.connection.cursor()
        try:
            cursor.execute(sql)
            return [tuple(r) for r in cursor.fetchall()]
        except self.engine.dialect.loaded_dbapi.Error as exc:
            raise self._error(exc, sql) from None
        finally:
            cursor.close()


class ClickHouseTarget:
    dialect = sb.CLICKHOUSE

    def __init__(self, client: Any, rule_id: str) -> None:
        self.client = client
        self.rule_id = rule_id

    def _run(self, sql: str, params: dict[str, Any] | None) -> list[tuple[Any, ...]]:
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            return [tuple(r) for r in self.client.query(sql, parameters=params or None,
                                                         settings={"readonly": 2}).result_rows]
        except ClickHouseError as exc:
            raise RuleSqlError(f"SQL error in rule {self.rule_id}: {_first_line(exc)}", sql) from None

    def current_database(self) -> str | None:
        return self._run("SELECT currentDatabase()", None)[0][0]

    def rows(self, query: sb.CheckQuery) -> list[tuple[Any, ...]]:
        return self._run(query.sql, query.params)

    def raw(self, sql: str) -> list[tuple[Any, ...]]:
        return self._run(sql, None)

    def close(self) -> None:
        return None  # the client belongs to CheckEnv


@contextmanager
def sql_target(env: CheckEnv, name: str, rule_id: str) -> Iterator[SqlTarget]:
    dialect = env.database_kind(name)
    target: MySqlTarget | ClickHouseTarget
    if dialect is sb.CLICKHOUSE:
        target = ClickHouseTarget(env.clickhouse(name), rule_id)
    else:
        target = MySqlTarget(env.engine(name), rule_id)
    try:
        yield target
    finally:
        target.close()


def _number(value: Any, rule_id: str, sql: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise RuleSqlError(f"rule {rule_id}: the SQL must return one number (violating rows), got {value!r}", sql)
    return int(value) if isinstance(value, int) or value == int(value) else float(value)


def n(value: int | float) -> str:
    """A count or threshold as people write it: ``0``, ``15``, ``2.5``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _count_measurement(count: int | float, rule: Any, noun: str, query_sql: str | None, obj: str, what: str,
                       facts: dict[str, Any]) -> Measurement:
    return Measurement(
        count=count,
        breach_text=f"发现{n(count)}条{noun}，阈值{n(rule.threshold)}",
        pass_text=f"发现{n(count)}条{noun}，未超过阈值{n(rule.threshold)}" if count else f"未发现{noun}",
        problems=(Problem(obj, f"{n(count)} {what}"),) if count else (),
        sql=query_sql,
        facts=facts,
    )


def measure_duplicate_keys(rule: DuplicateKeysRule, env: CheckEnv) -> Measurement:
    assert rule.target
    with sql_target(env, rule.target, rule.id) as t:
        q = sb.duplicate_keys(t.dialect, rule.database, rule.table, rule.columns)
        count = _number(t.rows(q)[0][0], rule.id, q.sql)
    return _count_measurement(count, rule, "冲突记录", q.view_sql, rule.table,
                              f"rows beyond the first for their key ({', '.join(rule.columns)})",
                              {"table": rule.table, "columns": ", ".join(rule.columns)})


def measure_missing_primary_key(rule: MissingPrimaryKeyRule, env: CheckEnv) -> Measurement:
    assert rule.target
    with sql_target(env, rule.target, rule.id) as t:
        database = rule.database or t.current_database()
        if not database:
            raise CheckError(f"rule {rule.id}: target {rule.target!r} has no default database; set 'database'")
        q = sb.missing_primary_key(t.dialect, database, rule.tables, rule.exclude)
        names = [str(r[0]) for r in t.rows(q)]
    count = len(names)
    over = f"，阈值{n(rule.threshold)}" if rule.threshold else ""
    return Measurement(
        count=count,
        breach_text=f"发现{count}张无主键表{over}",
        pass_text=(f"发现{count}张无主键表，未超过阈值{n(rule.threshold)}：{', '.join(names)}" if count
                   else f"数据库{database}中未发现无主键表"),
        problems=tuple(Problem(f"{database}.{name}", "table has no primary key") for name in names),
        sql=q.view_sql,
        facts={"tables": ", ".join(names), "database": database},
    )


def measure_illegal_characters(rule: IllegalCharactersRule, env: CheckEnv) -> Measurement:
    assert rule.target
    with sql_target(env, rule.target, rule.id) as t:
        q = sb.illegal_characters(t.dialect, rule.database, rule.table, rule.columns, rule.checks, rule.patterns)
        count = _number(t.rows(q)[0][0], rule.id, q.sql)
    return _count_measurement(count, rule, "含非法字符的记录", q.view_sql, rule.table,
                              f"rows with illegal characters ({', '.join([*rule.checks, *rule.patterns])}) in "
                              f"({', '.join(rule.columns)})",
                              {"table": rule.table, "columns": ", ".join(rule.columns)})


def measure_column_fit(rule: ColumnFitRule, env: CheckEnv) -> Measurement:
    assert rule.target
    with sql_target(env, rule.target, rule.id) as t:
        q = sb.column_fit(t.dialect, rule.database, rule.table, rule.column, max_length=rule.max_length,
                          target_type=rule.target_type, allowed_values=rule.allowed_values,
                          removed_values=rule.removed_values)
        count = _number(t.rows(q)[0][0], rule.id, q.sql)
    return _count_measurement(count, rule, "不兼容的记录", q.view_sql, f"{rule.table}.{rule.column}",
                              f"values of {rule.column} that do not fit the changed column",
                              {"table": rule.table, "column": rule.column})


def measure_custom_sql(rule: CustomSqlRule, env: CheckEnv) -> Measurement:
    assert rule.target
    with sql_target(env, rule.target, rule.id) as t:
        rows = t.raw(rule.sql)
    if not rows or not rows[0]:
        raise RuleSqlError(f"rule {rule.id}: the SQL returned no row; it must return one number", rule.sql)
    count = _number(rows[0][0], rule.id, rule.sql)
    shown = rule.detail_sql + ";" if rule.detail_sql else None
    return _count_measurement(count, rule, "违规记录", shown, rule.target, "violating rows", {})
