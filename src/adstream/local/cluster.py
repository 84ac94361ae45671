"""A local Kafka cluster of three KRaft nodes, replicated like MSK, for failure drills.

Each node is a ``LocalBroker`` (its own JVM, data, logs and broker certificate in
``node-N/``) on ports shifted by ``NODE_PORT_STEP``; every node is broker and controller,
so the controller quorum has three voters and survives one node down. The certificates,
secrets and client files are shared in the cluster's directory, and ``cluster.json``
records the ports and the cluster id. Topics come from ``deploy/kafka.yaml`` with the
``local`` and ``local-cluster`` overlays: ``ad-events`` with three replicas and
``min.insync.replicas=2``, so an acks=all write survives one broker down and is refused
(never acknowledged) with two down.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from adstream.kafka.factory import make_admin
from adstream.local.broker import (
    DEFAULT_HEAP_MB,
    STOP_TIMEOUT_S,
    BrokerError,
    LocalBroker,
    ProgressFn,
    new_cluster_id,
)
from adstream.local.broker_state import BrokerStatus
from adstream.local.client_configs import local_kafka_settings
from adstream.local.jars import KafkaDistribution
from adstream.local.layout import BrokerLayout, Ports
from adstream.local.processes import wait_exit
from adstream.local.secrets import LocalSecrets

CLUSTER_SIZES = (1, 3)
"""Brokers a local cluster can have: the overlays give replication factor 1 or 3."""


@dataclass(frozen=True)
class ClusterState:
    """What ``cluster.json`` records: how to reach the cluster and which id its nodes share."""

    base_port: int
    brokers: int
    heap_mb: int
    kafka_version: str
    cluster_id: str

    @classmethod
    def read(cls, path: Path) -> ClusterState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


@dataclass(frozen=True)
class NodeStatus:
    node_id: int
    broker: BrokerStatus
    rss_mib: int | None


@dataclass(frozen=True)
class ClusterStatus:
    nodes: tuple[NodeStatus, ...]
    controller: int | None
    """The active controller (quorum leader), as the running nodes record it."""
    under_replicated: tuple[str, ...] | None
    """``topic/partition`` whose in-sync replicas are fewer than its replicas; None: unknown."""

    @property
    def running(self) -> bool:
        return any(node.broker.running for node in self.nodes)


def rss_mib(pid: int) -> int | None:
    """A process's resident memory in MiB (``VmRSS``), None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class LocalCluster:
    """``brokers`` KRaft nodes in ``layout.root``/node-N, provisioned as one cluster."""

    def __init__(
        self,
        layout: BrokerLayout,
        dist: KafkaDistribution,
        *,
        base_port: int = 9092,
        heap_mb: int = DEFAULT_HEAP_MB,
        state_file: Path | None = None,
        brokers: int = 3,
    ) -> None:
        if brokers not in CLUSTER_SIZES:
            raise BrokerError(f"a local cluster has 1 or 3 brokers, not {brokers}")
        self.layout = layout
        self.dist = dist
        self.heap_mb = heap_mb
        self.ports = Ports(base_port, brokers)
        self._admin: AdminClient | None = None
        self.nodes = tuple(
            LocalBroker(
                layout.node(n),
                dist,
                base_port=base_port,
                heap_mb=heap_mb,
                state_file=state_file,
                nodes=brokers,
            )
            for n in range(1, brokers + 1)
        )

    def node(self, node_id: int) -> LocalBroker:
        if not 1 <= node_id <= len(self.nodes):
            raise BrokerError(f"there is no node {node_id}: the cluster has 1-{len(self.nodes)}")
        return self.nodes[node_id - 1]

    def secrets(self) -> LocalSecrets:
        return self.nodes[0].secrets()

    def admin(self) -> AdminClient:
        """An AdminClient as the ``admin`` super user over mutual TLS, bootstrapping from all;
        one per cluster object, as drills ask often (it reconnects to restarted nodes)."""
        if self._admin is None:
            self._admin = make_admin(local_kafka_settings(self.layout, self.ports, "admin"))
        return self._admin

    # ---- up / down -----------------------------------------------------------------------
    def up(self, progress: ProgressFn | None = None) -> ClusterStatus:
        """Start every node that is not running, wait until each serves, then provision."""
        say = progress or (lambda _msg: None)
        state = self._state()
        stopped = [node for node in self.nodes if node.running_pid() is None]
        for node in stopped:
            node.check_ports()
        for node in stopped:
            node.prepare()
            if not node.layout.formatted_marker.exists():
                say(f"Formatting KRaft storage of node {node.node_id}")
                node.format_storage(state.cluster_id)
        say(f"Starting {len(stopped)} of {len(self.nodes)} Kafka {self.dist.version} nodes")
        starting = [node.spawn() for node in stopped]
        for started in starting:
            started.wait_ready()
            say(f"Node {started.broker.node_id} ready (pid {started.proc.pid})")
        self.nodes[0].provision()
        return self.status()

    def _state(self) -> ClusterState:
        """The recorded state, or a new one; refuses another port block while running."""
        recorded = ClusterState.read(self.layout.cluster_file)
        if recorded is not None:
            moved = recorded.brokers != len(self.nodes) or recorded.base_port != self.ports.base
            if moved and any(node.running_pid() for node in self.nodes):
                raise BrokerError(
                    f"the cluster in {self.layout.root} runs {recorded.brokers} brokers "
                    f"from port {recorded.base_port}; run `adstream kafka down` first"
                )
            cluster_id = recorded.cluster_id
        else:
            cluster_id = new_cluster_id()
        state = ClusterState(
            self.ports.base, len(self.nodes), self.heap_mb, self.dist.version, cluster_id
        )
        state.write(self.layout.cluster_file)
        return state

    def start_node(self, node_id: int, progress: ProgressFn | None = None) -> BrokerStatus:
        """Start one stopped node (of a cluster started before) and wait until it serves."""
        self.start_nodes([node_id], progress)
        return self.node(node_id).status()

    def start_nodes(self, node_ids: list[int], progress: ProgressFn | None = None) -> None:
        """Start stopped nodes together, then wait for each: with two of three down, neither
        serves until the other has restored the quorum."""
        stopped = [self.node(n) for n in node_ids if self.node(n).running_pid() is None]
        for node in stopped:
            node.check_ports()
            node.prepare()
        for started in [node.spawn() for node in stopped]:
            started.wait_ready()
            (progress or (lambda _msg: None))(f"Node {started.broker.node_id} ready")

    def stop_node(
        self, node_id: int, progress: ProgressFn | None = None, *, kill: bool = False
    ) -> bool:
        """Stop one node: SIGTERM (controlled shutdown) or, with ``kill``, SIGKILL (a crash)."""
        return self.node(node_id).down(progress, kill=kill)

    def down(self, progress: ProgressFn | None = None) -> bool:
        """SIGTERM every node at once (one at a time, the last would wait for a quorum that
        has already gone), then wait; True if any was running."""
        say = progress or (lambda _msg: None)
        self._admin = None  # its connections would log every refused reconnect after this
        pids = [(node, pid) for node in self.nodes if (pid := node.running_pid()) is not None]
        for node, pid in pids:
            say(f"Stopping node {node.node_id} (pid {pid})")
            os.kill(pid, signal.SIGTERM)
        for node, pid in pids:
            if not wait_exit(pid, STOP_TIMEOUT_S):
                say(f"Node {node.node_id} did not stop within {STOP_TIMEOUT_S:.0f}s; killing it")
                node.kill(pid)
        if not pids:
            say("Cluster is not running")
        return bool(pids)

    # ---- status --------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        nodes = []
        for node in self.nodes:
            current = node.status()
            rss = rss_mib(current.pid) if current.pid is not None else None
            nodes.append(NodeStatus(node.node_id, current, rss))
        running = [node for node in self.nodes if node.running_pid() is not None]
        return ClusterStatus(
            tuple(nodes), active_controller(running), self.under_replicated() if running else None
        )

    def under_replicated(self, timeout: float = 5.0) -> tuple[str, ...] | None:
        """Partitions with fewer in-sync replicas than replicas (None: no metadata answer)."""
        try:
            metadata = self.admin().list_topics(timeout=timeout)
        except Exception:
            return None
        return tuple(
            f"{name}/{partition.id}"
            for name, topic in sorted(metadata.topics.items())
            for partition in topic.partitions.values()
            if len(partition.isrs) < len(partition.replicas)
        )


def active_controller(nodes: list[LocalBroker]) -> int | None:
    """The quorum leader that the running nodes' ``quorum-state`` files name with the highest
    epoch (librdkafka has no DescribeQuorum; a node rewrites this file on every election)."""
    best: tuple[int, int] | None = None
    for node in nodes:
        path = node.layout.data_dir / "__cluster_metadata-0" / "quorum-state"
        try:
            data = json.loads(path.read_text())
            epoch, leader = int(data["leaderEpoch"]), int(data["leaderId"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if leader >= 0 and (best is None or epoch > best[0]):
            best = (epoch, leader)
    running = {node.node_id for node in nodes}
    return best[1] if best and best[1] in running else None
