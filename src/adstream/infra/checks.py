"""cdk-nag wiring (v3): the AwsSolutions pack runs as a CDK policy-validation plugin.

cdk-nag 3 is registered with `Validations.of(app).add_plugins(...)` and findings are waived with
`Validations.of(construct).acknowledge(...)`; the 2.x Aspect/NagSuppressions API is gone.
Every waiver goes through `acknowledge()` here so each one carries a reason in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"
REPORT_FILE = "validation-report.json"


@dataclass(frozen=True)
class Finding:
    """One rule a construct violates (unacknowledged) or had waived (acknowledged)."""

    rule: str
    path: str
    description: str
    reason: str | None = None


def enable_nag(app: App) -> None:
    """Run the AwsSolutions pack on every stack of `app` at synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Waive `rule` (e.g. `AwsSolutions-IAM5[Resource::*]`) on `scope` and its children."""
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))


def acknowledge_wildcard_resource(scope: IConstruct, resource: str, reason: str) -> None:
    """Waive AwsSolutions-IAM5 for one wildcard resource ARN (tokens allowed) on `scope`."""
    flat = flatten_reference(Stack.of(scope).resolve(resource))
    acknowledge(scope, f"AwsSolutions-IAM5[Resource::{flat}]", reason)


def flatten_reference(node: object) -> str:
    """cdk-nag's `flattenCfnReference`: how a resolved ARN appears in an IAM5 finding id."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_reference(resource)}.{flatten_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"), ensure_ascii=False)


def read_report(outdir: Path) -> tuple[list[Finding], list[Finding]]:
    """(unacknowledged, acknowledged) findings from the cloud assembly's validation report.

    CDK writes the report only when a plugin reports something; no file means no findings.
    """
    path = outdir / REPORT_FILE
    if not path.is_file():
        return [], []
    report = json.loads(path.read_text(encoding="utf-8"))
    open_, waived = [], []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            open_.extend(_findings(violation))
        for violation in plugin.get("suppressedViolations", []):
            waived.extend(_findings(violation, violation.get("reason")))
    return open_, waived


def _findings(violation: dict[str, object], reason: object = None) -> list[Finding]:
    constructs = violation.get("violatingConstructs", [])
    assert isinstance(constructs, list)
    return [
        Finding(
            rule=str(violation["ruleName"]),
            path=str(item["constructPath"]),
            description=str(violation.get("description", "")),
            reason=None if reason is None else str(reason),
        )
        for item in constructs
    ]
