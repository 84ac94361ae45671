"""A service's Kafka identity on the local broker as ``ADSTREAM_KAFKA_*`` variables: how a
deployed task gets it (no properties file), for subprocesses and containers alike."""

from __future__ import annotations

from adstream.local.broker import LocalBroker
from adstream.local.layout import Listener


def kafka_env(broker: LocalBroker, principal: str) -> dict[str, str]:
    """Mutual TLS as ``principal`` (the MSK-like path); the files stay on the broker's disk."""
    layout = broker.layout
    return {
        "ADSTREAM_KAFKA_BOOTSTRAP_SERVERS": broker.ports.bootstrap(Listener.SSL),
        "ADSTREAM_KAFKA_SECURITY": "mtls",
        "ADSTREAM_KAFKA_CA_FILE": str(layout.ca_pem()),
        "ADSTREAM_KAFKA_CERT_FILE": str(layout.cert_pem(principal)),
        "ADSTREAM_KAFKA_KEY_FILE": str(layout.key_pem(principal)),
        "ADSTREAM_KAFKA_CLIENT_ID": principal,
    }
