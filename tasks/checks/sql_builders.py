"""SQL of the data-quality checks for MySQL/MariaDB and ClickHouse. Pure: text in, text out.

Names come only from reviewed rules and are validated identifiers, always quoted in the SQL that
runs; values (enum lists, regexes, lengths) are bound parameters. Each builder returns the query
that runs and a ready-to-run ``view_sql`` with the values written as literals, for the operator
to see the offending rows; it is shown, never executed here. The character checks are regexes over
the text converted to UTF-8, bound as parameters; their syntax (``\\xhh``, ``\\x{hhhhh}``) means the same
to MySQL 8 (ICU), MariaDB (PCRE) and ClickHouse (RE2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlparse

_IDENT = re.compile(r"^(?!\d+$)[A-Za-z0-9_$]{1,64}$")
_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
_RESERVED_WORDS = """
add all alter analyze and as asc between by call case change check collate column condition constraint
convert create cross current_date current_time current_user cursor database databases default delete
desc describe distinct div drop dual each else elseif exists exit explain false fetch for force foreign
from fulltext function generated grant group groups having if ignore in index inner insert interval into
is join key keys kill lag lead left like limit lines load lock long loop match mod natural not null of
on optimize option or order out outer over partition precision primary procedure range rank read
recursive references regexp release rename repeat replace require restrict return revoke right rlike
row rows schema select set show signal sql system table then to trigger true union unique unlock
unsigned update usage use using values when where while window with write xor
"""
_RESERVED = frozenset(_RESERVED_WORDS.split())

CONTROL_REGEX = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"  # C0 controls but TAB, LF, CR; and DEL
FOUR_BYTE_REGEX = r"[\x{10000}-\x{10FFFF}]"  # characters outside the BMP: 4 bytes in UTF-8, not in utf8mb3

_FORBIDDEN = re.compile(r"\bINTO\s+(OUTFILE|DUMPFILE)\b|\bFOR\s+UPDATE\b|\bLOCK\s+IN\s+SHARE\s+MODE\b|"
                        r"\bFOR\s+SHARE\b", re.IGNORECASE)
_INTEGER_TYPES = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
_TARGET_TYPE = re.compile(r"^\s*(?:(?P<int>tinyint|smallint|mediumint|int|integer|bigint)(?P<u>\s+unsigned)?"
                          r"|decimal\s*\(\s*(?P<p>\d+)\s*,\s*(?P<s>\d+)\s*\))\s*$", re.IGNORECASE)


def check_identifier(name: str) -> str:
    """A table, column or database name as rules may give it: letters, digits, ``_``, ``$``; at most 64."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name):
        raise ValueError(f"{name!r} is not an allowed table/column name (letters, digits, _ and $, at most 64)")
    return name


def check_read_only_select(sql: str) -> str:
    """One SELECT (or WITH … SELECT) statement, without its trailing ``;``; ``ValueError`` otherwise."""
    statements = [s.strip() for s in sqlparse.split(sql or "") if s.strip().rstrip(";").strip()]
    if not statements:
        raise ValueError("SQL is empty")
    if len(statements) > 1:
        raise ValueError(f"SQL must be one statement, found {len(statements)}")
    text = statements[0].rstrip().rstrip(";").rstrip()
    kind = sqlparse.parse(text)[0].get_type()
    if kind != "SELECT":
        raise ValueError(f"SQL must be a read-only SELECT, not {kind}: {text[:80]!r}")
    if _FORBIDDEN.search(text):
        raise ValueError(f"SQL must be read-only (no INTO OUTFILE / FOR UPDATE / locking reads): {text[:80]!r}")
    return text


@dataclass(frozen=True)
class IntegerType:
    name: str
    low: int
    high: int


@dataclass(frozen=True)
class DecimalType:
    precision: int
    scale: int

    @property
    def limit(self) -> int:
        """Smallest absolute value that no longer fits."""
        return 10 ** (self.precision - self.scale)


