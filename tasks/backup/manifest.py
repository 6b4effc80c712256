"""The manifest of one backup: what was saved, how to verify it, whose upgrade it belongs to.

Written last, so a folder without ``manifest.json`` is an incomplete backup and is never listed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks.backup.schema import SchemaCatalog
from tasks.core.files import Private

MANIFEST = "manifest.json"
FORMAT = 2  # 2: ``catalogs`` (every object of each database, for the restore's comparison); 1 had none


@dataclass(frozen=True)
class TableEntry:
    """One table: its logical database, physical schema, snapshot row count and CHECKSUM TABLE value."""

    database: str
    schema: str
    table: str
    rows: int
    checksum: int | None
    create_sql: str
    file: str
    sha256: str
    bytes: int
    triggers: tuple[str, ...] = ()  # SHOW CREATE TRIGGER of each trigger on the table, in firing order

    @property
    def key(self) -> str:
        return f"{self.database}.{self.table}"


@dataclass(frozen=True)
class ViewEntry:
    """One view of a backed-up database, as SHOW CREATE VIEW gave it (restored after the tables)."""

    database: str
    view: str
    create_sql: str


@dataclass(frozen=True)
class FileEntry:
    """One configuration file: where it lived, the SHA-256 of its stored copy, its permission bits and the
    SHA-256 of its content (both None in an older backup)."""

    source: str
    file: str
    sha256: str
    bytes: int
    mode: int | None = None
    content_sha256: str | None = None


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    site_id: str
    execution_id: str
    source_version: str
    target_version: str
    created_at: str
    compression: str = "gzip"
    tables: tuple[TableEntry, ...] = ()
    files: tuple[FileEntry, ...] = ()
    views: tuple[ViewEntry, ...] = ()
    catalogs: tuple[SchemaCatalog, ...] = ()  # empty in a backup older than format 2
    duration_seconds: float = 0.0
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_bytes(self) -> int:
        return sum(t.bytes for t in self.tables) + sum(f.bytes for f in self.files)

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["tables"] = tuple(TableEntry(**{**t, "triggers": tuple(t.get("triggers", ()))})
                               for t in data.get("tables", ()))
        data["files"] = tuple(FileEntry(**f) for f in data.get("files", ()))
        data["views"] = tuple(ViewEntry(**v) for v in data.get("views", ()))
        data["catalogs"] = tuple(SchemaCatalog.from_json(c) for c in data.get("catalogs", ()))
        return cls(**data)

    def save(self, folder: Path, private: Private = Private()) -> Path:
        """Atomic: a reader sees either no manifest or the complete one; private like the backup it describes."""
        path = folder / MANIFEST
        tmp = folder / (MANIFEST + ".tmp")
        private.write_text(tmp, json.dumps(self.to_json(), ensure_ascii=False, indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        return cls.from_json(json.loads((folder / MANIFEST).read_text(encoding="utf-8")))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
