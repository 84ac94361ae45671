"""The Glue Schema Registry construct (not yet in the stacks): resources, permissions, cdk-nag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam

from adstream.events import schemas
from adstream.infra.checks import enable_nag, read_report
from adstream.infra.schema_registry import AD_EVENT_AVRO_V2, GlueSchemaRegistry

pytestmark = pytest.mark.infra


def _synth(outdir: Path) -> tuple[dict[str, Any], GlueSchemaRegistry]:
    app = App(outdir=str(outdir))
    stack = Stack(app, "Schemas")
    producer = iam.Role(
        stack, "Producer", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
    )
    aggregator = iam.Role(
        stack, "Aggregator", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com")
    )
    registry = GlueSchemaRegistry(
        stack,
        "Glue",
        registry_name="adstream",
        topic="ad-events",
        producer_role=producer,
        aggregator_role=aggregator,
    )
    enable_nag(app)
    app.synth()
    template = json.loads((outdir / "Schemas.template.json").read_text())
    return template, registry


def _of_type(template: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == type_]


def _role_logical_id(template: dict[str, Any], name: str) -> str:
    [found] = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and k.startswith(name)
    ]
    return found


def test_a_backward_avro_schema_named_for_the_topic_with_the_apps_definition(
    tmp_path: Path,
) -> None:
    template, _ = _synth(tmp_path)
    [registry] = _of_type(template, "AWS::Glue::Registry")
    assert registry["Name"] == "adstream"
    [schema] = _of_type(template, "AWS::Glue::Schema")
    assert schema["Name"] == "ad-events-value"
    assert (schema["DataFormat"], schema["Compatibility"]) == ("AVRO", "BACKWARD")
    assert json.loads(schema["SchemaDefinition"]) == schemas.avro_schema(schemas.CURRENT_VERSION)
    assert schemas.avro_schema(2) == AD_EVENT_AVRO_V2


def test_producer_registers_on_its_schema_only_and_the_aggregator_only_reads(
    tmp_path: Path,
) -> None:
    template, _ = _synth(tmp_path)
    policies = {
        p["Roles"][0]["Ref"]: p["PolicyDocument"]["Statement"]
        for p in _of_type(template, "AWS::IAM::Policy")
    }
    producer = policies[_role_logical_id(template, "Producer")]
    aggregator = policies[_role_logical_id(template, "Aggregator")]
    scoped, anywhere = producer
    assert sorted(scoped["Action"]) == [
        "glue:GetSchemaByDefinition",
        "glue:GetSchemaVersion",
        "glue:RegisterSchemaVersion",
    ]
    resources = json.dumps(scoped["Resource"])
    assert "schema/adstream/ad-events-value" in resources
    assert "Fn::GetAtt" in resources  # the registry's own ARN
    assert (anywhere["Action"], anywhere["Resource"]) == ("glue:GetSchemaVersion", "*")
    assert aggregator == [{"Action": "glue:GetSchemaVersion", "Effect": "Allow", "Resource": "*"}]
    for statements in (producer, aggregator):
        for statement in statements:
            assert not any(a.endswith("*") for a in _actions(statement))


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_cdk_nag_passes_with_the_wildcard_acknowledged_for_a_reason(tmp_path: Path) -> None:
    _synth(tmp_path)
    open_, acked = read_report(tmp_path)
    assert open_ == []
    assert {f.rule for f in acked} == {"AwsSolutions-IAM5[Resource::*]"}
    assert all("version id" in (f.reason or "") for f in acked)


def test_the_task_environment_selects_glue(tmp_path: Path) -> None:
    _, registry = _synth(tmp_path)
    assert registry.environment("eu-west-1") == {
        "ADSTREAM_SCHEMA_REGISTRY": "glue",
        "ADSTREAM_SCHEMA_GLUE_REGISTRY_NAME": "adstream",
        "ADSTREAM_SCHEMA_GLUE_REGION": "eu-west-1",
    }
