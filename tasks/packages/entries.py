"""Pure checks of a resource package: its entry list and its manifest, before a byte is extracted.

Everything here works on :class:`ArchiveEntry` values and bytes, so a malicious package (path
traversal, absolute path, links, devices, zip bomb, wrong manifest) is refused by plain functions
that tests call with literals. ``archive.py`` turns real zip / tar.gz files into entries.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from tasks.core.errors import VersionError
from tasks.core.versions import Version

MANIFEST_NAME = "manifest.json"
MANIFEST_MAX_BYTES = 4 * 1024 * 1024
MiB = 1024 * 1024

#: Images, templates, styles, fonts and static data. No scripts, binaries or archives.
DEFAULT_EXTENSIONS: frozenset[str] = frozenset({
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp",
    "html", "htm", "ftl", "vm", "xsl", "xslt", "css", "woff", "woff2", "ttf", "otf",
    "txt", "json", "csv", "tsv", "xml", "yaml", "yml", "properties", "md", "pdf",
})

#: Served by the FT web app, these run in the browser whatever they contain: refused unless allowed per package.
ACTIVE_EXTENSIONS: frozenset[str] = frozenset({"html", "htm", "xhtml", "shtml", "js", "mjs"})
#: What makes an SVG active, matched on its lower-cased text.
SVG_ACTIVE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<\s*script"), "SVG with <script>"),
    (re.compile(r"<\s*foreignobject"), "SVG with <foreignObject>"),
    (re.compile(r"[\s\"'/]on[a-z]+\s*="), "SVG with an on* event attribute"),
)
#: Matched after character references are decoded too (attribute values are decoded before use).
SVG_ACTIVE_URL = (re.compile(r"javascript\s*:"), "SVG with a javascript: URL")
_SVG_OVERLAP = 512  # bytes kept between chunks: longer than any obfuscated match above

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


class EntryKind(StrEnum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    DEVICE = "device"
    FIFO = "fifo"
    OTHER = "other"


@dataclass(frozen=True)
class ArchiveEntry:
    """One member as the archive declares it (sizes may lie: extraction enforces them again)."""

    name: str
    kind: EntryKind
    size: int
    compressed_size: int | None = None
    link_target: str = ""


@dataclass(frozen=True)
class PackageLimits:
    """What a package may contain; defaults suit images, templates and static data."""

    max_entry_bytes: int = 256 * MiB
    max_total_bytes: int = 2048 * MiB
    max_entries: int = 20_000
    max_ratio: float = 200.0
    allowed_extensions: frozenset[str] = DEFAULT_EXTENSIONS
    active_allowed: tuple[str, ...] = ()  # entry globs that may hold active content (per package)

    def allows_active(self, name: str) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in self.active_allowed)


@dataclass(frozen=True)
class ManifestFile:
    path: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` at the package root: which version it belongs to and every file's SHA-256."""

    version: str
    name: str
    files: tuple[ManifestFile, ...]

    def by_path(self) -> dict[str, ManifestFile]:
        return {f.path: f for f in self.files}


@dataclass
class Verdict:
    """The outcome of the pure checks: problems (empty = acceptable) and the files to extract."""

    problems: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def path_problem(name: str) -> str | None:
    """Why ``name`` may not be extracted below a staging folder, or None if it may.

    Refuses absolute paths (``/x``, ``C:x``, ``\\\\server``), any ``..`` component, backslashes (a
    Windows separator that would hide ``..\\``), NUL and control characters, and empty names.
    """
    if not name or name in (".", "./"):
        return "empty entry name"
    if any(ord(c) < 32 for c in name):
        return f"{name!r}: control character in entry name"
    if "\\" in name:
        return f"{name!r}: backslash in entry name"
    if name.startswith("/") or _WINDOWS_DRIVE.match(name):
        return f"{name!r}: absolute path"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return f"{name!r}: path traversal ('..')"
    return None


def normalised(name: str) -> str:
    """``./a//b/`` → ``a/b``: the name a file will have below the staging folder."""
    return str(PurePosixPath(*[p for p in PurePosixPath(name).parts if p != "."])) if name.strip("./") else ""


def extension_problem(name: str, allowed: Iterable[str]) -> str | None:
    """A file type outside the allow-list (by extension, case-insensitive)."""
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    if not suffix:
        return f"{name!r}: file without an extension (type not allowed)"
    if suffix not in allowed:
        return f"{name!r}: file type '.{suffix}' not allowed"
    return None


