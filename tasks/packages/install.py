"""Stage, verify and swap a resource package into place.

``stage`` runs the pure checks of :mod:`tasks.packages.entries` first and extracts only when they
pass, one regular file at a time into a fresh staging folder beside the target (same filesystem),
opening each file itself (``O_EXCL | O_NOFOLLOW``) rather than trusting ``extractall``. Sizes,
SHA-256 and a content scan are enforced while streaming. ``swap`` then exchanges staging and target
in one ``renameat2(RENAME_EXCHANGE)`` call, so readers see the old folder or the new one, never a mix.

An install survives being killed at any point. Each one has an id, which names its staging folder
and is written into the package marker (``.ft-package.json``) inside that folder, so the marker
arrives with the files in the same rename, saying ``tables pending``. Only when the table loads are
committed does ``finish`` rewrite it (atomically) as ``complete``. A rerun first calls ``recover``:
a staging folder named by the live marker's id is the old folder that a swap moved out but had not
yet renamed to ``.<name>.previous`` (it is renamed now); any other staging folder is half-made and
removed. A live marker that is still pending means: the files are in place, finish the rest.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tasks.core.errors import PackageRejected
from tasks.packages.archive import open_package
from tasks.packages.entries import (
    MANIFEST_NAME,
    Manifest,
    PackageLimits,
    SvgScan,
    check_entries,
    check_manifest,
    content_problem,
    is_svg,
    normalised,
    parse_manifest,
)

MARKER_NAME = ".ft-package.json"
PENDING, COMPLETE = "tables pending", "complete"  # the marker's ``state`` (a marker without one is complete)
_CHUNK = 1 << 20
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass
class StagedPackage:
    """A package extracted and verified in ``staging``, ready to swap into ``target``."""

    package: str
    archive_sha256: str
    manifest: Manifest
    install_id: str
    staging: Path
    target: Path
    files: int
    bytes: int
    kept_files: int = 0
    previous: Path | None = None
    swapped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def installed_marker(target: Path) -> dict[str, Any] | None:
    """What the last package swapped into ``target`` recorded about itself, if anything."""
    try:
        return json.loads((target / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def marker_state(marker: dict[str, Any]) -> str:
    return str(marker.get("state", COMPLETE))


def new_install_id() -> str:
    return uuid.uuid4().hex


def staging_path(target: Path, install_id: str) -> Path:
    return target.parent / f".{target.name}.staging-{install_id}"


def recover(target: Path) -> list[str]:
    """Finish or clear what a killed install left beside ``target``; what was done, for the log.

    A staging folder named by the live marker's install id holds the folder that was live before
    that install's swap: it becomes ``.<name>.previous`` as the swap would have made it. Any other
    staging folder was never swapped in (killed while extracting, or before the swap) and is removed.
    """
    live_id = str((installed_marker(target) or {}).get("install_id", ""))
    done: list[str] = []
    for leftover in sorted(target.parent.glob(f".{glob.escape(target.name)}.staging-*")):
        if live_id and leftover.name == staging_path(target, live_id).name:
            previous = previous_path(target)
            if previous.exists():
                shutil.rmtree(previous)
            os.rename(leftover, previous)
            done.append(f"{leftover.name}: the interrupted swap's old folder moved to {previous.name}")
        else:
            shutil.rmtree(leftover)
            done.append(f"{leftover.name}: an interrupted staging folder removed")
    return done


def previous_path(target: Path) -> Path:
    return target.parent / f".{target.name}.previous"


def stage(archive: Path, *, target: Path, target_version: str, limits: PackageLimits,
          keep_existing: bool = False) -> StagedPackage:
    """Validate ``archive`` completely, then extract and verify it into a new staging folder.

    The staging folder is named by a new install id and ends with a marker in state ``tables pending``
    naming it.

    Raises:
        PackageRejected: a safety or integrity check failed (the staging folder is removed).
        OSError: reading or writing failed (the staging folder is removed; the caller may retry).
    """
    archive_sha = file_sha256(archive)
    with open_package(archive, limits) as package:
        listing = package.listing()
        verdict = check_entries(listing.entries, limits, package.size)
        problems = list(verdict.problems)
        manifest: Manifest | None = None
        if listing.manifest is not None:
            try:
                manifest = parse_manifest(listing.manifest)
            except ValueError as exc:
                problems.append(str(exc))
        if manifest is not None:
            problems += check_manifest(manifest, listing.entries, target_version)
        if problems or manifest is None:
            raise PackageRejected(archive.name, problems or [f"{MANIFEST_NAME} missing"])
        install_id = new_install_id()
        staging = staging_path(target, install_id)
        staging.mkdir(mode=0o755)
        try:
            expected = {normalised(f.path): f for f in manifest.files}
            written, total = set(), 0
            for entry, stream in package.files():
                name = normalised(entry.name)
                if name == MANIFEST_NAME:
                    continue
                scan = SvgScan(name) if is_svg(name) and not limits.allows_active(name) else None
                total += _write_verified(staging, name, stream, expected[name].sha256,
                                         min(entry.size, limits.max_entry_bytes), archive.name, scan)
                written.add(name)
                if total > limits.max_total_bytes:
                    raise PackageRejected(archive.name, [f"more than {limits.max_total_bytes} bytes extracted"])
            missing = sorted(set(expected) - written)
            if missing:
                raise PackageRejected(archive.name, [f"{m!r} listed but not extracted" for m in missing])
            kept = _copy_missing(target, staging, set(written)) if keep_existing else 0
            _write_marker(staging, archive.name, archive_sha, manifest, len(written), total, install_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return StagedPackage(archive.name, archive_sha, manifest, install_id, staging, target, len(written), total, kept)


def _write_verified(staging: Path, name: str, stream: IO[bytes], sha256: str, limit: int, package: str,
                    scan: SvgScan | None = None) -> int:
    """Stream one file below ``staging``: refuse links on the way, more bytes than declared, a bad hash,
    active SVG content (when ``scan`` is given)."""
    dest = staging.joinpath(*name.split("/"))
    if not dest.resolve().is_relative_to(staging.resolve()):  # belt and braces: names were checked already
        raise PackageRejected(package, [f"{name!r} resolves outside the staging folder"])
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        head = stream.read(4096)
        problem = content_problem(name, head)
        if problem:
            raise PackageRejected(package, [problem])
        chunk = head
        while chunk:
            size += len(chunk)
            if size > limit:
                raise PackageRejected(package, [f"{name!r}: more data than its declared size or the limit ({limit})"])
            problem = scan.feed(chunk) if scan else None
            if problem:
                raise PackageRejected(package, [problem])
            digest.update(chunk)
            out.write(chunk)
            chunk = stream.read(_CHUNK)
    if digest.hexdigest() != sha256:
        raise PackageRejected(package, [f"{name!r}: SHA-256 {digest.hexdigest()} does not match {MANIFEST_NAME} "
                                        f"({sha256})"])
    return size


def _copy_missing(target: Path, staging: Path, packaged: set[str]) -> int:
    """``keep_existing``: copy files of the current folder that the package does not replace."""
    if not target.is_dir():
        return 0
    kept = 0
    for path in sorted(target.rglob("*")):
        rel = path.relative_to(target).as_posix()
        if rel in (MARKER_NAME, MARKER_NAME + ".tmp") or rel in packaged or path.is_dir() and not path.is_symlink():
            continue
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest, follow_symlinks=False)
        kept += 1
    return kept


def _write_marker(staging: Path, package: str, archive_sha: str, manifest: Manifest, files: int, total: int,
                  install_id: str) -> None:
    marker = {"package": package, "archive_sha256": archive_sha, "version": manifest.version,
              "name": manifest.name, "files": files, "bytes": total, "install_id": install_id, "state": PENDING}
    (staging / MARKER_NAME).write_text(json.dumps(marker, indent=2), encoding="utf-8")


def finish(target: Path) -> None:
    """Mark the package in ``target`` complete (every table load committed): atomic, so a kill leaves it pending."""
    marker = installed_marker(target)
    if marker is None or marker_state(marker) == COMPLETE:
        return
    marker.update(state=COMPLETE, installed_at=datetime.now(UTC).isoformat(timespec="seconds"))
    temporary = target / (MARKER_NAME + ".tmp")
    temporary.write_text(json.dumps(marker, indent=2), encoding="utf-8")
    os.replace(temporary, target / MARKER_NAME)


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2``); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def swap(staged: StagedPackage) -> None:
    """Put the staging folder in the target's place; the old folder becomes ``.<name>.previous``."""
    target = staged.target
    if not target.exists() and not target.is_symlink():
        os.rename(staged.staging, target)
        staged.swapped, staged.previous = True, None
        return
    previous = previous_path(target)
    if previous.exists():
        shutil.rmtree(previous)
    if exchange(staged.staging, target):
        os.rename(staged.staging, previous)
    else:  # not atomic: two renames, undone if the second fails
        os.rename(target, previous)
        try:
            os.rename(staged.staging, target)
        except OSError:
            os.rename(previous, target)
            raise
    staged.swapped, staged.previous = True, previous


def unswap(staged: StagedPackage) -> None:
    """Undo :meth:`swap` (a later package or table load failed): the old folder returns."""
    if not staged.swapped:
        return
    target = staged.target
    if staged.previous is None:
        shutil.rmtree(target)
    elif exchange(staged.previous, target):
        shutil.rmtree(staged.previous)
    else:
        shutil.rmtree(target)
        os.rename(staged.previous, target)
    staged.swapped = False


def discard(staged: StagedPackage) -> None:
    """Remove a staging folder that was not swapped in."""
    if not staged.swapped:
        shutil.rmtree(staged.staging, ignore_errors=True)
