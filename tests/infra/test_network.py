"""VPC and security groups: private subnets, egress by profile, exact broker ports."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import SynthCache

pytestmark = pytest.mark.infra

ALL = ("dev", "prod", "serverless", "variant")


def _group_id(synth: Any, description_prefix: str) -> str:
    groups = synth.resources("AWS::EC2::SecurityGroup")
    (logical,) = [
        k
        for k, r in groups.items()
        if r["Properties"]["GroupDescription"].startswith(description_prefix)
    ]
    return logical


def _ingress(synth: Any, group: str) -> dict[int, str]:
    """Broker-group ingress as {port: source group logical id}."""
    rules = {}
    for rule in synth.resources("AWS::EC2::SecurityGroupIngress").values():
        props = rule["Properties"]
        if props["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}:
            assert props["FromPort"] == props["ToPort"]
            assert props["IpProtocol"] == "tcp"
            rules[props["FromPort"]] = props["SourceSecurityGroupId"]["Fn::GetAtt"][0]
    return rules


@pytest.mark.parametrize(
    ("name", "kafka_ports", "monitoring_ports"),
    [
        ("dev", {9096, 9098}, {11001, 11002}),
        ("prod", {9094, 9096, 9098}, {11001, 11002}),
        ("serverless", {9098}, set()),
        ("variant", {9092, 9094, 9096, 9098}, {11001, 11002}),
    ],
)
def test_broker_group_admits_exact_ports_from_client_and_monitoring_groups(
    synth: SynthCache, name: str, kafka_ports: set[int], monitoring_ports: set[int]
) -> None:
    s = synth(name)
    brokers = _group_id(s, "MSK brokers")
    clients = _group_id(s, "Kafka clients")
    monitoring = _group_id(s, "Prometheus scrapers")
    ingress = _ingress(s, brokers)
    assert ingress == {
        **dict.fromkeys(kafka_ports, clients),
        **dict.fromkeys(monitoring_ports, monitoring),
    }
    broker_props = s.resources("AWS::EC2::SecurityGroup")[brokers]["Properties"]
    assert "SecurityGroupIngress" not in broker_props  # no inline CIDR rules


@pytest.mark.parametrize("name", ALL)
def test_no_ingress_from_anywhere(synth: SynthCache, name: str) -> None:
    s = synth(name)
    rules: list[dict[str, Any]] = [
        r["Properties"] for r in s.resources("AWS::EC2::SecurityGroupIngress").values()
    ]
    for group in s.resources("AWS::EC2::SecurityGroup").values():
        rules.extend(group["Properties"].get("SecurityGroupIngress", []))
    assert rules
    for rule in rules:
        assert rule.get("CidrIp") != "0.0.0.0/0", rule
        assert rule.get("CidrIpv6") != "::/0", rule
        if "CidrIp" in rule:  # only the profile's VPC range, literally
            assert rule["CidrIp"] == s.profile.network.cidr, rule


@pytest.mark.parametrize(
    ("name", "azs", "nats", "endpoints"),
    [("dev", 2, 0, 7), ("prod", 3, 3, 0), ("serverless", 3, 3, 0)],
)
def test_vpc_subnets_egress_and_flow_logs(
    synth: SynthCache, name: str, azs: int, nats: int, endpoints: int
) -> None:
    s = synth(name)
    assert s.one("AWS::EC2::VPC")["CidrBlock"] == s.profile.network.cidr
    subnets = [r["Properties"] for r in s.resources("AWS::EC2::Subnet").values()]
    private = [p for p in subnets if not p.get("MapPublicIpOnLaunch")]
    assert len(private) == azs
    assert {str(p["AvailabilityZone"]) for p in private} == {
        str({"Fn::Select": [i, {"Fn::GetAZs": ""}]}) for i in range(azs)
    }
    assert len(s.resources("AWS::EC2::NatGateway")) == nats
    assert len(s.resources("AWS::EC2::VPCEndpoint")) == endpoints
    assert (len(s.resources("AWS::EC2::InternetGateway")) == 1) == (nats > 0)
    flow = s.one("AWS::EC2::FlowLog")
    assert (flow["TrafficType"], flow["LogDestinationType"]) == ("ALL", "cloud-watch-logs")


def test_endpoint_only_vpc_reaches_the_services_fargate_needs(synth: SynthCache) -> None:
    s = synth("dev")
    names = set()
    for endpoint in s.resources("AWS::EC2::VPCEndpoint").values():
        service = endpoint["Properties"]["ServiceName"]
        names.add(service if isinstance(service, str) else str(service))
    assert {n.rsplit(".", 1)[-1] for n in names if isinstance(n, str)} >= {
        "api",
        "dkr",
        "logs",
        "secretsmanager",
        "kms",
        "sts",
    }
