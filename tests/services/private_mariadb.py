"""A private MariaDB server (own data dir and port) that a test may stop and start at will.

Stopping the shared server would disturb every other test; this one belongs to the test alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.prefect_server import free_port


@dataclass
class PrivateMariaDB:
    datadir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.datadir.parent / "mariadbd.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             f"--socket={self.datadir.parent / 'mysqld.sock'}", "--bind-address=127.0.0.1", "--user=root",
             "--innodb-buffer-pool-size=64M", "--skip-log-bin", "--max-connections=50"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ping = subprocess.run(["mysqladmin", "-h127.0.0.1", f"-P{self.port}", "-uroot", "ping"],
                                  capture_output=True)
            if ping.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError("private MariaDB did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.proc = None


@contextmanager
def private_mariadb(base: Path) -> Iterator[PrivateMariaDB]:
    datadir = base / "data"
    base.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={datadir}",
                    "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"],
                   check=True, capture_output=True)
    server = PrivateMariaDB(datadir, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
