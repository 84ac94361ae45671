"""Fargate clients (roles, subnets, Kafka environment) and the alarms on the cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import SynthCache

pytestmark = pytest.mark.infra


def _containers(s: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for task in s.resources("AWS::ECS::TaskDefinition").values():
        (container,) = task["Properties"]["ContainerDefinitions"]
        out[container["Name"]] = {**container, "TaskRoleArn": task["Properties"]["TaskRoleArn"]}
    return out


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in container.get("Environment", [])}


@pytest.mark.parametrize("name", ["dev", "prod", "serverless"])
def test_services_use_iam_roles_and_kafka_environment(synth: SynthCache, name: str) -> None:
    s = synth(name)
    containers = _containers(s)
    assert set(containers) == {"api", "aggregator"}
    (lookup,) = s.resources("Custom::AWS")
    brokers = {"Fn::GetAtt": [lookup, "BootstrapBrokerStringSaslIam"]}
    common = {
        "ADSTREAM_KAFKA_BOOTSTRAP_SERVERS": brokers,
        "ADSTREAM_KAFKA_SECURITY": "iam",
        "ADSTREAM_KAFKA_IAM_REGION": "eu-west-1",
    }
    assert _env(containers["api"]) == {
        **common,
        "ADSTREAM_KAFKA_CLIENT_ID": "adstream-ingest",
        "ADSTREAM_API_TOPIC": "ad-events",
        "ADSTREAM_API_HOST": "0.0.0.0",  # noqa: S104 - the container listens behind the ALB
        "ADSTREAM_API_PORT": str(s.profile.clients.api_port),
        "ADSTREAM_API_AUTH": "keys",
    }
    assert _env(containers["aggregator"]) == {
        **common,
        "ADSTREAM_KAFKA_CLIENT_ID": "adstream-aggregator",
        "ADSTREAM_AGGREGATE_TOPIC": "ad-events",
        "ADSTREAM_AGGREGATE_GROUP": "adstream-aggregator",
    }
    assert containers["api"]["Command"] == ["adstream", "serve"]
    assert containers["api"]["TaskRoleArn"]["Fn::GetAtt"][0].startswith("IamProducer")
    assert containers["aggregator"]["TaskRoleArn"]["Fn::GetAtt"][0].startswith("IamAggregator")
    for container in containers.values():
        assert "Secrets" not in container


def test_scram_clients_get_credentials_as_secrets_not_environment(synth: SynthCache) -> None:
    s = synth("variant")
    containers = _containers(s)
    (lookup,) = s.resources("Custom::AWS")
    for name, user in (("api", "ingest"), ("aggregator", "aggregator")):
        env = _env(containers[name])
        assert env["ADSTREAM_KAFKA_SECURITY"] == "scram"
        assert env["ADSTREAM_KAFKA_BOOTSTRAP_SERVERS"] == {
            "Fn::GetAtt": [lookup, "BootstrapBrokerStringSaslScram"]
        }
        assert not [k for k in env if "PASSWORD" in k or "USERNAME" in k]
        secrets = {item["Name"]: item["ValueFrom"] for item in containers[name]["Secrets"]}
        assert set(secrets) == {"ADSTREAM_KAFKA_SCRAM_USERNAME", "ADSTREAM_KAFKA_SCRAM_PASSWORD"}
        (secret_id,) = [
            k
            for k, r in s.resources("AWS::SecretsManager::Secret").items()
            if r["Properties"]["Name"].endswith(f"_{user}")
        ]
        assert secret_id in str(secrets["ADSTREAM_KAFKA_SCRAM_PASSWORD"])


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_services_run_private_in_the_client_group_behind_an_internal_lb(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    services = s.resources("AWS::ECS::Service")
    assert len(services) == 2
    for service in services.values():
        vpc = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert vpc["AssignPublicIp"] == "DISABLED"
        assert [g["Fn::GetAtt"][0] for g in vpc["SecurityGroups"]] == [
            next(
                k
                for k in s.resources("AWS::EC2::SecurityGroup")
                if k.startswith("SecurityGroupsClients")
            )
        ]
        private = {k for k, r in s.resources("AWS::EC2::Subnet").items() if "private" in k}
        assert {ref["Ref"] for ref in vpc["Subnets"]} == private
    lb = s.one("AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert lb["Scheme"] == "internal"
    attrs = {a["Key"]: a["Value"] for a in lb["LoadBalancerAttributes"]}
    assert attrs["access_logs.s3.enabled"] == "true"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_alarms_per_broker_and_cluster_go_to_the_encrypted_topic(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    brokers = s.profile.cluster.broker_count
    alarms = [r["Properties"] for r in s.resources("AWS::CloudWatch::Alarm").values()]
    assert len(alarms) == 3 * brokers + 1
    (topic_id,) = s.resources("AWS::SNS::Topic")
    assert "KmsMasterKeyId" in s.template["Resources"][topic_id]["Properties"]
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        if "MetricName" in alarm:
            by_metric.setdefault(alarm["MetricName"], []).append(alarm)
        else:
            by_metric.setdefault("cpu", []).append(alarm)
    assert {a["Threshold"] for a in by_metric["KafkaDataLogsDiskUsed"]} == {85}
    assert {a["Threshold"] for a in by_metric["cpu"]} == {60}
    assert {a["Threshold"] for a in by_metric["UnderReplicatedPartitions"]} == {0}
    assert [a["Threshold"] for a in by_metric["OfflinePartitionsCount"]] == [0]
    disk_brokers = {
        d["Value"]
        for a in by_metric["KafkaDataLogsDiskUsed"]
        for d in a["Dimensions"]
        if d["Name"] == "Broker ID"
    }
    assert disk_brokers == {str(b) for b in range(1, brokers + 1)}
    cpu_metrics = {
        q["MetricStat"]["Metric"]["MetricName"]
        for a in by_metric["cpu"]
        for q in a["Metrics"]
        if "MetricStat" in q
    }
    assert cpu_metrics == {"CpuUser", "CpuSystem"}


def test_serverless_has_no_broker_alarms(synth: SynthCache) -> None:
    assert not synth("serverless").resources("AWS::CloudWatch::Alarm")
