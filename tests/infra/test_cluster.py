"""The MSK cluster: sizing, encryption, auth modes, configuration, logs, monitoring, storage."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.infra.conftest import EXISTING_CA, SynthCache

pytestmark = pytest.mark.infra


def test_configuration_properties_are_exact(synth: SynthCache) -> None:
    config = synth("prod").one("AWS::MSK::Configuration")
    lines = config["ServerProperties"].splitlines()
    assert dict(line.split("=", 1) for line in lines) == {
        "auto.create.topics.enable": "false",
        "default.replication.factor": "3",
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
        "log.retention.hours": "168",
        "allow.everyone.if.no.acl.found": "false",
    }
    assert config["KafkaVersionsList"] == ["3.8.x"]
    dev = synth("dev").one("AWS::MSK::Configuration")["ServerProperties"]
    assert "log.retention.hours=24\n" in dev


@pytest.mark.parametrize(
    ("name", "brokers", "instance", "volume", "client_broker"),
    [
        ("dev", 4, "kafka.t3.small", 20, "TLS"),
        ("prod", 3, "kafka.m7g.large", 500, "TLS"),
        ("variant", 4, "kafka.t3.small", 20, "TLS_PLAINTEXT"),
    ],
)
def test_provisioned_cluster_properties(
    synth: SynthCache, name: str, brokers: int, instance: str, volume: int, client_broker: str
) -> None:
    s = synth(name)
    cluster = s.one("AWS::MSK::Cluster")
    (cluster_id,) = s.resources("AWS::MSK::Cluster")
    assert cluster["NumberOfBrokerNodes"] == brokers
    group = cluster["BrokerNodeGroupInfo"]
    assert group["InstanceType"] == instance
    assert group["StorageInfo"] == {"EBSStorageInfo": {"VolumeSize": volume}}
    assert len(group["ClientSubnets"]) == s.profile.az_count
    assert cluster["EncryptionInfo"]["EncryptionInTransit"] == {
        "ClientBroker": client_broker,
        "InCluster": True,
    }
    key_ref = cluster["EncryptionInfo"]["EncryptionAtRest"]["DataVolumeKMSKeyId"]["Fn::GetAtt"][0]
    key = s.template["Resources"][key_ref]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert cluster["EnhancedMonitoring"] == s.profile.cluster.enhanced_monitoring
    assert cluster["OpenMonitoring"] == {
        "Prometheus": {
            "JmxExporter": {"EnabledInBroker": True},
            "NodeExporter": {"EnabledInBroker": True},
        }
    }
    logs = cluster["LoggingInfo"]["BrokerLogs"]["CloudWatchLogs"]
    assert logs["Enabled"] is True
    assert s.template["Resources"][logs["LogGroup"]["Ref"]]["Type"] == "AWS::Logs::LogGroup"
    (target,) = [
        r["Properties"]
        for r in s.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
        if r["Properties"]["ServiceNamespace"] == "kafka"
    ]
    assert target["ResourceId"] == {"Ref": cluster_id}
    assert target["ScalableDimension"] == "kafka:broker-storage:VolumeSize"
    assert target["MaxCapacity"] == s.profile.cluster.ebs_max_volume_gb
    (policy,) = [
        r["Properties"]
        for r in s.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if r["Properties"]["PolicyName"].endswith("-storage")
    ]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["DisableScaleIn"] is True
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "KafkaBrokerStorageUtilization"
    }


def test_prod_enables_every_auth_mode_with_a_created_private_ca(synth: SynthCache) -> None:
    s = synth("prod")
    auth = s.one("AWS::MSK::Cluster")["ClientAuthentication"]
    (ca_id,) = s.resources("AWS::ACMPCA::CertificateAuthority")
    assert auth == {
        "Sasl": {"Iam": {"Enabled": True}, "Scram": {"Enabled": True}},
        "Tls": {"Enabled": True, "CertificateAuthorityArnList": [{"Fn::GetAtt": [ca_id, "Arn"]}]},
        "Unauthenticated": {"Enabled": False},
    }
    (activation_id,) = s.resources("AWS::ACMPCA::CertificateAuthorityActivation")
    (cluster,) = s.resources("AWS::MSK::Cluster").values()
    assert activation_id in cluster["DependsOn"]  # the CA is active before MSK uses it


def test_existing_private_ca_is_used_not_created(synth: SynthCache) -> None:
    s = synth("variant")
    auth = s.one("AWS::MSK::Cluster")["ClientAuthentication"]
    assert auth["Tls"] == {"Enabled": True, "CertificateAuthorityArnList": [EXISTING_CA]}
    assert auth["Unauthenticated"] == {"Enabled": True}  # the plaintext listener
    assert not s.resources("AWS::ACMPCA::CertificateAuthority")


def test_dev_has_no_tls_client_auth(synth: SynthCache) -> None:
    auth = synth("dev").one("AWS::MSK::Cluster")["ClientAuthentication"]
    assert "Tls" not in auth
    assert auth["Sasl"] == {"Iam": {"Enabled": True}, "Scram": {"Enabled": True}}


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_scram_secrets_are_msk_named_cmk_encrypted_and_associated(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    secrets = {
        k: r
        for k, r in s.resources("AWS::SecretsManager::Secret").items()
        if "Name" in r["Properties"]  # not the database's (tests/infra/test_database.py)
    }
    names = sorted(r["Properties"]["Name"] for r in secrets.values())
    cluster = s.profile.cluster.name
    assert names == [
        f"AmazonMSK_{cluster}_adstream-aggregator",
        f"AmazonMSK_{cluster}_adstream-api",
    ]
    for secret in secrets.values():
        key = secret["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
        assert s.template["Resources"][key]["Properties"]["EnableKeyRotation"] is True
    batch = s.one("AWS::MSK::BatchScramSecret")
    assert sorted(ref["Ref"] for ref in batch["SecretArnList"]) == sorted(secrets)
    (cluster_id,) = s.resources("AWS::MSK::Cluster")
    assert batch["ClusterArn"] == {"Ref": cluster_id}


def test_serverless_cluster_is_iam_only(synth: SynthCache) -> None:
    s = synth("serverless")
    cluster = s.one("AWS::MSK::ServerlessCluster")
    assert cluster["ClientAuthentication"] == {"Sasl": {"Iam": {"Enabled": True}}}
    (vpc,) = cluster["VpcConfigs"]
    assert len(vpc["SubnetIds"]) == 3
    for absent in (
        "AWS::MSK::Cluster",
        "AWS::MSK::Configuration",
        "AWS::MSK::BatchScramSecret",
        "AWS::ACMPCA::CertificateAuthority",
    ):
        assert not s.resources(absent), absent
    secrets = s.resources("AWS::SecretsManager::Secret")
    assert not [r for r in secrets.values() if "AmazonMSK_" in str(r)]  # no SCRAM users


def test_cluster_follows_the_configurations_latest_revision(synth: SynthCache) -> None:
    """A changed server property makes a new revision; a fixed `Revision: 1` ignored it."""
    s = synth("dev")
    (config_id,) = s.resources("AWS::MSK::Configuration")
    info = s.one("AWS::MSK::Cluster")["ConfigurationInfo"]
    assert info == {
        "Arn": {"Fn::GetAtt": [config_id, "Arn"]},
        "Revision": {"Fn::GetAtt": [config_id, "LatestRevision.Revision"]},
    }


def _create_only(type_: str, region: str) -> list[tuple[str, ...]]:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, type_).schema
    return [
        tuple(p.removeprefix("/properties/").split("/"))
        for p in schema.get("createOnlyProperties", [])
    ]


def _at(properties: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = properties
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def test_kafka_version_bump_replaces_only_the_configuration_under_a_new_name(
    synth: SynthCache,
) -> None:
    """KafkaVersionsList is create-only: the bump replaces the configuration, which fails
    if the replacement keeps the old name. The cluster itself must upgrade in place."""
    before, after = synth("dev"), synth("dev-next-kafka")
    region = before.profile.region
    replaced = set()
    for logical, resource in after.template["Resources"].items():
        old = before.template["Resources"].get(logical)
        if old is None or old["Type"] != resource["Type"] or resource["Type"].startswith("Custom"):
            continue
        paths = _create_only(resource["Type"], region)
        changed = [
            p
            for p in paths
            if _at(old.get("Properties", {}), p) != _at(resource.get("Properties", {}), p)
        ]
        if changed:
            replaced.add(resource["Type"])
            name = ("Name",) if resource["Type"] == "AWS::MSK::Configuration" else None
            assert name in changed, f"{logical} is replaced under its old name: {changed}"
    assert replaced == {"AWS::MSK::Configuration"}
    old_config, new_config = (x.one("AWS::MSK::Configuration") for x in (before, after))
    assert (old_config["Name"], new_config["Name"]) == ("adstream-dev-3-8-x", "adstream-dev-3-9-x")
    assert after.one("AWS::MSK::Cluster")["KafkaVersion"] == "3.9.x"
    assert after.one("AWS::MSK::Cluster")["ClusterName"] == "adstream-dev"
