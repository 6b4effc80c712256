"""What a statement does, by its effective verb: the basis of every guarantee the engine gives.

Pure: text in, :class:`StatementKind` out. The first keyword is not enough: ``SET STATEMENT … FOR
UPDATE …`` is an UPDATE; a ``DELIMITER`` block holding ``ALTER …; UPDATE …`` is several statements
whose effects no single probe can check; ``CALL``, ``DO`` and ``PREPARE``/``EXECUTE`` run code the
tool cannot see. Kinds:

* ``DML`` — exactly once, its marker committed in the same transaction (non-transactional tables are
  found at run time and handled apart);
* ``DDL`` — RUNNING before, SUCCESS after; after a crash the catalog decides where it can;
* ``SESSION`` — a pure session setting (``SET [SESSION] x = literal``, ``SET NAMES``, ``/*!40101 SET … */``),
  replayed on resume and reconnect;
* ``SESSION_RECORD`` — a setting whose value comes from a query or a function: the value it got is
  recorded when it runs and that value is replayed, never recomputed;
* ``TXN_BEGIN`` / ``TXN_END`` / ``SAVEPOINT`` — a script's own transaction, run as one unit;
* ``UNKNOWN`` — effects the tool cannot see (CALL, DO, PREPARE/EXECUTE, WITH, several statements in
  one block): after a crash the operator decides;
* ``OTHER`` — anything else (SELECT, SHOW, ANALYZE, SET GLOBAL, …): run once, the operator decides
  after a crash;
* ``REFUSED`` — constructs that cannot behave as under the client here; ``refusal`` says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import sqlparse

DML, DDL, SESSION, SESSION_RECORD = "DML", "DDL", "SESSION", "SESSION_RECORD"
TXN_BEGIN, TXN_END, SAVEPOINT, UNKNOWN, OTHER, REFUSED, USE = (
    "TXN_BEGIN", "TXN_END", "SAVEPOINT", "UNKNOWN", "OTHER", "REFUSED", "USE")

#: Kinds whose effect is done and durable once the statement returns, with nothing to prove after a crash.
REPLAYABLE = (SESSION, SESSION_RECORD, USE)

_CONDITIONAL = re.compile(r"/\*M?!\d*\s?(.*?)\*/", re.S)
_COMMENT = re.compile(r"--[^\n]*|#[^\n]*|/\*(?!M?!).*?\*/", re.S)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.|'')*+'|\"(?:[^\"\\]|\\.|\"\")*+\"", re.S)
_QUOTED = re.compile(rf"{_STRINGS.pattern}|`(?:[^`]|``)*+`", re.S)
_WORDS = re.compile(r"[A-Za-z_]+")
_IDENT = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_QNAME = rf"(?:(?P<db>{_IDENT})\s*\.\s*)?(?P<name>{_IDENT})"
_FLAGS = re.IGNORECASE | re.DOTALL

_DDL_VERBS = {"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE", "GRANT", "REVOKE"}
_DML_VERBS = {"INSERT", "UPDATE", "DELETE", "REPLACE", "LOAD", "MERGE"}
_UNKNOWN_VERBS = {"CALL", "DO", "PREPARE", "EXECUTE", "DEALLOCATE", "WITH", "HANDLER", "BINLOG", "VALUES", "TABLE"}
_COMPOUND = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:AGGREGATE\s+)?"
                       r"(?:PROCEDURE|FUNCTION|TRIGGER|EVENT|PACKAGE)\b", _FLAGS)

REFUSALS = {
    "LOCK": "LOCK TABLES is not supported: every statement commits with its marker in a transaction, which "
            "releases table locks (and the marker table is not in the lock list); the services are stopped during "
            "startup_pre_process, so there is no writer to lock out — remove LOCK/UNLOCK TABLES",
    "AUTOCOMMIT": "SET autocommit = 0 is not supported: statements would stay uncommitted between the engine's own "
                  "commits; write the unit as START TRANSACTION … COMMIT instead",
    "TEMPORARY": "temporary tables are not supported: a temporary table does not survive a resume or a reconnect, "
                 "so the statements after it would fail; use a regular work table and drop it at the end",
    "XA": "XA transactions are not supported in upgrade scripts",
}


@dataclass(frozen=True)
class StatementKind:
    """The effective kind of one statement."""

    kind: str
    verb: str
    targets: tuple[str, ...] = ()  # the variables to read back after it (``@v``, ``@@SESSION.x``)
    refusal: str = ""

    def __str__(self) -> str:
        return self.kind


def plain(text: str) -> str:
    """The statement with comments removed, conditional comments unwrapped and quoted text kept."""
    out: list[str] = []
    pos = 0
    # quoted text may hold comment markers: walk quotes and comments in one pass
    pattern = re.compile(rf"{_QUOTED.pattern}|{_CONDITIONAL.pattern}|{_COMMENT.pattern}", re.S)
    for m in pattern.finditer(text):
        out.append(text[pos:m.start()])
        token = m.group(0)
        if token[0] in "'\"`":
            out.append(token)
        elif token.startswith("/*") and _CONDITIONAL.fullmatch(token):
            out.append(" " + plain(_CONDITIONAL.fullmatch(token).group(1)) + " ")  # type: ignore[union-attr]
        else:
            out.append(" ")
        pos = m.end()
    out.append(text[pos:])
    return "".join(out).strip()


def _unquoted(text: str) -> str:
    """String literals replaced by a placeholder, so that keywords inside strings are not seen."""
    return _STRINGS.sub("''", text)


def statement_kind(text: str, *, is_use: bool = False) -> StatementKind:
    """Classify one statement as the server will run it."""
    if is_use:
        return StatementKind(USE, "USE")
    sql = plain(text).lstrip("( \t\r\n")
    bare = _unquoted(sql)
    words = [w.upper() for w in _WORDS.findall(bare[:200])]
    if not words:
        return StatementKind(OTHER, "")
    verb = words[0]
    if ";" in bare and _several(sql):
        return _refused_inside(sql) or StatementKind(UNKNOWN, verb)
    if verb == "SET":
        return _set_kind(sql, bare, words)
    if verb == "USE":  # sent as a query when the name holds the delimiter
        return StatementKind(SESSION, verb)
    if verb in ("START", "BEGIN"):
        if verb == "BEGIN" and (len(words) == 1 or words[1:2] == ["WORK"]):
            return StatementKind(TXN_BEGIN, "BEGIN")
        if verb == "START" and words[1:2] == ["TRANSACTION"]:
            return StatementKind(TXN_BEGIN, "START TRANSACTION")
        return StatementKind(UNKNOWN, verb)  # BEGIN NOT ATOMIC …: an anonymous compound statement
    if verb in ("COMMIT", "ROLLBACK"):
        if verb == "ROLLBACK" and "TO" in words[1:3]:
            return StatementKind(SAVEPOINT, verb)
        return StatementKind(TXN_END, verb)
    if verb == "SAVEPOINT" or (verb == "RELEASE" and words[1:2] == ["SAVEPOINT"]):
        return StatementKind(SAVEPOINT, verb)
    if verb in ("LOCK", "UNLOCK") and words[1:2] in (["TABLES"], ["TABLE"]):
        return StatementKind(REFUSED, verb, refusal=REFUSALS["LOCK"])
    if verb == "XA":
        return StatementKind(REFUSED, verb, refusal=REFUSALS["XA"])
    if verb in ("CREATE", "DROP") and "TEMPORARY" in words[1:4]:
        return StatementKind(REFUSED, verb, refusal=REFUSALS["TEMPORARY"])
    if verb in _DDL_VERBS:
        return StatementKind(DDL, verb)
    if verb in _DML_VERBS:  # ``@v := …`` inside DML: the values it leaves are recorded for resume
        return StatementKind(DML, verb, targets=tuple(dict.fromkeys(re.findall(r"(@[\w$.]+)\s*:=", bare))))
    if verb in _UNKNOWN_VERBS:
        return StatementKind(UNKNOWN, verb)
    if verb == "SELECT":
        targets = _select_targets(bare)
        if targets:
            return StatementKind(SESSION_RECORD, verb, targets=targets)
    return StatementKind(OTHER, verb)


def classify(text: str) -> str:
    """Just the kind's name (``DDL``, ``DML``, ``SESSION``, …)."""
    return statement_kind(text).kind


