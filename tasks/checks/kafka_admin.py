"""Kafka asked through its admin API: brokers and topics of a KRaft cluster (the only mode of Kafka 4).

A KRaft cluster keeps no znodes (``kafka_zk`` reads those of ZooKeeper-mode clusters): its brokers answer
DescribeCluster (the live brokers, the cluster id) and DescribeTopics (each partition's replicas, leader
and ISR). Both are asked with ``allow_auto_topic_creation`` off, so a missing topic is never created by
the check. Only PLAINTEXT listeners are supported (no SASL/TLS settings yet).

Parsing the bootstrap list and turning the answers into the :class:`~tasks.checks.kafka_zk.ClusterView`
that the ZooKeeper path reads are pure, so the comparison with the configured topics
(:func:`~tasks.checks.kafka_zk.cluster_problems`) is one for both modes; :func:`read_cluster_admin` is
the only I/O (confluent-kafka's ``AdminClient``).

Example:
    ```python
    from tasks.checks.kafka_admin import Bootstrap, read_cluster_admin
    from tasks.checks.kafka_zk import cluster_problems

    view = read_cluster_admin(Bootstrap.parse("k1:9092,k2:9092"), ["ft-events"], with_state=True, timeout=5)
    problems = cluster_problems(view, rule.topics, rule.min_brokers, check_isr=True)
    ```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.checks.kafka_zk import Broker, ClusterView, PartitionState, Topic

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Node
    from confluent_kafka.admin import TopicDescription

# Kafka protocol error code: the broker knows no such topic (or may not say it exists).
UNKNOWN_TOPIC_OR_PARTITION = 3
# librdkafka's local error codes that mean "no broker answered in time": worth another attempt.
_TRANSPORT, _TIMED_OUT, _RESOLVE, _ALL_BROKERS_DOWN = -195, -185, -193, -187
UNREACHABLE_CODES = frozenset({_TRANSPORT, _TIMED_OUT, _RESOLVE, _ALL_BROKERS_DOWN})
_PLAINTEXT_SCHEMES = frozenset({"kafka", "plaintext", "tcp"})
_SCHEME = re.compile(r"^([A-Za-z_]+)://")
logger = logging.getLogger("ft_upgrade.checks.kafka")


class KafkaUnreachable(ConnectionError):
    """No broker of the bootstrap list answered in time (retried by the caller)."""


@dataclass(frozen=True)
class Bootstrap:
    """Kafka bootstrap servers: ``k1:9092,k2:9092`` (``kafka://`` / ``PLAINTEXT://`` prefixes allowed)."""

    servers: tuple[tuple[str, int], ...]

    @classmethod
    def parse(cls, text: str) -> Bootstrap:
        """Parse a bootstrap list.

        Args:
            text: comma-separated ``host:port`` items, each optionally ``kafka://``, ``PLAINTEXT://`` or
                ``tcp://``; IPv6 hosts in brackets (``[::1]:9092``).

        Raises:
            ValueError: an item is not ``host:port``, names a path (a ZooKeeper chroot: that address is
                for ``mode: zookeeper``) or a security protocol other than PLAINTEXT.
        """
        servers = []
        for raw in text.split(","):
            item = raw.strip()
            scheme = _SCHEME.match(item)
            if scheme:
                if scheme.group(1).lower() not in _PLAINTEXT_SCHEMES:
                    raise ValueError(f"Kafka bootstrap servers {text!r}: {scheme.group(1)} is not supported, "
                                     f"only PLAINTEXT listeners")
                item = item[scheme.end():]
            if "/" in item:
                raise ValueError(f"Kafka bootstrap servers {text!r}: {item!r} has a path; a ZooKeeper chroot "
                                 f"belongs to mode 'zookeeper'")
            if item.startswith("["):  # [::1]:9092
                host, closed, rest = item[1:].partition("]")
                ok, port = bool(closed) and rest.startswith(":"), rest[1:]
            else:
                host, sep, port = item.rpartition(":")
                ok = bool(sep) and ":" not in host
            if not ok or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"Kafka bootstrap servers {text!r}: {raw.strip()!r} is not host:port")
            servers.append((host, int(port)))
        return cls(tuple(servers))

    def __str__(self) -> str:
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.servers)


