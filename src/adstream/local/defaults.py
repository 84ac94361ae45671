"""Which Kafka settings a service uses when the user names none: the local broker, over mTLS.

Order: ``--kafka-config FILE``; else ``ADSTREAM_KAFKA_*`` variables when
``ADSTREAM_KAFKA_BOOTSTRAP_SERVERS`` is set; else the local broker of
``adstream kafka up`` (its state directory and running ports), authenticated with
the principal's client certificate — the same path as mutual TLS on MSK. A local
cluster (``cluster.json``) is reached through all its nodes.
"""

from __future__ import annotations

import os
from pathlib import Path

from adstream.kafka.load import load_settings
from adstream.kafka.settings import KafkaSettings
from adstream.local.broker_state import RunningState
from adstream.local.client_configs import local_kafka_settings
from adstream.local.cluster import ClusterState
from adstream.local.layout import BrokerLayout, Ports
from adstream.local.settings import LocalKafkaSettings


class NoKafkaSettingsError(RuntimeError):
    """Nothing says where Kafka is: no file, no environment, no local broker."""


def local_client_properties(name: str) -> Path:
    """The local broker's ``client-<name>.properties`` (written by ``adstream kafka up``)."""
    path = BrokerLayout.at(LocalKafkaSettings().dir).client_properties(name)
    if not path.exists():
        raise NoKafkaSettingsError(
            f"no Kafka settings: pass --kafka-config FILE, set ADSTREAM_KAFKA_BOOTSTRAP_SERVERS, "
            f"or start the local broker with `adstream kafka up` ({path} does not exist)"
        )
    return path


def service_settings(kafka_config: Path | None, principal: str) -> KafkaSettings:
    if kafka_config is not None or os.environ.get("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS"):
        return load_settings(kafka_config)
    local = LocalKafkaSettings()
    layout = BrokerLayout.at(local.dir)
    if not layout.cert_pem(principal).exists():
        raise NoKafkaSettingsError(
            f"no Kafka settings: pass --kafka-config FILE, set ADSTREAM_KAFKA_BOOTSTRAP_SERVERS, "
            f"or start the local broker with `adstream kafka up` (nothing in {layout.root})"
        )
    cluster = ClusterState.read(layout.cluster_file)
    state = RunningState.read(layout.state_file)
    if cluster is not None:
        ports = Ports(cluster.base_port, cluster.brokers)
    else:
        ports = Ports(state.base_port if state else local.base_port)
    return local_kafka_settings(layout, ports, principal)