def _refused_inside(sql: str) -> StatementKind | None:
    """A refused statement among those of a DELIMITER block (``a; LOCK TABLES t WRITE; b``), refused the same.

    After a stored program's definition only LOCK/UNLOCK TABLES counts: it is not allowed inside one, so it
    is surely a statement of its own; ``CREATE TEMPORARY TABLE`` may be part of a body the split cut.
    """
    compound = _COMPOUND.match(sql) is not None
    for piece in sqlparse.split(sql):
        found = statement_kind(piece.strip().rstrip(";"))
        if found.kind == REFUSED and (not compound or found.verb in ("LOCK", "UNLOCK")):
            return found
    return None


def _several(sql: str) -> bool:
    """Whether a block holds more than one statement (a stored program's body counts as one)."""
    pieces = [p for p in sqlparse.split(sql) if p.strip().strip(";").strip()]
    if len(pieces) <= 1:
        return False
    if _COMPOUND.match(sql):
        # sqlparse cuts some bodies early (REPEAT … UNTIL … END REPEAT): a stray END is not a statement
        return any(not re.match(r"END\b", p.strip(), re.I) for p in pieces[1:])
    return True


_SET_SCOPE = re.compile(r"^(?:(?P<scope>GLOBAL|SESSION|LOCAL)\s+|@@(?P<sysscope>GLOBAL|SESSION|LOCAL)\.|@@)?"
                        r"(?P<name>[A-Za-z_][\w$.]*)\s*(?::=|=)\s*(?P<value>.*)$", _FLAGS)
