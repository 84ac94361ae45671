"""How clients reach the local broker: ``KafkaSettings`` and Java ``client.properties`` files.

The ``.properties`` files are the format the MSK docs and Spring apps use, with
absolute paths, so a Java client (or ``adstream --kafka-config``) can connect to
the local broker exactly as it would to an MSK cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

from adstream.kafka.settings import KafkaSettings, SecurityMode
from adstream.local.layout import BrokerLayout, Listener, Ports
from adstream.local.secrets import LocalSecrets

TLS_CLIENT = "adstream-api"
SCRAM_CLIENT = "adstream-api"


def local_kafka_settings(
    layout: BrokerLayout,
    ports: Ports,
    principal: str,
    listener: Listener = Listener.SSL,
    secrets: LocalSecrets | None = None,
) -> KafkaSettings:
    """Settings for ``principal`` on one listener of the local broker.

    The default, mutual TLS with the principal's certificate, is the MSK-like path the
    services use; SASL_SSL needs the SCRAM password from ``secrets``. The configs
    themselves come from ``adstream.kafka.factory``, as for any cluster.
    """
    bootstrap = (ports.bootstrap(listener),)
    if listener is Listener.PLAINTEXT:
        return KafkaSettings(bootstrap_servers=bootstrap, client_id=principal)
    if listener is Listener.SSL:
        return KafkaSettings(
            bootstrap_servers=bootstrap,
            security=SecurityMode.MTLS,
            ca_file=layout.ca_pem(),
            cert_file=layout.cert_pem(principal),
            key_file=layout.key_pem(principal),
            client_id=principal,
        )
    if listener is Listener.SASL_SSL:
        if secrets is None:
            raise ValueError("the SASL_SSL listener needs the SCRAM password from LocalSecrets")
        return KafkaSettings(
            bootstrap_servers=bootstrap,
            security=SecurityMode.SCRAM,
            ca_file=layout.ca_pem(),
            scram_username=principal,
            scram_password=secrets.scram_password(principal),
            client_id=principal,
        )
    raise ValueError(f"clients do not connect to the {listener} listener")


def java_client_properties(
    layout: BrokerLayout, ports: Ports, secrets: LocalSecrets
) -> dict[str, dict[str, str]]:
    """The three ``client-*.properties`` files, name -> properties."""
    store_password = secrets.store_password.get_secret_value()
    truststore = {
        "ssl.truststore.location": str(layout.truststore_jks()),
        "ssl.truststore.password": store_password,
        "ssl.truststore.type": "JKS",
    }
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{SCRAM_CLIENT}" password="{secrets.scram_password(SCRAM_CLIENT)}";'
    )
    return {
        "plaintext": {
            "bootstrap.servers": ports.bootstrap(Listener.PLAINTEXT),
            "security.protocol": "PLAINTEXT",
        },
        "tls": {
            "bootstrap.servers": ports.bootstrap(Listener.SSL),
            "security.protocol": "SSL",
            **truststore,
            "ssl.keystore.location": str(layout.keystore_jks(TLS_CLIENT)),
            "ssl.keystore.password": store_password,
            "ssl.keystore.type": "JKS",
            "ssl.key.password": store_password,
        },
        "scram": {
            "bootstrap.servers": ports.bootstrap(Listener.SASL_SSL),
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": jaas,
            **truststore,
        },
    }


def write_java_client_properties(
    layout: BrokerLayout, ports: Ports, secrets: LocalSecrets
) -> list[Path]:
    """Write the files (mode 0600: they hold passwords) and return their paths."""
    written = []
    for name, props in java_client_properties(layout, ports, secrets).items():
        path = layout.client_properties(name)
        body = "".join(f"{key}={value}\n" for key, value in props.items())
        header = f"# {name} client for the local adstream broker (written by `adstream kafka up`)\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(header + body)
        written.append(path)
    return written
