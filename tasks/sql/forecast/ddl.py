"""How MariaDB / MySQL will execute a DDL statement on a given table: INSTANT, INPLACE (with or without a
lock) or COPY, and whether the table is rebuilt.

Pure: statement text, the server's version, the table's facts (engine, row format, columns, indexes) and
the session (``foreign_key_checks``, ``alter_algorithm``) in; an :class:`Execution` out. The rules are the
servers' own, as documented (MariaDB: "InnoDB Online DDL Operations with the INSTANT / NOCOPY / INPLACE
Alter Algorithm"; MySQL 8.0: "Online DDL Operations") and as observed on the server
(``tests/tasks/sql/forecast/test_ddl_on_server.py`` runs each kind and watches whether the table was rebuilt):

* an ALTER is as slow as its slowest clause (INSTANT < NOCOPY < INPLACE < COPY) and locks as much as its
  most locking one; ``ALGORITHM=COPY`` (or ``alter_algorithm``/``old_alter_table`` asking for it) copies;
* adding, dropping or moving a column is INSTANT on InnoDB (MariaDB ≥ 10.4, MySQL ≥ 8.0.29; only
  adding a last column on MariaDB 10.3 and MySQL 8.0.12+) unless the table has a FULLTEXT index, and
  stops being instant (the table is rebuilt) beside an index build in the same statement;
* a secondary index is built without a rebuild (NOCOPY) and without a lock; a FULLTEXT or SPATIAL one
  takes a shared lock, and the first FULLTEXT index rebuilds the table;
* changing a column's type copies the table, except widening a VARCHAR within the same length-byte
  class (and, ROW_FORMAT=REDUNDANT, widening integers); NULL ↔ NOT NULL rebuilds in place;
* defaults, comments, renames, ENUM values appended, dropping an index or a foreign key: metadata only;
* an engine other than InnoDB copies for anything but metadata.

Statements that cannot be recognised are forecast as a COPY and marked uncertain: a forecast that
cannot decide says so rather than promising the fast case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from tasks.sql.kinds import plain, top_level_commas

INSTANT, NOCOPY, INPLACE, COPY = "INSTANT", "NOCOPY", "INPLACE", "COPY"
_RANK = {INSTANT: 0, NOCOPY: 1, INPLACE: 2, COPY: 3}
NONE, SHARED, EXCLUSIVE = "NONE", "SHARED", "EXCLUSIVE"
_LOCK_RANK = {NONE: 0, SHARED: 1, EXCLUSIVE: 2}
#: What the server does with the table's rows, which is what takes time.
METADATA, INDEX, REBUILD, TABLE_COPY = "metadata", "index", "rebuild", "copy"
_WORK_RANK = {METADATA: 0, INDEX: 1, REBUILD: 2, TABLE_COPY: 3}

_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_QNAME = rf"(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<name>{_IDENT})"
_F = re.IGNORECASE | re.DOTALL
_INTS = ("tinyint", "smallint", "mediumint", "int", "bigint")


@dataclass(frozen=True)
class Server:
    """The server's flavour and version, from ``SELECT VERSION()``."""

    flavor: str  # mariadb | mysql
    version: tuple[int, int, int]

    @classmethod
    def parse(cls, text: str) -> Server:
        m = re.match(r"(\d+)\.(\d+)\.(\d+)", text or "")
        version = (int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0)
        return cls("mariadb" if "mariadb" in (text or "").lower() else "mysql", version)

    def __str__(self) -> str:
        return f"{'MariaDB' if self.flavor == 'mariadb' else 'MySQL'} {'.'.join(map(str, self.version))}"

    def at_least(self, mariadb: tuple[int, int, int] | None, mysql: tuple[int, int, int] | None) -> bool:
        wanted = mariadb if self.flavor == "mariadb" else mysql
        return wanted is not None and self.version >= wanted


