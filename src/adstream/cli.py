"""The `adstream` command: parses flags, builds objects, calls one function.

Everything imported here must work with the base install (no `infra` or `dev` extra):
`adstream.infra.cli` imports the CDK libraries only inside its commands.
"""

from __future__ import annotations

import typer

from adstream.aggregate.cli import aggregate
from adstream.infra import cli as infra_cli
from adstream.ingest import keys_cli
from adstream.ingest.cli import serve
from adstream.kafka import cli as kafka_cli
from adstream.local import cli as local_cli
from adstream.local import connect_cli, monitor_cli
from adstream.logs import LogSettingsError, configure_logging
from adstream.warehouse import cli as warehouse_cli

app = typer.Typer(
    help="adstream: ad-event streaming on Apache Kafka / Amazon MSK.", no_args_is_help=True
)
# `adstream kafka` gathers the local broker's commands, the client-side doctor and
# Kafka as code (plan/apply of deploy/kafka.yaml).
local_cli.app.command("check")(kafka_cli.check)
local_cli.app.command("plan")(kafka_cli.plan)
local_cli.app.command("apply")(kafka_cli.apply)
local_cli.app.command("size")(kafka_cli.size)


@app.callback()
def _start() -> None:
    """Set up structured logs (ADSTREAM_LOG_FORMAT, ADSTREAM_LOG_LEVEL) before any command."""
    try:
        configure_logging()
    except LogSettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


app.add_typer(local_cli.app, name="kafka")
app.add_typer(infra_cli.app, name="infra")
app.add_typer(monitor_cli.app, name="monitor")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(connect_cli.app, name="connect")
app.add_typer(warehouse_cli.app, name="warehouse")
app.command()(serve)
app.command()(keys_cli.sign)
app.command()(aggregate)


def main() -> None:
    app()
