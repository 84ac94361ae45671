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
    assert set(containers) == {"api", "aggregator", "apply"}
    (lookup,) = s.resources("Custom::AWS")
    (db_id,) = s.resources("AWS::RDS::DBCluster") or s.resources("AWS::RDS::DBInstance")
    brokers = {"Fn::GetAtt": [lookup, "BootstrapBrokerStringSaslIam"]}
    common = {
        "ADSTREAM_KAFKA_BOOTSTRAP_SERVERS": brokers,
        "ADSTREAM_KAFKA_SECURITY": "iam",
        "ADSTREAM_KAFKA_IAM_REGION": "eu-west-1",
        "ADSTREAM_DEPLOYED": "true",
        **REQUIREMENTS[name],
        **DATABASE_ENV,
    }
    port = {"Fn::GetAtt": [db_id, "Endpoint.Port"]}
    api_env = _env(containers["api"])
    assert "rediss://" in str(api_env.pop("ADSTREAM_API_LIMITS_URL"))  # test_limits_cache.py
    assert api_env.pop("ADSTREAM_API_LIMITS_CLUSTER") == "true"
    assert api_env == {
        **common,
        "ADSTREAM_KAFKA_CLIENT_ID": "adstream-ingest",
        "ADSTREAM_API_TOPIC": "ad-events",
        "ADSTREAM_API_HOST": "0.0.0.0",  # noqa: S104 - the container listens behind the ALB
        "ADSTREAM_API_PORT": str(s.profile.clients.api_port),
        "ADSTREAM_API_AUTH": "keys",
        "ADSTREAM_API_DB_URL": "postgresql://",
        "PGPORT": port,
    }
    assert _env(containers["aggregator"]) == {
        **common,
        "ADSTREAM_KAFKA_CLIENT_ID": "adstream-aggregator",
        "ADSTREAM_AGGREGATE_TOPIC": "ad-events",
        "ADSTREAM_AGGREGATE_GROUP": "adstream-aggregator",
        "ADSTREAM_AGGREGATE_DB": "postgresql://",
        "PGPORT": port,
    }
    assert containers["api"]["EntryPoint"] == ["adstream"]
    assert containers["api"]["Command"] == ["serve"]
    assert containers["aggregator"]["Command"] == ["aggregate"]
    assert containers["api"]["TaskRoleArn"]["Fn::GetAtt"][0].startswith("IamProducer")
    assert containers["aggregator"]["TaskRoleArn"]["Fn::GetAtt"][0].startswith("IamAggregator")
    for service in ("api", "aggregator"):  # the database's (+ the API's keys), no Kafka's
        extra = API_KEY_SECRETS | LIMITS_SECRETS if service == "api" else set()
        assert {item["Name"] for item in containers[service]["Secrets"]} == {
            *LIBPQ_FIELDS,
            *extra,
        }


PROVISIONED = {
    "ADSTREAM_REQUIRE_REPLICATION_FACTOR": "3",
    "ADSTREAM_REQUIRE_MIN_INSYNC_REPLICAS": "2",
}
REQUIREMENTS = {"dev": PROVISIONED, "prod": PROVISIONED, "serverless": {}}
"""MSK Serverless fixes replication 3 and min.insync 2 itself: only existence is checked."""
DATABASE_ENV = {"PGSSLMODE": "verify-full"}
LIBPQ_FIELDS = ("PGHOST", "PGUSER", "PGPASSWORD", "PGDATABASE")
API_KEY_SECRETS = {"ADSTREAM_API_PEPPER", "ADSTREAM_API_KEYS_JSON"}
LIMITS_SECRETS = {"ADSTREAM_API_LIMITS_USERNAME", "ADSTREAM_API_LIMITS_PASSWORD"}


