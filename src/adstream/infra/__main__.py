"""Entry point for the CDK CLI: `cdk deploy --app "python -m adstream.infra" -c profile=dev`.

The CDK CLI sets the output directory and passes `-c` context; the profile name (or path)
comes from the `profile` context key. cdk-nag runs here too, so a deploy never skips it.
"""

from __future__ import annotations

import sys

from aws_cdk import App

from adstream.infra.checks import enable_nag
from adstream.infra.profiles import ProfileError, load_profile
from adstream.infra.stacks import AdstreamStack


def main() -> None:
    app = App()
    name = app.node.try_get_context("profile")
    if not isinstance(name, str):
        sys.exit("error: pass the profile as CDK context, e.g. -c profile=dev")
    try:
        profile = load_profile(name)
    except ProfileError as exc:
        sys.exit(f"error: {exc}")
    try:
        AdstreamStack(app, profile=profile)
    except ProfileError as exc:  # a file the profile names is missing
        sys.exit(f"error: {exc}")
    enable_nag(app)
    app.synth()


if __name__ == "__main__":
    main()
