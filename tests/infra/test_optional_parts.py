"""The profile's optional parts in the stack: the Glue schema registry (`schema.format: avro`,
the `avro` variant) and the MSK Connect Iceberg warehouse (`warehouse.enabled`, the `lake`
variant). Off in the shipped profiles; the cdk-nag/cfn-lint matrix (test_checks.py) covers
both variants. The two exclude each other: the sink reads schemaless JSON only."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from adstream.infra.app import synthesize
from adstream.infra.clients import EXTRAS_ARG, ImageContextError, check_image_extras
from adstream.infra.profiles import PROJECT_ROOT, ProfileError, parse_profile
from adstream.infra.stacks import PluginZipError
from adstream.infra.warehouse import CONNECTOR_NAME
from tests.infra.conftest import Synth, SynthCache, shipped_data

pytestmark = pytest.mark.infra

SHIPPED = ("dev", "prod", "serverless")
OPTIONAL_TYPES = (
    "AWS::Glue::Registry",
    "AWS::Glue::Schema",
    "AWS::Glue::Database",
    "AWS::KafkaConnect::Connector",
    "AWS::KafkaConnect::CustomPlugin",
    "AWS::KafkaConnect::WorkerConfiguration",
)
SCHEMA_ENV = {
    "ADSTREAM_SCHEMA_FORMAT": "avro",
    "ADSTREAM_SCHEMA_REGISTRY": "glue",
    "ADSTREAM_SCHEMA_GLUE_REGISTRY_NAME": "adstream",
    "ADSTREAM_SCHEMA_GLUE_REGION": "eu-west-1",
}


def _containers(s: Synth) -> dict[str, dict[str, Any]]:
    """Container definition by container name (api, aggregator, the apply's task...)."""
    return {
        c["Name"]: c
        for task in s.resources("AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
    }


def _environment(container: dict[str, Any]) -> dict[str, Any]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def _only(s: Synth, type_: str) -> str:
    (logical,) = s.resources(type_)
    return logical


def _interface_endpoints(s: Synth) -> set[str]:
    return {
        json.dumps(r["Properties"]["ServiceName"])
        for r in s.resources("AWS::EC2::VPCEndpoint").values()
        if r["Properties"].get("VpcEndpointType") == "Interface"
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_create_neither_registry_nor_warehouse(
    synth: SynthCache, name: str
) -> None:
    s = synth(name)
    assert not s.profile.schema_.created
    assert not s.profile.warehouse.enabled
    for type_ in OPTIONAL_TYPES:
        assert s.resources(type_) == {}, type_
    for container in _containers(s).values():
        assert not any(k.startswith("ADSTREAM_SCHEMA_") for k in _environment(container))


def test_avro_profile_gives_both_services_the_glue_registry(synth: SynthCache) -> None:
    s = synth("avro")
    registry = s.one("AWS::Glue::Registry")
    schema = s.one("AWS::Glue::Schema")
    assert registry["Name"] == "adstream"
    assert (schema["Name"], schema["DataFormat"]) == ("ad-events-value", "AVRO")
    containers = _containers(s)
    for name in ("api", "aggregator"):
        env = _environment(containers[name])
        assert {k: env.get(k) for k in SCHEMA_ENV} == SCHEMA_ENV, name


def _role_of(s: Synth, container: str) -> str:
    (task,) = [
        r
        for r in s.resources("AWS::ECS::TaskDefinition").values()
        if r["Properties"]["ContainerDefinitions"][0]["Name"] == container
    ]
    role: str = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    return role


def _glue_actions(s: Synth, role: str) -> set[str]:
    found: set[str] = set()
    for policy in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"].get("Roles", []):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            found.update(a for a in ([actions] if isinstance(actions, str) else actions))
    return {a for a in found if a.startswith("glue:")}


def test_glue_grants_producer_registers_aggregator_reads(synth: SynthCache) -> None:
    s = synth("avro")
    assert _glue_actions(s, _role_of(s, "api")) == {
        "glue:GetSchemaByDefinition",
        "glue:RegisterSchemaVersion",
        "glue:GetSchemaVersion",
    }
    assert _glue_actions(s, _role_of(s, "aggregator")) == {"glue:GetSchemaVersion"}
    assert _glue_actions(synth("dev"), _role_of(synth("dev"), "api")) == set()


def test_services_start_after_the_schema_and_its_grants(synth: SynthCache) -> None:
    s = synth("avro")
    schema = _only(s, "AWS::Glue::Schema")
    grants = {k for k in s.resources("AWS::IAM::Policy") if "SchemaAccess" in k}
    assert len(grants) == 2
    for service in s.resources("AWS::ECS::Service"):
        assert {schema, *grants} <= s.dependencies(service), service


def test_connector_waits_for_cluster_and_apply_and_uses_iam_brokers(synth: SynthCache) -> None:
    s = synth("lake")
    connector_id = _only(s, "AWS::KafkaConnect::Connector")
    direct = s.direct_dependencies(connector_id)
    assert _only(s, "AWS::MSK::Cluster") in direct
    assert _only(s, "Custom::KafkaApply") in direct
    connector = s.template["Resources"][connector_id]["Properties"]
    assert connector["ConnectorName"] == CONNECTOR_NAME
    assert connector["KafkaClusterClientAuthentication"] == {"AuthenticationType": "IAM"}
    config = connector["ConnectorConfiguration"]
    assert config["iceberg.control.commit.interval-ms"] == "60000"
    # The IAM listener's brokers (port 9098), as returned by the bootstrap lookup.
    brokers = json.dumps(connector["KafkaCluster"]["ApacheKafkaCluster"]["BootstrapServers"])
    assert "BootstrapBrokerStringSaslIam" in brokers
    # The plugin is the profile's ZIP, uploaded as a CDK asset.
    location = s.one("AWS::KafkaConnect::CustomPlugin")["Location"]["S3Location"]
    assert location["FileKey"].endswith(".zip")
    staged = {a["path"] for a in _file_assets(s)}
    assert any(p.endswith(".zip") for p in staged), staged


def _file_assets(s: Synth) -> list[dict[str, Any]]:
    (manifest,) = s.result.outdir.glob("*.assets.json")
    files: dict[str, Any] = json.loads(manifest.read_text())["files"]
    return [f["source"] for f in files.values()]


@pytest.mark.parametrize("name", ["avro", "lake"])
def test_glue_endpoint_only_where_glue_is_used_without_nat(synth: SynthCache, name: str) -> None:
    assert any("glue" in e for e in _interface_endpoints(synth(name)))
    assert not any("glue" in e for e in _interface_endpoints(synth("dev")))


def test_each_variant_creates_only_its_own_part(synth: SynthCache) -> None:
    assert synth("avro").resources("AWS::KafkaConnect::Connector") == {}
    assert synth("lake").resources("AWS::Glue::Registry") == {}
    env = _environment(_containers(synth("lake"))["api"])
    assert not any(k.startswith("ADSTREAM_SCHEMA_") for k in env)


def _dev() -> dict[str, Any]:
    return shipped_data("dev")


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ProfileError) as info:
        parse_profile(data, "test")
    return str(info.value)


def test_warehouse_needs_iam_on_the_cluster() -> None:
    data = _dev()
    data["warehouse"] = {"enabled": True, "plugin_zip": "x.zip"}
    data["cluster"]["auth"]["iam"] = False
    data["clients"]["auth"] = "scram"
    assert (
        "warehouse.enabled: MSK Connect authenticates to the cluster with IAM only, but "
        "cluster.auth.iam is false"
    ) in _error(data)


def test_warehouse_needs_a_plugin_zip_and_says_how_to_build_it() -> None:
    data = _dev()
    data["warehouse"] = {"enabled": True}
    assert "warehouse.plugin_zip: required" in _error(data)
    assert "`adstream connect plugin-zip`" in _error(data)


def test_warehouse_needs_the_apply_that_creates_its_topics() -> None:
    data = _dev()
    data["warehouse"] = {"enabled": True, "plugin_zip": "x.zip"}
    data["kafka_apply"] = {"enabled": False}
    data["cluster"]["auth"]["scram"] = False
    assert "kafka_apply.enabled is false" in _error(data)


def test_warehouse_refuses_registry_framed_values() -> None:
    data = _dev()
    data["warehouse"] = {"enabled": True, "plugin_zip": "x.zip"}
    data["schema"] = {"format": "avro"}
    assert "the connector reads schemaless JSON values" in _error(data)


def test_jsonschema_is_refused_with_the_reason() -> None:
    data = _dev()
    data["schema"] = {"format": "jsonschema"}
    assert "schema.format: jsonschema is not provisioned by the stack" in _error(data)


def test_a_missing_plugin_zip_fails_synth_naming_the_command(tmp_path: Path) -> None:
    data = _dev()
    data["warehouse"] = {"enabled": True, "plugin_zip": str(tmp_path / "missing.zip")}
    profile = parse_profile(data, "test")
    with pytest.raises(PluginZipError) as info:
        synthesize(profile, tmp_path / "out", strict=False)
    message = str(info.value)
    assert f"no file {tmp_path / 'missing.zip'}" in message
    assert "adstream connect plugin-zip" in message


def _avro_asset_profile(context: Path) -> Any:
    data = _dev()
    data["schema"] = {"format": "avro"}
    data["clients"]["image"] = {"source": "asset", "context": str(context)}
    return parse_profile(data, "avro-asset")


@pytest.mark.parametrize(
    ("arg", "ok"),
    [
        ("", False),  # a Containerfile from before the extras existed
        ("ARG ADSTREAM_IMAGE_EXTRAS=\n", False),  # `make image-context` without extras
        ("ARG ADSTREAM_IMAGE_EXTRAS=glue\n", True),
        ("ARG ADSTREAM_IMAGE_EXTRAS=infra,glue\n", True),
    ],
)
def test_an_avro_profile_needs_a_context_built_with_the_glue_extra(
    tmp_path: Path, arg: str, ok: bool
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text(f"FROM scratch\n{arg}")
    profile = _avro_asset_profile(context)
    if ok:
        check_image_extras(profile)
        return
    with pytest.raises(ImageContextError) as info:
        check_image_extras(profile)
    assert "ADSTREAM_IMAGE_EXTRAS=glue make image-context" in str(info.value)


def test_synth_refuses_an_avro_profile_on_a_context_without_glue(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\nARG ADSTREAM_IMAGE_EXTRAS=\n")
    with pytest.raises(ImageContextError, match="needs the image extra"):
        synthesize(_avro_asset_profile(context), tmp_path / "out", strict=False)


def test_the_shipped_containerfile_defaults_to_no_extras_and_build_image_can_set_them(
    tmp_path: Path,
) -> None:
    """The ARG line that synth reads (check_image_extras) is the one build-image.sh rewrites
    in a --context-only context; replayed here with the script's own sed expression."""
    containerfile = (PROJECT_ROOT / "Containerfile").read_text()
    assert EXTRAS_ARG.findall(containerfile) == [""]
    script = (PROJECT_ROOT / "scripts" / "build-image.sh").read_text()
    (expression,) = re.findall(r'sed "(s/\^ARG ADSTREAM_IMAGE_EXTRAS=[^"]*)"', script)
    rewritten = subprocess.run(
        ["sed", expression.replace("$extras", "glue")],
        input=containerfile,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert EXTRAS_ARG.findall(rewritten) == ["glue"]


def test_build_image_refuses_extras_that_are_not_names(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "build-image.sh"), "--context-only", "ctx"],
        env={**os.environ, "ADSTREAM_IMAGE_EXTRAS": "glue];touch x;["},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "ADSTREAM_IMAGE_EXTRAS must be extras of adstream" in result.stderr
    assert list(tmp_path.iterdir()) == []
