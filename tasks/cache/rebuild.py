"""Redis cache rebuild with no moment of an empty or half-built cache, in one of two modes.

**In place** (the default when every dataset gives the ``pattern`` of the keys it owns): the keys the
services read (``<namespace>:<key>``, e.g. ``ft:cache:user:42``) are overwritten where they are, with
pipelined ``SET`` (a hash is replaced by one Lua call: ``DEL`` + ``HSET`` atomically), then the keys of
each pattern the new data no longer has are deleted, and every key written is checked to exist and a
sample read back. A key the new data has is never missing: it holds the old value, then the new one.
A failed rebuild leaves old and new values side by side and deletes nothing; running it again finishes.

**Generation** (services that resolve a pointer key first), layout of one cache ``namespace``::

    ft:cache:current                 → "g317500-20240101100000-1a2b"   (the pointer readers follow)
    ft:cache:g317500-…-1a2b:user:42  → a row (string: JSON or a template; hash: columns)
    ft:cache:building                → set of generations being built (removed if a build dies)
    ft:cache:retired                 → set of generations switched away from, not yet dropped

A rebuild writes a new generation with pipelined ``SET … NX`` / ``HSET`` batches (raw RESP, one
send and one read pass per batch), verifies it (each reply says the key was new, so keys = rows;
Redis evicted nothing meanwhile; a read-back sample; optionally a ``SCAN`` recount), then moves
the pointer in one Lua call. Big datasets are split over processes (:mod:`tasks.cache.workers`).
Readers resolve the pointer per request (:func:`read`), so they see the old generation or the new
one, never a missing key.
The old generation is dropped after a drain pause for reads that resolved the pointer just
before the switch. A failed build drops its own half-built generation and leaves the pointer.

Pure parts (templates, names, value encoding) are plain functions; :class:`CacheBuilder` does I/O.
"""

from __future__ import annotations

import hashlib
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
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import orjson

from tasks.core.errors import CacheBuildFailed

if TYPE_CHECKING:  # redis is imported where it is raised: the step's parameters need only the pure parts
    import redis

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
    keys: list[bytes] = field(default_factory=list)  # in place, from a shard process: the keys it wrote

    @property
    def keys_per_second(self) -> float:
        return rate(self.created, self.seconds)


_SET = b"*4\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$2\r\nNX\r\n"
_SET_EX = b"*6\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$2\r\nNX\r\n$2\r\nEX\r\n$%d\r\n%b\r\n"
_OVERWRITE = b"*3\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
_OVERWRITE_EX = b"*5\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$2\r\nEX\r\n$%d\r\n%b\r\n"

