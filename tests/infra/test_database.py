"""The count database (RDS / Aurora Serverless v2), its wiring into both services, their health
checks, the API's scaling and the aggregator's bound by the topic's partitions."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App

from adstream.infra.kafka_apply import desired_state_files, topic_partitions
from adstream.infra.profiles import parse_profile
from adstream.infra.stacks import AdstreamStack, AggregatorCountError, check_aggregator_count
from tests.infra.conftest import SynthCache, shipped_data

pytestmark = pytest.mark.infra

LIBPQ = {
    "PGHOST": "host",
    "PGUSER": "username",
    "PGPASSWORD": "password",
    "PGDATABASE": "dbname",
}


def _containers(s: Any) -> dict[str, dict[str, Any]]:
    out = {}
    for task in s.resources("AWS::ECS::TaskDefinition").values():
        (container,) = task["Properties"]["ContainerDefinitions"]
        out[container["Name"]] = container
    return out


def _group_id(s: Any, construct_path_part: str) -> str:
    (found,) = [k for k in s.resources("AWS::EC2::SecurityGroup") if construct_path_part in k]
    return found


def _database(s: Any) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the RDS instance or the Aurora cluster."""
    found = s.resources("AWS::RDS::DBCluster") or s.resources("AWS::RDS::DBInstance")
    ((logical_id, resource),) = found.items()
    return logical_id, resource


@pytest.mark.parametrize(
    ("name", "multi_az", "protected", "backups"),
    [("dev", False, False, 1), ("prod", True, True, 14)],
)
def test_rds_instance_per_profile(
    synth: SynthCache, name: str, multi_az: bool, protected: bool, backups: int
) -> None:
    s = synth(name)
    assert not s.resources("AWS::RDS::DBCluster")
    logical_id, resource = _database(s)
    db = resource["Properties"]
    assert db["Engine"] == "postgres"
    assert db["DBInstanceClass"] == f"db.{s.profile.database.instance_type}"
    assert db["MultiAZ"] is multi_az
    assert db["DeletionProtection"] is protected
    assert db["BackupRetentionPeriod"] == backups
    assert db["PubliclyAccessible"] is False
    assert resource["DeletionPolicy"] == "Snapshot"
    assert db["StorageEncrypted"] is True
    key = db["KmsKeyId"]["Fn::GetAtt"][0]
    assert s.template["Resources"][key]["Type"] == "AWS::KMS::Key"
    assert s.template["Resources"][key]["Properties"]["EnableKeyRotation"] is True
    assert db["VPCSecurityGroups"] == [{"Fn::GetAtt": [_group_id(s, "DatabaseSg"), "GroupId"]}]
    subnet_group = s.template["Resources"][db["DBSubnetGroupName"]["Ref"]]["Properties"]
    private = {k for k, r in s.resources("AWS::EC2::Subnet").items() if "private" in k}
    assert {ref["Ref"] for ref in subnet_group["SubnetIds"]} == private
    parameters = s.template["Resources"][db["DBParameterGroupName"]["Ref"]]["Properties"]
    assert parameters["Parameters"] == {"rds.force_ssl": "1"}
    assert logical_id


def test_aurora_serverless_v2_for_the_serverless_profile(synth: SynthCache) -> None:
    s = synth("serverless")
    _, resource = _database(s)
    db = resource["Properties"]
    assert db["Engine"] == "aurora-postgresql"
    assert db["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4}
    assert db["StorageEncrypted"] is True
    assert s.template["Resources"][db["KmsKeyId"]["Fn::GetAtt"][0]]["Type"] == "AWS::KMS::Key"
    assert db["VpcSecurityGroupIds"] == [{"Fn::GetAtt": [_group_id(s, "DatabaseSg"), "GroupId"]}]
    (writer,) = s.resources("AWS::RDS::DBInstance").values()
    assert writer["Properties"]["DBInstanceClass"] == "db.serverless"
    parameters = s.template["Resources"][db["DBClusterParameterGroupName"]["Ref"]]
    assert parameters["Properties"]["Parameters"] == {"rds.force_ssl": "1"}


@pytest.mark.parametrize("name", ["dev", "prod", "serverless"])
def test_postgres_only_from_the_client_group_and_the_rotation(synth: SynthCache, name: str) -> None:
    s = synth(name)
    db_sg = _group_id(s, "DatabaseSg")
    db_id, _ = _database(s)
    group = s.template["Resources"][db_sg]["Properties"]
    assert "SecurityGroupIngress" not in group  # no inline (CIDR) rules
    rules = [
        r["Properties"]
        for r in s.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [db_sg, "GroupId"]}
    ]
    sources = {rule["SourceSecurityGroupId"]["Fn::GetAtt"][0]: rule for rule in rules}
    assert len(rules) == len(sources) == 2
    clients = sources[_group_id(s, "SecurityGroupsClients")]
    assert (clients["IpProtocol"], clients["FromPort"], clients["ToPort"]) == ("tcp", 5432, 5432)
    rotation = sources[_group_id(s, "DatabaseRotationSg")]
    port = {"Fn::GetAtt": [db_id, "Endpoint.Port"]}
    assert (rotation["FromPort"], rotation["ToPort"]) == (port, port)  # 5432, by the database
    assert all("CidrIp" not in rule for rule in rules)


