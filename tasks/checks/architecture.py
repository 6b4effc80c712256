"""Deployment-architecture probes: ZooKeeper's data disk, free disk space, Kafka brokers and topics
(from ZooKeeper, or from the brokers' admin API for KRaft clusters).

Disk probes run ``stat`` / ``df`` where the data lives: on the worker, or over SSH when the rule
names a ``host`` (or when ZooKeeper reported its ``dataDir`` from another machine).
"""

from __future__ import annotations

from tasks.checks.hosts import devices, disk_usage, is_loopback
from tasks.checks.kafka_admin import Bootstrap, KafkaUnreachable, read_cluster_admin
from tasks.checks.kafka_zk import ClusterView, cluster_problems, read_cluster
from tasks.checks.middleware_versions import zookeeper_data_dir_from_conf
from tasks.checks.outcome import Measurement, Problem
from tasks.checks.rules import DiskFreeRule, KafkaTopicsRule, ZookeeperDataDiskRule
from tasks.checks.targets import CheckEnv
from tasks.core.errors import CheckError


def _data_dirs(rule: ZookeeperDataDiskRule, env: CheckEnv) -> list[tuple[str | None, str]]:
    """(host or None for local, data dir) for each server to check."""
    if rule.data_dir is not None:
        return [(rule.host, rule.data_dir)]
    assert rule.target
    return [(rule.host or (None if is_loopback(host) else host), data_dir)
            for host, _, data_dir in env.ask_zookeeper(rule.target, "conf", zookeeper_data_dir_from_conf)]


def measure_zookeeper_disk(rule: ZookeeperDataDiskRule, env: CheckEnv) -> Measurement:
    """The data directory's device against the system path's device, per server."""
    problems, mounts = [], []
    servers = _data_dirs(rule, env)
    for host, data_dir in servers:
        shell = env.shell(host)
        system, data = devices(shell, [rule.system_path, data_dir])
        where = f"{shell.name}:{data_dir}"
        mounts.append(data.mount)
        if data.device == system.device:
            problems.append(Problem(where, f"{data_dir} 与 {rule.system_path} 同在挂载点 {data.mount}"))
    dirs = ", ".join(p for _, p in servers)
    detail = "；".join(p.description for p in problems)
    return Measurement(
        count=len(problems),
        breach_text=f"ZooKeeper数据目录与系统目录共用磁盘：{detail}",
        pass_text=f"ZooKeeper数据目录{dirs}位于独立挂载点{', '.join(mounts)}",
        problems=tuple(problems),
        facts={"data_dir": dirs, "mount": ", ".join(mounts), "host": rule.host or "local",
               "system_path": rule.system_path},
    )


def measure_disk_free(rule: DiskFreeRule, env: CheckEnv) -> Measurement:
    shell = env.shell(rule.host)
    usage = disk_usage(shell, rule.path)
    short = []
    if rule.min_free_gb is not None and usage.free_gb < rule.min_free_gb:
        short.append(f"低于要求{rule.min_free_gb:g}GB")
    if rule.min_free_percent is not None and usage.free_percent < rule.min_free_percent:
        short.append(f"低于要求{rule.min_free_percent:g}%")
    state = f"{rule.path}所在磁盘（{usage.mount}）可用空间{usage.free_gb:.1f}GB（{usage.free_percent:.1f}%）"
    return Measurement(
        count=1 if short else 0,
        breach_text=state + "，" + "，".join(short),
        pass_text=state,
        problems=(Problem(f"{shell.name}:{usage.mount}", state + "，" + "，".join(short)),) if short else (),
        facts={"path": rule.path, "host": rule.host or "local", "mount": usage.mount,
               "free_gb": round(usage.free_gb, 2), "free_percent": round(usage.free_percent, 2),
               "min_free_gb": rule.min_free_gb if rule.min_free_gb is not None else "",
               "min_free_percent": rule.min_free_percent if rule.min_free_percent is not None else ""},
    )


def _kafka_via_zookeeper(rule: KafkaTopicsRule, env: CheckEnv) -> tuple[ClusterView, str]:
    """Brokers and topics as registered in ZooKeeper (ZooKeeper-mode Kafka)."""
    assert rule.target
    address = env.zookeeper(rule.target)
    zk = env.kazoo(address)
    try:
        view = read_cluster(zk, [t.name for t in rule.topics], with_state=rule.check_isr)
    except ValueError as exc:
        raise CheckError(f"Kafka via ZooKeeper {address}: {exc}") from None
    finally:
        zk.stop()
        zk.close()
    return view, str(address)


def _kafka_via_admin_api(rule: KafkaTopicsRule, env: CheckEnv) -> tuple[ClusterView, str]:
    """Brokers and topics as the brokers describe them (KRaft; the admin API)."""
    assert rule.target
    try:
        bootstrap = Bootstrap.parse(env.address(rule.target))
    except ValueError as exc:
        raise CheckError(str(exc)) from None
    try:
        view = env.retry(lambda: read_cluster_admin(bootstrap, [t.name for t in rule.topics],
                                                    with_state=rule.check_isr, timeout=rule.timeout_seconds),
                         f"Kafka {bootstrap}", transient=(KafkaUnreachable,))
    except ValueError as exc:
        raise CheckError(f"Kafka {bootstrap}: {exc}") from None
    return view, str(bootstrap)


def measure_kafka(rule: KafkaTopicsRule, env: CheckEnv) -> Measurement:
    """Brokers and topics (from ZooKeeper, or from the brokers in KRaft mode) against the configured ones."""
    view, address = (_kafka_via_admin_api if rule.mode == "kraft" else _kafka_via_zookeeper)(rule, env)
    found = cluster_problems(view, rule.topics, rule.min_brokers, check_isr=rule.check_isr)
    names = ", ".join(t.name for t in rule.topics)
    shown = "；".join(p for _, p in found[:5]) + ("…" if len(found) > 5 else "")
    return Measurement(
        count=len(found),
        breach_text=f"发现{len(found)}项Kafka配置问题：{shown}",
        pass_text=f"{len(view.brokers)}个broker在线" + (f"，主题{names}的分区数和副本数符合配置" if names else ""),
        problems=tuple(Problem(obj, text) for obj, text in found),
        facts={"topics": names or "-", "brokers": ", ".join(str(b.id) for b in view.brokers),
               "address": address, "mode": rule.mode, "cluster_id": view.cluster_id or "-"},
    )
