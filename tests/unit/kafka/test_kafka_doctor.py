"""Connection doctor: real DNS/TCP failures and real TLS handshakes against a local server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AclOperation

from adstream.kafka.checks import Status, Step
from adstream.kafka.clustercheck import (
    Operation,
    authorization_result,
    classify_kafka_error,
    pick_error,
)
from adstream.kafka.doctor import run_doctor
from adstream.kafka.netcheck import check_tls
from adstream.kafka.settings import KafkaSettings, SecurityMode
from adstream.kafka.tls import resolve_tls
from tests.unit.kafka.kafka_testkit import Pki, TlsServer, free_port, issue, start_tls_server

TIMEOUT = 3.0


def tls_settings(server: str, ca: Path, **values: object) -> KafkaSettings:
    security = "mtls" if any(k in values for k in ("cert_file", "pkcs12_file")) else "tls"
    return KafkaSettings(bootstrap_servers=server, security=security, ca_file=ca, **values)


def tls_step(settings: KafkaSettings) -> tuple[Status, str, str]:
    material = resolve_tls(settings)
    assert material is not None
    result = check_tls(settings.bootstrap_servers, material, TIMEOUT)
    assert result.step is Step.TLS
    return result.status, result.detail, result.fix


def client_files(pki: Pki, who: str = "client") -> dict[str, Path]:
    issued = pki.client if who == "client" else pki.stranger
    return {
        "cert_file": pki.write(f"{who}.pem", issued.cert_pem),
        "key_file": pki.write(f"{who}.key", issued.key_pem()),
    }


def test_dns_failure() -> None:
    report = run_doctor(KafkaSettings(bootstrap_servers="broker.adstream.invalid:9092"))
    assert report.failure is not None
    assert report.failure.step is Step.DNS
    assert "broker.adstream.invalid" in report.failure.detail
    assert [r.step for r in report.results] == [Step.DNS]


def test_broker_down() -> None:
    port = free_port()
    report = run_doctor(KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}"), timeout=TIMEOUT)
    assert report.step(Step.DNS) is not None
    assert report.failure is not None
    assert report.failure.step is Step.TCP
    assert "refused" in report.failure.detail
    assert "9094" in report.failure.fix  # points at the usual MSK ports
    assert "Failed at step: tcp" in report.render()


def test_wrong_ca_fails_at_tls_in_the_full_run(pki: Pki, mtls_server: TlsServer) -> None:
    settings = tls_settings(mtls_server.address, pki.other_ca_file, **client_files(pki))
    report = run_doctor(settings, timeout=TIMEOUT)
    assert [r.step for r in report.results] == [Step.DNS, Step.TCP, Step.TLS]
    assert report.failure is not None
    assert report.failure.step is Step.TLS
    assert "not signed by the CA in ssl.ca.location" in report.failure.detail
    assert str(pki.other_ca_file) in report.failure.detail
    assert not report.ok


def test_missing_client_certificate(pki: Pki, mtls_server: TlsServer) -> None:
    status, detail, fix = tls_step(tls_settings(mtls_server.address, pki.ca_file))
    assert status is Status.FAILED
    assert "client certificate" in detail
    assert "security=mtls" in fix


def test_client_certificate_from_an_untrusted_ca(pki: Pki, mtls_server: TlsServer) -> None:
    settings = tls_settings(mtls_server.address, pki.ca_file, **client_files(pki, "stranger"))
    status, detail, _fix = tls_step(settings)
    assert status is Status.FAILED
    assert "rejected the client certificate" in detail
    assert "Private CA" in _fix


def test_mtls_handshake_passes_with_pem_files(pki: Pki, mtls_server: TlsServer) -> None:
    status, detail, _ = tls_step(
        tls_settings(mtls_server.address, pki.ca_file, **client_files(pki))
    )
    assert status is Status.OK, detail
    assert "TLSv1.3" in detail
    assert mtls_server.handshake_errors == []


def test_mtls_handshake_passes_with_in_memory_pem(pki: Pki, mtls_server: TlsServer) -> None:
    """The JKS import path: key only in memory, loaded into Python's ssl via memfd."""
    settings = KafkaSettings(
        bootstrap_servers=mtls_server.address,
        security="mtls",
        ca_pem=pki.ca.cert_pem.decode(),
        cert_pem=pki.client.cert_pem.decode(),
        key_pem=pki.client.key_pem().decode(),
    )
    status, detail, _ = tls_step(settings)
    assert status is Status.OK, detail


