from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from adstream.kafka.load import load_settings
from adstream.kafka.settings import KafkaSettings, SecurityMode
from tests.unit.kafka.kafka_testkit import Pki

BOOT = {"bootstrap_servers": "b-1.example:9094"}


def settings(**values: Any) -> KafkaSettings:
    return KafkaSettings(**{**BOOT, **values})


def test_env_loading_parses_servers_and_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS", "b-1.x:9096, b-2.x:9096")
    monkeypatch.setenv("ADSTREAM_KAFKA_SECURITY", "scram")
    monkeypatch.setenv("ADSTREAM_KAFKA_SCRAM_USERNAME", "alice")
    monkeypatch.setenv("ADSTREAM_KAFKA_SCRAM_PASSWORD", "s3cr3t-pw")
    loaded = KafkaSettings()  # type: ignore[call-arg]
    assert loaded.bootstrap_servers == ("b-1.x:9096", "b-2.x:9096")
    assert loaded.security is SecurityMode.SCRAM
    assert loaded.scram_password is not None
    assert loaded.scram_password.get_secret_value() == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(loaded)
    assert "s3cr3t-pw" not in str(loaded)
    assert "s3cr3t-pw" not in str(loaded.model_dump())


def test_dotenv_file(tmp_path: Path) -> None:
    env = tmp_path / "kafka.env"
    env.write_text(
        "ADSTREAM_KAFKA_BOOTSTRAP_SERVERS=b-1.x:9098\n"
        "ADSTREAM_KAFKA_SECURITY=iam\n"
        "ADSTREAM_KAFKA_IAM_REGION=eu-central-1\n"
    )
    loaded = load_settings(env)
    assert loaded.security is SecurityMode.IAM
    assert loaded.iam_region == "eu-central-1"


def test_dotenv_typo_is_an_error(tmp_path: Path) -> None:
    env = tmp_path / "kafka.env"
    env.write_text("ADSTREAM_KAFKA_BOOTSTRAP_SERVERS=b:9092\nADSTREAM_KAFKA_SCRAM_USER=bob\n")
    with pytest.raises(ValidationError, match="scram_user"):
        load_settings(env)


def test_defaults_are_plaintext_with_hostname_verification() -> None:
    loaded = settings()
    assert loaded.security is SecurityMode.PLAINTEXT
    assert loaded.verify_hostname is True
    assert loaded.client_id == "adstream"


def test_valid_modes(pki: Pki) -> None:
    assert settings(security="tls").uses_tls
    assert settings(security="mtls", pkcs12_file=pki.write("c.p12", b"x")).pkcs12_file
    assert settings(security="scram", scram_username="u", scram_password="p").scram_username
    iam = settings(security="iam", iam_region="us-east-1", iam_profile="dev")
    assert iam.iam_profile == "dev"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"security": "mtls"}, "cert_file"),
        ({"security": "mtls", "cert_file": "CERT"}, "key_file"),
        ({"security": "mtls", "key_file": "KEY"}, "cert_file"),
        ({"security": "mtls", "cert_pem": "x"}, "key_pem"),
        (
            {"security": "mtls", "cert_file": "CERT", "key_file": "KEY", "pkcs12_file": "CERT"},
            "pkcs12_file",
        ),
        ({"security": "scram", "scram_password": "p"}, "scram_username"),
        ({"security": "scram", "scram_username": "u"}, "scram_password"),
        ({"security": "scram", "scram_username": "u", "scram_password": ""}, "scram_password"),
        ({"security": "iam"}, "iam_region"),
        ({"security": "iam", "iam_region": "Frankfurt"}, "iam_region"),
        (
            {
                "security": "iam",
                "iam_region": "eu-west-1",
                "iam_profile": "a",
                "iam_role_arn": "arn:aws:iam::123456789012:role/x",
            },
            "iam_role_arn",
        ),
        ({"security": "iam", "iam_region": "eu-west-1", "iam_role_arn": "role/x"}, "iam_role_arn"),
        ({"security": "plaintext", "scram_username": "u"}, "scram_username"),
        ({"security": "tls", "cert_file": "CERT", "key_file": "KEY"}, "cert_file"),
        (
            {"security": "scram", "scram_username": "u", "scram_password": "p", "iam_profile": "x"},
            "iam_profile",
        ),
        ({"security": "plaintext", "ca_pem": "x"}, "ca_pem"),
        ({"security": "tls", "ca_file": "CERT", "ca_pem": "x"}, "ca_pem"),
        ({"security": "mtls", "pkcs12_file": "CERT", "key_password": "x"}, "key_password"),
        (
            {"security": "mtls", "cert_pem": "x", "key_pem": "y", "pkcs12_password": "x"},
            "pkcs12_password",
        ),
        ({"security": "mtls", "cert_file": "/nonexistent/c.pem", "key_file": "KEY"}, "cert_file"),
        ({"bootstrap_servers": "no-port"}, "bootstrap"),
        ({"bootstrap_servers": "host:99999"}, "bootstrap"),
        ({"bootstrap_servers": ""}, "bootstrap_servers"),
        ({"security": "kerberos"}, "security"),
        ({"sasl_password": "x"}, "sasl_password"),
    ],
)
def test_invalid_combinations_name_the_field(pki: Pki, values: dict[str, Any], field: str) -> None:
    files = {"CERT": pki.write("c.pem", b"c"), "KEY": pki.write("k.pem", b"k")}
    resolved = {k: files.get(v, v) if isinstance(v, str) else v for k, v in values.items()}
    with pytest.raises(ValidationError) as caught:
        settings(**resolved)
    assert field in str(caught.value)


def test_secret_fields_are_not_in_repr() -> None:
    loaded = settings(security="mtls", cert_pem="CERTBODY", key_pem="KEYBODY", key_password="kpw")
    text = repr(loaded)
    assert "KEYBODY" not in text
    assert "kpw" not in text
    assert "CERTBODY" not in text  # PEM bodies are kept out of reprs for readability


def test_validation_errors_do_not_echo_secrets() -> None:
    with pytest.raises(ValidationError) as caught:
        settings(security="iam", scram_password="leaky-pw", key_pem="leaky-key")
    assert "leaky" not in str(caught.value)
    assert "scram_password" in str(caught.value)
