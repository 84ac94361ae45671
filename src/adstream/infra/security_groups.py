"""Step 2 of the seed: security groups. The broker group admits clients by group, never by CIDR.

Only the listener ports of the auth modes the profile enables are opened:
9092 plaintext (never in prod), 9094 TLS/mTLS, 9096 SASL/SCRAM, 9098 IAM. The Prometheus
exporters (11001 JMX, 11002 node) are reachable from the monitoring group only.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from adstream.infra.profiles import Profile

PLAINTEXT_PORT = 9092
TLS_PORT = 9094
SCRAM_PORT = 9096
IAM_PORT = 9098
JMX_EXPORTER_PORT = 11001
NODE_EXPORTER_PORT = 11002


def kafka_ports(profile: Profile) -> dict[int, str]:
    """Client listener ports the brokers must accept for this profile, with a description."""
    auth = profile.cluster.auth
    ports: dict[int, str] = {}
    if profile.plaintext:
        ports[PLAINTEXT_PORT] = "Kafka plaintext (dev only)"
    if auth.mtls:
        ports[TLS_PORT] = "Kafka TLS (mutual TLS)"
    if auth.scram:
        ports[SCRAM_PORT] = "Kafka SASL/SCRAM over TLS"
    if auth.iam:
        ports[IAM_PORT] = "Kafka IAM over TLS"
    return ports


def monitoring_ports(profile: Profile) -> dict[int, str]:
    """Open-monitoring exporter ports; MSK Serverless has no open monitoring."""
    if profile.serverless:
        return {}
    return {
        JMX_EXPORTER_PORT: "Prometheus JMX exporter",
        NODE_EXPORTER_PORT: "Prometheus node exporter",
    }


class SecurityGroups(Construct):
    """Client, monitoring and broker security groups, wired by group reference."""

    def __init__(
        self, scope: Construct, construct_id: str, *, profile: Profile, vpc: ec2.IVpc
    ) -> None:
        super().__init__(scope, construct_id)
        self.clients = ec2.SecurityGroup(
            self,
            "Clients",
            vpc=vpc,
            description="Kafka clients (ingest API, aggregator); the only group brokers admit",
            allow_all_outbound=True,
        )
        self.monitoring = ec2.SecurityGroup(
            self,
            "Monitoring",
            vpc=vpc,
            description="Prometheus scrapers of the MSK open-monitoring exporters",
            allow_all_outbound=True,
        )
        self.brokers = ec2.SecurityGroup(
            self,
            "Brokers",
            vpc=vpc,
            description=f"MSK brokers of {profile.cluster.name}",
            allow_all_outbound=False,
        )
        for port, what in kafka_ports(profile).items():
            self.brokers.add_ingress_rule(self.clients, ec2.Port.tcp(port), f"{what} from clients")
        for port, what in monitoring_ports(profile).items():
            self.brokers.add_ingress_rule(
                self.monitoring, ec2.Port.tcp(port), f"{what} from monitoring"
            )
