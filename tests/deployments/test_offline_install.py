"""Installing without internet (README: Installing): the lock, the optional embedded ClickHouse, the wheelhouse.

The offline install is proved for real: ``deployments/wheelhouse.sh --extras ''`` (a site with its own
ClickHouse server: no chdb, ~50 MB) builds a wheelhouse — the only step that uses the package index; it is
kept between runs under the temp dir, keyed by the lock's digest, and only checked again when there — then
a copy of the checkout is installed from it by ``deployments/install.sh --wheelhouse`` into a fresh
virtualenv with every way to reach an index closed (``--no-index``, ``PIP_NO_INDEX``, an index and proxies
on a closed port, no pip configuration or cache), and its ``ft-upgrade`` answers ``--version`` and
``validate``. About 40 s with the wheelhouse kept, a few seconds more without.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from blocks.clickhouse import ClickHouseLogStore, EmbeddedClickHouseMissing
from tests.conftest import PROJECT

LOCK = PROJECT / "requirements.lock"
CLOSED = "http://127.0.0.1:9/"  # the discard port: nothing listens, any request fails at once
NOT_COPIED = {".venv", ".git", ".prefect", ".ft-upgrade", "dist", "build", "__pycache__", ".pytest_cache",
              ".ruff_cache"}


def locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\;\n]+)", LOCK.read_text(), re.M)
    return {canonicalize_name(name): version for name, version in pins}


def test_the_lock_pins_every_dependency_of_pyproject_within_its_bounds() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    requirements = [*project["project"]["dependencies"], *project["build-system"]["requires"],
                    *(r for extra in project["project"]["optional-dependencies"].values() for r in extra)]
    pins = locked()
    wrong = []
    for line in requirements:
        req = Requirement(line)
        if canonicalize_name(req.name) == "ft-auto-upgrade":  # the test extra pulls in embedded-clickhouse
            continue
        version = pins.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            wrong.append(f"{line}: locked {version}")
    assert wrong == [], "requirements.lock is stale: run bash deployments/lock.sh"
    assert "chdb-core" in pins and "pytest" in pins and "setuptools" in pins


def test_chdb_is_an_extra_the_tests_pull_in() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert not any(Requirement(r).name == "chdb-core" for r in project["dependencies"])
    assert [Requirement(r).name for r in project["optional-dependencies"]["embedded-clickhouse"]] == ["chdb-core"]
    assert "ft-auto-upgrade[embedded-clickhouse]" in project["optional-dependencies"]["test"]


def test_an_embedded_store_without_chdb_says_both_ways_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "chdb", None)  # as if not installed: importlib finds no chdb
    store = ClickHouseLogStore(dsn=f"chdb://{tmp_path / 'ch'}")
    with pytest.raises(EmbeddedClickHouseMissing) as caught:
        store.get_client()  # an embedded directory is always served by the host's engine process
    message = str(caught.value)
    assert "ft-auto-upgrade[embedded-clickhouse]" in message
    assert "FT_UPGRADE_CLICKHOUSE_DSN" in message and "<site>-clickhouse" in message
    assert store._client is None and not (tmp_path / "ch").exists()  # nothing was started
    assert not (tmp_path / "ch.lock").exists(), "no engine process was started either"


def test_a_clickhouse_server_store_does_not_need_chdb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chdb", None)
    store = ClickHouseLogStore(dsn="clickhouse://default:secret@127.0.0.1:9/")  # nothing listens there
    with pytest.raises(Exception) as caught:
        store.get_client()
    assert not isinstance(caught.value, EmbeddedClickHouseMissing)


def wheelhouse_without_chdb() -> Path:
    """``wheelhouse.sh --extras ''`` into a folder kept between runs for this lock (builds use the index)."""
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    root = Path(tempfile.gettempdir()) / "ft-auto-upgrade-wheelhouse"
    root.mkdir(exist_ok=True)
    folder = root / f"{digest}-no-extras"
    with open(root / ".lock", "w") as guard:  # two sessions at once build one after the other
        fcntl.flock(guard, fcntl.LOCK_EX)
        for old in root.glob("*-no-extras"):  # built from an earlier lock
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
        result = subprocess.run(["bash", str(PROJECT / "deployments/wheelhouse.sh"), str(folder), "--extras", ""],
                                capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def offline_environment(home: Path) -> dict[str, str]:
    """The process environment without pip's settings and with every index and proxy on a closed port."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHON")) and k.lower() not in
           {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_INDEX_URL": CLOSED,
            "PIP_EXTRA_INDEX_URL": CLOSED, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "http_proxy": CLOSED, "https_proxy": CLOSED, "HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED,
            "ALL_PROXY": CLOSED, "FT_UPGRADE_HOME": str(home / "ft-upgrade"),
            "PREFECT_HOME": str(home / "prefect")}


@pytest.mark.timeout(900)
def test_a_site_with_its_own_clickhouse_installs_from_a_wheelhouse_with_no_index(tmp_path: Path) -> None:
    wheelhouse = wheelhouse_without_chdb()
    info = dict(line.split("=", 1) for line in (wheelhouse / "ft-wheelhouse.txt").read_text().splitlines())
    assert info["extras"] == "" and not list(wheelhouse.glob("chdb*")) and not list(wheelhouse.glob("pandas*"))

    site = tmp_path / "site"  # the checkout as copied to the site
    shutil.copytree(PROJECT, site, ignore=lambda _d, names: [n for n in names if n in NOT_COPIED
                                                             or n.endswith(".egg-info")])
    env = offline_environment(tmp_path / "home")
    install = subprocess.run(["bash", str(site / "deployments/install.sh"), "--wheelhouse", str(wheelhouse)],
                             capture_output=True, text=True, env=env, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    assert "no package index" in install.stdout and "starting" not in install.stdout  # no services touched

    venv = site / ".venv"
    installed = json.loads(subprocess.run([str(venv / "bin/python"), "-m", "pip", "list", "--format", "json"],
                                          capture_output=True, text=True, env=env, check=True).stdout)
    versions = {canonicalize_name(p["name"]): p["version"] for p in installed}
    pins = locked()
    assert versions.pop("ft-auto-upgrade") == "0.1.0"
    versions.pop("pip")
    versions.pop("setuptools", None)  # the venv's own, not a dependency
    assert {name: (version, pins.get(name)) for name, version in versions.items() if pins.get(name) != version} == {}
    assert "chdb-core" not in versions and "pytest" not in versions

    version = subprocess.run([str(venv / "bin/ft-upgrade"), "--version"], capture_output=True, text=True, env=env,
                             timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("ft-auto-upgrade 0.1.0"), version
    validate = subprocess.run([str(venv / "bin/ft-upgrade"), "validate"], capture_output=True, text=True, env=env,
                              cwd=site, timeout=120)
    assert validate.returncode == 0 and "valid" in validate.stdout, validate
    missing = subprocess.run([str(venv / "bin/python"), "-c", "from blocks.clickhouse import ClickHouseLogStore\n"
                              f"ClickHouseLogStore(dsn='chdb://{tmp_path / 'ch'}').get_client()"],
                             capture_output=True, text=True, env=env, cwd=site, timeout=120)
    assert missing.returncode == 1 and "install ft-auto-upgrade[embedded-clickhouse]" in missing.stderr, missing
