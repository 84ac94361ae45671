"""The local broker behaves like an MSK cluster: three listeners, TLS 1.2+, mTLS, SCRAM, ACLs."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from adstream.kafka.topics import AD_EVENTS_TOPIC, AGGREGATOR_GROUP
from adstream.local.broker import LocalBroker
from adstream.local.certs import CertificateAuthority
from adstream.local.layout import Listener
from tests.integration.kafka_helpers import (
    AD_EVENTS_PARTITIONS,
    LogCapture,
    api_versions_over_tls,
    client_config,
    consume_at,
    produce_one,
)

pytestmark = pytest.mark.integration


def _config(broker: LocalBroker, listener: Listener, principal: str) -> dict[str, object]:
    return client_config(broker, listener, principal)


@pytest.mark.parametrize("listener", [Listener.PLAINTEXT, Listener.SSL, Listener.SASL_SSL])
def test_round_trip_on_each_listener(broker: LocalBroker, listener: Listener) -> None:
    key, value = b"AD123", uuid.uuid4().bytes
    delivered = produce_one(_config(broker, listener, "adstream-api"), AD_EVENTS_TOPIC, key, value)
    group = "adstream-dev-test" if listener is Listener.PLAINTEXT else AGGREGATOR_GROUP
    reader = _config(broker, listener, "adstream-aggregator") | {"group.id": group}
    consumed = consume_at(reader, AD_EVENTS_TOPIC, delivered.partition(), delivered.offset())
    assert (consumed.key(), consumed.value()) == (key, value)


def test_topic_is_provisioned_with_six_partitions(broker: LocalBroker) -> None:
    topics = broker.admin().list_topics(timeout=10).topics
    assert len(topics[AD_EVENTS_TOPIC].partitions) == AD_EVENTS_PARTITIONS


def _tls_context(
    broker: LocalBroker, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(broker.layout.ca_pem())
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def _api_tls_context(broker: LocalBroker) -> ssl.SSLContext:
    """The client side of mutual TLS as ``adstream-api``."""
    layout = broker.layout
    return _tls_context(broker, layout.cert_pem("adstream-api"), layout.key_pem("adstream-api"))


def _metadata_failure_logs(config: dict[str, object]) -> str:
    """Ask for metadata, expect it to fail, and return what librdkafka logged meanwhile."""
    logs = LogCapture()
    admin = AdminClient(config | {"logger": logs.logger()})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    admin.poll(0.5)  # log lines reach a Python logger through the client's poll
    return logs.text()


def test_mtls_listener_answers_a_client_with_a_valid_certificate(broker: LocalBroker) -> None:
    context = _api_tls_context(broker)
    assert api_versions_over_tls(broker.ports.of(Listener.SSL), context) == 4242


def test_mtls_rejects_a_client_without_certificate(broker: LocalBroker) -> None:
    with pytest.raises(ssl.SSLError) as raised:
        api_versions_over_tls(broker.ports.of(Listener.SSL), _tls_context(broker))
    assert raised.value.reason in {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
    }


def test_mtls_rejects_a_certificate_from_another_ca(broker: LocalBroker, tmp_path: Path) -> None:
    rogue = CertificateAuthority.create("rogue CA").issue("adstream-api")
    cert, key = tmp_path / "rogue.pem", tmp_path / "rogue.key"
    cert.write_bytes(rogue.cert_pem())
    key.write_bytes(rogue.key_pem())
    with pytest.raises(ssl.SSLError) as raised:
        api_versions_over_tls(broker.ports.of(Listener.SSL), _tls_context(broker, cert, key))
    assert raised.value.reason in {"SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"}


def test_librdkafka_without_certificate_fails_with_bad_certificate(broker: LocalBroker) -> None:
    config = _config(broker, Listener.SSL, "adstream-api")
    del config["ssl.certificate.pem"], config["ssl.key.pem"]
    assert "alert bad certificate" in _metadata_failure_logs(config)


@pytest.mark.parametrize("listener", [Listener.SSL, Listener.SASL_SSL])
def test_tls_1_1_is_refused(broker: LocalBroker, listener: Listener) -> None:
    context = _api_tls_context(broker)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as raised:
        api_versions_over_tls(broker.ports.of(listener), context)
    assert raised.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION"  # the broker's refusal


def test_tls_1_2_is_accepted(broker: LocalBroker) -> None:
    context = _api_tls_context(broker)
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    assert api_versions_over_tls(broker.ports.of(Listener.SSL), context) == 4242


def test_wrong_scram_password_is_rejected(broker: LocalBroker) -> None:
    config = _config(broker, Listener.SASL_SSL, "adstream-api") | {"sasl.password": "wrong"}
    logs = _metadata_failure_logs(config)
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in logs


@pytest.mark.parametrize("listener", [Listener.SSL, Listener.SASL_SSL])
def test_writing_a_topic_without_acl_is_denied(broker: LocalBroker, listener: Listener) -> None:
    topic = f"no-acl-{uuid.uuid4().hex[:8]}"
    admin = broker.admin()  # keep a reference until the futures resolve
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(30)
    with pytest.raises(RuntimeError) as raised:
        produce_one(_config(broker, listener, "adstream-api"), topic, b"k", b"v")
    assert "TOPIC_AUTHORIZATION_FAILED" in str(raised.value)


def test_reader_principal_cannot_write_ad_events(broker: LocalBroker) -> None:
    """The aggregator may only read ``ad-events``."""
    config = _config(broker, Listener.SSL, "adstream-aggregator")
    with pytest.raises(RuntimeError) as raised:
        produce_one(config, AD_EVENTS_TOPIC, b"k", b"v", idempotent=False)
    assert "TOPIC_AUTHORIZATION_FAILED" in str(raised.value)
