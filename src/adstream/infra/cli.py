"""`adstream infra ...`: synthesize the CDK app for a profile (mounted by `adstream.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adstream.infra.profiles import ProfileError, load_profile

app = typer.Typer(
    help="AWS infrastructure (CDK): synthesize and check CloudFormation for MSK.",
    no_args_is_help=True,
)


@app.callback()
def _infra() -> None:
    """Keep `synth` a named sub-command even while it is the only one."""


@app.command()
def synth(
    profile: Annotated[
        str,
        typer.Option(
            "--profile", "-p", help="profile name (infra/profiles/NAME.yaml) or a YAML path"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="cloud assembly directory")] = Path(
        "cdk.out"
    ),
) -> None:
    """Write `<stack>.template.json` for PROFILE after cdk-nag (AwsSolutions) passes."""
    try:
        loaded = load_profile(profile)
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    from adstream.infra.app import NagFindingsError, synthesize  # deferred: starts jsii

    try:
        result = synthesize(loaded, out)
    except NagFindingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for template in result.templates:
        typer.echo(f"wrote {template}")
    typer.echo(
        f"cdk-nag AwsSolutions: 0 open findings, {len(result.acknowledged)} acknowledged "
        "with reasons (see validation-report.json when present)"
    )
