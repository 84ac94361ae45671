"""Small helpers the integration tests share: ports, round trips, log capture, raw TLS."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from adstream.kafka.factory import base_config
from adstream.kafka.topics import AD_EVENTS_TOPIC
from adstream.local.broker import LocalBroker
from adstream.local.client_configs import local_kafka_settings
from adstream.local.layout import LISTEN_HOST, Listener
from adstream.local.provision import local_desired_state

AD_EVENTS_PARTITIONS = local_desired_state().topics[AD_EVENTS_TOPIC].partitions
"""Partitions of ``ad-events`` on the local broker, as deploy/kafka.yaml sets them."""


def allow(
    principal: str, operation: AclOperation, resource_type: ResourceType, name: str
) -> AclBinding:
    """A literal ALLOW ACL for ``User:principal`` from any host."""
    return AclBinding(
        resource_type,
        name,
        ResourcePatternType.LITERAL,
        f"User:{principal}",
        "*",
        operation,
        AclPermissionType.ALLOW,
    )


def client_config(
    broker: LocalBroker, listener: Listener = Listener.SSL, principal: str = "adstream-api"
) -> dict[str, object]:
    """A librdkafka config for ``principal`` on one listener, made by ``adstream.kafka.factory``."""
    settings = local_kafka_settings(
        broker.layout, broker.ports, principal, listener, broker.secrets()
    )
    return dict(base_config(settings))


class LogCapture(logging.Handler):
    """Collects librdkafka's log lines (pass as the client's ``logger``)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def logger(self) -> logging.Logger:
        log = logging.getLogger(f"rdkafka.{uuid.uuid4().hex}")
        log.addHandler(self)
        log.propagate = False
        log.setLevel(logging.DEBUG)
        return log

    def text(self) -> str:
        return "\n".join(self.lines)


def produce_one(
    config: dict[str, object], topic: str, key: bytes, value: bytes, *, idempotent: bool = True
) -> Message:
    """Produce one message with acks=all; return it once delivered or raise its error."""
    results: list[tuple[KafkaError | None, Message]] = []
    producer = Producer({**config, "enable.idempotence": idempotent, "acks": "all"})
    producer.produce(topic, key=key, value=value, on_delivery=lambda e, m: results.append((e, m)))
    remaining = producer.flush(20)
    assert remaining == 0, "the message was not delivered within 20 s"
    error, message = results[0]
    if error is not None:
        raise RuntimeError(error)
    return message


def consume_at(config: dict[str, object], topic: str, partition: int, offset: int) -> Message:
    consumer = Consumer({**config, "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        message = consumer.poll(20)
        assert message is not None, "nothing consumed within 20 s"
        assert message.error() is None, message.error()
        return message
    finally:
        consumer.close()


def admin_consumer(broker: LocalBroker, group: str = "adstream-test-reader") -> Consumer:
    """A consumer as the admin principal, committing nothing (reads any topic)."""
    config = client_config(broker, principal="admin")
    return Consumer({**config, "group.id": group, "enable.auto.commit": False})


def read_all(broker: LocalBroker, topic: str, count: int, timeout: float = 20) -> list[Message]:
    """Up to `count` records of every partition of `topic` from the start (fewer after
    `timeout`)."""
    consumer = admin_consumer(broker)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        got: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                got.append(message)
        return got
    finally:
        consumer.close()


def api_versions_over_tls(port: int, context: ssl.SSLContext) -> int:
    """Send a Kafka ApiVersions request over TLS; return the response's correlation id.

    Raw TLS lets a test see the broker's own verdict: with TLS 1.3 a rejected client
    certificate surfaces as an alert on the first read, not during the handshake.
    """
    client_id = b"adstream-tls-probe"
    body = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    with (
        socket.create_connection((LISTEN_HOST, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=LISTEN_HOST) as tls,
    ):
        tls.sendall(struct.pack(">i", len(body)) + body)
        header = tls.recv(8)
        if len(header) < 8:
            raise ConnectionError("the broker closed the connection")
        return int(struct.unpack(">i", header[4:8])[0])


def properties_as_aggregator(path: Path, broker: LocalBroker, folder: Path) -> Path:
    """A copy of a generated ``client-*.properties`` that authenticates as the aggregator."""
    password = broker.secrets().scram_password
    text = path.read_text().replace("adstream-api.keystore.jks", "adstream-aggregator.keystore.jks")
    text = text.replace(
        f'username="adstream-api" password="{password("adstream-api")}"',
        f'username="adstream-aggregator" password="{password("adstream-aggregator")}"',
    )
    assert text != path.read_text(), "nothing to replace: the file format changed"
    target = folder / f"aggregator-{path.name}"
    target.write_text(text)
    return target
