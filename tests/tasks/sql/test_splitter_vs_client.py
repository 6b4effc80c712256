"""The splitter against the real ``mariadb`` client, for every nasty file in tests/data/split.

1. Server view (MariaDB's general log): run ``mariadb < file``, then replay our statements through pymysql
   (queries with ``cursor.execute(text)``, USE with ``select_db``); the log rows of the two connections must
   be the same sequence of (command_type, argument). The server trims whitespace and trailing ``;`` before
   it logs a query, so this proves equivalence of what is executed.
2. Wire view (only where strace works): the COM_QUERY / COM_INIT_DB payloads the client writes to its
   socket must be our ``Statement.text`` / ``use_schema`` byte for byte.

Each file creates and drops its own ``ftsplit_*`` schemas; the test drops them again whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest
from sqlalchemy.engine import make_url

from tasks.sql.splitter import Include, Statement, decode_sql_bytes, split_statements

pytestmark = pytest.mark.mariadb

DATA = Path(__file__).resolve().parents[2] / "data" / "split"
FILES = sorted(DATA.glob("*.sql"))
SERVER = make_url(os.environ.get("FT_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306"))
Row = tuple[str, bytes]  # (command_type, argument) in mysql.general_log, or (command, payload) on the wire


def _connect() -> pymysql.Connection:
    return pymysql.connect(host=SERVER.host or "127.0.0.1", port=SERVER.port or 3306,
                           user=SERVER.username or "root", password=SERVER.password or "",
                           charset="utf8mb4", autocommit=True)


def _client_command(*extra: str) -> list[str]:
    password = [f"--password={SERVER.password}"] if SERVER.password else []
    return ["mariadb", f"--host={SERVER.host or '127.0.0.1'}", f"--port={SERVER.port or 3306}",
            f"--user={SERVER.username or 'root'}", *password, "--default-character-set=utf8mb4", *extra]


def _split(path: Path) -> list[Statement]:
    return split_statements(decode_sql_bytes(path.read_bytes(), source=path.name), source=path.name,
                            include=_included)


def _included(request: Include) -> tuple[str, str]:
    """A SOURCEd file beside the case (``*.inc``: not a case of its own); the client runs in DATA."""
    return request.name, decode_sql_bytes((DATA / request.name).read_bytes(), source=request.name)


def _as_logged(statement: Statement) -> Row:
    """How the general log shows a statement: the server trims leading whitespace and trailing whitespace and
    ';' (alloc_query()), and the utf8mb3 log table spells 4-byte characters as ``\\xF0\\x9F...``."""
    if statement.is_use:
        return ("Init DB", statement.use_schema.encode())
    text = statement.text.lstrip(" \t\n\v\f\r").rstrip(" \t\n\v\f\r;")
    text = "".join(c if ord(c) <= 0xFFFF else "".join(f"\\x{b:02X}" for b in c.encode()) for c in text)
    return ("Query", text.encode())


def _first_missing(wanted: list[Row], rows: list[Row]) -> Row | None:
    """First of ``wanted`` not found in order in ``rows`` (rows may hold more: statements run by triggers)."""
    remaining = iter(rows)
    return next((want for want in wanted if not any(row == want for row in remaining)), None)


@pytest.fixture(scope="module")
def admin() -> Iterator[pymysql.Connection]:
    if shutil.which("mariadb") is None:
        pytest.skip("the mariadb client is not installed")
    try:
        conn = _connect()
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"no MariaDB server at {SERVER.host}:{SERVER.port}: {exc}")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def general_log(admin: pymysql.Connection) -> Iterator[pymysql.Connection]:
    """General log to the mysql.general_log table for the module; the previous settings are restored after."""
    with admin.cursor() as cur:
        cur.execute("SELECT @@global.general_log, @@global.log_output")
        was_on, was_output = cur.fetchone()
        output = was_output if "TABLE" in was_output else ("FILE,TABLE" if "FILE" in was_output else "TABLE")
        cur.execute("SET GLOBAL log_output = %s, general_log = 1", (output,))
    try:
        yield admin
    finally:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL general_log = %s, log_output = %s", (was_on, was_output))


@pytest.fixture
def own_schemas(admin: pymysql.Connection, request: pytest.FixtureRequest) -> Iterator[None]:
    """Drop the file's ftsplit_* schemas before (a previous run may have died) and after the test."""
    path: Path = request.node.callspec.params["path"]
    names = sorted(set(re.findall(r"ftsplit_\w+", path.read_text(encoding="utf-8-sig"))))

    def drop() -> None:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")

    drop()
    yield
    drop()


def _log_rows(admin: pymysql.Connection, since: object, thread_id: int) -> list[Row]:
    """Rows of one connection since ``since``, in logging order (the CSV log table keeps insertion order)."""
    with admin.cursor() as cur:
        cur.execute("SELECT command_type, CAST(argument AS BINARY) FROM mysql.general_log "
                    "WHERE event_time >= %s AND thread_id = %s", (since, thread_id))
        return [(command, bytes(argument)) for command, argument in cur.fetchall()]


