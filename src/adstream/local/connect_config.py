"""The local Kafka Connect worker's files: ``worker.properties``, the sink's connector config,
log4j2, rendered from the broker's and the warehouse's layouts.

The worker reaches the broker like every other client: mutual TLS with its own certificate
(principal ``adstream-connect``, least-privilege ACLs in ``deploy/kafka.yaml``). Connect
gives its sink consumers only ``consumer.``-prefixed settings and its admin ``admin.``-prefixed
ones, so the TLS settings are written three times. The Iceberg sink builds its control-topic
clients from the worker file too (it reads the path from the command line).

Delivery: the sink writes data files, then in one Kafka transaction announces them on the
control topic and moves its consumer group's offsets; one coordinator commits the files
to the table and records the offsets in the snapshot. A crash before the transaction
re-reads the records (the orphan files are never committed); after it, the coordinator
(re)reads the announcement from the control topic — from ``earliest`` with long retention,
closing apache/iceberg #17551 — so each record lands once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adstream.kafka.topics import (
    AD_EVENTS_TOPIC,
    ICEBERG_CONNECT_GROUP,
    ICEBERG_CONNECTOR,
    ICEBERG_CONTROL_TOPIC,
    ICEBERG_TRANSACTIONAL_PREFIX,
)
from adstream.local.layout import LISTEN_HOST, BrokerLayout, Listener, Ports
from adstream.local.log4j import rolling_file_yaml
from adstream.warehouse.layout import CATALOG_NAME, RAW_EVENTS_TABLE, WarehouseLayout

CONNECT_PRINCIPAL = "adstream-connect"
DEFAULT_REST_PORT = 8083
DEFAULT_BROKER_BASE_PORT = 9092


def rest_port_for(broker_ports: Ports) -> int:
    """8083 beside a broker on 9092; shifted with the broker's ports, so a test broker's
    worker runs beside a developer's (8083 again if the shift leaves the valid range)."""
    shifted = DEFAULT_REST_PORT + broker_ports.base - DEFAULT_BROKER_BASE_PORT
    return shifted if 1024 <= shifted <= 65535 else DEFAULT_REST_PORT


DEFAULT_COMMIT_INTERVAL_MS = 10_000
"""How often the coordinator commits to the table (Iceberg's default is 5 minutes): rows
become visible to queries at most this long after they reach Kafka, plus the write time."""
SINK_CLASS = "org.apache.iceberg.connect.IcebergSinkConnector"
METADATA_TRANSFORM = "org.apache.iceberg.connect.transforms.KafkaMetadataTransform"
STANDALONE_MAIN = "org.apache.kafka.connect.cli.ConnectStandalone"


@dataclass(frozen=True)
class ConnectLayout:
    """Paths of one local Connect worker's state directory (default ``.adstream/connect``)."""

    root: Path

    @classmethod
    def at(cls, root: Path | str) -> ConnectLayout:
        return cls(Path(root).expanduser().resolve())

    @property
    def worker_properties(self) -> Path:
        return self.root / "worker.properties"

    @property
    def connector_properties(self) -> Path:
        return self.root / f"{ICEBERG_CONNECTOR}.properties"

    @property
    def log4j_config(self) -> Path:
        return self.root / "log4j2.yaml"

    @property
    def offsets_file(self) -> Path:
        """Standalone mode's source-offset file (unused by a sink, required by the worker)."""
        return self.root / "standalone.offsets"

    @property
    def state_file(self) -> Path:
        return self.root / "connect.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def worker_log(self) -> Path:
        return self.logs_dir / "connect.log"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"


def _tls(broker: BrokerLayout, store_password: str) -> dict[str, str]:
    return {
        "security.protocol": "SSL",
        "ssl.keystore.type": "JKS",
        "ssl.keystore.location": str(broker.keystore_jks(CONNECT_PRINCIPAL)),
        "ssl.keystore.password": store_password,
        "ssl.key.password": store_password,
        "ssl.truststore.type": "JKS",
        "ssl.truststore.location": str(broker.truststore_jks()),
        "ssl.truststore.password": store_password,
    }


