"""cdk-nag (AwsSolutions, v3 validation plugin) and cfn-lint on every synthesized profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from aws_cdk import App, Stack
from aws_cdk import aws_sns as sns
from cfnlint.api import ManualArgs, lint
from typer.testing import CliRunner

from adstream.infra.checks import acknowledge, enable_nag, flatten_reference, read_report
from adstream.infra.cli import app as cli
from tests.infra.conftest import SynthCache, shipped_data

pytestmark = pytest.mark.infra

ALL = ("dev", "prod", "serverless", "variant", "complete", "asset", "avro", "lake")


@pytest.mark.parametrize("name", ALL)
def test_cdk_nag_has_no_unacknowledged_findings(synth: SynthCache, name: str) -> None:
    result = synth(name).result
    assert result.findings == []
    assert result.assembly is not None  # synthesis passed validation, not just a report
    assert result.acknowledged  # the pack did run and saw the waived resources
    for finding in result.acknowledged:
        assert finding.reason is not None, finding
        assert len(finding.reason) > 20, finding


def test_expected_acknowledgements_only(synth: SynthCache) -> None:
    rules = {f.rule.split("[")[0] for f in synth("prod").result.acknowledged}
    assert rules == {
        "AwsSolutions-ECS2",
        "AwsSolutions-IAM4",
        "AwsSolutions-IAM5",
        "AwsSolutions-RDS11",
        "AwsSolutions-S1",
        "AwsSolutions-SMG4",
    }
    msk2 = [f for f in synth("variant").result.acknowledged if f.rule == "AwsSolutions-MSK2"]
    assert [f.path for f in msk2] == ["adstream-variant/Kafka/Provisioned"]


@pytest.mark.parametrize("name", ALL)
def test_cfn_lint_reports_nothing(synth: SynthCache, name: str) -> None:
    s = synth(name)
    (template,) = s.result.templates
    matches = lint(template.read_text(), config=ManualArgs(regions=[s.profile.region]))
    assert [str(m) for m in matches] == []


def test_nag_wiring_catches_and_acknowledges(tmp_path: Path) -> None:
    """Negative control: the same wiring flags an insecure topic and honours a waiver."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Control")
    sns.Topic(stack, "Open")
    waived = sns.Topic(stack, "Waived")
    acknowledge(waived, "AwsSolutions-SNS3", "negative control: waived on purpose in this test")
    enable_nag(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    open_, acked = read_report(tmp_path)
    assert {(f.rule, f.path) for f in open_} == {("AwsSolutions-SNS3", "Control/Open/Resource")}
    assert {(f.rule, f.path) for f in acked} == {("AwsSolutions-SNS3", "Control/Waived/Resource")}


def test_acknowledge_requires_a_reason() -> None:
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="needs a reason"):
        acknowledge(stack, "AwsSolutions-S1", "  ")


def test_flatten_reference_matches_cdk_nag_format() -> None:
    arn = {
        "Fn::Sub": [
            "arn:${AWS::Partition}:kafka:topic/c/${Uuid}/*",
            {"Uuid": {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "Cluster"}]}]}},
        ]
    }
    assert flatten_reference(arn) == json.dumps(arn["Fn::Sub"], separators=(",", ":"))
    assert flatten_reference({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":x/*"]]}) == (
        "arn:<AWS::Partition>:x/*"
    )
    assert flatten_reference({"Fn::GetAtt": ["Bucket", "Arn"]}) == "<Bucket.Arn>"


def _serverless_file(tmp_path: Path) -> Path:
    """The shipped serverless profile with the test image, as a file for the CLIs."""
    path = tmp_path / "serverless.yaml"
    path.write_text(yaml.safe_dump(shipped_data("serverless")))
    return path


def test_cli_synth_writes_the_template(tmp_path: Path) -> None:
    profile, out = _serverless_file(tmp_path), tmp_path / "out"
    result = CliRunner().invoke(cli, ["synth", "--profile", str(profile), "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = out / "adstream-serverless.template.json"
    assert f"wrote {written}" in result.output
    assert "0 open findings" in result.output
    resources = json.loads(written.read_text())["Resources"].values()
    assert any(r["Type"] == "AWS::MSK::ServerlessCluster" for r in resources)


def test_cdk_cli_entry_point_synthesizes_with_nag(tmp_path: Path) -> None:
    """`cdk deploy --app "python -m adstream.infra" -c profile=...`, run the way the CDK CLI
    runs it: a fresh process with CDK_OUTDIR and CDK_CONTEXT_JSON set."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({"profile": str(_serverless_file(tmp_path))}),
    }
    subprocess.run([sys.executable, "-m", "adstream.infra"], env=env, check=True, timeout=120)
    assert (tmp_path / "adstream-serverless.template.json").is_file()
    open_, acked = read_report(tmp_path)
    assert open_ == []
    assert acked
