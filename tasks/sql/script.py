"""Loading SQL scripts: the thin I/O shell around the pure splitter.

A path from a config must stay inside the SQL root; the file must be UTF-8; every statement's
logical database must be one the step may use. All of this is checked before anything runs, and every
problem is reported (not only the first of a file).

``SOURCE name`` / ``\\. name`` include another file as the client does (its statements in place, the
delimiter carried over): the name is resolved against the including file's folder and must stay inside
the SQL root. The client resolves it against the folder it runs in; a chain run from the main file's
folder reads the same files, and where a nested include would read another existing file that way, it
is refused as ambiguous rather than guessed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tasks.core.errors import SqlScriptError
from tasks.sql import kinds as k
from tasks.sql.kinds import StatementKind, statement_kind
from tasks.sql.splitter import Include, SqlSplitError, Statement, decode_sql_bytes, split_script


@dataclass(frozen=True)
class ScriptFile:
    """One script, split: ``file_id`` ties ledger rows to this file of this version.

    Statements of the files it includes (``SOURCE``) are in ``statements`` in place, each naming its own
    file and line (``Statement.where``); ``sequence`` counts across them, so resume and the edit check
    cover included files like the main one.
    """

    path: str
    file_id: str
    statements: tuple[Statement, ...]
    kinds: tuple[str, ...]
    sha256: str = ""  # of the file's bytes, and of the files it includes: what a site records as applied
    details: tuple[StatementKind, ...] = ()
    units: tuple[tuple[int, int], ...] = ()  # index ranges [begin, end] of the script's own transactions
    includes: tuple[str, ...] = ()  # files included (paths relative to the SQL root), in the order read

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


@dataclass
class _IncludeReader:
    """The splitter's include resolver: reads ``SOURCE``d files under the SQL root, remembering their bytes."""

    root: Path
    main: str
    files: list[tuple[str, bytes]] = field(default_factory=list)
    problems: list[SqlSplitError] = field(default_factory=list)

    def __call__(self, request: Include) -> tuple[str, str]:
        name = request.name
        if name.startswith("~") or PurePosixPath(name).is_absolute() or Path(name).is_absolute():
            raise request.error(f"SOURCE {name}: an included file is named relative to the including file's folder "
                                "(absolute paths and ~ are refused)")
        folder = PurePosixPath(request.file).parent
        path = (self.root / folder / name).resolve()
        if path != self.root and self.root not in path.parents:
            raise request.error(f"SOURCE {name}: leaves the SQL root {self.root} (included files stay inside it)")
        relative = path.relative_to(self.root).as_posix()
        # the client reads names against the folder it runs in (the main file's, for a chain run from there)
        client = (self.root / PurePosixPath(self.main).parent / name).resolve()
        if client != path and client.is_file():
            client_name = client.relative_to(self.root).as_posix() if self.root in client.parents else str(client)
            how = ("would read another file" if path.is_file() else "would read it, but it is named relative to "
                   "the including file's folder")
            raise request.error(f"SOURCE {name}: ambiguous: {relative} here (against {folder.as_posix() or '.'}/), "
                                f"while the client run from {PurePosixPath(self.main).parent.as_posix() or '.'}/ "
                                f"{how}: {client_name}; name the file so both read the same one")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise request.error(f"SOURCE {name}: {relative} not found (names are relative to the including "
                                f"file's folder, {folder.as_posix() or '.'}/)") from None
        except OSError as exc:
            raise request.error(f"SOURCE {name}: cannot read {relative}: {exc.strerror}") from None
        self.files.append((relative, data))
        text, problem = _decode(data, relative, (*request.via, (request.file, request.line)))
        if problem is not None:
            self.problems.append(problem)
        return relative, text


def _decode(data: bytes, source: str, via: tuple[tuple[str, int], ...] = ()) -> tuple[str, SqlSplitError | None]:
    """The script's text; a non-UTF-8 byte is a problem, and the rest is still split (to find the others)."""
    try:
        return decode_sql_bytes(data, source=source), None
    except SqlSplitError as exc:
        problem = SqlSplitError(exc.file, exc.line, exc.reason, exc.column, via)
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace"), problem


def _in_order(found: SqlSplitError | Statement) -> tuple[int, ...]:
    """Where a problem or a statement comes in the script as run: the lines of its SOURCE chain, then its own."""
    return (*(line for _, line in found.via), found.line)


