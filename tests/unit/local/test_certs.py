from __future__ import annotations

import ipaddress
from pathlib import Path

import jks
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adstream.local.certs import ensure_certificates
from adstream.local.layout import PRINCIPALS, BrokerLayout

PASSWORD = "test-store-password"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> BrokerLayout:
    created = BrokerLayout.at(tmp_path_factory.mktemp("certs"))
    ensure_certificates(created, PASSWORD)
    return created


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_every_principal_gets_a_client_certificate_signed_by_the_ca(layout: BrokerLayout) -> None:
    ca = _cert(layout.ca_pem())
    for principal in PRINCIPALS:
        cert = _cert(layout.cert_pem(principal))
        cert.verify_directly_issued_by(ca)
        assert _cn(cert) == principal
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_subject_in_rfc2253_starts_with_the_cn(layout: BrokerLayout) -> None:
    # ssl.principal.mapping.rules relies on it: "CN=adstream-api,O=adstream local".
    assert (
        _cert(layout.cert_pem("adstream-api"))
        .subject.rfc4514_string()
        .startswith("CN=adstream-api,")
    )


def test_broker_certificate_names_localhost_and_loopback(layout: BrokerLayout) -> None:
    key, cert, chain = pkcs12.load_key_and_certificates(
        layout.pkcs12("broker").read_bytes(), PASSWORD.encode()
    )
    assert key is not None
    assert cert is not None
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert [c.subject for c in chain] == [_cert(layout.ca_pem()).subject]


def test_private_keys_are_readable_by_the_owner_only(layout: BrokerLayout) -> None:
    for path in [layout.key_pem("admin"), layout.pkcs12("admin"), layout.keystore_jks("admin")]:
        assert path.stat().st_mode & 0o077 == 0, path


def test_java_keystore_and_truststore_open_with_the_password(layout: BrokerLayout) -> None:
    keystore = jks.KeyStore.load(str(layout.keystore_jks("adstream-api")), PASSWORD)
    entry = keystore.private_keys["adstream-api"]
    assert entry.is_decrypted()
    leaf = x509.load_der_x509_certificate(entry.cert_chain[0][1])
    assert _cn(leaf) == "adstream-api"
    truststore = jks.KeyStore.load(str(layout.truststore_jks()), PASSWORD)
    trusted = x509.load_der_x509_certificate(truststore.certs["adstream-ca"].cert)
    assert trusted == _cert(layout.ca_pem())


def test_wrong_password_does_not_open_the_keystore(layout: BrokerLayout) -> None:
    with pytest.raises(ValueError, match="Invalid password"):
        pkcs12.load_key_and_certificates(layout.pkcs12("admin").read_bytes(), b"wrong")


def test_existing_material_is_kept_and_missing_files_are_reissued(layout: BrokerLayout) -> None:
    ca_before = layout.ca_pem().read_bytes()
    api_before = layout.cert_pem("adstream-api").read_bytes()
    layout.keystore_jks("admin").unlink()
    ensure_certificates(layout, PASSWORD)
    assert layout.ca_pem().read_bytes() == ca_before
    assert layout.cert_pem("adstream-api").read_bytes() == api_before
    assert layout.keystore_jks("admin").exists()
    _cert(layout.cert_pem("admin")).verify_directly_issued_by(_cert(layout.ca_pem()))
