"""How a rule's ``target`` becomes something to talk to, with the requirements' 3 retries.

* a logical database (``ft_db``) → the run's SQLAlchemy pool, or a clickhouse-connect client when
  its URL is ``clickhouse://`` / ``chdb://``;
* a service name (``zookeeper``) → the site profile's services, else the run's environment
  (``--env zookeeper=HOST:PORT``), else the target itself when it is a ``host:port[,host:port][/chroot]``;
* a ``host`` for architecture probes → SSH, else the worker itself.

Connections opened here are closed by :meth:`CheckEnv.close`.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from tasks.checks.hosts import LocalShell, Shell, SshShell, SshTarget
from tasks.checks.sql_builders import Dialect, dialect_for
from tasks.core.errors import CheckError, InputError, ProbeUnavailable, ResourceUnavailable

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client
    from kazoo.client import KazooClient

    from tasks.site.resources import SiteResources

ATTEMPTS = 4  # the first try and 3 retries
T = TypeVar("T")
_HOSTPORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


@dataclass(frozen=True)
class SshSettings:
    """Defaults for SSH hosts; a rule's ``host`` may override user and port."""

    user: str | None = None
    port: int = 22
    key_file: str | None = None
    known_hosts: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class ZkAddress:
    """A ZooKeeper connect string: servers and an optional chroot (``h1:2181,h2:2181/kafka``)."""

    servers: tuple[tuple[str, int], ...]
    chroot: str = ""

    @classmethod
    def parse(cls, text: str) -> ZkAddress:
        raw = re.sub(r"^(zk|zookeeper|tcp)://", "", text.strip())
        hosts, slash, chroot = raw.partition("/")
        servers = []
        for item in hosts.split(","):
            host, sep, port = item.strip().rpartition(":")
            if not sep or not port.isdigit() or not host:
                raise ValueError(f"ZooKeeper address {text!r}: {item!r} is not host:port")
            servers.append((host.strip("[]"), int(port)))
        return cls(tuple(servers), ("/" + chroot.strip("/")) if slash and chroot.strip("/") else "")

    @property
    def connect_string(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.servers) + self.chroot

    def __str__(self) -> str:
        return self.connect_string


def with_retries(call: Callable[[], T], what: str, *, transient: tuple[type[BaseException], ...],
                 attempts: int = ATTEMPTS, wait: float = 0.5) -> T:
    """``call()``, retried on ``transient`` errors; then :class:`ProbeUnavailable` naming ``what``."""
    try:
        for attempt in Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=wait, max=10),
                                retry=retry_if_exception_type(transient), reraise=False):
            with attempt:
                return call()
    except RetryError as exc:
        raise ProbeUnavailable(f"{what} unreachable after {attempts} attempts: {exc.last_attempt.exception()}") \
            from None
    raise AssertionError("unreachable")  # pragma: no cover