def parse_target_type(text: str) -> IntegerType | DecimalType:
    """``int unsigned`` → its range; ``decimal(10,2)`` → precision and scale. ``ValueError`` otherwise."""
    m = _TARGET_TYPE.match(text or "")
    if not m:
        raise ValueError(f"target_type {text!r} is not one of tinyint/smallint/mediumint/int/bigint [unsigned] "
                         "or decimal(p,s)")
    if m["int"]:
        bits = _INTEGER_TYPES[m["int"].lower()]
        if m["u"]:
            return IntegerType(f"{m['int'].lower()} unsigned", 0, 2**bits - 1)
        return IntegerType(m["int"].lower(), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    p, s = int(m["p"]), int(m["s"])
    if not 1 <= p <= 65 or s > p or s > 30:
        raise ValueError(f"target_type {text!r}: need 1 ≤ precision ≤ 65 and scale ≤ min(precision, 30)")
    return DecimalType(p, s)


DialectName = Literal["mysql", "clickhouse"]


@dataclass(frozen=True)
class Dialect:
    """Quoting, literals and the few functions that differ between MySQL/MariaDB and ClickHouse."""

    name: DialectName

    def quote(self, ident: str) -> str:
        return "`" + ident.replace("`", "``") + "`"

    def show(self, ident: str) -> str:
        """An identifier as the operator reads it: bare when that is safe (``orders``), else quoted."""
        return ident if _PLAIN.fullmatch(ident) and ident not in _RESERVED else self.quote(ident)

    def table(self, database: str | None, table: str, *, shown: bool = False) -> str:
        q = self.show if shown else self.quote
        return f"{q(database)}.{q(table)}" if database else q(table)

    def literal(self, value: Any) -> str:
        if isinstance(value, bool) or value is None:
            raise TypeError(f"no literal for {value!r}")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, (list, tuple)):
            items = ", ".join(self.literal(v) for v in value)
            return f"[{items}]" if self.name == "clickhouse" else f"({items})"
        return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"

    def count_if(self, condition: str) -> str:
        if self.name == "clickhouse":
            return f"countIf({condition})"
        return f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"

    def current_database(self) -> str:
        return "currentDatabase()" if self.name == "clickhouse" else "DATABASE()"


MYSQL = Dialect("mysql")
CLICKHOUSE = Dialect("clickhouse")
_CH_TYPES = {"text": "String", "int": "UInt64", "list": "Array(String)"}


class _Values:
    """Where a value goes into SQL: a bound parameter (the SQL that runs) or a literal (the SQL shown)."""

    def __init__(self, dialect: Dialect, *, bind: bool) -> None:
        self.dialect = dialect
        self.bind = bind
        self.params: dict[str, Any] = {}

    def put(self, name: str, value: Any, kind: Literal["text", "int", "list"]) -> str:
        if not self.bind:
            return self.dialect.literal(list(value) if kind == "list" else value)
        self.params[name] = list(value) if kind == "list" else value
        if self.dialect.name == "clickhouse":
            return f"{{{name}:{_CH_TYPES[kind]}}}"
        return f":{name}"


@dataclass(frozen=True)
class CheckQuery:
    """A query that runs (``sql`` with ``params``) and the SQL to show the offending rows.

    ``kind`` ``count``: one row, the first column is the violation count, the others are details named
    by ``columns``. ``kind`` ``names``: each row names one offending object (a table).
    """

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    view_sql: str | None = None
    kind: Literal["count", "names"] = "count"
    columns: tuple[str, ...] = ()
    expanding: tuple[str, ...] = ()


def duplicate_keys(d: Dialect, database: str | None, table: str, columns: Sequence[str]) -> CheckQuery:
    """Rows beyond the first per key value (what must go before the key can be created); NULL keys never collide.

    ``COUNT(*) - COUNT(DISTINCT key)`` compares values as a unique index would (the column's collation)
    and is several times faster than grouping a million rows into a temporary table.
    """
    t = d.table(database, table)
    keys = ", ".join(d.quote(c) for c in columns)
    not_null = " AND ".join(f"{d.quote(c)} IS NOT NULL" for c in columns)
    distinct = f"uniqExact({keys})" if d.name == "clickhouse" else f"COUNT(DISTINCT {keys})"
    sql = f"SELECT COUNT(*) - {distinct} AS conflicting_rows FROM {t} WHERE {not_null}"
    shown_t = d.table(database, table, shown=True)
    shown_keys = ", ".join(d.show(c) for c in columns)
    lhs = shown_keys if len(columns) == 1 else f"({shown_keys})"
    view = (f"SELECT * FROM {shown_t} WHERE {lhs} IN "
            f"(SELECT {shown_keys} FROM {shown_t} GROUP BY {shown_keys} HAVING COUNT(*) > 1);")
    return CheckQuery(sql, {}, view, "count", ("conflicting_rows",))


