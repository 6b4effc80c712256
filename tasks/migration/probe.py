"""What the throttle looks at: each server's ``Threads_running`` and the operator's pause flags."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine


class LoadProbe:
    """Reads load and pause flags; :func:`tasks.migration.throttle.pause_reason` decides."""

    def __init__(self, servers: Mapping[str, Engine], *, pause_file: Path | None = None,
                 pause_redis_key: str | None = None, redis: Callable[[], Any] | None = None) -> None:
        self.servers = dict(servers)
        self.pause_file = pause_file
        self.pause_redis_key = pause_redis_key
        self._redis = redis

    def threads_running(self) -> dict[str, int]:
        """``Threads_running`` per server (it counts this probe's own thread too)."""
        found: dict[str, int] = {}
        for name, engine in self.servers.items():
            with engine.connect() as conn:
                row = conn.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Threads_running'").first()
            found[name] = int(row[1]) if row else 0
        return found

    def flag(self) -> str | None:
        """The reason to pause given by an operator flag, else None."""
        if self.pause_file is not None and self.pause_file.exists():
            return f"pause flag file {self.pause_file} exists"
        if self.pause_redis_key and self._redis is not None and self._redis().exists(self.pause_redis_key):
            return f"pause flag Redis key {self.pause_redis_key} is set"
        return None
