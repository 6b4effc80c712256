"""Whether a column already has the definition a ``MODIFY``/``CHANGE`` gives it, from the catalog.

A ``MODIFY`` replaces the whole definition: what it does not say is a claim too (nullable, no default,
no comment, the table's collation). So every attribute is compared: type, nullability, default,
charset and collation, comment, ``AUTO_INCREMENT`` / ``ON UPDATE``, generation, and the position a
``FIRST`` / ``AFTER`` asks for. Each comparison says *same*, *different*, or *cannot tell* (a type or
an expression the catalog may spell otherwise, an attribute this module does not read, such as an
inline key or a CHECK). One certain difference proves the statement did not take effect (an ALTER is
atomic); everything the same proves it did (or that running it again changes nothing); anything else
leaves the statement to the operator. Pure: the caller runs :data:`CATALOG_SQL` and passes its JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from tasks.sql.kinds import outside_quotes

_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")|(?P<ident>`(?:[^`]|``)+`)|"""
                    r"""(?P<paren>\()|(?P<word>[A-Za-z0-9_$.+\-]+)|(?P<sym>[=,]))""", re.S)

_ALIASES = {"integer": "int", "int1": "tinyint", "int2": "smallint", "int3": "mediumint", "int4": "int",
            "int8": "bigint", "middleint": "mediumint", "dec": "decimal", "numeric": "decimal", "fixed": "decimal",
            "real": "double", "character": "char"}
_INT_WIDTHS = {"tinyint": (4, 3), "smallint": (6, 5), "mediumint": (9, 8), "int": (11, 10), "bigint": (20, 20)}
_STRING = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
_NO_ARGS = {"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "date",
            "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
            "geometrycollection", "uuid", "inet4", "inet6"}
_FRACTIONAL = {"time", "datetime", "timestamp"}

#: One row of the catalog as JSON (a scalar, so that any probe runs the same way); ``%s`` placeholders:
#: the declared charset, then the schema (or ``DATABASE()``), table and column.
CATALOG_SQL = (
    "SELECT JSON_OBJECT('type', c.COLUMN_TYPE, 'nullable', c.IS_NULLABLE, 'default', c.COLUMN_DEFAULT, "
    "'collation', c.COLLATION_NAME, 'comment', c.COLUMN_COMMENT, 'extra', c.EXTRA, "
    "'generation', c.GENERATION_EXPRESSION, 'position', c.ORDINAL_POSITION, 'key', c.COLUMN_KEY, "
    "'previous', (SELECT p.COLUMN_NAME FROM information_schema.COLUMNS p WHERE p.TABLE_SCHEMA = c.TABLE_SCHEMA "
    "AND p.TABLE_NAME = c.TABLE_NAME AND p.ORDINAL_POSITION = c.ORDINAL_POSITION - 1), "
    "'table_collation', (SELECT t.TABLE_COLLATION FROM information_schema.TABLES t WHERE "
    "t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME), "
    "'charset_collation', (SELECT s.DEFAULT_COLLATE_NAME FROM information_schema.CHARACTER_SETS s WHERE "
    "s.CHARACTER_SET_NAME = %s)) "
    "FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = {schema} AND c.TABLE_NAME = %s AND c.COLUMN_NAME = %s")


@dataclass(frozen=True)
class ColumnType:
    name: str
    args: tuple[str, ...] | None  # None: no parentheses
    flags: tuple[str, ...] = ()  # unsigned, zerofill


@dataclass(frozen=True)
class ColumnSpec:
    """What a column definition says; ``unreadable`` names what this module cannot check (→ in doubt)."""

    type: ColumnType | None
    nullable: bool | None = None  # None: not said
    default: str | None = None  # the literal as written (quoted when a string), None: not said
    charset: str | None = None
    collation: str | None = None
    comment: str = ""
    auto_increment: bool = False
    on_update: bool = False
    generation: str | None = None
    stored: bool = False
    first: bool = False
    after: str | None = None
    unreadable: str = ""


def _tokens(text: str) -> list[tuple[str, str]] | None:
    """(kind, text) tokens; a parenthesised group is one token holding its balanced text; None: unreadable."""
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            return None
        kind = m.lastgroup or ""
        if kind == "paren":
            end = _closing(text, m.end() - 1)
            if end < 0:
                return None
            out.append(("paren", text[m.end():end]))
            pos = end + 1
            continue
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _closing(text: str, start: int) -> int:
    """The parenthesis closing the one at ``start``; -1 when it is not closed."""
    return next((i for i, ch, depth in outside_quotes(text, start) if ch == ")" and depth == 0), -1)


def _string_value(literal: str) -> str:
    q = literal[0]
    inner = literal[1:-1]
    inner = inner.replace(q * 2, q)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": "\0"}.get(m[1], m[1]), inner)


def _ident(token: tuple[str, str]) -> str:
    kind, text = token
    return text[1:-1].replace("``", "`") if kind == "ident" else text


