"""kill -9 at 10 points of an install of two packages with static data; each rerun ends as one clean install.

Each kill runs in its own child process (``package_kill_child``) on its own site folder and databases,
all children at once; the child SIGKILLs itself at its point, so no timing is involved. The rerun
then happens here, and the files (tree and hashes) and table rows must equal a clean install's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT
from tests.helpers import step_context
from tests.support.builders import run_sql, site_files, write_targz, write_zip
from tests.tasks.packages.test_step import GOOD, PNG, run_step

pytestmark = pytest.mark.mariadb

PACKAGES = [
    {"file": "ft-res.zip", "target_dir": "static_dir", "subdir": "ft", "allow_active_content": ["templates/*"],
     "tables": [{"file": "data/regions.csv", "database": "ft_db", "table": "region"},
                {"file": "data/notes.json", "database": "ft_log", "table": "note", "mode": "append"}]},
    {"file": "ft-img.tar.gz", "target_dir": "static_dir", "subdir": "img"},
]
STEP, INSTALL, DATA = "tasks.packages.step", "tasks.packages.install", "tasks.packages.static_data"
#: Where the child kills itself: module, function, before/after, which call.
POINTS = {
    "while extracting the first package": f"{INSTALL}:_write_verified:after:2",
    "both staged, no table touched": f"{INSTALL}:_write_marker:after:2",
    "first load run, uncommitted": f"{STEP}:load_rows:after:1",
    "both loads and records run, uncommitted": f"{STEP}:record_load:after:2",
    "exchanged, old folder not yet renamed": f"{INSTALL}:exchange:after:1",
    "first package swapped, second not": f"{STEP}:swap:after:1",
    "both swapped, nothing committed": f"{STEP}:swap:after:2",
    "one database committed, the other not": f"{STEP}:_Session.commit:after:1",
    "both committed, markers pending": f"{STEP}:_Session.commit:after:2",
    "first marker complete, second pending": f"{STEP}:finish:after:1",
}


@pytest.fixture
def archives(tmp_path: Path) -> Path:
    """Both packages, built once: every site gets the same bytes (a zip records the time it was written)."""
    folder = tmp_path / "archives"
    folder.mkdir()
    write_zip(folder / "ft-res.zip", {**GOOD, "data/notes.json": b'[{"text": "welcome"}, {"text": "maintenance"}]'})
    write_targz(folder / "ft-img.tar.gz", {"flags/cn.png": PNG, "flags/de.png": PNG[::-1]})
    return folder


def new_site(root: Path, archives: Path, new_database: Callable[..., str]) -> tuple[Path, dict[str, str]]:
    """A site with the old static folder and region row, both packages, and two fresh databases."""
    home = root / "home"
    (home / "static_dir" / "ft").mkdir(parents=True)
    (home / "static_dir" / "ft" / "custom.css").write_text("old")
    shutil.copytree(archives, home / "package_dir")
    databases = {"ft_db": new_database("CREATE TABLE region (id INT PRIMARY KEY, name VARCHAR(20) NULL)",
                                       "INSERT INTO region VALUES (9, 'Old')"),
                 "ft_log": new_database("CREATE TABLE note (text VARCHAR(40)) ENGINE=InnoDB")}
    return root, databases


def state(root: Path, databases: dict[str, str]) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """Files below the site's static folder, region rows, note rows (no key: a duplicate would show)."""
    return (site_files(root / "home" / "static_dir"), run_sql(databases["ft_db"], "SELECT * FROM region ORDER BY id"),
            run_sql(databases["ft_log"], "SELECT text FROM note ORDER BY text"))


def install(root: Path, databases: dict[str, str]) -> None:
    with step_context(root, databases=databases, cutpoint="startup_post_process") as ctx:
        run_step(ctx, PACKAGES)


def test_a_kill_at_any_of_ten_points_is_finished_by_the_rerun_exactly_as_one_clean_install(
        tmp_path: Path, archives: Path, new_database: Callable[..., str]) -> None:
    clean_root, clean_dbs = new_site(tmp_path / "clean", archives, new_database)
    install(clean_root, clean_dbs)
    clean = state(clean_root, clean_dbs)
    assert clean[1] == [(1, "East"), (2, "West"), (3, None)] and len(clean[2]) == 2
    assert ".ft.previous/custom.css" in clean[0]

    sites = {name: new_site(tmp_path / f"kill{i}", archives, new_database) for i, name in enumerate(POINTS)}
    children = {name: subprocess.Popen(
        [sys.executable, "-m", "tests.tasks.packages.package_kill_child",
         json.dumps({"home": str(root / "home"), "databases": dbs, "packages": PACKAGES, "point": POINTS[name]})],
        cwd=PROJECT, stderr=subprocess.PIPE, text=True) for name, (root, dbs) in sites.items()}
    for name, child in children.items():
        _, errors = child.communicate(timeout=120)
        assert child.returncode == -9, f"{name}: not killed at its point (exit {child.returncode}): {errors[-2000:]}"

    for name, (root, dbs) in sites.items():
        install(root, dbs)
        assert state(root, dbs) == clean, f"killed when {name}: the rerun did not end as a clean install"