def test_scram_clients_get_credentials_as_secrets_not_environment(synth: SynthCache) -> None:
    s = synth("variant")
    containers = _containers(s)
    (lookup,) = s.resources("Custom::AWS")
    for name, user in (("api", "adstream-api"), ("aggregator", "adstream-aggregator")):
        env = _env(containers[name])
        assert env["ADSTREAM_KAFKA_SECURITY"] == "scram"
        assert env["ADSTREAM_KAFKA_BOOTSTRAP_SERVERS"] == {
            "Fn::GetAtt": [lookup, "BootstrapBrokerStringSaslScram"]
        }
        assert not [k for k in env if "PASSWORD" in k or "USERNAME" in k]
        secrets = {item["Name"]: item["ValueFrom"] for item in containers[name]["Secrets"]}
        assert set(secrets) == {
            "ADSTREAM_KAFKA_SCRAM_USERNAME",
            "ADSTREAM_KAFKA_SCRAM_PASSWORD",
            *LIBPQ_FIELDS,
            *(API_KEY_SECRETS if name == "api" else ()),
        }
        (secret_id,) = [
            k
            for k, r in s.resources("AWS::SecretsManager::Secret").items()
            if r["Properties"].get("Name", "").endswith(f"_{user}")
        ]
        assert secret_id in str(secrets["ADSTREAM_KAFKA_SCRAM_PASSWORD"])


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_services_run_private_in_the_client_group_behind_an_internal_lb(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    services = s.resources("AWS::ECS::Service")
    assert len(services) == 2
    groups = s.resources("AWS::EC2::SecurityGroup")
    clients = next(k for k in groups if k.startswith("SecurityGroupsClients"))
    limits = next(k for k in groups if k.startswith("ApiLimitsApiTasks"))
    for service in services.values():
        vpc = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert vpc["AssignPublicIp"] == "DISABLED"
        is_api = "ApiTask" in service["Properties"]["TaskDefinition"]["Ref"]
        # The API tasks also in the group the rate-limit cache admits (test_limits_cache.py).
        assert [g["Fn::GetAtt"][0] for g in vpc["SecurityGroups"]] == (
            [clients, limits] if is_api else [clients]
        )
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


def _group(s: Any, description_prefix: str) -> str:
    (logical,) = [
        k
        for k, r in s.resources("AWS::EC2::SecurityGroup").items()
        if r["Properties"]["GroupDescription"].startswith(description_prefix)
    ]
    return str(logical)


@pytest.mark.parametrize(
    ("name", "port", "protocol"), [("dev", 80, "HTTP"), ("complete", 443, "HTTPS")]
)
def test_listener_is_https_with_the_profiles_certificate(
    synth: SynthCache, name: str, port: int, protocol: str
) -> None:
    s = synth(name)
    listener = s.one("AWS::ElasticLoadBalancingV2::Listener")
    assert (listener["Port"], listener["Protocol"]) == (port, protocol)
    if protocol == "HTTPS":
        assert listener["Certificates"] == [{"CertificateArn": s.profile.clients.certificate_arn}]
        assert listener["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    lb_group = _group(s, "internal load balancer")
    ports = {
        (r["Properties"]["FromPort"], r["Properties"]["CidrIp"])
        for r in s.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [lb_group, "GroupId"]}
    } | {
        (r["FromPort"], r["CidrIp"])
        for r in s.template["Resources"][lb_group]["Properties"].get("SecurityGroupIngress", [])
    }
    assert ports == {(port, s.profile.network.cidr)}
    assert s.template["Outputs"]["IngestApiUrl"]["Value"]["Fn::Join"][1][0] == (
        f"{protocol.lower()}://"
    )


@pytest.mark.parametrize("name", ["dev", "complete"])
def test_metrics_are_not_served_through_the_load_balancer(synth: SynthCache, name: str) -> None:
    """The API answers /metrics on its port; the ALB answers it with 404 before forwarding,
    and only the monitoring group reaches the tasks' port directly."""
    s = synth(name)
    (listener_id,) = s.resources("AWS::ElasticLoadBalancingV2::Listener")
    (rule,) = [
        r["Properties"] for r in s.resources("AWS::ElasticLoadBalancingV2::ListenerRule").values()
    ]
    assert rule["ListenerArn"] == {"Ref": listener_id}
    assert rule["Priority"] == 1
    assert rule["Conditions"] == [
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/metrics", "/metrics/*"]}}
    ]
    assert [a["Type"] for a in rule["Actions"]] == ["fixed-response"]
    assert rule["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    clients, monitoring = _group(s, "Kafka clients"), _group(s, "Prometheus scrapers")
    sources = {
        r["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]
        for r in s.resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [clients, "GroupId"]}
        and r["Properties"]["FromPort"] == s.profile.clients.api_port
    }
    assert sources == {monitoring, _group(s, "internal load balancer")}


@pytest.mark.parametrize("name", ["dev", "prod", "serverless"])
def test_default_security_group_is_emptied(synth: SynthCache, name: str) -> None:
    s = synth(name)
    (restrict,) = s.resources("Custom::VpcRestrictDefaultSG").values()
    (vpc,) = s.resources("AWS::EC2::VPC")
    assert restrict["Properties"]["DefaultSecurityGroupId"] == {
        "Fn::GetAtt": [vpc, "DefaultSecurityGroup"]
    }


def test_alarm_topic_key_admits_only_this_accounts_cloudwatch(synth: SynthCache) -> None:
    s = synth("prod")
    (topic,) = s.resources("AWS::SNS::Topic").values()
    key = s.template["Resources"][topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]]
    (statement,) = [
        st
        for st in key["Properties"]["KeyPolicy"]["Statement"]
        if st.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }


@pytest.mark.parametrize(("name", "warned"), [("dev", True), ("complete", False)])
def test_synth_says_when_alarms_reach_nobody(synth: SynthCache, name: str, warned: bool) -> None:
    s = synth(name)
    subscriptions = s.resources("AWS::SNS::Subscription")
    assert bool(subscriptions) is not warned
    assert any("alarms.email is not set" in w for w in s.result.warnings) is warned


def _image(s: Any, container: str) -> Any:
    return _containers(s)[container]["Image"]


def test_ecr_images_are_pinned_by_digest(synth: SynthCache) -> None:
    s = synth("complete")
    for container in ("api", "aggregator", "apply"):
        image = _image(s, container)
        assert image["Fn::Join"][1][-1].endswith(f"/adstream@{s.profile.clients.image.tag}")


def test_asset_images_are_tagged_by_content_so_a_new_build_rolls_out(
    synth: SynthCache, tmp_path: Any
) -> None:
    s = synth("asset")
    image = _image(s, "api")["Fn::Sub"]
    assert "cdk-hnb659fds-container-assets" in image
    tag = image.rsplit(":", 1)[-1]
    assert {str(_image(s, c)) for c in ("api", "aggregator", "apply")} == {str(_image(s, "api"))}
    from adstream.infra.app import synthesize
    from tests.infra.conftest import asset_profile

    rebuilt = synthesize(asset_profile(tmp_path, marker="2"), tmp_path / "out", strict=False)
    (template,) = rebuilt.templates
    assert tag not in template.read_text()


def test_a_missing_build_context_is_named_at_synth(tmp_path: Any) -> None:
    from adstream.infra.app import synthesize
    from adstream.infra.profiles import ProfileError, parse_profile
    from tests.infra.conftest import shipped_data

    data = shipped_data("serverless")
    data["clients"]["image"] = {"source": "asset", "context": str(tmp_path / "nothing")}
    with pytest.raises(ProfileError, match="no Containerfile in the build context") as info:
        synthesize(parse_profile(data), tmp_path / "out")
    assert "`make image-context` writes build/image" in str(info.value)


def test_make_image_context_prepares_the_profiles_default_context() -> None:
    from adstream.infra.profiles import PROJECT_ROOT, ImageProfile

    makefile = (PROJECT_ROOT / "Makefile").read_text()
    target = makefile.split("\nimage-context:", 1)[1].split("\n\n", 1)[0]
    default = ImageProfile().context
    assert f"scripts/build-image.sh --context-only {default}" in target


def test_services_read_the_count_database_from_its_secret(synth: SynthCache) -> None:
    s = synth("complete")
    containers = _containers(s)
    arn = s.profile.clients.database_secret_arn
    api_secrets = [
        item
        for item in containers["api"]["Secrets"]
        if item["Name"] not in API_KEY_SECRETS | LIMITS_SECRETS
    ]
    assert api_secrets == [{"Name": "ADSTREAM_API_DB_URL", "ValueFrom": arn}]
    assert containers["aggregator"]["Secrets"] == [
        {"Name": "ADSTREAM_AGGREGATE_DB", "ValueFrom": arn}
    ]
    counts = {
        r["Properties"]["TaskDefinition"]["Ref"]: r["Properties"]["DesiredCount"]
        for r in s.resources("AWS::ECS::Service").values()
    }
    assert sorted(counts.values()) == [1, 1]
