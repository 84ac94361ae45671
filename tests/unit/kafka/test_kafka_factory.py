"""Settings into confluent-kafka configs: defaults, auth per mode, redaction."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest
from confluent_kafka import KafkaException
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adstream.kafka.factory import (
    ClientConfig,
    admin_config,
    consumer_config,
    make_admin,
    make_consumer,
    make_producer,
    producer_config,
)
from adstream.kafka.settings import KafkaSettings
from tests.unit.kafka.kafka_testkit import Pki

QUIET = {"log_level": 0}


def test_producer_defaults_for_production() -> None:
    conf = producer_config(KafkaSettings(bootstrap_servers="a:9092,b:9092"))
    assert conf["bootstrap.servers"] == "a:9092,b:9092"
    assert conf["security.protocol"] == "PLAINTEXT"
    assert conf["enable.idempotence"] is True
    assert conf["acks"] == "all"
    assert conf["partitioner"] == "murmur2_random"
    assert conf["compression.type"] in ("lz4", "zstd")
    assert conf["linger.ms"] == 5
    assert conf["client.id"] == "adstream"
    assert not any(key.startswith(("ssl.", "sasl.")) for key in conf)


def test_overrides_win() -> None:
    conf = producer_config(KafkaSettings(bootstrap_servers="a:9092"), {"linger.ms": 50})
    assert conf["linger.ms"] == 50


def test_consumer_commits_manually() -> None:
    conf = consumer_config(KafkaSettings(bootstrap_servers="a:9092"), "aggregator")
    assert conf["group.id"] == "aggregator"
    assert conf["enable.auto.commit"] is False
    assert "acks" not in conf


def test_scram_config_and_redaction() -> None:
    settings = KafkaSettings(
        bootstrap_servers="localhost:9096",
        security="scram",
        scram_username="adstream-api",
        scram_password="hunter2-secret",
    )
    conf = producer_config(settings)
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "adstream-api"
    assert conf["sasl.password"] == "hunter2-secret"
    assert conf["ssl.ca.location"] == certifi.where()
    assert conf["ssl.endpoint.identification.algorithm"] == "https"
    for text in (repr(conf), str(conf), f"{conf}", repr([conf])):
        assert "hunter2-secret" not in text
    assert conf.redacted()["sasl.password"] == "***"


def test_mtls_from_encrypted_pem_files(pki: Pki, tmp_path: Path) -> None:
    cert = pki.write("client.pem", pki.client.cert_pem)
    key = pki.write("client.key", pki.client.key_pem("pw"))
    settings = KafkaSettings(
        bootstrap_servers="localhost:9094",
        security="mtls",
        ca_file=pki.ca_file,
        cert_file=cert,
        key_file=key,
        key_password="pw",
        verify_hostname=False,
    )
    conf = admin_config(settings)
    assert conf["security.protocol"] == "SSL"
    assert conf["ssl.ca.location"] == str(pki.ca_file)
    assert conf["ssl.endpoint.identification.algorithm"] == "none"
    assert x509.load_pem_x509_certificate(conf["ssl.certificate.pem"].encode()) == pki.client.cert
    key_obj = serialization.load_pem_private_key(conf["ssl.key.pem"].encode(), password=None)
    assert key_obj.public_key() == pki.client.key.public_key()
    assert "PRIVATE KEY" not in repr(conf)
    assert conf.redacted()["ssl.key.pem"] == "***"
    assert "ssl.key.location" not in conf  # the key is never handed over as a file


def test_ca_pem_goes_inline(pki: Pki) -> None:
    settings = KafkaSettings(
        bootstrap_servers="localhost:9094", security="tls", ca_pem=pki.ca.cert_pem.decode()
    )
    conf = admin_config(settings)
    assert conf["ssl.ca.pem"] == pki.ca.cert_pem.decode()
    assert "ssl.ca.location" not in conf


def test_client_config_is_a_dict() -> None:
    conf = admin_config(KafkaSettings(bootstrap_servers="a:9092"))
    assert isinstance(conf, ClientConfig)
    assert isinstance(conf, dict)


@pytest.mark.parametrize("source", ["pem", "pkcs12"])
def test_librdkafka_accepts_the_built_configs(pki: Pki, source: str) -> None:
    """Constructing real clients validates property names and the in-memory PEM material."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    identity: dict[str, object]
    if source == "pem":
        identity = {
            "cert_pem": pki.client.cert_pem.decode(),
            "key_pem": pki.client.key_pem().decode(),
        }
    else:
        p12 = pkcs12.serialize_key_and_certificates(
            b"c", pki.client.key, pki.client.cert, [pki.ca.cert], serialization.NoEncryption()
        )
        identity = {"pkcs12_file": pki.write("client.p12", p12)}
    settings = KafkaSettings(
        bootstrap_servers="127.0.0.1:1", security="mtls", ca_file=pki.ca_file, **identity
    )
    make_producer(settings, QUIET).flush(0)
    make_consumer(settings, "g", QUIET).close()
    assert make_admin(settings, QUIET) is not None


def test_librdkafka_rejects_a_mismatched_key(pki: Pki) -> None:
    """Proves the previous test is meaningful: librdkafka really checks the PEM pair."""
    settings = KafkaSettings(
        bootstrap_servers="127.0.0.1:1",
        security="mtls",
        cert_pem=pki.client.cert_pem.decode(),
        key_pem=pki.stranger.key_pem().decode(),
    )
    with pytest.raises(KafkaException, match="key values mismatch"):
        make_producer(settings, QUIET)
