"""Where a local broker keeps its files and which ports it listens on.

One object answers "where is X" for every other module, so paths and ports are
computed in exactly one place. Ports mirror Amazon MSK's client ports; the whole
block shifts with ``base_port`` so a test broker can run beside a developer's.
A local cluster (``kafka up --brokers 3``) shifts each further node by ``NODE_PORT_STEP``,
and keeps each node's data, logs and configuration in ``node-N/`` beside the shared
certificates, secrets and client files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

PRINCIPALS: tuple[str, ...] = ("admin", "adstream-api", "adstream-aggregator", "adstream-connect")
"""Client principals that get a certificate and a SCRAM user."""

SCRAM_USERS: tuple[str, ...] = PRINCIPALS
BROKER_PRINCIPAL = "broker"
LISTEN_HOST = "127.0.0.1"


class Listener(StrEnum):
    """The broker's listeners, named by their security protocol as MSK does."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_SSL = "SASL_SSL"
    CONTROLLER = "CONTROLLER"


# Offsets from the base port: 9092 plaintext, 9093 controller, 9094 TLS, 9096 SCRAM.
_PORT_OFFSETS: dict[Listener, int] = {
    Listener.PLAINTEXT: 0,
    Listener.CONTROLLER: 1,
    Listener.SSL: 2,
    Listener.SASL_SSL: 4,
}

LISTENER_PURPOSE: dict[Listener, str] = {
    Listener.PLAINTEXT: "plaintext, no auth (local development only)",
    Listener.SSL: "TLS with client certificates (mutual TLS)",
    Listener.SASL_SSL: "TLS + SASL/SCRAM-SHA-512",
    Listener.CONTROLLER: "KRaft controller (mutual TLS, broker only)",
}

CLIENT_LISTENERS: tuple[Listener, ...] = (Listener.PLAINTEXT, Listener.SSL, Listener.SASL_SSL)
METRICS_PORT_OFFSET = 9
"""The JMX exporter's ``/metrics`` (9101 beside 9092): MSK's open monitoring uses 11001."""
NODE_PORT_STEP = 10
"""Node N of a local cluster listens on the base port + (N - 1) * 10: 9092, 9102, 9112."""


@dataclass(frozen=True)
class Ports:
    """The port of every listener of every node, derived from one base port.

    ``of`` and ``all`` name one node's ports (node 1 unless ``node`` says otherwise);
    ``bootstrap`` lists every node, as a client's ``bootstrap.servers`` does.
    """

    base: int = 9092
    nodes: int = 1

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"a cluster has at least one node, not {self.nodes}")
        highest = 65535 - METRICS_PORT_OFFSET - NODE_PORT_STEP * (self.nodes - 1)
        if not 1024 <= self.base <= highest:
            raise ValueError(f"base port {self.base} is out of range (1024-{highest})")

    def node(self, node_id: int) -> Ports:
        """The ports of one node alone."""
        if not 1 <= node_id <= self.nodes:
            raise ValueError(f"node {node_id} is not in 1-{self.nodes}")
        return Ports(self.base + NODE_PORT_STEP * (node_id - 1))

    def of(self, listener: Listener) -> int:
        return self.base + _PORT_OFFSETS[listener]

    def bootstrap(self, listener: Listener) -> str:
        return ",".join(
            f"{LISTEN_HOST}:{self.node(n).of(listener)}" for n in range(1, self.nodes + 1)
        )

    def all(self) -> dict[Listener, int]:
        return {listener: self.of(listener) for listener in Listener}

    @property
    def metrics(self) -> int:
        """The port of the broker's Prometheus metrics (the JMX exporter agent)."""
        return self.base + METRICS_PORT_OFFSET

    def metrics_targets(self) -> list[str]:
        """Every node's metrics address, as Prometheus scrapes them."""
        return [f"{LISTEN_HOST}:{self.node(n).metrics}" for n in range(1, self.nodes + 1)]

    def every_port(self) -> list[int]:
        """Every listener port of every node (what must be free before a start)."""
        return [
            port
            for n in range(1, self.nodes + 1)
            for port in (*self.node(n).all().values(), self.node(n).metrics)
        ]


@dataclass(frozen=True)
class BrokerLayout:
    """Paths of one local broker's state directory (default ``.adstream/kafka``).

    A cluster node's layout (``node(n)``) keeps its own data, logs, configuration and
    broker certificate under ``root`` and shares the certificates, secrets and client
    files of the cluster's directory (``home``).
    """

    root: Path
    home: Path | None = None
    node_id: int | None = None

    @classmethod
    def at(cls, root: Path | str) -> BrokerLayout:
        return cls(Path(root).expanduser().resolve())

    def node(self, node_id: int) -> BrokerLayout:
        return BrokerLayout(self.root / f"node-{node_id}", self.root, node_id)

    @property
    def shared(self) -> Path:
        """Where certificates, secrets and client files live (the cluster's directory)."""
        return self.home or self.root

    @property
    def cluster_file(self) -> Path:
        """``cluster.json``: the ports and size of a running local cluster."""
        return self.shared / "cluster.json"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def certs_dir(self) -> Path:
        return self.shared / "certs"

    @property
    def server_properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j_config(self) -> Path:
        return self.root / "log4j2.yaml"

    @property
    def jmx_exporter_config(self) -> Path:
        return self.root / "jmx-exporter.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.shared / "secrets.json"

    @property
    def state_file(self) -> Path:
        return self.root / "broker.json"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    @property
    def formatted_marker(self) -> Path:
        return self.data_dir / "meta.properties"

    def client_properties(self, name: str) -> Path:
        """``client-<name>.properties`` with name plaintext, tls or scram."""
        return self.shared / f"client-{name}.properties"

    def ca_pem(self) -> Path:
        return self.certs_dir / "ca.pem"

    def cert_pem(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.pem"

    def key_pem(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.key"

    def pkcs12(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.p12"

    def keystore_jks(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.keystore.jks"

    def broker_keystore(self) -> Path:
        """The broker's own PKCS#12 keystore; each cluster node has its own."""
        suffix = f"-{self.node_id}" if self.node_id is not None else ""
        return self.certs_dir / f"{BROKER_PRINCIPAL}{suffix}.p12"

    def truststore_jks(self) -> Path:
        return self.certs_dir / "truststore.jks"
