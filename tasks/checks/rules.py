"""The check rules: declarative, reviewed like code, validated when the plan is built. Pure.

A rule has an ``id``, a ``title`` (the report's 检查项), a ``type``, a ``target``, a ``threshold`` (how
many violations are still a pass), a ``severity`` on breach (``warn`` or ``fail``), a ``suggestion``
(the report's 建议; ``{placeholders}`` are filled from what the check found) and optional ``versions``
(``3.17.5~3.17.9``): the rule runs only when the source or the target version lies in that range.

No SQL is ever built from run-time input: table and column names are validated identifiers that
the SQL builders quote, values (enum lists, regexes) are bound as parameters, and a ``custom_sql``
rule is one reviewed read-only SELECT.

Example:
    ```python
    from tasks.checks.rules import parse_rules

    rules = parse_rules([{"id": "orders_pk", "title": "主键冲突检测", "type": "duplicate_keys",
                          "target": "ft_db", "table": "orders", "columns": ["id"]}])
    ```
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tasks.checks.middleware_versions import meets_minimum, parse_requirement
from tasks.checks.sql_builders import check_identifier, check_read_only_select, parse_target_type
from tasks.core.errors import InputError
from tasks.core.resources import parse_amount
from tasks.core.versions import Version

RULE_ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._\-]{1,249}$")
COMMON_PLACEHOLDERS = frozenset({"id", "title", "target", "count", "threshold", "objects"})


@dataclass(frozen=True)
class VersionRange:
    """``3.17.5~3.17.9`` (inclusive); ``3.17.5~`` and ``~3.17.9`` are open-ended; ``3.17.5`` is one version."""

    low: Version | None
    high: Version | None

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        raw = text.strip()
        if raw.count("~") > 1:
            raise ValueError(f"version range {text!r} has more than one '~'")
        low_text, sep, high_text = raw.partition("~")
        if not sep:
            high_text = low_text
        try:
            low = Version.parse(low_text) if low_text.strip() else None
            high = Version.parse(high_text) if high_text.strip() else None
        except InputError as exc:
            raise ValueError(f"version range {text!r}: {exc}") from None
        if low is None and high is None:
            raise ValueError(f"version range {text!r} names no version")
        if low is not None and high is not None and low > high:
            raise ValueError(f"version range {text!r} is empty: {low} is after {high}")
        return cls(low, high)

    def contains(self, version: Version) -> bool:
        return (self.low is None or version >= self.low) and (self.high is None or version <= self.high)

    def __str__(self) -> str:
        if self.low == self.high:
            return str(self.low)
        return f"{self.low or ''}~{self.high or ''}"


def _threshold(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"threshold must be a number ≥ 0, not {value!r}")
    return value


Threshold = Annotated[int | float, PlainValidator(_threshold), WithJsonSchema({"type": "number", "minimum": 0})]


def _identifier(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a table or column name, not {value!r}")
    return check_identifier(value)


Identifier = Annotated[str, PlainValidator(_identifier), WithJsonSchema({"type": "string",
                                                                         "pattern": r"^[A-Za-z0-9_$]{1,64}$"})]


class _Rule(BaseModel):
    """Fields every rule has."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    PLACEHOLDERS: ClassVar[frozenset[str]] = frozenset()
    DEFAULT_SUGGESTION: ClassVar[str] = ""
    TARGET_REQUIRED: ClassVar[bool] = True

    id: str = Field(min_length=1, max_length=100, pattern=RULE_ID_PATTERN, description="Unique within the step.")
    title: str = Field(min_length=1, description="The report's 检查项, e.g. 主键冲突检测.")
    target: str | None = Field(default=None, description="Logical database, service or address the rule checks.")
    threshold: Threshold = Field(default=0, description="Violations still allowed; above it the rule is breached.")
    severity: Literal["warn", "fail"] = Field(default="fail", description="Status when breached.")
    suggestion: str | None = Field(default=None, description="The report's 建议; {placeholders} allowed.")
    versions: str | None = Field(default=None, description="Applies when source or target is in e.g. 3.17.5~3.17.9.")
    description: str = ""

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: str | None) -> str | None:
        return None if value is None else str(VersionRange.parse(value))

    @model_validator(mode="after")
    def _common(self) -> _Rule:
        if self.TARGET_REQUIRED and not (self.target or "").strip():
            raise ValueError(f"rule {self.id!r} ({getattr(self, 'type', '?')}) needs a 'target'")
        if self.suggestion is not None:
            unknown = sorted(template_fields(self.suggestion) - self.placeholders())
            if unknown:
                raise ValueError(f"rule {self.id!r}: unknown placeholder(s) {unknown} in suggestion; "
                                 f"allowed: {sorted(self.placeholders())}")
        return self

    @classmethod
    def placeholders(cls) -> frozenset[str]:
        return COMMON_PLACEHOLDERS | cls.PLACEHOLDERS

    def version_range(self) -> VersionRange | None:
        return VersionRange.parse(self.versions) if self.versions else None

    def suggestion_template(self) -> str:
        return self.suggestion if self.suggestion is not None else self.DEFAULT_SUGGESTION


