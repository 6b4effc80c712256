"""The embedded ClickHouse engine (chdb) in a process of its own, serving a run's event log.

Importing chdb loads a library of more than 500 MB: about half a second holding the interpreter
lock, which in a run's process stalls its start (or its statements, whichever it meets). In a child
process the engine boots on the other core while the run starts, and its inserts never compete with
the statement thread. The child answers the few calls the event log makes (``command``, ``query``,
``raw_insert``) over its stdin and stdout, one pickled request and answer at a time, and ends when
the pipe closes: when the run closes the store, or when the run's process dies.

Run as ``python -m blocks.clickhouse_process`` with the DSN in ``FT_UPGRADE_ENGINE_DSN``; it imports
nothing of the project, only clickhouse-connect.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from typing import IO, Any

DSN_VARIABLE = "FT_UPGRADE_ENGINE_DSN"
_CALLS = ("command", "query", "raw_insert")
_PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class EngineProcessError(RuntimeError):
    """The engine process failed a call, or is gone (its exit code and last error lines in the message)."""


@dataclass(frozen=True)
class QueryRows:
    """What the event log reads of a query result."""

    result_rows: list[tuple[Any, ...]]


class EngineProcess:
    """A clickhouse-connect-like client whose engine runs in a child process, started at once."""

    def __init__(self, dsn: str) -> None:
        self._lock = threading.Lock()
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "blocks.clickhouse_process"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._errors, env={**os.environ, DSN_VARIABLE: dsn, "PYTHONPATH": os.pathsep.join(
                filter(None, [_PROJECT, os.environ.get("PYTHONPATH")]))})

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return self._call("command", sql, parameters=parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryRows:
        return QueryRows(self._call("query", sql, parameters=parameters))

    def raw_insert(self, table: str, column_names: list[str] | None = None, insert_block: bytes | None = None,
                   fmt: str | None = None) -> None:
        self._call("raw_insert", table, column_names=column_names, insert_block=insert_block, fmt=fmt)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            process = self._process
            if process is None:
                raise EngineProcessError("the embedded ClickHouse process is closed")
            assert process.stdin is not None and process.stdout is not None
            try:
                pickle.dump((name, args, kwargs), process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                process.stdin.flush()
                status, value = pickle.load(process.stdout)
            except (OSError, EOFError, pickle.UnpicklingError) as exc:
                raise EngineProcessError(f"the embedded ClickHouse process is gone ({exc}){self._last_words()}") \
                    from None
        if status != "ok":
            raise EngineProcessError(value)
        return value

    def _last_words(self) -> str:
        process = self._process
        code = process.poll() if process is not None else None
        self._errors.seek(0)
        lines = self._errors.read().decode("utf-8", "replace").strip().splitlines()[-5:]
        return (f"; exit code {code}" if code is not None else "") + (": " + " | ".join(lines) if lines else "")

    def close(self, timeout: float = 30.0) -> None:
        """End the child (it closes the engine, releasing its path) and wait for it."""
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            assert process.stdin is not None
            process.stdin.close()
            process.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        finally:
            if process.stdout is not None:
                process.stdout.close()
            self._errors.close()


def serve(dsn: str, requests: IO[bytes], answers: IO[bytes]) -> None:
    """Answer calls until the requests end; an error is answered, never fatal."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=dsn)
    try:
        while True:
            try:
                name, args, kwargs = pickle.load(requests)
            except EOFError:
                return
            try:
                if name not in _CALLS:
                    raise ValueError(f"unknown call {name!r}")
                result = getattr(client, name)(*args, **kwargs)
                if name == "query":
                    result = list(result.result_rows)
                elif not isinstance(result, (str, int, float)):  # a DDL's summary: nobody reads it
                    result = None
                answer: tuple[str, Any] = ("ok", result)
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
                answer = ("error", f"{type(exc).__name__}: {exc}")
            pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
    finally:
        client.close()


def main() -> None:
    """The child: answers go to the pipe the parent reads; anything the engine prints goes to stderr."""
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(os.environ[DSN_VARIABLE], sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
