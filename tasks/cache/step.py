"""CacheRebuildStep: rebuild the FT Redis cache from SQL datasets without an empty-cache moment.

See :mod:`tasks.cache.rebuild` for the two modes. **In place** (every dataset gives the ``pattern`` of
the keys it owns, or ``mode: in_place``): the keys the services read are overwritten, then the keys
of those patterns the new data no longer has are deleted, then every key written is checked to exist
and a sample is read back. **Generation** (``mode: generation``, or no patterns): the step builds a
new generation while the old one keeps serving, verifies it, switches the pointer atomically, waits
``drain_seconds`` and drops the old generation; a failure before the switch drops the half-built
generation. Either way a reader never finds a key of the new data missing.
"""

from __future__ import annotations

import fnmatch
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tasks.cache.rebuild import (
    CacheBuilder,
    CacheLayout,
    DatasetOutcome,
    DatasetSpec,
    new_generation,
    prefetch,
    rate,
    template_fields,
)
from tasks.core.errors import CacheBuildFailed, StepFailed
from tasks.core.language import words
from tasks.core.progress import Progress
from tasks.core.statuses import StepStatus
from tasks.core.steps import StepParams, StepResult
from tasks.core.versions import Version
from tasks.sql.select_query import check_select, literal_sql
from tasks.steps.base import UpgradeStep

_LOG_EVERY = 5.0
RATE_CHECK_MIN_KEYS = 10_000  # below this, fixed costs dominate and a keys/s figure means little

#: 缓存重建状态's words. A note is kept as (key, values): English in the JSON, the site's language in the
#: summary and the report.
TEXT = {
    "zh": {
        "header": "| 数据集 | 统计行数 | 读取行数 | 键数 | 重复 | 秒 | 键/秒 |",
        "leftover": "已删除遗留的代 `{generation}` 的 {keys} 个键",
        "failed": "缓存 {namespace}：新一代构建失败（{reason}）；已删除 {dropped} 个构建到一半的键，"
                  "读取方仍使用 {previous}",
        "no_generation": "（无）", "none": "（无）",
        "switched": "已将 `{namespace}:current` 从 {old} 切换到 `{generation}`；校验：{counted}，无淘汰，"
                    "回读 {samples} 个值",
        "scanned": "SCAN 统计 {keys:,} 个键", "created": "新建 {keys:,} 个键（NX 应答）",
        "dropped": "已删除旧的代 `{old}`：{keys} 个键，耗时 {seconds:.1f} 秒（先等待 {drain:g} 秒）",
        "not_dropped": "旧的代 `{old}` 未删除（{reason}）；下次重建时删除",
        "slow": "重建速度 {rate:,.0f} 键/秒，低于 {minimum:,.0f}",
        "one_process": "数据集 {name}：在单个进程中构建（分片需要 MySQL/MariaDB）",
        "parallel": "数据集 {name}：{rows:,} 行，由 {shards} 个进程并行构建",
        "memory": "Redis maxmemory {limit}，淘汰策略 {policy}：两代并存期间键可能被淘汰（已用 {used}）",
        "summary": "缓存 {namespace}：{keys:,} 个键，耗时 {seconds:.1f} 秒（{rate:,.0f} 键/秒），当前代 {generation}",
        "in_place": "已原地覆盖 {keys:,} 个键，删除 {stale:,} 个新数据已没有的键（{patterns}）；"
                    "校验：{keys:,} 个键均存在，无淘汰，回读 {samples} 个值",
        "in_place_failed": "缓存 {namespace}：原地重建失败（{reason}）；已覆盖 {keys:,} 个键，未删除任何键："
                           "读取方读到旧值或新值，不会缺键；重新执行本步骤即可完成",
        "summary_in_place": "缓存 {namespace}（原地重建）：{keys:,} 个键，耗时 {seconds:.1f} 秒（{rate:,.0f} 键/秒），"
                            "删除过期键 {stale:,} 个",
    },
    "en": {
        "header": "| dataset | rows counted | rows read | keys | duplicates | s | keys/s |",
        "leftover": "removed {keys} keys of leftover generation `{generation}`",
        "failed": "cache {namespace}: new generation failed ({reason}); {dropped} half-built keys removed, readers "
                  "still use {previous}",
        "no_generation": "no generation", "none": "`(none)`",
        "switched": "switched `{namespace}:current` from {old} to `{generation}`; verified: {counted}, no "
                    "evictions, {samples} values read back",
        "scanned": "{keys:,} keys counted by SCAN", "created": "{keys:,} keys created (NX replies)",
        "dropped": "dropped old generation `{old}`: {keys} keys in {seconds:.1f}s after a {drain:g}s drain",
        "not_dropped": "old generation `{old}` not dropped ({reason}); the next rebuild removes it",
        "slow": "rebuild rate {rate:,.0f} keys/s is below {minimum:,.0f}",
        "one_process": "dataset {name}: built in one process (sharding needs MySQL/MariaDB)",
        "parallel": "dataset {name}: {rows:,} rows built by {shards} processes in parallel",
        "memory": "Redis maxmemory {limit} with policy {policy}: keys may be evicted while two generations "
                  "coexist (used {used})",
        "summary": "cache {namespace}: {keys:,} keys in {seconds:.1f}s ({rate:,.0f} keys/s), now generation "
                   "{generation}",
        "in_place": "overwrote {keys:,} keys in place, deleted {stale:,} keys the new data no longer has "
                    "({patterns}); verified: all {keys:,} keys exist, no evictions, {samples} values read back",
        "in_place_failed": "cache {namespace}: in-place rebuild failed ({reason}) after {keys:,} keys were "
                           "overwritten; no key was deleted: readers see old or new values, never a missing key; "
                           "run the step again to finish",
        "summary_in_place": "cache {namespace} (in place): {keys:,} keys in {seconds:.1f}s ({rate:,.0f} keys/s), "
                            "{stale:,} stale keys deleted",
    },
}

