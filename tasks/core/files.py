"""Private files and folders: backups and config copies hold customer data and credentials.

The modes are set explicitly (``os.open`` with a mode, then ``fchmod``/``chmod``), so the process's
umask never decides who can read a backup. With a group (setting ``backup_group``) files are ``0640``
and folders ``0750``, owned by that group, so an operator's group may read them; else ``0600``/``0700``.
"""

from __future__ import annotations

import grp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class Private:
    """Who may read what we write: the owner only, or the owner and ``group``."""

    group: str | None = None

    @property
    def file_mode(self) -> int:
        return 0o640 if self.group else 0o600

    @property
    def dir_mode(self) -> int:
        return 0o750 if self.group else 0o700

    def mkdir(self, path: Path) -> Path:
        """Create ``path`` and its missing parents, each created one private; existing folders are left alone."""
        gid = self._gid()
        missing = [p for p in (path, *path.parents) if not p.exists()]
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=self.dir_mode)  # never wider than the mode, even before the chmod
            except FileExistsError:
                continue
            self._own(folder, self.dir_mode, gid)
        return path

    def open(self, path: Path, mode: str = "wb", **kwargs: Any) -> IO[Any]:
        """Open ``path`` for writing (``wb``, ``w``, ``xb``…), created or truncated with the private mode."""
        gid = self._gid()
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if "x" in mode else os.O_TRUNC)
        fd = os.open(path, flags, self.file_mode)
        try:
            self._own(fd, self.file_mode, gid)
            return os.fdopen(fd, mode.replace("x", "w"), **kwargs)
        except BaseException:
            os.close(fd)
            raise

    def write_text(self, path: Path, text: str) -> None:
        with self.open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    def _gid(self) -> int | None:
        return group_id(self.group) if self.group else None

    @staticmethod
    def _own(target: Path | int, mode: int, gid: int | None) -> None:
        if gid is not None:
            os.chown(target, -1, gid)
        os.chmod(target, mode)


def group_id(group: str) -> int:
    """A group name or number; an unknown one is a ``ValueError`` naming it (a setting to fix)."""
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ValueError(f"unknown group {group!r} (setting FT_UPGRADE_BACKUP_GROUP)") from None

