"""Certificates for the local broker, made with ``cryptography``.

A local CA signs the broker's server certificate (SAN ``localhost`` and
``127.0.0.1``; a cluster node's also ``b-N.localhost``, as MSK names its brokers
``b-N.<cluster>``), one per node, and one client certificate per principal. Each client gets its
material in every format its users ask for: PEM for Python (librdkafka),
PKCS#12, and JKS key/trust stores for Java clients as the MSK docs describe.
The certificate's CN is the Kafka principal (see ``ssl.principal.mapping.rules``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import jks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adstream.local.layout import BROKER_PRINCIPAL, LISTEN_HOST, PRINCIPALS, BrokerLayout

_ORG = "adstream local"
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=825)


def _new_key() -> rsa.RSAPrivateKey:
    # RSA 2048: what ACM Private CA issues by default and every client stack reads.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    # Listed O first so the RFC 2253 form Java shows is "CN=<name>,O=adstream local".
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


@dataclass(frozen=True)
class KeyPair:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA able to issue server and client certificates."""

    pair: KeyPair

    @classmethod
    def create(cls, common_name: str = "adstream local CA") -> CertificateAuthority:
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(KeyPair(cert, key))

    @property
    def cert(self) -> x509.Certificate:
        return self.pair.cert

    def issue(
        self,
        common_name: str,
        *,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
        server: bool = False,
    ) -> KeyPair:
        """Issue a leaf certificate: clientAuth always, serverAuth too with ``server=True``."""
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + LEAF_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.pair.key.public_key()),
                critical=False,
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return KeyPair(builder.sign(self.pair.key, hashes.SHA256()), key)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


def pkcs12_bytes(pair: KeyPair, ca: x509.Certificate, password: str, alias: str) -> bytes:
    """A PKCS#12 keystore (key + chain) that Java 17, OpenSSL and librdkafka all read."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        alias.encode(), pair.key, pair.cert, [ca], encryption
    )


def keystore_jks_bytes(pair: KeyPair, ca: x509.Certificate, password: str, alias: str) -> bytes:
    der = serialization.Encoding.DER
    key_der = pair.key.private_bytes(
        der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    entry = jks.PrivateKeyEntry.new(
        alias, [pair.cert.public_bytes(der), ca.public_bytes(der)], key_der
    )
    entry.encrypt(password)
    store = jks.KeyStore.new("jks", [entry])
    return bytes(store.saves(password))


def truststore_jks_bytes(ca: x509.Certificate, password: str, alias: str = "adstream-ca") -> bytes:
    entry = jks.TrustedCertEntry.new(alias, ca.public_bytes(serialization.Encoding.DER))
    return bytes(jks.KeyStore.new("jks", [entry]).saves(password))


def _load_pair(cert_path: Path, key_path: Path) -> KeyPair:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_path} does not hold an RSA key")
    return KeyPair(cert, key)


def ensure_certificates(layout: BrokerLayout, store_password: str) -> CertificateAuthority:
    """Create whatever certificate material is missing; existing files are kept as they are.

    The CA's key stays in ``certs/ca.key`` (0600) so a principal added later is
    signed by the same CA that every client already trusts.
    """
    ca_cert, ca_key = layout.ca_pem(), layout.certs_dir / "ca.key"
    if ca_cert.exists() and ca_key.exists():
        ca = CertificateAuthority(_load_pair(ca_cert, ca_key))
    else:
        ca = CertificateAuthority.create()
        _write(ca_key, ca.pair.key_pem(), private=True)
        _write(ca_cert, ca.pair.cert_pem())
    if not layout.truststore_jks().exists():
        _write(layout.truststore_jks(), truststore_jks_bytes(ca.cert, store_password))
    if not layout.broker_keystore().exists():
        broker = ca.issue(
            BROKER_PRINCIPAL,
            dns_names=broker_dns_names(layout.node_id),
            ip_addresses=(LISTEN_HOST,),
            server=True,
        )
        _write(
            layout.broker_keystore(),
            pkcs12_bytes(broker, ca.cert, store_password, "broker"),
            private=True,
        )
    for principal in PRINCIPALS:
        if all(p.exists() for p in _client_files(layout, principal)):
            continue
        pair = ca.issue(principal)
        _write(layout.cert_pem(principal), pair.cert_pem())
        _write(layout.key_pem(principal), pair.key_pem(), private=True)
        _write(
            layout.pkcs12(principal),
            pkcs12_bytes(pair, ca.cert, store_password, principal),
            private=True,
        )
        _write(
            layout.keystore_jks(principal),
            keystore_jks_bytes(pair, ca.cert, store_password, principal),
            private=True,
        )
    return ca


def broker_dns_names(node_id: int | None) -> tuple[str, ...]:
    """The host names a broker's certificate names: a node's own name too."""
    return ("localhost",) if node_id is None else ("localhost", f"b-{node_id}.localhost")


def _client_files(layout: BrokerLayout, principal: str) -> tuple[Path, ...]:
    return (
        layout.cert_pem(principal),
        layout.key_pem(principal),
        layout.pkcs12(principal),
        layout.keystore_jks(principal),
    )