#: In place, a hash is replaced in one step (no moment without it, no field of the old row left):
#: ``EVALSHA <sha> 1 key ttl field value …``.
REPLACE_HASH_SCRIPT = """
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""
REPLACE_HASH_SHA = hashlib.sha1(REPLACE_HASH_SCRIPT.encode(), usedforsecurity=False).hexdigest().encode()


def _bulk(part: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(part), part)


class RowEncoder:
    """Turns a batch of row tuples into RESP commands for one dataset (whole batches: fewer calls per row).

    ``overwrite``: the in-place commands (``SET`` over the key, a hash replaced whole), each key written
    appended to ``keys``; else ``SET NX`` / ``HSET`` into a fresh generation.
    """

    def __init__(self, spec: DatasetSpec, columns: Sequence[str], prefix: str, *, overwrite: bool = False,
                 keys: list[bytes] | None = None) -> None:
        self.spec, self.columns = spec, tuple(columns)
        self.overwrite, self.keys = overwrite, keys
        try:
            self._key = (prefix.replace("{", "{{").replace("}", "}}") + positional(spec.key, columns)).format
            self._value = positional(spec.value, columns).format if spec.value is not None else None
            self._fields = [(c.encode(), self.columns.index(c)) for c in (spec.fields or columns)]
            self._slow_columns: list[int] | None = None
        except (KeyError, ValueError) as exc:
            raise CacheBuildFailed(f"dataset {spec.name}: column {exc} is not returned by its query "
                                   f"(columns: {', '.join(columns)})") from None

    def key(self, row: Sequence[Any]) -> bytes:
        return self._key(*row).encode()

    def string_value(self, row: Sequence[Any]) -> bytes:
        if self._value is not None:
            return self._value(*row).encode()
        return orjson.dumps(dict(zip(self.columns, row, strict=True)), default=_json_default)

    def hash_fields(self, row: Sequence[Any]) -> list[tuple[bytes, bytes]]:
        return [(name, field_bytes(row[i])) for name, i in self._fields]

    def commands(self, rows: Sequence[Sequence[Any]]) -> tuple[bytes, list[tuple[int, bytes]]]:
        """The batch as one RESP buffer, and the reply each run of commands must give for a new key."""
        ttl = self.spec.ttl_seconds
        key = self._key
        if self.spec.kind == "hash":
            return self._hash_commands(rows)
        if self._value is not None:
            value = self._value
            pairs = [(key(*r).encode(), value(*r).encode()) for r in rows]
        else:
            dumps, columns, convert = orjson.dumps, self.columns, self._converted(rows)
            pairs = [(key(*r).encode(), dumps(dict(zip(columns, convert(r), strict=False)), default=_json_default))
                     for r in rows]
        if self.keys is not None:
            self.keys.extend(k for k, _ in pairs)
        plain, expiring = (_OVERWRITE, _OVERWRITE_EX) if self.overwrite else (_SET, _SET_EX)
        if ttl:
            t = str(ttl).encode()
            data = b"".join([expiring % (len(k), k, len(v), v, len(t), t) for k, v in pairs])
        else:
            data = b"".join([plain % (len(k), k, len(v), v) for k, v in pairs])
        return data, [(len(pairs), b"+OK")]

    def _converted(self, rows: Sequence[Sequence[Any]]) -> Callable[[Sequence[Any]], Sequence[Any]]:
        """A per-row converter for columns orjson cannot encode natively (DECIMAL, binary).

        Converting them up front is several times faster than orjson's ``default`` callback per value.
        """
        if self._slow_columns is None:
            self._slow_columns = sorted({i for r in rows[:1000] for i, v in enumerate(r)  # types are per column
                                         if isinstance(v, Decimal | bytes | bytearray | timedelta)})
        slow = self._slow_columns
        if not slow:
            return lambda row: row

        def convert(row: Sequence[Any]) -> Sequence[Any]:
            values = list(row)
            for i in slow:
                if values[i] is not None:
                    values[i] = _json_default(values[i])
            return values

        return convert

    def _hash_commands(self, rows: Sequence[Sequence[Any]]) -> tuple[bytes, list[tuple[int, bytes]]]:
        if self.overwrite:
            return self._replace_hash_commands(rows)
        ttl = self.spec.ttl_seconds
        head = b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * len(self._fields))
        names = [_bulk(name) for name, _ in self._fields]
        out: list[bytes] = []
        expect: list[tuple[int, bytes]] = []
        created = b":%d" % len(self._fields)
        for row in rows:
            key = self.key(row)
            out.append(head + _bulk(key) + b"".join(n + _bulk(field_bytes(row[i]))
                                                    for n, (_, i) in zip(names, self._fields, strict=True)))
            if ttl:
                out.append(b"*3\r\n$6\r\nEXPIRE\r\n" + _bulk(key) + _bulk(str(ttl).encode()))
        expect = [(1, created), (1, b"")] * len(rows) if ttl else [(len(rows), created)]
        return b"".join(out), expect


    def _replace_hash_commands(self, rows: Sequence[Sequence[Any]]) -> tuple[bytes, list[tuple[int, bytes]]]:
        """In place: one ``EVALSHA`` of :data:`REPLACE_HASH_SCRIPT` per row (reply ``:1``)."""
        head = b"*%d\r\n$7\r\nEVALSHA\r\n" % (5 + 2 * len(self._fields)) + _bulk(REPLACE_HASH_SHA) + _bulk(b"1")
        ttl = _bulk(str(self.spec.ttl_seconds or 0).encode())
        names = [_bulk(name) for name, _ in self._fields]
        out: list[bytes] = []
        for row in rows:
            key = self.key(row)
            if self.keys is not None:
                self.keys.append(key)
            out.append(head + _bulk(key) + ttl + b"".join(n + _bulk(field_bytes(row[i]))
                                                          for n, (_, i) in zip(names, self._fields, strict=True)))
        return b"".join(out), [(len(rows), b":1")]


# ---------------------------------------------------------------- I/O: pipelined writer


class PipelineWriter:
    """Sends a batch of commands as one buffer and checks every reply.

    Faster than ``redis.Pipeline`` (no per-command objects). Every command used here (``SET NX``,
    ``HSET``, ``EXPIRE``) answers with one line, so replies are read straight from the socket and
    counted by line; the expected line (``+OK`` for SET NX, ``:<fields>`` for HSET) means the key
    was new, anything else that it already existed, ``-…`` an error, raised after all replies were
    read so the connection stays in step.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._conn = client.connection_pool.get_connection()
        self._conn.connect()

    def send(self, data: bytes, expect: Sequence[tuple[int, bytes]]) -> tuple[int, int]:
        """Send ``data``; ``expect`` is runs of (commands, reply meaning "new key"; b"" = don't care).

        Returns (keys created, keys that already existed).
        """
        lines = self._exchange(data, sum(n for n, _ in expect))
        created = duplicates = 0
        position = 0
        for count, wanted in expect:
            run = lines[position:position + count]
            position += count
            if wanted:
                ok = run.count(wanted)
                created += ok
                duplicates += count - ok
        _raise_first_error(lines)
        return created, duplicates

    def counts(self, command: bytes, keys: Sequence[bytes], *, chunk: int = 1000) -> int:
        """The sum of the integer replies of a multi-key command (``EXISTS``, ``UNLINK``) over ``keys``."""
        total = 0
        for start in range(0, len(keys), chunk * 50):
            group = keys[start:start + chunk * 50]
            commands = [b"*%d\r\n" % (len(part) + 1) + _bulk(command) + b"".join([_bulk(k) for k in part])
                        for part in (group[i:i + chunk] for i in range(0, len(group), chunk))]
            lines = self._exchange(b"".join(commands), len(commands))
            _raise_first_error(lines)
            total += sum(int(line[1:]) for line in lines)
        return total

    def scan(self, cursor: int, match: bytes, count: int) -> tuple[int, list[bytes]]:
        """One ``SCAN``, its reply parsed by lengths (a key may hold any byte); redis-py's parser costs ~6 µs a key."""
        data = b"*6\r\n" + b"".join(_bulk(part) for part in (b"SCAN", b"%d" % cursor, b"MATCH", match, b"COUNT",
                                                                 b"%d" % count))
        try:
            self._conn.send_packed_command([data], check_health=False)
            reply = _ReplyReader(self._conn._sock)
            head = reply.line()
            if head[:1] == b"-":
                import redis

                raise redis.ResponseError(head[1:].decode("utf-8", "replace"))
            next_cursor = int(reply.bulk(int(reply.line()[1:])))
            keys = [reply.bulk(int(reply.line()[1:])) for _ in range(int(reply.line()[1:]))]
            reply.done()
        except BaseException:
            self._conn.disconnect()
            raise
        return next_cursor, keys

    def _exchange(self, data: bytes, replies: int) -> list[bytes]:
        """Send ``data`` and read its ``replies`` one-line replies."""
        try:
            self._conn.send_packed_command([data], check_health=False)
            return self._read_lines(replies)
        except BaseException:
            self._conn.disconnect()  # replies may be left unread: never reuse this socket
            raise

    def _read_lines(self, count: int) -> list[bytes]:
        sock = getattr(self._conn, "_sock", None)
        if sock is None:  # pragma: no cover - a connection class without a plain socket
            return [_line(self._conn.read_response()) for _ in range(count)]
        chunks: list[bytes] = []
        seen = 0
        while seen < count:
            chunk = sock.recv(1 << 20)
            if not chunk:
                import redis

                raise redis.ConnectionError("Redis closed the connection during a pipelined batch")
            chunks.append(chunk)
            seen += chunk.count(b"\n")
        lines = b"".join(chunks).split(b"\r\n")
        if seen != count or lines[-1] != b"":
            import redis

            raise redis.ConnectionError(f"expected {count} replies, got {seen} lines: protocol out of step")
        return lines[:-1]

    def close(self) -> None:
        self.client.connection_pool.release(self._conn)