_NOT_STORED = ("View", "MaterializedView", "LiveView", "WindowView", "Dictionary", "Distributed", "Merge",
               "Buffer", "Null", "Set", "Join")


def missing_primary_key(d: Dialect, database: str, tables: Sequence[str] = (),
                        exclude: Sequence[str] = ()) -> CheckQuery:
    """Base tables of ``database`` without a primary key, one name per row, sorted."""

    def build(v: _Values) -> str:
        if d.name == "clickhouse":
            where = [f"database = {v.put('db', database, 'text')}", "primary_key = ''",
                     f"engine NOT IN ({', '.join(repr(e) for e in _NOT_STORED)})",
                     "NOT is_temporary"]
            if tables:
                where.append(f"has({v.put('only', tables, 'list')}, name)")
            if exclude:
                where.append(f"NOT has({v.put('skip', exclude, 'list')}, name)")
            return "SELECT name FROM system.tables WHERE " + " AND ".join(where) + " ORDER BY name"
        where = [f"t.TABLE_SCHEMA = {v.put('db', database, 'text')}", "t.TABLE_TYPE = 'BASE TABLE'",
                 "c.CONSTRAINT_NAME IS NULL"]
        if tables:
            where.append(f"t.TABLE_NAME IN {v.put('only', tables, 'list')}")
        if exclude:
            where.append(f"t.TABLE_NAME NOT IN {v.put('skip', exclude, 'list')}")
        return ("SELECT t.TABLE_NAME FROM information_schema.TABLES t LEFT JOIN information_schema.TABLE_CONSTRAINTS c "
                "ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME "
                "AND c.CONSTRAINT_TYPE = 'PRIMARY KEY' WHERE " + " AND ".join(where) + " ORDER BY t.TABLE_NAME")

    bound = _Values(d, bind=True)
    sql = build(bound)
    return CheckQuery(sql, bound.params, build(_Values(d, bind=False)) + ";", "names",
                      expanding=tuple(k for k in ("only", "skip") if k in bound.params))


def _illegal_conditions(d: Dialect, v: _Values, columns: Sequence[str], checks: Sequence[str],
                        patterns: Sequence[str]) -> list[str]:
    out: list[str] = []
    ch = d.name == "clickhouse"
    for c in columns:
        col = d.quote(c) if v.bind else d.show(c)
        text = f"toString({col})" if ch else f"CONVERT({col} USING utf8mb4)"
        for check in checks:
            if check in ("control", "four_byte"):
                name, regex = ("ctl", CONTROL_REGEX) if check == "control" else ("four", FOUR_BYTE_REGEX)
                p = v.put(name, regex, "text")
                out.append(f"match({text}, {p})" if ch else f"{text} REGEXP {p}")
            elif check == "invalid_utf8":
                out.append(f"NOT isValidUTF8({text})" if ch else
                           f"CAST(CONVERT(CAST({col} AS BINARY) USING utf8mb4) AS BINARY) <> CAST({col} AS BINARY)")
            else:
                raise ValueError(f"unknown illegal-character check {check!r}")
        for i, pattern in enumerate(patterns):
            p = v.put(f"p{i}", pattern, "text")
            out.append(f"match({text}, {p})" if ch else f"{col} REGEXP {p}")
    return out