@dataclass(frozen=True)
class Column:
    """A column as ``information_schema.COLUMNS`` describes it."""

    name: str
    column_type: str  # COLUMN_TYPE, e.g. "varchar(20)", "int(10) unsigned", "enum('a','b')"
    nullable: bool = True
    octet_length: int | None = None  # CHARACTER_OCTET_LENGTH
    char_length: int | None = None  # CHARACTER_MAXIMUM_LENGTH
    charset: str | None = None
    collation: str | None = None
    extra: str = ""  # auto_increment, VIRTUAL GENERATED, …


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    kind: str = "BTREE"  # BTREE | FULLTEXT | SPATIAL | HASH
    unique: bool = False


@dataclass(frozen=True)
class Table:
    """What the forecast knows of a table (``information_schema``; a table the plan creates is empty)."""

    schema: str
    name: str
    engine: str = "InnoDB"
    row_format: str = "Dynamic"
    rows: int = 0
    data_length: int = 0
    index_length: int = 0
    collation: str | None = None
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)

    @property
    def innodb(self) -> bool:
        return self.engine.lower() == "innodb"

    @property
    def charset(self) -> str | None:
        return self.collation.split("_", 1)[0] if self.collation else None

    @property
    def has_fulltext(self) -> bool:
        return any(i.kind == "FULLTEXT" for i in self.indexes.values())

    def indexed(self, column: str) -> list[Index]:
        return [i for i in self.indexes.values() if column.lower() in (c.lower() for c in i.columns)]

    def column(self, name: str) -> Column | None:
        return next((c for n, c in self.columns.items() if n.lower() == name.lower()), None)


@dataclass(frozen=True)
class Session:
    """Session settings that change how an ALTER runs (as the script leaves them at that point)."""

    foreign_key_checks: bool = True
    alter_algorithm: str = "DEFAULT"  # MariaDB; COPY forces a copy
    old_alter_table: bool = False


@dataclass(frozen=True)
class Execution:
    """How one statement will run."""

    algorithm: str  # INSTANT | NOCOPY | INPLACE | COPY
    lock: str  # NONE | SHARED | EXCLUSIVE
    work: str  # metadata | index | rebuild | copy
    reasons: tuple[str, ...] = ()
    certain: bool = True
    instant_columns: bool = False  # adds, drops or moves a column instantly (undone by an index build beside it)

    @property
    def category(self) -> str:
        """The four cases an operator plans by."""
        if self.algorithm == INSTANT:
            return "INSTANT"
        if self.algorithm == COPY:
            return "COPY"
        return "INPLACE (no lock)" if self.lock == NONE else "INPLACE (lock)"

    @property
    def rebuilds(self) -> bool:
        return self.work in (REBUILD, TABLE_COPY)

    @property
    def online(self) -> bool:
        """Whether the services could keep writing while it runs (``LOCK=NONE`` possible)."""
        return self.lock == NONE and self.algorithm != COPY

    def worst(self, other: Execution) -> Execution:
        """The combination of two clauses of one statement."""
        algorithm = max(self.algorithm, other.algorithm, key=_RANK.__getitem__)
        work = max(self.work, other.work, key=_WORK_RANK.__getitem__)
        return Execution(algorithm, max(self.lock, other.lock, key=_LOCK_RANK.__getitem__), work,
                         self.reasons + other.reasons, self.certain and other.certain,
                         self.instant_columns or other.instant_columns)


def _x(algorithm: str, work: str, reason: str, lock: str = NONE, *, certain: bool = True,
       instant_columns: bool = False) -> Execution:
    return Execution(algorithm, lock, work, (reason,), certain, instant_columns)


def metadata(reason: str) -> Execution:
    return _x(INSTANT, METADATA, reason)


def copy(reason: str, *, certain: bool = True) -> Execution:
    return _x(COPY, TABLE_COPY, reason, SHARED, certain=certain)


def rebuild(reason: str, lock: str = NONE) -> Execution:
    return _x(INPLACE, REBUILD, reason, lock)


def unquote(ident: str | None) -> str | None:
    if ident is None:
        return None
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


