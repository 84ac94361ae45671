"""Composition root of the CDK app: profile in, checked CloudFormation templates out.

Synthesis runs cdk-nag (AwsSolutions) as a validation plugin; unacknowledged findings make
`synthesize` raise, so a template that fails the pack is never handed to anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import App, cx_api

from adstream.infra.checks import Finding, enable_nag, read_report
from adstream.infra.profiles import Profile
from adstream.infra.stacks import AdstreamStack


class NagFindingsError(RuntimeError):
    """cdk-nag reported findings that nobody acknowledged."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        lines = [f"{f.rule} at {f.path}: {f.description}" for f in findings]
        super().__init__("cdk-nag AwsSolutions findings:\n  " + "\n  ".join(lines))


@dataclass
class SynthResult:
    """What a synthesis produced: template paths, the assembly, and cdk-nag's verdict."""

    outdir: Path
    templates: list[Path]
    assembly: cx_api.CloudAssembly | None
    findings: list[Finding] = field(default_factory=list)
    acknowledged: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Synthesis warnings of the stacks (e.g. alarms nobody receives)."""


def build_app(profile: Profile, outdir: Path, *, nag: bool = True) -> tuple[App, AdstreamStack]:
    app = App(outdir=str(outdir), context={"aws:cdk:disable-stack-trace": True})
    stack = AdstreamStack(app, profile=profile)
    if nag:
        enable_nag(app)
    return app, stack


def synthesize(
    profile: Profile, outdir: Path, *, nag: bool = True, strict: bool = True
) -> SynthResult:
    """Write `<stack>.template.json` into `outdir`; raises NagFindingsError when `strict`."""
    outdir.mkdir(parents=True, exist_ok=True)
    app, _ = build_app(profile, outdir, nag=nag)
    assembly: cx_api.CloudAssembly | None
    try:
        assembly = app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        assembly = None
    findings, acknowledged = read_report(outdir)
    if assembly is None and not findings:
        raise RuntimeError(f"synthesis failed validation without a readable report in {outdir}")
    if strict and findings:
        raise NagFindingsError(findings)
    templates = (
        [Path(stack.template_full_path) for stack in assembly.stacks]
        if assembly is not None
        else sorted(outdir.glob("*.template.json"))
    )
    warnings = (
        [
            str(message.entry.data)
            for stack in assembly.stacks
            for message in stack.messages
            if message.level is cx_api.SynthesisMessageLevel.WARNING
        ]
        if assembly is not None
        else []
    )
    return SynthResult(outdir, templates, assembly, findings, acknowledged, warnings)
