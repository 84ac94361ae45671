"""Doctor steps below Kafka: DNS, TCP and the TLS handshake, with Python's socket and ssl.

Running these without librdkafka turns its generic "broker transport failure" into a precise
cause (name, port, CA, client certificate). The TLS step uses the same CA and client
identity as the Kafka clients (`TlsMaterial`) and ends with a Kafka ApiVersions request,
because under TLS 1.3 a broker rejects a missing client certificate only after the handshake.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Sequence

from adstream.kafka.checks import Step, StepResult
from adstream.kafka.settings import split_host_port
from adstream.kafka.tls import TlsMaterial, ssl_context

MSK_PORTS = "MSK ports: 9092 plaintext, 9094 TLS/mTLS, 9096 SASL/SCRAM, 9098 IAM"
_API_VERSIONS_KEY = 18
_CORRELATION_ID = 0x0AD5
_UNTRUSTED_ISSUER = {18, 19, 20, 21, 2}  # X509_V_ERR_* for "not signed by a trusted CA"
_HOSTNAME_MISMATCH = {62, 63, 64}  # host name, email, IP address mismatch
_EXPIRED = {9, 10}  # not yet valid, expired


def check_dns(servers: Sequence[str]) -> StepResult:
    """Every bootstrap host name must resolve."""
    resolved = []
    for server in servers:
        host, port = split_host_port(server)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            return StepResult.failed(
                Step.DNS,
                f"cannot resolve {host}: {exc.strerror}",
                "check the bootstrap server names; MSK broker names resolve only from inside "
                "the cluster's VPC (or a peered VPC / VPN with DNS resolution)",
            )
        resolved.append(f"{host} -> {infos[0][4][0]}")
    return StepResult.passed(Step.DNS, ", ".join(resolved))


def check_tcp(servers: Sequence[str], timeout: float) -> StepResult:
    """Every bootstrap server must accept a TCP connection."""
    for server in servers:
        host, port = split_host_port(server)
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except ConnectionRefusedError:
            return StepResult.failed(
                Step.TCP,
                f"{host}:{port} refused the connection",
                f"nothing listens there: the broker is down or the port is wrong ({MSK_PORTS})",
            )
        except TimeoutError:
            return StepResult.failed(
                Step.TCP,
                f"{host}:{port} did not answer within {timeout:g}s",
                "a security group, NACL or firewall drops the traffic: allow this client's "
                "address on the broker port in the cluster's security group",
            )
        except OSError as exc:
            return StepResult.failed(
                Step.TCP, f"{host}:{port}: {exc.strerror or exc}", "check routing to the broker"
            )
    return StepResult.passed(Step.TCP, f"connected to {', '.join(servers)}")


def check_tls(servers: Sequence[str], material: TlsMaterial, timeout: float) -> StepResult:
    """Handshake with every bootstrap server and get a Kafka answer over the TLS session."""
    try:
        context = ssl_context(material)
    except (ssl.SSLError, OSError) as exc:
        return StepResult.failed(
            Step.TLS,
            f"cannot load the TLS material: {exc}",
            "check that the CA and client certificate files are PEM/PKCS#12 and match the key",
        )
    versions = []
    for server in servers:
        host, port = split_host_port(server)
        try:
            versions.append(f"{server} {_probe(host, port, context, timeout)}")
        except ssl.SSLCertVerificationError as exc:
            return _verification_failure(server, exc, material)
        except ssl.SSLEOFError as exc:
            return _not_tls(server, exc.reason or str(exc))
        except ssl.SSLError as exc:
            return _alert_failure(server, exc, material)
        except _AfterHandshakeError as exc:
            return _after_handshake_failure(server, exc.cause, material)
        except (ConnectionError, TimeoutError) as exc:
            return _not_tls(server, str(exc) or type(exc).__name__)
    return StepResult.passed(Step.TLS, "; ".join(versions))


class _AfterHandshakeError(Exception):
    """The handshake passed but the broker refused or dropped the Kafka request."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _probe(host: str, port: int, context: ssl.SSLContext, timeout: float) -> str:
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        protocol = f"{tls.version()} {(tls.cipher() or ('',))[0]}".strip()
        try:
            tls.sendall(api_versions_request())
            _size, correlation = struct.unpack(">iI", _read_exactly(tls, 8))
        except (OSError, EOFError) as exc:
            raise _AfterHandshakeError(exc) from exc
        if correlation != _CORRELATION_ID:
            raise _AfterHandshakeError(EOFError("the answer is not a Kafka response"))
        return protocol