@dataclass(frozen=True)
class Target:
    """The table a statement works on (``schema`` None: the session's current one)."""

    schema: str | None
    name: str
    verb: str  # ALTER | CREATE_INDEX | DROP_INDEX | OPTIMIZE | CREATE | CREATE_SELECT | DROP | RENAME | TRUNCATE


_TARGETS = [
    ("ALTER", rf"ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\s+(?:IF\s+EXISTS\s+)?{_QNAME}"),
    ("CREATE_INDEX", rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+)?(?:UNIQUE\s+|FULLTEXT\s+|SPATIAL\s+)?INDEX\s+"
                     rf"(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT}\s+(?:USING\s+\w+\s+)?ON\s+{_QNAME}"),
    ("DROP_INDEX", rf"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?{_IDENT}\s+ON\s+{_QNAME}"),
    ("OPTIMIZE", rf"OPTIMIZE\s+(?:NO_WRITE_TO_BINLOG\s+|LOCAL\s+)?TABLE\s+{_QNAME}"),
    ("CREATE", rf"CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}"),
    ("DROP", rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_QNAME}"),
    ("RENAME", rf"RENAME\s+TABLE\s+{_QNAME}"),
    ("TRUNCATE", rf"TRUNCATE\s+(?:TABLE\s+)?{_QNAME}"),
]


def target(text: str) -> Target | None:
    """The table a DDL statement (or OPTIMIZE TABLE) works on; None for other statements."""
    sql = plain(text).strip().rstrip(";")
    for verb, pattern in _TARGETS:
        m = re.match(pattern, sql, _F)
        if m:
            if verb == "CREATE" and re.search(r"\bSELECT\b", sql[m.end():], _F):
                verb = "CREATE_SELECT"
            return Target(unquote(m["db"]), unquote(m["name"]) or "", verb)
    return None


def classify(text: str, server: Server, table: Table | None, session: Session = Session()) -> Execution:
    """How ``text`` runs on ``server`` against ``table`` (None: a table the forecast has no facts for)."""
    sql = plain(text).strip().rstrip(";").strip()
    found = target(sql)
    if found is None:
        return metadata("no table data touched")
    if found.verb in ("CREATE", "DROP", "TRUNCATE", "RENAME"):
        return metadata(f"{found.verb.lower()} table: the server changes the catalog and files, not rows")
    if found.verb == "CREATE_SELECT":
        return copy("CREATE TABLE … SELECT writes every row it selects")
    if found.verb == "OPTIMIZE":
        if table is not None and not table.innodb:
            return _x(COPY, TABLE_COPY, f"OPTIMIZE on {table.engine} rewrites the table under a lock", SHARED)
        return rebuild("OPTIMIZE TABLE on InnoDB is a rebuild (recreate + analyze)")
    if found.verb == "CREATE_INDEX":
        m = re.match(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:ONLINE\s+)?(?P<kind>UNIQUE|FULLTEXT|SPATIAL)?\s*INDEX\s+",
                     sql, _F)
        kind = (m["kind"] or "").upper() if m else ""
        result = _add_index(kind, server, table)
    elif found.verb == "DROP_INDEX":
        result = _drop_index(table)
    else:
        m = re.match(_TARGETS[0][1], sql, _F)
        assert m is not None
        result = _alter(sql[m.end():].strip(), server, table, session)
    return _forced(result, sql, session)


def _forced(result: Execution, sql: str, session: Session) -> Execution:
    """``ALGORITHM=COPY`` / ``LOCK=…`` in the statement, or the session asking for a copy."""
    algorithm = re.search(r"\bALGORITHM\s*=?\s*(\w+)", sql, _F)
    if (algorithm and algorithm[1].upper() == COPY) or session.alter_algorithm.upper() == COPY \
            or session.old_alter_table:
        return replace(result, algorithm=COPY, work=TABLE_COPY, lock=max(result.lock, SHARED, key=_LOCK_RANK.get),
                       reasons=(*result.reasons, "a copy is asked for (ALGORITHM=COPY, alter_algorithm or "
                                                 "old_alter_table)"))
    lock = re.search(r"\bLOCK\s*=?\s*(NONE|SHARED|EXCLUSIVE|DEFAULT)\b", sql, _F)
    if lock and lock[1].upper() in (SHARED, EXCLUSIVE):
        result = replace(result, lock=max(result.lock, lock[1].upper(), key=_LOCK_RANK.get))
    return result