def view_from_admin(nodes: Sequence[Node], topics: Mapping[str, TopicDescription | KafkaError], *,
                    with_state: bool, cluster_id: str | None = None) -> ClusterView:
    """The admin API's answers as the cluster view both modes compare with the configured topics.

    Args:
        nodes: the live brokers (DescribeCluster).
        topics: per configured topic, its description or the broker's error for it (DescribeTopics).
        with_state: keep each partition's leader and ISR.
        cluster_id: shown in the check's facts.

    Raises:
        ValueError: the broker refused to describe a topic for another reason than "unknown"
            (not authorized, leader not available…), naming the topic.
    """
    from confluent_kafka import KafkaError

    brokers = tuple(Broker(n.id, (f"{n.host}:{n.port}",)) for n in sorted(nodes, key=lambda n: n.id))
    found: dict[str, Topic | None] = {}
    for name, answer in topics.items():
        if isinstance(answer, KafkaError):
            if answer.code() == UNKNOWN_TOPIC_OR_PARTITION:
                found[name] = None
                continue
            raise ValueError(f"topic {name}: {answer.str()} ({answer.name()})")
        replicas = {p.id: tuple(r.id for r in p.replicas) for p in answer.partitions}
        states = {p.id: PartitionState(p.leader.id if p.leader is not None else -1, tuple(r.id for r in p.isr))
                  for p in answer.partitions} if with_state else {}
        found[name] = Topic(name, replicas, states)
    return ClusterView(brokers, found, cluster_id=cluster_id)


class _LastLog(logging.Handler):
    """Keeps librdkafka's last log line (it says *why*: "Connection refused") for the error message.

    librdkafka logs each failed connection at error level, many times a second while a broker is down;
    the lines go on at debug level, the check's error being the one that counts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last: str | None = None
        self.logger = logging.Logger(f"{logger.name}.client")  # not registered: one per client, then gone
        self.logger.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.last = message.rsplit("]: ", 1)[-1]
        logger.debug("librdkafka: %s", message)


def read_cluster_admin(bootstrap: Bootstrap, topics: Sequence[str], *, with_state: bool,
                       timeout: float) -> ClusterView:
    """Ask the brokers for the live brokers and the named topics (one attempt; the caller retries).

    Args:
        bootstrap: where to start; the client then talks to the brokers the cluster advertises.
        topics: the configured topic names.
        with_state: keep leaders and ISRs.
        timeout: seconds for each request.

    Raises:
        KafkaUnreachable: no broker answered within ``timeout`` (the message says why when librdkafka
            logged it, e.g. "Connection refused").
        ValueError: a broker answered with an error (see :func:`view_from_admin`).
    """
    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient

    log = _LastLog()
    client = AdminClient({"bootstrap.servers": str(bootstrap), "client.id": "ft-upgrade-check",
                          "allow.auto.create.topics": False, "logger": log.logger})

    def failure(what: str, error: KafkaError) -> Exception:
        client.poll(0)  # delivers the client's queued log lines to ``log``
        if error.code() in UNREACHABLE_CODES:
            why = f" ({log.last})" if log.last else ""
            return KafkaUnreachable(f"{what}: {error.str()}{why}")
        return ValueError(f"{what}: {error.str()} ({error.name()})")

    try:
        cluster = client.describe_cluster(request_timeout=timeout).result()
    except KafkaException as exc:
        raise failure("describe cluster", exc.args[0]) from None
    answers: dict[str, TopicDescription | KafkaError] = {}
    if topics:
        futures = client.describe_topics(TopicCollection(list(topics)), request_timeout=timeout)
        for name in topics:
            try:
                answers[name] = futures[name].result()
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() in UNREACHABLE_CODES:
                    raise failure(f"describe topic {name}", error) from None
                answers[name] = error
    return view_from_admin(cluster.nodes, answers, with_state=with_state, cluster_id=cluster.cluster_id)
