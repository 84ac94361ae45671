"""Every auth mode of `adstream.kafka` against the real broker, including Java-style configs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from adstream.kafka.factory import make_consumer, make_producer
from adstream.kafka.java_properties import from_java_properties
from adstream.kafka.settings import KafkaSettings
from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP
from adstream.local.broker import LocalBroker
from adstream.local.layout import Listener
from tests.integration.kafka_helpers import properties_as_aggregator

pytestmark = pytest.mark.integration


def _mtls_pem(broker: LocalBroker, principal: str) -> KafkaSettings:
    layout = broker.layout
    return KafkaSettings(
        bootstrap_servers=(broker.ports.bootstrap(Listener.SSL),),
        security="mtls",
        ca_file=layout.ca_pem(),
        cert_file=layout.cert_pem(principal),
        key_file=layout.key_pem(principal),
    )


def _scram(broker: LocalBroker, user: str) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=(broker.ports.bootstrap(Listener.SASL_SSL),),
        security="scram",
        ca_file=broker.layout.ca_pem(),
        scram_username=user,
        scram_password=broker.secrets().scram_password(user),
    )


def _round_trip(writer: KafkaSettings, reader: KafkaSettings, group: str) -> None:
    """Produce through the factory's producer and read the same record back."""
    key, value = b"AD42", uuid.uuid4().bytes
    delivered = []
    producer = make_producer(writer)
    producer.produce(
        AD_EVENTS_TOPIC, key=key, value=value, on_delivery=lambda e, m: delivered.append((e, m))
    )
    assert producer.flush(20) == 0
    error, message = delivered[0]
    assert error is None, error
    consumer = make_consumer(reader, group)
    try:
        consumer.assign([TopicPartition(AD_EVENTS_TOPIC, message.partition(), message.offset())])
        got = consumer.poll(20)
        assert got is not None
        assert got.error() is None, got.error()
        assert (got.key(), got.value()) == (key, value)
    finally:
        consumer.close()


def test_plaintext(broker: LocalBroker) -> None:
    settings = KafkaSettings(bootstrap_servers=(broker.ports.bootstrap(Listener.PLAINTEXT),))
    _round_trip(settings, settings, "adstream-dev-profiles")


def test_mtls_with_pem_files(broker: LocalBroker) -> None:
    _round_trip(
        _mtls_pem(broker, "adstream-api"),
        _mtls_pem(broker, "adstream-aggregator"),
        AGGREGATOR_GROUP,
    )


def test_mtls_with_pkcs12_files(broker: LocalBroker) -> None:
    def p12(principal: str) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=(broker.ports.bootstrap(Listener.SSL),),
            security="mtls",
            ca_file=broker.layout.ca_pem(),
            pkcs12_file=broker.layout.pkcs12(principal),
            pkcs12_password=broker.secrets().store_password,
        )

    _round_trip(p12("adstream-api"), p12("adstream-aggregator"), AGGREGATOR_GROUP)


def test_mtls_from_java_properties_with_jks_stores(broker: LocalBroker, tmp_path: Path) -> None:
    path = broker.layout.client_properties("tls")
    writer = from_java_properties(path)
    assert writer.security == "mtls"
    reader = from_java_properties(properties_as_aggregator(path, broker, tmp_path))
    _round_trip(writer, reader, AGGREGATOR_GROUP)


def test_scram_from_settings(broker: LocalBroker) -> None:
    _round_trip(
        _scram(broker, "adstream-api"), _scram(broker, "adstream-aggregator"), AGGREGATOR_GROUP
    )


def test_scram_from_java_properties(broker: LocalBroker, tmp_path: Path) -> None:
    path = broker.layout.client_properties("scram")
    writer = from_java_properties(path)
    assert writer.security == "scram"
    reader = from_java_properties(properties_as_aggregator(path, broker, tmp_path))
    _round_trip(writer, reader, AGGREGATOR_GROUP)