def api_versions_request(client_id: str = "adstream-doctor") -> bytes:
    """A Kafka ApiVersions v0 request: answered by every broker, before any SASL exchange."""
    name = client_id.encode()
    body = struct.pack(">hhIh", _API_VERSIONS_KEY, 0, _CORRELATION_ID, len(name)) + name
    return struct.pack(">i", len(body)) + body


def _read_exactly(sock: ssl.SSLSocket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError("the broker closed the connection after the TLS handshake")
        data += chunk
    return data


def _verification_failure(
    server: str, exc: ssl.SSLCertVerificationError, material: TlsMaterial
) -> StepResult:
    code, message = exc.verify_code, exc.verify_message
    if code in _UNTRUSTED_ISSUER:
        return StepResult.failed(
            Step.TLS,
            f"TLS handshake with {server} failed: the broker certificate is not signed by the "
            f"CA in {material.ca_source} ({message})",
            "point ca_file (ssl.ca.location / ssl.truststore.location) at the CA that signed "
            "the broker certificate; on MSK leave it unset: brokers use public Amazon "
            "certificates that the default bundle trusts",
        )
    if code in _HOSTNAME_MISMATCH:
        return StepResult.failed(
            Step.TLS,
            f"TLS handshake with {server} failed: {message}",
            "use the host name the broker certificate names in bootstrap servers; for a local "
            "test broker whose certificate lacks it, set verify_hostname=false",
        )
    if code in _EXPIRED:
        return StepResult.failed(
            Step.TLS,
            f"TLS handshake with {server} failed: {message}",
            "renew the broker certificate, or fix this machine's clock",
        )
    return StepResult.failed(
        Step.TLS, f"TLS handshake with {server} failed: {message}", "check the broker certificate"
    )


def _alert_failure(server: str, exc: ssl.SSLError, material: TlsMaterial) -> StepResult:
    reason = (exc.reason or str(exc)).upper()
    has_identity = material.identity is not None
    if "CERTIFICATE_REQUIRED" in reason or ("HANDSHAKE_FAILURE" in reason and not has_identity):
        return StepResult.failed(
            Step.TLS,
            f"{server} requires a client certificate and none was sent ({exc.reason})",
            "use security=mtls with cert_file + key_file or pkcs12_file "
            "(Java: ssl.keystore.location), or connect to the port of another auth mode",
        )
    if has_identity and any(
        alert in reason for alert in ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN")
    ):
        return StepResult.failed(
            Step.TLS,
            f"{server} rejected the client certificate ({exc.reason})",
            "the client certificate must be signed by the CA the broker trusts (on MSK: the "
            "AWS Private CA attached to the cluster) and be valid now",
        )
    if any(mark in reason for mark in ("WRONG_VERSION_NUMBER", "RECORD_LAYER", "PACKET_LENGTH")):
        return _not_tls(server, exc.reason or str(exc))
    if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
        return StepResult.failed(
            Step.TLS,
            f"{server}: no TLS version in common ({exc.reason})",
            "the broker must accept TLS 1.2 or 1.3",
        )
    return StepResult.failed(
        Step.TLS, f"TLS with {server} failed: {exc}", "check the broker's TLS listener settings"
    )


def _after_handshake_failure(
    server: str, cause: BaseException, material: TlsMaterial
) -> StepResult:
    if isinstance(cause, ssl.SSLError) and not isinstance(cause, ssl.SSLEOFError):
        return _alert_failure(server, cause, material)
    if isinstance(cause, TimeoutError):
        return _not_tls(server, "no answer to a Kafka ApiVersions request")
    if material.identity is None:
        return StepResult.failed(
            Step.TLS,
            f"{server} closed the connection after the TLS handshake: it most likely requires "
            f"a client certificate ({cause})",
            "use security=mtls with cert_file + key_file or pkcs12_file, or the port of the "
            f"auth mode you configured ({MSK_PORTS})",
        )
    return StepResult.failed(
        Step.TLS,
        f"{server} closed the connection after the TLS handshake: it most likely rejected the "
        f"client certificate ({cause})",
        "the client certificate must be signed by the CA the broker trusts (on MSK: the AWS "
        "Private CA attached to the cluster) and be valid now; the broker log names the cause",
    )


def _not_tls(server: str, cause: str) -> StepResult:
    return StepResult.failed(
        Step.TLS,
        f"{server} does not answer as a Kafka TLS listener ({cause})",
        f"this port is probably not a TLS listener: use the port of your auth mode ({MSK_PORTS}) "
        "or security=plaintext for a plaintext listener",
    )
