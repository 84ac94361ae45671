"""How clients reach the local broker: librdkafka configs and Java ``client.properties`` files.

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

ClientConfig = dict[str, str | int | float | bool]
"""A librdkafka configuration as confluent-kafka takes it."""

TLS_CLIENT = "adstream-api"
SCRAM_CLIENT = "adstream-api"


def librdkafka_config(
    layout: BrokerLayout,
    ports: Ports,
    listener: Listener,
    *,
    principal: str = TLS_CLIENT,
    secrets: LocalSecrets | None = None,
) -> ClientConfig:
    """A confluent-kafka config for one listener: PEM files for TLS, SCRAM from ``secrets``."""
    config: ClientConfig = {"bootstrap.servers": ports.bootstrap(listener)}
    if listener is Listener.PLAINTEXT:
        return config | {"security.protocol": "PLAINTEXT"}
    config |= {
        "ssl.ca.location": str(layout.ca_pem()),
        "ssl.endpoint.identification.algorithm": "https",
    }
    if listener is Listener.SSL:
        return config | {
            "security.protocol": "SSL",
            "ssl.certificate.location": str(layout.cert_pem(principal)),
            "ssl.key.location": str(layout.key_pem(principal)),
        }
    if listener is Listener.SASL_SSL:
        if secrets is None:
            raise ValueError("the SASL_SSL listener needs the SCRAM password from LocalSecrets")
        return config | {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": principal,
            "sasl.password": secrets.scram_password(principal),
        }
    raise ValueError(f"clients do not connect to the {listener} listener")


def local_kafka_settings(
    layout: BrokerLayout, ports: Ports, principal: str, client_id: str | None = None
) -> KafkaSettings:
    """Mutual TLS settings for ``principal`` on the local broker: the MSK-like default path."""
    return KafkaSettings(
        bootstrap_servers=(ports.bootstrap(Listener.SSL),),
        security=SecurityMode.MTLS,
        ca_file=layout.ca_pem(),
        cert_file=layout.cert_pem(principal),
        key_file=layout.key_pem(principal),
        client_id=client_id or principal,
    )


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