_USER_VAR = re.compile(r"^@(?P<name>`(?:[^`]|``)+`|'(?:[^']|'')+'|\"(?:[^\"]|\"\")+\"|[\w$.]+)\s*(?::=|=)\s*"
                       r"(?P<value>.*)$", _FLAGS)
_CALL = re.compile(r"\b[A-Za-z_][\w$]*\s*\(")
_LITERAL_WORDS = {"ON", "OFF", "TRUE", "FALSE", "NULL", "DEFAULT", "ALL"}


def _set_kind(sql: str, bare: str, words: list[str]) -> StatementKind:
    second = words[1] if len(words) > 1 else ""
    if second == "STATEMENT":
        m = re.search(r"\bFOR\b", bare, re.I)
        if m is None:
            return StatementKind(OTHER, "SET")
        inner = statement_kind(sql[m.end():])
        return StatementKind(inner.kind, inner.verb, inner.targets, inner.refusal)
    if second in ("NAMES", "CHARACTER", "CHARSET", "ROLE", "TRANSACTION") or \
            (second in ("SESSION", "LOCAL") and words[2:3] == ["TRANSACTION"]):
        return StatementKind(SESSION, "SET")
    if second in ("PASSWORD", "DEFAULT", "GLOBAL") or re.match(r"SET\s+@@GLOBAL\.", bare, re.I):
        return StatementKind(OTHER, "SET")
    targets: list[str] = []
    record = False
    for assignment in top_level_commas(sql[3:].strip()):
        user = _USER_VAR.match(assignment)
        m = None if user else _SET_SCOPE.match(assignment)
        if user is None and m is None:
            return StatementKind(OTHER, "SET")
        if m is not None:
            scope = (m["scope"] or m["sysscope"] or "SESSION").upper()
            if scope == "GLOBAL":
                return StatementKind(OTHER, "SET")
            name = m["name"]
            if name.lower() == "autocommit" and _unquoted(m["value"]).strip().upper() in ("0", "OFF", "FALSE"):
                return StatementKind(REFUSED, "SET", refusal=REFUSALS["AUTOCOMMIT"])
            target, value = f"@@SESSION.{name}", m["value"]
        else:
            assert user is not None
            target, value = f"@{user['name']}", user["value"]
        targets.append(target)
        record = record or not _pure(value)
    if record:
        return StatementKind(SESSION_RECORD, "SET", targets=tuple(targets))
    return StatementKind(SESSION, "SET")