def _raise_first_error(lines: Sequence[bytes]) -> None:
    errors = [line for line in lines if line[:1] == b"-"]
    if errors:
        import redis

        raise redis.ResponseError(errors[0][1:].decode("utf-8", "replace"))


class _ReplyReader:
    """Reads one RESP reply from a socket by its lengths (lines and bulk strings)."""

    def __init__(self, sock: Any) -> None:
        self.sock, self.buf, self.pos = sock, b"", 0

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            import redis

            raise redis.ConnectionError("Redis closed the connection during a reply")
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n", self.pos)) < 0:
            self._fill()
        out, self.pos = self.buf[self.pos:end], end + 2
        return out

    def bulk(self, size: int) -> bytes:
        while len(self.buf) - self.pos < size + 2:
            self._fill()
        out, self.pos = self.buf[self.pos:self.pos + size], self.pos + size + 2
        return out

    def done(self) -> None:
        if self.pos != len(self.buf):
            import redis

            raise redis.ConnectionError("more bytes than one reply: protocol out of step")


def _line(reply: object) -> bytes:
    """A parsed reply turned back into its one-line form (fallback path)."""
    if isinstance(reply, int):
        return b":%d" % reply
    if reply in (b"OK", "OK"):
        return b"+OK"
    return b"_" if reply is None else b"+" + str(reply).encode()


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
    """Builds one generation of a namespace, verifies it, switches the pointer, drops generations.

    With ``generation`` None it rebuilds in place: it overwrites the services' keys, remembers each key
    written (``written``), then :meth:`sweep` deletes the stale ones and :meth:`missing` checks the rest.
    """

    def __init__(self, client: redis.Redis, layout: CacheLayout, generation: str | None, *,
                 on_keys: Callable[[int], None] = lambda n: None, sample_size: int = 200) -> None:
        self.client, self.layout, self.generation = client, layout, generation
        self.on_keys = on_keys
        self.sample_size = sample_size
        self._rng = random.Random()
        self.written: set[bytes] | None = set() if generation is None else None

    @property
    def prefix(self) -> str:
        """What every key written starts with: the generation's prefix, or (in place) the namespace's."""
        return self.layout.prefix(self.generation) if self.generation else self.layout.namespace + ":"

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
        in_place = self.written is not None
        if in_place and spec.kind == "hash":
            self.client.script_load(REPLACE_HASH_SCRIPT)
        writer = PipelineWriter(self.client)
        encoder: RowEncoder | None = None
        keys: list[bytes] | None = [] if in_place else None
        try:
            for columns, rows in batches:
                if encoder is None:
                    encoder = RowEncoder(spec, columns, self.prefix, overwrite=in_place, keys=keys)
                data, expect = encoder.commands(rows)
                created, duplicates = writer.send(data, expect)
                if keys is not None:
                    created, duplicates = self._remember(keys)
                    keys.clear()
                outcome.created += created
                outcome.duplicates += duplicates
                outcome.rows += len(rows)
                self._sample(encoder, rows, outcome)
                self.on_keys(created)
        finally:
            writer.close()
        outcome.seconds = time.perf_counter() - start
        return outcome

    def _remember(self, keys: Sequence[bytes]) -> tuple[int, int]:
        """In place: (keys new to this rebuild, keys it had already written: two rows, one key)."""
        assert self.written is not None
        before = len(self.written)
        self.written.update(keys)
        fresh = len(self.written) - before
        return fresh, len(keys) - fresh

    def absorb(self, outcome: DatasetOutcome) -> None:
        """In place: take over the keys a shard process wrote (counting keys two shards both wrote)."""
        if self.written is None or not outcome.keys:  # written here: remembered as they went
            return
        fresh, again = self._remember(outcome.keys)
        outcome.created, outcome.duplicates = fresh, outcome.duplicates + again
        outcome.keys = []

    def stale_scan(self, patterns: Iterable[str]) -> StaleScan:
        """In place: start listing the keys of the patterns (below the namespace) beside the write."""
        return StaleScan(self.client, [self.prefix + p for p in dict.fromkeys(patterns)])

    def unlink(self, keys: Sequence[bytes]) -> int:
        """Delete ``keys`` (``UNLINK``: freed in the background); how many existed."""
        connection = PipelineWriter(self.client)
        try:
            return connection.counts(b"UNLINK", keys)
        finally:
            connection.close()

    def missing(self) -> int:
        """In place: how many keys written do not exist now (``EXISTS`` in pipelined chunks)."""
        assert self.written is not None
        connection = PipelineWriter(self.client)
        try:
            return len(self.written) - connection.counts(b"EXISTS", list(self.written))
        finally:
            connection.close()

    def _sample(self, encoder: RowEncoder, rows: Sequence[Sequence[Any]], outcome: DatasetOutcome) -> None:
        """Remember a few rows per batch to read back after the build."""
        wanted = min(self.sample_size - len(outcome.samples), max(1, self.sample_size // 20), len(rows))
        for row in self._rng.sample(list(rows), wanted) if wanted > 0 else ():
            expected: object = (dict(encoder.hash_fields(row)) if encoder.spec.kind == "hash"
                                else encoder.string_value(row))
            outcome.samples.append((encoder.key(row), encoder.spec.kind, expected))

    def evictions(self) -> int:
        """Redis's running total of evicted keys; any increase during a build means it may be incomplete."""
        return int(self.client.info("stats").get("evicted_keys", 0))

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

    def drop(self, generation: str) -> int:
        """Remove a generation's keys and its bookkeeping entries."""
        removed = unlink_matching(self.client, self.layout.pattern(generation))
        self.client.srem(self.layout.building, generation)
        self.client.srem(self.layout.retired, generation)
        return removed

    def leftovers(self) -> list[str]:
        """Generations a crashed or interrupted earlier run left behind (never the current one)."""
        current = self.current()
        names = self.client.sunion(self.layout.building, self.layout.retired)
        found = sorted(n.decode() if isinstance(n, bytes) else n for n in names)
        return [g for g in found if g != current and g != self.generation]


class StaleScan:
    """The keys of some patterns as they are before an in-place rebuild writes, listed beside the write.

    ``SCAN`` returns every key present for its whole run, so every key of the old data is listed; keys
    the write adds may be listed too, and are kept, being written. A key a service adds meanwhile that
    the new data lacks may be missed: it stays (a cache entry, not stale data). Running in a thread of
    its own, the scan costs the rebuild almost nothing while shard processes write.
    """

    def __init__(self, client: redis.Redis, patterns: Sequence[str], *, count: int = 20_000) -> None:
        self.client, self.patterns, self.count = client, patterns, count
        self.found: list[bytes] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._scan, name="cache-stale-scan", daemon=True)
        self.thread.start()

    def _scan(self) -> None:
        connection = PipelineWriter(self.client)
        try:
            for pattern in self.patterns:
                cursor = 0
                while True:
                    cursor, keys = connection.scan(cursor, pattern.encode(), self.count)
                    self.found += keys
                    if cursor == 0:
                        break
        except BaseException as exc:  # raised by stale()
            self.error = exc
        finally:
            connection.close()

    def stale(self, written: set[bytes]) -> list[bytes]:
        """The keys listed that the rebuild did not write (waits for the scan to finish)."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        return [key for key in dict.fromkeys(self.found) if key not in written]


def unlink_matching(client: redis.Redis, pattern: str, *, count: int = 20_000) -> int:
    """Remove every key matching a SCAN ``pattern``, a batch at a time (UNLINK frees memory in the background)."""
    removed, cursor = 0, 0
    while True:
        cursor, keys = client.scan(cursor, match=pattern, count=count)
        if keys:
            removed += client.unlink(*keys)
        if cursor == 0:
            return removed


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

