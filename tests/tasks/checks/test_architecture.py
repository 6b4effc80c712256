"""Deployment-architecture checks: ZooKeeper's data disk, free space (locally and over real SSH), and
Kafka topics as a ZooKeeper-mode cluster registers them in the real ZooKeeper."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from tasks.checks.outcome import CheckStatus
from tasks.checks.targets import SshSettings
from tests.tasks.checks.conftest import SshServer, ZooKeeperServer
from tests.tasks.checks.support import run_check


def other_mount() -> str:
    """A path that is not on the root file system's device (tmpfs /dev/shm, else /proc)."""
    root = os.stat("/").st_dev
    return next(p for p in ("/dev/shm", "/proc", "/sys") if os.path.exists(p) and os.stat(p).st_dev != root)


def zk_disk(**fields: Any) -> dict[str, Any]:
    return {"id": "zk_disk", "title": "ZooKeeper磁盘挂载检查", "type": "zookeeper_data_disk", **fields}


def test_a_data_dir_on_its_own_mount_passes(tmp_path: Path) -> None:
    o = run_check(tmp_path, zk_disk(data_dir=other_mount()))
    assert o.status == CheckStatus.PASS
    assert o.result.startswith(f"ZooKeeper数据目录{other_mount()}位于独立挂载点")


@pytest.mark.parametrize("level", ["warn", "fail"])
def test_a_data_dir_on_the_system_disk_warns_or_fails(tmp_path: Path, level: str) -> None:
    o = run_check(tmp_path, zk_disk(data_dir=str(tmp_path), severity=level))
    assert o.status == CheckStatus(level)
    assert o.result.startswith("ZooKeeper数据目录与系统目录共用磁盘")
    assert o.suggestion == "为ZooKeeper配置独立的数据磁盘"
    assert o.problems[0].db_object == f"local:{tmp_path}"


def test_the_data_dir_is_asked_from_zookeeper_itself(tmp_path: Path, zookeeper: ZooKeeperServer) -> None:
    o = run_check(tmp_path, zk_disk(target="zookeeper", severity="warn"), environment={"zookeeper": zookeeper.address})
    assert o.status == CheckStatus.WARN, o.result
    assert o.facts["data_dir"] == str(zookeeper.data_dir)


def test_a_missing_data_dir_is_an_error_not_a_pass(tmp_path: Path) -> None:
    o = run_check(tmp_path, zk_disk(data_dir=str(tmp_path / "nope"), severity="warn"))
    assert o.status == CheckStatus.FAIL
    assert "No such file or directory" in o.result


def disk_free(**fields: Any) -> dict[str, Any]:
    return {"id": "disk_root", "title": "磁盘空间检查", "type": "disk_free", "path": "/", **fields}


@pytest.mark.parametrize(("limits", "level"), [({"min_free_gb": 0.001}, "pass"), ({"min_free_percent": 99.99}, "warn"),
                                               ({"min_free_gb": 10**9}, "fail")])
def test_free_disk_space_passes_warns_or_fails(tmp_path: Path, limits: dict, level: str) -> None:
    o = run_check(tmp_path, disk_free(**limits, severity="warn" if level == "warn" else "fail"))
    assert o.status == CheckStatus(level), o.result
    assert o.facts["mount"] == "/" and o.facts["free_gb"] > 0
    if level != "pass":
        assert "低于要求" in o.result and o.suggestion.startswith("清理或扩容/所在磁盘")


def ssh_settings(server: SshServer) -> SshSettings:
    return SshSettings(key_file=str(server.key_file), known_hosts=str(server.known_hosts), timeout=5)


@pytest.mark.parametrize("level", ["pass", "warn", "fail"])
def test_architecture_checks_run_on_a_named_host_over_ssh(tmp_path: Path, sshd: SshServer, level: str) -> None:
    data_dir = other_mount() if level == "pass" else str(tmp_path)
    o = run_check(tmp_path, zk_disk(data_dir=data_dir, host=sshd.target, severity=level if level != "pass" else "fail"),
                  ssh=ssh_settings(sshd))
    assert o.status == CheckStatus(level), o.result
    assert o.facts["host"] == sshd.target
    if level != "pass":
        assert o.problems[0].db_object == f"ssh {sshd.target}:{tmp_path}"
    free = run_check(tmp_path, disk_free(host=sshd.target, min_free_gb=0.001), ssh=ssh_settings(sshd))
    assert free.status == CheckStatus.PASS and free.facts["host"] == sshd.target


def test_an_unknown_ssh_host_key_is_refused(tmp_path: Path, sshd: SshServer) -> None:
    o = run_check(tmp_path, zk_disk(data_dir="/", host=sshd.target, severity="warn"),
                  ssh=SshSettings(key_file=str(sshd.key_file), known_hosts=None, timeout=5))
    assert o.status == CheckStatus.FAIL
    assert "not found in known_hosts" in o.result


