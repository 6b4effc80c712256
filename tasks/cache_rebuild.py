"""Redis cache rebuild with no moment of an empty or half-built cache.

Layout of one cache ``namespace`` (e.g. ``ft:cache``)::

    ft:cache:current                 → "g317500-20240101100000-1a2b"   (the pointer readers follow)
    ft:cache:g317500-…-1a2b:user:42  → a row (string: JSON or a template; hash: columns)
    ft:cache:building                → set of generations being built (removed if a build dies)
    ft:cache:retired                 → set of generations switched away from, not yet dropped

A rebuild writes a new generation with pipelined ``SET … NX`` / ``HSET`` batches (raw RESP, one
send and one read pass per batch), verifies it (every key newly created, a server-side ``SCAN``
count, a read-back sample), then moves the pointer in one Lua call. Readers resolve the pointer
per request (:func:`read`), so they see the old generation or the new one, never a missing key.
The old generation is dropped after a drain pause for reads that resolved the pointer just
before the switch. A failed build drops its own half-built generation and leaves the pointer.

Pure parts (templates, names, value encoding) are plain functions; :class:`CacheBuilder` does I/O.
"""

from __future__ import annotations

import json
import queue
import random
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Literal, TypeVar

import redis

from tasks.errors import UpgradeFailed

T = TypeVar("T")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")

SWITCH_SCRIPT = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
if old and old ~= ARGV[1] then redis.call('SADD', KEYS[3], old) end
return old
"""


class CacheBuildFailed(UpgradeFailed):
    """The new generation could not be built or verified; it was dropped and readers still use the old one."""


# ---------------------------------------------------------------- pure: names and templates


@dataclass(frozen=True)
class CacheLayout:
    """Key names of one cache namespace."""

    namespace: str

    @property
    def pointer(self) -> str:
        return f"{self.namespace}:current"

    @property
    def building(self) -> str:
        return f"{self.namespace}:building"

    @property
    def retired(self) -> str:
        return f"{self.namespace}:retired"

    def prefix(self, generation: str) -> str:
        return f"{self.namespace}:{generation}:"

    def pattern(self, generation: str) -> str:
        """A SCAN pattern for exactly one generation's keys (glob characters escaped)."""
        return _GLOB_SPECIAL.sub(r"\\\1", self.prefix(generation)) + "*"


def new_generation(version_code: int, now: datetime, token: str) -> str:
    """``g317500-20240101100000-1a2b``: sortable by version and time, unique by token."""
    return f"g{version_code}-{now:%Y%m%d%H%M%S}-{token}"


