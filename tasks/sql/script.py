"""Loading SQL scripts: the thin I/O shell around the pure splitter.

A path from a config must stay inside the SQL root; the file must be UTF-8; every statement's
logical database must be one the step may use. All of this is checked before anything runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tasks.core.errors import SqlScriptError
from tasks.sql import kinds as k
from tasks.sql.kinds import StatementKind, statement_kind
from tasks.sql.splitter import SqlSplitError, Statement, decode_sql_bytes, split_statements


@dataclass(frozen=True)
class ScriptFile:
    """One script, split: ``file_id`` ties ledger rows to this file of this version."""

    path: str
    file_id: str
    statements: tuple[Statement, ...]
    kinds: tuple[str, ...]
    sha256: str = ""  # of the file's bytes: what a site records as applied
    details: tuple[StatementKind, ...] = ()
    units: tuple[tuple[int, int], ...] = ()  # index ranges [begin, end] of the script's own transactions

    def unit_at(self, index: int) -> tuple[int, int] | None:
        """The script transaction that starts at ``index`` (START TRANSACTION … COMMIT), if any."""
        return next((u for u in self.units if u[0] == index), None)

    @property
    def databases(self) -> set[str]:
        return {s.database for s in self.statements}


def resolve_script_path(sql_root: Path, relative: str) -> Path:
    """``sql_root / relative``, refusing absolute paths and anything that leaves the root."""
    if Path(relative).is_absolute():
        raise SqlScriptError(f"{relative}: SQL script paths are relative to the SQL root")
    root = sql_root.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise SqlScriptError(f"{relative}: path leaves the SQL root {root}")
    return path


def file_id_for(relative: str, version: str) -> str:
    """The requirements' SQL file id: MD5 of file name and version."""
    return hashlib.md5(f"{relative}@{version}".encode(), usedforsecurity=False).hexdigest()


def load_script(sql_root: Path, relative: str, *, version: str, default_database: str,
                known_databases: frozenset[str] | None = None) -> ScriptFile:
    """Read and split one script; raises :class:`SqlScriptError` naming file:line."""
    path = resolve_script_path(sql_root, relative)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SqlScriptError(f"{relative}: SQL script not found under {sql_root}") from None
    except OSError as exc:
        raise SqlScriptError(f"{relative}: cannot read: {exc.strerror}") from None
    try:
        text = decode_sql_bytes(data, source=relative)
        statements = split_statements(text, source=relative, default_database=default_database,
                                      known_databases=known_databases)
    except SqlSplitError as exc:
        raise SqlScriptError(str(exc)) from None
    details = tuple(statement_kind(s.text, is_use=s.is_use) for s in statements)
    problems = [f"{relative}:{s.line}: {d.refusal}" for s, d in zip(statements, details, strict=True)
                if d.kind == k.REFUSED]
    units, unit_problems = transaction_units(relative, statements, details)
    if problems or unit_problems:
        raise SqlScriptError("\n".join([*problems, *unit_problems]))
    return ScriptFile(path=relative, file_id=file_id_for(relative, version), statements=tuple(statements),
                      kinds=tuple(d.kind for d in details), sha256=hashlib.sha256(data).hexdigest(),
                      details=details, units=tuple(units))


#: What a script's own transaction may hold: statements that do not commit it implicitly.
_IN_UNIT = (k.DML, k.SESSION, k.SESSION_RECORD, k.SAVEPOINT, k.USE, k.OTHER)


def transaction_units(relative: str, statements: list[Statement],
                      details: tuple[StatementKind, ...]) -> tuple[list[tuple[int, int]], list[str]]:
    """The script's own ``START TRANSACTION … COMMIT|ROLLBACK`` ranges, and why any cannot run as one unit.

    A unit runs as the mysql client runs it — one transaction on one database, committed (or rolled
    back) by the script — and counts as one step for resume. DDL, CALL and the like inside it would
    commit it implicitly, so they are refused, as is a transaction left open at the end of the file.
    """
    units: list[tuple[int, int]] = []
    problems: list[str] = []
    begin: int | None = None
    for i, (stmt, detail) in enumerate(zip(statements, details, strict=True)):
        if detail.kind == k.TXN_BEGIN:
            if begin is not None:
                problems.append(f"{relative}:{stmt.line}: {detail.verb} inside the transaction opened at line "
                                f"{statements[begin].line} commits it implicitly; end that transaction first")
            begin = i
        elif detail.kind == k.TXN_END and begin is not None:
            units.append((begin, i))
            begin = None
        elif begin is not None:
            if detail.kind not in _IN_UNIT:
                problems.append(f"{relative}:{stmt.line}: {detail.verb or 'this statement'} inside the transaction "
                                f"opened at line {statements[begin].line} would commit it implicitly; move it out "
                                "of the transaction")
            elif stmt.database != statements[begin].database:
                problems.append(f"{relative}:{stmt.line}: the transaction opened at line {statements[begin].line} "
                                f"is on {statements[begin].database}, this statement on {stmt.database}: one "
                                "transaction cannot span two connections")
    if begin is not None:
        problems.append(f"{relative}:{statements[begin].line}: transaction opened here is never committed or rolled "
                        "back in this file")
    return units, problems
