"""The embedded ClickHouse engine (chdb) of a data directory, in one process that every process of the host shares.

chdb opens a data directory in one process only (the engine locks ``<dir>/status``), so two runs on one
worker host, or ``doctor`` beside a run, could not both log. Here no process of the project opens an
embedded directory itself: the first that needs it starts this module as a process of its own
(``python -m blocks.clickhouse_process``, detached, so it outlives its starter), which opens the engine and
answers the calls the event log makes (``command``, ``query``, ``raw_insert``) over a Unix socket beside
the directory, one connection and ClickHouse session per client. It ends once no client has been
connected for ``FT_UPGRADE_CLICKHOUSE_IDLE_SECONDS`` (default 60).

* Who starts it: a client that finds no socket to connect to takes ``<dir>.start.lock``, tries again and
  only then starts one, so clients starting together start one process. The process holds ``<dir>.lock``
  from before it opens the engine until it has closed it: one started while an idle one is still closing
  waits for it instead of failing to open the engine.
* Why one process per directory rather than per-run spool files that an engine ingests: readers
  (``doctor``, ``events()``, log cleanup) need a live engine too; the engine's import (more than 500 MB,
  half a second holding the interpreter lock) happens once per host, not once per run, and never in a
  run's process; an event is queryable about half a second after the run logged it.
* Nothing is lost: a call whose connection breaks (the process killed, or ending as the call came) is
  sent again on a new connection, starting a new process if needed, for up to ``RETRY_SECONDS``. Inserts
  carry a deduplication token, so one sent twice is stored once. An insert that still cannot be delivered
  is written to ``<dir>.spool/`` (:func:`spool`) with the DDL of its table, and the next process serving
  the directory ingests it, token and all.

The protocol is pickle over a socket only its owner may open (0600, beside the directory, or in a 0700
folder under the temp dir when that path is too long for a socket). The process imports nothing of the
project, only clickhouse-connect.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pickle
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

DSN_VARIABLE = "FT_UPGRADE_ENGINE_DSN"
IDLE_VARIABLE = "FT_UPGRADE_CLICKHOUSE_IDLE_SECONDS"
IDLE_SECONDS = 60.0
# A broken connection is retried this long (a new process included), and a process being started may take
# this long to answer (importing chdb on a busy host), before an insert is spooled instead: well within
# the 30 s a run's event writer is given to finish when the run ends.
RETRY_SECONDS = 20.0
START_SECONDS = 20.0
INGEST_SECONDS = 5.0  # how often the process looks for spooled inserts
_CALLS = ("command", "query", "raw_insert")
_PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes
_MAX_LOG_BYTES = 1 << 20


class EngineProcessError(RuntimeError):
    """The engine process failed a call, or could not be reached (its last log lines in the message)."""


@dataclass(frozen=True)
class QueryRows:
    """What the event log reads of a query result."""

    result_rows: list[tuple[Any, ...]]


def embedded_directory(dsn: str) -> Path | None:
    """The data directory of a ``chdb:///abs/dir`` DSN, resolved; None for an in-memory engine."""
    path = urlsplit(dsn).path
    if not path or path in ("/", "/memory", "/:memory:") or urlsplit(dsn).netloc not in ("", "localhost"):
        return None
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class StorePaths:
    """Where the process of one data directory keeps its lock, socket, spool and log."""

    directory: Path

    @property
    def lock(self) -> Path:
        """Held by the serving process for its whole life."""
        return self.directory.with_name(self.directory.name + ".lock")

    @property
    def start_lock(self) -> Path:
        """Held by a client while it starts a process."""
        return self.directory.with_name(self.directory.name + ".start.lock")

    @property
    def spool(self) -> Path:
        return self.directory.with_name(self.directory.name + ".spool")

    @property
    def log(self) -> Path:
        return self.directory.with_name(self.directory.name + ".log")

    @property
    def socket(self) -> str:
        beside = str(self.directory.with_name(self.directory.name + ".sock"))
        if len(beside.encode()) <= _MAX_SOCKET_PATH:
            return beside
        folder = Path(tempfile.gettempdir()) / f"ft-upgrade-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
            raise EngineProcessError(f"{folder} must be this user's own folder (mode 0700) to hold its socket")
        return str(folder / (hashlib.sha256(str(self.directory).encode()).hexdigest()[:24] + ".sock"))