def worker_properties(
    layout: ConnectLayout,
    broker: BrokerLayout,
    ports: Ports,
    store_password: str,
    plugin_path: Path,
    rest_port: int,
) -> dict[str, str]:
    """The standalone worker's settings (holds the store password: written mode 0600)."""
    tls = _tls(broker, store_password)
    return {
        "bootstrap.servers": ports.bootstrap(Listener.SSL),
        **tls,
        **{f"consumer.{k}": v for k, v in tls.items()},
        **{f"admin.{k}": v for k, v in tls.items()},
        # A new sink group starts at the oldest retained event, so none is skipped.
        "consumer.auto.offset.reset": "earliest",
        # A worker killed without leaving its group holds its partitions this long before
        # the restarted one gets them (Kafka's default: 45 s).
        "consumer.session.timeout.ms": "10000",
        # Connect calls the sink's put() at least this often even when no record arrives;
        # the Iceberg sink answers its coordinator's commit requests only there, so with
        # the default (60 s) an idle topic delays each table commit by up to a minute.
        "offset.flush.interval.ms": "1000",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        # ad-events values are schemaless JSON objects (adstream's and the seed's format).
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "offset.storage.file.filename": str(layout.offsets_file),
        "listeners": f"http://{LISTEN_HOST}:{rest_port}",
        "rest.advertised.host.name": LISTEN_HOST,
        "rest.advertised.port": str(rest_port),
        "plugin.path": str(plugin_path),
        # The plugin's jars declare their classes (META-INF/services): no slow class scan.
        "plugin.discovery": "service_load",
    }


def connector_properties(
    warehouse: WarehouseLayout,
    commit_interval_ms: int = DEFAULT_COMMIT_INTERVAL_MS,
    topic: str = AD_EVENTS_TOPIC,
) -> dict[str, str]:
    """The Iceberg sink: ``ad-events`` (tests: a private topic) into ``adstream.ad_events_raw``
    (created up front)."""
    return {
        "name": ICEBERG_CONNECTOR,
        "connector.class": SINK_CLASS,
        # One task: one writer and one coordinator; raise it with the topic's partitions.
        "tasks.max": "1",
        "topics": topic,
        "iceberg.tables": RAW_EVENTS_TABLE,
        "iceberg.tables.auto-create-enabled": "false",
        "iceberg.tables.evolve-schema-enabled": "false",
        # The JDBC catalog on SQLite that pyiceberg's SqlCatalog reads under the same name.
        "iceberg.catalog": CATALOG_NAME,
        "iceberg.catalog.catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
        "iceberg.catalog.uri": warehouse.jdbc_uri,
        "iceberg.catalog.warehouse": warehouse.warehouse_uri,
        "iceberg.catalog.jdbc.schema-version": "V1",
        "iceberg.control.topic": ICEBERG_CONTROL_TOPIC,
        "iceberg.control.group-id-prefix": f"{ICEBERG_CONNECT_GROUP}-control-",
        "iceberg.coordinator.transactional.prefix": ICEBERG_TRANSACTIONAL_PREFIX,
        "iceberg.control.commit.interval-ms": str(commit_interval_ms),
        # A coordinator without a committed control offset must not skip announced files.
        "iceberg.kafka.auto.offset.reset": "earliest",
        # The coordinator's control consumer is in a group too: after a crash, its new
        # instance waits this long for the old one's partition (default 45 s).
        "iceberg.kafka.session.timeout.ms": "10000",
        "transforms": "kafka",
        "transforms.kafka.type": METADATA_TRANSFORM,
        # A value that is not JSON is logged and skipped (the aggregator dead-letters it);
        # a failure to write or commit stops the task instead.
        "errors.tolerance": "all",
        "errors.log.enable": "true",
    }


def log4j2_yaml(layout: ConnectLayout) -> str:
    """Worker logs to ``logs/connect.log``; the chatty client and Hadoop/Parquet logs at WARN."""
    return rolling_file_yaml(
        "connect",
        layout.worker_log,
        "[%d] %p %X{connector.context}%m (%c)%n",
        {
            "org.apache.kafka.clients": "WARN",
            "org.apache.kafka.common": "WARN",
            "org.apache.hadoop": "WARN",
            "org.apache.parquet": "WARN",
        },
    )
