"""Java client.properties (MSK docs / Spring format) into validated settings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509
from pydantic import ValidationError

from adstream.kafka.java_properties import (
    JavaPropertiesError,
    from_java_properties,
    parse_jaas,
    read_properties,
)
from adstream.kafka.settings import SecurityMode
from tests.unit.kafka.kafka_testkit import Pki
from tests.unit.kafka.test_kafka_keystores import (
    STORE_PASSWORD,
    write_jks_keystore,
    write_jks_truststore,
    write_p12,
)


def props(folder: Path, text: str) -> Path:
    path = folder / "client.properties"
    path.write_text(text, encoding="utf-8")
    return path


def test_java_properties_syntax(tmp_path: Path) -> None:
    text = (
        "# a comment\n"
        "! another comment\n"
        "bootstrap.servers = b-1:9094,\\\n"
        "    b-2:9094\n"
        "client.id: spring\\u0041pp\n"
        "ssl.key.password   pa\\=ss\\:wo\\\\rd\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
    )
    assert read_properties(props(tmp_path, text)) == {
        "bootstrap.servers": "b-1:9094,b-2:9094",
        "client.id": "springApp",
        "ssl.key.password": "pa=ss:wo\\rd",
        "sasl.mechanism": "SCRAM-SHA-512",
    }


def test_mtls_from_jks_stores_with_relative_paths(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADSTREAM_KAFKA_SCRAM_USERNAME", "must-not-leak-in")
    certs = tmp_path / "certs"
    certs.mkdir()
    write_jks_truststore(certs / "truststore.jks", pki)
    write_jks_keystore(certs / "adstream-api.keystore.jks", pki)
    path = props(
        tmp_path,
        "bootstrap.servers=localhost:9094\n"
        "security.protocol=SSL\n"
        "client.id=adstream-api\n"
        "ssl.truststore.location=certs/truststore.jks\n"
        f"ssl.truststore.password={STORE_PASSWORD}\n"
        "ssl.truststore.type=JKS\n"
        "ssl.keystore.location=certs/adstream-api.keystore.jks\n"
        f"ssl.keystore.password={STORE_PASSWORD}\n"
        "ssl.keystore.type=JKS\n"
        f"ssl.key.password={STORE_PASSWORD}\n"
        "ssl.endpoint.identification.algorithm=\n",
    )
    loaded = from_java_properties(path)
    assert loaded.security is SecurityMode.MTLS
    assert loaded.bootstrap_servers == ("localhost:9094",)
    assert loaded.client_id == "adstream-api"
    assert loaded.verify_hostname is False
    assert loaded.scram_username is None
    assert loaded.ca_pem is not None
    assert x509.load_pem_x509_certificates(loaded.ca_pem.encode()) == [pki.ca.cert]
    assert loaded.cert_pem is not None
    assert x509.load_pem_x509_certificates(loaded.cert_pem.encode())[0] == pki.client.cert
    assert loaded.key_pem is not None
    assert "PRIVATE KEY" not in repr(loaded)


def test_mtls_from_pkcs12_keystore(tmp_path: Path, pki: Pki) -> None:
    write_p12(tmp_path / "adstream-api.p12", pki)
    path = props(
        tmp_path,
        "bootstrap.servers=localhost:9094\nsecurity.protocol=SSL\n"
        f"ssl.keystore.location={tmp_path / 'adstream-api.p12'}\n"
        f"ssl.keystore.password={STORE_PASSWORD}\nssl.keystore.type=PKCS12\n",
    )
    loaded = from_java_properties(path)
    assert loaded.security is SecurityMode.MTLS
    assert loaded.ca_pem is None  # no truststore: the default bundle, as on MSK
    assert loaded.verify_hostname is True


def test_tls_with_truststore_only(tmp_path: Path, pki: Pki) -> None:
    write_jks_truststore(tmp_path / "kafka.client.truststore.jks", pki)
    path = props(
        tmp_path,
        "bootstrap.servers=b-1.c.kafka.us-east-1.amazonaws.com:9094\n"
        "security.protocol=SSL\n"
        "ssl.truststore.location=kafka.client.truststore.jks\n",
    )
    assert from_java_properties(path).security is SecurityMode.TLS


def test_scram(tmp_path: Path, pki: Pki) -> None:
    write_jks_truststore(tmp_path / "truststore.jks", pki)
    path = props(
        tmp_path,
        "bootstrap.servers=localhost:9096\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "ssl.truststore.location=truststore.jks\n"
        f"ssl.truststore.password={STORE_PASSWORD}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"
        '    username="adstream-api" \\\n'
        '    password="p;a\\\\"ss";\n',
    )
    loaded = from_java_properties(path)
    assert loaded.security is SecurityMode.SCRAM
    assert loaded.scram_mechanism == "SCRAM-SHA-512"
    assert loaded.scram_username == "adstream-api"
    assert loaded.scram_password is not None
    assert loaded.scram_password.get_secret_value() == 'p;a"ss'
    assert 'p;a"ss' not in repr(loaded)


def test_iam_region_from_msk_host_names(tmp_path: Path) -> None:
    path = props(
        tmp_path,
        "bootstrap.servers=b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com:9098\n"
        "security.protocol=SASL_SSL\n"
        "sasl.mechanism=AWS_MSK_IAM\n"
        "sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required "
        'awsProfileName="dev";\n'
        "sasl.client.callback.handler.class="
        "software.amazon.msk.auth.iam.IAMClientCallbackHandler\n",
    )
    loaded = from_java_properties(path)
    assert loaded.security is SecurityMode.IAM
    assert loaded.iam_region == "eu-west-1"
    assert loaded.iam_profile == "dev"


def test_iam_role_and_explicit_region(tmp_path: Path) -> None:
    arn = "arn:aws:iam::123456789012:role/adstream-producer"
    path = props(
        tmp_path,
        "bootstrap.servers=10.0.0.1:9098\nsecurity.protocol=SASL_SSL\n"
        "sasl.mechanism=OAUTHBEARER\n"
        "sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required "
        f'awsRoleArn="{arn}" awsRoleSessionName="api";\n',
    )
    loaded = from_java_properties(path, iam_region="ap-southeast-2")
    assert (loaded.iam_region, loaded.iam_role_arn, loaded.iam_session_name) == (
        "ap-southeast-2",
        arn,
        "api",
    )


def test_iam_without_region_names_the_field(tmp_path: Path) -> None:
    path = props(
        tmp_path,
        "bootstrap.servers=10.0.0.1:9098\nsecurity.protocol=SASL_SSL\n"
        "sasl.mechanism=AWS_MSK_IAM\n"
        "sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;\n",
    )
    with pytest.raises(ValidationError, match="iam_region"):
        from_java_properties(path)


def test_unsupported_keys_are_reported_by_name(tmp_path: Path) -> None:
    path = props(
        tmp_path,
        "bootstrap.servers=localhost:9092\n"
        "ssl.enabled.protocols=TLSv1.2\n"
        "key.serializer=org.apache.kafka.common.serialization.StringSerializer\n",
    )
    with pytest.raises(JavaPropertiesError) as caught:
        from_java_properties(path)
    assert caught.value.keys == ("key.serializer", "ssl.enabled.protocols")
    assert "ssl.enabled.protocols" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("security.protocol=SASL_PLAINTEXT\n", "security.protocol"),
        ("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n", "sasl.jaas.config"),
        (
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config="
            "org.apache.kafka.common.security.plain.PlainLoginModule required;\n",
            "sasl.mechanism",
        ),
        (
            "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config="
            'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" '
            'password="p" tokenauth="true";\n',
            "tokenauth",
        ),
        ("client.id=x\n", "bootstrap.servers"),
    ],
)
def test_unusable_combinations_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    if "bootstrap" not in text and key != "bootstrap.servers":
        text = "bootstrap.servers=localhost:9096\n" + text
    with pytest.raises(JavaPropertiesError, match=key.replace(".", r"\.")):
        from_java_properties(props(tmp_path, text))


def test_parse_jaas_options() -> None:
    jaas = parse_jaas(
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username=bob password="a \\"b\\" c";'
    )
    assert jaas.module.endswith("ScramLoginModule")
    assert jaas.options == {"username": "bob", "password": 'a "b" c'}
    with pytest.raises(JavaPropertiesError):
        parse_jaas("ScramLoginModule username=bob")


def test_empty_endpoint_identification_disables_host_checks_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = props(
        tmp_path,
        "bootstrap.servers=b-1:9094\nsecurity.protocol=SSL\n"
        "ssl.endpoint.identification.algorithm=\n",
    )
    with caplog.at_level(logging.WARNING, logger="adstream.kafka.java_properties"):
        loaded = from_java_properties(path)
    assert loaded.verify_hostname is False
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(path) in record.getMessage()
    assert "host name is NOT checked" in record.getMessage()
    assert "man in the middle" in record.getMessage()


@pytest.mark.parametrize(
    "line",
    [
        "",
        "ssl.endpoint.identification.algorithm=https\n",
        "ssl.endpoint.identification.algorithm = HTTPS \n",
    ],
)
def test_host_checks_stay_on_without_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str
) -> None:
    path = props(tmp_path, f"bootstrap.servers=b-1:9094\nsecurity.protocol=SSL\n{line}")
    with caplog.at_level(logging.WARNING):
        assert from_java_properties(path).verify_hostname is True
    assert not caplog.records


def test_unknown_endpoint_identification_is_an_error(tmp_path: Path) -> None:
    path = props(
        tmp_path,
        "bootstrap.servers=b-1:9094\nsecurity.protocol=SSL\n"
        "ssl.endpoint.identification.algorithm=none\n",
    )
    with pytest.raises(JavaPropertiesError, match="use https") as raised:
        from_java_properties(path)
    assert raised.value.keys == ("ssl.endpoint.identification.algorithm",)