def test_hostname_mismatch_and_opt_out(pki: Pki) -> None:
    elsewhere = issue("broker", pki.ca, hosts=("broker.example",))
    server = start_tls_server(pki, elsewhere, require_client_cert=False)
    running = next(server)
    try:
        status, detail, fix = tls_step(tls_settings(running.address, pki.ca_file))
        assert status is Status.FAILED
        assert "127.0.0.1" in detail
        assert "verify_hostname" in fix
        lenient = tls_settings(running.address, pki.ca_file, verify_hostname=False)
        assert tls_step(lenient)[0] is Status.OK
    finally:
        next(server, None)


@pytest.fixture
def plaintext_listener() -> Iterator[str]:
    """A TCP listener that, like a Kafka PLAINTEXT port, drops a TLS ClientHello."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    thread.join(timeout=5)


def test_tls_against_a_plaintext_port(pki: Pki, plaintext_listener: str) -> None:
    status, detail, fix = tls_step(tls_settings(plaintext_listener, pki.ca_file))
    assert status is Status.FAILED
    assert "not answer as a Kafka TLS listener" in detail
    assert "9092 plaintext" in fix


@pytest.mark.parametrize(
    ("code", "mode", "step", "in_fix"),
    [
        (KafkaError._AUTHENTICATION, SecurityMode.SCRAM, Step.AUTHENTICATION, "scram_password"),
        (KafkaError.SASL_AUTHENTICATION_FAILED, SecurityMode.SCRAM, Step.AUTHENTICATION, "9096"),
        (
            KafkaError._AUTHENTICATION,
            SecurityMode.IAM,
            Step.AUTHENTICATION,
            "kafka-cluster:Connect",
        ),
        (KafkaError.UNSUPPORTED_SASL_MECHANISM, SecurityMode.SCRAM, Step.AUTHENTICATION, "port"),
        (KafkaError._SSL, SecurityMode.MTLS, Step.TLS, "CA"),
        (KafkaError._RESOLVE, SecurityMode.TLS, Step.DNS, "resolve"),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, SecurityMode.MTLS, Step.AUTHORIZATION, "ad-events"),
        (KafkaError.CLUSTER_AUTHORIZATION_FAILED, SecurityMode.SCRAM, Step.AUTHORIZATION, "ACL"),
        (KafkaError.UNKNOWN_TOPIC_OR_PART, SecurityMode.MTLS, Step.AUTHORIZATION, "create topic"),
        (KafkaError._TIMED_OUT, SecurityMode.SCRAM, Step.AUTHENTICATION, "scram_username"),
        (KafkaError._TRANSPORT, SecurityMode.PLAINTEXT, Step.METADATA, "security.protocol"),
    ],
)
def test_librdkafka_error_classification(
    code: int, mode: SecurityMode, step: Step, in_fix: str
) -> None:
    result = classify_kafka_error(KafkaError(code, "broker said no"), mode, "ad-events")
    assert result.status is Status.FAILED
    assert result.step is step
    assert in_fix in result.fix
    assert "broker said no" in result.detail


def test_specific_error_beats_the_timeout_it_caused() -> None:
    errors = [
        KafkaError(KafkaError._TRANSPORT, "disconnected"),
        KafkaError(KafkaError._AUTHENTICATION, "SASL SCRAM-SHA-512 failed: invalid credentials"),
        KafkaError(KafkaError._TIMED_OUT, "timed out"),
    ]
    assert pick_error(errors).code() == KafkaError._AUTHENTICATION
    assert pick_error(errors[::2]).code() == KafkaError._TRANSPORT


def test_authorization_result() -> None:
    needed = {Operation.DESCRIBE, Operation.WRITE}
    missing = authorization_result("ad-events", [AclOperation.DESCRIBE, AclOperation.READ], needed)
    assert missing.status is Status.FAILED
    assert missing.step is Step.AUTHORIZATION
    assert "WRITE" in missing.detail
    assert "READ" in missing.detail  # lists what is granted
    granted = authorization_result("ad-events", [AclOperation.DESCRIBE, AclOperation.WRITE], needed)
    assert granted.status is Status.OK
    assert authorization_result("ad-events", [AclOperation.ALL], needed).ok
    assert authorization_result("ad-events", None, {Operation.DESCRIBE}).ok


def test_a_listener_that_is_not_kafka_fails_after_tcp(plaintext_listener: str) -> None:
    """Runs the librdkafka part for real: the connection works but no Kafka answers."""
    report = run_doctor(KafkaSettings(bootstrap_servers=plaintext_listener), timeout=2.0)
    assert [r.status for r in report.results[:3]] == [Status.OK, Status.OK, Status.SKIPPED]
    assert report.failure is not None
    assert report.failure.step is Step.METADATA
    assert "security.protocol" in report.failure.fix
