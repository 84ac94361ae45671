"""JKS and PKCS#12 stores round-trip to the same certificates and key, in memory."""

from __future__ import annotations

from pathlib import Path

import jks
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from adstream.kafka.keystores import (
    StoreError,
    identity_from_pem,
    read_keystore,
    read_truststore,
)
from tests.unit.kafka.kafka_testkit import Issued, Pki

STORE_PASSWORD = "store-pw"


def der(issued: Issued) -> bytes:
    return issued.cert.public_bytes(serialization.Encoding.DER)


def write_jks_keystore(path: Path, pki: Pki, password: str = STORE_PASSWORD) -> Path:
    pkcs8 = pki.client.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    entry = jks.PrivateKeyEntry.new("adstream-api", [der(pki.client), der(pki.ca)], pkcs8)
    path.write_bytes(jks.KeyStore.new("jks", [entry]).saves(password))
    return path


def write_jks_truststore(path: Path, pki: Pki, password: str = STORE_PASSWORD) -> Path:
    entry = jks.TrustedCertEntry.new("caroot", der(pki.ca))
    path.write_bytes(jks.KeyStore.new("jks", [entry]).saves(password))
    return path


def write_p12(path: Path, pki: Pki, password: str = STORE_PASSWORD) -> Path:
    data = pkcs12.serialize_key_and_certificates(
        b"adstream-api",
        pki.client.key,
        pki.client.cert,
        [pki.ca.cert],
        serialization.BestAvailableEncryption(password.encode()),
    )
    path.write_bytes(data)
    return path


def assert_is_client_identity(
    cert_pem: str, key_pem: str, pki: Pki, *, chained: bool = True
) -> None:
    chain = x509.load_pem_x509_certificates(cert_pem.encode())
    assert chain[0] == pki.client.cert
    assert (pki.ca.cert in chain) is chained
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert key.public_key() == pki.client.key.public_key()
    assert "ENCRYPTED" not in key_pem  # librdkafka gets a plain PKCS#8 key, in memory only


def test_jks_keystore_round_trip(tmp_path: Path, pki: Pki) -> None:
    store = write_jks_keystore(tmp_path / "client.keystore.jks", pki)
    identity = read_keystore(store, "JKS", STORE_PASSWORD)
    assert_is_client_identity(identity.cert_pem, identity.key_pem.get_secret_value(), pki)
    assert "PRIVATE KEY" not in repr(identity)


def test_jks_truststore_round_trip(tmp_path: Path, pki: Pki) -> None:
    store = write_jks_truststore(tmp_path / "truststore.jks", pki)
    pem = read_truststore(store, "JKS", STORE_PASSWORD)
    assert x509.load_pem_x509_certificates(pem.encode()) == [pki.ca.cert]


def test_jks_truststore_without_password_skips_integrity_check(tmp_path: Path, pki: Pki) -> None:
    store = write_jks_truststore(tmp_path / "truststore.jks", pki)
    assert x509.load_pem_x509_certificate(read_truststore(store).encode()) == pki.ca.cert


def test_jks_wrong_store_password(tmp_path: Path, pki: Pki) -> None:
    store = write_jks_keystore(tmp_path / "k.jks", pki)
    with pytest.raises(StoreError, match="wrong store password"):
        read_keystore(store, "JKS", "nope")


def test_jks_wrong_key_password(tmp_path: Path, pki: Pki) -> None:
    store = write_jks_keystore(tmp_path / "k.jks", pki)
    with pytest.raises(StoreError, match="wrong key password"):
        read_keystore(store, "JKS", STORE_PASSWORD, key_password="nope")


def test_pkcs12_keystore_round_trip(tmp_path: Path, pki: Pki) -> None:
    identity = read_keystore(write_p12(tmp_path / "c.p12", pki), "PKCS12", STORE_PASSWORD)
    assert_is_client_identity(identity.cert_pem, identity.key_pem.get_secret_value(), pki)


def test_format_is_sniffed_not_trusted_from_the_name(tmp_path: Path, pki: Pki) -> None:
    """keytool writes PKCS#12 by default, even into files named .jks with type JKS."""
    p12_named_jks = write_p12(tmp_path / "client.keystore.jks", pki)
    identity = read_keystore(p12_named_jks, "JKS", STORE_PASSWORD)
    assert_is_client_identity(identity.cert_pem, identity.key_pem.get_secret_value(), pki)
    jks_declared_p12 = write_jks_keystore(tmp_path / "k.p12", pki)
    assert read_keystore(jks_declared_p12, "PKCS12", STORE_PASSWORD).cert_pem


def test_pkcs12_truststore(tmp_path: Path, pki: Pki) -> None:
    data = pkcs12.serialize_key_and_certificates(
        None, None, None, [pki.ca.cert], serialization.BestAvailableEncryption(b"pw")
    )
    (tmp_path / "t.p12").write_bytes(data)
    pem = read_truststore(tmp_path / "t.p12", "PKCS12", "pw")
    assert x509.load_pem_x509_certificates(pem.encode()) == [pki.ca.cert]


def test_pkcs12_wrong_password(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(StoreError, match="wrong password"):
        read_keystore(write_p12(tmp_path / "c.p12", pki), "PKCS12", "nope")


def test_keystore_with_two_keys_is_ambiguous(tmp_path: Path, pki: Pki) -> None:
    pkcs8 = pki.client.key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    entries = [jks.PrivateKeyEntry.new(a, [der(pki.client)], pkcs8) for a in ("one", "two")]
    (tmp_path / "k.jks").write_bytes(jks.KeyStore.new("jks", entries).saves(STORE_PASSWORD))
    with pytest.raises(StoreError, match="one, two"):
        read_keystore(tmp_path / "k.jks", "JKS", STORE_PASSWORD)


def test_encrypted_pem_key_is_decrypted_in_memory(pki: Pki) -> None:
    identity = identity_from_pem(pki.client.cert_pem, pki.client.key_pem("pw"), "pw", "test")
    key_pem = identity.key_pem.get_secret_value()
    assert_is_client_identity(identity.cert_pem, key_pem, pki, chained=False)
    with pytest.raises(StoreError, match="private key"):
        identity_from_pem(pki.client.cert_pem, pki.client.key_pem("pw"), "wrong", "test")


def test_missing_store_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read"):
        read_truststore(tmp_path / "absent.jks")
