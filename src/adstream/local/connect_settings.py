"""Settings of the local Connect worker, from flags, ``ADSTREAM_LOCAL_CONNECT_*`` or defaults.

The broker it sinks from is the local one of ``adstream kafka up`` (its directory and
running ports, ``ADSTREAM_LOCAL_KAFKA_*``); the table lives in ``ADSTREAM_WAREHOUSE_DIR``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from adstream.local.broker_state import RunningState
from adstream.local.connect import DEFAULT_HEAP_MB, LocalConnect
from adstream.local.connect_config import (
    DEFAULT_COMMIT_INTERVAL_MS,
    ConnectLayout,
    rest_port_for,
)
from adstream.local.connect_jars import ICEBERG_VERSION, ensure_connect_jars
from adstream.local.jars import KAFKA_VERSION, ProgressFn
from adstream.local.layout import BrokerLayout, Ports
from adstream.local.settings import LocalKafkaSettings
from adstream.warehouse.layout import WarehouseSettings


class LocalConnectSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADSTREAM_LOCAL_CONNECT_", extra="ignore")

    dir: Path = Field(Path(".adstream/connect"), description="state directory of the worker")
    rest_port: int | None = Field(
        None,
        ge=1024,
        le=65535,
        description="worker REST port on 127.0.0.1 (default 8083, shifted with the broker's)",
    )
    heap_mb: int = Field(DEFAULT_HEAP_MB, ge=128, le=16384, description="JVM max heap in MiB")
    commit_interval_ms: int = Field(
        DEFAULT_COMMIT_INTERVAL_MS, ge=500, description="Iceberg table commit interval"
    )
    kafka_version: str = Field(KAFKA_VERSION, description="Kafka Connect version")
    iceberg_version: str = Field(ICEBERG_VERSION, description="Apache Iceberg sink version")
    cache_dir: Path | None = Field(None, description="where the jars are cached")

    def worker(self, progress: ProgressFn | None = None) -> LocalConnect:
        """The worker these settings describe, fetching its jars the first time."""
        dist = ensure_connect_jars(
            self.kafka_version, self.iceberg_version, self.cache_dir, progress
        )
        kafka = LocalKafkaSettings()
        broker = BrokerLayout.at(kafka.dir)
        state = RunningState.read(broker.state_file)
        ports = Ports(state.base_port if state else kafka.base_port)
        return LocalConnect(
            ConnectLayout.at(self.dir),
            dist,
            broker,
            ports,
            WarehouseSettings().layout(),
            rest_port=self.rest_port or rest_port_for(ports),
            heap_mb=self.heap_mb,
            commit_interval_ms=self.commit_interval_ms,
        )