def four_letter_word(host: str, port: int, word: str, *, timeout: float = 5.0) -> str:
    """Send a ZooKeeper four-letter command (``srvr``, ``conf``) and read the whole answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks).decode("utf-8", "replace")
    if "not currently serving requests" in answer:
        raise ConnectionError(f"ZooKeeper {host}:{port} is not serving requests (no quorum yet?)")  # retried
    if "is not executed because it is not in the whitelist" in answer:
        raise CheckError(f"ZooKeeper {host}:{port} refuses '{word}': add it to 4lw.commands.whitelist")
    return answer


@dataclass
class CheckEnv:
    """Everything probes reach the site through; one per step run."""

    resources: SiteResources
    environment: Mapping[str, Any] = field(default_factory=dict)
    ssh: SshSettings = field(default_factory=SshSettings)
    wait: float = 0.5
    _clickhouse: dict[str, Client] = field(default_factory=dict)
    _shells: dict[str, Shell] = field(default_factory=dict)

    def retry(self, call: Callable[[], T], what: str, *, transient: tuple[type[BaseException], ...]) -> T:
        return with_retries(call, what, transient=transient, wait=self.wait)

    def address(self, target: str) -> str:
        """A service name or a literal address → the address (profile, then run environment, then literal)."""
        found = self.resources.service_url(target) or self.environment.get(target)
        if found:
            return str(found)
        first = re.sub(r"^(zk|zookeeper|tcp)://", "", target).split("/", 1)[0].split(",")[0]
        if _HOSTPORT.match(first):
            return target
        raise CheckError(f"no address for {target!r}: add it to the site profile's services, or pass "
                         f"--env {target}=HOST:PORT")

    def zookeeper(self, target: str) -> ZkAddress:
        try:
            return ZkAddress.parse(self.address(target))
        except ValueError as exc:
            raise CheckError(str(exc)) from None

    def ask_zookeeper(self, target: str, word: str, parse: Callable[[str], T]) -> list[tuple[str, str, T]]:
        """Every server's parsed answer to a four-letter word: ``(host, "ZooKeeper h:p", value)``."""
        out = []
        for host, port in self.zookeeper(target).servers:
            where = f"ZooKeeper {host}:{port}"
            answer = self.retry(lambda h=host, p=port: four_letter_word(h, p, word), where, transient=(OSError,))
            try:
                out.append((host, where, parse(answer)))
            except ValueError as exc:
                raise CheckError(f"{where}: {exc}") from None
        return out

    def database_kind(self, name: str) -> Dialect:
        try:
            return dialect_for(self.resources.database_url(name).drivername)
        except (InputError, ValueError) as exc:
            raise CheckError(f"target {name!r}: {exc}") from None

    def engine(self, name: str) -> Engine:
        try:
            return self.resources.engine(name)
        except ResourceUnavailable as exc:
            raise ProbeUnavailable(str(exc)) from None
        except InputError as exc:
            raise CheckError(str(exc)) from None

    def clickhouse(self, name: str) -> Client:
        """A clickhouse-connect client for a logical database whose URL is ClickHouse (or chdb)."""
        if name in self._clickhouse:
            return self._clickhouse[name]
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import OperationalError

        url = self.resources.database_url(name)
        shown = url.render_as_string(hide_password=True)
        dsn = url.render_as_string(hide_password=False)
        if url.drivername == "clickhousedb":
            dsn = "clickhouse" + dsn[len("clickhousedb"):]
        if dsn.startswith("chdb:"):
            from blocks.clickhouse import EmbeddedClickHouseMissing, require_embedded_engine

            try:
                require_embedded_engine(dsn)
            except EmbeddedClickHouseMissing as exc:
                raise CheckError(f"target {name!r}: {exc}") from None

        def connect() -> Client:
            client = clickhouse_connect.get_client(dsn=dsn)
            client.command("SELECT 1")
            return client

        client = self.retry(connect, f"ClickHouse {name!r} ({shown})", transient=(OperationalError, OSError))
        self._clickhouse[name] = client
        return client

    def kazoo(self, address: ZkAddress) -> KazooClient:
        """A started kazoo client (read-only use); the caller stops it."""
        from kazoo.client import KazooClient
        from kazoo.handlers.threading import KazooTimeoutError

        def connect() -> KazooClient:
            client = KazooClient(hosts=address.connect_string, timeout=5.0, read_only=True)
            try:
                client.start(timeout=5.0)
            except Exception:
                client.close()
                raise
            return client

        return self.retry(connect, f"ZooKeeper {address}", transient=(KazooTimeoutError, OSError))

    def shell(self, host: str | None) -> Shell:
        """The worker itself, or an SSH session to ``host`` (reused for the step's run)."""
        key = host or ""
        if key not in self._shells:
            if host is None:
                self._shells[key] = LocalShell()
            else:
                try:
                    target = SshTarget.parse(host)
                except ValueError as exc:
                    raise CheckError(str(exc)) from None
                s = self.ssh
                self._shells[key] = SshShell(target, user=s.user, port=s.port, key_file=s.key_file,
                                             known_hosts=s.known_hosts, timeout=s.timeout, wait=self.wait)
        return self._shells[key]

    def close(self) -> None:
        for client in self._clickhouse.values():
            client.close()
        self._clickhouse.clear()
        for shell in self._shells.values():
            shell.close()
        self._shells.clear()