def parse_type(text: str) -> ColumnType | None:
    """A type as written or as the catalog's ``COLUMN_TYPE`` spells it, in canonical form; None: unknown."""
    tokens = _tokens(text)
    if not tokens:
        return None
    ctype, rest = _type(tokens)
    return ctype if ctype is not None and not rest else None


def _type(tokens: list[tuple[str, str]]) -> tuple[ColumnType | None, list[tuple[str, str]]]:
    if tokens[0][0] != "word":
        return None, tokens
    name = tokens[0][1].lower()
    i = 1
    if name == "double" and len(tokens) > 1 and tokens[1][1].lower() == "precision":
        i = 2
    if name in ("character", "char") and len(tokens) > 1 and tokens[1][1].lower() == "varying":
        name, i = "varchar", 2
    name = _ALIASES.get(name, name)
    args: tuple[str, ...] | None = None
    if i < len(tokens) and tokens[i][0] == "paren":
        args = _args(tokens[i][1], quoted=name in ("enum", "set"))
        if args is None:
            return None, tokens
        i += 1
    flags: list[str] = []
    while i < len(tokens) and tokens[i][1].lower() in ("unsigned", "signed", "zerofill"):
        if tokens[i][1].lower() != "signed":
            flags.append(tokens[i][1].lower())
        i += 1
    if name in ("bool", "boolean"):
        name, args = "tinyint", args or ("1",)
    if "zerofill" in flags and "unsigned" not in flags:
        flags.insert(0, "unsigned")
    if name in _INT_WIDTHS:
        pass  # the width is compared leniently: MySQL 8 drops it
    elif name == "decimal":
        args = (args or ("10",)) + (("0",) if args is None or len(args) == 1 else ())
    elif name in ("char", "binary", "bit"):
        args = args or ("1",)
    elif name in ("varchar", "varbinary", "enum", "set"):
        if args is None:
            return None, tokens
    elif name in ("float", "double"):
        if args is not None and len(args) != 2:
            return None, tokens  # FLOAT(p) picks float or double
    elif name in _FRACTIONAL:
        if args == ("0",):
            args = None
    elif name == "year":
        args = None if args in (None, ("4",)) else args
    elif name not in _NO_ARGS or args is not None:
        return None, tokens
    return ColumnType(name, args, tuple(sorted(set(flags), key=flags.index))), tokens[i:]


def _args(inner: str, *, quoted: bool) -> tuple[str, ...] | None:
    tokens = _tokens(inner)
    if tokens is None:
        return None
    values = [t for t in tokens if t[1] != ","]
    if quoted:
        return tuple(_string_value(v) for k, v in values) if all(k == "str" for k, _ in values) else None
    return tuple(v for k, v in values) if all(k == "word" and v.isdigit() for k, v in values) else None


def _same_type(wanted: ColumnType, found: ColumnType) -> bool:
    if (wanted.name, wanted.flags) != (found.name, found.flags):
        return False
    if wanted.name in _INT_WIDTHS:
        width = _INT_WIDTHS[wanted.name][1 if "unsigned" in wanted.flags else 0]
        expected = wanted.args or (str(width),)
        return found.args is None or found.args == expected
    return wanted.args == found.args


def parse_definition(text: str) -> ColumnSpec:
    """The definition after the column name of a MODIFY / CHANGE / ADD clause."""
    tokens = _tokens(text)
    if not tokens:
        return ColumnSpec(None, unreadable="the definition")
    ctype, rest = _type(tokens)
    if ctype is None:
        return ColumnSpec(None, unreadable=f"the type {text.split()[0]!r}")
    spec: dict[str, object] = {}
    i = 0

    def word(at: int) -> str:
        return rest[at][1].upper() if at < len(rest) and rest[at][0] == "word" else ""

    while i < len(rest):
        w = word(i)
        if w == "NOT" and word(i + 1) == "NULL":
            spec["nullable"], i = False, i + 2
        elif w == "NULL":
            spec["nullable"], i = True, i + 1
        elif w in ("CHARACTER", "CHARSET"):
            i += 2 if w == "CHARACTER" and word(i + 1) == "SET" else 1
            if i < len(rest) and rest[i][1] == "=":
                i += 1
            if i >= len(rest):
                return ColumnSpec(ctype, unreadable="CHARACTER SET")
            spec["charset"], i = _ident(rest[i]).lower(), i + 1
        elif w == "COLLATE":
            i += 1
            if i < len(rest) and rest[i][1] == "=":
                i += 1
            if i >= len(rest):
                return ColumnSpec(ctype, unreadable="COLLATE")
            spec["collation"], i = _ident(rest[i]).lower(), i + 1
        elif w == "DEFAULT":
            if i + 1 >= len(rest) or rest[i + 1][0] not in ("str", "word"):
                return ColumnSpec(ctype, unreadable="a DEFAULT expression")
            value = rest[i + 1][1]
            i += 2
            if value.upper() in ("CURRENT_TIMESTAMP", "NOW", "LOCALTIMESTAMP", "LOCALTIME") and \
                    i < len(rest) and rest[i][0] == "paren":
                value += f"({rest[i][1]})"
                i += 1
            spec["default"] = value
        elif w == "ON" and word(i + 1) == "UPDATE":
            i += 3
            if i < len(rest) and rest[i][0] == "paren":
                i += 1
            spec["on_update"] = True
        elif w == "AUTO_INCREMENT":
            spec["auto_increment"], i = True, i + 1
        elif w == "COMMENT":
            if i + 1 >= len(rest) or rest[i + 1][0] != "str":
                return ColumnSpec(ctype, unreadable="COMMENT")
            spec["comment"], i = _string_value(rest[i + 1][1]), i + 2
        elif w in ("GENERATED", "AS"):
            i += 3 if w == "GENERATED" and word(i + 1) == "ALWAYS" and word(i + 2) == "AS" else 1
            if i >= len(rest) or rest[i][0] != "paren":
                return ColumnSpec(ctype, unreadable="a generated column")
            spec["generation"], i = rest[i][1], i + 1
            if word(i) in ("VIRTUAL", "PERSISTENT", "STORED"):
                spec["stored"], i = word(i) != "VIRTUAL", i + 1
        elif w == "FIRST":
            spec["first"], i = True, i + 1
        elif w == "AFTER" and i + 1 < len(rest):
            spec["after"], i = _ident(rest[i + 1]), i + 2
        else:
            return ColumnSpec(ctype, unreadable=" ".join(t for _, t in rest[i:i + 2]))
    return ColumnSpec(ctype, **spec)  # type: ignore[arg-type]


