"""Where deployment-architecture probes run: locally where the worker runs, or on a host over SSH.

Both run the same argv (``stat``, ``df``) and share the parsing below, so the local path and the SSH
path differ only in transport. SSH uses paramiko with a key (a file path, never a password in a
config) and refuses hosts whose key is not in ``known_hosts``.
"""

from __future__ import annotations

import shlex
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tasks.core.errors import CheckError, ProbeUnavailable

COMMAND_TIMEOUT = 30.0


class Shell(Protocol):
    name: str

    def run(self, argv: Sequence[str]) -> str: ...

    def close(self) -> None: ...


class LocalShell:
    """Runs commands on the worker itself (no shell: argv as given)."""

    name = "local"

    def run(self, argv: Sequence[str]) -> str:
        try:
            done = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CheckError(f"local command {shlex.join(argv)} failed: {exc}") from None
        if done.returncode != 0:
            raise CheckError(f"local command {shlex.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class SshTarget:
    """``[user@]host[:port]`` as a rule names it."""

    host: str
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, spec: str) -> SshTarget:
        user, at, rest = spec.strip().rpartition("@")
        host, port = rest, None
        if rest.count(":") == 1:
            host, _, port_text = rest.partition(":")
            if not port_text.isdigit():
                raise ValueError(f"host {spec!r}: port must be a number")
            port = int(port_text)
        if not host or any(ch.isspace() for ch in spec.strip()):
            raise ValueError(f"host {spec!r} is not [user@]host[:port]")
        return cls(host, user if at else None, port)


class SshShell:
    """Runs commands on a remote host with paramiko; connects with 3 retries."""

    def __init__(self, target: SshTarget, *, user: str | None, port: int, key_file: str | None,
                 known_hosts: str | None, timeout: float, attempts: int = 4, wait: float = 0.5) -> None:
        import paramiko

        self.name = f"ssh {target.user or user or ''}{'@' if (target.user or user) else ''}{target.host}" \
                    f":{target.port or port}"
        self._client = paramiko.SSHClient()
        self._client.load_system_host_keys()
        if known_hosts:
            try:
                self._client.load_host_keys(known_hosts)
            except OSError as exc:
                raise CheckError(f"{self.name}: cannot read known_hosts {known_hosts}: {exc.strerror}") from None
        self._client.set_missing_host_key_policy(paramiko.RejectPolicy())
        transient = (OSError, socket.timeout, paramiko.ssh_exception.NoValidConnectionsError)
        try:
            for attempt in Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=wait, max=10),
                                    retry=retry_if_exception_type(transient), reraise=False):
                with attempt:
                    self._client.connect(target.host, port=target.port or port, username=target.user or user,
                                         key_filename=key_file, timeout=timeout, banner_timeout=timeout,
                                         auth_timeout=timeout, allow_agent=key_file is None,
                                         look_for_keys=key_file is None)
        except RetryError as exc:
            raise ProbeUnavailable(f"{self.name} unreachable after {attempts} attempts: "
                                   f"{exc.last_attempt.exception()}") from None
        except paramiko.SSHException as exc:  # bad or unknown host key, authentication refused
            raise CheckError(f"{self.name}: {type(exc).__name__}: {exc}") from None

    def run(self, argv: Sequence[str]) -> str:
        command = shlex.join(argv)
        try:
            _, stdout, stderr = self._client.exec_command(command, timeout=COMMAND_TIMEOUT)
            out = stdout.read().decode("utf-8", "replace")
            err = stderr.read().decode("utf-8", "replace")
            code = stdout.channel.recv_exit_status()
        except (OSError, EOFError) as exc:
            raise CheckError(f"{self.name}: {command} failed: {exc}") from None
        if code != 0:
            raise CheckError(f"{self.name}: {command} exited {code}: {err.strip()}")
        return out

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class PathDevice:
    device: int
    mount: str


@dataclass(frozen=True)
class DiskUsage:
    filesystem: str
    size_kb: int
    used_kb: int
    available_kb: int
    mount: str

    @property
    def free_gb(self) -> float:
        return self.available_kb / 1024 / 1024

    @property
    def free_percent(self) -> float:
        return 100.0 * self.available_kb / self.size_kb if self.size_kb else 0.0


def parse_stat(output: str, expected: int) -> list[PathDevice]:
    """Lines of ``stat -L -c '%d|%m'``: device number and mount point per path."""
    lines = [line for line in output.splitlines() if line.strip()]
    if len(lines) != expected:
        raise CheckError(f"unexpected stat output: {output[:200]!r}")
    out = []
    for line in lines:
        device, sep, mount = line.partition("|")
        if not sep or not device.strip().isdigit():
            raise CheckError(f"unexpected stat output line: {line!r}")
        out.append(PathDevice(int(device), mount.strip()))
    return out


def parse_df(output: str) -> DiskUsage:
    """The data line of ``df -P -k PATH`` (POSIX format; the mount point may contain spaces)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if len(lines) < 2:
        raise CheckError(f"unexpected df output: {output[:200]!r}")
    fields = lines[-1].split()
    if len(fields) < 6 or not all(f.isdigit() for f in fields[1:4]):
        raise CheckError(f"unexpected df output line: {lines[-1]!r}")
    return DiskUsage(fields[0], int(fields[1]), int(fields[2]), int(fields[3]), " ".join(fields[5:]))


def devices(shell: Shell, paths: Sequence[str]) -> list[PathDevice]:
    return parse_stat(shell.run(["stat", "-L", "-c", "%d|%m", "--", *paths]), len(paths))


def disk_usage(shell: Shell, path: str) -> DiskUsage:
    return parse_df(shell.run(["df", "-P", "-k", "--", path]))


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