def template_fields(template: str) -> list[str]:
    """The column names a key/value template uses; only plain ``{column}`` or ``{column:spec}``.

    Raises:
        ValueError: a malformed template, attribute/index access, positional or no fields.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template {template!r}: {exc}") from None
    names = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not _IDENT.match(name):
            raise ValueError(f"template {template!r}: '{{{name}}}' must name a column (letters, digits, _)")
        names.append(name)
    return names


def positional(template: str, columns: Sequence[str]) -> str:
    """Rewrite ``user:{id}`` to ``user:{0}`` for a row tuple with ``columns`` (fast formatting).

    Raises:
        KeyError: the template names a column the query does not return.
    """
    index = {c: i for i, c in enumerate(columns)}
    out = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is not None:
            if name not in index:
                raise KeyError(name)
            out.append("{" + str(index[name]) + (f"!{conversion}" if conversion else "")
                       + (f":{spec}" if spec else "") + "}")
    return "".join(out)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot store {type(value).__name__} in the cache")


def row_json(columns: Sequence[str], row: Sequence[Any]) -> bytes:
    """The default string value: the row as a compact JSON object (decimals as strings, times ISO)."""
    return json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False, separators=(",", ":"),
                      default=_json_default).encode()


def field_bytes(value: object) -> bytes:
    """A hash field value: NULL is an empty string, bytes stay bytes, the rest is ``str()``."""
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return str(value).encode()


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float(count)


# ---------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetSpec:
    """How rows become keys: ``kind`` string (``value`` template or row JSON) or hash (``fields``)."""

    name: str
    key: str
    kind: Literal["string", "hash"] = "string"
    value: str | None = None
    fields: tuple[str, ...] | None = None
    ttl_seconds: int | None = None


@dataclass
class DatasetOutcome:
    name: str
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    samples: list[tuple[bytes, str, object]] = field(default_factory=list)

    @property
    def keys_per_second(self) -> float:
        return rate(self.created, self.seconds)


class RowEncoder:
    """Turns row tuples of known columns into (key, command parts) for one dataset."""

    def __init__(self, spec: DatasetSpec, columns: Sequence[str], prefix: str) -> None:
        self.spec, self.columns = spec, list(columns)
        try:
            self._key = (prefix.replace("{", "{{").replace("}", "}}") + positional(spec.key, columns)).format
            self._value = positional(spec.value, columns).format if spec.value is not None else None
            self._fields = [(c.encode(), self.columns.index(c)) for c in (spec.fields or columns)]
        except (KeyError, ValueError) as exc:
            raise CacheBuildFailed(f"dataset {spec.name}: column {exc} is not returned by its query "
                                   f"(columns: {', '.join(columns)})") from None

    def key(self, row: Sequence[Any]) -> bytes:
        return self._key(*row).encode()

    def string_value(self, row: Sequence[Any]) -> bytes:
        return self._value(*row).encode() if self._value else row_json(self.columns, row)

    def hash_fields(self, row: Sequence[Any]) -> list[tuple[bytes, bytes]]:
        return [(name, field_bytes(row[i])) for name, i in self._fields]


# ---------------------------------------------------------------- I/O: pipelined writer


class PipelineWriter:
    """Packs commands as raw RESP into one buffer per batch and checks every reply.

    Faster than ``redis.Pipeline`` (no per-command objects); each batch is one ``send`` and one
    pass of reads. Replies tell whether each key was new (``SET NX`` → OK, ``HSET`` → all fields
    added), which is how duplicate keys are counted.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._conn = client.connection_pool.get_connection()
        self._buffer = bytearray()
        self._expect: list[int] = []  # per queued command: >0 fields expected (HSET), 0 SET NX, -1 EXPIRE

    def set_new(self, key: bytes, value: bytes, ttl: int | None) -> None:
        if ttl:
            ttl_b = str(ttl).encode()
            self._buffer += b"*6\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$2\r\nNX\r\n$2\r\nEX\r\n$%d\r\n%b\r\n" % (
                len(key), key, len(value), value, len(ttl_b), ttl_b)
        else:
            self._buffer += b"*4\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$2\r\nNX\r\n" % (
                len(key), key, len(value), value)
        self._expect.append(0)

    def hset_new(self, key: bytes, fields: Sequence[tuple[bytes, bytes]], ttl: int | None) -> None:
        parts = [b"HSET", key]
        for name, value in fields:
            parts += (name, value)
        self._pack(parts)
        self._expect.append(len(fields))
        if ttl:
            self._pack([b"EXPIRE", key, str(ttl).encode()])
            self._expect.append(-1)

    def _pack(self, parts: Sequence[bytes]) -> None:
        self._buffer += b"*%d\r\n" % len(parts)
        for part in parts:
            self._buffer += b"$%d\r\n%b\r\n" % (len(part), part)

    @property
    def pending(self) -> int:
        return len(self._expect)

    def flush(self) -> tuple[int, int]:
        """Send the batch, read every reply: (keys created, keys that already existed)."""
        if not self._expect:
            return 0, 0
        created = duplicates = 0
        try:
            self._conn.send_packed_command([bytes(self._buffer)], check_health=False)
            for expected in self._expect:
                reply = self._conn.read_response()
                if expected < 0:
                    continue
                if (reply in (b"OK", "OK")) if expected == 0 else reply == expected:
                    created += 1
                else:
                    duplicates += 1
        except BaseException:
            self._conn.disconnect()  # replies may be left unread: never reuse this socket
            raise
        finally:
            self._buffer.clear()
            self._expect.clear()
        return created, duplicates

    def close(self) -> None:
        self.client.connection_pool.release(self._conn)


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Produce ``items`` in a background thread (e.g. SQL fetch) while the caller consumes (Redis writes)."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            box.put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's own cleanup (e.g. releasing its database cursor) runs here

    worker = threading.Thread(target=produce, name="cache-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(0.05)


# ---------------------------------------------------------------- I/O: the builder


class CacheBuilder:
    """Builds one generation of a namespace, verifies it, switches the pointer, drops generations."""

    def __init__(self, client: redis.Redis, layout: CacheLayout, generation: str, *,
                 on_keys: Callable[[int], None] = lambda n: None, sample_size: int = 200) -> None:
        self.client, self.layout, self.generation = client, layout, generation
        self.on_keys = on_keys
        self.sample_size = sample_size
        self._rng = random.Random()

    def current(self) -> str | None:
        value = self.client.get(self.layout.pointer)
        return value.decode() if isinstance(value, bytes) else value

    def begin(self) -> None:
        self.client.sadd(self.layout.building, self.generation)

    def write(self, spec: DatasetSpec, batches: Iterable[tuple[Sequence[str], Sequence[Sequence[Any]]]]
              ) -> DatasetOutcome:
        """Write every row of a dataset; ``batches`` yields (columns, rows) chunks."""
        outcome = DatasetOutcome(spec.name)
        start = time.perf_counter()
        writer = PipelineWriter(self.client)
        encoder: RowEncoder | None = None
        try:
            for columns, rows in batches:
                if encoder is None:
                    encoder = RowEncoder(spec, columns, self.layout.prefix(self.generation))
                self._queue(writer, encoder, rows, outcome)
                created, duplicates = writer.flush()
                outcome.created += created
                outcome.duplicates += duplicates
                outcome.rows += len(rows)
                self.on_keys(created)
        finally:
            writer.close()
        outcome.seconds = time.perf_counter() - start
        return outcome

    def _queue(self, writer: PipelineWriter, encoder: RowEncoder, rows: Sequence[Sequence[Any]],
               outcome: DatasetOutcome) -> None:
        spec = encoder.spec
        if spec.kind == "hash":
            for row in rows:
                writer.hset_new(encoder.key(row), encoder.hash_fields(row), spec.ttl_seconds)
        else:
            for row in rows:
                writer.set_new(encoder.key(row), encoder.string_value(row), spec.ttl_seconds)
        wanted = min(self.sample_size - len(outcome.samples), max(1, self.sample_size // 20), len(rows))
        for row in self._rng.sample(list(rows), wanted) if wanted > 0 else ():
            expected: object = (dict(encoder.hash_fields(row)) if spec.kind == "hash"
                                else encoder.string_value(row))
            outcome.samples.append((encoder.key(row), spec.kind, expected))

    def count(self) -> int:
        """Keys of this generation as Redis counts them (SCAN, not our own bookkeeping)."""
        total, cursor = 0, 0
        pattern = self.layout.pattern(self.generation)
        while True:
            cursor, keys = self.client.scan(cursor, match=pattern, count=20_000)
            total += len(keys)
            if cursor == 0:
                return total

    def check_samples(self, outcomes: Sequence[DatasetOutcome]) -> list[str]:
        """Read back the sampled keys and compare with what was written; mismatches as messages."""
        problems = []
        for outcome in outcomes:
            for key, kind, expected in outcome.samples:
                actual = self.client.hgetall(key) if kind == "hash" else self.client.get(key)
                if actual != expected:
                    problems.append(f"dataset {outcome.name}: key {key.decode()!r} reads back "
                                    f"{str(actual)[:80]!r}, wrote {str(expected)[:80]!r}")
        return problems

    def switch(self) -> str | None:
        """Point readers at this generation in one atomic step; returns the generation replaced."""
        old = self.client.eval(SWITCH_SCRIPT, 3, self.layout.pointer, self.layout.building, self.layout.retired,
                               self.generation)
        return old.decode() if isinstance(old, bytes) else old

    def drop(self, generation: str, *, on_keys: Callable[[int], None] = lambda n: None) -> int:
        """Remove a generation's keys (SCAN + UNLINK in batches) and its bookkeeping entries."""
        removed, cursor = 0, 0
        pattern = self.layout.pattern(generation)
        while True:
            cursor, keys = self.client.scan(cursor, match=pattern, count=20_000)
            if keys:
                removed += self.client.unlink(*keys)
                on_keys(len(keys))
            if cursor == 0:
                break
        self.client.srem(self.layout.building, generation)
        self.client.srem(self.layout.retired, generation)
        return removed

    def leftovers(self) -> list[str]:
        """Generations a crashed or interrupted earlier run left behind (never the current one)."""
        current = self.current()
        names = self.client.sunion(self.layout.building, self.layout.retired)
        found = sorted(n.decode() if isinstance(n, bytes) else n for n in names)
        return [g for g in found if g != current and g != self.generation]


def read(client: redis.Redis, namespace: str, key: str) -> bytes | None:
    """How a reader gets a cached value: follow the pointer, then read the key (two round trips).

    A generation is kept for the drain time after the switch, so a read that resolved the old
    pointer a moment before the switch still finds its key.
    """
    layout = CacheLayout(namespace)
    generation = client.get(layout.pointer)
    if generation is None:
        return None
    name = generation.decode() if isinstance(generation, bytes) else generation
    return client.get(layout.prefix(name) + key)

