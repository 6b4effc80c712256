"""Fixtures for the pre-business checks: a real ZooKeeper (Debian's ``zookeeper`` package) and a real
sshd on 127.0.0.1, each on a free port with its own files in a tmp folder, stopped after the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ZOOKEEPER_JARS = (Path("/usr/share/java/zookeeper.jar"), Path("/usr/share/zookeeper/zookeeper.jar"))
SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(check: object, what: str, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f}s; log:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@dataclass(frozen=True)
class ZooKeeperServer:
    host: str
    port: int
    data_dir: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _serving(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"srvr")
        return b"Zookeeper version" in s.recv(4096)


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    """A standalone ZooKeeper (QuorumPeerMain) on 127.0.0.1; ``srvr`` and ``conf`` are whitelisted."""
    java = shutil.which("java")
    jar = next((j for j in ZOOKEEPER_JARS if j.exists()), None)
    if java is None or jar is None:
        pytest.skip("ZooKeeper needs java and the zookeeper jars: apt-get install -y zookeeper")
    root = tmp_path_factory.mktemp("zookeeper")
    data = root / "data"
    data.mkdir()
    port = free_port()
    config = root / "zoo.cfg"
    config.write_text("\n".join([
        "tickTime=2000", "initLimit=10", "syncLimit=5", f"dataDir={data}", f"clientPort={port}",
        "clientPortAddress=127.0.0.1", "admin.enableServer=false", "4lw.commands.whitelist=srvr,conf,ruok",
        "maxClientCnxns=0", ""]), encoding="utf-8")
    log = root / "zookeeper.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [java, "-Xmx256m", "-cp", f"{jar}:{jar.parent}/*", f"-Dzookeeper.log.dir={root}",
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=root)
    try:
        _wait_for(lambda: proc.poll() is None and _serving(port), "ZooKeeper", log)
        yield ZooKeeperServer("127.0.0.1", port, data)
    finally:
        _stop(proc)


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path

    @property
    def target(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """OpenSSH's sshd on 127.0.0.1 with a tmp host key and one authorized key (for the current user)."""
    keygen = shutil.which("ssh-keygen")
    if not SSHD.exists() or keygen is None:
        pytest.skip("SSH checks need sshd and ssh-keygen: apt-get install -y openssh-server")
    root = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True)
    (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
    (root / "authorized_keys").chmod(0o600)
    port = free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
        "StrictModes no", "UsePAM no", f"PidFile {root / 'sshd.pid'}", ""]), encoding="utf-8")
    host_pub = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation directory
    log = root / "sshd.log"
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc.poll() is None

        _wait_for(listening, "sshd", log, timeout=20)
        import pwd

        yield SshServer("127.0.0.1", port, pwd.getpwuid(os.getuid()).pw_name, root / "user_key",
                        root / "known_hosts")
    finally:
        _stop(proc)