def _alter(body: str, server: Server, table: Table | None, session: Session) -> Execution:
    clauses = top_level_commas(body)
    if not clauses:
        return metadata("nothing to change")
    results = [_clause(c, server, table, session, clauses) for c in clauses]
    total = results[0]
    for r in results[1:]:
        total = total.worst(r)
    if total.instant_columns and any(r.work == INDEX for r in results):
        total = total.worst(rebuild("an index built in the same statement as an instant column change: the "
                                    "table is rebuilt"))
    if table is not None and not table.innodb and not all(_ANY_ENGINE.match(c.strip()) for c in clauses):
        return copy(f"{table.engine} table: every change but a rename, a default or a comment copies the table")
    return total


#: Clauses every engine applies to the catalog alone.
_ANY_ENGINE = re.compile(r"(RENAME\b|ALTER\s+(?:COLUMN\s+)?\S+\s+(?:SET|DROP)\s+DEFAULT|COMMENT\b|AUTO_INCREMENT\b|"
                         r"(?:ALGORITHM|LOCK)\s*=?\s*\w+$)", _F)


_OPTION = re.compile(r"(?P<key>ENGINE|ROW_FORMAT|KEY_BLOCK_SIZE|AUTO_INCREMENT|COMMENT|(?:DEFAULT\s+)?CHARACTER\s+SET|"
                     r"(?:DEFAULT\s+)?CHARSET|(?:DEFAULT\s+)?COLLATE|STATS_\w+|PACK_KEYS|CHECKSUM|"
                     r"PAGE_COMPRESSED|PAGE_COMPRESSION_LEVEL|ENCRYPTED|ENCRYPTION_KEY_ID|AVG_ROW_LENGTH|"
                     r"MIN_ROWS|MAX_ROWS|DELAY_KEY_WRITE|TRANSACTIONAL)\s*=?\s*(?P<value>'(?:[^']|'')*'|\S+)", _F)


def _clause(clause: str, server: Server, table: Table | None, session: Session, all_clauses: list[str]) -> Execution:
    c = clause.strip()
    u = c.upper()
    words = u.split()
    first = words[0] if words else ""
    if re.match(r"(ALGORITHM|LOCK)\s*=?\s*\w+$", c, _F) or first in ("WAIT", "NOWAIT"):
        return metadata("option")
    if first == "ADD":
        return _add(c, server, table, session)
    if first == "DROP":
        return _drop(c, server, table, all_clauses)
    if first in ("MODIFY", "CHANGE"):
        return _modify(c, server, table)
    if first == "ALTER":
        if re.match(r"ALTER\s+(?:COLUMN\s+)?\S+\s+(SET\s+DEFAULT|DROP\s+DEFAULT|SET\s+(IN)?VISIBLE)", c, _F):
            return metadata("a column default changes: metadata only")
        if re.match(r"ALTER\s+(INDEX|KEY)\s", c, _F):
            return metadata("index visibility: metadata only")
        return copy(f"clause not recognised: {c[:60]}", certain=False)
    if first == "RENAME":
        return metadata("a rename: metadata only")
    if first == "FORCE":
        return rebuild("FORCE rebuilds the table") if table is None or table.innodb else copy("FORCE copies")
    if u.startswith("CONVERT TO"):
        m = re.search(r"(?:CHARACTER\s+SET|CHARSET)\s*=?\s*(\w+)", c, _F)
        wanted = m[1].lower() if m else None
        if table is not None and wanted and all((col.charset or wanted) == wanted for col in table.columns.values()):
            return metadata(f"every column is {wanted} already: nothing to convert")
        return copy("CONVERT TO CHARACTER SET rewrites every text column")
    if first in ("ORDER", "PARTITION", "REMOVE", "COALESCE", "REORGANIZE", "EXCHANGE", "TRUNCATE", "ANALYZE",
                 "CHECK", "OPTIMIZE", "REBUILD", "REPAIR", "DISCARD", "IMPORT"):
        return copy(f"{first} BY/PARTITION operations are forecast as a copy", certain=first == "ORDER")
    if _OPTION.match(c):
        return _options(c, table)
    return copy(f"clause not recognised: {c[:60]}", certain=False)