def template_fields(template: str) -> set[str]:
    """Placeholder names of a ``str.format`` template; ``ValueError`` if it is malformed."""
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise ValueError(f"suggestion {template!r} is not a valid template: {exc}") from None


class MiddlewareVersionRule(_Rule):
    """A middleware's version against a minimum and/or maximum (``target``: logical database or address)."""

    PLACEHOLDERS = frozenset({"component", "actual", "minimum", "maximum", "required", "address"})
    DEFAULT_SUGGESTION = "升级{component}至{minimum}或更高版本"

    type: Literal["middleware_version"]
    component: Literal["mysql", "mariadb", "redis", "zookeeper", "clickhouse"]
    min_version: str | None = None
    max_version: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _redis_target(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("component") == "redis" and not data.get("target"):
            return {**data, "target": "redis"}
        return data

    @model_validator(mode="after")
    def _limits(self) -> MiddlewareVersionRule:
        if self.min_version is None and self.max_version is None:
            raise ValueError(f"rule {self.id!r}: give min_version and/or max_version")
        low = parse_requirement(self.min_version) if self.min_version is not None else None
        high = parse_requirement(self.max_version) if self.max_version is not None else None
        if low is not None and high is not None and not meets_minimum(high, low):
            raise ValueError(f"rule {self.id!r}: max_version {self.max_version} is below min_version "
                             f"{self.min_version}")
        return self

    def suggestion_template(self) -> str:
        if self.suggestion is None and self.min_version is None:
            return "将{component}调整至{maximum}或更低版本"
        return super().suggestion_template()


class ZookeeperDataDiskRule(_Rule):
    """ZooKeeper's data directory must not share the system disk (its own mount)."""

    PLACEHOLDERS = frozenset({"data_dir", "mount", "host", "system_path"})
    DEFAULT_SUGGESTION = "为ZooKeeper配置独立的数据磁盘"
    TARGET_REQUIRED = False

    type: Literal["zookeeper_data_disk"]
    data_dir: str | None = Field(default=None, description="Absolute path; else asked from ZooKeeper ('conf').")
    host: str | None = Field(default=None, description="Check over SSH on this host ([user@]host[:port]).")
    system_path: str = Field(default="/", description="The system disk is the one holding this path.")

    @model_validator(mode="after")
    def _where(self) -> ZookeeperDataDiskRule:
        if self.data_dir is None and not self.target:
            raise ValueError(f"rule {self.id!r}: give 'data_dir', or 'target' (the ZooKeeper address) to ask "
                             "ZooKeeper for its dataDir")
        for path in (self.data_dir, self.system_path):
            if path is not None and not path.startswith("/"):
                raise ValueError(f"rule {self.id!r}: {path!r} is not an absolute path")
        return self


class DiskFreeRule(_Rule):
    """Free space on the file system holding ``path``."""

    PLACEHOLDERS = frozenset({"path", "host", "mount", "free_gb", "free_percent", "min_free_gb", "min_free_percent"})
    DEFAULT_SUGGESTION = "清理或扩容{path}所在磁盘（{mount}）"
    TARGET_REQUIRED = False

    type: Literal["disk_free"]
    path: str
    host: str | None = None
    min_free_gb: float | None = Field(default=None, gt=0)
    min_free_percent: float | None = Field(default=None, gt=0, lt=100)

    @model_validator(mode="after")
    def _limits(self) -> DiskFreeRule:
        if self.min_free_gb is None and self.min_free_percent is None:
            raise ValueError(f"rule {self.id!r}: give min_free_gb and/or min_free_percent")
        if not self.path.startswith("/"):
            raise ValueError(f"rule {self.id!r}: {self.path!r} is not an absolute path")
        return self


class TopicSpec(BaseModel):
    """One Kafka topic as configured: at least ``partitions``, exactly ``replication_factor``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    partitions: int | None = Field(default=None, ge=1, description="Minimum partition count.")
    replication_factor: int | None = Field(default=None, ge=1, description="Required replicas per partition.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _KAFKA_TOPIC.fullmatch(value) or value in (".", ".."):
            raise ValueError(f"{value!r} is not a Kafka topic name")
        return value


class KafkaTopicsRule(_Rule):
    """Kafka brokers and topics: partitions, replicas, ISR.

    ``mode: zookeeper`` (the default) reads them from ZooKeeper's znodes (``target``: the ZooKeeper
    address, ZooKeeper-mode clusters); ``mode: kraft`` asks the brokers through the admin API
    (``target``: the bootstrap servers; KRaft clusters, the only mode of Kafka 4).
    """

    PLACEHOLDERS = frozenset({"topics", "brokers"})
    DEFAULT_SUGGESTION = "按配置调整Kafka主题{topics}的分区数和副本数，并确认所有broker在线"

    type: Literal["kafka_topics"]
    min_brokers: int | None = Field(default=None, ge=1)
    topics: list[TopicSpec] = Field(default_factory=list)
    check_isr: bool = Field(default=True, description="An in-sync replica set smaller than the replicas is a problem.")
    mode: Literal["zookeeper", "kraft"] = Field(
        default="zookeeper", description="zookeeper: read ZooKeeper's znodes; kraft: the brokers' admin API.")
    timeout_seconds: float = Field(default=5.0, gt=0, le=120, description="kraft: each admin request's timeout.")

    @model_validator(mode="after")
    def _something(self) -> KafkaTopicsRule:
        if not self.topics and self.min_brokers is None:
            raise ValueError(f"rule {self.id!r}: give 'topics' and/or 'min_brokers'")
        names = [t.name for t in self.topics]
        if len(set(names)) != len(names):
            raise ValueError(f"rule {self.id!r}: a topic is listed twice")
        return self


class _TableRule(_Rule):
    database: Identifier | None = Field(default=None, description="Database (schema); default: the target's own.")


def _unique_columns(rule_id: str, columns: list[str]) -> None:
    if len({c.lower() for c in columns}) != len(columns):
        raise ValueError(f"rule {rule_id!r}: a column is listed twice")


class DuplicateKeysRule(_TableRule):
    """Rows that collide on a primary or unique key that the upgrade will (re)create."""

    PLACEHOLDERS = frozenset({"sql", "table", "columns"})
    DEFAULT_SUGGESTION = "执行 `{sql}` 查看冲突记录"

    type: Literal["duplicate_keys"]
    table: Identifier
    columns: list[Identifier] = Field(min_length=1, max_length=16)

    @model_validator(mode="after")
    def _columns(self) -> DuplicateKeysRule:
        _unique_columns(self.id, self.columns)
        return self


class MissingPrimaryKeyRule(_TableRule):
    """Base tables without a primary key (information_schema; ClickHouse: an empty primary key)."""

    PLACEHOLDERS = frozenset({"tables"})
    DEFAULT_SUGGESTION = "为表 {tables} 添加主键"

    type: Literal["missing_primary_key"]
    tables: list[Identifier] = Field(default_factory=list, description="Only these tables (default: all).")
    exclude: list[Identifier] = Field(default_factory=list, description="Tables not checked.")


IllegalCheck = Literal["control", "invalid_utf8", "four_byte"]


class IllegalCharactersRule(_TableRule):
    """Control characters, invalid or 4-byte UTF-8 (for utf8mb3 targets), and configured regexes."""

    PLACEHOLDERS = frozenset({"sql", "table", "columns"})
    DEFAULT_SUGGESTION = "执行 `{sql}` 查看含非法字符的记录并修复"

    type: Literal["illegal_characters"]
    table: Identifier
    columns: list[Identifier] = Field(min_length=1, max_length=32)
    checks: list[IllegalCheck] = Field(default_factory=lambda: ["control"])
    patterns: list[str] = Field(default_factory=list, description="Regexes (the database's dialect) that are illegal.")

    @model_validator(mode="after")
    def _what(self) -> IllegalCharactersRule:
        _unique_columns(self.id, self.columns)
        if not self.checks and not self.patterns:
            raise ValueError(f"rule {self.id!r}: give 'checks' and/or 'patterns'")
        for pattern in self.patterns:
            if not pattern:
                raise ValueError(f"rule {self.id!r}: empty pattern")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"rule {self.id!r}: pattern {pattern!r} is not a valid regex: {exc}") from None
        return self


class ColumnFitRule(_TableRule):
    """Values that will not fit a column the upgrade changes: length, type, enum values removed."""

    PLACEHOLDERS = frozenset({"sql", "table", "column"})
    DEFAULT_SUGGESTION = "执行 `{sql}` 查看不兼容的记录并修复"

    type: Literal["column_fit"]
    table: Identifier
    column: Identifier
    max_length: int | None = Field(default=None, ge=1, description="Characters the new column holds.")
    target_type: str | None = Field(default=None, description="tinyint…bigint [unsigned] or decimal(p,s).")
    allowed_values: list[str] | None = Field(default=None, description="The enum values left in the target.")
    removed_values: list[str] | None = Field(default=None, description="Enum values the target removes.")

    @field_validator("target_type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_target_type(value)
        return value.strip().lower()

    @model_validator(mode="after")
    def _what(self) -> ColumnFitRule:
        given = [f for f in ("max_length", "target_type", "allowed_values", "removed_values")
                 if getattr(self, f) is not None]
        if not given:
            raise ValueError(f"rule {self.id!r}: give max_length, target_type, allowed_values or removed_values")
        if self.allowed_values is not None and self.removed_values is not None:
            raise ValueError(f"rule {self.id!r}: give allowed_values or removed_values, not both")
        for name in ("allowed_values", "removed_values"):
            if getattr(self, name) == []:
                raise ValueError(f"rule {self.id!r}: {name} is empty")
        return self


class CustomSqlRule(_Rule):
    """A reviewed read-only SELECT that counts violating rows; ``detail_sql`` shows them."""

    PLACEHOLDERS = frozenset({"sql"})
    DEFAULT_SUGGESTION = "执行 `{sql}` 查看违规记录"

    type: Literal["custom_sql"]
    sql: str = Field(description="One SELECT returning one number: the violating rows.")
    detail_sql: str | None = Field(default=None, description="One SELECT listing the violating rows.")

    @field_validator("sql", "detail_sql")
    @classmethod
    def _read_only(cls, value: str | None) -> str | None:
        return None if value is None else check_read_only_select(value)

    def suggestion_template(self) -> str:
        if self.suggestion is None and self.detail_sql is None:
            return "检查规则{id}统计的违规记录"
        return super().suggestion_template()


class RequiredComponentsRule(_Rule):
    """A version's ``required_components``: each listed in the site profile's services and, with ``running``, answering.

    Not listed (or no services listed at all: nothing to decide on) fails; listed but not answering
    while it should run is a warning (the seed's 前置升级处理 checks service status and restarts).
    """

    PLACEHOLDERS = frozenset({"missing", "silent", "components"})
    DEFAULT_SUGGESTION = "在局点配置（site profile）的 services 中登记并部署：{missing}；确认正在运行：{silent}"
    TARGET_REQUIRED = False

    type: Literal["required_components"]
    components: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    running: bool = Field(default=True, description="Each must answer at its URL; false: listed is enough.")


class RequiredResourceRule(_Rule):
    """A version's ``required_resources`` entry: free memory, free disk or CPU cores on the worker (or ``host``).

    Below the requirement fails; within ``headroom`` of it (less than 20% to spare by default; for CPU,
    fewer idle cores than required by the 1-minute load) is a warning.
    """

    PLACEHOLDERS = frozenset({"resource", "label", "required", "available", "path", "host", "where"})
    DEFAULT_SUGGESTION = "为{where}释放或扩充{label}：至少{required}，当前{available}"
    TARGET_REQUIRED = False

    type: Literal["required_resource"]
    resource: Literal["memory", "disk", "cpu"]
    required: str = Field(description="As configs write it: '2GB', '10GB', '2cores'.")
    path: str | None = Field(default=None, description="disk: an absolute path on the file system to measure; "
                                                       "default: the site's backup folder.")
    host: str | None = Field(default=None, description="Measure over SSH on this host ([user@]host[:port]).")
    headroom: float = Field(default=1.2, ge=1, description="Less than required × headroom available: a warning.")

    @model_validator(mode="after")
    def _amount(self) -> RequiredResourceRule:
        parse_amount(self.resource, self.required)
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError(f"rule {self.id!r}: {self.path!r} is not an absolute path")
        if self.resource == "disk" and self.host and self.path is None:
            raise ValueError(f"rule {self.id!r}: name the 'path' to measure on host {self.host}")
        return self


class SourceVersionRule(_Rule):
    """A version config's source range (``min_source_version``/``max_source_version``/``required_base_version``)
    against the version in effect before it; the plan refuses a chain that breaks one, the report shows it."""

    PLACEHOLDERS = frozenset({"config", "in_effect", "range"})
    DEFAULT_SUGGESTION = "从{range}范围内的版本升级到{config}"
    TARGET_REQUIRED = False

    type: Literal["source_version"]
    config: str = Field(description="The config's version.")
    in_effect: str = Field(description="The version in effect before it (the source, for the first config).")
    min_version: str | None = None
    max_version: str | None = None
    base_version: str | None = None

    @field_validator("config", "in_effect", "min_version", "max_version", "base_version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        try:
            return None if value is None else str(Version.parse(value))
        except InputError as exc:
            raise ValueError(str(exc)) from None


Rule = Annotated[
    MiddlewareVersionRule | ZookeeperDataDiskRule | DiskFreeRule | KafkaTopicsRule | DuplicateKeysRule
    | MissingPrimaryKeyRule | IllegalCharactersRule | ColumnFitRule | CustomSqlRule | RequiredComponentsRule
    | RequiredResourceRule | SourceVersionRule,
    Field(discriminator="type"),
]
RULE_TYPES = ("middleware_version", "zookeeper_data_disk", "disk_free", "kafka_topics", "duplicate_keys",
              "missing_primary_key", "illegal_characters", "column_fit", "custom_sql", "required_components",
              "required_resource", "source_version")
DATA_QUALITY_TYPES = frozenset({"duplicate_keys", "missing_primary_key", "illegal_characters", "column_fit",
                                "custom_sql"})
RULES = TypeAdapter(list[Rule])


def parse_rules(data: object) -> list[Any]:
    """Validate a list of rule objects (raises pydantic ``ValidationError``)."""
    return RULES.validate_python(data)


def check_unique_ids(rules: list[Any]) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ValueError(f"rule id {rule.id!r} is used twice")
        seen.add(rule.id)
