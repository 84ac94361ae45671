"""`adstream infra ...`: synthesize the CDK app for a profile (mounted by `adstream.cli`).

The CDK libraries and PyYAML are the optional `infra` extra, so this module imports none of
them at the top: `adstream` without the extra must still run every other command, and
`infra` commands then say which extra to install.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Annotated

import typer

EXIT_MISSING_EXTRA = 2
INFRA_EXTRA_MODULES = ("aws_cdk", "constructs", "cdk_nag")
"""Top-level modules of the `infra` extra (aws-cdk-lib, constructs, cdk-nag)."""

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
    require_infra_extra()
    from adstream.infra.profiles import ProfileError, load_profile

    try:
        loaded = load_profile(profile)
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    from adstream.infra.app import NagFindingsError, synthesize  # deferred: starts jsii

    try:
        result = synthesize(loaded, out)
    except ProfileError as exc:  # a file the profile names (image context, kafka overlay)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except NagFindingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for template in result.templates:
        typer.echo(f"wrote {template}")
    typer.echo(
        f"cdk-nag AwsSolutions: 0 open findings, {len(result.acknowledged)} acknowledged "
        "with reasons (see validation-report.json when present)"
    )


def missing_infra_modules() -> list[str]:
    """The `infra` extra's modules that cannot be imported here (none when it is installed)."""
    missing = []
    for name in INFRA_EXTRA_MODULES:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def require_infra_extra() -> None:
    """Exit 2 naming the extra to install, instead of a traceback about `yaml` or `aws_cdk`."""
    missing = missing_infra_modules()
    if missing:
        typer.echo(
            f"error: `adstream infra` needs the infra extra (missing: {', '.join(missing)}); "
            "install it with: pip install 'adstream[infra]'",
            err=True,
        )
        raise typer.Exit(EXIT_MISSING_EXTRA)
