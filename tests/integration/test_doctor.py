"""The connection doctor names the step that fails, against the real broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adstream.kafka.checks import Step
from adstream.kafka.clustercheck import Operation
from adstream.kafka.doctor import run_doctor
from adstream.kafka.settings import KafkaSettings
from adstream.local.broker import LocalBroker
from adstream.local.certs import CertificateAuthority
from adstream.local.layout import Listener
from tests.support.ports import free_base_port

pytestmark = pytest.mark.integration


def _mtls(broker: LocalBroker, principal: str = "adstream-api", **changes: object) -> KafkaSettings:
    values: dict[str, object] = {
        "bootstrap_servers": (broker.ports.bootstrap(Listener.SSL),),
        "security": "mtls",
        "ca_file": broker.layout.ca_pem(),
        "cert_file": broker.layout.cert_pem(principal),
        "key_file": broker.layout.key_pem(principal),
    }
    return KafkaSettings.model_validate(values | changes)


def _failed_step(settings: KafkaSettings, *required: Operation) -> Step | None:
    report = run_doctor(settings, required=required or (Operation.DESCRIBE,), timeout=8)
    return report.failure.step if report.failure else None


def test_healthy_mtls_and_scram_pass_every_step(broker: LocalBroker) -> None:
    assert _failed_step(_mtls(broker), Operation.DESCRIBE, Operation.WRITE) is None
    scram = KafkaSettings(
        bootstrap_servers=(broker.ports.bootstrap(Listener.SASL_SSL),),
        security="scram",
        ca_file=broker.layout.ca_pem(),
        scram_username="adstream-aggregator",
        scram_password=broker.secrets().scram_password("adstream-aggregator"),
    )
    assert _failed_step(scram, Operation.READ) is None


def test_broker_down_fails_at_tcp(broker: LocalBroker) -> None:
    closed = free_base_port(exclude=set(broker.ports.all().values()), start=broker.ports.base + 200)
    assert _failed_step(_mtls(broker, bootstrap_servers=(f"127.0.0.1:{closed}",))) is Step.TCP


def test_wrong_ca_fails_at_tls(broker: LocalBroker, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(CertificateAuthority.create("another CA").pair.cert_pem())
    settings = _mtls(broker, ca_file=other_ca)
    report = run_doctor(settings, timeout=8)
    assert report.failure is not None
    assert report.failure.step is Step.TLS
    assert "CA" in report.failure.fix


def test_missing_client_certificate_fails_at_tls(broker: LocalBroker) -> None:
    settings = KafkaSettings(
        bootstrap_servers=(broker.ports.bootstrap(Listener.SSL),),
        security="tls",
        ca_file=broker.layout.ca_pem(),
    )
    assert _failed_step(settings) is Step.TLS


def test_wrong_scram_password_fails_at_authentication(broker: LocalBroker) -> None:
    settings = KafkaSettings(
        bootstrap_servers=(broker.ports.bootstrap(Listener.SASL_SSL),),
        security="scram",
        ca_file=broker.layout.ca_pem(),
        scram_username="adstream-api",
        scram_password="not-the-password",
    )
    assert _failed_step(settings) is Step.AUTHENTICATION


def test_principal_without_acl_fails_at_authorization(broker: LocalBroker) -> None:
    reader = _mtls(broker, "adstream-aggregator")
    assert _failed_step(reader, Operation.READ) is None
    assert _failed_step(reader, Operation.WRITE) is Step.AUTHORIZATION


def test_check_cli_with_generated_properties(broker: LocalBroker) -> None:
    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "adstream", "kafka", "check", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    ok = check("--kafka-config", str(broker.layout.client_properties("tls")), "--require", "write")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    denied = check(
        "--kafka-config", str(broker.layout.client_properties("tls")), "--require", "read"
    )
    assert denied.returncode == 1
    assert "authorization" in denied.stdout.lower()