def _acquire(path: Path, *, timeout: float) -> int | None:
    """An exclusive ``flock`` on ``path`` (created 0600), waited for up to ``timeout``: its descriptor, or None.

    The lock lasts until the descriptor is closed, or the process ends.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.05)


@contextlib.contextmanager
def _flock(path: Path, *, timeout: float) -> Iterator[bool]:
    """:func:`_acquire` for a block: yields whether the lock is held, releases it after."""
    fd = _acquire(path, timeout=timeout)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


def _last_words(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
    except OSError:
        return ""
    return ": " + " | ".join(lines) if lines else ""


class EngineProcess:
    """A clickhouse-connect-like client of the host's engine process for a ``chdb:///dir`` DSN.

    Connects on creation (starting the process if none serves the directory). One connection, one
    ClickHouse session; calls are serialised.
    """

    def __init__(self, dsn: str) -> None:
        directory = embedded_directory(dsn)
        if directory is None:
            raise ValueError("an engine process serves a data directory, not an in-memory engine")
        self.dsn = dsn
        self.paths = StorePaths(directory)
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._stream: IO[bytes] | None = None
        self._closed = False
        with self._lock:
            self._connect(time.monotonic() + START_SECONDS)

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self._call("command", sql, parameters=parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryRows:
        return QueryRows(self._call("query", sql, parameters=parameters))

    def raw_insert(self, table: str, column_names: list[str] | None = None, insert_block: bytes | None = None,
                   fmt: str | None = None, settings: dict[str, Any] | None = None) -> None:
        """Insert once: a token makes a second delivery of the same block (after a lost answer) a no-op."""
        settings = {"insert_deduplication_token": uuid.uuid4().hex, **(settings or {})}
        self._call("raw_insert", table, column_names=column_names, insert_block=insert_block, fmt=fmt,
                   settings=settings)

    @property
    def server_pid(self) -> int | None:
        """The pid of the engine process this client is connected to (the socket's peer), if connected."""
        with self._lock:
            if self._socket is None:
                return None
            pid, _uid, _gid = struct.unpack("3i", self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                           struct.calcsize("3i")))
            return int(pid)

    # ---- connection ---------------------------------------------------------------------------------

    def _try_connect(self) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.paths.socket)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return False
        self._socket, self._stream = sock, sock.makefile("rwb")
        return True

    def _connect(self, deadline: float) -> None:
        """Connect to the directory's process, starting one if none answers (one starter at a time)."""
        if self._try_connect():
            return
        self.paths.directory.parent.mkdir(parents=True, exist_ok=True)
        with _flock(self.paths.start_lock, timeout=max(deadline - time.monotonic(), 0)) as held:
            if self._try_connect():
                return
            if not held:
                raise EngineProcessError(f"the embedded ClickHouse process of {self.paths.directory} did not "
                                         f"start in {START_SECONDS:.0f}s (another process is starting it)")
            started = self._start()
            while not self._try_connect():
                if started.poll() is not None:
                    raise EngineProcessError(
                        f"the embedded ClickHouse process of {self.paths.directory} ended "
                        f"(exit code {started.returncode}){_last_words(self.paths.log)}")
                if time.monotonic() >= deadline:
                    raise EngineProcessError(f"the embedded ClickHouse process of {self.paths.directory} did "
                                             f"not answer within {START_SECONDS:.0f}s{_last_words(self.paths.log)}")
                time.sleep(0.05)

    def _start(self) -> subprocess.Popen[bytes]:
        """Start the process detached (its own session, output to its log): it outlives this one."""
        with contextlib.suppress(OSError):
            if self.paths.log.stat().st_size > _MAX_LOG_BYTES:
                self.paths.log.unlink()
        log = os.open(self.paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            env = {**os.environ, DSN_VARIABLE: self.dsn,
                   "PYTHONPATH": os.pathsep.join(filter(None, [_PROJECT, os.environ.get("PYTHONPATH")]))}
            process = subprocess.Popen([sys.executable, "-m", "blocks.clickhouse_process"], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=log, env=env, start_new_session=True)
        finally:
            os.close(log)
        _reap_when_done(process)
        return process

    def _disconnect(self) -> None:
        stream, sock, self._stream, self._socket = self._stream, self._socket, None, None
        for part in (stream, sock):
            if part is not None:
                with contextlib.suppress(OSError):
                    part.close()

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Send one call; a broken connection is retried on a new one until ``RETRY_SECONDS`` have passed."""
        deadline = time.monotonic() + RETRY_SECONDS
        with self._lock:
            while True:
                if self._closed:
                    raise EngineProcessError("the embedded ClickHouse client is closed")
                try:
                    if self._stream is None:
                        self._connect(max(deadline, time.monotonic() + 1))
                    assert self._stream is not None
                    pickle.dump((name, args, kwargs), self._stream, protocol=pickle.HIGHEST_PROTOCOL)
                    self._stream.flush()
                    status, value = pickle.load(self._stream)
                    break
                except (OSError, EOFError, pickle.UnpicklingError) as exc:
                    self._disconnect()
                    if time.monotonic() >= deadline:
                        raise EngineProcessError(f"the embedded ClickHouse process of {self.paths.directory} is "
                                                 f"gone ({exc}){_last_words(self.paths.log)}") from None
                    time.sleep(0.1)
        if status != "ok":
            raise EngineProcessError(value)
        return value

    def close(self) -> None:
        """Close this connection (the process goes on serving others, and ends when idle)."""
        with self._lock:
            self._closed = True
            self._disconnect()


def _reap_when_done(process: subprocess.Popen[bytes]) -> None:
    """Wait for a started process in a daemon thread, so it never lingers as a zombie of its starter."""
    threading.Thread(target=process.wait, name="ft-clickhouse-reaper", daemon=True).start()


# ---- spool: inserts that could not be delivered ---------------------------------------------------------

def spool(dsn: str, *, table: str, column_names: Sequence[str], body: bytes, fmt: str,
          schema: Sequence[str]) -> Path:
    """Keep an insert for the next process serving the directory; ``schema`` creates its table if missing."""
    directory = embedded_directory(dsn)
    if directory is None:
        raise ValueError("only a data directory has a spool")
    folder = StorePaths(directory).spool
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    partial = folder / f".{token}.part"
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        pickle.dump({"table": table, "column_names": list(column_names), "body": body, "fmt": fmt,
                     "schema": list(schema), "token": token}, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        os.fsync(out.fileno())
    final = folder / f"{time.time_ns()}-{token}.insert"
    os.replace(partial, final)  # a reader never sees half a file
    return final


def ingest_spool(client: Any, folder: Path) -> int:
    """Insert every spooled file, oldest first, and remove it; one that fails stays for the next round."""
    done = 0
    for path in sorted(folder.glob("*.insert")) if folder.is_dir() else []:
        try:
            with open(path, "rb") as source:
                item = pickle.load(source)
            for ddl in item["schema"]:
                client.command(ddl)
            client.raw_insert(item["table"], column_names=item["column_names"], insert_block=item["body"],
                              fmt=item["fmt"], settings={"insert_deduplication_token": item["token"]})
        except Exception as exc:  # noqa: BLE001 - kept for the next round, and said in the log
            print(f"spooled insert {path.name} not ingested yet: {type(exc).__name__}: {exc}", file=sys.stderr,
                  flush=True)
            continue
        path.unlink()
        done += 1
    return done


# ---- the process ----------------------------------------------------------------------------------------

def _answer(client: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        if name not in _CALLS:
            raise ValueError(f"unknown call {name!r}")
        result = getattr(client, name)(*args, **kwargs)
        if name == "query":
            result = list(result.result_rows)
        elif not isinstance(result, (str, int, float, list, tuple)):  # a DDL's summary: nobody reads it
            result = None
        return "ok", result
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
        return "error", f"{type(exc).__name__}: {exc}"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, address: str, dsn: str) -> None:
        self.dsn = dsn
        self.clients = 0
        self.idle_since = time.monotonic()
        self.count_lock = threading.Lock()
        super().__init__(address, _Connection)

    def joined(self, delta: int) -> None:
        with self.count_lock:
            self.clients += delta
            if self.clients == 0:
                self.idle_since = time.monotonic()

    def idle_for(self) -> float:
        with self.count_lock:
            return 0.0 if self.clients else time.monotonic() - self.idle_since


class _Connection(socketserver.StreamRequestHandler):
    """One client: its own clickhouse-connect client (its own session), calls answered in order."""

    server: _Server

    def handle(self) -> None:
        import clickhouse_connect

        self.server.joined(1)
        client = None
        try:
            client = clickhouse_connect.get_client(dsn=self.server.dsn)
            while True:
                try:
                    name, args, kwargs = pickle.load(self.rfile)
                except (EOFError, OSError, pickle.UnpicklingError):
                    return
                pickle.dump(_answer(client, name, args, kwargs), self.wfile, protocol=pickle.HIGHEST_PROTOCOL)
                self.wfile.flush()
        finally:
            if client is not None:
                client.close()
            self.server.joined(-1)


def serve(dsn: str, idle_seconds: float) -> int:
    """Open the engine, serve until idle for ``idle_seconds``, close the engine; the exit code."""
    directory = embedded_directory(dsn)
    if directory is None:
        print("FT_UPGRADE_ENGINE_DSN must name a data directory (chdb:///abs/dir)", file=sys.stderr)
        return 2
    paths = StorePaths(directory)
    # held until this process has ended (never released by hand): by then the engine's own lock on the
    # directory is gone too, so a process started meanwhile opens the engine once it has the lock
    if _acquire(paths.lock, timeout=START_SECONDS) is None:
        print(f"another engine process keeps {paths.lock}", file=sys.stderr)
        return 1
    import clickhouse_connect

    try:
        engine = clickhouse_connect.get_client(dsn=dsn)  # opens the engine, kept open while serving
    except Exception as exc:  # noqa: BLE001 - one line for the starter to show (see _last_words)
        print(f"cannot open the engine at {directory}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paths.socket)  # a process that died left it: nobody serves it (we hold the lock)
        previous = os.umask(0o177)  # the socket is the owner's only (the protocol is pickle)
        try:
            server = _Server(paths.socket, dsn)
        finally:
            os.umask(previous)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        ingested_at = 0.0
        try:
            while server.idle_for() < idle_seconds:
                if time.monotonic() - ingested_at >= INGEST_SECONDS:
                    ingest_spool(engine, paths.spool)
                    ingested_at = time.monotonic()
                time.sleep(0.2)
        finally:
            os.unlink(paths.socket)  # new clients start a new process, which waits for our lock
            server.shutdown()
            server.server_close()
        ingest_spool(engine, paths.spool)
    finally:
        engine.close()
    return 0


def main() -> None:
    """The process: one data directory, its output to its log (the starter passed it as stdout/stderr).

    SIGTERM ends it as going idle does (socket removed, engine closed); its clients move to a new one.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    idle = float(os.environ.get(IDLE_VARIABLE) or IDLE_SECONDS)
    sys.exit(serve(os.environ[DSN_VARIABLE], idle))


if __name__ == "__main__":
    main()
