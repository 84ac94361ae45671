"""Test helpers for adstream.kafka: a throwaway PKI made with `cryptography`, a real TLS server."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import ports

KEY_PASSWORD = "key-secret"


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, password: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def issue(
    name: str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    hosts: tuple[str, ...] = (),
) -> Issued:
    """A certificate for `name`, self-signed when `issuer` is None."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    signer = issuer.key if issuer else key
    return Issued(cert=builder.sign(signer, hashes.SHA256()), key=key)


@dataclass(frozen=True)
class Pki:
    """A CA, a broker certificate for 127.0.0.1/localhost, a client, and an unrelated CA."""

    folder: Path
    ca: Issued
    broker: Issued
    client: Issued
    other_ca: Issued
    stranger: Issued  # a client certificate signed by other_ca

    def write(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        return path

    @property
    def ca_file(self) -> Path:
        return self.write("ca.pem", self.ca.cert_pem)

    @property
    def other_ca_file(self) -> Path:
        return self.write("other-ca.pem", self.other_ca.cert_pem)


free_port = ports.free_port


@dataclass
class TlsServer:
    """A TLS listener on 127.0.0.1 that answers a Kafka request's correlation id, like a broker."""

    port: int
    context: ssl.SSLContext
    _sock: socket.socket
    handshake_errors: list[str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    with self.context.wrap_socket(conn, server_side=True) as tls:
                        header = tls.recv(4)
                        (size,) = struct.unpack(">i", header)
                        request = tls.recv(size)
                        correlation = request[4:8]
                        answer = correlation + b"\x00\x00"
                        tls.sendall(struct.pack(">i", len(answer)) + answer)
                except (ssl.SSLError, OSError) as exc:
                    self.handshake_errors.append(str(exc))


def start_tls_server(
    pki: Pki, broker: Issued | None = None, *, require_client_cert: bool = True
) -> Iterator[TlsServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    identity = broker or pki.broker
    cert = pki.write("broker-server.pem", identity.cert_pem + identity.key_pem())
    context.load_cert_chain(cert)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=pki.ca.cert_pem.decode())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    server = TlsServer(sock.getsockname()[1], context, sock, [])
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        sock.close()
        thread.join(timeout=5)
