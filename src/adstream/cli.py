"""The `adstream` command: parses flags, builds objects, calls one function."""

from __future__ import annotations

import typer

app = typer.Typer(help="adstream: ad-event streaming on Apache Kafka / Amazon MSK.", no_args_is_help=True)


def main() -> None:
    app()
