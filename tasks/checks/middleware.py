"""Middleware version probes: MySQL/MariaDB ``SELECT VERSION()``, Redis ``INFO server``, ZooKeeper
``srvr``, ClickHouse ``SELECT version()``. Each connects with 3 retries, then fails naming the
component and its address.
"""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import text

from tasks.checks.middleware_versions import (
    ServerVersion,
    parse_server_version,
    requirement_text,
    version_problem,
    zookeeper_version_from_srvr,
)
from tasks.checks.outcome import Measurement, Problem
from tasks.checks.rules import MiddlewareVersionRule
from tasks.checks.targets import CheckEnv
from tasks.core.errors import CheckError, ProbeUnavailable

LABELS = {"mysql": "MySQL", "mariadb": "MariaDB", "redis": "Redis", "zookeeper": "ZooKeeper",
          "clickhouse": "ClickHouse"}


def _parse(raw: str, where: str) -> ServerVersion:
    try:
        return parse_server_version(raw)
    except ValueError as exc:
        raise CheckError(f"{where}: {exc}") from None


def _sql_version(rule: MiddlewareVersionRule, env: CheckEnv) -> list[tuple[str, ServerVersion]]:
    assert rule.target
    try:
        engine = env.engine(rule.target)
    except ProbeUnavailable as exc:
        raise ProbeUnavailable(f"{LABELS[rule.component]} {exc}") from None
    with engine.connect() as conn:
        raw = str(conn.execute(text("SELECT VERSION()")).scalar())
    return [(engine.url.render_as_string(hide_password=True), _parse(raw, rule.target))]


def _single_try(client: redis.Redis) -> redis.Redis:
    """The same server and credentials without redis-py's own retries (10 by default): we retry 3 times."""
    pool = client.connection_pool
    kw = pool.connection_kwargs
    return redis.Redis(host=kw.get("host", "127.0.0.1"), port=kw.get("port", 6379), db=kw.get("db", 0),
                       username=kw.get("username"), password=kw.get("password"), socket_timeout=10,
                       socket_connect_timeout=10, ssl=issubclass(pool.connection_class, redis.SSLConnection),
                       retry=Retry(NoBackoff(), 0))


def _redis_version(rule: MiddlewareVersionRule, env: CheckEnv) -> list[tuple[str, ServerVersion]]:
    site_client = env.resources.redis()
    kw = site_client.connection_pool.connection_kwargs
    where = f"Redis {kw.get('host')}:{kw.get('port')}"
    client = _single_try(site_client)
    try:
        info = env.retry(lambda: client.info("server"), where, transient=(redis.ConnectionError, redis.TimeoutError))
    finally:
        client.close()
    return [(where, _parse(str(info.get("redis_version", "")), where))]


def _zookeeper_version(rule: MiddlewareVersionRule, env: CheckEnv) -> list[tuple[str, ServerVersion]]:
    assert rule.target
    return [(where, _parse(raw, where))
            for _, where, raw in env.ask_zookeeper(rule.target, "srvr", zookeeper_version_from_srvr)]


def _clickhouse_version(rule: MiddlewareVersionRule, env: CheckEnv) -> list[tuple[str, ServerVersion]]:
    assert rule.target
    raw = str(env.clickhouse(rule.target).command("SELECT version()"))
    return [(f"ClickHouse {rule.target}", _parse(raw, rule.target))]


_PROBES = {"mysql": _sql_version, "mariadb": _sql_version, "redis": _redis_version,
           "zookeeper": _zookeeper_version, "clickhouse": _clickhouse_version}


def measure_version(rule: MiddlewareVersionRule, env: CheckEnv) -> Measurement:
    """Every server of the component against the rule's minimum/maximum; one violation per server."""
    label = LABELS[rule.component]
    found = _PROBES[rule.component](rule, env)
    problems = []
    for where, version in found:
        problem = version_problem(version, label, rule.min_version, rule.max_version)
        if problem is None and rule.component == "mariadb" and not version.is_mariadb:
            problem = f"{where}不是MariaDB（{version.raw}）"
        if problem:
            problems.append(Problem(where, problem))
    required = requirement_text(rule.min_version, rule.max_version)
    actual = ", ".join(v.numeric for _, v in found)
    return Measurement(
        count=len(problems),
        breach_text="；".join(p.description for p in problems),
        pass_text=f"{label}版本{actual}满足要求（{required}）",
        problems=tuple(problems),
        facts={"component": label, "actual": actual, "actual_raw": [v.raw for _, v in found],
               "minimum": rule.min_version or "", "maximum": rule.max_version or "", "required": required,
               "address": ", ".join(w for w, _ in found)},
    )
