"""TLS material resolved once from settings, for librdkafka and for Python's `ssl` alike.

The doctor's handshake must use exactly what the client will use, so both read one
`TlsMaterial`. Keys stay in memory: librdkafka gets PEM strings, Python's `ssl` an anonymous
in-memory file (memfd) because it can only load a client certificate from a path.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import certifi
from pydantic import SecretStr

from adstream.kafka.keystores import ClientIdentity, identity_from_pem, identity_from_pkcs12
from adstream.kafka.settings import KafkaSettings


@dataclass(frozen=True)
class TlsMaterial:
    """CA to verify the broker, optional client identity, and whether to check the host name."""

    ca_location: Path | None
    ca_pem: str | None = field(default=None, repr=False)
    identity: ClientIdentity | None = None
    verify_hostname: bool = True

    @property
    def ca_source(self) -> str:
        """Human description of where the CA comes from, for doctor messages."""
        if self.ca_pem is not None:
            return "the configured CA PEM (ca_pem / ssl.truststore.location)"
        return f"ssl.ca.location={self.ca_location}"


def resolve_tls(settings: KafkaSettings) -> TlsMaterial | None:
    """Load CA and client identity from settings; None for plaintext."""
    if not settings.uses_tls:
        return None
    ca_location = None
    if settings.ca_pem is None:
        ca_location = settings.ca_file or Path(certifi.where())
    return TlsMaterial(
        ca_location=ca_location,
        ca_pem=settings.ca_pem,
        identity=_identity(settings),
        verify_hostname=settings.verify_hostname,
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _identity(settings: KafkaSettings) -> ClientIdentity | None:
    if settings.cert_file and settings.key_file:
        return identity_from_pem(
            settings.cert_file.read_bytes(),
            settings.key_file.read_bytes(),
            _secret(settings.key_password),
            source=f"{settings.cert_file} / {settings.key_file}",
        )
    if settings.pkcs12_file:
        return identity_from_pkcs12(
            settings.pkcs12_file.read_bytes(),
            _secret(settings.pkcs12_password),
            source=str(settings.pkcs12_file),
        )
    if settings.cert_pem and settings.key_pem:
        return identity_from_pem(
            settings.cert_pem.encode(),
            settings.key_pem.get_secret_value().encode(),
            _secret(settings.key_password),
            source="cert_pem / key_pem",
        )
    return None


def librdkafka_tls_config(material: TlsMaterial) -> dict[str, str]:
    """The `ssl.*` properties for librdkafka (names from librdkafka's CONFIGURATION.md)."""
    conf = {
        "ssl.endpoint.identification.algorithm": "https" if material.verify_hostname else "none"
    }
    if material.ca_pem is not None:
        conf["ssl.ca.pem"] = material.ca_pem
    elif material.ca_location is not None:
        conf["ssl.ca.location"] = str(material.ca_location)
    if material.identity is not None:
        conf["ssl.certificate.pem"] = material.identity.cert_pem
        conf["ssl.key.pem"] = material.identity.key_pem.get_secret_value()
    return conf


def ssl_context(material: TlsMaterial) -> ssl.SSLContext:
    """A client `SSLContext` equivalent to what librdkafka gets from `librdkafka_tls_config`."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = material.verify_hostname
    if material.ca_pem is not None:
        ctx.load_verify_locations(cadata=material.ca_pem)
    elif material.ca_location is not None:
        ctx.load_verify_locations(cafile=str(material.ca_location))
    if material.identity is not None:
        pem = material.identity.key_pem.get_secret_value() + material.identity.cert_pem
        with _in_memory_file(pem.encode()) as path:
            ctx.load_cert_chain(certfile=path)
    return ctx


@contextlib.contextmanager
def _in_memory_file(data: bytes) -> Iterator[str]:
    """A path whose content lives only in memory (Linux memfd); elsewhere a 0600 temp file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("adstream-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as folder:  # pragma: no cover - non-Linux only
        path = Path(folder) / "identity.pem"
        path.touch(mode=0o600)
        path.write_bytes(data)
        yield str(path)