def _options(clause: str, table: Table | None) -> Execution:
    result = metadata("table options")
    for m in _OPTION.finditer(clause):
        key = " ".join(m["key"].upper().split())
        value = m["value"].strip("'\"").lower()
        if key == "ENGINE":
            same = table is None or value == table.engine.lower()
            result = result.worst(rebuild("ENGINE = the same engine rebuilds the table") if same and
                                  (table is None or table.innodb) else copy(f"ENGINE = {value} copies every row"))
        elif key in ("ROW_FORMAT", "KEY_BLOCK_SIZE", "PAGE_COMPRESSED", "ENCRYPTED"):
            result = result.worst(rebuild(f"{key} rebuilds the table"))
    return result


_COLUMN_DEF = re.compile(rf"(?P<name>{_IDENT})\s+(?P<def>.*)$", _F)


_ADD_KEY = re.compile(rf"ADD\s+(?:CONSTRAINT\s+(?:(?!(?:FOREIGN|PRIMARY|UNIQUE|CHECK)\b){_IDENT}\s+)?)?"
                      r"(?P<what>PRIMARY\s+KEY|UNIQUE|FULLTEXT|SPATIAL|INDEX|KEY|FOREIGN\s+KEY|CHECK|PERIOD|"
                      r"SYSTEM\s+VERSIONING|PARTITION)\b", _F)


def _add(c: str, server: Server, table: Table | None, session: Session) -> Execution:
    m = _ADD_KEY.match(c)
    if m:
        what = " ".join(m["what"].upper().split())
        if what == "PRIMARY KEY":
            return rebuild("a new primary key rebuilds the table")
        if what == "FOREIGN KEY":
            if session.foreign_key_checks:
                return copy("a foreign key with foreign_key_checks=1 copies the table (every row is checked)")
            return _x(NOCOPY, METADATA, "a foreign key with foreign_key_checks=0: metadata only")
        if what == "CHECK":
            return copy("a CHECK constraint copies the table (every row is checked)")
        if what in ("SYSTEM VERSIONING", "PERIOD", "PARTITION"):
            return copy(f"ADD {what} is forecast as a copy", certain=False)
        return _add_index("" if what in ("INDEX", "KEY") else what, server, table)
    m = re.match(r"ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<rest>.+)$", c, _F)
    rest = m["rest"].strip() if m else ""
    if rest.startswith("("):
        parts = top_level_commas(rest[1:rest.rfind(")")])
        total = metadata("columns")
        for part in parts:
            total = total.worst(_add_column(part, server, table, last=True))
        return total
    return _add_column(rest, server, table, last=not re.search(r"\b(FIRST|AFTER\s+\S+)\s*$", rest, _F))


def _add_column(definition: str, server: Server, table: Table | None, *, last: bool) -> Execution:
    spec = column_spec(definition)
    if spec.generated == "STORED":
        return copy("a STORED generated column is computed for every row: the table is copied")
    if spec.generated == "VIRTUAL":
        return metadata("a VIRTUAL column is not stored: metadata only")
    if table is not None and table.has_fulltext:
        return rebuild("the table has a FULLTEXT index: adding a column rebuilds it", SHARED)
    if spec.auto_increment:
        return rebuild("an AUTO_INCREMENT column is filled for every row: rebuilt under a shared lock", SHARED)
    anywhere = server.at_least((10, 4, 0), (8, 0, 29))
    at_end = server.at_least((10, 3, 2), (8, 0, 12))
    if anywhere or (last and at_end):
        return _x(INSTANT, METADATA, f"ADD COLUMN is instant on {server}", instant_columns=True)
    return rebuild(f"ADD COLUMN {'' if last else '(not last) '}rebuilds the table on {server}")