Note = tuple[str, dict[str, Any]]


def note_text(note: Note, language: str | None) -> str:
    """One note in ``language``; a ``(key, values)`` value that is itself a note is rendered first."""
    key, values = note
    w = words(TEXT, language)
    return w[key].format(**{k: note_text(v, language) if isinstance(v, tuple) else v for k, v in values.items()})


class Dataset(StepParams):
    """One dataset: a SELECT on a logical database and how each row becomes a Redis key."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    database: str = Field(description="Logical database the query runs on.")
    query: str = Field(description="One SELECT; every row becomes one key.")
    type: Literal["string", "hash"] = "string"
    key: str = Field(description="Key template below the generation prefix, e.g. 'user:{id}'.")
    value: str | None = Field(default=None, description="string: value template; default the row as JSON.")
    fields: list[str] | None = Field(default=None, description="hash: columns stored as fields; default all.")
    ttl_seconds: int | None = Field(default=None, gt=0)
    pattern: str | None = Field(default=None, min_length=1, description="SCAN glob of the keys this dataset owns, "
                                "below the namespace (e.g. 'user:*'): rebuilt in place, its keys the new data no "
                                "longer has are deleted.")

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return check_select(value)

    @model_validator(mode="after")
    def _templates(self) -> Dataset:
        if not template_fields(self.key):
            raise ValueError(f"key template {self.key!r} uses no column: every row would get the same key")
        if self.value is not None:
            if self.type != "string":
                raise ValueError("'value' applies to type 'string' only (hashes store 'fields')")
            template_fields(self.value)
        if self.fields is not None and self.type != "hash":
            raise ValueError("'fields' applies to type 'hash' only")
        if self.pattern is not None and not _owns(self.pattern, self.key):
            raise ValueError(f"pattern {self.pattern!r} does not match the keys of template {self.key!r}: the "
                             "pattern names the keys this dataset writes (e.g. 'user:*' for 'user:{id}')")
        return self

    def spec(self) -> DatasetSpec:
        return DatasetSpec(self.name, self.key, self.type, self.value,
                           tuple(self.fields) if self.fields is not None else None, self.ttl_seconds)


def _owns(pattern: str, template: str) -> bool:
    """Whether a key of ``template`` (its fields filled with a digit, or a letter) matches the glob ``pattern``."""
    return any(fnmatch.fnmatchcase(template.format_map(defaultdict(lambda sample=sample: sample)), pattern)
               for sample in ("0", "x"))


class CacheRebuildParams(StepParams):
    namespace: str = Field(pattern=r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*$",
                           description="Cache namespace; readers follow '<namespace>:current'.")
    datasets: list[Dataset] = Field(min_length=1)
    batch_size: int = Field(default=10_000, ge=100, le=100_000, description="Rows per pipelined batch.")
    drain_seconds: float = Field(default=2.0, ge=0, le=600,
                                 description="Keep the old generation this long after the switch.")
    sample_size: int = Field(default=200, ge=0, le=100_000, description="Keys read back to verify values.")
    min_keys_per_second: float = Field(default=1000, ge=0, description="Slower is reported as a warning.")
    workers: int = Field(default=2, ge=1, le=16, description="Processes for a big dataset (MySQL/MariaDB).")
    parallel_min_rows: int = Field(default=200_000, ge=0, description="Smaller datasets build in-process.")
    full_count: bool = Field(default=False, description="Also count the new generation with SCAN (slower: it "
                                                        "walks the whole keyspace).")
    mode: Literal["in_place", "generation"] | None = Field(
        default=None, description="in_place: overwrite the services' keys '<namespace>:<key>', then delete the "
        "stale ones (needs every dataset's pattern); generation: a new generation behind '<namespace>:current'. "
        "Default: in_place when the datasets give their patterns.")

    @model_validator(mode="after")
    def _unique(self) -> CacheRebuildParams:
        names = [d.name for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError(f"dataset names must be unique: {names}")
        with_pattern = [d.name for d in self.datasets if d.pattern is not None]
        if with_pattern and len(with_pattern) != len(self.datasets) or self.mode == "in_place" and not with_pattern:
            raise ValueError("give every dataset its key 'pattern' (rebuilt in place: the services' keys are "
                             "overwritten and the stale ones deleted) or none (mode generation)")
        if self.mode == "generation" and with_pattern:
            raise ValueError("'pattern' is for mode in_place: a generation is dropped whole; remove the patterns")
        return self

    @property
    def in_place(self) -> bool:
        return self.mode == "in_place" or self.mode is None and all(d.pattern for d in self.datasets)


class CacheRebuildStep(UpgradeStep):
    """Builds a new cache generation, verifies it, switches readers atomically, drops the old one."""

    Params = CacheRebuildParams
    description = "Cache rebuild: versioned Redis namespace, pipelined batches, verified, atomic switch"
    params: CacheRebuildParams

    def run(self) -> StepResult:
        if self.params.in_place:
            return self._run_in_place()
        p = self.params
        client = self.context.resources.redis()
        layout = CacheLayout(p.namespace)
        generation = new_generation(Version.parse(self.context.target_version).code, datetime.now(UTC),
                                    uuid.uuid4().hex[:6])
        tracker = _RateTracker(self.context.logger, p.namespace)
        builder = CacheBuilder(client, layout, generation, on_keys=tracker.advance, sample_size=p.sample_size)
        cleaned = {old: builder.drop(old) for old in builder.leftovers()}
        expected = {d.name: self._count(d) for d in p.datasets}
        tracker.start(sum(expected.values()))
        notes: list[Note] = [("leftover", {"keys": n, "generation": g}) for g, n in cleaned.items()]
        notes += self._memory_notes(client)
        previous = builder.current()
        builder.begin()
        outcomes: list[DatasetOutcome] = []
        try:
            evicted = builder.evictions()
            for dataset in p.datasets:
                outcomes.append(self._build(dataset, builder, expected[dataset.name], tracker.advance, notes))
            scanned = builder.count() if p.full_count else None
            problems = verify(outcomes, scanned, builder.evictions() - evicted) + builder.check_samples(outcomes)
            if problems:
                raise CacheBuildFailed("; ".join(problems[:5]))
            build_seconds = tracker.elapsed
            old = builder.switch()
        except Exception as exc:
            dropped = self._drop_quietly(builder, generation)
            failed: Note = ("failed", {"namespace": p.namespace, "reason": _reason(exc), "dropped": dropped,
                                       "previous": previous or ("no_generation", {})})
            result = self._result(StepStatus.FAILED, outcomes, expected, notes + [failed], generation, previous)
            raise StepFailed(note_text(failed, "en"), result) from exc
        tracker.finish()
        total = sum(o.created for o in outcomes)
        keys_per_second = rate(total, build_seconds)
        counted: Note = ("scanned", {"keys": scanned}) if scanned is not None else ("created", {"keys": total})
        notes.append(("switched", {"namespace": p.namespace, "old": f"`{old}`" if old else ("none", {}),
                                   "generation": generation, "counted": counted,
                                   "samples": sum(len(o.samples) for o in outcomes)}))
        status = StepStatus.SUCCESS
        if old:
            time.sleep(p.drain_seconds)
            try:
                drop_start = time.perf_counter()
                removed = builder.drop(old)
                notes.append(("dropped", {"old": old, "keys": removed, "seconds": time.perf_counter() - drop_start,
                                          "drain": p.drain_seconds}))
            except Exception as exc:  # the new cache is live; the next rebuild drops the leftover
                status = StepStatus.WARNING
                notes.append(("not_dropped", {"old": old, "reason": _reason(exc)}))
        if total >= RATE_CHECK_MIN_KEYS and keys_per_second < p.min_keys_per_second:
            status = StepStatus.WARNING
            notes.append(("slow", {"rate": keys_per_second, "minimum": p.min_keys_per_second}))
        result = self._result(status, outcomes, expected, notes, generation, old)
        result.details.update(keys=total, seconds=round(build_seconds, 3), keys_per_second=round(keys_per_second))
        result.summary = words(TEXT, self.context.language)["summary"].format(
            namespace=p.namespace, keys=total, seconds=build_seconds, rate=keys_per_second, generation=generation)
        return result

    def _run_in_place(self) -> StepResult:
        """Overwrite the services' keys, delete the stale ones, check every key is there; nothing goes missing."""
        p = self.params
        client = self.context.resources.redis()
        tracker = _RateTracker(self.context.logger, p.namespace)
        builder = CacheBuilder(client, CacheLayout(p.namespace), None, on_keys=tracker.advance,
                               sample_size=p.sample_size)
        expected = {d.name: self._count(d) for d in p.datasets}
        tracker.start(sum(expected.values()))
        notes: list[Note] = self._memory_notes(client)
        outcomes: list[DatasetOutcome] = []
        try:
            evicted = builder.evictions()
            listing = builder.stale_scan(d.pattern or "" for d in p.datasets)
            for dataset in p.datasets:
                outcome = self._build(dataset, builder, expected[dataset.name], tracker.advance, notes)
                builder.absorb(outcome)
                outcomes.append(outcome)
            if problems := verify(outcomes, None, 0):  # two rows, one key: which value is right is unknown
                raise CacheBuildFailed("; ".join(problems[:5]))
            written = tracker.elapsed
            stale = builder.unlink(listing.stale(builder.written or set()))
            swept = tracker.elapsed
            missing = builder.missing()
            problems = verify(outcomes, None, builder.evictions() - evicted) + builder.check_samples(outcomes)
            if missing:
                problems.append(f"{missing} of the keys written do not exist when read back")
            if problems:
                raise CacheBuildFailed("; ".join(problems[:5]))
            seconds = tracker.elapsed
        except Exception as exc:
            failed: Note = ("in_place_failed", {"namespace": p.namespace, "reason": _reason(exc),
                                                "keys": len(builder.written or ())})
            result = self._result(StepStatus.FAILED, outcomes, expected, notes + [failed], None, None)
            raise StepFailed(note_text(failed, "en"), result) from exc
        tracker.finish()
        total = sum(o.created for o in outcomes)
        keys_per_second = rate(total, seconds)
        notes.append(("in_place", {"keys": total, "stale": stale, "samples": sum(len(o.samples) for o in outcomes),
                                   "patterns": ", ".join(f"`{builder.prefix}{d.pattern}`" for d in p.datasets)}))
        status = StepStatus.SUCCESS
        if total >= RATE_CHECK_MIN_KEYS and keys_per_second < p.min_keys_per_second:
            status = StepStatus.WARNING
            notes.append(("slow", {"rate": keys_per_second, "minimum": p.min_keys_per_second}))
        result = self._result(status, outcomes, expected, notes, None, None)
        result.details.update(keys=total, stale_keys_deleted=stale, seconds=round(seconds, 3),
                              keys_per_second=round(keys_per_second),
                              phases={"write": round(written, 3), "sweep": round(swept - written, 3),
                                      "verify": round(seconds - swept, 3)})
        result.summary = words(TEXT, self.context.language)["summary_in_place"].format(
            namespace=p.namespace, keys=total, seconds=seconds, rate=keys_per_second, stale=stale)
        return result

    def _build(self, dataset: Dataset, builder: CacheBuilder, rows: int, on_keys: Callable[[int], None],
               notes: list[Note]) -> DatasetOutcome:
        """One dataset into the new generation: in this process, or in shard processes when it is big."""
        from tasks.cache.workers import ShardJob, redis_kwargs, run_shards, shard_query, stream_rows

        p = self.params
        engine = self.context.resources.engine(dataset.database)
        shards = p.workers if p.workers > 1 and rows >= p.parallel_min_rows else 1
        if shards > 1 and engine.dialect.name not in ("mysql", "mariadb"):
            notes.append(("one_process", {"name": dataset.name}))
            shards = 1
        if shards == 1:
            with closing(prefetch(stream_rows(engine, dataset.query, p.batch_size))) as batches:
                return builder.write(dataset.spec(), batches)  # closed (cursor released) even when write fails
        url = engine.url.render_as_string(hide_password=False)
        key_columns = template_fields(dataset.key)
        jobs = [ShardJob(i, url, redis_kwargs(builder.client), p.namespace, builder.generation, dataset.spec(),
                         shard_query(dataset.query, key_columns, shards, i), p.batch_size,
                         max(1, p.sample_size // shards)) for i in range(shards)]
        notes.append(("parallel", {"name": dataset.name, "rows": rows, "shards": shards}))
        return run_shards(jobs, on_keys)

    def _count(self, dataset: Dataset) -> int:
        with self.context.resources.engine(dataset.database).connect() as conn:
            return int(conn.execute(literal_sql(f"SELECT COUNT(*) FROM ({dataset.query}) AS ft_cache_count"))
                       .scalar_one())

    @staticmethod
    def _drop_quietly(builder: CacheBuilder, generation: str) -> int:
        try:
            return builder.drop(generation)
        except Exception:  # still listed in '<ns>:building': the next run removes it
            return 0

    @staticmethod
    def _memory_notes(client: Any) -> list[Note]:
        info = client.info("memory")
        limit, policy = int(info.get("maxmemory", 0) or 0), info.get("maxmemory_policy", "noeviction")
        if limit and policy != "noeviction":
            return [("memory", {"limit": limit, "policy": policy, "used": info.get("used_memory_human")})]
        return []

    def _result(self, status: StepStatus, outcomes: list[DatasetOutcome], expected: dict[str, int],
                notes: list[Note], generation: str | None, old: str | None) -> StepResult:
        rows = [{"dataset": o.name, "expected_rows": expected.get(o.name), "rows": o.rows, "keys": o.created,
                 "duplicates": o.duplicates, "seconds": round(o.seconds, 3),
                 "keys_per_second": round(o.keys_per_second)} for o in outcomes]
        language = self.context.language
        lines = [words(TEXT, language)["header"], "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['dataset']} | {r['expected_rows']} | {r['rows']} | {r['keys']} | {r['duplicates']} | "
                  f"{r['seconds']} | {r['keys_per_second']:,} |" for r in rows]
        lines += [f"- {note_text(n, language)}" for n in notes]
        english = [note_text(n, "en") for n in notes]
        done = sum(o.created for o in outcomes)
        total = sum(expected.values())
        percent = 100.0 * done / total if total else 100.0
        return StepResult(status=status, summary=note_text(notes[-1], language) if notes else "",
                          details={"namespace": self.params.namespace, "generation": generation,
                                   "mode": "in_place" if self.params.in_place else "generation",
                                   "previous_generation": old, "datasets": rows, "percent": round(percent, 1),
                                   "notes": english},
                          markdown="\n".join(lines))


def verify(outcomes: list[DatasetOutcome], scanned: int | None, evicted: int) -> list[str]:
    """Pure: every row made a new key, Redis evicted nothing meanwhile, and (if counted) holds them all."""
    problems = [f"dataset {o.name}: {o.duplicates} of {o.rows} rows map to keys already written "
                f"(the key template is not unique)" for o in outcomes if o.duplicates]
    created = sum(o.created for o in outcomes)
    if evicted:
        problems.append(f"Redis evicted {evicted} keys during the build (maxmemory reached): the new generation "
                        "may be incomplete")
    if scanned is not None and scanned != created:
        problems.append(f"Redis holds {scanned} keys in the new generation, {created} were written")
    return problems



def _reason(exc: BaseException) -> str:
    text_ = str(exc).splitlines()[0] if str(exc) else ""
    return text_ if isinstance(exc, CacheBuildFailed) else f"{type(exc).__name__}: {text_}"


class _RateTracker:
    """Progress artifact (keys done / total, keys/s) and a log line every few seconds."""

    def __init__(self, logger: Any, namespace: str) -> None:
        self.logger, self.namespace = logger, namespace
        self.progress: Progress | None = None
        self._start = self._logged = time.perf_counter()

    def start(self, total: int) -> None:
        self.progress = Progress(total, f"cache {self.namespace}: 0/{total:,} keys")
        self._start = self._logged = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def advance(self, keys: int) -> None:
        if self.progress is None:
            return
        speed = rate(int(self.progress.done + keys), self.elapsed)
        self.progress.description = (f"cache {self.namespace}: {int(self.progress.done + keys):,}/"
                                     f"{int(self.progress.total):,} keys, {speed:,.0f} keys/s")
        self.progress.advance(keys)
        now = time.perf_counter()
        if now - self._logged >= _LOG_EVERY:
            self._logged = now
            self.logger.info("%s", self.progress.description)

    def finish(self) -> None:
        if self.progress is not None:
            self.progress.finish()