def test_an_ssh_host_that_does_not_answer_fails_after_retries(tmp_path: Path, sshd: SshServer) -> None:
    from tests.tasks.checks.conftest import free_port

    port = free_port()
    o = run_check(tmp_path, disk_free(host=f"127.0.0.1:{port}", min_free_gb=1), ssh=ssh_settings(sshd))
    assert o.status == CheckStatus.FAIL
    assert f"127.0.0.1:{port} unreachable after 4 attempts" in o.result


@pytest.fixture
def kafka_chroot(zookeeper: ZooKeeperServer) -> Iterator[tuple[KazooClient, str]]:
    """A fresh chroot in the real ZooKeeper where tests register brokers and topics as Kafka does."""
    chroot = f"/kafka_{uuid.uuid4().hex[:8]}"
    zk = KazooClient(hosts=zookeeper.address)
    zk.start(timeout=10)
    zk.ensure_path(chroot)
    zk.chroot = chroot
    try:
        yield zk, f"{zookeeper.address}{chroot}"
    finally:
        zk.chroot = ""
        zk.delete(chroot, recursive=True)
        zk.stop()
        zk.close()


def register(zk: KazooClient, brokers: list[int], topics: dict[str, dict[int, list[int]]],
             isr: dict[tuple[str, int], list[int]] | None = None) -> None:
    """Znodes in Kafka's own JSON formats (broker registration v5, topic assignment v3, partition state v1)."""
    for b in brokers:
        zk.create(f"/brokers/ids/{b}", json.dumps({
            "features": {}, "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"},
            "endpoints": [f"PLAINTEXT://kafka{b}:9092"], "jmx_port": -1, "port": 9092, "host": f"kafka{b}",
            "version": 5, "timestamp": "1700000000000"}).encode(), makepath=True)
    for name, partitions in topics.items():
        zk.create(f"/brokers/topics/{name}", json.dumps({
            "partitions": {str(p): r for p, r in partitions.items()}, "topic_id": uuid.uuid4().hex,
            "adding_replicas": {}, "removing_replicas": {}, "version": 3}).encode(), makepath=True)
        for p, replicas in partitions.items():
            in_sync = (isr or {}).get((name, p), replicas)
            zk.create(f"/brokers/topics/{name}/partitions/{p}/state", json.dumps({
                "controller_epoch": 1, "leader": in_sync[0], "version": 1, "leader_epoch": 0,
                "isr": in_sync}).encode(), makepath=True)


KAFKA_RULE = {"id": "kafka_topics", "title": "Kafka分区副本检查", "type": "kafka_topics", "target": "kafka_zk",
              "min_brokers": 3, "topics": [{"name": "ft-events", "partitions": 3, "replication_factor": 3},
                                           {"name": "ft-audit", "partitions": 1, "replication_factor": 3}]}
HEALTHY = {"ft-events": {0: [1, 2, 3], 1: [2, 3, 1], 2: [3, 1, 2]}, "ft-audit": {0: [1, 2, 3]}}


def test_kafka_topics_as_configured_pass(tmp_path: Path, kafka_chroot: tuple[KazooClient, str]) -> None:
    zk, address = kafka_chroot
    register(zk, [1, 2, 3], HEALTHY)
    o = run_check(tmp_path, KAFKA_RULE, environment={"kafka_zk": address})
    assert o.status == CheckStatus.PASS, o.result
    assert o.result == "3个broker在线，主题ft-events, ft-audit的分区数和副本数符合配置"


@pytest.mark.parametrize("level", ["warn", "fail"])
def test_kafka_partitions_replicas_and_isr_problems_are_each_reported(
        tmp_path: Path, kafka_chroot: tuple[KazooClient, str], level: str) -> None:
    zk, address = kafka_chroot
    register(zk, [1, 2], {"ft-events": {0: [1, 2], 1: [2, 3]}}, isr={("ft-events", 0): [1]})
    o = run_check(tmp_path, {**KAFKA_RULE, "severity": level}, environment={"kafka_zk": address})
    assert o.status == CheckStatus(level)
    assert [p.description for p in o.problems] == [
        "在线broker数2少于要求的3",
        "主题ft-events分区数2少于配置的3",
        "主题ft-events分区0副本数2不等于配置的3",
        "主题ft-events分区0的ISR [1] 少于副本 [1, 2]",
        "主题ft-events分区1副本数2不等于配置的3",
        "主题ft-events分区1的副本所在broker [3] 不在线",
        "主题ft-audit不存在",
    ]
    assert o.result.startswith("发现7项Kafka配置问题：在线broker数2少于要求的3；")
    assert o.suggestion.startswith("按配置调整Kafka主题ft-events, ft-audit的分区数和副本数")


def test_a_zookeeper_without_kafka_znodes_is_a_clear_error(tmp_path: Path,
                                                           kafka_chroot: tuple[KazooClient, str]) -> None:
    _, address = kafka_chroot
    o = run_check(tmp_path, KAFKA_RULE, environment={"kafka_zk": address})
    assert o.status == CheckStatus.FAIL
    assert "no /brokers/ids znode: this is not a ZooKeeper-mode Kafka cluster" in o.result