def active_problem(name: str, reason: str) -> str:
    """The refusal of active content: names the entry, the reason and the way to accept it."""
    return (f"{name!r}: active content ({reason}) not allowed in a folder the FT web app may serve; "
            "list the entry in the package's allow_active_content if it is trusted")


def active_extension_problem(name: str) -> str | None:
    """``.html`` / ``.js`` and the like: active whatever their content."""
    suffix = PurePosixPath(name).suffix.lower().lstrip(".")
    return active_problem(name, f".{suffix} file") if suffix in ACTIVE_EXTENSIONS else None


def is_svg(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() == ".svg"


class SvgScan:
    """Scans an SVG chunk by chunk for active content (script, event handlers, javascript: URLs).

    Each window is the previous chunk's tail plus the new chunk, so a match split across chunks is
    still seen. For URLs, character references are decoded and tabs and newlines dropped first
    (``jav&#x61;script:`` and ``java&#9;script:`` are what a browser would run).
    """

    def __init__(self, name: str) -> None:
        self.name, self._tail, self._first = name, b"", True

    def feed(self, chunk: bytes) -> str | None:
        """The problem with the content so far, or None."""
        if self._first and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return active_problem(self.name, "UTF-16 SVG, which cannot be scanned")
        self._first = False
        window = self._tail + chunk
        self._tail = window[-_SVG_OVERLAP:]
        text = " " + window.decode("utf-8", "replace").lower()
        url_text = re.sub(r"[\t\r\n]", "", html.unescape(text))
        found = [reason for pattern, reason in SVG_ACTIVE if pattern.search(text)]
        found += [SVG_ACTIVE_URL[1]] if SVG_ACTIVE_URL[0].search(url_text) else []
        return active_problem(self.name, found[0]) if found else None


def check_entries(entries: Sequence[ArchiveEntry], limits: PackageLimits, archive_bytes: int) -> Verdict:
    """Every check that needs only the entry list: paths, kinds, types, sizes, ratios, duplicates."""
    verdict = Verdict()
    problems = verdict.problems
    if len(entries) > limits.max_entries:
        problems.append(f"{len(entries)} entries, more than the limit of {limits.max_entries}")
    seen: set[str] = set()
    directories: set[str] = set()
    total = 0
    for entry in entries:
        bad_path = path_problem(entry.name)
        if bad_path:
            problems.append(bad_path)
            continue
        name = normalised(entry.name)
        if entry.kind is EntryKind.DIRECTORY:
            directories.add(name)
            continue
        if entry.kind is not EntryKind.FILE:
            target = f" → {entry.link_target!r}" if entry.link_target else ""
            problems.append(f"{entry.name!r}: {entry.kind.value}{target} not allowed (regular files only)")
            continue
        if name in seen:
            problems.append(f"{entry.name!r}: duplicate entry")
            continue
        seen.add(name)
        if name != MANIFEST_NAME:
            bad_type = extension_problem(name, limits.allowed_extensions)
            if bad_type:
                problems.append(bad_type)
            elif not limits.allows_active(name):
                problems.extend(filter(None, [active_extension_problem(name)]))
        if entry.size > limits.max_entry_bytes:
            problems.append(f"{entry.name!r}: {entry.size} bytes, over the per-file limit of "
                            f"{limits.max_entry_bytes}")
        if entry.compressed_size is not None and entry.size > 0:
            ratio = entry.size / max(entry.compressed_size, 1)
            if ratio > limits.max_ratio:
                problems.append(f"{entry.name!r}: compression ratio {ratio:.0f}:1 over the limit of "
                                f"{limits.max_ratio:.0f}:1 (zip bomb?)")
        total += entry.size
    if total > limits.max_total_bytes:
        problems.append(f"{total} bytes in total, over the limit of {limits.max_total_bytes}")
    if total and total / max(archive_bytes, 1) > limits.max_ratio:
        problems.append(f"package expands {total / max(archive_bytes, 1):.0f}:1, over the limit of "
                        f"{limits.max_ratio:.0f}:1 (zip bomb?)")
    clash = sorted(seen & directories)
    problems.extend(f"{name!r}: both a file and a directory" for name in clash)
    if MANIFEST_NAME not in seen:
        problems.append(f"no {MANIFEST_NAME} at the package root")
    verdict.files = sorted(seen - {MANIFEST_NAME})
    return verdict


def parse_manifest(data: bytes) -> Manifest:
    """Read ``manifest.json``: ``{"version": "3.17.5", "name": …, "files": [{"path", "sha256", "size"}]}``.

    Raises:
        ValueError: not JSON, or a field is missing or malformed (the message says which).
    """
    if len(data) > MANIFEST_MAX_BYTES:
        raise ValueError(f"{MANIFEST_NAME} is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{MANIFEST_NAME} is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{MANIFEST_NAME} must be a JSON object")
    version, files = raw.get("version"), raw.get("files")
    if not isinstance(version, str) or not version:
        raise ValueError(f"{MANIFEST_NAME}: 'version' must be a non-empty string")
    if not isinstance(files, list):
        raise ValueError(f"{MANIFEST_NAME}: 'files' must be a list")
    parsed: list[ManifestFile] = []
    for i, item in enumerate(files):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ValueError(f"{MANIFEST_NAME}: files[{i}] needs a 'path' string")
        digest = str(item.get("sha256", "")).lower()
        if not _SHA256.match(digest):
            raise ValueError(f"{MANIFEST_NAME}: files[{i}] ({item['path']!r}) needs a 64-hex 'sha256'")
        size = item.get("size")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise ValueError(f"{MANIFEST_NAME}: files[{i}] 'size' must be a non-negative integer")
        parsed.append(ManifestFile(item["path"], digest, size))
    return Manifest(version=version, name=str(raw.get("name", "")), files=tuple(parsed))


def check_manifest(manifest: Manifest, entries: Sequence[ArchiveEntry], target_version: str) -> list[str]:
    """The manifest belongs to the target version and lists exactly the package's files."""
    problems: list[str] = []
    try:
        matches = Version.parse(manifest.version) == Version.parse(target_version)
    except VersionError as exc:
        matches = False
        problems.append(f"{MANIFEST_NAME}: {exc}")
    if not matches and not problems:
        problems.append(f"{MANIFEST_NAME}: package is for version {manifest.version}, the target is {target_version}")
    listed: dict[str, ManifestFile] = {}
    for item in manifest.files:
        bad = path_problem(item.path)
        if bad:
            problems.append(f"{MANIFEST_NAME}: {bad}")
            continue
        name = normalised(item.path)
        if name in listed:
            problems.append(f"{MANIFEST_NAME}: {item.path!r} listed twice")
        listed[name] = item
    sizes = {normalised(e.name): e.size for e in entries
             if e.kind is EntryKind.FILE and path_problem(e.name) is None}
    present = set(sizes) - {MANIFEST_NAME}
    problems.extend(f"{name!r} is in the package but not in {MANIFEST_NAME}" for name in sorted(present - set(listed)))
    problems.extend(f"{name!r} is in {MANIFEST_NAME} but not in the package" for name in sorted(set(listed) - present))
    for name in sorted(present & set(listed)):
        expected = listed[name].size
        if expected is not None and expected != sizes[name]:
            problems.append(f"{name!r}: {sizes[name]} bytes, {MANIFEST_NAME} says {expected}")
    return problems


#: Leading bytes of executables and scripts: refused whatever the file's extension says.
EXECUTABLE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x7fELF", "ELF executable"),
    (b"#!", "script with a shebang"),
    (b"\xfe\xed\xfa\xce", "Mach-O executable"),
    (b"\xfe\xed\xfa\xcf", "Mach-O executable"),
    (b"\xcf\xfa\xed\xfe", "Mach-O executable"),
    (b"\xce\xfa\xed\xfe", "Mach-O executable"),
    (b"PK\x03\x04", "nested zip archive"),
    (b"\x1f\x8b", "nested gzip archive"),
)


def content_problem(name: str, head: bytes) -> str | None:
    """A basic content scan of a file's first bytes (give 4 KiB): executables, scripts, nested archives."""
    for magic, what in EXECUTABLE_MAGIC:
        if head.startswith(magic):
            return f"{name!r}: content is a {what}"
    if head.startswith(b"MZ") and len(head) >= 64:  # DOS stub; the PE header offset sits at byte 60
        offset = int.from_bytes(head[60:64], "little")
        if head[offset:offset + 4] == b"PE\0\0":
            return f"{name!r}: content is a Windows executable"
    return None
