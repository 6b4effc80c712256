"""Reading zip and tar.gz packages as :class:`ArchiveEntry` lists and file streams, never extracting.

Nothing here writes to disk. Decompression is bounded: a tar.gz is read through a reader that stops
after the configured total size, so even listing a gzip bomb ends early with a rejection.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from tasks.core.errors import PackageRejected
from tasks.packages.entries import (
    MANIFEST_MAX_BYTES,
    MANIFEST_NAME,
    ArchiveEntry,
    EntryKind,
    PackageLimits,
    normalised,
    path_problem,
)

_TAR_OVERHEAD_PER_ENTRY = 3 * 512  # header, long-name / pax header, padding


@dataclass(frozen=True)
class Listing:
    """The entries of a package and the bytes of its manifest (None if absent or oversized)."""

    entries: list[ArchiveEntry]
    manifest: bytes | None


class PackageArchive(Protocol):
    path: Path
    size: int

    def listing(self) -> Listing: ...

    def files(self) -> Iterator[tuple[ArchiveEntry, IO[bytes]]]: ...


class _Bounded(io.RawIOBase):
    """A read-only stream that refuses to yield more than ``limit`` bytes (gzip bomb guard)."""

    def __init__(self, inner: IO[bytes], limit: int, package: str) -> None:
        self.inner, self.limit, self.package, self.read_bytes = inner, limit, package, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buffer))
        self.read_bytes += len(data)
        if self.read_bytes > self.limit:
            raise PackageRejected(self.package, [f"decompressed data exceeds {self.limit} bytes (gzip bomb?)"])
        buffer[: len(data)] = data
        return len(data)


class ZipPackage:
    """A zip package: the central directory gives names, kinds and both sizes without decompressing."""

    def __init__(self, path: Path, zf: zipfile.ZipFile) -> None:
        self.path, self.size, self._zf = path, path.stat().st_size, zf

    def _entry(self, info: zipfile.ZipInfo) -> ArchiveEntry:
        mode = info.external_attr >> 16
        kind = EntryKind.FILE
        target = ""
        if info.is_dir():
            kind = EntryKind.DIRECTORY
        elif info.flag_bits & 0x1:
            kind, target = EntryKind.OTHER, "encrypted"
        elif info.create_system == 3 and stat.S_IFMT(mode):  # unix file type present (often only perms are)
            if stat.S_ISLNK(mode):
                kind = EntryKind.SYMLINK
                if info.file_size <= 4096:
                    target = self._zf.read(info).decode("utf-8", "replace")
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = EntryKind.DEVICE
            elif stat.S_ISFIFO(mode):
                kind = EntryKind.FIFO
            elif not stat.S_ISREG(mode):
                kind = EntryKind.OTHER
        return ArchiveEntry(info.filename, kind, info.file_size, info.compress_size, target)

    def listing(self) -> Listing:
        entries = [self._entry(i) for i in self._zf.infolist()]
        manifest = None
        for info, entry in zip(self._zf.infolist(), entries, strict=True):
            if (entry.kind is EntryKind.FILE and path_problem(info.filename) is None
                    and normalised(info.filename) == MANIFEST_NAME and info.file_size <= MANIFEST_MAX_BYTES):
                with self._zf.open(info) as stream:
                    manifest = stream.read(MANIFEST_MAX_BYTES + 1)
                break
        return Listing(entries, manifest)

    def files(self) -> Iterator[tuple[ArchiveEntry, IO[bytes]]]:
        for info in self._zf.infolist():
            entry = self._entry(info)
            if entry.kind is EntryKind.FILE:
                with self._zf.open(info) as stream:
                    yield entry, stream


class TarGzPackage:
    """A tar.gz package, read as a stream (twice: list, then extract) through a bounded reader."""

    def __init__(self, path: Path, limits: PackageLimits) -> None:
        self.path, self.size = path, path.stat().st_size
        self._limit = limits.max_total_bytes + (limits.max_entries + 4) * _TAR_OVERHEAD_PER_ENTRY + 20 * 512

    @contextmanager
    def _members(self) -> Iterator[tarfile.TarFile]:
        with gzip.open(self.path, "rb") as raw:
            bounded = io.BufferedReader(_Bounded(raw, self._limit, self.path.name), buffer_size=1 << 20)
            with tarfile.open(fileobj=bounded, mode="r|") as tar:
                yield tar

    @staticmethod
    def _entry(member: tarfile.TarInfo) -> ArchiveEntry:
        if member.isreg() and not member.issparse():
            kind = EntryKind.FILE
        elif member.isdir():
            kind = EntryKind.DIRECTORY
        elif member.issym():
            kind = EntryKind.SYMLINK
        elif member.islnk():
            kind = EntryKind.HARDLINK
        elif member.ischr() or member.isblk():
            kind = EntryKind.DEVICE
        elif member.isfifo():
            kind = EntryKind.FIFO
        else:
            kind = EntryKind.OTHER
        return ArchiveEntry(member.name, kind, member.size, None, member.linkname)

    def listing(self) -> Listing:
        entries: list[ArchiveEntry] = []
        manifest = None
        with self._members() as tar:
            for member in tar:
                entry = self._entry(member)
                entries.append(entry)
                if (manifest is None and entry.kind is EntryKind.FILE and path_problem(member.name) is None
                        and normalised(member.name) == MANIFEST_NAME and member.size <= MANIFEST_MAX_BYTES):
                    stream = tar.extractfile(member)
                    manifest = stream.read(MANIFEST_MAX_BYTES + 1) if stream else None
        return Listing(entries, manifest)

    def files(self) -> Iterator[tuple[ArchiveEntry, IO[bytes]]]:
        with self._members() as tar:
            for member in tar:
                entry = self._entry(member)
                if entry.kind is EntryKind.FILE:
                    stream = tar.extractfile(member)
                    if stream is not None:
                        yield entry, stream


@contextmanager
def open_package(path: Path, limits: PackageLimits) -> Iterator[PackageArchive]:
    """Open a zip or tar.gz package, recognised by its first bytes (not its name).

    Raises:
        PackageRejected: not a zip or tar.gz, or a corrupt one.
        OSError: the file cannot be read (the caller retries these).
    """
    with path.open("rb") as fh:
        head = fh.read(4)
    try:
        if head[:2] == b"PK":
            with zipfile.ZipFile(path) as zf:
                yield ZipPackage(path, zf)
        elif head[:2] == b"\x1f\x8b":
            yield TarGzPackage(path, limits)
        else:
            raise PackageRejected(path.name, ["not a zip or tar.gz package"])
    except (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, gzip.BadGzipFile, EOFError,
            zlib.error) as exc:
        raise PackageRejected(path.name, [f"corrupt archive: {type(exc).__name__}: {exc}"]) from None