def _drop(c: str, server: Server, table: Table | None, all_clauses: list[str]) -> Execution:
    u = " ".join(c.upper().split())
    if u.startswith("DROP PRIMARY KEY"):
        if any(re.match(r"ADD\s+(?:CONSTRAINT\s+\S+\s+)?PRIMARY\s+KEY", x.strip(), _F) for x in all_clauses):
            return rebuild("the primary key is replaced: the table is rebuilt")
        return copy("dropping the primary key without a new one copies the table")
    if u.startswith(("DROP FOREIGN KEY", "DROP CHECK", "DROP CONSTRAINT")):
        name = unquote(c.split()[-1]) or ""
        if u.startswith("DROP CONSTRAINT") and table is not None and name in table.indexes:  # a UNIQUE key
            return _drop_index(table)
        return metadata("a constraint is dropped: metadata only")
    if re.match(r"DROP\s+(INDEX|KEY)\b", c, _F):
        return _drop_index(table)
    if u.startswith(("DROP PARTITION", "DROP SYSTEM VERSIONING", "DROP PERIOD")):
        return copy(f"{u[:30]} is forecast as a copy", certain=False)
    m = re.match(rf"DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?P<name>{_IDENT})", c, _F)
    name = unquote(m["name"]) if m else None
    if table is not None and name:
        if any(i.name == "PRIMARY" for i in table.indexed(name)):
            return copy(f"column {name} is in the primary key: dropping it copies the table")
        if table.has_fulltext:
            return rebuild("the table has a FULLTEXT index: dropping a column rebuilds it", SHARED)
    if server.at_least((10, 4, 0), (8, 0, 29)):
        indexed = table is not None and name is not None and bool(table.indexed(name))
        return _x(NOCOPY if indexed else INSTANT, METADATA, f"DROP COLUMN is instant on {server}"
                  + (" (its index is dropped with it)" if indexed else ""), instant_columns=True)
    return rebuild(f"DROP COLUMN rebuilds the table on {server}")


def _add_index(kind: str, server: Server, table: Table | None) -> Execution:
    if table is not None and not table.innodb:
        return copy(f"an index on a {table.engine} table is built by copying the table")
    if kind == "FULLTEXT":
        if table is None or not table.has_fulltext:
            return rebuild("the first FULLTEXT index rebuilds the table (hidden FTS_DOC_ID) under a shared lock",
                           SHARED)
        return _x(NOCOPY, INDEX, "a further FULLTEXT index is built under a shared lock", SHARED)
    if kind == "SPATIAL":
        return _x(NOCOPY, INDEX, "a SPATIAL index is built under a shared lock", SHARED)
    return _x(NOCOPY, INDEX, "a secondary index is built in place, without a rebuild or a lock")


def _drop_index(table: Table | None) -> Execution:
    if table is not None and not table.innodb:
        return copy(f"dropping an index of a {table.engine} table copies it")
    return _x(NOCOPY, METADATA, "an index is dropped: metadata only")


@dataclass(frozen=True)
class ColumnSpec:
    """The parts of a column definition that decide the algorithm."""

    name: str
    type: str  # normalised: "varchar(30)", "int unsigned", "enum('a','b')"
    nullable: bool
    charset: str | None
    collation: str | None
    auto_increment: bool
    generated: str | None  # VIRTUAL | STORED
    moves: bool  # FIRST / AFTER


_TYPE = re.compile(r"(?P<base>[A-Za-z]+(?:\s+(?:PRECISION|VARYING))?)\s*(?P<args>\((?:[^()']|'(?:[^']|'')*')*\))?"
                   r"(?P<flags>(?:\s+(?:UNSIGNED|SIGNED|ZEROFILL))*)", _F)
