"""The one place that turns `KafkaSettings` into confluent-kafka configs and clients.

Producer defaults are for production: idempotent, `acks=all`, and the Java default
partitioner (murmur2) so a given adId lands on the same partition as from a Java/Spring
producer. Configs are `ClientConfig` dicts whose repr redacts secrets, so logging one is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from adstream.kafka.iam import oauth_callback
from adstream.kafka.settings import KafkaSettings, SecurityMode
from adstream.kafka.tls import TlsMaterial, librdkafka_tls_config, resolve_tls

SECRET_KEYS = frozenset(
    {
        "sasl.password",
        "ssl.key.pem",
        "ssl.key.password",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
    }
)
REDACTED = "***"

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
    "compression.type": "lz4",
    "linger.ms": 5,
}
CONSUMER_DEFAULTS: dict[str, Any] = {
    # The aggregator commits offsets together with its counts, never automatically.
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
}

_PROTOCOL = {
    SecurityMode.PLAINTEXT: "PLAINTEXT",
    SecurityMode.TLS: "SSL",
    SecurityMode.MTLS: "SSL",
    SecurityMode.SCRAM: "SASL_SSL",
    SecurityMode.IAM: "SASL_SSL",
}


def security_protocol(settings: KafkaSettings) -> str:
    """Kafka's ``security.protocol`` for the auth mode (the same name in every client)."""
    return _PROTOCOL[settings.security]


class ClientConfig(dict[str, Any]):
    """A librdkafka config dict whose repr/str hides secrets and PEM bodies."""

    def redacted(self) -> dict[str, Any]:
        """A copy safe to log: secrets masked, callbacks shown by name."""
        out: dict[str, Any] = {}
        for key, value in self.items():
            if key in SECRET_KEYS:
                out[key] = REDACTED
            elif callable(value):
                out[key] = f"<callback {getattr(value, '__qualname__', type(value).__name__)}>"
            elif key.endswith(".pem"):
                out[key] = f"<PEM, {len(str(value))} chars>"
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        return f"ClientConfig({self.redacted()!r})"

    __str__ = __repr__


def base_config(settings: KafkaSettings, tls: TlsMaterial | None = None) -> ClientConfig:
    """Connection and authentication properties shared by every client.

    `tls` lets a caller that already resolved the TLS material (the doctor) reuse it.
    """
    conf = ClientConfig(
        {
            "bootstrap.servers": ",".join(settings.bootstrap_servers),
            "client.id": settings.client_id,
            "security.protocol": security_protocol(settings),
        }
    )
    material = tls if tls is not None else resolve_tls(settings)
    if material is not None:
        conf.update(librdkafka_tls_config(material))
    if settings.security is SecurityMode.SCRAM:
        assert settings.scram_password is not None  # guaranteed by KafkaSettings validation
        conf["sasl.mechanism"] = settings.scram_mechanism
        conf["sasl.username"] = settings.scram_username
        conf["sasl.password"] = settings.scram_password.get_secret_value()
    elif settings.security is SecurityMode.IAM:
        conf["sasl.mechanism"] = "OAUTHBEARER"
        conf["oauth_cb"] = oauth_callback(settings)
    return conf


def producer_config(
    settings: KafkaSettings, overrides: Mapping[str, Any] | None = None
) -> ClientConfig:
    """Producer config: base + production defaults + `overrides` (librdkafka property names)."""
    return ClientConfig({**base_config(settings), **PRODUCER_DEFAULTS, **(overrides or {})})


def consumer_config(
    settings: KafkaSettings, group_id: str, overrides: Mapping[str, Any] | None = None
) -> ClientConfig:
    """Consumer config for `group_id`: base + manual-commit defaults + `overrides`."""
    return ClientConfig(
        {**base_config(settings), **CONSUMER_DEFAULTS, "group.id": group_id, **(overrides or {})}
    )


def admin_config(
    settings: KafkaSettings, overrides: Mapping[str, Any] | None = None
) -> ClientConfig:
    """AdminClient config: base + `overrides`."""
    return ClientConfig({**base_config(settings), **(overrides or {})})


def make_producer(settings: KafkaSettings, overrides: Mapping[str, Any] | None = None) -> Producer:
    """A confluent-kafka Producer built from `producer_config`."""
    return Producer(dict(producer_config(settings, overrides)))


def make_consumer(
    settings: KafkaSettings, group_id: str, overrides: Mapping[str, Any] | None = None
) -> Consumer:
    """A confluent-kafka Consumer built from `consumer_config`."""
    return Consumer(dict(consumer_config(settings, group_id, overrides)))


def make_admin(settings: KafkaSettings, overrides: Mapping[str, Any] | None = None) -> AdminClient:
    """A confluent-kafka AdminClient built from `admin_config`."""
    return AdminClient(dict(admin_config(settings, overrides)))