@pytest.mark.parametrize("name", ["dev", "serverless"])
def test_credentials_are_rotated_and_reach_both_services_as_secrets(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    (attachment,) = s.resources("AWS::SecretsManager::SecretTargetAttachment")
    secret_id = s.template["Resources"][attachment]["Properties"]["SecretId"]["Ref"]
    assert s.template["Resources"][secret_id]["DeletionPolicy"] == "Retain"  # with the snapshot
    schedule = s.one("AWS::SecretsManager::RotationSchedule")
    assert schedule["SecretId"] == {"Ref": attachment}
    assert schedule["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
    (rotation,) = s.resources("AWS::Serverless::Application").values()
    params = rotation["Properties"]["Parameters"]
    assert params["vpcSecurityGroupIds"] == {
        "Fn::GetAtt": [_group_id(s, "DatabaseRotationSg"), "GroupId"]
    }
    containers = _containers(s)
    for service, url_env in (
        ("api", "ADSTREAM_API_DB_URL"),
        ("aggregator", "ADSTREAM_AGGREGATE_DB"),
    ):
        container = containers[service]
        env = {item["Name"]: item["Value"] for item in container["Environment"]}
        assert env[url_env] == "postgresql://"  # libpq completes it from the PG* variables
        assert env["PGSSLMODE"] == "verify-full"
        db_id, _ = _database(s)
        assert env["PGPORT"] == {"Fn::GetAtt": [db_id, "Endpoint.Port"]}
        assert not {"PGPASSWORD", "PGUSER", "PGHOST"} & set(env)
        secrets = {item["Name"]: item["ValueFrom"] for item in container["Secrets"]}
        for variable, field in LIBPQ.items():
            assert secrets[variable] == {"Fn::Join": ["", [{"Ref": attachment}, f":{field}::"]]}
    assert "Secrets" not in containers["apply"]  # the Kafka apply never sees the database


def test_an_existing_database_creates_none(synth: SynthCache) -> None:
    s = synth("complete")
    for absent in ("AWS::RDS::DBInstance", "AWS::RDS::DBCluster", "AWS::Serverless::Application"):
        assert not s.resources(absent), absent
    assert "Transform" not in s.template


@pytest.mark.parametrize("name", ["dev", "prod", "serverless"])
def test_load_balancer_probes_readyz_and_the_container_healthz(
    synth: SynthCache, name: str
) -> None:
    """Ready (the producer reaches the topic) decides where requests go; liveness (no fatal
    producer error) decides when ECS replaces a task, so a Kafka outage replaces none."""
    s = synth(name)
    target_group = s.one("AWS::ElasticLoadBalancingV2::TargetGroup")
    assert target_group["HealthCheckPath"] == "/readyz"
    containers = _containers(s)
    check = containers["api"]["HealthCheck"]
    command = check["Command"]
    assert command[:3] == ["CMD", "python", "-c"]
    assert f"http://127.0.0.1:{s.profile.clients.api_port}/healthz" in command[3]
    assert check["StartPeriod"] > 0
    assert "HealthCheck" not in containers["aggregator"]  # it serves no HTTP


def test_health_check_command_runs(tmp_path: Any) -> None:
    """The probe is valid Python that fails when nothing answers (the image has no curl)."""
    import socket
    import subprocess
    import sys

    from adstream.infra.clients import health_check_command

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, python, flag, script = health_check_command(port, "/readyz")
    assert (python, flag) == ("python", "-c")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert done.returncode != 0
    assert b"SyntaxError" not in done.stderr
    assert b"ConnectionRefused" in done.stderr


@pytest.mark.parametrize(("name", "low", "high", "requests"), [("prod", 3, 12, 6000)])
def test_api_scales_on_requests_and_cpu_within_the_profile(
    synth: SynthCache, name: str, low: int, high: int, requests: int
) -> None:
    s = synth(name)
    (target_id, target) = next(
        (k, r["Properties"])
        for k, r in s.resources("AWS::ApplicationAutoScaling::ScalableTarget").items()
        if r["Properties"]["ServiceNamespace"] == "ecs"
    )
    assert (target["MinCapacity"], target["MaxCapacity"]) == (low, high)
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"
    api_service = next(k for k in s.resources("AWS::ECS::Service") if k.startswith("ClientsApi"))
    assert api_service in str(target["ResourceId"])
    policies = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"][
            "PredefinedMetricSpecification"
        ]["PredefinedMetricType"]: p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for p in s.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"]["ScalingTargetId"] == {"Ref": target_id}
    }
    assert set(policies) == {"ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"}
    assert policies["ALBRequestCountPerTarget"]["TargetValue"] == requests
    assert policies["ECSServiceAverageCPUUtilization"]["TargetValue"] == 60


def test_aggregator_count_is_bounded_by_the_partitions() -> None:
    profile = parse_profile(shipped_data("dev"), "dev")
    assert topic_partitions(desired_state_files(profile), "ad-events") == 6
    check_aggregator_count(profile, 6)
    data = shipped_data("dev")
    data["clients"]["aggregator"]["desired_count"] = 7
    too_many = parse_profile(data, "too-many")
    with pytest.raises(AggregatorCountError, match="7 tasks for 6 partitions of ad-events"):
        check_aggregator_count(too_many, 6)
    check_aggregator_count(too_many, None)  # unknown without the deploy-time apply
    with pytest.raises(AggregatorCountError):
        AdstreamStack(App(), profile=too_many)  # the stack refuses it, not only this helper


@pytest.mark.parametrize("name", ["dev", "serverless"])
def test_services_start_after_the_database_and_its_secret(synth: SynthCache, name: str) -> None:
    s = synth(name)
    db_id, _ = _database(s)
    (attachment,) = s.resources("AWS::SecretsManager::SecretTargetAttachment")
    for service in s.resources("AWS::ECS::Service"):
        assert {db_id, attachment} <= s.dependencies(service), service
