"""Settings of the local broker, from flags, ``ADSTREAM_LOCAL_KAFKA_*`` env vars or defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adstream.local.broker import DEFAULT_HEAP_MB, LocalBroker
from adstream.local.cluster import ClusterState, LocalCluster
from adstream.local.jars import KAFKA_VERSION, ProgressFn, ensure_kafka_jars
from adstream.local.layout import BrokerLayout, Ports


class LocalKafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADSTREAM_LOCAL_KAFKA_", extra="ignore")

    dir: Path = Field(Path(".adstream/kafka"), description="state directory of the broker")
    base_port: int = Field(9092, ge=1024, le=65531, description="PLAINTEXT port; others follow")
    heap_mb: int = Field(DEFAULT_HEAP_MB, ge=128, le=16384, description="JVM max heap in MiB")
    version: str = Field(KAFKA_VERSION, description="Apache Kafka version from Maven Central")
    cache_dir: Path | None = Field(None, description="where the jars are cached")
    state_file: Path | None = Field(
        None, description="desired-state file (+ its .local overlay); default deploy/kafka.yaml"
    )
    brokers: int | None = Field(
        None, description="1 (one broker) or 3 (a cluster); default: as started, else 1"
    )

    def cluster_size(self) -> int:
        """The brokers asked for, else those of the cluster recorded in ``dir``, else one."""
        if self.brokers is not None:
            return self.brokers
        recorded = ClusterState.read(BrokerLayout.at(self.dir).cluster_file)
        return recorded.brokers if recorded is not None else 1

    def metrics_targets(self) -> list[str]:
        """Every node's JMX exporter address (as recorded when running)."""
        recorded = ClusterState.read(BrokerLayout.at(self.dir).cluster_file)
        base_port = self.base_port
        if recorded is not None and "base_port" not in self.model_fields_set:
            base_port = recorded.base_port
        return Ports(base_port, self.cluster_size()).metrics_targets()

    def cluster(self, progress: ProgressFn | None = None) -> LocalCluster:
        """The multi-node cluster these settings describe (ports as recorded when running)."""
        layout = BrokerLayout.at(self.dir)
        recorded = ClusterState.read(layout.cluster_file)
        base_port = self.base_port
        if recorded is not None and "base_port" not in self.model_fields_set:
            base_port = recorded.base_port
        dist = ensure_kafka_jars(self.version, self.cache_dir, progress)
        return LocalCluster(
            layout,
            dist,
            base_port=base_port,
            heap_mb=self.heap_mb,
            state_file=self.state_file,
            brokers=self.cluster_size(),
        )

    def broker(self, progress: ProgressFn | None = None) -> LocalBroker:
        """The broker these settings describe, fetching its jars the first time."""
        dist = ensure_kafka_jars(self.version, self.cache_dir, progress)
        return LocalBroker(
            BrokerLayout.at(self.dir),
            dist,
            base_port=self.base_port,
            heap_mb=self.heap_mb,
            state_file=self.state_file,
        )
