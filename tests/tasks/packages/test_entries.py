"""The pure package checks, on literal entries and manifests: no archive, no disk."""

from __future__ import annotations

import hashlib
import json

import pytest

from tasks.packages.entries import (
    ArchiveEntry,
    EntryKind,
    Manifest,
    ManifestFile,
    PackageLimits,
    SvgScan,
    check_entries,
    check_manifest,
    content_problem,
    parse_manifest,
    path_problem,
)

LIMITS = PackageLimits(max_entry_bytes=1000, max_total_bytes=1500, max_entries=5, max_ratio=10)
MANIFEST = ArchiveEntry("manifest.json", EntryKind.FILE, 100, 50)


def file(name: str, size: int = 10, packed: int | None = 10) -> ArchiveEntry:
    return ArchiveEntry(name, EntryKind.FILE, size, packed)


@pytest.mark.parametrize(("name", "reason"), [
    ("../etc/passwd", "path traversal"),
    ("images/../../x.png", "path traversal"),
    ("/etc/passwd", "absolute path"),
    ("C:/x.png", "absolute path"),
    ("images\\..\\x.png", "backslash"),
    ("a\x00.png", "control character"),
    ("", "empty entry name"),
])
def test_unsafe_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    assert reason in (path_problem(name) or "")


def test_ordinary_nested_names_are_accepted() -> None:
    assert path_problem("images/icons/logo.png") is None
    assert path_problem("./templates/mail.html") is None


@pytest.mark.parametrize("kind", [EntryKind.SYMLINK, EntryKind.HARDLINK, EntryKind.DEVICE, EntryKind.FIFO,
                                  EntryKind.OTHER])
def test_anything_but_regular_files_and_folders_is_refused(kind: EntryKind) -> None:
    verdict = check_entries([MANIFEST, ArchiveEntry("images/x.png", kind, 0, None, "/etc/passwd")], LIMITS, 1000)
    assert verdict.problems == [f"'images/x.png': {kind.value} → '/etc/passwd' not allowed (regular files only)"]


def test_a_clean_listing_passes_and_names_the_files_to_extract() -> None:
    verdict = check_entries([MANIFEST, ArchiveEntry("images/", EntryKind.DIRECTORY, 0), file("images/a.png"),
                             file("./t/mail.ftl")], LIMITS, 1000)
    assert verdict.ok, verdict.problems
    assert verdict.files == ["images/a.png", "t/mail.ftl"]


def test_sizes_ratios_counts_types_and_duplicates_are_limited() -> None:
    entries = [MANIFEST, file("big.png", 1001, 900), file("bomb.csv", 500, 5), file("run.sh"), file("a.png"),
               file("./a.png")]
    problems = check_entries(entries, LIMITS, 100).problems
    assert "6 entries, more than the limit of 5" in problems
    assert "'big.png': 1001 bytes, over the per-file limit of 1000" in problems
    assert "'bomb.csv': compression ratio 100:1 over the limit of 10:1 (zip bomb?)" in problems
    assert "'run.sh': file type '.sh' not allowed" in problems
    assert "'./a.png': duplicate entry" in problems
    assert "1621 bytes in total, over the limit of 1500" in problems
    assert "package expands 16:1, over the limit of 10:1 (zip bomb?)" in problems


def test_a_package_without_a_manifest_is_refused() -> None:
    assert check_entries([file("a.png")], LIMITS, 100).problems == ["no manifest.json at the package root"]


def sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_manifest_must_be_for_the_target_version_and_list_exactly_the_files() -> None:
    manifest = Manifest("3.17.4", "x", (ManifestFile("a.png", sha(b"a"), 10), ManifestFile("gone.png", sha(b"g")),
                                       ManifestFile("../x.png", sha(b"x"))))
    problems = check_manifest(manifest, [MANIFEST, file("a.png", 11), file("extra.png")], "3.17.5")
    assert problems == [
        "manifest.json: package is for version 3.17.4, the target is 3.17.5",
        "manifest.json: '../x.png': path traversal ('..')",
        "'extra.png' is in the package but not in manifest.json",
        "'gone.png' is in manifest.json but not in the package",
        "'a.png': 11 bytes, manifest.json says 10",
    ]


def test_manifest_versions_compare_by_code_so_dotted_and_coded_forms_agree() -> None:
    manifest = Manifest("317501", "x", (ManifestFile("a.png", sha(b"a")),))
    assert check_manifest(manifest, [MANIFEST, file("a.png")], "3.17.5-P1") == []


@pytest.mark.parametrize(("raw", "message"), [
    (b"{", "not valid UTF-8 JSON"),
    (b"[]", "must be a JSON object"),
    (json.dumps({"files": []}).encode(), "'version' must be a non-empty string"),
    (json.dumps({"version": "3.17.5", "files": [{"path": "a.png", "sha256": "abc"}]}).encode(), "64-hex 'sha256'"),
])
def test_a_malformed_manifest_says_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_manifest(raw)


def test_content_scan_refuses_executables_and_scripts_but_not_text_that_starts_alike() -> None:
    assert "ELF" in (content_problem("a.png", b"\x7fELF\x02\x01") or "")
    assert "shebang" in (content_problem("a.txt", b"#!/bin/sh\nrm -rf /") or "")
    pe = b"MZ" + b"\0" * 58 + (64).to_bytes(4, "little") + b"PE\0\0"
    assert "Windows executable" in (content_problem("a.png", pe) or "")
    assert content_problem("countries.csv", b"MZ,Mozambique\nMW,Malawi\n" * 5) is None
    assert content_problem("logo.png", b"\x89PNG\r\n\x1a\n") is None


def test_html_and_js_are_active_content_refused_unless_a_pattern_of_the_package_allows_them() -> None:
    limits = PackageLimits(allowed_extensions=frozenset({"html", "js", "png"}))
    entries = [MANIFEST, file("t/mail.html"), file("t/app.js"), file("a.png")]
    assert check_entries(entries, limits, 1000).problems == [
        "'t/mail.html': active content (.html file) not allowed in a folder the FT web app may serve; list the entry "
        "in the package's allow_active_content if it is trusted",
        "'t/app.js': active content (.js file) not allowed in a folder the FT web app may serve; list the entry in "
        "the package's allow_active_content if it is trusted",
    ]
    trusted = PackageLimits(allowed_extensions=limits.allowed_extensions, active_allowed=("t/*.html", "t/app.js"))
    assert check_entries(entries, trusted, 1000).ok


def scan(*chunks: bytes) -> str | None:
    svg = SvgScan("icon.svg")
    return next((p for p in map(svg.feed, chunks) if p), None)


@pytest.mark.parametrize(("chunks", "reason"), [
    ((b"<svg><scr", b"ipt>x</script></svg>"), "<script>"),
    ((b"<svg/onload=alert(1)>",), "on* event attribute"),
    ((b"<svg>" + b" " * 5000 + b"<a href='java", b"&#x09;script:alert(1)'/>"), "javascript: URL"),
    ((b"<svg><foreignObject/>",), "<foreignObject>"),
    ((b"\xff\xfe<\x00s\x00",), "UTF-16 SVG"),
])
def test_svg_scan_finds_active_content_even_split_across_chunks_or_obfuscated(
        chunks: tuple[bytes, ...], reason: str) -> None:
    assert reason in (scan(*chunks) or "")


def test_svg_scan_accepts_an_ordinary_icon_with_words_like_one_and_version() -> None:
    icon = b'<svg version="1.1" id="one"><text>turn on = off</text><path d="M0 0" stroke="none"/></svg>'
    assert scan(icon[:20], icon[20:]) is None