def compare(spec: ColumnSpec, answer: object) -> bool | None:
    """True: the column is as the definition says; False: it certainly is not; None: cannot tell."""
    if answer is None:
        return None  # no such column: a MODIFY cannot have applied, yet nothing here says what happened
    if spec.type is None or spec.unreadable:
        return None
    row = json.loads(answer) if isinstance(answer, str | bytes) else answer
    if not isinstance(row, dict):
        return None
    results = [_type_result(spec.type, row), _nullable(spec, row), _default(spec, row), _collation(spec, row),
               (row.get("comment") or "") == spec.comment,
               ("auto_increment" in (row.get("extra") or "").lower()) == spec.auto_increment,
               ("on update" in (row.get("extra") or "").lower()) == spec.on_update, _generation(spec, row),
               _position(spec, row)]
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True


def _type_result(wanted: ColumnType, row: dict[str, object]) -> bool | None:
    found = parse_type(str(row.get("type") or ""))
    return None if found is None else _same_type(wanted, found)


def _nullable(spec: ColumnSpec, row: dict[str, object]) -> bool | None:
    found = row.get("nullable") == "YES"
    if spec.nullable is not None:
        return found == spec.nullable
    if spec.type is not None and spec.type.name == "timestamp":
        return None  # explicit_defaults_for_timestamp decides
    if row.get("key") == "PRI":
        return None  # a primary key column is NOT NULL whatever is said
    return found is True


def _default(spec: ColumnSpec, row: dict[str, object]) -> bool | None:
    found = row.get("default")
    none = found is None or found == "NULL"
    if spec.default is None or spec.default.upper() == "NULL":
        return none if not (spec.type and spec.type.name == "timestamp") else (True if none else None)
    if none:
        return False
    wanted = spec.default
    text = str(found)
    if wanted[0] in "'\"":
        value = _string_value(wanted)
        shown = _string_value(text) if text[:1] == "'" and text[-1:] == "'" and len(text) >= 2 else text
        return True if shown == value else None  # '1' for an INT column: the catalog spells it 1
    if re.fullmatch(r"[-+]?\d+(?:\.\d+)?", wanted):
        shown = text.strip("'")
        try:
            return float(shown) == float(wanted)
        except ValueError:
            return None
    normal = re.sub(r"[()\s]", "", wanted.lower())
    return True if re.sub(r"[()\s]", "", text.lower()) == normal else None


def _collation(spec: ColumnSpec, row: dict[str, object]) -> bool | None:
    found = (str(row.get("collation")) if row.get("collation") is not None else "").lower()
    if spec.type is None or spec.type.name not in _STRING:
        return None if spec.charset or spec.collation else True
    if spec.collation:
        return found == spec.collation
    if spec.charset:
        wanted = str(row.get("charset_collation") or "").lower()
        return None if not wanted else (True if found == wanted else None)
    table = str(row.get("table_collation") or "").lower()
    return True if found == table else None  # a server may map the default otherwise: the operator decides


def _generation(spec: ColumnSpec, row: dict[str, object]) -> bool | None:
    found = str(row.get("generation") or "")
    extra = str(row.get("extra") or "").lower()
    if spec.generation is None:
        return not found and "generated" not in extra
    if not found:
        return False
    if ("stored" in extra or "persistent" in extra) != spec.stored:
        return False

    def normal(expr: str) -> str:
        return re.sub(r"[`\s]", "", expr).lower()

    return True if normal(found) == normal(spec.generation) else None


def _position(spec: ColumnSpec, row: dict[str, object]) -> bool | None:
    if spec.first:
        return row.get("position") == 1
    if spec.after is not None:
        return str(row.get("previous") or "").lower() == spec.after.lower()
    return True
