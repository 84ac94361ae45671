"""Where a local broker keeps its files and which ports it listens on.

One object answers "where is X" for every other module, so paths and ports are
computed in exactly one place. Ports mirror Amazon MSK's client ports; the whole
block shifts with ``base_port`` so a test broker can run beside a developer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

PRINCIPALS: tuple[str, ...] = ("admin", "adstream-api", "adstream-aggregator", "adstream-connect")
"""Client principals that get a certificate and a SCRAM user."""

SCRAM_USERS: tuple[str, ...] = PRINCIPALS
BROKER_PRINCIPAL = "broker"
LISTEN_HOST = "127.0.0.1"


class Listener(StrEnum):
    """The broker's listeners, named by their security protocol as MSK does."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_SSL = "SASL_SSL"
    CONTROLLER = "CONTROLLER"


# Offsets from the base port: 9092 plaintext, 9093 controller, 9094 TLS, 9096 SCRAM.
_PORT_OFFSETS: dict[Listener, int] = {
    Listener.PLAINTEXT: 0,
    Listener.CONTROLLER: 1,
    Listener.SSL: 2,
    Listener.SASL_SSL: 4,
}

LISTENER_PURPOSE: dict[Listener, str] = {
    Listener.PLAINTEXT: "plaintext, no auth (local development only)",
    Listener.SSL: "TLS with client certificates (mutual TLS)",
    Listener.SASL_SSL: "TLS + SASL/SCRAM-SHA-512",
    Listener.CONTROLLER: "KRaft controller (mutual TLS, broker only)",
}

CLIENT_LISTENERS: tuple[Listener, ...] = (Listener.PLAINTEXT, Listener.SSL, Listener.SASL_SSL)


@dataclass(frozen=True)
class Ports:
    """The port of every listener, derived from one base port."""

    base: int = 9092

    def __post_init__(self) -> None:
        if not 1024 <= self.base <= 65535 - max(_PORT_OFFSETS.values()):
            raise ValueError(f"base port {self.base} is out of range (1024-65531)")

    def of(self, listener: Listener) -> int:
        return self.base + _PORT_OFFSETS[listener]

    def bootstrap(self, listener: Listener) -> str:
        return f"{LISTEN_HOST}:{self.of(listener)}"

    def all(self) -> dict[Listener, int]:
        return {listener: self.of(listener) for listener in Listener}


@dataclass(frozen=True)
class BrokerLayout:
    """Paths of one local broker's state directory (default ``.adstream/kafka``)."""

    root: Path

    @classmethod
    def at(cls, root: Path | str) -> BrokerLayout:
        return cls(Path(root).expanduser().resolve())

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def certs_dir(self) -> Path:
        return self.root / "certs"

    @property
    def server_properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j_config(self) -> Path:
        return self.root / "log4j2.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def state_file(self) -> Path:
        return self.root / "broker.json"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    @property
    def formatted_marker(self) -> Path:
        return self.data_dir / "meta.properties"

    def client_properties(self, name: str) -> Path:
        """``client-<name>.properties`` with name plaintext, tls or scram."""
        return self.root / f"client-{name}.properties"

    def ca_pem(self) -> Path:
        return self.certs_dir / "ca.pem"

    def cert_pem(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.pem"

    def key_pem(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.key"

    def pkcs12(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.p12"

    def keystore_jks(self, principal: str) -> Path:
        return self.certs_dir / f"{principal}.keystore.jks"

    def truststore_jks(self) -> Path:
        return self.certs_dir / "truststore.jks"