def _client_view(rows: list[Row], marker: bytes) -> list[Row]:
    """Drop the client's own traffic: Connect/Quit, our --init-command marker (used to find the client's
    thread id), and the ``SELECT DATABASE()`` that the client's com_use() sends right before every Init DB."""
    kept: list[Row] = []
    for command, argument in rows:
        if command in ("Connect", "Quit") or (command, argument) == ("Query", marker):
            continue
        if command == "Init DB" and kept and kept[-1] == ("Query", b"SELECT DATABASE()"):
            kept.pop()
        kept.append((command, argument))
    return kept


def _replay_view(rows: list[Row]) -> list[Row]:
    """Drop pymysql's own traffic: Connect/Quit and the ``SET NAMES utf8mb4`` it sends while connecting."""
    kept = [(command, argument) for command, argument in rows if command not in ("Connect", "Quit")]
    if kept[:1] == [("Query", b"SET NAMES utf8mb4")]:
        kept.pop(0)
    return kept


def _run_client_and_replay(
    admin: pymysql.Connection, path: Path, statements: list[Statement]
) -> tuple[list[Row], list[Row]] | None:
    """Both runs as the general log saw them, or None when the client's marker did not reach the log."""
    marker_query = f"SET @ftsplit_marker = '{uuid.uuid4().hex}'"
    with admin.cursor() as cur:
        cur.execute("SELECT NOW(6)")
        (since,) = cur.fetchone()
    run = subprocess.run(_client_command(f"--init-command={marker_query}"), input=path.read_bytes(),
                         capture_output=True, timeout=60, cwd=DATA)
    assert run.returncode == 0, f"mariadb < {path.name} failed:\n{run.stderr.decode(errors='replace')}"
    with admin.cursor() as cur:
        cur.execute("SELECT DISTINCT thread_id FROM mysql.general_log WHERE event_time >= %s "
                    "AND command_type = 'Query' AND argument = %s", (since, marker_query))
        threads = [row[0] for row in cur.fetchall()]
    if len(threads) != 1:
        return None
    client_rows = _log_rows(admin, since, threads[0])

    conn = _connect()
    replay_thread = conn.thread_id()
    try:
        for statement in statements:
            if statement.is_use:
                conn.select_db(statement.use_schema)
                continue
            with conn.cursor() as cur:
                cur.execute(statement.text)  # args=None: no %-interpolation, the text goes out untouched
                while cur.nextset():
                    pass
    finally:
        conn.close()
    replay_rows = _log_rows(admin, since, replay_thread)
    return _client_view(client_rows, marker_query.encode()), _replay_view(replay_rows)


def _logging_still_on(admin: pymysql.Connection) -> bool:
    with admin.cursor() as cur:
        cur.execute("SELECT @@global.general_log, @@global.log_output")
        on, output = cur.fetchone()
    return bool(on) and "TABLE" in output


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_client_and_splitter_replay_reach_the_server_identically(
    path: Path, general_log: pymysql.Connection, own_schemas: None
):
    statements = _split(path)
    for _attempt in range(2):  # the log is global: if another session switched it off meanwhile, once more
        result = _run_client_and_replay(general_log, path, statements)
        if result is not None and _logging_still_on(general_log):
            break
        with general_log.cursor() as cur:
            cur.execute("SET GLOBAL log_output = 'TABLE', general_log = 1")
    else:
        pytest.fail("another session keeps switching the general log off")
    client, replay = result
    assert _first_missing([_as_logged(s) for s in statements], replay) is None  # the log saw every statement
    assert client == replay  # and the client's connection did exactly the same as our replay


def _wire_commands(trace: str) -> list[Row]:
    """COM_QUERY / COM_INIT_DB packets from the bytes the client wrote to its socket (strace -xx output)."""
    stream = b"".join(bytes.fromhex(m.group(1).replace("\\x", ""))
                      for m in re.finditer(r'^\d+\s+sendto\(\d+, "((?:\\x[0-9a-f]{2})*)"', trace, re.M))
    commands: list[Row] = []
    pos, first = 0, True
    while pos + 4 <= len(stream):
        length, sequence = int.from_bytes(stream[pos : pos + 3], "little"), stream[pos + 3]
        payload = stream[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if first:  # the handshake response
            first = False
            continue
        if sequence == 0 and payload[:1] in (b"\x03", b"\x02"):
            commands.append(("Query" if payload[0] == 3 else "Init DB", payload[1:]))
    return commands


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_client_sends_our_statement_texts_byte_for_byte(
    path: Path, admin: pymysql.Connection, own_schemas: None
):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        trace_file = Path(tmp) / "trace"
        strace = ["strace", "-f", "-e", "trace=sendto", "-xx", "-s", "100000000", "-o", str(trace_file)]
        run = subprocess.run([*strace, *_client_command("--skip-ssl")], input=path.read_bytes(),
                             capture_output=True, timeout=60, cwd=DATA)
        stderr = run.stderr.decode(errors="replace")
        if "ptrace" in stderr or not trace_file.exists():
            pytest.skip(f"strace cannot trace here: {stderr.strip()[:200]}")
        assert run.returncode == 0, f"mariadb < {path.name} failed:\n{stderr}"
        sent = _wire_commands(trace_file.read_text())
    expected: list[Row] = []
    for statement in _split(path):
        if statement.is_use:  # the client's com_use() asks for the current database first
            expected += [("Query", b"SELECT DATABASE()"), ("Init DB", statement.use_schema.encode())]
        else:
            expected.append(("Query", statement.text.encode()))
    assert sent == expected
