"""Java key/trust stores (JKS, JCEKS, PKCS#12) and PEM files turned into PEM text in memory.

librdkafka reads only PEM (and PKCS#12 from a file); MSK users hold JKS stores from the Java
docs. Converting in memory means no private key is ever written to disk by adstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jks
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from pydantic import SecretStr

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCEKS_MAGIC = b"\xce\xce\xce\xce"


class StoreError(ValueError):
    """A store or PEM file could not be read; the message names the file and the cause."""


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate (leaf first, then its chain) and its unencrypted PKCS#8 key."""

    cert_pem: str
    key_pem: SecretStr = field(repr=False)


def _pem_certs(certs: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


def _pem_key(key: PrivateKeyTypes) -> SecretStr:
    raw = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SecretStr(raw.decode())


def _store_kind(data: bytes, declared: str | None) -> str:
    """Sniff the real format: keytool writes PKCS#12 by default even into files named `.jks`."""
    if data.startswith(_JKS_MAGIC):
        return "jks"
    if data.startswith(_JCEKS_MAGIC):
        return "jceks"
    if data.lstrip().startswith(b"-----BEGIN"):
        return "pem"
    if declared and declared.upper() == "PEM":
        raise StoreError("declared type PEM but the file holds no PEM text")
    return "pkcs12"  # Java 9+ also reads PKCS#12 when told JKS, so the declared type is a hint


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from exc


def _load_jks(data: bytes, path: Path, password: str | None) -> jks.KeyStore:
    try:
        return jks.KeyStore.loads(data, password, try_decrypt_keys=False)
    except jks.KeystoreSignatureException as exc:
        raise StoreError(f"{path}: wrong store password") from exc
    except jks.KeystoreException as exc:
        raise StoreError(f"{path}: not a readable JKS store ({exc})") from exc


def _load_pkcs12(data: bytes, path: Path, password: str | None) -> pkcs12.PKCS12KeyAndCertificates:
    try:
        return pkcs12.load_pkcs12(data, password.encode() if password else None)
    except ValueError as exc:
        raise StoreError(f"{path}: not a PKCS#12 store or wrong password ({exc})") from exc


def read_truststore(path: Path, store_type: str | None = None, password: str | None = None) -> str:
    """Return the trusted CA certificates of a JKS, PKCS#12 or PEM truststore as PEM text."""
    data = _read(path)
    kind = _store_kind(data, store_type)
    if kind == "pem":
        certs = _parse_pem_certs(data, path)
    elif kind == "pkcs12":
        bundle = _load_pkcs12(data, path, password)
        certs = [c.certificate for c in bundle.additional_certs]
        if bundle.cert is not None:
            certs.insert(0, bundle.cert.certificate)
    else:
        store = _load_jks(data, path, password)
        certs = [x509.load_der_x509_certificate(e.cert) for e in store.certs.values()]
    if not certs:
        raise StoreError(f"{path}: the truststore holds no certificates")
    return _pem_certs(certs)


def read_keystore(
    path: Path,
    store_type: str | None = None,
    password: str | None = None,
    key_password: str | None = None,
) -> ClientIdentity:
    """Return the single key entry of a JKS or PKCS#12 keystore as PEM certificate chain + key."""
    data = _read(path)
    kind = _store_kind(data, store_type)
    if kind == "pem":
        raise StoreError(f"{path}: PEM keystores are not supported; use cert_file/key_file")
    if kind == "pkcs12":
        return identity_from_pkcs12(data, password, source=str(path))
    store = _load_jks(data, path, password)
    entries = list(store.private_keys.values())
    if len(entries) != 1:
        aliases = ", ".join(store.private_keys) or "none"
        raise StoreError(
            f"{path}: expected one private key entry, found {len(entries)} ({aliases})"
        )
    entry = entries[0]
    try:
        entry.decrypt(key_password if key_password is not None else password)
    except jks.DecryptionFailureException as exc:
        raise StoreError(f"{path}: wrong key password for entry {entry.alias!r}") from exc
    key = serialization.load_der_private_key(entry.pkey_pkcs8, password=None)
    chain = [x509.load_der_x509_certificate(der) for _kind, der in entry.cert_chain]
    return ClientIdentity(cert_pem=_pem_certs(chain), key_pem=_pem_key(key))


def identity_from_pkcs12(
    data: bytes, password: str | None, source: str = "PKCS#12"
) -> ClientIdentity:
    """Return the key and certificate chain held in PKCS#12 bytes."""
    bundle = _load_pkcs12(data, Path(source), password)
    if bundle.key is None or bundle.cert is None:
        raise StoreError(f"{source}: holds no private key with a certificate")
    chain = [bundle.cert.certificate, *(c.certificate for c in bundle.additional_certs)]
    return ClientIdentity(cert_pem=_pem_certs(chain), key_pem=_pem_key(bundle.key))


def identity_from_pem(cert: bytes, key: bytes, password: str | None, source: str) -> ClientIdentity:
    """Validate a PEM certificate chain and key, decrypting the key in memory if needed."""
    certs = _parse_pem_certs(cert, Path(source))
    try:
        private_key = serialization.load_pem_private_key(
            key, password.encode() if password else None
        )
    except (ValueError, TypeError) as exc:
        raise StoreError(f"{source}: cannot read the private key ({exc})") from exc
    return ClientIdentity(cert_pem=_pem_certs(certs), key_pem=_pem_key(private_key))


def _parse_pem_certs(data: bytes, path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise StoreError(f"{path}: no PEM certificate found ({exc})") from exc