@dataclass(frozen=True)
class _Tree:
    """A script and the files it includes, split, with every problem found on the way."""

    statements: list[Statement]
    problems: list[SqlSplitError]
    sha256: str
    includes: tuple[str, ...]


def _read_tree(sql_root: Path, relative: str, default_database: str, known_databases: frozenset[str] | None) -> _Tree:
    path = resolve_script_path(sql_root, relative)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SqlScriptError(f"{relative}: SQL script not found under {sql_root}") from None
    except OSError as exc:
        raise SqlScriptError(f"{relative}: cannot read: {exc.strerror}") from None
    text, problem = _decode(data, relative)
    reader = _IncludeReader(sql_root.resolve(), relative)
    found = split_script(text, source=relative, default_database=default_database, known_databases=known_databases,
                         include=reader)
    problems = sorted(([problem] if problem else []) + found.problems + reader.problems, key=_in_order)
    digest = hashlib.sha256(data)
    for name, included in reader.files:  # an included file edited after the site applied the script is drift too
        digest.update(b"\0SOURCE " + name.encode() + b"\0" + included)
    return _Tree(found.statements, problems, digest.hexdigest(), tuple(name for name, _ in reader.files))


_MAY_INCLUDE = re.compile(rb"source|\\\.", re.I)


def script_sha256(sql_root: Path, relative: str) -> str | None:
    """The SHA-256 a site records for an applied script (its bytes and its included files'); None if unreadable."""
    try:
        data = resolve_script_path(sql_root, relative).read_bytes()
    except (OSError, SqlScriptError):
        return None
    if not _MAY_INCLUDE.search(data):
        return hashlib.sha256(data).hexdigest()
    try:
        return _read_tree(sql_root, relative, "ft_db", None).sha256
    except SqlScriptError:
        return None


def load_script(sql_root: Path, relative: str, *, version: str, default_database: str,
                known_databases: frozenset[str] | None = None) -> ScriptFile:
    """Read and split one script and the files it includes.

    Raises:
        SqlScriptError: every problem, one ``file:line: why`` a line (``problems`` lists them).
    """
    tree = _read_tree(sql_root, relative, default_database, known_databases)
    statements = tree.statements
    details = tuple(statement_kind(s.text, is_use=s.is_use) for s in statements)
    refused = [(s, d.refusal) for s, d in zip(statements, details, strict=True) if d.kind == k.REFUSED]
    problems = [str(found) for _, found in sorted([(_in_order(e), e) for e in tree.problems] +
                                                  [(_in_order(s), f"{s.where}: {why}") for s, why in refused],
                                                  key=lambda pair: pair[0])]
    units, unit_problems = transaction_units(relative, statements, details)
    if problems or unit_problems:
        raise SqlScriptError("\n".join([*problems, *unit_problems]), problems=[*problems, *unit_problems])
    return ScriptFile(path=relative, file_id=file_id_for(relative, version), statements=tuple(statements),
                      kinds=tuple(d.kind for d in details), sha256=tree.sha256, details=details, units=tuple(units),
                      includes=tree.includes)


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
                problems.append(f"{stmt.where}: {detail.verb} inside the transaction opened at "
                                f"{_line_of(statements[begin], stmt)} commits it implicitly; end that transaction "
                                "first")
            begin = i
        elif detail.kind == k.TXN_END and begin is not None:
            units.append((begin, i))
            begin = None
        elif begin is not None:
            opened = _line_of(statements[begin], stmt)
            if detail.kind not in _IN_UNIT:
                problems.append(f"{stmt.where}: {detail.verb or 'this statement'} inside the transaction "
                                f"opened at {opened} would commit it implicitly; move it out of the transaction")
            elif stmt.database != statements[begin].database:
                problems.append(f"{stmt.where}: the transaction opened at {opened} is on {statements[begin].database}, "
                                f"this statement on {stmt.database}: one transaction cannot span two connections")
    if begin is not None:
        problems.append(f"{statements[begin].where}: transaction opened here is never committed or rolled back in "
                        f"{relative}")
    return units, problems


def _line_of(stmt: Statement, seen_from: Statement) -> str:
    """``line N`` in the same file, else the statement's full place (another file of the SOURCE chain)."""
    same = (stmt.file, stmt.via) == (seen_from.file, seen_from.via)
    return f"line {stmt.line}" if same else stmt.where
