"""Removing files and trees one entry at a time: what cannot be removed is skipped and reported, the rest goes on.

Symbolic links are removed as links and never followed, so a link inside a cleaned folder cannot
lead the cleanup outside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Skipped:
    """An entry left in place, and why (the OS error, as the operator would see it)."""

    path: str
    reason: str


@dataclass
class Freed:
    """What a cleanup removed: files, folders, bytes; and what it had to skip."""

    files: int = 0
    dirs: int = 0
    bytes: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    def add(self, other: Freed) -> Freed:
        self.files += other.files
        self.dirs += other.dirs
        self.bytes += other.bytes
        self.skipped.extend(other.skipped)
        return self

    def skip(self, path: Path | str, exc: OSError | str) -> None:
        reason = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        self.skipped.append(Skipped(str(path), reason))

    def to_json(self) -> dict[str, object]:
        return {"files": self.files, "dirs": self.dirs, "bytes": self.bytes,
                "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped]}


def remove_file(path: Path, freed: Freed) -> bool:
    """Unlink one file or link, counting its size; False (and a skip entry) when it stays."""
    try:
        size = path.lstat().st_size
        path.unlink()
    except FileNotFoundError:
        return True
    except OSError as exc:
        freed.skip(path, exc)
        return False
    freed.files += 1
    freed.bytes += size
    return True


def remove_tree(path: Path, freed: Freed) -> None:
    """Remove a file, a link or a whole folder, bottom-up, skipping what cannot go."""
    if path.is_symlink() or not path.is_dir():
        remove_file(path, freed)
        return
    for root, dirs, files in os.walk(path, topdown=False, onerror=lambda e: freed.skip(e.filename, e)):
        for name in files:
            remove_file(Path(root, name), freed)
        for name in dirs:
            child = Path(root, name)
            if child.is_symlink():
                remove_file(child, freed)
            else:
                _remove_dir(child, freed)
    _remove_dir(path, freed)


def remove_contents(folder: Path, freed: Freed) -> None:
    """Empty a folder but keep it (a staging folder the site profile names)."""
    try:
        children = sorted(folder.iterdir())
    except FileNotFoundError:
        return
    except OSError as exc:
        freed.skip(folder, exc)
        return
    for child in children:
        remove_tree(child, freed)


def _remove_dir(path: Path, freed: Freed) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        return
    except OSError as exc:
        if not any(s.path.startswith(str(path) + os.sep) for s in freed.skipped):
            freed.skip(path, exc)  # a folder left because of a skipped child is reported once, by the child
        return
    freed.dirs += 1