_ALIASES = {"integer": "int", "int4": "int", "int8": "bigint", "int1": "tinyint", "int2": "smallint",
            "int3": "mediumint", "middleint": "mediumint", "dec": "decimal", "numeric": "decimal", "fixed": "decimal",
            "real": "double", "double precision": "double", "bool": "tinyint", "boolean": "tinyint",
            "character": "char", "character varying": "varchar"}


def normalise_type(text: str) -> str:
    """A type as ``COLUMN_TYPE`` spells it, without integer display widths (``INT(11)`` = ``int``)."""
    m = _TYPE.match(text.strip())
    if not m:
        return text.strip().lower()
    base = _ALIASES.get(" ".join(m["base"].lower().split()), " ".join(m["base"].lower().split()))
    args = (m["args"] or "").replace(" ", "")
    if base in _INTS:
        args = ""
    elif base in ("enum", "set"):
        args = m["args"] or ""
    elif base == "decimal" and not args:
        args = "(10,0)"
    elif base in ("char", "binary") and not args:
        args = "(1)"
    flags = " unsigned" if "UNSIGNED" in (m["flags"] or "").upper() or "ZEROFILL" in (m["flags"] or "").upper() else ""
    return f"{base}{args.lower() if base not in ('enum', 'set') else args}{flags}"


def column_spec(definition: str) -> ColumnSpec:
    m = _COLUMN_DEF.match(definition.strip())
    if not m:
        return ColumnSpec("", definition.lower(), True, None, None, False, None, False)
    rest = m["def"]
    t = _TYPE.match(rest.strip())
    tail = rest.strip()[t.end():] if t else rest
    bare = re.sub(r"'(?:[^']|'')*'", "''", tail)
    charset = re.search(r"(?:CHARACTER\s+SET|CHARSET)\s*=?\s*(\w+)", bare, _F)
    collation = re.search(r"COLLATE\s*=?\s*(\w+)", bare, _F)
    generated = re.search(r"\bAS\s*\(.*\)\s*(VIRTUAL|PERSISTENT|STORED)?", bare, _F)
    return ColumnSpec(
        name=unquote(m["name"]) or "", type=normalise_type(rest), nullable=not re.search(r"\bNOT\s+NULL\b", bare, _F)
        and not re.search(r"\bPRIMARY\s+KEY\b", bare, _F),
        charset=charset[1].lower() if charset else None, collation=collation[1].lower() if collation else None,
        auto_increment=bool(re.search(r"\bAUTO_INCREMENT\b", bare, _F)),
        generated=None if not generated else ("VIRTUAL" if (generated[1] or "VIRTUAL").upper() == "VIRTUAL"
                                              else "STORED"),
        moves=bool(re.search(r"\b(FIRST|AFTER\s+\S+)\s*$", bare.strip(), _F)))


def _modify(c: str, server: Server, table: Table | None) -> Execution:
    m = re.match(rf"(?P<verb>MODIFY|CHANGE)\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?P<old>{_IDENT})\s+(?P<rest>.+)$",
                 c, _F)
    if not m:
        return copy(f"clause not recognised: {c[:60]}", certain=False)
    old_name = unquote(m["old"]) or ""
    spec = column_spec(m["rest"] if m["verb"].upper() == "CHANGE" else f"{m['old']} {m['rest']}")
    old = table.column(old_name) if table is not None else None
    if old is None:
        return copy(f"column {old_name} not known to the forecast: a type change would copy the table",
                    certain=False)
    assert table is not None
    result = _type_change(old, spec, server, table)
    if spec.moves:
        moved = (_x(INSTANT, METADATA, f"a column is moved instantly on {server}", instant_columns=True)
                 if server.at_least((10, 4, 0), None) else rebuild(f"moving a column rebuilds the table on {server}"))
        result = result.worst(moved)
    return result