def _pure(value: str) -> bool:
    """A value the same session state always gives again: literals, variables, operators (no query, no call)."""
    bare = _unquoted(value)
    if re.search(r"\bSELECT\b", bare, re.I):
        return False
    return _CALL.search(bare) is None


def _select_targets(bare: str) -> tuple[str, ...]:
    """User variables a SELECT assigns (``SELECT @v := …``, ``SELECT … INTO @a, @b``)."""
    assigned = re.findall(r"(@[\w$.]+)\s*:=", bare)
    into = re.search(r"\bINTO\s+(@[\w$.]+(?:\s*,\s*@[\w$.]+)*)", bare, re.I)
    if into:
        assigned += [v.strip() for v in into.group(1).split(",")]
    return tuple(dict.fromkeys(assigned))


def outside_quotes(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """Each character outside quotes, with the parenthesis depth after it: the one scanner behind top-level
    commas and closing parentheses (a backslash escapes inside '…' and "…", never inside `…`)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        else:
            depth += (ch == "(") - (ch == ")")
            yield i, ch, depth
        i += 1


def top_level_commas(text: str) -> list[str]:
    """Split at commas outside quotes and parentheses."""
    out, start = [], 0
    for i, ch, depth in outside_quotes(text):
        if ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    out.append(text[start:].strip())
    return [p for p in out if p]


def dml_tables(text: str) -> list[tuple[str | None, str]] | None:
    """The tables a DML statement writes (and, for joins, reads); None when they cannot be told apart."""
    sql = _unquoted(plain(text))
    m = re.search(r"\bFOR\b", sql, re.I) if re.match(r"SET\s+STATEMENT\b", sql, re.I) else None
    if m:
        sql = sql[m.end():].strip()
    m = re.match(rf"(?:INSERT|REPLACE)\s+(?:(?:LOW_PRIORITY|DELAYED|HIGH_PRIORITY|IGNORE)\s+)*(?:INTO\s+)?{_QNAME}",
                 sql, _FLAGS)
    if m:
        return [_name(m)]
    m = re.match(rf"LOAD\s+(?:DATA|XML)\b.*?\bINTO\s+TABLE\s+{_QNAME}", sql, _FLAGS)
    if m:
        return [_name(m)]
    m = re.match(r"UPDATE\s+(?:(?:LOW_PRIORITY|IGNORE)\s+)*(?P<refs>.+?)\s+SET\s", sql, _FLAGS)
    if m:
        return _references(m["refs"])
    m = re.match(r"DELETE\s+(?:(?:LOW_PRIORITY|QUICK|IGNORE)\s+)*(?P<head>.*?)\bFROM\s+(?P<refs>.+?)"
                 r"(?:\s+(?:WHERE|ORDER|LIMIT|RETURNING)\b.*)?$", sql, _FLAGS)
    if m:
        names = _references(m["refs"].split(" USING ")[0]) if m["refs"] else None
        head = _references(m["head"]) if m["head"].strip() else []
        using = re.search(r"\bUSING\s+(?P<refs>.+?)(?:\s+WHERE\b.*)?$", m["refs"], _FLAGS)
        extra = _references(using["refs"]) if using else []
        if names is None or head is None or extra is None:
            return None
        return list(dict.fromkeys([*head, *names, *extra]))
    return None


def _name(m: re.Match[str]) -> tuple[str | None, str]:
    return _unquote(m["db"]), _unquote(m["name"]) or ""


def _unquote(ident: str | None) -> str | None:
    if ident is None:
        return None
    return ident[1:-1].replace("``", "`") if ident.startswith("`") else ident


_JOIN = re.compile(r"\b(?:(?:NATURAL\s+)?(?:LEFT|RIGHT|INNER|CROSS|STRAIGHT_JOIN|OUTER)\s+)*(?:JOIN|STRAIGHT_JOIN)\b",
                   re.I)


def _references(refs: str) -> list[tuple[str | None, str]] | None:
    """Table names of a table-references list (joins and commas; ON/USING conditions and aliases dropped)."""
    if "(" in refs:
        return None  # derived tables or parenthesised joins: not worth guessing
    names = []
    for part in _JOIN.split(refs):
        for item in part.split(","):
            item = re.split(r"\b(?:ON|USING)\b", item, maxsplit=1, flags=re.I)[0].strip()
            if not item:
                continue
            m = re.match(rf"{_QNAME}(?:\s+(?:AS\s+)?{_IDENT})?\s*$", item, _FLAGS)
            if m is None:
                return None
            names.append(_name(m))
    return names or None


_DDL_TABLE = re.compile(rf"(?:CREATE|ALTER|DROP|TRUNCATE)\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?"
                        rf"(?:(?:ONLINE|IGNORE)\s+)*TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?(?P<list>{_QNAME}(?:\s*,\s*{_IDENT}(?:\s*\.\s*{_IDENT})?)*)",
                        _FLAGS)
_INDEX_ON = re.compile(rf"(?:CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:(?:UNIQUE|FULLTEXT|SPATIAL)\s+)?INDEX\s+"
                       rf"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?{_IDENT}\s+ON\s+{_QNAME}", _FLAGS)
_NO_TABLE = re.compile(r"(?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?"
                       r"(?:SQL\s+SECURITY\s+\w+\s+)?(?:ALGORITHM\s*=\s*\w+\s+)?"
                       r"(?:PROCEDURE|FUNCTION|VIEW|TRIGGER|EVENT|USER|ROLE|SEQUENCE|SERVER)\b", _FLAGS)


def ddl_tables(text: str) -> list[tuple[str | None, str]] | None:
    """The tables whose storage engine a DDL statement may change ([] for none); None when it cannot be told."""
    sql = plain(text)
    m = _DDL_TABLE.match(sql)
    if m:
        names = []
        for item in m["list"].split(","):
            parts = [p.strip() for p in item.split(".")]
            names.append((_unquote(parts[0]), _unquote(parts[1]) or "") if len(parts) == 2
                         else (None, _unquote(parts[0]) or ""))
        return names
    m = _INDEX_ON.match(sql)
    if m:
        return [_name(m)]
    m = re.match(r"RENAME\s+TABLES?\s+(?P<pairs>.+)$", sql, _FLAGS)
    if m:
        names = re.findall(rf"({_IDENT})(?:\s*\.\s*({_IDENT}))?", _unquoted(m["pairs"]).replace(" TO ", ","))
        return [(_unquote(a), _unquote(b) or "") if b else (None, _unquote(a) or "") for a, b in names
                if a.upper() != "TO"]
    if _NO_TABLE.match(sql):
        return []
    return None


def engine_changes(text: str) -> list[tuple[str | None, str]] | None:
    """The tables whose storage engine a DDL statement may change: created, dropped, renamed, or altered
    with ``ENGINE=`` ([] for an ALTER that adds a column or an index); None when it cannot be told."""
    tables = ddl_tables(text)
    if tables is None:
        return None
    sql = _unquoted(plain(text))
    if re.match(r"(?:ALTER\s+(?:(?:ONLINE|IGNORE)\s+)*TABLE|(?:CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?"
                r"(?:(?:UNIQUE|FULLTEXT|SPATIAL)\s+)?INDEX|TRUNCATE)\b", sql, _FLAGS) \
            and not re.search(r"\bENGINE\s*=", sql, re.I):
        return []
    return tables


def called_names(text: str) -> set[str]:
    """Lower-case names written as calls (``f(``, ``db.f(``): stored functions among them may write."""
    return {m.lower() for m in re.findall(r"\b([A-Za-z_][\w$]*)\s*\(", _unquoted(plain(text)).replace("`", ""))}