def illegal_characters(d: Dialect, database: str | None, table: str, columns: Sequence[str],
                       checks: Sequence[str], patterns: Sequence[str] = ()) -> CheckQuery:
    """Rows where any listed column holds a control character, bad UTF-8, a 4-byte character or a pattern."""
    bound = _Values(d, bind=True)
    condition = " OR ".join(_illegal_conditions(d, bound, columns, checks, patterns))
    sql = f"SELECT {d.count_if(f'({condition})')} AS bad_rows FROM {d.table(database, table)}"
    shown = " OR ".join(_illegal_conditions(d, _Values(d, bind=False), columns, checks, patterns))
    view = f"SELECT * FROM {d.table(database, table, shown=True)} WHERE {shown};"
    return CheckQuery(sql, bound.params, view, "count", ("bad_rows",))


def _fit_conditions(d: Dialect, v: _Values, column: str, max_length: int | None,
                    target: IntegerType | DecimalType | None, allowed: Sequence[str] | None,
                    removed: Sequence[str] | None) -> list[str]:
    col = d.quote(column) if v.bind else d.show(column)
    ch = d.name == "clickhouse"
    s = f"toString({col})" if ch else f"CAST({col} AS CHAR)"
    out: list[str] = []
    if max_length is not None:
        n = v.put("max_length", max_length, "int")
        out.append(f"lengthUTF8({s}) > {n}" if ch else f"CHAR_LENGTH({col}) > {n}")
    if isinstance(target, IntegerType):
        if ch:
            num = f"toInt256OrNull({s})"
            out.append(f"({col} IS NOT NULL AND (isNull({num}) OR {num} < {target.low} OR {num} > {target.high}))")
        else:
            out.append(f"({col} IS NOT NULL AND ({s} NOT REGEXP '^[+-]?[0-9]+([.]0*)?$' "
                       f"OR CAST({col} AS DECIMAL(65,0)) NOT BETWEEN {target.low} AND {target.high}))")
    elif isinstance(target, DecimalType):
        if ch:
            num = f"toDecimal256OrNull({s}, {target.scale})"
            out.append(f"({col} IS NOT NULL AND (isNull({num}) OR abs({num}) >= {target.limit}))")
        else:
            out.append(f"({col} IS NOT NULL AND ({s} NOT REGEXP '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)$' "
                       f"OR ABS(CAST({col} AS DECIMAL(65,30))) >= {target.limit}))")
    if allowed is not None:
        vals = v.put("allowed", allowed, "list")
        out.append(f"({col} IS NOT NULL AND NOT has({vals}, {s}))" if ch else f"{col} NOT IN {vals}")
    if removed is not None:
        vals = v.put("removed", removed, "list")
        out.append(f"has({vals}, {s})" if ch else f"{col} IN {vals}")
    return out


def column_fit(d: Dialect, database: str | None, table: str, column: str, *, max_length: int | None = None,
               target_type: str | None = None, allowed_values: Sequence[str] | None = None,
               removed_values: Sequence[str] | None = None) -> CheckQuery:
    """Rows whose value would not fit the changed column (too long, out of range, an enum value gone)."""
    target = parse_target_type(target_type) if target_type else None
    bound = _Values(d, bind=True)
    condition = " OR ".join(_fit_conditions(d, bound, column, max_length, target, allowed_values, removed_values))
    sql = f"SELECT {d.count_if(f'({condition})')} AS bad_rows FROM {d.table(database, table)}"
    shown = " OR ".join(_fit_conditions(d, _Values(d, bind=False), column, max_length, target, allowed_values,
                                        removed_values))
    view = f"SELECT * FROM {d.table(database, table, shown=True)} WHERE {shown};"
    expanding = tuple(k for k in ("allowed", "removed") if k in bound.params) if d.name == "mysql" else ()
    return CheckQuery(sql, bound.params, view, "count", ("bad_rows",), expanding)


def dialect_for(drivername: str) -> Dialect:
    """The dialect of a SQLAlchemy URL's driver name; ``ValueError`` for databases the checks do not support."""
    name = drivername.split("+", 1)[0].lower()
    if name in ("mysql", "mariadb"):
        return MYSQL
    if name in ("clickhouse", "clickhouses", "clickhousedb", "chdb"):
        return CLICKHOUSE
    raise ValueError(f"data-quality checks support MySQL/MariaDB and ClickHouse, not {name!r}")