def _type_change(old: Column, new: ColumnSpec, server: Server, table: Table) -> Execution:
    old_type = normalise_type(old.column_type)
    redundant = table.row_format.lower() == "redundant" and server.at_least((10, 4, 3), None)
    if new.auto_increment and "auto_increment" not in old.extra.lower():
        return copy(f"column {old.name} becomes AUTO_INCREMENT: the table is copied")
    if (new.generated is not None) != ("generated" in old.extra.lower()):
        return copy(f"column {old.name} changes between stored and generated: the table is copied")
    charset_changes = new.charset is not None and old.charset is not None and new.charset != old.charset
    if old.charset is not None and new.charset is None and new.collation is None and table.charset \
            and table.charset != old.charset:
        charset_changes = True  # MODIFY without CHARACTER SET takes the table's default
    if charset_changes:
        return copy(f"column {old.name} changes character set: the table is copied")
    if new.type != old_type:
        change = _widening(old, old_type, new.type, server, redundant)
        if change.algorithm == COPY:
            return change
    else:
        change = metadata(f"column {old.name} keeps its type: metadata only")
    if new.collation and old.collation and new.collation != old.collation:
        if table.indexed(old.name):
            change = change.worst(rebuild(f"column {old.name} is indexed: a collation change rebuilds its index"))
        elif server.at_least((10, 4, 0), None):
            change = change.worst(metadata(f"collation of column {old.name}: instant while not indexed"))
        else:
            change = change.worst(copy(f"collation of column {old.name} changes: the table is copied"))
    if old.nullable != new.nullable:
        if not new.nullable:
            change = change.worst(rebuild(f"column {old.name} becomes NOT NULL: rebuilt in place"))
        elif redundant:
            change = change.worst(metadata(f"column {old.name} becomes NULL: instant in ROW_FORMAT=REDUNDANT"))
        else:
            change = change.worst(rebuild(f"column {old.name} becomes NULL: rebuilt in place"))
    return change


def _widening(old: Column, old_type: str, new_type: str, server: Server, redundant: bool) -> Execution:
    """A type change that may stay in place: a longer VARCHAR, a wider integer (REDUNDANT), more ENUM values."""
    o = re.fullmatch(r"(var(?:char|binary))\((\d+)\)", old_type)
    n = re.fullmatch(r"(var(?:char|binary))\((\d+)\)", new_type)
    if o and n and o[1] == n[1] and int(n[2]) >= int(o[2]):
        per_char = (old.octet_length or int(o[2])) / max(old.char_length or int(o[2]), 1)
        before, after = (old.octet_length or int(o[2])), int(int(n[2]) * per_char)
        if redundant or (server.at_least((10, 4, 3), None) and (before <= 127 or after <= 255 or before > 255)):
            return metadata(f"{old.name}: {old_type} → {new_type} ({before} → {after} bytes) is instant")
        if (before <= 255) == (after <= 255):
            return _x(NOCOPY, METADATA, f"{old.name}: {old_type} → {new_type} keeps its length bytes: in place")
        return copy(f"{old.name}: {old_type} → {new_type} ({before} → {after} bytes) needs a second length byte: "
                    "the table is copied")
    oi, ni = _int(old_type), _int(new_type)
    if oi and ni and redundant and oi[1] == ni[1] and _INTS.index(ni[0]) >= _INTS.index(oi[0]):
        return metadata(f"{old.name}: {old_type} → {new_type} is instant in ROW_FORMAT=REDUNDANT")
    oe = re.fullmatch(r"(enum|set)\((.*)\)", old_type, re.S)
    ne = re.fullmatch(r"(enum|set)\((.*)\)", new_type, re.S)
    if oe and ne and oe[1] == ne[1]:
        before_values, after_values = top_level_commas(oe[2]), top_level_commas(ne[2])
        if after_values[:len(before_values)] == before_values:
            return metadata(f"{old.name}: {oe[1].upper()} values appended: metadata only")
    return copy(f"{old.name}: {old_type} → {new_type} changes the stored data: the table is copied")


def _int(type_: str) -> tuple[str, bool] | None:
    m = re.fullmatch(r"(tinyint|smallint|mediumint|int|bigint)( unsigned)?", type_)
    return (m[1], bool(m[2])) if m else None
