"""The MSK Connect Iceberg sink construct, synthesized on its own stack (not yet wired into
AdstreamStack): connector, plugin, worker config, role, bucket; cdk-nag and cfn-lint clean."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint

from adstream.infra.checks import enable_nag, read_report
from adstream.infra.warehouse import (
    CONNECTOR_NAME,
    CONTROL_TOPIC,
    PluginZip,
    RawEventsWarehouse,
)

pytestmark = pytest.mark.infra

REGION = "eu-west-1"
CLUSTER_ARN = "arn:aws:kafka:eu-west-1:123456789012:cluster/adstream-dev/abcd-1234-5"
BOOTSTRAP = "b-1.adstream.kafka.eu-west-1.amazonaws.com:9098"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    outdir = tmp_path_factory.mktemp("warehouse-cdk")
    app = App(outdir=str(outdir), context={"aws:cdk:disable-stack-trace": True})
    stack = Stack(app, "warehouse")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, restrict_default_security_group=False)
    ec2.FlowLog(stack, "Flow", resource_type=ec2.FlowLogResourceType.from_vpc(vpc))
    group = ec2.SecurityGroup(stack, "Connect", vpc=vpc, allow_all_outbound=False)
    artifacts = s3.Bucket.from_bucket_name(stack, "Artifacts", "adstream-artifacts")
    RawEventsWarehouse(
        stack,
        "Warehouse",
        cluster_arn=CLUSTER_ARN,
        cluster_name="adstream-dev",
        bootstrap_brokers_iam=BOOTSTRAP,
        subnets=vpc.isolated_subnets,
        security_group=group,
        plugin=PluginZip(artifacts, "plugins/iceberg-kafka-connect-1.12.0.zip"),
    )
    enable_nag(app)
    assembly = app.synth()
    template_path = Path(assembly.get_stack_by_name("warehouse").template_full_path)
    return json.loads(template_path.read_text()), outdir


def _resources(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]


def _one(template: dict[str, Any], type_: str) -> dict[str, Any]:
    [found] = _resources(template, type_)
    return found


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _resources(template, "AWS::IAM::Policy")
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def test_the_connector_uses_iam_and_tls_and_one_task(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template, _ = synthesized
    connector = _one(template, "AWS::KafkaConnect::Connector")
    assert connector["ConnectorName"] == CONNECTOR_NAME
    assert connector["KafkaClusterClientAuthentication"] == {"AuthenticationType": "IAM"}
    assert connector["KafkaClusterEncryptionInTransit"] == {"EncryptionType": "TLS"}
    config = connector["ConnectorConfiguration"]
    assert config["tasks.max"] == "1"
    assert config["iceberg.control.topic"] == CONTROL_TOPIC
    assert config["iceberg.kafka.auto.offset.reset"] == "earliest"
    assert config["iceberg.kafka.sasl.mechanism"] == "AWS_MSK_IAM"
    assert config["iceberg.catalog.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert connector["Plugins"][0]["CustomPlugin"]["CustomPluginArn"]


def test_the_plugin_is_a_zip_in_s3_and_the_worker_reads_schemaless_json(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template, _ = synthesized
    plugin = _one(template, "AWS::KafkaConnect::CustomPlugin")
    assert plugin["ContentType"] == "ZIP"
    assert plugin["Location"]["S3Location"]["FileKey"].endswith(".zip")
    worker = _one(template, "AWS::KafkaConnect::WorkerConfiguration")
    properties = base64.b64decode(worker["PropertiesFileContent"]).decode()
    assert "value.converter.schemas.enable=false" in properties
    assert "offset.flush.interval.ms=1000" in properties


def test_the_warehouse_bucket_is_encrypted_versioned_private_and_tls_only(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template, _ = synthesized
    bucket = _one(template, "AWS::S3::Bucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    [policy] = _resources(template, "AWS::S3::BucketPolicy")
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    database = _one(template, "AWS::Glue::Database")
    assert database["DatabaseInput"]["Name"] == "adstream"


def test_the_role_may_do_what_the_sink_needs_and_nothing_broad(
    synthesized: tuple[dict[str, Any], Path],
) -> None:
    template, _ = synthesized
    [trust] = [
        statement
        for role in _resources(template, "AWS::IAM::Role")
        for statement in role["AssumeRolePolicyDocument"]["Statement"]
        if statement["Principal"] == {"Service": "kafkaconnect.amazonaws.com"}
    ]
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    statements = [s for s in _statements(template) if "kafka-cluster" in json.dumps(s)]
    actions = {action for s in statements for action in _list(s["Action"])}
    assert not any(a.endswith("*") for a in actions), actions
    text = json.dumps(statements)
    for resource in (
        "topic/adstream-dev/${ClusterUuid}/ad-events",
        "topic/adstream-dev/${ClusterUuid}/adstream-iceberg-control",
        "group/adstream-dev/${ClusterUuid}/connect-adstream-iceberg*",
        "transactional-id/adstream-dev/${ClusterUuid}/adstream-iceberg-*",
    ):
        assert resource in text, resource
    reads_source = [s for s in statements if '/ad-events"' in json.dumps(s["Resource"])]
    assert reads_source
    for statement in reads_source:
        assert "kafka-cluster:WriteData" not in _list(statement["Action"])
    assert "kafka-cluster:AlterTransactionalId" in actions


def test_cdk_nag_and_cfn_lint_are_clean(synthesized: tuple[dict[str, Any], Path]) -> None:
    template, outdir = synthesized
    open_, acknowledged = read_report(outdir)
    assert open_ == []
    assert {f.rule.split("[")[0] for f in acknowledged} <= {"AwsSolutions-IAM5", "AwsSolutions-S1"}
    matches = lint(json.dumps(template), config=ManualArgs(regions=[REGION]))
    assert [str(m) for m in matches] == []
