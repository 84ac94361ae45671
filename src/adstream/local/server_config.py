"""The broker's ``server.properties`` and log4j2 configuration, rendered from the layout.

The settings follow Amazon MSK's client-facing behaviour (ports, TLS versions,
SCRAM-SHA-512, ACL authorization, no topic auto-creation), and are stricter where
MSK's defaults are lax: ``unclean.leader.election.enable=false``. The controller
and inter-broker traffic use mutual TLS with the broker's own certificate, so the
only super users are ``User:admin`` and ``User:broker``: the anonymous plaintext
principal never gets cluster rights.

A local cluster (``ports.nodes`` > 1) runs every node as broker and controller, with all
nodes as the controller quorum's voters, and replicates like MSK: internal topics with
three replicas and ``min.insync.replicas=2``.
"""

from __future__ import annotations

import os

from adstream.local.layout import BROKER_PRINCIPAL, LISTEN_HOST, BrokerLayout, Listener, Ports
from adstream.local.log4j import rolling_file_yaml

NODE_ID = 1

# "CN=adstream-api,O=adstream local" -> "adstream-api": one principal on TLS and SCRAM.
PRINCIPAL_MAPPING_RULES = "RULE:^CN=([^,]+)(,.*)?$/$1/,DEFAULT"
SUPER_USERS = ("admin", BROKER_PRINCIPAL)


def server_properties(layout: BrokerLayout, ports: Ports, store_password: str) -> dict[str, str]:
    """Every broker setting, as an ordered mapping (easy to assert on in tests).

    ``ports`` are the whole cluster's; ``layout.node_id`` says which node this is.
    """
    node_id = layout.node_id or NODE_ID
    own = ports.node(node_id)
    listeners = [Listener.PLAINTEXT, Listener.SSL, Listener.SASL_SSL]
    endpoint = {name: f"{name}://{LISTEN_HOST}:{own.of(name)}" for name in Listener}
    voters = ",".join(
        f"{n}@{LISTEN_HOST}:{ports.node(n).of(Listener.CONTROLLER)}"
        for n in range(1, ports.nodes + 1)
    )
    replicas = str(min(ports.nodes, 3))
    min_isr = "2" if ports.nodes >= 3 else "1"
    return {
        # KRaft: each process is both broker and controller; every node votes.
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "controller.listener.names": Listener.CONTROLLER.value,
        "listeners": ",".join(endpoint[name] for name in [*listeners, Listener.CONTROLLER]),
        "advertised.listeners": ",".join(endpoint[name] for name in listeners),
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,CONTROLLER:SSL"
        ),
        "inter.broker.listener.name": Listener.SSL.value,
        # TLS: the broker's keystore, the local CA as truststore, TLS 1.2+ only.
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(layout.broker_keystore()),
        "ssl.keystore.password": store_password,
        "ssl.key.password": store_password,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(layout.ca_pem()),
        "ssl.enabled.protocols": "TLSv1.2,TLSv1.3",
        "ssl.protocol": "TLSv1.3",
        "ssl.principal.mapping.rules": PRINCIPAL_MAPPING_RULES,
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        # SASL/SCRAM-SHA-512 on the SASL_SSL listener, as MSK does on port 9096.
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        # Authorization: deny unless an ACL allows.
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(f"User:{user}" for user in SUPER_USERS),
        # Topics are created on purpose, never by a typo in a producer.
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
        # No producer clock may stamp a record more than an hour ahead (Kafka 4's default,
        # stated because MSK's Kafka 3.x default is unlimited): record times bound how
        # long the aggregator remembers event ids.
        "log.message.timestamp.after.max.ms": "3600000",
        # One node: internal topics cannot have more than one replica; three: as on MSK.
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": "0",
        "num.partitions": "6",
        **request_threads(os.cpu_count() or 1),
        "log.dirs": str(layout.data_dir),
        "log.retention.hours": "168",
    }


def request_threads(cpus: int) -> dict[str, str]:
    """Network and request-handler threads for this machine: Kafka's defaults (3 and 8)
    are for a server of its own, and on a 2-CPU laptop or CI runner, shared with the
    clients, the extra threads only add hand-offs between them (measured with the
    benchmarks: a produce request cost the broker ~114 µs of CPU; 1 and 2 threads cut the
    broker's CPU per event by about a fifth, and the open-loop p99 with it)."""
    return {
        "num.network.threads": str(min(3, max(1, cpus // 2))),
        "num.io.threads": str(min(8, max(2, cpus))),
    }


def render_properties(props: dict[str, str]) -> str:
    """Java ``.properties`` text; values here never need escaping beyond backslashes."""
    lines = ["# Written by `adstream kafka up`; edits are overwritten on the next start."]
    lines += [f"{key}={value.replace(chr(92), chr(92) * 2)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def log4j2_yaml(layout: BrokerLayout) -> str:
    """Broker logs to ``logs/server.log``; authorizer decisions stay visible at INFO."""
    return rolling_file_yaml(
        "server",
        layout.server_log,
        "[%d] %p %m (%c)%n",
        {
            "kafka.authorizer.logger": "INFO",
            "org.apache.kafka.metadata.authorizer": "INFO",
            "state.change.logger": "WARN",
        },
    )
