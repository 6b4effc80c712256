"""Kafka as a ZooKeeper-mode cluster records itself: brokers, topic assignments, partition state.

Znodes (Kafka's JSON formats):

* ``/brokers/ids/<id>``: ``{"host": "k1", "port": 9092, "endpoints": ["PLAINTEXT://k1:9092"], …}``,
  ephemeral: present only while the broker is alive;
* ``/brokers/topics/<name>``: ``{"version": 2, "partitions": {"0": [1, 2], …}}`` (partition → replicas);
* ``/brokers/topics/<name>/partitions/<p>/state``: ``{"leader": 1, "isr": [1, 2], …}``.

Parsing and the comparison with the configured topics are pure; :func:`read_cluster` is the only
I/O (kazoo). KRaft clusters keep no such znodes: ``kafka_admin`` asks their brokers through the admin API
and builds the same :class:`ClusterView`, compared by the same :func:`cluster_problems`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kazoo.client import KazooClient

    from tasks.checks.rules import TopicSpec


@dataclass(frozen=True)
class Broker:
    id: int
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class PartitionState:
    leader: int
    isr: tuple[int, ...]


@dataclass(frozen=True)
class Topic:
    name: str
    replicas: dict[int, tuple[int, ...]]
    states: dict[int, PartitionState] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterView:
    brokers: tuple[Broker, ...]
    topics: dict[str, Topic | None]
    cluster_id: str | None = None  # known from the admin API only

    @property
    def broker_ids(self) -> set[int]:
        return {b.id for b in self.brokers}


def _json(data: bytes, what: str) -> dict:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{what} is not Kafka's JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not a JSON object")
    return value


def parse_broker(broker_id: str, data: bytes) -> Broker:
    value = _json(data, f"/brokers/ids/{broker_id}")
    endpoints = value.get("endpoints") or []
    if not endpoints and value.get("host"):
        endpoints = [f"PLAINTEXT://{value['host']}:{value.get('port')}"]
    return Broker(int(broker_id), tuple(str(e) for e in endpoints))


def parse_topic(name: str, data: bytes) -> dict[int, tuple[int, ...]]:
    value = _json(data, f"/brokers/topics/{name}")
    partitions = value.get("partitions")
    if not isinstance(partitions, dict):
        raise ValueError(f"/brokers/topics/{name} has no 'partitions' object")
    return {int(p): tuple(int(r) for r in replicas) for p, replicas in partitions.items()}


def parse_state(name: str, partition: int, data: bytes) -> PartitionState:
    value = _json(data, f"/brokers/topics/{name}/partitions/{partition}/state")
    return PartitionState(int(value.get("leader", -1)), tuple(int(r) for r in value.get("isr") or ()))


def topic_problems(spec: TopicSpec, topic: Topic | None, live: set[int], *, check_isr: bool) -> list[str]:
    """What differs between a configured topic and the cluster, one sentence per problem."""
    if topic is None:
        return [f"主题{spec.name}不存在"]
    out: list[str] = []
    if spec.partitions is not None and len(topic.replicas) < spec.partitions:
        out.append(f"主题{spec.name}分区数{len(topic.replicas)}少于配置的{spec.partitions}")
    for p, replicas in sorted(topic.replicas.items()):
        if spec.replication_factor is not None and len(replicas) != spec.replication_factor:
            out.append(f"主题{spec.name}分区{p}副本数{len(replicas)}不等于配置的{spec.replication_factor}")
        offline = sorted(set(replicas) - live)
        if offline:
            out.append(f"主题{spec.name}分区{p}的副本所在broker {offline} 不在线")
        state = topic.states.get(p)
        if check_isr and state is not None and set(replicas) - set(state.isr):
            out.append(f"主题{spec.name}分区{p}的ISR {list(state.isr)} 少于副本 {list(replicas)}")
    return out


def cluster_problems(view: ClusterView, specs: Sequence[TopicSpec], min_brokers: int | None, *,
                     check_isr: bool) -> list[tuple[str, str]]:
    """(object, problem) pairs for the whole rule."""
    out: list[tuple[str, str]] = []
    if min_brokers is not None and len(view.brokers) < min_brokers:
        out.append(("brokers", f"在线broker数{len(view.brokers)}少于要求的{min_brokers}"))
    for spec in specs:
        out += [(spec.name, p) for p in topic_problems(spec, view.topics.get(spec.name), view.broker_ids,
                                                       check_isr=check_isr)]
    return out


def read_cluster(zk: KazooClient, topics: Iterable[str], *, with_state: bool) -> ClusterView:
    """Read brokers and the named topics from a connected kazoo client (chroot already applied)."""
    from kazoo.exceptions import NoNodeError

    try:
        ids = zk.get_children("/brokers/ids")
    except NoNodeError:
        raise ValueError("no /brokers/ids znode: this is not a ZooKeeper-mode Kafka cluster "
                         "(or the chroot is wrong)") from None
    brokers = []
    for broker_id in sorted(ids, key=lambda s: int(s) if s.isdigit() else 0):
        try:
            data, _ = zk.get(f"/brokers/ids/{broker_id}")
        except NoNodeError:
            continue  # went away while we read
        brokers.append(parse_broker(broker_id, data))
    found: dict[str, Topic | None] = {}
    for name in topics:
        try:
            data, _ = zk.get(f"/brokers/topics/{name}")
        except NoNodeError:
            found[name] = None
            continue
        replicas = parse_topic(name, data)
        states: dict[int, PartitionState] = {}
        if with_state:
            for p in replicas:
                try:
                    raw, _ = zk.get(f"/brokers/topics/{name}/partitions/{p}/state")
                except NoNodeError:
                    continue
                states[p] = parse_state(name, p, raw)
        found[name] = Topic(name, replicas, states)
    return ClusterView(tuple(brokers), found)
