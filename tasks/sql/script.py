"""Loading SQL scripts: the thin I/O shell around the pure splitter.

A path from a config must stay inside the SQL root; the file must be UTF-8; every statement's
logical database must be one the step may use. All of this is checked before anything runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import InputError
from tasks.sql.splitter import SqlSplitError, Statement, classify, decode_sql_bytes, split_statements


class SqlScriptError(InputError):
    """A script that cannot run as written; the message names file:line."""


@dataclass(frozen=True)
class ScriptFile:
    """One script, split: ``file_id`` ties ledger rows to this file of this version."""

    path: str
    file_id: str
    statements: tuple[Statement, ...]
    kinds: tuple[str, ...]
    sha256: str = ""  # of the file's bytes: what a site records as applied

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
    kinds = tuple("USE" if s.is_use else classify(s.text) for s in statements)
    return ScriptFile(path=relative, file_id=file_id_for(relative, version), statements=tuple(statements),
                      kinds=kinds, sha256=hashlib.sha256(data).hexdigest())
