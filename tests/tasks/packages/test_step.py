"""ResourcePackageImportStep on real zip / tar.gz files, real folders and the real MariaDB."""

from __future__ import annotations

import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.core.errors import StepFailed
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepResult
from tasks.packages.step import ResourcePackageImportStep, ResourcePackageParams
from tasks.steps.context import StepContext
from tests.helpers import step_context
from tests.support.builders import (
    manifest_for,
    run_sql,
    tar_member,
    tree,
    write_targz,
    write_zip,
    zip_symlink,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 50
GOOD = {"images/logo.png": PNG, "templates/mail.html": b"<html>{{name}}</html>",
        "data/regions.csv": b"id,name\n1,East\n2,West\n3,\\N\n"}
ABSOLUTE = f"/tmp/ft-evil-{uuid.uuid4().hex[:8]}.txt"


def run_step(ctx: StepContext, packages: list[dict[str, Any]], **params: Any) -> StepResult:
    model = ResourcePackageParams.model_validate({"packages": packages, "retry_wait_seconds": 0, **params})
    return ResourcePackageImportStep(model, ctx).run()


def package(file: str, **extra: Any) -> dict[str, Any]:
    """A package spec into static_dir/ft; GOOD's mail template is active content the spec trusts."""
    return {"file": file, "target_dir": "static_dir", "subdir": "ft", "allow_active_content": ["templates/*.html"],
            **extra}


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    """Named folders as a site has them: packages, and a live static folder with the old version."""
    home = tmp_path / "home"
    packages, live = home / "package_dir", home / "static_dir" / "ft"
    packages.mkdir(parents=True)
    (live / "images").mkdir(parents=True)
    (live / "images" / "logo.png").write_bytes(b"old logo")
    (live / "custom.css").write_text("site's own")
    return {"home": home, "packages": packages, "live": live, "root": tmp_path}


@pytest.fixture
def region_db(mariadb_database: str) -> str:
    """A database with a ``region`` table holding one old row."""
    run_sql(mariadb_database, "CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20) NULL)",
            "INSERT INTO region VALUES (9, 'Old')")
    return mariadb_database


def regions(url: str) -> list[tuple[Any, ...]]:
    return run_sql(url, "SELECT id, name FROM region ORDER BY id")


MALICIOUS: dict[str, Callable[[Path], Path]] = {
    "traversal_zip": lambda d: write_zip(d / "p.zip", {**GOOD, "../../escaped.txt": b"owned"}),
    "traversal_tar": lambda d: write_targz(d / "p.tar.gz", {**GOOD, "images/../../../escaped.txt": b"owned"}),
    "absolute_zip": lambda d: write_zip(d / "p.zip", {**GOOD, ABSOLUTE: b"owned"}),
    "absolute_tar": lambda d: write_targz(d / "p.tar.gz", {**GOOD, ABSOLUTE: b"owned"}),
    "symlink_zip": lambda d: write_zip(d / "p.zip", GOOD, extra=zip_symlink("images/passwd.png", "/etc/passwd")),
    "symlink_tar": lambda d: write_targz(d / "p.tar.gz", GOOD,
                                         extra=[tar_member("images/x.png", tarfile.SYMTYPE, "/etc/passwd")]),
    "hardlink_tar": lambda d: write_targz(d / "p.tar.gz", GOOD,
                                          extra=[tar_member("images/x.png", tarfile.LNKTYPE, "/etc/passwd")]),
    "device_tar": lambda d: write_targz(d / "p.tar.gz", GOOD, extra=[tar_member("images/x.png", tarfile.CHRTYPE)]),
    "bomb_zip": lambda d: write_zip(d / "p.zip", {**GOOD, "data/zeros.csv": b"0" * 30_000_000}),
    "bomb_tar": lambda d: write_targz(d / "p.tar.gz", {**GOOD, "data/zeros.csv": b"0" * 30_000_000}),
    "wrong_hash": lambda d: write_zip(d / "p.zip", GOOD, manifest=manifest_for(
        {**GOOD, "templates/mail.html": b"<html>{{evil}}</html>"})),
    "wrong_version": lambda d: write_zip(d / "p.zip", GOOD, manifest=manifest_for(GOOD, version="3.17.4")),
    "unlisted_file": lambda d: write_zip(d / "p.zip", {**GOOD, "images/extra.png": PNG},
                                         manifest=manifest_for(GOOD)),
    "no_manifest": lambda d: write_targz(d / "p.tar.gz", GOOD, manifest=b"not json"),
    "disallowed_type": lambda d: write_zip(d / "p.zip", {**GOOD, "bin/run.sh": b"echo hi"}),
    "executable_content": lambda d: write_zip(d / "p.zip", {**GOOD, "images/logo.png": b"\x7fELF\x02\x01\x01"}),
    "not_an_archive": lambda d: (d / "p.zip").write_bytes(b"just text") and d / "p.zip",
}

EXPECTED = {
    "traversal_zip": "path traversal", "traversal_tar": "path traversal", "absolute_zip": "absolute path",
    "absolute_tar": "absolute path", "symlink_zip": "symlink → '/etc/passwd' not allowed",
    "symlink_tar": "symlink → '/etc/passwd' not allowed", "hardlink_tar": "hardlink → '/etc/passwd' not allowed",
    "device_tar": "device not allowed", "bomb_zip": "zip bomb?", "bomb_tar": "zip bomb?",
    "wrong_hash": "does not match manifest.json", "wrong_version": "package is for version 3.17.4",
    "unlisted_file": "'images/extra.png' is in the package but not in manifest.json",
    "no_manifest": "manifest.json is not valid UTF-8 JSON", "disallowed_type": "file type '.sh' not allowed",
    "executable_content": "content is a ELF executable", "not_an_archive": "not a zip or tar.gz package",
}


@pytest.mark.parametrize("kind", sorted(MALICIOUS))
def test_a_malicious_package_is_rejected_and_nothing_is_written_outside_staging(
        kind: str, site: dict[str, Path]) -> None:
    archive = MALICIOUS[kind](site["packages"])
    before = tree(site["root"])
    with step_context(site["root"], cutpoint="startup_post_process") as ctx, pytest.raises(StepFailed) as failed:
        run_step(ctx, [package(archive.name)])
    assert EXPECTED[kind] in str(failed.value)
    assert "nothing was changed" in str(failed.value)
    assert tree(site["root"]) == before, "no file appeared, changed or vanished anywhere (staging was removed)"
    assert not Path(ABSOLUTE).exists()
    result = failed.value.result
    assert isinstance(result, StepResult) and result.status is StepStatus.FAILED
    assert result.details["packages_failed"] == 1


def test_a_gzip_bomb_is_stopped_while_listing_before_it_is_fully_inflated(site: dict[str, Path]) -> None:
    archive = write_targz(site["packages"] / "p.tar.gz", {**GOOD, "data/zeros.csv": b"0" * 8_000_000})
    with step_context(site["root"]) as ctx, pytest.raises(StepFailed, match="decompressed data exceeds"):
        run_step(ctx, [package(archive.name)], limits={"max_total_mb": 1, "max_entries": 10})


def test_a_good_zip_is_swapped_in_whole_and_its_data_file_loaded(site: dict[str, Path], region_db: str) -> None:
    write_zip(site["packages"] / "ft-res-3.17.5.zip", GOOD)
    spec = package("ft-res-{target_version}.zip",
                   tables=[{"file": "data/regions.csv", "database": "ft_db", "table": "region"}])
    with step_context(site["root"], databases={"ft_db": region_db}) as ctx:
        result = run_step(ctx, [spec])
    live = site["live"]
    assert result.status is StepStatus.SUCCESS
    assert result.details["files_imported"] == 3
    assert (live / "images" / "logo.png").read_bytes() == PNG
    assert not (live / "custom.css").exists(), "the package replaces the folder as a whole"
    assert (live.parent / ".ft.previous" / "images" / "logo.png").read_bytes() == b"old logo"
    assert [p.name for p in live.parent.iterdir() if "staging" in p.name] == []
    assert regions(region_db) == [(1, "East"), (2, "West"), (3, None)]
    with step_context(site["root"], databases={"ft_db": region_db}) as ctx:
        again = run_step(ctx, [spec])
    assert again.details["packages"][0]["result"] == "already installed"


def test_a_tar_gz_can_keep_the_sites_own_files(site: dict[str, Path]) -> None:
    write_targz(site["packages"] / "p.tar.gz", GOOD)
    with step_context(site["root"]) as ctx:
        result = run_step(ctx, [package("p.tar.gz", keep_existing=True)])
    assert result.details["packages"][0]["kept"] == 1
    assert (site["live"] / "custom.css").read_text() == "site's own"
    assert (site["live"] / "templates" / "mail.html").read_bytes() == GOOD["templates/mail.html"]


def test_when_a_later_package_is_rejected_the_earlier_one_is_not_swapped_and_no_table_changes(
        site: dict[str, Path], region_db: str) -> None:
    write_zip(site["packages"] / "good.zip", GOOD)
    write_zip(site["packages"] / "bad.zip", GOOD, manifest=manifest_for(GOOD, version="3.17.6"))
    before = tree(site["root"])
    with step_context(site["root"], databases={"ft_db": region_db}) as ctx, pytest.raises(StepFailed):
        run_step(ctx, [package("good.zip", tables=[{"file": "data/regions.csv", "database": "ft_db",
                                                     "table": "region"}]),
                       {"file": "bad.zip", "target_dir": "static_dir", "subdir": "other"}])
    assert tree(site["root"]) == before
    assert regions(region_db) == [(9, "Old")]


def test_a_failing_table_load_leaves_folders_and_tables_as_they_were(
        site: dict[str, Path], mariadb_database: str) -> None:
    write_zip(site["packages"] / "p.zip", GOOD)
    before = tree(site["root"])
    with step_context(site["root"], databases={"ft_db": mariadb_database}) as ctx, \
            pytest.raises(StepFailed, match="nothing was changed"):
        run_step(ctx, [package("p.zip", tables=[{"file": "data/regions.csv", "database": "ft_db",
                                                  "table": "no_such_table"}])])
    assert tree(site["root"]) == before


def test_a_missing_package_is_retried_three_times_then_fails(site: dict[str, Path]) -> None:
    with step_context(site["root"]) as ctx, pytest.raises(StepFailed, match="I/O error after 3 retries"):
        run_step(ctx, [package("absent.zip")])


def test_an_io_error_that_clears_up_is_retried_and_the_import_succeeds(site: dict[str, Path]) -> None:
    source = write_zip(site["root"] / "later.zip", GOOD)
    arrive = threading.Timer(0.3, lambda: source.rename(site["packages"] / "later.zip"))
    arrive.start()
    with step_context(site["root"]) as ctx:
        start = time.monotonic()
        result = run_step(ctx, [package("later.zip")], retry_wait_seconds=0.25, io_retries=5)
    arrive.join()
    assert result.status is StepStatus.SUCCESS
    assert result.details["packages"][0]["attempts"] >= 2
    assert time.monotonic() - start < 5


SVG_HEAD = b'<svg xmlns="http://www.w3.org/2000/svg">'
ACTIVE_SVG = {
    "script": (SVG_HEAD + b"<script>alert(1)</script></svg>", "SVG with <script>"),
    "event": (SVG_HEAD.replace(b"<svg", b"<svg\nonload='alert(1)'") + b"</svg>", "SVG with an on* event attribute"),
    "url": (SVG_HEAD + b'<a href="jav&#x61;script:alert(1)"><text>x</text></a></svg>', "SVG with a javascript: URL"),
    "foreign": (SVG_HEAD + b"<foreignObject><div>x</div></foreignObject></svg>", "SVG with <foreignObject>"),
}


@pytest.mark.parametrize("kind", sorted(ACTIVE_SVG))
def test_an_active_svg_is_refused_naming_the_entry_and_the_reason_unless_the_package_allows_it(
        kind: str, site: dict[str, Path]) -> None:
    body, reason = ACTIVE_SVG[kind]
    write_zip(site["packages"] / "p.zip", {**GOOD, "images/icon.svg": body})
    before = tree(site["root"])
    with step_context(site["root"]) as ctx, pytest.raises(StepFailed) as failed:
        run_step(ctx, [package("p.zip")])
    assert f"package p.zip rejected: 'images/icon.svg': active content ({reason}) not allowed" in str(failed.value)
    assert "allow_active_content" in str(failed.value)
    assert tree(site["root"]) == before
    with step_context(site["root"]) as ctx:
        run_step(ctx, [package("p.zip", allow_active_content=["templates/*.html", "images/icon.svg"])])
    assert (site["live"] / "images" / "icon.svg").read_bytes() == body


def test_html_is_refused_unless_the_package_allows_it_but_a_plain_svg_is_accepted(site: dict[str, Path]) -> None:
    write_zip(site["packages"] / "p.zip", {**GOOD, "images/icon.svg": SVG_HEAD + b'<path d="M0 0"/></svg>'})
    with step_context(site["root"]) as ctx, pytest.raises(StepFailed) as failed:
        run_step(ctx, [package("p.zip", allow_active_content=[])])
    assert "'templates/mail.html': active content (.html file) not allowed" in str(failed.value)
    with step_context(site["root"]) as ctx:
        assert run_step(ctx, [package("p.zip")]).status is StepStatus.SUCCESS


NOTES = b'[{"text": "welcome"}, {"text": "maintenance at 2:00"}]'


def notes_spec(archive: str, **extra: Any) -> dict[str, Any]:
    return package(archive, tables=[{"file": "data/regions.csv", "database": "ft_db", "table": "region"},
                                    {"file": "data/notes.json", "database": "ft_db", "table": "note",
                                     "mode": "append"}], **extra)


def test_append_loads_exactly_once_per_package_version_even_when_forced_or_rebuilt(
        site: dict[str, Path], new_database: Callable[..., str]) -> None:
    db = new_database("CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20) NULL)",
                      "CREATE TABLE note (text VARCHAR(40)) ENGINE=InnoDB")
    write_zip(site["packages"] / "p.zip", {**GOOD, "data/notes.json": NOTES})
    with step_context(site["root"], databases={"ft_db": db}) as ctx:
        first = run_step(ctx, [notes_spec("p.zip")])
        forced = run_step(ctx, [notes_spec("p.zip", force=True)])
    assert [r["result"] for r in first.details["packages"]] == ["imported", "imported", "imported"]
    assert [r["result"] for r in forced.details["packages"]] == ["imported", "imported", "already loaded"]
    write_zip(site["packages"] / "p.zip", {**GOOD, "data/notes.json": NOTES, "images/new.png": PNG})
    with step_context(site["root"], databases={"ft_db": db}) as ctx:
        rebuilt = run_step(ctx, [notes_spec("p.zip")])
    assert rebuilt.details["packages"][2]["result"] == "already loaded", "same version: not appended again"
    assert run_sql(db, "SELECT text FROM note ORDER BY text") == [("maintenance at 2:00",), ("welcome",)]
    assert regions(db) == [(1, "East"), (2, "West"), (3, None)]


def test_append_into_a_non_transactional_table_is_refused_and_nothing_changes(
        site: dict[str, Path], new_database: Callable[..., str]) -> None:
    db = new_database("CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20) NULL)",
                      "CREATE TABLE note (text VARCHAR(40)) ENGINE=MyISAM")
    write_zip(site["packages"] / "p.zip", {**GOOD, "data/notes.json": NOTES})
    before = tree(site["root"])
    with step_context(site["root"], databases={"ft_db": db}) as ctx, pytest.raises(StepFailed) as failed:
        run_step(ctx, [notes_spec("p.zip")])
    assert "table ft_db.note is not transactional (e.g. MyISAM)" in str(failed.value)
    assert "nothing was changed" in str(failed.value)
    assert tree(site["root"]) == before
    assert run_sql(db, "SELECT COUNT(*) FROM note") == [(0,)]
    assert regions(db) == []
